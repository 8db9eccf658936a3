//! A loopback TCP fault proxy.
//!
//! [`FaultProxy`] sits between a client under test and an upstream server
//! (usually a private Dovecot) and misbehaves on purpose, as described by
//! [`Faults`]:
//!
//! - [`Cut`]: end the connection after exactly N bytes in one direction, with
//!   a FIN or a RST, on every connection or only on one;
//! - [`Stall`]: stop forwarding one direction after N bytes, for a while or
//!   forever (the bytes are held, not dropped);
//! - latency and a bandwidth cap, per direction, without serialising
//!   throughput;
//! - IMAP rewrites of server lines: strip `STARTTLS` from capability lists,
//!   turn the `* OK` greeting into `* PREAUTH`, inject plaintext bytes right
//!   after the tagged OK that answers a client's `STARTTLS`.
//!
//! Every connection is recorded, both directions, as delivered
//! ([`FaultProxy::recording`]), and the bytes delivered are counted
//! ([`FaultProxy::bytes_delivered`]). [`Faults::count_only`] keeps the counts
//! but not the bytes, for long runs such as benchmarks, where a recording
//! would hold every byte in memory.
//!
//! Each accepted connection gets its own upstream connection and four
//! threads: per direction, a reader (read, rewrite, timestamp) and a writer
//! (wait for the latency, pace, apply cuts and stalls, record, write), joined
//! by a bounded queue. Dropping the proxy closes the listener, shuts every
//! socket down and joins every thread.
//!
//! IMAP rewriting is line-based and only applied where it is safe: lines are
//! only rewritten before a tagged `STARTTLS` OK has passed (the stream is TLS
//! after it), server literals (`{N}`) pass through untouched, and only the
//! greeting, `* CAPABILITY` lines and `[CAPABILITY ...]` response codes of
//! status responses are changed. When no rewrite is asked for, bytes are
//! forwarded as they come, without any line buffering.
//!
//! ```no_run
//! use ferry_testkit::proxy::{Cut, Direction, FaultProxy, Faults};
//! use std::net::TcpStream;
//!
//! # fn upstream() -> std::net::SocketAddr {
//! #     "127.0.0.1:143".parse().expect("a loopback address")
//! # }
//! let faults = Faults::default()
//!     .with_starttls_stripped()
//!     .with_cut(Cut::reset(Direction::ServerToClient, 100));
//! let proxy = FaultProxy::start(upstream(), faults).expect("proxy starts");
//! let client = TcpStream::connect(proxy.addr()).expect("connect");
//! // ... drive the client, then:
//! let seen = proxy.recording().client_to_server_text();
//! assert!(!seen.contains("LOGIN"));
//! ```

use std::io::{self, Read, Write};
use std::mem;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How much one read takes from a socket.
const READ_BUFFER: usize = 16 * 1024;
/// How many chunks may wait between a reader and its writer.
const QUEUE_CHUNKS: usize = 256;
/// Longest server line held for rewriting; longer lines pass unchanged.
const MAX_LINE: usize = 64 * 1024;
/// How much of an over-long line is kept to spot a literal announcement.
const LINE_TAIL: usize = 32;
/// How long connecting upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection cut with a FIN keeps reading what still arrives.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// Bandwidth pacing writes this many slices per second.
const PACING_SLICES_PER_SECOND: u64 = 50;

/// A direction of traffic through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the upstream server.
    ClientToServer,
    /// From the upstream server to the client.
    ServerToClient,
}

impl Direction {
    /// The position of this direction's counter.
    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

/// How a [`Cut`] ends the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutKind {
    /// An orderly close: both sides read end-of-file (`Ok(0)`).
    Fin,
    /// An abortive close (`SO_LINGER` 0): both sides get a TCP RST, which
    /// reads as [`io::ErrorKind::ConnectionReset`].
    Reset,
}

/// End the connection after exactly `after_bytes` bytes were delivered in
/// `direction`.
///
/// Bytes are counted as delivered, that is after any rewriting. Both sockets
/// (client and upstream) are closed the same way. `after_bytes == 0` cuts as
/// soon as the connection is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The direction whose bytes are counted.
    pub direction: Direction,
    /// How many bytes are delivered before the cut.
    pub after_bytes: u64,
    /// FIN or RST.
    pub kind: CutKind,
    /// Only cut the connection with this index (0 is the first connection
    /// accepted); `None` cuts every connection.
    pub only_connection: Option<usize>,
}

