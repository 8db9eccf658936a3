//! Message pairs: every field both ways, lookups, batches that are all or
//! nothing, and values that cannot be stored or read.

use crate::common::{file_key, fingerprint, full_pair, plain_pair, state_with_inbox, uid_key};
use ferry_core::{Flag, Flags, PerSide, Side};
use ferry_state::{Pair, PairChange, StateError, StoredPair};
use rusqlite::Connection;

#[test]
fn every_field_round_trips_including_nulls() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let full = full_pair(inbox, 42);
    let empty = Pair::new(inbox);
    // `ferry migrate`: UIDs on both sides.
    let mut migrate = plain_pair(inbox, 43);
    migrate.keys.near = Some(uid_key(9));
    migrate.flags = [Flag::Keyword("NonJunk".into())].into_iter().collect();
    migrate.awaiting_expunge = Some(Side::Near);
    let pairs = vec![full, empty, migrate];
    let ids = state.insert_pairs(&pairs).expect("insert");
    let loaded = state.load_pairs(inbox).expect("load");
    let expected: Vec<StoredPair> = ids
        .iter()
        .zip(pairs)
        .map(|(&id, pair)| StoredPair { id, pair })
        .collect();
    assert_eq!(loaded, expected);
    assert_eq!(
        state.pair(ids[0]).expect("by id").as_ref(),
        Some(&expected[0])
    );
}

/// Keys and flags are read per side asked for, in one pass, for one
/// folder: a pair with no key on a side is not there, and one awaiting
/// expunge on a side was last seen there marked `\Deleted`.
#[test]
fn keys_and_flags_are_read_for_the_sides_asked_for() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let other = state
        .add_folder(&crate::common::names("Other", "Other"))
        .expect("add");
    let mut both = plain_pair(inbox, 1);
    both.flags.insert(Flag::Keyword("$Label1".into()));
    let mut far_only = plain_pair(inbox, 2);
    far_only.keys.near = None;
    let mut near_only = plain_pair(inbox, 3);
    near_only.keys.far = None;
    let mut expunging_near = plain_pair(inbox, 4);
    expunging_near.awaiting_expunge = Some(Side::Near);
    let mut expunging_far = plain_pair(inbox, 5);
    expunging_far.awaiting_expunge = Some(Side::Far);
    let pairs = vec![both, far_only, near_only, expunging_near, expunging_far];
    state.insert_pairs(&pairs).expect("insert");
    state
        .insert_pairs(&[plain_pair(other, 6)])
        .expect("insert elsewhere");
    let on = |side: Side| -> Vec<(ferry_state::MessageKey, Flags)> {
        let mut out: Vec<_> = (pairs.iter())
            .filter_map(|p| {
                let mut flags = p.flags.clone();
                if p.awaiting_expunge == Some(side) {
                    flags.insert(Flag::Deleted);
                }
                Some((p.keys[side].clone()?, flags))
            })
            .collect();
        out.sort();
        out
    };
    let read = |sides: PerSide<bool>| {
        let mut read = state.load_keys_and_flags(inbox, sides).expect("read");
        read.far.sort();
        read.near.sort();
        read
    };
    let all = read(PerSide::new(true, true));
    assert_eq!(all.far, on(Side::Far));
    assert_eq!(all.near, on(Side::Near));
    assert_eq!((all.far.len(), all.near.len()), (4, 4));
    let deleted = |keys: &[(ferry_state::MessageKey, Flags)]| {
        keys.iter()
            .filter(|(_, f)| f.contains(&Flag::Deleted))
            .count()
    };
    assert_eq!((deleted(&all.far), deleted(&all.near)), (1, 1));
    assert_eq!(
        read(PerSide::new(true, false)),
        PerSide::new(all.far.clone(), Vec::new())
    );
    assert_eq!(
        read(PerSide::new(false, true)),
        PerSide::new(Vec::new(), all.near.clone())
    );
    assert_eq!(read(PerSide::new(false, false)), PerSide::default());
}

