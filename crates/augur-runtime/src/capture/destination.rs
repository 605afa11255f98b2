//! Where captured changes go: a Kafka topic per table (idempotent producer; a batch is durable
//! once every record's delivery report is in) or stdout as JSON lines (durable once written and
//! flushed). Either way the batch's ack token resolves only then.

use std::sync::Arc;
use std::time::Duration;

use augur_core::event::{ChangeBatch, ChangeEvent, KeyChange, Op, SnapshotMarker};
use augur_core::record::Record;
use augur_core::{Error, ErrorKind};
use augur_debezium::envelope::{Encoder, ProcessingTime};
use augur_kafka::producer::{Producer, ProducerSettings};
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
    /// Kafka, without producing again a change an earlier run (or connection) already
    /// produced: each streamed change carries its position in the source's stream
    /// ([`POSITION_HEADER`]), and a topic's last record says where that run got to (`augur
    /// run` over Kafka). Records a killed run still had in flight can land after that read,
    /// so the stage downstream also drops positions it has seen (see `enrich`).
    KafkaOnce(Arc<Producer>),
}

/// The header with a captured change's position: commit LSN, LSN and (for the create half of
/// a key change, which shares its delete half's LSN) 1, as fixed-width hex, so positions
/// compare as bytes.
pub const POSITION_HEADER: &str = "__augur.position";

fn position(ev: &ChangeEvent) -> Option<Vec<u8>> {
    // A snapshot (its rows and the truncate before them share its position) always comes
    // from a new slot, so it is never a repeat: only streamed changes carry a position.
    if ev.op == Op::Read || ev.source.snapshot != SnapshotMarker::False {
        return None;
    }
    let (commit, lsn) = (ev.source.commit_lsn?, ev.source.lsn?);
    let half = u8::from(matches!(ev.key_change, Some(KeyChange::OldKey(_))));
    Some(format!("{:016x}{:016x}{half}", commit.as_u64(), lsn.as_u64()).into_bytes())
}

/// The last position produced to each topic, read from the topic when first seen.
#[derive(Default)]
struct Produced {
    last: std::collections::HashMap<String, Option<Vec<u8>>>,
    /// Changes left out since the last report.
    skipped: u64,
}

impl Produced {
    /// Whether `ev` (encoded into records for `topic`) was produced before; remembers it if not.
    async fn seen(
        &mut self,
        producer: &Producer,
        topic: &str,
        ev: &ChangeEvent,
    ) -> Result<bool, Error> {
        let Some(pos) = position(ev) else {
            return Ok(false);
        };
        if !self.last.contains_key(topic) {
            let s = producer.settings().clone();
            let t = topic.to_string();
            let found = tokio::task::spawn_blocking(move || {
                augur_kafka::consumer::last_headers(
                    &s.bootstrap_servers,
                    &s.overrides,
                    &t,
                    POSITION_HEADER,
                    Duration::from_secs(10),
                )
            })
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "reading a topic failed").with_source(e)
            })??;
            self.last.insert(topic.to_string(), found.into_iter().max());
        }
        let last = self.last.get_mut(topic).expect("inserted above");
        if last.as_ref().is_some_and(|l| pos <= *l) {
            return Ok(true);
        }
        *last = Some(pos);
        Ok(false)
    }
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
        let once = matches!(self, Destination::KafkaOnce(_));
        match self {
            Destination::Stdout => super::stdout::run(encoder, rx, heartbeats).await,
            Destination::Kafka(producer) | Destination::KafkaOnce(producer) => {
                let mut produced = once.then(Produced::default);
                let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_BATCHES));
                let (fail_tx, mut fail_rx) = watch::channel::<Option<Arc<Error>>>(None);
                let result: Result<(), Error> = async {
                    while let Some(batch) = rx.recv().await {
                        if let Some(e) = fail_rx.borrow_and_update().clone() {
                            return Err(Error::new(e.kind(), e.full_message()));
                        }
                        match &mut produced {
                            None => encode(&mut encoder, &batch, heartbeats, &mut records),
                            Some(p) => {
                                encode_once(&mut encoder, &batch, heartbeats, &mut records, p, &producer)
                                    .await?;
                            }
                        }
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

fn encode(encoder: &mut Encoder, batch: &ChangeBatch, heartbeats: bool, out: &mut Vec<Record>) {
    let now = ProcessingTime::now();
    for ev in &batch.events {
        encoder.encode(ev, now, out);
    }
    if let (Some(ts), true) = (batch.heartbeat, heartbeats) {
        out.push(encoder.heartbeat(ts));
    }
}

/// [`encode`], leaving out changes produced before and stamping each record's position.
async fn encode_once(
    encoder: &mut Encoder,
    batch: &ChangeBatch,
    heartbeats: bool,
    out: &mut Vec<Record>,
    produced: &mut Produced,
    producer: &Producer,
) -> Result<(), Error> {
    let now = ProcessingTime::now();
    for ev in &batch.events {
        let start = out.len();
        encoder.encode(ev, now, out);
        let Some(topic) = out.get(start).map(|r| r.topic.clone()) else {
            continue;
        };
        if produced.seen(producer, &topic, ev).await? {
            out.truncate(start);
            produced.skipped += 1;
            continue;
        }
        if let Some(pos) = position(ev) {
            for r in &mut out[start..] {
                r.headers.push((POSITION_HEADER.to_string(), pos.clone()));
            }
        }
    }
    if let (Some(ts), true) = (batch.heartbeat, heartbeats) {
        out.push(encoder.heartbeat(ts));
    }
    if produced.skipped > 0 {
        tracing::info!(
            changes = produced.skipped,
            "left out changes an earlier run already produced"
        );
        produced.skipped = 0;
    }
    Ok(())
}
