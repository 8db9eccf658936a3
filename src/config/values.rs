//! The value types of the config file: the enums the keys take, sizes,
//! fingerprints, paths, and how each is read (with an error naming what is
//! allowed, which the loader turns into `file:line: ...`).

use ferry_imap::{AuthMechanism, CompressPolicy, TlsMode};
use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::path::PathBuf;
use std::time::Duration;

/// How folder names map to directories under the Maildir root
/// (design.md, "Local layout").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Layout {
    /// `<maildir>/INBOX`, `<maildir>/A/B` (the default).
    #[default]
    #[serde(rename = "fs")]
    Fs,
    /// INBOX is the root, folder `A/B` is `.A.B` (Dovecot, Courier).
    #[serde(rename = "maildir++")]
    MaildirPlusPlus,
}

impl Layout {
    /// The spelling in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Fs => "fs",
            Layout::MaildirPlusPlus => "maildir++",
        }
    }
}

/// Which way changes flow (`sync = "both" | "pull" | "push"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncDirection {
    /// Both ways (the default).
    #[default]
    Both,
    /// Server to Maildir only: ferry writes only to the near side.
    Pull,
    /// Maildir to server only: ferry writes only to the far side.
    Push,
}

/// A set of sides (`"both" | "far" | "near" | "none"`), for `create`,
/// `remove` and `expunge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sides {
    /// The server and the Maildir.
    Both,
    /// The server only.
    Far,
    /// The Maildir only.
    Near,
    /// Neither.
    None,
}

/// `tls`, as written in the config.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum TlsSetting {
    Implicit,
    StartTls,
    None,
}

impl From<TlsSetting> for TlsMode {
    fn from(value: TlsSetting) -> TlsMode {
        match value {
            TlsSetting::Implicit => TlsMode::Implicit,
            TlsSetting::StartTls => TlsMode::StartTls,
            TlsSetting::None => TlsMode::None,
        }
    }
}

/// `auth`, as written in the config.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum AuthSetting {
    Auto,
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
}

impl From<AuthSetting> for AuthMechanism {
    fn from(value: AuthSetting) -> AuthMechanism {
        match value {
            AuthSetting::Auto => AuthMechanism::Auto,
            AuthSetting::Plain => AuthMechanism::Plain,
            AuthSetting::Login => AuthMechanism::Login,
            AuthSetting::XOAuth2 => AuthMechanism::XOAuth2,
            AuthSetting::OAuthBearer => AuthMechanism::OAuthBearer,
        }
    }
}

/// `compress`, as written in the config.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum CompressSetting {
    Auto,
    Always,
    Never,
}

impl From<CompressSetting> for CompressPolicy {
    fn from(value: CompressSetting) -> CompressPolicy {
        match value {
            CompressSetting::Auto => CompressPolicy::Auto,
            CompressSetting::Always => CompressPolicy::Always,
            CompressSetting::Never => CompressPolicy::Never,
        }
    }
}

/// A string that must not be empty (host, tunnel, commands, variable names).
#[derive(Debug, Clone)]
pub(super) struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        Ok(NonEmpty(text))
    }
}

/// An inline `password`: any string, read without ever quoting the value in
/// an error (serde's type errors would print it).
pub(super) struct InlinePassword(pub String);

impl<'de> Deserialize<'de> for InlinePassword {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(deserializer) {
            Ok(toml::Value::String(text)) if !text.is_empty() => Ok(InlinePassword(text)),
            Ok(toml::Value::String(_)) => Err(de::Error::custom("must not be empty")),
            _ => Err(de::Error::custom(
                "must be a quoted string (the value is not shown)",
            )),
        }
    }
}

/// A path as written: absolute, `~` or `~/...`; expanded against `$HOME`
/// by the loader.
#[derive(Debug, Clone)]
pub(super) struct PathSetting(pub String);

impl<'de> Deserialize<'de> for PathSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\0') {
            return Err(de::Error::custom("a path cannot contain NUL"));
        }
        if text == "~" || text.starts_with("~/") || text.starts_with('/') {
            Ok(PathSetting(text))
        } else {
            Err(de::Error::custom(format!(
                "{text:?} is not an absolute path; write it as /... or ~/..."
            )))
        }
    }
}

impl PathSetting {
    /// The path with a leading `~` replaced by `home`.
    pub fn expand(&self, home: Option<&std::path::Path>) -> Result<PathBuf, String> {
        let Some(rest) = self.0.strip_prefix('~') else {
            return Ok(PathBuf::from(&self.0));
        };
        let home = home.ok_or_else(|| {
            format!(
                "{:?} starts with ~ but $HOME is not set; write the path in full",
                self.0
            )
        })?;
        Ok(home.join(rest.trim_start_matches('/')))
    }
}