/// Damage on a side not asked for (a pair with no key there, or a key
/// there that is broken) does not stop the folder; on a side asked for it
/// does.
#[test]
fn keys_and_flags_skip_pairs_without_a_key_on_the_sides_asked_for() {
    let (_dir, path) = crate::common::temp_db();
    let mut state = ferry_state::State::open(&path).expect("open");
    let inbox = (state.add_folder(&crate::common::names("INBOX", "INBOX"))).expect("add");
    let mut far_only = plain_pair(inbox, 1);
    far_only.keys.near = None;
    let damaged_far_key = plain_pair(inbox, 2);
    state
        .insert_pairs(&[far_only, damaged_far_key, plain_pair(inbox, 3)])
        .expect("insert");
    drop(state);
    let conn = Connection::open(&path).expect("open");
    // Flags that are no flags, on the far-only pair.
    let no_flags = "UPDATE pairs SET flags = 'X' WHERE near_key IS NULL";
    conn.execute(no_flags, [])
        .expect_err("the CHECK refuses it");
    // Both a UID and a file name on the far side of the second pair.
    let two_keys = "UPDATE pairs SET far_key = 'x' WHERE far_uid = 2";
    conn.execute(two_keys, [])
        .expect_err("the CHECK refuses it");
    conn.execute_batch("PRAGMA ignore_check_constraints = ON")
        .expect("pragma");
    conn.execute(no_flags, []).expect("damage the flags");
    conn.execute(two_keys, []).expect("damage the far key");
    drop(conn);
    let state = crate::common::reopen(&path).expect("reopen");
    let near = state
        .load_keys_and_flags(inbox, PerSide::new(false, true))
        .expect("the damage is all on the far side");
    assert_eq!(near.near.len(), 2);
    for sides in [PerSide::new(true, false), PerSide::new(true, true)] {
        let read = state.load_keys_and_flags(inbox, sides);
        assert!(matches!(read, Err(StateError::Corrupt { .. })), "{read:?}");
    }
}

#[test]
fn pairs_are_found_by_key_fingerprint_and_message_id() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let pairs: Vec<Pair> = (1..=5).map(|n| plain_pair(inbox, n)).collect();
    let ids = state.insert_pairs(&pairs).expect("insert");
    let by_uid = state
        .find_pair(inbox, Side::Far, &uid_key(3))
        .expect("find");
    assert_eq!(by_uid.map(|p| p.id), Some(ids[2]));
    let key = pairs[3].keys.near.clone().expect("near key");
    let by_key = state.find_pair(inbox, Side::Near, &key).expect("find");
    assert_eq!(by_key.map(|p| p.id), Some(ids[3]));
    let missing = state.find_pair(inbox, Side::Far, &file_key("nope"));
    assert_eq!(missing.expect("find"), None);
    let by_fp = state
        .find_pairs_by_fingerprint(&fingerprint(5))
        .expect("find");
    assert_eq!(by_fp.iter().map(|p| p.id).collect::<Vec<_>>(), [ids[4]]);
    let by_mid = state
        .find_pairs_by_message_id("<1@example.com>")
        .expect("find");
    assert_eq!(by_mid.iter().map(|p| p.id).collect::<Vec<_>>(), [ids[0]]);
}

#[test]
fn a_batch_of_changes_is_all_or_nothing() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let other = state
        .add_folder(&crate::common::names("Archive", "Archive"))
        .expect("add");
    let ids = state
        .insert_pairs(&[plain_pair(inbox, 1), plain_pair(inbox, 2)])
        .expect("insert");

    let mut moved = state.pair(ids[0]).expect("load").expect("present");
    moved.pair.folder = other;
    moved.pair.flags.insert(Flag::Flagged);
    let done = state
        .apply_pair_changes(&[
            PairChange::Update(moved.clone()),
            PairChange::Delete(ids[1]),
            PairChange::Insert(plain_pair(inbox, 3)),
            PairChange::Nothing,
        ])
        .expect("apply");
    assert_eq!(done[..2], [Some(ids[0]), Some(ids[1])]);
    assert!(done[2].is_some() && done[3].is_none());
    assert_eq!(state.load_pairs(other).expect("load"), [moved]);
    assert_eq!(state.load_pairs(inbox).expect("load").len(), 1);

    // A failing change (the pair is gone) undoes the whole batch.
    let err = state
        .apply_pair_changes(&[
            PairChange::Insert(plain_pair(inbox, 4)),
            PairChange::Delete(ids[1]),
        ])
        .expect_err("pair already deleted");
    assert!(matches!(err, StateError::NoSuchPair { pair, .. } if pair == ids[1]));
    assert_eq!(state.load_pairs(inbox).expect("load").len(), 1);
}

