//! IMAP over a command's stdin and stdout (`tunnel`, e.g. `ssh host
//! /usr/lib/dovecot/imap`).
//!
//! The command runs as `sh -c <tunnel>` with stdin and stdout piped to
//! ferry. Its stderr is read line by line and logged at INFO level
//! (target `ferry_imap::transport::tunnel`; a server binary run this way,
//! like Dovecot's imap, logs every logout there), and the last lines are
//! kept for error messages ([`Tunnel::status`]); it is never inherited, so
//! it cannot garble ferry's own terminal output.
//!
//! Reads come from a helper thread that reads stdout and hands chunks over
//! a bounded channel; this makes read timeouts work for pipes as they do
//! for sockets (a tunnel needs no unbuffered reads: STARTTLS is not offered
//! over it). Dropping the tunnel closes the command's stdin, gives it a
//! moment to exit, then kills and reaps it.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bytes read from the command's stdout at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader thread and the reader (bounds memory).
const CHUNKS_IN_FLIGHT: usize = 8;
/// stderr lines kept for error messages.
const STDERR_LINES: usize = 5;
/// The longest stderr line kept or logged.
const STDERR_LINE_MAX: u64 = 1024;
/// How long a command may take to exit after its stdin closed.
const EXIT_GRACE: Duration = Duration::from_millis(100);

/// The last lines the command wrote to stderr.
type StderrTail = Arc<Mutex<VecDeque<String>>>;

/// A running tunnel command.
pub(crate) struct Tunnel {
    child: Child,
    stdin: Option<ChildStdin>,
    chunks: Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    offset: usize,
    timeout: Option<Duration>,
    stderr_tail: StderrTail,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tunnel")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    /// Starts `sh -c command` without the variables `env_remove`; reads
    /// time out after `timeout` (`None`: never).
    pub(crate) fn spawn(
        command: &str,
        timeout: Option<Duration>,
        env_remove: &[String],
    ) -> io::Result<Tunnel> {
        let mut child = Command::new("sh");
        child
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for var in env_remove {
            child.env_remove(var);
        }
        let mut child = child.spawn()?;
        let stdin = child.stdin.take();
        if let Some(stdin) = &stdin {
            // Writes wait with a timeout (see `write`), not in the kernel.
            rustix::fs::fcntl_setfl(stdin, rustix::fs::OFlags::NONBLOCK)?;
        }
        let stderr_tail = StderrTail::default();
        let chunks = match start_readers(&mut child, &stderr_tail) {
            Ok(chunks) => chunks,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Tunnel {
            child,
            stdin,
            chunks,
            pending: Vec::new(),
            offset: 0,
            timeout,
            stderr_tail,
        })
    }

    /// Sets the read timeout (`None`: wait forever).
    pub(crate) fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The next chunk of stdout: `Ok(None)` at its end.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let received = match self.timeout {
            Some(timeout) => self.chunks.recv_timeout(timeout),
            None => self
                .chunks
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Ok(chunk)) => Ok(Some(chunk)),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the tunnel command sent nothing in time",
            )),
        }
    }

    /// Whether output is waiting to be read without blocking.
    fn has_pending(&self) -> bool {
        self.offset < self.pending.len()
    }

    /// How the command ended, with its last stderr lines; `None` while it
    /// still runs (after waiting briefly for it to exit).
    pub(crate) fn status(&mut self) -> Option<String> {
        let status = wait_briefly(&mut self.child, EXIT_GRACE)?;
        let tail = self.stderr_tail();
        let mut text = format!("the tunnel command exited ({status})");
        if !tail.is_empty() {
            text.push_str(&format!("; its last error output: {}", tail.join(" | ")));
        }
        Some(text)
    }

    fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

impl Read for Tunnel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.has_pending() {
            match self.next_chunk()? {
                Some(chunk) => {
                    self.pending = chunk;
                    self.offset = 0;
                }
                None => return Ok(0),
            }
        }
        let available = &self.pending[self.offset..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.offset += n;
        Ok(n)
    }
}

