//! The metric value types. [`Counter`] and [`Gauge`] wrap prometheus-client's (their methods
//! return nothing, as augur's callers expect); [`Histogram`] is a lock-free histogram that
//! prometheus-client encodes through its [`EncodeMetric`] trait.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A monotonically increasing count of events. Clones share the value. Its exposed name ends
/// in `_total`.
#[derive(Debug, Clone, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter<u64, AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down (queue depth, requests in progress, lag). Clones share the
/// value.
#[derive(Debug, Clone, Default)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.0.dec();
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// Delegates prometheus-client's encoding traits to the wrapped metric.
macro_rules! encode_as_inner {
    ($t:ty, $kind:ident) => {
        impl TypedMetric for $t {
            const TYPE: MetricType = MetricType::$kind;
        }

        impl EncodeMetric for $t {
            fn encode(&self, encoder: MetricEncoder) -> fmt::Result {
                self.0.encode(encoder)
            }

            fn metric_type(&self) -> MetricType {
                MetricType::$kind
            }
        }
    };
}

encode_as_inner!(Counter, Counter);
encode_as_inner!(Gauge, Gauge);

/// Upper bounds of a histogram's buckets, ascending and finite; `+Inf` is always added.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(Arc<[f64]>);

impl Buckets {
    /// Explicit upper bounds.
    ///
    /// # Panics
    /// If the bounds are empty, not strictly ascending, or not finite.
    fn new(bounds: Vec<f64>) -> Buckets {
        assert!(!bounds.is_empty(), "a histogram needs at least one bucket");
        assert!(
            bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]),
            "histogram buckets must be finite and strictly ascending: {bounds:?}"
        );
        Buckets(bounds.into())
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
        Buckets::new((0..count).map(|i| start * factor.powi(i as i32)).collect())
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
}

/// The shared state of a [`Histogram`].
#[derive(Debug)]
struct HistogramCore {
    /// Upper bounds, ascending, without `+Inf`.
    bounds: Buckets,
    /// Per bucket (plus one for `+Inf`): observations that fell in it (not cumulative).
    counts: Box<[AtomicU64]>,
    /// The sum of all observations, as `f64` bits.
    sum: AtomicU64,
}

/// A distribution of observations in fixed buckets, with their sum and count. Clones share
/// the value.
///
/// Not prometheus-client's `Histogram`, which takes a mutex per observation: this one is a
/// few relaxed atomic operations, for the model server's per-request observations.
#[derive(Clone)]
pub struct Histogram {
    /// The buckets and sum.
    core: Arc<HistogramCore>,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("bounds", &self.core.bounds.0)
            .finish_non_exhaustive()
    }
}

impl Histogram {
    /// A new, empty histogram, not registered anywhere (see [`crate::Registry::histogram`]).
    pub(crate) fn new(buckets: &Buckets) -> Histogram {
        Histogram {
            core: Arc::new(HistogramCore {
                bounds: buckets.clone(),
                counts: (0..=buckets.0.len()).map(|_| AtomicU64::new(0)).collect(),
                sum: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// Records one observation (in the first bucket whose bound is ≥ it). NaN is counted in
    /// `+Inf` and poisons the sum, as in the Go client.
    pub fn observe(&self, v: f64) {
        let c = &self.core;
        let i = c.bounds.0.partition_point(|b| *b < v);
        c.counts[i].fetch_add(1, Ordering::Relaxed);
        let mut old = c.sum.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(old) + v).to_bits();
            match c
                .sum
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(current) => old = current,
            }
        }
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> fmt::Result {
        let c = &self.core;
        let buckets: Vec<(f64, u64)> = (c.bounds.0.iter().copied())
            .chain([f64::INFINITY])
            .zip(c.counts.iter().map(|n| n.load(Ordering::Relaxed)))
            .collect();
        // The count is derived from the buckets, so `+Inf` equals `_count` even while other
        // threads observe.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = f64::from_bits(c.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_layouts() {
        assert_eq!(
            &*Buckets::powers_of_two(64).0,
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        );
        assert_eq!(Buckets::powers_of_two(100).0.last(), Some(&128.0));
        assert_eq!(&*Buckets::exponential(1.0, 10.0, 3).0, &[1.0, 10.0, 100.0]);
        assert_eq!(Buckets::latency().0.len(), 16);
    }

    #[test]
    #[should_panic(expected = "strictly ascending")]
    fn unsorted_buckets_panic() {
        let _ = Buckets::new(vec![2.0, 1.0]);
    }

    #[test]
    fn gauge_adds_concurrently() {
        let g = Gauge::default();
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
}
