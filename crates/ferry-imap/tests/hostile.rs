//! Attacks and broken servers: the client ends in a typed error, never a
//! panic, with bounded memory, and never sends a credential where it should
//! not.

use ferry_imap::proto::framing::{Framer, KeepInMemory, Limits};
use ferry_imap::{
    AuthMechanism, BodyItem, Credentials, Error, Secret, SelectOptions, ServerOptions, Session,
    TlsMode,
};
use ferry_testkit::fake_server::{Script, ScriptedServer};
use ferry_testkit::proxy::{FaultProxy, Faults};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use proptest::prelude::*;
use std::time::Duration;

const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] fake ready\r\n";

fn creds() -> Credentials {
    Credentials {
        user: USER.name.into(),
        secret: Secret::new(USER.password),
        mechanism: AuthMechanism::Auto,
    }
}

fn plain_options(port: u16) -> ServerOptions {
    let mut options = ServerOptions::new("127.0.0.1", TlsMode::None);
    options.port = port;
    options.read_timeout = Duration::from_secs(5);
    options
}

/// Logs in to a scripted server, selects INBOX and fetches a body; the
/// script's hostile part follows the SELECT.
fn run_against(hostile: Script) -> (Result<(), Error>, ferry_testkit::fake_server::Report) {
    let server = ScriptedServer::start(hostile).expect("server");
    let result = (|| {
        let mut session = Session::connect(&plain_options(server.port()))?;
        session.login(&creds())?;
        session.select("INBOX", &SelectOptions::default())?;
        session.fetch_bodies(
            &[1],
            BodyItem::Full,
            &mut |_| Ok(std::io::sink()),
            &mut |_| Ok(()),
        )?;
        Ok(())
    })();
    (result, server.finish())
}

fn select_ok() -> Script {
    Script::new()
        .send(GREETING)
        .expect("AUTHENTICATE PLAIN *")
        .send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n")
        .expect("SELECT INBOX")
        .send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] selected\r\n")
        .expect("UID FETCH 1 *")
}

fn assert_error(result: Result<(), Error>, check: impl Fn(&Error) -> bool) {
    match result {
        Err(e) if check(&e) => {}
        other => panic!("unexpected outcome: {other:?}"),
    }
}

#[test]
fn a_2_gib_literal_announcement_is_refused_at_once() {
    let script = select_ok()
        .send(b"* 1 FETCH (UID 1 BODY[] {2147483648}\r\n")
        .send_forever(vec![b'x'; 65536]);
    let (result, report) = run_against(script);
    assert_error(result, |e| {
        matches!(
            e,
            Error::LimitExceeded {
                value: 2147483648,
                ..
            }
        )
    });
    assert!(report.succeeded(), "{:?}", report.outcome);
}

#[test]
fn an_absurd_literal_size_is_refused() {
    let script = select_ok()
        .send(b"* 1 FETCH (UID 1 BODY[HEADER.FIELDS (X)] {99999999999999999999999999}\r\n");
    let (result, _) = run_against(script);
    assert_error(result, |e| matches!(e, Error::LimitExceeded { .. }));
}

#[test]
fn an_endless_line_is_cut_off() {
    let script = select_ok()
        .send(b"* 1 FETCH (UID 1 FLAGS (")
        .send_forever(vec![b'a'; 65536]);
    let (result, _) = run_against(script);
    assert_error(result, |e| {
        matches!(
            e,
            Error::LimitExceeded {
                what: "response line length",
                ..
            }
        )
    });
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("* 1 FETCH (UID 1 X {}\r\n", "(".repeat(10_000));
    let (result, _) = run_against(select_ok().send(deep));
    assert_error(result, |e| {
        matches!(
            e,
            Error::LimitExceeded {
                what: "nesting depth",
                ..
            }
        )
    });
}

#[test]
fn garbage_is_a_protocol_error() {
    let (result, _) = run_against(select_ok().send(b"\x00\xff\x13garbage that is no response\r\n"));
    assert_error(result, |e| matches!(e, Error::Protocol { .. }));
}

#[test]
fn a_completion_with_a_wrong_tag_is_a_protocol_error() {
    let (result, _) = run_against(select_ok().send(b"zz99 OK done\r\n"));
    assert_error(result, |e| matches!(e, Error::Protocol { .. }));
}

