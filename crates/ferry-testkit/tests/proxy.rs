//! Tests of the fault proxy against small upstreams started here: an echo
//! server, a sink that counts bytes, and scripted IMAP servers.

use ferry_testkit::fake_server::{Script, ScriptedServer};
use ferry_testkit::proxy::{Cut, Direction, FaultProxy, Faults, Stall};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for "this should be quick" on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(400);

/// Starts an echo server; each connection echoes until EOF, then closes.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind echo server");
    let addr = listener.local_addr().expect("echo server address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut reader = stream.try_clone().expect("clone echo stream");
                let _ = io::copy(&mut reader, &mut stream);
                let _ = stream.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// Starts a server that reads one connection to the end and reports the
/// bytes it got, and whether it ended with EOF (true) or an error.
fn sink_server() -> (SocketAddr, mpsc::Receiver<(Vec<u8>, bool)>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind sink server");
    let addr = listener.local_addr().expect("sink server address");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("sink accepts");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("sink timeout");
        let (bytes, end) = read_to_end_or_error(&mut stream);
        let _ = sender.send((bytes, end.is_ok()));
    });
    (addr, receiver)
}

fn connect(proxy: &FaultProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).expect("connect to proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream
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

/// Reads exactly `len` bytes.
fn read_len(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes).expect("read expected bytes");
    bytes
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

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn passes_bytes_through_unchanged_and_records_them() {
    let proxy = FaultProxy::start(echo_server(), Faults::default()).expect("proxy");
    let mut client = connect(&proxy);
    let data = pattern(1 << 20);
    let mut writer = client.try_clone().expect("clone client");
    let sent = data.clone();
    let send = thread::spawn(move || {
        writer.write_all(&sent).expect("send");
        writer.shutdown(Shutdown::Write).expect("half-close");
    });
    let (echoed, end) = read_to_end_or_error(&mut client);
    send.join().expect("sender");
    end.expect("clean EOF");
    assert!(echoed == data, "echo differs ({} bytes back)", echoed.len());
    let recording = proxy.recording();
    assert_eq!(proxy.connections(), 1);
    let first = recording.first().expect("one connection");
    assert!(first.client_to_server == data);
    assert!(first.server_to_client == data);
}

#[test]
fn fin_cut_delivers_exactly_n_bytes_then_eof() {
    let faults = Faults::default().with_cut(Cut::fin(Direction::ServerToClient, 40));
    let proxy = FaultProxy::start(echo_server(), faults).expect("proxy");
    let mut client = connect(&proxy);
    client.write_all(&pattern(100)).expect("send");
    let (received, end) = read_to_end_or_error(&mut client);
    end.expect("FIN reads as EOF, not an error");
    assert_eq!(received, pattern(40));
    assert_eq!(
        proxy.recording().connections[0].server_to_client,
        pattern(40)
    );
}

#[test]
fn reset_cut_delivers_exactly_n_bytes_then_connection_reset() {
    let faults = Faults::default().with_cut(Cut::reset(Direction::ServerToClient, 40));
    let proxy = FaultProxy::start(echo_server(), faults).expect("proxy");
    let mut client = connect(&proxy);
    client.write_all(&pattern(100)).expect("send");
    let (received, end) = read_to_end_or_error(&mut client);
    let error = end.expect_err("RST reads as an error, not EOF");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(received, pattern(40));
}

#[test]
fn client_to_server_cut_lets_exactly_n_bytes_reach_the_server() {
    let (upstream, sink) = sink_server();
    let faults = Faults::default().with_cut(Cut::fin(Direction::ClientToServer, 10));
    let proxy = FaultProxy::start(upstream, faults).expect("proxy");
    let mut client = connect(&proxy);
    client.write_all(b"0123456789abcdef").expect("send");
    let (server_got, clean) = sink
        .recv_timeout(Duration::from_secs(5))
        .expect("sink reports");
    assert_eq!(server_got, b"0123456789");
    assert!(clean, "the server sees a FIN");
    let (_, end) = read_to_end_or_error(&mut client);
    end.expect("the client sees a FIN");
}

#[test]
fn cut_on_one_connection_leaves_the_others_alone() {
    let faults =
        Faults::default().with_cut(Cut::fin(Direction::ServerToClient, 3).on_connection(1));
    let proxy = FaultProxy::start(echo_server(), faults).expect("proxy");
    for (index, expected) in [(0, &b"hello"[..]), (1, b"hel"), (2, b"hello")] {
        let mut client = connect(&proxy);
        client.write_all(b"hello").expect("send");
        client.shutdown(Shutdown::Write).expect("half-close");
        let (received, end) = read_to_end_or_error(&mut client);
        end.expect("EOF");
        assert_eq!(received, expected, "connection {index}");
    }
    assert_eq!(proxy.connections(), 3);
}

#[test]
fn stall_holds_bytes_for_its_duration() {
    let stall = Duration::from_millis(300);
    let faults =
        Faults::default().with_stall(Stall::for_duration(Direction::ServerToClient, 5, stall));
    let proxy = FaultProxy::start(echo_server(), faults).expect("proxy");
    let mut client = connect(&proxy);
    let start = Instant::now();
    client.write_all(b"0123456789").expect("send");
    assert_eq!(read_len(&mut client, 5), b"01234");
    assert!(
        start.elapsed() < stall,
        "bytes before the stall come at once"
    );
    assert_eq!(read_len(&mut client, 5), b"56789");
    assert!(start.elapsed() >= stall, "held for {:?}", start.elapsed());
}

#[test]
fn endless_stall_holds_bytes_until_the_proxy_is_dropped() {
    let faults = Faults::default().with_stall(Stall::forever(Direction::ServerToClient, 5));
    let proxy = FaultProxy::start(echo_server(), faults).expect("proxy");
    let mut client = connect(&proxy);
    client.write_all(b"0123456789").expect("send");
    assert_eq!(read_len(&mut client, 5), b"01234");
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("short timeout");
    let mut byte = [0; 1];
    let error = client.read(&mut byte).expect_err("nothing more arrives");
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{error}"
    );
    let first = proxy.recording().connections[0].clone();
    assert_eq!(first.client_to_server, b"0123456789");
    assert_eq!(first.server_to_client, b"01234");

    let start = Instant::now();
    drop(proxy);
    assert!(start.elapsed() < SLACK, "drop does not hang on a stall");
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let (rest, _) = read_to_end_or_error(&mut client);
    assert!(rest.is_empty(), "held bytes are dropped with the proxy");
}

