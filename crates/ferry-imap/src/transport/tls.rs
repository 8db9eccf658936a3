//! TLS with rustls (ring provider): client config, handshake, and errors
//! that say what to configure.
//!
//! [`TlsSetup::new`] checks the configuration (ca_file, tls_fingerprint,
//! the host as a server name) before any connection is made;
//! [`TlsSetup::handshake`] completes the handshake over a connected socket
//! (implicit TLS, or after the server's OK to STARTTLS). Which
//! certificates are trusted is [`super::verify`]'s business.

use super::TlsInfo;
use super::verify::{self, FerryVerifier, Policy, Presented, Rejection};
use crate::error::Error;
use crate::options::{ServerOptions, TlsMode};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A TLS connection over TCP.
pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Everything needed for one handshake, checked before connecting.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    config: Arc<ClientConfig>,
    verifier: Arc<FerryVerifier>,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    mode: TlsMode,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

impl TlsSetup {
    /// Builds the client config for `options` (loads `ca_file`, parses
    /// `tls_fingerprint`, turns the host into a server name).
    pub(crate) fn new(options: &ServerOptions) -> Result<TlsSetup, Error> {
        let host = options.host.clone();
        let server_name = server_name(&host)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let policy = policy(options, &provider)?;
        let verifier = Arc::new(FerryVerifier::new(
            policy,
            provider.signature_verification_algorithms,
        ));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(&host, format!("cannot set up TLS: {e}"), None))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(TlsSetup {
            config: Arc::new(config),
            verifier,
            server_name,
            host,
            port: options.port,
            mode: options.tls,
            ca_file: options.ca_file.clone(),
            timeout: options.read_timeout,
        })
    }

    /// Completes the handshake over `tcp` (whose read timeout bounds each
    /// wait). Nothing but TLS records is read from the socket.
    pub(crate) fn handshake(&self, mut tcp: TcpStream) -> Result<TlsStream, Error> {
        let mut conn = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| config_error(&self.host, format!("cannot start TLS: {e}"), None))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(|e| self.failure(e))?;
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    /// The error for a failed handshake.
    fn failure(&self, error: io::Error) -> Error {
        if let Some(presented) = self.verifier.presented() {
            if let Some(rejection) = &presented.rejection {
                return self.rejected(&presented, rejection);
            }
        }
        if matches!(
            error.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            return Error::Timeout {
                host: self.host.clone(),
                during: Some("the TLS handshake".to_string()),
                after: self.timeout,
            };
        }
        let tls_error = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        let reason = match tls_error {
            Some(e) => format!("the handshake failed: {e}"),
            None => format!("the connection broke during the handshake: {error}"),
        };
        Error::Tls {
            host: self.host.clone(),
            reason,
            hint: self.handshake_hint(tls_error),
        }
    }

    /// What to check when the handshake itself failed.
    fn handshake_hint(&self, error: Option<&rustls::Error>) -> Option<String> {
        let port = self.port;
        match (error, self.mode) {
            (Some(rustls::Error::PeerIncompatible(_)), _) => Some(
                "the server offers no TLS version or cipher ferry accepts (TLS 1.2 or 1.3 with \
                 modern ciphers); upgrade the server's TLS configuration"
                    .to_string(),
            ),
            (Some(rustls::Error::InvalidMessage(_)) | None, TlsMode::Implicit) => Some(format!(
                "port {port} may not speak implicit TLS: use port 993, or tls = \"starttls\" for \
                 a plain IMAP port such as 143"
            )),
            _ => None,
        }
    }

    /// The error for a certificate the verifier refused.
    fn rejected(&self, presented: &Presented, rejection: &Rejection) -> Error {
        let actual = verify::format_fingerprint(&presented.fingerprint);
        let subject = presented.subject.as_deref().unwrap_or("unreadable subject");
        let cert = format!("the server's certificate ({subject}, {actual})");
        let (reason, hint) = match rejection {
            Rejection::FingerprintMismatch { expected } => (
                format!(
                    "{cert} does not match the pinned tls_fingerprint = \"{}\"",
                    verify::format_fingerprint(expected)
                ),
                Some(format!(
                    "if the server's certificate was replaced on purpose, pin the new one with \
                     tls_fingerprint = \"{actual}\"; otherwise someone may be intercepting the \
                     connection"
                )),
            ),
            Rejection::NoTrustAnchors => (
                format!(
                    "{cert} cannot be verified: the system trust store is empty or unreadable \
                     and no ca_file is set"
                ),
                Some(trust_hint(&actual)),
            ),
            Rejection::Certificate(e) => self.certificate_problem(&cert, &actual, e),
        };
        Error::Tls {
            host: self.host.clone(),
            reason,
            hint,
        }
    }

    /// Reason and hint for a certificate error.
    fn certificate_problem(
        &self,
        cert: &str,
        actual: &str,
        error: &CertificateError,
    ) -> (String, Option<String>) {
        match error {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => (
                format!(
                    "{cert} is not issued by an authority ferry trusts{}",
                    self.not_in_ca_file()
                ),
                Some(trust_hint(actual)),
            ),
            CertificateError::Expired => (format!("{cert} has expired"), Some(renew_hint())),
            CertificateError::ExpiredContext { not_after, .. } => (
                format!("{cert} expired on {}", date(not_after)),
                Some(renew_hint()),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                format!("{cert} is not valid yet{}", not_before(error)),
                Some("check this computer's clock".to_string()),
            ),
            CertificateError::NotValidForName => self.wrong_name(cert, actual, &[]),
            CertificateError::NotValidForNameContext { presented, .. } => {
                self.wrong_name(cert, actual, presented)
            }
            CertificateError::Other(other) if is_ca_used_as_end_entity(other) => {
                self.ca_certificate(cert, actual)
            }
            other => (format!("{cert} was refused: {other}"), None),
        }
    }

    /// Reason and hint for a CA certificate presented as the server's.
    fn ca_certificate(&self, cert: &str, actual: &str) -> (String, Option<String>) {
        let listed = self
            .ca_file
            .as_ref()
            .map(|p| format!(", and ca_file {} does not", p.display()))
            .unwrap_or_default();
        (
            format!(
                "{cert} is a CA certificate (CA:TRUE, as openssl req -x509 makes), trusted only \
                 when ca_file holds this very certificate{listed}"
            ),
            Some(trust_hint(actual)),
        )
    }

    /// ", and it is not in ca_file PATH" when a ca_file is configured.
    fn not_in_ca_file(&self) -> String {
        self.ca_file
            .as_ref()
            .map(|p| format!(", and it is not in ca_file {}", p.display()))
            .unwrap_or_default()
    }

    /// Reason and hint for a certificate issued for other names.
    fn wrong_name(
        &self,
        cert: &str,
        actual: &str,
        presented: &[String],
    ) -> (String, Option<String>) {
        let names: Vec<String> = presented.iter().filter_map(|n| san_text(n)).collect();
        let host = &self.host;
        if names.is_empty() {
            return (
                format!("{cert} is not valid for {host} and names no host at all"),
                Some(format!(
                    "pin this certificate with tls_fingerprint = \"{actual}\" if it really is \
                     the server's"
                )),
            );
        }
        (
            format!(
                "{cert} is not valid for {host}; it is valid for: {}",
                names.join(", ")
            ),
            Some(format!(
                "connect using one of those names (host = \"{}\")",
                names[0]
            )),
        )
    }
}

