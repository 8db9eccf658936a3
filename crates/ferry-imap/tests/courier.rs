//! The session against a second real server: Courier-IMAP, run as a
//! `tunnel` (its imapd speaks IMAP on stdin/stdout, preauthenticated, as
//! mbsync users run it over ssh). Courier differs from Dovecot where it
//! matters: the `INBOX.` namespace with `.` as delimiter, no CONDSTORE,
//! QRESYNC, MOVE, LIST-STATUS or LITERAL+, its own response texts.

use ferry_imap::proto::command::LiteralData;
use ferry_imap::{
    AppendRequest, BodyItem, Error, SelectOptions, ServerOptions, Session, TlsMode, TraceDirection,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where scripts/install-test-deps unpacks Courier-IMAP (its package
/// conflicts with Dovecot's, so it is unpacked, not installed).
fn courier_root() -> PathBuf {
    std::env::var_os("FERRY_COURIER_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ferry-test/courier"))
}

fn courier(maildir: &Path) -> (Session, Arc<Mutex<Vec<String>>>) {
    let root = courier_root();
    let imapd = root.join("usr/bin/imapd");
    assert!(
        imapd.exists(),
        "Courier-IMAP's imapd is not at {}: run ./scripts/install-test-deps",
        imapd.display()
    );
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let mut options = ServerOptions::new("courier", TlsMode::None);
    options.tunnel = Some(format!(
        "cd '{}' && set -a && . '{}' && AUTHENTICATED=ferry exec '{}' Maildir",
        maildir.parent().expect("parent").display(),
        root.join("etc/courier/imapd").display(),
        imapd.display()
    ));
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = sent.clone();
    let session = Session::connect_traced(
        &options,
        Some(Box::new(move |dir, line| {
            if dir == TraceDirection::Sent {
                sink.lock().expect("trace").push(line.to_string());
            }
        })),
    )
    .expect("courier answers PREAUTH");
    (session, sent)
}

fn message(n: u32) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: courier {n}\r\nMessage-ID: <c{n}@test.ferry>\r\n\r\nbody {n}\r\n").into_bytes()
}

#[test]
fn every_command_ferry_uses_works_on_courier() {
    let home = tempfile::tempdir().expect("home");
    let (mut s, sent) = courier(&home.path().join("Maildir"));
    assert!(s.is_authenticated());
    assert_eq!(
        s.namespace().expect("NAMESPACE"),
        [("INBOX.".to_string(), Some('.'))]
    );
    s.create("INBOX.Work").expect("CREATE");
    s.create("INBOX.Old").expect("CREATE");
    s.rename("INBOX.Old", "INBOX.Older").expect("RENAME");
    let names: Vec<String> = s
        .list("", "*")
        .expect("LIST")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&"INBOX.Work".into()) && names.contains(&"INBOX.Older".into()),
        "{names:?}"
    );

    let mut uids = Vec::new();
    for n in 1..=3 {
        let result = s
            .append(AppendRequest {
                mailbox: "INBOX".into(),
                flags: vec!["\\Seen".into(), "$Label1".into()],
                internal_date: Some(1_700_000_000),
                message: LiteralData::Bytes(message(n)),
            })
            .expect("APPEND");
        uids.push(result.expect("Courier has UIDPLUS: APPENDUID").uid);
    }
    let statuses = s.list_with_status(true).expect("LIST + STATUS");
    let inbox = statuses
        .iter()
        .find(|(e, _)| e.name == "INBOX")
        .and_then(|(_, st)| st.clone())
        .expect("status");
    assert_eq!(inbox.messages, Some(3));

    let selected = s
        .select(
            "INBOX",
            &SelectOptions {
                condstore: true,
                ..Default::default()
            },
        )
        .expect("SELECT");
    assert_eq!(selected.exists, 3);
    assert_eq!(selected.highest_mod_seq, None, "no CONDSTORE on Courier");
    let (fetched, _) = s
        .uid_fetch("1:*", "UID FLAGS RFC822.SIZE INTERNALDATE", Some(1))
        .expect("FETCH");
    assert_eq!(
        fetched.iter().filter_map(|f| f.uid).collect::<Vec<_>>(),
        uids
    );
    assert!(
        fetched[0]
            .flags
            .as_ref()
            .expect("flags")
            .contains(&"$Label1".to_string()),
        "{fetched:?}"
    );

    s.uid_store(&uids[..1], false, &["\\Seen".into()], Some(1))
        .expect("STORE");
    s.uid_store(&uids[1..2], true, &["\\Flagged".into()], None)
        .expect("STORE");
    assert_eq!(
        s.search_message_id(1, "<c2@test.ferry>").expect("SEARCH"),
        [uids[1]]
    );
    let mut bodies = Vec::new();
    s.fetch_bodies(&uids, BodyItem::Full, &mut |_| Ok(Vec::new()), &mut |b| {
        bodies.push((b.uid, b.body));
        Ok(())
    })
    .expect("bodies");
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[2].1, message(3));

    s.uid_copy(&uids[..1], "INBOX.Work").expect("COPY");
    let err = s
        .uid_move(&uids[..1], "INBOX.Work")
        .expect_err("no MOVE on Courier");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    s.uid_store(&uids[..1], true, &["\\Deleted".into()], None)
        .expect("STORE");
    s.uid_expunge(&uids[..1]).expect("UID EXPUNGE");
    s.unselect().expect("leave without CLOSE");
    let left = s.status("INBOX", true).expect("STATUS");
    assert_eq!(left.messages, Some(2));
    assert_eq!(
        s.status("INBOX.Work", false).expect("STATUS").messages,
        Some(1)
    );
    s.logout().expect("LOGOUT");

    let sent = sent.lock().expect("trace").join("\n");
    for never in [
        "CONDSTORE",
        "CHANGEDSINCE",
        "UNCHANGEDSINCE",
        "UID MOVE",
        "+}",
        "CLOSE",
        " EXPUNGE\n",
    ] {
        assert!(!sent.contains(never), "{never} sent to Courier:\n{sent}");
    }
}

#[test]
fn hostile_mailbox_names_from_the_server_stay_names() {
    let home = tempfile::tempdir().expect("home");
    let (mut s, _) = courier(&home.path().join("Maildir"));
    let wire = ferry_imap::mutf7::encode("INBOX.Entwürfe & Co");
    s.create(&wire).expect("CREATE");
    let entries = s.list("", "*").expect("LIST");
    let entry = entries
        .iter()
        .find(|e| e.wire_name == wire)
        .expect("listed");
    assert_eq!(entry.name, "INBOX.Entwürfe & Co");
    assert_eq!(entry.delimiter, Some('.'));
}
