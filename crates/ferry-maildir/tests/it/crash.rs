//! Crash safety: a child process runs a sequence of operations and kills
//! itself (SIGKILL) before step N; for every N, what is left on disk must be
//! whole: no partial file outside `tmp/`, every message either fully there
//! (exactly once) or absent, as the steps done so far say.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ferry_core::Flags;
use ferry_maildir::crlf::to_lf;
use ferry_maildir::{Folder, NewMessage, Step, StepHook};

use crate::common::{message, message_files};

const ABORT: &str = "FERRY_MAILDIR_ABORT_AFTER_STEP";
const DIR: &str = "FERRY_MAILDIR_CRASH_DIR";
const EXDEV: &str = "FERRY_MAILDIR_CRASH_EXDEV";
const M1: &str = "1700000000.M1P1Q1.crash";
const M2: &str = "1700000000.M2P1Q2.crash";

fn m1() -> Vec<u8> {
    message(1, 150_000)
}

fn m2() -> Vec<u8> {
    message(2, 3_000)
}

/// The steps the child takes: each line of its stderr is `STEP n kind path`.
#[derive(Debug)]
struct Trace {
    steps: Vec<(Step, PathBuf)>,
    finished: bool,
}

impl Trace {
    /// How many steps of `kind` on a path containing all of `parts` ran.
    fn count(&self, kind: Step, parts: &[&str]) -> usize {
        let matches = |(s, p): &&(Step, PathBuf)| {
            let p = p.to_string_lossy();
            *s == kind && parts.iter().all(|part| p.contains(part))
        };
        self.steps.iter().filter(matches).count()
    }

    /// Whether such a step ran.
    fn ran(&self, kind: Step, parts: &[&str]) -> bool {
        self.count(kind, parts) > 0
    }
}

fn parse_step(word: &str) -> Option<Step> {
    Some(match word {
        "CreateTmp" => Step::CreateTmp,
        "Write" => Step::Write,
        "SetMtime" => Step::SetMtime,
        "SyncFile" => Step::SyncFile,
        "Rename" => Step::Rename,
        "SyncDir" => Step::SyncDir,
        "Unlink" => Step::Unlink,
        _ => return None,
    })
}

/// Parses `n kind path`; `None` for a line cut short by the kill (another
/// thread of a parallel directory fsync may have been printing).
fn parse_line(line: &str) -> Option<(Step, PathBuf)> {
    let mut words = line.splitn(3, ' ');
    words.next()?.parse::<usize>().ok()?;
    let kind = parse_step(words.next()?)?;
    let path = words.next()?;
    path.starts_with('/').then(|| (kind, PathBuf::from(path)))
}

/// Runs the child with a step limit; returns the steps that ran.
fn run_child(dir: &Path, limit: usize, exdev: bool) -> Trace {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "crash::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT, limit.to_string())
        .env(DIR, dir)
        .env(EXDEV, if exdev { "1" } else { "0" })
        .output()
        .expect("run child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut steps: Vec<(Step, PathBuf)> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("STEP "))
        .filter_map(parse_line)
        .collect();
    let finished = stderr.contains("CRASH CHILD DONE");
    if finished {
        assert!(out.status.success(), "child failed: {stderr}");
    } else {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(9),
            "child died otherwise: {stderr}"
        );
        // The last step printed is the one it was killed before.
        steps.pop();
    }
    Trace { steps, finished }
}

/// Every file outside `tmp/` is whole; returns where each key is.
fn check_whole(root: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let expected: BTreeMap<&str, Vec<u8>> = [(M1, to_lf(&m1())), (M2, to_lf(&m2()))].into();
    let mut found: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for folder in ["A", "B"] {
        for (sub, name) in message_files(&root.join(folder)) {
            let key = name.split(":2,").next().expect("key").to_string();
            let path = root.join(folder).join(&sub).join(&name);
            let content = fs::read(&path).expect("read");
            let want = expected
                .get(key.as_str())
                .unwrap_or_else(|| panic!("unknown file {path:?}"));
            assert!(
                content == *want,
                "partial or wrong file {path:?}: {} bytes",
                content.len()
            );
            found.entry(key).or_default().push(path);
        }
    }
    found
}

