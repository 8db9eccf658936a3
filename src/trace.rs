//! `-vv`: the IMAP conversation as trace events, credentials already
//! redacted by the session.

use ferry_imap::{TraceDirection, TraceSink};

/// A trace sink when `-vv` (trace level for `ferry::protocol`) is on.
pub fn protocol_trace() -> Option<TraceSink> {
    if !tracing::enabled!(target: "ferry::protocol", tracing::Level::TRACE) {
        return None;
    }
    Some(Box::new(|direction, line| {
        let arrow = match direction {
            TraceDirection::Sent => "C:",
            TraceDirection::Received => "S:",
        };
        tracing::trace!(target: "ferry::protocol", "{arrow} {line}");
    }))
}
