//! IMAP identities that are never zero.
//!
//! RFC 3501 forbids UID 0 and UIDVALIDITY 0; a server that sends either is
//! broken or hostile, so these types cannot hold zero and conversion from a
//! wire value is fallible.

use std::num::NonZeroU32;

/// A zero where RFC 3501 requires a non-zero value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} 0 is not valid (RFC 3501 requires a non-zero value)")]
pub struct InvalidId {
    /// Which identity was zero ("UID" or "UIDVALIDITY").
    pub what: &'static str,
}

macro_rules! nonzero_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(NonZeroU32);

        impl $name {
            /// Wraps a wire value; zero is refused.
            pub fn new(value: u32) -> Result<Self, InvalidId> {
                NonZeroU32::new(value).map($name).ok_or(InvalidId { what: $what })
            }

            /// The wire value.
            pub fn get(self) -> u32 {
                self.0.get()
            }
        }

        impl TryFrom<u32> for $name {
            type Error = InvalidId;
            fn try_from(value: u32) -> Result<Self, InvalidId> {
                $name::new(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

nonzero_id!(
    /// A message's unique identifier within one folder incarnation.
    Uid,
    "UID"
);
nonzero_id!(
    /// The incarnation of an IMAP folder: when it changes, every UID is void.
    UidValidity,
    "UIDVALIDITY"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_refused_with_a_named_error() {
        let err = Uid::new(0).expect_err("zero must be refused");
        assert_eq!(
            err.to_string(),
            "UID 0 is not valid (RFC 3501 requires a non-zero value)"
        );
        assert!(UidValidity::try_from(0).is_err());
    }

    #[test]
    fn values_round_trip_and_order() {
        let a = Uid::new(7).expect("non-zero");
        let b = Uid::new(u32::MAX).expect("non-zero");
        assert_eq!(a.get(), 7);
        assert!(a < b);
        assert_eq!(b.to_string(), "4294967295");
    }
}
