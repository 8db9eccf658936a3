//! The IMAP store against a private Dovecot: full-featured, minimal (no
//! CONDSTORE, QRESYNC, MOVE, UIDPLUS, LIST-STATUS, LITERAL+) and
//! Courier-like (`INBOX.` prefix, `.` delimiter). Each test has its own
//! server.

#[path = "support/exercise.rs"]
mod exercise;

use exercise::{Collect, exercise, message, write_all};
use ferry_core::store::{BodyTarget, ErrorClass, FlagChange, Incoming, Markers, Store, StoreError};
use ferry_core::{Flag, Flags, MessageKey, Uid};
use ferry_engine::imap_store::{ImapStore, ImapStoreError, Opener};
use ferry_imap::{AuthMechanism, Credentials, Secret, ServerOptions, Session, TlsMode};
use ferry_testkit::fake_server::{Script, ScriptedServer};
use ferry_testkit::proxy::{Cut, Direction, FaultProxy, Faults};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Trace = Arc<Mutex<Vec<String>>>;

/// A store on `dovecot`, and the lines it sent.
fn store(dovecot: &Dovecot) -> (ImapStore, Trace) {
    store_at(dovecot.imap_port())
}

/// A store on the server at `port` of 127.0.0.1, and the lines it sent.
fn store_at(port: u16) -> (ImapStore, Trace) {
    let sent: Trace = Arc::default();
    let session = session_at(port, &sent).expect("session");
    (ImapStore::new(session).expect("store"), sent)
}

/// A logged-in session to 127.0.0.1:`port` whose sent lines go to `sent`.
fn session_at(port: u16, sent: &Trace) -> ferry_imap::Result<Session> {
    let mut options = ServerOptions::new("127.0.0.1", TlsMode::None);
    options.port = port;
    options.read_timeout = Duration::from_secs(60);
    let sink = sent.clone();
    let mut session = Session::connect_traced(
        &options,
        Some(Box::new(move |dir, line| {
            if dir == ferry_imap::TraceDirection::Sent {
                sink.lock().expect("trace").push(line.to_string());
            }
        })),
    )?;
    session.login(&Credentials {
        user: USER.name.into(),
        secret: Secret::new(USER.password),
        mechanism: AuthMechanism::Auto,
    })?;
    Ok(session)
}

fn start(options: DovecotOptions) -> Dovecot {
    Dovecot::start(options).expect("dovecot")
}

fn courier_like() -> DovecotOptions {
    DovecotOptions {
        separator: '.',
        namespace_prefix: "INBOX.".into(),
        ..Default::default()
    }
}

fn uid(n: u32) -> MessageKey {
    MessageKey::Uid(Uid::new(n).expect("non-zero"))
}

fn flags(letters: &str) -> Flags {
    Flags::from_maildir_info(letters)
}

fn names(store: &mut ImapStore) -> Vec<String> {
    let mut names: Vec<String> = store
        .list_folders()
        .expect("list")
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    names
}

fn server_flags(dovecot: &Dovecot, mailbox: &str) -> Vec<(u32, Vec<String>)> {
    dovecot
        .messages(USER, mailbox)
        .expect("read back")
        .into_iter()
        .map(|m| (m.uid, m.flags))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn names_map_both_ways_on_dovecot() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    assert_eq!((s.names().prefix(), s.names().delimiter()), ("", Some('/')));
    assert_eq!(
        s.local_name("Entw&APw-rfe/2024").as_deref(),
        Some("Entwürfe/2024")
    );
    assert_eq!(s.wire_name("Entwürfe/2024"), "Entw&APw-rfe/2024");
    assert_eq!(s.local_name("inbox").as_deref(), Some("INBOX"));
    s.create_folder("Entwürfe/2024").expect("create");
    let listed = dovecot.client().expect("client").list().expect("LIST");
    assert!(
        listed.contains(&"Entw&APw-rfe/2024".to_string()),
        "{listed:?}"
    );
    let local = names(&mut s);
    assert!(local.contains(&"Entwürfe/2024".to_string()) && local.contains(&"INBOX".to_string()));
    for name in &local {
        assert!(
            listed.contains(&s.wire_name(name)),
            "{name} maps back to a listed name"
        );
    }
}

#[test]
fn names_map_both_ways_on_a_courier_like_server() {
    let dovecot = start(courier_like());
    let (mut s, _) = store(&dovecot);
    assert_eq!(
        (s.names().prefix(), s.names().delimiter()),
        ("INBOX.", Some('.'))
    );
    assert_eq!(s.wire_name("A/B"), "INBOX.A.B");
    assert_eq!(s.local_name("INBOX.A.B").as_deref(), Some("A/B"));
    assert_eq!(s.local_name("INBOX").as_deref(), Some("INBOX"));
    assert_eq!(
        s.local_name("INBOX.a/b"),
        None,
        "a '/' in a name is refused for now"
    );
    s.create_folder("A/B").expect("create");
    s.create_folder("Entwürfe").expect("create");
    let listed = dovecot.client().expect("client").list().expect("LIST");
    for wire in ["INBOX.A.B", "INBOX.Entw&APw-rfe"] {
        assert!(listed.contains(&wire.to_string()), "{wire} in {listed:?}");
    }
    let local = names(&mut s);
    for name in ["A/B", "Entwürfe", "INBOX"] {
        assert!(local.contains(&name.to_string()), "{name} in {local:?}");
    }
    assert!(local.iter().all(|n| !n.starts_with("INBOX.")), "{local:?}");
    let refused = s.create_folder("v1.2").expect_err("'.' is the delimiter");
    assert_eq!(refused.class(), ErrorClass::Folder);
    let (keys, _) = exercise(&mut s, "A/B");
    assert!(keys.iter().all(Option::is_some));
}

/// Where the server has LIST-STATUS, the folder listing goes out with
/// ENABLE and NAMESPACE at login, and the first listing uses it.
#[test]
fn the_listing_goes_out_at_login_and_serves_the_first_list() {
    let dovecot = start(DovecotOptions::default());
    dovecot
        .client()
        .expect("client")
        .create("Archive")
        .expect("create");
    let (mut s, sent) = store(&dovecot);
    let lists = |sent: &Trace| {
        let sent = sent.lock().expect("trace");
        sent.iter().filter(|l| l.contains(" LIST ")).count()
    };
    let commands: Vec<String> = sent.lock().expect("trace").clone();
    let at = |verb: &str| commands.iter().position(|l| l.contains(verb));
    assert!(
        matches!((at(" NAMESPACE"), at(" LIST \"\" \"*\" RETURN (STATUS")), (Some(n), Some(l)) if n < l),
        "the listing was not sent after NAMESPACE at login: {commands:?}"
    );
    assert_eq!(names(&mut s), ["Archive", "INBOX"]);
    assert_eq!(lists(&sent), 1, "the first list sent LIST again");
    assert_eq!(names(&mut s), ["Archive", "INBOX"]);
    assert_eq!(lists(&sent), 2, "a later list is a fresh one");
}