#[test]
fn latency_delays_each_direction() {
    let latency = Duration::from_millis(100);
    let proxy =
        FaultProxy::start(echo_server(), Faults::default().with_latency(latency)).expect("proxy");
    let mut client = connect(&proxy);
    client.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    client.write_all(b"ping").expect("send");
    assert_eq!(read_len(&mut client, 4), b"ping");
    let round_trip = start.elapsed();
    assert!(round_trip >= 2 * latency, "round trip {round_trip:?}");
    assert!(
        round_trip < 2 * latency + SLACK,
        "round trip {round_trip:?}"
    );
}

#[test]
fn latency_does_not_serialise_chunks() {
    let latency = Duration::from_millis(100);
    let proxy =
        FaultProxy::start(echo_server(), Faults::default().with_latency(latency)).expect("proxy");
    let mut client = connect(&proxy);
    client.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    for _ in 0..5 {
        client.write_all(b"chunk").expect("send");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read_len(&mut client, 25), b"chunk".repeat(5));
    let elapsed = start.elapsed();
    // Serialised it would take 5 round trips (1 s); pipelined, one round
    // trip after the last chunk was sent.
    assert!(elapsed >= 2 * latency, "{elapsed:?}");
    assert!(
        elapsed < 2 * latency + Duration::from_millis(80) + SLACK,
        "{elapsed:?}"
    );
}

