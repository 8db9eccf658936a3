//! One tool's server: a private Dovecot on a hard-linked copy of the corpus,
//! indexed before anything is timed, optionally behind the latency proxy;
//! and the server's view of a run's traffic, read from Dovecot's log.
//!
//! Dovecot logs every IMAP session at its end with `in=` and `out=` (bytes
//! the session received and sent, before COMPRESS). A run's traffic is the
//! sum over the sessions logged while it ran; the log is read only once
//! every session that logged in has also logged its end, so neither the
//! previous step's setup client nor the following check leaks into a run.

use crate::cli::Profile;
use crate::corpus::link_tree;
use anyhow::{Context, Result};
use ferry_testkit::proxy::{Direction, FaultProxy, Faults};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for Dovecot to log the end of every session.
const LOG_WAIT: Duration = Duration::from_secs(5);

/// A running server for one tool.
pub struct BenchServer {
    dovecot: Dovecot,
    proxy: Option<FaultProxy>,
}

/// What the server saw of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Sessions that logged in.
    pub logins: u64,
    /// Bytes the server received (Dovecot's `in=`).
    pub bytes_in: u64,
    /// Bytes the server sent (Dovecot's `out=`).
    pub bytes_out: u64,
}

/// Bytes through the proxy: what actually crossed the "network".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    /// Client to server.
    pub to_server: u64,
    /// Server to client.
    pub to_client: u64,
}

impl BenchServer {
    /// Starts Dovecot on a copy of `corpus`, indexes it, and puts the proxy
    /// in front when `profile` has latency.
    pub fn start(corpus: &Path, compress: bool, profile: Profile) -> Result<BenchServer> {
        let options = DovecotOptions {
            compress,
            max_connections_per_user: 50,
            ..DovecotOptions::default()
        };
        let dovecot = Dovecot::start_with(options, |maildir| link_tree(corpus, maildir))
            .context("starting a private Dovecot (apt-get install -y dovecot-imapd)")?;
        let started = Instant::now();
        dovecot
            .doveadm(&["index", "-u", USER.name, "*"])
            .context("doveadm index")?;
        println!(
            "# dovecot on 127.0.0.1:{} ({}), indexed in {:.1} s",
            dovecot.imap_port(),
            dovecot.dir().display(),
            started.elapsed().as_secs_f64()
        );
        let proxy = match profile.latency_each_way() {
            None => None,
            Some(latency) => {
                let faults = Faults::default().with_latency(latency).with_count_only();
                Some(FaultProxy::start(dovecot.imap_addr(), faults).context("latency proxy")?)
            }
        };
        Ok(BenchServer { dovecot, proxy })
    }

    /// The port the tools connect to (the proxy's, when there is one).
    pub fn port(&self) -> u16 {
        match &self.proxy {
            Some(proxy) => proxy.port(),
            None => self.dovecot.imap_port(),
        }
    }

    /// Dovecot's own address, for the test client (never through the proxy).
    pub fn direct_addr(&self) -> SocketAddr {
        self.dovecot.imap_addr()
    }

    /// Bytes through the proxy so far, if there is one.
    pub fn wire(&self) -> Option<Wire> {
        self.proxy.as_ref().map(|proxy| Wire {
            to_server: proxy.bytes_delivered(Direction::ClientToServer),
            to_client: proxy.bytes_delivered(Direction::ServerToClient),
        })
    }

    fn log_path(&self) -> PathBuf {
        self.dovecot.dir().join("dovecot.log")
    }

    /// The log's end, once every session so far has logged its end.
    pub fn quiet_log_offset(&self) -> Result<u64> {
        let text = self.settled_log(0)?;
        Ok(text.len() as u64)
    }

    /// The traffic of the sessions logged after `offset`, once they all
    /// ended.
    pub fn traffic_since(&self, offset: u64) -> Result<Traffic> {
        Ok(parse_traffic(&self.settled_log(offset)?))
    }

    /// The log from `offset`, once its sessions are balanced (or after
    /// [`LOG_WAIT`], when a session never logs its end).
    fn settled_log(&self, offset: u64) -> Result<String> {
        let path = self.log_path();
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
            let traffic = parse_traffic(&text);
            if traffic.logins <= sessions_ended(&text) || Instant::now() > deadline {
                return Ok(text);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a log line is Dovecot's end-of-session line with its counters.
fn session_end(line: &str) -> Option<(u64, u64)> {
    if !line.contains("Disconnected") {
        return None;
    }
    Some((counter(line, " in=")?, counter(line, " out=")?))
}

/// The number after `key` in `line`.
fn counter(line: &str, key: &str) -> Option<u64> {
    let start = line.find(key)? + key.len();
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn sessions_ended(text: &str) -> u64 {
    text.lines().filter_map(session_end).count() as u64
}

/// Sums the sessions in a piece of Dovecot's log.
pub fn parse_traffic(text: &str) -> Traffic {
    let mut traffic = Traffic::default();
    for line in text.lines() {
        if line.contains("imap-login: Info: Login: ") {
            traffic.logins += 1;
        }
        if let Some((bytes_in, bytes_out)) = session_end(line) {
            traffic.bytes_in += bytes_in;
            traffic.bytes_out += bytes_out;
        }
    }
    traffic
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 27 10:00:00 imap-login: Info: Login: user=<ferry>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=101, session=<a>
Nov 27 10:00:00 imap(ferry)<101><a>: Info: Disconnected: Logged out in=120 out=4567 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0
Nov 27 10:00:01 imap-login: Info: Disconnected (no auth attempts in 0 secs): user=<>, rip=127.0.0.1, lip=127.0.0.1, session=<b>
Nov 27 10:00:01 imap-login: Info: Login: user=<ferry>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=102, session=<c>
Nov 27 10:00:02 imap(ferry)<102><c>: Info: Disconnected: Connection closed (UID FETCH finished 0.001 secs ago) in=30 out=1000000 deleted=0
";

    #[test]
    fn sums_sessions() {
        assert_eq!(
            parse_traffic(LOG),
            Traffic {
                logins: 2,
                bytes_in: 150,
                bytes_out: 1_004_567
            }
        );
        assert_eq!(sessions_ended(LOG), 2);
    }

    #[test]
    fn a_session_still_open_is_not_counted_as_ended() {
        let open = LOG.lines().take(4).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_traffic(&open).logins, 2);
        assert_eq!(sessions_ended(&open), 1);
    }

    #[test]
    fn counters() {
        assert_eq!(counter("x in=12 out=3", " in="), Some(12));
        assert_eq!(counter("x in=12 out=3", " out="), Some(3));
        assert_eq!(counter("x in= out=3", " in="), None);
        assert_eq!(session_end("Info: Login: user=<x> in=1 out=2"), None);
    }
}
