//! The config contract: defaults, every key, and errors that name the key
//! and the line.

use super::*;
use std::ffi::OsString;

fn dirs() -> Dirs {
    Dirs {
        home: Some(PathBuf::from("/home/me")),
        config_home: None,
        state_home: None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/cfg/config.toml"), &dirs())
}

fn error(text: &str) -> String {
    parse(text).expect_err("must be refused").to_string()
}

const MINIMAL: &str = r#"
[accounts.work]
host = "imap.example.com"
user = "me@example.com"
password_command = "pass show mail/work"
maildir = "~/Mail/work"
"#;

#[test]
fn minimal_account_gets_the_documented_defaults() {
    let config = parse(MINIMAL).expect("valid");
    assert_eq!(
        config.state_dir,
        PathBuf::from("/home/me/.local/state/ferry")
    );
    let [account] = config.accounts.as_slice() else {
        panic!("one account")
    };
    assert_eq!(account.name, "work");
    assert_eq!(account.line, 2);
    assert_eq!(account.host.as_deref(), Some("imap.example.com"));
    assert_eq!(account.port, 993);
    assert_eq!(account.tls, TlsMode::Implicit);
    assert_eq!(account.auth, AuthMechanism::Auto);
    assert_eq!(account.maildir, PathBuf::from("/home/me/Mail/work"));
    assert_eq!(account.layout, Layout::Fs);
    assert_eq!(account.folders, ["*"]);
    assert!(account.folder_map.is_empty());
    assert_eq!(account.sync, SyncDirection::Both);
    assert_eq!(account.create, Sides::Both);
    assert_eq!(account.remove, Sides::None);
    assert_eq!(account.expunge, Sides::Both);
    assert_eq!(account.max_size, None);
    assert_eq!(account.connections, 4);
    assert_eq!(account.compress, CompressPolicy::Auto);
    assert_eq!(account.timeout, Duration::from_secs(120));
    assert_eq!(account.connect_timeout, Duration::from_secs(20));
    assert!(
        matches!(&account.password, Some(PasswordSource::Command(c)) if c == "pass show mail/work")
    );

    let options = account.server_options();
    assert_eq!(options.host, "imap.example.com");
    assert_eq!(options.port, 993);
    assert_eq!(options.tls, TlsMode::Implicit);
    assert_eq!(options.read_timeout, Duration::from_secs(120));
}

#[test]
fn full_account_sets_every_key() {
    let fingerprint = "AB:".repeat(31) + "AB";
    let text = format!(
        r#"
state_dir = "/var/lib/ferry"

[accounts.work]
host = "imap.example.com"
port = 1993
tls = "starttls"
ca_file = "~/certs/ca.pem"
tls_fingerprint = "sha256:{fingerprint}"
user = "me@example.com"
password = "hunter2"
auth = "xoauth2"
maildir = "/srv/mail/work"
layout = "maildir++"
folders = ["*", "!Spam"]
folder_map = {{ "[Gmail]/Sent Mail" = "Sent" }}
sync = "pull"
create = "near"
remove = "far"
expunge = "none"
max_size = "50M"
connections = 8
compress = "never"
timeout = 30
connect_timeout = 5

[accounts.tunnelled]
tunnel = "ssh mail /usr/lib/dovecot/imap"
maildir = "~/Mail/t"
"#
    );
    let config = parse(&text).expect("valid");
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/ferry"));
    let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["work", "tunnelled"], "file order");
    let work = &config.accounts[0];
    assert_eq!(work.port, 1993);
    assert_eq!(work.tls, TlsMode::StartTls);
    assert_eq!(work.ca_file, Some(PathBuf::from("/home/me/certs/ca.pem")));
    assert_eq!(
        work.tls_fingerprint.as_deref(),
        Some(format!("sha256:{}", "ab".repeat(32)).as_str())
    );
    assert_eq!(work.auth, AuthMechanism::XOAuth2);
    assert_eq!(work.layout, Layout::MaildirPlusPlus);
    assert_eq!(work.folders, ["*", "!Spam"]);
    assert_eq!(
        work.folder_map.get("[Gmail]/Sent Mail").map(String::as_str),
        Some("Sent")
    );
    assert_eq!(work.sync, SyncDirection::Pull);
    assert_eq!(work.create, Sides::Near);
    assert_eq!(work.remove, Sides::Far);
    assert_eq!(work.expunge, Sides::None);
    assert_eq!(work.max_size, Some(50 * 1024 * 1024));
    assert_eq!(work.connections, 8);
    assert_eq!(work.compress, CompressPolicy::Never);
    assert_eq!(work.timeout, Duration::from_secs(30));
    let options = work.server_options();
    assert_eq!(options.port, 1993);
    assert_eq!(options.connect_timeout, Duration::from_secs(5));
    assert_eq!(options.compress, CompressPolicy::Never);
    assert_eq!(options.tls_fingerprint, work.tls_fingerprint);
    let credentials = work.credentials().expect("inline");
    assert_eq!(credentials.user, "me@example.com");
    assert_eq!(credentials.secret.expose(), "hunter2");
    assert_eq!(credentials.mechanism, AuthMechanism::XOAuth2);
    assert!(!format!("{work:?}").contains("hunter2"));

    let tunnel = &config.accounts[1];
    assert_eq!(tunnel.tls, TlsMode::None, "a tunnel defaults to no TLS");
    assert_eq!(tunnel.port, 143);
    assert!(tunnel.user.is_none() && tunnel.password.is_none());
    assert!(!tunnel.sends_plaintext());
    assert!(tunnel.credentials().is_err());
}

