//! The private Dovecot and "another client" against a real server.

use ferry_testkit::{Dovecot, DovecotOptions, Layout, Tls, USER, USER2};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGE: &[u8] = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\
Message-ID: <one@example.org>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n\r\nbody\r\n";

fn start(options: DovecotOptions) -> Dovecot {
    Dovecot::start(options).expect("dovecot starts")
}

/// Logs in with openssl s_client, verifying the certificate against the
/// kit's own and the host 127.0.0.1; returns s_client's output.
fn tls_login(dovecot: &Dovecot, tls: Tls, ca: bool) -> (bool, String) {
    let port = dovecot.port(tls).to_string();
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    command.args([
        "-verify_return_error",
        "-verify_ip",
        "127.0.0.1",
        "-quiet",
        "-crlf",
    ]);
    if tls == Tls::StartTls {
        command.args(["-starttls", "imap"]);
    }
    if ca {
        command.arg("-CAfile").arg(dovecot.cert_pem_path());
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let login = format!("a LOGIN {} {}\nb LOGOUT\n", USER.name, USER.password);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(login.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("s_client ends");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (text.contains("a OK"), text)
}

#[test]
fn plain_starttls_and_implicit_tls_logins() {
    let dovecot = start(DovecotOptions::default());
    dovecot
        .client()
        .expect("plain login")
        .logout()
        .expect("logout");
    dovecot
        .client_as(USER2)
        .expect("second user")
        .logout()
        .expect("logout");
    for tls in [Tls::StartTls, Tls::Implicit] {
        let (ok, text) = tls_login(&dovecot, tls, true);
        assert!(ok, "{tls:?} login failed: {text}");
        let (ok, text) = tls_login(&dovecot, tls, false);
        assert!(
            !ok,
            "{tls:?} must not verify without the kit's certificate: {text}"
        );
    }
    let fingerprint = dovecot.cert_fingerprint().expect("fingerprint");
    assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 7 + 64);
}

#[test]
fn wrong_password_is_refused() {
    let dovecot = start(DovecotOptions::default());
    let wrong = ferry_testkit::TestUser {
        name: USER.name,
        password: "wrong",
    };
    let err = dovecot.client_as(wrong).expect_err("must fail");
    assert!(err.to_string().contains("NO"), "{err}");
}

#[test]
fn another_client_helpers_change_the_server() {
    let dovecot = start(DovecotOptions::default());
    let mut client = dovecot.client().expect("login");
    client.create("Archive").expect("create");
    client.create("Old").expect("create");
    client.rename("Old", "Older").expect("rename");
    client.create("Gone").expect("create");
    client.delete("Gone").expect("delete");
    let mut folders = client.list().expect("list");
    folders.sort();
    assert_eq!(folders, ["Archive", "INBOX", "Older"]);

    let uid = client
        .append(
            "INBOX",
            &["\\Seen", "$Label1"],
            Some(1_700_000_000),
            MESSAGE,
        )
        .expect("append")
        .expect("APPENDUID");
    let second = client
        .append("INBOX", &[], None, MESSAGE)
        .expect("append")
        .expect("uid");
    let messages = dovecot.messages(USER, "INBOX").expect("read back");
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].uid, uid);
    assert_eq!(messages[0].flags, ["$Label1", "\\Seen"]);
    assert_eq!(messages[0].message_id, "<one@example.org>");
    assert_eq!(messages[0].size, MESSAGE.len() as u64);
    assert_ne!(messages[0].guid, messages[1].guid);
    let date = dovecot
        .doveadm(&[
            "fetch",
            "-u",
            USER.name,
            "date.received",
            "mailbox",
            "INBOX",
            "uid",
            &uid.to_string(),
        ])
        .expect("date");
    assert!(date.contains("2023-11-14 22:13:20"), "{date}");

    client
        .add_flags("INBOX", &[second], &["\\Flagged"])
        .expect("flag");
    client
        .remove_flags("INBOX", &[uid], &["\\Seen"])
        .expect("unflag");
    let messages = dovecot.messages(USER, "INBOX").expect("read back");
    assert_eq!(messages[0].flags, ["$Label1"]);
    assert_eq!(messages[1].flags, ["\\Flagged"]);

    let guid = messages[1].guid.clone();
    let moved = client
        .move_messages("INBOX", &[second], "Archive")
        .expect("move");
    assert_eq!(moved.len(), 1);
    let archive = dovecot.messages(USER, "Archive").expect("archive");
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].guid, guid, "MOVE keeps the GUID");
    assert_eq!(archive[0].uid, moved[0].1);

    client
        .add_flags("INBOX", &[uid], &["\\Deleted"])
        .expect("mark");
    let other = client
        .append("INBOX", &["\\Deleted"], None, MESSAGE)
        .expect("append");
    client.expunge("INBOX", &[uid]).expect("expunge");
    let left = dovecot.messages(USER, "INBOX").expect("inbox");
    assert_eq!(
        left.iter().map(|m| Some(m.uid)).collect::<Vec<_>>(),
        [other],
        "only the named UID goes"
    );

    let (validity, next, count) = dovecot.mailbox_status(USER, "Archive").expect("status");
    dovecot
        .reset_uidvalidity(USER, "Archive", validity + 7)
        .expect("reset");
    assert_eq!(
        dovecot.mailbox_status(USER, "Archive").expect("status"),
        (validity + 7, next, count)
    );
}

