//! Crash points: a hook called after every step that changes a store or
//! the state, for the crash-safety tests.
//!
//! The way mbsync's hidden step limit works: the binary installs a hook
//! that counts steps and kills the process at step N (`FERRY_ABORT_AFTER_STEP`,
//! hidden), and a test runs a sync with every N, then resumes it and checks
//! that nothing was lost or duplicated. The stores and the state call
//! [`step`] once a change is made (an APPEND answered, a STORE, a MOVE, an
//! EXPUNGE, a folder change, a state transaction committed; the Maildir
//! store forwards its file-level steps). Without a hook, a step costs one
//! atomic load.

use std::sync::OnceLock;

/// What a crash point calls: the name of the step just taken.
pub type Hook = Box<dyn Fn(&str) + Send + Sync>;

static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs the process-wide hook; returns false when one was installed
/// already (the first one stays).
pub fn install(hook: Hook) -> bool {
    HOOK.set(hook).is_ok()
}

/// Whether a hook is installed.
pub fn installed() -> bool {
    HOOK.get().is_some()
}

/// Reports that `what` was just done.
pub fn step(what: &str) {
    if let Some(hook) = HOOK.get() {
        hook(what);
    }
}
