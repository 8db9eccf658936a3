//! Named steps of the file operations, and a hook to stop or fail at one.
//!
//! Every operation that changes the store ([`Folder::deliver`],
//! [`Folder::set_flags`], [`Folder::move_to`], [`Folder::remove`] and the
//! directory fsyncs of [`DirtyDirs`]) calls the folder's [`StepHook`], if it
//! has one, just before each system call that changes something. The hook is
//! for tests, the way mbsync's hidden step limit is: a crash test makes the
//! hook kill the process at step N, for every N, and checks what is left on
//! disk; a fault test makes it return an error (ENOSPC, EXDEV) which the
//! operation then treats exactly as if the system call had failed with it.
//! Production code sets no hook, and then a step costs one branch.
//!
//! [`Folder::deliver`]: crate::Folder::deliver
//! [`Folder::set_flags`]: crate::Folder::set_flags
//! [`Folder::move_to`]: crate::Folder::move_to
//! [`Folder::remove`]: crate::Folder::remove
//! [`DirtyDirs`]: crate::DirtyDirs

use std::io;
use std::path::Path;
use std::sync::Arc;

/// A system call that changes the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Creating a file in `tmp/` (O_EXCL).
    CreateTmp,
    /// Writing one chunk of a file in `tmp/`.
    Write,
    /// Setting a file's modification time.
    SetMtime,
    /// fsync of a file.
    SyncFile,
    /// A rename (into `new/` or `cur/`, within `cur/`, or across folders).
    Rename,
    /// fsync of a directory.
    SyncDir,
    /// Removing a file.
    Unlink,
}

/// Called before each [`Step`] with the path it concerns. An `Err` is used
/// in place of the system call's result (the call is not made).
pub type StepHook = Arc<dyn Fn(Step, &Path) -> io::Result<()> + Send + Sync>;

/// Runs the hook (if any), then the system call, and returns the first error.
pub(crate) fn run<T>(
    hook: Option<&StepHook>,
    step: Step,
    path: &Path,
    call: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    if let Some(hook) = hook {
        hook(step, path)?;
    }
    call()
}
