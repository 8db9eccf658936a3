//! What a run tells an observer while it works: how much the plan holds,
//! which folder it is in, bytes passed and messages done. The binary draws
//! a progress bar on a terminal (or prints plain lines) from these; the
//! engine only counts.

use super::PreparedRef;
use super::report::SyncReport;
use ferry_core::{MessageKey, PerSide};
use ferry_plan::folder::Action;
use ferry_plan::moves::AccountPlan;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// Folders with something to do.
    pub folders: usize,
    /// Messages to copy, flag, move or remove.
    pub messages: usize,
    /// Bytes to copy, where the sizes are known.
    pub bytes: u64,
}

/// An observer of a run. Every method has a default that ignores it.
pub trait Progress: Send + Sync {
    /// The plan is made.
    fn planned(&self, _work: Work) {}
    /// The actions of `folder` begin.
    fn folder(&self, _folder: &str) {}
    /// `n` more bytes of message bodies passed.
    fn bytes(&self, _n: u64) {}
    /// `messages` messages are done in all so far.
    fn done(&self, _messages: usize) {}
}

/// What steers a run from outside: a stop request and an observer.
#[derive(Clone, Default)]
pub struct Control {
    /// Set (by a signal handler) to stop after the batch in flight: what
    /// is done is committed, the rest waits for the next run.
    pub stop: Option<Arc<AtomicBool>>,
    /// Told about the run's progress.
    pub progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("stop", &self.stop)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl Control {
    /// Whether the run was asked to stop.
    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    pub(crate) fn planned(&self, work: Work) {
        if let Some(p) = &self.progress {
            p.planned(work);
        }
    }

    pub(crate) fn folder(&self, name: &str) {
        if let Some(p) = &self.progress {
            p.folder(name);
        }
    }

    pub(crate) fn bytes(&self, n: u64) {
        if let Some(p) = &self.progress {
            p.bytes(n);
        }
    }

    /// Reports the messages done so far, as the report counts them.
    pub(crate) fn done(&self, report: &SyncReport) {
        if let Some(p) = &self.progress {
            let t = report.totals();
            p.done(t.pulled + t.pushed + t.flags + t.moved + t.deleted);
        }
    }
}

/// How much `plan` holds; the sizes of copies come from the snapshots.
pub(crate) fn work(plan: &AccountPlan, prepared: &BTreeMap<String, PreparedRef<'_>>) -> Work {
    let mut work = Work::default();
    for (name, folder) in &plan.folders {
        let counted: Vec<&Action> = folder.actions.iter().filter(|a| counts(a)).collect();
        if counted.is_empty() {
            continue;
        }
        work.folders += 1;
        work.messages += counted.len();
        let Some(snapshots) = prepared.get(name).map(|p| p.snapshots) else {
            continue;
        };
        let sizes: PerSide<HashMap<&MessageKey, u64>> = snapshots.as_ref().map(|_, s| {
            s.messages
                .iter()
                .filter_map(|m| Some((&m.key, m.size?)))
                .collect()
        });
        work.bytes += counted
            .iter()
            .filter_map(|a| match a {
                Action::Copy { from, key, .. } => sizes[*from].get(key).copied(),
                _ => None,
            })
            .sum::<u64>();
    }
    work.messages += plan.moves.len();
    work
}

/// Whether an action is a message the report counts as done.
fn counts(action: &Action) -> bool {
    matches!(
        action,
        Action::Copy { .. }
            | Action::SetFlags { .. }
            | Action::Remove { .. }
            | Action::MarkDeleted { .. }
    )
}
