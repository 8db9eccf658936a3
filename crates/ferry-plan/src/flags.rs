//! The per-flag three-way merge.
//!
//! Each flag is a boolean. Against the last synced flags (the base), a flag
//! changed on one side only takes that side's value; changed on both sides it
//! changed the same way (a boolean can only flip), so flags never conflict.

use ferry_core::{Flag, Flags, PerSide, Side};
use std::collections::BTreeSet;

/// The flags both sides should carry after the sync.
pub fn merge(base: &Flags, now: PerSide<&Flags>) -> Flags {
    let candidates: BTreeSet<&Flag> = base
        .iter()
        .chain(now.far.iter())
        .chain(now.near.iter())
        .collect();
    candidates
        .into_iter()
        .filter(|flag| {
            let was = base.contains(flag);
            let changed = Side::BOTH
                .into_iter()
                .find(|&side| now[side].contains(flag) != was);
            match changed {
                Some(side) => now[side].contains(flag),
                None => was,
            }
        })
        .cloned()
        .collect()
}

/// The flags to add to and remove from `current` to reach `target`.
pub fn delta(current: &Flags, target: &Flags) -> (Flags, Flags) {
    let add = target
        .iter()
        .filter(|f| !current.contains(f))
        .cloned()
        .collect();
    let remove = current
        .iter()
        .filter(|f| !target.contains(f))
        .cloned()
        .collect();
    (add, remove)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(letters: &str) -> Flags {
        Flags::from_maildir_info(letters)
    }

    #[test]
    fn merge_table() {
        // (base, far, near) -> expected
        let table = [
            ("", "", "", ""),
            ("S", "S", "S", "S"),
            ("", "S", "", "S"),     // set far
            ("", "", "S", "S"),     // set near
            ("S", "", "S", ""),     // cleared far
            ("S", "S", "", ""),     // cleared near
            ("S", "", "", ""),      // cleared both
            ("", "S", "S", "S"),    // set both
            ("S", "F", "SR", "FR"), // far: -S +F, near: +R
            ("FS", "FST", "S", "ST"),
        ];
        for (base, far, near, expected) in table {
            let got = merge(&set(base), PerSide::new(&set(far), &set(near)));
            assert_eq!(
                got,
                set(expected),
                "base {base:?} far {far:?} near {near:?}"
            );
        }
    }

    #[test]
    fn keywords_merge_like_letters() {
        let kw = |k: &str| Flag::Keyword(k.to_string());
        let base: Flags = [kw("$Label1")].into_iter().collect();
        let far: Flags = [kw("$Label1"), kw("$Junk")].into_iter().collect();
        let near = Flags::new();
        let merged = merge(&base, PerSide::new(&far, &near));
        assert_eq!(merged, [kw("$Junk")].into_iter().collect());
    }

    #[test]
    fn delta_reaches_target() {
        let (add, remove) = delta(&set("FS"), &set("RS"));
        assert_eq!((add, remove), (set("R"), set("F")));
    }

    proptest! {
        #[test]
        fn merge_is_symmetric_and_stable(b in "[DFPRST]{0,6}", f in "[DFPRST]{0,6}", n in "[DFPRST]{0,6}") {
            let (b, f, n) = (set(&b), set(&f), set(&n));
            let merged = merge(&b, PerSide::new(&f, &n));
            prop_assert_eq!(&merged, &merge(&b, PerSide::new(&n, &f)));
            // Once both sides carry the result, merging again changes nothing.
            prop_assert_eq!(&merge(&merged, PerSide::new(&merged, &merged)), &merged);
            // A side that did not change does not influence the result.
            prop_assert_eq!(merge(&b, PerSide::new(&f, &b)), f);
        }
    }
}
