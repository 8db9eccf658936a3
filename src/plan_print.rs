//! How `ferry plan` shows what a sync would do: one line per action, per
//! folder, or JSON for scripts.

use crate::config::AccountConfig;
use ferry_core::{Flags, MessageKey, Side};
use ferry_engine::sync::SyncReport;
use ferry_plan::folder::{Action, SkipReason};
use ferry_plan::folders::{FolderAction, Vanished};
use serde_json::{Value, json};
use std::io::Write;

/// "1 folder", "2 folders".
pub fn counted(n: impl Into<u64>, thing: &str) -> String {
    match n.into() {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

/// How the user knows a side.
pub fn side_name(side: Side) -> &'static str {
    match side {
        Side::Far => "server",
        Side::Near => "maildir",
    }
}

fn flags(flags: &Flags) -> String {
    let names: Vec<&str> = flags.iter().map(|f| f.imap_name()).collect();
    format!("({})", names.join(" "))
}

fn key(key: &MessageKey) -> String {
    key.to_string()
}

/// One line for a message action.
fn describe(action: &Action) -> Option<String> {
    Some(match action {
        Action::Copy {
            from,
            key: k,
            flags: f,
            ..
        } => {
            format!(
                "copy {} {} to the {} {}",
                side_name(*from),
                key(k),
                side_name(from.other()),
                flags(f)
            )
        }
        Action::SetFlags {
            side,
            key: k,
            add,
            remove,
        } => {
            format!(
                "flags on {} {}: +{} -{}",
                side_name(*side),
                key(k),
                flags(add),
                flags(remove)
            )
        }
        Action::Remove { side, key: k } => format!("remove {} {}", side_name(*side), key(k)),
        Action::MarkDeleted { side, key: k } => {
            format!("mark deleted {} {}", side_name(*side), key(k))
        }
        Action::Skip {
            side,
            key: k,
            reason,
        } => {
            let why = match reason {
                SkipReason::TooLarge => "larger than max_size",
                SkipReason::MarkedDeleted => "marked deleted",
            };
            format!("skip {} {} ({why})", side_name(*side), key(k))
        }
        Action::Pair { .. } | Action::Unpair { .. } => return None,
    })
}

/// One line for a folder change.
pub fn describe_folder_action(action: &FolderAction) -> String {
    match action {
        FolderAction::Create { side, name } => {
            format!("create folder {name} on the {}", side_name(*side))
        }
        FolderAction::Remove { side, name } => {
            format!("remove empty folder {name} on the {}", side_name(*side))
        }
        FolderAction::Rename { side, from, to } => {
            format!("rename folder {from} to {to} on the {}", side_name(*side))
        }
        FolderAction::Forget { name } => format!("forget folder {name} (gone from both sides)"),
    }
}

/// What a vanished folder or side means, and what to do.
pub fn describe_vanished(vanished: &Vanished) -> String {
    match vanished {
        Vanished::Everything { side, known } => format!(
            "the {} lists no folder at all while {known} were synced before; nothing was deleted. \
             If the Maildir moved or the disk is not mounted, fix that; if you really emptied it, \
             remove the account's state database to start afresh",
            side_name(*side)
        ),
        Vanished::Folder { side, name, pairs } => format!(
            "folder {name} is gone from the {} but held {pairs} synced messages; nothing was deleted. \
             Restore it, or delete it on the other side too",
            side_name(*side)
        ),
    }
}

/// Prints the plan of one account (human or JSON by `--json`).
pub fn print_plan(
    out: &mut impl Write,
    account: &AccountConfig,
    report: &SyncReport,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&plan_json(account, report))?
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "account {} (plan only, nothing changed):",
        account.name
    )?;
    for action in &report.folder_actions {
        writeln!(out, "  {}", describe_folder_action(action))?;
    }
    if let Some(plan) = &report.plan {
        for (name, folder) in &plan.folders {
            let lines: Vec<String> = folder.actions.iter().filter_map(describe).collect();
            if lines.is_empty() && folder.held.is_empty() {
                continue;
            }
            writeln!(out, "  {name}:")?;
            for line in lines {
                writeln!(out, "    {line}")?;
            }
            for held in &folder.held {
                writeln!(
                    out,
                    "    held: {} of {} would be removed on the {}",
                    held.removals,
                    held.total,
                    side_name(held.side)
                )?;
            }
        }
        for m in &plan.moves {
            writeln!(
                out,
                "  move {} {} from {} to {}",
                side_name(m.side),
                key(&m.key),
                m.from_folder,
                m.to_folder
            )?;
        }
    }
    for vanished in &report.vanished {
        writeln!(out, "  not synced: {}", describe_vanished(vanished))?;
    }
    Ok(())
}

fn plan_json(account: &AccountConfig, report: &SyncReport) -> Value {
    let folders: Vec<Value> = report
        .plan
        .iter()
        .flat_map(|plan| plan.folders.iter())
        .map(|(name, folder)| {
            json!({
                "folder": name,
                "actions": folder.actions.iter().filter_map(describe).collect::<Vec<_>>(),
                "held": folder.held.iter().map(|h| json!({"side": side_name(h.side), "removals": h.removals, "total": h.total})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let moves: Vec<Value> = report
        .plan
        .iter()
        .flat_map(|plan| plan.moves.iter())
        .map(|m| json!({"side": side_name(m.side), "key": key(&m.key), "from": m.from_folder, "to": m.to_folder}))
        .collect();
    json!({
        "account": account.name,
        "folder_actions": report.folder_actions.iter().map(describe_folder_action).collect::<Vec<_>>(),
        "folders": folders,
        "moves": moves,
        "not_synced": report.vanished.iter().map(describe_vanished).collect::<Vec<_>>(),
    })
}