#[test]
fn bye_in_the_middle_of_a_fetch() {
    let script = select_ok()
        .send(b"* 1 FETCH (UID 1 BODY[] {100}\r\nonly part of it")
        .send(b"")
        .close();
    let (result, _) = run_against(script);
    assert_error(result, |e| matches!(e, Error::ConnectionLost { .. }));
    let script = select_ok().send(b"* BYE server shutting down\r\n").close();
    let (result, _) = run_against(script);
    assert_error(
        result,
        |e| matches!(e, Error::Bye { text } if text.contains("shutting down")),
    );
}

#[test]
fn uid_zero_and_uidvalidity_zero_are_refused() {
    let (result, _) = run_against(select_ok().send(b"* 1 FETCH (UID 0 BODY[] {1}\r\nx)\r\n"));
    assert_error(result, |e| matches!(e, Error::Protocol { .. }));
    let script = Script::new()
        .send(GREETING)
        .expect("AUTHENTICATE PLAIN *")
        .send(b"{tag} OK logged in\r\n")
        .expect("CAPABILITY")
        .send(b"* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n")
        .expect("SELECT INBOX")
        .send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 0] broken\r\n{tag} OK selected\r\n");
    let (result, _) = run_against(script);
    assert_error(result, |e| matches!(e, Error::Protocol { .. }));
}

#[test]
fn a_stalled_server_times_out() {
    let script = select_ok()
        .send(b"* 1 FETCH (UID 1 BODY[] {100}\r\nabc")
        .sleep(Duration::from_secs(8));
    let server = ScriptedServer::start(script).expect("server");
    let mut options = plain_options(server.port());
    options.read_timeout = Duration::from_millis(500);
    let mut session = Session::connect(&options).expect("connect");
    session.login(&creds()).expect("login");
    session
        .select("INBOX", &SelectOptions::default())
        .expect("select");
    let started = std::time::Instant::now();
    let err = session
        .fetch_bodies(
            &[1],
            BodyItem::Full,
            &mut |_| Ok(std::io::sink()),
            &mut |_| Ok(()),
        )
        .expect_err("must time out");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(server);
}

fn tls_refused_before_credentials(faults: Faults, tls: TlsMode) {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let proxy = FaultProxy::start(dovecot.imap_addr(), faults).expect("proxy");
    let mut options = ServerOptions::new("127.0.0.1", tls);
    options.port = proxy.port();
    options.ca_file = Some(dovecot.cert_pem_path());
    let result = Session::connect(&options).and_then(|mut s| s.login(&creds()));
    let err = result.expect_err("must refuse");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    let sent = proxy.recording().client_to_server_text();
    assert!(
        !sent.contains(USER.password) && !sent.contains("LOGIN") && !sent.contains("AUTHENTICATE"),
        "{sent}"
    );
}

#[test]
fn stripped_starttls_is_refused() {
    tls_refused_before_credentials(
        Faults::default().with_starttls_stripped(),
        TlsMode::StartTls,
    );
}

#[test]
fn preauth_on_a_tls_required_account_is_refused() {
    tls_refused_before_credentials(Faults::default().with_preauth_greeting(), TlsMode::StartTls);
}

#[test]
fn bytes_injected_after_starttls_ok_are_refused() {
    let faults = Faults::default().with_injection_after_starttls_ok(
        b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n".to_vec(),
    );
    tls_refused_before_credentials(faults, TlsMode::StartTls);
}

