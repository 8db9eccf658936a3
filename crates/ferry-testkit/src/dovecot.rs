//! A private Dovecot per test: temp dir, free loopback ports, own certificate.
//!
//! Each [`Dovecot`] runs its own `dovecot -F` master (Debian's
//! `dovecot-imapd`, never the system service) with everything under a temp
//! dir: config, passwd-file users, Maildir storage, log, sockets and a
//! self-signed certificate made for this instance. It listens on 127.0.0.1
//! only: plain IMAP (STARTTLS offered) and implicit TLS. Dropping it stops
//! the server and removes the dir, also when the test panics; the master is
//! started under `setpriv --pdeathsig` so even a killed test run leaves no
//! server behind; drop kills the server's whole process group.
//!
//! As root, mail is owned by a dedicated uid (Dovecot refuses uid 0 for
//! mail); as an ordinary user, everything runs as that user.

use crate::client::Client;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A test account on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestUser {
    /// The login name.
    pub name: &'static str,
    /// The password (distinct from the name, so redaction tests can look for it).
    pub password: &'static str,
}

/// The account most tests use.
pub const USER: TestUser = TestUser {
    name: "ferry",
    password: "s3cret-Ferry-pw",
};

/// A second account, for tests that need two (migrate, isolation).
pub const USER2: TestUser = TestUser {
    name: "alice",
    password: "alice-Pw-9",
};

/// The uid that owns mail when the tests run as root.
const ROOT_MAIL_UID: u32 = 5000;

/// Dovecot 2.3's post-login capabilities, less COMPRESS=DEFLATE (which the
/// imap_zlib plugin adds only while `imap_capability` is unset).
const DEFAULT_CAPABILITIES: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE";

/// How the server stores folders on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Maildir++: INBOX at the root, folder `A/B` in `.A.B` (Dovecot's default).
    #[default]
    MaildirPlusPlus,
    /// `LAYOUT=fs`: folder `A/B` in `A/B`.
    Fs,
}

/// How a client reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// The plain port, no TLS.
    None,
    /// The plain port, upgraded with STARTTLS.
    StartTls,
    /// The implicit-TLS port.
    Implicit,
}

/// What kind of server to start.
#[derive(Debug, Clone)]
pub struct DovecotOptions {
    /// Capabilities to hide from CAPABILITY (Dovecot still executes them, so
    /// tests must also check the client never used them), e.g. `"CONDSTORE"`.
    pub hide_capabilities: Vec<String>,
    /// Load imap_zlib and offer COMPRESS=DEFLATE.
    pub compress: bool,
    /// The server's folder layout on disk.
    pub layout: Layout,
    /// The hierarchy separator clients see.
    pub separator: char,
    /// The personal namespace prefix clients see (`"INBOX."` imitates
    /// Courier, with `separator = '.'`).
    pub namespace_prefix: String,
    /// Dovecot's per user and IP connection limit.
    pub max_connections_per_user: u32,
    /// Load the quota plugins (`count` backend, IMAP QUOTA); each user's
    /// limit is set with [`Dovecot::set_quota`] and is unlimited until then.
    pub quota: bool,
}

impl Default for DovecotOptions {
    fn default() -> Self {
        DovecotOptions {
            hide_capabilities: Vec::new(),
            compress: true,
            layout: Layout::default(),
            separator: '/',
            namespace_prefix: String::new(),
            max_connections_per_user: 20,
            quota: false,
        }
    }
}

impl DovecotOptions {
    /// The options with `caps` hidden from CAPABILITY.
    pub fn hiding(caps: &[&str]) -> Self {
        DovecotOptions {
            hide_capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }
    }

    /// The extensions a minimal server lacks: CONDSTORE, QRESYNC, MOVE,
    /// UIDPLUS, LIST-STATUS, LITERAL+, and COMPRESS.
    pub fn minimal() -> Self {
        DovecotOptions {
            compress: false,
            ..Self::hiding(&[
                "CONDSTORE",
                "QRESYNC",
                "MOVE",
                "UIDPLUS",
                "LIST-STATUS",
                "LITERAL+",
            ])
        }
    }

    fn capability_setting(&self) -> Option<String> {
        if self.hide_capabilities.is_empty() {
            return None;
        }
        let hidden = |cap: &str| {
            self.hide_capabilities
                .iter()
                .any(|h| h.eq_ignore_ascii_case(cap))
        };
        let mut caps: Vec<&str> = DEFAULT_CAPABILITIES
            .split_whitespace()
            .filter(|c| !hidden(c))
            .collect();
        if self.compress && !hidden("COMPRESS=DEFLATE") {
            caps.push("COMPRESS=DEFLATE");
        }
        Some(caps.join(" "))
    }
}

