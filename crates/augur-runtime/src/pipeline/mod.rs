//! `augur run`: the embedded pipeline. Capture → predict → write back in one process, wired by
//! bounded in-process queues, with the replication slot as the durable buffer: a batch is
//! acknowledged only after the sink committed it, and the slot advances only over
//! acknowledged batches, so a crash at any moment replays and never loses or skips a listing.
//!
//! Stages: the PostgreSQL source → (batches) → the transform (predictions in one batch per
//! change batch, on a blocking thread) → (writes) → the sink (one transaction per batch, with
//! dead letters, retrying transient failures) → acknowledgement. A slow sink fills the queues
//! and stops the slot reader, so memory stays bounded.

pub mod config;
mod destination;
pub mod doctor;
pub mod http;
pub mod kafka;
mod sink_stage;
pub mod transform;

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_core::ack::{AckToken, AckTracker};
use augur_core::event::{ChangeBatch, Op};
use augur_core::offset::OffsetStore;
use augur_core::shutdown::Shutdown;
use augur_core::status::SourceStatus;
use augur_core::{Backoff, Error, ErrorKind};
use augur_metrics::{Buckets, Counter, Gauge, Histogram, Registry};
use augur_postgres::sink::PgSink;
use augur_postgres::source::{PgSource, SourceContext};
use tokio::sync::{broadcast, mpsc, watch};

use self::config::{OutputMode, RunConfig};
use self::destination::OutputDatabase;
use self::transform::{Transform, Transformed};
use crate::stages::Stages;

/// A prediction the sink has committed, for live listeners (the demo page).
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Target table.
    pub table: String,
    /// The row's key as JSON.
    pub key: String,
    /// The price, or `None` when the row went to the dead-letter table.
    pub price: Option<f64>,
    /// Source commit → sink commit, milliseconds (streamed changes only).
    pub latency_ms: Option<f64>,
}

/// The pipeline's metrics.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    /// Change events read from the slot.
    pub captured: Counter,
    /// Rows predicted.
    pub predicted: Counter,
    /// Rows written (committed) by the sink.
    pub written: Counter,
    /// Rows recorded as dead letters.
    pub dead_letters: Counter,
    /// Errors by kind.
    pub errors: augur_metrics::Family<Counter>,
    /// Source commit → sink commit.
    pub end_to_end: Histogram,
    /// Time to predict one batch.
    pub predict_seconds: Histogram,
    /// Rows per prediction batch.
    pub batch_rows: Histogram,
    /// WAL bytes not yet confirmed by the slot.
    pub slot_lag_bytes: Gauge,
    /// Rows that got no price, by reason (`invalid_input`, `unavailable_value`,
    /// `model_error`, `sink_refused`).
    pub rejected: augur_metrics::Family<Counter>,
}

impl PipelineMetrics {
    /// Registers the pipeline's series in `r`.
    pub fn register(r: &Registry) -> Self {
        PipelineMetrics {
            captured: r.counter(
                "augur_pipeline_events_captured_total",
                "Change events read from the replication slot.",
            ),
            predicted: r.counter(
                "augur_pipeline_rows_predicted_total",
                "Rows the model predicted.",
            ),
            written: r.counter(
                "augur_pipeline_rows_written_total",
                "Rows the sink committed.",
            ),
            dead_letters: r.counter(
                "augur_pipeline_dead_letters_total",
                "Rows recorded in the dead-letter table.",
            ),
            errors: r.counter_vec("augur_pipeline_errors_total", "Errors, by kind.", &["kind"]),
            end_to_end: r.histogram(
                "augur_pipeline_end_to_end_seconds",
                "Source commit to sink commit, per streamed change.",
                Buckets::exponential(0.0005, 2.0, 16),
            ),
            predict_seconds: r.histogram(
                "augur_pipeline_predict_seconds",
                "Time to predict one batch.",
                Buckets::exponential(0.00001, 2.0, 18),
            ),
            batch_rows: r.histogram(
                "augur_pipeline_predict_batch_rows",
                "Rows per prediction batch.",
                Buckets::powers_of_two(8192),
            ),
            slot_lag_bytes: r.gauge(
                "augur_pipeline_slot_lag_bytes",
                "WAL bytes the replication slot has not confirmed yet.",
            ),
            rejected: r.counter_vec(
                "augur_pipeline_rows_rejected_total",
                "Rows that got no price or were refused by the output table, by reason.",
                &["reason"],
            ),
        }
    }
}

/// What flows from the transform to the sink.
struct SinkBatch {
    t: Transformed,
    /// Commit time (µs since the epoch) of each streamed change, for latency.
    commits: Vec<i64>,
    ack: AckToken,
}

/// Optional observers of a running pipeline.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Receives every committed prediction.
    pub written: Option<broadcast::Sender<Written>>,
    /// Receives the source's status.
    pub status: Option<watch::Sender<SourceStatus>>,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Runs the embedded pipeline until shutdown or a fatal error.
