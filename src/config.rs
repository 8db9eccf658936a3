//! The config file: finding it, reading it, and checking it against the
//! contract of design.md ("Interfaces users see"). docs/config.md documents
//! every key for users.
//!
//! [`Config::load`] reads `config.toml` into one [`AccountConfig`] per
//! `[accounts.NAME]` table, with every default applied and every value
//! checked. Any problem is a [`ConfigError`] that names the file, the line,
//! the key and the table (`config.toml:12: unknown key "hots" in
//! [accounts.work]; expected one of ...`); the binary exits 2 on it.
//!
//! Passwords are not read when the config is loaded, but when
//! [`AccountConfig::credentials`] is called.

// The key lists are for tests: the parser reads its keys from the serde
// structs below, which the lists are checked against.
#[cfg(test)]
mod keys;
mod locate;
mod password;
mod values;

pub use password::PasswordSource;
pub use values::{Layout, Sides, SyncDirection, normalize_fingerprint};

use ferry_imap::Secret;
use ferry_imap::{AuthMechanism, CompressPolicy, Credentials, ServerOptions, TlsMode};
use locate::Locator;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use values::{
    AuthSetting, ByteSize, CompressSetting, Connections, FingerprintSetting, InlinePassword,
    NonEmpty, PathSetting, Port, Seconds, TlsSetting,
};

/// The number of connections when `connections` is not set.
pub const DEFAULT_CONNECTIONS: u32 = 4;

/// A config that cannot be used: a missing file, bad TOML, an unknown key, a
/// bad value, a missing or contradictory setting, an unknown account name.
/// The message says where and what to do. The binary exits 2 on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    /// An error with this message (exit status 2).
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The directories defaults are taken from: `$HOME`, `$XDG_CONFIG_HOME`,
/// `$XDG_STATE_HOME` (XDG values that are empty or relative are ignored, as
/// the XDG spec says).
#[derive(Debug, Clone, Default)]
pub struct Dirs {
    /// `$HOME`: `~` in paths, and the fallback of the XDG directories.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub config_home: Option<PathBuf>,
    /// `$XDG_STATE_HOME`.
    pub state_home: Option<PathBuf>,
}

impl Dirs {
    /// The directories of this process's environment.
    pub fn from_env() -> Dirs {
        let dir = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        Dirs {
            home: dir("HOME"),
            config_home: dir("XDG_CONFIG_HOME"),
            state_home: dir("XDG_STATE_HOME"),
        }
    }

    fn xdg(&self, set: &Option<PathBuf>, fallback: &str) -> Option<PathBuf> {
        set.clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(fallback)))
    }

    /// `$XDG_CONFIG_HOME/ferry/config.toml`, else
    /// `~/.config/ferry/config.toml`.
    pub fn default_config_path(&self) -> Option<PathBuf> {
        self.xdg(&self.config_home, ".config")
            .map(|dir| dir.join("ferry").join("config.toml"))
    }

    /// `$XDG_STATE_HOME/ferry`, else `~/.local/state/ferry`.
    pub fn default_state_dir(&self) -> Option<PathBuf> {
        self.xdg(&self.state_home, ".local/state")
            .map(|dir| dir.join("ferry"))
    }
}

/// Which config file to read, and whether the user named it.
#[derive(Debug, Clone)]
pub struct ConfigLocation {
    /// The file.
    pub path: PathBuf,
    /// Named with `--config` (or `$FERRY_CONFIG`), not the default.
    pub given: bool,
}

impl ConfigLocation {
    /// `given` when set, else the default path of `dirs`.
    pub fn resolve(given: Option<PathBuf>, dirs: &Dirs) -> Result<ConfigLocation, ConfigError> {
        match given {
            Some(path) => Ok(ConfigLocation { path, given: true }),
            None => dirs
                .default_config_path()
                .map(|path| ConfigLocation { path, given: false })
                .ok_or_else(|| {
                    ConfigError::new(
                        "cannot find the config: neither $XDG_CONFIG_HOME nor $HOME is set; \
                         name the file with --config PATH",
                    )
                }),
        }
    }
}

/// The smallest useful config, shown when there is none.
pub const EXAMPLE: &str = r#"[accounts.work]
host = "imap.example.com"
user = "me@example.com"
password_command = "pass show mail/work"
maildir = "~/Mail/work"
"#;

/// Something that works but deserves the user's attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

