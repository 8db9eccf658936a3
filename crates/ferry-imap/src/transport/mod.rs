//! The thin I/O layer under the protocol core: TCP, TLS, tunnels, DEFLATE.
//!
//! A [`Transport`] is a byte stream in one of three kinds, optionally
//! compressed:
//!
//! - plain TCP to the configured host and port (connect timeout per
//!   resolved address; read and write timeouts from
//!   [`ServerOptions::read_timeout`]), which [`Transport::start_tls`] can
//!   upgrade in place after the server's OK to STARTTLS;
//! - TLS over TCP (rustls with the ring provider; [`TlsMode::Implicit`]
//!   handshakes in [`Transport::connect`]). Which certificates are trusted
//!   (system store, `ca_file`, `tls_fingerprint`) is documented in the
//!   `verify` submodule and summarised on [`Transport::connect`];
//! - a `tunnel` command's stdin and stdout (`sh -c`), usually answered
//!   with PREAUTH. The tunnel carries IMAP as is: ferry does no TLS over
//!   it (the command, e.g. ssh, protects the connection), whatever `tls`
//!   says.
//!
//! [`Transport::enable_deflate`] then wraps both directions in raw DEFLATE
//! (RFC 4978). Reads are unbuffered pass-throughs (the protocol layer
//! buffers): before TLS or DEFLATE starts, nothing is ever read ahead, so
//! no byte received before a STARTTLS handshake can be lost or reused.
//! Errors from [`std::io::Read`] and [`std::io::Write`] are plain
//! [`io::Error`]s; [`classify`] turns them into the crate's [`Error`].
//!
//! ```no_run
//! use ferry_imap::transport::Transport;
//! use ferry_imap::{ServerOptions, TlsMode};
//! use std::io::{Read, Write};
//!
//! let options = ServerOptions::new("imap.example.org", TlsMode::Implicit);
//! let mut transport = Transport::connect(&options)?;
//! let mut greeting = [0u8; 512];
//! let n = transport.read(&mut greeting)?;
//! transport.write_all(b"a NOOP\r\n")?;
//! transport.flush()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod deflate;
mod der;
mod tcp;
mod tls;
mod tunnel;
mod verify;

use crate::error::Error;
use crate::options::{ServerOptions, TlsMode};
use deflate::Deflate;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tls::{TlsSetup, TlsStream};
use tunnel::Tunnel;

/// What a TLS connection negotiated, and whom with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. `"TLSv1.3"`.
    pub version: String,
    /// The cipher suite, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher: String,
    /// The subject of the server's certificate in certificate order, e.g.
    /// `"CN=127.0.0.1"`; empty if it could not be read.
    pub subject: String,
    /// `sha256:<lower-case hex>` of the server's end-entity certificate
    /// (DER), the form `tls_fingerprint` takes.
    pub fingerprint: String,
}

/// The byte stream under a transport.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Tunnel(Tunnel),
    /// After a failed STARTTLS handshake: every read and write fails.
    Broken,
}

impl Stream {
    fn broken() -> io::Error {
        io::Error::new(
            io::ErrorKind::NotConnected,
            "the connection is unusable after a failed TLS handshake",
        )
    }

    fn kind(&self) -> &'static str {
        match self {
            Stream::Tcp(_) => "tcp",
            Stream::Tls(_) => "tls",
            Stream::Tunnel(_) => "tunnel",
            Stream::Broken => "broken",
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Tunnel(s) => s.read(buf),
            Stream::Broken => Err(Stream::broken()),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Tunnel(s) => s.write(buf),
            Stream::Broken => Err(Stream::broken()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Tunnel(s) => s.flush(),
            Stream::Broken => Err(Stream::broken()),
        }
    }
}

/// A connection: plain TCP, TLS over TCP, or a tunnel command's
/// stdin/stdout; optionally DEFLATE-compressed.
pub struct Transport {
    host: String,
    stream: Stream,
    deflate: Option<Box<Deflate>>,
    loopback: bool,
    /// Bytes written and not yet sent: a command goes out in one send (one
    /// TLS record, one packet) at `flush()`, not one per piece.
    pending: Vec<u8>,
}

