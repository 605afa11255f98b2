//! Training with k-fold cross-validation: the folds and the final model train in parallel on
//! `threads` worker threads, each job single-threaded and seeded, so results never depend on
//! scheduling.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::features::{Columns, FeaturePipeline, FeatureSpec, Value};
use crate::forest::Forest;
use crate::gbdt::{self, TrainParams};
use crate::interval::PriceInterval;
use crate::rng::Rng;

/// Regression quality of predictions against actual values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Mean absolute percentage error, in percent.
    pub mape: f64,
    /// Rows scored.
    pub rows: usize,
}

impl Metrics {
    /// Computes the metrics; `actual` and `predicted` have equal lengths (rows with an actual of
    /// 0 are left out of MAPE).
    pub fn compute(actual: &[f64], predicted: &[f64]) -> Metrics {
        let n = actual.len().max(1) as f64;
        let mean = actual.iter().sum::<f64>() / n;
        let (mut abs, mut sq, mut tot, mut pct, mut pct_n) = (0.0, 0.0, 0.0, 0.0, 0usize);
        for (a, p) in actual.iter().zip(predicted) {
            abs += (a - p).abs();
            sq += (a - p).powi(2);
            tot += (a - mean).powi(2);
            if *a != 0.0 {
                pct += ((a - p) / a).abs();
                pct_n += 1;
            }
        }
        Metrics {
            mae: abs / n,
            rmse: (sq / n).sqrt(),
            r2: if tot > 0.0 { 1.0 - sq / tot } else { 0.0 },
            mape: 100.0 * pct / pct_n.max(1) as f64,
            rows: actual.len(),
        }
    }
}

/// The result of a k-fold cross-validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvReport {
    /// Number of folds.
    pub folds: usize,
    /// Seed of the row shuffle that made the folds.
    pub seed: u64,
    /// Metrics over all out-of-fold predictions together.
    pub pooled: Metrics,
    /// Metrics of each fold's held-out rows.
    pub per_fold: Vec<Metrics>,
}

/// Everything `train` needs besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The feature spec (column mapping, encodings, checks).
    pub spec: FeatureSpec,
    /// Trainer hyper-parameters.
    pub params: TrainParams,
    /// Cross-validation folds; 0 skips cross-validation.
    pub folds: usize,
    /// Seed of the fold assignment.
    pub cv_seed: u64,
    /// Worker threads (jobs = folds + the final model).
    pub threads: usize,
    /// The nominal coverage of the price range learned from the out-of-fold rows.
    #[serde(default = "default_level")]
    pub interval_level: f64,
}

/// [`crate::interval::DEFAULT_LEVEL`], for serde.
fn default_level() -> f64 {
    crate::interval::DEFAULT_LEVEL
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            spec: FeatureSpec::ford(),
            params: TrainParams::default(),
            folds: 5,
            cv_seed: 42,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            interval_level: crate::interval::DEFAULT_LEVEL,
        }
    }
}

/// A trained pipeline and forest with their evaluation.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The feature pipeline fitted on all rows.
    pub pipeline: FeaturePipeline,
    /// The forest trained on all rows.
    pub forest: Forest,
    /// Cross-validated metrics (`None` when `folds == 0`).
    pub cv: Option<CvReport>,
    /// The price range learned from the out-of-fold rows (`None` without cross-validation).
    pub interval: Option<PriceInterval>,
    /// Metrics of the final model on its own training rows (optimistic; for reference).
    pub train_metrics: Metrics,
    /// Wall-clock seconds of the whole training.
    pub seconds: f64,
}

/// One unit of parallel work: fit on `train` rows, predict `test` rows.
struct Job {
    /// Training row indices.
    train: Vec<usize>,
    /// Held-out row indices (empty for the final model).
    test: Vec<usize>,
}

/// What a job produces.
type JobOut = (FeaturePipeline, Forest, Vec<f64>);

