//! The check after every timed run: per folder, the server and the local
//! Maildir hold the same number of messages, of `\Seen` ones and of
//! `\Flagged` ones. Also the map from folder names to local directories,
//! which the local changes use.

use crate::imap;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// (messages, \Seen, \Flagged) per folder.
pub type Counts = BTreeMap<String, (u64, u64, u64)>;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Both sides agree.
    pub ok: bool,
    /// Totals, and every folder that differs.
    pub detail: String,
}

/// Compares the server (at `addr`) with the Maildir tree at `root`.
pub fn check(addr: SocketAddr, root: &Path) -> Result<Verdict> {
    let server = server_counts(addr)?;
    let local = local_counts(root)?;
    Ok(compare(&server, &local))
}

/// The server's counts, folder by folder.
pub fn server_counts(addr: SocketAddr) -> Result<Counts> {
    let mut client = imap::login(addr)?;
    let mut counts = Counts::new();
    for folder in imap::folders(&mut client)? {
        let folder_counts = imap::counts(&mut client, &folder)?;
        counts.insert(folder, folder_counts);
    }
    let _ = client.logout();
    Ok(counts)
}

/// The local counts, folder by folder.
pub fn local_counts(root: &Path) -> Result<Counts> {
    let mut counts = Counts::new();
    for (name, dir) in local_folders(root)? {
        let mut folder = (0, 0, 0);
        for file in message_files(&dir)? {
            let flags = maildir_flags(&file);
            folder.0 += 1;
            folder.1 += u64::from(flags.contains('S'));
            folder.2 += u64::from(flags.contains('F'));
        }
        counts.insert(name, folder);
    }
    Ok(counts)
}

/// Every Maildir folder under `root`, by IMAP name: a directory holding
/// `cur/` and `new/`. Handles the `fs` layouts (ferry, mbsync,
/// OfflineIMAP: `root/INBOX`, `root/Archive`) and Maildir++ (interimap's
/// local Dovecot: `root` is INBOX, `root/.A.B` is `A/B`).
pub fn local_folders(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut folders = BTreeMap::new();
    collect_folders(root, root, &mut folders)?;
    Ok(folders)
}

fn collect_folders(root: &Path, dir: &Path, folders: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    if dir.join("cur").is_dir() && dir.join("new").is_dir() {
        folders.insert(folder_name(root, dir), dir.to_path_buf());
    }
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        if matches!(name.to_str(), Some("cur" | "new" | "tmp")) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_folders(root, &entry.path(), folders)?;
        }
    }
    Ok(())
}

/// The IMAP name of the Maildir folder `dir` under `root`.
pub fn folder_name(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir).to_string_lossy();
    if relative.is_empty() {
        return "INBOX".to_owned();
    }
    match relative.strip_prefix('.') {
        Some(plusplus) => plusplus.replace('.', "/"),
        None => relative.into_owned(),
    }
}

/// The message files of a folder (`cur/` and `new/`, no dot files), as
/// paths.
pub fn message_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let path = dir.join(sub);
        let entries = fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            if !entry.file_name().to_string_lossy().starts_with('.') {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The info letters of a Maildir file name (after `:2,`).
pub fn maildir_flags(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.split_once(":2,")
        .map(|(_, flags)| flags.to_owned())
        .unwrap_or_default()
}

/// Every server folder must match; a local folder the server lacks must be
/// empty.
pub fn compare(server: &Counts, local: &Counts) -> Verdict {
    let total = |counts: &Counts| {
        counts
            .values()
            .fold((0, 0, 0), |(a, b, c), (x, y, z)| (a + x, b + y, c + z))
    };
    let mut differences = Vec::new();
    for (folder, counts) in server {
        match local.get(folder) {
            Some(found) if found == counts => {}
            found => differences.push(format!("{folder}: server {counts:?} local {found:?}")),
        }
    }
    for (folder, counts) in local {
        if !server.contains_key(folder) && counts.0 > 0 {
            differences.push(format!("{folder}: only local {counts:?}"));
        }
    }
    let (s, l) = (total(server), total(local));
    let mut detail = format!("server(msgs,seen,flagged)={s:?} local={l:?}");
    if !differences.is_empty() {
        detail.push_str("; ");
        detail.push_str(&differences.join("; "));
    }
    Verdict {
        ok: differences.is_empty(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(entries: &[(&str, (u64, u64, u64))]) -> Counts {
        entries.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn compares_per_folder() {
        let server = counts(&[("INBOX", (10, 8, 1)), ("Sent", (2, 2, 0))]);
        assert!(compare(&server, &server).ok);
        let local = counts(&[("INBOX", (10, 8, 2)), ("Sent", (2, 2, 0))]);
        let verdict = compare(&server, &local);
        assert!(!verdict.ok);
        assert!(
            verdict
                .detail
                .contains("INBOX: server (10, 8, 1) local Some((10, 8, 2))")
        );
        let missing = counts(&[("INBOX", (10, 8, 1))]);
        assert!(!compare(&server, &missing).ok);
        let extra = counts(&[("INBOX", (10, 8, 1)), ("Sent", (2, 2, 0)), ("X", (0, 0, 0))]);
        assert!(compare(&server, &extra).ok);
        let extra_mail = counts(&[("INBOX", (10, 8, 1)), ("Sent", (2, 2, 0)), ("X", (1, 0, 0))]);
        assert!(!compare(&server, &extra_mail).ok);
    }

    #[test]
    fn names_of_both_layouts() {
        let root = Path::new("/m");
        assert_eq!(folder_name(root, Path::new("/m")), "INBOX");
        assert_eq!(folder_name(root, Path::new("/m/INBOX")), "INBOX");
        assert_eq!(folder_name(root, Path::new("/m/.Lists.rust")), "Lists/rust");
        assert_eq!(folder_name(root, Path::new("/m/Archive")), "Archive");
    }

    #[test]
    fn counts_a_maildir() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for (folder, sub, name) in [
            ("INBOX", "cur", "1.a:2,FS"),
            ("INBOX", "cur", "2.b:2,S"),
            ("INBOX", "new", "3.c"),
            ("INBOX", "cur", ".hidden"),
            ("Archive", "cur", "4.d:2,RS"),
        ] {
            for s in ["cur", "new", "tmp"] {
                fs::create_dir_all(dir.path().join(folder).join(s))?;
            }
            fs::write(dir.path().join(folder).join(sub).join(name), "x")?;
        }
        let local = local_counts(dir.path())?;
        assert_eq!(
            local,
            counts(&[("INBOX", (3, 2, 1)), ("Archive", (1, 1, 0))])
        );
        Ok(())
    }
}
