//! Crash safety as a tested property (design.md, "Crash safety"): a sync
//! that touches every kind of action in both directions is killed after
//! step N (the hidden `FERRY_ABORT_AFTER_STEP`), for every N; the next run
//! must end in exactly the state an uninterrupted run reaches, and the run
//! after that must find nothing to do.

mod support;

use ferry_testkit::proxy::{ConnectionRecording, Cut, Direction, FaultProxy, Faults, Stall};
use ferry_testkit::{DovecotOptions, USER};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use support::{Setup, maildir_letters, message, message_id_of};

/// Every folder of one side: folder -> its messages, sorted.
type World = BTreeMap<String, Vec<Held>>;

/// One message as a side holds it: its Message-ID, its flags as Maildir
/// letters, and a hash of its bytes with CRLF read as LF.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    id: String,
    flags: String,
    content: u64,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = if self.id.is_empty() {
            "(no Message-ID)"
        } else {
            &self.id
        };
        write!(f, "{id} :2,{} #{:016x}", self.flags, self.content)
    }
}

/// FNV-1a (64 bits) of `bytes` with every CRLF read as LF: stable across
/// runs, and the server's CRLF copy hashes like the Maildir's LF file.
/// (Collisions do not matter here; `sha2` is no dependency of this crate.)
fn content_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A synced account, then changes on both sides that need every action:
/// copies, flag changes, removals and moves each way, and a new folder and
/// a renamed one on each side.
fn scenario() -> Setup {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    for folder in ["Archive", "Lists", "Old"] {
        client.create(folder).expect("create");
    }
    client
        .append("Lists", &[], None, &message(8))
        .expect("append");
    client
        .append(
            "Lists",
            &["\\Seen"],
            None,
            b"From: list@example.org\r\nSubject: a digest without a Message-ID\r\n\r\nnews\r\n",
        )
        .expect("append");
    client
        .append("Old", &[], None, &message(9))
        .expect("append");
    setup.append_messages("INBOX", 1..=6, &[]);
    client
        .append("Archive", &["\\Seen"], None, &message(7))
        .expect("append");
    setup.sync();

    // The server side (another client).
    let uid = |n: u32| server_uid(&setup, "INBOX", n);
    client
        .append("INBOX", &[], None, &message(20))
        .expect("new on the server");
    client
        .add_flags("INBOX", &[uid(1)], &["\\Flagged"])
        .expect("flag");
    client.expunge("INBOX", &[uid(2)]).expect("expunge");
    client
        .move_messages("INBOX", &[uid(3)], "Archive")
        .expect("move");
    client.create("ServerNew").expect("create");
    client.rename("Old", "Older").expect("rename");
    client
        .append("ServerNew", &["\\Seen"], None, &message(21))
        .expect("append");

    // The local side (a mail reader).
    let inbox = setup.maildir().join("INBOX");
    write_local(&inbox, "1700000100.M1P1.laptop:2,S", 30);
    std::fs::write(
        inbox.join("cur/1700000102.M3P3.laptop:2,F"),
        "From: me@example.org\nSubject: a draft without a Message-ID\n\nnotes\n",
    )
    .expect("write");
    let m4 = local_file(&setup, "INBOX", 4);
    rename_flags(&m4, "S");
    std::fs::remove_file(local_file(&setup, "INBOX", 5)).expect("rm");
    let m6 = local_file(&setup, "INBOX", 6);
    let name = m6.file_name().expect("name").to_owned();
    std::fs::rename(&m6, setup.maildir().join("Archive/cur").join(name)).expect("mv");
    std::fs::rename(
        setup.maildir().join("Lists"),
        setup.maildir().join("Newsletters"),
    )
    .expect("mv");
    setup.local_folder("LocalNew");
    write_local(
        &setup.maildir().join("LocalNew"),
        "1700000101.M2P2.laptop:2,",
        31,
    );
    setup
}

/// Both sides after an uninterrupted sync of the [`scenario`]: what every
/// faulted run must end with.
fn clean_end() -> PerSideWorld {
    let setup = scenario();
    setup.sync();
    world(&setup)
}

fn server_uid(setup: &Setup, folder: &str, n: u32) -> u32 {
    let id = format!("<m{n}@sync.test>");
    setup
        .dovecot
        .messages(USER, folder)
        .expect("messages")
        .into_iter()
        .find(|m| m.message_id == id)
        .map(|m| m.uid)
        .expect("on the server")
}