/// A command made before the first listing drops the one sent at login:
/// its responses are not taken for that command's, and the listing that
/// follows sees the folders as they are then.
#[test]
fn a_command_before_the_first_list_drops_the_listing_sent_at_login() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    s.create_folder("Fresh").expect("create");
    assert_eq!(names(&mut s), ["Fresh", "INBOX"]);
    let (keys, _) = exercise(&mut s, "Fresh");
    assert!(keys.iter().all(Option::is_some));
}

/// A scripted server's login, up to the three commands a store sends
/// together after it (ENABLE, NAMESPACE, the folder listing); the caller
/// scripts their answers (tags f2, f3, f4).
fn listing_sent_at_login() -> Script {
    Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n")
        .expect("AUTHENTICATE PLAIN *")
        .send(
            b"{tag} OK [CAPABILITY IMAP4rev1 ENABLE NAMESPACE LIST-STATUS CONDSTORE QRESYNC] \
              logged in\r\n",
        )
        .expect("ENABLE CONDSTORE QRESYNC")
        .expect("NAMESPACE")
        .expect("LIST \"\" \"*\" RETURN (STATUS (*))")
}

/// A NAMESPACE without a delimiter makes the store ask for it with
/// `LIST "" ""`: the listing sent at login is read first, so neither takes
/// the other's responses, and it still serves the first list.
#[test]
fn the_listing_sent_at_login_is_read_before_the_delimiter_is_asked() {
    let script = listing_sent_at_login()
        .send(
            b"* ENABLED CONDSTORE QRESYNC\r\nf2 OK enabled\r\n\
              * NAMESPACE ((\"\" NIL)) NIL NIL\r\nf3 OK namespace\r\n\
              * LIST () \".\" INBOX\r\n\
              * STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 7 HIGHESTMODSEQ 9)\r\n\
              * LIST () \".\" Work\r\n\
              * STATUS Work (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8 HIGHESTMODSEQ 1)\r\n\
              f4 OK listed\r\n",
        )
        .expect("LIST \"\" \"\"")
        .send(b"* LIST (\\Noselect) \".\" \"\"\r\n{tag} OK delimiter\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let sent: Trace = Arc::default();
    let session = session_at(server.port(), &sent).expect("session");
    let mut s = ImapStore::new(session).expect("store");
    assert_eq!(s.names().delimiter(), Some('.'));
    let listed = s.list_folders().expect("list");
    let described: Vec<(String, Option<u32>, Option<u32>)> = listed
        .iter()
        .map(|f| {
            let validity = f.identity.validity.map(|v| v.get());
            (f.name.clone(), validity, f.markers.uid_next)
        })
        .collect();
    assert_eq!(
        described,
        [
            ("INBOX".to_string(), Some(7), Some(3)),
            ("Work".to_string(), Some(8), Some(1))
        ]
    );
    drop(s);
    server.finish().assert_succeeded();
}

/// A NO to the listing sent at login concerns nobody when another command
/// comes first: that command gets its own answer, the store stays usable,
/// and the listing that follows is a fresh one.
#[test]
fn a_refused_listing_sent_at_login_does_not_fail_the_command_after_it() {
    let script = listing_sent_at_login()
        .send(
            b"* ENABLED CONDSTORE QRESYNC\r\nf2 OK enabled\r\n\
              * NAMESPACE ((\"\" \"/\")) NIL NIL\r\nf3 OK namespace\r\n\
              f4 NO [UNAVAILABLE] busy, try later\r\n",
        )
        .expect("CREATE Work")
        .send(b"{tag} OK created\r\n")
        .expect("LIST \"\" \"*\" RETURN (STATUS (*))")
        .send(
            b"* LIST () \"/\" INBOX\r\n\
              * STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 7 HIGHESTMODSEQ 1)\r\n\
              * LIST () \"/\" Work\r\n\
              * STATUS Work (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 8 HIGHESTMODSEQ 1)\r\n\
              {tag} OK listed\r\n",
        );
    let server = ScriptedServer::start(script).expect("server");
    let sent: Trace = Arc::default();
    let session = session_at(server.port(), &sent).expect("session");
    let mut s = ImapStore::new(session).expect("store");
    s.create_folder("Work").expect("CREATE gets its own answer");
    assert_eq!(names(&mut s), ["INBOX", "Work"]);
    drop(s);
    server.finish().assert_succeeded();
}

/// A store on a real Courier-IMAP (run as a `tunnel`, preauthenticated,
/// as ferry-imap's Courier tests do) over `home/Maildir`.
fn courier(home: &std::path::Path) -> (ImapStore, Trace) {
    let root = std::env::var_os("FERRY_COURIER_ROOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/ferry-test/courier".into());
    let imapd = root.join("usr/bin/imapd");
    assert!(
        imapd.exists(),
        "Courier-IMAP's imapd is not at {}: run ./scripts/install-test-deps",
        imapd.display()
    );
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(home.join("Maildir").join(sub)).expect("maildir");
    }
    let mut options = ServerOptions::new("courier", TlsMode::None);
    options.tunnel = Some(format!(
        "cd '{}' && set -a && . '{}' && AUTHENTICATED=ferry exec '{}' Maildir",
        home.display(),
        root.join("etc/courier/imapd").display(),
        imapd.display()
    ));
    let sent: Trace = Arc::default();
    let sink = sent.clone();
    let session = Session::connect_traced(
        &options,
        Some(Box::new(move |dir, line| {
            if dir == ferry_imap::TraceDirection::Sent {
                sink.lock().expect("trace").push(line.to_string());
            }
        })),
    )
    .expect("courier answers PREAUTH");
    (ImapStore::new(session).expect("store"), sent)
}

#[test]
fn the_round_trip_works_on_courier() {
    let home = tempfile::tempdir().expect("home");
    let (mut s, sent) = courier(home.path());
    assert_eq!(
        (s.names().prefix(), s.names().delimiter()),
        ("INBOX.", Some('.'))
    );
    s.create_folder("Work/Sub").expect("create");
    s.create_folder("Other").expect("create");
    let local = names(&mut s);
    assert!(local.contains(&"Work/Sub".to_string()), "{local:?}");
    let (keys, _) = exercise(&mut s, "Work/Sub");
    let keys: Vec<MessageKey> = if keys.iter().all(Option::is_some) {
        keys.into_iter().flatten().collect()
    } else {
        exercise::sample()
            .iter()
            .map(|(incoming, body)| {
                let id = incoming.message_id.as_deref().expect("id");
                s.find_appended("Work/Sub", 1, Some(id), body.len() as u64)
                    .expect("search")
                    .expect("found")
            })
            .collect()
    };
    let change = FlagChange {
        key: keys[2].clone(),
        add: flags("F"),
        remove: Flags::new(),
    };
    assert!(s.set_flags("Work/Sub", &[change]).expect("flags")[0].is_ok());
    let moved = s
        .move_messages("Work/Sub", &keys[..1], "Other")
        .expect("move");
    assert!(moved[0].is_ok(), "{moved:?}");
    assert!(s.remove("Work/Sub", &keys[1..2]).expect("remove")[0].is_ok());
    assert_eq!(s.snapshot("Other").expect("snapshot").messages.len(), 1);
    let left = s.snapshot("Work/Sub").expect("snapshot").messages;
    let flagged = left.iter().find(|m| m.key == keys[2]).expect("still there");
    assert!(flagged.flags.contains(&Flag::Flagged));
    let sent = sent.lock().expect("trace").join("\n");
    for forbidden in ["+}", "CONDSTORE", "UID MOVE", "CLOSE"] {
        assert!(!sent.contains(forbidden), "{forbidden}:\n{sent}");
    }
}

