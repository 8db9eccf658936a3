//! Every key the config file accepts, as lists.
//!
//! The parser itself takes its keys from the fields of `RawConfig` and
//! `RawAccount` (serde's `deny_unknown_fields` refuses any other); these
//! lists repeat them for what must cover each key: the unit test
//! `the_key_lists_are_the_keys_the_parser_accepts` (src/config/tests.rs)
//! compares them with the fields serde reads, and tests/manpages.rs (which
//! includes this file) checks that man/ferry.toml.5 documents each one. A
//! new key therefore fails a test until it is listed here and documented.

/// The keys of the top level of the config file, in `RawConfig`'s order.
pub const TOP_LEVEL_KEYS: &[&str] = &["state_dir", "accounts"];

/// The keys of an `[accounts.NAME]` table, in `RawAccount`'s order.
pub const ACCOUNT_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "ca_file",
    "tls_fingerprint",
    "tunnel",
    "user",
    "password_command",
    "password",
    "password_env",
    "auth",
    "maildir",
    "layout",
    "folders",
    "folder_map",
    "sync",
    "create",
    "remove",
    "expunge",
    "max_size",
    "connections",
    "compress",
    "connect_timeout",
    "timeout",
];
