//! The capture connector: PostgreSQL → Debezium change events → Kafka or stdout.
//!
//! [`run`] checks the destination first (so a broker that is down changes nothing in the
//! database), then runs the source and the destination as two tasks joined by a bounded
//! channel. Shutdown stops the source first; the destination drains; the source confirms the
//! final durable position; then both exit.

mod columns;
pub mod config;
pub mod destination;
mod stdout;

use std::path::PathBuf;
use std::sync::Arc;

use augur_core::Error;
use augur_core::ack::AckTracker;
use augur_core::offset::{FileOffsetStore, OffsetStore};
use augur_core::shutdown::Shutdown;
use augur_debezium::envelope::Encoder;
use augur_postgres::source::{PgSource, Source, SourceContext, SourceExit};
use tokio::sync::mpsc;

use crate::stages::Stages;

use self::config::CaptureConfig;
use self::destination::{Destination, DestinationConfig};

/// augur's home for state: `$AUGUR_HOME`, else `~/.augur`.
pub fn augur_home() -> PathBuf {
    if let Some(h) = std::env::var_os("AUGUR_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".augur")
}

/// The offsets file used when `offset.storage.file.filename` is not set.
pub fn default_offsets_file(name: &str) -> PathBuf {
    augur_home().join("offsets").join(format!("{name}.json"))
}

/// Runs a capture connector until shutdown, an error, or the end of an `initial_only`
/// snapshot.
pub async fn run(
    cfg: CaptureConfig,
    destination: DestinationConfig,
    shutdown: Shutdown,
) -> Result<SourceExit, Error> {
    let dest = Destination::connect(&destination).await?;
    let offsets_path = cfg
        .offsets_file
        .clone()
        .unwrap_or_else(|| default_offsets_file(&cfg.name));
    let offsets: Arc<dyn OffsetStore> = Arc::new(FileOffsetStore::new(offsets_path));
    run_with(cfg, dest, offsets, shutdown).await
}

/// Like [`run`], with a connected destination and an offset store of the caller's choosing.
pub async fn run_with(
    cfg: CaptureConfig,
    dest: Destination,
    offsets: Arc<dyn OffsetStore>,
    shutdown: Shutdown,
) -> Result<SourceExit, Error> {
    let batches = (cfg.source.max_queue_size / cfg.source.max_batch_size).max(2);
    let (tx, rx) = mpsc::channel(batches);
    let acks = AckTracker::new();
    let heartbeats = cfg.source.heartbeat_interval.is_some();
    let encoder = Encoder::new(cfg.envelope.clone());
    let mut stages = Stages::new();
    stages.spawn("destination", async move {
        dest.run(encoder, rx, heartbeats).await.map(|_| ())
    });
    let source = PgSource::new(cfg.source, offsets);
    let cx = SourceContext {
        out: tx,
        acks,
        shutdown,
        status: None,
    };
    // Boxed: the source's state machine is large.
    stages.run_source(Box::pin(source.run(cx))).await
}
