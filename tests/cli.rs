//! End-to-end tests of the `ferry` binary: config loading, exit codes and
//! `ferry doctor`, run as a user would, in a temp directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp home with a Maildir, a state dir and a config file.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("mail")).expect("mail dir");
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `[accounts.work]` with an inline password, plus `extra` lines.
    fn account(&self, extra: &str) -> String {
        format!(
            "state_dir = \"{root}/state\"\n\n[accounts.work]\nhost = \"imap.example.com\"\nuser = \"me@example.com\"\n{extra}maildir = \"{root}/mail\"\n",
            root = self.path().display()
        )
    }

    /// Writes `text` as `config.toml` (mode 600) and returns its path.
    fn config(&self, text: &str) -> PathBuf {
        let path = self.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// `ferry` with `args`, HOME in the temp dir and no outside settings.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command
            .args(args)
            .env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("FERRY_CONFIG")
            .env_remove("FERRY_LOG")
            .env_remove("FERRY_TEST_PW");
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("ferry runs"))
    }

    /// `ferry doctor --config <config.toml> args...`.
    fn doctor(&self, args: &[&str]) -> Run {
        let config = self.path().join("config.toml");
        let config = config.to_str().expect("utf-8 path");
        let mut all = vec!["doctor", "--no-connect", "--config", config];
        all.extend_from_slice(args);
        self.run(&all)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exited"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
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

#[test]
fn doctor_passes_on_a_good_account() {
    let home = Home::new();
    home.config(&home.account("password = \"pw\"\n"));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("account work"), "{run:?}");
    assert!(run.stdout.contains("exists and is writable"), "{run:?}");
    assert!(
        run.stdout.contains("1 account: 0 errors, 0 warnings"),
        "{run:?}"
    );
    assert!(run.stderr.is_empty(), "{run:?}");
}

