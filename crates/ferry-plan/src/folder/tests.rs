//! Scenario tables and properties of the per-folder plan.

use super::*;
use ferry_core::Uid;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn uid(n: u32) -> MessageKey {
    MessageKey::Uid(Uid::new(n).expect("non-zero"))
}

fn name(n: u32) -> MessageKey {
    MessageKey::Name(format!("n{n}").into())
}

fn meta(key: MessageKey, flags: &str, content: u32) -> MessageMeta {
    MessageMeta {
        key,
        flags: Flags::from_maildir_info(flags),
        size: Some(100 + u64::from(content)),
        message_id: Some(format!("<{content}@test>").into()),
        fingerprint: Some(Box::new(fp(content))),
        email_id: None,
    }
}

/// A first sync plans one copy per message of the account (56 bytes with
/// boxed Maildir keys, 72 with `String` ones).
#[test]
fn an_action_stays_small() {
    assert!(std::mem::size_of::<Action>() <= 56);
}

/// A fingerprint standing for content number `content`.
fn fp(content: u32) -> ferry_core::Fingerprint {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&content.to_be_bytes());
    ferry_core::Fingerprint::from_bytes(bytes)
}

fn pair(n: u32, flags: &str) -> Pair {
    Pair {
        keys: PerSide::new(uid(n), name(n)),
        flags: Flags::from_maildir_info(flags),
        content: Content::default(),
    }
}

fn plan(far: &[MessageMeta], near: &[MessageMeta], pairs: &[Pair], policy: &Policy) -> Vec<Action> {
    plan_folder(PerSide::new(far, near), pairs, policy).actions
}

fn set_flags(side: Side, key: MessageKey, add: &str, remove: &str) -> Action {
    Action::SetFlags {
        side,
        key,
        add: Flags::from_maildir_info(add),
        remove: Flags::from_maildir_info(remove),
    }
}

#[test]
fn flags_flow_both_ways() {
    let actions = plan(
        &[meta(uid(1), "S", 1)],
        &[meta(name(1), "F", 1)],
        &[pair(1, "")],
        &Policy::default(),
    );
    assert_eq!(
        actions,
        [
            Action::Pair {
                keys: PerSide::new(uid(1), name(1)),
                flags: Flags::from_maildir_info("FS")
            },
            set_flags(Side::Far, uid(1), "F", ""),
            set_flags(Side::Near, name(1), "S", ""),
        ]
    );
}

