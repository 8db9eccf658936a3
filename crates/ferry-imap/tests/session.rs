//! The session against a real Dovecot: every command, over plain, STARTTLS
//! and implicit TLS, with all capabilities and with extensions hidden.

use ferry_imap::proto::command::LiteralData;
use ferry_imap::proto::response::{ResponseCode, Untagged};
use ferry_imap::{
    AppendRequest, AuthMechanism, BodyItem, CompressPolicy, Credentials, Error, IdleEvent, Secret,
    SelectOptions, ServerOptions, Session, TlsMode, TraceDirection,
};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn message(n: usize, body_len: usize) -> Vec<u8> {
    let mut m = format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: message {n}\r\nMessage-ID: <m{n}@test.ferry>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\n"
    )
    .into_bytes();
    while m.len() < body_len {
        m.extend_from_slice(b"All work and no play makes a dull message body.\r\n");
    }
    m
}

fn options(dovecot: &Dovecot, tls: TlsMode) -> ServerOptions {
    let mut options = ServerOptions::new("127.0.0.1", tls);
    options.port = match tls {
        TlsMode::Implicit => dovecot.imaps_port(),
        _ => dovecot.imap_port(),
    };
    options.ca_file = Some(dovecot.cert_pem_path());
    options.read_timeout = Duration::from_secs(20);
    options
}

fn credentials(mechanism: AuthMechanism) -> Credentials {
    Credentials {
        user: USER.name.into(),
        secret: Secret::new(USER.password),
        mechanism,
    }
}

type Trace = Arc<Mutex<Vec<(TraceDirection, String)>>>;

/// Connects and logs in with a recorded trace.
fn login(options: &ServerOptions) -> (Session, Trace) {
    let trace: Trace = Arc::default();
    let sink = trace.clone();
    let mut session = Session::connect_traced(
        options,
        Some(Box::new(move |dir, line| {
            sink.lock().expect("trace").push((dir, line.to_string()))
        })),
    )
    .expect("connect");
    session
        .login(&credentials(AuthMechanism::Auto))
        .expect("login");
    (session, trace)
}

fn sent_lines(trace: &Trace) -> Vec<String> {
    let trace = trace.lock().expect("trace");
    trace
        .iter()
        .filter(|(d, _)| *d == TraceDirection::Sent)
        .map(|(_, l)| l.clone())
        .collect()
}

fn append(session: &mut Session, mailbox: &str, flags: &[&str], body: Vec<u8>) -> u32 {
    let result = session
        .append(AppendRequest {
            mailbox: mailbox.into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date: Some(1_700_000_000),
            message: LiteralData::Bytes(body),
        })
        .expect("append");
    result.map(|r| r.uid).unwrap_or(0)
}