fn write_local(folder: &Path, name: &str, n: u32) {
    let text = String::from_utf8(message(n))
        .expect("utf-8")
        .replace("\r\n", "\n");
    std::fs::write(folder.join("cur").join(name), text).expect("write");
}

/// The local file of message `n` in `folder`.
fn local_file(setup: &Setup, folder: &str, n: u32) -> std::path::PathBuf {
    let id = format!("Message-ID: <m{n}@sync.test>");
    setup
        .files(folder)
        .into_iter()
        .map(|(_, _, path)| path)
        .find(|path| {
            std::fs::read_to_string(path)
                .expect("read")
                .lines()
                .any(|l| l == id)
        })
        .expect("local file")
}

/// Renames a file in cur/ to carry `info` as its flags.
fn rename_flags(path: &Path, info: &str) {
    let name = path.file_name().expect("name").to_string_lossy();
    let unique = name.split(":2,").next().unwrap_or_default();
    let cur = path.parent().expect("dir").with_file_name("cur");
    std::fs::rename(path, cur.join(format!("{unique}:2,{info}"))).expect("rename");
}

/// What both sides hold, by folder.
fn world(setup: &Setup) -> PerSideWorld {
    let mut client = setup.dovecot.client().expect("client");
    let mut far = World::new();
    for folder in client.list().expect("list") {
        let contents = server_contents(&mut client, &folder);
        let mut messages: Vec<Held> = setup
            .dovecot
            .messages(USER, &folder)
            .expect("messages")
            .into_iter()
            .map(|m| Held {
                flags: maildir_letters(&m.flags),
                content: *contents.get(&m.uid).expect("the body of every UID"),
                id: m.message_id,
            })
            .collect();
        messages.sort();
        far.insert(folder, messages);
    }
    let mut near = World::new();
    for entry in std::fs::read_dir(setup.maildir())
        .expect("maildir")
        .flatten()
    {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let mut messages: Vec<Held> = setup
            .files(&folder)
            .into_iter()
            .map(|(_, flags, path)| Held {
                id: message_id_of(&path),
                flags,
                content: content_hash(&std::fs::read(&path).expect("read")),
            })
            .collect();
        messages.sort();
        near.insert(folder, messages);
    }
    PerSideWorld { far, near }
}

/// The content hash of each message of `folder` on the server, by UID
/// (`UID FETCH 1:* BODY.PEEK[]` on the folder examined read-only).
fn server_contents(client: &mut ferry_testkit::client::Client, folder: &str) -> BTreeMap<u32, u64> {
    client
        .run(&format!("EXAMINE {}", ferry_testkit::client::quote(folder)))
        .expect("examine");
    let fetched = client
        .run("UID FETCH 1:* (UID BODY.PEEK[])")
        .expect("fetch");
    fetched
        .untagged
        .iter()
        .filter(|line| line.contains(" FETCH ("))
        .map(|line| fetched_content(line))
        .collect()
}

/// The UID and content hash of one `* n FETCH (UID u BODY[] {len}...)`
/// line (the client inlines the literal after a CRLF).
fn fetched_content(line: &str) -> (u32, u64) {
    let (head, rest) = line.split_once("BODY[] {").expect("a BODY[] literal");
    let (len, rest) = rest.split_once("}\r\n").expect("a literal");
    let len: usize = len.parse().expect("literal length");
    let body = rest.as_bytes().get(..len).expect("the whole literal");
    let uid = head
        .split_once("UID ")
        .and_then(|(_, after)| after.split_whitespace().next())
        .expect("UID before BODY[]")
        .parse()
        .expect("a UID");
    (uid, content_hash(body))
}

#[derive(Debug, PartialEq, Eq)]
struct PerSideWorld {
    far: World,
    near: World,
}

/// The folders where `world` differs from `reference`, side by side.
fn differences(world: &PerSideWorld, reference: &PerSideWorld) -> String {
    let mut out = String::new();
    for (side, got, want) in [
        ("server", &world.far, &reference.far),
        ("maildir", &world.near, &reference.near),
    ] {
        let names: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
        for name in names {
            let (Some(got), Some(want)) = (got.get(name), want.get(name)) else {
                out.push_str(&format!("\n  {side} {name}: only on one side"));
                continue;
            };
            let mut extra: Vec<_> = got.iter().filter(|m| !want.contains(m)).collect();
            let mut seen = std::collections::BTreeSet::new();
            extra.extend(got.iter().filter(|m| !seen.insert(*m) && want.contains(m)));
            let missing: Vec<_> = want.iter().filter(|m| !got.contains(m)).collect();
            if !extra.is_empty() || !missing.is_empty() || got.len() != want.len() {
                out.push_str(&format!(
                    "\n  {side} {name}: {} messages, expected {}; extra {extra:?}, missing {missing:?}",
                    got.len(),
                    want.len()
                ));
            }
        }
    }
    out
}

