//! `ferry doctor [ACCOUNT...]`: checks an account's setup, one line per
//! check, and says for every problem what to do.
//!
//! Each check is a function that adds its findings to the account's
//! [`Report`]; the server check ([`check_server`]) is where connecting and
//! logging in belong. Exit status: 0 when nothing failed (warnings do not
//! count), 1 when a check failed; config errors never get here (exit 2).

use crate::cli::DoctorArgs;
use crate::config::{AccountConfig, Config, PasswordSource, normalize_fingerprint};
use anyhow::Context;
use ferry_engine::outcome::ExitStatus;
use ferry_imap::TlsMode;
use serde::Serialize;
use std::io::{ErrorKind, Write};
use std::path::Path;

/// How a check went. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works, but deserves attention; does not fail the doctor.
    Warning,
    /// Does not work; the doctor exits 1.
    Error,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Which check: `config`, `server`, `password`, `maildir`, `state`.
    pub check: &'static str,
    /// How it went.
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do about it (warnings and errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The findings for one account.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The account's name.
    pub account: String,
    /// The worst status of its checks.
    pub status: Status,
    /// Its findings, in the order they were made.
    pub checks: Vec<Check>,
}

impl Report {
    fn new(account: &str) -> Report {
        Report {
            account: account.to_string(),
            status: Status::Ok,
            checks: Vec::new(),
        }
    }

    fn add(&mut self, check: &'static str, status: Status, message: String, fix: Option<String>) {
        self.status = self.status.max(status);
        self.checks.push(Check {
            check,
            status,
            message,
            fix,
        });
    }

    /// Records a passed check.
    pub fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.add(check, Status::Ok, message.into(), None);
    }

    /// Records a problem that does not stop ferry.
    pub fn warning(
        &mut self,
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.add(check, Status::Warning, message.into(), Some(fix.into()));
    }

    /// Records a failed check.
    pub fn error(
        &mut self,
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.add(check, Status::Error, message.into(), Some(fix.into()));
    }
}

/// The whole doctor run, as `--json` prints it.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    config: &'a Path,
    status: Status,
    accounts: &'a [Report],
}

/// Checks `accounts` and prints the report on stdout.
pub fn run(
    config: &Config,
    accounts: &[&AccountConfig],
    args: &DoctorArgs,
    quiet: bool,
) -> anyhow::Result<ExitStatus> {
    let reports: Vec<Report> = accounts
        .iter()
        .map(|account| check_account(config, account, !args.no_connect))
        .collect();
    let status = reports.iter().map(|r| r.status).max().unwrap_or(Status::Ok);
    let mut out = std::io::stdout().lock();
    if args.json {
        let summary = Summary {
            config: &config.path,
            status,
            accounts: &reports,
        };
        serde_json::to_writer_pretty(&mut out, &summary).context("cannot write the report")?;
        writeln!(out).context("cannot write the report")?;
    } else {
        print_human(&mut out, config, &reports, quiet).context("cannot write the report")?;
    }
    Ok(if status == Status::Error {
        ExitStatus::Failed
    } else {
        ExitStatus::Done
    })
}

fn print_human(
    out: &mut impl Write,
    config: &Config,
    reports: &[Report],
    quiet: bool,
) -> std::io::Result<()> {
    for report in reports {
        let shown: Vec<&Check> = report
            .checks
            .iter()
            .filter(|check| !quiet || check.status != Status::Ok)
            .collect();
        if shown.is_empty() {
            continue;
        }
        writeln!(
            out,
            "account {} ({})",
            report.account,
            config.path.display()
        )?;
        for check in shown {
            writeln!(
                out,
                "  {:<8} {:<9} {}",
                check.status.label(),
                check.check,
                check.message
            )?;
            if let Some(fix) = &check.fix {
                writeln!(out, "  {:<8} {:<9} fix: {fix}", "", "")?;
            }
        }
    }
    let count = |status| {
        reports
            .iter()
            .flat_map(|r| &r.checks)
            .filter(|c| c.status == status)
            .count()
    };
    let (errors, warnings) = (count(Status::Error), count(Status::Warning));
    if !quiet || errors + warnings > 0 {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        writeln!(
            out,
            "{}: {}, {}",
            plural(reports.len(), "account"),
            plural(errors, "error"),
            plural(warnings, "warning"),
        )?;
    }
    Ok(())
}

