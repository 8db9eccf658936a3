//! Where an account's password comes from, and reading it at the moment it
//! is needed.
//!
//! The secret goes straight into a [`Secret`]; it never appears in an error
//! message, a log line, argv or a child's environment. `password_command`
//! runs under `sh -c` with stdin closed and every `password_env` variable of
//! the config removed from its environment; only the first line of its
//! output is used.

use anyhow::{Context, anyhow, bail};
use ferry_imap::Secret;
use std::ffi::OsString;
use std::process::{Command, Stdio};

/// One account's password source: exactly one of the three keys.
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// `password_command = "..."`: run with `sh -c`, first line of stdout.
    Command(String),
    /// `password = "..."`: inline in the config file.
    Inline(Secret),
    /// `password_env = "VAR"`: read from the environment.
    Env(String),
}

impl PasswordSource {
    /// The config key this source was written with.
    pub fn key(&self) -> &'static str {
        match self {
            PasswordSource::Command(_) => "password_command",
            PasswordSource::Inline(_) => "password",
            PasswordSource::Env(_) => "password_env",
        }
    }
}

/// The most stderr of a failed `password_command` an error quotes.
const MAX_STDERR: usize = 2000;

/// Reads the secret of `account` from `source`. `env` looks up environment
/// variables (`std::env::var_os` outside tests); `scrub` names variables
/// that must not reach a child.
pub(super) fn resolve(
    account: &str,
    source: &PasswordSource,
    env: &dyn Fn(&str) -> Option<OsString>,
    scrub: &[String],
) -> anyhow::Result<Secret> {
    match source {
        PasswordSource::Inline(secret) => Ok(secret.clone()),
        PasswordSource::Env(var) => {
            let value = env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                anyhow!("account {account}: password_env names ${var}, which is not set or empty")
            })?;
            let value = value.into_string().map_err(|_| {
                anyhow!("account {account}: ${var} (password_env) is not valid UTF-8")
            })?;
            Ok(Secret::new(value))
        }
        PasswordSource::Command(command) => run_password_command(account, command, scrub),
    }
}

/// A `sh -c COMMAND` with stdin closed and the secret-bearing variables
/// `scrub` removed from its environment.
pub(super) fn shell_command(command: &str, scrub: &[String]) -> Command {
    let mut child = Command::new("sh");
    child.arg("-c").arg(command).stdin(Stdio::null());
    for var in scrub {
        child.env_remove(var);
    }
    child
}

fn run_password_command(account: &str, command: &str, scrub: &[String]) -> anyhow::Result<Secret> {
    let output = shell_command(command, scrub)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| {
            format!("account {account}: cannot run password_command `{command}` with sh")
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim();
    let said = if stderr.is_empty() {
        String::from("it printed nothing on stderr")
    } else {
        let cut = stderr
            .char_indices()
            .nth(MAX_STDERR)
            .map_or(stderr, |(at, _)| &stderr[..at]);
        format!("stderr: {cut}")
    };
    if !output.status.success() {
        bail!(
            "account {account}: password_command `{command}` failed ({}); {said}",
            output.status
        );
    }
    let stdout = output.stdout;
    let first = stdout.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.is_empty() {
        bail!(
            "account {account}: password_command `{command}` printed no password on the first \
             line of its output ({}; {said})",
            output.status
        );
    }
    let secret = String::from_utf8(first.to_vec()).map_err(|_| {
        anyhow!(
            "account {account}: password_command `{command}` printed a first line that is not UTF-8"
        )
    })?;
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    fn command(cmd: &str) -> anyhow::Result<Secret> {
        resolve("work", &PasswordSource::Command(cmd.into()), &no_env, &[])
    }

    #[test]
    fn command_gives_its_first_line() {
        let secret = command("printf 'pa ss\\nsecond\\n'").expect("runs");
        assert_eq!(secret.expose(), "pa ss");
        let secret = command("printf 'crlf\\r\\n'").expect("runs");
        assert_eq!(secret.expose(), "crlf");
        let secret = command("printf 'no-newline'").expect("runs");
        assert_eq!(secret.expose(), "no-newline");
    }

    #[test]
    fn failing_command_names_status_and_stderr_but_never_stdout() {
        let err = command("printf 's3cret-%s' out; echo 'gpg: decryption failed' >&2; exit 3")
            .expect_err("fails");
        let text = format!("{err:#}");
        assert!(text.contains("account work"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("gpg: decryption failed"), "{text}");
        assert!(!text.contains("s3cret-out"), "{text}");
    }

    #[test]
    fn empty_output_is_an_error() {
        let text = format!("{:#}", command("true").expect_err("empty"));
        assert!(text.contains("printed no password"), "{text}");
        let text = format!("{:#}", command("printf '\\nsec%s' ond").expect_err("empty"));
        assert!(
            text.contains("printed no password") && !text.contains("second"),
            "{text}"
        );
    }

    #[test]
    fn command_has_no_stdin_and_no_secret_variables() {
        let secret = resolve(
            "work",
            &PasswordSource::Command("cat; echo \"x${HOME-unset}\"".into()),
            &no_env,
            &["HOME".into()],
        )
        .expect("runs");
        assert_eq!(secret.expose(), "xunset");
    }

    #[test]
    fn env_source() {
        let env = |var: &str| (var == "MAILPW").then(|| OsString::from("from-env"));
        let secret =
            resolve("work", &PasswordSource::Env("MAILPW".into()), &env, &[]).expect("set");
        assert_eq!(secret.expose(), "from-env");
        let err =
            resolve("work", &PasswordSource::Env("OTHER".into()), &env, &[]).expect_err("unset");
        assert!(format!("{err}").contains("$OTHER"), "{err}");
        let empty = |_: &str| Some(OsString::new());
        let err =
            resolve("work", &PasswordSource::Env("EMPTY".into()), &empty, &[]).expect_err("empty");
        assert!(format!("{err}").contains("$EMPTY"), "{err}");
    }
}
