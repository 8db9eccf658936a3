//! The transport against a real server: a private Dovecot from the test kit
//! (plain with STARTTLS, implicit TLS, a self-signed CA:TRUE certificate
//! for 127.0.0.1 and localhost), its imap binary as a tunnel command, and
//! small loopback listeners for what Dovecot never does (stay silent,
//! inject bytes after the STARTTLS OK). Only 127.0.0.1 and localhost are
//! ever contacted.

use ferry_imap::transport::{Transport, classify};
use ferry_imap::{Error, ServerOptions, TlsMode};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest response line these tests accept.
const MAX_LINE: usize = 64 * 1024;

fn dovecot() -> Dovecot {
    Dovecot::start(DovecotOptions::default()).expect("dovecot starts")
}

fn options(host: &str, port: u16, tls: TlsMode) -> ServerOptions {
    let mut options = ServerOptions::new(host, tls);
    options.port = port;
    options.connect_timeout = Duration::from_secs(10);
    options.read_timeout = Duration::from_secs(10);
    options
}

/// Implicit-TLS options trusting the kit's certificate through `ca_file`.
fn trusting(dovecot: &Dovecot, host: &str) -> ServerOptions {
    let mut options = options(host, dovecot.imaps_port(), TlsMode::Implicit);
    options.ca_file = Some(dovecot.cert_pem_path());
    options
}

fn fingerprint(dovecot: &Dovecot) -> String {
    dovecot.cert_fingerprint().expect("fingerprint")
}