/// A loaded, checked config file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where the per-account state databases live (`state_dir`, default
    /// `$XDG_STATE_HOME/ferry` or `~/.local/state/ferry`).
    pub state_dir: PathBuf,
    /// The accounts, in file order.
    pub accounts: Vec<AccountConfig>,
    /// The file's permission bits, when it was read from disk.
    pub file_mode: Option<u32>,
}

/// One `[accounts.NAME]` table, with every default applied.
///
/// Fields the doctor does not read yet are read by the sync run.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct AccountConfig {
    /// The NAME of `[accounts.NAME]`.
    pub name: String,
    /// The line of the account's table in the config file.
    pub line: usize,
    /// The server's host name or address; `None` for a `tunnel` account
    /// without one.
    pub host: Option<String>,
    /// The TCP port (default from `tls`: 993 implicit, 143 otherwise).
    pub port: u16,
    /// Transport protection (default implicit; `none` for `tunnel` accounts).
    pub tls: TlsMode,
    /// Extra trust anchor or the server's own certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Pinned certificate, normalised to `sha256:<64 lower-case hex>`.
    pub tls_fingerprint: Option<String>,
    /// IMAP over this shell command's stdin/stdout instead of TCP.
    pub tunnel: Option<String>,
    /// The login name; `None` only for a `tunnel` account (PREAUTH).
    pub user: Option<String>,
    /// Where the password comes from; `None` only for a `tunnel` account.
    pub password: Option<PasswordSource>,
    /// The SASL mechanism or LOGIN.
    pub auth: AuthMechanism,
    /// The Maildir root, `~` expanded.
    pub maildir: PathBuf,
    /// The local folder layout.
    pub layout: Layout,
    /// Folder patterns over local names (default `["*"]`).
    pub folders: Vec<String>,
    /// Server folder name -> local folder name.
    pub folder_map: BTreeMap<String, String>,
    /// Which way changes flow.
    pub sync: SyncDirection,
    /// Where missing folders may be created (default both).
    pub create: Sides,
    /// Where vanished folders may be removed, when empty (default none).
    pub remove: Sides,
    /// Where messages may be removed for good (default both).
    pub expunge: Sides,
    /// Messages larger than this many bytes are not downloaded.
    pub max_size: Option<u64>,
    /// The most IMAP connections used at once (1..=32, default 4).
    pub connections: u32,
    /// COMPRESS=DEFLATE policy.
    pub compress: CompressPolicy,
    /// How long to wait for the TCP connection (default 20 s, the IMAP
    /// client's).
    pub connect_timeout: Duration,
    /// How long to wait for the server during a command (default 120 s,
    /// the IMAP client's).
    pub timeout: Duration,
    /// The `password_env` variables of the whole config, removed from the
    /// environment of `password_command` and `tunnel` (any account's secret
    /// stays out of every child's environment).
    scrub_env: Vec<String>,
}

impl AccountConfig {
    /// Whose mail this is, as the state database records it: the server's
    /// user and host (`user@host`, the host in lower case), or the user
    /// and the tunnel command. Not the port, the TLS mode or the Maildir,
    /// which may change while the mailboxes stay the same.
    pub fn identity(&self) -> String {
        let user = self.user.as_deref().unwrap_or("");
        match (&self.host, &self.tunnel) {
            (Some(host), _) => format!("{user}@{}", host.to_ascii_lowercase()),
            (None, Some(tunnel)) => format!("{user}@tunnel {tunnel}"),
            (None, None) => format!("{user}@"),
        }
    }

    /// The options the IMAP client connects with. `host` is empty for a
    /// `tunnel` account that has none.
    pub fn server_options(&self) -> ServerOptions {
        let mut options = ServerOptions::new(self.host.clone().unwrap_or_default(), self.tls);
        options.port = self.port;
        options.ca_file = self.ca_file.clone();
        options.tls_fingerprint = self.tls_fingerprint.clone();
        options.tunnel = self.tunnel.clone();
        options.tunnel_env_remove = self.scrub_env.clone();
        options.connect_timeout = self.connect_timeout;
        options.read_timeout = self.timeout;
        options.compress = self.compress;
        options
    }

    /// The login: user, mechanism, and the secret, read now from the
    /// account's password source (running `password_command` if that is
    /// the source). Errors name the account, never the secret.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        self.credentials_with(&|var| std::env::var_os(var))
    }

    fn credentials_with(
        &self,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> anyhow::Result<Credentials> {
        let (Some(user), Some(source)) = (&self.user, &self.password) else {
            anyhow::bail!(
                "account {} has no user and password (a tunnel account that must answer PREAUTH)",
                self.name
            );
        };
        Ok(Credentials {
            user: user.clone(),
            secret: password::resolve(&self.name, source, env, &self.scrub_env)?,
            mechanism: self.auth,
        })
    }

    /// Whether a password or mail would cross a network unencrypted:
    /// `tls = "none"` over TCP to a host that is not loopback.
    pub fn sends_plaintext(&self) -> bool {
        self.tls == TlsMode::None
            && self.tunnel.is_none()
            && !self.host.as_deref().is_some_and(is_loopback)
    }
}

