//! The one retry schedule: exponential backoff for errors whose kind says to retry.

use std::time::Duration;

use crate::error::{ErrorKind, Retry};

/// Exponential backoff (`first`, doubling, capped at `max`), optionally giving up after a number
/// of retries. Whether an error is retried at all is [`ErrorKind::retry`]'s decision, not the
/// caller's: [`Backoff::next`] asks it.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    limit: Option<u32>,
    attempt: u32,
}

impl Backoff {
    /// The schedule for reconnecting to a database, a broker or a model server: 100 ms
    /// doubling to 2 s, without a limit.
    pub const fn standard() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
    }

    /// Waits `first`, then twice as long each time, never longer than `max`.
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            limit: None,
            attempt: 0,
        }
    }

    /// Gives up after `retries` retries.
    #[must_use]
    pub const fn with_limit(mut self, retries: u32) -> Backoff {
        self.limit = Some(retries);
        self
    }

    /// Retries made so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The wait before retrying an operation that failed with an error of `kind`, or `None`
    /// when it must not be retried: the kind is not transient, or the retries are used up.
    pub fn next(&mut self, kind: ErrorKind) -> Option<Duration> {
        if kind.retry() != Retry::WithBackoff {
            return None;
        }
        self.wait()
    }

    /// The wait before the next retry whatever the error, or `None` once the retries are used
    /// up (for callers that decide retryability themselves, e.g. by HTTP status).
    pub fn wait(&mut self) -> Option<Duration> {
        if self.limit.is_some_and(|l| self.attempt >= l) {
            return None;
        }
        let wait = self
            .first
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt += 1;
        Some(wait)
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_stops_at_the_limit() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_millis(500)).with_limit(5);
        let waits: Vec<u64> = std::iter::from_fn(|| b.wait())
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(b.attempt(), 5);
        b.reset();
        assert_eq!(b.wait(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn only_transient_kinds_are_retried() {
        let mut b = Backoff::standard();
        assert!(b.next(ErrorKind::Connection).is_some());
        assert!(b.next(ErrorKind::Config).is_none());
        assert!(b.next(ErrorKind::Data).is_none());
        assert_eq!(b.attempt(), 1);
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(b.wait().unwrap() <= Duration::from_secs(60));
        }
    }
}