impl Cut {
    /// A FIN cut on every connection.
    pub fn fin(direction: Direction, after_bytes: u64) -> Self {
        Self {
            direction,
            after_bytes,
            kind: CutKind::Fin,
            only_connection: None,
        }
    }

    /// A RST cut on every connection.
    pub fn reset(direction: Direction, after_bytes: u64) -> Self {
        Self {
            kind: CutKind::Reset,
            ..Self::fin(direction, after_bytes)
        }
    }

    /// Only cut the connection with this index (0 is the first accepted).
    pub fn on_connection(self, index: usize) -> Self {
        Self {
            only_connection: Some(index),
            ..self
        }
    }
}

/// Stop forwarding `direction` once `after_bytes` bytes were delivered in it.
///
/// Bytes read meanwhile are held (the queue fills, then TCP flow control
/// pushes back on the sender) and delivered in order when the stall ends.
/// The other direction keeps flowing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    /// The direction that stalls.
    pub direction: Direction,
    /// How many bytes are delivered before the stall.
    pub after_bytes: u64,
    /// How long the stall lasts; `None` stalls until the proxy is dropped.
    pub duration: Option<Duration>,
    /// Only stall the connection with this index (0 is the first accepted);
    /// `None` stalls every connection.
    pub only_connection: Option<usize>,
}

impl Stall {
    /// A stall that lasts until the proxy is dropped, on every connection.
    pub fn forever(direction: Direction, after_bytes: u64) -> Self {
        Self {
            direction,
            after_bytes,
            duration: None,
            only_connection: None,
        }
    }

    /// A stall of `duration`, on every connection.
    pub fn for_duration(direction: Direction, after_bytes: u64, duration: Duration) -> Self {
        Self {
            duration: Some(duration),
            ..Self::forever(direction, after_bytes)
        }
    }

    /// Only stall the connection with this index (0 is the first accepted).
    pub fn on_connection(self, index: usize) -> Self {
        Self {
            only_connection: Some(index),
            ..self
        }
    }
}

/// What the proxy does wrong. The default forwards everything faithfully.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Cut connections after some bytes.
    pub cut: Option<Cut>,
    /// Stall a direction after some bytes.
    pub stall: Option<Stall>,
    /// Delay added to every chunk in each direction: a chunk read at time
    /// `t` is written at `t + latency`. Chunks keep their order and do not
    /// wait for each other, so a round trip takes two latencies.
    pub latency: Duration,
    /// Bandwidth cap in bytes per second, for each direction of each
    /// connection separately; `None` is unlimited.
    pub bandwidth: Option<NonZeroU64>,
    /// Remove the `STARTTLS` atom from the server's capability lists: the
    /// untagged `* CAPABILITY` response and `[CAPABILITY ...]` response
    /// codes of status responses (greeting, tagged OK).
    pub strip_starttls: bool,
    /// Rewrite the server's greeting `* OK ...` into `* PREAUTH ...`.
    pub preauth_greeting: bool,
    /// Bytes written right after the tagged OK that answers a client's
    /// `STARTTLS`, in the same write: plaintext the client receives before
    /// its TLS handshake.
    pub inject_after_starttls_ok: Option<Vec<u8>>,
    /// Only count the bytes delivered ([`FaultProxy::bytes_delivered`]), do
    /// not record them: [`FaultProxy::recording`] then has one empty entry
    /// per connection. For long runs (benchmarks) that would otherwise keep
    /// every byte in memory.
    pub count_only: bool,
}

impl Faults {
    /// Cut connections as `cut` says.
    pub fn with_cut(self, cut: Cut) -> Self {
        Self {
            cut: Some(cut),
            ..self
        }
    }

    /// Stall a direction as `stall` says.
    pub fn with_stall(self, stall: Stall) -> Self {
        Self {
            stall: Some(stall),
            ..self
        }
    }

    /// Add `latency` to each direction.
    pub fn with_latency(self, latency: Duration) -> Self {
        Self { latency, ..self }
    }

    /// Cap each direction at `bytes_per_second` (0 means unlimited).
    pub fn with_bandwidth(self, bytes_per_second: u64) -> Self {
        Self {
            bandwidth: NonZeroU64::new(bytes_per_second),
            ..self
        }
    }

    /// Strip `STARTTLS` from the server's capability lists.
    pub fn with_starttls_stripped(self) -> Self {
        Self {
            strip_starttls: true,
            ..self
        }
    }

    /// Turn the server's `* OK` greeting into `* PREAUTH`.
    pub fn with_preauth_greeting(self) -> Self {
        Self {
            preauth_greeting: true,
            ..self
        }
    }

