//! The model benchmark: training time, batch rows/s and single-row latency, side by side with
//! Python xgboost's in-process predict on the same (imported) model.
//!
//! 1. Training: the whole default `augur train` (read the CSV, data checks, 5-fold
//!    cross-validation and the final model on all cores, serialize), best of `--train-runs`.
//! 2. The trained model (or, without the data set, the shipped one): batch scoring on one core
//!    (features precomputed, and from typed input values through the feature pipeline), and
//!    single-row latency percentiles of `predict_row` and `predict_json`.
//! 3. The original's XGBoost model (`crates/augur-model/tests/fixtures/xgboost`, 100 trees)
//!    imported into augur's evaluator, against xgboost itself (`inplace_predict`, nthread=1, on
//!    the same float32 matrix), with ratios. xgboost is installed with
//!    `pip install --target target/pydeps xgboost numpy` when missing; without it the
//!    comparison is skipped with a note.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use augur_model::data::{Table, prepare};
use augur_model::train::{TrainConfig, train};
use augur_model::{FeatureSpec, Model, PipelineSpec, TrainParams, Value};

use crate::common::{load_average, repo_root};

/// Arguments of `augur-bench model`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Ford data set [default: data/ford.csv beside the repository].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training runs (the best is reported).
    #[arg(long, default_value_t = 3)]
    train_runs: usize,
    /// Rows per batch call.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Single-row calls timed for the percentiles.
    #[arg(long, default_value_t = 20_000)]
    single: usize,
    /// Skip the Python xgboost comparison.
    #[arg(long)]
    no_python: bool,
}

/// Runs the model benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let root = repo_root();
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| root.join("data/ford.csv"));
    println!(
        "augur model benchmark ({} cores, load average {})",
        cores(),
        load_average()
    );
    println!();

    // 1. Training.
    let (model, rows) = if data.is_file() {
        let model = training(&data, args.train_runs)?;
        let rows = ford_rows(&data)?;
        (model, rows)
    } else {
        println!(
            "training: skipped, no data set at {} (using the shipped model)",
            data.display()
        );
        (augur_model::load_shipped()?, fixture_rows(&root)?)
    };
    println!();

    // 2. The augur model.
    augur_figures(&model, &rows, &args)?;

    // 3. The imported xgboost model against xgboost.
    imported_vs_xgboost(&root, &rows, &args)?;
    Ok(())
}

/// A row of input values as JSON.
type Row = serde_json::Map<String, serde_json::Value>;

/// augur's figures for the imported model.
struct Ours {
    /// Batch rows/s, one core.
    batch: f64,
    /// Single-row p50, µs.
    p50: f64,
    /// Single-row p99, µs.
    p99: f64,
}

/// Section 1: the default `augur train` on `data`, best of `runs`; prints it, returns the model.
fn training(data: &Path, runs: usize) -> anyhow::Result<Model> {
    let mut best = f64::INFINITY;
    let mut model = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let table = Table::read_csv(data)?;
        let spec = FeatureSpec::ford();
        let params = TrainParams::default();
        let (cols, report) = prepare(&spec, &table, 10)?;
        let cfg = TrainConfig {
            spec: spec.clone(),
            params: params.clone(),
            ..TrainConfig::default()
        };
        let trained = train(&cfg, &cols, &|_, _| {})?;
        let m = Model::from_trained(
            "ford-price",
            trained,
            spec,
            params,
            "ford.csv",
            &table.sha256,
            report,
        )?;
        let bytes = m.to_json();
        best = best.min(started.elapsed().as_secs_f64());
        std::hint::black_box(bytes);
        model = Some(m);
    }
    let model = model.expect("at least one run");
    print_training(&model, best, runs);
    Ok(model)
}

/// Prints the training wall time (`best` seconds of `runs`) and the model's pooled CV figures.
fn print_training(model: &Model, best: f64, runs: usize) {
    let cv = model
        .meta()
        .cv()
        .expect("trained with cross-validation")
        .pooled;
    println!(
        "training: default `augur train` (5-fold CV + final model, {} threads)",
        TrainConfig::default().threads
    );
    println!(
        "  wall time (best of {}): {best:.2} s   [target <= 10 s]",
        runs.max(1)
    );
    println!(
        "  CV: MAE {:.2}  RMSE {:.2}  R² {:.4}  MAPE {:.2} %   [target MAE <= 765]",
        cv.mae, cv.rmse, cv.r2, cv.mape
    );
    if let Some(iv) = model.meta().interval() {
        let e = &iv.evaluation;
        println!(
            "  {:.0} % price range: coverage {:.1} % of {} out-of-fold rows (cross-fitted), mean \
             width {:.0} ({:.1} % of the price)   [target {:.0} ± 2 %]",
            100.0 * iv.level,
            100.0 * e.coverage,
            e.rows,
            e.mean_width,
            100.0 * e.mean_relative_width,
            100.0 * iv.level
        );
    }
}

