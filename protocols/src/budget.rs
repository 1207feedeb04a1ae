//! Query budgets: how many inputs a client may have classified, per session and per client
//! over a sliding time window, so that extracting a model through its answers (Tramer, Zhang,
//! Juels, Reiter and Ristenpart, "Stealing machine learning models via prediction APIs",
//! USENIX Security 2016) costs what the server decides.
//!
//! A client is its authenticated identity on a server with an allow-list (identities are free
//! to make, so on an open server they bound nothing), and otherwise its source address (an
//! IPv4 address or an IPv6 /64). The welcome tells the client how many inputs its session may
//! still send, so that an honest client refuses itself with a clear error rather than be cut
//! off; a client that sends more anyway ends its session. Only classified inputs count: the
//! offline phase reveals nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::SessionError;

/// Default most inputs of one session.
pub const DEFAULT_QUERIES_PER_SESSION: u64 = 10_000;
/// Default most inputs of one client per [`DEFAULT_QUERY_WINDOW`].
pub const DEFAULT_QUERIES_PER_WINDOW: u64 = 10_000;
/// Default window of the per-client budget: an hour.
pub const DEFAULT_QUERY_WINDOW: Duration = Duration::from_secs(3600);
/// Clients the ledger tracks at most; beyond, the one whose window began first is forgotten.
const MAX_CLIENTS: usize = 1 << 16;

/// The inputs each client had classified in its current window.
pub struct QueryLedger {
    per_window: u64,
    window: Duration,
    clients: Mutex<HashMap<String, (Instant, u64)>>,
}

impl QueryLedger {
    /// A ledger allowing `per_window` inputs per client in each `window`.
    pub fn new(per_window: u64, window: Duration) -> QueryLedger {
        QueryLedger {
            per_window,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u64)>> {
        // The map stays consistent if a holder panicked.
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inputs `client` may still send in its window.
    pub fn left(&self, client: &str) -> u64 {
        let now = Instant::now();
        match self.lock().get(client) {
            Some((start, used)) if now.duration_since(*start) < self.window => {
                self.per_window.saturating_sub(*used)
            }
            _ => self.per_window,
        }
    }

    /// Records `n` more inputs of `client` if its window allows them; returns its count in the
    /// window, or `None` (nothing recorded) when they would pass the limit.
    pub fn record(&self, client: &str, n: u64) -> Option<u64> {
        let now = Instant::now();
        let mut clients = self.lock();
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(client) {
            let window = self.window;
            clients.retain(|_, (start, _)| now.duration_since(*start) < window);
            if clients.len() >= MAX_CLIENTS {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    clients.remove(&k);
                }
            }
        }
        let entry = clients.entry(client.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        let total = entry.1.checked_add(n)?;
        if total > self.per_window {
            return None;
        }
        entry.1 = total;
        Some(total)
    }
}

/// One session's budget: what it may still send, and the client it is counted under.
pub(crate) struct SessionBudget<'a> {
    ledger: &'a QueryLedger,
    client: String,
    left: u64,
    used: u64,
}

impl<'a> SessionBudget<'a> {
    /// The budget of a session of `client`: at most `per_session` inputs, and what its window
    /// leaves.
    pub(crate) fn open(ledger: &'a QueryLedger, client: String, per_session: u64) -> Self {
        let left = per_session.min(ledger.left(&client));
        SessionBudget {
            ledger,
            client,
            left,
            used: 0,
        }
    }

    /// Inputs the session may still send.
    pub(crate) fn left(&self) -> u64 {
        self.left
    }

    /// Spends `n` inputs of the budget, or refuses them (the session ends).
    pub(crate) fn spend(&mut self, n: u32) -> Result<(), SessionError> {
        let n = u64::from(n);
        if n > self.left {
            return Err(SessionError::Protocol(format!(
                "a query of {n} inputs with {} left in the session's query budget",
                self.left
            )));
        }
        let window = self.ledger.record(&self.client, n).ok_or_else(|| {
            SessionError::Protocol(format!(
                "a query of {n} inputs beyond the client's query budget for the window"
            ))
        })?;
        self.left -= n;
        self.used += n;
        tracing::info!(
            client = %self.client,
            session_inputs = self.used,
            window_inputs = window,
            "inputs classified"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_and_windows_are_bounded_and_windows_reset() {
        let ledger = QueryLedger::new(10, Duration::from_millis(200));
        let mut a = SessionBudget::open(&ledger, "ip:10.0.0.1".into(), 6);
        assert_eq!(a.left(), 6);
        a.spend(4).unwrap();
        assert!(a.spend(3).is_err(), "past the session's 6");
        a.spend(2).unwrap();
        // A second session of the same client gets what the window leaves.
        let mut b = SessionBudget::open(&ledger, "ip:10.0.0.1".into(), 6);
        assert_eq!(b.left(), 4);
        b.spend(4).unwrap();
        assert_eq!(ledger.left("ip:10.0.0.1"), 0);
        // Another client is counted apart.
        assert_eq!(ledger.left("ip:10.0.0.2"), 10);
        // Two sessions opened at once cannot pass the window together.
        let ledger = QueryLedger::new(5, Duration::from_secs(60));
        let mut c = SessionBudget::open(&ledger, "x".into(), 5);
        let mut d = SessionBudget::open(&ledger, "x".into(), 5);
        c.spend(3).unwrap();
        assert!(d.spend(3).is_err());
        d.spend(2).unwrap();
        // The window resets.
        let ledger = QueryLedger::new(2, Duration::from_millis(50));
        assert_eq!(ledger.record("y", 2), Some(2));
        assert_eq!(ledger.record("y", 1), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(ledger.record("y", 1), Some(1));
        assert_eq!(ledger.record("y", u64::MAX), None);
    }
}
