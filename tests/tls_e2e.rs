//! A connection that cannot be trusted ends the run before any credential
//! leaves, with an error that says what to configure: an untrusted
//! self-signed certificate, a certificate for other names, an expired one,
//! STARTTLS stripped from the capabilities, a PREAUTH greeting where
//! STARTTLS is required, and plaintext injected after the STARTTLS OK.
//!
//! Each case runs the real `ferry sync` against a private Dovecot with a
//! fault proxy in front. What the proxy recorded from the client holds no
//! LOGIN, no AUTHENTICATE and not the password, and Dovecot logged no
//! authentication attempt for the user (the recording cannot tell that for
//! bytes inside TLS). The certificates for other names and with past dates
//! are made with rcgen and served by the same Dovecot after a reload.

mod support;

use ferry_testkit::proxy::{FaultProxy, Faults};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, Setup};

/// A server with a fault proxy in front and a config for ferry that
/// connects through the proxy.
struct Case {
    setup: Setup,
    proxy: FaultProxy,
    /// Where Dovecot's log stood before ferry ran.
    log_start: usize,
}

impl Case {
    /// `tls` is the account's `tls` value (the proxy forwards to the port
    /// for it); `ca_file` keeps the config's ca_file (the kit's certificate,
    /// or the one [`serve_certificate`] put in its place).
    fn new(dovecot: Dovecot, faults: Faults, tls: &str, ca_file: bool) -> Case {
        let upstream = match tls {
            "implicit" => dovecot.imaps_addr(),
            _ => dovecot.imap_addr(),
        };
        let proxy = FaultProxy::start(upstream, faults).expect("proxy");
        let setup = Setup::with_port(dovecot, proxy.port(), "");
        let path = setup.home.path().join("config.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        let text = text.replace("tls = \"implicit\"", &format!("tls = \"{tls}\""));
        let text: String = text
            .lines()
            .filter(|line| ca_file || !line.starts_with("ca_file"))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&path, text).expect("config");
        let log_start = settled_log_length(&setup.dovecot);
        Case {
            setup,
            proxy,
            log_start,
        }
    }

    /// Runs `ferry sync -vv` and checks that it failed without sending a
    /// credential; returns the run for the case's own checks.
    fn refused(&self) -> Run {
        let run = self.setup.ferry(&["sync", "-vv"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stderr.contains("account test"),
            "names the account: {run:?}"
        );
        assert!(
            !run.stdout.contains(USER.password) && !run.stderr.contains(USER.password),
            "{run:?}"
        );
        let connections = self.proxy.connections();
        assert!(connections >= 1, "ferry connected through the proxy");
        let sent = self.proxy.recording().client_to_server_text();
        for word in ["LOGIN", "AUTHENTICATE", USER.password] {
            assert!(!sent.contains(word), "{word} was sent: {sent:?}\n{run:?}");
        }
        let log = self.log_after_disconnects(connections);
        assert!(
            !log.contains(&format!("user=<{}>", USER.name)),
            "the server saw an authentication attempt: {log}"
        );
        // Its disconnect lines name no user ("no auth attempts", or
        // "disconnected before auth was ready" just after a reload).
        assert!(log.contains("user=<>,"), "{log}");
        run
    }

    /// Dovecot's log since ferry started, once it holds a disconnect line for
    /// each of `connections` (an authentication attempt would show in them);
    /// after 10 s, whatever it holds.
    fn log_after_disconnects(&self, connections: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.setup.dovecot.log();
            let new = log.get(self.log_start..).unwrap_or_default().to_string();
            let disconnects = new.matches("imap-login: Info: Disconnected").count();
            if disconnects >= connections || Instant::now() > deadline {
                return new;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The length of Dovecot's log once the connections made so far (the kit's
/// readiness probes, [`presents`]) are logged: when it has not grown for
/// 300 ms (at most 10 s).
fn settled_log_length(dovecot: &Dovecot) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut length = dovecot.log().len();
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(300) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let now = dovecot.log().len();
        if now != length {
            length = now;
            since = Instant::now();
        }
    }
    length
}

fn dovecot() -> Dovecot {
    Dovecot::start(DovecotOptions::default()).expect("dovecot")
}

/// Replaces the server's certificate with one made from `params`, reloads
/// Dovecot, and waits until the implicit-TLS port presents it (its subject
/// is `CN=<cn>`). `cert_pem_path()` then names the new certificate (but
/// `cert_fingerprint()` still gives the kit's).
fn serve_certificate(dovecot: &Dovecot, mut params: rcgen::CertificateParams, cn: &str) {
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("certificate");
    let ssl = dovecot.dir().join("ssl");
    std::fs::write(ssl.join("cert.pem"), cert.pem()).expect("cert");
    std::fs::write(ssl.join("key.pem"), key.serialize_pem()).expect("key");
    dovecot.doveadm(&["reload"]).expect("reload");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !presents(dovecot, cn) {
        assert!(Instant::now() < deadline, "Dovecot never served {cn}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the implicit-TLS port presents a certificate for `CN=<cn>`.
fn presents(dovecot: &Dovecot, cn: &str) -> bool {
    let output = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(dovecot.imaps_addr().to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl runs");
    String::from_utf8_lossy(&output.stdout).contains(&format!("subject=CN = {cn}"))
}

/// The checks of [`Case::refused`] are not blind: through the same proxy,
/// a run that logs in shows in the recording (plaintext, `tls = "none"`)
/// and in Dovecot's log.
#[test]
fn the_checks_see_a_login_when_there_is_one() {
    let case = Case::new(dovecot(), Faults::default(), "none", false);
    let run = case.setup.ferry(&["sync"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sent = case.proxy.recording().client_to_server_text();
    assert!(
        sent.contains("AUTHENTICATE") || sent.contains("LOGIN"),
        "{sent:?}"
    );
    // Dovecot logs the login as it happens, before ferry has finished.
    let log = case.setup.dovecot.log();
    let log = log.get(case.log_start..).unwrap_or_default();
    assert!(log.contains(&format!("user=<{}>", USER.name)), "{log}");
}

#[test]
fn an_untrusted_self_signed_certificate_is_refused_naming_ca_file_and_the_fingerprint() {
    for tls in ["implicit", "starttls"] {
        let case = Case::new(dovecot(), Faults::default(), tls, false);
        let pin = case.setup.dovecot.cert_fingerprint().expect("fingerprint");
        let run = case.refused();
        assert!(run.stderr.contains("ca_file = "), "{run:?}");
        assert!(
            run.stderr.contains(&format!("tls_fingerprint = \"{pin}\"")),
            "{run:?}"
        );
    }
}

#[test]
fn a_certificate_for_another_host_name_is_refused_naming_the_host_to_use() {
    let dovecot = dovecot();
    let params =
        rcgen::CertificateParams::new(vec!["imap.example.org".to_string()]).expect("params");
    serve_certificate(&dovecot, params, "imap.example.org");
    let case = Case::new(dovecot, Faults::default(), "implicit", true);
    let run = case.refused();
    assert!(
        run.stderr
            .contains("is not valid for 127.0.0.1; it is valid for: imap.example.org"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("host = \"imap.example.org\""),
        "{run:?}"
    );
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let dovecot = dovecot();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    serve_certificate(&dovecot, params, "expired.test");
    let case = Case::new(dovecot, Faults::default(), "implicit", true);
    let run = case.refused();
    assert!(run.stderr.contains("expired on 2021-01-01"), "{run:?}");
}

#[test]
fn stripped_starttls_is_refused_naming_tls_implicit() {
    let case = Case::new(
        dovecot(),
        Faults::default().with_starttls_stripped(),
        "starttls",
        true,
    );
    let run = case.refused();
    assert!(run.stderr.contains("does not offer STARTTLS"), "{run:?}");
    assert!(run.stderr.contains("tls = \"implicit\""), "{run:?}");
}

#[test]
fn a_preauth_greeting_where_starttls_is_required_is_refused() {
    let case = Case::new(
        dovecot(),
        Faults::default().with_preauth_greeting(),
        "starttls",
        true,
    );
    let run = case.refused();
    assert!(run.stderr.contains("PREAUTH"), "{run:?}");
    assert!(run.stderr.contains("tls = \"implicit\""), "{run:?}");
}

#[test]
fn plaintext_injected_after_the_starttls_ok_is_refused() {
    let case = Case::new(
        dovecot(),
        Faults::default().with_injection_after_starttls_ok(
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n".to_vec(),
        ),
        "starttls",
        true,
    );
    let run = case.refused();
    // The proxy sends the OK and the injection in one write, so ferry
    // normally finds the bytes already read; injected bytes that arrive
    // during the handshake break the handshake instead.
    assert!(
        run.stderr
            .contains("arrived after the STARTTLS OK and before the TLS handshake")
            || run.stderr.contains("the handshake failed"),
        "{run:?}"
    );
}
