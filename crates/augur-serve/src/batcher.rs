//! The adaptive micro-batcher: prediction requests that overlap are queued for one dedicated
//! inference thread, which scores the queued rows together in one model call; a small request
//! that finds the thread idle is scored where it is (the fast path below).
//!
//! # How batches form
//!
//! The inference thread sleeps until a request arrives, then:
//!
//! 1. takes every request already queued, up to `max_batch_size` rows;
//! 2. if the batch still has room and some handlers are in the middle of reading or parsing a
//!    prediction request (the *incoming* count, kept by [`IncomingGuard`]), waits for them —
//!    polling, for at most about one batch's own compute time (a moving average, clamped to
//!    10–100 µs), and never past a quarter of the latency budget;
//! 3. drops requests whose client has gone away, answers `503` to those that already waited
//!    longer than `max_latency`, and scores the rest in one model call per model version (a
//!    promotion can leave two versions in one batch): `predict_json_batch` from 8 rows up,
//!    the faster single-row evaluator below that.
//!
//! So batches grow with load by themselves: one request at a time is answered at once, with no
//! batching window, while concurrent requests pile up behind a running batch and go together
//! into the next.
//!
//! # The fast path
//!
//! When nothing is queued for or being scored by the inference thread, a request of fewer than
//! [`SMALL_BATCH`] rows is scored on its handler's task, with the same single-row evaluator the
//! thread would use: a few microseconds per row — bounded by the row limit, about as long as
//! one system call — and less than the hand-off to the inference thread and back (two thread
//! wake-ups) that it saves. Handlers that overlap on the runtime's workers each take the fast
//! path too: measured on two cores, queueing them for a shared batch cost more in wake-ups than
//! the block evaluator saved (`docs/performance.md`, "The model server"). Requests queue, and
//! batch as above, when they are larger or when the thread is already busy. This is the
//! adaptive part — the batch size follows the arrival rate, like BentoML's CORK dispatcher,
//! without a fixed wait. Request order inside a batch does not matter: each request gets its
//! own rows' results.
//!
//! # Bounds
//!
//! The queue holds at most `max_queue` requests; a request that finds it full gets `503` at
//! once (backpressure instead of unbounded memory). A request whose answer would come later
//! than `max_latency` after it was queued gets `503` too, as BentoML does when
//! `max_latency_ms` is exceeded. The thread checks when the batch starts (a request that has
//! already waited too long is not scored at all) and when it ends (one scored too late is
//! answered `503`), so no per-request timer is armed on the async runtime.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use augur_model::{FieldError, Model};
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiErrorKind};
use crate::metrics::ServeMetrics;
use crate::slot::Served;

/// Below this many rows a batch is scored row by row: the single-row evaluator (eight trees
/// side by side) beats the 64-row block evaluator on tiny batches, and both give the same
/// numbers bit for bit.
const SMALL_BATCH: usize = 8;

/// The shortest and longest wait for requests being parsed (see the module docs).
const LINGER_MIN: Duration = Duration::from_micros(10);
/// See [`LINGER_MIN`].
const LINGER_MAX: Duration = Duration::from_micros(100);

/// One row: a JSON object with the model's input fields.
pub(crate) type Row = serde_json::Map<String, serde_json::Value>;

/// One result per row, in order: the prediction or the row's field error.
pub(crate) type RowResults = Vec<Result<f64, FieldError>>;

/// Why the inference thread did not predict a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    /// It waited in the queue longer than the latency budget.
    LatencyBudget,
    /// The model call panicked (a bug); the thread survives and answers `500`.
    Panicked,
}

/// A queued request.
struct Job {
    /// The model version admitted with the request.
    served: Arc<Served>,
    /// Its rows.
    rows: Vec<Row>,
    /// When it was queued.
    queued: Instant,
    /// Where its results go.
    reply: oneshot::Sender<Result<RowResults, Reject>>,
}

/// What the queue carries.
enum Msg {
    /// A request to predict.
    Job(Job),
    /// Finish what is queued and exit.
    Stop,
}

/// The batching settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    /// Rows per model call, at most (a single larger request runs alone).
    pub(crate) max_batch_size: usize,
    /// The latency budget from queueing to answer.
    pub(crate) max_latency: Duration,
    /// Queued requests, at most.
    pub(crate) max_queue: usize,
}

