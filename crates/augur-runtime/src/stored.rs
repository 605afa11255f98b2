//! Unavailable (unchanged TOASTed) values on the Kafka path: the enrichment stage reads them
//! from the row its sink stored, once that sink has committed everything produced before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use augur_core::connect::{Field, Value};
use augur_core::shutdown::Shutdown;
use augur_core::{Backoff, Error, ErrorKind};
use augur_kafka::consumer::{ConsumerSettings, GroupProgress};
use augur_postgres::sink::PgSink;
use augur_postgres::sink::config::SinkConfig;

use crate::enrich::{Lookup, Prepared};

/// Where the stored rows are and who writes them.
#[derive(Debug, Clone)]
pub struct StoredSettings {
    /// The sink's settings (its tables are the output topics' names under them).
    pub sink: SinkConfig,
    /// The sink's consumer group, on the same cluster.
    pub group: ConsumerSettings,
    /// The placeholder Debezium writes for an unchanged TOASTed value.
    pub placeholder: String,
}

/// Fills the placeholders of prepared batches from stored rows.
#[derive(Debug)]
pub(crate) struct StoredRows {
    settings: StoredSettings,
    progress: Arc<GroupProgress>,
    sink: Option<PgSink>,
}

/// The key fields of a record key (`{"schema":…,"payload":{…}}`), and the values of each of
/// `keys`: the record key, then key headers (`__debezium.oldkey` holds the bare payload).
fn parse_keys(keys: &[Vec<u8>]) -> Option<(Vec<Field>, Vec<Vec<Value>>)> {
    let docs: Vec<serde_json::Value> = keys
        .iter()
        .filter_map(|k| serde_json::from_slice(k).ok())
        .collect();
    let schema = augur_debezium::json::parse_schema(docs.first()?.get("schema")?).ok()?;
    let values = docs
        .iter()
        .filter_map(|d| {
            let payload = match (d.get("schema"), d.get("payload")) {
                (Some(_), Some(p)) => p,
                _ => d,
            };
            match augur_debezium::json::parse_value(&schema, payload).ok()? {
                Value::Struct(v) => Some(v),
                _ => None,
            }
        })
        .collect();
    Some((schema.fields, values))
}

impl StoredRows {
    pub(crate) fn new(settings: StoredSettings) -> Result<StoredRows, Error> {
        let progress = Arc::new(GroupProgress::new(&settings.group)?);
        Ok(StoredRows {
            settings,
            progress,
            sink: None,
        })
    }

    /// Resolves `prepared`'s placeholders: from the batch, else from stored rows. `false`
    /// when shutdown came first (the batch is then not to be committed).
    pub(crate) async fn fill(
        &mut self,
        prepared: &mut Prepared,
        shutdown: &mut Shutdown,
    ) -> Result<bool, Error> {
        let lookups = prepared.resolve_in_batch(&self.settings.placeholder);
        if lookups.is_empty() {
            return Ok(true);
        }
        let mut backoff = Backoff::standard().with_limit(50);
        let stored = loop {
            let r = tokio::select! {
                _ = shutdown.wait() => return Ok(false),
                r = self.read(&lookups) => r,
            };
            let e = match r {
                Ok(s) => break s,
                Err(e) => e,
            };
            let Some(wait) = backoff.next(e.kind()) else {
                return Err(e);
            };
            tracing::warn!(error = %e.full_message(), attempt = backoff.attempt(), "cannot read stored rows yet; retrying");
            tokio::time::sleep(wait).await;
        };
        prepared.fill(&lookups, stored);
        // Carry the filled values on to later records of the same keys.
        prepared.resolve_in_batch(&self.settings.placeholder);
        Ok(true)
    }

    /// Waits for the sink to commit every record of the lookups' topics, then reads.
    async fn read(
        &mut self,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Vec<Option<String>>>>, Error> {
        let mut topics: Vec<&str> = lookups.iter().map(|l| l.topic.as_str()).collect();
        topics.sort_unstable();
        topics.dedup();
        for topic in topics {
            self.caught_up(topic).await?;
        }
        let sink = match &mut self.sink {
            Some(s) => s,
            None => self
                .sink
                .insert(PgSink::connect(self.settings.sink.clone()).await?),
        };
        let mut out = Vec::with_capacity(lookups.len());
        for l in lookups {
            let Some((fields, keys)) = parse_keys(&l.keys) else {
                out.push(None);
                continue;
            };
            let table = self.settings.sink.table_name(&l.topic, None, None);
            let cols: Vec<String> = l.columns.iter().map(|(_, c)| c.clone()).collect();
            match sink.stored_text(&table, &fields, &keys, &cols).await {
                Ok(v) => out.push(v.into_iter().flatten().next()),
                Err(e) => {
                    self.sink = None;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Returns once the sink's group has committed everything in `topic`.
    async fn caught_up(&self, topic: &str) -> Result<(), Error> {
        let started = Instant::now();
        let mut warned = false;
        loop {
            let (p, t) = (self.progress.clone(), topic.to_string());
            let lag = tokio::task::spawn_blocking(move || p.lag(&t, Duration::from_secs(5)))
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, "lag task failed").with_source(e))??;
            if lag == 0 {
                return Ok(());
            }
            if !warned && started.elapsed() > Duration::from_secs(10) {
                warned = true;
                tracing::warn!(topic = %topic, lag, "waiting for the sink to catch up before reading stored rows");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