/// How much [`Transport`] gathers before it sends without a `flush()`.
const SEND_BUFFER: usize = 64 << 10;

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("host", &self.host)
            .field("kind", &self.stream.kind())
            .field("compressed", &self.deflate.is_some())
            .finish()
    }
}

impl Transport {
    /// Opens the connection `options` describe.
    ///
    /// - With `tunnel` set: runs it as `sh -c <tunnel>` with stdin and
    ///   stdout piped (stderr is logged at INFO, never inherited); TLS
    ///   settings do not apply. Dropping the transport closes the
    ///   command's stdin, then kills and reaps it if it has not exited
    ///   within 100 ms.
    /// - Else TCP to `host:port`, trying every address the host resolves
    ///   to with `connect_timeout` ([`Error::Connect`] with the last
    ///   failure); read and write timeouts are `read_timeout` (zero: none).
    /// - For [`TlsMode::Implicit`], the TLS handshake follows. The server's
    ///   certificate is accepted when, with `tls_fingerprint` set, the
    ///   SHA-256 of its DER equals the pin (nothing else is checked);
    ///   otherwise when it chains to the system trust store or a
    ///   certificate of `ca_file` (validity period and host name checked
    ///   by webpki), or when it is itself in `ca_file` byte for byte, is
    ///   within its validity period, and names the host in its subject
    ///   alternative names (even if marked CA:TRUE). An IP address host is
    ///   matched against IP SANs, a name against DNS SANs.
    ///
    /// Configuration problems (unreadable `ca_file`, malformed
    /// `tls_fingerprint`) are reported before connecting. A refused
    /// certificate is an [`Error::Tls`] whose hint says what to configure,
    /// with the presented certificate's fingerprint.
    pub fn connect(options: &ServerOptions) -> Result<Transport, Error> {
        if let Some(command) = &options.tunnel {
            return Self::tunnel(options, command);
        }
        let addrs = tcp::resolve(options)?;
        Self::connect_addrs(options, &addrs)
    }

    /// Like [`Transport::connect`] without a tunnel, but connects to `addr`
    /// instead of resolving `options.host`; TLS still verifies the
    /// certificate against `options.host`.
    pub fn connect_addr(options: &ServerOptions, addr: SocketAddr) -> Result<Transport, Error> {
        Self::connect_addrs(options, &[addr])
    }

    fn connect_addrs(options: &ServerOptions, addrs: &[SocketAddr]) -> Result<Transport, Error> {
        let setup = match options.tls {
            TlsMode::Implicit => Some(TlsSetup::new(options)?),
            TlsMode::StartTls | TlsMode::None => None,
        };
        let tcp = tcp::connect_any(options, addrs)?;
        let loopback = tcp::is_loopback(&tcp);
        let stream = match setup {
            Some(setup) => Stream::Tls(Box::new(setup.handshake(tcp)?)),
            None => Stream::Tcp(tcp),
        };
        Ok(Transport {
            host: options.host.clone(),
            stream,
            deflate: None,
            loopback,
            pending: Vec::new(),
        })
    }

    fn tunnel(options: &ServerOptions, command: &str) -> Result<Transport, Error> {
        let timeout = tcp::nonzero(options.read_timeout);
        let tunnel =
            Tunnel::spawn(command, timeout, &options.tunnel_env_remove).map_err(|source| {
                Error::Io {
                    context: format!("cannot run the tunnel command {command:?}"),
                    source,
                }
            })?;
        Ok(Transport {
            host: options.host.clone(),
            stream: Stream::Tunnel(tunnel),
            deflate: None,
            loopback: false,
            pending: Vec::new(),
        })
    }

