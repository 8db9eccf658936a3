//! The two sides of a sync pair, and values held once per side.
//!
//! The engine is written once for both directions: data is indexed by
//! [`Side`] and "the other side" is [`Side::other`], never a `push_*` /
//! `pull_*` twin.

use std::ops::{Index, IndexMut};

/// One side of a sync pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The remote store: the IMAP server (the source, for `migrate`).
    Far,
    /// The local store: the Maildir (the destination server, for `migrate`).
    Near,
}

impl Side {
    /// Both sides, far first.
    pub const BOTH: [Side; 2] = [Side::Far, Side::Near];

    /// The opposite side.
    pub fn other(self) -> Side {
        match self {
            Side::Far => Side::Near,
            Side::Near => Side::Far,
        }
    }

    /// A lower-case name for messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            Side::Far => "far",
            Side::Near => "near",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A value for each side, indexed by [`Side`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct PerSide<T> {
    /// The far side's value.
    pub far: T,
    /// The near side's value.
    pub near: T,
}

impl<T> PerSide<T> {
    /// Builds a pair from the far and near values.
    pub fn new(far: T, near: T) -> Self {
        PerSide { far, near }
    }

    /// Builds a pair by calling `f` for each side.
    pub fn from_fn(mut f: impl FnMut(Side) -> T) -> Self {
        let far = f(Side::Far);
        PerSide {
            far,
            near: f(Side::Near),
        }
    }

    /// Applies `f` to both values.
    pub fn map<U>(self, mut f: impl FnMut(Side, T) -> U) -> PerSide<U> {
        PerSide {
            far: f(Side::Far, self.far),
            near: f(Side::Near, self.near),
        }
    }

    /// Borrows both values.
    pub fn as_ref(&self) -> PerSide<&T> {
        PerSide {
            far: &self.far,
            near: &self.near,
        }
    }

    /// The same values with the sides exchanged.
    pub fn swapped(self) -> Self {
        PerSide {
            far: self.near,
            near: self.far,
        }
    }
}

impl<T> Index<Side> for PerSide<T> {
    type Output = T;
    fn index(&self, side: Side) -> &T {
        match side {
            Side::Far => &self.far,
            Side::Near => &self.near,
        }
    }
}

impl<T> IndexMut<Side> for PerSide<T> {
    fn index_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Far => &mut self.far,
            Side::Near => &mut self.near,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_an_involution() {
        for side in Side::BOTH {
            assert_ne!(side, side.other());
            assert_eq!(side, side.other().other());
        }
    }

    #[test]
    fn index_reaches_the_named_side() {
        let mut pair = PerSide::from_fn(|s| s.name().to_string());
        assert_eq!(pair[Side::Far], "far");
        pair[Side::Near].push('!');
        assert_eq!(pair.near, "near!");
        let swapped = pair.swapped();
        assert_eq!(swapped[Side::Far], "near!");
        assert_eq!(swapped.map(|_, v| v.len()), PerSide::new(5, 3));
    }
}
