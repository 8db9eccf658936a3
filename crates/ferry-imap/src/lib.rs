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
    AppendRequest, AppendResult, BodyItem, Completion, FetchedBody, IdleEvent, SelectOptions,
    Selected, Session, StoreResult, TraceDirection, TraceSink,
};