/// Section 2: the model's batch rows/s and single-row latency on `rows`; prints them.
fn augur_figures(model: &Model, rows: &[Row], args: &Args) -> anyhow::Result<()> {
    let f = model.forest();
    println!(
        "{} ({} trees, {} nodes), {} distinct rows cycled",
        model.tag(),
        f.num_trees(),
        f.num_nodes(),
        rows.len()
    );
    let values = rows_to_values(model, rows)?;
    let x = features(model, &values)?;
    let batch = batch_rows_per_s(model, &x, args.batch);
    let via_values = values_rows_per_s(model, &values, args.batch);
    let (p50, p99) = single_row(model, &values, args.single);
    let (j50, j99) = single_json(model, rows, args.single);
    println!(
        "  batch, one core, features ready:     {:>12} rows/s",
        thousands(batch)
    );
    println!(
        "  batch, one core, from input values:  {:>12} rows/s",
        thousands(via_values)
    );
    println!(
        "  single row (predict_row) p50 / p99:  {p50:>8.2} / {p99:.2} µs   [target p50 <= 10 µs]"
    );
    println!("  single row (predict_json) p50 / p99: {j50:>8.2} / {j99:.2} µs");
    if model.explainable().is_ok() {
        let borrowed: Vec<Vec<Value<'_>>> = values.iter().map(|r| borrow(r)).collect();
        let (e50, e99) = percentiles(args.single.min(2000), |i| {
            std::hint::black_box(
                model
                    .explain_row(&borrowed[i % borrowed.len()])
                    .expect("valid"),
            );
        });
        println!("  explanation (exact TreeSHAP, explain_row) p50 / p99: {e50:>8.1} / {e99:.1} µs");
    }
    println!();
    Ok(())
}

/// Section 3: the original's XGBoost model imported into augur, against xgboost; prints it.
fn imported_vs_xgboost(root: &Path, rows: &[Row], args: &Args) -> anyhow::Result<()> {
    let xgb_dir = root.join("crates/augur-model/tests/fixtures/xgboost");
    let spec: PipelineSpec =
        serde_json::from_slice(&std::fs::read(xgb_dir.join("features.json"))?)?;
    let imported = Model::from_xgboost(
        "xgb-original",
        &std::fs::read(xgb_dir.join("model.json"))?,
        "model.json",
        spec,
    )?;
    let ivalues = rows_to_values(&imported, rows)?;
    let ix = features(&imported, &ivalues)?;
    let n = args
        .batch
        .min(ix.len() / imported.pipeline().num_columns())
        .max(1);
    let ibatch = batch_rows_per_s(&imported, &ix, args.batch);
    let (i50, i99) = single_forest(&imported, &ix, args.single);
    let theirs = if args.no_python {
        Err(anyhow::anyhow!("--no-python"))
    } else {
        python_xgboost(root, &xgb_dir, &imported, &ix, n)
    };
    println!(
        "imported XGBoost model (the original's 100 trees, {} nodes), predicting the same float32 rows:",
        imported.forest().num_nodes()
    );
    let ours = Ours {
        batch: ibatch,
        p50: i50,
        p99: i99,
    };
    match theirs {
        Ok(py) => print_comparison(&imported, &ix, n, &ours, &py),
        Err(e) => {
            println!(
                "  augur: batch {} rows/s, single row p50 {:.2} µs, p99 {:.2} µs",
                thousands(ours.batch),
                ours.p50,
                ours.p99
            );
            println!("  xgboost comparison skipped: {e:#}");
        }
    }
    Ok(())
}

/// Prints augur against xgboost with ratios, and their largest difference on `ix`'s `n` rows.
fn print_comparison(imported: &Model, ix: &[f32], n: usize, ours: &Ours, py: &PyResult) {
    let mut preds = vec![0.0f32; n];
    imported
        .forest()
        .predict_batch(&ix[..n * imported.pipeline().num_columns()], &mut preds);
    let diff = preds
        .iter()
        .zip(&py.pred)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    println!(
        "  {:<26} {:>14} {:>14} {:>8}",
        "",
        "augur",
        format!("xgboost {}", py.version),
        "ratio"
    );
    println!(
        "  {:<26} {:>14} {:>14} {:>7.2}x",
        "batch rows/s, one core",
        thousands(ours.batch),
        thousands(py.batch),
        ours.batch / py.batch
    );
    println!(
        "  {:<26} {:>14.2} {:>14.2} {:>7.1}x",
        "single row p50 µs",
        ours.p50,
        py.p50,
        py.p50 / ours.p50
    );
    println!(
        "  {:<26} {:>14.2} {:>14.2} {:>7.1}x",
        "single row p99 µs",
        ours.p99,
        py.p99,
        py.p99 / ours.p99
    );
    println!("  max abs difference of the {n} predictions: {diff}");
}

