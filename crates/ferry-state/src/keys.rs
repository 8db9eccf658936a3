//! How a message is found on one side, and what its content hashes to.
//!
//! An IMAP folder names a message by [`Uid`]; a Maildir folder by the unique
//! part of its file name (the part before `:2,`, which mutt, neomutt and
//! notmuch keep when they rename for flags). `ferry sync` has UIDs far and
//! Maildir keys near; `ferry migrate` has UIDs on both sides. The schema
//! keeps both kinds of column on both sides so the engine stays symmetric.

pub use ferry_core::{Fingerprint, MessageKey};
