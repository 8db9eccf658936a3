//! `ferry sync` against hostile servers (the test kit's scripted server):
//! absurd literals, endless lines, garbage, a BYE in the middle of a
//! download, mailbox names that try to leave the Maildir. ferry must end
//! with a clear error and a nonzero exit, never panic, stay within a memory
//! limit, and write nothing outside its Maildir root (nothing at all for
//! what it refused).

use ferry_testkit::fake_server::{Script, ScriptedServer};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A config home for one account on the scripted server at `port`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(port: u16) -> Home {
        let dir = tempfile::tempdir().expect("home");
        // The Maildir root sits two levels down, so that `../../x` from it
        // would still land inside the temp dir, where the test looks.
        let config = format!(
            "state_dir = \"{root}/state\"\n[accounts.h]\nhost = \"127.0.0.1\"\nport = {port}\n\
             tls = \"none\"\nuser = \"u\"\npassword = \"p\"\ntimeout = 5\n\
             maildir = \"{root}/a/b/Mail\"\n",
            root = dir.path().display()
        );
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        Home { dir }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("a/b/Mail")
    }

    /// Runs `ferry sync` under a 1.5 GiB address-space limit and, where
    /// user namespaces are available, in a mount namespace where everything
    /// but this home is read-only, so a stray write anywhere else fails.
    fn sync(&self) -> (i32, String) {
        let mut command = match confinable() {
            true => {
                let mut command = Command::new("unshare");
                command
                    .args(["-Urm", "sh", "-c", CONFINE])
                    .arg(self.dir.path());
                command
            }
            false => {
                eprintln!("not confined: `unshare -Urm` is not available here");
                Command::new("env")
            }
        };
        let output = command
            .args(["prlimit", "--as=1610612736"])
            .arg(env!("CARGO_BIN_EXE_ferry"))
            .args(["sync", "--config"])
            .arg(self.dir.path().join("config.toml"))
            .env_remove("FERRY_LOG")
            .output()
            .expect("ferry runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let code = output.status.code().unwrap_or(-1);
        assert_ne!(code, CONFINE_FAILED, "could not confine ferry: {text}");
        (code, text)
    }

    /// Every path under the home, relative, except the config, the state
    /// and the (empty) Maildir root itself with its parents.
    fn written(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut found);
        let root = ["config.toml", "a", "a/b", "a/b/Mail"].map(Path::new);
        found.retain(|p| !p.starts_with("state") && !root.contains(&p.as_path()));
        found.sort();
        found
    }
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        found.push(path.strip_prefix(root).expect("under root").to_path_buf());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, found);
        }
    }
}

/// Makes every mount read-only except the directory `$0` (bound onto
/// itself first), then runs the rest of the arguments.
const CONFINE: &str = r#"
    mount --bind "$0" "$0" || exit 97
    for m in / /tmp /var/tmp /root /home; do
        if mountpoint -q "$m"; then mount -o remount,bind,ro "$m" || exit 97; fi
    done
    touch /ferry-confinement-check 2>/dev/null && exit 97
    exec "$@"
"#;

/// The exit status of [`CONFINE`] when it could not confine.
const CONFINE_FAILED: i32 = 97;