/// The handle the HTTP handlers use; owns the inference thread.
#[derive(Debug)]
pub(crate) struct Batcher {
    /// The bounded queue to the inference thread.
    tx: SyncSender<Msg>,
    /// Handlers currently reading or parsing a prediction request.
    incoming: Arc<AtomicUsize>,
    /// The settings.
    settings: BatchSettings,
    /// The metrics.
    metrics: ServeMetrics,
    /// The inference thread, until [`Batcher::stop`].
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Requests queued or being scored by the thread; 0 lets a small request take the fast
    /// path.
    busy: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Job(_) => "Job",
            Msg::Stop => "Stop",
        })
    }
}

/// Counts a handler as *incoming* (about to queue a request) while it lives.
#[derive(Debug)]
pub(crate) struct IncomingGuard {
    /// The shared count.
    incoming: Arc<AtomicUsize>,
}

impl Drop for IncomingGuard {
    fn drop(&mut self) {
        self.incoming.fetch_sub(1, Ordering::Release);
    }
}

impl Batcher {
    /// Starts the inference thread.
    pub(crate) fn start(
        settings: BatchSettings,
        metrics: ServeMetrics,
    ) -> std::io::Result<Batcher> {
        let (tx, rx) = mpsc::sync_channel(settings.max_queue);
        let incoming = Arc::new(AtomicUsize::new(0));
        let busy = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            rx,
            incoming: incoming.clone(),
            busy: busy.clone(),
            settings,
            metrics: metrics.clone(),
            cost: Duration::from_micros(50),
            carry: None,
        };
        let thread = std::thread::Builder::new()
            .name("augur-infer".into())
            .spawn(move || worker.run())?;
        Ok(Batcher {
            tx,
            incoming,
            settings,
            metrics,
            thread: Mutex::new(Some(thread)),
            busy,
        })
    }

    /// Marks the calling handler as about to queue a request (see the module docs); hold the
    /// guard until [`Batcher::predict`] has queued it or the request failed.
    pub(crate) fn incoming(&self) -> IncomingGuard {
        self.incoming.fetch_add(1, Ordering::AcqRel);
        IncomingGuard {
            incoming: self.incoming.clone(),
        }
    }

    /// Queues `rows` for `served` and waits for their results (one per row, in order).
    /// `incoming` is released as the request is queued.
    pub(crate) async fn predict(
        &self,
        served: Arc<Served>,
        rows: Vec<Row>,
        incoming: IncomingGuard,
    ) -> Result<RowResults, ApiError> {
        if self.fast_path(rows.len()) {
            drop(incoming);
            return self.score_here(&served, rows.len(), |model| {
                rows.iter().map(|r| model.predict_json(r)).collect()
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            served,
            rows,
            queued: Instant::now(),
            reply,
        };
        self.metrics.queue_depth.inc();
        // No longer incoming once queued: release the guard first, so the inference thread
        // never lingers for the very request it is about to take.
        drop(incoming);
        self.busy.fetch_add(1, Ordering::AcqRel);
        let sent = self.tx.try_send(Msg::Job(job));
        if sent.is_err() {
            self.metrics.queue_depth.dec();
            self.busy.fetch_sub(1, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.metrics.rejected_queue_full.inc();
                return Err(ApiError::new(
                    ApiErrorKind::Overloaded,
                    format!(
                        "the inference queue is full ({} requests); try again",
                        self.settings.max_queue
                    ),
                ));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ApiError::new(
                    ApiErrorKind::NotReady,
                    "the server is shutting down",
                ));
            }
        }
        let budget_exceeded = || {
            self.metrics.rejected_latency.inc();
            ApiError::new(
                ApiErrorKind::LatencyBudget,
                format!(
                    "not answered within the latency budget of {} ms",
                    self.settings.max_latency.as_millis()
                ),
            )
        };
        // The inference thread enforces the budget (when the batch starts and when it ends),
        // so no per-request timer is needed here; timers cost a wake-up of their own.
        match answer.await {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(Reject::LatencyBudget)) => Err(budget_exceeded()),
            Ok(Err(Reject::Panicked)) | Err(_) => Err(ApiError::new(
                ApiErrorKind::Internal,
                "the model failed on this batch; see the server log",
            )),
        }
    }

    /// Whether a request of `rows` rows takes the fast path: fewer than [`SMALL_BATCH`] rows,
    /// and nothing queued for or being scored by the inference thread (see the module docs).
    pub(crate) fn fast_path(&self, rows: usize) -> bool {
        rows < SMALL_BATCH && self.busy.load(Ordering::Acquire) == 0
    }

    /// The fast path: scores a small request of `rows` rows on the calling task with
    /// `predict` (see the module docs). Call it only when [`Batcher::fast_path`] says so.
    pub(crate) fn score_here(
        &self,
        served: &Served,
        rows: usize,
        predict: impl FnOnce(&Model) -> RowResults,
    ) -> Result<RowResults, ApiError> {
        self.metrics.queue_wait.observe(0.0);
        score(&self.metrics, served, rows, predict).0.map_err(|_| {
            ApiError::new(
                ApiErrorKind::Internal,
                "the model failed on this batch; see the server log",
            )
        })
    }

    /// Lets the inference thread finish what is queued, then joins it. Blocking; idempotent.
    pub(crate) fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            // Blocks only while the queue is full, which the thread is draining.
            let _ = self.tx.send(Msg::Stop);
            if thread.join().is_err() {
                tracing::error!("the inference thread panicked");
            }
        }
    }
}