#[test]
fn a_uid_or_file_is_paired_once_per_folder() {
    let (_dir, mut state, inbox) = state_with_inbox();
    state.insert_pairs(&[plain_pair(inbox, 1)]).expect("insert");
    let mut twin = Pair::new(inbox);
    twin.keys.far = Some(uid_key(1));
    let err = state.insert_pairs(&[twin]).expect_err("duplicate UID");
    assert!(err.to_string().contains("far UID 1"), "{err}");
    let mut twin = Pair::new(inbox);
    twin.keys.near = plain_pair(inbox, 1).keys.near;
    assert!(state.insert_pairs(&[twin]).is_err());
}

#[test]
fn a_keyword_with_a_space_is_refused() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let mut pair = Pair::new(inbox);
    pair.flags.insert(Flag::Keyword("two words".into()));
    let err = state.insert_pairs(&[pair]).expect_err("not an atom");
    assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");
}

#[test]
fn a_damaged_row_is_reported_not_trusted() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let ids = state.insert_pairs(&[full_pair(inbox, 1)]).expect("insert");
    let path = state.path().to_path_buf();
    Connection::open(&path)
        .expect("raw open")
        .execute(
            "UPDATE pairs SET fingerprint = ?1 WHERE id = ?2",
            rusqlite::params!["z".repeat(64), ids[0].get()],
        )
        .expect("damage");
    let err = state.load_pairs(inbox).expect_err("bad fingerprint");
    let message = err.to_string();
    assert!(
        matches!(err, StateError::Corrupt { .. }) && message.contains("fingerprint"),
        "{message}"
    );
    assert!(message.contains(&format!("pair {}", ids[0])), "{message}");
}

/// An update of flags alone and one of keys and content both land whole,
/// whichever statement writes them (the row alone, or the row and its
/// index entries); the pair is then found by its new keys, not the old.
#[test]
fn updates_of_flags_alone_and_of_keys_both_land() {
    let (_dir, mut state, inbox) = state_with_inbox();
    let ids = state
        .insert_pairs(&[full_pair(inbox, 1), plain_pair(inbox, 2)])
        .expect("insert");
    let mut flagged = state.pair(ids[0]).expect("load").expect("present");
    flagged.pair.flags.insert(Flag::Flagged);
    flagged.pair.size = Some(77);
    flagged.pair.awaiting_expunge = Some(Side::Far);
    let mut rekeyed = state.pair(ids[1]).expect("load").expect("present");
    rekeyed.pair.keys.far = Some(uid_key(900));
    rekeyed.pair.message_id = Some("<new@example.com>".into());
    rekeyed.pair.fingerprint = Some(fingerprint(9));
    state
        .apply_pair_changes(&[
            PairChange::Update(flagged.clone()),
            PairChange::Update(rekeyed.clone()),
        ])
        .expect("apply");
    assert_eq!(state.pair(ids[0]).expect("load"), Some(flagged));
    assert_eq!(state.pair(ids[1]).expect("load"), Some(rekeyed));
    let by_new = state.find_pair(inbox, Side::Far, &uid_key(900));
    assert_eq!(by_new.expect("find").map(|p| p.id), Some(ids[1]));
    let by_old = state.find_pair(inbox, Side::Far, &uid_key(2));
    assert_eq!(by_old.expect("find"), None);
    let by_id = state.find_pairs_by_message_id("<new@example.com>");
    assert_eq!(by_id.expect("find").len(), 1);
}
