//! A scripted fake IMAP server, for responses no real server sends.
//!
//! A [`Script`] is a list of steps: send exact bytes, flood the client,
//! expect a client command, close, reset, sleep. [`ScriptedServer::start`]
//! listens on a free 127.0.0.1 port and runs the script against the **first**
//! client that connects, in a background thread; the listener is closed as
//! soon as that client is accepted, so later connections are refused.
//! [`ScriptedServer::finish`] waits for the script to end and returns a
//! [`Report`]: the commands the client sent and whether the script ran to the
//! end ([`Report::succeeded`]).
//!
//! Matching: [`Script::expect`] reads one client command, captures its tag,
//! and matches the rest against a pattern where `*` matches any bytes and
//! letters match in either case: `expect("LOGIN *")` matches
//! `a1 LOGIN user pass`. The last captured tag replaces `{tag}` in later
//! [`Script::send`] steps, so a script answers `{tag} OK done\r\n`.
//!
//! Literals: [`Script::expect`] reads a whole command, literals included. A
//! synchronising literal (`{N}`) is answered automatically with the
//! continuation [`Script::with_continuation`] sets (`+ go ahead\r\n` by
//! default); a non-synchronising one (`{N+}`) is not. For full control use
//! [`Script::expect_line`], which reads one raw line and nothing else.
//!
//! Every read, write and the wait for the client time out (5 seconds by
//! default, [`Script::with_timeout`]), so a broken test fails instead of
//! hanging. A client that hangs up during a flood step
//! ([`Script::send_repeated`], [`Script::send_forever`], [`Script::send_with`])
//! ends the script without failing it ([`Outcome::ClientHungUp`]): closing is
//! the right reaction to a hostile flood. At the end of the script the server
//! closes the connection (a RST rather than a FIN if the client sent bytes
//! the script never read).
//!
//! ```no_run
//! use ferry_testkit::fake_server::{Script, ScriptedServer};
//!
//! let script = Script::new()
//!     .send(b"* OK fake server ready\r\n")
//!     .expect("LOGIN *")
//!     .send(b"* 1 FETCH (BODY[] {2147483648}\r\n")
//!     .send_forever(vec![b'x'; 64 * 1024]);
//! let server = ScriptedServer::start(script).expect("server starts");
//! // ... point the client under test at server.addr(), then:
//! let report = server.finish();
//! report.assert_succeeded();
//! ```

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The default timeout for waiting on the client.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest client line the server reads.
const MAX_LINE: u64 = 1024 * 1024;
/// The longest client literal the server reads.
const MAX_LITERAL: u64 = 64 * 1024 * 1024;
/// How often waiting loops look at the stop flag.
const POLL: Duration = Duration::from_millis(5);

/// Produces flood chunks until it returns `None`.
type Generator = Box<dyn FnMut() -> Option<Vec<u8>> + Send>;

/// What a scripted server does, step by step.
pub struct Script {
    steps: Vec<Step>,
    timeout: Duration,
    continuation: Vec<u8>,
}

enum Step {
    Send(Vec<u8>),
    Flood(Flood),
    Expect(String),
    ExpectLine(String),
    Close,
    Reset,
    Sleep(Duration),
}

enum Flood {
    Repeated { chunk: Vec<u8>, count: Option<u64> },
    Generated(Generator),
}

impl Default for Script {
    fn default() -> Self {
        Self {
            steps: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            continuation: b"+ go ahead\r\n".to_vec(),
        }
    }
}

impl Script {
    /// An empty script: accept a client, then close.
    pub fn new() -> Self {
        Self::default()
    }

    /// Write `bytes` exactly, with every `{tag}` replaced by the tag of the
    /// last command matched by [`Script::expect`] (the step fails if there is
    /// none). A write error fails the script.
    pub fn send(self, bytes: impl AsRef<[u8]>) -> Self {
        self.step(Step::Send(bytes.as_ref().to_vec()))
    }