#[test]
fn tunnel_to_dovecots_imap_binary_is_preauthenticated() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let mut options = ServerOptions::new("tunnel", TlsMode::None);
    options.tunnel = Some(format!(
        "doveadm -c {} exec imap -u {}",
        dovecot.dir().join("dovecot.conf").display(),
        USER.name
    ));
    let mut session = Session::connect(&options).expect("tunnel");
    assert!(
        session.is_authenticated(),
        "the imap binary answers PREAUTH"
    );
    session
        .login(&creds())
        .expect("login is a no-op after PREAUTH");
    session.create("ViaTunnel").expect("CREATE");
    session.logout().expect("LOGOUT");
    assert!(
        dovecot
            .client()
            .expect("login")
            .list()
            .expect("list")
            .contains(&"ViaTunnel".to_string())
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Whatever bytes arrive, in whatever chunks, the reader returns frames
    /// or a typed error and never panics or grows past its limits.
    #[test]
    fn the_response_reader_survives_any_input(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..32),
        seeds in proptest::collection::vec(prop_oneof![
            Just(b"* 1 FETCH (UID 5 BODY[] {3}\r\nabc)\r\n".to_vec()),
            Just(b"{99999999999}\r\n".to_vec()),
            Just(b"f1 OK [MODIFIED 1:3] x\r\n".to_vec()),
            Just(b"((((((((((((((((((((".to_vec()),
            Just(b"* OK [UIDVALIDITY 0]\r\n".to_vec()),
        ], 0..4),
    ) {
        let limits = Limits { max_line: 4096, max_frame: 16384, max_inline_literal: 8192, ..Limits::default() };
        let mut framer = Framer::new(limits);
        for chunk in seeds.iter().chain(chunks.iter()) {
            framer.feed(chunk);
            loop {
                match framer.next_frame(&mut KeepInMemory) {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.bytes.len() <= 16384 + 8);
                        let _ = ferry_imap::proto::parse_response(&frame);
                    }
                    Ok(None) => break,
                    Err(_) => return Ok(()),
                }
            }
            prop_assert!(framer.buffered() <= 16384 + 64 + 4096);
        }
    }
}

/// FETCH responses a server sends for the mailbox being closed, before
/// `[CLOSED]` (RFC 7162 3.2.11), are not taken for changes of the one
/// being selected.
#[test]
fn responses_before_closed_belong_to_the_old_mailbox() {
    let script = Script::new()
        .send(GREETING)
        .expect("AUTHENTICATE PLAIN *")
        .send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n")
        .expect("SELECT Archive")
        .send(
            b"* 9 EXISTS\r\n* 3 FETCH (UID 3 FLAGS (\\Seen))\r\n* OK [CLOSED] closed\r\n\
              * 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] selected\r\n",
        );
    let server = ScriptedServer::start(script).expect("server");
    let mut session = Session::connect(&plain_options(server.port())).expect("connect");
    session.login(&creds()).expect("login");
    let selected = session
        .select("Archive", &SelectOptions::default())
        .expect("select");
    assert_eq!(selected.exists, 1);
    assert!(selected.changed.is_empty(), "{:?}", selected.changed);
    assert_eq!(selected.uid_validity, Some(7));
    assert_eq!(selected.mailbox, "Archive");
}

/// A SELECT that fails (the mailbox went meanwhile) with its pipelined
/// search: the SELECT's refusal is the error, the search's answer is
/// consumed, and the session goes on.
#[test]
fn a_refused_select_with_its_search_leaves_the_session_usable() {
    let script = Script::new()
        .send(GREETING)
        .expect("AUTHENTICATE PLAIN *")
        .send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n")
        .expect("SELECT Gone")
        .expect("UID SEARCH UID 1:9")
        // Tags are numbered in order: f2 is the SELECT, f3 the search.
        .send(b"f2 NO [NONEXISTENT] Mailbox doesn't exist\r\n")
        .send(b"f3 BAD No mailbox selected\r\n")
        .expect("NOOP")
        .send(b"{tag} OK done\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut session = Session::connect(&plain_options(server.port())).expect("connect");
    session.login(&creds()).expect("login");
    let refused = session.select_then_search("Gone", &SelectOptions::default(), "UID 1:9");
    assert!(matches!(refused, Err(Error::No { .. })), "{refused:?}");
    session.noop().expect("the session goes on");
}

#[test]
fn close_does_not_wait_for_a_goodbye_that_never_comes() {
    let script = Script::new()
        .send(GREETING)
        .expect("AUTHENTICATE PLAIN *")
        .send(b"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n")
        .expect("LOGOUT")
        .sleep(Duration::from_secs(8));
    let server = ScriptedServer::start(script).expect("server");
    let mut options = plain_options(server.port());
    options.read_timeout = Duration::from_secs(60);
    let mut session = Session::connect(&options).expect("connect");
    session.login(&creds()).expect("login");
    let (done, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        session.close();
        let _ = done.send(());
    });
    // Waiting for the reply would block for the server's 8 s (or the
    // 60 s read timeout).
    assert!(
        closed.recv_timeout(Duration::from_secs(4)).is_ok(),
        "close waited for the server's reply"
    );
    assert!(
        server
            .finish()
            .received_text()
            .iter()
            .any(|line| line.ends_with("LOGOUT"))
    );
}
