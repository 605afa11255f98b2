//! Where captured changes go: a Kafka topic per table (idempotent producer; a batch is durable
//! once every record's delivery report is in) or stdout as JSON lines (durable once written and
//! flushed). Either way the batch's ack token resolves only then.

use std::sync::Arc;
use std::time::Duration;

use augur_core::event::ChangeBatch;
use augur_core::{Error, ErrorKind};
use augur_debezium::envelope::{Encoder, ProcessingTime};
use augur_debezium::record::Record;
use augur_kafka::producer::{Producer, ProducerSettings};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, watch};

/// Which destination, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationConfig {
    /// JSON lines on stdout.
    Stdout,
    /// A Kafka cluster.
    Kafka(ProducerSettings),
}

/// A connected destination.
#[derive(Debug)]
pub enum Destination {
    /// JSON lines on stdout.
    Stdout,
    /// Kafka.
    Kafka(Arc<Producer>),
}

/// Batches whose deliveries may be outstanding at once (Kafka).
const MAX_IN_FLIGHT_BATCHES: usize = 64;

impl Destination {
    /// Connects and checks the destination is reachable, before the source touches the
    /// database.
    pub async fn connect(cfg: &DestinationConfig) -> Result<Destination, Error> {
        match cfg {
            DestinationConfig::Stdout => Ok(Destination::Stdout),
            DestinationConfig::Kafka(settings) => {
                let p = Producer::new(settings.clone())?;
                p.healthcheck(Duration::from_secs(10)).await?;
                Ok(Destination::Kafka(Arc::new(p)))
            }
        }
    }

    /// Consumes batches until the channel closes, writing each and resolving its ack once it
    /// is durable. Returns the first write error (after which the batch's token is dropped, so
    /// nothing later is confirmed).
    pub async fn run(
        self,
        mut encoder: Encoder,
        mut rx: mpsc::Receiver<ChangeBatch>,
        heartbeats: bool,
    ) -> Result<u64, Error> {
        let mut records = Vec::with_capacity(4096);
        let mut written = 0u64;
        match self {
            Destination::Stdout => {
                let mut out = tokio::io::BufWriter::with_capacity(1 << 16, tokio::io::stdout());
                let mut line = Vec::with_capacity(4096);
                while let Some(batch) = rx.recv().await {
                    encode(&mut encoder, &batch, heartbeats, &mut records);
                    for r in records.drain(..) {
                        line.clear();
                        json_line(&r, &mut line);
                        out.write_all(&line).await.map_err(stdout_error)?;
                        written += 1;
                    }
                    out.flush().await.map_err(stdout_error)?;
                    batch.ack.ack();
                }
                Ok(written)
            }
            Destination::Kafka(producer) => {
                let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_BATCHES));
                let (fail_tx, mut fail_rx) = watch::channel::<Option<Arc<Error>>>(None);
                let result: Result<(), Error> = async {
                    while let Some(batch) = rx.recv().await {
                        if let Some(e) = fail_rx.borrow_and_update().clone() {
                            return Err(Error::new(e.kind(), e.full_message()));
                        }
                        encode(&mut encoder, &batch, heartbeats, &mut records);
                        let mut futures = Vec::with_capacity(records.len());
                        for r in records.drain(..) {
                            producer.ensure_topic(&r.topic).await?;
                            futures.push(producer.send(&r).await?);
                            written += 1;
                        }
                        let permit = slots.clone().acquire_owned().await.map_err(|_| {
                            Error::new(ErrorKind::Internal, "in-flight limiter closed")
                        })?;
                        let fail_tx = fail_tx.clone();
                        let ChangeBatch { ack, .. } = batch;
                        tokio::spawn(async move {
                            for f in futures {
                                if let Err(e) = Producer::delivered(f).await {
                                    tracing::error!(error = %e.full_message(), "kafka delivery failed");
                                    fail_tx.send_replace(Some(Arc::new(e)));
                                    drop(ack);
                                    drop(permit);
                                    return;
                                }
                            }
                            ack.ack();
                            drop(permit);
                        });
                    }
                    Ok(())
                }
                .await;
                // Wait for every outstanding delivery before reporting.
                let _all = slots.acquire_many(MAX_IN_FLIGHT_BATCHES as u32).await;
                result?;
                if let Some(e) = fail_rx.borrow_and_update().clone() {
                    return Err(Error::new(e.kind(), e.full_message()));
                }
                Ok(written)
            }
        }
    }
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Destination, "cannot write to stdout").with_source(e)
}

fn encode(encoder: &mut Encoder, batch: &ChangeBatch, heartbeats: bool, out: &mut Vec<Record>) {
    let now = ProcessingTime::now();
    for ev in &batch.events {
        encoder.encode(ev, now, out);
    }
    if let (Some(ts), true) = (batch.heartbeat, heartbeats) {
        out.push(encoder.heartbeat(ts));
    }
}

/// One record as a JSON line: `{"topic":…,"key":…,"value":…}` (+ `"headers"` when present).
pub fn json_line(r: &Record, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"topic\":");
    augur_debezium::json::write_str(out, &r.topic);
    out.extend_from_slice(b",\"key\":");
    match &r.key {
        Some(k) if !k.is_empty() => out.extend_from_slice(k),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"value\":");
    match &r.value {
        Some(v) => out.extend_from_slice(v),
        None => out.extend_from_slice(b"null"),
    }
    if !r.headers.is_empty() {
        out.extend_from_slice(b",\"headers\":{");
        for (i, (k, v)) in r.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            augur_debezium::json::write_str(out, k);
            out.push(b':');
            augur_debezium::json::write_str(out, &String::from_utf8_lossy(v));
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}