#[test]
fn folders_are_created_renamed_and_deleted() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    s.create_folder("Work/Sub").expect("create");
    s.create_folder("Work/Sub")
        .expect("creating an existing folder is success");
    s.create_folder("Old").expect("create");
    s.rename_folder("Old", "New").expect("rename");
    let listed = names(&mut s);
    assert!(
        listed.contains(&"New".into()) && !listed.contains(&"Old".into()),
        "{listed:?}"
    );
    assert!(listed.contains(&"Work/Sub".into()), "{listed:?}");

    let exists = s
        .rename_folder("New", "Work/Sub")
        .expect_err("target exists");
    assert!(
        matches!(exists, ImapStoreError::FolderExists { .. }),
        "{exists}"
    );
    let missing = s
        .rename_folder("Nope", "Other")
        .expect_err("no such folder");
    assert_eq!(missing.class(), ErrorClass::Folder, "{missing}");
    assert!(
        s.rename_folder("INBOX", "Old Mail").is_err(),
        "INBOX is never renamed"
    );

    dovecot
        .client()
        .expect("client")
        .append("New", &[], None, &message(1, 200))
        .expect("append");
    let full = s.delete_folder("New").expect_err("not empty");
    assert!(
        matches!(full, ImapStoreError::NotEmpty { messages: 1, .. }),
        "{full}"
    );
    s.delete_folder("Work/Sub").expect("delete");
    s.delete_folder("Work/Sub")
        .expect("deleting a deleted folder is success");

    let statuses = s.list_folders().expect("list");
    let inbox = statuses.iter().find(|f| f.name == "INBOX").expect("INBOX");
    let (validity, uid_next, messages) = dovecot.mailbox_status(USER, "INBOX").expect("status");
    assert_eq!(inbox.identity.validity.map(|v| v.get()), Some(validity));
    assert_eq!(inbox.markers.uid_next, Some(uid_next));
    assert_eq!(inbox.markers.messages, Some(messages));
    assert!(inbox.markers.mod_seq.is_some() && inbox.selectable);
    let new = statuses.iter().find(|f| f.name == "New").expect("New");
    assert_eq!(new.markers.messages, Some(1));
}

#[test]
fn a_snapshot_sees_what_another_client_appended() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    other
        .append(
            "INBOX",
            &["\\Seen", "$Label1"],
            Some(1_700_000_000),
            &message(1, 400),
        )
        .expect("append");
    other
        .append(
            "INBOX",
            &["\\Flagged", "\\Answered"],
            None,
            &message(2, 30_000),
        )
        .expect("append");
    let (mut s, _) = store(&dovecot);
    let snapshot = s.snapshot("INBOX").expect("snapshot");
    let (validity, uid_next, _) = dovecot.mailbox_status(USER, "INBOX").expect("status");
    assert_eq!(snapshot.identity.validity.map(|v| v.get()), Some(validity));
    assert_eq!(snapshot.markers.uid_next, Some(uid_next));
    assert_eq!(snapshot.markers.messages, Some(2));
    assert!(snapshot.markers.mod_seq.is_some());
    let got: Vec<(MessageKey, Flags, Option<u64>)> = snapshot
        .messages
        .into_iter()
        .map(|m| (m.key, m.flags, m.size))
        .collect();
    let labelled: Flags = [Flag::Seen, Flag::Keyword("$Label1".into())]
        .into_iter()
        .collect();
    assert_eq!(
        got,
        [
            (uid(1), labelled, Some(message(1, 400).len() as u64)),
            (uid(2), flags("FR"), Some(message(2, 30_000).len() as u64)),
        ]
    );
}

#[test]
fn messages_round_trip_with_flags_and_dates() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, sent) = store(&dovecot);
    s.create_folder("Work").expect("create");
    let (keys, got) = exercise(&mut s, "Work");
    assert_eq!(
        keys,
        [Some(uid(1)), Some(uid(2)), Some(uid(3))],
        "APPENDUID"
    );
    assert!(got.largest_chunk <= 64 << 10);
    let sent = sent.lock().expect("trace").join("\n");
    assert!(
        sent.contains("+}"),
        "LITERAL+ is used where offered:\n{sent}"
    );
    assert!(!sent.contains("Recent"));
    let caps = s.capabilities();
    assert!(
        caps.atomic_move && caps.selective_expunge && caps.change_tracking && caps.reports_new_keys
    );
}

#[test]
fn keywords_are_appended_as_given() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    let body = message(7, 500);
    let incoming = Incoming {
        source: MessageKey::Name("k".into()),
        flags: [
            Flag::Draft,
            Flag::Keyword("$Label1".into()),
            Flag::Keyword("Junk".into()),
        ]
        .into_iter()
        .collect(),
        internal_date: None,
        size: body.len() as u64,
        message_id: None,
        planned_key: None,
    };
    write_all(&mut s, "INBOX", &[(incoming, body)]);
    assert_eq!(
        server_flags(&dovecot, "INBOX"),
        [(1, strings(&["$Label1", "Junk", "\\Draft"]))]
    );
}