#[test]
fn port_defaults_follow_tls() {
    for (tls, port) in [("implicit", 993), ("starttls", 143), ("none", 143)] {
        let config = parse(&MINIMAL.replace(
            "[accounts.work]",
            &format!("[accounts.work]\ntls = \"{tls}\""),
        ))
        .expect("valid");
        assert_eq!(config.accounts[0].port, port, "{tls}");
    }
}

#[test]
fn xdg_state_home_is_the_default_state_dir() {
    let dirs = Dirs {
        state_home: Some(PathBuf::from("/xdg/state")),
        ..dirs()
    };
    let config = Config::parse(MINIMAL, Path::new("c.toml"), &dirs).expect("valid");
    assert_eq!(config.state_dir, PathBuf::from("/xdg/state/ferry"));
    assert_eq!(
        dirs.default_config_path(),
        Some(PathBuf::from("/home/me/.config/ferry/config.toml"))
    );
}

#[test]
fn unknown_key_names_key_table_line_and_the_expected_keys() {
    let text = MINIMAL.replace("host =", "hots =");
    assert_eq!(
        error(&text).lines().next().expect("a line"),
        error(&text),
        "one line"
    );
    let message = error(&text);
    assert!(
        message.starts_with(
            "/cfg/config.toml:3: unknown key \"hots\" in [accounts.work]; expected one of"
        ),
        "{message}"
    );
    assert!(message.contains("`host`"), "{message}");

    let message = error(&format!("statedir = \"/x\"\n{MINIMAL}"));
    assert!(
        message.starts_with("/cfg/config.toml:1: unknown key \"statedir\" at the top level"),
        "{message}"
    );
}

#[test]
fn bad_values_name_key_table_and_line() {
    let cases = [
        ("tls = \"ssl\"", "\"tls\"", "unknown variant `ssl`"),
        ("port = 0", "\"port\"", "1 to 65535"),
        ("port = 70000", "\"port\"", "1 to 65535"),
        ("auth = \"cram-md5\"", "\"auth\"", "oauthbearer"),
        ("layout = \"mh\"", "\"layout\"", "maildir++"),
        ("sync = \"sideways\"", "\"sync\"", "pull"),
        ("create = \"all\"", "\"create\"", "none"),
        ("remove = true", "\"remove\"", "string"),
        ("expunge = \"nothing\"", "\"expunge\"", "both"),
        ("max_size = \"5X\"", "\"max_size\"", "50M"),
        ("max_size = 0", "\"max_size\"", "50M"),
        ("connections = 0", "\"connections\"", "1 to 32"),
        ("connections = 33", "\"connections\"", "1 to 32"),
        ("compress = \"yes\"", "\"compress\"", "always"),
        ("timeout = 0", "\"timeout\"", "whole seconds"),
        (
            "tls_fingerprint = \"sha1:abcd\"",
            "\"tls_fingerprint\"",
            "64 hex digits",
        ),
        ("ca_file = \"certs/ca.pem\"", "\"ca_file\"", "absolute"),
        ("folders = \"*\"", "\"folders\"", "sequence"),
        ("folders = [\"*\", 3]", "\"folders\"", "string"),
        ("tunnel = \"\"", "\"tunnel\"", "empty"),
    ];
    for (line, key, why) in cases {
        let text = MINIMAL.replace("[accounts.work]", &format!("[accounts.work]\n{line}"));
        let message = error(&text);
        let want = format!("/cfg/config.toml:3: bad value for {key} in [accounts.work]: ");
        assert!(message.starts_with(&want), "{line}: {message}");
        assert!(message.contains(why), "{line}: {message}");
    }
    let message = error(&MINIMAL.replace("~/Mail/work", "Mail/work"));
    assert!(
        message.starts_with("/cfg/config.toml:6: bad value for \"maildir\" in [accounts.work]: \"Mail/work\" is not an absolute path"),
        "{message}"
    );
}