/// Trains on `data` with cross-validation. `progress(done, total)` is called (from worker
/// threads) after every tree.
pub fn train(
    cfg: &TrainConfig,
    data: &Columns,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Trained, ModelError> {
    let started = Instant::now();
    check_config(cfg, data.len())?;
    let n = data.len();
    let jobs = make_jobs(cfg, n);
    let mut outs = run_jobs(cfg, data, &jobs, progress)?;
    let (pipeline, forest, _) = outs.pop().expect("final job");
    let (cv, interval) = match cfg.folds {
        0 => (None, None),
        _ => {
            let (cv, pred, fold) = cv_report(cfg, data, &jobs, &outs);
            let output = pipeline.output();
            let level = cfg.interval_level;
            let iv = PriceInterval::learn(level, output, &data.target, &pred, &fold);
            (Some(cv), iv)
        }
    };
    let all: Vec<usize> = (0..n).collect();
    let fitted = predict_rows(&pipeline, &forest, data, &all)?;
    let train_metrics = Metrics::compute(&data.target, &fitted);
    Ok(Trained {
        pipeline,
        forest,
        cv,
        interval,
        train_metrics,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Checks the spec, the parameters and the fold count against `n` rows.
fn check_config(cfg: &TrainConfig, n: usize) -> Result<(), ModelError> {
    cfg.spec.validate()?;
    cfg.params.validate()?;
    if !(cfg.interval_level > 0.0 && cfg.interval_level < 1.0) {
        return Err(ModelError::Params(
            "the price range level must be in (0, 1), e.g. 0.8".into(),
        ));
    }
    if cfg.folds == 1 {
        return Err(ModelError::Params(
            "folds must be 0 (no cross-validation) or at least 2".into(),
        ));
    }
    if n < cfg.folds.max(2) * 2 {
        return Err(ModelError::NotEnoughData(format!(
            "{n} rows for {} folds",
            cfg.folds
        )));
    }
    Ok(())
}

/// The jobs: one per fold (rows shuffled with the cv seed, dealt round-robin), then the final
/// model on all `n` rows.
fn make_jobs(cfg: &TrainConfig, n: usize) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(cfg.folds + 1);
    if cfg.folds > 0 {
        let mut order: Vec<usize> = (0..n).collect();
        Rng::new(cfg.cv_seed).shuffle(&mut order);
        for k in 0..cfg.folds {
            let mut train = Vec::with_capacity(n);
            let mut test = Vec::with_capacity(n / cfg.folds + 1);
            for (i, &r) in order.iter().enumerate() {
                if i % cfg.folds == k {
                    test.push(r)
                } else {
                    train.push(r)
                }
            }
            train.sort_unstable();
            test.sort_unstable();
            jobs.push(Job { train, test });
        }
    }
    jobs.push(Job {
        train: (0..n).collect(),
        test: Vec::new(),
    });
    jobs
}

/// Runs the jobs on `cfg.threads` worker threads; returns their outputs in job order, or the
/// first job's error in that order.
fn run_jobs(
    cfg: &TrainConfig,
    data: &Columns,
    jobs: &[Job],
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<JobOut>, ModelError> {
    let total = jobs.len() * cfg.params.trees * cfg.params.ensemble;
    let done = AtomicUsize::new(0);
    let tick = || progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<JobOut, ModelError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    // The final model is the biggest job: start it first so the folds fill in around it.
    let order: Vec<usize> = std::iter::once(jobs.len() - 1)
        .chain(0..jobs.len() - 1)
        .collect();
    std::thread::scope(|s| {
        for _ in 0..cfg.threads.clamp(1, jobs.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&j) = order.get(i) else { break };
                    let out = run_job(cfg, data, &jobs[j], &tick);
                    *results[j].lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
                }
            });
        }
    });
    let mut outs = Vec::with_capacity(jobs.len());
    for r in results {
        outs.push(
            r.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every job ran")?,
        );
    }
    Ok(outs)
}

/// The cross-validation report from the fold jobs' held-out predictions (`outs[k]` belongs to
/// `jobs[k]`), with every row's out-of-fold prediction and fold.
fn cv_report(
    cfg: &TrainConfig,
    data: &Columns,
    jobs: &[Job],
    outs: &[JobOut],
) -> (CvReport, Vec<f64>, Vec<usize>) {
    let mut pred = vec![0.0; data.len()];
    let mut fold = vec![0; data.len()];
    let mut per_fold = Vec::with_capacity(cfg.folds);
    for (k, (job, (_, _, p))) in jobs.iter().zip(outs).enumerate() {
        let actual: Vec<f64> = job.test.iter().map(|&r| data.target[r]).collect();
        per_fold.push(Metrics::compute(&actual, p));
        for (&r, &v) in job.test.iter().zip(p) {
            pred[r] = v;
            fold[r] = k;
        }
    }
    let report = CvReport {
        folds: cfg.folds,
        seed: cfg.cv_seed,
        pooled: Metrics::compute(&data.target, &pred),
        per_fold,
    };
    (report, pred, fold)
}

/// Fits the pipeline and trains a forest on the job's rows, then predicts its held-out rows.
fn run_job(
    cfg: &TrainConfig,
    data: &Columns,
    job: &Job,
    tick: &(dyn Fn() + Sync),
) -> Result<JobOut, ModelError> {
    let pipeline = FeaturePipeline::fit(&cfg.spec, data, &job.train)?;
    let x = features(&pipeline, data, &job.train)?;
    let y: Vec<f64> = job
        .train
        .iter()
        .map(|&r| match pipeline.output() {
            crate::features::OutputTransform::Identity => data.target[r],
            crate::features::OutputTransform::Exp => data.target[r].ln(),
        })
        .collect();
    let arrays = gbdt::train(&x, &y, pipeline.num_columns(), &cfg.params, tick)?;
    let forest = Forest::from_arrays(arrays)?;
    let pred = predict_rows(&pipeline, &forest, data, &job.test)?;
    Ok((pipeline, forest, pred))
}

/// The feature matrix of some rows.
fn features(
    pipeline: &FeaturePipeline,
    data: &Columns,
    rows: &[usize],
) -> Result<Vec<f32>, ModelError> {
    let nc = pipeline.num_columns();
    let mut x = vec![0.0f32; rows.len() * nc];
    let map = data.input_map(pipeline)?;
    let mut values: Vec<Value<'_>> = Vec::new();
    for (i, &r) in rows.iter().enumerate() {
        data.row(r, &map, &mut values);
        pipeline
            .transform(&values, &mut x[i * nc..(i + 1) * nc])
            .map_err(|e| ModelError::InvalidModel(format!("training row {r}: {e}")))?;
    }
    Ok(x)
}

/// Predictions for some rows.
fn predict_rows(
    pipeline: &FeaturePipeline,
    forest: &Forest,
    data: &Columns,
    rows: &[usize],
) -> Result<Vec<f64>, ModelError> {
    let x = features(pipeline, data, rows)?;
    let mut scores = vec![0.0f32; rows.len()];
    forest.predict_batch(&x, &mut scores);
    Ok(scores.into_iter().map(|s| pipeline.finish(s)).collect())
}