#[test]
fn an_unchanged_folder_plans_nothing() {
    let actions = plan(
        &[meta(uid(1), "S", 1)],
        &[meta(name(1), "S", 1)],
        &[pair(1, "S")],
        &Policy::default(),
    );
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn new_messages_are_copied_both_ways() {
    let actions = plan(
        &[meta(uid(7), "S", 7)],
        &[meta(name(8), "", 8)],
        &[],
        &Policy::default(),
    );
    assert_eq!(
        actions,
        [
            Action::Copy {
                from: Side::Far,
                key: uid(7),
                flags: Flags::from_maildir_info("S"),
                replaces: None
            },
            Action::Copy {
                from: Side::Near,
                key: name(8),
                flags: Flags::new(),
                replaces: None
            },
        ]
    );
}

#[test]
fn a_deletion_propagates_unless_the_other_side_changed() {
    let unchanged = plan(
        &[],
        &[meta(name(1), "S", 1)],
        &[pair(1, "S")],
        &Policy::default(),
    );
    assert_eq!(
        unchanged,
        [Action::Remove {
            side: Side::Near,
            key: name(1)
        }]
    );
    let changed = plan(
        &[],
        &[meta(name(1), "FS", 1)],
        &[pair(1, "S")],
        &Policy::default(),
    );
    assert_eq!(
        changed,
        [Action::Copy {
            from: Side::Near,
            key: name(1),
            flags: Flags::from_maildir_info("FS"),
            replaces: Some(Box::new(PerSide::new(uid(1), name(1))))
        }]
    );
    let both = plan(&[], &[], &[pair(1, "S")], &Policy::default());
    assert_eq!(
        both,
        [Action::Unpair {
            keys: PerSide::new(uid(1), name(1))
        }]
    );
}

#[test]
fn without_expunge_a_deletion_only_marks() {
    let policy = Policy {
        expunge: PerSide::new(false, true),
        ..Policy::default()
    };
    let actions = plan(&[meta(uid(1), "S", 1)], &[], &[pair(1, "S")], &policy);
    assert_eq!(
        actions,
        [Action::MarkDeleted {
            side: Side::Far,
            key: uid(1)
        }]
    );
    let again = plan(&[meta(uid(1), "ST", 1)], &[], &[pair(1, "ST")], &policy);
    assert!(
        again.is_empty(),
        "a marked message is neither marked again nor copied back: {again:?}"
    );
}

#[test]
fn pull_keeps_local_changes_local() {
    let pull = Policy {
        flow_into: PerSide::new(false, true),
        ..Policy::default()
    };
    let actions = plan(
        &[meta(uid(1), "", 1)],
        &[meta(name(1), "F", 1)],
        &[pair(1, "")],
        &pull,
    );
    assert!(actions.is_empty(), "{actions:?}");
    let local_delete = plan(&[meta(uid(1), "", 1)], &[], &[pair(1, "")], &pull);
    assert!(
        local_delete.is_empty(),
        "not pushed and not downloaded again: {local_delete:?}"
    );
    let new_local = plan(&[], &[meta(name(2), "", 2)], &[], &pull);
    assert!(new_local.is_empty(), "{new_local:?}");
    let far_change = plan(
        &[meta(uid(1), "S", 1)],
        &[meta(name(1), "F", 1)],
        &[pair(1, "")],
        &pull,
    );
    assert_eq!(
        far_change,
        [
            Action::Pair {
                keys: PerSide::new(uid(1), name(1)),
                flags: Flags::from_maildir_info("S")
            },
            set_flags(Side::Near, name(1), "S", "")
        ]
    );
}

#[test]
fn lost_state_re_pairs_instead_of_copying() {
    let actions = plan(
        &[meta(uid(5), "S", 1)],
        &[meta(name(9), "F", 1)],
        &[],
        &Policy::default(),
    );
    assert_eq!(
        actions,
        [
            Action::Pair {
                keys: PerSide::new(uid(5), name(9)),
                flags: Flags::from_maildir_info("FS")
            },
            set_flags(Side::Far, uid(5), "F", ""),
            set_flags(Side::Near, name(9), "S", ""),
        ]
    );
}

#[test]
fn large_and_deleted_messages_are_skipped() {
    let policy = Policy {
        max_size: Some(150),
        ..Policy::default()
    };
    let actions = plan(
        &[meta(uid(1), "", 99), meta(uid(2), "T", 2)],
        &[],
        &[],
        &policy,
    );
    assert_eq!(
        actions,
        [
            Action::Skip {
                side: Side::Far,
                key: uid(1),
                reason: SkipReason::TooLarge
            },
            Action::Skip {
                side: Side::Far,
                key: uid(2),
                reason: SkipReason::MarkedDeleted
            },
        ]
    );
}

#[test]
fn the_guard_holds_mass_deletions() {
    let far: Vec<MessageMeta> = (1..=30).map(|n| meta(uid(n), "", n)).collect();
    let pairs: Vec<Pair> = (1..=30).map(|n| pair(n, "")).collect();
    let plan_all = plan_folder(PerSide::new(&far, &[]), &pairs, &Policy::default());
    assert!(plan_all.actions.is_empty());
    assert_eq!(
        plan_all.held,
        [Held {
            side: Side::Far,
            removals: 30,
            total: 30
        }]
    );
    let allowed = Policy {
        allow_mass_delete: true,
        ..Policy::default()
    };
    assert_eq!(
        plan_folder(PerSide::new(&far, &[]), &pairs, &allowed)
            .actions
            .len(),
        30
    );
    // 20 of 30 is more than half but not more than 20: not held.
    let near: Vec<MessageMeta> = (21..=30).map(|n| meta(name(n), "", n)).collect();
    assert!(
        plan_folder(PerSide::new(&far, &near), &pairs, &Policy::default())
            .held
            .is_empty()
    );
}

/// A model of one side: key -> (content, flags).
type SideModel = BTreeMap<MessageKey, (u32, Flags)>;

/// Applies a plan to models of both sides and the pairs, as the executor
/// would.
fn apply(
    actions: &[Action],
    model: &mut PerSide<SideModel>,
    pairs: &mut Vec<Pair>,
    next_key: &mut u32,
) {
    for action in actions {
        match action.clone() {
            Action::SetFlags {
                side,
                key,
                add,
                remove,
            } => {
                if let Some((_, flags)) = model[side].get_mut(&key) {
                    add.iter().for_each(|f| {
                        flags.insert(f.clone());
                    });
                    remove.iter().for_each(|f| {
                        flags.remove(f);
                    });
                }
            }
            Action::Copy {
                from,
                key,
                flags,
                replaces,
            } => {
                let content = model[from][&key].0;
                *next_key += 1;
                let new_key = match from.other() {
                    Side::Far => uid(*next_key),
                    Side::Near => name(*next_key),
                };
                model[from.other()].insert(new_key.clone(), (content, flags.clone()));
                if let Some(old) = replaces {
                    pairs.retain(|p| p.keys != *old);
                }
                let keys = PerSide::from_fn(|s| {
                    if s == from {
                        key.clone()
                    } else {
                        new_key.clone()
                    }
                });
                pairs.push(Pair {
                    keys,
                    flags,
                    content: Content::default(),
                });
            }
            Action::Remove { side, key } => {
                model[side].remove(&key);
                pairs.retain(|p| p.keys[side] != key);
            }
            Action::MarkDeleted { side, key } => {
                if let Some((_, flags)) = model[side].get_mut(&key) {
                    flags.insert(Flag::Deleted);
                }
                for p in pairs.iter_mut().filter(|p| p.keys[side] == key) {
                    p.flags.insert(Flag::Deleted);
                }
            }
            Action::Pair { keys, flags } => {
                pairs.retain(|p| p.keys.far != keys.far && p.keys.near != keys.near);
                pairs.push(Pair {
                    keys,
                    flags,
                    content: Content::default(),
                });
            }
            Action::Unpair { keys } => pairs.retain(|p| p.keys != keys),
            Action::Skip { .. } => {}
        }
    }
}

fn snapshot(model: &SideModel) -> Vec<MessageMeta> {
    model
        .iter()
        .map(|(key, (content, flags))| MessageMeta {
            key: key.clone(),
            flags: flags.clone(),
            size: Some(u64::from(*content)),
            message_id: Some(format!("<{content}>").into()),
            fingerprint: Some(Box::new(fp(*content))),
            email_id: None,
        })
        .collect()
}

fn contents(model: &SideModel) -> BTreeMap<u32, Flags> {
    model.values().map(|(c, f)| (*c, f.clone())).collect()
}

#[derive(Debug, Clone)]
enum Change {
    Keep,
    Delete,
    Flags(String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Delete),
        2 => "[DFPRS]{0,3}".prop_map(Change::Flags),
    ]
}

