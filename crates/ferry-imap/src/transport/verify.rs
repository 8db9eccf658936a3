//! Server certificate verification: the system trust store plus `ca_file`,
//! or a pinned fingerprint.
//!
//! [`FerryVerifier`] decides whether the server's end-entity certificate is
//! trusted, by exactly one of two policies:
//!
//! - **Pinned** (`tls_fingerprint` set): the SHA-256 of the end-entity
//!   certificate's DER must equal the pin. Nothing else about the
//!   certificate is checked: no chain, no host name, no validity period
//!   (the user vouched for these exact bytes). Neither the system store nor
//!   `ca_file` is consulted.
//! - **Chain** (the default): webpki verifies the chain against the system
//!   trust store plus every certificate of `ca_file` as a trust anchor,
//!   including the host name and the validity period. When that fails, the
//!   certificate is still accepted iff
//!   1. its DER is byte-identical to a certificate in `ca_file`, and
//!   2. the current time is within its notBefore..=notAfter, and
//!   3. it is valid for the server name (webpki's subject-name check: a DNS
//!      name against the DNS SAN entries, an IP address against the IP SAN
//!      entries).
//!
//!   This is mbsync's CertificateFile rule and covers what `openssl req
//!   -x509` makes: a self-signed certificate marked CA:TRUE, which webpki
//!   refuses as an end entity (CaUsedAsEndEntity).
//!
//! In both policies the handshake signature (TLS 1.2 ServerKeyExchange,
//! TLS 1.3 CertificateVerify) is verified with the provider's algorithms
//! against the presented certificate's key, so a server cannot present a
//! pinned certificate without holding its private key.
//!
//! The verifier records what the server presented and why it was refused,
//! so the error can tell the user what to configure (the fingerprint of
//! the certificate actually presented, the names it is valid for).

use super::der;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, PoisonError};

/// The SHA-256 of a certificate's DER.
pub(crate) type Fingerprint = [u8; 32];

/// Which certificates are trusted.
#[derive(Debug)]
pub(crate) enum Policy {
    /// Exactly the certificate with this SHA-256.
    Pinned(Fingerprint),
    /// A chain to a trust anchor, or a certificate listed in `ca_file`.
    Chain {
        /// webpki over the system store plus `ca_file`; `None` when there
        /// is no trust anchor at all.
        webpki: Option<Arc<WebPkiServerVerifier>>,
        /// The DER of every certificate in `ca_file`.
        ca_file_certs: Vec<CertificateDer<'static>>,
    },
}

/// Why the presented certificate was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rejection {
    /// Its fingerprint is not the pinned one.
    FingerprintMismatch {
        /// The configured pin.
        expected: Fingerprint,
    },
    /// webpki refused it (and it is not in `ca_file`, or it is but fails
    /// the checks that still apply then).
    Certificate(CertificateError),
    /// No trust anchor exists (empty system store, no `ca_file`).
    NoTrustAnchors,
}

/// What the server presented, and the verdict.
#[derive(Debug, Clone)]
pub(crate) struct Presented {
    /// SHA-256 of the end-entity DER.
    pub(crate) fingerprint: Fingerprint,
    /// The end-entity certificate's subject, if readable.
    pub(crate) subject: Option<String>,
    /// Why it was refused; `None` when accepted.
    pub(crate) rejection: Option<Rejection>,
}

/// The verifier ferry installs in every TLS client config.
#[derive(Debug)]
pub(crate) struct FerryVerifier {
    policy: Policy,
    algorithms: WebPkiSupportedAlgorithms,
    presented: Mutex<Option<Presented>>,
}

impl FerryVerifier {
    /// A verifier for `policy`, checking handshake signatures with
    /// `algorithms`.
    pub(crate) fn new(policy: Policy, algorithms: WebPkiSupportedAlgorithms) -> FerryVerifier {
        FerryVerifier {
            policy,
            algorithms,
            presented: Mutex::new(None),
        }
    }

