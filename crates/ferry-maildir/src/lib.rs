//! Maildir folders and trees for ferry.
//!
//! This crate owns the local store and knows nothing of sync or IMAP. Today
//! it holds the file-name grammar ([`name`]): `unique:2,INFO`, where the
//! unique part is the message's stable key (mutt, neomutt and notmuch keep it
//! when they rename a file to change flags). Scanning, delivery, moves and
//! the watcher follow.
//!
//! ```
//! use ferry_maildir::name::MaildirName;
//!
//! let name = MaildirName::parse("1700000000.M1P2.host,U=12:2,FS").expect("valid");
//! assert_eq!(name.key(), "1700000000.M1P2.host,U=12");
//! assert_eq!(name.info(), Some("FS"));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod name;
