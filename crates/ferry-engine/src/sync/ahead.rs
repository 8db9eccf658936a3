//! Listing the next folders while one is prepared: before each folder, the
//! stores that can ([`Store::ahead_depth`]) are asked to list the next
//! few in the background ([`Store::list_ahead`]), with what the state knew
//! of them read once, here, and handed to `prepare` later.
//!
//! Only a few folders ahead are asked for, so a run still holds the
//! listings and pairs of a handful of folders at a time.

use super::delta::{self, Eligible};
use super::{SyncOptions, keys_and_flags, since};
use ferry_core::store::{Since, Store};
use ferry_core::{PerSide, Side};
use ferry_state::{State, StoredPair};
use std::collections::HashMap;

/// What the state knew of a folder before it is listed.
pub(super) struct Known {
    /// The folder's record, `None` for a folder the state does not know.
    pub folder: Option<ferry_state::Folder>,
    /// Its pairs; none for a folder prepared from its changes.
    pub pairs: Vec<StoredPair>,
    /// For a folder prepared from its changes, what was read instead.
    pub delta: Option<delta::Known>,
}

impl Known {
    /// Reads what the state knows of folder `name`: its pairs, or, for a
    /// folder `eligible` to be prepared from its changes, the keys and
    /// flags of the sides to list.
    pub(super) fn load(
        state: &State,
        name: &str,
        eligible: Option<&Eligible>,
    ) -> Result<Known, String> {
        let folder = state
            .find_folder(Side::Near, name)
            .map_err(|e| e.to_string())?;
        let delta = match (&folder, eligible) {
            (Some(folder), Some(eligible)) => delta::Known::load(state, folder, eligible)?,
            _ => None,
        };
        let pairs = match (&folder, &delta) {
            (Some(folder), None) => state.load_pairs(folder.id).map_err(|e| e.to_string())?,
            _ => Vec::new(),
        };
        Ok(Known {
            folder,
            pairs,
            delta,
        })
    }

    /// Whether `side` is listed (not proven unchanged and left unlisted).
    pub(super) fn lists(&self, side: Side) -> bool {
        self.delta.as_ref().is_none_or(|p| p.lists(side))
    }

    /// What to list the changes since, per side: `None` for a full listing
    /// (a store that cannot list changes, `--full`, a folder never synced).
    pub(super) fn since(
        &self,
        lists_changes: PerSide<bool>,
        options: &SyncOptions,
    ) -> PerSide<Option<Since>> {
        if let (Some(delta), Some(folder)) = (&self.delta, &self.folder) {
            return delta.since(folder, lists_changes);
        }
        PerSide::from_fn(|side| {
            self.folder
                .as_ref()
                .filter(|_| !options.full && lists_changes[side])
                .and_then(|folder| since(folder, side, keys_and_flags(&self.pairs, side)))
        })
    }
}

/// The folders of a run in order, and what was read for those asked ahead.
pub(super) struct Lookahead<'a> {
    names: &'a [&'a String],
    /// The folders to prepare from their changes.
    eligible: &'a HashMap<String, Eligible>,
    known: HashMap<&'a str, Known>,
}

impl<'a> Lookahead<'a> {
    pub(super) fn new(
        names: &'a [&'a String],
        eligible: &'a HashMap<String, Eligible>,
    ) -> Lookahead<'a> {
        Lookahead {
            names,
            eligible,
            known: HashMap::new(),
        }
    }

    /// Before the first folder is prepared: tells the stores how many
    /// folders will be asked for ahead, so that they get ready while the
    /// state is read. Folders whose side is left unlisted count too: the
    /// helpers also make the changes planned for the next folders.
    pub(super) fn expect<F: Store, N: Store>(&self, (far, near): (&mut F, &mut N)) {
        let ahead = self.names.len().saturating_sub(1);
        far.expect_ahead(ahead.min(far.ahead_depth()));
        near.expect_ahead(ahead.min(near.ahead_depth()));
    }

    /// Before folder `index` is prepared: asks for the next ones that are
    /// not asked for yet (`skip`: folders not to list, such as those a dry
    /// run would create).
    pub(super) fn ask<F: Store, N: Store>(
        &mut self,
        index: usize,
        (far, near): (&mut F, &mut N),
        state: &State,
        options: &SyncOptions,
        skip: impl Fn(&str) -> bool,
    ) {
        let depth = far.ahead_depth().max(near.ahead_depth());
        let lists_changes = super::capability(far, near, |c| c.lists_changes);
        for name in self.names.iter().skip(index + 1).take(depth) {
            if self.known.contains_key(name.as_str()) || skip(name) {
                continue;
            }
            // A folder whose state cannot be read is not asked for; its
            // `prepare` meets and reports the problem.
            let Ok(known) = Known::load(state, name, self.eligible.get(name.as_str())) else {
                continue;
            };
            let since = known.since(lists_changes, options);
            if known.lists(Side::Far) {
                far.list_ahead(name, since.far.as_ref());
            }
            if known.lists(Side::Near) {
                near.list_ahead(name, since.near.as_ref());
            }
            self.known.insert(name.as_str(), known);
        }
    }

    /// What was read of `name` when it was asked for ahead.
    pub(super) fn take(&mut self, name: &str) -> Option<Known> {
        self.known.remove(name)
    }
}
