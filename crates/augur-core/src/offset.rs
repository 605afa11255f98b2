//! Source offsets, Debezium-style: whether the initial snapshot completed and the last durable
//! position. The replication slot is the authority on where streaming resumes; the offset
//! store remembers what the slot cannot (snapshot completion).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;

use crate::{Error, ErrorKind, Lsn};

/// What a source has durably done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceOffset {
    /// The initial snapshot finished and every row of it is durable downstream.
    pub snapshot_completed: bool,
    /// The end LSN of the last transaction that is durable downstream.
    pub lsn: Option<Lsn>,
    /// The transaction id of that transaction.
    pub tx_id: Option<i64>,
    /// Its commit time, microseconds since the epoch.
    pub ts_usec: Option<i64>,
    /// A running incremental snapshot's progress as of `lsn` (the source's own format; `None`
    /// when none runs).
    pub incremental_snapshot: Option<serde_json::Value>,
}

impl SourceOffset {
    /// The offset as Debezium's offset map (`lsn`, `lsn_commit`, `txId`, `ts_usec`, and
    /// `snapshot_completed` / `last_snapshot_record`).
    pub fn to_map(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        if let Some(l) = self.lsn {
            m.insert("lsn".into(), l.as_u64().into());
            m.insert("lsn_commit".into(), l.as_u64().into());
            m.insert("lsn_proc".into(), l.as_u64().into());
        }
        if let Some(t) = self.tx_id {
            m.insert("txId".into(), t.into());
        }
        if let Some(t) = self.ts_usec {
            m.insert("ts_usec".into(), t.into());
        }
        m.insert("snapshot_completed".into(), self.snapshot_completed.into());
        if let Some(i) = &self.incremental_snapshot {
            m.insert("incremental_snapshot".into(), i.clone());
        }
        m
    }

    /// Reads an offset map written by [`to_map`](Self::to_map) (or by Debezium).
    pub fn from_map(m: &serde_json::Map<String, serde_json::Value>) -> SourceOffset {
        let num = |k: &str| {
            m.get(k)
                .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        };
        let completed = match m.get("snapshot_completed") {
            Some(v) => v.as_bool().unwrap_or(false),
            // Debezium writes no snapshot flags once streaming from a completed snapshot.
            None => m.get("snapshot").is_none() && m.contains_key("lsn"),
        };
        SourceOffset {
            snapshot_completed: completed,
            lsn: num("lsn").map(|v| Lsn(v as u64)),
            tx_id: num("txId"),
            ts_usec: num("ts_usec"),
            incremental_snapshot: m
                .get("incremental_snapshot")
                .filter(|v| v.is_object())
                .cloned(),
        }
    }
}

/// A future returned by an [`OffsetStore`] (boxed, so the store can be a `dyn` trait object).
pub type OffsetFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Where a source keeps its offset.
///
/// Both calls are async: a store may write a file with `fsync` (done on the blocking pool) or
/// wait for a broker's acknowledgement, and neither may stall the reactor.
pub trait OffsetStore: Send + Sync {
    /// The stored offset, if any.
    fn load(&self) -> OffsetFuture<'_, Option<SourceOffset>>;
    /// Replaces the stored offset. Durable when the future resolves `Ok`.
    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()>;
}

/// Offsets in a JSON file (Debezium's `offset.storage.file.filename`), replaced atomically.
#[derive(Debug, Clone)]
pub struct FileOffsetStore {
    path: PathBuf,
}

impl FileOffsetStore {
    /// A store at `path` (created on first save).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileOffsetStore { path: path.into() }
    }

    /// Reads the file on the calling thread (for callers outside a runtime, e.g. `doctor`).
    pub fn load_blocking(&self) -> Result<Option<SourceOffset>, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("cannot read offsets from {}", self.path.display()),
                )
                .with_source(e));
            }
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("offsets file {} is not valid JSON", self.path.display()),
            )
            .with_source(e)
            .with_hint("remove the file to start over with a new snapshot")
        })?;
        Ok(v.as_object().map(SourceOffset::from_map))
    }

    /// Writes a temporary file, `fsync`s it and renames it over the old one, on the calling
    /// thread.
    pub fn save_blocking(&self, offset: &SourceOffset) -> Result<(), Error> {
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::Io,
                format!("cannot write offsets to {}", self.path.display()),
            )
            .with_source(e)
        };
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("tmp");
        let text = serde_json::to_string_pretty(&offset.to_map())
            .map_err(|e| io(std::io::Error::other(e)))?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(text.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::new(ErrorKind::Internal, "the offsets file task failed").with_source(e))
    })
}

impl OffsetStore for FileOffsetStore {
    fn load(&self) -> OffsetFuture<'_, Option<SourceOffset>> {
        let store = self.clone();
        Box::pin(blocking(move || store.load_blocking()))
    }

    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()> {
        let (store, offset) = (self.clone(), offset.clone());
        Box::pin(blocking(move || store.save_blocking(&offset)))
    }
}

/// Offsets kept in memory (tests, one-shot runs).
#[derive(Debug, Default)]
pub struct MemoryOffsetStore {
    inner: Mutex<Option<SourceOffset>>,
}

impl OffsetStore for MemoryOffsetStore {
    fn load(&self) -> OffsetFuture<'_, Option<SourceOffset>> {
        let o = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Box::pin(std::future::ready(Ok(o)))
    }

    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()> {
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = Some(offset.clone());
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_store_round_trips() {
        let dir = std::env::temp_dir().join(format!("augur-offset-test-{}", std::process::id()));
        let store = FileOffsetStore::new(dir.join("o.json"));
        assert_eq!(store.load().await.unwrap(), None);
        let o = SourceOffset {
            snapshot_completed: true,
            lsn: Some(Lsn(42)),
            tx_id: Some(7),
            ts_usec: Some(1),
            incremental_snapshot: Some(serde_json::json!({"queue": [{"name": "public.t"}]})),
        };
        store.save(&o).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Some(o.clone()));
        assert_eq!(store.load_blocking().unwrap(), Some(o));
        let _ = std::fs::remove_dir_all(dir);
    }
}