    /// Write `chunk` `count` times (a flood step: no `{tag}` replacement, and
    /// a client hanging up ends the script without failing it).
    pub fn send_repeated(self, chunk: impl AsRef<[u8]>, count: u64) -> Self {
        self.flood(Flood::Repeated {
            chunk: chunk.as_ref().to_vec(),
            count: Some(count),
        })
    }

    /// Write `chunk` again and again until the client hangs up (which ends
    /// the script without failing it) or stops reading (which fails it when
    /// the write times out).
    pub fn send_forever(self, chunk: impl AsRef<[u8]>) -> Self {
        self.flood(Flood::Repeated {
            chunk: chunk.as_ref().to_vec(),
            count: None,
        })
    }

    /// Write what `generator` returns until it returns `None` (a flood step,
    /// like [`Script::send_repeated`]).
    pub fn send_with(self, generator: impl FnMut() -> Option<Vec<u8>> + Send + 'static) -> Self {
        self.flood(Flood::Generated(Box::new(generator)))
    }

    /// Read one client command (a line, with any literals it announces) and
    /// match everything after its tag against `pattern` (`*` matches any
    /// bytes, letters match in either case). The tag is captured for `{tag}`.
    pub fn expect(self, pattern: &str) -> Self {
        self.step(Step::Expect(pattern.to_owned()))
    }

    /// Read one raw line, without tag capture or literal handling, and match
    /// the whole of it (without its line ending) against `pattern`: for
    /// untagged client lines such as `DONE` or an AUTHENTICATE response.
    pub fn expect_line(self, pattern: &str) -> Self {
        self.step(Step::ExpectLine(pattern.to_owned()))
    }

    /// Send a FIN (shut down the write side); later steps may still read.
    pub fn close(self) -> Self {
        self.step(Step::Close)
    }

    /// Abort the connection with a RST; any later step fails.
    pub fn reset(self) -> Self {
        self.step(Step::Reset)
    }

    /// Do nothing for `duration`.
    pub fn sleep(self, duration: Duration) -> Self {
        self.step(Step::Sleep(duration))
    }

    /// How long to wait for the client to connect, send a line, or take
    /// written bytes (default 5 seconds).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    /// The continuation sent for a client's synchronising literal (default
    /// `+ go ahead\r\n`).
    pub fn with_continuation(self, continuation: impl AsRef<[u8]>) -> Self {
        Self {
            continuation: continuation.as_ref().to_vec(),
            ..self
        }
    }

    fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    fn flood(self, flood: Flood) -> Self {
        self.step(Step::Flood(flood))
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("steps", &self.steps)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Send(bytes) => write!(f, "send({:?})", String::from_utf8_lossy(bytes)),
            Step::Flood(Flood::Repeated { chunk, count }) => {
                write!(f, "flood({} bytes x {count:?})", chunk.len())
            }
            Step::Flood(Flood::Generated(_)) => f.write_str("flood(generator)"),
            Step::Expect(pattern) => write!(f, "expect({pattern:?})"),
            Step::ExpectLine(pattern) => write!(f, "expect_line({pattern:?})"),
            Step::Close => f.write_str("close"),
            Step::Reset => f.write_str("reset"),
            Step::Sleep(duration) => write!(f, "sleep({duration:?})"),
        }
    }
}

/// How a script ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every step ran.
    Completed,
    /// The client hung up during the flood step with index `step` (0 is the
    /// first step), after `bytes_sent` bytes of it were written; the rest of
    /// the script was skipped. This counts as success.
    ClientHungUp {
        /// The index of the flood step.
        step: usize,
        /// How many bytes of the flood were written before the hang-up.
        bytes_sent: u64,
    },
    /// No client connected before the timeout (or the server was dropped).
    NoClient,
    /// The step with index `step` failed.
    Failed {
        /// The index of the failed step (0 is the first step).
        step: usize,
        /// What went wrong, e.g. the client line that did not match.
        reason: String,
    },
}

/// What happened on a scripted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Every command or line the client sent that a step read, in order,
    /// without the final line ending; literals are included as sent
    /// (`a1 LOGIN {4}\r\nuser pass`).
    pub received: Vec<Vec<u8>>,
    /// How the script ended.
    pub outcome: Outcome,
}