/// Whether `error` is webpki's CaUsedAsEndEntity, which rustls passes on
/// only as an opaque error: a CA certificate (typically self-signed) used
/// as the server's.
fn is_ca_used_as_end_entity(error: &rustls::OtherError) -> bool {
    format!("{error:?}").contains("CaUsedAsEndEntity")
}

/// The hint for a certificate no trust anchor vouches for.
fn trust_hint(actual: &str) -> String {
    format!(
        "to trust it, set ca_file = \"<the server's certificate or its CA, PEM>\", or pin it \
         with tls_fingerprint = \"{actual}\" after checking on the server that this is its \
         fingerprint (openssl x509 -noout -fingerprint -sha256 -in <cert>)"
    )
}

/// The hint for an expired certificate.
fn renew_hint() -> String {
    "the server's certificate must be renewed (or this computer's clock is wrong)".to_string()
}

/// " (valid from DATE)" for a not-yet-valid error with context.
fn not_before(error: &CertificateError) -> String {
    match error {
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!(" (valid from {})", date(not_before))
        }
        _ => String::new(),
    }
}

/// A [`rustls::pki_types::UnixTime`] as a readable UTC date.
fn date(time: &rustls::pki_types::UnixTime) -> String {
    super::der::format_time(i64::try_from(time.as_secs()).unwrap_or(i64::MAX))
}