/// Whether `host` names this machine: `localhost` (and `*.localhost`),
/// 127.0.0.0/8, ::1.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// Reads and checks the config file at `location`.
    pub fn load(location: &ConfigLocation, dirs: &Dirs) -> Result<Config, ConfigError> {
        let path = &location.path;
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                ConfigError::new(format!("{}: the config is not valid UTF-8", path.display()))
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing_file(location));
            }
            Err(err) => {
                return Err(ConfigError::new(format!(
                    "cannot read the config {}: {err}",
                    path.display()
                )));
            }
        };
        let mut config = Config::parse(&text, path, dirs)?;
        config.file_mode = file_mode(path);
        Ok(config)
    }

    /// Checks config `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path, dirs: &Dirs) -> Result<Config, ConfigError> {
        let at = Locator::new(text);
        let raw: RawConfig = toml::from_str(text).map_err(|err| describe(&err, &at, path))?;
        Builder {
            path,
            at: &at,
            dirs,
        }
        .build(raw)
    }

    /// The accounts called `names`, in that order; all accounts when
    /// `names` is empty. An unknown name is an error listing the known ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<&AccountConfig>, ConfigError> {
        if names.is_empty() {
            return Ok(self.accounts.iter().collect());
        }
        let mut selected: Vec<&AccountConfig> = Vec::new();
        for name in names {
            let account = self
                .accounts
                .iter()
                .find(|account| &account.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                    ConfigError::new(format!(
                        "no account {name:?} in {}; the accounts are: {}",
                        self.path.display(),
                        known.join(", ")
                    ))
                })?;
            if !selected.iter().any(|a| a.name == account.name) {
                selected.push(account);
            }
        }
        Ok(selected)
    }

    /// Warnings about how the file itself is kept, for `account`: an
    /// inline `password` in a file that others may read.
    pub fn file_warnings(&self, account: &AccountConfig) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let inline = matches!(account.password, Some(PasswordSource::Inline(_)));
        if let Some(mode) = self.file_mode.filter(|mode| inline && mode & 0o044 != 0) {
            warnings.push(Warning {
                message: format!(
                    "{} holds the password of account {} and is readable by {} (mode {:03o})",
                    self.path.display(),
                    account.name,
                    if mode & 0o004 != 0 {
                        "everyone"
                    } else {
                        "its group"
                    },
                    mode & 0o777
                ),
                fix: format!(
                    "run `chmod 600 {}`, or move the password to password_command or password_env",
                    self.path.display()
                ),
            });
        }
        warnings
    }
}

fn file_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|meta| meta.permissions().mode())
}

fn missing_file(location: &ConfigLocation) -> ConfigError {
    let how = if location.given {
        "named with --config or $FERRY_CONFIG"
    } else {
        "the default: $XDG_CONFIG_HOME/ferry/config.toml, else ~/.config/ferry/config.toml; \
         --config PATH reads another"
    };
    let example: String = EXAMPLE
        .lines()
        .map(|line| format!("\n    {line}"))
        .collect();
    ConfigError::new(format!(
        "no config file at {} ({how}).\nCreate it; a minimal config is:\n{example}\n\n\
         ferry.toml(5) describes every key (man ferry.toml; in the source: man -l man/ferry.toml.5).",
        location.path.display()
    ))
}

/// Turns a serde error of the TOML reader into `file:line: message` with
/// the key and table named.
fn describe(err: &toml::de::Error, at: &Locator<'_>, file: &Path) -> ConfigError {
    let message = err.message().trim().replace('\n', ": ");
    let Some(span) = err.span() else {
        return ConfigError::new(format!("{}: {message}", file.display()));
    };
    let line = at.line(span.start);
    let path = at.path_at(span.start);
    let text = if !at.is_toml() {
        format!("invalid TOML: {message}")
    } else if path.is_empty() {
        message
    } else if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(',').trim();
        format!(
            "unknown key \"{key}\" {}; {expected}",
            place(&path[..path.len() - 1])
        )
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        format!("the required key \"{key}\" is missing {}", place(&path))
    } else {
        let (key, table) = path.split_last().expect("not empty");
        format!("bad value for \"{key}\" {}: {message}", place(table))
    };
    ConfigError::new(format!("{}:{line}: {text}", file.display()))
}

