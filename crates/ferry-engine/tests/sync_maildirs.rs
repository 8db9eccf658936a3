//! The sync run between two Maildir stores: the engine never knows which
//! side is IMAP, so two Maildirs exercise every rule without a server.

use ferry_core::{PerSide, Side};
use ferry_engine::maildir_store::MaildirStore;
use ferry_engine::sync::{Stores, SyncOptions, SyncReport, sync};
use ferry_maildir::Layout;
use ferry_state::State;
use std::fs;
use std::path::{Path, PathBuf};

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let world = World {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for side in ["far", "near"] {
            for folder in ["INBOX", "Archive"] {
                for sub in ["cur", "new", "tmp"] {
                    fs::create_dir_all(world.root(side).join(folder).join(sub)).expect("mkdir");
                }
            }
        }
        world
    }

    fn root(&self, side: &str) -> PathBuf {
        self.dir.path().join(side)
    }

    /// Messages `m0` to `m{count - 1}`, unread, in the far INBOX (files
    /// `{n}.m.far:2,`).
    fn put_unread_far_inbox(&self, count: usize) {
        for n in 0..count {
            let name = format!("{n}.m.far:2,");
            self.put("far", "INBOX", &name, &msg(&format!("m{n}")));
        }
    }

    fn put(&self, side: &str, folder: &str, name: &str, body: &str) {
        fs::write(self.root(side).join(folder).join("cur").join(name), body).expect("write");
    }

    /// (key, info) of a folder's files.
    fn files(&self, side: &str, folder: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            for entry in fs::read_dir(self.root(side).join(folder).join(sub))
                .expect("readdir")
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (key, info) = name
                    .split_once(":2,")
                    .map_or((name.clone(), String::new()), |(k, i)| (k.into(), i.into()));
                out.push((key, info));
            }
        }
        out.sort();
        out
    }

    fn bodies(&self, side: &str, folder: &str) -> Vec<String> {
        let mut out: Vec<String> = ["new", "cur"]
            .iter()
            .flat_map(|sub| {
                fs::read_dir(self.root(side).join(folder).join(sub))
                    .expect("readdir")
                    .flatten()
            })
            .map(|e| fs::read_to_string(e.path()).expect("read"))
            .collect();
        out.sort();
        out
    }

    fn sync(&self) -> SyncReport {
        self.sync_with(&SyncOptions::default())
    }

    /// A run, with how many folder listings each store made.
    fn sync_counting(&self) -> (SyncReport, PerSide<usize>) {
        let mut far = MaildirStore::open(self.root("far"), Layout::Fs).expect("far");
        let mut near = MaildirStore::open(self.root("near"), Layout::Fs).expect("near");
        let mut state = State::open(&self.dir.path().join("state.sqlite")).expect("state");
        let stores = Stores {
            far: &mut far,
            near: &mut near,
        };
        let report = sync(stores, &mut state, &SyncOptions::default()).expect("sync");
        (report, PerSide::new(far.listings(), near.listings()))
    }

    /// The file names of `folder`, as `sub/name`.
    fn names(&self, side: &str, folder: &str) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root(side).join(folder).join(sub);
            for entry in fs::read_dir(dir).expect("readdir").flatten() {
                out.push(format!("{sub}/{}", entry.file_name().to_string_lossy()));
            }
        }
        out.sort();
        out
    }

    fn sync_with(&self, options: &SyncOptions) -> SyncReport {
        let mut far = MaildirStore::open(self.root("far"), Layout::Fs).expect("far");
        let mut near = MaildirStore::open(self.root("near"), Layout::Fs).expect("near");
        let mut state = State::open(&self.dir.path().join("state.sqlite")).expect("state");
        sync(
            Stores {
                far: &mut far,
                near: &mut near,
            },
            &mut state,
            options,
        )
        .expect("sync")
    }
}

fn msg(id: &str) -> String {
    format!("Message-ID: <{id}@t>\nSubject: {id}\n\nbody {id}\n")
}

fn totals(report: &SyncReport) -> (usize, usize, usize, usize, usize) {
    let t = report.totals();
    (t.pulled, t.pushed, t.flags, t.moved, t.deleted)
}

fn rename_in(path: &Path, from: &str, to: &str) {
    fs::rename(path.join(from), path.join(to)).expect("rename");
}