/// Runs every command once and checks its effect on the server.
fn exercise_every_command(dovecot: &Dovecot, options: &ServerOptions) -> Trace {
    let (mut s, trace) = login(options);
    assert!(s.is_authenticated());
    s.id(&[("name", "ferry-test")]).expect("ID");
    s.enable(&["CONDSTORE", "QRESYNC"]).expect("ENABLE");
    let namespaces = s.namespace().expect("NAMESPACE");
    assert_eq!(namespaces, [(String::new(), Some('/'))]);
    s.create("Work").expect("CREATE");
    s.create("Old").expect("CREATE");
    s.rename("Old", "Older").expect("RENAME");
    s.subscribe("Older").expect("SUBSCRIBE");
    s.create("Gone").expect("CREATE");
    s.delete("Gone").expect("DELETE");
    let names: Vec<String> = s
        .list("", "*")
        .expect("LIST")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(
        names.contains(&"Work".to_string()) && names.contains(&"Older".to_string()),
        "{names:?}"
    );

    let first = append(&mut s, "INBOX", &["\\Seen"], message(1, 500));
    append(&mut s, "INBOX", &[], message(2, 600));
    let listed = s.list_with_status(true).expect("LIST with status");
    let inbox = listed
        .iter()
        .find(|(e, _)| e.name == "INBOX")
        .and_then(|(_, st)| st.clone())
        .expect("INBOX status");
    assert_eq!(inbox.messages, Some(2));
    let status = s.status("INBOX", true).expect("STATUS");
    assert_eq!(status.messages, Some(2));

    let selected = s
        .select(
            "INBOX",
            &SelectOptions {
                condstore: true,
                ..Default::default()
            },
        )
        .expect("SELECT");
    assert_eq!(selected.exists, 2);
    assert!(selected.uid_validity.is_some());
    let (fetched, _) = s
        .uid_fetch("1:*", "UID FLAGS RFC822.SIZE INTERNALDATE", None)
        .expect("FETCH");
    assert_eq!(fetched.len(), 2);
    if first != 0 {
        assert_eq!(fetched[0].uid, Some(first));
    }
    assert_eq!(
        fetched[0].flags.as_deref(),
        Some(&["\\Seen".to_string()][..])
    );
    assert_eq!(
        ferry_core::date::parse_imap_date(fetched[0].internal_date.as_deref().expect("date")),
        Some(1_700_000_000)
    );

    let uids: Vec<u32> = fetched.iter().filter_map(|f| f.uid).collect();
    s.uid_store(&uids[1..], true, &["\\Flagged".into()], None)
        .expect("STORE +");
    s.uid_store(&uids[..1], false, &["\\Seen".into()], None)
        .expect("STORE -");
    let server = dovecot.messages(USER, "INBOX").expect("read back");
    assert_eq!(server[0].flags, Vec::<String>::new());
    assert_eq!(server[1].flags, ["\\Flagged"]);

    let hits = s.search_message_id(1, "<m2@test.ferry>").expect("SEARCH");
    assert_eq!(hits, [uids[1]]);

    let mut bodies = Vec::new();
    s.fetch_bodies(&uids, BodyItem::Full, &mut |_| Ok(Vec::new()), &mut |b| {
        bodies.push((b.uid, b.body));
        Ok(())
    })
    .expect("FETCH bodies");
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies
            .iter()
            .find(|(u, _)| *u == uids[1])
            .map(|(_, b)| b.clone()),
        Some(message(2, 600))
    );

    s.uid_copy(&uids[..1], "Work").expect("COPY");
    if s.has_capability("MOVE") {
        s.uid_move(&uids[1..], "Work").expect("MOVE");
    }
    if s.has_capability("UIDPLUS") {
        s.uid_store(&uids[..1], true, &["\\Deleted".into()], None)
            .expect("STORE");
        s.uid_expunge(&uids[..1]).expect("UID EXPUNGE");
    }
    s.noop().expect("NOOP");
    s.unselect().expect("UNSELECT");
    assert_eq!(
        dovecot.messages(USER, "Work").expect("Work").len(),
        if s.has_capability("MOVE") { 2 } else { 1 }
    );
    s.logout().expect("LOGOUT");
    trace
}

#[test]
fn every_command_over_plain_starttls_and_implicit_tls() {
    for tls in [TlsMode::None, TlsMode::StartTls, TlsMode::Implicit] {
        let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
        let options = options(&dovecot, tls);
        let trace = exercise_every_command(&dovecot, &options);
        let sent = sent_lines(&trace);
        assert_eq!(
            sent.iter().any(|l| l.ends_with("STARTTLS")),
            tls == TlsMode::StartTls,
            "{sent:?}"
        );
    }
}

#[test]
fn hidden_extensions_are_never_used() {
    let dovecot = Dovecot::start(DovecotOptions::minimal()).expect("dovecot");
    let trace = exercise_every_command(&dovecot, &options(&dovecot, TlsMode::None));
    let sent = sent_lines(&trace).join("\n");
    for forbidden in [
        "CONDSTORE",
        "QRESYNC",
        "UID MOVE",
        "UID EXPUNGE",
        "RETURN (STATUS",
        "+}",
        "CHANGEDSINCE",
        "UNCHANGEDSINCE",
        "COMPRESS",
    ] {
        assert!(
            !sent.contains(forbidden),
            "{forbidden} used against a server that hides it:\n{sent}"
        );
    }
    assert!(
        sent.contains("STATUS"),
        "STATUS is the fallback for LIST-STATUS:\n{sent}"
    );
}

#[test]
fn the_trace_of_a_login_holds_no_password() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    for mechanism in [
        AuthMechanism::Auto,
        AuthMechanism::Plain,
        AuthMechanism::Login,
    ] {
        let trace: Trace = Arc::default();
        let sink = trace.clone();
        let mut session = Session::connect_traced(
            &options(&dovecot, TlsMode::StartTls),
            Some(Box::new(move |dir, line| {
                sink.lock().expect("trace").push((dir, line.to_string()))
            })),
        )
        .expect("connect");
        session.login(&credentials(mechanism)).expect("login");
        let all: String = trace
            .lock()
            .expect("trace")
            .iter()
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        assert!(all.contains("<redacted>"), "{all}");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{}\0{}", USER.name, USER.password));
        assert!(
            !all.contains(USER.password) && !all.contains(&b64),
            "{mechanism:?} leaked:\n{all}"
        );
        assert!(!format!("{session:?}").contains(USER.password));
    }
}

