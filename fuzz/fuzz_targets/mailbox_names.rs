//! Modified UTF-7 mailbox names from a server.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_imap::proto::fuzzing::mailbox_name(data));
