//! The embedded pipeline's last stage: one transaction per batch, transient failures retried,
//! and the batch's ack only after its commit — the one thing that flows back to the source.

use augur_core::ack::AckToken;
use augur_core::shutdown::Shutdown;
use augur_core::{Backoff, Error};
use augur_postgres::sink::{Batch, Rejected};
use tokio::sync::{broadcast, mpsc, watch};

use super::destination::Destination;
use super::transform::Transformed;
use super::{PipelineMetrics, SinkBatch, Written, now_us};
use crate::predict::RejectCode;

/// The sink stage's state.
pub(super) struct SinkStage<D: Destination> {
    /// Where batches go (see the contract of [`Destination`]).
    pub(super) dest: D,
    pub(super) dead_letter_table: String,
    pub(super) model_tag: String,
    pub(super) metrics: PipelineMetrics,
    /// Live listeners of committed predictions (the demo page).
    pub(super) written: Option<broadcast::Sender<Written>>,
    /// Counts committed batches (the transform's stored-row lookups wait on it).
    pub(super) committed: watch::Sender<u64>,
    pub(super) shutdown: Shutdown,
}

impl<D: Destination> SinkStage<D> {
    /// Writes every batch from `rx` in order until the transform stops sending.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<SinkBatch>) -> Result<(), Error> {
        while let Some(b) = rx.recv().await {
            let rejected = self.write(&b).await?;
            let done = now_us();
            let SinkBatch { t, commits, acks } = b;
            acks.into_iter().for_each(AckToken::ack);
            self.committed.send_modify(|n| *n += 1);
            self.record(t, &commits, &rejected, done);
        }
        Ok(())
    }

    /// Commits one batch (rows the table refuses become dead letters), retrying transient
    /// failures with a fresh connection; after shutdown, a few attempts more at most.
    async fn write(&mut self, b: &SinkBatch) -> Result<Vec<Rejected>, Error> {
        let to_dead_letter = |r: &Rejected| b.t.dead_letter(r, &self.model_tag);
        let batch = Batch {
            writes: &b.t.writes,
            dead_letters: &b.t.dead,
            dead_letter_table: Some(&self.dead_letter_table),
            isolate: Some(&to_dead_letter),
        };
        let mut backoff = Backoff::standard();
        loop {
            let e = match self.dest.write_batch(batch).await {
                Ok(rejected) => return Ok(rejected),
                Err(e) => e,
            };
            self.metrics.errors.with(&[e.kind().label()]).inc();
            let Some(wait) = backoff.next(e.kind()) else {
                return Err(e);
            };
            let attempt = backoff.attempt();
            tracing::warn!(error = %e.full_message(), attempt, "sink write failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.wait(), if attempt > 3 => return Err(e),
            }
            if let Err(e) = self.dest.reconnect().await {
                tracing::warn!(error = %e.full_message(), "sink database not reachable yet")
            }
        }
    }

    /// Metrics and live listeners for a committed batch.
    fn record(&self, t: Transformed, commits: &[i64], rejected: &[Rejected], done: i64) {
        let m = &self.metrics;
        m.written.inc_by((t.writes.len() - rejected.len()) as u64);
        m.dead_letters
            .inc_by((t.dead.len() + rejected.len()) as u64);
        for d in &t.dead {
            m.rejected.with(&[&d.code]).inc();
        }
        for r in rejected {
            m.rejected.with(&[RejectCode::SinkRefused.label()]).inc();
            tracing::warn!(reason = %r.reason, "row refused by the output table; recorded as a dead letter");
        }
        for c in commits {
            m.end_to_end.observe(((done - c) as f64 / 1e6).max(0.0));
        }
        let Some(tx) = &self.written else { return };
        let latency = commits.last().map(|c| (done - c) as f64 / 1000.0);
        for (index, table, key, price) in t.written {
            let refused = rejected.iter().any(|r| r.index == index);
            let _ = tx.send(Written {
                table,
                key,
                price: if refused { None } else { price },
                latency_ms: latency,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use augur_core::ErrorKind;
    use augur_core::ack::AckTracker;
    use augur_core::lsn::Lsn;
    use augur_metrics::Registry;

    use super::*;

    /// Fails its first `fail` writes with `kind`, then records the size of each batch.
    struct Flaky {
        fail: usize,
        kind: ErrorKind,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Destination for Flaky {
        async fn write_batch(&mut self, batch: Batch<'_>) -> Result<Vec<Rejected>, Error> {
            if self.fail > 0 {
                self.fail -= 1;
                self.log.lock().unwrap().push("failed".into());
                return Err(Error::new(self.kind, "the write failed"));
            }
            let n = batch.writes.len() + batch.dead_letters.len();
            self.log.lock().unwrap().push(format!("wrote {n}"));
            Ok(Vec::new())
        }

        async fn reconnect(&mut self) -> Result<(), Error> {
            self.log.lock().unwrap().push("reconnected".into());
            Ok(())
        }
    }

    /// Runs a stage over `batches` batches written to `dest`; returns its result, the
    /// tracker's durable batch count and the destination's log.
    async fn run(
        fail: usize,
        kind: ErrorKind,
        batches: u64,
    ) -> (Result<(), Error>, u64, Vec<String>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (committed, _) = watch::channel(0);
        let stage = SinkStage {
            dest: Flaky {
                fail,
                kind,
                log: log.clone(),
            },
            dead_letter_table: "dead".into(),
            model_tag: "m:1".into(),
            metrics: PipelineMetrics::register(&Registry::new()),
            written: None,
            committed,
            shutdown: Shutdown::never(),
        };
        let acks = AckTracker::new();
        let (tx, rx) = mpsc::channel(8);
        for i in 0..batches {
            let ack = acks.register(Some(Lsn(i + 1)));
            tx.send(SinkBatch {
                t: Transformed::default(),
                commits: Vec::new(),
                acks: vec![ack],
            })
            .await
            .unwrap();
        }
        drop(tx);
        let result = stage.run(rx).await;
        let log = log.lock().unwrap().clone();
        (result, acks.durable().batches, log)
    }

    #[tokio::test]
    async fn transient_failures_reconnect_and_retry_then_ack_in_order() {
        let (result, durable, log) = run(2, ErrorKind::Connection, 3).await;
        result.unwrap();
        assert_eq!(durable, 3);
        assert_eq!(
            log,
            [
                "failed",
                "reconnected",
                "failed",
                "reconnected",
                "wrote 0",
                "wrote 0",
                "wrote 0"
            ]
        );
    }

    #[tokio::test]
    async fn a_fatal_failure_stops_without_an_ack() {
        let (result, durable, log) = run(1, ErrorKind::DestinationSchema, 2).await;
        assert_eq!(result.unwrap_err().kind(), ErrorKind::DestinationSchema);
        assert_eq!(durable, 0, "nothing may be acked past a failed batch");
        assert_eq!(log, ["failed"]);
    }
}