pub async fn run(
    cfg: RunConfig,
    offsets: Arc<dyn OffsetStore>,
    registry: Registry,
    hooks: Hooks,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let started = Instant::now();
    let (predictor, sink) = open_model_and_output(&cfg).await?;
    let model_tag = predictor.model_tag().to_string();
    let metrics = PipelineMetrics::register(&registry);
    let (status_tx, status_rx) = match &hooks.status {
        Some(tx) => (tx.clone(), tx.subscribe()),
        None => watch::channel(SourceStatus::Starting),
    };
    let http = match cfg.listen {
        Some(addr) => Some(http::spawn(addr, registry.clone(), status_rx, shutdown.clone()).await?),
        None => None,
    };
    let (batch_tx, batch_rx) = mpsc::channel::<ChangeBatch>(cfg.queue_batches);
    let (sink_tx, sink_rx) = mpsc::channel::<SinkBatch>(2);
    let acks = AckTracker::new();

    // The transform: predictions in one blocking call per batch; order kept. A row carrying
    // the "unavailable" placeholder for a model input waits until every earlier batch is
    // committed, then reads the stored value from the output table.
    let (committed_tx, committed_rx) = watch::channel(0u64);
    let transform = Transform::new(predictor, cfg.output.clone());
    let lookup = StoredRows::new(cfg.sink.clone(), committed_rx);
    let mut stages = Stages::new();
    stages.spawn(
        "transform",
        transform_stage(batch_rx, sink_tx, transform, lookup, metrics.clone()),
    );

    // The sink: one transaction per batch; transient failures retried until shutdown.
    let sink = sink_stage::SinkStage {
        dest: OutputDatabase {
            sink,
            cfg: cfg.sink.clone(),
        },
        dead_letter_table: cfg.dead_letter_table.clone(),
        model_tag,
        metrics: metrics.clone(),
        written: hooks.written.clone(),
        committed: committed_tx,
        shutdown: shutdown.clone(),
    };
    stages.spawn("sink", sink.run(sink_rx));

    let lag_task = tokio::spawn(watch_slot_lag(&metrics, &cfg, shutdown.clone()));
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "pipeline starting"
    );
    let source = PgSource::new(cfg.capture.source.clone(), offsets);
    let cx = SourceContext {
        out: batch_tx,
        acks,
        shutdown: shutdown.clone(),
        status: Some(status_tx),
    };
    let result = stages.run_source(source.run(cx)).await;
    lag_task.abort();
    if let Some(h) = http {
        h.abort();
    }
    result.map(|_| ())
}

/// Fails fast, before the slot is touched: the model loads, the output database answers,
/// the dead-letter table exists and the output fits the configured mode.
async fn open_model_and_output(
    cfg: &RunConfig,
) -> Result<(crate::predict::Predictor, PgSink), Error> {
    let predictor = cfg.model.predictor()?;
    tracing::info!(model = %predictor.model_tag(), "model loaded");
    let mut sink = PgSink::connect(cfg.sink.clone()).await?;
    sink.ensure_dead_letter_table(&cfg.dead_letter_table)
        .await?;
    if cfg.output == OutputMode::Column {
        check_output_column(&sink, cfg).await?;
    }
    check_output_tables(&sink, cfg).await?;
    Ok((predictor, sink))
}

/// Reads the slot's lag into its gauge once a second (reconnecting when the server went away).
fn watch_slot_lag(
    metrics: &PipelineMetrics,
    cfg: &RunConfig,
    shutdown: Shutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let gauge = metrics.slot_lag_bytes.clone();
    let connect = cfg.capture.source.connect.clone();
    let slot = cfg.capture.source.slot_name.clone();
    slot_lag_loop(gauge, connect, slot, shutdown)
}