fn crash_at_every_step(exdev: bool) {
    let mut limit = 0;
    loop {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in ["A", "B"] {
            Folder::create(dir.path().join(f)).expect("create");
        }
        let trace = run_child(dir.path(), limit, exdev);
        let found = check_whole(dir.path());
        let copies = |key: &str| found.get(key).map_or(0, Vec::len);
        // M1: delivered into A, flagged, moved to B, removed from B.
        let m1_in = trace.ran(Step::Rename, &["/A/cur/", M1]);
        let m1_out = trace.ran(Step::Unlink, &["/B/cur/", M1]);
        let expect_m1 = usize::from(m1_in && !m1_out);
        // Across file systems, the copy is in B before the source leaves A.
        // (The first rename into B failed with EXDEV; the second is the copy's.)
        let copied = exdev && trace.count(Step::Rename, &["/B/cur/", M1]) >= 2;
        let source_gone = trace.ran(Step::Unlink, &["/A/cur/", M1]);
        let both = exdev && copied && !source_gone && !m1_out;
        assert!(
            copies(M1) == expect_m1 || (both && copies(M1) == 2),
            "step {limit}: M1 found {:?}, trace {:?}",
            found.get(M1),
            trace.steps
        );
        let m2_in = trace.ran(Step::Rename, &["/A/new/", M2]);
        assert_eq!(
            copies(M2),
            usize::from(m2_in),
            "step {limit}: M2 {:?}",
            found.get(M2)
        );
        if trace.finished {
            assert!(limit > 15, "too few steps: {limit}");
            eprintln!(
                "crash test ({}) covered {limit} steps",
                if exdev { "EXDEV" } else { "rename" }
            );
            return;
        }
        limit += 1;
        assert!(limit < 200, "runaway");
    }
}

#[test]
fn killed_at_every_step_nothing_is_partial_or_lost() {
    crash_at_every_step(false);
}

#[test]
fn killed_at_every_step_of_a_move_across_file_systems() {
    crash_at_every_step(true);
}

/// The child of the crash tests, run by them in a process of its own.
#[test]
#[ignore = "helper: run by the crash tests in a child process"]
fn crash_child() {
    let (Some(limit), Some(dir)) = (std::env::var_os(ABORT), std::env::var_os(DIR)) else {
        return;
    };
    let limit: usize = limit.to_string_lossy().parse().expect("a number");
    let exdev = std::env::var_os(EXDEV).is_some_and(|v| v == "1");
    let hook = hook(limit, exdev);
    let root = PathBuf::from(dir);
    let a = Folder::open(root.join("A"))
        .expect("A")
        .with_step_hook(hook.clone());
    let b = Folder::open(root.join("B"))
        .expect("B")
        .with_step_hook(hook);
    let seen = Flags::from_maildir_info("S");
    let first = NewMessage {
        key: M1.into(),
        flags: seen,
        internal_date: Some(1_600_000_000),
        ..NewMessage::new()
    };
    let e1 = a
        .deliver(&first, &m1()[..])
        .expect("deliver")
        .sync()
        .expect("sync")
        .entry;
    let e1 = a
        .set_flags(&e1, &Flags::from_maildir_info("FS"))
        .expect("flag")
        .sync()
        .expect("sync");
    let e1 = a.move_to(&e1, &b).expect("move").sync().expect("sync");
    let second = NewMessage {
        key: M2.into(),
        into_new: true,
        ..NewMessage::new()
    };
    let e2 = a
        .deliver(&second, &m2()[..])
        .expect("deliver")
        .sync()
        .expect("sync")
        .entry;
    a.set_flags(&e2, &Flags::new())
        .expect("no-op")
        .sync()
        .expect("sync");
    b.remove(&e1).expect("remove").sync().expect("sync");
    eprintln!("CRASH CHILD DONE");
}

/// Prints each step, kills the process before step `limit`, and (for the
/// EXDEV run) makes the cross-folder rename fail with EXDEV.
fn hook(limit: usize, exdev: bool) -> StepHook {
    let counter = Arc::new(AtomicUsize::new(0));
    let exdev_fired = Arc::new(AtomicBool::new(!exdev));
    Arc::new(move |step: Step, path: &Path| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        eprintln!("STEP {n} {step:?} {}", path.display());
        if n == limit {
            let me = rustix::process::getpid();
            let _ = rustix::process::kill_process(me, rustix::process::Signal::KILL);
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
        let cross = step == Step::Rename && path.to_string_lossy().contains("/B/cur/");
        if cross && !exdev_fired.swap(true, Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::EXDEV));
        }
        Ok(())
    })
}

/// What a delivery killed before its rename left in `tmp/` is removed by
/// `discard_unfinished` under its key; nothing else is touched, and a key
/// that is no plain file name is refused.
#[test]
fn an_unfinished_delivery_is_discarded_by_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Folder::create(dir.path().join("INBOX")).expect("folder");
    fs::write(folder.path().join("tmp").join(M1), b"half a mess").expect("write");
    fs::write(folder.path().join("tmp").join(M2), b"another's").expect("write");
    assert!(folder.discard_unfinished(M1).expect("discard"));
    assert!(!folder.discard_unfinished(M1).expect("discard again"));
    assert!(folder.path().join("tmp").join(M2).exists(), "others stay");
    for bad in ["", "../x", ".hidden", "a/b"] {
        assert!(folder.discard_unfinished(bad).is_err(), "{bad:?}");
    }
}