/// Runs `run` for each labelled cut, three at a time; what failed to
/// converge to `reference`, described.
fn cuts_converge(
    cuts: &[(String, Cut)],
    run: fn(Cut) -> PerSideWorld,
    reference: &PerSideWorld,
) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((label, cut)) = cuts.get(i) else {
                        return;
                    };
                    let cut = *cut;
                    let outcome = std::panic::catch_unwind(|| run(cut));
                    if let Some(failure) = failure(label, outcome, reference) {
                        failures.lock().expect("lock").push(failure);
                    }
                }
            });
        }
    });
    failures.into_inner().expect("lock")
}

/// What went wrong in one faulted run labelled `label`: its end differs
/// from `reference`, or it panicked; `None` when it ended the same.
fn failure(
    label: &str,
    outcome: std::thread::Result<PerSideWorld>,
    reference: &PerSideWorld,
) -> Option<String> {
    match outcome {
        Ok(world) if world == *reference => None,
        Ok(world) => Some(format!("{label}: {}", differences(&world, reference))),
        Err(panic) => Some(format!(
            "{label}: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "panicked".into())
        )),
    }
}

/// Every file in the `tmp/` of any folder under `root` (at any depth).
fn left_in_tmp(root: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut left = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).into_iter().flatten().flatten();
        for entry in entries.filter(|e| e.path().is_dir()) {
            match entry.file_name() == "tmp" && dir.join("cur").is_dir() {
                true => left.extend(
                    std::fs::read_dir(entry.path())
                        .expect("tmp")
                        .flatten()
                        .map(|e| e.path()),
                ),
                false => dirs.push(entry.path()),
            }
        }
    }
    left
}

fn ferry_with_limit(setup: &Setup, limit: usize) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("sync")
        .arg("--config")
        .arg(setup.home.path().join("config.toml"))
        .env("HOME", setup.home.path())
        .env("FERRY_SYNC_PW", USER.password)
        .env("FERRY_ABORT_AFTER_STEP", limit.to_string())
        .env("FERRY_ABORT_TRACE", "1")
        .env_remove("FERRY_LOG")
        .output()
        .expect("ferry runs")
}

/// Runs the scenario killed after step `limit`, then resumed; returns
/// whether the kill happened (false: the run has fewer steps) and the
/// final world.
fn interrupted_at(limit: usize) -> (bool, PerSideWorld) {
    let setup = scenario();
    let aborted = ferry_with_limit(&setup, limit);
    let killed = aborted.status.code().is_none();
    let stderr = String::from_utf8_lossy(&aborted.stderr);
    assert!(
        killed || aborted.status.success(),
        "step {limit}: {:?}\n{stderr}",
        aborted.status
    );
    let resumed = setup.ferry(&["sync"]);
    assert_eq!(
        resumed.code, 0,
        "resuming after step {limit}\n{stderr}\n{resumed:?}"
    );
    let left = left_in_tmp(setup.maildir());
    assert!(
        left.is_empty(),
        "after step {limit} the resumed run left in tmp/: {left:?}"
    );
    let again = setup.sync();
    assert!(
        again
            .stdout
            .contains("total: pulled 0, pushed 0, flags 0, moved 0, deleted 0"),
        "after step {limit} the next run still had work:\n{stderr}\n{resumed:?}\n{again:?}"
    );
    let plan = setup.ferry(&["plan", "--json"]);
    assert!(
        !plan.stdout.contains("\"action\""),
        "after step {limit} the plan is not empty: {plan:?}"
    );
    (killed, world(&setup))
}

#[test]
fn a_sync_killed_after_any_step_resumes_to_the_same_end() {
    let reference = clean_end();
    assert_eq!(reference.far, reference.near, "the reference run converges");
    let workers = 3;
    let next = std::sync::atomic::AtomicUsize::new(1);
    let last = std::sync::atomic::AtomicUsize::new(usize::MAX);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let limit = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if limit > last.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let outcome = std::panic::catch_unwind(|| interrupted_at(limit));
                    if let Ok((false, _)) = outcome {
                        last.fetch_min(limit, std::sync::atomic::Ordering::SeqCst);
                        continue;
                    }
                    let outcome = outcome.map(|(_, world)| world);
                    if let Some(failure) = failure(&format!("step {limit}"), outcome, &reference) {
                        failures.lock().expect("lock").push(failure);
                    }
                }
            });
        }
    });
    let steps = last.load(std::sync::atomic::Ordering::SeqCst);
    let failures = failures.into_inner().expect("lock");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        (40..usize::MAX).contains(&steps),
        "the scenario takes {steps} steps: too few to be the whole scenario"
    );
    eprintln!("killed and resumed after each of {} steps", steps - 1);
}

