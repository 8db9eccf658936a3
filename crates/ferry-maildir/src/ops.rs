//! Changing messages: flags, moves between folders, removal.
//!
//! Every change is one rename or unlink, never replacing an existing file
//! (`renameat2(RENAME_NOREPLACE)`; where the file system lacks it, a check
//! and a plain rename). A source that vanished (a mail reader renamed or
//! removed it meanwhile) gives [`Error::NotFound`]: rescan and decide again.
//! The result comes as [`Unsynced`]: the change is durable once the
//! directories it touched are fsynced.
//!
//! Moves keep the key and the info and stay in the same subdirectory
//! (`cur/` to `cur/`, `new/` to `new/`). Across file systems (`EXDEV`) a move
//! becomes a copy into the target's `tmp/`, fsync, rename into place, fsync
//! of the target directory, and only then the unlink of the source: a crash
//! in between leaves the message in both folders under the same key (the
//! engine pairs them by key), never in neither.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ferry_core::Flags;
use filetime::FileTime;

use crate::durable::{self, DirtyDirs, Unsynced};
use crate::error::{Context, Error, Result};
use crate::folder::Folder;
use crate::name::MaildirName;
use crate::scan::{Entry, Subdir};
use crate::step::{self, Step, StepHook};

impl Folder {
    /// Gives the message `entry` the flags `flags`: a rename within `cur/`,
    /// or from `new/` into `cur/`. Info letters that are not flags are
    /// kept. Nothing is done when the name would not change (a message in
    /// `new/` keeps its place while its flags are unchanged).
    pub fn set_flags(&self, entry: &Entry, flags: &Flags) -> Result<Unsynced<Entry>> {
        let target = Entry::new(
            Subdir::Cur,
            MaildirName::with_flags(entry.key(), flags, entry.info()),
        );
        let unchanged = match entry.subdir() {
            Subdir::Cur => target == *entry,
            Subdir::New => entry.flags() == *flags,
        };
        if unchanged {
            return Ok(Unsynced::new(entry.clone(), DirtyDirs::new()));
        }
        let (from, to) = (self.entry_path(entry), self.entry_path(&target));
        step::run(self.hook(), Step::Rename, &to, || {
            rename_noreplace(&from, &to)
        })
        .map_err(|e| rename_error(e, &from, &to))?;
        let mut dirs = DirtyDirs::one(self.subdir(Subdir::Cur), self.hook());
        dirs.add(self.subdir(entry.subdir()), self.hook());
        Ok(Unsynced::new(target, dirs))
    }

    /// Moves the message `entry` into folder `to`, keeping its name.
    pub fn move_to(&self, entry: &Entry, to: &Folder) -> Result<Unsynced<Entry>> {
        let (from, dest) = (self.entry_path(entry), to.entry_path(entry));
        let mut dirs = DirtyDirs::one(self.subdir(entry.subdir()), self.hook());
        if from == dest {
            return Ok(Unsynced::new(entry.clone(), DirtyDirs::new()));
        }
        match step::run(self.hook(), Step::Rename, &dest, || {
            rename_noreplace(&from, &dest)
        }) {
            Ok(()) => dirs.add(to.subdir(entry.subdir()), self.hook()),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                copy_across(&from, &dest, to, self.hook())?;
                step::run(self.hook(), Step::Unlink, &from, || fs::remove_file(&from))
                    .at("removing the moved", &from)?;
            }
            Err(e) => return Err(rename_error(e, &from, &dest)),
        }
        Ok(Unsynced::new(entry.clone(), dirs))
    }

    /// Removes the message `entry` for good.
    pub fn remove(&self, entry: &Entry) -> Result<Unsynced<()>> {
        let path = self.entry_path(entry);
        step::run(self.hook(), Step::Unlink, &path, || fs::remove_file(&path))
            .at("removing", &path)?;
        let dirs = DirtyDirs::one(self.subdir(entry.subdir()), self.hook());
        Ok(Unsynced::new((), dirs))
    }
}

/// A vanished source is [`Error::NotFound`] on the source, an existing
/// target [`Error::Exists`] on the target.
fn rename_error(e: io::Error, from: &Path, to: &Path) -> Error {
    match e.kind() {
        io::ErrorKind::AlreadyExists => Error::io("renaming onto", to, e),
        _ => Error::io("renaming", from, e),
    }
}

/// Renames without replacing an existing `to`.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == Errno::INVAL || e == Errno::NOSYS || e == Errno::OPNOTSUPP => {
            // No RENAME_NOREPLACE here (some network and FUSE file systems).
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// The EXDEV fallback: copy into `to`'s `tmp/`, fsync, rename into place,
/// fsync the target directory. The source is still there afterwards.
fn copy_across(from: &Path, dest: &Path, to: &Folder, hook: Option<&StepHook>) -> Result<()> {
    let name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let tmp = to.path().join("tmp").join(name);
    let result = copy_to_tmp(from, &tmp, hook).and_then(|()| {
        step::run(hook, Step::Rename, dest, || rename_noreplace(&tmp, dest))
            .map_err(|e| rename_error(e, &tmp, dest))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    let dir = dest.parent().unwrap_or(to.path());
    durable::sync_dir(dir, hook)
}

fn copy_to_tmp(from: &Path, tmp: &Path, hook: Option<&StepHook>) -> Result<()> {
    let mut source = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .at("opening", from)?;
    let mtime = FileTime::from_last_modification_time(&source.metadata().at("reading", from)?);
    let mut file = step::run(hook, Step::CreateTmp, tmp, || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(tmp)
    })
    .at("creating", tmp)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", from, e)),
        };
        step::run(hook, Step::Write, tmp, || file.write_all(&buf[..n])).at("writing", tmp)?;
    }
    step::run(hook, Step::SetMtime, tmp, || {
        filetime::set_file_handle_times(&file, None, Some(mtime))
    })
    .at("setting the mtime of", tmp)?;
    step::run(hook, Step::SyncFile, tmp, || file.sync_all()).at("fsyncing", tmp)?;
    drop::<File>(file);
    Ok(())
}