#[test]
fn new_messages_flags_deletions_and_moves_flow_both_ways() {
    let w = World::new();
    w.put("far", "INBOX", "1.a.far:2,S", &msg("a"));
    w.put("far", "INBOX", "2.b.far:2,", &msg("b"));
    w.put("near", "Archive", "3.c.near:2,F", &msg("c"));
    let first = w.sync();
    assert_eq!(totals(&first), (2, 1, 0, 0, 0), "{first:?}");
    assert_eq!(w.bodies("near", "INBOX"), w.bodies("far", "INBOX"));
    assert_eq!(w.bodies("far", "Archive"), vec![msg("c")]);
    assert!(w.files("near", "INBOX").iter().any(|(_, info)| info == "S"));
    assert_eq!(
        totals(&w.sync()),
        (0, 0, 0, 0, 0),
        "a second run does nothing"
    );

    // Flags: near reads b, far flags a.
    let b_near = w
        .files("near", "INBOX")
        .into_iter()
        .find(|(_, i)| i.is_empty())
        .expect("b unseen");
    let b_path = ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            fs::read_dir(w.root("near").join("INBOX").join(sub))
                .expect("dir")
                .flatten()
        })
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&b_near.0))
        })
        .expect("b's file");
    fs::rename(
        &b_path,
        w.root("near")
            .join("INBOX/cur")
            .join(format!("{}:2,S", b_near.0)),
    )
    .expect("mutt reads b");
    rename_in(
        &w.root("far").join("INBOX/cur"),
        "1.a.far:2,S",
        "1.a.far:2,FS",
    );
    let flags = w.sync();
    assert_eq!(totals(&flags), (0, 0, 2, 0, 0), "{flags:?}");
    assert_eq!(
        w.files("far", "INBOX")
            .iter()
            .map(|(_, i)| i.as_str())
            .collect::<Vec<_>>(),
        ["FS", "S"]
    );
    assert_eq!(
        w.files("near", "INBOX")
            .iter()
            .filter(|(_, i)| i == "FS")
            .count(),
        1
    );

    // A move on far (INBOX -> Archive, same name) becomes a rename on near.
    rename_in(
        &w.root("far"),
        "INBOX/cur/2.b.far:2,S",
        "Archive/cur/2.b.far:2,S",
    );
    let moved = w.sync();
    assert_eq!(totals(&moved), (0, 0, 0, 1, 0), "{moved:?}");
    assert_eq!(w.bodies("near", "Archive"), w.bodies("far", "Archive"));
    assert_eq!(w.bodies("near", "INBOX"), vec![msg("a")]);

    // A deletion on near removes it on far.
    for (key, info) in w.files("near", "Archive") {
        if fs::read_to_string(
            w.root("near")
                .join("Archive/cur")
                .join(format!("{key}:2,{info}")),
        )
        .unwrap_or_default()
            == msg("c")
        {
            fs::remove_file(
                w.root("near")
                    .join("Archive/cur")
                    .join(format!("{key}:2,{info}")),
            )
            .expect("rm");
        }
    }
    let deleted = w.sync();
    assert_eq!(totals(&deleted), (0, 0, 0, 0, 1), "{deleted:?}");
    assert_eq!(w.bodies("far", "Archive"), vec![msg("b")]);
    assert_eq!(totals(&w.sync()), (0, 0, 0, 0, 0));
}

#[test]
fn a_deletion_loses_against_a_change_and_the_guard_holds_mass_deletions() {
    let w = World::new();
    w.put_unread_far_inbox(30);
    w.sync();
    // Near deletes everything: more than half and more than 20 -> held.
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(w.root("near").join("INBOX").join(sub))
            .expect("dir")
            .flatten()
        {
            fs::remove_file(entry.path()).expect("rm");
        }
    }
    let held = w.sync();
    assert_eq!(held.exit_status().code(), 4, "{held:?}");
    assert_eq!(w.files("far", "INBOX").len(), 30, "nothing deleted");
    let allowed = w.sync_with(&SyncOptions {
        policy: ferry_plan::folder::Policy {
            allow_mass_delete: true,
            ..Default::default()
        },
        ..Default::default()
    });
    assert_eq!(allowed.totals().deleted, 30, "{allowed:?}");
    assert!(w.files("far", "INBOX").is_empty());

    // Delete against change: far deletes, near flags -> the change wins.
    w.put("far", "INBOX", "9.x.far:2,", &msg("x"));
    w.sync();
    fs::remove_file(w.root("far").join("INBOX/cur/9.x.far:2,")).expect("rm");
    let near_file = fs::read_dir(w.root("near").join("INBOX/cur"))
        .expect("dir")
        .flatten()
        .chain(
            fs::read_dir(w.root("near").join("INBOX/new"))
                .expect("dir")
                .flatten(),
        )
        .next()
        .expect("x on near")
        .path();
    let key = near_file
        .file_name()
        .expect("name")
        .to_string_lossy()
        .split(":2,")
        .next()
        .unwrap_or_default()
        .to_string();
    fs::rename(
        &near_file,
        w.root("near").join("INBOX/cur").join(format!("{key}:2,F")),
    )
    .expect("flag");
    let report = w.sync();
    assert_eq!(
        w.bodies("far", "INBOX"),
        vec![msg("x")],
        "copied back: {report:?}"
    );
    assert_eq!(totals(&w.sync()), (0, 0, 0, 0, 0));
}

