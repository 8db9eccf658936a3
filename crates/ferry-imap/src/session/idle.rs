//! IDLE (RFC 2177): wait for the server to report changes.
//!
//! The session sends IDLE, waits for the continuation, then reads with a
//! short timeout so it can end the wait when asked to, or before servers'
//! 30-minute limit (RFC 2177 asks clients to re-issue IDLE at least every 29
//! minutes), and finishes with DONE.

use super::Session;
use crate::error::{Error, Result};
use crate::proto::command::Command;
use crate::proto::framing::KeepInMemory;
use crate::proto::response::{Response, Untagged};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest single IDLE, below servers' 30-minute limit.
pub const MAX_IDLE: Duration = Duration::from_secs(29 * 60);

/// How often an IDLE checks whether it should stop.
const POLL: Duration = Duration::from_millis(250);

/// Why an IDLE ended.
#[derive(Debug, Clone, PartialEq)]
pub enum IdleEvent {
    /// The server reported changes (EXISTS, EXPUNGE, FETCH, VANISHED).
    Changed(Vec<Untagged>),
    /// The time limit passed without changes.
    TimedOut,
    /// The caller asked to stop.
    Stopped,
}

impl Session {
    /// IDLEs on the selected mailbox for at most `max` (capped at 29
    /// minutes), until the server reports a change or `stop` is set.
    pub fn idle(&mut self, max: Duration, stop: &AtomicBool) -> Result<IdleEvent> {
        if !self.has_capability("IDLE") {
            return Err(Error::Unsupported {
                what: format!("{} does not support IDLE", self.options.host),
            });
        }
        let tag = self.send(Command::new("IDLE"))?;
        loop {
            match self.read_response(&mut KeepInMemory, "IDLE")? {
                Response::Continue { .. } => break,
                Response::Untagged(u) => self.note_untagged(u, None),
                Response::Tagged { .. } => {
                    self.completed.clear();
                    return Err(crate::proto::framing::protocol(
                        "IDLE ended before it began",
                        b"",
                    ));
                }
            }
        }
        let event = self.idle_wait(max.min(MAX_IDLE), stop);
        self.transport
            .set_read_timeout(Some(self.options.read_timeout))?;
        let event = event?;
        self.trace_line(super::TraceDirection::Sent, "DONE");
        self.write(b"DONE\r\n", "IDLE")?;
        self.flush("IDLE")?;
        let mut changes = match event {
            IdleEvent::Changed(changes) => changes,
            _ => Vec::new(),
        };
        self.wait(
            &tag,
            &mut |u| {
                changes.push(u);
                None
            },
            &mut KeepInMemory,
        )?;
        Ok(if changes.iter().any(is_change) {
            IdleEvent::Changed(changes)
        } else {
            event_without_changes(stop)
        })
    }

    fn idle_wait(&mut self, max: Duration, stop: &AtomicBool) -> Result<IdleEvent> {
        let deadline = Instant::now() + max;
        self.transport.set_read_timeout(Some(POLL))?;
        let mut changes = Vec::new();
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(IdleEvent::Stopped);
            }
            if Instant::now() >= deadline {
                return Ok(IdleEvent::TimedOut);
            }
            match self.read_response(&mut KeepInMemory, "IDLE") {
                Ok(Response::Untagged(u)) => {
                    let changed = is_change(&u);
                    self.note_untagged(u.clone(), Some(&mut |_| None));
                    changes.push(u);
                    if changed {
                        return Ok(IdleEvent::Changed(changes));
                    }
                }
                Ok(other) => {
                    return Err(crate::proto::framing::protocol(
                        "unexpected response during IDLE",
                        format!("{other:?}").as_bytes(),
                    ));
                }
                Err(Error::Timeout { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_change(untagged: &Untagged) -> bool {
    matches!(
        untagged,
        Untagged::Exists(_) | Untagged::Expunge(_) | Untagged::Fetch(_) | Untagged::Vanished { .. }
    )
}

fn event_without_changes(stop: &AtomicBool) -> IdleEvent {
    if stop.load(Ordering::Relaxed) {
        IdleEvent::Stopped
    } else {
        IdleEvent::TimedOut
    }
}