/// The clean Ford rows as JSON objects.
fn ford_rows(path: &Path) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let table = Table::read_csv(path)?;
    let (cols, _) = prepare(&FeatureSpec::ford(), &table, 10)?;
    let mut out = Vec::with_capacity(cols.len());
    for r in 0..cols.len() {
        let mut obj = serde_json::Map::new();
        for (name, col) in cols.names.iter().zip(&cols.fields) {
            let v = match col {
                augur_model::features::ColumnData::Numeric(v) => serde_json::json!(v[r]),
                augur_model::features::ColumnData::Categorical(v) => serde_json::json!(v[r]),
            };
            obj.insert(name.clone(), v);
        }
        out.push(obj);
    }
    Ok(out)
}

/// The XGBoost fixture's rows (used when the data set is absent).
fn fixture_rows(root: &Path) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let path = root.join("crates/augur-model/tests/fixtures/xgboost/rows.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// Owned input values per row, in the model's input order.
#[derive(Debug, Clone)]
enum Owned {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
}

/// Reads the model's inputs out of every row.
fn rows_to_values(
    model: &Model,
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> anyhow::Result<Vec<Vec<Owned>>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut vals = Vec::new();
    for r in rows {
        model.values_from_json(r, &mut vals)?;
        out.push(
            vals.iter()
                .map(|v| match v {
                    Value::Number(x) => Owned::Number(*x),
                    Value::Text(s) => Owned::Text(s.to_string()),
                    Value::Missing => Owned::Number(f64::NAN),
                })
                .collect(),
        );
    }
    Ok(out)
}

/// Borrowed values of one row.
fn borrow(row: &[Owned]) -> Vec<Value<'_>> {
    row.iter()
        .map(|v| match v {
            Owned::Number(x) => Value::Number(*x),
            Owned::Text(s) => Value::Text(s),
        })
        .collect()
}

/// The feature matrix of every row.
fn features(model: &Model, rows: &[Vec<Owned>]) -> anyhow::Result<Vec<f32>> {
    let nc = model.pipeline().num_columns();
    let mut x = vec![0.0f32; rows.len() * nc];
    for (i, r) in rows.iter().enumerate() {
        model
            .pipeline()
            .transform(&borrow(r), &mut x[i * nc..(i + 1) * nc])?;
    }
    Ok(x)
}

/// Rows of `x` cycled up to `n` rows.
fn cycled(x: &[f32], nc: usize, n: usize) -> Vec<f32> {
    x.chunks(nc).cycle().take(n).flatten().copied().collect()
}

/// Best-of-5 rows/s of `Forest::predict_batch` on batches of `n` rows.
fn batch_rows_per_s(model: &Model, x: &[f32], n: usize) -> f64 {
    let nc = model.pipeline().num_columns();
    let x = cycled(x, nc, n);
    let mut out = vec![0.0f32; n];
    model.forest().predict_batch(&x, &mut out);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let mut reps = 0;
        while started.elapsed().as_secs_f64() < 0.2 || reps == 0 {
            model.forest().predict_batch(&x, &mut out);
            std::hint::black_box(&out);
            reps += 1;
        }
        best = best.min(started.elapsed().as_secs_f64() / reps as f64);
    }
    n as f64 / best
}

/// Best-of-5 rows/s of `Model::predict_batch` from input values (feature pipeline included).
fn values_rows_per_s(model: &Model, rows: &[Vec<Owned>], n: usize) -> f64 {
    let flat: Vec<Value<'_>> = rows
        .iter()
        .cycle()
        .take(n)
        .flat_map(|r| borrow(r))
        .collect();
    let mut out = vec![0.0f64; n];
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let errors = model.predict_batch(&flat, &mut out).expect("shape");
        assert!(errors.is_empty());
        std::hint::black_box(&out);
        best = best.min(started.elapsed().as_secs_f64());
    }
    n as f64 / best
}