/// `in [accounts.work]`, or `at the top level`.
fn place<S: AsRef<str>>(table: &[S]) -> String {
    if table.is_empty() {
        return "at the top level".to_string();
    }
    let names: Vec<String> = table.iter().map(|name| toml_key(name.as_ref())).collect();
    format!("in [{}]", names.join("."))
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathSetting>,
    #[serde(default)]
    accounts: BTreeMap<String, RawAccount>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of account settings")]
struct RawAccount {
    host: Option<NonEmpty>,
    port: Option<Port>,
    tls: Option<TlsSetting>,
    ca_file: Option<PathSetting>,
    tls_fingerprint: Option<FingerprintSetting>,
    tunnel: Option<NonEmpty>,
    user: Option<NonEmpty>,
    password_command: Option<NonEmpty>,
    password: Option<InlinePassword>,
    password_env: Option<NonEmpty>,
    auth: Option<AuthSetting>,
    maildir: PathSetting,
    layout: Option<Layout>,
    folders: Option<Vec<NonEmpty>>,
    folder_map: Option<BTreeMap<String, NonEmpty>>,
    sync: Option<SyncDirection>,
    create: Option<Sides>,
    remove: Option<Sides>,
    expunge: Option<Sides>,
    max_size: Option<ByteSize>,
    connections: Option<Connections>,
    compress: Option<CompressSetting>,
    connect_timeout: Option<Seconds>,
    timeout: Option<Seconds>,
}

/// Applies defaults and the checks that span several keys.
struct Builder<'a> {
    path: &'a Path,
    at: &'a Locator<'a>,
    dirs: &'a Dirs,
}

