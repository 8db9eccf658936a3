//! SASL exchanges no test server here offers (XOAUTH2, OAUTHBEARER) and the
//! ones without SASL-IR, against the scripted server: exact bytes, error
//! challenges answered, failures typed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_imap::{AuthMechanism, Credentials, Error, Secret, ServerOptions, Session, TlsMode};
use ferry_testkit::fake_server::{Script, ScriptedServer};

fn b64(data: &str) -> String {
    STANDARD.encode(data)
}

fn login(script: Script, mechanism: AuthMechanism) -> (Result<(), Error>, Vec<String>, bool) {
    let server = ScriptedServer::start(script).expect("server");
    let mut options = ServerOptions::new("127.0.0.1", TlsMode::None);
    options.port = server.port();
    let result = Session::connect(&options).and_then(|mut session| {
        session.login(&Credentials {
            user: "me@example.org".into(),
            secret: Secret::new("ya29.token"),
            mechanism,
        })
    });
    let report = server.finish();
    (result, report.received_text(), report.succeeded())
}

fn greeting(caps: &str) -> String {
    format!("* OK [CAPABILITY IMAP4rev1 {caps}] fake\r\n")
}

#[test]
fn xoauth2_with_initial_response() {
    let payload = b64("user=me@example.org\x01auth=Bearer ya29.token\x01\x01");
    let script = Script::new()
        .send(greeting("SASL-IR AUTH=XOAUTH2"))
        .expect(&format!("AUTHENTICATE XOAUTH2 {payload}"))
        .send("{tag} OK [CAPABILITY IMAP4rev1 IDLE] welcome\r\n");
    let (result, _, ok) = login(script, AuthMechanism::XOAuth2);
    result.expect("login");
    assert!(ok);
}

#[test]
fn xoauth2_error_challenge_is_answered_then_fails_typed() {
    let script = Script::new()
        .send(greeting("SASL-IR AUTH=XOAUTH2"))
        .expect("AUTHENTICATE XOAUTH2 *")
        .send(format!("+ {}\r\n", b64("{\"status\":\"401\"}")))
        .expect_line("")
        .send("{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    let (result, _, ok) = login(script, AuthMechanism::XOAuth2);
    assert!(
        matches!(result, Err(Error::AuthenticationFailed { .. })),
        "{result:?}"
    );
    assert!(
        ok,
        "the client answered the error challenge with an empty line"
    );
}

#[test]
fn oauthbearer_sends_gs2_header_and_acknowledges_errors() {
    let script = Script::new()
        .send(greeting("AUTH=OAUTHBEARER"))
        .expect("AUTHENTICATE OAUTHBEARER")
        .send("+ \r\n")
        .expect_line("*")
        .send(format!("+ {}\r\n", b64("{\"status\":\"invalid_token\"}")))
        .expect_line("AQ==")
        .send("{tag} NO [AUTHENTICATIONFAILED] nope\r\n");
    let (result, received, ok) = login(script, AuthMechanism::OAuthBearer);
    assert!(
        matches!(result, Err(Error::AuthenticationFailed { .. })),
        "{result:?}"
    );
    assert!(ok, "{received:?}");
    let decoded: Vec<String> = received
        .iter()
        .filter_map(|line| STANDARD.decode(line.trim()).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    assert!(
        decoded.iter().any(
            |d| d.starts_with("n,a=me@example.org,\x01host=127.0.0.1\x01port=")
                && d.ends_with("\x01auth=Bearer ya29.token\x01\x01")
        ),
        "{received:?}"
    );
}

#[test]
fn plain_without_sasl_ir_waits_for_the_continuation() {
    let payload = b64("\0me@example.org\0ya29.token");
    let script = Script::new()
        .send(greeting("AUTH=PLAIN"))
        .expect("AUTHENTICATE PLAIN")
        .send("+ \r\n")
        .expect_line(&payload)
        .send("{tag} OK done\r\n")
        .expect("CAPABILITY")
        .send("* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK\r\n");
    let (result, _, ok) = login(script, AuthMechanism::Plain);
    result.expect("login");
    assert!(ok);
}

#[test]
fn login_command_when_no_sasl_is_offered_and_logindisabled_is_respected() {
    let script = Script::new()
        .send(greeting(""))
        .expect("LOGIN me@example.org ya29.token")
        .send("{tag} OK [CAPABILITY IMAP4rev1] ok\r\n");
    let (result, _, ok) = login(script, AuthMechanism::Auto);
    result.expect("login");
    assert!(ok);
    let script = Script::new().send(greeting("LOGINDISABLED AUTH=PLAIN"));
    let (result, received, _) = login(script, AuthMechanism::Auto);
    assert!(
        matches!(result, Err(Error::Unsupported { .. })),
        "{result:?}"
    );
    assert!(received.is_empty(), "nothing may be sent: {received:?}");
}

#[test]
fn a_mechanism_the_server_lacks_is_refused_before_sending() {
    let script = Script::new().send(greeting("AUTH=PLAIN"));
    let (result, received, _) = login(script, AuthMechanism::XOAuth2);
    assert!(
        matches!(result, Err(Error::Unsupported { .. })),
        "{result:?}"
    );
    assert!(received.is_empty(), "{received:?}");
}