#[test]
fn a_minimal_server_gets_no_extension_it_lacks() {
    let dovecot = start(DovecotOptions::minimal());
    let (mut s, sent) = store(&dovecot);
    let caps = s.capabilities();
    assert!(
        !caps.atomic_move
            && !caps.selective_expunge
            && !caps.change_tracking
            && !caps.reports_new_keys
    );
    s.create_folder("Work").expect("create");
    s.create_folder("Archive/2024").expect("create");
    let before = s
        .list_folders()
        .expect("list without LIST-STATUS")
        .into_iter()
        .find(|f| f.name == "Work")
        .expect("listed");
    assert_eq!(before.markers.messages, Some(0));
    let (keys, _) = exercise(&mut s, "Work");
    assert_eq!(keys, [None, None, None], "no APPENDUID without UIDPLUS");

    let since = Markers {
        uid_next: before.markers.uid_next,
        ..Markers::default()
    };
    let mut found = Vec::new();
    for (i, (incoming, body)) in exercise::sample().iter().enumerate() {
        let id = incoming.message_id.as_deref().expect("id");
        let key = s
            .find_stored("Work", Some(id), body.len() as u64, &since)
            .expect("search")
            .expect("found");
        assert_eq!(key, uid(i as u32 + 1));
        found.push(key);
    }
    assert_eq!(
        s.find_appended("Work", 1, Some("<nobody@test.ferry>"), 10)
            .expect("search"),
        None
    );

    let removed = s.remove("Work", &found[..1]).expect("remove");
    assert!(removed.iter().all(Result::is_ok));
    let moved = s
        .move_messages("Work", &found[1..2], "Archive/2024")
        .expect("move");
    assert!(matches!(moved[..], [Ok(None)]), "{moved:?}");
    let work = server_flags(&dovecot, "Work");
    assert_eq!(
        work.len(),
        3,
        "without UIDPLUS nothing is expunged: {work:?}"
    );
    assert!(work[0].1.contains(&"\\Deleted".to_string()), "{work:?}");
    assert!(work[1].1.contains(&"\\Deleted".to_string()), "{work:?}");
    assert!(!work[2].1.contains(&"\\Deleted".to_string()), "{work:?}");
    assert_eq!(
        dovecot.messages(USER, "Archive/2024").expect("read").len(),
        1
    );

    // A message without a Message-ID is found by its size among the new.
    assert_eq!(
        s.find_stored("Work", None, 10, &since).expect("search"),
        None,
        "every message there has a Message-ID"
    );
    let draft = b"Subject: no id\r\n\r\ndraft\r\n";
    let mut client = dovecot.client().expect("client");
    client.append("Work", &[], None, draft).expect("append");
    let size = draft.len() as u64;
    assert_eq!(
        s.find_stored("Work", None, size, &since).expect("search"),
        Some(uid(4))
    );
    assert_eq!(
        s.find_stored("Work", None, size + 1, &since)
            .expect("search"),
        None
    );
    assert_eq!(
        s.find_stored("Work", None, size, &Markers::default())
            .expect("search"),
        None,
        "without a starting UID nothing identifies it"
    );

    let sent = sent.lock().expect("trace").join("\n");
    for forbidden in [
        "UID EXPUNGE",
        "UID MOVE",
        "+}",
        "CONDSTORE",
        "QRESYNC",
        "RETURN (STATUS",
        "CHANGEDSINCE",
        "CLOSE",
        "\nf1 EXPUNGE",
    ] {
        assert!(
            !sent.contains(forbidden),
            "{forbidden} sent to a server without it:\n{sent}"
        );
    }
    assert!(!sent.lines().any(|l| l.ends_with(" EXPUNGE")), "{sent}");
}

#[test]
fn flags_are_set_and_cleared_in_groups() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    for n in 1..=3 {
        other
            .append("INBOX", &["\\Seen"], None, &message(n, 300))
            .expect("append");
    }
    let (mut s, sent) = store(&dovecot);
    let change = |key, add: &str, remove: &str| FlagChange {
        key,
        add: flags(add),
        remove: flags(remove),
    };
    let results = s
        .set_flags(
            "INBOX",
            &[
                change(uid(1), "F", ""),
                change(uid(2), "F", ""),
                change(uid(3), "R", "S"),
                change(MessageKey::Name("maildir-name".into()), "F", ""),
            ],
        )
        .expect("set_flags");
    assert!(results[..3].iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        results[3].as_ref().expect_err("not a UID").class(),
        ErrorClass::Message
    );
    assert_eq!(
        server_flags(&dovecot, "INBOX"),
        [
            (1, strings(&["\\Flagged", "\\Seen"])),
            (2, strings(&["\\Flagged", "\\Seen"])),
            (3, strings(&["\\Answered"])),
        ]
    );
    let stores: Vec<String> = sent
        .lock()
        .expect("trace")
        .iter()
        .filter(|l| l.contains("UID STORE"))
        .cloned()
        .collect();
    assert_eq!(
        stores.len(),
        3,
        "one command per group and direction: {stores:?}"
    );
    assert!(
        stores.iter().all(|l| l.contains("FLAGS.SILENT")),
        "{stores:?}"
    );
}

#[test]
fn removal_expunges_only_our_messages() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    for n in 1..=3 {
        other
            .append("INBOX", &[], None, &message(n, 300))
            .expect("append");
    }
    other
        .add_flags("INBOX", &[3], &["\\Deleted"])
        .expect("mark");
    let (mut s, _) = store(&dovecot);
    let removed = s.remove("INBOX", &[uid(1)]).expect("remove");
    assert!(removed.iter().all(Result::is_ok));
    assert_eq!(
        server_flags(&dovecot, "INBOX"),
        [(2, vec![]), (3, strings(&["\\Deleted"]))],
        "another client's \\Deleted message stays"
    );
    let again = s.remove("INBOX", &[uid(1)]).expect("remove again");
    assert!(again.iter().all(Result::is_ok), "removing twice is fine");
}

#[test]
fn a_move_keeps_the_message() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    for n in 1..=2 {
        other
            .append("INBOX", &["\\Seen"], None, &message(n, 300))
            .expect("append");
    }
    let before = dovecot.messages(USER, "INBOX").expect("read");
    let (mut s, sent) = store(&dovecot);
    s.create_folder("Archive").expect("create");
    let moved = s
        .move_messages("INBOX", &[uid(2)], "Archive")
        .expect("move");
    let new_key = match &moved[..] {
        [Ok(Some(key))] => key.clone(),
        other => panic!("{other:?}"),
    };
    let archive = dovecot.messages(USER, "Archive").expect("read");
    assert_eq!(archive.len(), 1);
    assert_eq!(new_key, uid(archive[0].uid), "COPYUID gives the new key");
    assert_eq!(
        archive[0].guid, before[1].guid,
        "moved, not copied by APPEND"
    );
    assert_eq!(archive[0].flags, ["\\Seen"]);
    assert_eq!(dovecot.messages(USER, "INBOX").expect("read").len(), 1);
    let missing = s
        .move_messages("INBOX", &[uid(1)], "Nowhere")
        .expect("batch");
    let err = missing[0].as_ref().expect_err("no such folder");
    assert_eq!(err.class(), ErrorClass::Folder, "{err}");
    let sent = sent.lock().expect("trace").join("\n");
    assert!(
        sent.contains("UID MOVE") && !sent.contains("APPEND"),
        "{sent}"
    );
}

#[test]
fn a_message_expunged_meanwhile_fails_alone() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    let bodies = [message(1, 100_000), message(2, 300), message(3, 300)];
    for body in &bodies {
        other.append("INBOX", &[], None, body).expect("append");
    }
    let (mut s, _) = store(&dovecot);
    let snapshot = s.snapshot("INBOX").expect("snapshot");
    assert_eq!(snapshot.messages.len(), 3);
    other.expunge("INBOX", &[2]).expect("expunge");
    let mut got = Collect::default();
    let results = s
        .read_bodies("INBOX", &[uid(1), uid(2), uid(3), uid(99)], &mut got)
        .expect("the batch goes on");
    let outcome = |key: &MessageKey| {
        let (_, r) = results
            .iter()
            .find(|(k, _)| k == key)
            .expect("a result per key");
        r.as_ref().map_err(|e| e.class())
    };
    assert_eq!(outcome(&uid(1)), Ok(&()));
    assert_eq!(outcome(&uid(2)), Err(ErrorClass::Message));
    assert_eq!(outcome(&uid(3)), Ok(&()));
    assert_eq!(outcome(&uid(99)), Err(ErrorClass::Message));
    let read: Vec<(MessageKey, &Vec<u8>)> = got
        .messages
        .iter()
        .map(|(i, b)| (i.source.clone(), b))
        .collect();
    assert_eq!(read, [(uid(1), &bodies[0]), (uid(3), &bodies[2])]);
    assert_eq!(got.ended, 2);
}