#[test]
fn a_non_string_password_is_refused_without_showing_it() {
    let text = MINIMAL.replace(
        "password_command = \"pass show mail/work\"",
        "password = 987654321",
    );
    let message = error(&text);
    assert!(message.contains("\"password\""), "{message}");
    assert!(!message.contains("987654321"), "{message}");
}

#[test]
fn missing_required_keys_are_named() {
    let message = error("[accounts.work]\nhost = \"h\"\nuser = \"u\"\npassword = \"p\"\n");
    assert_eq!(
        message,
        "/cfg/config.toml:1: the required key \"maildir\" is missing in [accounts.work]"
    );
    let message = error("\n[accounts.work]\nuser = \"u\"\npassword = \"p\"\nmaildir = \"/m\"\n");
    assert!(
        message.starts_with("/cfg/config.toml:2: [accounts.work] needs \"host\""),
        "{message}"
    );
    let message = error(&MINIMAL.replace("user = \"me@example.com\"\n", ""));
    assert!(message.contains("needs \"user\""), "{message}");
    let message = error(&MINIMAL.replace("password_command = \"pass show mail/work\"\n", ""));
    assert!(message.contains("has no password"), "{message}");
    assert!(error("").contains("no accounts"));
}

#[test]
fn two_password_sources_are_refused() {
    let text = MINIMAL.replace("maildir", "password_env = \"PW\"\nmaildir");
    let message = error(&text);
    assert_eq!(
        message,
        "/cfg/config.toml:6: [accounts.work] has both \"password_command\" and \"password_env\": keep exactly one password source"
    );
}

