//! The two GMW parties as types: [`P0`] and [`P1`], the implementations of [`Role`].
//!
//! The protocol is symmetric but for three things, each fixed by the party's role (Goldreich,
//! Micali and Wigderson, STOC 1987; the two-party boolean form of ABY, NDSS 2015, section
//! III-B): party 0 holds the public part of every sharing (the 1 of an INV gate, a constant,
//! and the `d·e` term of an AND output), party 0 sends first in every exchange (so that no
//! exchange can deadlock on full socket buffers), and the two OT extensions are set up in
//! opposite orders. A party's role is a type parameter of [`GmwParty`](crate::GmwParty) and
//! [`Online`](crate::online::Online), so each party's code is compiled for its role and a
//! party cannot change role in the middle of a session. [`PartyId`] remains the *value* that
//! names a party in data: who owns a circuit input, who learns an output.

use crate::party::PartyId;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::P0 {}
    impl Sealed for super::P1 {}
}

/// A GMW party's role, known at compile time. Implemented by [`P0`] and [`P1`] only.
pub trait Role: sealed::Sealed + Send + Sync + std::fmt::Debug + 'static {
    /// This party's name in owner lists and reveal choices.
    const ID: PartyId;
    /// The peer's name.
    const PEER: PartyId;
    /// Whether this party holds the public part of every sharing (party 0 does).
    const HOLDS_PUBLIC: bool;
    /// Whether this party sends first in every exchange (party 0 does).
    const SENDS_FIRST: bool;
}

/// The first party (for instance the model owner): holds the public part of every sharing
/// and sends first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct P0;

/// The second party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct P1;

impl Role for P0 {
    const ID: PartyId = PartyId::P0;
    const PEER: PartyId = PartyId::P1;
    const HOLDS_PUBLIC: bool = true;
    const SENDS_FIRST: bool = true;
}

impl Role for P1 {
    const ID: PartyId = PartyId::P1;
    const PEER: PartyId = PartyId::P0;
    const HOLDS_PUBLIC: bool = false;
    const SENDS_FIRST: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roles_are_complementary() {
        assert_eq!(P0::PEER, P1::ID);
        assert_eq!(P1::PEER, P0::ID);
        assert_ne!(P0::HOLDS_PUBLIC, P1::HOLDS_PUBLIC);
        assert_ne!(P0::SENDS_FIRST, P1::SENDS_FIRST);
    }
}