/// A subject alternative name as webpki reports it (`DnsName("x")`,
/// `IpAddress(1.2.3.4)`) as a plain host name; `None` for other kinds.
fn san_text(name: &str) -> Option<String> {
    let inner = name
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })?;
    let clean = inner.chars().all(|c| c.is_ascii_graphic()) && !inner.starts_with('[');
    clean.then(|| inner.to_string())
}

/// The host as the name the certificate must carry: an IP address for an
/// address (brackets allowed for IPv6), else a DNS name.
fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(bare.to_string()).map_err(|_| {
        config_error(
            host,
            format!("{host:?} is neither a valid DNS name nor an IP address"),
            Some("set host to the server's name as its certificate carries it".to_string()),
        )
    })
}

/// A TLS configuration error (nothing was sent).
fn config_error(host: &str, reason: String, hint: Option<String>) -> Error {
    Error::Tls {
        host: host.to_string(),
        reason,
        hint,
    }
}

/// The trust policy `options` ask for.
fn policy(options: &ServerOptions, provider: &Arc<CryptoProvider>) -> Result<Policy, Error> {
    if let Some(pin) = &options.tls_fingerprint {
        return verify::parse_fingerprint(pin)
            .map(Policy::Pinned)
            .ok_or_else(|| {
                config_error(
                &options.host,
                format!("tls_fingerprint = {pin:?} is not a SHA-256 fingerprint"),
                Some(
                    "write it as \"sha256:<64 hex digits>\", as printed by openssl x509 -noout \
                     -fingerprint -sha256 -in <cert>"
                        .to_string(),
                ),
            )
            });
    }
    let ca_file_certs = match &options.ca_file {
        Some(path) => load_ca_file(&options.host, path)?,
        None => Vec::new(),
    };
    let mut roots = system_roots().clone();
    let (_, ignored) = roots.add_parsable_certificates(ca_file_certs.iter().cloned());
    if ignored > 0 {
        tracing::debug!(ignored, "certificates in ca_file unusable as trust anchors");
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .ok();
    Ok(Policy::Chain {
        webpki,
        ca_file_certs,
    })
}

/// The certificates of a PEM (or single DER) file.
fn load_ca_file(host: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let shown = path.display();
    let hint =
        || Some("ca_file must name a PEM file with the server's certificate or its CA".to_string());
    let bytes = std::fs::read(path)
        .map_err(|e| config_error(host, format!("cannot read ca_file {shown}: {e}"), hint()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            config_error(
                host,
                format!("ca_file {shown} is not valid PEM: {e}"),
                hint(),
            )
        })?;
    if !certs.is_empty() {
        return Ok(certs);
    }
    if bytes.first() == Some(&0x30) {
        return Ok(vec![CertificateDer::from(bytes)]);
    }
    Err(config_error(
        host,
        format!("ca_file {shown} holds no certificate (no -----BEGIN CERTIFICATE----- block)"),
        hint(),
    ))
}

/// The system trust store, loaded once per process. Problems are logged;
/// an empty store still lets `ca_file` and `tls_fingerprint` work.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "problem loading the system trust store");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            tracing::warn!("the system trust store is empty: only ca_file or tls_fingerprint can verify servers");
        }
        tracing::debug!(added, ignored, "system trust store loaded");
        roots
    })
}