async fn slot_lag_loop(
    gauge: Gauge,
    connect: augur_postgres::conn::PgConnect,
    slot: String,
    mut shutdown: Shutdown,
) {
    let mut client = None;
    loop {
        if client.is_none() {
            client = connect.connect_sql().await.ok();
        }
        if let Some(c) = &client {
            let lag = c
                .query_opt(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::float8 FROM pg_replication_slots WHERE slot_name = $1",
                    &[&slot],
                )
                .await;
            match lag {
                Ok(Some(row)) => gauge.set(row.get::<_, Option<f64>>(0).unwrap_or(0.0)),
                Ok(None) => {}
                Err(_) => client = None,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Reads stored rows for [`transform::Lookup`]s once every batch sent before is committed.
struct StoredRows {
    cfg: augur_postgres::sink::config::SinkConfig,
    sink: Option<PgSink>,
    committed: watch::Receiver<u64>,
}

impl StoredRows {
    fn new(cfg: augur_postgres::sink::config::SinkConfig, committed: watch::Receiver<u64>) -> Self {
        StoredRows {
            cfg,
            sink: None,
            committed,
        }
    }

    /// Fills `lookups` into `events` after the sink committed `sent` batches.
    async fn fill(
        &mut self,
        events: &mut [augur_core::event::ChangeEvent],
        lookups: &[transform::Lookup],
        sent: u64,
    ) -> Result<(), Error> {
        if self.committed.wait_for(|n| *n >= sent).await.is_err() {
            return Err(Error::new(ErrorKind::Internal, "the sink stopped"));
        }
        let sink = match &mut self.sink {
            Some(s) => s,
            None => self.sink.insert(PgSink::connect(self.cfg.clone()).await?),
        };
        let mut stored = Vec::with_capacity(lookups.len());
        for l in lookups {
            let cols: Vec<String> = l.columns.iter().map(|(_, c)| c.clone()).collect();
            let r = sink
                .stored_text(&l.table, &l.key_fields, &l.keys, &cols)
                .await;
            match r {
                Ok(v) => stored.push(v.into_iter().flatten().next()),
                Err(e) => {
                    self.sink = None;
                    return Err(e);
                }
            }
        }
        Transform::fill(events, lookups, stored);
        Ok(())
    }
}

/// The transform stage's loop: batches in, predicted writes out, in order.
async fn transform_stage(
    mut batch_rx: mpsc::Receiver<ChangeBatch>,
    sink_tx: mpsc::Sender<SinkBatch>,
    transform: Transform,
    mut lookup: StoredRows,
    metrics: PipelineMetrics,
) -> Result<(), Error> {
    let mut transform = Some(transform);
    let mut sent = 0u64;
    while let Some(batch) = batch_rx.recv().await {
        metrics.captured.inc_by(batch.events.len() as u64);
        let commits: Vec<i64> = batch
            .events
            .iter()
            .filter(|e| e.op != Op::Read)
            .map(|e| e.source.commit_time_us)
            .collect();
        let ChangeBatch {
            mut events, ack, ..
        } = batch;
        let mut t = transform
            .take()
            .expect("transform returns after each batch");
        let lookups = t.resolve_in_batch(&mut events);
        if !lookups.is_empty() {
            // Transient failures: retried until the stored rows can be read.
            let mut backoff = Backoff::standard();
            while let Err(e) = lookup.fill(&mut events, &lookups, sent).await {
                if e.kind() == ErrorKind::Internal {
                    return Err(e);
                }
                let wait = backoff.wait().unwrap_or_default();
                tracing::warn!(error = %e.full_message(), attempt = backoff.attempt(), "cannot read stored rows yet; retrying");
                tokio::time::sleep(wait).await;
            }
            // Carry the filled values on to later changes of the same keys.
            t.resolve_in_batch(&mut events);
        }
        let m = metrics.clone();
        let (t, out) = tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let out = t.apply(&events);
            if !events.is_empty() {
                m.predict_seconds.observe(start.elapsed().as_secs_f64());
                m.batch_rows.observe(events.len() as f64);
            }
            (t, out)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "the transform panicked").with_source(e))?;
        transform = Some(t);
        metrics.predicted.inc_by(out.predicted);
        if sink_tx
            .send(SinkBatch {
                t: out,
                commits,
                ack,
            })
            .await
            .is_err()
        {
            break;
        }
        sent += 1;
    }
    Ok(())
}

/// An output table augur created and someone dropped since: recreating it with only later
/// changes would be silently partial, so starting is refused until a new snapshot rebuilds it.
async fn check_output_tables(sink: &PgSink, cfg: &RunConfig) -> Result<(), Error> {
    use augur_postgres::source::config::SnapshotMode;
    if cfg.capture.source.snapshot_mode == SnapshotMode::Always {
        return Ok(());
    }
    let dropped = augur_postgres::sink::dropped_tables(sink).await?;
    if dropped.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::DestinationSchema,
        format!(
            "output table(s) {} were dropped after augur created them; recreating them with only later changes would leave them incomplete",
            dropped.join(", ")
        ),
    )
    .with_hint(format!(
        "start once with --set source.snapshot=always to rebuild them from a new snapshot, then run as before \
         (a table no longer wanted: DELETE FROM augur_output_tables WHERE table_name = '{}')",
        dropped[0]
    )))
}

/// In column mode the output column must exist in every captured table.
async fn check_output_column(sink: &PgSink, cfg: &RunConfig) -> Result<(), Error> {
    let col = &cfg.model.output_field;
    let rows = sink
        .client()
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1 AND NOT a.attisdropped)",
            &[col],
        )
        .await
        .map_err(|e| augur_postgres::conn::sql_error("checking the output column", e))?;
    for r in rows {
        let name: String = r.get(0);
        let (schema, table) = name.split_once('.').unwrap_or(("public", &name));
        if cfg.capture.source.tables.includes(schema, table) {
            return Err(Error::new(ErrorKind::Config, format!("captured table {name} has no column \"{col}\" to write predictions into"))
                .with_hint(format!("ALTER TABLE {name} ADD COLUMN {col} double precision; or use output.mode = \"table\"")));
        }
    }
    Ok(())
}