/// A TCP port, 1..=65535.
#[derive(Debug, Clone, Copy)]
pub(super) struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        match u16::try_from(value) {
            Ok(port) if port > 0 => Ok(Port(port)),
            _ => Err(de::Error::custom(format!(
                "{value} is not a port; use 1 to 65535"
            ))),
        }
    }
}

/// The number of IMAP connections per account.
pub const MAX_CONNECTIONS: u32 = 32;

/// `connections`: 1..=32.
#[derive(Debug, Clone, Copy)]
pub(super) struct Connections(pub u32);

impl<'de> Deserialize<'de> for Connections {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        match u32::try_from(value) {
            Ok(n) if (1..=MAX_CONNECTIONS).contains(&n) => Ok(Connections(n)),
            _ => Err(de::Error::custom(format!(
                "{value} is out of range; use 1 to {MAX_CONNECTIONS}"
            ))),
        }
    }
}

/// A timeout in whole seconds, 1 to a day.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const DAY: i64 = 24 * 60 * 60;
        let value = i64::deserialize(deserializer)?;
        match u64::try_from(value) {
            Ok(secs) if (1..=DAY as u64).contains(&secs) => Ok(Seconds(Duration::from_secs(secs))),
            _ => Err(de::Error::custom(format!(
                "{value} is out of range; give whole seconds from 1 to {DAY}"
            ))),
        }
    }
}

/// `max_size`: a number of bytes, or a string with a K, M or G suffix.
#[derive(Debug, Clone, Copy)]
pub(super) struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let size = match toml::Value::deserialize(deserializer)? {
            toml::Value::Integer(n) => u64::try_from(n).ok(),
            toml::Value::String(text) => parse_size(&text),
            _ => None,
        };
        match size {
            Some(bytes) if bytes > 0 => Ok(ByteSize(bytes)),
            _ => Err(de::Error::custom(
                "expected a size such as \"50M\", \"512K\", \"1G\" or a number of bytes (K = 1024)",
            )),
        }
    }
}

/// Parses `"50M"`, `"512k"`, `"1G"`, `"2MiB"`, `"100"` into bytes (binary
/// multiples).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(digits_end);
    let number: u64 = digits.parse().ok()?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

/// `tls_fingerprint`, normalised to `sha256:<64 lower-case hex digits>`.
#[derive(Debug, Clone)]
pub(super) struct FingerprintSetting(pub String);

impl<'de> Deserialize<'de> for FingerprintSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        normalize_fingerprint(&text)
            .map(FingerprintSetting)
            .ok_or_else(|| {
                de::Error::custom(
                    "expected \"sha256:\" and 64 hex digits (colons allowed), as printed by \
                     `openssl x509 -noout -fingerprint -sha256`",
                )
            })
    }
}

/// Normalises a SHA-256 certificate fingerprint: an optional `sha256:`
/// prefix (any case), then 64 hex digits, optionally in colon-separated
/// pairs. `None` when `text` is not such a fingerprint.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let text = text.trim();
    let hex = match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &text[7..],
        _ => text,
    };
    if hex.starts_with(':') || hex.ends_with(':') || hex.contains("::") {
        return None;
    }
    let digits: String = hex.chars().filter(|&c| c != ':').collect();
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("sha256:{}", digits.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("50M"), Some(50 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("1234"), Some(1234));
        for bad in ["", "M", "5X", "-5M", "1.5M", "99999999999999999999G"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fingerprints() {
        let hex = "AB".repeat(32);
        let want = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            normalize_fingerprint(&format!("sha256:{hex}")),
            Some(want.clone())
        );
        assert_eq!(
            normalize_fingerprint(&format!("SHA256:{hex}")),
            Some(want.clone())
        );
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(
            normalize_fingerprint(&format!("sha256:{colons}")),
            Some(want.clone())
        );
        assert_eq!(normalize_fingerprint(&hex), Some(want));
        for bad in [
            "sha256:".to_string(),
            format!("sha1:{hex}"),
            format!("sha256:{}", &hex[..62]),
            format!("sha256:{hex}ab"),
            format!("sha256:{}zz", &hex[..62]),
            format!("sha256::{hex}"),
            format!("sha256:{colons}:"),
        ] {
            assert_eq!(normalize_fingerprint(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_expand_home() {
        let home = std::path::Path::new("/home/me");
        let p = |s: &str| PathSetting(s.to_string());
        assert_eq!(
            p("~/Mail").expand(Some(home)),
            Ok(PathBuf::from("/home/me/Mail"))
        );
        assert_eq!(p("~").expand(Some(home)), Ok(PathBuf::from("/home/me")));
        assert_eq!(p("/srv/mail").expand(None), Ok(PathBuf::from("/srv/mail")));
        assert!(p("~/Mail").expand(None).is_err());
    }
}
