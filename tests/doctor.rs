//! `ferry doctor` against a real private Dovecot: TLS, login, capabilities,
//! folders, and what it says when something is wrong.

use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `ferry doctor ARGS` with `[accounts.test]` for the test user on
/// 127.0.0.1, its password from `password_line`, plus `account` lines.
fn doctor_with(password_line: &str, account: &str, args: &[&str]) -> Run {
    let home = tempfile::tempdir().expect("home");
    let config = home.path().join("config.toml");
    let text = format!(
        "state_dir = \"{root}/state\"\n[accounts.test]\nhost = \"127.0.0.1\"\nuser = \"{user}\"\n\
         {password_line}\nmaildir = \"{root}/mail\"\n{account}",
        root = home.path().display(),
        user = USER.name,
    );
    std::fs::write(&config, text).expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["doctor", "--config"])
        .arg(&config)
        .args(args)
        .env("HOME", home.path())
        .env("FERRY_DOCTOR_PW", USER.password)
        .env_remove("FERRY_LOG")
        .output()
        .expect("ferry runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `ferry doctor` with the right password (from the environment).
fn doctor(account: &str, args: &[&str]) -> Run {
    doctor_with("password_env = \"FERRY_DOCTOR_PW\"", account, args)
}

fn implicit(dovecot: &Dovecot) -> String {
    format!(
        "port = {}\nca_file = \"{}\"\n",
        dovecot.imaps_port(),
        dovecot.cert_pem_path().display()
    )
}

#[test]
fn a_good_account_passes_with_tls_login_capabilities_and_folders() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    dovecot
        .client()
        .expect("login")
        .create("Archive")
        .expect("create");
    let run = doctor(&implicit(&dovecot), &[]);
    assert_eq!(run.code, 0, "{run:?}");
    for expected in [
        "TLSv1.3",
        "CN=127.0.0.1",
        "logged in as ferry",
        "CONDSTORE:",
        "UIDPLUS:",
        "2 folders on the server",
    ] {
        assert!(run.stdout.contains(expected), "{expected} missing: {run:?}");
    }
    let starttls = format!(
        "tls = \"starttls\"\nport = {}\nca_file = \"{}\"\n",
        dovecot.imap_port(),
        dovecot.cert_pem_path().display()
    );
    let run = doctor(&starttls, &[]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_server_without_extensions_gets_a_uidplus_warning_only() {
    let dovecot = Dovecot::start(DovecotOptions::minimal()).expect("dovecot");
    let run = doctor(&implicit(&dovecot), &[]);
    assert_eq!(run.code, 0, "warnings do not fail: {run:?}");
    assert!(run.stdout.contains("no UIDPLUS"), "{run:?}");
    assert!(run.stdout.contains("no CONDSTORE"), "{run:?}");
}

#[test]
fn an_untrusted_certificate_says_what_to_configure() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    let run = doctor(&format!("port = {}\n", dovecot.imaps_port()), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let fingerprint = dovecot.cert_fingerprint().expect("fingerprint");
    assert!(
        run.stdout.contains("ca_file") && run.stdout.contains(&fingerprint),
        "{run:?}"
    );
}

#[test]
fn a_wrong_password_fails_the_login_check() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    for auth in ["auto", "login"] {
        let account = format!("auth = \"{auth}\"\n{}", implicit(&dovecot));
        let run = doctor_with("password = \"not-the-password\"", &account, &[]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stdout.contains("login as \"ferry\" failed"), "{run:?}");
        assert!(!run.stdout.contains("not-the-password"), "{run:?}");
    }
}

#[test]
fn an_unreachable_server_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let run = doctor(&format!("port = {port}\n"), &[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("cannot connect to 127.0.0.1"),
        "{run:?}"
    );
}

#[test]
fn protocol_traces_never_show_the_password() {
    let dovecot = Dovecot::start(DovecotOptions::default()).expect("dovecot");
    for auth in ["plain", "login"] {
        let run = doctor(
            &format!("auth = \"{auth}\"\n{}", implicit(&dovecot)),
            &["-vv"],
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains("C:") && run.stderr.contains("<redacted>"),
            "no trace: {run:?}"
        );
        assert!(
            !run.stderr.contains(USER.password) && !run.stdout.contains(USER.password),
            "{run:?}"
        );
    }
}