/// Every check of one account.
fn check_account(config: &Config, account: &AccountConfig, connect: bool) -> Report {
    tracing::info!(account = %account.name, "checking");
    tracing::debug!(?account, "account settings");
    let mut report = Report::new(&account.name);
    check_config(config, account, &mut report);
    let settings_ok = check_server(account, &mut report);
    let credentials = check_password(account, &mut report);
    if settings_ok && connect {
        crate::doctor_server::check_connection(account, credentials, &mut report);
    }
    check_maildir(config, account, &mut report);
    check_state_dir(config, &mut report);
    report
}

fn check_config(config: &Config, account: &AccountConfig, report: &mut Report) {
    report.ok(
        "config",
        format!(
            "[accounts.{}] at line {} of {} is valid",
            account.name,
            account.line,
            config.path.display()
        ),
    );
    for warning in config.file_warnings(account) {
        report.warning("config", warning.message, warning.fix);
    }
}

/// The server settings the IMAP client will be given; returns whether they
/// are usable (connecting is [`crate::doctor_server::check_connection`]).
fn check_server(account: &AccountConfig, report: &mut Report) -> bool {
    let options = account.server_options();
    let mut problems = 0;

    if let Some(tunnel) = &options.tunnel {
        report.ok("server", format!("through the tunnel command `{tunnel}`"));
    } else if options.host.is_empty()
        || options
            .host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        problems += 1;
        report.error(
            "server",
            format!("host {:?} is not a host name or address", options.host),
            format!(
                "set host in [accounts.{}] to the server's name, like \"imap.example.com\"",
                account.name
            ),
        );
    }

    if account.sends_plaintext() {
        report.warning(
            "server",
            format!(
                "tls = \"none\": the password and all mail cross the network to {} unencrypted",
                options.host
            ),
            "use tls = \"implicit\" (port 993) or tls = \"starttls\" (port 143) if the server offers it",
        );
    }

    if let Some(ca_file) = &options.ca_file {
        match std::fs::read(ca_file) {
            Ok(pem) if contains(&pem, b"-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => {
                problems += 1;
                report.error(
                    "server",
                    format!("ca_file {} holds no PEM certificate", ca_file.display()),
                    "point ca_file at a PEM file (-----BEGIN CERTIFICATE-----) of the CA or of the server's own certificate",
                );
            }
            Err(err) => {
                problems += 1;
                report.error(
                    "server",
                    format!("cannot read ca_file {}: {err}", ca_file.display()),
                    "fix the path of ca_file or the file's permissions",
                );
            }
        }
    }

    if let Some(pin) = &options.tls_fingerprint {
        if normalize_fingerprint(pin).is_none() {
            problems += 1;
            report.error(
                "server",
                format!("tls_fingerprint {pin:?} is not a SHA-256 fingerprint"),
                "write it as \"sha256:\" and 64 hex digits, as `openssl x509 -noout -fingerprint -sha256` prints it",
            );
        }
    }

    if problems == 0 {
        let security = match (options.tls, &options.tls_fingerprint, &options.ca_file) {
            (TlsMode::None, ..) => "no TLS".to_string(),
            (tls, pin, ca) => {
                let mode = if tls == TlsMode::Implicit {
                    "implicit TLS"
                } else {
                    "STARTTLS"
                };
                match (pin, ca) {
                    (Some(pin), _) => format!("{mode}, certificate pinned to {pin}"),
                    (None, Some(ca)) => format!("{mode}, trusting {} too", ca.display()),
                    (None, None) => format!("{mode}, system trust store"),
                }
            }
        };
        let target = match &options.tunnel {
            Some(_) if options.host.is_empty() => "the tunnel".to_string(),
            Some(_) => format!("{} through the tunnel", options.host),
            None => format!("{}:{}", options.host, options.port),
        };
        report.ok("server", format!("{target} with {security}"));
    }
    problems == 0
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Resolves the password once; the credentials go on to the login check.
fn check_password(account: &AccountConfig, report: &mut Report) -> Option<ferry_imap::Credentials> {
    let Some(source) = &account.password else {
        report.ok(
            "password",
            "no user or password set: the tunnel must log in by itself (PREAUTH)",
        );
        return None;
    };
    match account.credentials() {
        Ok(credentials) => {
            let from = match source {
                PasswordSource::Command(command) => format!("password_command `{command}`"),
                PasswordSource::Inline(_) => "the config file".to_string(),
                PasswordSource::Env(var) => format!("${var}"),
            };
            report.ok(
                "password",
                format!("{from} gives a password for user {}", credentials.user),
            );
            Some(credentials)
        }
        Err(err) => {
            let fix = match source {
                PasswordSource::Command(command) => format!(
                    "run `{command}` yourself and fix it until it prints the password on its first line \
                     and exits 0 (it runs with sh -c and no input)"
                ),
                PasswordSource::Env(var) => format!(
                    "set {var} in the environment ferry runs in (cron and systemd do not read \
                     your shell's startup files), or use password_command"
                ),
                PasswordSource::Inline(_) => "set password to a non-empty string".to_string(),
            };
            report.error("password", format!("{err:#}"), fix);
            None
        }
    }
}

