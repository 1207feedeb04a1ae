//! Communication counters kept by every channel endpoint.

use serde::{Deserialize, Serialize};

/// What one endpoint of a [`Channel`](crate::Channel) has sent and received so far.
///
/// * `bytes_sent` / `bytes_received` count what crosses the wire: the 4-byte header plus the
///   payload of every complete frame. The count is the same for TCP and in-memory channels, so
///   the bytes one endpoint sent equal the bytes its peer received once everything is delivered.
/// * `messages_sent` / `messages_received` count frames, typed or raw, including empty ones. A
///   frame that arrived complete but failed to decode is counted as received.
/// * `rounds` counts the *flights* this endpoint sent. A flight is a maximal run of sends not
///   interrupted by a receive: the first send ever starts flight 1, and a send that follows a
///   receive starts a new flight; consecutive sends belong to the same flight. In a protocol where
///   A sends, B replies and A sends again, A counts 2 rounds and B counts 1; the round count of
///   the whole protocol is the sum over both endpoints (3 here).
///
/// Use [`since`](Self::since) to measure one phase of a protocol:
///
/// ```
/// # use veil_net::Stats;
/// let before = Stats { bytes_sent: 10, messages_sent: 1, rounds: 1, ..Stats::default() };
/// let after = Stats { bytes_sent: 30, messages_sent: 3, rounds: 2, ..Stats::default() };
/// let phase = after.since(&before);
/// assert_eq!(phase.bytes_sent, 20);
/// assert_eq!(phase.rounds, 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Bytes written to the wire: header and payload of every frame sent.
    pub bytes_sent: u64,
    /// Bytes read from the wire: header and payload of every complete frame received.
    pub bytes_received: u64,
    /// Frames sent.
    pub messages_sent: u64,
    /// Complete frames received.
    pub messages_received: u64,
    /// Flights sent (see the type's documentation).
    pub rounds: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;

    /// Counters of two stretches together (saturating).
    fn add(self, other: Stats) -> Stats {
        Stats {
            bytes_sent: self.bytes_sent.saturating_add(other.bytes_sent),
            bytes_received: self.bytes_received.saturating_add(other.bytes_received),
            messages_sent: self.messages_sent.saturating_add(other.messages_sent),
            messages_received: self
                .messages_received
                .saturating_add(other.messages_received),
            rounds: self.rounds.saturating_add(other.rounds),
        }
    }
}

impl Stats {
    /// The counters accumulated since `earlier`, a snapshot of the same endpoint taken before.
    /// Fields saturate at zero if `earlier` is not actually earlier.
    #[must_use]
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
            messages_sent: self.messages_sent.saturating_sub(earlier.messages_sent),
            messages_received: self
                .messages_received
                .saturating_sub(earlier.messages_received),
            rounds: self.rounds.saturating_sub(earlier.rounds),
        }
    }

    /// Bytes sent plus bytes received.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_sent.saturating_add(self.bytes_received)
    }

    /// Messages sent plus messages received.
    pub fn total_messages(&self) -> u64 {
        self.messages_sent.saturating_add(self.messages_received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_and_saturates() {
        let a = Stats {
            bytes_sent: 100,
            bytes_received: 50,
            messages_sent: 4,
            messages_received: 2,
            rounds: 3,
        };
        let b = Stats {
            bytes_sent: 40,
            bytes_received: 60,
            messages_sent: 1,
            messages_received: 2,
            rounds: 1,
        };
        let d = a.since(&b);
        assert_eq!(
            d,
            Stats {
                bytes_sent: 60,
                bytes_received: 0,
                messages_sent: 3,
                messages_received: 0,
                rounds: 2,
            }
        );
        assert_eq!(a.since(&Stats::default()), a);
        assert_eq!(a.total_bytes(), 150);
        assert_eq!(a.total_messages(), 6);
    }
}
