//! Shared by the end-to-end tests: a private Dovecot, a home directory with
//! a config for it, and the `ferry` binary run against both.
#![allow(dead_code)]

use ferry_testkit::proxy::{FaultProxy, Faults};
use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Setup {
    pub dovecot: Dovecot,
    pub home: tempfile::TempDir,
}

/// The summary's total line of a run that did nothing.
pub const NOTHING_DONE: &str = "total: pulled 0, pushed 0, flags 0, moved 0, deleted 0";

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
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

pub fn message(n: u32) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: message {n}\r\nMessage-ID: <m{n}@sync.test>\r\n\
         Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nbody of message {n}\r\n"
    )
    .into_bytes()
}

impl Setup {
    pub fn new(options: DovecotOptions) -> Setup {
        Setup::with(Dovecot::start(options).expect("dovecot"))
    }

    pub fn with(dovecot: Dovecot) -> Setup {
        Setup::with_extra(dovecot, "")
    }

    /// With `extra` lines added to the account.
    pub fn with_extra(dovecot: Dovecot, extra: &str) -> Setup {
        let port = dovecot.imaps_port();
        Setup::with_port(dovecot, port, extra)
    }

    /// Like [`Setup::with_extra`], but ferry connects (implicit TLS) to
    /// 127.0.0.1:`port`, e.g. a fault proxy in front of the server.
    pub fn with_port(dovecot: Dovecot, port: u16, extra: &str) -> Setup {
        let setup = Setup {
            dovecot,
            home: tempfile::tempdir().expect("home"),
        };
        let config = format!(
            "state_dir = \"{root}/state\"\n[accounts.test]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\n\
             ca_file = \"{ca}\"\nuser = \"{user}\"\npassword_env = \"FERRY_SYNC_PW\"\nmaildir = \"{root}/Mail\"\n{extra}",
            root = setup.home.path().display(),
            ca = setup.dovecot.cert_pem_path().display(),
            user = USER.name,
        );
        let path = setup.home.path().join("config.toml");
        std::fs::write(&path, config).expect("config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        setup
    }

    /// A private Dovecot started with `options` behind a proxy that adds
    /// 40 ms each way (every round trip of ferry's takes 80 ms, so a run
    /// lasts long enough for another client to act in the middle of it),
    /// and a home whose config, with `extra` lines, points ferry at the
    /// proxy. The proxy lives as long as the caller keeps it.
    pub fn distant(options: DovecotOptions, extra: &str) -> (Setup, FaultProxy) {
        let dovecot = Dovecot::start(options).expect("dovecot");
        let proxy = FaultProxy::start(
            dovecot.imaps_addr(),
            Faults::default().with_latency(Duration::from_millis(40)),
        )
        .expect("proxy");
        (Setup::with_port(dovecot, proxy.port(), extra), proxy)
    }

    /// Puts messages `numbers` ([`message`]) into `folder` on the server,
    /// with `flags`, as another client would.
    pub fn append_messages(
        &self,
        folder: &str,
        numbers: std::ops::RangeInclusive<u32>,
        flags: &[&str],
    ) {
        let mut client = self.dovecot.client().expect("client");
        for n in numbers {
            client
                .append(folder, flags, None, &message(n))
                .expect("append");
        }
    }

    /// How many messages `folder` holds on the server.
    pub fn server_count(&self, folder: &str) -> usize {
        self.dovecot.messages(USER, folder).expect("messages").len()
    }

    /// Makes a local folder (fs layout) as a mail reader would find it.
    pub fn local_folder(&self, folder: &str) {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(self.maildir().join(folder).join(sub)).expect("mkdir");
        }
    }

    pub fn maildir(&self) -> PathBuf {
        self.home.path().join("Mail")
    }

