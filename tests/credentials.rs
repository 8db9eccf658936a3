//! A `password_command`'s secret stays out of argv and of every
//! environment (ferry's own and its children's), and an account whose
//! `password_command` prints nothing or fails is skipped with a clear error
//! while the other accounts sync.
//!
//! Elsewhere: traces (`-vv`) in `tests/cli.rs` and `tests/sync.rs`, the
//! state directory's modes in `tests/sync.rs`, `password_env` variables
//! kept from commands in `tests/cli.rs`.

mod support;

use ferry_testkit::{DovecotOptions, USER};
use std::path::{Path, PathBuf};
use support::{Run, Setup, message};

/// Writes `text` as the setup's config (mode 600, as [`Setup`] makes it).
fn write_config(setup: &Setup, text: &str) {
    let path = setup.home.path().join("config.toml");
    std::fs::write(path, text).expect("config");
}

/// `ferry args` with the environment [`Setup::ferry`] gives it plus `env`,
/// less the variable that holds the password there: here only
/// `password_command` knows it.
fn ferry(setup: &Setup, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = setup
        .ferry_command(&[], args)
        .env_remove("FERRY_SYNC_PW")
        .envs(env.iter().copied())
        .output()
        .expect("ferry runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A file that holds the password, for `cat` in a `password_command` (so
/// the command itself does not contain it).
fn secret_file(setup: &Setup) -> PathBuf {
    let path = setup.home.path().join("secret");
    std::fs::write(&path, format!("{}\n", USER.password)).expect("secret");
    path
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// How many messages the INBOX of the Maildir at `root` holds (0 when it
/// does not exist).
fn inbox_count(root: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .map(|sub| {
            std::fs::read_dir(root.join("INBOX").join(sub))
                .map(|dir| dir.count())
                .unwrap_or(0)
        })
        .sum()
}

/// The files of `dir` whose names end in `suffix`.
fn dumps(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// The password of an account that is not synced, in its `password_env`.
const OTHER_SECRET: &str = "other-Account-pw-42";

/// A `tunnel` account logging in with a `password_command`: the tunnel is
/// `openssl s_client` to Dovecot's implicit-TLS port (Dovecot's own imap
/// binary would answer PREAUTH, and ferry would never need the password).
/// The password command saves ferry's argv and environment and its own
/// environment, then prints the password; each tunnel (the first
/// connection, then the helpers opened once the password is known) saves
/// its environment and, again, ferry's argv and environment. None holds the
/// secret. The variable another account's `password_env` names is in
/// ferry's environment but reaches neither child.
#[test]
fn the_secret_is_in_no_argv_and_no_environment() {
    let setup = Setup::new(DovecotOptions::default());
    let mut client = setup.dovecot.client().expect("client");
    for folder in ["A", "B", "C"] {
        client.create(folder).expect("create");
        client
            .append(folder, &[], None, &message(1))
            .expect("append");
    }
    drop(client);
    let root = setup.home.path();
    let dump = root.join("dump");
    std::fs::create_dir(&dump).expect("dump dir");
    let d = dump.display();
    let password_command = format!(
        "cat /proc/$PPID/cmdline > {d}/password.ferry-cmdline; \
         cat /proc/$PPID/environ > {d}/password.ferry-environ; \
         cat /proc/self/environ > {d}/password.environ; \
         touch {d}/password-read; cat {secret}",
        secret = secret_file(&setup).display(),
    );
    let tunnel = format!(
        "n=$$; if [ -e {d}/password-read ]; then n=after-$$; fi; \
         cat /proc/$PPID/cmdline > {d}/tunnel-$n.ferry-cmdline; \
         cat /proc/$PPID/environ > {d}/tunnel-$n.ferry-environ; \
         cat /proc/self/environ > {d}/tunnel-$n.environ; \
         exec openssl s_client -quiet -connect {addr} 2>/dev/null",
        addr = setup.dovecot.imaps_addr(),
    );
    write_config(
        &setup,
        &format!(
            "state_dir = \"{root}/state\"\n[accounts.tunnelled]\ntunnel = '{tunnel}'\n\
             user = \"{user}\"\npassword_command = '{password_command}'\n\
             maildir = \"{root}/Mail\"\nconnections = 4\n\
             [accounts.other]\nhost = \"127.0.0.1\"\nuser = \"u\"\n\
             password_env = \"FERRY_OTHER_PW\"\nmaildir = \"{root}/Other\"\n",
            root = root.display(),
            user = USER.name,
        ),
    );

    let run = ferry(
        &setup,
        &["sync", "tunnelled", "-vv"],
        &[("FERRY_OTHER_PW", OTHER_SECRET)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for folder in ["A", "B", "C"] {
        assert_eq!(setup.files(folder).len(), 1, "{folder}: {run:?}");
    }
    assert!(
        !run.stdout.contains(USER.password) && !run.stderr.contains(USER.password),
        "{run:?}"
    );

    // The dumps are ferry's: its argv is `ferry sync -vv --config ...`.
    let cmdlines = dumps(&dump, ".ferry-cmdline");
    assert!(!cmdlines.is_empty());
    for path in &cmdlines {
        let cmdline = std::fs::read(path).expect("cmdline");
        assert!(
            contains(&cmdline, "sync\0tunnelled\0-vv\0--config\0"),
            "{}: {:?}",
            path.display(),
            String::from_utf8_lossy(&cmdline)
        );
    }
    let after = dumps(&dump, ".environ")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("tunnel-after-"))
        .count();
    assert!(
        after >= 1,
        "a tunnel started after the password was read: {:?}\n{run:?}",
        dumps(&dump, "")
    );
    let all = dumps(&dump, "");
    assert!(all.len() >= 6, "{all:?}");
    for path in all {
        let bytes = std::fs::read(&path).expect("dump");
        assert!(
            !contains(&bytes, USER.password),
            "the secret is in {}",
            path.display()
        );
        // The other account's password_env variable is ferry's, and no
        // child's.
        let ferrys = path.to_string_lossy().ends_with(".ferry-environ");
        assert_eq!(contains(&bytes, OTHER_SECRET), ferrys, "{}", path.display());
    }
}

/// Three accounts on one server: one whose `password_command` prints
/// nothing, one whose `password_command` fails, one that works. The run
/// syncs the third, names the other two with the reason (the failing one's
/// status and stderr, never its stdout), and exits 3: done, but some
/// accounts failed.
#[test]
fn an_empty_or_failing_password_command_skips_only_its_account() {
    let setup = Setup::new(DovecotOptions::default());
    setup.append_messages("INBOX", 1..=2, &[]);
    let root = setup.home.path();
    let account = |name: &str, password_command: &str| {
        format!(
            "[accounts.{name}]\nhost = \"127.0.0.1\"\nport = {port}\nca_file = \"{ca}\"\n\
             user = \"{user}\"\npassword_command = '{password_command}'\n\
             maildir = \"{root}/{name}\"\n",
            port = setup.dovecot.imaps_port(),
            ca = setup.dovecot.cert_pem_path().display(),
            user = USER.name,
            root = root.display(),
        )
    };
    let secret = secret_file(&setup);
    write_config(
        &setup,
        &[
            format!("state_dir = \"{}/state\"\n", root.display()),
            account("a-empty", "true"),
            account(
                "b-failing",
                "printf \"leak%s\" ed-pw; echo \"vault is locked\" >&2; exit 1",
            ),
            account("c-works", &format!("cat {}", secret.display())),
        ]
        .concat(),
    );

    let run = ferry(&setup, &["sync"], &[]);
    assert_eq!(run.code, 3, "{run:?}");
    let line = |account: &str| {
        run.stderr
            .lines()
            .find(|l| l.starts_with(&format!("ferry: account {account}: ")))
            .unwrap_or_else(|| panic!("no error for {account}: {run:?}"))
            .to_string()
    };
    let empty = line("a-empty");
    assert!(empty.contains("password_command `true`"), "{empty}");
    assert!(empty.contains("printed no password"), "{empty}");
    let failing = line("b-failing");
    assert!(failing.contains("password_command `printf"), "{failing}");
    assert!(failing.contains("exit status: 1"), "{failing}");
    assert!(failing.contains("vault is locked"), "{failing}");
    assert!(
        !run.stderr.contains("leaked-pw") && !run.stdout.contains("leaked-pw"),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains("account c-works"),
        "the working account has no error: {run:?}"
    );
    assert_eq!(inbox_count(&root.join("c-works")), 2, "{run:?}");
    for name in ["a-empty", "b-failing"] {
        assert_eq!(inbox_count(&root.join(name)), 0, "{name}: {run:?}");
    }
    let log = setup.dovecot.log();
    assert!(!log.contains("auth failed"), "{log}");
}
