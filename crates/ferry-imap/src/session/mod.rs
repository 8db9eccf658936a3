//! The blocking IMAP session: the protocol core driven over a transport.
//!
//! A [`Session`] sends commands with fresh tags and reads responses through
//! the [`Framer`](crate::proto::framing::Framer). Commands may be pipelined
//! ([`Session::send`] several, then [`Session::wait`] for each tag); untagged
//! responses go to the handler of the command being waited for, and
//! completions of other tags are kept until asked for. The session never
//! pipelines past STARTTLS, LOGIN/AUTHENTICATE, COMPRESS or SELECT: those
//! methods wait for their completion before returning.
//!
//! A command may end in an open literal whose bytes the caller streams as
//! they arrive ([`Session::write_literal`], [`Session::end_literal`]): how
//! a message read from one store is APPENDed to another without being held
//! in memory. While it is open no other command can be sent; a literal
//! ended short leaves the server waiting for bytes, so the session refuses
//! everything afterwards.
//!
//! Mailbox names passed to and returned by the session are wire names
//! (modified UTF-7); use [`mutf7`](crate::mutf7) to convert.

mod auth;
mod connect;
mod idle;
mod mailbox;
mod messages;

pub use idle::IdleEvent;
pub use mailbox::{SelectOptions, Selected};
pub use messages::{
    AppendHeader, AppendRequest, AppendResult, BodyItem, FetchedBody, FlagUpdate, StoreResult,
};

use crate::error::{Error, Result};
use crate::options::ServerOptions;
use crate::proto::command::{Command, LiteralData, Part};
use crate::proto::framing::{self, Frame, Framer, KeepInMemory, LiteralSink};
pub use crate::proto::response::Completion;
use crate::proto::response::{Response, ResponseCode, Status, Untagged};
use crate::transport::Transport;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

/// Which way a traced line went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceDirection {
    /// Client to server.
    Sent,
    /// Server to client.
    Received,
}

/// Receives every protocol line, credentials already redacted.
pub type TraceSink = Box<dyn FnMut(TraceDirection, &str) + Send>;

/// A logged-in (or not yet logged-in) connection to one server.
pub struct Session {
    transport: Transport,
    framer: Framer,
    /// What one read takes from the transport (allocated once: zeroing
    /// 64 KiB for every response line cost more than parsing it).
    read_buf: Box<[u8]>,
    options: ServerOptions,
    next_tag: u32,
    capabilities: Vec<String>,
    authenticated: bool,
    enabled: Vec<String>,
    verbs: HashMap<String, String>,
    completed: HashMap<String, Completion>,
    pending: VecDeque<Untagged>,
    trace: Option<TraceSink>,
    bye: Option<String>,
    selected: Option<String>,
    capability_updates: u64,
    open_literal: Option<OpenLiteral>,
    poisoned: Option<String>,
}

/// A literal announced by [`Session::send`] whose bytes the caller streams.
#[derive(Debug)]
struct OpenLiteral {
    tag: String,
    verb: String,
    remaining: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.options.host)
            .field("capabilities", &self.capabilities)
            .field("authenticated", &self.authenticated)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

/// How many pipelined commands may await their completion at once: enough
/// to hide round trips, few enough that neither side's socket buffers fill
/// while both are writing.
const PIPELINE_WINDOW: usize = 32;

/// How much of a received frame a trace line shows.
const TRACE_LIMIT: usize = 2000;

impl Session {
    /// The capabilities the server advertises now (upper-case).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server advertises `capability` (case-insensitive).
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    /// Whether the session is logged in.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Extensions switched on with ENABLE.
    pub fn enabled(&self) -> &[String] {
        &self.enabled
    }

