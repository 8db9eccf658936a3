//! What a run did, per folder, and the exit status it earns.

use crate::outcome::ExitStatus;
use ferry_core::{PerSide, Side};
use ferry_plan::folder::Held;
use ferry_plan::folders::{FolderAction, Vanished};
use ferry_plan::moves::AccountPlan;
use std::collections::BTreeMap;

/// What happened in one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderReport {
    /// Messages copied into each side (near: pulled; far: pushed).
    pub copied_into: PerSide<usize>,
    /// Bytes copied into each side.
    pub bytes_into: PerSide<u64>,
    /// Messages whose flags changed on each side.
    pub flags_changed: PerSide<usize>,
    /// Messages removed for good on each side.
    pub removed: PerSide<usize>,
    /// Messages marked deleted on each side (expunge not allowed there).
    pub marked_deleted: PerSide<usize>,
    /// Messages moved into this folder on each side.
    pub moved_into: PerSide<usize>,
    /// Messages not copied (too large, marked deleted).
    pub skipped: usize,
    /// Removals the mass-delete guard held back.
    pub held: Vec<Held>,
    /// What failed here, each naming the message and the cause.
    pub failed: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Per folder, by local name.
    pub folders: BTreeMap<String, FolderReport>,
    /// The folder changes planned (and, unless a dry run, made).
    pub folder_actions: Vec<FolderAction>,
    /// Folders (or whole sides) that vanished: nothing deleted, not synced.
    pub vanished: Vec<Vanished>,
    /// Problems with folder changes.
    pub folder_failures: Vec<String>,
    /// What was settled from the journal of an interrupted run.
    pub recovered: super::Recovered,
    /// The run stopped early when asked (SIGINT, SIGTERM) after committing
    /// the batch in flight.
    pub stopped: bool,
    /// The plan, for a dry run.
    pub plan: Option<AccountPlan>,
    /// Folders skipped because both sides proved them unchanged.
    pub unchanged: usize,
    /// Folders one side of which proved unchanged and was not listed: they
    /// were planned from the other side's changes.
    pub one_side_unchanged: usize,
}

impl SyncReport {
    /// The report of `name`, created empty on first use.
    pub fn folder(&mut self, name: &str) -> &mut FolderReport {
        self.folders.entry(name.to_string()).or_default()
    }

    /// Notes what the plan held back or skipped.
    pub(crate) fn record_plan(&mut self, plan: &AccountPlan) {
        for (name, folder) in &plan.folders {
            let report = self.folder(name);
            report.held = folder.held.clone();
            report.skipped = folder
                .actions
                .iter()
                .filter(|a| matches!(a, ferry_plan::folder::Action::Skip { .. }))
                .count();
        }
    }

    /// Whether a guard held anything back.
    pub fn guard_held(&self) -> bool {
        !self.vanished.is_empty() || self.folders.values().any(|f| !f.held.is_empty())
    }

    /// Whether anything failed.
    pub fn has_failures(&self) -> bool {
        !self.folder_failures.is_empty() || self.folders.values().any(|f| !f.failed.is_empty())
    }

    /// The exit status this run earns (4 wins over 3).
    pub fn exit_status(&self) -> ExitStatus {
        if self.guard_held() {
            ExitStatus::GuardHeld
        } else if self.has_failures() {
            ExitStatus::Partial
        } else {
            ExitStatus::Done
        }
    }

    /// Totals over all folders: (pulled, pushed, flag changes, moves,
    /// removals and marks).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for f in self.folders.values() {
            totals.pulled += f.copied_into[Side::Near];
            totals.pushed += f.copied_into[Side::Far];
            totals.bytes += f.bytes_into.far + f.bytes_into.near;
            totals.flags += f.flags_changed.far + f.flags_changed.near;
            totals.moved += f.moved_into.far + f.moved_into.near;
            totals.deleted +=
                f.removed.far + f.removed.near + f.marked_deleted.far + f.marked_deleted.near;
        }
        totals
    }
}

/// Counts over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages copied far -> near.
    pub pulled: usize,
    /// Messages copied near -> far.
    pub pushed: usize,
    /// Bytes copied either way.
    pub bytes: u64,
    /// Flag changes on either side.
    pub flags: usize,
    /// Moves on either side.
    pub moved: usize,
    /// Removals and deletion marks on either side.
    pub deleted: usize,
}
