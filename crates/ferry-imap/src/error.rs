//! The client's one error type, with a kind a caller can act on.
//!
//! Every error says what went wrong, with what (host, command, response
//! code), and, where the user can fix it, what to configure. Credentials
//! never appear in an error: commands are named by their verb only.

use crate::proto::response::ResponseCode;
use std::time::Duration;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered NO.
    #[error("the server refused {command}: {text}{}", code_suffix(.code))]
    No {
        /// The command's verb (e.g. "APPEND"), never its arguments.
        command: String,
        /// The response code, if any (TRYCREATE, OVERQUOTA, ...).
        code: Option<ResponseCode>,
        /// The server's human-readable text.
        text: String,
    },
    /// The server answered BAD: ferry sent something it did not accept.
    #[error("the server rejected {command} as invalid: {text}{}", code_suffix(.code))]
    Bad {
        /// The command's verb.
        command: String,
        /// The response code, if any.
        code: Option<ResponseCode>,
        /// The server's text.
        text: String,
    },
    /// Login was refused.
    #[error(
        "login as {user:?} failed: {text}; check the user name and the password (password_command, password_env or password)"
    )]
    AuthenticationFailed {
        /// The login name.
        user: String,
        /// The server's text.
        text: String,
    },
    /// The server closed the session (BYE) unasked.
    #[error("the server closed the connection: {text}")]
    Bye {
        /// The server's text.
        text: String,
    },
    /// The connection ended or broke.
    #[error("the connection to {host} was lost{}: {source}", during_suffix(.during))]
    ConnectionLost {
        /// The server.
        host: String,
        /// What was in progress.
        during: Option<String>,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error(
        "cannot connect to {host}:{port}: {source}; check host and port, and that the server is reachable"
    )]
    Connect {
        /// The server.
        host: String,
        /// The port.
        port: u16,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("{host} did not answer within {after:?}{}; the server or the network is too slow or stuck (raise the timeout if this is expected)", during_suffix(.during))]
    Timeout {
        /// The server.
        host: String,
        /// What was in progress.
        during: Option<String>,
        /// The timeout that expired.
        after: Duration,
    },
    /// TLS failed or was refused; nothing was sent in the clear.
    #[error("TLS with {host} failed: {reason}{}", hint_suffix(.hint))]
    Tls {
        /// The server.
        host: String,
        /// What failed.
        reason: String,
        /// What to configure, when the user can fix it.
        hint: Option<String>,
    },
    /// The server broke the protocol.
    #[error("the server broke the IMAP protocol: {what} (received: {received:?})")]
    Protocol {
        /// What was wrong.
        what: String,
        /// A bounded excerpt of what was received.
        received: String,
    },
    /// The server sent more than a limit allows.
    #[error("the server exceeded a safety limit: {what} is {value}, the limit is {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// What the server sent or announced.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The server lacks something ferry needs, or the config forbids it.
    #[error("{what}")]
    Unsupported {
        /// What is missing and what to do.
        what: String,
    },
    /// The caller broke the session's contract: a streamed literal longer or
    /// shorter than announced, a command sent while a literal is open. After
    /// a short literal the server is still waiting for bytes, so the session
    /// refuses everything from then on: only a new connection helps.
    #[error("{what}")]
    Misuse {
        /// What was done wrong, and its consequence.
        what: String,
    },
    /// A local I/O error (a literal's sink, a tunnel command).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The response code of a NO or BAD, if any.
    pub fn code(&self) -> Option<&ResponseCode> {
        match self {
            Error::No { code, .. } | Error::Bad { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// Whether a new connection might succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost { .. }
                | Error::Timeout { .. }
                | Error::Bye { .. }
                | Error::Connect { .. }
        ) || matches!(
            self.code(),
            Some(ResponseCode::Unavailable | ResponseCode::InUse)
        )
    }

    /// Whether the session can go on after this error (a NO or BAD ends
    /// only the command; everything else ends the connection).
    pub fn session_usable(&self) -> bool {
        matches!(self, Error::No { .. } | Error::Bad { .. })
    }
}

fn code_suffix(code: &Option<ResponseCode>) -> String {
    code.as_ref()
        .map(|c| format!(" [{}]", c.name()))
        .unwrap_or_default()
}

fn during_suffix(during: &Option<String>) -> String {
    during
        .as_ref()
        .map(|d| format!(" during {d}"))
        .unwrap_or_default()
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