#[test]
fn hidden_capabilities_are_not_advertised() {
    let dovecot = start(DovecotOptions::minimal());
    let mut client = dovecot.client().expect("login");
    let caps = client
        .run("CAPABILITY")
        .expect("capability")
        .untagged
        .join(" ");
    for hidden in [
        "CONDSTORE",
        "QRESYNC",
        "MOVE",
        "UIDPLUS",
        "LIST-STATUS",
        "LITERAL+",
        "COMPRESS",
    ] {
        assert!(
            !caps.contains(&format!(" {hidden}")),
            "{hidden} advertised: {caps}"
        );
    }
    assert!(
        caps.contains(" IDLE") && caps.contains(" NAMESPACE"),
        "{caps}"
    );

    let full = start(DovecotOptions::default());
    let caps = full
        .client()
        .expect("login")
        .run("CAPABILITY")
        .expect("caps")
        .untagged
        .join(" ");
    for shown in [
        "CONDSTORE",
        "QRESYNC",
        "MOVE",
        "UIDPLUS",
        "LIST-STATUS",
        "LITERAL+",
        "COMPRESS=DEFLATE",
    ] {
        assert!(
            caps.contains(&format!(" {shown}")),
            "{shown} missing: {caps}"
        );
    }

    let hide_one = start(DovecotOptions::hiding(&["MOVE"]));
    let caps = hide_one
        .client()
        .expect("login")
        .run("CAPABILITY")
        .expect("caps")
        .untagged
        .join(" ");
    assert!(
        !caps.contains(" MOVE") && caps.contains(" COMPRESS=DEFLATE"),
        "{caps}"
    );
}

#[test]
fn server_layouts_on_disk() {
    for (layout, path) in [(Layout::MaildirPlusPlus, ".A.B"), (Layout::Fs, "A/B")] {
        let dovecot = start(DovecotOptions {
            layout,
            ..Default::default()
        });
        dovecot
            .client()
            .expect("login")
            .create("A/B")
            .expect("create");
        let dir = dovecot.maildir(USER).join(path);
        assert!(dir.is_dir(), "{layout:?}: {} missing", dir.display());
    }
}

#[test]
fn courier_like_namespace() {
    let dovecot = start(DovecotOptions {
        separator: '.',
        namespace_prefix: "INBOX.".into(),
        ..Default::default()
    });
    let mut client = dovecot.client().expect("login");
    client.create("INBOX.Sent").expect("create");
    let namespace = client
        .run("NAMESPACE")
        .expect("namespace")
        .untagged
        .join(" ");
    assert!(namespace.contains("((\"INBOX.\" \".\"))"), "{namespace}");
    assert!(
        client
            .list()
            .expect("list")
            .contains(&"INBOX.Sent".to_string())
    );
}

#[test]
fn two_servers_run_side_by_side() {
    let first = start(DovecotOptions::default());
    let second = start(DovecotOptions::default());
    assert_ne!(first.imap_port(), second.imap_port());
    first
        .client()
        .expect("login")
        .create("OnlyFirst")
        .expect("create");
    let second_folders = second.client().expect("login").list().expect("list");
    assert!(!second_folders.contains(&"OnlyFirst".to_string()));
}

/// Run by `a_failing_test_leaves_no_server_behind` in a child process.
#[test]
#[ignore = "helper: panics on purpose"]
fn helper_panics_with_a_server() {
    let Ok(report) = std::env::var("FERRY_TESTKIT_PID_FILE") else {
        return;
    };
    let dovecot = start(DovecotOptions::default());
    // Log in so that login and imap processes exist too.
    let _client = dovecot.client().expect("login");
    let contents = format!("{}\n{}\n", dovecot.master_pid(), dovecot.dir().display());
    std::fs::write(report, contents).expect("report");
    if std::env::var("FERRY_TESTKIT_HANG").is_ok() {
        std::thread::sleep(Duration::from_secs(60));
    }
    panic!("failing on purpose with a server running");
}

/// Whether `pid` runs (a zombie waiting for its reaper does not).
fn process_alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    matches!(state, Some(s) if s != 'Z' && s != 'X')
}

fn run_failing_helper(hang: bool) -> (String, String) {
    let report = tempfile::NamedTempFile::new().expect("temp");
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "--exact",
            "helper_panics_with_a_server",
            "--ignored",
            "--nocapture",
        ])
        .env("FERRY_TESTKIT_PID_FILE", report.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if hang {
        command.env("FERRY_TESTKIT_HANG", "1");
        let mut child = command.spawn().expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(report.path())
            .unwrap_or_default()
            .lines()
            .count()
            < 2
        {
            assert!(Instant::now() < deadline, "helper never reported");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    } else {
        let status = command.status().expect("run");
        assert!(!status.success(), "the helper must fail");
    }
    let text = std::fs::read_to_string(report.path()).expect("report");
    let mut lines = text.lines().map(str::to_string);
    (lines.next().expect("pid"), lines.next().expect("dir"))
}

/// Live processes in the process group `group` (Dovecot's master and the
/// children it started).
fn group_members(group: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map(|(_, r)| r.split(' ').collect())
                .unwrap_or_default();
            fields.get(2) == Some(&group) && process_alive(pid)
        })
        .collect()
}

fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) || !group_members(pid).is_empty() {
        assert!(Instant::now() < deadline, "dovecot {pid} outlived its test");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failing_test_leaves_no_server_behind() {
    let (pid, dir) = run_failing_helper(false);
    wait_gone(&pid);
    assert!(
        !std::path::Path::new(&dir).exists(),
        "temp dir {dir} left behind"
    );
}

#[test]
fn a_killed_test_leaves_no_server_behind() {
    let (pid, _dir) = run_failing_helper(true);
    wait_gone(&pid);
}
