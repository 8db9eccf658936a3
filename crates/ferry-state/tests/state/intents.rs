//! The intent journal: every kind round-trips, a crash leaves intents
//! pending, completion and pair change share one transaction.

use crate::common::{
    every_flag, file_key, full_pair, names, plain_pair, state_with_inbox, uid_key,
};
use ferry_core::{Flag, Flags, Side};
use ferry_state::{FolderId, IntentAction, IntentState, NewIntent, Pair, PairChange, StateError};

fn deliver(folder: FolderId, n: u32) -> NewIntent {
    NewIntent {
        side: Side::Near,
        folder,
        pair: None,
        action: IntentAction::Deliver {
            pair: plain_pair(folder, n),
        },
    }
}

fn every_kind(inbox: FolderId, archive: FolderId, pair: ferry_state::PairId) -> Vec<NewIntent> {
    let mut upload = full_pair(inbox, 7);
    upload.keys.far = None;
    let seen: Flags = [Flag::Seen].into_iter().collect();
    vec![
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: None,
            action: IntentAction::Append {
                pair: upload,
                uidnext_before: Some(1234),
            },
        },
        deliver(inbox, 8),
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: Some(pair),
            action: IntentAction::Move {
                to_folder: archive,
                key: uid_key(1),
                to_uidnext_before: None,
            },
        },
        NewIntent {
            side: Side::Near,
            folder: inbox,
            pair: Some(pair),
            action: IntentAction::Remove {
                key: file_key("1700000000.M1P1.host"),
            },
        },
        NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: Some(pair),
            action: IntentAction::SetFlags {
                key: uid_key(1),
                add: every_flag(),
                remove: seen,
            },
        },
    ]
}

#[test]
fn every_kind_round_trips_and_stays_pending_across_a_crash() {
    let (dir, mut state, inbox) = state_with_inbox();
    let archive = state.add_folder(&names("Archive", "Archive")).expect("add");
    let pair = state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert")[0];
    let intents = every_kind(inbox, archive, pair);
    let ids = state.record_intents(&intents).expect("record");
    let path = state.path().to_path_buf();
    // The crash: the connection goes away, nothing is completed.
    drop(state);

    let state = crate::common::reopen(&path).expect("reopen after the crash");
    let pending = state.pending_intents().expect("pending");
    assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), ids);
    for (found, recorded) in pending.iter().zip(&intents) {
        assert_eq!(found.action, recorded.action);
        assert_eq!(
            (found.side, found.folder, found.pair),
            (recorded.side, recorded.folder, recorded.pair)
        );
        assert_eq!(found.state, IntentState::Pending);
        assert_eq!(found.batch, pending[0].batch, "one batch");
        assert_eq!(found.finished_ms, None);
    }
    drop(dir);
}

#[test]
fn completion_writes_the_pair_in_the_same_transaction() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let ids = state
        .record_intents(&[deliver(inbox, 1), deliver(inbox, 2)])
        .expect("record");
    let produced = state
        .complete(ids[0], PairChange::Insert(plain_pair(inbox, 1)))
        .expect("complete")
        .expect("a pair");
    let done = state.intent(ids[0]).expect("load").expect("kept");
    assert_eq!(done.state, IntentState::Done);
    assert_eq!(done.pair, Some(produced), "the intent names its pair");
    assert!(done.finished_ms.is_some());
    assert_eq!(
        state.pair(produced).expect("load").map(|p| p.pair),
        Some(plain_pair(inbox, 1))
    );
    let pending = state.pending_intents().expect("pending");
    assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[1]]);
}

#[test]
fn a_batch_with_a_finished_intent_completes_nothing() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let ids = state
        .record_intents(&[deliver(inbox, 1), deliver(inbox, 2)])
        .expect("record");
    state
        .complete(ids[0], PairChange::Insert(plain_pair(inbox, 1)))
        .expect("complete");
    let err = state
        .complete_batch(&[
            (ids[1], PairChange::Insert(plain_pair(inbox, 2))),
            (ids[0], PairChange::Insert(plain_pair(inbox, 3))),
        ])
        .expect_err("intent already done");
    assert!(matches!(err, StateError::NotPending { intent, .. } if intent == ids[0]));
    assert_eq!(state.load_pairs(inbox).expect("load").len(), 1);
    let pending = state.pending_intents().expect("pending");
    assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[1]]);
}

#[test]
fn removal_completes_by_deleting_its_pair() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let pair = state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert")[0];
    let ids = state
        .record_intents(&[NewIntent {
            side: Side::Far,
            folder: inbox,
            pair: Some(pair),
            action: IntentAction::Remove { key: uid_key(1) },
        }])
        .expect("record");
    state
        .complete(ids[0], PairChange::Delete(pair))
        .expect("complete");
    assert_eq!(state.pair(pair).expect("load"), None);
    let done = state.intent(ids[0]).expect("load").expect("kept");
    assert_eq!((done.state, done.pair), (IntentState::Done, None));
}

#[test]
fn abandoned_and_done_intents_are_pruned_pending_ones_kept() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let ids = state
        .record_intents(&[deliver(inbox, 1), deliver(inbox, 2), deliver(inbox, 3)])
        .expect("record");
    state.abandon(ids[0]).expect("abandon");
    let err = state.abandon(ids[0]).expect_err("twice");
    assert!(matches!(err, StateError::NotPending { .. }));
    state
        .complete(ids[1], PairChange::Insert(plain_pair(inbox, 2)))
        .expect("complete");
    assert_eq!(
        state.intent(ids[0]).expect("load").map(|i| i.state),
        Some(IntentState::Abandoned)
    );
    let status = state.status().expect("status");
    assert_eq!(status.pending_intents, 1);
    assert_eq!(status.folders[0].pending_intents, 1);
    assert_eq!(state.prune_finished_intents().expect("prune"), 2);
    assert_eq!(state.intent(ids[0]).expect("load"), None);
    let pending = state.pending_intents().expect("pending");
    assert_eq!(pending.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[2]]);
    assert!(state.check_integrity().expect("check").is_empty());
}

#[test]
fn an_intent_recovery_could_not_use_is_refused() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let mut nameless = deliver(inbox, 1);
    nameless.action = IntentAction::Deliver {
        pair: Pair::new(inbox),
    };
    let err = state.record_intents(&[nameless]).expect_err("no file name");
    assert!(err.to_string().contains("no target file name"), "{err}");
    let mut elsewhere = deliver(inbox, 1);
    elsewhere.folder = state.add_folder(&names("Other", "Other")).expect("add");
    assert!(state.record_intents(&[elsewhere]).is_err());
    assert!(state.pending_intents().expect("pending").is_empty());
}
