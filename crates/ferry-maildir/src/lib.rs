//! Maildir folders and trees for ferry.
//!
//! This crate owns the local store and knows nothing of sync or IMAP:
//!
//! - [`name`]: the file-name grammar, `unique:2,INFO`. The unique part is the
//!   message's stable key (mutt, neomutt and notmuch keep it when they rename
//!   a file to change flags); unknown info letters are kept verbatim.
//! - [`scan`]: a folder's listing by `readdir` of `new/` and `cur/` alone,
//!   repeated until the directories' stamps hold still, with duplicates and
//!   non-message entries reported, never dropped; [`stamp`] says when a
//!   listing is complete and when a folder is provably unchanged.
//! - [`deliver`] and [`ops`]: crash-safe delivery (tmp/, fsync, rename),
//!   from a reader or pushed in pieces ([`Delivery`]), and
//!   flag renames, moves and removal, each returning an [`Unsynced`] result
//!   that is durable once its directories are fsynced ([`durable`]);
//!   [`queue`] carries deliveries out on worker threads.
//! - [`crlf`] and [`fingerprint`]: files are stored with LF; APPEND reads
//!   them as CRLF ([`CrlfReader`]); one fingerprint (SHA-256 of the CRLF
//!   form) for both sides.
//! - [`layout`] and [`tree`]: folder names to directories (`fs` and
//!   `maildir++`), refusing names that would escape the root or collide;
//!   the listing and parallel scanning of a whole tree; creating, renaming
//!   and removing (empty) folders.
//! - [`watch`]: inotify hints that folders changed.
//! - [`step`]: a hook before every changing system call, for crash tests.
//!
//! ```
//! use ferry_core::{Flag, Flags};
//! use ferry_maildir::{FolderName, Layout, NewMessage, Tree};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let tree = Tree::create(dir.path(), Layout::Fs)?;
//! let name = FolderName::from_server("Archive/2024", Some('/'), "")?;
//! let folder = tree.create_folder(&name)?;
//!
//! let msg = NewMessage {
//!     flags: [Flag::Seen].into_iter().collect::<Flags>(),
//!     internal_date: Some(1_700_000_000),
//!     ..NewMessage::new()
//! };
//! let delivered = folder.deliver(&msg, &b"Subject: hi\r\n\r\nhello\r\n"[..])?.sync()?;
//! assert_eq!(delivered.size, 19); // stored with LF
//! assert_eq!(delivered.crlf_size, 22); // compared with CRLF
//!
//! let listing = folder.scan()?;
//! let entry = listing.get(&msg.key).expect("delivered");
//! assert!(entry.flags().contains(&Flag::Seen));
//! assert_eq!(entry.file_name(), format!("{}:2,S", msg.key));
//! # Ok(())
//! # }
//! ```
//!
//! # The `maildir` crate
//!
//! The project was specified with the `maildir` crate (0.6). This crate does
//! not use it, and does not depend on it, because none of its pieces fits
//! what ferry must guarantee:
//!
//! - its listing turns names into lossy UTF-8, fails on a `cur/` entry
//!   without `:2,` instead of skipping it, knows no stamps (so no stable
//!   listing) and treats no duplicate;
//! - its delivery takes the message as one byte slice (no streaming, no
//!   CRLF to LF, no fingerprint), never fsyncs the directory, sets no
//!   mtime, may overwrite an existing name (plain rename), and names files
//!   `SECS.#COUNTERMNANOSPPID...` rather than the specification's form;
//! - its flag and move helpers look messages up by listing the whole folder
//!   for each call, drop info letters they do not know, and do not report a
//!   vanished source as such;
//! - it would bring `mailparse` and `gethostname`, which ferry does not need.
//!
//! What it would have saved is `create_dirs`, three `mkdir`s.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod crlf;
pub mod deliver;
pub mod durable;
pub mod error;
pub mod fingerprint;
pub mod folder;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod name;
pub mod ops;
pub mod queue;
pub mod scan;
pub mod stamp;
pub mod step;
pub mod tree;
pub mod watch;

pub use crlf::CrlfReader;
pub use deliver::{Delivered, Delivery, NewMessage, unique_key};
pub use durable::{DirtyDirs, Unsynced};
pub use error::{Error, Result};
pub use fingerprint::{Fingerprint, Fingerprinter, fingerprint_file};
pub use folder::Folder;
pub use layout::{FolderName, Layout, NameError, Problem};
pub use name::MaildirName;
pub use queue::{DeliveryQueue, Finished};
pub use scan::{Entry, Listing, ScanOptions, Skipped, Subdir};
pub use stamp::{DirTimes, Stamps};
pub use step::{Step, StepHook};
pub use tree::{Tree, TreeListing, scan_all};
pub use watch::{Hint, TreeWatcher};
