//! Maildir file names and server folder names mapped to local paths.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_maildir::fuzzing::names(data));
