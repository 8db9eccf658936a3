//! The planner: pure functions from what both sides hold now and what they
//! held at the last sync to the actions that bring them together.
//!
//! No I/O, clock, SQL or randomness: the same inputs always give the same
//! plan. It holds the per-flag three-way merge ([`flags`]), the per-folder
//! diff ([`folder`]) and the account plan with its cross-folder move pass
//! ([`moves`]), and the folder plan: filters, creates, removals, renames
//! and the vanished-folder guard ([`folders`]).
//!
//! ```
//! use ferry_core::{Flag, Flags, PerSide};
//! use ferry_plan::flags::merge;
//!
//! let base = Flags::new();
//! let far: Flags = [Flag::Seen].into_iter().collect();
//! let near: Flags = [Flag::Flagged].into_iter().collect();
//! let merged = merge(&base, PerSide::new(&far, &near));
//! assert!(merged.contains(&Flag::Seen) && merged.contains(&Flag::Flagged));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod flags;
pub mod folder;
pub mod folders;
pub mod moves;
