//! The tools under test: finding them, their versions, their configs
//! (rendered here with the settings of the shared peer harness's templates)
//! and the command of one sync run.
//!
//! Every config points at 127.0.0.1 only. interimap syncs IMAP to IMAP: its
//! local side is Dovecot's `imap` binary on a pipe over a Maildir++, run as
//! the mail uid (Dovecot refuses to serve mail as root) and under its own
//! `/usr/bin/time`, since interimap never waits for it.

use crate::cli::ToolName;
use crate::timing::TIME_FORMAT;
use anyhow::{Context, Result, bail};
use ferry_testkit::USER;
use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The uid and gid that own interimap's local mail when running as root (as
/// the test kit's server and the shared harness do).
const ROOT_MAIL_ID: u32 = 5000;

/// Dovecot's imap binary, interimap's local side.
const DOVECOT_IMAP: &str = "/usr/lib/dovecot/imap";

/// How one tool is run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The sync command, program first.
    pub command: Vec<String>,
    /// The local Maildir root.
    pub local: PathBuf,
    /// Where the helper process's `time` report goes (interimap only).
    pub helper_time: Option<PathBuf>,
}

/// What a config needs to know.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The tool's own dir (configs, state, local Maildir).
    pub dir: &'a Path,
    /// The port on 127.0.0.1.
    pub port: u16,
    /// Whether ferry should use COMPRESS (the server offers it).
    pub compress: bool,
}

/// An executable named `name` on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why a peer cannot run here, if it cannot.
pub fn missing(tool: ToolName) -> Option<String> {
    let absent = |what: &str| {
        Some(format!(
            "{what} not found: apt-get install -y {}",
            tool.package()
        ))
    };
    match tool {
        ToolName::Ferry => None,
        ToolName::Interimap if !is_executable(Path::new(DOVECOT_IMAP)) => {
            absent(DOVECOT_IMAP).map(|m| m.replace("interimap", "dovecot-imapd"))
        }
        ToolName::Interimap if is_root() && find_in_path("setpriv").is_none() => {
            absent("setpriv").map(|m| m.replace("interimap", "util-linux"))
        }
        _ if find_in_path(tool.label()).is_none() => absent(tool.label()),
        _ => None,
    }
}

/// The first line of `program --version`.
pub fn version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|out| {
            let text = [out.stdout, out.stderr].concat();
            let text = String::from_utf8_lossy(&text);
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_else(|| "unknown version".to_owned())
}

/// Writes `tool`'s config into `target.dir` (emptied first) and returns how
/// to run it.
pub fn prepare(tool: ToolName, target: &Target<'_>, ferry: &Path) -> Result<Setup> {
    let dir = target.dir;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let local = dir.join("local");
    fs::create_dir_all(&local).with_context(|| format!("creating {}", local.display()))?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let local_text = local.to_string_lossy().into_owned();
    let mut helper_time = None;
    let command = match tool {
        ToolName::Ferry => {
            let config = render_ferry(&path("state"), &local_text, target.port, target.compress);
            write_private(&dir.join("ferry.toml"), &config)?;
            let ferry = ferry.to_string_lossy().into_owned();
            vec![
                ferry,
                "--config".into(),
                path("ferry.toml"),
                "sync".into(),
                "-q".into(),
            ]
        }
        ToolName::Mbsync => {
            write_private(
                &dir.join("mbsyncrc"),
                &render_mbsync(&local_text, target.port),
            )?;
            vec!["mbsync".into(), "-c".into(), path("mbsyncrc"), "-a".into()]
        }
        ToolName::Offlineimap => {
            fs::create_dir_all(dir.join("meta")).context("offlineimap metadata dir")?;
            let config = render_offlineimap(&local_text, &path("meta"), target.port);
            write_private(&dir.join("offlineimaprc"), &config)?;
            let rc = path("offlineimaprc");
            vec![
                "offlineimap".into(),
                "-c".into(),
                rc,
                "-o".into(),
                "-u".into(),
                "quiet".into(),
            ]
        }
        ToolName::Interimap => {
            let time_file = dir.join("local-imap.time");
            prepare_interimap(dir, &local_text, target.port, &time_file)?;
            helper_time = Some(time_file);
            vec![
                "interimap".into(),
                format!("--config={}", path("interimap.conf")),
            ]
        }
    };
    Ok(Setup {
        command,
        local,
        helper_time,
    })
}