impl Report {
    /// Whether the script ran to the end, or the client hung up on a flood.
    pub fn succeeded(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Completed | Outcome::ClientHungUp { .. }
        )
    }

    /// The received commands as lossy UTF-8.
    pub fn received_text(&self) -> Vec<String> {
        self.received
            .iter()
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect()
    }

    /// Panics, showing the outcome and what the client sent, unless the
    /// script succeeded.
    #[track_caller]
    pub fn assert_succeeded(&self) {
        assert!(
            self.succeeded(),
            "scripted server: {:?}; client sent {:#?}",
            self.outcome,
            self.received_text()
        );
    }
}

/// A fake IMAP server running a [`Script`] on 127.0.0.1.
///
/// Dropping it without [`ScriptedServer::finish`] aborts the script (the
/// connection is shut down) and waits for the thread.
pub struct ScriptedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Report>>,
}

/// What the handle shares with the server thread, to abort it.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// A second handle on the client socket, to shut it down from outside.
    connection: Mutex<Option<TcpStream>>,
}

impl Shared {
    fn connection(&self) -> MutexGuard<'_, Option<TcpStream>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl ScriptedServer {
    /// Listens on a free 127.0.0.1 port and runs `script` against the first
    /// client, in a background thread.
    pub fn start(script: Script) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("scripted-imap-server".into())
            .spawn(move || serve(listener, script, &thread_shared))?;
        Ok(Self {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the script to end (by itself, or when a timeout fires) and
    /// reports what happened.
    pub fn finish(mut self) -> Report {
        self.join()
    }

    fn join(&mut self) -> Report {
        let Some(thread) = self.thread.take() else {
            return Report {
                received: Vec::new(),
                outcome: Outcome::NoClient,
            };
        };
        thread.join().unwrap_or_else(|_| Report {
            received: Vec::new(),
            outcome: Outcome::Failed {
                step: 0,
                reason: "the server thread panicked".into(),
            },
        })
    }
}

impl fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if self.thread.is_none() {
            return;
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(connection) = self.shared.connection().as_ref() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        self.join();
    }
}

/// The server thread: accept one client, run the script, close.
fn serve(listener: TcpListener, script: Script, shared: &Shared) -> Report {
    let stream = match accept(&listener, script.timeout, shared) {
        Some(stream) => stream,
        None => {
            return Report {
                received: Vec::new(),
                outcome: Outcome::NoClient,
            };
        }
    };
    drop(listener);
    let mut session = match Session::new(stream, &script, shared) {
        Ok(session) => session,
        Err(error) => {
            return Report {
                received: Vec::new(),
                outcome: Outcome::Failed {
                    step: 0,
                    reason: format!("setting up the connection: {error}"),
                },
            };
        }
    };
    let outcome = session.run(script.steps);
    shared.connection().take();
    Report {
        received: session.received,
        outcome,
    }
}

/// Waits for the first client, until `timeout` or the stop flag.
fn accept(listener: &TcpListener, timeout: Duration, shared: &Shared) -> Option<TcpStream> {
    let deadline = Instant::now() + timeout;
    while !shared.stopped() && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => return Some(stream),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    None
}

/// Why a step ended the script.
enum StepError {
    HungUp { bytes_sent: u64 },
    Failed(String),
}

/// One client connection running a script.
struct Session<'a> {
    /// `None` once the script reset the connection.
    reader: Option<BufReader<TcpStream>>,
    shared: &'a Shared,
    continuation: Vec<u8>,
    timeout: Duration,
    tag: Option<Vec<u8>>,
    received: Vec<Vec<u8>>,
}

impl<'a> Session<'a> {
    fn new(stream: TcpStream, script: &Script, shared: &'a Shared) -> io::Result<Self> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(script.timeout))?;
        stream.set_write_timeout(Some(script.timeout))?;
        *shared.connection() = Some(stream.try_clone()?);
        Ok(Self {
            reader: Some(BufReader::new(stream)),
            shared,
            continuation: script.continuation.clone(),
            timeout: script.timeout,
            tag: None,
            received: Vec::new(),
        })
    }