#[test]
fn wrong_password_is_an_authentication_error() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let mut session = Session::connect(&options(&dovecot, TlsMode::Implicit)).expect("connect");
    let mut creds = credentials(AuthMechanism::Auto);
    creds.secret = Secret::new("wrong");
    let err = session.login(&creds).expect_err("must fail");
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err}");
    assert!(
        err.to_string().contains("ferry") && !err.to_string().contains("wrong"),
        "{err}"
    );
}

#[test]
fn pipelined_fetch_of_a_thousand_messages() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, trace) = login(&options(&dovecot, TlsMode::None));
    let requests = (0..1000)
        .map(|n| AppendRequest {
            mailbox: "INBOX".into(),
            flags: if n % 3 == 0 {
                vec!["\\Seen".into()]
            } else {
                Vec::new()
            },
            internal_date: None,
            message: LiteralData::Bytes(message(n, 300)),
        })
        .collect();
    let results = s.append_many(requests).expect("pipelined APPEND");
    assert_eq!(
        results.iter().filter(|r| matches!(r, Ok(Some(_)))).count(),
        1000
    );
    s.select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let uids: Vec<u32> = results
        .into_iter()
        .filter_map(|r| r.ok().flatten().map(|a| a.uid))
        .collect();
    let mut seen = Vec::new();
    s.fetch_bodies(&uids, BodyItem::Full, &mut |_| Ok(Vec::new()), &mut |b| {
        seen.push(b.uid);
        Ok(())
    })
    .expect("FETCH");
    seen.sort_unstable();
    assert_eq!(seen, uids);
    let appends = sent_lines(&trace)
        .iter()
        .filter(|l| l.contains("APPEND"))
        .count();
    assert_eq!(appends, 1000);
}

#[test]
fn append_with_synchronising_and_non_synchronising_literals() {
    for (options, plus) in [
        (DovecotOptions::default(), true),
        (DovecotOptions::hiding(&["LITERAL+"]), false),
    ] {
        let dovecot = Dovecot::start(options).expect("dovecot");
        let (mut s, trace) = login(&self::options(&dovecot, TlsMode::None));
        append(&mut s, "INBOX", &["$Label1"], message(7, 2000));
        let sent = sent_lines(&trace).join("\n");
        assert_eq!(sent.contains("+}"), plus, "{sent}");
        let server = dovecot.messages(USER, "INBOX").expect("read");
        assert_eq!(server.len(), 1);
        assert_eq!(server[0].flags, ["$Label1"]);
        assert_eq!(server[0].size, message(7, 2000).len() as u64);
    }
}

#[test]
fn a_50_mib_message_streams_through_a_writer() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    let big = message(1, 50 << 20);
    let len = big.len();
    append(&mut s, "INBOX", &[], big);
    s.select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let mut received = 0;
    let mut opened = Vec::new();
    s.fetch_bodies(
        &[1],
        BodyItem::Full,
        &mut |announced| {
            opened.push(announced);
            Ok(CountingWriter::default())
        },
        &mut |b| {
            received = b.body.0;
            Ok(())
        },
    )
    .expect("FETCH");
    assert_eq!(received, len, "every byte reached the writer");
    assert_eq!(
        opened,
        [len as u64],
        "one writer, opened before the bytes arrived"
    );
}

#[derive(Default)]
struct CountingWriter(usize);

impl std::io::Write for CountingWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0 += data.len();
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn qresync_select_reports_vanished_and_changed() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    assert_eq!(s.enable(&["QRESYNC"]).expect("ENABLE"), ["QRESYNC"]);
    assert!(
        s.has_capability("UNSELECT"),
        "ENABLED must not replace the capabilities"
    );
    for n in 0..5 {
        append(&mut s, "INBOX", &[], message(n, 300));
    }
    let first = s
        .select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let (validity, modseq) = (
        first.uid_validity.expect("validity"),
        first.highest_mod_seq.expect("modseq"),
    );
    s.unselect().expect("UNSELECT");
    let mut other = dovecot.client().expect("other client");
    other.expunge("INBOX", &[2, 4]).expect("expunge");
    other
        .add_flags("INBOX", &[5], &["\\Flagged"])
        .expect("flag");
    let again = s
        .select(
            "INBOX",
            &SelectOptions {
                qresync: Some((validity, modseq, Some("1:5".into()))),
                ..Default::default()
            },
        )
        .expect("QRESYNC SELECT");
    let vanished: Vec<u32> = again.vanished.iter().cloned().flatten().collect();
    assert_eq!(vanished, [2, 4]);
    assert_eq!(
        again
            .changed
            .iter()
            .filter_map(|f| f.uid)
            .collect::<Vec<_>>(),
        [5]
    );
    let (changed, _) = s
        .uid_fetch("1:*", "UID FLAGS", Some(modseq))
        .expect("CHANGEDSINCE");
    assert_eq!(
        changed.iter().filter_map(|f| f.uid).collect::<Vec<_>>(),
        [5]
    );
}

