//! Tests of the scripted fake IMAP server, driven by a plain TcpStream.

use ferry_testkit::fake_server::{Outcome, Script, ScriptedServer};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(server: &ScriptedServer) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect to scripted server");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
}

/// Reads one CRLF-terminated line, byte by byte, as text.
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0; 1];
    while !line.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).expect("read a line");
        line.push(byte[0]);
    }
    String::from_utf8(line).expect("utf-8 line")
}

/// Reads until EOF or an error; returns the bytes and how it ended.
fn read_to_end_or_error(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut bytes = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (bytes, Ok(())),
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(error) => return (bytes, Err(error)),
        }
    }
}

#[test]
fn runs_a_script_and_answers_with_the_clients_tag() {
    let script = Script::new()
        .send(b"* OK fake ready\r\n")
        .expect("CAPABILITY")
        .send(b"* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
        .expect("login *")
        .send(b"{tag} OK logged in\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    assert_eq!(read_line(&mut client), "* OK fake ready\r\n");
    client.write_all(b"a1 CAPABILITY\r\n").expect("send");
    assert_eq!(read_line(&mut client), "* CAPABILITY IMAP4rev1\r\n");
    assert_eq!(read_line(&mut client), "a1 OK done\r\n");
    client.write_all(b"x7 LOGIN user pass\r\n").expect("send");
    assert_eq!(read_line(&mut client), "x7 OK logged in\r\n");
    let (rest, end) = read_to_end_or_error(&mut client);
    end.expect("the server closes with a FIN at the end of the script");
    assert!(rest.is_empty());
    let report = server.finish();
    report.assert_succeeded();
    assert_eq!(report.outcome, Outcome::Completed);
    assert_eq!(
        report.received_text(),
        ["a1 CAPABILITY", "x7 LOGIN user pass"]
    );
}

#[test]
fn a_mismatching_client_line_fails_the_script() {
    let script = Script::new()
        .send(b"* OK fake ready\r\n")
        .expect("LOGIN *")
        .send(b"{tag} OK never sent\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    assert_eq!(read_line(&mut client), "* OK fake ready\r\n");
    client.write_all(b"a1 NOOP\r\n").expect("send");
    let (rest, _) = read_to_end_or_error(&mut client);
    assert!(rest.is_empty(), "the script stops at the mismatch");
    let report = server.finish();
    assert!(!report.succeeded());
    match &report.outcome {
        Outcome::Failed { step, reason } => {
            assert_eq!(*step, 1);
            assert!(reason.contains("a1 NOOP"), "{reason}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(report.received_text(), ["a1 NOOP"]);
}

#[test]
fn the_tag_placeholder_needs_a_captured_tag() {
    let server = ScriptedServer::start(Script::new().send(b"{tag} OK\r\n")).expect("server");
    let _client = connect(&server);
    let report = server.finish();
    assert!(
        matches!(&report.outcome, Outcome::Failed { step: 0, reason } if reason.contains("{tag}")),
        "{report:?}"
    );
}

#[test]
fn synchronising_literals_get_a_continuation_and_others_do_not() {
    let script = Script::new()
        .expect("LOGIN {4}\r\nuser {4}\r\npass")
        .send(b"{tag} OK sync\r\n")
        .expect("LOGIN *")
        .send(b"{tag} OK nonsync\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    client.write_all(b"a1 LOGIN {4}\r\n").expect("send");
    assert_eq!(read_line(&mut client), "+ go ahead\r\n");
    client.write_all(b"user {4}\r\n").expect("send");
    assert_eq!(read_line(&mut client), "+ go ahead\r\n");
    client.write_all(b"pass\r\n").expect("send");
    assert_eq!(read_line(&mut client), "a1 OK sync\r\n");
    client
        .write_all(b"a2 LOGIN {4+}\r\nuser {4+}\r\npass\r\n")
        .expect("send");
    assert_eq!(read_line(&mut client), "a2 OK nonsync\r\n");
    let report = server.finish();
    report.assert_succeeded();
    assert_eq!(
        report.received_text(),
        [
            "a1 LOGIN {4}\r\nuser {4}\r\npass",
            "a2 LOGIN {4+}\r\nuser {4+}\r\npass"
        ]
    );
}

#[test]
fn expect_line_reads_untagged_lines_raw() {
    let script = Script::new()
        .expect("IDLE")
        .send(b"+ idling\r\n")
        .expect_line("done")
        .send(b"{tag} OK idle done\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    client.write_all(b"i1 IDLE\r\n").expect("send");
    assert_eq!(read_line(&mut client), "+ idling\r\n");
    client.write_all(b"DONE\r\n").expect("send");
    assert_eq!(read_line(&mut client), "i1 OK idle done\r\n");
    server.finish().assert_succeeded();
}

#[test]
fn a_flood_ends_cleanly_when_the_client_hangs_up() {
    let script = Script::new()
        .send(b"* OK fake ready\r\n")
        .expect("FETCH *")
        .send(b"* 1 FETCH (BODY[] {2147483648}\r\n")
        .send_forever(vec![b'x'; 64 * 1024])
        .send(b"{tag} OK never reached\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    assert_eq!(read_line(&mut client), "* OK fake ready\r\n");
    client.write_all(b"f1 FETCH 1 BODY[]\r\n").expect("send");
    assert_eq!(read_line(&mut client), "* 1 FETCH (BODY[] {2147483648}\r\n");
    let mut some = vec![0; 256 * 1024];
    client
        .read_exact(&mut some)
        .expect("read some of the flood");
    assert!(some.iter().all(|&b| b == b'x'));
    drop(client);
    let report = server.finish();
    report.assert_succeeded();
    match report.outcome {
        Outcome::ClientHungUp { step, bytes_sent } => {
            assert_eq!(step, 3);
            assert!(bytes_sent >= 256 * 1024, "{bytes_sent}");
        }
        other => panic!("expected a hang-up, got {other:?}"),
    }
}

#[test]
fn send_repeated_sends_exactly_count_chunks() {
    let script = Script::new().send_repeated(b"0123456789", 1000);
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    let (received, end) = read_to_end_or_error(&mut client);
    end.expect("EOF");
    assert_eq!(received, b"0123456789".repeat(1000));
    assert_eq!(server.finish().outcome, Outcome::Completed);
}

#[test]
fn send_with_streams_a_generator() {
    let mut left = 3;
    let script = Script::new().send_with(move || {
        left -= 1;
        (left >= 0).then(|| format!("* {left}\r\n").into_bytes())
    });
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    let (received, end) = read_to_end_or_error(&mut client);
    end.expect("EOF");
    assert_eq!(received, b"* 2\r\n* 1\r\n* 0\r\n");
    server.finish().assert_succeeded();
}

#[test]
fn close_sends_fin_and_reset_sends_rst() {
    let server = ScriptedServer::start(
        Script::new()
            .send(b"* OK\r\n")
            .close()
            .sleep(Duration::from_millis(50)),
    )
    .expect("server");
    let mut client = connect(&server);
    let (received, end) = read_to_end_or_error(&mut client);
    end.expect("FIN reads as EOF");
    assert_eq!(received, b"* OK\r\n");
    server.finish().assert_succeeded();

    let server = ScriptedServer::start(Script::new().send(b"* OK\r\n").reset()).expect("server");
    let mut client = connect(&server);
    let (received, end) = read_to_end_or_error(&mut client);
    let error = end.expect_err("RST reads as an error");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(received, b"* OK\r\n");
    server.finish().assert_succeeded();
}

#[test]
fn steps_after_a_reset_fail() {
    let script = Script::new().reset().send(b"* too late\r\n");
    let server = ScriptedServer::start(script).expect("server");
    let _client = connect(&server);
    let report = server.finish();
    assert!(
        matches!(report.outcome, Outcome::Failed { step: 1, .. }),
        "{report:?}"
    );
}

#[test]
fn a_silent_client_times_out_instead_of_hanging() {
    let script = Script::new()
        .with_timeout(Duration::from_millis(200))
        .expect("LOGIN *");
    let server = ScriptedServer::start(script).expect("server");
    let _client = connect(&server);
    let start = Instant::now();
    let report = server.finish();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&report.outcome, Outcome::Failed { step: 0, reason } if reason.contains("no line")),
        "{report:?}"
    );
    assert!(report.received.is_empty());
}

#[test]
fn no_client_is_reported() {
    let script = Script::new().with_timeout(Duration::from_millis(100));
    let server = ScriptedServer::start(script).expect("server");
    assert_eq!(server.finish().outcome, Outcome::NoClient);
}

#[test]
fn serves_only_one_connection() {
    let server = ScriptedServer::start(Script::new().send(b"* OK\r\n")).expect("server");
    let mut client = connect(&server);
    assert_eq!(read_line(&mut client), "* OK\r\n");
    let addr = server.addr();
    server.finish().assert_succeeded();
    let error = TcpStream::connect(addr).expect_err("the listener is closed");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn dropping_the_server_aborts_a_waiting_script() {
    let script = Script::new().send(b"* OK\r\n").expect("NEVER");
    let server = ScriptedServer::start(script).expect("server");
    let mut client = connect(&server);
    assert_eq!(read_line(&mut client), "* OK\r\n");
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "drop does not wait for timeouts"
    );
    let (received, end) = read_to_end_or_error(&mut client);
    assert!(received.is_empty());
    end.expect("the client sees the connection close");
}
