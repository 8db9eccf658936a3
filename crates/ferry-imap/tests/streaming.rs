//! APPENDs whose literal the caller streams piecewise, and flag changes
//! pipelined with their own results, against a real Dovecot.

use ferry_imap::proto::response::ResponseCode;
use ferry_imap::{
    AppendHeader, AuthMechanism, Credentials, Error, FlagUpdate, Secret, SelectOptions,
    ServerOptions, Session, TlsMode, TraceDirection,
};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Sent = Arc<Mutex<Vec<String>>>;

fn login(dovecot: &Dovecot) -> (Session, Sent) {
    let mut options = ServerOptions::new("127.0.0.1", TlsMode::None);
    options.port = dovecot.imap_port();
    options.read_timeout = Duration::from_secs(20);
    let sent: Sent = Arc::default();
    let sink = sent.clone();
    let mut session = Session::connect_traced(
        &options,
        Some(Box::new(move |dir, line| {
            if dir == TraceDirection::Sent {
                sink.lock().expect("trace").push(line.to_string());
            }
        })),
    )
    .expect("connect");
    session
        .login(&Credentials {
            user: USER.name.into(),
            secret: Secret::new(USER.password),
            mechanism: AuthMechanism::Auto,
        })
        .expect("login");
    (session, sent)
}

fn message(n: usize, len: usize) -> Vec<u8> {
    let mut m =
        format!("From: a@example.org\r\nMessage-ID: <s{n}@test.ferry>\r\nSubject: {n}\r\n\r\n")
            .into_bytes();
    while m.len() < len {
        m.extend_from_slice(b"streamed line of a message body\r\n");
    }
    m
}

fn header(mailbox: &str, flags: &[&str]) -> AppendHeader {
    AppendHeader {
        mailbox: mailbox.into(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        internal_date: Some(1_700_000_000),
    }
}

fn stream(s: &mut Session, header: &AppendHeader, body: &[u8]) -> String {
    let tag = s.begin_append(header, body.len() as u64).expect("begin");
    for chunk in body.chunks(7000) {
        s.write_literal(chunk).expect("write");
    }
    s.end_literal().expect("end");
    tag
}

#[test]
fn streamed_appends_pipeline_with_either_literal() {
    for (options, plus) in [
        (DovecotOptions::default(), true),
        (DovecotOptions::hiding(&["LITERAL+"]), false),
    ] {
        let dovecot = Dovecot::start(options).expect("dovecot");
        let (mut s, sent) = login(&dovecot);
        let bodies = [message(1, 100), message(2, 200_000), message(3, 0)];
        let header = header("INBOX", &["\\Seen", "\\Recent", "$Label1"]);
        let tags: Vec<String> = bodies.iter().map(|b| stream(&mut s, &header, b)).collect();
        let uids: Vec<u32> = tags
            .iter()
            .map(|t| s.finish_append(t).expect("finish").expect("APPENDUID").uid)
            .collect();
        assert_eq!(uids, [1, 2, 3]);
        let server = dovecot.messages(USER, "INBOX").expect("read");
        let sizes: Vec<u64> = server.iter().map(|m| m.size).collect();
        let expected: Vec<u64> = bodies.iter().map(|b| b.len() as u64).collect();
        assert_eq!(sizes, expected);
        assert!(server.iter().all(|m| m.flags == ["$Label1", "\\Seen"]));
        let sent = sent.lock().expect("trace").join("\n");
        assert_eq!(sent.contains("+}"), plus, "{sent}");
        assert!(!sent.contains("Recent"), "{sent}");
    }
}

#[test]
fn a_streamed_literal_must_have_its_announced_length() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&dovecot);
    let tag = s.begin_append(&header("INBOX", &[]), 10).expect("begin");
    let too_long = s.write_literal(&[b'x'; 11]).expect_err("too long");
    assert!(matches!(too_long, Error::Misuse { .. }), "{too_long}");
    assert!(
        matches!(s.noop(), Err(Error::Misuse { .. })),
        "no command inside a literal"
    );
    assert!(matches!(s.finish_append(&tag), Err(Error::Misuse { .. })));
    s.write_literal(b"12345").expect("write");
    assert_eq!(s.literal_remaining(), Some(5));
    let short = s.end_literal().expect_err("short");
    assert!(
        matches!(short, Error::Misuse { .. }) && !short.session_usable(),
        "{short}"
    );
    assert!(!s.is_usable());
    assert!(matches!(s.noop(), Err(Error::Misuse { .. })));
    assert!(dovecot.messages(USER, "INBOX").expect("read").is_empty());
}

