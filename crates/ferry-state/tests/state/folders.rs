//! Folder pairs: names, markers, UIDVALIDITY, deletion.

use crate::common::{full_pair, names, plain_pair, state_with_inbox, uid_key};
use ferry_core::{PerSide, Side, UidValidity};
use ferry_state::{DirTimes, IntentAction, NewIntent, SideMarkers, StateError, ValidityCheck};

fn validity(v: u32) -> UidValidity {
    UidValidity::new(v).expect("non-zero")
}

#[test]
fn folders_are_added_found_renamed_and_listed() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let sent = state
        .add_folder(&names("[Gmail]/Sent Mail", "Sent"))
        .expect("add");
    assert!(inbox < sent);
    let found = state
        .find_folder(Side::Near, "Sent")
        .expect("find")
        .expect("present");
    assert_eq!(found.id, sent);
    assert_eq!(found.names.far, "[Gmail]/Sent Mail");
    assert_eq!(found.last_sync_ms, None);
    assert_eq!(found.validity, PerSide::default());
    assert!(
        state
            .find_folder(Side::Far, "Sent")
            .expect("find")
            .is_none()
    );

    state
        .rename_folder(sent, Side::Far, "Sent")
        .expect("rename");
    assert_eq!(
        state.folder(sent).expect("load").names,
        names("Sent", "Sent")
    );
    let all = state.folders().expect("list");
    assert_eq!(all.iter().map(|f| f.id).collect::<Vec<_>>(), [inbox, sent]);

    let err = state
        .add_folder(&names("Other", "INBOX"))
        .expect_err("a near name is used once");
    assert!(err.to_string().contains("add folder pair"), "{err}");
}

#[test]
fn sync_markers_round_trip() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let markers = PerSide::new(
        SideMarkers {
            uidnext: Some(u32::MAX),
            highest_modseq: Some(i64::MAX as u64),
            mailbox_id: Some("F2212ea87-6097-4256-9d51-71338625".into()),
            dir_times: None,
        },
        SideMarkers {
            dir_times: Some(DirTimes {
                new_ns: 1_700_000_000_123_456_789,
                cur_ns: -5,
            }),
            ..SideMarkers::default()
        },
    );
    state.commit_folder_sync(inbox, &markers).expect("commit");
    let folder = state.folder(inbox).expect("load");
    assert_eq!(folder.markers, markers);
    assert!(folder.last_sync_ms.is_some());

    // NOMODSEQ: the marker is forgotten.
    let mut forgotten = markers.clone();
    forgotten.far.highest_modseq = None;
    state.commit_folder_sync(inbox, &forgotten).expect("commit");
    assert_eq!(state.folder(inbox).expect("load").markers, forgotten);
}

#[test]
fn an_impossible_modseq_or_folder_is_an_error() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let mut markers = PerSide::<SideMarkers>::default();
    markers.far.highest_modseq = Some(u64::MAX);
    let err = state
        .commit_folder_sync(inbox, &markers)
        .expect_err("above 2^63-1");
    assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");

    state.delete_folder(inbox).expect("delete");
    let err = state
        .commit_folder_sync(inbox, &PerSide::default())
        .expect_err("gone");
    assert!(matches!(err, StateError::NoSuchFolder { folder, .. } if folder == inbox));
}

#[test]
fn a_changed_uidvalidity_forgets_uids_and_keeps_the_rest() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let check = state.observe_validity(inbox, Side::Far, validity(7));
    assert_eq!(check.expect("adopt"), ValidityCheck::Adopted);
    let pairs: Vec<_> = (1..=3).map(|n| plain_pair(inbox, n)).collect();
    state.insert_pairs(&pairs).expect("insert");
    let mut markers = PerSide::<SideMarkers>::default();
    markers.far.uidnext = Some(4);
    markers.far.highest_modseq = Some(99);
    state.commit_folder_sync(inbox, &markers).expect("commit");
    let check = state.observe_validity(inbox, Side::Far, validity(7));
    assert_eq!(check.expect("same"), ValidityCheck::Unchanged);

    let check = state.observe_validity(inbox, Side::Far, validity(8));
    assert_eq!(
        check.expect("change"),
        ValidityCheck::Changed { forgotten: 3 }
    );
    let folder = state.folder(inbox).expect("load");
    assert_eq!(folder.validity.far, Some(validity(8)));
    assert_eq!(folder.markers.far.uidnext, None);
    assert_eq!(folder.markers.far.highest_modseq, None);
    let after = state.load_pairs(inbox).expect("load");
    for (stored, before) in after.iter().zip(&pairs) {
        assert_eq!(stored.pair.keys.far, None);
        assert_eq!(stored.pair.keys.near, before.keys.near);
        assert_eq!(stored.pair.fingerprint, before.fingerprint);
        assert_eq!(stored.pair.message_id, before.message_id);
    }
    // The near side is untouched by a far reset.
    assert_eq!(state.folder(inbox).expect("load").validity.near, None);
}

#[test]
fn deleting_a_folder_takes_its_pairs_but_waits_for_pending_intents() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let other = state.add_folder(&names("Other", "Other")).expect("add");
    state
        .insert_pairs(&[full_pair(inbox, 1), full_pair(other, 2)])
        .expect("insert");
    let intent = NewIntent {
        side: Side::Far,
        folder: inbox,
        pair: None,
        action: IntentAction::Remove { key: uid_key(1) },
    };
    let ids = state.record_intents(&[intent]).expect("record");
    let err = state.delete_folder(inbox).expect_err("pending intent");
    assert!(
        matches!(err, StateError::FolderBusy { pending: 1, .. }),
        "{err:?}"
    );
    state.abandon(ids[0]).expect("abandon");
    state.delete_folder(inbox).expect("delete");
    assert!(state.load_pairs(inbox).expect("load").is_empty());
    assert_eq!(state.load_pairs(other).expect("load").len(), 1);
    assert_eq!(state.folders().expect("list").len(), 1);
    assert!(state.check_integrity().expect("check").is_empty());
}

#[test]
fn uids_stored_before_any_uidvalidity_are_not_trusted() {
    let (_dir, mut state, inbox) = state_with_inbox();
    state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert");
    let check = state.observe_validity(inbox, Side::Far, validity(5));
    assert_eq!(
        check.expect("observe"),
        ValidityCheck::Changed { forgotten: 1 }
    );
    let check = state.observe_validity(inbox, Side::Far, validity(5));
    assert_eq!(check.expect("observe"), ValidityCheck::Unchanged);
}