/// The negotiated parameters and the server's certificate.
pub(crate) fn info(conn: &ClientConnection) -> Option<TlsInfo> {
    let version = match conn.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let cert = conn.peer_certificates()?.first()?;
    Some(TlsInfo {
        version,
        cipher,
        subject: super::der::subject(cert).unwrap_or_default(),
        fingerprint: verify::format_fingerprint(&verify::sha256(cert)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_addresses_or_dns_names() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("imap.example.org"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(server_name("bad name"), Err(Error::Tls { .. })));
    }

    #[test]
    fn san_text_keeps_dns_names_and_addresses() {
        assert_eq!(
            san_text("DnsName(\"localhost\")").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            san_text("IpAddress(127.0.0.1)").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            san_text("IpAddress(2001::db8)").as_deref(),
            Some("2001::db8")
        );
        assert_eq!(san_text("DirectoryName"), None);
        assert_eq!(san_text("IpAddress([invalid: 01, 02])"), None);
        assert_eq!(san_text("DnsName(\"a\u{1b}b\")"), None);
    }

    #[test]
    fn bad_fingerprint_and_missing_ca_file_fail_before_connecting() {
        let mut options = ServerOptions::new("127.0.0.1", TlsMode::Implicit);
        options.tls_fingerprint = Some("sha1:00".to_string());
        let err = TlsSetup::new(&options).expect_err("bad pin");
        assert!(err.to_string().contains("sha256:<64 hex digits>"), "{err}");
        options.tls_fingerprint = None;
        options.ca_file = Some(PathBuf::from("/nonexistent/ferry-ca.pem"));
        let err = TlsSetup::new(&options).expect_err("missing ca_file");
        assert!(err.to_string().contains("cannot read ca_file"), "{err}");
    }

    fn presented(rejection: Rejection) -> Presented {
        Presented {
            fingerprint: [0xab; 32],
            subject: Some("CN=imap.example.org".to_string()),
            rejection: Some(rejection),
        }
    }

    fn message(host: &str, rejection: Rejection) -> String {
        let options = ServerOptions::new(host, TlsMode::Implicit);
        let setup = TlsSetup::new(&options).expect("setup");
        let presented = presented(rejection);
        let rejection = presented.rejection.clone().expect("rejection");
        setup.rejected(&presented, &rejection).to_string()
    }

    #[test]
    fn refusals_say_what_to_configure() {
        let actual = format!("sha256:{}", "ab".repeat(32));
        let text = message("imap.example.org", Rejection::NoTrustAnchors);
        assert!(
            text.contains("ca_file = ") && text.contains(&actual),
            "{text}"
        );
        let text = message(
            "imap.example.org",
            Rejection::Certificate(CertificateError::UnknownIssuer),
        );
        assert!(
            text.contains("ca_file = ") && text.contains(&actual),
            "{text}"
        );
        assert!(text.contains("CN=imap.example.org"), "{text}");
        let text = message(
            "imap.example.org",
            Rejection::FingerprintMismatch { expected: [1; 32] },
        );
        assert!(
            text.contains(&format!("tls_fingerprint = \"{actual}\"")),
            "{text}"
        );
        assert!(
            text.contains(&format!("sha256:{}", "01".repeat(32))),
            "{text}"
        );
    }

    #[test]
    fn expiry_and_clock_problems_are_named() {
        let time =
            rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(2_000_000_000));
        let not_after =
            rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000));
        let text = message(
            "imap.example.org",
            Rejection::Certificate(CertificateError::ExpiredContext { time, not_after }),
        );
        assert!(
            text.contains("expired on 2023-11-14 22:13:20 UTC"),
            "{text}"
        );
        let text = message(
            "imap.example.org",
            Rejection::Certificate(CertificateError::NotValidYetContext {
                time: not_after,
                not_before: time,
            }),
        );
        assert!(
            text.contains("not valid yet") && text.contains("clock"),
            "{text}"
        );
    }

    #[test]
    fn name_errors_list_the_names_to_use() {
        let text = message(
            "mail.example.org",
            Rejection::Certificate(CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("mail.example.org").expect("name"),
                presented: vec![
                    "DnsName(\"imap.example.org\")".to_string(),
                    "IpAddress(192.0.2.1)".to_string(),
                ],
            }),
        );
        assert!(
            text.contains("valid for: imap.example.org, 192.0.2.1")
                && text.contains("connect using one of those names (host = \"imap.example.org\")"),
            "{text}"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = load_ca_file("h", &path).expect_err("no certs");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