    /// The selected mailbox's wire name.
    pub fn selected(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    /// The options the session was opened with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// TLS details, when the connection is encrypted.
    pub fn tls_info(&self) -> Option<crate::transport::TlsInfo> {
        self.transport.tls_info()
    }

    /// Whether COMPRESS=DEFLATE is active.
    pub fn is_compressed(&self) -> bool {
        self.transport.is_compressed()
    }

    /// Installs a sink that sees every protocol line (`-vv`). LOGIN and
    /// AUTHENTICATE payloads are redacted before they reach it.
    pub fn set_trace(&mut self, sink: TraceSink) {
        self.trace = Some(sink);
    }

    /// Untagged responses that arrived while no command claimed them
    /// (EXISTS, EXPUNGE, FETCH from other clients), oldest first.
    pub fn take_unsolicited(&mut self) -> Vec<Untagged> {
        self.pending.drain(..).collect()
    }

    fn trace_line(&mut self, direction: TraceDirection, text: &str) {
        if let Some(trace) = self.trace.as_mut() {
            trace(direction, text);
        }
    }

    fn fresh_tag(&mut self) -> String {
        let tag = format!("f{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Sends a command without waiting for its completion; returns its tag.
    /// Synchronising literals wait for the server's continuation (other
    /// responses that arrive meanwhile are kept for [`Session::wait`]). A
    /// command that ends in an open literal ([`Command::open_literal`]) is
    /// sent up to the literal's announcement; the caller then streams its
    /// bytes with [`Session::write_literal`] and ends the command with
    /// [`Session::end_literal`]. No other command may be sent meanwhile.
    pub fn send(&mut self, command: Command) -> Result<String> {
        self.check_usable()?;
        if command.is_malformed() {
            return Err(Error::Misuse {
                what: format!("{} has an open literal before its end", command.verb()),
            });
        }
        let tag = self.fresh_tag();
        let verb = command.verb().to_string();
        self.trace_command(&tag, &command);
        self.verbs.insert(tag.clone(), verb.clone());
        let mut first = true;
        for part in command.into_parts() {
            match part {
                Part::Text(text) => {
                    if first {
                        self.write(format!("{tag} ").as_bytes(), &verb)?;
                    }
                    self.write(&text, &verb)?;
                }
                Part::Literal(data) => self.send_literal(&tag, &verb, data)?,
                Part::OpenLiteral(len) => {
                    self.open_literal(&tag, &verb, len)?;
                    return Ok(tag);
                }
            }
            first = false;
        }
        self.write(b"\r\n", &verb)?;
        self.flush(&verb)?;
        Ok(tag)
    }

    /// Refuses to go on when a short literal broke the session, or when a
    /// literal is open (a command now would become part of its bytes).
    fn check_usable(&self) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(Error::Misuse {
                what: format!("the session is unusable ({reason}); a new connection is needed"),
            });
        }
        match &self.open_literal {
            Some(open) => Err(Error::Misuse {
                what: format!(
                    "a command was sent while the literal of {} ({}) still expects {} bytes",
                    open.verb, open.tag, open.remaining
                ),
            }),
            None => Ok(()),
        }
    }

    /// The next bytes of the open literal; more than it has left is refused
    /// (and nothing is written).
    pub fn write_literal(&mut self, data: &[u8]) -> Result<()> {
        self.check_not_poisoned()?;
        let Some(open) = self.open_literal.as_mut() else {
            return Err(Error::Misuse {
                what: "literal bytes written while no literal is open".into(),
            });
        };
        if data.len() as u64 > open.remaining {
            return Err(Error::Misuse {
                what: format!(
                    "{} bytes written into the literal of {}, which expects only {} more",
                    data.len(),
                    open.verb,
                    open.remaining
                ),
            });
        }
        open.remaining -= data.len() as u64;
        if let Err(e) = self.transport.write_all(data) {
            let verb = self.open_literal.as_ref().map(|o| o.verb.clone());
            return Err(self.io_error(e, verb.as_deref().unwrap_or_default()));
        }
        Ok(())
    }

    /// Ends the open literal and its command. A literal shorter than
    /// announced leaves the server waiting for bytes that will never come:
    /// the session is then unusable ([`Error::Misuse`] from now on).
    pub fn end_literal(&mut self) -> Result<()> {
        self.check_not_poisoned()?;
        let Some(open) = self.open_literal.take() else {
            return Err(Error::Misuse {
                what: "a literal was ended while none is open".into(),
            });
        };
        if open.remaining > 0 {
            let reason = format!(
                "the literal of {} ({}) ended {} bytes before its announced length",
                open.verb, open.tag, open.remaining
            );
            self.poisoned = Some(reason.clone());
            return Err(Error::Misuse {
                what: format!("{reason}; the session is unusable"),
            });
        }
        self.write(b"\r\n", &open.verb)?;
        self.flush(&open.verb)
    }

    /// How many bytes the open literal still expects, if one is open.
    pub fn literal_remaining(&self) -> Option<u64> {
        self.open_literal.as_ref().map(|o| o.remaining)
    }

    /// Whether the session can still send commands (no short literal broke
    /// it; the connection itself may still fail).
    pub fn is_usable(&self) -> bool {
        self.poisoned.is_none()
    }

    fn check_not_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::Misuse {
                what: format!("the session is unusable ({reason}); a new connection is needed"),
            }),
            None => Ok(()),
        }
    }

    fn trace_command(&mut self, tag: &str, command: &Command) {
        if self.trace.is_none() {
            return;
        }
        let text = if command.is_sensitive() {
            format!("{tag} {} <redacted>", command.verb())
        } else {
            format!(
                "{tag} {}",
                command.preview(&|len| self.non_synchronizing(len))
            )
        };
        self.trace_line(TraceDirection::Sent, &text);
    }

    fn non_synchronizing(&self, len: u64) -> bool {
        self.has_capability("LITERAL+") || (self.has_capability("LITERAL-") && len <= 4096)
    }

    fn send_literal(&mut self, tag: &str, verb: &str, data: LiteralData) -> Result<()> {
        self.announce_literal(tag, verb, data.len())?;
        match data {
            LiteralData::Bytes(bytes) => self.write(&bytes, verb),
            LiteralData::Reader { len, reader } => self.copy_literal(len, reader, verb),
        }
    }

    /// Announces a literal the caller streams, and sends it on its way.
    fn open_literal(&mut self, tag: &str, verb: &str, len: u64) -> Result<()> {
        self.announce_literal(tag, verb, len)?;
        self.flush(verb)?;
        self.open_literal = Some(OpenLiteral {
            tag: tag.to_string(),
            verb: verb.to_string(),
            remaining: len,
        });
        Ok(())
    }

    /// `{len+}` (LITERAL+, or LITERAL- for small ones), else `{len}` and
    /// the server's continuation.
    fn announce_literal(&mut self, tag: &str, verb: &str, len: u64) -> Result<()> {
        if self.non_synchronizing(len) {
            self.write(format!("{{{len}+}}\r\n").as_bytes(), verb)
        } else {
            self.write(format!("{{{len}}}\r\n").as_bytes(), verb)?;
            self.flush(verb)?;
            self.await_continuation(tag, verb)
        }
    }

    fn copy_literal(&mut self, len: u64, reader: Box<dyn Read + Send>, verb: &str) -> Result<()> {
        pump(len, reader, verb, &mut |data| self.write(data, verb))
    }

    /// Streams exactly `len` bytes from `reader` into the open literal.
    pub(crate) fn copy_into_literal(
        &mut self,
        len: u64,
        reader: Box<dyn Read + Send>,
    ) -> Result<()> {
        let verb = self.open_literal.as_ref().map(|o| o.verb.clone());
        pump(
            len,
            reader,
            verb.as_deref().unwrap_or_default(),
            &mut |data| self.write_literal(data),
        )
    }

    /// Reads until the continuation for `tag`'s literal; the command's own
    /// NO/BAD ends the wait with that error.
    fn await_continuation(&mut self, tag: &str, verb: &str) -> Result<()> {
        loop {
            match self.read_response(&mut KeepInMemory, verb)? {
                Response::Continue { .. } => return Ok(()),
                Response::Tagged { tag: t, completion } => {
                    if t == tag {
                        self.verbs.remove(tag);
                        return Err(self.command_error(verb, completion));
                    }
                    self.completed.insert(t, completion);
                }
                Response::Untagged(u) => self.note_untagged(u, None),
            }
        }
    }

    fn write(&mut self, data: &[u8], verb: &str) -> Result<()> {
        self.transport
            .write_all(data)
            .map_err(|e| self.io_error(e, verb))
    }

    fn flush(&mut self, verb: &str) -> Result<()> {
        self.transport.flush().map_err(|e| self.io_error(e, verb))
    }

    fn io_error(&self, error: std::io::Error, verb: &str) -> Error {
        crate::transport::classify(
            &self.options.host,
            Some(verb.to_string()),
            error,
            self.options.read_timeout,
        )
    }

    /// Waits for `tag`'s completion. Untagged responses go to `handler`
    /// (which returns them back when they are not its business) and literals
    /// to `sink`. NO and BAD become errors.
    pub fn wait(
        &mut self,
        tag: &str,
        handler: &mut dyn FnMut(Untagged) -> Option<Untagged>,
        sink: &mut dyn LiteralSink,
    ) -> Result<Completion> {
        self.check_not_poisoned()?;
        if let Some(open) = self.open_literal.as_ref().filter(|o| o.tag == tag) {
            return Err(Error::Misuse {
                what: format!(
                    "waiting for {} ({tag}), whose literal still expects {} bytes, would never end",
                    open.verb, open.remaining
                ),
            });
        }
        let verb = self.verbs.get(tag).cloned().unwrap_or_default();
        let queued: Vec<Untagged> = self.pending.drain(..).collect();
        for untagged in queued {
            self.note_untagged(untagged, Some(handler));
        }
        let completion = loop {
            if let Some(done) = self.completed.remove(tag) {
                break done;
            }
            match self.read_response(sink, &verb)? {
                Response::Tagged { tag: t, completion } => {
                    if t == tag {
                        break completion;
                    }
                    if !self.verbs.contains_key(&t) {
                        return Err(framing::protocol(
                            "a completion for a tag ferry never sent",
                            t.as_bytes(),
                        ));
                    }
                    self.completed.insert(t, completion);
                }
                Response::Untagged(u) => self.note_untagged(u, Some(handler)),
                Response::Continue { text } => {
                    return Err(framing::protocol(
                        "an unexpected continuation request",
                        text.as_bytes(),
                    ));
                }
            }
        };
        self.verbs.remove(tag);
        self.conclude(&verb, completion)
    }

    /// The completion of `tag` if it has arrived already, without reading
    /// from the server: a session that failed (a lost connection, a short
    /// literal) can still report what it received. NO and BAD are errors.
    pub fn take_completion(&mut self, tag: &str) -> Option<Result<Completion>> {
        let completion = self.completed.remove(tag)?;
        let verb = self.verbs.remove(tag).unwrap_or_default();
        Some(self.conclude(&verb, completion))
    }

    fn conclude(&mut self, verb: &str, completion: Completion) -> Result<Completion> {
        self.note_code(completion.code.as_ref());
        match completion.status {
            Status::Ok => Ok(completion),
            _ => Err(self.command_error(verb, completion)),
        }
    }

    /// Sends `commands` pipelined, at most 32 awaiting their completion at
    /// once (see [`Session::pipeline_in`]), and hands what `send` returned for each (its tag, with whatever
    /// the caller needs to know about it) to `finish`, in order, once it
    /// must be waited for. Pipelined responses arrive in command order, so
    /// `finish` may rely on everything it reads belonging to that command
    /// (or to nobody: unsolicited responses). The first error ends it.
    pub fn pipeline<C, K, T>(
        &mut self,
        commands: impl IntoIterator<Item = C>,
        send: impl FnMut(&mut Session, C) -> Result<K>,
        finish: impl FnMut(&mut Session, &K) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.pipeline_in(PIPELINE_WINDOW, commands, send, finish)
    }

    /// [`Session::pipeline`] with `window` commands awaiting completion at
    /// most: more for commands so short that even hundreds of them cannot
    /// fill the server's receive buffer while it writes (a body FETCH of one
    /// UID), so that a distant server is kept busy.
    pub fn pipeline_in<C, K, T>(
        &mut self,
        window: usize,
        commands: impl IntoIterator<Item = C>,
        mut send: impl FnMut(&mut Session, C) -> Result<K>,
        mut finish: impl FnMut(&mut Session, &K) -> Result<T>,
    ) -> Result<Vec<T>> {
        let window = window.max(1);
        let mut in_flight = VecDeque::new();
        let mut results = Vec::new();
        for command in commands {
            in_flight.push_back(send(self, command)?);
            if in_flight.len() >= window {
                if let Some(sent) = in_flight.pop_front() {
                    results.push(finish(self, &sent)?);
                }
            }
        }
        for sent in in_flight {
            results.push(finish(self, &sent)?);
        }
        Ok(results)
    }

    /// Sends `command` and waits for it, collecting its untagged responses.
    pub fn run(&mut self, command: Command) -> Result<(Completion, Vec<Untagged>)> {
        let tag = self.send(command)?;
        let mut collected = Vec::new();
        let completion = self.wait(
            &tag,
            &mut |u| {
                collected.push(u);
                None
            },
            &mut KeepInMemory,
        )?;
        Ok((completion, collected))
    }

    fn command_error(&self, verb: &str, completion: Completion) -> Error {
        let Completion { status, code, text } = completion;
        match status {
            Status::Bad => Error::Bad {
                command: verb.to_string(),
                code,
                text,
            },
            _ => Error::No {
                command: verb.to_string(),
                code,
                text,
            },
        }
    }

    /// Session-wide bookkeeping for every untagged response, then the
    /// handler (or the unsolicited queue).
    fn note_untagged(
        &mut self,
        untagged: Untagged,
        handler: Option<&mut dyn FnMut(Untagged) -> Option<Untagged>>,
    ) {
        match &untagged {
            Untagged::Capability(caps) => {
                self.capabilities = caps.clone();
                self.capability_updates += 1;
            }
            Untagged::Status {
                status: Status::Bye,
                text,
                ..
            } => self.bye = Some(text.clone()),
            Untagged::Status { code, .. } => self.note_code(code.as_ref()),
            Untagged::Enabled(caps) => self
                .enabled
                .extend(caps.iter().map(|c| c.to_ascii_uppercase())),
            _ => {}
        }
        let rest = match handler {
            Some(handler) => handler(untagged),
            None => Some(untagged),
        };
        if let Some(untagged) = rest {
            if self.pending.len() < 100_000 {
                self.pending.push_back(untagged);
            }
        }
    }

    fn note_code(&mut self, code: Option<&ResponseCode>) {
        if let Some(ResponseCode::Capability(caps)) = code {
            self.capabilities = caps.clone();
            self.capability_updates += 1;
        }
    }

    /// Reads and parses the next response.
    fn read_response(&mut self, sink: &mut dyn LiteralSink, verb: &str) -> Result<Response> {
        let frame = self.read_frame(sink, verb)?;
        if self.trace.is_some() {
            let text = framing::excerpt(&frame.bytes[..frame.bytes.len().min(TRACE_LIMIT)]);
            self.trace_line(TraceDirection::Received, text.trim_end());
        }
        crate::proto::parse_response(&frame)
    }

    fn read_frame(&mut self, sink: &mut dyn LiteralSink, verb: &str) -> Result<Frame> {
        loop {
            if let Some(frame) = self.framer.next_frame(sink)? {
                return Ok(frame);
            }
            let n = match self.transport.read(&mut self.read_buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e, verb)),
            };
            if n == 0 {
                return Err(match self.bye.take() {
                    Some(text) => Error::Bye { text },
                    None => Error::ConnectionLost {
                        host: self.options.host.clone(),
                        during: (!verb.is_empty()).then(|| verb.to_string()),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        ),
                    },
                });
            }
            self.framer.feed(&self.read_buf[..n]);
        }
    }

    /// NOOP: lets the server report changes.
    pub fn noop(&mut self) -> Result<Vec<Untagged>> {
        self.run(Command::new("NOOP")).map(|(_, untagged)| untagged)
    }

    /// CAPABILITY: asks again (after STARTTLS, login or COMPRESS).
    pub fn refresh_capabilities(&mut self) -> Result<&[String]> {
        self.run(Command::new("CAPABILITY"))?;
        Ok(&self.capabilities)
    }

    /// LOGOUT without waiting for the server's goodbye, then closes the
    /// connection: a run ends a round trip sooner than with
    /// [`Session::logout`]. For a caller whose commands have all
    /// completed: nothing is lost then. The server logs the session out
    /// when it reads the command (it may count the connection a moment
    /// longer); a session that cannot send it is simply closed.
    pub fn close(mut self) {
        if self.send(Command::new("LOGOUT")).is_err() {
            // Closed all the same: the server ends the session on EOF.
        }
    }

    /// LOGOUT, then closes the connection.
    pub fn logout(mut self) -> Result<()> {
        match self.run(Command::new("LOGOUT")) {
            Ok(_) | Err(Error::Bye { .. }) | Err(Error::ConnectionLost { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Reads exactly `len` bytes from `reader` and hands them to `write` in
/// chunks; a reader that ends early is an error.
fn pump(
    len: u64,
    mut reader: Box<dyn Read + Send>,
    verb: &str,
    write: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len;
    let context = || format!("reading the message to send with {verb}");
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = match reader.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Io {
                    context: context(),
                    source,
                });
            }
        };
        if n == 0 {
            return Err(Error::Io {
                context: context(),
                source: std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the message ended {left} bytes before its announced length"),
                ),
            });
        }
        write(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.transport.flush();
    }
}
