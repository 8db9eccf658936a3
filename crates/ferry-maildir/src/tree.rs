//! A Maildir tree: the root of an account's folders, in one [`Layout`].
//!
//! The root is canonicalised when the tree is opened, and nothing leaves it:
//! a symbolic link on the way to a folder (or a folder's `cur/`, `new/`,
//! `tmp/`) that resolves outside the root makes [`Tree::folder`] and
//! [`Tree::create_folder`] fail with [`Error::OutsideRoot`], and
//! [`Tree::list`] skip it with a warning. Links that stay inside the root
//! are followed by the listing only when their target is not listed under
//! its own name already, so no directory is ever two folders. (A link could
//! be swapped between the check and the use; the threat guarded against is
//! hostile *names* from a server, which are refused before any path is
//! built; the local user owns the tree.)
//!
//! Folders are made, renamed and removed here ([`Tree::create_folder`],
//! [`Tree::rename_folder`], [`Tree::remove_folder`]), each change fsynced
//! before it returns; removal takes only an empty folder and never
//! anything but the folder's own directories.
//!
//! [`scan_all`] scans many folders in parallel (rayon).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::durable::DirtyDirs;
use crate::error::{Context, Error, Result};
use crate::folder::Folder;
use crate::layout::{FolderName, Layout, NameError};
use crate::ops::rename_noreplace;
use crate::scan::Listing;

/// The Maildir root of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    root: PathBuf,
    layout: Layout,
}

/// What [`Tree::list`] found.
#[derive(Debug, Clone, Default)]
pub struct TreeListing {
    /// The folders, sorted by relative path.
    pub folders: Vec<(FolderName, Folder)>,
    /// Directories that look like folders (they have `cur/`) but were not
    /// taken, and why: names ferry would not write, links out of the root,
    /// aliases of another folder, hidden directories.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Tree {
    /// Opens an existing root.
    pub fn open(root: impl AsRef<Path>, layout: Layout) -> Result<Tree> {
        let given = root.as_ref();
        let root = fs::canonicalize(given).at("opening the Maildir root", given)?;
        if !root.is_dir() {
            return Err(Error::io(
                "opening the Maildir root",
                root,
                std::io::Error::from(std::io::ErrorKind::NotADirectory),
            ));
        }
        Ok(Tree { root, layout })
    }

    /// Creates the root (and its parents) if missing, then opens it.
    pub fn create(root: impl AsRef<Path>, layout: Layout) -> Result<Tree> {
        let root = root.as_ref();
        fs::create_dir_all(root).at("creating the Maildir root", root)?;
        Tree::open(root, layout)
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The directory of `name` (which need not exist).
    pub fn path_of(&self, name: &FolderName) -> Result<PathBuf, NameError> {
        Ok(self.root.join(self.layout.local_path(name)?))
    }

    /// Opens the existing folder `name`.
    pub fn folder(&self, name: &FolderName) -> Result<Folder> {
        let rel = self.layout.local_path(name)?;
        let dir = self.root.join(&rel);
        for sub in ["cur", "new", "tmp"] {
            self.check_inside(&dir.join(sub))?;
        }
        if !dir.join("cur").is_dir() {
            return Err(Error::NotAFolder { path: dir });
        }
        Ok(Folder::at(dir, rel))
    }

    /// Creates the folder `name` (its parents as plain directories, and
    /// `cur/`, `new/`, `tmp/`; for maildir++ subfolders also the empty
    /// `maildirfolder` file Courier and Dovecot expect), never through a
    /// link out of the root, and fsyncs what it created.
    pub fn create_folder(&self, name: &FolderName) -> Result<Folder> {
        let rel = self.layout.local_path(name)?;
        let mut dir = self.root.clone();
        let mut created = Vec::new();
        for component in rel.components() {
            dir.push(component);
            if self.make_dir(&dir)? {
                created.push(dir.clone());
            }
        }
        for sub in ["cur", "new", "tmp"] {
            self.make_dir(&dir.join(sub))?;
        }
        if self.layout == Layout::MaildirPlusPlus && !name.is_inbox() {
            let marker = dir.join("maildirfolder");
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&marker)
                .at("creating", &marker)?;
        }
        let mut dirty = DirtyDirs::new();
        dirty.add(dir.clone(), None);
        for made in &created {
            dirty.add(made.parent().unwrap_or(&self.root).to_path_buf(), None);
        }
        dirty.sync()?;
        Ok(Folder::at(dir, rel))
    }