/// The synced messages (base flags and each side's change since).
type Initial = Vec<(String, PerSide<Change>)>;
/// The flags of messages new on each side.
type Fresh = PerSide<Vec<String>>;

fn history() -> impl Strategy<Value = (Initial, Fresh)> {
    let initial =
        proptest::collection::vec(("[FPRS]{0,3}", change(), change()), 0..24).prop_map(|v| {
            v.into_iter()
                .map(|(f, a, b)| (f, PerSide::new(a, b)))
                .collect()
        });
    let fresh = (
        proptest::collection::vec("[DFRS]{0,2}", 0..5),
        proptest::collection::vec("[DFRS]{0,2}", 0..5),
    )
        .prop_map(|(a, b)| PerSide::new(a, b));
    (initial, fresh)
}

/// Builds the synced start, applies each side's changes, returns the
/// models, the pairs and what the result must be per content.
fn build(
    initial: &[(String, PerSide<Change>)],
    fresh: &PerSide<Vec<String>>,
) -> (PerSide<SideModel>, Vec<Pair>, u32) {
    let mut model: PerSide<SideModel> = PerSide::default();
    let mut pairs = Vec::new();
    for (i, (flags, changes)) in initial.iter().enumerate() {
        let n = i as u32 + 1;
        let keys = PerSide::new(uid(n), name(n));
        pairs.push(Pair {
            keys: keys.clone(),
            flags: Flags::from_maildir_info(flags),
            content: Content::default(),
        });
        for side in Side::BOTH {
            match &changes[side] {
                Change::Keep => {
                    model[side].insert(keys[side].clone(), (n, Flags::from_maildir_info(flags)));
                }
                Change::Delete => {}
                Change::Flags(new) => {
                    model[side].insert(keys[side].clone(), (n, Flags::from_maildir_info(new)));
                }
            }
        }
    }
    let mut next = 10_000;
    for side in Side::BOTH {
        for flags in &fresh[side] {
            next += 1;
            let key = if side == Side::Far {
                uid(next)
            } else {
                name(next)
            };
            model[side].insert(key, (next, Flags::from_maildir_info(flags)));
        }
    }
    (model, pairs, next)
}