/// A running private Dovecot; dropping it stops the server and removes its dir.
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    master: Child,
    imap_port: u16,
    imaps_port: u16,
    options: DovecotOptions,
    mail_owner: (u32, u32),
}

/// How many times to retry when another test took a port between our probe
/// and Dovecot's bind.
const START_ATTEMPTS: usize = 5;

impl Dovecot {
    /// Starts a server and waits until both ports accept connections.
    pub fn start(options: DovecotOptions) -> io::Result<Dovecot> {
        Self::start_with(options, |_| Ok(()))
    }

    /// Starts a server after `prepare` has filled the mail root of [`USER`]
    /// (e.g. with a generated corpus); ownership is fixed up afterwards.
    pub fn start_with(
        options: DovecotOptions,
        prepare: impl Fn(&Path) -> io::Result<()>,
    ) -> io::Result<Dovecot> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let dir = make_dir()?;
            prepare(&dir.path().join("mail").join(USER.name).join("Maildir"))?;
            match Self::launch(dir, options.clone()) {
                Ok(dovecot) => return Ok(dovecot),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("dovecot did not start")))
    }

    fn launch(dir: tempfile::TempDir, options: DovecotOptions) -> io::Result<Dovecot> {
        let [imap_port, imaps_port] = free_ports()?;
        let mail_owner = mail_owner();
        write_certificate(dir.path())?;
        write_users(dir.path(), mail_owner, &[])?;
        let config = render_config(dir.path(), &options, imap_port, imaps_port);
        fs::write(dir.path().join("dovecot.conf"), config)?;
        chown_tree(&dir.path().join("mail"), mail_owner)?;
        let master = spawn_master(dir.path())?;
        let mut dovecot = Dovecot {
            dir,
            master,
            imap_port,
            imaps_port,
            options,
            mail_owner,
        };
        dovecot.wait_ready()?;
        Ok(dovecot)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.master.try_wait()? {
                let log = self.log();
                let kind = if log.contains("Address already in use")
                    || log.contains("duplicate listener")
                {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!("dovecot exited ({status}): {log}"),
                ));
            }
            if greets_as(self.imap_addr(), &instance_greeting(self.dir.path()))
                && ready(self.imaps_addr())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("dovecot did not listen within 20 s: {}", self.log()),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sets `user`'s storage quota to `kib` KiB, or lifts it (`None`);
    /// needs [`DovecotOptions::quota`]. Takes effect at the next login;
    /// this waits a little over a second, as Dovecot looks at the users
    /// file at most once a second.
    pub fn set_quota(&self, user: TestUser, kib: Option<u64>) -> io::Result<()> {
        let quotas: Vec<(TestUser, u64)> = kib.map(|k| (user, k)).into_iter().collect();
        write_users(self.dir.path(), self.mail_owner, &quotas)?;
        std::thread::sleep(Duration::from_millis(1100));
        Ok(())
    }

    /// The plain IMAP port (STARTTLS offered).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The implicit-TLS port.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The plain IMAP address.
    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imap_port))
    }

    /// The implicit-TLS address.
    pub fn imaps_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imaps_port))
    }

    /// The port for a client using `tls`.
    pub fn port(&self, tls: Tls) -> u16 {
        match tls {
            Tls::Implicit => self.imaps_port,
            Tls::None | Tls::StartTls => self.imap_port,
        }
    }

    /// The server certificate (PEM): a self-signed CA:TRUE certificate for
    /// 127.0.0.1 and localhost, as `openssl req -x509` makes.
    pub fn cert_pem_path(&self) -> PathBuf {
        self.dir.path().join("ssl").join("cert.pem")
    }

    /// The SHA-256 fingerprint of the certificate's DER, as
    /// `sha256:<lower-case hex>`.
    pub fn cert_fingerprint(&self) -> io::Result<String> {
        let der = fs::read(self.dir.path().join("ssl").join("cert.der"))?;
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(format!("sha256:{hex}"))
    }

    /// The pid of the Dovecot master process.
    pub fn master_pid(&self) -> u32 {
        self.master.id()
    }

    /// The temp dir that holds everything of this server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server-side Maildir of `user`.
    pub fn maildir(&self, user: TestUser) -> PathBuf {
        self.dir.path().join("mail").join(user.name).join("Maildir")
    }

    /// The options the server was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.options
    }

    /// The server log so far (and anything Dovecot wrote to stderr).
    pub fn log(&self) -> String {
        let read = |name| fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        read("dovecot.stderr") + &read("dovecot.log")
    }

    /// Logs in as [`USER`] over plain IMAP, as "another client".
    pub fn client(&self) -> io::Result<Client> {
        self.client_as(USER)
    }

    /// Logs in as `user` over plain IMAP, as "another client".
    pub fn client_as(&self, user: TestUser) -> io::Result<Client> {
        Client::login(self.imap_addr(), user)
    }

    /// Runs `doveadm` against this server's config; returns its stdout.
    pub fn doveadm(&self, args: &[&str]) -> io::Result<String> {
        let output = Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "doveadm {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Makes a file in the mail store belong to the mail uid (for tests that
    /// write into the server's Maildir while it runs).
    pub fn fix_ownership(&self) -> io::Result<()> {
        chown_tree(&self.dir.path().join("mail"), self.mail_owner)
    }

    /// Stops the server now (drop does the same).
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Kills the master and every process it started (they share the
    /// master's process group) and reaps the master. A throwaway server
    /// needs no graceful stop, and Dovecot's own takes about a second.
    fn shutdown(&mut self) {
        if let Ok(Some(_)) = self.master.try_wait() {
            return;
        }
        let group = rustix::process::Pid::from_child(&self.master);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.master.wait();
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn ready(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
}

/// True when the server on `addr` greets with `greeting`: another test's
/// server that grabbed the port between our pick and our bind does not, and
/// our own master then exits with "Address already in use" (all listeners
/// are bound before any is served).
fn greets_as(addr: SocketAddr, greeting: &str) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stream), &mut line);
    line.contains(greeting)
}

