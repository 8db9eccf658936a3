//! Durability: a change is recorded only after its directories are fsynced.
//!
//! A rename or an unlink is durable only once the directory that holds the
//! entry has been fsynced. Every operation of [`Folder`](crate::Folder) that
//! changes a directory returns its result wrapped in [`Unsynced`], which must
//! be used: either [`Unsynced::sync`] now (one message), or
//! [`Unsynced::defer`] into a [`DirtyDirs`] that a batch fsyncs once per
//! directory with [`DirtyDirs::sync`] (design.md: "files of a batch may be
//! fsynced in parallel; none is recorded before it is durable"). Files
//! themselves are fsynced by the operation that wrote them, before the
//! rename that publishes them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{Context, Result};
use crate::step::{self, Step, StepHook};

/// A result whose directory entries are not yet durable.
#[must_use = "the change is not durable until its directories are fsynced: call sync() or defer()"]
#[derive(Debug)]
pub struct Unsynced<T> {
    value: T,
    dirs: DirtyDirs,
}

impl<T> Unsynced<T> {
    pub(crate) fn new(value: T, dirs: DirtyDirs) -> Self {
        Unsynced { value, dirs }
    }

    /// The result, for a look before it is durable (to journal a name, say).
    pub fn peek(&self) -> &T {
        &self.value
    }

    /// fsyncs the directories now and returns the durable result.
    pub fn sync(self) -> Result<T> {
        self.dirs.sync()?;
        Ok(self.value)
    }

    /// Adds the directories to `batch` and returns the result, which becomes
    /// durable when `batch` is synced.
    pub fn defer(self, batch: &mut DirtyDirs) -> T {
        batch.extend(self.dirs);
        self.value
    }
}

/// A set of directories to fsync, each once.
#[derive(Default)]
pub struct DirtyDirs {
    dirs: BTreeMap<PathBuf, Option<StepHook>>,
}

impl fmt::Debug for DirtyDirs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.dirs.keys()).finish()
    }
}

impl DirtyDirs {
    /// An empty set.
    pub fn new() -> Self {
        DirtyDirs::default()
    }

    pub(crate) fn one(dir: PathBuf, hook: Option<&StepHook>) -> Self {
        let mut dirs = DirtyDirs::new();
        dirs.add(dir, hook);
        dirs
    }

    pub(crate) fn add(&mut self, dir: PathBuf, hook: Option<&StepHook>) {
        self.dirs.entry(dir).or_insert_with(|| hook.cloned());
    }

    /// Adds every directory of `other`.
    pub fn extend(&mut self, other: DirtyDirs) {
        for (dir, hook) in other.dirs {
            self.dirs.entry(dir).or_insert(hook);
        }
    }

    /// How many directories wait for an fsync.
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// fsyncs every directory (in parallel); the first error is returned
    /// after all were tried.
    pub fn sync(self) -> Result<()> {
        let results: Vec<Result<()>> = self
            .dirs
            .into_par_iter()
            .map(|(dir, hook)| sync_dir(&dir, hook.as_ref()))
            .collect();
        results.into_iter().collect()
    }
}

/// fsyncs one directory.
pub(crate) fn sync_dir(dir: &Path, hook: Option<&StepHook>) -> Result<()> {
    step::run(hook, Step::SyncDir, dir, || File::open(dir)?.sync_all())
        .at("fsyncing directory", dir)
}