fn run(model: &PerSide<SideModel>, pairs: &[Pair], policy: &Policy) -> FolderPlan {
    let (far, near) = (snapshot(&model.far), snapshot(&model.near));
    plan_folder(PerSide::new(&far, &near), pairs, policy)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn two_way_sync_converges_and_keeps_what_it_must((initial, fresh) in history()) {
        let policy = Policy { allow_mass_delete: true, ..Policy::default() };
        let (mut model, mut pairs, mut next) = build(&initial, &fresh);
        let before = model.clone();
        let plan = run(&model, &pairs, &policy);
        apply(&plan.actions, &mut model, &mut pairs, &mut next);

        // Both sides hold the same messages with the same flags.
        let (far, near) = (contents(&model.far), contents(&model.near));
        let marked_deleted_new = |c: &u32| *c > 10_000 && before.far.values().chain(before.near.values())
            .any(|(cc, f)| cc == c && f.contains(&Flag::Deleted));
        let far_cmp: BTreeMap<_, _> = far.iter().filter(|(c, _)| !marked_deleted_new(c)).collect();
        let near_cmp: BTreeMap<_, _> = near.iter().filter(|(c, _)| !marked_deleted_new(c)).collect();
        prop_assert_eq!(&far_cmp, &near_cmp);

        // What must survive and what must go.
        for (i, (base, changes)) in initial.iter().enumerate() {
            let n = i as u32 + 1;
            let base = Flags::from_maildir_info(base);
            let changed = |side: Side| matches!(&changes[side], Change::Flags(f) if Flags::from_maildir_info(f) != base);
            let deleted = |side: Side| matches!(changes[side], Change::Delete);
            let expect_present = match (deleted(Side::Far), deleted(Side::Near)) {
                (true, true) => false,
                (true, false) => changed(Side::Near),
                (false, true) => changed(Side::Far),
                (false, false) => true,
            };
            prop_assert_eq!(far.contains_key(&n), expect_present, "content {} far", n);
            prop_assert_eq!(near.contains_key(&n), expect_present, "content {} near", n);
        }
        for side in Side::BOTH {
            for (content, flags) in before[side].values().filter(|(c, _)| *c > 10_000) {
                if !flags.contains(&Flag::Deleted) {
                    prop_assert!(far.contains_key(content) && near.contains_key(content), "new {} lost", content);
                }
            }
        }
        // Nothing duplicated: one message per content per side.
        for side in Side::BOTH {
            prop_assert_eq!(model[side].len(), contents(&model[side]).len());
        }
        // A second plan changes nothing.
        let second = run(&model, &pairs, &policy);
        prop_assert!(second.actions.iter().all(|a| matches!(a, Action::Skip { .. })), "{:?}", second.actions);
    }

    #[test]
    fn swapping_the_sides_mirrors_the_plan((initial, fresh) in history(), expunge_far in any::<bool>()) {
        let policy = Policy { expunge: PerSide::new(expunge_far, true), ..Policy::default() };
        let (model, pairs, _) = build(&initial, &fresh);
        let plan = run(&model, &pairs, &policy);
        let swapped_pairs: Vec<Pair> = pairs.iter().map(|p| Pair { keys: p.keys.clone().swapped(), ..p.clone() }).collect();
        let swapped_policy = Policy { expunge: policy.expunge.swapped(), flow_into: policy.flow_into.swapped(), ..policy };
        let mirrored = run(&model.clone().swapped(), &swapped_pairs, &swapped_policy);
        let mut expected: Vec<Action> = plan.actions.into_iter().map(Action::mirrored).collect();
        expected.sort();
        prop_assert_eq!(mirrored.actions, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// With the state lost (or reset), every message on both sides is
    /// re-paired, nothing is removed, only what one side lacks is copied,
    /// and the next plan is empty.
    #[test]
    fn a_lost_state_re_pairs_without_deleting_or_duplicating((initial, fresh) in history()) {
        let policy = Policy::default();
        let (mut model, _, mut next) = build(&initial, &fresh);
        let mut pairs = Vec::new();
        let before = model.clone();
        let plan = run(&model, &pairs, &policy);
        let removes = plan.actions.iter().any(|a| matches!(a, Action::Remove { .. } | Action::MarkDeleted { .. }));
        prop_assert!(!removes, "a lost state removed messages: {:?}", plan.actions);
        for action in &plan.actions {
            if let Action::Copy { from, key, .. } = action {
                let content = before[*from][key].0;
                prop_assert!(!before[from.other()].values().any(|(c, _)| *c == content), "{} copied twice", content);
            }
        }
        apply(&plan.actions, &mut model, &mut pairs, &mut next);
        for side in Side::BOTH {
            prop_assert_eq!(model[side].len(), contents(&model[side]).len());
            for (content, _) in before[side].values() {
                prop_assert!(contents(&model[side]).contains_key(content), "{} lost", content);
            }
        }
        let second = run(&model, &pairs, &policy);
        prop_assert!(second.actions.iter().all(|a| matches!(a, Action::Skip { .. })), "{:?}", second.actions);
    }
}

#[test]
fn a_new_deleted_flag_agrees_with_a_deletion_and_a_restore_is_a_change() {
    // Marked \Deleted on the server (an interrupted removal, or a client
    // that deletes that way) and removed locally: the removal goes on.
    let actions = plan(
        &[meta(uid(1), "ST", 1)],
        &[],
        &[pair(1, "S")],
        &Policy::default(),
    );
    assert_eq!(
        actions,
        [Action::Remove {
            side: Side::Far,
            key: uid(1)
        }]
    );
    // Un-deleted on the server while removed locally: the message comes back.
    let actions = plan(
        &[meta(uid(1), "S", 1)],
        &[],
        &[pair(1, "ST")],
        &Policy::default(),
    );
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Copy {
                from: Side::Far,
                ..
            }]
        ),
        "{actions:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Planning from a folder's diff and only the messages and pairs it
    /// references gives the plan of the whole folder, guard included.
    #[test]
    fn planning_from_what_the_diff_references_gives_the_same_plan(
        (initial, fresh) in history(),
        guarded in any::<bool>(),
    ) {
        use crate::moves::{FolderDiff, FolderState, plan_account, plan_account_from};
        let policy = Policy { allow_mass_delete: !guarded, ..Policy::default() };
        let (model, pairs, _) = build(&initial, &fresh);
        let (far, near) = (snapshot(&model.far), snapshot(&model.near));
        let whole = FolderState { name: "F", now: PerSide::new(&far, &near), pairs: &pairs };
        let expected = plan_account(&[whole], &policy);
        let diff = FolderDiff::new(&whole, &policy);
        let keys = diff.referenced(&pairs);
        let kept = |list: &[MessageMeta], side: Side| -> Vec<MessageMeta> {
            list.iter().filter(|m| keys[side].contains(&m.key)).cloned().collect()
        };
        let (far_kept, near_kept) = (kept(&far, Side::Far), kept(&near, Side::Near));
        let pairs_kept: Vec<Pair> = pairs.iter().filter(|p| keys.far.contains(&p.keys.far)).cloned().collect();
        let pruned = FolderState { name: "F", now: PerSide::new(&far_kept, &near_kept), pairs: &pairs_kept };
        prop_assert_eq!(plan_account_from(&[pruned], vec![diff], &policy), expected);
    }
}