/// Two distinct free ports: both listeners are held until both are known,
/// so the kernel cannot hand out the same port twice.
fn free_ports() -> io::Result<[u16; 2]> {
    let first = TcpListener::bind("127.0.0.1:0")?;
    let second = TcpListener::bind("127.0.0.1:0")?;
    Ok([first.local_addr()?.port(), second.local_addr()?.port()])
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

fn mail_owner() -> (u32, u32) {
    if is_root() {
        (ROOT_MAIL_UID, ROOT_MAIL_UID)
    } else {
        (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }
}

/// The temp dir, traversable by Dovecot's unprivileged processes (a 0700
/// dir shows up as "Temporary authentication failure" at login).
fn make_dir() -> io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("ferry-dovecot-")
        .tempdir()?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))?;
    for sub in ["run", "state", "ssl"] {
        fs::create_dir(dir.path().join(sub))?;
    }
    for user in [USER, USER2] {
        fs::create_dir_all(dir.path().join("mail").join(user.name).join("Maildir"))?;
    }
    Ok(dir)
}

fn chown_tree(path: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    if !is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), (uid, gid))?;
        }
    }
    Ok(())
}

/// Writes the passwd-file; `quotas` gives a user a storage limit in KiB
/// (Dovecot rereads the file when it changes, so this also works live).
fn write_users(dir: &Path, (uid, gid): (u32, u32), quotas: &[(TestUser, u64)]) -> io::Result<()> {
    let mut users = String::new();
    for user in [USER, USER2] {
        let home = dir.join("mail").join(user.name);
        let quota = quotas
            .iter()
            .find(|(u, _)| *u == user)
            .map(|(_, kib)| format!("userdb_quota_rule=*:storage={kib}K"))
            .unwrap_or_default();
        let _ = writeln!(
            users,
            "{}:{{PLAIN}}{}:{uid}:{gid}::{}::{quota}",
            user.name,
            user.password,
            home.display()
        );
    }
    let path = dir.join("users");
    let staged = dir.join("users.new");
    fs::write(&staged, users)?;
    fs::rename(staged, path)
}

fn write_certificate(dir: &Path) -> io::Result<()> {
    let (cert_pem, cert_der, key_pem) = make_self_signed().map_err(io::Error::other)?;
    let ssl = dir.join("ssl");
    fs::write(ssl.join("cert.pem"), cert_pem)?;
    fs::write(ssl.join("cert.der"), cert_der)?;
    fs::write(ssl.join("key.pem"), key_pem)?;
    fs::set_permissions(ssl.join("key.pem"), fs::Permissions::from_mode(0o600))
}