impl Builder<'_> {
    /// `file:line: message`, at the key `path`.
    fn error(&self, key: &[&str], message: impl fmt::Display) -> ConfigError {
        ConfigError::new(format!(
            "{}:{}: {message}",
            self.path.display(),
            self.at.line_of(key)
        ))
    }

    fn build(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let state_dir = match &raw.state_dir {
            Some(dir) => dir
                .expand(self.dirs.home.as_deref())
                .map_err(|why| self.error(&["state_dir"], why))?,
            None => self.dirs.default_state_dir().ok_or_else(|| {
                ConfigError::new(
                    "neither $XDG_STATE_HOME nor $HOME is set; set state_dir in the config",
                )
            })?,
        };
        if raw.accounts.is_empty() {
            return Err(ConfigError::new(format!(
                "{}: no accounts; add an [accounts.NAME] table, for example:\n\n{EXAMPLE}",
                self.path.display()
            )));
        }
        let scrub_env: Vec<String> = raw
            .accounts
            .values()
            .filter_map(|account| account.password_env.as_ref().map(|var| var.0.clone()))
            .collect();
        // File order, as the user wrote the accounts.
        let mut order = self.at.keys_of(&["accounts"]);
        order.retain(|name| raw.accounts.contains_key(name));
        let mut raw_accounts = raw.accounts;
        let mut accounts = Vec::new();
        for name in order {
            let account = raw_accounts.remove(&name).expect("listed");
            accounts.push(self.account(name, account, &scrub_env)?);
        }
        for (name, account) in raw_accounts {
            accounts.push(self.account(name, account, &scrub_env)?);
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            state_dir,
            accounts,
            file_mode: None,
        })
    }

    fn account(
        &self,
        name: String,
        raw: RawAccount,
        scrub_env: &[String],
    ) -> Result<AccountConfig, ConfigError> {
        let table = ["accounts", name.as_str()];
        let at_key = |key: &'static str| [table[0], table[1], key];
        let in_table = place(&table);
        let header = in_table.trim_start_matches("in ");

        let valid_name = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.@+".contains(c));
        if !valid_name {
            return Err(self.error(
                &table,
                format!(
                    "account name {name:?} {in_table}: use letters, digits and - _ . @ + \
                     (not a leading .)"
                ),
            ));
        }

        let host = raw.host.map(|h| h.0.trim().to_string());
        let tunnel = raw.tunnel.map(|t| t.0);
        if host.is_none() && tunnel.is_none() {
            return Err(self.error(
                &table,
                format!("{header} needs \"host\" (or \"tunnel\"): where is the server?"),
            ));
        }
        let tls: TlsMode = match raw.tls {
            Some(tls) => tls.into(),
            // Through a tunnel the command (ssh) protects the connection.
            None if tunnel.is_some() => TlsMode::None,
            None => TlsMode::Implicit,
        };
        if tls != TlsMode::None && host.is_none() {
            return Err(self.error(
                &at_key("tls"),
                format!(
                    "{header} uses TLS through a tunnel but has no \"host\": set host to the \
                     name the server's certificate carries, or tls = \"none\""
                ),
            ));
        }
        if tls == TlsMode::None {
            for key in ["tls_fingerprint", "ca_file"] {
                let set = match key {
                    "ca_file" => raw.ca_file.is_some(),
                    _ => raw.tls_fingerprint.is_some(),
                };
                if set {
                    return Err(self.error(
                        &at_key(key),
                        format!(
                            "\"{key}\" {in_table} has no effect with tls = \"none\": remove it, \
                             or use tls = \"implicit\" or \"starttls\""
                        ),
                    ));
                }
            }
        }

        let mut sources = Vec::new();
        if let Some(command) = raw.password_command {
            sources.push(PasswordSource::Command(command.0));
        }
        if let Some(password) = raw.password {
            sources.push(PasswordSource::Inline(Secret::new(password.0)));
        }
        if let Some(var) = raw.password_env {
            sources.push(PasswordSource::Env(var.0));
        }
        if sources.len() > 1 {
            let keys: Vec<&str> = sources.iter().map(PasswordSource::key).collect();
            return Err(self.error(
                &at_key(keys[1]),
                format!(
                    "{header} has both \"{}\" and \"{}\": keep exactly one password source",
                    keys[0], keys[1]
                ),
            ));
        }
        let password = sources.pop();
        let user = raw.user.map(|u| u.0);
        if tunnel.is_none() || password.is_some() {
            if password.is_none() {
                return Err(self.error(
                    &table,
                    format!(
                        "{header} has no password: set one of \"password_command\", \
                         \"password_env\" or \"password\""
                    ),
                ));
            }
            if user.is_none() {
                return Err(self.error(&table, format!("{header} needs \"user\", the login name")));
            }
        }

        let maildir = raw
            .maildir
            .expand(self.dirs.home.as_deref())
            .map_err(|why| self.error(&at_key("maildir"), why))?;
        let ca_file = raw
            .ca_file
            .map(|path| path.expand(self.dirs.home.as_deref()))
            .transpose()
            .map_err(|why| self.error(&at_key("ca_file"), why))?;

        let folder_map: BTreeMap<String, String> = raw
            .folder_map
            .unwrap_or_default()
            .into_iter()
            .map(|(far, near)| (far, near.0))
            .collect();
        let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
        for (far, near) in &folder_map {
            if let Some(other) = targets.insert(near, far) {
                return Err(self.error(
                    &at_key("folder_map"),
                    format!(
                        "\"folder_map\" {in_table} maps both {other:?} and {far:?} to {near:?}; \
                         each local name can stand for one server folder"
                    ),
                ));
            }
        }

        let client_defaults = ServerOptions::new(String::new(), tls);
        Ok(AccountConfig {
            line: self.at.line_of(&table),
            host,
            port: raw.port.map_or(tls.default_port(), |p| p.0),
            tls,
            ca_file,
            tls_fingerprint: raw.tls_fingerprint.map(|f| f.0),
            tunnel,
            user,
            password,
            auth: raw.auth.map_or(AuthMechanism::Auto, Into::into),
            maildir,
            layout: raw.layout.unwrap_or_default(),
            folders: raw.folders.map_or_else(
                || vec!["*".to_string()],
                |folders| folders.into_iter().map(|f| f.0).collect(),
            ),
            folder_map,
            sync: raw.sync.unwrap_or_default(),
            create: raw.create.unwrap_or(Sides::Both),
            remove: raw.remove.unwrap_or(Sides::None),
            expunge: raw.expunge.unwrap_or(Sides::Both),
            max_size: raw.max_size.map(|s| s.0),
            connections: raw.connections.map_or(DEFAULT_CONNECTIONS, |c| c.0),
            compress: raw.compress.map_or(CompressPolicy::Auto, Into::into),
            // The client's own defaults (20 s and 120 s, documented).
            connect_timeout: raw
                .connect_timeout
                .map_or(client_defaults.connect_timeout, |s| s.0),
            timeout: raw.timeout.map_or(client_defaults.read_timeout, |s| s.0),
            scrub_env: scrub_env.to_vec(),
            name,
        })
    }
}

#[cfg(test)]
mod tests;