#[test]
fn a_vanished_maildir_deletes_nothing() {
    let w = World::new();
    w.put("far", "INBOX", "1.a.far:2,S", &msg("a"));
    w.sync();
    fs::remove_dir_all(w.root("near")).expect("unmount");
    fs::create_dir_all(w.root("near")).expect("empty root");
    let report = w.sync();
    assert_eq!(report.exit_status().code(), 4, "{report:?}");
    assert_eq!(w.files("far", "INBOX").len(), 1);
    let _ = PerSide::new(0, 0)[Side::Far];
}

/// A run killed after delivering a file but before recording its pair
/// leaves a pending intent; the next run adopts the file instead of copying
/// the message again, and abandons an intent whose effect never happened.
#[test]
fn an_interrupted_copy_is_adopted_not_duplicated() {
    use ferry_core::MessageKey;
    use ferry_state::{IntentAction, NewIntent, Pair};
    let w = World::new();
    w.put("far", "INBOX", "1.a.far:2,S", &msg("a"));
    w.put("far", "INBOX", "2.b.far:2,", &msg("b"));
    {
        let mut state = State::open(&w.dir.path().join("state.sqlite")).expect("state");
        let folder = state
            .add_folder(&PerSide::new("INBOX".into(), "INBOX".into()))
            .expect("folder");
        let intent = |far_key: &str, near_key: &str| {
            let mut pair = Pair::new(folder);
            pair.keys = PerSide::new(
                Some(MessageKey::Name(far_key.into())),
                Some(MessageKey::Name(near_key.into())),
            );
            NewIntent {
                side: Side::Near,
                folder,
                pair: None,
                action: IntentAction::Deliver { pair },
            }
        };
        state
            .record_intents(&[
                intent("1.a.far", "1700000000.M1P1.crashed"),
                intent("2.b.far", "1700000000.M2P1.never"),
            ])
            .expect("journal");
    }
    // The first delivery happened before the crash; the second did not.
    w.put("near", "INBOX", "1700000000.M1P1.crashed:2,S", &msg("a"));
    let report = w.sync();
    assert_eq!(
        (report.recovered.adopted, report.recovered.abandoned),
        (1, 1),
        "{report:?}"
    );
    assert_eq!(
        totals(&report),
        (1, 0, 0, 0, 0),
        "only b is copied: {report:?}"
    );
    assert_eq!(w.bodies("near", "INBOX"), vec![msg("a"), msg("b")]);
    assert_eq!(totals(&w.sync()), (0, 0, 0, 0, 0));
}

/// Longer than the margin after which a Maildir's stamps prove it
/// unchanged (ferry_maildir's `FINE_MARGIN`).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