fn prepare_interimap(dir: &Path, local: &str, port: u16, time_file: &Path) -> Result<()> {
    let (uid, gid) = mail_owner();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    fs::create_dir_all(dir.join("home")).context("interimap's local home")?;
    let dovecot = render_interimap_local_dovecot(local, uid, gid, &path("local-dovecot.log"));
    fs::write(dir.join("local-dovecot.conf"), dovecot).context("local dovecot config")?;
    let command = interimap_local_command(
        &path("home"),
        &path("local-dovecot.conf"),
        &time_file.to_string_lossy(),
        is_root().then_some((uid, gid)),
    );
    let config = render_interimap(&path("interimap.db"), &command, port);
    write_private(&dir.join("interimap.conf"), &config)?;
    chown_tree(dir, uid, gid)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))
}

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

fn mail_owner() -> (u32, u32) {
    if is_root() {
        (ROOT_MAIL_ID, ROOT_MAIL_ID)
    } else {
        (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        )
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A shell word.
fn shell_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// ferry's config: plain IMAP to 127.0.0.1, `compress` set explicitly
/// (its "auto" would never compress on loopback).
pub fn render_ferry(state: &str, local: &str, port: u16, compress: bool) -> String {
    let compress = if compress { "always" } else { "never" };
    format!(
        "# ferry-bench: plain IMAP on loopback, COMPRESS set to match the server\n\
         state_dir = {state}\n\
         \n\
         [accounts.bench]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         tls = \"none\"\n\
         user = {user}\n\
         password = {password}\n\
         maildir = {local}\n\
         compress = \"{compress}\"\n",
        state = toml_string(state),
        local = toml_string(local),
        user = toml_string(USER.name),
        password = toml_string(USER.password),
    )
}

/// mbsync's config (the shared harness's mbsyncrc.in, plain IMAP).
pub fn render_mbsync(local: &str, port: u16) -> String {
    format!(
        "# ferry-bench: mbsync (isync 1.4), both directions\n\
         IMAPAccount bench\n\
         Host 127.0.0.1\n\
         Port {port}\n\
         User {user}\n\
         Pass {password}\n\
         SSLType None\n\
         \n\
         IMAPStore bench-remote\n\
         Account bench\n\
         \n\
         MaildirStore bench-local\n\
         Path {local}/\n\
         Inbox {local}/INBOX\n\
         SubFolders Verbatim\n\
         \n\
         Channel bench\n\
         Far :bench-remote:\n\
         Near :bench-local:\n\
         Patterns *\n\
         Create Both\n\
         Remove None\n\
         Expunge Both\n\
         Sync All\n\
         SyncState *\n",
        user = USER.name,
        password = USER.password,
    )
}

/// OfflineIMAP's config (offlineimaprc.in, `maxconnections = 1`: one
/// folder thread over one connection, see the shared harness's README).
pub fn render_offlineimap(local: &str, meta: &str, port: u16) -> String {
    format!(
        "# ferry-bench: offlineimap3, one connection\n\
         [general]\n\
         accounts = bench\n\
         metadata = {meta}\n\
         maxsyncaccounts = 1\n\
         \n\
         [Account bench]\n\
         localrepository = bench-local\n\
         remoterepository = bench-remote\n\
         \n\
         [Repository bench-local]\n\
         type = Maildir\n\
         localfolders = {local}\n\
         \n\
         [Repository bench-remote]\n\
         type = IMAP\n\
         remotehost = 127.0.0.1\n\
         remoteport = {port}\n\
         remoteuser = {user}\n\
         remotepass = {password}\n\
         ssl = no\n\
         starttls = no\n\
         maxconnections = 1\n",
        user = USER.name,
        password = USER.password,
    )
}

/// interimap's config (interimap.conf.in, plain IMAP; `compress` left at
/// its default, which uses COMPRESS=DEFLATE whenever offered).
pub fn render_interimap(database: &str, local_command: &str, port: u16) -> String {
    format!(
        "# ferry-bench: interimap, local side = Dovecot's imap on a pipe\n\
         database = {database}\n\
         \n\
         [local]\n\
         type = tunnel\n\
         command = {local_command}\n\
         null-stderr = YES\n\
         \n\
         [remote]\n\
         type = imap\n\
         host = [127.0.0.1]\n\
         port = {port}\n\
         STARTTLS = NO\n\
         username = {user}\n\
         password = {password}\n",
        user = USER.name,
        password = USER.password,
    )
}

/// The Dovecot config of interimap's local imap process
/// (interimap-local-dovecot.conf.in).
pub fn render_interimap_local_dovecot(local: &str, uid: u32, gid: u32, log: &str) -> String {
    format!(
        "# ferry-bench: interimap's local side (no master, no network)\n\
         ssl = no\n\
         mail_location = maildir:{local}\n\
         namespace inbox {{\n\
         \x20 inbox = yes\n\
         \x20 separator = /\n\
         }}\n\
         mail_uid = {uid}\n\
         mail_gid = {gid}\n\
         log_path = {log}\n"
    )
}

/// The shell command interimap runs for its local side: Dovecot's imap in
/// a clean environment, under `time` (interimap never reaps it), and as
/// root dropped to the mail uid with `setpriv`.
pub fn interimap_local_command(
    home: &str,
    config: &str,
    time_file: &str,
    drop_to: Option<(u32, u32)>,
) -> String {
    let setpriv = drop_to
        .map(|(uid, gid)| format!("setpriv --reuid={uid} --regid={gid} --clear-groups "))
        .unwrap_or_default();
    format!(
        "/usr/bin/time -f {format} -o {time} {setpriv}env -i PATH=/usr/bin:/bin USER=bench \
         HOME={home} {DOVECOT_IMAP} -c {config}",
        format = shell_word(TIME_FORMAT),
        time = shell_word(time_file),
        home = shell_word(home),
        config = shell_word(config),
    )
}

/// Refuses a work dir whose path the configs could not carry unquoted.
pub fn check_path(path: &Path) -> Result<()> {
    let text = path.to_string_lossy();
    if text
        .chars()
        .any(|c| c.is_whitespace() || "\"'#\\;=".contains(c))
    {
        bail!(
            "the work dir {text:?} contains a space or one of \" ' # \\ ; = (the peers' configs cannot carry it); pick another --work"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ferry_config() {
        let config = render_ferry("/w/ferry/state", "/w/ferry/local", 1430, false);
        assert!(config.contains("state_dir = \"/w/ferry/state\"\n"));
        assert!(config.contains("port = 1430\n"));
        assert!(config.contains("tls = \"none\"\n"));
        assert!(config.contains("maildir = \"/w/ferry/local\"\n"));
        assert!(config.contains("compress = \"never\"\n"));
        assert!(config.contains(&format!("password = \"{}\"", USER.password)));
        let on = render_ferry("/s", "/l", 1, true);
        assert!(on.contains("compress = \"always\"\n"));
    }

    #[test]
    fn mbsync_config() {
        let config = render_mbsync("/w/mbsync/local", 1430);
        for line in [
            "Host 127.0.0.1\n",
            "Port 1430\n",
            "SSLType None\n",
            "Path /w/mbsync/local/\n",
            "Inbox /w/mbsync/local/INBOX\n",
            "Sync All\n",
            "Expunge Both\n",
        ] {
            assert!(config.contains(line), "{line:?} missing");
        }
    }

    #[test]
    fn offlineimap_config() {
        let config = render_offlineimap("/w/o/local", "/w/o/meta", 1430);
        assert!(config.contains("localfolders = /w/o/local\n"));
        assert!(config.contains("metadata = /w/o/meta\n"));
        assert!(config.contains("remotehost = 127.0.0.1\nremoteport = 1430\n"));
        assert!(config.contains("maxconnections = 1\n"));
        assert!(!config.contains("status_backend"));
    }

    #[test]
    fn interimap_configs() {
        let command =
            interimap_local_command("/w/i/home", "/w/i/local.conf", "/w/i/t", Some((5000, 5000)));
        assert_eq!(
            command,
            "/usr/bin/time -f 'ferry-bench-time user=%U sys=%S maxrss_kib=%M exit=%x' \
             -o '/w/i/t' setpriv --reuid=5000 --regid=5000 --clear-groups env -i \
             PATH=/usr/bin:/bin USER=bench HOME='/w/i/home' /usr/lib/dovecot/imap \
             -c '/w/i/local.conf'"
        );
        let plain = interimap_local_command("/h", "/c", "/t", None);
        assert!(!plain.contains("setpriv"));
        let config = render_interimap("/w/i/db", "CMD", 1430);
        assert!(config.contains("command = CMD\n"));
        assert!(config.contains("host = [127.0.0.1]\nport = 1430\n"));
        let local = render_interimap_local_dovecot("/w/i/local", 5000, 5000, "/w/i/log");
        assert!(local.contains("mail_location = maildir:/w/i/local\n"));
        assert!(local.contains("namespace inbox {\n  inbox = yes\n  separator = /\n}\n"));
        assert!(local.contains("mail_uid = 5000\nmail_gid = 5000\n"));
    }

    #[test]
    fn quoting() {
        assert_eq!(toml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert!(check_path(Path::new("/tmp/ferry-bench-20k")).is_ok());
        assert!(check_path(Path::new("/tmp/my bench")).is_err());
    }
}