#[test]
fn contradictions_are_refused() {
    let text = MINIMAL.replace("maildir", "tls = \"none\"\nca_file = \"/ca.pem\"\nmaildir");
    assert!(error(&text).contains("\"ca_file\" in [accounts.work] has no effect"));
    let text = "[accounts.t]\ntunnel = \"ssh x imapd\"\ntls = \"starttls\"\nmaildir = \"/m\"\n";
    assert!(error(text).starts_with("/cfg/config.toml:3: [accounts.t] uses TLS through a tunnel"));
    let text = MINIMAL.replace("maildir", "folder_map = { A = \"X\", B = \"X\" }\nmaildir");
    assert!(
        error(&text).contains("maps both \"A\" and \"B\" to \"X\""),
        "{}",
        error(&text)
    );
    let text = MINIMAL.replace("[accounts.work]", "[accounts.\"a/b\"]");
    assert!(
        error(&text).contains("account name \"a/b\""),
        "{}",
        error(&text)
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let message = error("[accounts.work]\nhost = \"unterminated\nmaildir = \"/m\"\n");
    assert!(
        message.starts_with("/cfg/config.toml:2: invalid TOML: "),
        "{message}"
    );
}

#[test]
fn select_keeps_order_and_names_the_known_accounts() {
    let text = format!("{MINIMAL}\n{}", MINIMAL.replace("work", "home"));
    let config = parse(&text).expect("valid");
    let all: Vec<&str> = config
        .select(&[])
        .expect("all")
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(all, ["work", "home"]);
    let picked = config.select(&["home".into()]).expect("known");
    assert_eq!(picked[0].name, "home");
    let message = config
        .select(&["play".into()])
        .expect_err("unknown")
        .to_string();
    assert_eq!(
        message,
        "no account \"play\" in /cfg/config.toml; the accounts are: work, home"
    );
}

#[test]
fn password_env_is_read_when_asked_and_scrubbed_from_children() {
    let text = format!(
        "{}\n[accounts.other]\nhost = \"h\"\nuser = \"u\"\npassword_env = \"FERRY_PW\"\nmaildir = \"/m\"\n",
        MINIMAL
    );
    let config = parse(&text).expect("valid");
    let other = &config.accounts[1];
    let env = |var: &str| (var == "FERRY_PW").then(|| OsString::from("s3cret"));
    let credentials = other.credentials_with(&env).expect("set");
    assert_eq!(credentials.secret.expose(), "s3cret");
    let err = other.credentials_with(&|_| None).expect_err("unset");
    assert!(err.to_string().contains("account other"), "{err}");
    assert!(err.to_string().contains("$FERRY_PW"), "{err}");
    assert_eq!(config.accounts[0].scrub_env, ["FERRY_PW"]);
}

#[test]
fn plaintext_is_flagged_only_off_this_machine() {
    for (host, plaintext) in [
        ("imap.example.com", true),
        ("192.0.2.1", true),
        ("localhost", false),
        ("127.0.0.1", false),
        ("::1", false),
        ("[::1]", false),
    ] {
        let text = MINIMAL
            .replace("imap.example.com", host)
            .replace("maildir", "tls = \"none\"\nmaildir");
        let config = parse(&text).expect("valid");
        assert_eq!(config.accounts[0].sends_plaintext(), plaintext, "{host}");
    }
}

#[test]
fn inline_password_in_a_readable_file_warns() {
    let text = MINIMAL.replace(
        "password_command = \"pass show mail/work\"",
        "password = \"x\"",
    );
    let mut config = parse(&text).expect("valid");
    config.file_mode = Some(0o100644);
    let warnings = config.file_warnings(&config.accounts[0]);
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0]
            .message
            .contains("readable by everyone (mode 644)"),
        "{warnings:?}"
    );
    assert!(
        warnings[0].fix.contains("chmod 600 /cfg/config.toml"),
        "{warnings:?}"
    );
    config.file_mode = Some(0o100600);
    assert!(config.file_warnings(&config.accounts[0]).is_empty());
    let config = parse(MINIMAL).expect("valid");
    assert!(config.file_warnings(&config.accounts[0]).is_empty());
}

/// The keys serde's derive reads for `T`: the `fields` it passes to
/// `deserialize_struct`, the very list `deny_unknown_fields` checks
/// against (and the one an unknown key's error lists).
fn serde_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor, value::Error};

    struct Capture<'a>(&'a mut Option<&'static [&'static str]>);

    impl<'de> de::Deserializer<'de> for Capture<'_> {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            *self.0 = Some(fields);
            Err(de::Error::custom("fields captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = None;
    let _ = T::deserialize(Capture(&mut fields));
    fields.expect("a struct with named fields")
}

#[test]
fn the_key_lists_are_the_keys_the_parser_accepts() {
    assert_eq!(
        serde_fields::<RawConfig>(),
        keys::TOP_LEVEL_KEYS,
        "update TOP_LEVEL_KEYS in src/config/keys.rs (and man/ferry.toml.5, docs/config.md)"
    );
    assert_eq!(
        serde_fields::<RawAccount>(),
        keys::ACCOUNT_KEYS,
        "update ACCOUNT_KEYS in src/config/keys.rs (and man/ferry.toml.5, docs/config.md)"
    );
}

#[test]
fn an_unknown_key_lists_every_account_key() {
    let message = error(&MINIMAL.replace("host =", "hots ="));
    let (_, expected) = message.split_once("expected one of").expect("a list");
    let listed: Vec<&str> = expected
        .split(',')
        .map(|key| key.trim().trim_matches('`'))
        .collect();
    assert_eq!(listed, keys::ACCOUNT_KEYS, "{message}");
}
