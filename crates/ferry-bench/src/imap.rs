//! The few IMAP questions the benchmark asks the server itself, through the
//! test kit's client, straight to Dovecot (never through the proxy):
//! folders, UID searches, counts.

use anyhow::{Context, Result};
use ferry_testkit::USER;
use ferry_testkit::client::{Client, quote};
use std::net::SocketAddr;

/// Logs in as the benchmark's user.
pub fn login(addr: SocketAddr) -> Result<Client> {
    Client::login(addr, USER).with_context(|| format!("logging in to Dovecot at {addr}"))
}

/// The selectable folders, sorted.
pub fn folders(client: &mut Client) -> Result<Vec<String>> {
    let response = client.run("LIST \"\" \"*\"").context("LIST")?;
    let mut names: Vec<String> = response
        .untagged
        .iter()
        .filter_map(|line| parse_list(line))
        .filter(|(attributes, _)| selectable(attributes))
        .map(|(_, name)| name)
        .collect();
    names.sort();
    Ok(names)
}

/// The UIDs of `folder` that match `criteria` (e.g. "ALL", "FLAGGED"),
/// sorted; selects the folder.
pub fn uids(client: &mut Client, folder: &str, criteria: &str) -> Result<Vec<u32>> {
    client
        .select(folder)
        .with_context(|| format!("SELECT {folder}"))?;
    let response = client
        .run(&format!("UID SEARCH {criteria}"))
        .with_context(|| format!("UID SEARCH {criteria} in {folder}"))?;
    let mut uids: Vec<u32> = response
        .untagged
        .iter()
        .filter_map(|line| line.strip_prefix("* SEARCH"))
        .flat_map(|rest| rest.split_whitespace().filter_map(|n| n.parse().ok()))
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// (messages, \Seen, \Flagged) of `folder`, read-only.
pub fn counts(client: &mut Client, folder: &str) -> Result<(u64, u64, u64)> {
    let examined = client
        .run(&format!("EXAMINE {}", quote(folder)))
        .with_context(|| format!("EXAMINE {folder}"))?;
    let messages = examined
        .untagged
        .iter()
        .find_map(|line| {
            line.strip_prefix("* ")?
                .strip_suffix(" EXISTS")?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let mut count = |key: &str| -> Result<u64> {
        let response = client
            .run(&format!("SEARCH RETURN (COUNT) {key}"))
            .with_context(|| format!("SEARCH {key} in {folder}"))?;
        Ok(response
            .untagged
            .iter()
            .find_map(|line| esearch_count(line))
            .unwrap_or(0))
    };
    Ok((messages, count("SEEN")?, count("FLAGGED")?))
}

/// The attributes and the name of a `* LIST` line.
pub fn parse_list(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("* LIST (")?;
    let (attributes, rest) = rest.split_once(')')?;
    let rest = rest.trim_start();
    // The delimiter: a quoted character or NIL.
    let rest = match rest.strip_prefix('"') {
        Some(quoted) => quoted.get(quoted.find('"')? + 1..)?,
        None => rest.strip_prefix("NIL")?,
    };
    let name = rest.trim();
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => name.to_owned(),
    };
    Some((attributes.to_owned(), name))
}

fn selectable(attributes: &str) -> bool {
    let lower = attributes.to_ascii_lowercase();
    !lower.contains("\\noselect") && !lower.contains("\\nonexistent")
}

/// The `COUNT n` of an `* ESEARCH` line.
fn esearch_count(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("* ESEARCH")?;
    let mut words = rest.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("COUNT"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines() {
        assert_eq!(
            parse_list("* LIST (\\HasNoChildren) \"/\" INBOX"),
            Some(("\\HasNoChildren".into(), "INBOX".into()))
        );
        assert_eq!(
            parse_list("* LIST (\\HasNoChildren \\Archive) \"/\" \"My \\\"Box\\\"\""),
            Some(("\\HasNoChildren \\Archive".into(), "My \"Box\"".into()))
        );
        assert_eq!(
            parse_list("* LIST (\\Noselect) NIL Lists"),
            Some(("\\Noselect".into(), "Lists".into()))
        );
        assert!(!selectable("\\Noselect \\HasChildren"));
        assert!(selectable("\\HasNoChildren \\Sent"));
        assert_eq!(parse_list("* OK done"), None);
    }

    #[test]
    fn esearch_counts() {
        assert_eq!(esearch_count("* ESEARCH (TAG \"t4\") COUNT 17"), Some(17));
        assert_eq!(esearch_count("* ESEARCH (TAG \"t4\")"), None);
        assert_eq!(esearch_count("* SEARCH 1 2"), None);
    }
}