/// Scores `rows` rows with `served`'s model through `predict` (one model call), records the
/// batch's size and time, and returns the results — `Err` if the model panicked (logged) — and
/// the time taken.
fn score(
    metrics: &ServeMetrics,
    served: &Served,
    rows: usize,
    predict: impl FnOnce(&Model) -> RowResults,
) -> (Result<RowResults, ()>, Duration) {
    let started = Instant::now();
    let results = std::panic::catch_unwind(AssertUnwindSafe(|| predict(served.model())));
    let took = started.elapsed();
    let handles = metrics.model(served);
    handles.batch_size.observe(rows as f64);
    handles.inference.observe(took.as_secs_f64());
    if results.is_err() {
        tracing::error!(model = served.tag(), rows, "model call panicked");
    }
    (results.map_err(|_| ()), took)
}

/// Scores `rows` in one model call: the single-row evaluator below [`SMALL_BATCH`] rows, the
/// block evaluator from there.
fn predict_rows(model: &Model, rows: &[&Row]) -> RowResults {
    if rows.len() < SMALL_BATCH {
        rows.iter().map(|r| model.predict_json(r)).collect()
    } else {
        model.predict_json_batch(rows)
    }
}

/// Adds `job` to `batch` if its rows fit under `max`; otherwise keeps it in `carry` for the
/// next batch and returns false.
fn take(
    job: Job,
    batch: &mut Vec<Job>,
    rows: &mut usize,
    carry: &mut Option<Job>,
    max: usize,
) -> bool {
    if *rows + job.rows.len() > max {
        *carry = Some(job);
        return false;
    }
    *rows += job.rows.len();
    batch.push(job);
    true
}

/// The inference thread's state.
struct Worker {
    /// The queue.
    rx: Receiver<Msg>,
    /// Handlers about to queue a request.
    incoming: Arc<AtomicUsize>,
    /// Requests queued or being scored (see [`Batcher`]).
    busy: Arc<AtomicUsize>,
    /// The settings.
    settings: BatchSettings,
    /// The metrics.
    metrics: ServeMetrics,
    /// Moving average of one batch's compute time.
    cost: Duration,
    /// A request taken from the queue that did not fit in the last batch.
    carry: Option<Job>,
}

