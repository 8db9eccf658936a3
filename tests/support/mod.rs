//! Shared by the end-to-end tests: a private Dovecot, a home directory with
//! a config for it, and the `ferry` binary run against both.
#![allow(dead_code)]

use ferry_testkit::{Dovecot, DovecotOptions, USER};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Setup {
    pub dovecot: Dovecot,
    pub home: tempfile::TempDir,
}

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
        let setup = Setup {
            dovecot,
            home: tempfile::tempdir().expect("home"),
        };
        let config = format!(
            "state_dir = \"{root}/state\"\n[accounts.test]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\n\
             ca_file = \"{ca}\"\nuser = \"{user}\"\npassword_env = \"FERRY_SYNC_PW\"\nmaildir = \"{root}/Mail\"\n{extra}",
            root = setup.home.path().display(),
            port = setup.dovecot.imaps_port(),
            ca = setup.dovecot.cert_pem_path().display(),
            user = USER.name,
        );
        let path = setup.home.path().join("config.toml");
        std::fs::write(&path, config).expect("config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        setup
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

    pub fn ferry(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .arg("--config")
            .arg(self.home.path().join("config.toml"))
            .env("HOME", self.home.path())
            .env("FERRY_SYNC_PW", USER.password)
            .env_remove("FERRY_LOG")
            .output()
            .expect("ferry runs");
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

pub fn read_subject(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(!text.contains('\r'), "files are stored with LF");
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        .unwrap_or_default()
}