#[test]
fn a_refused_append_fails_only_its_message() {
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    let body = message(1, 400);
    let incoming = Incoming {
        source: MessageKey::Name("a".into()),
        flags: Flags::new(),
        internal_date: None,
        size: body.len() as u64,
        message_id: None,
        planned_key: None,
    };
    {
        let mut target = s.begin_writes("Missing").expect("begin_writes");
        target
            .begin(&incoming)
            .expect("LITERAL+: the refusal comes later");
        target.write(&body).expect("write");
        target.end().expect("end");
    }
    let results = s.finish_writes().expect("finish_writes");
    let err = results[0].1.as_ref().expect_err("no such folder");
    assert_eq!(err.class(), ErrorClass::Folder, "{err}");
    let (keys, _) = {
        s.create_folder("Missing").expect("create");
        exercise(&mut s, "Missing")
    };
    assert_eq!(keys.len(), 3, "the store goes on");
}

#[test]
fn a_short_message_loses_the_session_but_not_the_earlier_ones() {
    let dovecot = start(DovecotOptions::hiding(&["LITERAL+"]));
    let (mut s, _) = store(&dovecot);
    let body = message(1, 400);
    let whole = Incoming {
        source: MessageKey::Name("whole".into()),
        flags: Flags::new(),
        internal_date: None,
        size: body.len() as u64,
        message_id: None,
        planned_key: None,
    };
    let short = Incoming {
        source: MessageKey::Name("short".into()),
        size: body.len() as u64 + 10,
        ..whole.clone()
    };
    {
        let mut target = s.begin_writes("INBOX").expect("begin_writes");
        target.begin(&whole).expect("begin");
        target.write(&body).expect("write");
        target.end().expect("end");
        target.begin(&short).expect("begin");
        target.write(&body).expect("write");
        assert!(target.end().is_err(), "10 bytes are missing");
    }
    let results = s.finish_writes().expect("every message gets a result");
    let of = |name: &str| {
        let key = MessageKey::Name(name.into());
        results
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r.as_ref().map_err(|e| e.class()))
    };
    assert_eq!(of("whole"), Some(Ok(&Some(uid(1)))));
    assert_eq!(of("short"), Some(Err(ErrorClass::Store)));
    let refused = s.snapshot("INBOX").expect_err("the session is gone");
    assert_eq!(refused.class(), ErrorClass::Store);
    assert_eq!(dovecot.messages(USER, "INBOX").expect("read").len(), 1);
}

#[test]
fn a_connection_lost_while_reading_keeps_what_arrived() {
    let dovecot = start(DovecotOptions::default());
    let mut other = dovecot.client().expect("client");
    let bodies = [message(1, 200_000), message(2, 2_000_000), message(3, 300)];
    for body in &bodies {
        other.append("INBOX", &[], None, body).expect("append");
    }
    let keys = [uid(1), uid(2), uid(3)];
    // A first run shows where the second body starts on the wire.
    let clean = FaultProxy::start(dovecot.imap_addr(), Faults::default()).expect("proxy");
    let (mut s, _) = store_at(clean.port());
    let read = s
        .read_bodies("INBOX", &keys, &mut Collect::default())
        .expect("read");
    assert!(read.iter().all(|(_, r)| r.is_ok()));
    let wire = clean.recording().server_to_client_text();
    let second = wire
        .find("* 2 FETCH (UID 2 BODY[] {")
        .expect("the second body") as u64;
    // The second run loses the connection in the middle of it.
    let cut = Cut::fin(Direction::ServerToClient, second + 1_000_000);
    let faulty =
        FaultProxy::start(dovecot.imap_addr(), Faults::default().with_cut(cut)).expect("proxy");
    let (mut s, _) = store_at(faulty.port());
    let mut got = Collect::default();
    let results = s
        .read_bodies("INBOX", &keys, &mut got)
        .expect("a result per message");
    let classes: Vec<Result<(), ErrorClass>> = results
        .iter()
        .map(|(_, r)| r.as_ref().map(drop).map_err(|e| e.class()))
        .collect();
    assert_eq!(
        classes,
        [Ok(()), Err(ErrorClass::Store), Err(ErrorClass::Store)]
    );
    assert_eq!((got.ended, &got.messages[0].1), (1, &bodies[0]));
    let after = s.snapshot("INBOX").expect_err("the store is broken");
    assert_eq!(after.class(), ErrorClass::Store);
}

/// A deterministic byte stream: `len` bytes of a CRLF message.
struct Generator {
    len: u64,
    produced: u64,
    hash: u64,
}

impl Generator {
    fn new(len: u64) -> Self {
        Generator {
            len,
            produced: 0,
            hash: FNV_OFFSET,
        }
    }

    /// The next piece (at most 64 KiB), `None` at the end.
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.produced == self.len {
            return None;
        }
        let header = b"From: big@example.org\r\nMessage-ID: <big@test.ferry>\r\n\r\n";
        let mut piece = Vec::with_capacity(64 << 10);
        while piece.len() < 64 << 10 && self.produced < self.len {
            let at = self.produced as usize;
            let byte = match header.get(at) {
                Some(&b) => b,
                None if at % 64 == 62 => b'\r',
                None if at % 64 == 63 => b'\n',
                None => b'a' + (at / 64 % 26) as u8,
            };
            piece.push(byte);
            self.produced += 1;
        }
        self.hash = fnv(self.hash, &piece);
        Some(piece)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Counts and hashes what it is given, holding nothing.
#[derive(Default)]
struct Count {
    begun: Vec<Incoming>,
    bytes: u64,
    largest_chunk: usize,
    hash: u64,
    ended: usize,
}

impl BodyTarget for Count {
    fn begin(&mut self, message: &Incoming) -> io::Result<()> {
        self.begun.push(message.clone());
        self.hash = FNV_OFFSET;
        Ok(())
    }
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.bytes += data.len() as u64;
        self.largest_chunk = self.largest_chunk.max(data.len());
        self.hash = fnv(self.hash, data);
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        self.ended += 1;
        Ok(())
    }
}

/// A field of /proc/self/status, in bytes.
fn memory(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// Resets the process's peak resident memory to what it holds now, and
/// returns that.
fn reset_peak_memory() -> Option<u64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    memory("VmRSS:")
}

#[test]
fn a_60_mib_message_streams_in_and_out() {
    const SIZE: u64 = 60 << 20;
    let dovecot = start(DovecotOptions::default());
    let (mut s, _) = store(&dovecot);
    // Other tests run in this process meanwhile and move its peak too: a
    // round trip whose peak stays low proves the message was never held
    // whole; up to three are tried.
    let mut peaks = Vec::new();
    for _ in 0..3 {
        match round_trip_60_mib(&dovecot, &mut s, SIZE) {
            Some(grown) if grown >= SIZE / 2 => peaks.push(grown),
            _ => return,
        }
    }
    panic!("the message was held whole? the peak grew by {peaks:?} bytes");
}