/// p50 and p99 (µs) of a timed closure over `n` calls.
fn percentiles(n: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    for i in 0..n.min(1000) {
        f(i);
    }
    let mut ns: Vec<u64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

/// Single-row latency of `Model::predict_row` (feature pipeline included).
fn single_row(model: &Model, rows: &[Vec<Owned>], n: usize) -> (f64, f64) {
    let borrowed: Vec<Vec<Value<'_>>> = rows.iter().map(|r| borrow(r)).collect();
    percentiles(n, |i| {
        std::hint::black_box(
            model
                .predict_row(&borrowed[i % borrowed.len()])
                .expect("valid"),
        );
    })
}

/// Single-row latency of `Model::predict_json`.
fn single_json(
    model: &Model,
    rows: &[serde_json::Map<String, serde_json::Value>],
    n: usize,
) -> (f64, f64) {
    percentiles(n, |i| {
        std::hint::black_box(model.predict_json(&rows[i % rows.len()]).expect("valid"));
    })
}

/// Single-row latency of the evaluator alone, on ready features (what xgboost's
/// `inplace_predict` of one row does).
fn single_forest(model: &Model, x: &[f32], n: usize) -> (f64, f64) {
    let nc = model.pipeline().num_columns();
    let rows = x.len() / nc;
    percentiles(n, |i| {
        let r = i % rows;
        std::hint::black_box(model.forest().predict_row(&x[r * nc..(r + 1) * nc]));
    })
}

/// What the Python side measured.
#[derive(Debug, serde::Deserialize)]
struct PyResult {
    /// xgboost's version.
    version: String,
    /// Best-of-5 batch rows/s.
    batch: f64,
    /// Single-row p50, µs.
    p50: f64,
    /// Single-row p99, µs.
    p99: f64,
    /// Its predictions of the batch.
    pred: Vec<f64>,
}

/// The Python side: load the booster, score the same float32 matrix with nthread=1.
const PY: &str = r#"
import json, sys, time
import numpy as np, xgboost as xgb
model, xfile, n, nc, single = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
x = np.fromfile(xfile, dtype="<f4").reshape(n, nc)
b = xgb.Booster(model_file=model)
b.set_param({"nthread": 1})
pred = b.inplace_predict(x)
best = float("inf")
for _ in range(5):
    t = time.perf_counter(); reps = 0
    while reps == 0 or time.perf_counter() - t < 0.2:
        b.inplace_predict(x); reps += 1
    best = min(best, (time.perf_counter() - t) / reps)
lat = []
for i in range(single):
    row = x[i % n : i % n + 1]
    t = time.perf_counter_ns(); b.inplace_predict(row); lat.append(time.perf_counter_ns() - t)
lat = sorted(lat[min(1000, single // 10):])
pct = lambda q: lat[int((len(lat) - 1) * q)] / 1000.0
print(json.dumps({"version": xgb.__version__, "batch": n / best, "p50": pct(0.5), "p99": pct(0.99),
                  "pred": [float(p) for p in pred]}))
"#;

/// Runs xgboost on the same model and rows, installing it into `target/pydeps` if needed.
fn python_xgboost(
    root: &Path,
    xgb_dir: &Path,
    model: &Model,
    x: &[f32],
    n: usize,
) -> anyhow::Result<PyResult> {
    let pydeps = root.join("target/pydeps");
    let python = |args: &[&str]| {
        let mut c = Command::new("python3");
        c.args(args)
            .env("PYTHONPATH", &pydeps)
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .env("OMP_NUM_THREADS", "1");
        c
    };
    let importable = python(&["-c", "import xgboost, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !importable {
        eprintln!("installing xgboost into {} ...", pydeps.display());
        let status = python(&["-m", "pip", "install", "--quiet", "--target"])
            .arg(&pydeps)
            .args(["xgboost", "numpy"])
            .status()
            .context("running pip")?;
        anyhow::ensure!(
            status.success(),
            "pip install --target {} xgboost numpy failed",
            pydeps.display()
        );
    }
    let nc = model.pipeline().num_columns();
    let x = cycled(x, nc, n);
    let xfile = std::env::temp_dir().join(format!("augur-bench-x-{}.f32", std::process::id()));
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&xfile, bytes)?;
    let out = python(&["-c", PY])
        .arg(xgb_dir.join("model.json"))
        .arg(&xfile)
        .args([n.to_string(), nc.to_string(), "20000".to_string()])
        .output()
        .context("running python3")?;
    let _ = std::fs::remove_file(&xfile);
    anyhow::ensure!(
        out.status.success(),
        "python xgboost failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// A number with thousands separators.
fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The number of cores.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
