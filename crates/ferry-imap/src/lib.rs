//! A minimal, hardened, blocking IMAP client for ferry.
//!
//! This crate owns everything that speaks IMAP and nothing that knows about
//! sync. Today it holds the modified UTF-7 mailbox-name codec
//! ([`mutf7`]); the transport and protocol core follow.
//!
//! ```
//! use ferry_imap::mutf7;
//!
//! assert_eq!(mutf7::encode("Entwürfe"), "Entw&APw-rfe");
//! assert_eq!(mutf7::decode("Entw&APw-rfe").expect("valid"), "Entwürfe");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod mutf7;