    /// Removes the folder `name`, which must hold nothing, not even a file
    /// in `tmp/` ([`Error::NotEmpty`] otherwise, and nothing is removed).
    ///
    /// Its `tmp/`, `new/` and `cur/` go in that order, each by `rmdir`,
    /// which fails on anything that arrived meanwhile; then the ones already
    /// removed are made again, so the folder stays whole. Last, the
    /// maildir++ `maildirfolder` marker and the directory itself go, when
    /// that is empty. Nothing else is ever removed: an `fs` folder's
    /// subfolders and other programs' files (`dovecot-uidlist`) stay, in a
    /// directory that is no longer a folder (it has no `cur/`).
    ///
    /// A folder already gone is no error, and a removal cut short is
    /// completed by the next call. The maildir++ INBOX is the root and is
    /// refused ([`Error::Root`]).
    pub fn remove_folder(&self, name: &FolderName) -> Result<()> {
        let rel = self.layout.local_path(name)?;
        let dir = self.root.join(&rel);
        if rel.as_os_str().is_empty() {
            return Err(Error::Root {
                op: "removing",
                path: dir,
            });
        }
        self.check_inside(&dir)?;
        for sub in ["cur", "new", "tmp"] {
            self.check_inside(&dir.join(sub))?;
            check_empty(&dir.join(sub))?;
        }
        remove_subdirs(&dir)?;
        if self.layout == Layout::MaildirPlusPlus {
            let marker = dir.join("maildirfolder");
            match fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("removing", marker, e));
                }
                _ => {}
            }
        }
        let mut dirty = DirtyDirs::new();
        match fs::remove_dir(&dir) {
            Ok(()) => dirty.add(self.parent_of(&dir), None),
            Err(e) if is_not_empty(&e) => {
                tracing::debug!(dir = %dir.display(), "left in place: not empty");
                dirty.add(dir.clone(), None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", dir, e)),
        }
        dirty.sync()
    }

    /// Renames the folder `from` to `to`: one rename of its directory, which
    /// never replaces anything (an existing `to`, even an empty directory,
    /// is [`Error::Exists`]). Missing parents of `to` are made as plain
    /// directories, never through a link out of the root. In the `fs`
    /// layout subfolders are inside the directory and move with it; in
    /// maildir++ each folder is a directory of its own and only `from`
    /// moves. The maildir++ INBOX is the root and is refused on either
    /// side ([`Error::Root`]). Both parent directories are fsynced.
    pub fn rename_folder(&self, from: &FolderName, to: &FolderName) -> Result<Folder> {
        let source = self.folder(from)?;
        let to_rel = self.layout.local_path(to)?;
        for rel in [source.rel_path(), to_rel.as_path()] {
            if rel.as_os_str().is_empty() {
                let path = self.root.clone();
                return Err(Error::Root {
                    op: "renaming",
                    path,
                });
            }
        }
        let dest = self.root.join(&to_rel);
        self.check_inside(&dest)?;
        let mut dirty = DirtyDirs::new();
        let mut dir = self.root.clone();
        for component in to_rel.parent().into_iter().flat_map(Path::components) {
            dir.push(component);
            if self.make_dir(&dir)? {
                dirty.add(self.parent_of(&dir), None);
            }
        }
        rename_noreplace(source.path(), &dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::io("renaming onto", &dest, e),
            _ => Error::io("renaming", source.path(), e),
        })?;
        dirty.add(self.parent_of(source.path()), None);
        dirty.add(self.parent_of(&dest), None);
        dirty.sync()?;
        Ok(Folder::at(dest, to_rel))
    }

    /// The parent of a directory inside the root.
    fn parent_of(&self, dir: &Path) -> PathBuf {
        dir.parent().unwrap_or(&self.root).to_path_buf()
    }

    /// Makes one directory, refusing an existing link out of the root;
    /// returns whether it was created.
    fn make_dir(&self, dir: &Path) -> Result<bool> {
        match fs::create_dir(dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.check_inside(dir)?;
                if dir.is_dir() {
                    Ok(false)
                } else {
                    Err(Error::io(
                        "creating",
                        dir,
                        std::io::Error::from(std::io::ErrorKind::NotADirectory),
                    ))
                }
            }
            Err(e) => Err(Error::io("creating", dir, e)),
        }
    }

    /// Refuses a path whose resolution leaves the root. A missing path
    /// passes (there is nothing to follow).
    fn check_inside(&self, path: &Path) -> Result<()> {
        match fs::canonicalize(path) {
            Ok(real) if real.starts_with(&self.root) => Ok(()),
            Ok(_) => Err(Error::OutsideRoot {
                path: path.to_path_buf(),
                root: self.root.clone(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("resolving", path, e)),
        }
    }

    /// Lists every folder of the tree.
    pub fn list(&self) -> Result<TreeListing> {
        let mut walk = Walk {
            tree: self,
            found: TreeListing::default(),
            seen: HashSet::new(),
            links: Vec::new(),
        };
        walk.dir(PathBuf::new(), self.root.clone())?;
        let mut links = std::mem::take(&mut walk.links);
        while let Some((rel, real)) = links.pop() {
            walk.link(rel, real)?;
            links.append(&mut walk.links);
        }
        let mut found = walk.found;
        found
            .folders
            .sort_by(|a, b| a.1.rel_path().cmp(b.1.rel_path()));
        for (path, why) in &found.skipped {
            tracing::warn!(path = %path.display(), "not a folder: {why}");
        }
        Ok(found)
    }
}

/// Refuses a directory with anything in it; a missing one is empty.
fn check_empty(dir: &Path) -> Result<()> {
    let mut items = match fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    match items.next() {
        None => Ok(()),
        Some(item) => Err(Error::NotEmpty {
            path: dir.to_path_buf(),
            entry: item.at("listing", dir)?.file_name(),
        }),
    }
}

/// Removes `tmp/`, `new/` and `cur/` of `dir` (missing ones are done);
/// on failure makes the removed ones again.
fn remove_subdirs(dir: &Path) -> Result<()> {
    let mut removed: Vec<PathBuf> = Vec::new();
    for sub in ["tmp", "new", "cur"] {
        let path = dir.join(sub);
        let failure = match fs::remove_dir(&path) {
            Ok(()) => {
                removed.push(path);
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if is_not_empty(&e) => check_empty(&path)
                .err()
                .unwrap_or_else(|| Error::io("removing", &path, e)),
            Err(e) => Error::io("removing", &path, e),
        };
        for made in removed.iter().rev() {
            if let Err(e) = fs::create_dir(made) {
                tracing::warn!(dir = %made.display(), "could not make again: {e}");
            }
        }
        return Err(failure);
    }
    Ok(())
}

/// Whether `rmdir` failed because the directory is not empty.
fn is_not_empty(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::DirectoryNotEmpty
        || matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
}

/// The state of one [`Tree::list`].
struct Walk<'a> {
    tree: &'a Tree,
    found: TreeListing,
    /// Real directories already walked.
    seen: HashSet<PathBuf>,
    /// Links to directories, followed after every real directory.
    links: Vec<(PathBuf, PathBuf)>,
}

impl Walk<'_> {
    /// Walks the real directory `real`, known as `rel` under the root.
    fn dir(&mut self, rel: PathBuf, real: PathBuf) -> Result<()> {
        self.seen.insert(real.clone());
        let mut children = Vec::new();
        let mut has_cur = false;
        for item in fs::read_dir(&real).at("listing", &real)? {
            let item = item.at("listing", &real)?;
            let name = item.file_name();
            let kind = item.file_type().at("listing", item.path())?;
            if name == "cur" && (kind.is_dir() || kind.is_symlink()) {
                has_cur = true;
            }
            if kind.is_dir() || kind.is_symlink() {
                children.push((name, kind.is_symlink()));
            }
        }
        if has_cur {
            self.folder(&rel, &real);
        }
        children.sort();
        for (name, is_link) in children {
            self.child(&rel, &real, &name, is_link)?;
        }
        Ok(())
    }

    /// Decides about one subdirectory (or link) of a walked directory.
    fn child(
        &mut self,
        rel: &Path,
        real: &Path,
        name: &std::ffi::OsStr,
        is_link: bool,
    ) -> Result<()> {
        let (child_rel, child_real) = (rel.join(name), real.join(name));
        let hidden = name.to_string_lossy().starts_with('.');
        let top = rel.as_os_str().is_empty();
        let descend = match self.tree.layout {
            Layout::Fs => !hidden && !["cur", "new", "tmp"].iter().any(|s| name == *s),
            Layout::MaildirPlusPlus => top && hidden,
        };
        if !descend {
            if hidden && top && self.tree.layout == Layout::Fs && child_real.join("cur").is_dir() {
                self.skip(
                    child_rel,
                    "a hidden directory (a maildir++ folder? check the layout)",
                );
            }
            return Ok(());
        }
        if is_link {
            match fs::canonicalize(&child_real) {
                Ok(target) if target.starts_with(&self.tree.root) && target.is_dir() => {
                    self.links.push((child_rel, target));
                }
                Ok(_) if child_real.join("cur").exists() => {
                    self.skip(child_rel, "a link that leads outside the Maildir root")
                }
                Ok(_) => {}
                // Its folder (if it was one) counts as vanished, never as
                // emptied: see the folder plan.
                Err(_) => self.skip(
                    child_rel,
                    "a link whose target is missing (an unmounted disk?)",
                ),
            }
            return Ok(());
        }
        match self.tree.layout {
            Layout::Fs => self.dir(child_rel, child_real),
            Layout::MaildirPlusPlus => {
                self.seen.insert(child_real.clone());
                if child_real.join("cur").is_dir() {
                    self.folder(&child_rel, &child_real);
                }
                Ok(())
            }
        }
    }

    /// Follows a link inside the root, unless its target was walked.
    fn link(&mut self, rel: PathBuf, target: PathBuf) -> Result<()> {
        if self.seen.contains(&target) {
            if target.join("cur").is_dir() {
                self.skip(rel, "a link to a directory listed under another name");
            }
            return Ok(());
        }
        match self.tree.layout {
            Layout::Fs => self.dir(rel, target),
            Layout::MaildirPlusPlus => {
                self.seen.insert(target.clone());
                if target.join("cur").is_dir() {
                    self.folder(&rel, &target);
                }
                Ok(())
            }
        }
    }

    fn folder(&mut self, rel: &Path, real: &Path) {
        if self.tree.layout == Layout::Fs && rel.as_os_str().is_empty() {
            self.skip(
                rel.to_path_buf(),
                "the root has cur/, but in the fs layout INBOX is INBOX/",
            );
            return;
        }
        let inside = ["cur", "new", "tmp"]
            .iter()
            .all(|s| match fs::canonicalize(real.join(s)) {
                Ok(p) => p.starts_with(&self.tree.root),
                Err(_) => true,
            });
        if !inside {
            self.skip(
                rel.to_path_buf(),
                "cur/, new/ or tmp/ leads outside the Maildir root",
            );
            return;
        }
        match self.tree.layout.folder_name(rel) {
            Ok(name) => {
                let folder = Folder::at(real.to_path_buf(), rel.to_path_buf());
                self.found.folders.push((name, folder));
            }
            Err(e) => self.skip(rel.to_path_buf(), &e.problem.to_string()),
        }
    }

    fn skip(&mut self, rel: PathBuf, why: &str) {
        self.found.skipped.push((rel, why.to_string()));
    }
}

/// Scans `folders` in parallel; the results come in the same order.
pub fn scan_all(folders: &[Folder]) -> Vec<(&Folder, Result<Listing>)> {
    folders.par_iter().map(|f| (f, f.scan())).collect()
}