#[test]
fn a_refused_streamed_append_fails_only_itself() {
    for options in [
        DovecotOptions::default(),
        DovecotOptions::hiding(&["LITERAL+"]),
    ] {
        let dovecot = Dovecot::start(options).expect("dovecot");
        let (mut s, _) = login(&dovecot);
        let body = message(1, 500);
        let missing = header("Missing", &[]);
        // Without LITERAL+ the NO replaces the continuation; with it the
        // literal is sent and the completion is the NO.
        let refused = match s.begin_append(&missing, body.len() as u64) {
            Err(e) => e,
            Ok(tag) => {
                s.write_literal(&body).expect("write");
                s.end_literal().expect("end");
                s.finish_append(&tag).expect_err("no such mailbox")
            }
        };
        assert_eq!(refused.code(), Some(&ResponseCode::TryCreate), "{refused}");
        assert_eq!(s.literal_remaining(), None);
        let tag = stream(&mut s, &header("INBOX", &[]), &body);
        assert!(s.finish_append(&tag).expect("next APPEND").is_some());
    }
}

#[test]
fn flag_updates_pipeline_each_with_its_own_result() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, sent) = login(&dovecot);
    let inbox = header("INBOX", &["\\Seen"]);
    let tags: Vec<String> = (0..3)
        .map(|n| stream(&mut s, &inbox, &message(n, 300)))
        .collect();
    for tag in &tags {
        s.finish_append(tag).expect("APPEND");
    }
    s.select("INBOX", &SelectOptions::default())
        .expect("SELECT");
    let update = |uids: &[u32], add, flags: &[&str]| FlagUpdate {
        uids: uids.to_vec(),
        add,
        flags: flags.iter().map(|f| f.to_string()).collect(),
        unchanged_since: None,
    };
    let results = s
        .uid_store_many(&[
            update(&[1, 2], true, &["\\Flagged"]),
            update(&[1], false, &["\\Seen"]),
            update(&[3], true, &["\\Bogus"]),
            update(&[3], true, &["\\Recent"]),
        ])
        .expect("pipelined STORE");
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    assert!(
        matches!(results[2], Err(Error::Bad { .. }) | Err(Error::No { .. })),
        "{:?}",
        results[2]
    );
    let flags: Vec<Vec<String>> = dovecot
        .messages(USER, "INBOX")
        .expect("read")
        .into_iter()
        .map(|m| m.flags)
        .collect();
    assert_eq!(
        flags,
        [
            vec!["\\Flagged".to_string()],
            vec!["\\Flagged".into(), "\\Seen".into()],
            vec!["\\Seen".into()]
        ]
    );
    let stores = sent
        .lock()
        .expect("trace")
        .iter()
        .filter(|l| l.contains("UID STORE"))
        .count();
    assert_eq!(stores, 3, "a change of nothing but \\Recent sends nothing");
    s.noop().expect("usable after BAD");
}

#[test]
fn status_of_a_missing_mailbox_is_refused() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let (mut s, _) = login(&dovecot);
    let err = s.status("Nope", false).expect_err("no such mailbox");
    assert!(matches!(err, Error::No { .. }), "{err}");
    assert_eq!(s.status("INBOX", false).expect("STATUS").messages, Some(0));
}
