//! The JSON payload of an intent: the fields of its kind.
//!
//! The intent's columns hold what every kind has (side, folder, the move's
//! target folder, the pair); the payload holds the rest, as plain JSON so a
//! human can read a stuck journal with `sqlite3`. These private shapes are
//! the stored format: change them only with a schema migration.

use crate::codec::{flags_from_columns, flags_to_columns, key_from_columns, key_to_columns};
use crate::ids::FolderId;
use crate::intents::IntentAction;
use crate::keys::{Fingerprint, MessageKey};
use crate::pairs::Pair;
use crate::sql::{side_from_text, side_text};
use ferry_core::{Flags, PerSide};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct KeyJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maildir: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FlagsJson {
    letters: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keywords: Option<String>,
}

/// A pair to record, without its folder (the intent's column holds it).
#[derive(Serialize, Deserialize)]
struct PairJson {
    far: Option<KeyJson>,
    near: Option<KeyJson>,
    far_email_id: Option<String>,
    near_email_id: Option<String>,
    flags: FlagsJson,
    size: Option<u64>,
    internal_date: Option<i64>,
    message_id: Option<String>,
    fingerprint: Option<String>,
    awaiting_expunge: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct AppendJson {
    pair: PairJson,
    uidnext_before: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct DeliverJson {
    pair: PairJson,
}

#[derive(Serialize, Deserialize)]
struct MoveJson {
    key: KeyJson,
    to_uidnext_before: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct KeyOnlyJson {
    key: KeyJson,
}

#[derive(Serialize, Deserialize)]
struct SetFlagsJson {
    key: KeyJson,
    add: FlagsJson,
    remove: FlagsJson,
}

/// The payload text of an action; `Err` says what cannot be stored.
pub(crate) fn encode(action: &IntentAction) -> Result<String, String> {
    let json = match action {
        IntentAction::Append {
            pair,
            uidnext_before,
        } => serde_json::to_string(&AppendJson {
            pair: pair_json(pair)?,
            uidnext_before: *uidnext_before,
        }),
        IntentAction::Deliver { pair } => serde_json::to_string(&DeliverJson {
            pair: pair_json(pair)?,
        }),
        IntentAction::Move {
            key,
            to_uidnext_before,
            ..
        } => serde_json::to_string(&MoveJson {
            key: key_json(key),
            to_uidnext_before: *to_uidnext_before,
        }),
        IntentAction::Remove { key } => serde_json::to_string(&KeyOnlyJson { key: key_json(key) }),
        IntentAction::SetFlags { key, add, remove } => serde_json::to_string(&SetFlagsJson {
            key: key_json(key),
            add: flags_json(add)?,
            remove: flags_json(remove)?,
        }),
    };
    json.map_err(|e| e.to_string())
}

/// The action of a stored intent; `Err` says what is wrong with it.
pub(crate) fn decode(
    kind: &str,
    payload: &str,
    folder: FolderId,
    to_folder: Option<FolderId>,
) -> Result<IntentAction, String> {
    let bad = |e: serde_json::Error| format!("{kind} payload: {e}");
    Ok(match (kind, to_folder) {
        ("append", None) => {
            let json: AppendJson = serde_json::from_str(payload).map_err(bad)?;
            IntentAction::Append {
                pair: pair_from_json(json.pair, folder)?,
                uidnext_before: json.uidnext_before,
            }
        }
        ("deliver", None) => {
            let json: DeliverJson = serde_json::from_str(payload).map_err(bad)?;
            IntentAction::Deliver {
                pair: pair_from_json(json.pair, folder)?,
            }
        }
        ("move", Some(to_folder)) => {
            let json: MoveJson = serde_json::from_str(payload).map_err(bad)?;
            IntentAction::Move {
                to_folder,
                key: key_from_json(json.key)?,
                to_uidnext_before: json.to_uidnext_before,
            }
        }
        ("remove", None) => {
            let json: KeyOnlyJson = serde_json::from_str(payload).map_err(bad)?;
            IntentAction::Remove {
                key: key_from_json(json.key)?,
            }
        }
        ("set_flags", None) => {
            let json: SetFlagsJson = serde_json::from_str(payload).map_err(bad)?;
            IntentAction::SetFlags {
                key: key_from_json(json.key)?,
                add: flags_from_json(json.add)?,
                remove: flags_from_json(json.remove)?,
            }
        }
        (kind, to_folder) => return Err(format!("kind {kind:?} with target folder {to_folder:?}")),
    })
}

fn key_json(key: &MessageKey) -> KeyJson {
    let (uid, name) = key_to_columns(Some(key));
    KeyJson {
        uid: uid.map(i64::from),
        maildir: name.map(str::to_string),
    }
}

fn key_from_json(json: KeyJson) -> Result<MessageKey, String> {
    key_from_columns(json.uid, json.maildir)?
        .ok_or_else(|| "a key with neither UID nor file".into())
}

fn flags_json(flags: &Flags) -> Result<FlagsJson, String> {
    let (letters, keywords) = flags_to_columns(flags)?;
    Ok(FlagsJson { letters, keywords })
}

fn flags_from_json(json: FlagsJson) -> Result<Flags, String> {
    flags_from_columns(&json.letters, json.keywords.as_deref())
}

fn pair_json(pair: &Pair) -> Result<PairJson, String> {
    Ok(PairJson {
        far: pair.keys.far.as_ref().map(key_json),
        near: pair.keys.near.as_ref().map(key_json),
        far_email_id: pair.email_ids.far.clone(),
        near_email_id: pair.email_ids.near.clone(),
        flags: flags_json(&pair.flags)?,
        size: pair.size,
        internal_date: pair.internal_date,
        message_id: pair.message_id.clone(),
        fingerprint: pair.fingerprint.as_ref().map(Fingerprint::to_hex),
        awaiting_expunge: pair.awaiting_expunge.map(|s| side_text(s).to_string()),
    })
}

fn pair_from_json(json: PairJson, folder: FolderId) -> Result<Pair, String> {
    let key = |json: Option<KeyJson>| json.map(key_from_json).transpose();
    Ok(Pair {
        folder,
        keys: PerSide::new(key(json.far)?, key(json.near)?),
        email_ids: PerSide::new(json.far_email_id, json.near_email_id),
        flags: flags_from_json(json.flags)?,
        size: json.size,
        internal_date: json.internal_date,
        message_id: json.message_id,
        fingerprint: json
            .fingerprint
            .map(|hex| Fingerprint::from_hex(&hex).ok_or_else(|| format!("fingerprint {hex:?}")))
            .transpose()?,
        awaiting_expunge: json
            .awaiting_expunge
            .map(|s| side_from_text(&s).ok_or_else(|| format!("awaiting_expunge {s:?}")))
            .transpose()?,
    })
}