impl Write for Tunnel {
    /// Writes to the command's stdin (non-blocking): waits up to the read
    /// timeout for it to take more, as a TCP write timeout would, so a
    /// command that stops reading cannot hang the session.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(stdin) = &mut self.stdin else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        loop {
            match stdin.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_writable(stdin, self.timeout)?;
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stdin {
            Some(stdin) => stdin.flush(),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if wait_briefly(&mut self.child, EXIT_GRACE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader thread ends at stdout's EOF, or when its send fails
        // because the receiver is dropped with this tunnel.
    }
}

/// Waits until `stdin` takes more bytes, at most `timeout` (`None`:
/// forever).
fn wait_writable(stdin: &ChildStdin, timeout: Option<Duration>) -> io::Result<()> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let limit = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    loop {
        let mut fds = [PollFd::new(stdin, PollFlags::OUT)];
        match poll(&mut fds, limit.as_ref()) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the tunnel command took nothing in time",
                ));
            }
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts the threads that read the child's stdout (into the returned
/// channel) and stderr (into the log and `tail`).
fn start_readers(
    child: &mut Child,
    tail: &StderrTail,
) -> io::Result<Receiver<io::Result<Vec<u8>>>> {
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(io::Error::other("the tunnel command has no pipes"));
    };
    let (sender, chunks) = std::sync::mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    std::thread::Builder::new()
        .name("ferry-tunnel-stdout".to_string())
        .spawn(move || pump_stdout(stdout, sender))?;
    let tail = tail.clone();
    std::thread::Builder::new()
        .name("ferry-tunnel-stderr".to_string())
        .spawn(move || log_stderr(stderr, &tail))?;
    Ok(chunks)
}

/// The child's exit status, polling for up to `grace`.
fn wait_briefly(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Moves stdout into the channel until it ends, fails, or nobody listens.
fn pump_stdout(mut stdout: ChildStdout, sender: SyncSender<io::Result<Vec<u8>>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let message = match stdout.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = message.is_err();
        if sender.send(message).is_err() || failed {
            return;
        }
    }
}

/// Logs the command's stderr line by line, keeping the last lines.
fn log_stderr(stderr: ChildStderr, tail: &StderrTail) {
    let mut reader = BufReader::new(stderr);
    loop {
        let mut line = Vec::new();
        match reader
            .by_ref()
            .take(STDERR_LINE_MAX)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text: String = String::from_utf8_lossy(&line)
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if text.is_empty() {
            continue;
        }
        tracing::info!(target: "ferry_imap::transport::tunnel", "tunnel command: {text}");
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_command_and_reports_its_exit() {
        let mut tunnel = Tunnel::spawn(
            "echo oops >&2; head -c 5; exit 3",
            Some(Duration::from_secs(10)),
            &[],
        )
        .expect("spawn");
        tunnel.write_all(b"hello world").expect("write");
        tunnel.flush().expect("flush");
        let mut out = Vec::new();
        tunnel.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"hello");
        // The stderr reader is a thread of its own: on a loaded machine it
        // may take a moment to see the line.
        let mut status = None;
        let until = Instant::now() + Duration::from_secs(10);
        while status.is_none() && Instant::now() < until {
            status = tunnel.status().filter(|s| s.contains("oops"));
            if status.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let status = status.expect("exited with stderr");
        assert!(status.contains("exit status: 3"), "{status}");
    }

    #[test]
    fn reads_time_out_and_drop_kills_the_command() {
        let mut tunnel =
            Tunnel::spawn("exec sleep 60", Some(Duration::from_millis(50)), &[]).expect("spawn");
        let started = Instant::now();
        let err = tunnel.read(&mut [0u8; 8]).expect_err("timeout");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = tunnel.child.id();
        drop(tunnel);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_missing_command_ends_the_stream() {
        let mut tunnel = Tunnel::spawn(
            "/nonexistent/ferry-imap-binary",
            Some(Duration::from_secs(10)),
            &[],
        )
        .expect("sh starts");
        let mut out = Vec::new();
        tunnel.read_to_end(&mut out).expect("eof");
        assert!(out.is_empty());
    }

    #[test]
    fn the_command_does_not_inherit_removed_variables() {
        // Any variable of this process the shell does not set itself.
        let shell_owned = [
            "PATH", "PWD", "OLDPWD", "SHLVL", "IFS", "PS1", "PS2", "PS4", "_",
        ];
        let Some((var, _)) = std::env::vars().find(|(k, v)| {
            !v.is_empty()
                && !shell_owned.contains(&k.as_str())
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) else {
            return;
        };
        let output = |remove: &[String]| {
            let command = format!("echo \"${{{var}:+set}}\"");
            let mut tunnel =
                Tunnel::spawn(&command, Some(Duration::from_secs(10)), remove).expect("spawn");
            let mut out = String::new();
            tunnel.read_to_string(&mut out).expect("read");
            out
        };
        assert_eq!(output(&[]), "set\n", "{var}");
        assert_eq!(output(std::slice::from_ref(&var)), "\n", "{var}");
    }

    #[test]
    fn a_command_that_stops_reading_times_out_writes() {
        let mut tunnel =
            Tunnel::spawn("exec sleep 60", Some(Duration::from_millis(200)), &[]).expect("spawn");
        let started = Instant::now();
        let chunk = vec![b'x'; 64 * 1024];
        let err = (0..1024)
            .try_for_each(|_| tunnel.write_all(&chunk))
            .expect_err("the pipe fills and the write times out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