/// One response line, read byte by byte (the transport does not buffer).
fn read_line(transport: &mut Transport) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert!(line.len() < MAX_LINE, "endless line");
        match transport.read(&mut byte) {
            Ok(0) => panic!(
                "connection closed after {:?}",
                String::from_utf8_lossy(&line)
            ),
            Ok(_) => line.push(byte[0]),
            Err(e) => panic!("read failed: {e}"),
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

/// Sends `tag command` and returns everything up to and including the
/// tagged response.
fn command(transport: &mut Transport, tag: &str, command: &str) -> Vec<String> {
    send(transport, &format!("{tag} {command}\r\n"));
    responses_until(transport, tag)
}

fn send(transport: &mut Transport, text: &str) {
    transport.write_all(text.as_bytes()).expect("write");
    transport.flush().expect("flush");
}

fn responses_until(transport: &mut Transport, tag: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = read_line(transport);
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn assert_ok(lines: &[String]) {
    let last = lines.last().expect("a tagged response");
    assert!(last.split(' ').nth(1) == Some("OK"), "{lines:?}");
}

fn tls_message(result: Result<Transport, Error>) -> String {
    match result {
        Err(e @ Error::Tls { .. }) => e.to_string(),
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, the connection succeeded"),
    }
}

#[test]
fn implicit_tls_with_the_certificate_as_ca_file_reads_the_greeting() {
    let dovecot = dovecot();
    let mut transport = Transport::connect(&trusting(&dovecot, "127.0.0.1")).expect("connect");
    assert!(read_line(&mut transport).starts_with("* OK"));
    assert!(transport.is_tls() && transport.is_loopback() && !transport.is_compressed());
    let info = transport.tls_info().expect("tls info");
    assert!(
        ["TLSv1.3", "TLSv1.2"].contains(&info.version.as_str()),
        "{info:?}"
    );
    assert!(!info.cipher.is_empty());
    assert_eq!(info.subject, "CN=127.0.0.1");
    assert_eq!(info.fingerprint, fingerprint(&dovecot));
    assert_ok(&command(&mut transport, "a", "NOOP"));
}

#[test]
fn localhost_is_a_name_the_certificate_carries() {
    let dovecot = dovecot();
    let mut transport = Transport::connect(&trusting(&dovecot, "localhost")).expect("connect");
    assert!(read_line(&mut transport).starts_with("* OK"));
    assert!(transport.is_loopback());
}

#[test]
fn a_ca_file_with_several_certificates_finds_the_server_among_them() {
    let dovecot = dovecot();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle.pem");
    let system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    let own = std::fs::read(dovecot.cert_pem_path()).expect("cert");
    std::fs::write(&bundle, [system.clone(), own, system].concat()).expect("write bundle");
    let mut options = trusting(&dovecot, "127.0.0.1");
    options.ca_file = Some(bundle);
    let mut transport = Transport::connect(&options).expect("connect");
    assert!(read_line(&mut transport).starts_with("* OK"));
}

#[test]
fn an_untrusted_self_signed_certificate_is_refused_with_what_to_configure() {
    let dovecot = dovecot();
    let options = options("127.0.0.1", dovecot.imaps_port(), TlsMode::Implicit);
    let message = tls_message(Transport::connect(&options));
    assert!(message.contains("ca_file = "), "{message}");
    let pin = format!("tls_fingerprint = \"{}\"", fingerprint(&dovecot));
    assert!(message.contains(&pin), "{message}");
    assert!(message.contains("CN=127.0.0.1"), "{message}");
}

#[test]
fn a_certificate_for_other_names_is_refused_with_the_names_it_carries() {
    let dovecot = dovecot();
    let options = trusting(&dovecot, "imap.example.org");
    let message = tls_message(Transport::connect_addr(&options, dovecot.imaps_addr()));
    assert!(
        message.contains("not valid for imap.example.org"),
        "{message}"
    );
    assert!(
        message.contains("localhost") && message.contains("127.0.0.1"),
        "{message}"
    );
    assert!(
        message.contains("connect using one of those names"),
        "{message}"
    );
}

#[test]
fn a_pinned_fingerprint_replaces_chain_and_name_checks() {
    let dovecot = dovecot();
    let pin = fingerprint(&dovecot);
    let hex = pin.trim_start_matches("sha256:").to_uppercase();
    let openssl_style = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    for (host, pin) in [
        ("127.0.0.1", pin.clone()),
        ("imap.example.org", format!("SHA256:{openssl_style}")),
    ] {
        let mut options = options(host, dovecot.imaps_port(), TlsMode::Implicit);
        options.tls_fingerprint = Some(pin);
        let mut transport =
            Transport::connect_addr(&options, dovecot.imaps_addr()).expect("pinned connect");
        assert!(read_line(&mut transport).starts_with("* OK"));
    }
}

#[test]
fn a_pin_that_does_not_match_names_the_actual_fingerprint() {
    let dovecot = dovecot();
    let mut options = trusting(&dovecot, "127.0.0.1");
    let wrong = format!("sha256:{}", "00".repeat(32));
    options.tls_fingerprint = Some(wrong.clone());
    let message = tls_message(Transport::connect(&options));
    assert!(message.contains(&wrong), "{message}");
    let actual = format!("tls_fingerprint = \"{}\"", fingerprint(&dovecot));
    assert!(message.contains(&actual), "{message}");
}

#[test]
fn implicit_tls_on_a_plain_port_suggests_starttls() {
    let dovecot = dovecot();
    let mut options = trusting(&dovecot, "127.0.0.1");
    options.port = dovecot.imap_port();
    let message = tls_message(Transport::connect(&options));
    assert!(message.contains("tls = \"starttls\""), "{message}");
}

#[test]
fn starttls_upgrades_in_place() {
    let dovecot = dovecot();
    let mut options = trusting(&dovecot, "127.0.0.1");
    options.port = dovecot.imap_port();
    options.tls = TlsMode::StartTls;
    let mut transport = Transport::connect(&options).expect("connect");
    assert!(!transport.is_tls());
    assert!(read_line(&mut transport).contains("STARTTLS"));
    assert_ok(&command(&mut transport, "a", "STARTTLS"));
    transport.start_tls(&options).expect("handshake");
    assert!(transport.is_tls());
    assert_eq!(
        transport.tls_info().expect("info").fingerprint,
        fingerprint(&dovecot)
    );
    let capabilities = command(&mut transport, "b", "CAPABILITY");
    assert_ok(&capabilities);
    assert!(!capabilities[0].contains("STARTTLS"), "{capabilities:?}");
}

#[test]
fn starttls_refuses_an_untrusted_certificate() {
    let dovecot = dovecot();
    let options = options("127.0.0.1", dovecot.imap_port(), TlsMode::StartTls);
    let mut transport = Transport::connect(&options).expect("connect");
    read_line(&mut transport);
    assert_ok(&command(&mut transport, "a", "STARTTLS"));
    let err = transport.start_tls(&options).expect_err("untrusted");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    assert!(err.to_string().contains(&fingerprint(&dovecot)), "{err}");
    assert!(transport.write_all(b"b LOGIN x y\r\n").is_err());
}

/// A one-connection server: greets, answers the STARTTLS with OK and
/// plaintext in the same packet, then waits for the client to give up.
fn injecting_server() -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n")
            .expect("greet");
        let mut buf = [0u8; 64];
        let _ = stream.read(&mut buf);
        stream
            .write_all(b"a OK Begin TLS\r\n* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n")
            .expect("inject");
        let _ = stream.read(&mut buf);
    });
    (addr, server)
}

