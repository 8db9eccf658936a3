//! The engine of ferry: the IMAP and Maildir stores, and the runs (sync,
//! plan, watch, migrate) built on them.
//!
//! Today it holds how a run's results become the process's exit status
//! ([`outcome`]), the contract every command shares; the stores and the sync
//! run follow.
//!
//! ```
//! use ferry_engine::outcome::{ExitStatus, Outcome};
//!
//! let mut outcome = Outcome::default();
//! outcome.record_partial_failure();
//! outcome.record_guard_hold();
//! assert_eq!(outcome.exit_status(), ExitStatus::GuardHeld);
//! assert_eq!(ExitStatus::GuardHeld.code(), 4);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod imap_store;
pub mod maildir_store;
pub mod outcome;
pub mod sync;