#[test]
fn unchangedsince_reports_modified() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    append(&mut s, "INBOX", &[], message(1, 300));
    let selected = s
        .select(
            "INBOX",
            &SelectOptions {
                condstore: true,
                ..Default::default()
            },
        )
        .expect("SELECT");
    let modseq = selected.highest_mod_seq.expect("CONDSTORE");
    dovecot
        .client()
        .expect("other")
        .add_flags("INBOX", &[1], &["\\Seen"])
        .expect("flag");
    let result = s
        .uid_store(&[1], true, &["\\Flagged".into()], Some(modseq))
        .expect("STORE");
    assert_eq!(result.modified, [1]);
    assert_eq!(
        dovecot.messages(USER, "INBOX").expect("read")[0].flags,
        ["\\Seen"]
    );
}

#[test]
fn idle_wakes_when_another_client_appends() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    s.select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let addr = dovecot.imap_addr();
    let appender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut other = ferry_testkit::client::Client::login(addr, USER).expect("login");
        other
            .append("INBOX", &[], None, &message(9, 300))
            .expect("append");
    });
    let stop = AtomicBool::new(false);
    let event = s.idle(Duration::from_secs(20), &stop).expect("IDLE");
    appender.join().expect("appender");
    match event {
        IdleEvent::Changed(changes) => assert!(
            changes.iter().any(|u| matches!(u, Untagged::Exists(1))),
            "{changes:?}"
        ),
        other => panic!("IDLE ended without the change: {other:?}"),
    }
    let stop = AtomicBool::new(true);
    assert_eq!(
        s.idle(Duration::from_secs(5), &stop).expect("IDLE"),
        IdleEvent::Stopped
    );
    s.noop().expect("session still usable");
}

#[test]
fn compress_deflate_round_trips() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    assert!(
        !s.compress(CompressPolicy::Auto).expect("auto"),
        "auto stays off on loopback"
    );
    assert!(s.compress(CompressPolicy::Always).expect("always"));
    append(&mut s, "INBOX", &[], message(1, 100_000));
    s.select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let (fetched, _) = s.uid_fetch("1:*", "UID RFC822.SIZE", None).expect("FETCH");
    assert_eq!(fetched[0].size, Some(message(1, 100_000).len() as u32));
}

#[test]
fn server_errors_carry_their_codes() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    let err = s
        .append(AppendRequest {
            mailbox: "Missing".into(),
            flags: vec![],
            internal_date: None,
            message: LiteralData::Bytes(message(1, 100)),
        })
        .expect_err("no such mailbox");
    assert_eq!(err.code(), Some(&ResponseCode::TryCreate), "{err}");
    s.create("Dup").expect("create");
    let err = s.create("Dup").expect_err("exists");
    assert_eq!(err.code(), Some(&ResponseCode::AlreadyExists), "{err}");
    let err = s
        .select("Nope", &SelectOptions::default())
        .expect_err("missing");
    assert!(matches!(err, Error::No { .. }), "{err}");
    s.noop().expect("the session survives NO");
}

#[test]
fn utf7_mailbox_names_round_trip() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&options(&dovecot, TlsMode::None));
    let wire = ferry_imap::mutf7::encode("Entwürfe & Ärger");
    s.create(&wire).expect("create");
    let entries = s.list("", "*").expect("LIST");
    let entry = entries
        .iter()
        .find(|e| e.wire_name == wire)
        .expect("listed");
    assert_eq!(entry.name, "Entwürfe & Ärger");
}

#[test]
fn close_logs_out_over_plain_and_tls() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    for tls in [TlsMode::None, TlsMode::Implicit] {
        let mut s = Session::connect(&options(&dovecot, tls)).expect("connect");
        s.login(&credentials(AuthMechanism::Auto)).expect("login");
        s.close();
    }
    // The server read both LOGOUTs: it logs each session out rather than
    // seeing a dropped connection.
    let logged_out = || dovecot.log().matches("Disconnected: Logged out").count();
    for _ in 0..100 {
        if logged_out() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(logged_out(), 2, "{}", dovecot.log());
}
