//! The contract of the embedded pipeline's destination, and the output database that keeps it.

use std::future::Future;

use augur_core::Error;
use augur_postgres::sink::config::SinkConfig;
use augur_postgres::sink::{Batch, PgSink, Rejected};

/// Where the sink stage writes (the role of supabase/etl's `Destination`).
///
/// The contract:
/// - **Atomic**: [`Destination::write_batch`] applies one batch — its rows and its dead letters
///   — in one transaction: all of it or nothing.
/// - **Idempotent**: the same batch written again (replayed from the slot after a crash, or
///   retried after an error whose outcome is unknown) leaves the same state: upserts and
///   deletes by key.
/// - **Ordered**: batches come in source order and are applied in that order, one at a time.
/// - `Ok(rejected)`: the batch is durable; the rows in `rejected` (only when the batch asks to
///   isolate bad rows) were recorded as dead letters instead. Only now does the stage ack the
///   batch — the ack is what lets the replication slot advance.
/// - `Err(e)`: nothing of the batch is durable. `e.kind().retry()` decides what happens: a
///   transient kind is retried after [`Destination::reconnect`], anything else stops the
///   pipeline without an ack, so the slot replays the batch on the next start.
/// - **Shutdown**: the stage stops writing when its input closes; a destination keeps no
///   buffered writes of its own, so nothing is lost when it is dropped.
pub(crate) trait Destination: Send + 'static {
    /// Applies one batch atomically.
    fn write_batch(
        &mut self,
        batch: Batch<'_>,
    ) -> impl Future<Output = Result<Vec<Rejected>, Error>> + Send;

    /// Replaces a connection that failed; an error leaves the old one (the next write fails
    /// and is retried again).
    fn reconnect(&mut self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The output database, with JDBC-sink semantics (`augur-postgres`'s sink).
pub(crate) struct OutputDatabase {
    pub(crate) sink: PgSink,
    pub(crate) cfg: SinkConfig,
}

impl Destination for OutputDatabase {
    async fn write_batch(&mut self, batch: Batch<'_>) -> Result<Vec<Rejected>, Error> {
        self.sink.write_batch(batch).await
    }

    async fn reconnect(&mut self) -> Result<(), Error> {
        self.sink = PgSink::connect(self.cfg.clone()).await?;
        Ok(())
    }
}
