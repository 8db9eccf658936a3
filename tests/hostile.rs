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

    /// Points the config at the scripted server on `port` (a later run
    /// against a new server, with the same Maildir and state).
    fn set_port(&self, port: u16) {
        let path = self.dir.path().join("config.toml");
        let config = std::fs::read_to_string(&path).expect("config");
        let config: String = config
            .lines()
            .map(|line| match line.starts_with("port = ") {
                true => format!("port = {port}\n"),
                false => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&path, config).expect("config");
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

/// What ferry does with one listed server name.
enum Fate {
    /// Synced into this directory under the Maildir root.
    Local(&'static str),
    /// Listed as a folder but refused by the Maildir side, saying this.
    Refused(&'static str),
    /// Not synced at all (no local name), with this warning.
    Unsynced(&'static str),
}

/// Server names that try to leave the Maildir, collide with its own
/// directories or are not names at all, each with a realistic STATUS and
/// SELECT (the refused ones hold a message): the acceptable names get one
/// directory each, escaped where needed, all different; every other name
/// is refused with its reason, its message is never downloaded, and
/// nothing is written outside the Maildir root.
#[test]
fn mailbox_names_that_try_to_leave_the_maildir_are_refused_or_escaped() {
    let long = "n".repeat(5000);
    let dot_dot = "a component is '.' or '..'";
    let reserved = "which is a Maildir subdirectory";
    let names: Vec<(&[u8], Fate)> = vec![
        (b"INBOX", Fate::Local("INBOX")),
        (b"../../x", Fate::Refused(dot_dot)),
        (b"INBOX/../../y", Fate::Refused(dot_dot)),
        (
            b"/abs",
            Fate::Unsynced(r#""/abs" is not synced: it has an empty level"#),
        ),
        (
            b"a//b",
            Fate::Unsynced(r#""a//b" is not synced: it has an empty level"#),
        ),
        (b".hidden", Fate::Local("%2Ehidden")),
        (b"cur", Fate::Refused(reserved)),
        (
            b"&Jjo",
            Fate::Unsynced(r#""&Jjo" is not synced: it is not valid modified UTF-7"#),
        ),
        (b"tmp/new", Fate::Refused(reserved)),
        (
            long.as_bytes(),
            Fate::Refused("would be 5000 bytes, over the limit of 255"),
        ),
        (b"a/b", Fate::Local("a/b")),
        (b"50%", Fate::Local("50%25")),
        // INBOX in another case is INBOX (RFC 3501): synced once.
        (
            b"Inbox",
            Fate::Unsynced(r#""INBOX" is skipped: another folder has the same local name"#),
        ),
        (
            b"nul\0name",
            Fate::Unsynced(r#""nul\0name" is not synced: it is not valid modified UTF-7"#),
        ),
        (
            b"new\nline",
            Fate::Unsynced(r#""new\nline" is not synced: it is not valid modified UTF-7"#),
        ),
        (
            b"car\rriage",
            Fate::Unsynced(r#""car\rriage" is not synced: it is not valid modified UTF-7"#),
        ),
    ];
    let literal = |name: &[u8]| [format!("{{{}}}\r\n", name.len()).as_bytes(), name].concat();
    // A refused folder holds a message, to see that it is never fetched.
    let messages = |fate: &Fate| u32::from(matches!(fate, Fate::Refused(_)));
    let mut listing = Vec::new();
    for (name, _) in &names {
        listing.extend([b"* LIST () \"/\" ", &literal(name)[..], b"\r\n"].concat());
    }
    listing.extend_from_slice(b"{tag} OK\r\n");
    let mut script = logged_in().expect("LIST \"\" \"*\"").send(listing);
    // ferry asks the STATUS of every listed name, in order (INBOX in its
    // own spelling); a name holding a control character gets a NO.
    for (name, fate) in &names {
        let name: &[u8] = match name.eq_ignore_ascii_case(b"INBOX") {
            true => b"INBOX",
            false => name,
        };
        script = script.expect("STATUS * (MESSAGES UIDNEXT UIDVALIDITY)");
        if name.iter().any(u8::is_ascii_control) {
            script = script.send(b"{tag} NO [CANNOT] bad name\r\n");
            continue;
        }
        let n = messages(fate);
        let status = format!(
            " (MESSAGES {n} UIDNEXT {} UIDVALIDITY 7)\r\n{{tag}} OK\r\n",
            n + 1
        );
        script = script.send([&b"* STATUS "[..], &literal(name), status.as_bytes()].concat());
    }
    // Then it SELECTs every folder with a local name, sorted by it, and
    // lists the messages of those that hold any; it must not fetch a body
    // for a refused folder. (Today it SELECTs the folders the Maildir
    // refuses too: skipping them would be as good, and needs this script
    // changed.)
    let mut selected: Vec<&(&[u8], Fate)> = (names.iter())
        .filter(|(_, fate)| !matches!(fate, Fate::Unsynced(_)))
        .collect();
    selected.sort_by_key(|(name, _)| *name);
    for (name, fate) in selected {
        let n = messages(fate);
        script = script
            .expect(&format!("SELECT *{}*", String::from_utf8_lossy(name)))
            .send(format!(
                "* {n} EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT {}] n\r\n{{tag}} OK [READ-WRITE] ok\r\n",
                n + 1
            ));
        if n > 0 {
            script = script
                .expect(
                    "UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
                )
                .send(snapshot_answer(&[1]));
        }
    }
    let (home, code, text) = run(script, true);
    let text = text.replace(&long, "<5000 n>");
    assert_eq!(code, 3, "{text}");
    // No body was asked for after the script's last step either.
    assert!(text.contains("total: pulled 0,"), "{text}");
    assert!(!text.contains("connection"), "{text}");
    for (name, fate) in &names {
        let shown = String::from_utf8_lossy(name).replace(&long, "<5000 n>");
        match fate {
            Fate::Local(_) => assert!(
                !text.contains(&format!("folder name \"{shown}\" refused")),
                "{shown}: {text}"
            ),
            Fate::Refused(reason) => assert!(
                text.contains(&format!("creating folder {shown} (near): folder \"{shown}\": folder name \"{shown}\" refused: ")) && text.contains(reason),
                "{shown}: {text}"
            ),
            Fate::Unsynced(warning) => assert!(
                text.contains(&format!("server folder {warning}")),
                "{shown}: {text}"
            ),
        }
    }
    // Every directory under the root: exactly the accepted folders (with
    // their Maildir subdirectories) and the parent `a` of `a/b`.
    let mut expected: Vec<PathBuf> = vec![PathBuf::from("a/b/Mail/a")];
    for (_, fate) in &names {
        if let Fate::Local(dir) = fate {
            let dir = Path::new("a/b/Mail").join(dir);
            expected.extend(["cur", "new", "tmp"].map(|sub| dir.join(sub)));
            expected.push(dir);
        }
    }
    expected.sort();
    assert_eq!(home.written(), expected, "{text}");
    assert!(!Path::new("/abs").exists());
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

/// Login, LIST with INBOX alone, STATUS and SELECT of INBOX holding
/// `messages` messages (UIDs 1..=messages, UIDVALIDITY 7): the script up
/// to the snapshot FETCH.
fn inbox_selected(messages: u32) -> Script {
    let next = messages + 1;
    logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        .send(format!(
            "* STATUS INBOX (MESSAGES {messages} UIDNEXT {next} UIDVALIDITY 7)\r\n{{tag}} OK\r\n"
        ))
        .expect("SELECT INBOX")
        .send(format!(
            "* {messages} EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT {next}] n\r\n{{tag}} OK [READ-WRITE] ok\r\n"
        ))
}

/// The message with UID `uid`: `Message-ID: <m{uid}@b.test>` and a line.
fn message(uid: u32) -> String {
    format!("Message-ID: <m{uid}@b.test>\r\n\r\nhallo, body of message {uid}.\r\n")
}

/// The snapshot answer (flags, size, Message-ID) for `uids`, with OK.
fn snapshot_answer(uids: &[u32]) -> String {
    let mut out = String::new();
    for &uid in uids {
        let header = format!("Message-ID: <m{uid}@b.test>\r\n\r\n");
        out += &format!(
            "* {uid} FETCH (UID {uid} FLAGS () RFC822.SIZE {} BODY[HEADER.FIELDS (MESSAGE-ID)] {{{}}}\r\n{header})\r\n",
            message(uid).len(),
            header.len()
        );
    }
    out + "{tag} OK\r\n"
}

/// The metadata answer (flags, date, size) for `uids`, with OK.
fn meta_answer(uids: &[u32]) -> String {
    let mut out = String::new();
    for &uid in uids {
        out += &format!(
            "* {uid} FETCH (UID {uid} FLAGS () INTERNALDATE \"26-Nov-2026 10:00:00 +0000\" RFC822.SIZE {})\r\n",
            message(uid).len()
        );
    }
    out + "{tag} OK\r\n"
}

/// The body answer for `uid`, with OK.
fn body_answer(uid: u32) -> String {
    let body = message(uid);
    format!(
        "* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n{body})\r\n{{tag}} OK\r\n",
        body.len()
    )
}

/// The files of `folder` in the Maildir, as (subdirectory, file name,
/// content), sorted.
fn files_of(home: &Home, folder: &str) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    for sub in ["new", "cur", "tmp"] {
        let dir = home.maildir().join(folder).join(sub);
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let content = std::fs::read_to_string(entry.path()).expect("readable");
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push((sub.to_string(), name, content));
        }
    }
    files.sort();
    files
}

/// The paths [`Home::written`] lists for an INBOX without messages.
fn empty_inbox() -> Vec<PathBuf> {
    ["", "/cur", "/new", "/tmp"]
        .map(|sub| PathBuf::from(format!("a/b/Mail/INBOX{sub}")))
        .to_vec()
}

/// Runs ferry against `script`, which must run to its end: INBOX fails
/// (exit 3) saying `says`, and holds no message.
fn inbox_failed_with_no_message(script: Script, says: &str) {
    let (home, code, text) = run(script, true);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("INBOX: pulled 0,"), "{text}");
    assert!(text.contains(says), "{text}");
    assert_eq!(home.written(), empty_inbox(), "{text}");
}

/// 10,000 open parentheses in the snapshot answer: the parser stops at its
/// nesting limit (no stack overflow, no memory blow-up under the limit),
/// INBOX fails and stays empty.
#[test]
fn deep_nesting_in_the_snapshot_answer_is_refused() {
    let deep = format!("* 1 FETCH (UID 1 X {}\r\n", "(".repeat(10_000));
    let script = inbox_selected(1)
        .expect("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .send(deep);
    inbox_failed_with_no_message(script, "safety limit: nesting depth");
}

/// SELECT completed under a tag ferry never sent (`zz99 OK`): a protocol
/// error, INBOX fails and stays empty.
#[test]
fn a_select_completed_under_a_wrong_tag_is_a_protocol_error() {
    let script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        .send(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n{tag} OK\r\n")
        .expect("SELECT INBOX")
        .send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 2] n\r\nzz99 OK [READ-WRITE] ok\r\n");
    inbox_failed_with_no_message(
        script,
        "broke the IMAP protocol: a completion for a tag ferry never sent (received: \"zz99\")",
    );
}

/// UID 0 in the snapshot answer (beside a good UID 1), UIDVALIDITY 0 in
/// SELECT: INBOX fails as a protocol error and no message of it is
/// stored. UIDVALIDITY 0 in STATUS, before any folder is planned: the
/// account fails (exit 1) and nothing at all is written.
#[test]
fn uid_zero_and_uidvalidity_zero_are_refused() {
    let listing = b"* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 45 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <a@b.test>\r\n\r\n)\r\n\
* 2 FETCH (UID 0 FLAGS () RFC822.SIZE 45 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID: <z@b.test>\r\n\r\n)\r\n{tag} OK\r\n";
    let script = inbox_selected(2)
        .expect("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .send(listing);
    inbox_failed_with_no_message(script, "broke the IMAP protocol: FETCH 2 carries UID 0");

    let script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        .send(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 7)\r\n{tag} OK\r\n")
        .expect("SELECT INBOX")
        .send(b"* 1 EXISTS\r\n* OK [UIDVALIDITY 0] v\r\n* OK [UIDNEXT 2] n\r\n{tag} OK [READ-WRITE] ok\r\n");
    inbox_failed_with_no_message(script, "broke the IMAP protocol: UIDVALIDITY 0");

    let script = logged_in()
        .expect("LIST \"\" \"*\"")
        .send(b"* LIST () \"/\" INBOX\r\n{tag} OK\r\n")
        .expect("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        .send(b"* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 0)\r\n{tag} OK\r\n");
    let (home, code, text) = run(script, true);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("STATUS INBOX has UIDVALIDITY 0"), "{text}");
    assert!(home.written().is_empty(), "{:?}", home.written());
}

/// A plain tagged NO to the body FETCH of one message of two (ferry
/// pipelines both body FETCHes): that message fails and is named, the
/// other is stored once, nothing stays in tmp/, exit 3. The next run,
/// against a server where both bodies can be read, fetches only the
/// skipped message; the run after that has nothing to copy and fetches no
/// body.
#[test]
fn a_refused_body_fetch_fails_that_message_alone_and_the_next_run_fetches_only_it() {
    let body = |uid| message(uid).replace("\r\n", "\n");
    let script = inbox_selected(2)
        .expect("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .send(snapshot_answer(&[1, 2]))
        .expect("UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE)")
        .send(meta_answer(&[1, 2]))
        .expect("UID FETCH 1 (UID BODY.PEEK[])")
        .send(b"{tag} NO [SERVERBUG] cannot read\r\n")
        .expect("UID FETCH 2 (UID BODY.PEEK[])")
        .send(body_answer(2));
    let (home, code, text) = run(script, true);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("failed: copying UID 1 in INBOX (far): UID 1 in \"INBOX\": the server refused UID FETCH: cannot read [SERVERBUG]"),
        "{text}"
    );
    assert!(!text.contains("UID 2"), "{text}");
    let first = files_of(&home, "INBOX");
    assert_eq!(first.len(), 1, "{first:?}\n{text}");
    assert!(first[0].0 == "new" || first[0].0 == "cur", "{first:?}");
    assert_eq!(first[0].2, body(2), "{first:?}");

    // Both bodies readable now: only UID 1 is asked for (the script
    // expects nothing else).
    let script = inbox_selected(2)
        .expect("UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .send(snapshot_answer(&[1, 2]))
        .expect("UID FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)")
        .send(meta_answer(&[1]))
        .expect("UID FETCH 1 (UID BODY.PEEK[])")
        .send(body_answer(1));
    let server = ScriptedServer::start(script).expect("server");
    home.set_port(server.port());
    let (code, text) = home.sync();
    let report = server.finish();
    assert!(report.succeeded(), "{:?}\n{text}", report.received_text());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("INBOX: pulled 1,"), "{text}");
    let second = files_of(&home, "INBOX");
    assert_eq!(second.len(), 2, "{second:?}\n{text}");
    assert!(second.contains(&first[0]), "{second:?}");
    let mut bodies: Vec<&str> = second.iter().map(|(_, _, b)| b.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, [body(1), body(2)], "{second:?}");
    assert!(second.iter().all(|(sub, _, _)| sub != "tmp"), "{second:?}");

    // Nothing changed on the server: the flags are checked, no body read.
    let script = inbox_selected(2)
        .expect("UID SEARCH UID 1:2")
        .send(b"* SEARCH 1 2\r\n{tag} OK\r\n")
        .expect("UID FETCH 1:2 (UID FLAGS)")
        .send(b"* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 2 FLAGS ())\r\n{tag} OK\r\n");
    let server = ScriptedServer::start(script).expect("server");
    home.set_port(server.port());
    let (code, text) = home.sync();
    let report = server.finish();
    assert!(report.succeeded(), "{:?}\n{text}", report.received_text());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("INBOX: pulled 0,"), "{text}");
    assert_eq!(files_of(&home, "INBOX"), second, "{text}");
}

/// `inbox/x` next to `INBOX/x`: a Maildir cannot keep them apart (its
/// INBOX ignores case), so the one in other letters is refused and named,
/// never merged into the other's directory.
#[test]
fn a_folder_under_inbox_in_other_letters_is_refused_not_merged() {
    let mut script = logged_in().expect("LIST \"\" \"*\"").send(
        b"* LIST () \"/\" INBOX\r\n* LIST () \"/\" INBOX/x\r\n* LIST () \"/\" inbox/x\r\n{tag} OK\r\n",
    );
    for _ in 0..20 {
        script = script.expect("*").send(b"{tag} OK\r\n");
    }
    let (home, _, text) = run(script, false);
    assert!(
        text.contains("\"inbox/x\"") && text.contains("INBOX in other letters"),
        "{text}"
    );
    let written = home.written();
    assert!(
        written
            .iter()
            .all(|p| !p.to_string_lossy().contains("inbox")),
        "{written:?}\n{text}"
    );
}
