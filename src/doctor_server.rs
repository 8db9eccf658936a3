//! The server part of `ferry doctor`: connect, TLS, login, capabilities,
//! folders. Every failure names what went wrong and what to change.

use crate::config::AccountConfig;
use crate::doctor::Report;
use ferry_imap::{Credentials, Error, Session};

/// The extensions ferry uses, what each gives, and what happens without it.
const FEATURES: [(&str, &str, &str); 8] = [
    (
        "CONDSTORE",
        "flag changes are read incrementally (CHANGEDSINCE)",
        "every sync of a changed folder reads all its flags",
    ),
    (
        "QRESYNC",
        "expunges are learnt in one round trip (VANISHED)",
        "expunges are found by listing the folder's UIDs",
    ),
    (
        "MOVE",
        "moves on the server keep the message (UID MOVE)",
        "moves use COPY, then mark and expunge the original",
    ),
    (
        "UIDPLUS",
        "ferry expunges only its own messages and learns new UIDs at once",
        "messages ferry removes stay marked \\Deleted on the server",
    ),
    (
        "LIST-STATUS",
        "one round trip reports every folder's state",
        "folder states are asked with pipelined STATUS commands",
    ),
    (
        "COMPRESS=DEFLATE",
        "traffic can be compressed (compress = \"auto\" uses it for remote hosts)",
        "traffic is not compressed",
    ),
    (
        "IDLE",
        "the server can push changes (for `ferry watch`)",
        "changes are found by polling",
    ),
    (
        "NOTIFY",
        "the server can report changes in every folder at once (not used by ferry yet)",
        "-",
    ),
];

/// Connects, logs in and looks around; adds one line per finding.
pub fn check_connection(
    account: &AccountConfig,
    credentials: Option<Credentials>,
    report: &mut Report,
) {
    let options = account.server_options();
    let mut session = match Session::connect_traced(&options, crate::trace::protocol_trace()) {
        Ok(session) => session,
        Err(e) => {
            report.error("connect", e.to_string(), connect_fix(&e, account));
            return;
        }
    };
    report.ok("connect", describe_connection(&session, account));
    if !login(&mut session, credentials, account, report) {
        return;
    }
    report_capabilities(&session, report);
    report_folders(&mut session, report);
    let _ = session.logout();
}

fn describe_connection(session: &Session, account: &AccountConfig) -> String {
    let target = match (&account.tunnel, &account.host) {
        (Some(tunnel), _) => format!("tunnel `{tunnel}`"),
        (None, Some(host)) => format!("{host}:{}", account.port),
        (None, None) => "the server".to_string(),
    };
    match session.tls_info() {
        Some(tls) => format!(
            "connected to {target}: {} ({}), certificate {} ({})",
            tls.version, tls.cipher, tls.subject, tls.fingerprint
        ),
        None => format!("connected to {target} without TLS"),
    }
}

fn connect_fix(error: &Error, account: &AccountConfig) -> String {
    match error {
        Error::Tls { hint: Some(hint), .. } => hint.clone(),
        Error::Tls { .. } => "check tls, ca_file and tls_fingerprint against what the server offers".into(),
        Error::Connect { .. } => format!(
            "check host and port in [accounts.{}] (port {} for tls = {:?}), and that nothing blocks the connection",
            account.name, account.port, account.tls
        ),
        Error::Timeout { .. } => "check that the host and port are right and the server is up; raise timeout if the link is slow".into(),
        _ => "check the server address and the tunnel command; run with -vv to see the conversation".into(),
    }
}

/// Logs in; returns whether the session is authenticated.
fn login(
    session: &mut Session,
    credentials: Option<Credentials>,
    account: &AccountConfig,
    report: &mut Report,
) -> bool {
    if session.is_authenticated() {
        report.ok("login", "the server logged us in already (PREAUTH)");
        return true;
    }
    let Some(credentials) = credentials else {
        report.error(
            "login",
            "the server wants a login, but no usable user and password are configured".to_string(),
            format!(
                "set user and one of password_command, password_env or password in [accounts.{}]",
                account.name
            ),
        );
        return false;
    };
    match session.login(&credentials) {
        Ok(()) => {
            report.ok("login", format!("logged in as {}", credentials.user));
            true
        }
        Err(e) => {
            let fix = match e {
                Error::AuthenticationFailed { .. } => {
                    "check user and the password source; some providers need an app password or auth = \"xoauth2\""
                }
                Error::Unsupported { .. } => "change auth (or tls) as the message says",
                _ => "run with -vv to see the conversation",
            };
            report.error("login", e.to_string(), fix.to_string());
            false
        }
    }
}

fn report_capabilities(session: &Session, report: &mut Report) {
    report.ok("capabilities", session.capabilities().join(" "));
    for (capability, with, without) in FEATURES {
        if session.has_capability(capability) {
            report.ok("capabilities", format!("{capability}: {with}"));
        } else if capability == "UIDPLUS" {
            report.warning(
                "capabilities",
                format!("no {capability}: {without}"),
                "nothing to configure; another client (or the server's expunge) removes them",
            );
        } else if without != "-" {
            report.ok("capabilities", format!("no {capability}: {without}"));
        }
    }
}

fn report_folders(session: &mut Session, report: &mut Report) {
    let namespace = session.namespace();
    match session.list("", "*") {
        Ok(entries) => {
            let selectable = entries.iter().filter(|e| !e.is_noselect()).count();
            let layout = match namespace.ok().and_then(|ns| ns.into_iter().next()) {
                Some((prefix, Some(delimiter))) if !prefix.is_empty() => {
                    format!("; personal namespace \"{prefix}\", delimiter '{delimiter}'")
                }
                Some((_, Some(delimiter))) => format!("; delimiter '{delimiter}'"),
                _ => String::new(),
            };
            report.ok(
                "folders",
                format!("{selectable} folders on the server{layout}"),
            );
        }
        Err(e) => report.error(
            "folders",
            e.to_string(),
            "run with -vv to see the server's answer".to_string(),
        ),
    }
}