    /// Inject `bytes` right after the server's tagged `STARTTLS` OK.
    pub fn with_injection_after_starttls_ok(self, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            inject_after_starttls_ok: Some(bytes.into()),
            ..self
        }
    }

    /// Count the bytes delivered, but do not record them.
    pub fn with_count_only(self) -> Self {
        Self {
            count_only: true,
            ..self
        }
    }

    /// Whether server lines must be parsed at all.
    fn rewrites_lines(&self) -> bool {
        self.strip_starttls || self.preauth_greeting || self.inject_after_starttls_ok.is_some()
    }
}

/// What passed through the proxy, per connection, in accept order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// One entry per accepted connection (index 0 is the first).
    pub connections: Vec<ConnectionRecording>,
}

impl Recording {
    /// Everything clients sent, all connections in order, as lossy UTF-8.
    pub fn client_to_server_text(&self) -> String {
        self.text(Direction::ClientToServer)
    }

    /// Everything servers sent (as delivered), all connections in order, as
    /// lossy UTF-8.
    pub fn server_to_client_text(&self) -> String {
        self.text(Direction::ServerToClient)
    }

    /// The first connection's recording, if any connection was accepted.
    pub fn first(&self) -> Option<&ConnectionRecording> {
        self.connections.first()
    }

    fn text(&self, direction: Direction) -> String {
        self.connections
            .iter()
            .map(|connection| connection.text(direction))
            .collect()
    }
}

/// The bytes one connection delivered in each direction, in order.
///
/// Bytes are recorded as written to the receiving side: after rewriting,
/// and never past a cut or while a stall holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionRecording {
    /// What the client sent, as forwarded to the server.
    pub client_to_server: Vec<u8>,
    /// What the server sent, as delivered to the client.
    pub server_to_client: Vec<u8>,
}

impl ConnectionRecording {
    /// The bytes delivered in `direction`.
    pub fn bytes(&self, direction: Direction) -> &[u8] {
        match direction {
            Direction::ClientToServer => &self.client_to_server,
            Direction::ServerToClient => &self.server_to_client,
        }
    }

    /// What the client sent, as lossy UTF-8.
    pub fn client_to_server_text(&self) -> String {
        self.text(Direction::ClientToServer)
    }

    /// What the client received, as lossy UTF-8.
    pub fn server_to_client_text(&self) -> String {
        self.text(Direction::ServerToClient)
    }

    fn text(&self, direction: Direction) -> String {
        String::from_utf8_lossy(self.bytes(direction)).into_owned()
    }

    fn bytes_mut(&mut self, direction: Direction) -> &mut Vec<u8> {
        match direction {
            Direction::ClientToServer => &mut self.client_to_server,
            Direction::ServerToClient => &mut self.server_to_client,
        }
    }
}

