//! The three metric value types — [`Counter`], [`Gauge`], [`Histogram`] — and the histogram
//! bucket layouts ([`Buckets`]). Each is a cheap `Clone` handle around shared atomics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Adds `delta` to an `f64` stored as bits in an `AtomicU64`.
fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut old = cell.load(Ordering::Relaxed);
    loop {
        let new = (f64::from_bits(old) + delta).to_bits();
        match cell.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(current) => old = current,
        }
    }
}

/// Writes a sample value the way Prometheus parses it (`+Inf`, `-Inf`, `NaN`, decimals).
pub(crate) fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A monotonically increasing count of events. Clones share the value.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    /// The count.
    value: Arc<AtomicU64>,
}

impl Counter {
    /// A new counter at zero, not registered anywhere (see [`crate::Registry::counter`]).
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (queue depth, requests in progress, lag). Clones share the
/// value.
#[derive(Debug, Clone, Default)]
pub struct Gauge {
    /// The value, as `f64` bits.
    bits: Arc<AtomicU64>,
}

impl Gauge {
    /// A new gauge at zero, not registered anywhere (see [`crate::Registry::gauge`]).
    pub fn new() -> Gauge {
        Gauge::default()
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Ordering::Relaxed);
    }

    /// Adds `delta` (negative to subtract).
    pub fn add(&self, delta: f64) {
        add_f64(&self.bits, delta);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

/// Upper bounds of a histogram's buckets, ascending and finite; `+Inf` is always added.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(Vec<f64>);

impl Buckets {
    /// Explicit upper bounds.
    ///
    /// # Panics
    /// If the bounds are empty, not strictly ascending, or not finite.
    pub fn new(bounds: impl Into<Vec<f64>>) -> Buckets {
        let bounds = bounds.into();
        assert!(!bounds.is_empty(), "a histogram needs at least one bucket");
        assert!(
            bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram buckets must be finite and strictly ascending: {bounds:?}"
        );
        Buckets(bounds)
    }

    /// `count` bounds `start, start·factor, start·factor², …`.
    ///
    /// # Panics
    /// If `start <= 0`, `factor <= 1` or `count == 0`.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Buckets {
        assert!(
            start > 0.0 && factor > 1.0 && count > 0,
            "exponential buckets need start > 0, factor > 1 and count > 0"
        );
        Buckets::new(
            (0..count)
                .map(|i| start * factor.powi(i as i32))
                .collect::<Vec<_>>(),
        )
    }

    /// `count` bounds `start, start+width, start+2·width, …`.
    ///
    /// # Panics
    /// If `width <= 0` or `count == 0`.
    pub fn linear(start: f64, width: f64, count: usize) -> Buckets {
        assert!(
            width > 0.0 && count > 0,
            "linear buckets need width > 0 and count > 0"
        );
        Buckets::new(
            (0..count)
                .map(|i| start + width * i as f64)
                .collect::<Vec<_>>(),
        )
    }

    /// Powers of two from 1 up to and including the first power ≥ `max` (batch sizes, as
    /// BentoML's `adaptive_batch_size` histogram uses).
    pub fn powers_of_two(max: u64) -> Buckets {
        let mut bounds = vec![1.0];
        let mut b = 1u64;
        while b < max.max(1) {
            b = b.saturating_mul(2);
            bounds.push(b as f64);
        }
        Buckets::new(bounds)
    }

    /// Latency buckets in seconds from 100 µs to 10 s (1–2.5–5 steps): finer at the low end
    /// than Prometheus' defaults, for services that answer in microseconds.
    pub fn latency() -> Buckets {
        Buckets::new(vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ])
    }

    /// The upper bounds, without `+Inf`.
    pub fn bounds(&self) -> &[f64] {
        &self.0
    }
}

/// The shared state of a [`Histogram`].
#[derive(Debug)]
struct HistogramCore {
    /// Upper bounds, ascending, without `+Inf`.
    bounds: Box<[f64]>,
    /// Per bucket (plus one for `+Inf`): observations that fell in it (not cumulative).
    counts: Box<[AtomicU64]>,
    /// The sum of all observations, as `f64` bits.
    sum: AtomicU64,
    /// The number of observations.
    count: AtomicU64,
}

/// A distribution of observations in fixed buckets, with their sum and count. Clones share
/// the value.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// The buckets, sum and count.
    core: Arc<HistogramCore>,
}

