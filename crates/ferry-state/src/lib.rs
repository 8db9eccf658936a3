//! The sync memory of ferry: what was synced, what is in flight, and who is
//! running.
//!
//! This is the only crate with SQL (the database arrives with the Maildir and
//! state issue). Today it holds the account lock ([`lock`]): one run per
//! account at a time, released by the kernel when the holder dies.
//!
//! ```
//! use ferry_state::lock::AccountLock;
//!
//! let dir = tempfile::tempdir().expect("temp dir");
//! let lock = AccountLock::acquire(&dir.path().join("work.lock")).expect("free");
//! assert!(AccountLock::acquire(&dir.path().join("work.lock")).is_err());
//! drop(lock);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod lock;
