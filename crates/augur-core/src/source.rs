//! The contract between a source and the stages downstream of it: [`Source`], the context it
//! runs in, and how it ends.

use std::future::Future;

use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::ack::AckTracker;
use crate::event::ChangeBatch;
use crate::shutdown::Shutdown;
use crate::status::SourceStatus;

/// Where change events come from (the role of Vector's sources; augur's is PostgreSQL's
/// replication slot, `augur_postgres::source::PgSource`).
///
/// The contract:
/// - **Ordered**: batches go out on [`SourceContext::out`] in the source's commit order; the
///   events of one transaction keep their order.
/// - **Acknowledged**: every batch carries an `AckToken` registered with
///   [`SourceContext::acks`] under the position it ends at. Downstream completes the token
///   only after the batch is durable (the sink committed it). The source treats a position as
///   done — confirms it to the slot, saves it as its offset — only when the tracker's
///   watermark has passed it, never earlier.
/// - **At least once**: after a crash or restart the source resumes from the last durable
///   position, so batches not acknowledged are sent again; downstream makes the replay land
///   once (upserts by key).
/// - **Backpressure**: `out` is bounded; a full channel stops the source reading.
/// - **Shutdown**: when [`SourceContext::shutdown`] fires, the source stops reading, waits (up
///   to its deadline) until what it sent is durable, confirms that, and returns
///   [`SourceExit::Shutdown`]. Dropping `out` tells downstream no more batches come.
/// - **Errors**: an `Err` stops the pipeline; its kind says whether restarting can help.
pub trait Source: Send + 'static {
    /// Runs until shutdown, the end of a bounded run, or an error.
    fn run(self, cx: SourceContext) -> impl Future<Output = Result<SourceExit, Error>> + Send;
}

/// What the source hands batches to and hears acknowledgements from.
#[derive(Debug)]
pub struct SourceContext {
    /// Where batches go (bounded: a full channel stops the source reading).
    pub out: mpsc::Sender<ChangeBatch>,
    /// The durable watermark of everything sent.
    pub acks: AckTracker,
    /// Asks the source to stop.
    pub shutdown: Shutdown,
    /// Where the source reports what it is doing (optional).
    pub status: Option<watch::Sender<SourceStatus>>,
}

impl SourceContext {
    /// Reports where the source is in its life, when someone listens.
    pub fn report(&self, s: SourceStatus) {
        if let Some(tx) = &self.status {
            tx.send_replace(s);
        }
    }
}

/// How a source run ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceExit {
    /// Shutdown was requested; everything sent was durable and confirmed (or the deadline
    /// passed, see the log).
    Shutdown,
    /// `snapshot.mode=initial_only`: the snapshot is complete and durable.
    SnapshotCompleted,
}