/// Runs `ferry sync` and SIGKILLs it after `delay` (unless it ended
/// before); then the state must pass SQLite's integrity check. Returns
/// whether the kill came before the end.
fn killed_after(setup: &Setup, delay: std::time::Duration) -> bool {
    let mut child = (setup.ferry_command(&[], &["sync", "-q"]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry starts");
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    if killed {
        let pid = rustix::process::Pid::from_child(&child);
        // It may end between the look and the kill: that is fine too.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    let output = child.wait_with_output().expect("ferry ends");
    // This process opens the state below; a process another test thread
    // forks meanwhile holds a copy of that lock until it execs, so a run
    // may rarely find the account locked (exit 75): it did nothing then.
    let locked = output.status.code() == Some(75);
    assert!(
        killed || locked || output.status.success(),
        "ferry failed: {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let db = setup.home.path().join("state/test.sqlite");
    if db.exists() {
        // Opening takes the account's lock: a killed run holds none.
        let state = open_state(&db);
        let problems = state.check_integrity().expect("integrity check runs");
        assert!(problems.is_empty(), "after {delay:?}: {problems:?}");
    }
    killed
}

/// The state at `db`, waiting out a lock another test's fork holds for a
/// moment (see [`killed_after`]); a killed run itself holds none.
fn open_state(db: &Path) -> ferry_state::State {
    for _ in 0..100 {
        match ferry_state::State::open(db) {
            Err(ferry_state::StateError::Locked(_)) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other.expect("the state opens after a kill"),
        }
    }
    panic!("{} stays locked after the run was killed", db.display());
}

/// SIGKILLs runs of `ferry sync` on `setup` at `instants` (ms after start,
/// a deterministic spread), then lets one run finish; the world must be
/// `reference`'s and the next run must have nothing to do. Returns how
/// many runs were killed before their end.
fn kill_at_instants(setup: &Setup, instants: &[u64], reference: &PerSideWorld) -> usize {
    let mut killed = 0;
    for &ms in instants {
        killed += usize::from(killed_after(setup, std::time::Duration::from_millis(ms)));
    }
    let resumed = setup.ferry(&["sync"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let left = left_in_tmp(setup.maildir());
    assert!(
        left.is_empty(),
        "killed at {instants:?} ms, the resumed run left in tmp/: {left:?}"
    );
    let again = setup.sync();
    assert!(
        again
            .stdout
            .contains("total: pulled 0, pushed 0, flags 0, moved 0, deleted 0"),
        "the run after the kills still had work: {again:?}"
    );
    let world = world(setup);
    assert!(
        world == *reference,
        "killed at {instants:?} ms:{}",
        differences(&world, reference)
    );
    killed
}

/// 24 instants spread from 5 ms to about 300 ms: each run resumes the
/// work of the one killed before, so most are killed in the middle of it.
fn instants(seed: u64) -> Vec<u64> {
    (0..24u64)
        .map(|i| 5 + (i * 13 + seed * 17 + (i * i * 31) % 47) % 300)
        .collect()
}

/// 400 messages on the server and 60 in the Maildir, never synced.
fn unsynced_account() -> Setup {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    client.create("Archive").expect("create");
    setup.append_messages("INBOX", 1..=300, &[]);
    setup.append_messages("Archive", 301..=400, &["\\Seen"]);
    setup.local_folder("INBOX");
    let inbox = setup.maildir().join("INBOX");
    for n in 500..560 {
        write_local(&inbox, &format!("1700000{n}.M{n}P1.laptop:2,S"), n);
    }
    setup
}

/// Syncs one account `make` builds cleanly and another with runs killed at
/// `instants(seed)`: both must end the same.
fn killed_and_clean_end_the_same(make: impl Fn() -> Setup, seed: u64, what: &str) {
    let reference = {
        let setup = make();
        setup.sync();
        world(&setup)
    };
    assert_eq!(reference.far, reference.near, "the reference run converges");
    let setup = make();
    let killed = kill_at_instants(&setup, &instants(seed), &reference);
    eprintln!("{what}: {killed} of 24 runs killed before their end");
    assert!(
        killed >= 5,
        "only {killed} runs were killed before their end"
    );
}

#[test]
fn an_initial_sync_killed_at_random_instants_converges_to_the_same_end() {
    killed_and_clean_end_the_same(unsynced_account, 1, "an initial sync");
}

#[test]
fn a_busy_two_way_sync_killed_at_random_instants_converges_to_the_same_end() {
    let busy = || {
        let setup = scenario();
        setup.append_messages("INBOX", 100..=399, &[]);
        let inbox = setup.maildir().join("INBOX");
        for n in 500..560 {
            write_local(&inbox, &format!("1700000{n}.M{n}P1.laptop:2,S"), n);
        }
        setup
    };
    killed_and_clean_end_the_same(busy, 2, "a two-way sync");
}

/// Points ferry's config at 127.0.0.1:`port` (a fault proxy, or the server
/// itself again).
fn connect_to(setup: &Setup, port: u16) {
    support::set_port(&setup.home.path().join("config.toml"), port);
}

/// How the scenario reaches its Dovecot: as configured (implicit TLS,
/// helper connections allowed), or over one plain connection.
#[derive(Clone, Copy)]
enum Route {
    Tls,
    Plain,
}

impl Route {
    fn addr(self, setup: &Setup) -> SocketAddr {
        match self {
            Route::Tls => setup.dovecot.imaps_addr(),
            Route::Plain => setup.dovecot.imap_addr(),
        }
    }

    /// Dovecot's own port for this route.
    fn port(self, setup: &Setup) -> u16 {
        self.addr(setup).port()
    }

    /// Points the scenario's config at `port` this way.
    fn point(self, setup: &Setup, port: u16) {
        match self {
            Route::Tls => connect_to(setup, port),
            Route::Plain => plain_through(setup, port),
        }
    }
}

/// The scenario, pointed at a proxy with `faults` on `route` (keep the
/// proxy alive while it is used).
fn proxied(route: Route, faults: Faults) -> (Setup, FaultProxy) {
    let setup = scenario();
    let proxy = FaultProxy::start(route.addr(&setup), faults).expect("proxy");
    route.point(&setup, proxy.port());
    (setup, proxy)
}

/// The first connection of a clean run of the scenario over `route`.
fn clean_first_connection(route: Route) -> ConnectionRecording {
    let (setup, proxy) = proxied(route, Faults::default());
    let run = setup.sync();
    assert_eq!(run.code, 0, "{run:?}");
    proxy.recording().first().expect("a connection").clone()
}

/// The bytes each way on the first connection of a clean run of the
/// scenario through a proxy.
fn first_connection_bytes() -> (u64, u64) {
    let first = clean_first_connection(Route::Tls);
    (
        first.bytes(Direction::ClientToServer).len() as u64,
        first.bytes(Direction::ServerToClient).len() as u64,
    )
}

/// Runs the scenario with its first connection cut by `cut`, then again
/// without faults; returns the world once the next run has nothing to do.
fn cut_by(cut: Cut) -> PerSideWorld {
    let (setup, _proxy) = proxied(Route::Tls, Faults::default().with_cut(cut));
    let cut_off = setup.ferry(&["sync"]);
    assert!(!cut_off.stderr.contains("panicked"), "{cut:?}: {cut_off:?}");
    Route::Tls.point(&setup, Route::Tls.port(&setup));
    let resumed = setup.sync();
    assert_eq!(resumed.code, 0, "after {cut:?}: {cut_off:?}\n{resumed:?}");
    let left = left_in_tmp(setup.maildir());
    assert!(
        left.is_empty(),
        "after {cut:?} the resumed run left in tmp/: {left:?}"
    );
    let again = setup.sync();
    assert!(
        again
            .stdout
            .contains("total: pulled 0, pushed 0, flags 0, moved 0, deleted 0"),
        "after {cut:?} the next run still had work: {again:?}"
    );
    world(&setup)
}

#[test]
fn a_sync_cut_off_at_any_point_resumes_to_the_same_end() {
    let reference = clean_end();
    let (sent, received) = first_connection_bytes();
    // Every 19th of the way, each direction, FIN and RST.
    let points = 18u64;
    let mut cuts = Vec::new();
    for k in 1..=points {
        for (direction, total) in [
            (Direction::ClientToServer, sent),
            (Direction::ServerToClient, received),
        ] {
            let at = total * k / (points + 1);
            cuts.push(Cut::fin(direction, at).on_connection(0));
            cuts.push(Cut::reset(direction, at).on_connection(0));
        }
    }
    let labelled: Vec<(String, Cut)> = cuts.iter().map(|&c| (format!("{c:?}"), c)).collect();
    let failures = cuts_converge(&labelled, cut_by, &reference);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "cut at {} points of {sent} bytes sent and {received} received",
        cuts.len()
    );
}

/// A server that stops reading in the middle of an 8 MiB upload (or stops
/// sending in the middle of a download): the run gives up after the
/// `timeout`, names the stall, and the next run completes both transfers
/// once, with nothing half-written left behind.
#[test]
fn a_server_stalled_mid_transfer_times_out_and_the_next_run_completes() {
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        let setup = Setup::new(DovecotOptions::default());
        let big: String = (0..140_000)
            .map(|i| format!("line {i:06} of a big message, padded to sixty bytes......\n"))
            .collect();
        setup.local_folder("INBOX");
        std::fs::write(
            setup.maildir().join("INBOX/cur/1700000000.M1P1.laptop:2,S"),
            format!("Message-ID: <big-up@sync.test>\nSubject: big\n\n{big}"),
        )
        .expect("write");
        let crlf = format!("Message-ID: <big-down@sync.test>\r\nSubject: big\r\n\r\n{big}")
            .replace('\n', "\r\n")
            .replace("\r\r\n", "\r\n");
        let mut client = setup.dovecot.client().expect("client");
        client
            .append("INBOX", &[], None, crlf.as_bytes())
            .expect("append");
        drop(client);
        let stall = Stall::forever(direction, 1 << 20).on_connection(0);
        let proxy = FaultProxy::start(
            setup.dovecot.imaps_addr(),
            Faults::default().with_stall(stall),
        )
        .expect("proxy");
        connect_to(&setup, proxy.port());
        let path = setup.home.path().join("config.toml");
        let config = std::fs::read_to_string(&path).expect("config");
        std::fs::write(&path, format!("{config}timeout = 2\n")).expect("config");
        let started = std::time::Instant::now();
        let stalled = setup.ferry(&["sync"]);
        assert_ne!(stalled.code, 0, "{direction:?}: {stalled:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{stalled:?}"
        );
        assert!(
            stalled.stderr.contains("did not answer within"),
            "{direction:?}: {stalled:?}"
        );
        connect_to(&setup, setup.dovecot.imaps_port());
        setup.sync();
        assert_eq!(setup.server_count("INBOX"), 2, "{direction:?}");
        assert_eq!(setup.files("INBOX").len(), 2, "{direction:?}");
        let tmp = std::fs::read_dir(setup.maildir().join("INBOX/tmp")).expect("tmp");
        assert_eq!(tmp.count(), 0, "{direction:?}: nothing half-written");
        let again = setup.sync();
        assert!(
            again
                .stdout
                .contains("total: pulled 0, pushed 0, flags 0, moved 0, deleted 0"),
            "{again:?}"
        );
    }
}

/// A Maildir on a disk that fills up during the initial sync (a 320 KiB
/// tmpfs in a user and mount namespace): the run stops with an error that
/// says so, leaves no partial file, and once there is room the next run
/// completes the job without duplicating anything.
#[test]
fn a_full_disk_stops_the_sync_cleanly_and_the_next_run_completes_it() {
    let usable = Command::new("unshare")
        .args(["-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        eprintln!("skipped: `unshare -Urm` is not available here");
        return;
    }
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    let padding = "x".repeat(76);
    for n in 1..=40u32 {
        let mut body = String::from_utf8(message(n)).expect("utf-8");
        for _ in 0..200 {
            body.push_str(&padding);
            body.push_str("\r\n");
        }
        client
            .append("INBOX", &[], None, body.as_bytes())
            .expect("append");
    }
    drop(client);
    let mail = setup.maildir();
    std::fs::create_dir_all(&mail).expect("mkdir");
    let script = r#"
        mount -t tmpfs -o size=320k ferry "$0" || exit 99
        "$1" sync --config "$2"; echo "FIRST $?"
        echo "LEFT $(find "$0/INBOX/tmp" -type f | wc -l)"
        mount -o remount,size=16m "$0"
        "$1" sync --config "$2"; echo "SECOND $?"
        "$1" sync --config "$2"; echo "THIRD $?"
        echo "FILES $(find "$0/INBOX/cur" "$0/INBOX/new" -type f | wc -l)"
    "#;
    let output = Command::new("unshare")
        .args(["-Urm", "sh", "-c", script])
        .arg(&mail)
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .arg(setup.home.path().join("config.toml"))
        .env("FERRY_SYNC_PW", USER.password)
        .env_remove("FERRY_LOG")
        .output()
        .expect("unshare runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    let said = |what: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(what))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {what}: {out}\n{err}"))
            .to_string()
    };
    assert_ne!(
        said("FIRST "),
        "0",
        "the first run filled the disk: {out}\n{err}"
    );
    assert!(
        err.contains("No space left") || err.contains("full"),
        "{err}"
    );
    assert_eq!(said("LEFT "), "0", "no partial file in tmp/: {out}\n{err}");
    assert_eq!(said("SECOND "), "0", "{out}\n{err}");
    assert_eq!(said("THIRD "), "0", "{out}\n{err}");
    assert!(
        out.contains("total: pulled 0, pushed 0, flags 0, moved 0, deleted 0"),
        "the third run had nothing to do: {out}"
    );
    assert_eq!(said("FILES "), "40", "{out}\n{err}");
    assert_eq!(
        setup.server_count("INBOX"),
        40,
        "nothing uploaded or deleted"
    );
}

/// The fault library (`support/fail_io.c`), built once per test process
/// with the system's C compiler.
fn fail_io_library() -> &'static Path {
    static LIBRARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferry-fail-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let library = dir.join("fail_io.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fail_io.c");
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&library)
            .arg(source)
            .arg("-ldl")
            .status()
            .expect("cc runs");
        assert!(built.success(), "cc could not build fail_io.c");
        library
    })
}