/// Whether the user may create and remove entries in `dir`.
fn writable(dir: &Path) -> bool {
    use rustix::fs::{Access, access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).is_ok()
}

fn check_maildir(config: &Config, account: &AccountConfig, report: &mut Report) {
    let dir = &account.maildir;
    let shown = dir.display();
    let fix_key = format!(
        "or correct maildir in [accounts.{}] ({}:{})",
        account.name,
        config.path.display(),
        account.line
    );
    let layout = account.layout.name();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() && writable(dir) => {
            report.ok(
                "maildir",
                format!("{shown} exists and is writable ({layout} layout)"),
            );
        }
        Ok(meta) if meta.is_dir() => report.error(
            "maildir",
            format!("{shown} is not writable by this user"),
            format!("give yourself write access (chmod u+w {shown}, or check its owner) {fix_key}"),
        ),
        Ok(_) => report.error(
            "maildir",
            format!("{shown} exists but is not a directory"),
            format!("move it away {fix_key}"),
        ),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            if std::fs::symlink_metadata(dir).is_ok() {
                report.error(
                    "maildir",
                    format!("{shown} is a symbolic link to something that does not exist"),
                    format!("mount or create its target {fix_key}"),
                );
                return;
            }
            let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
                report.error("maildir", format!("{shown} does not exist"), fix_key);
                return;
            };
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() && writable(parent) => report.ok(
                    "maildir",
                    format!("{shown} does not exist yet; the first sync creates it ({layout} layout)"),
                ),
                Ok(meta) if meta.is_dir() => report.error(
                    "maildir",
                    format!("{shown} does not exist and {} is not writable, so ferry cannot create it", parent.display()),
                    format!("create it yourself (mkdir {shown}) {fix_key}"),
                ),
                Ok(_) => report.error(
                    "maildir",
                    format!("{shown} cannot be created: {} is not a directory", parent.display()),
                    fix_key.trim_start_matches("or ").to_string(),
                ),
                Err(_) => report.error(
                    "maildir",
                    format!(
                        "neither {shown} nor its parent {} exists (a typo, or a disk that is not mounted?)",
                        parent.display()
                    ),
                    format!("create it with `mkdir -p {shown}` {fix_key}"),
                ),
            }
        }
        Err(err) => report.error(
            "maildir",
            format!("cannot look at {shown}: {err}"),
            format!("check the permissions of its parent directories {fix_key}"),
        ),
    }
}