#[test]
fn bytes_injected_after_the_starttls_ok_fail_the_handshake() {
    let (addr, server) = injecting_server();
    let options = options("127.0.0.1", addr.port(), TlsMode::StartTls);
    let mut transport = Transport::connect(&options).expect("connect");
    read_line(&mut transport);
    send(&mut transport, "a STARTTLS\r\n");
    // Exactly the tagged line: what follows stays in the socket.
    assert_eq!(read_line(&mut transport), "a OK Begin TLS\r\n");
    let err = transport
        .start_tls(&options)
        .expect_err("injected plaintext");
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    drop(transport);
    server.join().expect("server");
}

#[test]
fn compress_deflate_round_trips_large_data_both_ways() {
    let dovecot = dovecot();
    let mut transport = Transport::connect(&trusting(&dovecot, "127.0.0.1")).expect("connect");
    read_line(&mut transport);
    let login = format!("LOGIN {} {}", USER.name, USER.password);
    let capabilities = command(&mut transport, "a", &login);
    assert_ok(&capabilities);
    assert_ok(&command(&mut transport, "c", "COMPRESS DEFLATE"));
    transport.enable_deflate().expect("deflate");
    assert!(transport.is_compressed() && transport.is_tls());
    assert_ok(&command(&mut transport, "d", "NOOP"));

    let body = message_body(300_000);
    send(
        &mut transport,
        &format!("e APPEND INBOX {{{}}}\r\n", body.len()),
    );
    assert!(read_line(&mut transport).starts_with('+'));
    transport.write_all(&body).expect("body");
    send(&mut transport, "\r\n");
    assert_ok(&responses_until(&mut transport, "e"));

    assert_ok(&command(&mut transport, "f", "SELECT INBOX"));
    send(&mut transport, "g FETCH 1 BODY[]\r\n");
    let header = read_line(&mut transport);
    assert!(
        header.ends_with(&format!("{{{}}}\r\n", body.len())),
        "{header}"
    );
    let mut fetched = vec![0u8; body.len()];
    transport.read_exact(&mut fetched).expect("literal");
    assert!(fetched == body, "the fetched message differs");
    assert_ok(&responses_until(&mut transport, "g"));
}

/// A message of about `size` bytes with CRLF lines: text plus
/// incompressible base64-like noise.
fn message_body(size: usize) -> Vec<u8> {
    let mut body = b"From: a@example.org\r\nSubject: big\r\n\r\n".to_vec();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while body.len() < size {
        for _ in 0..76 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body.push(alphabet[(x % 64) as usize]);
        }
        body.extend_from_slice(b"\r\n");
    }
    body
}