    /// The command that runs `ferry args` on this setup, as [`Setup::ferry`]
    /// runs it; `wrapper` (a program and its arguments, e.g.
    /// `/usr/bin/time -f %M`) runs the binary when given.
    pub fn ferry_command(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(env!("CARGO_BIN_EXE_ferry"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_ferry")),
        };
        command
            .args(args)
            .arg("--config")
            .arg(self.home.path().join("config.toml"))
            .env("HOME", self.home.path())
            .env("FERRY_SYNC_PW", USER.password)
            .env_remove("FERRY_LOG");
        command
    }

    pub fn ferry(&self, args: &[&str]) -> Run {
        let output = self.ferry_command(&[], args).output().expect("ferry runs");
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn sync(&self) -> Run {
        let run = self.ferry(&["sync"]);
        assert_eq!(run.code, 0, "{run:?}");
        run
    }

    /// `ferry sync -vv` on `setup`, with `act` called on each line of its
    /// trace as the line arrives (to act as another client at that point).
    pub fn ferry_acting(&self, mut act: impl FnMut(&str)) -> Run {
        let mut child = self
            .ferry_command(&[], &["sync", "-vv"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ferry runs");
        let stdout = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stdout).read_to_string(&mut text);
            text
        });
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr_lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let line = match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => line,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    assert!(Instant::now() < deadline, "ferry hangs");
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            act(&line);
            stderr_lines.push(line);
        }
        let status = child.wait().expect("ferry ends");
        Run {
            code: status.code().expect("exit code"),
            stdout: stdout.join().expect("stdout"),
            stderr: stderr_lines.join("\n"),
        }
    }

    /// The files of a local folder: (unique key, info letters).
    pub fn files(&self, folder: &str) -> Vec<(String, String, PathBuf)> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.maildir().join(folder).join(sub);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let (key, info) = name
                    .split_once(":2,")
                    .map_or((name.clone(), String::new()), |(k, i)| (k.into(), i.into()));
                out.push((key, info, entry.path()));
            }
        }
        out.sort();
        out
    }
}

/// IMAP flag names as the Maildir info letters, sorted.
pub fn maildir_letters(flags: &[String]) -> String {
    let letter = |flag: &str| match flag {
        "\\Draft" => Some('D'),
        "\\Flagged" => Some('F'),
        "$Forwarded" => Some('P'),
        "\\Answered" => Some('R'),
        "\\Seen" => Some('S'),
        "\\Deleted" => Some('T'),
        _ => None,
    };
    let mut letters: Vec<char> = flags.iter().filter_map(|f| letter(f)).collect();
    letters.sort();
    letters.into_iter().collect()
}

/// The Message-ID header of a local file, angle brackets included.
pub fn message_id_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    let id = text.lines().find_map(|l| l.strip_prefix("Message-ID: "));
    id.unwrap_or_default().to_string()
}

/// Rewrites the config file at `path` line by line with `edit`.
pub fn edit_config(path: &Path, edit: impl Fn(&str) -> Option<String>) {
    let config = std::fs::read_to_string(path).expect("config");
    let config: String = config
        .lines()
        .filter_map(|line| edit(line).map(|l| l + "\n"))
        .collect();
    std::fs::write(path, config).expect("config");
}

/// Points the config at `path` at 127.0.0.1:`port`.
pub fn set_port(path: &Path, port: u16) {
    edit_config(path, |line| match line.starts_with("port = ") {
        true => Some(format!("port = {port}")),
        false => Some(line.to_string()),
    });
}

pub fn read_subject(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(!text.contains('\r'), "files are stored with LF");
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        .unwrap_or_default()
}

/// The INTERNALDATE (Unix seconds) of each message of `mailbox`, by UID.
pub fn internal_dates(dovecot: &Dovecot, mailbox: &str) -> Vec<(u32, i64)> {
    let out = dovecot
        .doveadm(&[
            "-f",
            "tab",
            "fetch",
            "-u",
            USER.name,
            "uid date.received.unixtime",
            "mailbox",
            mailbox,
        ])
        .expect("doveadm fetch");
    out.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (uid, date) = l.split_once('\t').expect("two fields");
            (
                uid.trim().parse().expect("uid"),
                date.trim().parse().expect("unix time"),
            )
        })
        .collect()
}

/// Stores the message in `file` into `mailbox` of [`USER`] with `doveadm
/// save`, streamed from the file (for messages too large to hold twice).
pub fn save_from_file(dovecot: &Dovecot, mailbox: &str, file: &Path) {
    let output = Command::new("doveadm")
        .arg("-c")
        .arg(dovecot.dir().join("dovecot.conf"))
        .args(["save", "-u", USER.name, "-m", mailbox])
        .stdin(std::fs::File::open(file).expect("message file"))
        .output()
        .expect("doveadm runs");
    assert!(
        output.status.success(),
        "doveadm save: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
