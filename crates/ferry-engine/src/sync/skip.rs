//! Skipping what did not change (design.md, "One sync run", step 2): a
//! folder is neither selected nor listed when both sides prove, from what
//! listing the folders already told, that nothing happened since the last
//! sync saved its markers. Proof is side by side:
//!
//! - a Maildir folder: `new/` and `cur/` carry the stamps saved last time,
//!   and those are settled (older than the clock's granularity);
//! - an IMAP folder: the same UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, and
//!   as many messages as the state has pairs there, on a server with
//!   QRESYNC (whose HIGHESTMODSEQ also moves with expunges; a CONDSTORE-only
//!   server need not). Elsewhere every folder is looked into: STATUS
//!   cannot show a flag change without a HIGHESTMODSEQ.
//!
//! Markers are saved only by a run that finished a folder cleanly, from
//! what it saw before changing anything, so the run after a change always
//! looks again. `--full` skips nothing.

use ferry_core::store::FolderStatus;
use ferry_core::{PerSide, Side};
use ferry_state::{FolderId, SideMarkers, Status};
use std::collections::{BTreeMap, HashMap};

/// The folders of `names` that both sides prove unchanged, with their ids.
pub(crate) fn unchanged_folders(
    status: &Status,
    lists: &PerSide<Vec<FolderStatus>>,
    tracking: PerSide<bool>,
    names: &[String],
) -> BTreeMap<String, FolderId> {
    if !tracking.far || !tracking.near {
        return BTreeMap::new();
    }
    let listed = listed_by_name(lists);
    let known = saved_by_name(status);
    let mut out = BTreeMap::new();
    for name in names {
        let Some(saved) = known.get(name.as_str()) else {
            continue;
        };
        let proven = Side::BOTH.into_iter().all(|side| {
            listed[side]
                .get(name.as_str())
                .is_some_and(|now| side_unchanged(saved, side, now))
        });
        if proven && saved.folder.last_sync_ms.is_some() && saved.pending_intents == 0 {
            out.insert(name.clone(), saved.folder.id);
        }
    }
    out
}

/// Each side's listed folders by name.
pub(super) fn listed_by_name(
    lists: &PerSide<Vec<FolderStatus>>,
) -> PerSide<HashMap<&str, &FolderStatus>> {
    lists
        .as_ref()
        .map(|_, list| list.iter().map(|f| (f.name.as_str(), f)).collect())
}

/// What the state saved of each folder, by its local name.
pub(super) fn saved_by_name(status: &Status) -> HashMap<&str, &ferry_state::FolderStatus> {
    (status.folders.iter())
        .map(|f| (f.folder.names.near.as_str(), f))
        .collect()
}

/// Whether one side of a folder proves nothing changed since the markers
/// the state saved.
pub(super) fn side_unchanged(
    saved: &ferry_state::FolderStatus,
    side: Side,
    now: &FolderStatus,
) -> bool {
    let folder = &saved.folder;
    let markers: &SideMarkers = &folder.markers[side];
    if let Some((new_ns, cur_ns)) = now.markers.stamps {
        return markers
            .dir_times
            .is_some_and(|t| t.new_ns == new_ns && t.cur_ns == cur_ns);
    }
    let Some(mod_seq) = now.markers.mod_seq else {
        return false;
    };
    markers.highest_modseq == Some(mod_seq)
        && markers.uidnext.is_some()
        && markers.uidnext == now.markers.uid_next
        && folder.validity[side].is_some()
        && folder.validity[side] == now.identity.validity
        && now.markers.messages.map(u64::from) == Some(saved.pairs)
}