#[test]
fn a_full_config_is_accepted() {
    let home = Home::new();
    let extra = "port = 1993\ntls = \"starttls\"\ntls_fingerprint = \"sha256:".to_string()
        + &"0f".repeat(32)
        + "\"\npassword_env = \"FERRY_TEST_PW\"\nauth = \"plain\"\nlayout = \"maildir++\"\n\
           folders = [\"*\", \"!Spam\"]\nfolder_map = { \"[Gmail]/Sent Mail\" = \"Sent\" }\n\
           sync = \"pull\"\ncreate = \"near\"\nremove = \"none\"\nexpunge = \"far\"\n\
           max_size = \"50M\"\nconnections = 2\ncompress = \"never\"\ntimeout = 60\nconnect_timeout = 10\n";
    home.config(&home.account(&extra));
    let run = Run::from(
        home.command(&[
            "doctor",
            "--no-connect",
            "--config",
            &home.path().join("config.toml").display().to_string(),
        ])
        .env("FERRY_TEST_PW", "from-env")
        .output()
        .expect("runs"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("imap.example.com:1993 with STARTTLS, certificate pinned to sha256:0f0f"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("$FERRY_TEST_PW gives a password"),
        "{run:?}"
    );
    assert!(run.stdout.contains("maildir++ layout"), "{run:?}");
}

#[test]
fn config_before_or_after_the_subcommand() {
    let home = Home::new();
    let config = home.config(&home.account("password = \"pw\"\n"));
    let config = config.to_str().expect("utf-8");
    for args in [
        &["--config", config, "doctor", "--no-connect"][..],
        &["doctor", "--no-connect", "--config", config][..],
        &["doctor", "work", "--config", config, "--no-connect"][..],
    ] {
        let run = home.run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
}

#[test]
fn the_default_config_is_under_xdg_config_home_or_home() {
    let home = Home::new();
    let text = home.account("password = \"pw\"\n");
    let run = home.run(&["doctor", "--no-connect"]);
    assert_eq!(run.code, 2, "{run:?}");
    let default = home.path().join(".config/ferry/config.toml");
    assert!(
        run.stderr.contains(&default.display().to_string()),
        "{run:?}"
    );

    std::fs::create_dir_all(default.parent().expect("parent")).expect("mkdir");
    std::fs::write(&default, &text).expect("write");
    assert_eq!(home.run(&["doctor", "--no-connect"]).code, 0);

    let xdg = home.path().join("xdg");
    let run = Run::from(
        home.command(&["doctor", "--no-connect"])
            .env("XDG_CONFIG_HOME", &xdg)
            .output()
            .expect("runs"),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(&xdg.join("ferry/config.toml").display().to_string()),
        "{run:?}"
    );
}

#[test]
fn a_missing_config_file_exits_2_naming_it_with_an_example() {
    let home = Home::new();
    let run = home.doctor(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    let path = home.path().join("config.toml");
    assert!(
        run.stderr
            .starts_with(&format!("ferry: no config file at {}", path.display())),
        "{run:?}"
    );
    assert!(run.stderr.contains("[accounts.work]"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn an_unknown_key_exits_2_naming_key_table_and_line() {
    let home = Home::new();
    let path = home.config(
        &home
            .account("password = \"pw\"\n")
            .replace("host =", "hots ="),
    );
    let run = home.doctor(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    let want = format!(
        "ferry: {}:4: unknown key \"hots\" in [accounts.work]; expected one of `host`,",
        path.display()
    );
    assert!(run.stderr.starts_with(&want), "{run:?}");
}

#[test]
fn a_bad_tls_value_exits_2_naming_key_and_line() {
    let home = Home::new();
    let path = home.config(&home.account("password = \"pw\"\ntls = \"ssl\"\n"));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    let want = format!(
        "ferry: {}:7: bad value for \"tls\" in [accounts.work]: unknown variant `ssl`, expected one of `implicit`, `starttls`, `none`",
        path.display()
    );
    assert_eq!(run.stderr.trim_end(), want, "{run:?}");
}

#[test]
fn two_password_sources_exit_2() {
    let home = Home::new();
    home.config(&home.account("password = \"pw\"\npassword_env = \"X\"\n"));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr
            .contains(":7: [accounts.work] has both \"password\" and \"password_env\""),
        "{run:?}"
    );
}

#[test]
fn password_command_takes_the_first_line() {
    let home = Home::new();
    home.config(&home.account("password_command = \"printf 'first\\\\nsecond\\\\n'\"\n"));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("gives a password for user me@example.com"),
        "{run:?}"
    );
}

#[test]
fn a_failing_password_command_names_status_and_stderr_never_stdout() {
    let home = Home::new();
    home.config(&home.account(
        "password_command = \"printf 'leak%s' ed-secret; echo 'gpg: no secret key' >&2; exit 7\"\n",
    ));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("account work: password_command"),
        "{run:?}"
    );
    assert!(run.stdout.contains("exit status: 7"), "{run:?}");
    assert!(run.stdout.contains("gpg: no secret key"), "{run:?}");
    assert!(run.stdout.contains("fix: run `"), "{run:?}");
    assert!(
        !run.stdout.contains("leaked-secret") && !run.stderr.contains("leaked-secret"),
        "{run:?}"
    );
}

#[test]
fn an_unset_password_env_fails_naming_the_variable() {
    let home = Home::new();
    home.config(&home.account("password_env = \"FERRY_TEST_PW\"\n"));
    let run = home.doctor(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("$FERRY_TEST_PW, which is not set or empty"),
        "{run:?}"
    );
}

#[test]
fn password_env_variables_do_not_reach_commands() {
    let home = Home::new();
    let mut text = home.account("password_env = \"FERRY_TEST_PW\"\n");
    text.push_str(&format!(
        "\n[accounts.other]\nhost = \"h\"\nuser = \"u\"\nmaildir = \"{}/mail\"\n\
         password_command = \"if [ -n \\\"${{FERRY_TEST_PW+x}}\\\" ]; then echo leaked >&2; exit 1; fi; echo pw\"\n",
        home.path().display()
    ));
    home.config(&text);
    let config = home.path().join("config.toml");
    let run = Run::from(
        home.command(&[
            "doctor",
            "--no-connect",
            "--config",
            config.to_str().expect("utf-8"),
        ])
        .env("FERRY_TEST_PW", "s3cret")
        .output()
        .expect("runs"),
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_maildir_whose_parent_is_missing_fails_with_what_to_do() {
    let home = Home::new();
    let text = home
        .account("password = \"pw\"\n")
        .replace("/mail\"", "/gone/mail\"");
    home.config(&text);
    let run = home.doctor(&[]);
    assert_eq!(run.code, 1, "{run:?}");
    let maildir = home.path().join("gone/mail");
    assert!(run.stdout.contains("error    maildir"), "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "fix: create it with `mkdir -p {}`",
            maildir.display()
        )),
        "{run:?}"
    );
}

#[test]
fn a_maildir_that_will_be_created_is_fine() {
    let home = Home::new();
    home.config(
        &home
            .account("password = \"pw\"\n")
            .replace("/mail\"", "/mail/work\""),
    );
    let run = home.doctor(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("does not exist yet; the first sync creates it"),
        "{run:?}"
    );
}

#[test]
fn an_unknown_account_exits_2_listing_the_known_ones() {
    let home = Home::new();
    let path = home.config(&home.account("password = \"pw\"\n"));
    let run = home.doctor(&["work", "play"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "ferry: no account \"play\" in {}; the accounts are: work",
            path.display()
        )
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = Home::new();
    assert_eq!(home.run(&["doctor", "--no-such-flag"]).code, 2);
    assert_eq!(home.run(&["no-such-command"]).code, 2);
    assert_eq!(home.run(&[]).code, 2);
    assert_eq!(home.run(&["-v", "-q", "doctor"]).code, 2);
    assert_eq!(home.run(&["--version"]).code, 0);
}

#[test]
fn warnings_do_not_fail_the_doctor() {
    let home = Home::new();
    let path = home.config(&home.account("password = \"pw\"\ntls = \"none\"\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let run = home.doctor(&[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("warning  server    tls = \"none\""),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("readable by everyone (mode 644)"),
        "{run:?}"
    );
    assert!(run.stdout.contains("fix: run `chmod 600"), "{run:?}");

    let quiet = home.doctor(&["-q"]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    assert!(!quiet.stdout.contains("ok "), "{quiet:?}");
    assert!(quiet.stdout.contains("warning"), "{quiet:?}");
}

#[test]
fn json_report() {
    let home = Home::new();
    let mut text = home.account("password = \"pw\"\n");
    text.push_str("\n[accounts.broken]\nhost = \"h\"\nuser = \"u\"\npassword_env = \"FERRY_TEST_PW\"\nmaildir = \"/nonexistent/ferry/mail\"\n");
    home.config(&text);
    let run = home.doctor(&["--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["status"], "error");
    let accounts = report["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["account"], "work");
    assert_eq!(accounts[0]["status"], "ok");
    assert_eq!(accounts[1]["account"], "broken");
    assert_eq!(accounts[1]["status"], "error");
    let failed: Vec<&str> = accounts[1]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "error")
        .map(|c| c["check"].as_str().expect("name"))
        .collect();
    assert_eq!(failed, ["password", "maildir"]);
}

#[test]
fn verbose_output_never_shows_the_password() {
    const SECRET: &str = "hunter2-SECRET";
    let home = Home::new();
    let mut text = home.account(&format!("password = \"{SECRET}\"\n"));
    text.push_str(&format!(
        "\n[accounts.cmd]\nhost = \"h\"\nuser = \"u\"\npassword_command = \"printf '%s%s' hunter2 -SECRET\"\nmaildir = \"{}/mail\"\n",
        home.path().display()
    ));
    home.config(&text);
    for args in [&["-vv"][..], &["-vv", "--json"][..], &["-v"][..]] {
        let run = home.doctor(args);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(run.stderr.contains("config loaded"), "logs are on: {run:?}");
        if args.contains(&"-vv") {
            assert!(
                run.stderr.contains("account settings"),
                "traces are on: {run:?}"
            );
        }
        assert!(!run.stdout.contains(SECRET), "{run:?}");
        assert!(!run.stderr.contains(SECRET), "{run:?}");
    }
}
