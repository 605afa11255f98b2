//! The embedded pipeline's last stage: one transaction per batch, transient failures retried,
//! and the batch's ack only after its commit — the one thing that flows back to the source.

use augur_core::shutdown::Shutdown;
use augur_core::{Backoff, Error};
use augur_postgres::sink::config::SinkConfig;
use augur_postgres::sink::{Batch, PgSink, Rejected};
use tokio::sync::{broadcast, mpsc, watch};

use super::transform::Transformed;
use super::{PipelineMetrics, SinkBatch, Written, now_us};
use crate::predict::RejectCode;

/// The sink stage's state.
pub(super) struct SinkStage {
    pub(super) sink: PgSink,
    /// To reconnect after a transient failure.
    pub(super) cfg: SinkConfig,
    pub(super) dead_letter_table: String,
    pub(super) model_tag: String,
    pub(super) metrics: PipelineMetrics,
    /// Live listeners of committed predictions (the demo page).
    pub(super) written: Option<broadcast::Sender<Written>>,
    /// Counts committed batches (the transform's stored-row lookups wait on it).
    pub(super) committed: watch::Sender<u64>,
    pub(super) shutdown: Shutdown,
}

impl SinkStage {
    /// Writes every batch from `rx` in order until the transform stops sending.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<SinkBatch>) -> Result<(), Error> {
        while let Some(b) = rx.recv().await {
            let rejected = self.write(&b).await?;
            let done = now_us();
            let SinkBatch { t, commits, ack } = b;
            ack.ack();
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
            let e = match self.sink.write_batch(batch).await {
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
            match PgSink::connect(self.cfg.clone()).await {
                Ok(s) => self.sink = s,
                Err(e) => {
                    tracing::warn!(error = %e.full_message(), "sink database not reachable yet")
                }
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