#[test]
fn bandwidth_cap_slows_transfers_down() {
    let (upstream, sink) = sink_server();
    let proxy =
        FaultProxy::start(upstream, Faults::default().with_bandwidth(100_000)).expect("proxy");
    let mut client = connect(&proxy);
    let start = Instant::now();
    client.write_all(&pattern(30_000)).expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let (got, clean) = sink
        .recv_timeout(Duration::from_secs(5))
        .expect("sink reports");
    let elapsed = start.elapsed();
    assert!(clean);
    assert_eq!(got, pattern(30_000));
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(300) + SLACK, "{elapsed:?}");
}

/// A server that offers STARTTLS everywhere and answers CAPABILITY.
fn capability_server() -> ScriptedServer {
    let script = Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n")
        .expect("CAPABILITY")
        .send(
            b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\n\
              * OK STARTTLS is mentioned in text\r\n\
              {tag} OK [CAPABILITY IMAP4rev1 starttls ID] done\r\n",
        );
    ScriptedServer::start(script).expect("scripted upstream")
}

#[test]
fn strips_starttls_from_greeting_and_capability_lists() {
    let server = capability_server();
    let faults = Faults::default().with_starttls_stripped();
    let proxy = FaultProxy::start(server.addr(), faults).expect("proxy");
    let mut client = connect(&proxy);
    assert_eq!(
        read_line(&mut client),
        "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n"
    );
    client.write_all(b"c1 CAPABILITY\r\n").expect("send");
    assert_eq!(
        read_line(&mut client),
        "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
    );
    assert_eq!(
        read_line(&mut client),
        "* OK STARTTLS is mentioned in text\r\n"
    );
    assert_eq!(
        read_line(&mut client),
        "c1 OK [CAPABILITY IMAP4rev1 ID] done\r\n"
    );
    server.finish().assert_succeeded();
    let recording = proxy.recording();
    assert_eq!(recording.client_to_server_text(), "c1 CAPABILITY\r\n");
    assert!(
        !recording.server_to_client_text().contains("STARTTLS I"),
        "the recording shows what was delivered"
    );
}

#[test]
fn rewrites_the_greeting_to_preauth() {
    let script = Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1] hello\r\n")
        .expect("NOOP")
        .send(b"* OK still here\r\n{tag} OK noop\r\n");
    let server = ScriptedServer::start(script).expect("scripted upstream");
    let proxy =
        FaultProxy::start(server.addr(), Faults::default().with_preauth_greeting()).expect("proxy");
    let mut client = connect(&proxy);
    assert_eq!(
        read_line(&mut client),
        "* PREAUTH [CAPABILITY IMAP4rev1] hello\r\n"
    );
    client.write_all(b"n1 NOOP\r\n").expect("send");
    assert_eq!(read_line(&mut client), "* OK still here\r\n");
    assert_eq!(read_line(&mut client), "n1 OK noop\r\n");
    server.finish().assert_succeeded();
}