/// Appends a generated message of `size` bytes and reads it back, checking
/// both; returns how much the process's peak memory grew meanwhile.
fn round_trip_60_mib(dovecot: &Dovecot, s: &mut ImapStore, size: u64) -> Option<u64> {
    let baseline = reset_peak_memory();
    let mut generator = Generator::new(size);
    let incoming = Incoming {
        source: MessageKey::Name("big".into()),
        flags: flags("S"),
        internal_date: Some(1_700_000_000),
        size,
        message_id: Some("<big@test.ferry>".into()),
        planned_key: None,
    };
    {
        let mut target = s.begin_writes("INBOX").expect("begin_writes");
        target.begin(&incoming).expect("begin");
        while let Some(piece) = generator.next() {
            target.write(&piece).expect("write");
        }
        target.end().expect("end");
    }
    let results = s.finish_writes().expect("finish_writes");
    let key = match &results[..] {
        [(_, Ok(Some(key)))] => key.clone(),
        other => panic!("{other:?}"),
    };
    let stored = dovecot.messages(USER, "INBOX").expect("read");
    assert!(stored.iter().all(|m| m.size == size));
    let mut count = Count::default();
    let read = s
        .read_bodies("INBOX", &[key], &mut count)
        .expect("read_bodies");
    assert!(read[0].1.is_ok(), "{read:?}");
    assert_eq!((count.bytes, count.ended), (size, 1));
    assert_eq!(count.hash, generator.hash, "the same bytes came back");
    assert_eq!(count.begun[0].size, size);
    assert_eq!(count.begun[0].internal_date, Some(1_700_000_000));
    assert!(
        count.largest_chunk <= 64 << 10,
        "one chunk at a time: {}",
        count.largest_chunk
    );
    let (baseline, peak) = (baseline?, memory("VmHWM:")?);
    Some(peak.saturating_sub(baseline))
}

/// A store on `dovecot` with up to `helpers` helper sessions; the lines
/// the main session sent, and those every helper sent.
fn store_with_helpers(dovecot: &Dovecot, helpers: usize) -> (ImapStore, Trace, Trace) {
    let (store, sent) = store(dovecot);
    let helper_sent: Trace = Arc::default();
    let port = dovecot.imap_port();
    let sink = helper_sent.clone();
    let opener: Opener = Arc::new(move |_| session_at(port, &sink));
    (store.with_helpers(opener, helpers), sent, helper_sent)
}

/// Waits until `trace` holds a line containing each of `parts`.
fn wait_for(trace: &Trace, parts: &[&str]) {
    for _ in 0..500 {
        let lines = trace.lock().expect("trace").join("\n");
        if parts.iter().all(|p| lines.contains(p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{parts:?} never sent: {:?}", trace.lock().expect("trace"));
}

fn two_folders(dovecot: &Dovecot) {
    let mut other = dovecot.client().expect("client");
    for (folder, n) in [("F1", 1), ("F2", 2)] {
        other.create(folder).expect("create");
        for i in 0..n {
            other
                .append(folder, &["\\Seen"], None, &message(i, 300))
                .expect("append");
        }
    }
}

#[test]
fn helpers_for_folders_expected_ahead_connect_before_any_is_asked_for() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, _, helper_sent) = store_with_helpers(&dovecot, 3);
    let logins = || {
        let lines = helper_sent.lock().expect("trace");
        lines.iter().filter(|l| l.contains("ENABLE")).count()
    };
    s.expect_ahead(2);
    // Nothing is queued yet, and two helpers log in.
    for _ in 0..500 {
        if logins() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(logins(), 2, "{:?}", helper_sent.lock().expect("trace"));
    s.list_ahead("F1", None);
    s.list_ahead("F2", None);
    wait_for(&helper_sent, &["SELECT F1", "SELECT F2"]);
    assert_eq!(s.snapshot("F2").expect("F2").messages.len(), 2);
    // The two took the work: no third was opened for it.
    assert_eq!(logins(), 2, "{:?}", helper_sent.lock().expect("trace"));
}

#[test]
fn folders_asked_for_ahead_are_listed_on_helper_sessions() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut plain, _) = store(&dovecot);
    let expected = [
        plain.snapshot("F1").expect("F1"),
        plain.snapshot("F2").expect("F2"),
    ];
    let (mut s, sent, helper_sent) = store_with_helpers(&dovecot, 2);
    assert_eq!(s.ahead_depth(), 2);
    s.list_ahead("F1", None);
    s.list_ahead("F2", None);
    wait_for(&helper_sent, &["SELECT F1", "SELECT F2"]);
    let got = [s.snapshot("F1").expect("F1"), s.snapshot("F2").expect("F2")];
    for (got, expected) in got.iter().zip(&expected) {
        assert_eq!(got.identity, expected.identity);
        assert_eq!(got.messages, expected.messages);
    }
    assert!(
        !sent
            .lock()
            .expect("trace")
            .iter()
            .any(|l| l.contains("SELECT"))
    );
    let changed = s
        .set_flags(
            "F2",
            &[FlagChange {
                key: uid(1),
                add: flags("F"),
                remove: Flags::default(),
            }],
        )
        .expect("flags");
    assert!(changed.iter().all(Result::is_ok));
    let main = sent.lock().expect("trace").join("\n");
    assert!(
        main.contains("SELECT F2") && main.contains("UID STORE"),
        "{main}"
    );
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(
        !helpers.contains("UID STORE"),
        "helpers only list: {helpers}"
    );
    s.close();
    assert!(
        sent.lock()
            .expect("trace")
            .iter()
            .any(|l| l.contains("LOGOUT")),
        "the main session logs out"
    );
    assert!(
        helper_sent
            .lock()
            .expect("trace")
            .iter()
            .any(|l| l.contains("LOGOUT"))
    );
}

#[test]
fn a_folder_no_helper_took_is_listed_by_the_main_session() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    // A port nothing listens on: no helper ever connects.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let (s, sent) = store(&dovecot);
    let opener: Opener = Arc::new(move |_| session_at(port, &Trace::default()));
    let mut s = s.with_helpers(opener, 3);
    s.list_ahead("F1", None);
    s.list_ahead("F2", None);
    assert_eq!(s.snapshot("F2").expect("F2").messages.len(), 2);
    assert_eq!(s.snapshot("F1").expect("F1").messages.len(), 1);
    let main = sent.lock().expect("trace").join("\n");
    assert!(
        main.contains("SELECT F1") && main.contains("SELECT F2"),
        "{main}"
    );
}

/// Lists F1 and then F2 (so the session leaves F1: Dovecot ends a session
/// whose selected folder changes UIDVALIDITY), then gives F1 a new one.
fn list_then_renumber_f1(dovecot: &Dovecot, s: &mut ImapStore) {
    let before = s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    let validity = before.identity.validity.expect("validity").get();
    dovecot
        .reset_uidvalidity(USER, "F1", validity + 7)
        .expect("new validity");
}

