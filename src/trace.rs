//! `-vv`: the IMAP conversation as trace events, credentials already
//! redacted by the session.

use ferry_imap::{TraceDirection, TraceSink};

/// A trace sink when `-vv` (trace level for `ferry::protocol`) is on, for
/// the main connection: lines read `C: ...` and `S: ...`.
pub fn protocol_trace() -> Option<TraceSink> {
    helper_trace(1)
}

/// [`protocol_trace`] for connection `number` of an account: from the
/// second on, lines read `C2: ...` and `S2: ...`.
pub fn helper_trace(number: usize) -> Option<TraceSink> {
    if !tracing::enabled!(target: "ferry::protocol", tracing::Level::TRACE) {
        return None;
    }
    let number = if number > 1 {
        number.to_string()
    } else {
        String::new()
    };
    Some(Box::new(move |direction, line| {
        let side = match direction {
            TraceDirection::Sent => "C",
            TraceDirection::Received => "S",
        };
        tracing::trace!(target: "ferry::protocol", "{side}{number}: {line}");
    }))
}
