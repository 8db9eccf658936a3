//! Stable row identities: folder pairs, message pairs, intents, batches.
//!
//! Each is an opaque integer that SQLite assigns and never reuses
//! (`AUTOINCREMENT`), so an id held across a crash never names a different
//! row. Only this crate makes them; others compare, hash, log and pass them
//! back.

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) i64);

        impl $name {
            /// The row number, for logs and reports.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

row_id!(
    /// A folder pair: one folder on each side, synced with each other.
    FolderId,
    "#"
);
row_id!(
    /// A message pair: one message known on one or both sides of a folder pair.
    PairId,
    "#"
);
row_id!(
    /// One journalled side effect.
    IntentId,
    "#"
);
row_id!(
    /// The intents recorded together in one durable transaction.
    BatchId,
    "#"
);
