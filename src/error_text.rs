//! An error and its causes as one line for the terminal: each cause is
//! added once, unless the text so far already says it (many errors put
//! their cause in their own message as well).

/// `err` and its causes, joined with `: `, without repeats.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let io = std::io::Error::other("reset by peer");
        let err = anyhow::Error::new(io)
            .context("the connection was lost: reset by peer")
            .context("far store");
        assert_eq!(
            error_text(&err),
            "far store: the connection was lost: reset by peer"
        );
    }

    #[test]
    fn causes_not_said_are_added() {
        let err = anyhow::anyhow!("disk full").context("cannot write");
        assert_eq!(error_text(&err), "cannot write: disk full");
    }
}