#[test]
fn injects_bytes_after_the_starttls_ok_and_stops_rewriting() {
    let script = Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
        .expect("STARTTLS")
        .send(b"{tag} NO not now\r\n")
        .expect("STARTTLS")
        .send(b"{tag} OK begin TLS\r\n")
        // Pretend this is the TLS stream: the proxy must not touch it.
        .send(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n");
    let server = ScriptedServer::start(script).expect("scripted upstream");
    let faults = Faults::default()
        .with_starttls_stripped()
        .with_injection_after_starttls_ok(b"* BYE injected\r\n".to_vec());
    let proxy = FaultProxy::start(server.addr(), faults).expect("proxy");
    let mut client = connect(&proxy);
    assert_eq!(
        read_line(&mut client),
        "* OK [CAPABILITY IMAP4rev1] ready\r\n"
    );
    client.write_all(b"t1 STARTTLS\r\n").expect("send");
    assert_eq!(read_line(&mut client), "t1 NO not now\r\n");
    client.write_all(b"t2 STARTTLS\r\n").expect("send");
    assert_eq!(read_line(&mut client), "t2 OK begin TLS\r\n");
    assert_eq!(read_line(&mut client), "* BYE injected\r\n");
    assert_eq!(
        read_line(&mut client),
        "* CAPABILITY IMAP4rev1 STARTTLS\r\n"
    );
    server.finish().assert_succeeded();
}

#[test]
fn server_literals_pass_through_unrewritten() {
    let body = b"* CAPABILITY IMAP4rev1 STARTTLS\r\n";
    let mut fetch = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
    fetch.extend_from_slice(body);
    fetch.extend_from_slice(b")\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\n");
    let script = Script::new().send(b"* OK ready\r\n").send(&fetch);
    let server = ScriptedServer::start(script).expect("scripted upstream");
    let faults = Faults::default().with_starttls_stripped();
    let proxy = FaultProxy::start(server.addr(), faults).expect("proxy");
    let mut client = connect(&proxy);
    let (received, end) = read_to_end_or_error(&mut client);
    end.expect("EOF");
    let mut expected = b"* OK ready\r\n".to_vec();
    expected.extend_from_slice(&fetch[..fetch.len() - b" STARTTLS\r\n".len()]);
    expected.extend_from_slice(b"\r\n");
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&expected)
    );
    server.finish().assert_succeeded();
}

#[test]
fn records_every_connection_separately() {
    let proxy = FaultProxy::start(echo_server(), Faults::default()).expect("proxy");
    for message in [&b"first"[..], b"second"] {
        let mut client = connect(&proxy);
        client.write_all(message).expect("send");
        client.shutdown(Shutdown::Write).expect("half-close");
        let (echoed, end) = read_to_end_or_error(&mut client);
        end.expect("EOF");
        assert_eq!(echoed, message);
    }
    let recording = proxy.recording();
    assert_eq!(recording.connections.len(), 2);
    assert_eq!(recording.connections[0].client_to_server_text(), "first");
    assert_eq!(recording.connections[1].server_to_client_text(), "second");
    assert_eq!(recording.client_to_server_text(), "firstsecond");
}

#[test]
fn refuses_a_non_loopback_upstream() {
    let upstream: SocketAddr = "192.0.2.1:143".parse().expect("address");
    let error = FaultProxy::start(upstream, Faults::default()).expect_err("refused");
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
}

/// Sends `bytes` through `proxy` to the echo server and reads them back.
fn echo_through(proxy: &FaultProxy, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy.addr()).expect("connect to proxy");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    stream.write_all(bytes).expect("send");
    stream.shutdown(Shutdown::Write).expect("send FIN");
    let mut echoed = Vec::new();
    stream.read_to_end(&mut echoed).expect("read echo");
    echoed
}

#[test]
fn count_only_counts_without_recording() {
    let proxy = FaultProxy::start(echo_server(), Faults::default().with_count_only())
        .expect("proxy starts");
    let payload = vec![b'x'; 100_000];
    assert_eq!(echo_through(&proxy, &payload), payload);
    assert_eq!(echo_through(&proxy, b"abc"), b"abc");
    assert_eq!(proxy.bytes_delivered(Direction::ClientToServer), 100_003);
    assert_eq!(proxy.bytes_delivered(Direction::ServerToClient), 100_003);
    let recording = proxy.recording();
    assert_eq!(recording.connections.len(), 2);
    assert!(
        recording
            .connections
            .iter()
            .all(|c| c.client_to_server.is_empty() && c.server_to_client.is_empty())
    );
}

#[test]
fn default_records_and_counts() {
    let proxy = FaultProxy::start(echo_server(), Faults::default()).expect("proxy starts");
    assert_eq!(echo_through(&proxy, b"hello"), b"hello");
    assert_eq!(proxy.bytes_delivered(Direction::ClientToServer), 5);
    assert_eq!(proxy.bytes_delivered(Direction::ServerToClient), 5);
    assert_eq!(proxy.recording().client_to_server_text(), "hello");
}