/// Runs the scenario with `call` ("fsync" or "write") failing with EIO on
/// the Maildir after `after` successful ones, then again without faults;
/// returns the faulted run's exit status and the world once the next run
/// has nothing to do.
fn io_failing(call: &str, after: u32) -> (i32, PerSideWorld) {
    let setup = scenario();
    let failed = setup
        .ferry_command(&[], &["sync"])
        .env("LD_PRELOAD", fail_io_library())
        .env("FAIL_IO_CALL", call)
        .env("FAIL_IO_UNDER", setup.maildir())
        .env("FAIL_IO_AFTER", after.to_string())
        .output()
        .expect("ferry runs");
    let text = String::from_utf8_lossy(&failed.stderr).into_owned()
        + &String::from_utf8_lossy(&failed.stdout);
    assert!(!text.contains("panicked"), "{call} after {after}: {text}");
    let code = failed.status.code().expect("exit code");
    assert!(
        code == 0 || text.contains("Input/output error"),
        "{call} after {after}: the error is named: {text}"
    );
    let partial = left_in_tmp(setup.maildir());
    assert!(
        partial.is_empty(),
        "{call} after {after}: left in tmp/: {partial:?}\n{text}"
    );
    let resumed = setup.sync();
    let again = setup.sync();
    assert!(
        again.stdout.contains(support::NOTHING_DONE),
        "{call} after {after}: the next run still had work: {again:?}\n{resumed:?}\n{text}"
    );
    (code, world(&setup))
}

