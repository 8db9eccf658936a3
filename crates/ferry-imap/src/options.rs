//! What a caller tells the client about the server and the account.
//!
//! These types are the client's side of the config contract (design.md,
//! "Interfaces users see"); the binary fills them from `config.toml`.

use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS before login; never falls
    /// back to plaintext.
    StartTls,
    /// No TLS at all; only when the user explicitly asked for it.
    None,
}

impl TlsMode {
    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 993,
            TlsMode::StartTls | TlsMode::None => 143,
        }
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMechanism {
    /// AUTHENTICATE PLAIN when offered, else LOGIN.
    #[default]
    Auto,
    /// AUTHENTICATE PLAIN (RFC 4616).
    Plain,
    /// AUTHENTICATE LOGIN, the legacy SASL mechanism, or the LOGIN command.
    Login,
    /// AUTHENTICATE XOAUTH2 with an OAuth 2 access token as the secret.
    XOAuth2,
    /// AUTHENTICATE OAUTHBEARER (RFC 7628) with an access token.
    OAuthBearer,
}

/// When COMPRESS=DEFLATE is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressPolicy {
    /// On for hosts that are not loopback, when the server offers it.
    #[default]
    Auto,
    /// Whenever the server offers it.
    Always,
    /// Never.
    Never,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host name or address (also the name the certificate must carry).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Transport protection.
    pub tls: TlsMode,
    /// An extra trust anchor, or the server's own certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// A pinned `sha256:<hex>` of the server's DER certificate; replaces
    /// chain validation.
    pub tls_fingerprint: Option<String>,
    /// IMAP over this shell command's stdin/stdout instead of TCP.
    pub tunnel: Option<String>,
    /// Environment variables the tunnel command does not inherit (those
    /// that hold passwords).
    pub tunnel_env_remove: Vec<String>,
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for any read before the connection counts as dead
    /// (IDLE uses its own, longer timeout).
    pub read_timeout: Duration,
    /// COMPRESS=DEFLATE policy.
    pub compress: CompressPolicy,
    /// The largest literal the server may announce, in bytes.
    pub max_literal: u64,
}

impl ServerOptions {
    /// Options for `host` with the defaults of `tls`.
    pub fn new(host: impl Into<String>, tls: TlsMode) -> ServerOptions {
        ServerOptions {
            host: host.into(),
            port: tls.default_port(),
            tls,
            ca_file: None,
            tls_fingerprint: None,
            tunnel: None,
            tunnel_env_remove: Vec::new(),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(120),
            compress: CompressPolicy::Auto,
            max_literal: 1 << 30,
        }
    }
}

/// Who logs in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The login name.
    pub user: String,
    /// The password or access token.
    pub secret: Secret,
    /// The mechanism.
    pub mechanism: AuthMechanism,
}