/// Dovecot's imap binary speaks IMAP on stdin/stdout, pre-authenticated as
/// the `-u` user: `/usr/lib/dovecot/imap -c <config> -u ferry` answers
/// `* PREAUTH` (as does `doveadm -c <config> exec imap -u ferry`).
fn tunnel_command(config: &Path) -> String {
    format!(
        "/usr/lib/dovecot/imap -c {} -u {}",
        config.display(),
        USER.name
    )
}

#[test]
fn a_tunnel_speaks_imap_over_a_command() {
    let dovecot = dovecot();
    let mut options = options("127.0.0.1", 0, TlsMode::Implicit);
    options.tunnel = Some(tunnel_command(&dovecot.dir().join("dovecot.conf")));
    let mut transport = Transport::connect(&options).expect("tunnel");
    assert!(transport.is_tunnel() && !transport.is_tls() && !transport.is_loopback());
    let greeting = read_line(&mut transport);
    assert!(greeting.starts_with("* PREAUTH"), "{greeting}");
    assert_ok(&command(&mut transport, "a", "NOOP"));
    assert_ok(&command(&mut transport, "b", "COMPRESS DEFLATE"));
    transport.enable_deflate().expect("deflate");
    assert_ok(&command(&mut transport, "c", "NOOP"));
    assert_eq!(transport.tunnel_status(), None);
    assert_ok(&command(&mut transport, "d", "LOGOUT"));
    let status = wait_for_exit(&mut transport, "exit status");
    assert!(status.contains("exit status: 0"), "{status}");
}

/// The tunnel's status once it has exited and it contains `expected`.
fn wait_for_exit(transport: &mut Transport, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match transport.tunnel_status() {
            Some(status) if status.contains(expected) => return status,
            _ if Instant::now() > deadline => panic!("the tunnel command did not exit"),
            _ => {}
        }
    }
}

#[test]
fn a_tunnel_that_cannot_run_ends_the_stream_and_says_why() {
    let mut options = options("127.0.0.1", 0, TlsMode::None);
    options.tunnel = Some("echo 'ssh: connect to host example: refused' >&2; exit 255".into());
    let mut transport = Transport::connect(&options).expect("sh runs");
    let mut buf = [0u8; 16];
    assert_eq!(transport.read(&mut buf).expect("eof"), 0);
    let status = wait_for_exit(&mut transport, "refused");
    assert!(status.contains("exit status: 255"), "{status}");
}

/// A listener that accepts and then never says anything.
fn silent_server() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

#[test]
fn a_silent_server_times_out_reads() {
    let (listener, port) = silent_server();
    let mut options = options("127.0.0.1", port, TlsMode::None);
    options.read_timeout = Duration::from_millis(300);
    let mut transport = Transport::connect(&options).expect("connect");
    let _accepted = listener.accept().expect("accept");
    let started = Instant::now();
    let err = transport.read(&mut [0u8; 16]).expect_err("timeout");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(5));
    let err = classify(
        "127.0.0.1",
        Some("greeting".into()),
        err,
        options.read_timeout,
    );
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");

    transport
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("idle timeout");
    let started = Instant::now();
    let err = transport.read(&mut [0u8; 16]).expect_err("timeout");
    assert!(started.elapsed() < Duration::from_millis(250));
    assert!(matches!(
        classify("h", None, err, Duration::ZERO),
        Error::Timeout { .. }
    ));
}

#[test]
fn a_silent_server_times_out_the_tls_handshake() {
    let (listener, port) = silent_server();
    let mut options = options("127.0.0.1", port, TlsMode::Implicit);
    options.read_timeout = Duration::from_millis(300);
    let accept = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    match Transport::connect(&options) {
        Err(Error::Timeout { during, .. }) => {
            assert_eq!(during.as_deref(), Some("the TLS handshake"));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    drop(accept.join().expect("accept thread"));
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = {
        let (listener, port) = silent_server();
        drop(listener);
        port
    };
    let options = options("127.0.0.1", port, TlsMode::None);
    match Transport::connect(&options) {
        Err(Error::Connect { host, port: p, .. }) => {
            assert_eq!((host.as_str(), p), ("127.0.0.1", port));
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}