fn check_state_dir(config: &Config, report: &mut Report) {
    let dir = &config.state_dir;
    let shown = dir.display();
    let fix = format!(
        "or set state_dir in {} to a directory you can write",
        config.path.display()
    );
    // The nearest directory that exists: the state dir or an ancestor.
    let Some(existing) = dir
        .ancestors()
        .find(|path| std::fs::symlink_metadata(path).is_ok())
    else {
        report.error("state", format!("no part of {shown} exists"), fix);
        return;
    };
    let is_dir = std::fs::metadata(existing).is_ok_and(|meta| meta.is_dir());
    match (existing == dir.as_path(), is_dir, writable(existing)) {
        (true, true, true) => report.ok("state", format!("{shown} exists and is writable")),
        (false, true, true) => report.ok(
            "state",
            format!("{shown} does not exist yet; the first sync creates it"),
        ),
        (_, false, _) => report.error(
            "state",
            format!(
                "{} is not a directory, so {shown} cannot be used",
                existing.display()
            ),
            format!("move {} away {fix}", existing.display()),
        ),
        (_, true, false) => report.error(
            "state",
            format!("{} is not writable by this user", existing.display()),
            format!("give yourself write access to {} {fix}", existing.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dirs;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("/cfg/config.toml"), &Dirs::default()).expect("valid")
    }

    fn account_text(maildir: &Path, extra: &str) -> String {
        format!(
            "state_dir = \"{state}\"\n[accounts.work]\nhost = \"imap.example.com\"\nuser = \"u\"\npassword = \"p\"\nmaildir = \"{maildir}\"\n{extra}",
            state = maildir.join("state").display(),
            maildir = maildir.display()
        )
    }

    fn statuses(report: &Report, check: &str) -> Vec<Status> {
        report
            .checks
            .iter()
            .filter(|c| c.check == check)
            .map(|c| c.status)
            .collect()
    }

    #[test]
    fn maildir_states() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = config(&account_text(tmp.path(), ""));
        let report = check_account(&config, &config.accounts[0], false);
        assert_eq!(report.status, Status::Ok, "{report:?}");
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.message.contains("exists and is writable"))
        );
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.check == "state" && c.message.contains("does not exist yet"))
        );

        let new = tmp.path().join("new");
        let config2 = self::config(&account_text(&new, ""));
        let report = check_account(&config2, &config2.accounts[0], false);
        assert_eq!(statuses(&report, "maildir"), [Status::Ok]);
        assert!(
            report
                .checks
                .iter()
                .any(|c| c.message.contains("the first sync creates it"))
        );

        let deep = tmp.path().join("a/b");
        let config3 = self::config(&account_text(&deep, ""));
        let report = check_account(&config3, &config3.accounts[0], false);
        assert_eq!(statuses(&report, "maildir"), [Status::Error]);
        let check = report
            .checks
            .iter()
            .find(|c| c.check == "maildir")
            .expect("maildir");
        assert!(
            check.fix.as_deref().is_some_and(|f| f.contains("mkdir -p")),
            "{check:?}"
        );

        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let config4 = self::config(&account_text(&file, ""));
        let report = check_account(&config4, &config4.accounts[0], false);
        assert_eq!(statuses(&report, "maildir"), [Status::Error]);
    }

    #[test]
    fn server_settings() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let plain = config(&account_text(tmp.path(), "tls = \"none\"\n"));
        let report = check_account(&plain, &plain.accounts[0], false);
        assert_eq!(statuses(&report, "server"), [Status::Warning, Status::Ok]);
        assert_eq!(report.status, Status::Warning);

        let ca = tmp.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("write");
        let bad_ca = config(&account_text(
            tmp.path(),
            &format!("ca_file = \"{}\"\n", ca.display()),
        ));
        let report = check_account(&bad_ca, &bad_ca.accounts[0], false);
        assert_eq!(statuses(&report, "server"), [Status::Error]);

        let missing = config(&account_text(
            tmp.path(),
            "ca_file = \"/nonexistent/ca.pem\"\n",
        ));
        let report = check_account(&missing, &missing.accounts[0], false);
        assert_eq!(statuses(&report, "server"), [Status::Error]);

        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let good_ca = config(&account_text(
            tmp.path(),
            &format!("ca_file = \"{}\"\n", ca.display()),
        ));
        let report = check_account(&good_ca, &good_ca.accounts[0], false);
        assert_eq!(statuses(&report, "server"), [Status::Ok]);
    }
}