/// A folder that changed on one side only is planned from that side's
/// changes: the side proven unchanged is not listed, and the changes reach
/// it all the same, on the files the state names.
#[test]
fn a_side_proven_unchanged_is_not_listed_and_gets_the_other_sides_changes() {
    let w = World::new();
    w.put_unread_far_inbox(30);
    w.put("far", "INBOX", "40.k.far:2,S", &msg("k"));
    assert_eq!(totals(&w.sync()), (31, 0, 0, 0, 0));
    std::thread::sleep(SETTLE);
    // Both sides listed once more, settled: their stamps are the proof.
    assert_eq!(totals(&w.sync()), (0, 0, 0, 0, 0));
    std::thread::sleep(SETTLE);
    let (quiet, listed) = w.sync_counting();
    assert_eq!((quiet.unchanged, listed), (2, PerSide::new(0, 0)));

    // The server side: a flag on an unread message and on a read one, a
    // deletion. The local side is not listed.
    let far_inbox = w.root("far").join("INBOX/cur");
    rename_in(&far_inbox, "1.m.far:2,", "1.m.far:2,F");
    rename_in(&far_inbox, "40.k.far:2,S", "40.k.far:2,FS");
    fs::remove_file(far_inbox.join("2.m.far:2,")).expect("rm");
    let (changes, listed) = w.sync_counting();
    assert_eq!(totals(&changes), (0, 0, 2, 0, 1), "{changes:?}");
    assert_eq!(changes.one_side_unchanged, 1, "{changes:?}");
    // The server side is listed again, settled, as a message is missing.
    assert_eq!(listed.near, 0, "the local side is not listed");
    let near = w.names("near", "INBOX");
    assert_eq!(near.len(), 30);
    assert_eq!(near.iter().filter(|n| n.ends_with(":2,F")).count(), 1);
    assert_eq!(near.iter().filter(|n| n.ends_with(":2,FS")).count(), 1);
    assert_eq!(near.iter().filter(|n| n.starts_with("new/")).count(), 28);
    assert_eq!(w.bodies("near", "INBOX"), w.bodies("far", "INBOX"));

    // The mirror: a mail reader reads and deletes locally; the server side
    // is not listed, and a message it gains arrives all the same.
    std::thread::sleep(SETTLE);
    let unread = near.iter().find(|n| n.starts_with("new/")).expect("one");
    let near_inbox = w.root("near").join("INBOX");
    let key = unread.trim_start_matches("new/");
    rename_in(&near_inbox, unread, &format!("cur/{key}:2,S"));
    let gone = near.iter().filter(|n| n.starts_with("new/")).nth(1);
    fs::remove_file(near_inbox.join(gone.expect("another"))).expect("rm");
    let (changes, listed) = w.sync_counting();
    assert_eq!(totals(&changes), (0, 0, 1, 0, 1), "{changes:?}");
    assert_eq!(changes.one_side_unchanged, 1, "{changes:?}");
    assert_eq!(listed.far, 0, "the server side is not listed");
    assert_eq!(w.bodies("far", "INBOX"), w.bodies("near", "INBOX"));
    assert_eq!(w.names("far", "INBOX").len(), 29);

    std::thread::sleep(SETTLE);
    w.put("far", "INBOX", "50.n.far:2,", &msg("n"));
    let (new, listed) = w.sync_counting();
    assert_eq!(totals(&new), (1, 0, 0, 0, 0));
    // Listed once, as a message it holds unpaired could match the new one;
    // the delivery, with a fresh key, does not list it again.
    assert_eq!(listed.near, 1);
    let full = SyncOptions {
        full: true,
        ..SyncOptions::default()
    };
    assert_eq!(totals(&w.sync_with(&full)), (0, 0, 0, 0, 0));
    assert_eq!(w.bodies("far", "INBOX"), w.bodies("near", "INBOX"));
}

/// Where the state does not mirror a side, that side is listed: under
/// `sync = "pull"` a local deletion keeps its pair, and a later flag change
/// on the server must not be taken to a file that is gone.
#[test]
fn under_pull_a_pair_that_outlived_its_local_message_is_not_acted_on() {
    let w = World::new();
    w.put_unread_far_inbox(3);
    let pull = SyncOptions {
        policy: ferry_plan::folder::Policy {
            flow_into: PerSide::new(false, true),
            ..SyncOptions::default().policy
        },
        ..SyncOptions::default()
    };
    assert_eq!(totals(&w.sync_with(&pull)), (3, 0, 0, 0, 0));
    let gone = w.names("near", "INBOX").remove(0);
    fs::remove_file(w.root("near").join("INBOX").join(gone)).expect("rm");
    for _ in 0..2 {
        std::thread::sleep(SETTLE);
        assert_eq!(totals(&w.sync_with(&pull)), (0, 0, 0, 0, 0));
    }
    let far_inbox = w.root("far").join("INBOX/cur");
    for n in 0..3 {
        rename_in(
            &far_inbox,
            &format!("{n}.m.far:2,"),
            &format!("{n}.m.far:2,S"),
        );
    }
    let flags = w.sync_with(&pull);
    let failed: Vec<_> = flags.folders.values().flat_map(|f| &f.failed).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(flags.one_side_unchanged, 0, "{flags:?}");
    let near = w.names("near", "INBOX");
    assert_eq!(near.len(), 2);
    assert!(near.iter().all(|n| n.ends_with(":2,S")), "{near:?}");
}

/// A message left unpaired on a Maildir side (already marked deleted, so
/// not copied) is not hidden by leaving that side unlisted: the same
/// message arriving on the other side is paired with it, not copied again.
#[test]
fn an_unpaired_local_message_is_matched_not_duplicated() {
    let w = World::new();
    w.put("far", "INBOX", "1.a.far:2,", &msg("a"));
    w.put("near", "INBOX", "9.x.near:2,T", &msg("x"));
    assert_eq!(totals(&w.sync()), (1, 0, 0, 0, 0));
    for _ in 0..2 {
        std::thread::sleep(SETTLE);
        w.sync();
    }
    w.put("far", "INBOX", "2.x.far:2,", &msg("x"));
    let arrival = w.sync();
    assert_eq!(arrival.one_side_unchanged, 0, "{arrival:?}");
    let near = w.bodies("near", "INBOX");
    assert_eq!(
        near.iter().filter(|b| **b == msg("x")).count(),
        1,
        "{near:?}"
    );
}