/// fsync and write failing (EIO) on the Maildir at many points of a sync
/// that touches every kind of action: the run ends with an error that says
/// so, leaves nothing half-written, and the next run ends as a clean one.
#[test]
fn io_errors_on_the_maildir_stop_the_run_cleanly_and_the_next_converges() {
    let reference = clean_end();
    let mut failures = Vec::new();
    let mut codes = Vec::new();
    // The scenario writes two files and fsyncs about a dozen times.
    let points: [(&str, &[u32]); 2] = [("fsync", &[0, 1, 2, 3, 5, 7, 9]), ("write", &[0, 1])];
    for (call, afters) in points {
        for &after in afters {
            let outcome = std::panic::catch_unwind(|| io_failing(call, after));
            let label = format!("{call} after {after}");
            let outcome = outcome.map(|(code, world)| {
                codes.push(format!("{label}: exit {code}"));
                world
            });
            failures.extend(failure(&label, outcome, &reference));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("{}", codes.join("\n"));
    let faulted = codes.iter().filter(|c| !c.ends_with("exit 0")).count();
    assert!(faulted >= 8, "the faults did not bite: {codes:?}");
}

/// Points ferry's config at plain IMAP on 127.0.0.1:`port` (a proxy in
/// front of the server's plain port, or that port), over one connection,
/// so that a recording shows every command and response in order.
fn plain_through(setup: &Setup, port: u16) {
    let path = setup.home.path().join("config.toml");
    support::edit_config(&path, |line| match line {
        l if l.starts_with("connections = ") || l.starts_with("ca_file = ") => None,
        l if l.starts_with("port = ") => Some(format!("port = {port}")),
        l if l.starts_with("tls = ") => Some("tls = \"none\"".to_string()),
        l => Some(l.to_string()),
    });
    let config = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, config + "connections = 1\n").expect("config");
}

/// The commands and responses of the scenario's conversation that a cut
/// is aimed at: what is cut, the direction, and the marker whose first
/// byte the cut falls just after (commands) or just before (responses).
const PHASES: [(&str, Direction); 14] = [
    (" LIST ", Direction::ClientToServer),
    (" SELECT ", Direction::ClientToServer),
    (" UID FETCH ", Direction::ClientToServer),
    (" APPEND ", Direction::ClientToServer),
    (" UID STORE ", Direction::ClientToServer),
    (" UID MOVE ", Direction::ClientToServer),
    (" UID EXPUNGE ", Direction::ClientToServer),
    (" CREATE ", Direction::ClientToServer),
    ("* LIST ", Direction::ServerToClient),
    ("[READ-WRITE]", Direction::ServerToClient),
    ("BODY[] {", Direction::ServerToClient),
    ("[APPENDUID ", Direction::ServerToClient),
    ("[COPYUID ", Direction::ServerToClient),
    ("VANISHED", Direction::ServerToClient),
];

/// Where each of [`PHASES`] is in a clean run of the scenario over one
/// plain connection: (marker, direction, byte offset to cut at). A
/// command is cut a few bytes into it; a response at the start of its
/// line (for APPENDUID: before the APPEND's tagged OK arrives).
fn phase_offsets() -> Vec<(&'static str, Direction, u64)> {
    let first = clean_first_connection(Route::Plain);
    PHASES
        .iter()
        .map(|&(marker, direction)| {
            let bytes = first.bytes(direction);
            let at = find(bytes, marker.as_bytes())
                .unwrap_or_else(|| panic!("the scenario has no {marker:?} {direction:?}"));
            let line_start = bytes[..at]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let cut = match direction {
                Direction::ClientToServer => at + 3,
                Direction::ServerToClient => line_start,
            };
            (marker, direction, cut as u64)
        })
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Runs the scenario over one plain connection cut by `cut`, then again
/// without faults; returns the world once the next run has nothing to do.
fn plain_cut_by(cut: Cut) -> PerSideWorld {
    let (setup, _proxy) = proxied(Route::Plain, Faults::default().with_cut(cut));
    let cut_off = setup.ferry(&["sync"]);
    assert!(!cut_off.stderr.contains("panicked"), "{cut:?}: {cut_off:?}");
    // The cut must bite: the run fails, or it noticed and connected again
    // (a cut while a pipelined FETCH was still being read, on a slower
    // machine, is met as a lost FETCH, which is repeated) and then did all
    // its work, leaving none to the next run.
    let recovered = cut_off.code == 0;
    assert!(
        !recovered || cut_off.stderr.contains("connected to the server again"),
        "{cut:?} cut nothing: {cut_off:?}"
    );
    Route::Plain.point(&setup, Route::Plain.port(&setup));
    let resumed = setup.sync();
    assert!(
        !recovered || resumed.stdout.contains(support::NOTHING_DONE),
        "{cut:?}: the run that connected again left work: {resumed:?}\n{cut_off:?}"
    );
    let left = left_in_tmp(setup.maildir());
    assert!(left.is_empty(), "after {cut:?}: left in tmp/: {left:?}");
    let again = setup.sync();
    assert!(
        again.stdout.contains(support::NOTHING_DONE),
        "after {cut:?} the next run still had work: {again:?}\n{resumed:?}"
    );
    world(&setup)
}

/// A cut aimed at each phase of a sync over one connection (LIST,
/// SELECT, FETCH of a body, APPEND and before its tagged OK, STORE, MOVE,
/// UID EXPUNGE, CREATE), FIN and RST: each run converges to the clean end.
#[test]
fn a_sync_cut_in_each_phase_resumes_to_the_same_end() {
    let reference = clean_end();
    let mut cuts = Vec::new();
    for (marker, direction, at) in phase_offsets() {
        for cut in [Cut::fin(direction, at), Cut::reset(direction, at)] {
            let cut = cut.on_connection(0);
            cuts.push((format!("{marker:?} {cut:?}"), cut));
        }
    }
    let failures = cuts_converge(&cuts, plain_cut_by, &reference);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!("cut in {} phases, FIN and RST", PHASES.len());
}