    /// Upgrades a plain TCP connection in place, after the server's OK to
    /// STARTTLS, verifying the certificate as [`Transport::connect`] does.
    ///
    /// The caller guarantees that it holds no bytes read past the OK; the
    /// transport itself never reads ahead, so anything the server (or an
    /// attacker) sent after the OK is fed to the handshake and fails it.
    /// After a failed handshake the transport is unusable.
    pub fn start_tls(&mut self, options: &ServerOptions) -> Result<(), Error> {
        if !self.pending.is_empty() {
            return Err(unsupported("STARTTLS with unsent bytes"));
        }
        if self.deflate.is_some() {
            return Err(unsupported("STARTTLS after COMPRESS is not allowed"));
        }
        let setup = TlsSetup::new(options)?;
        match std::mem::replace(&mut self.stream, Stream::Broken) {
            Stream::Tcp(tcp) => {
                self.stream = Stream::Tls(Box::new(setup.handshake(tcp)?));
                Ok(())
            }
            other => {
                let what = match other {
                    Stream::Tls(_) => "TLS is already active",
                    Stream::Tunnel(_) => "STARTTLS is not supported over a tunnel",
                    Stream::Tcp(_) | Stream::Broken => {
                        "the connection is unusable after a failed TLS handshake"
                    }
                };
                self.stream = other;
                Err(unsupported(what))
            }
        }
    }

    /// Wraps both directions in raw DEFLATE (RFC 4978), after the server's
    /// OK to COMPRESS DEFLATE. `flush()` sync-flushes the compressor, so a
    /// flushed command always reaches the server whole.
    pub fn enable_deflate(&mut self) -> Result<(), Error> {
        if !self.pending.is_empty() {
            return Err(unsupported("COMPRESS with unsent bytes"));
        }
        if self.deflate.is_some() {
            return Err(unsupported("COMPRESS is already active"));
        }
        if matches!(self.stream, Stream::Broken) {
            return Err(unsupported(
                "the connection is unusable after a failed TLS handshake",
            ));
        }
        self.deflate = Some(Box::new(Deflate::new()));
        Ok(())
    }

    /// Sets the read timeout (`None` or zero: wait forever), e.g. a longer
    /// one for IDLE. Works for tunnels too; writes keep `read_timeout`.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let timeout = timeout.and_then(tcp::nonzero);
        let result = match &mut self.stream {
            Stream::Tcp(s) => s.set_read_timeout(timeout),
            Stream::Tls(s) => s.sock.set_read_timeout(timeout),
            Stream::Tunnel(t) => {
                t.set_read_timeout(timeout);
                Ok(())
            }
            Stream::Broken => Err(Stream::broken()),
        };
        result.map_err(|source| Error::Io {
            context: "cannot set the read timeout".to_string(),
            source,
        })
    }

    /// Whether the connection is TLS-protected (implicit TLS or after
    /// STARTTLS).
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// Whether COMPRESS=DEFLATE is active.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Whether the peer is a loopback address (127.0.0.0/8 or ::1); false
    /// for tunnels.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// Whether this is a tunnel command.
    pub fn is_tunnel(&self) -> bool {
        matches!(self.stream, Stream::Tunnel(_))
    }

    /// The host from the options (for error messages).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated TLS parameters and the server's certificate; `None`
    /// without TLS.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match &self.stream {
            Stream::Tls(s) => tls::info(&s.conn),
            _ => None,
        }
    }

    /// For a tunnel whose command has exited: its exit status and last
    /// lines of error output (e.g. ssh's reason), to explain a lost
    /// connection. Waits up to 100 ms for the command to exit; `None` if it
    /// still runs or this is not a tunnel.
    pub fn tunnel_status(&mut self) -> Option<String> {
        match &mut self.stream {
            Stream::Tunnel(t) => t.status(),
            _ => None,
        }
    }
}

impl Transport {
    /// Sends the gathered bytes (through DEFLATE when active). What was
    /// sent leaves the buffer; on an error the rest stays, so nothing is
    /// lost or sent twice; an interrupted send (a signal) is retried.
    fn send_pending(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            let sent = match &mut self.deflate {
                Some(deflate) => deflate.write(&mut self.stream, &self.pending),
                None => self.stream.write(&self.pending),
            };
            match sent {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Read for Transport {
    /// Reads what is available (decompressed when DEFLATE is active),
    /// without reading ahead beyond what TLS or DEFLATE framing needs.
    /// Bytes still gathered for sending are sent first: whoever waits for
    /// an answer has asked a question.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.pending.is_empty() {
            match self.flush() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => other?,
            }
        }
        match &mut self.deflate {
            Some(deflate) => deflate.read(&mut self.stream, buf),
            None => self.stream.read(buf),
        }
    }
}