#[test]
fn a_folder_whose_uidvalidity_changed_after_its_snapshot_is_not_acted_on() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, _) = store(&dovecot);
    list_then_renumber_f1(&dovecot, &mut s);
    let change = FlagChange {
        key: uid(1),
        add: flags("F"),
        remove: Flags::default(),
    };
    // Asked twice, refused twice: the refusal left the folder, so the
    // second ask selects (and checks) it anew rather than finding it
    // selected.
    for ask in ["first", "second"] {
        let err = s
            .set_flags("F1", std::slice::from_ref(&change))
            .expect_err(ask);
        assert!(
            matches!(err, ImapStoreError::ValidityChanged { .. }),
            "{ask}: {err}"
        );
        assert_eq!(err.class(), ErrorClass::Folder);
        assert!(err.to_string().contains("next run"), "{err}");
    }
    assert_eq!(server_flags(&dovecot, "F1"), [(1, strings(&["\\Seen"]))]);
    // A new snapshot sees the new UIDVALIDITY, and then the folder is
    // acted on again.
    s.snapshot("F1").expect("F1 again");
    s.snapshot("F2").expect("F2 again");
    let changed = s.set_flags("F1", &[change]).expect("flags");
    assert!(changed.iter().all(Result::is_ok));
    assert_eq!(
        server_flags(&dovecot, "F1"),
        [(1, strings(&["\\Flagged", "\\Seen"]))]
    );
}

#[test]
fn a_flag_change_to_a_message_expunged_meanwhile_is_not_taken_as_made() {
    // VANISHED names the UID (QRESYNC); EXPUNGE a sequence number.
    for (options, searched) in [
        (DovecotOptions::default(), false),
        (DovecotOptions::minimal(), true),
    ] {
        let dovecot = start(options);
        let mut other = dovecot.client().expect("client");
        for n in 1..=3 {
            other
                .append("INBOX", &[], None, &message(n, 300))
                .expect("append");
        }
        let (mut s, sent) = store(&dovecot);
        assert_eq!(s.snapshot("INBOX").expect("snapshot").messages.len(), 3);
        other.expunge("INBOX", &[2]).expect("expunge");
        let change = |n| FlagChange {
            key: uid(n),
            add: flags("F"),
            remove: Flags::default(),
        };
        let results = s
            .set_flags("INBOX", &[change(1), change(2), change(3)])
            .expect("the batch goes on");
        let classes: Vec<Option<ErrorClass>> = results
            .iter()
            .map(|r| r.as_ref().err().map(StoreError::class))
            .collect();
        assert_eq!(classes, [None, Some(ErrorClass::Message), None]);
        assert!(matches!(&results[1], Err(ImapStoreError::Vanished { .. })));
        assert_eq!(
            server_flags(&dovecot, "INBOX"),
            [(1, strings(&["\\Flagged"])), (3, strings(&["\\Flagged"]))]
        );
        let sent = sent.lock().expect("trace").join("\n");
        assert_eq!(sent.contains("UID SEARCH"), searched, "{sent}");
        // Without another client's expunge, no search follows a STORE.
        let results = s.set_flags("INBOX", &[change(1)]).expect("flags");
        assert!(results.iter().all(Result::is_ok));
    }
}

#[test]
fn flag_changes_handed_ahead_are_pushed_on_a_helper_session() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, sent, helper_sent) = store_with_helpers(&dovecot, 1);
    s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    let changes = [FlagChange {
        key: uid(1),
        add: flags("F"),
        remove: Flags::default(),
    }];
    s.set_flags_ahead("F1", &changes);
    wait_for(
        &helper_sent,
        &["SELECT F1", "UID STORE 1 +FLAGS.SILENT (\\Flagged)"],
    );
    let results = s.set_flags("F1", &changes).expect("flags");
    assert!(results.iter().all(Result::is_ok));
    let main = sent.lock().expect("trace").join("\n");
    assert!(!main.contains("UID STORE"), "{main}");
    assert_eq!(
        server_flags(&dovecot, "F1"),
        [(1, strings(&["\\Flagged", "\\Seen"]))]
    );
}

#[test]
fn removals_handed_ahead_are_made_on_a_helper_session() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, sent, helper_sent) = store_with_helpers(&dovecot, 1);
    s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    s.remove_ahead("F2", &[uid(1)]);
    wait_for(&helper_sent, &["SELECT F2", "UID EXPUNGE 1"]);
    let results = s.remove("F2", &[uid(1)]).expect("remove");
    assert!(results.iter().all(Result::is_ok));
    let main = sent.lock().expect("trace").join("\n");
    assert!(
        !main.contains("UID STORE") && !main.contains("EXPUNGE"),
        "{main}"
    );
    assert_eq!(server_flags(&dovecot, "F2"), [(2, strings(&["\\Seen"]))]);
}

#[test]
fn a_helper_refuses_removals_and_moves_where_the_uidvalidity_changed() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, _, helper_sent) = store_with_helpers(&dovecot, 1);
    list_then_renumber_f1(&dovecot, &mut s);
    s.remove_ahead("F1", &[uid(1)]);
    s.move_ahead("F1", &[uid(1)], "F2");
    wait_for(&helper_sent, &["SELECT F1"]);
    let refused = |err: ImapStoreError| matches!(err, ImapStoreError::ValidityChanged { .. });
    let removal = s.remove("F1", &[uid(1)]).expect_err("refused");
    assert!(refused(removal));
    let moving = s.move_messages("F1", &[uid(1)], "F2").expect_err("refused");
    assert!(refused(moving));
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(
        !helpers.contains("UID STORE") && !helpers.contains("UID MOVE"),
        "{helpers}"
    );
    assert_eq!(server_flags(&dovecot, "F1"), [(1, strings(&["\\Seen"]))]);
    assert_eq!(server_flags(&dovecot, "F2").len(), 2);
}

#[test]
fn changes_handed_ahead_that_no_helper_started_are_withdrawn_on_cancel() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (store, _) = store(&dovecot);
    let helper_sent: Trace = Arc::default();
    // The helper connects only once released: until then, what is handed
    // ahead stays queued.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (port, sink) = (dovecot.imap_port(), helper_sent.clone());
    let opener: Opener = Arc::new(move |_| {
        let _ = gate.lock().expect("gate").recv();
        session_at(port, &sink)
    });
    let mut s = store.with_helpers(opener, 1);
    s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    s.remove_ahead("F2", &[uid(1)]);
    s.move_ahead("F1", &[uid(1)], "F2");
    s.cancel_ahead();
    s.list_ahead("F1", None);
    release.send(()).expect("release");
    // Queued after the withdrawn work, the listing is done once it would
    // have been.
    wait_for(&helper_sent, &["SELECT F1"]);
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(
        !helpers.contains("EXPUNGE") && !helpers.contains("MOVE"),
        "{helpers}"
    );
    assert_eq!(server_flags(&dovecot, "F1").len(), 1);
    assert_eq!(server_flags(&dovecot, "F2").len(), 2);
}

