//! The corpus: its spec for a size, the cache it is generated into once, and
//! the hard-linked copies each server starts from.
//!
//! Hard links are safe because Dovecot never rewrites a Maildir message
//! file: it only renames (flags, `new/` to `cur/`) and unlinks. Its index
//! files are created in each copy's own directories, never in the cache.

use crate::cli::Size;
use anyhow::{Context, Result};
use ferry_testkit::corpus::{self, CorpusSpec, MaildirLayout, Sizes};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The file that marks a complete cache.
const COMPLETE: &str = ".complete";

/// Number of folders of the "100k" corpus.
const MANY_FOLDERS: usize = 50;

/// The corpus of `size`.
pub fn spec(size: &Size, seed: u64) -> CorpusSpec {
    if !size.many_small {
        return CorpusSpec::new(seed, size.count);
    }
    CorpusSpec {
        seed,
        count: size.count,
        sizes: Sizes::Small,
        folders: many_folders(),
    }
}

/// INBOX, Archive and Sent plus 47 flat mailing-list folders of uneven
/// weight: 50 folders.
fn many_folders() -> Vec<(String, u32)> {
    let mut folders = vec![
        ("INBOX".to_owned(), 20),
        ("Archive".to_owned(), 20),
        ("Sent".to_owned(), 5),
    ];
    for n in 1..=MANY_FOLDERS - folders.len() {
        let weight = 1 + u32::try_from(n % 4).unwrap_or(0);
        folders.push((format!("Lists-{n:02}"), weight));
    }
    folders
}

/// A short description of the corpus, e.g. "20000 realistic messages in 3
/// folders".
pub fn describe(spec: &CorpusSpec) -> String {
    let kind = match spec.sizes {
        Sizes::Realistic => "realistic",
        Sizes::Small => "small (1-3 KiB)",
        Sizes::Fixed(_) => "fixed-size",
    };
    format!(
        "{} {kind} messages in {} folders, seed {}",
        spec.count,
        spec.folders.len(),
        spec.seed
    )
}

/// The server Maildir (Maildir++) of `spec` under `work`, generated unless a
/// complete one is there, and a note on its size.
pub fn ensure(work: &Path, spec: &CorpusSpec) -> Result<(PathBuf, String)> {
    let kind = if spec.sizes == Sizes::Small {
        "small"
    } else {
        "realistic"
    };
    let dir = work.join("corpus").join(format!(
        "{}-{kind}-{}f-seed{}",
        spec.count,
        spec.folders.len(),
        spec.seed
    ));
    let maildir = dir.join("Maildir");
    if let Ok(note) = fs::read_to_string(dir.join(COMPLETE)) {
        println!("# corpus: {} (cached)", dir.display());
        return Ok((maildir, note.trim().to_owned()));
    }
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let started = Instant::now();
    let summary = corpus::write_maildir(spec, &maildir, MaildirLayout::MaildirPlusPlus)
        .with_context(|| format!("writing the corpus into {}", maildir.display()))?;
    let note = format!(
        "{} messages, {:.1} MiB, generated in {:.1} s\n",
        summary.count,
        summary.bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    fs::write(dir.join(COMPLETE), &note).context("marking the corpus complete")?;
    print!("# corpus: {}: {note}", dir.display());
    Ok((maildir, note.trim().to_owned()))
}

/// Copies the tree `from` into `to` (which may exist): directories are
/// created, files hard-linked (copied when `to` is on another file system).
pub fn link_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_tree(&entry.path(), &target)?;
        } else {
            link_or_copy(&entry.path(), &target)?;
        }
    }
    Ok(())
}

fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => fs::copy(from, to).map(drop),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_100k_corpus_has_50_folders() {
        let size = Size::parse("100k").expect("size");
        let spec = spec(&size, 42);
        assert_eq!(spec.folders.len(), 50);
        assert_eq!(spec.sizes, Sizes::Small);
        assert_eq!(spec.count, 100_000);
        assert!(
            spec.folders
                .iter()
                .all(|(name, w)| *w > 0 && !name.contains('.'))
        );
        let twenty = spec_for("20k");
        assert_eq!((twenty.count, twenty.folders.len()), (20_000, 3));
        assert_eq!(
            describe(&twenty),
            "20000 realistic messages in 3 folders, seed 42"
        );
    }

    fn spec_for(label: &str) -> CorpusSpec {
        spec(&Size::parse(label).expect("size"), 42)
    }

    #[test]
    fn linked_copies_share_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let from = dir.path().join("a");
        fs::create_dir_all(from.join("cur"))?;
        fs::write(from.join("cur").join("m1:2,S"), "x")?;
        let to = dir.path().join("b");
        link_tree(&from, &to)?;
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| fs::metadata(p).map(|m| m.ino());
        assert_eq!(ino(&from.join("cur/m1:2,S"))?, ino(&to.join("cur/m1:2,S"))?);
        Ok(())
    }
}
