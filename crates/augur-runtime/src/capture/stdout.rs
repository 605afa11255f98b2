//! The stdout destination: each record as a JSON line, encoded straight into ~1 MB chunks that
//! a thread of its own writes; a batch's ack resolves once its last chunk is written and
//! flushed.

use std::io::Write;

use augur_core::ack::AckToken;
use augur_core::event::ChangeBatch;
use augur_core::{Error, ErrorKind};
use augur_debezium::envelope::{Encoder, ProcessingTime};
use augur_debezium::out::{RecordOut, RecordRef};
use tokio::sync::mpsc;

/// A chunk is handed to the writer once it holds this many bytes (or its batch ends).
const CHUNK: usize = 1 << 20;
/// Chunks queued for the writer at most (each about [`CHUNK`] bytes).
const CHUNKS_QUEUED: usize = 2;

/// Bytes for the writer; `ack` is the batch's token on the batch's last chunk.
struct Chunk {
    bytes: Vec<u8>,
    ack: Option<AckToken>,
}

/// Consumes batches until the channel closes; returns the records written or the first error.
pub(super) async fn run(
    encoder: Encoder,
    rx: mpsc::Receiver<ChangeBatch>,
    heartbeats: bool,
) -> Result<u64, Error> {
    let (tx, chunks) = mpsc::channel(CHUNKS_QUEUED);
    let (free_tx, free_rx) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("augur-stdout".into())
        .spawn(move || write_chunks(chunks, free_tx))
        .map_err(stdout_error)?;
    let mut lines = Lines {
        buf: Vec::with_capacity(CHUNK + CHUNK / 4),
        free: free_rx,
        written: 0,
    };
    let encoded = lines.encode_batches(encoder, rx, heartbeats, &tx).await;
    drop(tx);
    let wrote = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "the stdout writer failed").with_source(e))?
        .map_err(|_| Error::new(ErrorKind::Internal, "the stdout writer panicked"))?;
    // The writer's own error explains a closed channel better than the channel does.
    wrote.map_err(stdout_error)?;
    encoded?;
    Ok(lines.written)
}

/// The encoding side: fills chunks with JSON lines.
struct Lines {
    buf: Vec<u8>,
    /// Chunks the writer is done with, to fill again.
    free: std::sync::mpsc::Receiver<Vec<u8>>,
    written: u64,
}

impl Lines {
    async fn encode_batches(
        &mut self,
        mut encoder: Encoder,
        mut rx: mpsc::Receiver<ChangeBatch>,
        heartbeats: bool,
        tx: &mpsc::Sender<Chunk>,
    ) -> Result<(), Error> {
        while let Some(batch) = rx.recv().await {
            let ChangeBatch {
                events,
                heartbeat,
                ack,
            } = batch;
            let now = ProcessingTime::now();
            for ev in &events {
                encoder.encode_to(ev, now, self);
                if self.buf.len() >= CHUNK {
                    self.send(tx, None).await?;
                }
            }
            if let (Some(ts), true) = (heartbeat, heartbeats) {
                self.record(RecordRef::of(&encoder.heartbeat(ts)));
            }
            self.send(tx, Some(ack)).await?;
        }
        Ok(())
    }

    async fn send(&mut self, tx: &mpsc::Sender<Chunk>, ack: Option<AckToken>) -> Result<(), Error> {
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + CHUNK / 4));
        let bytes = std::mem::replace(&mut self.buf, next);
        tx.send(Chunk { bytes, ack })
            .await
            .map_err(|_| Error::new(ErrorKind::Destination, "the stdout writer stopped"))
    }
}

impl RecordOut for Lines {
    fn record(&mut self, r: RecordRef<'_>) {
        json_line(r, &mut self.buf);
        self.written += 1;
    }
}

/// The writer thread: writes chunks in order, flushing and acknowledging at each batch's end.
fn write_chunks(
    mut chunks: mpsc::Receiver<Chunk>,
    free: std::sync::mpsc::Sender<Vec<u8>>,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    widen_pipe();
    while let Some(Chunk { mut bytes, ack }) = chunks.blocking_recv() {
        out.write_all(&bytes)?;
        if let Some(ack) = ack {
            out.flush()?;
            ack.ack();
        }
        bytes.clear();
        let _ = free.send(bytes);
    }
    out.flush()
}

/// When stdout is a pipe, asks for a 1 MB pipe buffer (the unprivileged limit) instead of
/// 64 KB: fewer wake-ups of the writer and the reader. Best effort.
fn widen_pipe() {
    // SAFETY: fcntl on fd 1 with an integer argument touches no memory of ours; on anything
    // but a pipe it fails with EBADF/EINVAL, which is ignored.
    unsafe {
        libc::fcntl(1, libc::F_SETPIPE_SZ, 1 << 20);
    }
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Destination, "cannot write to stdout").with_source(e)
}

/// One record as a JSON line: `{"topic":…,"key":…,"value":…}` (+ `"headers"` when present).
fn json_line(r: RecordRef<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"topic\":");
    augur_debezium::json::write_str(out, r.topic);
    out.extend_from_slice(b",\"key\":");
    match r.key {
        Some(k) if !k.is_empty() => out.extend_from_slice(k),
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"value\":");
    out.extend_from_slice(r.value.unwrap_or(b"null"));
    if !r.headers.is_empty() {
        out.extend_from_slice(b",\"headers\":{");
        for (i, (k, v)) in r.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            augur_debezium::json::write_str(out, k);
            out.push(b':');
            match std::str::from_utf8(v) {
                Ok(s) => augur_debezium::json::write_str(out, s),
                Err(_) => augur_debezium::json::write_str(out, &String::from_utf8_lossy(v)),
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"}\n");
}
