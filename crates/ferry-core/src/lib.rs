//! The shared vocabulary of ferry.
//!
//! Every other crate speaks in these types: which [`Side`] of a sync pair a
//! value belongs to ([`PerSide`]), IMAP identities that can never be zero
//! ([`Uid`], [`UidValidity`]), message [`Flags`] with their Maildir
//! letters, what a snapshot knows of a message ([`MessageMeta`],
//! [`Fingerprint`]), and the [`store::Store`] trait both kinds of store
//! implement. This crate does no I/O.
//!
//! ```
//! use ferry_core::{Flag, Flags, PerSide, Side};
//!
//! let flags = Flags::from_maildir_info("FS");
//! assert!(flags.contains(&Flag::Seen));
//! assert_eq!(flags.to_maildir_info(), "FS");
//!
//! let mut seen = PerSide::new(0u32, 0u32);
//! seen[Side::Near] += 1;
//! assert_eq!(seen[Side::Near.other()], 0);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod crashpoint;
pub mod date;
mod fingerprint;
mod flags;
mod ids;
mod message;
mod side;
pub mod store;

pub use fingerprint::Fingerprint;
pub use flags::{Flag, Flags};
pub use ids::{InvalidId, Uid, UidValidity};
pub use message::{ContentIdentity, MessageKey, MessageMeta, header_message_id};
pub use side::{PerSide, Side};
