//! The hidden step limit for crash tests: with `FERRY_ABORT_AFTER_STEP=N`
//! in the environment, the process kills itself (SIGKILL, as `kill -9`
//! would) after the N-th step that changes a store or the state, and, with
//! `FERRY_ABORT_TRACE=1`, prints each step to stderr. Not a user feature:
//! it lets a test interrupt a sync at every point and check that the next
//! run finishes it without losing or duplicating anything.

use ferry_maildir::StepHook;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const LIMIT: &str = "FERRY_ABORT_AFTER_STEP";
const TRACE: &str = "FERRY_ABORT_TRACE";

/// Installs the step limit when the environment asks for it.
pub fn install_from_env() {
    let Some(limit) = std::env::var(LIMIT)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return;
    };
    let trace = std::env::var_os(TRACE).is_some();
    let taken = AtomicU64::new(0);
    ferry_core::crashpoint::install(Box::new(move |what| {
        let n = taken.fetch_add(1, Ordering::SeqCst) + 1;
        if trace {
            eprintln!("ferry: step {n}: {what}");
        }
        if n >= limit {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
        }
    }));
}

/// The Maildir store's file-level steps, forwarded to the crash points
/// (each is called just before its system call, i.e. after the previous
/// one took effect).
pub fn maildir_hook() -> Option<StepHook> {
    ferry_core::crashpoint::installed().then(|| {
        let hook: StepHook = Arc::new(|step, _path| {
            ferry_core::crashpoint::step(&format!("maildir {step:?}"));
            Ok(())
        });
        hook
    })
}