    fn run(&mut self, steps: Vec<Step>) -> Outcome {
        for (index, step) in steps.into_iter().enumerate() {
            match self.run_step(step) {
                Ok(()) => {}
                Err(StepError::HungUp { bytes_sent }) => {
                    return Outcome::ClientHungUp {
                        step: index,
                        bytes_sent,
                    };
                }
                Err(StepError::Failed(reason)) => {
                    return Outcome::Failed {
                        step: index,
                        reason,
                    };
                }
            }
        }
        Outcome::Completed
    }

    fn run_step(&mut self, step: Step) -> Result<(), StepError> {
        match step {
            Step::Send(bytes) => self.send(&bytes),
            Step::Flood(flood) => self.flood(flood),
            Step::Expect(pattern) => self.expect(&pattern),
            Step::ExpectLine(pattern) => self.expect_line(&pattern),
            Step::Close => self.close(),
            Step::Reset => self.reset(),
            Step::Sleep(duration) => {
                self.sleep(duration);
                Ok(())
            }
        }
    }

    fn stream(&self) -> Result<&TcpStream, StepError> {
        self.reader
            .as_ref()
            .map(BufReader::get_ref)
            .ok_or_else(|| StepError::Failed("the connection was already reset".into()))
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), StepError> {
        let bytes = self.fill_in_tag(bytes)?;
        self.write(&bytes)
            .map_err(|error| StepError::Failed(format!("writing to the client: {error}")))
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut stream = self.stream().map_err(|_| io::ErrorKind::NotConnected)?;
        stream.write_all(bytes)
    }

    fn fill_in_tag(&self, bytes: &[u8]) -> Result<Vec<u8>, StepError> {
        const PLACEHOLDER: &[u8] = b"{tag}";
        if !contains(bytes, PLACEHOLDER) {
            return Ok(bytes.to_vec());
        }
        let tag = self.tag.as_deref().ok_or_else(|| {
            StepError::Failed("`{tag}` used before any expect() captured a tag".into())
        })?;
        Ok(replace_all(bytes, PLACEHOLDER, tag))
    }

    fn flood(&mut self, flood: Flood) -> Result<(), StepError> {
        let mut bytes_sent = 0;
        let mut next = flood_chunks(flood);
        while let Some(chunk) = next() {
            if let Err(error) = self.write(&chunk) {
                return Err(if is_hang_up(&error) {
                    StepError::HungUp { bytes_sent }
                } else {
                    StepError::Failed(format!("flooding after {bytes_sent} bytes: {error}"))
                });
            }
            bytes_sent += chunk.len() as u64;
        }
        Ok(())
    }

    fn expect(&mut self, pattern: &str) -> Result<(), StepError> {
        let command = self.read_command()?;
        self.received.push(command.clone());
        let (tag, rest) = match command.iter().position(|&b| b == b' ') {
            Some(space) => (&command[..space], &command[space + 1..]),
            None => (&command[..], &[][..]),
        };
        if tag.is_empty() || !glob_match(pattern.as_bytes(), rest) {
            return Err(mismatch(pattern, &command));
        }
        self.tag = Some(tag.to_vec());
        Ok(())
    }

    fn expect_line(&mut self, pattern: &str) -> Result<(), StepError> {
        let line = self.read_line()?;
        self.received.push(line.clone());
        if glob_match(pattern.as_bytes(), &line) {
            Ok(())
        } else {
            Err(mismatch(pattern, &line))
        }
    }

    /// Reads a command line and the literals it announces, answering
    /// synchronising literals with the continuation.
    fn read_command(&mut self) -> Result<Vec<u8>, StepError> {
        let mut command = self.read_line()?;
        let mut tail_start = 0;
        while let Some(literal) = literal_announced(&command[tail_start..]) {
            if literal.size > MAX_LITERAL {
                return Err(StepError::Failed(format!(
                    "client literal of {} bytes is too large",
                    literal.size
                )));
            }
            if literal.synchronising {
                let continuation = self.continuation.clone();
                self.write(&continuation).map_err(|error| {
                    StepError::Failed(format!("sending a continuation: {error}"))
                })?;
            }
            command.extend_from_slice(b"\r\n");
            command.extend(self.read_exact(literal.size)?);
            tail_start = command.len();
            command.extend(self.read_line()?);
        }
        Ok(command)
    }

