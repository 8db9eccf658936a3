//! A minimal, hardened, blocking IMAP client for ferry.
//!
//! This crate owns everything that speaks IMAP and nothing that knows about
//! sync:
//!
//! - [`transport`]: TCP with timeouts, TLS (rustls) with `ca_file` and
//!   certificate pinning, STARTTLS, `tunnel` commands, COMPRESS=DEFLATE;
//! - [`proto`]: the sans-I/O protocol core: command encoding with tags and
//!   literals, response framing around imap-proto's parser with hard limits,
//!   large literals diverted to a writer, response codes imap-proto does not
//!   type;
//! - [`Session`]: the typed commands, pipelined where the protocol allows;
//! - [`mutf7`]: modified UTF-7 mailbox names;
//! - [`Secret`]: passwords that never print.
//!
//! ## Crates used, and where they stop
//!
//! - **imap-proto** (specified for this project) parses every response. It
//!   only parses complete responses held in memory, so the framing, the
//!   literal handling and the limits are ours ([`proto::framing`]). It does
//!   not type MODIFIED, NOMODSEQ, CLOSED, MAILBOXID or the RFC 5530 codes
//!   (they stay in the text and are parsed in [`proto::response`]), nor
//!   NAMESPACE (parsed by [`proto::sexp`]), and it reports `* ENABLED` as if
//!   it were `* CAPABILITY`, which [`proto::parse_response`] intercepts.
//! - **rustls** with the ring provider for TLS; **flate2** for COMPRESS,
//!   with a workaround for a sync-flush loss in small output buffers.
//!
//! ## Opening a session
//!
//! ```no_run
//! use ferry_imap::{AuthMechanism, Credentials, Secret, SelectOptions, ServerOptions, Session, TlsMode};
//!
//! let options = ServerOptions::new("imap.example.org", TlsMode::Implicit);
//! let mut session = Session::connect(&options)?;
//! session.login(&Credentials {
//!     user: "me@example.org".into(),
//!     secret: Secret::new("app password"),
//!     mechanism: AuthMechanism::Auto,
//! })?;
//! let inbox = session.select("INBOX", &SelectOptions::default())?;
//! let (messages, _) = session.uid_fetch("1:*", "UID FLAGS RFC822.SIZE", None)?;
//! assert_eq!(messages.len() as u32, inbox.exists);
//! session.logout()?;
//! # Ok::<(), ferry_imap::Error>(())
//! ```
//!
//! ```
//! use ferry_imap::mutf7;
//!
//! assert_eq!(mutf7::encode("Entwürfe"), "Entw&APw-rfe");
//! assert_eq!(mutf7::decode("Entw&APw-rfe").expect("valid"), "Entwürfe");
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod mutf7;
mod options;
pub mod proto;
mod secret;
mod session;
pub mod transport;

pub use error::{Error, Result};
pub use options::{AuthMechanism, CompressPolicy, Credentials, ServerOptions, TlsMode};
pub use secret::Secret;
pub use session::{
    AppendHeader, AppendRequest, AppendResult, BodyItem, Completion, FetchedBody, FlagUpdate,
    IdleEvent, SelectOptions, Selected, Session, StoreResult, TraceDirection, TraceSink,
};
