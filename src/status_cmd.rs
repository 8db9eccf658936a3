//! `ferry status [ACCOUNT...]`: when each account last synced, its folders
//! and message counts, and whether an interrupted run left work pending.
//! It reads the state without taking the account lock, so it works while a
//! sync runs.

use crate::cli::StatusArgs;
use crate::config::{AccountConfig, Config};
use anyhow::Context;
use ferry_engine::outcome::ExitStatus;
use ferry_state::{State, Status};
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Prints the status of `accounts`.
pub fn run(
    config: &Config,
    accounts: &[&AccountConfig],
    args: &StatusArgs,
) -> anyhow::Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    let mut all = Vec::new();
    for account in accounts {
        let db = config.state_dir.join(format!("{}.sqlite", account.name));
        let status = State::read_status(&db)
            .with_context(|| format!("cannot read the state of account {}", account.name))?;
        if args.json {
            all.push(to_json(account, status.as_ref()));
        } else {
            print_human(&mut out, account, status.as_ref())?;
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&Value::Array(all))?)?;
    }
    Ok(ExitStatus::Done)
}

fn ago(ms: i64) -> String {
    let then = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    match SystemTime::now().duration_since(then) {
        Ok(d) if d.as_secs() < 120 => format!("{} s ago", d.as_secs()),
        Ok(d) if d.as_secs() < 7200 => format!("{} min ago", d.as_secs() / 60),
        Ok(d) if d.as_secs() < 172_800 => format!("{} h ago", d.as_secs() / 3600),
        Ok(d) => format!("{} days ago", d.as_secs() / 86_400),
        Err(_) => "in the future (check the clock)".to_string(),
    }
}

fn print_human(
    out: &mut impl Write,
    account: &AccountConfig,
    status: Option<&Status>,
) -> anyhow::Result<()> {
    let Some(status) = status else {
        writeln!(out, "account {}: never synced", account.name)?;
        return Ok(());
    };
    let last = status
        .last_sync_ms()
        .map_or_else(|| "never completed".to_string(), ago);
    writeln!(
        out,
        "account {}: last sync {last}, {} in {}",
        account.name,
        crate::plan_print::counted(status.pairs(), "message"),
        crate::plan_print::counted(status.folders.len() as u64, "folder")
    )?;
    if status.pending_intents > 0 {
        writeln!(
            out,
            "  {} steps of an interrupted run are pending (or a sync is running now); the next sync settles them",
            status.pending_intents
        )?;
    }
    for folder in &status.folders {
        let mut line = format!("  {}: {} messages", folder.folder.names.near, folder.pairs);
        if folder.awaiting_expunge > 0 {
            line.push_str(&format!(
                ", {} removed but awaiting expunge on the server",
                folder.awaiting_expunge
            ));
        }
        match folder.folder.last_sync_ms {
            Some(ms) => line.push_str(&format!(", synced {}", ago(ms))),
            None => line.push_str(", not completely synced yet"),
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn to_json(account: &AccountConfig, status: Option<&Status>) -> Value {
    let Some(status) = status else {
        return json!({ "account": account.name, "synced": false });
    };
    json!({
        "account": account.name,
        "synced": true,
        "last_sync_ms": status.last_sync_ms(),
        "messages": status.pairs(),
        "pending_intents": status.pending_intents,
        "folders": status.folders.iter().map(|f| json!({
            "name": f.folder.names.near,
            "messages": f.pairs,
            "awaiting_expunge": f.awaiting_expunge,
            "last_sync_ms": f.folder.last_sync_ms,
        })).collect::<Vec<_>>(),
    })
}