/// A running fault proxy on 127.0.0.1. Dropping it stops everything.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free 127.0.0.1 port and forwards every connection to
    /// `upstream` (which must be a loopback address) with `faults`.
    pub fn start(upstream: SocketAddr, faults: Faults) -> io::Result<Self> {
        if !upstream.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the fault proxy only forwards to loopback, not {upstream}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            faults,
            stop: StopSignal::default(),
            recording: Mutex::default(),
            delivered: [AtomicU64::new(0), AtomicU64::new(0)],
            connections: Mutex::default(),
            threads: Mutex::default(),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(&listener, &accept_shared))?;
        Ok(Self {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A copy of what passed so far.
    pub fn recording(&self) -> Recording {
        Recording {
            connections: lock(&self.shared.recording).clone(),
        }
    }

    /// The bytes delivered so far in `direction`, over all connections (as
    /// written to the receiving side: after rewriting, never past a cut).
    /// Counted whether or not [`Faults::count_only`] is set.
    pub fn bytes_delivered(&self, direction: Direction) -> u64 {
        self.shared.delivered[direction.index()].load(Ordering::Relaxed)
    }

    /// How many client connections were accepted so far.
    pub fn connections(&self) -> usize {
        lock(&self.shared.recording).len()
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("faults", &self.shared.faults)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.stop();
        // Wake the blocking accept so the accept thread sees the stop.
        let woken = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT).is_ok();
        if let Some(accept_thread) = self.accept_thread.take() {
            if woken {
                let _ = accept_thread.join();
            }
        }
        let connections = mem::take(&mut *lock(&self.shared.connections));
        for connection in connections.iter().filter_map(Weak::upgrade) {
            connection.abort();
        }
        let threads = mem::take(&mut *lock(&self.shared.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// State shared by the proxy handle, the accept thread and the pumps.
struct Shared {
    upstream: SocketAddr,
    faults: Faults,
    stop: StopSignal,
    recording: Mutex<Vec<ConnectionRecording>>,
    /// Bytes delivered per [`Direction::index`], over all connections.
    delivered: [AtomicU64; 2],
    /// Weak, so a connection's sockets close when its threads are done.
    connections: Mutex<Vec<Weak<Connection>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn new_recording(&self) -> usize {
        let mut recording = lock(&self.recording);
        recording.push(ConnectionRecording::default());
        recording.len() - 1
    }

    fn record(&self, index: usize, direction: Direction, bytes: &[u8]) {
        self.delivered[direction.index()].fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.faults.count_only {
            return;
        }
        if let Some(connection) = lock(&self.recording).get_mut(index) {
            connection.bytes_mut(direction).extend_from_slice(bytes);
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stop.is_stopped() {
            return;
        }
        match incoming {
            Ok(client) => {
                let index = shared.new_recording();
                // A failed upstream connect drops the client: it sees EOF.
                let _ = start_connection(shared, index, client);
            }
            // Out of descriptors or similar: do not spin.
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn start_connection(shared: &Arc<Shared>, index: usize, client: TcpStream) -> io::Result<()> {
    let upstream = TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT)?;
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    let connection = Arc::new(Connection {
        index,
        client,
        upstream,
        stop: StopSignal::default(),
    });
    lock(&shared.connections).push(Arc::downgrade(&connection));
    let watch = Arc::new(StartTlsWatch::default());
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        let filter = new_filter(&shared.faults, direction, &watch);
        start_pump(shared, &connection, direction, filter)?;
    }
    Ok(())
}

/// Starts the reader and writer threads of one direction.
fn start_pump(
    shared: &Arc<Shared>,
    connection: &Arc<Connection>,
    direction: Direction,
    filter: Box<dyn Filter>,
) -> io::Result<()> {
    let (sender, receiver) = sync_channel(QUEUE_CHUNKS);
    let latency = shared.faults.latency;
    let reader_connection = Arc::clone(connection);
    let reader = thread::Builder::new()
        .name(format!("fault-proxy-read-{direction:?}"))
        .spawn(move || read_loop(&reader_connection, direction, filter, latency, &sender))?;
    let writer_connection = Arc::clone(connection);
    let writer_shared = Arc::clone(shared);
    let writer = thread::Builder::new()
        .name(format!("fault-proxy-write-{direction:?}"))
        .spawn(move || write_loop(&writer_connection, direction, &writer_shared, &receiver))?;
    lock(&shared.threads).extend([reader, writer]);
    Ok(())
}

/// One proxied connection: the client socket and its upstream socket.
struct Connection {
    index: usize,
    client: TcpStream,
    upstream: TcpStream,
    /// Set when the connection is cut, aborted or the proxy drops.
    stop: StopSignal,
}

impl Connection {
    fn source(&self, direction: Direction) -> &TcpStream {
        match direction {
            Direction::ClientToServer => &self.client,
            Direction::ServerToClient => &self.upstream,
        }
    }

    fn destination(&self, direction: Direction) -> &TcpStream {
        match direction {
            Direction::ClientToServer => &self.upstream,
            Direction::ServerToClient => &self.client,
        }
    }

    /// Stops both directions and closes both sockets with a FIN.
    fn abort(&self) {
        self.stop.stop();
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }

    /// Stops both directions; both sockets send a RST when the last thread
    /// lets go of the connection (`SO_LINGER` 0 turns close into RST, and
    /// shutting down only the read side wakes the readers without sending a
    /// FIN).
    fn reset(&self) {
        self.stop.stop();
        for socket in [&self.client, &self.upstream] {
            let _ = rustix::net::sockopt::set_socket_linger(socket, Some(Duration::ZERO));
            let _ = socket.shutdown(Shutdown::Read);
        }
    }

    /// Stops both directions and sends a FIN each way, after the bytes
    /// already written. The readers then drain what still arrives (for a
    /// short while) instead of leaving it unread: a socket closed with
    /// unread data sends a RST, and a RST throws away the bytes still in
    /// its send queue, which the peer would then never see.
    fn finish(&self) {
        self.stop.stop();
        for socket in [&self.client, &self.upstream] {
            let _ = socket.set_read_timeout(Some(DRAIN_TIME));
            let _ = socket.shutdown(Shutdown::Write);
        }
    }

    fn cut(&self, kind: CutKind) {
        match kind {
            CutKind::Fin => self.finish(),
            CutKind::Reset => self.reset(),
        }
    }
}

/// What a reader hands its writer.
enum Chunk {
    /// Bytes to write once `due` has come.
    Data { due: Instant, bytes: Vec<u8> },
    /// The source sent FIN: pass it on.
    End,
    /// The source failed (for example it was reset): abort the connection.
    Failed,
}

fn read_loop(
    connection: &Connection,
    direction: Direction,
    mut filter: Box<dyn Filter>,
    latency: Duration,
    sender: &SyncSender<Chunk>,
) {
    let mut source = connection.source(direction);
    let mut buffer = vec![0; READ_BUFFER];
    loop {
        let read = source.read(&mut buffer);
        let due = Instant::now() + latency;
        if connection.stop.is_stopped() {
            if matches!(read, Ok(n) if n > 0) {
                drain(source, &mut buffer);
            }
            return;
        }
        let chunk = match read {
            Ok(0) => {
                let rest = filter.flush();
                if !rest.is_empty() && send(sender, due, rest).is_err() {
                    return;
                }
                let _ = sender.send(Chunk::End);
                return;
            }
            Ok(n) => filter.feed(&buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = sender.send(Chunk::Failed);
                return;
            }
        };
        if !chunk.is_empty() && send(sender, due, chunk).is_err() {
            return;
        }
    }
}

/// Reads and drops what `source` still sends, until EOF, an error (the
/// read timeout [`Connection::finish`] set) or [`DRAIN_TIME`] has passed.
fn drain(mut source: &TcpStream, buffer: &mut [u8]) {
    let deadline = Instant::now() + DRAIN_TIME;
    while Instant::now() < deadline {
        match source.read(buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn send(sender: &SyncSender<Chunk>, due: Instant, bytes: Vec<u8>) -> Result<(), ()> {
    sender.send(Chunk::Data { due, bytes }).map_err(drop)
}

fn write_loop(
    connection: &Connection,
    direction: Direction,
    shared: &Shared,
    receiver: &Receiver<Chunk>,
) {
    let mut delivery = Delivery::new(connection, direction, shared);
    if delivery.check_thresholds() == Flow::Stop {
        return;
    }
    while let Ok(chunk) = receiver.recv() {
        let flow = match chunk {
            Chunk::Data { due, bytes } if !connection.stop.sleep_until(due) => {
                delivery.deliver(&bytes)
            }
            Chunk::Data { .. } => Flow::Stop,
            Chunk::End => {
                if !connection.stop.is_stopped() {
                    let _ = connection.destination(direction).shutdown(Shutdown::Write);
                }
                Flow::Stop
            }
            Chunk::Failed => {
                connection.abort();
                Flow::Stop
            }
        };
        if flow == Flow::Stop {
            return;
        }
    }
}

/// Whether a writer goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The writing half of one direction: pacing, cuts, stalls, recording.
struct Delivery<'a> {
    connection: &'a Connection,
    direction: Direction,
    shared: &'a Shared,
    delivered: u64,
    cut: Option<Cut>,
    /// Cleared once the stall has happened.
    stall: Option<Stall>,
    pacer: Pacer,
}

impl<'a> Delivery<'a> {
    fn new(connection: &'a Connection, direction: Direction, shared: &'a Shared) -> Self {
        let faults = &shared.faults;
        let applies = |d: Direction, only: Option<usize>| {
            d == direction && only.is_none_or(|index| index == connection.index)
        };
        Self {
            connection,
            direction,
            shared,
            delivered: 0,
            cut: faults
                .cut
                .filter(|cut| applies(cut.direction, cut.only_connection)),
            stall: faults
                .stall
                .filter(|stall| applies(stall.direction, stall.only_connection)),
            pacer: Pacer::new(faults.bandwidth),
        }
    }

    /// Writes `bytes` piece by piece, stopping exactly at cut and stall
    /// thresholds.
    fn deliver(&mut self, mut bytes: &[u8]) -> Flow {
        while !bytes.is_empty() {
            if self.pacer.wait(&self.connection.stop) {
                return Flow::Stop;
            }
            let (piece, rest) = bytes.split_at(self.piece_len(bytes.len()));
            self.shared
                .record(self.connection.index, self.direction, piece);
            let mut destination = self.connection.destination(self.direction);
            if destination.write_all(piece).is_err() {
                self.connection.abort();
                return Flow::Stop;
            }
            self.delivered += piece.len() as u64;
            self.pacer.sent(piece.len());
            bytes = rest;
            if self.check_thresholds() == Flow::Stop {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// How much of `wanted` bytes may be written before the next threshold.
    fn piece_len(&self, wanted: usize) -> usize {
        let thresholds = [
            self.cut.map(|cut| cut.after_bytes),
            self.stall.map(|stall| stall.after_bytes),
        ];
        thresholds
            .into_iter()
            .flatten()
            .filter(|&threshold| threshold > self.delivered)
            .map(|threshold| usize::try_from(threshold - self.delivered).unwrap_or(usize::MAX))
            .fold(self.pacer.piece_len(wanted), usize::min)
    }

    /// Cuts or stalls if a threshold has been reached.
    fn check_thresholds(&mut self) -> Flow {
        if let Some(cut) = self.cut.filter(|cut| self.delivered >= cut.after_bytes) {
            self.connection.cut(cut.kind);
            return Flow::Stop;
        }
        if let Some(stall) = self
            .stall
            .filter(|stall| self.delivered >= stall.after_bytes)
        {
            self.stall = None;
            let stopped = match stall.duration {
                Some(duration) => self.connection.stop.sleep_until(Instant::now() + duration),
                None => self.connection.stop.wait(),
            };
            if stopped {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }
}

/// Paces writes to a bandwidth cap.
struct Pacer {
    bytes_per_second: Option<NonZeroU64>,
    since: Instant,
    sent: u64,
}

impl Pacer {
    fn new(bytes_per_second: Option<NonZeroU64>) -> Self {
        Self {
            bytes_per_second,
            since: Instant::now(),
            sent: 0,
        }
    }

    fn piece_len(&self, wanted: usize) -> usize {
        match self.bytes_per_second {
            None => wanted,
            Some(rate) => {
                let slice = (rate.get() / PACING_SLICES_PER_SECOND).max(1);
                wanted.min(usize::try_from(slice).unwrap_or(usize::MAX))
            }
        }
    }

    /// Waits until the next piece may go; returns whether `stop` was set.
    fn wait(&mut self, stop: &StopSignal) -> bool {
        let Some(rate) = self.bytes_per_second else {
            return false;
        };
        let due = self.since + Duration::from_secs_f64(self.sent as f64 / rate.get() as f64);
        let now = Instant::now();
        if now > due + Duration::from_millis(100) {
            // Idle for a while: do not let the saved-up budget burst out.
            self.since = now;
            self.sent = 0;
            return false;
        }
        stop.sleep_until(due)
    }

    fn sent(&mut self, bytes: usize) {
        self.sent += bytes as u64;
    }
}

/// A stop flag that sleeping threads can wait on.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.changed.notify_all();
    }

    fn is_stopped(&self) -> bool {
        *lock(&self.stopped)
    }

    /// Sleeps until `deadline` or the stop; returns whether stopped.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .changed
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Sleeps until the stop; returns true.
    fn wait(&self) -> bool {
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            stopped = self
                .changed
                .wait(stopped)
                .unwrap_or_else(PoisonError::into_inner);
        }
        true
    }
}

/// Locks a mutex, ignoring poisoning (a panicked pump leaves valid data).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Looks at (and possibly rewrites) the bytes of one direction.
trait Filter: Send {
    /// Takes bytes read from the source, returns bytes to deliver.
    fn feed(&mut self, input: &[u8]) -> Vec<u8>;
    /// Returns whatever is held back, at end of stream.
    fn flush(&mut self) -> Vec<u8>;
}

fn new_filter(
    faults: &Faults,
    direction: Direction,
    watch: &Arc<StartTlsWatch>,
) -> Box<dyn Filter> {
    if !faults.rewrites_lines() {
        return Box::new(PassThrough);
    }
    match direction {
        Direction::ClientToServer => Box::new(ClientWatcher::new(Arc::clone(watch))),
        Direction::ServerToClient => Box::new(ServerRewriter::new(faults, Arc::clone(watch))),
    }
}

/// Forwards bytes unchanged.
struct PassThrough;

impl Filter for PassThrough {
    fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        input.to_vec()
    }

    fn flush(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// What the client side tells the server side about STARTTLS.
#[derive(Default)]
struct StartTlsWatch {
    /// Tags of `STARTTLS` commands the server has not answered yet.
    pending_tags: Mutex<Vec<Vec<u8>>>,
    /// Set once the server accepted STARTTLS: both directions are TLS now.
    upgraded: AtomicBool,
}

/// Splits a byte stream into lines, holding at most [`MAX_LINE`] bytes and
/// skipping over literals (`{N}` at the end of a line announces N raw bytes).
#[derive(Default)]
struct LineSplitter {
    line: Vec<u8>,
    /// The head of the current line was already passed on: it is too long
    /// to be rewritten, `line` only keeps its tail.
    truncated: bool,
    literal_left: u64,
}

/// One piece of a stream, as cut by [`LineSplitter`].
enum Piece<'a> {
    /// Bytes to pass through as they are.
    Raw(&'a [u8]),
    /// Bytes to pass through, owned.
    Owned(Vec<u8>),
    /// A whole line, with its line ending, that may be rewritten.
    Line(Vec<u8>),
}

impl LineSplitter {
    /// Takes the next piece from `input`, advancing it.
    fn next<'a>(&mut self, input: &mut &'a [u8]) -> Piece<'a> {
        if self.literal_left > 0 {
            let n = usize::try_from(self.literal_left)
                .unwrap_or(usize::MAX)
                .min(input.len());
            let (literal, rest) = input.split_at(n);
            *input = rest;
            self.literal_left -= n as u64;
            return Piece::Raw(literal);
        }
        match input.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let (head, rest) = input.split_at(end + 1);
                *input = rest;
                self.line.extend_from_slice(head);
                let line = mem::take(&mut self.line);
                self.literal_left = literal_announced(&line).unwrap_or(0);
                if mem::take(&mut self.truncated) {
                    Piece::Owned(line)
                } else {
                    Piece::Line(line)
                }
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                self.spill_long_line()
            }
        }
    }

    /// Passes on the head of an over-long line, keeping its tail.
    fn spill_long_line(&mut self) -> Piece<'static> {
        if self.line.len() <= MAX_LINE {
            return Piece::Owned(Vec::new());
        }
        self.truncated = true;
        let head = self.line.len() - LINE_TAIL;
        Piece::Owned(self.line.drain(..head).collect())
    }

    fn flush(&mut self) -> Vec<u8> {
        mem::take(&mut self.line)
    }
}

/// Watches client commands for `STARTTLS` and remembers their tags.
struct ClientWatcher {
    watch: Arc<StartTlsWatch>,
    lines: LineSplitter,
}

impl ClientWatcher {
    fn new(watch: Arc<StartTlsWatch>) -> Self {
        Self {
            watch,
            lines: LineSplitter::default(),
        }
    }
}

impl Filter for ClientWatcher {
    fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        let mut rest = input;
        while !rest.is_empty() && !self.watch.upgraded.load(Ordering::SeqCst) {
            if let Piece::Line(line) = self.lines.next(&mut rest) {
                if let Some(tag) = starttls_command_tag(&line) {
                    lock(&self.watch.pending_tags).push(tag);
                }
            }
        }
        input.to_vec()
    }

    fn flush(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Rewrites server lines: greeting, capability lists, STARTTLS injection.
struct ServerRewriter {
    strip_starttls: bool,
    preauth_greeting: bool,
    inject_after_starttls_ok: Option<Vec<u8>>,
    watch: Arc<StartTlsWatch>,
    lines: LineSplitter,
    seen_greeting: bool,
}

impl ServerRewriter {
    fn new(faults: &Faults, watch: Arc<StartTlsWatch>) -> Self {
        Self {
            strip_starttls: faults.strip_starttls,
            preauth_greeting: faults.preauth_greeting,
            inject_after_starttls_ok: faults.inject_after_starttls_ok.clone(),
            watch,
            lines: LineSplitter::default(),
            seen_greeting: false,
        }
    }

    fn upgraded(&self) -> bool {
        self.watch.upgraded.load(Ordering::SeqCst)
    }

    fn rewrite_line(&mut self, mut line: Vec<u8>, output: &mut Vec<u8>) {
        if !mem::replace(&mut self.seen_greeting, true) && self.preauth_greeting {
            line = greeting_to_preauth(&line);
        }
        if self.strip_starttls {
            line = strip_starttls(&line);
        }
        output.extend_from_slice(&line);
        self.answer_starttls(&line, output);
    }

    /// Notices the server's answer to a pending `STARTTLS`.
    fn answer_starttls(&mut self, line: &[u8], output: &mut Vec<u8>) {
        let Some((tag, status)) = tagged_status(line) else {
            return;
        };
        let mut pending = lock(&self.watch.pending_tags);
        let Some(position) = pending.iter().position(|pending| pending == tag) else {
            return;
        };
        pending.remove(position);
        if status.eq_ignore_ascii_case(b"OK") {
            self.watch.upgraded.store(true, Ordering::SeqCst);
            if let Some(bytes) = &self.inject_after_starttls_ok {
                output.extend_from_slice(bytes);
            }
        }
    }
}

impl Filter for ServerRewriter {
    fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        let mut output = Vec::with_capacity(input.len());
        let mut rest = input;
        while !rest.is_empty() {
            if self.upgraded() {
                output.extend_from_slice(rest);
                break;
            }
            match self.lines.next(&mut rest) {
                Piece::Raw(bytes) => output.extend_from_slice(bytes),
                Piece::Owned(bytes) => output.extend_from_slice(&bytes),
                Piece::Line(line) => self.rewrite_line(line, &mut output),
            }
        }
        output
    }

    fn flush(&mut self) -> Vec<u8> {
        self.lines.flush()
    }
}

/// The length of the literal a line announces with `{N}` or `{N+}` at its
/// end, if any.
fn literal_announced(line: &[u8]) -> Option<u64> {
    let body = trim_line_ending(line);
    let inner = body.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The tag of a client `tag STARTTLS` command line.
fn starttls_command_tag(line: &[u8]) -> Option<Vec<u8>> {
    let body = trim_line_ending(line);
    let (tag, command) = split_word(body)?;
    (!tag.is_empty() && command.eq_ignore_ascii_case(b"STARTTLS")).then(|| tag.to_vec())
}

/// The tag and status word of a tagged status response (`a1 OK ...`).
fn tagged_status(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, rest) = split_word(trim_line_ending(line))?;
    if tag == b"*" || tag == b"+" {
        return None;
    }
    let status = split_word(rest).map_or(rest, |(status, _)| status);
    let statuses: [&[u8]; 3] = [b"OK", b"NO", b"BAD"];
    statuses
        .iter()
        .any(|known| status.eq_ignore_ascii_case(known))
        .then_some((tag, status))
}

/// `* OK rest` becomes `* PREAUTH rest`; other lines stay as they are.
fn greeting_to_preauth(line: &[u8]) -> Vec<u8> {
    const OK: &[u8] = b"* OK";
    if line.len() >= OK.len() && line[..OK.len()].eq_ignore_ascii_case(OK) {
        [b"* PREAUTH", &line[OK.len()..]].concat()
    } else {
        line.to_vec()
    }
}

/// Removes the `STARTTLS` atom from a `* CAPABILITY` line or from a
/// `[CAPABILITY ...]` response code of a status response.
fn strip_starttls(line: &[u8]) -> Vec<u8> {
    const UNTAGGED: &[u8] = b"* CAPABILITY ";
    const CODE: &[u8] = b"[CAPABILITY ";
    let body = trim_line_ending(line);
    let ending = &line[body.len()..];
    if starts_with_ignore_case(body, UNTAGGED) {
        let head = UNTAGGED.len() - 1;
        return [&body[..head], &remove_starttls_atoms(&body[head..]), ending].concat();
    }
    let Some((_tag, rest)) = split_word(body) else {
        return line.to_vec();
    };
    let Some((status, text)) = split_word(rest) else {
        return line.to_vec();
    };
    let statuses: [&[u8]; 5] = [b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE"];
    let is_status = statuses.iter().any(|s| status.eq_ignore_ascii_case(s));
    let Some(close) = text.iter().position(|&b| b == b']') else {
        return line.to_vec();
    };
    if !is_status || !starts_with_ignore_case(text, CODE) {
        return line.to_vec();
    }
    let start = body.len() - text.len();
    let atoms_start = start + CODE.len() - 1;
    let atoms_end = start + close;
    [
        &body[..atoms_start],
        &remove_starttls_atoms(&body[atoms_start..atoms_end]),
        &body[atoms_end..],
        ending,
    ]
    .concat()
}

/// Drops `STARTTLS` from space-separated atoms (keeping a leading space).
fn remove_starttls_atoms(atoms: &[u8]) -> Vec<u8> {
    let kept: Vec<&[u8]> = atoms
        .split(|&b| b == b' ')
        .filter(|atom| !atom.eq_ignore_ascii_case(b"STARTTLS"))
        .collect();
    kept.join(&b' ')
}

fn split_word(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = bytes.iter().position(|&b| b == b' ')?;
    Some((&bytes[..space], &bytes[space + 1..]))
}

fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}