    /// What the server presented in the last handshake, if it got that far.
    pub(crate) fn presented(&self) -> Option<Presented> {
        self.presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn record(&self, presented: Presented) {
        *self
            .presented
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(presented);
    }
}

/// The verdict on a certificate under the chain policy.
fn check_chain(
    webpki: Option<&WebPkiServerVerifier>,
    ca_file_certs: &[CertificateDer<'static>],
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Rejection> {
    let webpki_verdict = match webpki {
        Some(webpki) => webpki
            .verify_server_cert(end_entity, intermediates, server_name, &[], now)
            .map(drop)
            .map_err(certificate_rejection),
        None => Err(Rejection::NoTrustAnchors),
    };
    match webpki_verdict {
        Ok(()) => Ok(()),
        // webpki's complaint (issuer, CA:TRUE) does not matter for a
        // certificate the user listed; the date and the name still do.
        Err(_) if ca_file_certs.iter().any(|c| c == end_entity) => {
            check_listed(end_entity, server_name, now)
        }
        Err(refused) => Err(refused),
    }
}

/// The checks that still apply to a certificate listed in `ca_file`: the
/// validity period and the server name.
fn check_listed(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Rejection> {
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let (not_before, not_after) =
        der::validity(end_entity).ok_or(Rejection::Certificate(CertificateError::BadEncoding))?;
    if now_secs > not_after {
        return Err(Rejection::Certificate(CertificateError::ExpiredContext {
            time: now,
            not_after: unix_time(not_after),
        }));
    }
    if now_secs < not_before {
        return Err(Rejection::Certificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: unix_time(not_before),
            },
        ));
    }
    let parsed = ParsedCertificate::try_from(end_entity).map_err(certificate_rejection)?;
    rustls::client::verify_server_name(&parsed, server_name).map_err(certificate_rejection)
}

/// Unix seconds as a [`UnixTime`] (clamped at the epoch).
fn unix_time(seconds: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(seconds).unwrap_or(0),
    ))
}

/// A rustls verification error as a rejection.
fn certificate_rejection(error: rustls::Error) -> Rejection {
    match error {
        rustls::Error::InvalidCertificate(e) => Rejection::Certificate(e),
        other => Rejection::Certificate(CertificateError::Other(rustls::OtherError(Arc::new(
            Described(other.to_string()),
        )))),
    }
}

