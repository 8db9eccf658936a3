//! A handle on one Maildir folder: a directory with `cur/`, `new/`, `tmp/`.
//!
//! The handle knows its path, its path relative to the tree root (the
//! folder's identity, design.md "A Maildir folder is its path relative to
//! the root"), and an optional [`StepHook`] for crash tests. Reading lives
//! here; delivery is in [`crate::deliver`], the other changes in
//! [`crate::ops`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::crlf::{CrlfReader, crlf_len};
use crate::error::{Context, Error, Result};
use crate::fingerprint::{Fingerprint, fingerprint_reader};
use crate::scan::{self, Entry, Listing, ScanOptions, Subdir};
use crate::stamp::{self, DirTimes, Stamps};
use crate::step::StepHook;

/// One Maildir folder.
#[derive(Clone)]
pub struct Folder {
    dir: PathBuf,
    rel: PathBuf,
    hook: Option<StepHook>,
}

impl fmt::Debug for Folder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Folder")
            .field("dir", &self.dir)
            .field("rel", &self.rel)
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

impl PartialEq for Folder {
    fn eq(&self, other: &Folder) -> bool {
        self.dir == other.dir
    }
}

impl Folder {
    /// Opens the folder at `dir`, which must have `cur/`. Its relative
    /// path is `dir` as given; [`crate::Tree::folder`] opens one inside a
    /// tree, with the checks that keep it inside the root.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Folder> {
        let dir = dir.into();
        if !dir.join("cur").is_dir() {
            return Err(Error::NotAFolder { path: dir });
        }
        Ok(Folder::at(dir.clone(), dir))
    }

    /// Creates `dir` with `cur/`, `new/` and `tmp/` (as far as missing) and
    /// opens it. Outside a tree; see [`crate::Tree::create_folder`].
    pub fn create(dir: impl Into<PathBuf>) -> Result<Folder> {
        let dir = dir.into();
        for sub in ["cur", "new", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).at("creating", &path)?;
        }
        Ok(Folder::at(dir.clone(), dir))
    }

    pub(crate) fn at(dir: PathBuf, rel: PathBuf) -> Folder {
        Folder {
            dir,
            rel,
            hook: None,
        }
    }

    /// The same folder, calling `hook` before each step that changes the
    /// store (for crash and fault tests; see [`crate::step`]).
    pub fn with_step_hook(mut self, hook: StepHook) -> Folder {
        self.hook = Some(hook);
        self
    }

    pub(crate) fn hook(&self) -> Option<&StepHook> {
        self.hook.as_ref()
    }

    /// The folder's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The folder's path relative to the tree root: its identity.
    pub fn rel_path(&self) -> &Path {
        &self.rel
    }

    /// `new/` or `cur/` of this folder.
    pub fn subdir(&self, subdir: Subdir) -> PathBuf {
        self.dir.join(subdir.as_str())
    }

    /// The path of a message file.
    pub fn entry_path(&self, entry: &Entry) -> PathBuf {
        self.dir.join(entry.rel_path())
    }

    /// Lists the messages with the default [`ScanOptions`].
    pub fn scan(&self) -> Result<Listing> {
        self.scan_with(ScanOptions::default())
    }

    /// Lists the messages (see [`crate::scan`]).
    pub fn scan_with(&self, options: ScanOptions) -> Result<Listing> {
        scan::scan(&self.dir, options)
    }

    /// Removes what an unfinished delivery under `key` left in `tmp/` (a
    /// run killed between creating the file and renaming it): the retry
    /// may use another key. Returns whether there was such a file. A key
    /// that is no plain file name is refused.
    pub fn discard_unfinished(&self, key: &str) -> Result<bool> {
        let path = self.dir.join("tmp").join(key);
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::io(
                "discarding",
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a message key"),
            ));
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("discarding", path, e)),
        }
    }

    /// The current stamps of `new/` and `cur/`.
    pub fn stamps(&self) -> Result<Stamps> {
        Stamps::of(&self.dir)
    }

    /// Whether nothing changed since `stored`, a [`Listing::proof`] of an
    /// earlier run (rule 5 of [`crate::stamp`]). `false` means "scan".
    pub fn unchanged_since(&self, stored: DirTimes) -> Result<bool> {
        Ok(stamp::unchanged(&self.stamps()?, stored, SystemTime::now()))
    }

    /// Opens a message for reading. Symbolic links are refused (`O_NOFOLLOW`):
    /// a link planted in `cur/` must not make ferry upload another file.
    pub fn open_message(&self, entry: &Entry) -> Result<File> {
        let path = self.entry_path(entry);
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .at("opening", path)
    }

    /// Opens a message as CRLF for IMAP APPEND, its converted length
    /// counted first ([`CrlfReader::crlf_len`]).
    pub fn open_crlf(&self, entry: &Entry) -> Result<CrlfReader<BufReader<File>>> {
        let path = self.entry_path(entry);
        let mut file = self.open_message(entry)?;
        let len = crlf_len(BufReader::new(&file)).at("reading", &path)?;
        file.rewind().at("rewinding", &path)?;
        Ok(CrlfReader::with_len(BufReader::new(file), len))
    }

    /// The fingerprint of a message and its size in CRLF form.
    pub fn fingerprint(&self, entry: &Entry) -> Result<(Fingerprint, u64)> {
        let file = self.open_message(entry)?;
        fingerprint_reader(file).at("reading", self.entry_path(entry))
    }
}