impl Write for Transport {
    /// Gathers `buf`, after sending what was gathered once that reaches
    /// [`SEND_BUFFER`]. All of `buf` is taken, or (on an error) none of it:
    /// `write_all` never sends a byte twice or drops one.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if matches!(self.stream, Stream::Broken) {
            // Not even gathered: nothing may go out after a failed handshake.
            return Err(Stream::broken());
        }
        if self.pending.len() >= SEND_BUFFER {
            self.send_pending()?;
        }
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Sends everything written so far (sync-flushing DEFLATE).
    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()?;
        loop {
            let flushed = match &mut self.deflate {
                Some(deflate) => deflate.flush(&mut self.stream),
                None => self.stream.flush(),
            };
            match flushed {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// Turns an I/O error from a [`Transport`] read or write into the crate's
/// error: a timeout (`WouldBlock`/`TimedOut`, what socket timeouts give)
/// becomes [`Error::Timeout`] after `timeout`, anything else
/// [`Error::ConnectionLost`].
pub fn classify(host: &str, during: Option<String>, err: io::Error, timeout: Duration) -> Error {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
            host: host.to_string(),
            during,
            after: timeout,
        },
        // rustls words a close without close_notify with a link to its
        // manual; for a user it is the server closing the connection.
        io::ErrorKind::UnexpectedEof => Error::ConnectionLost {
            host: host.to_string(),
            during,
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ),
        },
        _ => Error::ConnectionLost {
            host: host.to_string(),
            during,
            source: err,
        },
    }
}

fn unsupported(what: &str) -> Error {
    Error::Unsupported {
        what: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn local_options(port: u16, tls: TlsMode) -> ServerOptions {
        let mut options = ServerOptions::new("127.0.0.1", tls);
        options.port = port;
        options.connect_timeout = Duration::from_secs(5);
        options.read_timeout = Duration::from_secs(5);
        options
    }

    #[test]
    fn a_transport_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Transport>();
    }

    #[test]
    fn classify_maps_timeouts_and_losses() {
        for kind in [io::ErrorKind::WouldBlock, io::ErrorKind::TimedOut] {
            let err = classify("h", None, kind.into(), Duration::from_secs(3));
            assert!(matches!(err, Error::Timeout { after, .. } if after == Duration::from_secs(3)));
        }
        let err = classify(
            "h",
            Some("FETCH".into()),
            io::ErrorKind::UnexpectedEof.into(),
            Duration::ZERO,
        );
        assert!(matches!(err, Error::ConnectionLost { during: Some(d), .. } if d == "FETCH"));
    }

    #[test]
    fn plain_tcp_passes_bytes_through_and_reports_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.write_all(b"* OK hi\r\n").expect("greet");
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).expect("read");
            buf
        });
        let mut t = Transport::connect(&local_options(port, TlsMode::None)).expect("connect");
        assert!(t.is_loopback() && !t.is_tls() && !t.is_compressed() && !t.is_tunnel());
        assert_eq!(t.tls_info(), None);
        let mut buf = [0u8; 9];
        t.read_exact(&mut buf).expect("greeting");
        assert_eq!(&buf, b"* OK hi\r\n");
        t.write_all(b"a NOOP\r\n").expect("write");
        t.flush().expect("flush");
        assert_eq!(&server.join().expect("server"), b"a NOOP\r\n");
        assert!(format!("{t:?}").contains("tcp"));
    }

    #[test]
    fn state_errors_are_unsupported() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let options = local_options(port, TlsMode::StartTls);
        let mut t = Transport::connect(&options).expect("connect");
        t.enable_deflate().expect("deflate");
        assert!(matches!(t.enable_deflate(), Err(Error::Unsupported { .. })));
        assert!(matches!(
            t.start_tls(&options),
            Err(Error::Unsupported { .. })
        ));
        let mut tunnel_options = options.clone();
        tunnel_options.tunnel = Some("cat".to_string());
        let mut t = Transport::connect(&tunnel_options).expect("tunnel");
        assert!(t.is_tunnel() && !t.is_loopback());
        assert!(matches!(
            t.start_tls(&options),
            Err(Error::Unsupported { .. })
        ));
        t.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let err = t.read(&mut [0u8; 4]).expect_err("times out");
        assert!(matches!(
            classify("h", None, err, Duration::ZERO),
            Error::Timeout { .. }
        ));
    }
}