/// A self-signed ECDSA certificate for 127.0.0.1 and localhost, marked
/// CA:TRUE like the ones `openssl req -x509` makes for self-hosted servers.
fn make_self_signed() -> Result<(String, Vec<u8>, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), cert.der().to_vec(), key.serialize_pem()))
}

fn spawn_master(dir: &Path) -> io::Result<Child> {
    let config = dir.join("dovecot.conf");
    let mut command = if Path::new("/usr/bin/setpriv").exists() {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "dovecot"]);
        c
    } else {
        Command::new("dovecot")
    };
    // Never hand the test's stdout/stderr pipes to a daemon: whoever waits
    // for their EOF would hang. Config errors (written to stderr before
    // Dovecot logs anywhere) go to a file in the dir. Its own process group
    // lets drop kill the master and all its children at once.
    let stderr = fs::File::create(dir.join("dovecot.stderr"))?;
    command
        .process_group(0)
        .arg("-F")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    let child = command.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run dovecot ({e}); install it with: apt-get install -y dovecot-imapd"),
        )
    })?;
    Ok(child)
}

fn render_config(dir: &Path, options: &DovecotOptions, imap_port: u16, imaps_port: u16) -> String {
    let d = dir.display();
    let (login_user, internal_user, internal_group, chroot) = if is_root() {
        (
            "dovenull".to_string(),
            "dovecot".to_string(),
            "dovecot".to_string(),
            "",
        )
    } else {
        let user = current_user_name();
        let group = current_group_name();
        (user.clone(), user, group, "chroot =")
    };
    let layout = match options.layout {
        Layout::MaildirPlusPlus => "",
        Layout::Fs => ":LAYOUT=fs",
    };
    let capability = options
        .capability_setting()
        .map(|caps| format!("imap_capability = {caps}\n"))
        .unwrap_or_default();
    let zlib = if options.compress { "imap_zlib" } else { "" };
    let (quota, imap_quota) = if options.quota {
        ("quota", "imap_quota")
    } else {
        ("", "")
    };
    let quota_settings = if options.quota {
        "plugin {\n  quota = count:User quota\n  quota_vsizes = yes\n}\n"
    } else {
        ""
    };
    let dh = if Path::new("/usr/share/dovecot/dh.pem").exists() {
        "ssl_dh = </usr/share/dovecot/dh.pem\n"
    } else {
        ""
    };
    format!(
        r#"# private test instance made by ferry-testkit
protocols = imap
listen = 127.0.0.1
instance_name = ferry-test-{imap_port}
login_greeting = {greeting}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
first_valid_gid = 1
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
mail_location = maildir:~/Maildir{layout}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix = {prefix}
  mailbox Sent {{
    special_use = \Sent
  }}
  mailbox Archive {{
    special_use = \Archive
  }}
  mailbox Trash {{
    special_use = \Trash
  }}
  mailbox Drafts {{
    special_use = \Drafts
  }}
}}
{capability}mail_plugins = $mail_plugins zlib {quota}
{quota_settings}protocol imap {{
  mail_plugins = $mail_plugins {zlib} {imap_quota}
  mail_max_userip_connections = {max_conn}
}}
ssl = yes
ssl_cert = <{d}/ssl/cert.pem
ssl_key = <{d}/ssl/key.pem
{dh}service anvil {{
  {chroot}
}}
service imap-login {{
  {chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"#,
        separator = options.separator,
        prefix = options.namespace_prefix,
        max_conn = options.max_connections_per_user,
        greeting = instance_greeting(dir),
    )
}

/// The greeting that tells this instance from any other listening on a port
/// it was given: the unique name of its temp dir.
fn instance_greeting(dir: &Path) -> String {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    format!("ferry-testkit {name}")
}

fn current_user_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    name_for_id("/etc/passwd", uid)
}

fn current_group_name() -> String {
    let gid = rustix::process::getgid().as_raw();
    name_for_id("/etc/group", gid)
}

/// The name of numeric id `id` in a passwd(5)/group(5) style file (name in
/// field 1, id in field 3); the number itself when there is none.
fn name_for_id(file: &str, id: u32) -> String {
    fs::read_to_string(file)
        .ok()
        .and_then(|entries| {
            entries.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let found = fields.nth(1)?;
                (found.parse() == Ok(id)).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| id.to_string())
}
