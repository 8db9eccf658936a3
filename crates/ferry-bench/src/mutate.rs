//! The changes made before each timed run of a change phase, on the server
//! (by a test client, straight to Dovecot) or in the local Maildir (as a
//! mail reader would): 1 % of the messages of every folder, a different 1 %
//! for every repetition. The selection is deterministic: sorted UIDs or
//! sorted file names, every 100th item from an offset that depends on the
//! repetition.

use crate::check::{local_folders, maildir_flags, message_files};
use crate::imap;
use anyhow::{Context, Result};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One in this many messages is changed: 1 %.
const EVERY: usize = 100;

/// The offset of repetition `rep` for a change of kind `salt`: consecutive
/// repetitions pick different messages.
pub fn offset(rep: u32, salt: usize) -> usize {
    (rep as usize * 37 + salt) % EVERY
}

/// Every [`EVERY`]th item, from `offset`.
pub fn every_kth<T: Clone>(items: &[T], offset: usize) -> Vec<T> {
    items.iter().skip(offset).step_by(EVERY).cloned().collect()
}

/// Toggles `\Flagged` on 1 % of each server folder; returns how many.
pub fn toggle_server_flags(addr: SocketAddr, rep: u32) -> Result<usize> {
    let mut client = imap::login(addr)?;
    let mut total = 0;
    for folder in imap::folders(&mut client)? {
        let chosen = every_kth(&imap::uids(&mut client, &folder, "ALL")?, offset(rep, 0));
        let flagged = imap::uids(&mut client, &folder, "FLAGGED")?;
        let (clear, set): (Vec<u32>, Vec<u32>) = chosen
            .iter()
            .partition(|uid| flagged.binary_search(uid).is_ok());
        if !set.is_empty() {
            client
                .add_flags(&folder, &set, &["\\Flagged"])
                .with_context(|| format!("flagging in {folder}"))?;
        }
        if !clear.is_empty() {
            client
                .remove_flags(&folder, &clear, &["\\Flagged"])
                .with_context(|| format!("unflagging in {folder}"))?;
        }
        total += chosen.len();
    }
    let _ = client.logout();
    Ok(total)
}

/// Moves 1 % of each server folder to the next folder (UID MOVE); returns
/// how many. Everything is chosen before anything moves, so no message
/// moves twice.
pub fn move_on_server(addr: SocketAddr, rep: u32) -> Result<usize> {
    let mut client = imap::login(addr)?;
    let folders = imap::folders(&mut client)?;
    let mut plan = Vec::new();
    for (i, folder) in folders.iter().enumerate() {
        let chosen = every_kth(&imap::uids(&mut client, folder, "ALL")?, offset(rep, 11));
        let target = &folders[(i + 1) % folders.len()];
        if !chosen.is_empty() && target != folder {
            plan.push((folder.clone(), chosen, target.clone()));
        }
    }
    let mut total = 0;
    for (folder, uids, target) in plan {
        client
            .move_messages(&folder, &uids, &target)
            .with_context(|| format!("UID MOVE from {folder} to {target}"))?;
        total += uids.len();
    }
    let _ = client.logout();
    Ok(total)
}

/// Toggles F on 1 % of each local folder's `cur/` files by renaming them,
/// as mutt does; returns how many.
pub fn toggle_local_flags(root: &Path, rep: u32) -> Result<usize> {
    let mut total = 0;
    for dir in local_folders(root)?.values() {
        for file in every_kth(&cur_files(dir)?, offset(rep, 23)) {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let renamed = file.with_file_name(toggled_name(&name));
            rename(&file, &renamed)?;
            total += 1;
        }
    }
    Ok(total)
}

/// Deletes 1 % of each local folder's files; returns how many.
pub fn delete_local(root: &Path, rep: u32) -> Result<usize> {
    let mut total = 0;
    for dir in local_folders(root)?.values() {
        for file in every_kth(&message_files(dir)?, offset(rep, 50)) {
            fs::remove_file(&file).with_context(|| format!("deleting {}", file.display()))?;
            total += 1;
        }
    }
    Ok(total)
}

