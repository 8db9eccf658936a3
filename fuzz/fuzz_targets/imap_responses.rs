//! The IMAP response reader and parser on arbitrary server bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_imap::proto::fuzzing::responses(data));