impl Worker {
    /// Forms and runs batches until stopped or every sender is gone.
    fn run(mut self) {
        loop {
            let first = match self.carry.take() {
                Some(job) => job,
                None => match self.rx.recv() {
                    Ok(Msg::Job(job)) => {
                        self.metrics.queue_depth.dec();
                        job
                    }
                    Ok(Msg::Stop) | Err(_) => break,
                },
            };
            let (batch, stop) = self.gather(first);
            self.run_batch(batch);
            if stop {
                break;
            }
        }
        // Answer anything still queued (normally nothing: the server stops the batcher only
        // after every connection has finished).
        if let Some(job) = self.carry.take() {
            self.run_batch(vec![job]);
        }
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Job(job) = msg {
                self.metrics.queue_depth.dec();
                self.run_batch(vec![job]);
            }
        }
    }

    /// Collects a batch starting with `first`; also returns whether a stop was received.
    fn gather(&mut self, first: Job) -> (Vec<Job>, bool) {
        let max = self.settings.max_batch_size;
        let mut rows = first.rows.len();
        let mut batch = vec![first];
        let mut stop = false;
        // 1. Everything already queued.
        while rows < max {
            match self.rx.try_recv() {
                Ok(Msg::Job(job)) => {
                    self.metrics.queue_depth.dec();
                    if !take(job, &mut batch, &mut rows, &mut self.carry, max) {
                        return (batch, false);
                    }
                }
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        // 2. Requests being parsed right now, for about one batch's compute time. The wait is
        //    a busy poll: those requests are microseconds away, and parking the thread and
        //    waking it again would cost more than the wait itself.
        if !stop && rows < max && self.incoming.load(Ordering::Acquire) > 0 {
            let linger = self
                .cost
                .clamp(LINGER_MIN, LINGER_MAX)
                .min(self.settings.max_latency / 4);
            let deadline = Instant::now() + linger;
            while rows < max
                && self.incoming.load(Ordering::Acquire) > 0
                && Instant::now() < deadline
            {
                match self.rx.try_recv() {
                    Ok(Msg::Job(job)) => {
                        self.metrics.queue_depth.dec();
                        if !take(job, &mut batch, &mut rows, &mut self.carry, max) {
                            break;
                        }
                    }
                    Ok(Msg::Stop) => {
                        stop = true;
                        break;
                    }
                    Err(TryRecvError::Empty) => std::hint::spin_loop(),
                    Err(TryRecvError::Disconnected) => break,
                }
            }
        }
        (batch, stop)
    }

    /// Answers expired requests, then predicts the rest, one model call per model version.
    fn run_batch(&mut self, batch: Vec<Job>) {
        let answered = batch.len();
        self.score_batch(batch);
        self.busy.fetch_sub(answered, Ordering::AcqRel);
    }

    /// [`Worker::run_batch`]'s work.
    fn score_batch(&mut self, batch: Vec<Job>) {
        let now = Instant::now();
        let mut live: Vec<Job> = Vec::with_capacity(batch.len());
        for job in batch {
            if job.reply.is_closed() {
                continue; // The client went away (or its handler timed out).
            }
            let waited = now.saturating_duration_since(job.queued);
            if waited > self.settings.max_latency {
                let _ = job.reply.send(Err(Reject::LatencyBudget));
                continue;
            }
            self.metrics.queue_wait.observe(waited.as_secs_f64());
            live.push(job);
        }
        while !live.is_empty() {
            let served = live[0].served.clone();
            let (group, rest): (Vec<Job>, Vec<Job>) = live
                .into_iter()
                .partition(|j| Arc::ptr_eq(&j.served, &served));
            live = rest;
            self.predict_group(&served, group);
        }
    }

    /// One model call for requests admitted with the same model version.
    fn predict_group(&mut self, served: &Served, group: Vec<Job>) {
        let rows: Vec<&Row> = group.iter().flat_map(|j| j.rows.iter()).collect();
        let (results, took) = score(&self.metrics, served, rows.len(), |model| {
            predict_rows(model, &rows)
        });
        self.cost = (self.cost * 4 + took) / 5;
        match results {
            Ok(results) => {
                let done = Instant::now();
                let mut results = results.into_iter();
                for job in group {
                    let mine: RowResults = results.by_ref().take(job.rows.len()).collect();
                    let late =
                        done.saturating_duration_since(job.queued) > self.settings.max_latency;
                    let _ = job.reply.send(if late {
                        Err(Reject::LatencyBudget)
                    } else {
                        Ok(mine)
                    });
                }
            }
            Err(()) => {
                for job in group {
                    let _ = job.reply.send(Err(Reject::Panicked));
                }
            }
        }
    }
}
