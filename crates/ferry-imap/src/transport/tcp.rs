//! TCP connections with connect, read and write timeouts.
//!
//! Only the configured host is ever contacted: every address it resolves
//! to is tried in order with the connect timeout, and the last failure is
//! reported.

use crate::error::Error;
use crate::options::ServerOptions;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A zero duration means "no timeout" (std refuses zero timeouts).
pub(crate) fn nonzero(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

/// The host without the brackets of an IPv6 literal.
pub(crate) fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The addresses `options.host` resolves to.
pub(crate) fn resolve(options: &ServerOptions) -> Result<Vec<SocketAddr>, Error> {
    (bare_host(&options.host), options.port)
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|source| connect_error(options, source))
}

/// Connects to the first of `addrs` that answers within the connect
/// timeout, with the read and write timeouts set to `options.read_timeout`.
pub(crate) fn connect_any(
    options: &ServerOptions,
    addrs: &[SocketAddr],
) -> Result<TcpStream, Error> {
    let mut last = None;
    for addr in addrs {
        let attempt = match nonzero(options.connect_timeout) {
            Some(timeout) => TcpStream::connect_timeout(addr, timeout),
            None => TcpStream::connect(addr),
        };
        match attempt.and_then(|stream| configure(stream, options.read_timeout)) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connect failed");
                last = Some(e);
            }
        }
    }
    let source = last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "the host name resolves to no address",
        )
    });
    Err(connect_error(options, source))
}

/// Sets no-delay (commands are flushed whole) and the timeouts.
fn configure(stream: TcpStream, timeout: Duration) -> io::Result<TcpStream> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(nonzero(timeout))?;
    stream.set_write_timeout(nonzero(timeout))?;
    Ok(stream)
}

fn connect_error(options: &ServerOptions, source: io::Error) -> Error {
    Error::Connect {
        host: options.host.clone(),
        port: options.port,
        source,
    }
}

/// Whether the peer is loopback (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
pub(crate) fn is_loopback(stream: &TcpStream) -> bool {
    stream
        .peer_addr()
        .map(|addr| addr.ip().to_canonical().is_loopback())
        .unwrap_or(false)
}