#[test]
fn moves_handed_ahead_are_made_on_a_helper_session() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, sent, helper_sent) = store_with_helpers(&dovecot, 1);
    s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    s.move_ahead("F2", &[uid(1)], "F1");
    wait_for(&helper_sent, &["UID MOVE 1 F1"]);
    let results = s.move_messages("F2", &[uid(1)], "F1").expect("move");
    assert_eq!(results.len(), 1);
    assert_eq!(*results[0].as_ref().expect("moved"), Some(uid(2)));
    let main = sent.lock().expect("trace").join("\n");
    assert!(!main.contains("MOVE"), "{main}");
    assert_eq!(server_flags(&dovecot, "F1").len(), 2);
    assert_eq!(server_flags(&dovecot, "F2"), [(2, strings(&["\\Seen"]))]);
}

#[test]
fn a_helper_refuses_flag_changes_where_the_uidvalidity_changed() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let (mut s, _, helper_sent) = store_with_helpers(&dovecot, 1);
    list_then_renumber_f1(&dovecot, &mut s);
    let changes = [FlagChange {
        key: uid(1),
        add: flags("F"),
        remove: Flags::default(),
    }];
    s.set_flags_ahead("F1", &changes);
    wait_for(&helper_sent, &["SELECT F1"]);
    let err = s.set_flags("F1", &changes).expect_err("refused");
    assert!(
        matches!(err, ImapStoreError::ValidityChanged { .. }),
        "{err}"
    );
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(!helpers.contains("UID STORE"), "{helpers}");
    assert_eq!(server_flags(&dovecot, "F1"), [(1, strings(&["\\Seen"]))]);
}

/// The same when the folder is selected anew for the change: the server
/// says nothing of an expunge that came before the SELECT, so the UID
/// SEARCH behind the stores tells.
#[test]
fn a_flag_change_in_a_folder_selected_anew_misses_no_expunge() {
    let dovecot = start(DovecotOptions::default());
    two_folders(&dovecot);
    let mut other = dovecot.client().expect("client");
    other
        .append("F1", &[], None, &message(5, 300))
        .expect("append");
    let (mut s, sent) = store(&dovecot);
    s.snapshot("F1").expect("F1");
    s.snapshot("F2").expect("F2");
    other.expunge("F1", &[1]).expect("expunge");
    let change = |n| FlagChange {
        key: uid(n),
        add: flags("F"),
        remove: Flags::default(),
    };
    let results = s.set_flags("F1", &[change(1), change(2)]).expect("batch");
    assert!(
        matches!(&results[0], Err(ImapStoreError::Vanished { .. })),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    let sent = sent.lock().expect("trace").join("\n");
    assert!(sent.contains("UID SEARCH UID 1:2"), "{sent}");
}

/// Puts `count` small messages (and one of 1.5 MiB, the last) straight
/// into the server's INBOX; their bodies, in UID order.
fn many_messages(dovecot: &Dovecot, count: usize) -> Vec<Vec<u8>> {
    let maildir = dovecot.maildir(USER);
    for dir in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(dir)).expect("maildir");
    }
    let cur = maildir.join("cur");
    let mut bodies: Vec<Vec<u8>> = (0..count).map(|n| message(n, 2_000)).collect();
    bodies.push(message(count, 1_500_000));
    for (n, body) in bodies.iter().enumerate() {
        let name = cur.join(format!("{}.M{n}P1.test:2,S", 1_700_000_000 + n));
        std::fs::write(name, body).expect("write");
    }
    dovecot.fix_ownership().expect("ownership");
    bodies
}

/// Reads every message of INBOX with `s`: the bodies, in UID order.
fn read_inbox(s: &mut ImapStore) -> Vec<Vec<u8>> {
    let keys: Vec<MessageKey> = (s.snapshot("INBOX").expect("snapshot").messages)
        .into_iter()
        .map(|m| m.key)
        .collect();
    let mut got = Collect::default();
    let results = s.read_bodies("INBOX", &keys, &mut got).expect("read");
    assert_eq!(results.len(), keys.len());
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(got.ended, keys.len(), "each message once");
    let mut bodies: Vec<(u32, Vec<u8>)> = (got.messages.into_iter())
        .map(|(incoming, body)| (uid_number(&incoming.source), body))
        .collect();
    bodies.sort();
    bodies.into_iter().map(|(_, body)| body).collect()
}

fn uid_number(key: &MessageKey) -> u32 {
    match key {
        MessageKey::Uid(uid) => uid.get(),
        MessageKey::Name(name) => panic!("not a UID: {name}"),
    }
}

/// Has the helpers of `s` connect (they list a folder ahead) before a test
/// gives them work.
fn warm_up(s: &mut ImapStore, dovecot: &Dovecot, helper_sent: &Trace) {
    dovecot.client().expect("client").create("F0").expect("F0");
    s.list_ahead("F0", None);
    wait_for(helper_sent, &["SELECT F0"]);
    s.snapshot("F0").expect("F0");
}

#[test]
fn a_large_read_is_spread_over_the_helper_sessions() {
    let dovecot = start(DovecotOptions::default());
    let bodies = many_messages(&dovecot, 900);
    let (mut s, sent, helper_sent) = store_with_helpers(&dovecot, 2);
    warm_up(&mut s, &dovecot, &helper_sent);
    assert!(read_inbox(&mut s) == bodies, "every body, intact");
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(
        helpers.contains("SELECT INBOX") && helpers.contains("(UID BODY.PEEK[])"),
        "helpers read bodies: {helpers}"
    );
    let large = format!("UID FETCH {} (UID BODY.PEEK[])", bodies.len());
    assert!(!helpers.contains(&large), "the large one is not a helper's");
    let main = sent.lock().expect("trace").join("\n");
    assert!(main.contains(&large), "the main session streams it: {main}");
}

#[test]
fn a_helper_lost_in_the_middle_of_a_read_leaves_its_messages_to_the_main_session() {
    let dovecot = start(DovecotOptions::default());
    let bodies = many_messages(&dovecot, 900);
    // The helper's connection ends in its first piece of the read.
    let cut = Cut::fin(Direction::ServerToClient, 60_000);
    let proxy =
        FaultProxy::start(dovecot.imap_addr(), Faults::default().with_cut(cut)).expect("proxy");
    let (s, sent) = store(&dovecot);
    let helper_sent: Trace = Arc::default();
    let (port, sink) = (proxy.port(), helper_sent.clone());
    let opener: Opener = Arc::new(move |_| session_at(port, &sink));
    let mut s = s.with_helpers(opener, 1);
    warm_up(&mut s, &dovecot, &helper_sent);
    assert!(read_inbox(&mut s) == bodies, "every body, intact");
    let helpers = helper_sent.lock().expect("trace").join("\n");
    assert!(helpers.contains("(UID BODY.PEEK[])"), "{helpers}");
    let main = sent.lock().expect("trace").join("\n");
    let fetched_by_main = main.matches("(UID BODY.PEEK[])").count();
    assert!(
        fetched_by_main > 250 && fetched_by_main < bodies.len(),
        "the main session read its own and the helper's unfinished piece: {fetched_by_main}"
    );
}
