//! How the harness's long-running functions report progress: through a [`Progress`] the
//! caller passes in (a progress bar, a log line, or nothing at all with `()`).

/// Receives a long-running function's progress. Every method does nothing by default.
pub trait Progress {
    /// A new phase starts, described by `what`; `total` is its number of steps when known.
    fn phase(&mut self, what: &str, total: Option<u64>) {
        let _ = (what, total);
    }

    /// One step of the current phase is done; `note` is a short status (may be empty).
    fn step(&mut self, note: &str) {
        let _ = note;
    }

    /// The current phase is done.
    fn finish(&mut self) {}
}

/// No progress reporting.
impl Progress for () {}