/// A verification failure rustls reported as something other than a
/// certificate error, kept as text.
#[derive(Debug)]
struct Described(String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

/// The error rustls sees for a rejection (it picks the TLS alert).
fn to_rustls(rejection: &Rejection) -> rustls::Error {
    match rejection {
        Rejection::FingerprintMismatch { .. } => {
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        }
        Rejection::Certificate(e) => rustls::Error::InvalidCertificate(e.clone()),
        Rejection::NoTrustAnchors => {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        }
    }
}

impl ServerCertVerifier for FerryVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = sha256(end_entity);
        let verdict = match &self.policy {
            Policy::Pinned(expected) if *expected == fingerprint => Ok(()),
            Policy::Pinned(expected) => Err(Rejection::FingerprintMismatch {
                expected: *expected,
            }),
            Policy::Chain {
                webpki,
                ca_file_certs,
            } => check_chain(
                webpki.as_deref(),
                ca_file_certs,
                end_entity,
                intermediates,
                server_name,
                now,
            ),
        };
        let error = verdict.as_ref().err().map(to_rustls);
        self.record(Presented {
            fingerprint,
            subject: der::subject(end_entity),
            rejection: verdict.err(),
        });
        match error {
            None => Ok(ServerCertVerified::assertion()),
            Some(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SHA-256 of `der`.
pub(crate) fn sha256(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// `sha256:<lower-case hex>`, the form `tls_fingerprint` takes.
pub(crate) fn format_fingerprint(fingerprint: &Fingerprint) -> String {
    let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Parses a `tls_fingerprint`: `sha256:` (optional, any case) and 64 hex
/// digits (any case), optionally separated by colons as `openssl x509
/// -fingerprint` prints them. `None` when it is not such a fingerprint.
pub(crate) fn parse_fingerprint(text: &str) -> Option<Fingerprint> {
    let text = text.trim();
    let hex = match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => text.get(7..)?,
        _ => text,
    };
    let digits: Vec<u8> = hex
        .bytes()
        .filter(|&b| b != b':')
        .map(|b| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    if digits.len() != 64 || hex.starts_with(':') || hex.ends_with(':') || hex.contains("::") {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    use rustls::RootCertStore;

    /// A certificate for `names` (DNS names and IP addresses), self-signed
    /// or issued by `issuer`, valid 2020-01-01..2030-01-01.
    fn cert(
        names: &[&str],
        ca: bool,
        issuer: Option<&(rcgen::Certificate, KeyPair)>,
    ) -> (rcgen::Certificate, KeyPair) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        for name in names {
            params.subject_alt_names.push(match name.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("dns name")),
            });
        }
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = KeyPair::generate().expect("key");
        let cert = match issuer {
            Some((issuer, issuer_key)) => params.signed_by(&key, issuer, issuer_key),
            None => params.self_signed(&key),
        }
        .expect("cert");
        (cert, key)
    }

    fn chain_verifier(ca_file: &[&rcgen::Certificate]) -> FerryVerifier {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca_file_certs: Vec<CertificateDer<'static>> =
            ca_file.iter().map(|c| c.der().clone()).collect();
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(ca_file_certs.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .ok();
        FerryVerifier::new(
            Policy::Chain {
                webpki,
                ca_file_certs,
            },
            provider.signature_verification_algorithms,
        )
    }

    fn pinned_verifier(pin: Fingerprint) -> FerryVerifier {
        let provider = rustls::crypto::ring::default_provider();
        FerryVerifier::new(
            Policy::Pinned(pin),
            provider.signature_verification_algorithms,
        )
    }

    fn at(year: i32) -> UnixTime {
        let date = rcgen::date_time_ymd(year, 6, 1);
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(date.unix_timestamp()).expect("after 1970"),
        ))
    }

    fn name(host: &str) -> ServerName<'static> {
        ServerName::try_from(host.to_string()).expect("server name")
    }

    /// The verdict the verifier recorded for `end_entity` as `host` at `year`.
    fn verdict(
        verifier: &FerryVerifier,
        end_entity: &rcgen::Certificate,
        intermediates: &[CertificateDer<'static>],
        host: &str,
        year: i32,
    ) -> Option<Rejection> {
        let result = verifier.verify_server_cert(
            end_entity.der(),
            intermediates,
            &name(host),
            &[],
            at(year),
        );
        let presented = verifier.presented().expect("recorded");
        assert_eq!(presented.fingerprint, sha256(end_entity.der()));
        assert_eq!(result.is_ok(), presented.rejection.is_none());
        presented.rejection
    }

    #[test]
    fn a_self_signed_ca_certificate_in_ca_file_is_accepted_for_its_names() {
        let (server, _) = cert(&["localhost", "127.0.0.1"], true, None);
        let verifier = chain_verifier(&[&server]);
        assert_eq!(verdict(&verifier, &server, &[], "localhost", 2025), None);
        assert_eq!(verdict(&verifier, &server, &[], "127.0.0.1", 2025), None);
    }

    #[test]
    fn a_certificate_in_ca_file_must_still_match_the_name_and_the_date() {
        let (server, _) = cert(&["localhost", "127.0.0.1"], true, None);
        let verifier = chain_verifier(&[&server]);
        match verdict(&verifier, &server, &[], "example.org", 2025) {
            Some(Rejection::Certificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) => assert_eq!(presented.len(), 2, "{presented:?}"),
            other => panic!("expected a name error, got {other:?}"),
        }
        assert!(matches!(
            verdict(&verifier, &server, &[], "127.0.0.2", 2025),
            Some(Rejection::Certificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        assert!(matches!(
            verdict(&verifier, &server, &[], "localhost", 2031),
            Some(Rejection::Certificate(
                CertificateError::ExpiredContext { .. }
            ))
        ));
        assert!(matches!(
            verdict(&verifier, &server, &[], "localhost", 2019),
            Some(Rejection::Certificate(
                CertificateError::NotValidYetContext { .. } | CertificateError::NotValidYet
            ))
        ));
    }

    #[test]
    fn a_self_signed_certificate_not_in_ca_file_is_refused() {
        let (server, _) = cert(&["localhost"], true, None);
        let (other, _) = cert(&["localhost"], true, None);
        let verifier = chain_verifier(&[&other]);
        assert!(matches!(
            verdict(&verifier, &server, &[], "localhost", 2025),
            Some(Rejection::Certificate(_))
        ));
        let verifier = chain_verifier(&[]);
        assert_eq!(
            verdict(&verifier, &server, &[], "localhost", 2025),
            Some(Rejection::NoTrustAnchors)
        );
    }

    #[test]
    fn a_ca_in_ca_file_vouches_for_the_leaves_it_issued() {
        let ca = cert(&[], true, None);
        let (leaf, _) = cert(&["imap.example.org"], false, Some(&ca));
        let verifier = chain_verifier(&[&ca.0]);
        assert_eq!(
            verdict(&verifier, &leaf, &[], "imap.example.org", 2025),
            None
        );
        assert!(matches!(
            verdict(&verifier, &leaf, &[], "mail.example.org", 2025),
            Some(Rejection::Certificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        assert!(matches!(
            verdict(&verifier, &leaf, &[], "imap.example.org", 2031),
            Some(Rejection::Certificate(
                CertificateError::ExpiredContext { .. } | CertificateError::Expired
            ))
        ));
    }

    #[test]
    fn an_intermediate_sent_by_the_server_completes_the_chain() {
        let root = cert(&[], true, None);
        let intermediate = cert(&[], true, Some(&root));
        let (leaf, _) = cert(&["imap.example.org"], false, Some(&intermediate));
        let verifier = chain_verifier(&[&root.0]);
        let sent = [intermediate.0.der().clone()];
        assert_eq!(
            verdict(&verifier, &leaf, &sent, "imap.example.org", 2025),
            None
        );
        assert!(verdict(&verifier, &leaf, &[], "imap.example.org", 2025).is_some());
    }

    #[test]
    fn a_pin_replaces_chain_name_and_date_checks() {
        let (server, _) = cert(&["localhost"], true, None);
        let verifier = pinned_verifier(sha256(server.der()));
        assert_eq!(verdict(&verifier, &server, &[], "example.org", 2040), None);
        let (other, _) = cert(&["localhost"], true, None);
        assert_eq!(
            verdict(&verifier, &other, &[], "localhost", 2025),
            Some(Rejection::FingerprintMismatch {
                expected: sha256(server.der())
            })
        );
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_fingerprints_in_common_spellings() {
        let expected = parse_fingerprint(&format!("sha256:{HEX}")).expect("plain");
        assert_eq!(format_fingerprint(&expected), format!("sha256:{HEX}"));
        let upper = format!("SHA256:{}", HEX.to_uppercase());
        assert_eq!(parse_fingerprint(&upper), Some(expected));
        let colons: Vec<String> = HEX
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_uppercase())
            .collect();
        let openssl = format!("sha256:{}", colons.join(":"));
        assert_eq!(parse_fingerprint(&openssl), Some(expected));
        assert_eq!(parse_fingerprint(HEX), Some(expected));
        assert_eq!(
            parse_fingerprint(&format!("  sha256:{HEX}\n")),
            Some(expected)
        );
    }

    #[test]
    fn rejects_what_is_not_a_sha256_fingerprint() {
        for bad in [
            "",
            "sha256:",
            &format!("sha1:{HEX}"),
            &format!("sha256:{}", &HEX[..62]),
            &format!("sha256:{HEX}00"),
            &format!("sha256:{}g", &HEX[..63]),
            &format!("sha256::{HEX}"),
            &format!("sha256:{HEX}:"),
            "sha256:ü",
        ] {
            assert_eq!(parse_fingerprint(bad), None, "{bad:?}");
        }
    }
}