/// Whether `unshare -Urm` works here (user and mount namespaces).
fn confinable() -> bool {
    Command::new("unshare")
        .args(["-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Greeting, login, and the delimiter: what every run starts with.
fn logged_in() -> Script {
    Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hostile\r\n")
        .expect("AUTHENTICATE PLAIN*")
        .send(b"{tag} OK logged in\r\n")
        .expect("CAPABILITY")
        .send(b"* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n")
        .expect("LIST \"\" \"\"")
        .send(b"* LIST (\\Noselect) \"/\" \"\"\r\n{tag} OK\r\n")
}

/// Runs ferry against `script`; checks it failed cleanly and, when
/// `whole`, that the script ran to its end (ferry got as far as the test
/// meant).
fn run(script: Script, whole: bool) -> (Home, i32, String) {
    let server = ScriptedServer::start(script).expect("server");
    let home = Home::new(server.port());
    let (code, text) = home.sync();
    let report = server.finish();
    assert!(
        !whole || report.succeeded(),
        "{:?}\n{text}",
        report.received_text()
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_ne!(code, 0, "{text}");
    assert!(code > 0 && code < 128, "killed by a signal? {code}: {text}");
    (home, code, text)
}

/// Runs ferry against `script`: it must fail saying `says`, with nothing
/// written beyond the empty Maildir root.
fn refused_with_nothing_written(script: Script, says: &str) {
    let (home, _, text) = run(script, true);
    assert!(text.contains(says), "{text}");
    assert!(home.written().is_empty(), "{:?}", home.written());
}

#[test]
fn an_absurd_literal_in_a_listing_is_refused_before_anything_is_written() {
    let script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" {4294967295}\r\n")
        .send_forever(vec![b'x'; 65536]);
    refused_with_nothing_written(script, "safety limit");
}

#[test]
fn an_endless_line_is_refused_before_anything_is_written() {
    let script = Script::new()
        .send(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ")
        .send_forever(vec![b'a'; 65536]);
    refused_with_nothing_written(script, "safety limit");
}

#[test]
fn garbage_instead_of_a_greeting_is_a_clear_error() {
    let script = Script::new().send(b"\x00\xff\x17 HTTP/1.1 400 Bad Request\r\n\r\n");
    refused_with_nothing_written(script, "protocol");
}

#[test]
fn a_bye_in_the_middle_of_a_download_leaves_no_file() {
    let script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX *")
        .send(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n{tag} OK\r\n")
        .expect("SELECT INBOX*")
        .send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\n{tag} OK [READ-WRITE] ok\r\n")
        .expect("UID FETCH 1:* *")
        .send(b"* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 40 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <a@b.test>\r\n\r\n)\r\n{tag} OK\r\n")
        .expect("UID FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
        .send(b"* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"26-Nov-2026 10:00:00 +0000\" RFC822.SIZE 40)\r\n{tag} OK\r\n")
        .expect("UID FETCH 1 (UID BODY.PEEK[])")
        .send(b"* 1 FETCH (UID 1 BODY[] {40}\r\nMessage-ID: <a@b.test>\r\n\r\nhal")
        .send(b"\r\n* BYE going away\r\n");
    let (home, _, text) = run(script, true);
    let inbox = home.maildir().join("INBOX");
    for sub in ["new", "cur", "tmp"] {
        let entries = std::fs::read_dir(inbox.join(sub)).map_or(0, Iterator::count);
        assert_eq!(entries, 0, "{sub}: {text}");
    }
}

#[test]
fn mailbox_names_that_try_to_leave_the_maildir_are_refused_or_escaped() {
    let long = "n".repeat(5000);
    let mut listing = Vec::new();
    for name in [
        "INBOX",
        "../../x",
        "INBOX/../../y",
        "/abs",
        "a//b",
        ".hidden",
        "cur",
        "&Jjo",
        "tmp/new",
        long.as_str(),
    ] {
        listing.extend_from_slice(
            format!("* LIST () \"/\" {{{}}}\r\n{name}\r\n", name.len()).as_bytes(),
        );
    }
    for raw in [&b"nul\0name"[..], b"new\nline", b"car\rriage"] {
        listing.extend_from_slice(format!("* LIST () \"/\" {{{}}}\r\n", raw.len()).as_bytes());
        listing.extend_from_slice(raw);
        listing.extend_from_slice(b"\r\n");
    }
    listing.extend_from_slice(b"{tag} OK\r\n");
    // Whatever ferry asks next (STATUS, SELECT...) gets a bare OK; then the
    // server hangs up.
    let mut script = logged_in().expect("LIST \"\" \"*\"").send(listing);
    for _ in 0..40 {
        script = script.expect("*").send(b"{tag} OK\r\n");
    }
    let (home, _, text) = run(script, false);
    let outside: Vec<PathBuf> = (home.written().into_iter())
        .filter(|p| !p.starts_with("a/b/Mail"))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the Maildir: {outside:?}\n{text}"
    );
    assert!(!Path::new("/abs").exists());
    let escaped_badly: Vec<PathBuf> = home
        .written()
        .into_iter()
        .filter(|p| {
            p.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.contains(['\0', '\n', '\r']) || c.len() > 255
            })
        })
        .collect();
    assert!(escaped_badly.is_empty(), "{escaped_badly:?}\n{text}");
}

/// A listing past the first download that names one UID twice (with two
/// different messages) and unsolicited FETCH responses for UIDs nobody
/// asked about: ferry stores at most one file per UID, never a message
/// under another's UID, and ends cleanly.
#[test]
fn duplicate_and_unsolicited_uids_never_make_two_files_of_one_uid() {
    let listing = b"* 1 FETCH (UID 1 FLAGS (\\Seen) RFC822.SIZE 45 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <a@b.test>\r\n\r\n)\r\n\
* 2 FETCH (UID 1 FLAGS () RFC822.SIZE 44 BODY[HEADER.FIELDS (MESSAGE-ID)] {30}\r\nMessage-ID: <dupe@b.test>\r\n\r\n)\r\n\
* 3 FETCH (UID 2 FLAGS () RFC822.SIZE 40 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <c@b.test>\r\n\r\n)\r\n\
* 9 FETCH (UID 99 FLAGS (\\Deleted))\r\n{tag} OK\r\n";
    let mut script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX *")
        .send(b"* STATUS INBOX (MESSAGES 3 UIDNEXT 3 UIDVALIDITY 7)\r\n{tag} OK\r\n")
        .expect("SELECT INBOX*")
        .send(b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 3] n\r\n{tag} OK [READ-WRITE] ok\r\n")
        .expect("UID FETCH 1:* *")
        .send(listing);
    // Whatever ferry asks next gets an answer that names UID 1 and an
    // unknown UID again, then OK.
    for _ in 0..20 {
        script = script.expect("*").send(
            b"* 8 FETCH (UID 77 FLAGS (\\Seen))\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) INTERNALDATE \"26-Nov-2026 10:00:00 +0000\" RFC822.SIZE 45 BODY[] {45}\r\nMessage-ID: <a@b.test>\r\n\r\nhallo, body of a.\r\n)\r\n{tag} OK\r\n",
        );
    }
    let server = ScriptedServer::start(script).expect("server");
    let home = Home::new(server.port());
    let (code, text) = home.sync();
    let report = server.finish();
    assert!(!text.contains("panicked"), "{text}");
    // UID 2 vanished from the metadata answer: that message failed.
    assert_eq!(code, 3, "{text}\n{:?}", report.received_text());
    let inbox = home.maildir().join("INBOX");
    let mut files = Vec::new();
    for sub in ["new", "cur", "tmp"] {
        for entry in std::fs::read_dir(inbox.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push((
                sub,
                std::fs::read_to_string(entry.path()).unwrap_or_default(),
            ));
        }
    }
    assert!(
        files.iter().all(|(sub, _)| *sub != "tmp"),
        "{files:?}\n{text}"
    );
    assert!(files.len() <= 2, "{files:?}\n{text}");
    assert!(
        files
            .iter()
            .filter(|(_, body)| body.contains("<a@b.test>"))
            .count()
            <= 1,
        "{files:?}\n{text}"
    );
    assert!(
        files
            .iter()
            .all(|(_, body)| !body.contains("<dupe@b.test>") && !body.contains("<c@b.test>")),
        "only UID 1's body was ever sent: {files:?}\n{text}"
    );
}