    /// Reads one line, without its line ending.
    fn read_line(&mut self) -> Result<Vec<u8>, StepError> {
        let timeout = self.timeout;
        let reader = self.reader_mut()?;
        let mut line = Vec::new();
        reader
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|error| read_failure(&error, timeout))?;
        if line.strip_suffix(b"\n").is_none() {
            return Err(StepError::Failed(match line.len() {
                0 => "the client closed the connection".into(),
                n if n as u64 >= MAX_LINE => format!("client line longer than {MAX_LINE} bytes"),
                _ => format!(
                    "the client closed the connection mid-line: {:?}",
                    String::from_utf8_lossy(&line)
                ),
            }));
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(line)
    }

    fn read_exact(&mut self, size: u64) -> Result<Vec<u8>, StepError> {
        let timeout = self.timeout;
        let reader = self.reader_mut()?;
        let mut bytes = Vec::new();
        reader
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(|error| read_failure(&error, timeout))?;
        if (bytes.len() as u64) < size {
            return Err(StepError::Failed(format!(
                "the client closed the connection after {} of {size} literal bytes",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn reader_mut(&mut self) -> Result<&mut BufReader<TcpStream>, StepError> {
        self.reader
            .as_mut()
            .ok_or_else(|| StepError::Failed("the connection was already reset".into()))
    }

    fn close(&mut self) -> Result<(), StepError> {
        self.stream()?
            .shutdown(Shutdown::Write)
            .map_err(|error| StepError::Failed(format!("closing: {error}")))
    }

    /// Closes with `SO_LINGER` 0, which sends a RST. Every handle on the
    /// socket must be closed for that, the shared one included.
    fn reset(&mut self) -> Result<(), StepError> {
        let reader = self
            .reader
            .take()
            .ok_or_else(|| StepError::Failed("the connection was already reset".into()))?;
        self.shared.connection().take();
        rustix::net::sockopt::set_socket_linger(reader.get_ref(), Some(Duration::ZERO))
            .map_err(|error| StepError::Failed(format!("setting SO_LINGER: {error}")))?;
        drop(reader);
        Ok(())
    }

    fn sleep(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.shared.stopped() {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            thread::sleep(POLL.min(deadline - now));
        }
    }
}

/// Turns a flood step into a chunk source.
fn flood_chunks(flood: Flood) -> Generator {
    match flood {
        Flood::Generated(generator) => generator,
        Flood::Repeated { chunk, count } => {
            let mut left = count;
            Box::new(move || match &mut left {
                None => Some(chunk.clone()),
                Some(0) => None,
                Some(n) => {
                    *n -= 1;
                    Some(chunk.clone())
                }
            })
        }
    }
}

fn is_hang_up(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

fn read_failure(error: &io::Error, timeout: Duration) -> StepError {
    StepError::Failed(match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no line from the client within {timeout:?}")
        }
        _ => format!("reading from the client: {error}"),
    })
}

fn mismatch(pattern: &str, got: &[u8]) -> StepError {
    StepError::Failed(format!(
        "expected {pattern:?}, the client sent {:?}",
        String::from_utf8_lossy(got)
    ))
}

/// A literal announced at the end of a client line.
struct Literal {
    size: u64,
    synchronising: bool,
}

/// The literal `line` announces with `{N}` or `{N+}` at its end, if any.
fn literal_announced(line: &[u8]) -> Option<Literal> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let (digits, synchronising) = match digits.strip_suffix(b"+") {
        Some(digits) => (digits, false),
        None => (digits, true),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(Literal {
        size,
        synchronising,
    })
}

/// Whether `text` matches `pattern`, where `*` matches any bytes and letters
/// match in either case.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it matched up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            backtrack = Some((star, matched + 1));
            p = star + 1;
            t = matched + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