/// Moves 1 % of each local folder's `cur/` files into the next folder's
/// `cur/` (a rename, keeping the name but for a per-folder `,U=` UID);
/// returns how many.
pub fn move_local(root: &Path, rep: u32) -> Result<usize> {
    let folders: Vec<PathBuf> = local_folders(root)?.into_values().collect();
    let mut plan = Vec::new();
    for (i, dir) in folders.iter().enumerate() {
        let target = folders[(i + 1) % folders.len()].join("cur");
        for file in every_kth(&cur_files(dir)?, offset(rep, 77)) {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            plan.push((file.clone(), target.join(moved_name(&name))));
        }
    }
    for (from, to) in &plan {
        rename(from, to)?;
    }
    Ok(plan.len())
}

fn cur_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(message_files(dir)?
        .into_iter()
        .filter(|path| path.parent().is_some_and(|p| p.ends_with("cur")))
        .collect())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))
}

/// The file name with the F info letter toggled (letters kept sorted).
pub fn toggled_name(name: &str) -> String {
    let flags = maildir_flags(Path::new(name));
    let base = name.split_once(":2,").map_or(name, |(base, _)| base);
    let mut letters: Vec<char> = if flags.contains('F') {
        flags.chars().filter(|&c| c != 'F').collect()
    } else {
        flags.chars().chain(['F']).collect()
    };
    letters.sort_unstable();
    letters.dedup();
    format!("{base}:2,{}", letters.into_iter().collect::<String>())
}

/// The file name without a `,U=<uid>` field: mbsync and OfflineIMAP keep
/// the server UID of the *source* folder there, which means nothing (or
/// another message) in the target folder; tools that move Maildir files for
/// them (afew, notmuch scripts) strip it.
pub fn moved_name(name: &str) -> String {
    let (base, info) = match name.split_once(":2,") {
        Some((base, flags)) => (base, format!(":2,{flags}")),
        None => (name, String::new()),
    };
    let kept: Vec<&str> = base
        .split(',')
        .enumerate()
        .filter(|(i, field)| *i == 0 || !is_uid_field(field))
        .map(|(_, field)| field)
        .collect();
    format!("{}{info}", kept.join(","))
}

fn is_uid_field(field: &str) -> bool {
    field
        .strip_prefix("U=")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_one_in_a_hundred() {
        let items: Vec<u32> = (1..=250).collect();
        assert_eq!(every_kth(&items, 0), vec![1, 101, 201]);
        assert_eq!(every_kth(&items, 60), vec![61, 161]);
        assert!(every_kth(&items[..10], 50).is_empty());
        let offsets: Vec<usize> = (0..10).map(|rep| offset(rep, 0)).collect();
        let mut distinct = offsets.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), offsets.len());
    }

    #[test]
    fn toggles_f() {
        assert_eq!(toggled_name("1.a,S=5:2,RS"), "1.a,S=5:2,FRS");
        assert_eq!(toggled_name("1.a,S=5:2,FRS"), "1.a,S=5:2,RS");
        assert_eq!(toggled_name("1.a"), "1.a:2,F");
        assert_eq!(toggled_name("1.a:2,"), "1.a:2,F");
    }

    #[test]
    fn strips_per_folder_uids() {
        assert_eq!(moved_name("1.2.host,U=17:2,S"), "1.2.host:2,S");
        assert_eq!(
            moved_name("1_0.5.h,U=3,FMD5=abc:2,FS"),
            "1_0.5.h,FMD5=abc:2,FS"
        );
        assert_eq!(
            moved_name("1.M2P3.x,S=10,W=12:2,S"),
            "1.M2P3.x,S=10,W=12:2,S"
        );
        assert_eq!(moved_name("U=5"), "U=5");
    }

    #[test]
    fn local_changes() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for folder in ["INBOX", "Archive"] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(dir.path().join(folder).join(sub))?;
            }
            for i in 0..150 {
                let name = format!("{i:03}.x,U={i}:2,S");
                fs::write(dir.path().join(folder).join("cur").join(name), "m")?;
            }
        }
        assert_eq!(toggle_local_flags(dir.path(), 0)?, 4);
        let counts = crate::check::local_counts(dir.path())?;
        assert_eq!(counts["INBOX"], (150, 150, 2));
        assert_eq!(move_local(dir.path(), 0)?, 2);
        assert!(dir.path().join("INBOX/cur/077.x:2,S").exists());
        assert_eq!(delete_local(dir.path(), 0)?, 2);
        let counts = crate::check::local_counts(dir.path())?;
        assert_eq!(counts["INBOX"].0 + counts["Archive"].0, 298);
        Ok(())
    }
}