impl Histogram {
    /// A new, empty histogram, not registered anywhere (see [`crate::Registry::histogram`]).
    pub fn new(buckets: &Buckets) -> Histogram {
        let bounds: Box<[f64]> = buckets.bounds().into();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            core: Arc::new(HistogramCore {
                bounds,
                counts,
                sum: AtomicU64::new(0f64.to_bits()),
                count: AtomicU64::new(0),
            }),
        }
    }

    /// Records one observation. NaN is counted in `+Inf` and poisons the sum, as in the Go
    /// client.
    pub fn observe(&self, v: f64) {
        let c = &self.core;
        let i = c.bounds.partition_point(|b| *b < v);
        c.counts[i].fetch_add(1, Ordering::Relaxed);
        add_f64(&c.sum, v);
        c.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a timer that observes the elapsed seconds when dropped (or on
    /// [`HistogramTimer::stop`]).
    pub fn start_timer(&self) -> HistogramTimer {
        HistogramTimer {
            histogram: self.clone(),
            start: Instant::now(),
            done: false,
        }
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.core.count.load(Ordering::Relaxed)
    }

    /// The sum of all observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.core.sum.load(Ordering::Relaxed))
    }

    /// `(upper bound, cumulative count)` per bucket, ending with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let c = &self.core;
        let mut acc = 0;
        c.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(c.counts.iter())
            .map(|(b, n)| {
                acc += n.load(Ordering::Relaxed);
                (b, acc)
            })
            .collect()
    }

    /// The bucket bounds this histogram was made with.
    pub(crate) fn bounds(&self) -> &[f64] {
        &self.core.bounds
    }
}

/// Observes the seconds since it was started into its histogram when dropped.
#[derive(Debug)]
pub struct HistogramTimer {
    /// Where the duration goes.
    histogram: Histogram,
    /// When the timer started.
    start: Instant,
    /// Whether it has already observed.
    done: bool,
}

impl HistogramTimer {
    /// Observes now and returns the elapsed seconds.
    pub fn stop(mut self) -> f64 {
        self.observe()
    }

    /// Drops the timer without observing.
    pub fn discard(mut self) {
        self.done = true;
    }

    /// Records the elapsed time once.
    fn observe(&mut self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if !self.done {
            self.done = true;
            self.histogram.observe(secs);
        }
        secs
    }
}

impl Drop for HistogramTimer {
    fn drop(&mut self) {
        if !self.done {
            self.observe();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_inclusive_and_cumulative() {
        let h = Histogram::new(&Buckets::new(vec![1.0, 2.0, 4.0]));
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, 9.0] {
            h.observe(v);
        }
        assert_eq!(
            h.cumulative(),
            vec![(1.0, 2), (2.0, 4), (4.0, 5), (f64::INFINITY, 6)]
        );
        assert_eq!(h.count(), 6);
        assert_eq!(h.sum(), 17.0);
    }

    #[test]
    fn gauge_adds_concurrently() {
        let g = Gauge::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        g.inc();
                    }
                });
            }
        });
        assert_eq!(g.get(), 4000.0);
        g.dec();
        assert_eq!(g.get(), 3999.0);
    }

    #[test]
    fn bucket_layouts() {
        assert_eq!(
            Buckets::powers_of_two(64).bounds(),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        );
        assert_eq!(Buckets::powers_of_two(100).bounds().last(), Some(&128.0));
        assert_eq!(
            Buckets::exponential(1.0, 10.0, 3).bounds(),
            &[1.0, 10.0, 100.0]
        );
        assert_eq!(Buckets::linear(0.0, 5.0, 3).bounds(), &[0.0, 5.0, 10.0]);
    }

    #[test]
    #[should_panic(expected = "strictly ascending")]
    fn unsorted_buckets_panic() {
        let _ = Buckets::new(vec![2.0, 1.0]);
    }

    #[test]
    fn timer_observes_once() {
        let h = Histogram::new(&Buckets::latency());
        let t = h.start_timer();
        assert!(t.stop() >= 0.0);
        h.start_timer().discard();
        drop(h.start_timer());
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn values_format_for_prometheus() {
        let mut s = String::new();
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.005, 3.0] {
            write_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "+Inf -Inf NaN 0.005 3 ");
    }
}
