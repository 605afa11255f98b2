//! Following a state topic: every record appended after the worker's startup read, in order,
//! handed to the worker (a config change another worker wrote, a status another worker set).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use augur_core::{Error, ErrorKind};
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use tokio::sync::mpsc;

use crate::config::WorkerConfig;
use crate::store::{Positions, RawRecord};

/// How many records may wait for the worker (the reader blocks beyond that).
const QUEUE: usize = 256;

/// One record read: its offset, key and value.
pub(crate) type Followed = (i64, RawRecord);

/// A running reader; dropping it stops the reader thread.
#[derive(Debug)]
pub(crate) struct Tail {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Reads `topic` from `from` on, on a thread of its own; records arrive on the receiver.
pub(crate) fn follow(
    cfg: &WorkerConfig,
    topic: &str,
    from: &Positions,
) -> Result<(Tail, mpsc::Receiver<Followed>), Error> {
    let consumer: BaseConsumer = cfg
        .kafka_client()?
        .set("group.id", format!("{}-state-follower", cfg.group_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .map_err(|e| Error::new(ErrorKind::Config, "invalid Kafka settings").with_source(e))?;
    let cannot =
        |e| Error::new(ErrorKind::Destination, format!("cannot follow {topic}")).with_source(e);
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in from {
        tpl.add_partition_offset(topic, *p, *offset)
            .map_err(cannot)?;
    }
    consumer.assign(&tpl).map_err(cannot)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(QUEUE);
    let flag = stop.clone();
    let name = topic.to_string();
    std::thread::Builder::new()
        .name("augur-state-tail".into())
        .spawn(move || run(consumer, &name, &flag, &tx))
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot start a thread").with_source(e))?;
    Ok((Tail { stop }, rx))
}

/// The reader loop: until stopped or the receiver is gone.
fn run(consumer: BaseConsumer, topic: &str, stop: &AtomicBool, tx: &mpsc::Sender<Followed>) {
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let rec = (m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec));
                if tx.blocking_send((m.offset(), rec)).is_err() {
                    return;
                }
            }
            Some(Err(e)) => tracing::debug!(error = %e, topic, "following a state topic"),
            None => {}
        }
    }
}
