//! `augur train`, `augur predict` and `augur models`: the model store and price model commands.
//!
//! All of them take `--store DIR` (env `AUGUR_MODEL_STORE`; default `$AUGUR_HOME/models`, else
//! `~/.augur/models`). Reports and progress go to stderr; data (predictions, listings with
//! `--json`) to stdout.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use augur_model::data::{self, Table};
use augur_model::train::{self, TrainConfig};
use augur_model::{FeatureSpec, Model, ModelSource, ModelStore, TrainParams};

/// The store option shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArg {
    /// Model store folder [default: $AUGUR_HOME/models, else ~/.augur/models].
    #[arg(long, global = true, env = "AUGUR_MODEL_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
}

impl StoreArg {
    /// Opens the chosen store.
    fn open(&self) -> anyhow::Result<ModelStore> {
        Ok(match &self.store {
            Some(dir) => ModelStore::open(dir)?,
            None => ModelStore::open_default()?,
        })
    }
}

/// Arguments of `augur train`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// Training data: a CSV file with a header row.
    #[arg(
        long,
        env = "AUGUR_DATA",
        value_name = "CSV",
        required_unless_present = "print_spec"
    )]
    data: Option<PathBuf>,
    /// Model name; the model is saved as the next version `NAME:N`.
    #[arg(long, env = "AUGUR_TRAIN_NAME", default_value = "ford-price")]
    name: String,
    /// Column mapping, encodings and data checks as JSON [default: the Ford columns; see
    /// --print-spec].
    #[arg(long, env = "AUGUR_TRAIN_SPEC", value_name = "FILE")]
    spec: Option<PathBuf>,
    /// Print the feature spec in effect as JSON and exit.
    #[arg(long)]
    print_spec: bool,
    /// Override the spec's target column.
    #[arg(long, env = "AUGUR_TRAIN_TARGET", value_name = "COLUMN")]
    target: Option<String>,
    /// Trainer hyper-parameters as a JSON file (fields of `TrainParams`); flags below override.
    #[arg(long, env = "AUGUR_TRAIN_PARAMS", value_name = "FILE")]
    params: Option<PathBuf>,
    /// Boosting rounds.
    #[arg(long, env = "AUGUR_TRAIN_TREES")]
    trees: Option<usize>,
    /// Learning rate (shrinkage).
    #[arg(long, env = "AUGUR_TRAIN_LEARNING_RATE")]
    learning_rate: Option<f64>,
    /// Maximum tree depth.
    #[arg(long, env = "AUGUR_TRAIN_MAX_DEPTH")]
    max_depth: Option<u32>,
    /// Maximum leaves per tree.
    #[arg(long, env = "AUGUR_TRAIN_MAX_LEAVES")]
    max_leaves: Option<u32>,
    /// Row share sampled per tree.
    #[arg(long, env = "AUGUR_TRAIN_SUBSAMPLE")]
    subsample: Option<f64>,
    /// Feature share per tree.
    #[arg(long, env = "AUGUR_TRAIN_COLSAMPLE")]
    colsample: Option<f64>,
    /// Seed of the trainer's sampling.
    #[arg(long, env = "AUGUR_TRAIN_SEED")]
    seed: Option<u64>,
    /// Forests averaged into the model, each with its own seed.
    #[arg(long, env = "AUGUR_TRAIN_ENSEMBLE")]
    ensemble: Option<usize>,
    /// Cross-validation folds (0 = none).
    #[arg(long, env = "AUGUR_TRAIN_FOLDS", default_value_t = 5)]
    folds: usize,
    /// Seed of the fold assignment.
    #[arg(long, env = "AUGUR_TRAIN_CV_SEED", default_value_t = 42)]
    cv_seed: u64,
    /// Nominal coverage of the price range learned from the out-of-fold rows (0.8 = 80 %).
    #[arg(long, env = "AUGUR_TRAIN_RANGE_LEVEL", default_value_t = augur_model::interval::DEFAULT_LEVEL)]
    range_level: f64,
    /// Worker threads [default: all cores].
    #[arg(long, env = "AUGUR_TRAIN_THREADS")]
    threads: Option<usize>,
    /// Train and report, but do not save.
    #[arg(long, env = "AUGUR_TRAIN_NO_SAVE", value_parser = clap::builder::BoolishValueParser::new())]
    no_save: bool,
    /// Fail (exit code 2, nothing saved) if any row is excluded by the data checks.
    #[arg(long, env = "AUGUR_TRAIN_STRICT", value_parser = clap::builder::BoolishValueParser::new())]
    strict: bool,
    #[command(flatten)]
    store: StoreArg,
}

/// Arguments of `augur predict`.
#[derive(Debug, clap::Args)]
pub(crate) struct PredictArgs {
    /// The model tag (`name`, `name:latest`, `name:N` or `name@alias`).
    #[arg(long, env = "AUGUR_MODEL", default_value = augur_model::SHIPPED_MODEL)]
    model: String,
    /// Use this model file instead of the store (e.g. the shipped
    /// `models/ford-price/1/model.json`, or an export).
    #[arg(long, env = "AUGUR_MODEL_FILE", value_name = "FILE")]
    model_file: Option<PathBuf>,
    /// Read JSON lines from this file instead of stdin.
    #[arg(long, env = "AUGUR_PREDICT_INPUT", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Rows per predict call (`--batch` is the old spelling).
    #[arg(
        long = "batch-size",
        alias = "batch",
        env = "AUGUR_PREDICT_BATCH_SIZE",
        default_value_t = 1024
    )]
    batch: usize,
    /// Explain every price: the baseline and each field's effect on it (exact TreeSHAP).
    #[arg(long, env = "AUGUR_PREDICT_EXPLAIN", value_parser = clap::builder::BoolishValueParser::new())]
    explain: bool,
    #[command(flatten)]
    store: StoreArg,
}

/// Arguments of `augur models`.
#[derive(Debug, clap::Args)]
pub(crate) struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
    #[command(flatten)]
    store: StoreArg,
}

/// The `augur models` subcommands.
#[derive(Debug, clap::Subcommand)]
enum ModelsCommand {
    /// List every version of every model.
    List {
        /// Print JSON (one summary per line) instead of a table.
        #[arg(long, env = "AUGUR_MODELS_JSON", value_parser = clap::builder::BoolishValueParser::new())]
        json: bool,
    },
    /// Show one version: source, data hash, features, parameters, metrics.
    Show {
        /// `name`, `name:latest`, `name:N` or `name@alias`.
        tag: String,
        /// Print the metadata as JSON.
        #[arg(long, env = "AUGUR_MODELS_JSON", value_parser = clap::builder::BoolishValueParser::new())]
        json: bool,
    },
    /// Delete one version (`name:latest` deletes the newest) and its aliases; its number is
    /// never used again.
    Delete {
        /// `name:N`, `name:latest` or `name@alias`.
        tag: String,
    },
    /// Point an alias (`name@champion`, `name@challenger`, any name) at a version, or remove
    /// it; `name@alias` then works wherever a tag does.
    Alias {
        #[command(subcommand)]
        action: AliasCommand,
    },
    /// Point `name@ALIAS` (default `champion`) at TAG if TAG passes the promotion checks
    /// against the version the alias names now: the same input fields (always), and a
    /// cross-validated MAE at most --max-mae-increase worse (unless --force). Servers started
    /// with `--model name@ALIAS --watch` follow.
    Promote {
        /// The version to promote: `name:N`, `name:latest` or `name@alias`.
        tag: String,
        /// The alias to move.
        #[arg(long, env = "AUGUR_PROMOTE_ALIAS", default_value = "champion")]
        alias: String,
        /// Promote even if its cross-validated MAE is worse (inputs are still checked).
        #[arg(long, env = "AUGUR_PROMOTE_FORCE", value_parser = clap::builder::BoolishValueParser::new())]
        force: bool,
        /// The largest relative MAE increase accepted (0.02 = 2 %).
        #[arg(long, env = "AUGUR_PROMOTE_MAX_MAE_INCREASE", default_value_t = augur_model::promotion::DEFAULT_MAX_MAE_INCREASE)]
        max_mae_increase: f64,
    },
    /// Compare two versions: lineage and cross-validated metrics side by side, then how their
    /// prices differ on a sample of rows.
    Compare {
        /// The first model (`name:N`, `name@alias`, ...).
        a: String,
        /// The second model.
        b: String,
        /// CSV rows to price with both [default: A's training data file, if it is still there].
        #[arg(long, env = "AUGUR_COMPARE_DATA", value_name = "CSV")]
        data: Option<PathBuf>,
        /// How many rows to price, spread evenly over the file.
        #[arg(long, env = "AUGUR_COMPARE_SAMPLE", default_value_t = 1000)]
        sample: usize,
    },
    /// Write one version to a single file.
    Export {
        /// `name`, `name:latest`, `name:N` or `name@alias`.
        tag: String,
        /// Destination file.
        file: PathBuf,
    },
    /// Import an exported model file, or an XGBoost model with --xgboost.
    Import {
        /// An exported augur model file, or with --xgboost a `booster.save_model` JSON file.
        file: PathBuf,
        /// Store it under this name [default: its own name; required with --xgboost].
        #[arg(long, env = "AUGUR_MODELS_IMPORT_NAME")]
        name: Option<String>,
        /// FILE is an XGBoost JSON model.
        #[arg(long, env = "AUGUR_MODELS_IMPORT_XGBOOST", value_parser = clap::builder::BoolishValueParser::new(), requires = "features")]
        xgboost: bool,
        /// With --xgboost: the feature spec (JSON) that maps input fields to its columns.
        #[arg(long, env = "AUGUR_MODELS_IMPORT_FEATURES", value_name = "FILE")]
        features: Option<PathBuf>,
    },
}

/// Runs `augur train`.
pub(crate) fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let spec = train_spec(&args)?;
    if args.print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(ExitCode::SUCCESS);
    }
    let params = train_params(&args)?;
    let data_path = args.data.as_deref().expect("clap requires --data");
    // Open the store first: a bad --store fails before a training run, not after.
    let store = if args.no_save {
        None
    } else {
        Some(args.store.open()?)
    };

    let started = Instant::now();
    let table = Table::read_csv(data_path)?;
    let (columns, report) = data::prepare(&spec, &table, 10)?;
    if !report_data(&report, args.strict) {
        return Ok(ExitCode::from(2));
    }
    let cfg = TrainConfig {
        spec: spec.clone(),
        params: params.clone(),
        folds: args.folds,
        cv_seed: args.cv_seed,
        threads: args
            .threads
            .unwrap_or_else(|| TrainConfig::default().threads),
        interval_level: args.range_level,
    };
    let bar = Progress::new("training");
    let trained = train::train(&cfg, &columns, &|done, total| bar.update(done, total))?;
    bar.finish();
    let data_file = data_path.display().to_string();
    let model = Model::from_trained(
        &args.name,
        trained,
        spec,
        params,
        &data_file,
        &table.sha256,
        report,
    )?;
    print_metrics(&model);
    save_trained(store, model, started)?;
    Ok(ExitCode::SUCCESS)
}

/// The feature spec in effect: `--spec` (or the Ford default) with `--target` applied.
fn train_spec(args: &TrainArgs) -> anyhow::Result<FeatureSpec> {
    let mut spec = match &args.spec {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<FeatureSpec>(&text)
                .with_context(|| format!("parsing the feature spec {}", path.display()))?
        }
        None => FeatureSpec::ford(),
    };
    if let Some(t) = &args.target {
        spec.target = t.clone();
    }
    Ok(spec)
}

/// The validated hyper-parameters: `--params` (or the defaults) with the flags applied.
fn train_params(args: &TrainArgs) -> anyhow::Result<TrainParams> {
    let mut params = match &args.params {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<TrainParams>(&text)
                .with_context(|| format!("parsing the parameters {}", path.display()))?
        }
        None => TrainParams::default(),
    };
    macro_rules! set {
        ($($field:ident),*) => { $(if let Some(v) = args.$field { params.$field = v; })* };
    }
    set!(
        trees,
        learning_rate,
        max_depth,
        max_leaves,
        subsample,
        colsample,
        seed,
        ensemble
    );
    params.validate()?;
    Ok(params)
}

/// Prints the data report to stderr; `false` if `--strict` forbids training on it.
fn report_data(report: &data::DataReport, strict: bool) -> bool {
    eprint!("{report}");
    if report.excluded_rows > 0 {
        eprintln!("  policy: rows with problems are excluded from training and cross-validation");
    }
    if strict && report.excluded_rows > 0 {
        eprintln!(
            "error: --strict and {} rows were excluded",
            report.excluded_rows
        );
        return false;
    }
    true
}

/// Saves the trained model to `store` and prints its tag, or reports that it was not saved.
fn save_trained(store: Option<ModelStore>, model: Model, started: Instant) -> anyhow::Result<()> {
    match store {
        Some(store) => {
            let saved = store.save(model, None)?;
            let size = saved.to_json().len();
            eprintln!(
                "saved {} to {} ({}, {} trees, {} nodes) in {:.1} s",
                saved.tag(),
                store.root().display(),
                human_bytes(size as u64),
                saved.forest().num_trees(),
                saved.forest().num_nodes(),
                started.elapsed().as_secs_f64()
            );
            println!("{}", saved.tag());
        }
        None => eprintln!(
            "not saved (--no-save); {:.1} s",
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(())
}

/// Prints the cross-validation table (and the training-set metrics) to stderr.
fn print_metrics(model: &Model) {
    let ModelSource::Trained {
        cv,
        train_metrics,
        params,
        ..
    } = &model.meta().source
    else {
        return;
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err);
    match cv {
        Some(cv) => {
            let _ = writeln!(
                err,
                "{}-fold cross-validation (seed {}), {} rows, {} trees:",
                cv.folds, cv.seed, cv.pooled.rows, params.trees
            );
            let _ = writeln!(
                err,
                "  {:<8} {:>10} {:>10} {:>10}",
                "metric", "all folds", "best fold", "worst fold"
            );
            type Get = fn(&augur_model::Metrics) -> f64;
            let rows: [(&str, Get, bool); 4] = [
                ("MAE", |m| m.mae, false),
                ("RMSE", |m| m.rmse, false),
                ("R²", |m| m.r2, true),
                ("MAPE %", |m| m.mape, false),
            ];
            for (name, get, higher_better) in rows {
                let vals: Vec<f64> = cv.per_fold.iter().map(get).collect();
                let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let (best, worst) = if higher_better { (hi, lo) } else { (lo, hi) };
                let prec = if higher_better { 4 } else { 2 };
                let _ = writeln!(
                    err,
                    "  {name:<8} {:>10.prec$} {best:>10.prec$} {worst:>10.prec$}",
                    get(&cv.pooled)
                );
            }
        }
        None => {
            let _ = writeln!(err, "no cross-validation (--folds 0)");
        }
    }
    let _ = writeln!(
        err,
        "  training rows (optimistic): MAE {:.2}, RMSE {:.2}, R² {:.4}, MAPE {:.2} %",
        train_metrics.mae, train_metrics.rmse, train_metrics.r2, train_metrics.mape
    );
    if let Some(iv) = model.meta().interval() {
        let _ = writeln!(err, "{}", describe_range(iv));
    }
}

/// One line on a model's price range and how it did on out-of-fold rows.
pub(crate) fn describe_range(iv: &augur_model::PriceInterval) -> String {
    let e = &iv.evaluation;
    format!(
        "{:.0} % price range: covers {:.1} % of {} out-of-fold rows (cross-fitted), mean width \
         £{:.0} ({:.1} % of the price)",
        100.0 * iv.level,
        100.0 * e.coverage,
        e.rows,
        e.mean_width,
        100.0 * e.mean_relative_width
    )
}

/// A progress bar on stderr, drawn only when stderr is a terminal, at most 10 times a second.
struct Progress {
    /// The label before the bar.
    label: &'static str,
    /// Whether to draw at all.
    enabled: bool,
    /// When drawing started, and when it last drew.
    state: Mutex<(Instant, Option<Instant>)>,
}

impl Progress {
    /// A bar labelled `label`.
    fn new(label: &'static str) -> Self {
        Progress {
            label,
            enabled: std::io::stderr().is_terminal(),
            state: Mutex::new((Instant::now(), None)),
        }
    }

    /// Records progress; redraws if due.
    fn update(&self, done: usize, total: usize) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if done < total
            && state
                .1
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        state.1 = Some(now);
        let width = 30;
        let filled = done * width / total.max(1);
        eprint!(
            "\r{} [{}{}] {:>3}% {done}/{total} trees {:.1} s ",
            self.label,
            "#".repeat(filled),
            "-".repeat(width - filled),
            done * 100 / total.max(1),
            (now - state.0).as_secs_f64()
        );
    }

    /// Ends the bar's line.
    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}

/// Bytes as B, KB or MB.
fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// Runs `augur predict`.
pub(crate) fn predict(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let model = predict_model(&args)?;
    let input = predict_input(&args)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.explain {
        model.explainable()?;
    }
    let mut batches = Batches {
        model: &model,
        explain: args.explain,
        rows: 0,
        failed: 0,
    };
    let mut lines = Vec::with_capacity(args.batch.max(1));
    // On a terminal, a progress line on stderr (rewritten in place) every half second.
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = std::time::Instant::now();
    let mut shown = started;
    let mut read = 0u64;
    for (i, line) in input.lines().enumerate() {
        let line = line.context("reading input")?;
        if line.trim().is_empty() {
            continue;
        }
        lines.push((i + 1, line));
        read += 1;
        if lines.len() >= args.batch.max(1) {
            batches.flush(&mut lines, &mut out)?;
            if progress && shown.elapsed() >= std::time::Duration::from_millis(500) {
                shown = std::time::Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                eprint!("\r{read} rows, {:.0} rows/s ", read as f64 / secs);
            }
        }
    }
    batches.flush(&mut lines, &mut out)?;
    out.flush()?;
    if progress && shown != started {
        eprint!("\r\x1b[K");
    }
    let Batches { rows, failed, .. } = batches;
    eprintln!(
        "{}: {rows} rows, {} predicted, {failed} with errors",
        model.tag(),
        rows - failed
    );
    Ok(ExitCode::SUCCESS)
}

/// The model `augur predict` uses: `--model-file`, else the tag from `--store`, else the tag
/// from the user's store or the shipped model.
fn predict_model(args: &PredictArgs) -> anyhow::Result<std::sync::Arc<Model>> {
    Ok(match (&args.model_file, &args.store.store) {
        (Some(path), _) => std::sync::Arc::new(Model::load_file(path)?),
        (None, Some(_)) => {
            let store = args.store.open()?;
            std::sync::Arc::new(store.load(&args.model).with_context(|| {
                format!(
                    "store {} (train a model with `augur train`, or leave --store out for the \
                     model compiled into augur)",
                    store.root().display()
                )
            })?)
        }
        // No store named: the user's store if it has the tag, else the shipped model.
        (None, None) => augur_runtime::models::load(&args.model, None)?,
    })
}

/// The input of `augur predict`: `--input`, else stdin.
fn predict_input(args: &PredictArgs) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(match &args.input {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    })
}

/// Predicts batches of input lines and writes one JSON result per line, counting rows.
struct Batches<'a> {
    /// The model predicting.
    model: &'a Model,
    /// Explain every price (--explain).
    explain: bool,
    /// Lines written so far.
    rows: usize,
    /// Of those, lines with an error.
    failed: usize,
}

impl Batches<'_> {
    /// Prices (and with --explain explains) a batch of objects: one JSON result per object.
    fn price(
        &self,
        objects: &[&serde_json::Map<String, serde_json::Value>],
    ) -> Vec<Result<serde_json::Value, (String, Option<String>)>> {
        if !self.explain {
            let prices = self.model.predict_json_batch(objects);
            return prices
                .into_iter()
                .map(|p| {
                    p.map(|p| self.result(p))
                        .map_err(|e| (e.to_string(), Some(e.field)))
                })
                .collect();
        }
        objects
            .iter()
            .map(|o| match self.model.explain_json(o) {
                Ok(e) => Ok(self.explained(&e)),
                Err(augur_model::ExplainError::Field(f)) => Err((f.to_string(), Some(f.field))),
                Err(e) => Err((e.to_string(), None)),
            })
            .collect()
    }

    /// One priced row: the prediction and, when the model has one, its price range.
    fn result(&self, price: f64) -> serde_json::Value {
        match self.model.range(price) {
            Some((lo, hi)) => {
                serde_json::json!({ "prediction": cents(price), "range": [cents(lo), cents(hi)] })
            }
            None => serde_json::json!({ "prediction": cents(price) }),
        }
    }

    /// One explained row: the priced row, the baseline and the contributions, largest first.
    fn explained(&self, e: &augur_model::Explanation) -> serde_json::Value {
        let mut v = self.result(e.prediction);
        let mut parts: Vec<_> = e.contributions.iter().collect();
        parts.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
        v["baseline"] = serde_json::json!(cents(e.baseline));
        v["contributions"] = parts
            .iter()
            .map(|c| serde_json::json!({"field": c.field, "effect": cents(c.effect), "score": c.score}))
            .collect();
        v
    }

    /// Predicts `lines` (line number, text), writes their results to `out` and empties it.
    fn flush(
        &mut self,
        lines: &mut Vec<(usize, String)>,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        // Parse the batch; lines that are not JSON objects get their error right away.
        let parsed: Vec<Result<serde_json::Map<String, serde_json::Value>, String>> =
            lines.iter().map(|(_, l)| parse_object(l)).collect();
        let objects: Vec<&serde_json::Map<String, serde_json::Value>> =
            parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
        let mut predictions = self.price(&objects).into_iter();
        for ((line, _), p) in lines.iter().zip(&parsed) {
            self.rows += 1;
            let result = match p {
                Ok(_) => predictions.next().expect("one result per object"),
                Err(e) => Err((e.clone(), None)),
            };
            let value = match result {
                Ok(priced) => priced,
                Err((error, field)) => {
                    self.failed += 1;
                    serde_json::json!({ "line": line, "error": error, "field": field })
                }
            };
            serde_json::to_writer(&mut *out, &value)?;
            out.write_all(b"\n")?;
        }
        lines.clear();
        Ok(())
    }
}

/// A price rounded to cents.
fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One input line as a JSON object, or the error to report for it.
fn parse_object(line: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("not a JSON object".to_string()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// `augur models alias` actions.
#[derive(Debug, clap::Subcommand)]
enum AliasCommand {
    /// Point `name@alias` at version N (moving it if it pointed elsewhere).
    Set {
        /// `name@alias`, e.g. `ford-price@champion`.
        tag: String,
        /// The version it points at.
        version: u64,
    },
    /// Remove `name@alias`.
    Delete {
        /// `name@alias`.
        tag: String,
    },
}

/// Prints every version of every model, as a table or JSON lines.
fn print_list(store: &ModelStore, json: bool) -> anyhow::Result<()> {
    let list = store.list()?;
    if json {
        for m in &list {
            println!("{}", serde_json::to_string(m)?);
        }
        return Ok(());
    }
    println!(
        "{:<28} {:<21} {:<8} {:>9} {:>9}  ALIASES",
        "TAG", "CREATED", "SOURCE", "CV MAE", "SIZE"
    );
    for m in &list {
        let (source, mae) = match &m.meta.source {
            ModelSource::Trained { cv, .. } => (
                "trained",
                cv.as_ref().map(|c| format!("{:.1}", c.pooled.mae)),
            ),
            ModelSource::Xgboost { .. } => ("xgboost", None),
        };
        println!(
            "{:<28} {:<21} {:<8} {:>9} {:>9}  {}",
            m.tag,
            m.meta.created_at,
            source,
            mae.unwrap_or_else(|| "-".into()),
            human_bytes(m.size_bytes),
            m.aliases.join(",")
        );
    }
    if list.is_empty() {
        eprintln!("no models in {}", store.root().display());
    }
    Ok(())
}

/// Runs `augur models alias`.
fn alias(store: &ModelStore, action: AliasCommand) -> anyhow::Result<()> {
    match action {
        AliasCommand::Set { tag, version } => match store.set_alias(&tag, version)? {
            Some(before) if before != version => {
                eprintln!("{tag} now points at version {version} (was {before})")
            }
            _ => eprintln!("{tag} points at version {version}"),
        },
        AliasCommand::Delete { tag } => {
            let v = store.delete_alias(&tag)?;
            eprintln!("removed {tag} (pointed at version {v})");
        }
    }
    Ok(())
}

/// Runs `augur models`.
pub(crate) fn models(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open()?;
    match args.command {
        ModelsCommand::List { json } => print_list(&store, json)?,
        ModelsCommand::Alias { action } => alias(&store, action)?,
        ModelsCommand::Promote {
            tag,
            alias,
            force,
            max_mae_increase,
        } => {
            let policy = augur_model::PromotionPolicy {
                max_mae_increase,
                force,
            };
            super::lifecycle::promote(&store, &tag, &alias, policy)?
        }
        ModelsCommand::Compare { a, b, data, sample } => {
            super::lifecycle::compare(&store, &a, &b, data.as_deref(), sample)?
        }
        ModelsCommand::Show { tag, json } => {
            let model = store.load(&tag)?;
            if json {
                println!("{}", serde_json::to_string_pretty(model.meta())?);
            } else {
                show(&model);
            }
        }
        ModelsCommand::Delete { tag } => {
            let deleted = store.delete(&tag)?;
            eprintln!("deleted {deleted}");
        }
        ModelsCommand::Export { tag, file } => {
            let tag = store.export(&tag, &file)?;
            eprintln!("exported {tag} to {}", file.display());
        }
        ModelsCommand::Import {
            file,
            name,
            xgboost,
            features,
        } => {
            let model = if xgboost {
                let name = name
                    .as_deref()
                    .context("--name is required with --xgboost")?;
                let features = features.as_deref().expect("clap requires --features");
                store.import_xgboost(&file, features, name)?
            } else {
                store.import(&file, name.as_deref())?
            };
            eprintln!("imported {} as {}", file.display(), model.tag());
            println!("{}", model.tag());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a readable description of a model.
fn show(model: &Model) {
    let m = model.meta();
    println!("tag:            {}", model.tag());
    println!("created:        {}", m.created_at);
    println!("augur version:  {}", m.augur_version);
    match &m.source {
        ModelSource::Trained {
            data_file,
            data_sha256,
            data_report,
            params,
            cv,
            train_seconds,
            ..
        } => {
            println!("source:         trained on {data_file}");
            println!("data sha256:    {data_sha256}");
            println!(
                "data rows:      {} read, {} used, {} excluded",
                data_report.total_rows, data_report.used_rows, data_report.excluded_rows
            );
            println!(
                "parameters:     {}",
                serde_json::to_string(params).unwrap_or_default()
            );
            println!("training time:  {train_seconds:.2} s");
            if let Some(cv) = cv {
                let p = &cv.pooled;
                println!(
                    "cv ({} folds):   MAE {:.2}, RMSE {:.2}, R² {:.4}, MAPE {:.2} % (seed {})",
                    cv.folds, p.mae, p.rmse, p.r2, p.mape, cv.seed
                );
            }
            if let Some(iv) = m.interval() {
                println!("range:          {}", describe_range(iv));
            }
        }
        ModelSource::Xgboost {
            file,
            file_sha256,
            objective,
            xgboost_version,
        } => {
            println!("source:         xgboost {xgboost_version} model {file} ({objective})");
            println!("file sha256:    {file_sha256}");
        }
    }
    let inputs: Vec<String> = model
        .input_fields()
        .iter()
        .map(|f| {
            format!("{} ({:?})", f.name, f.kind)
                .to_lowercase()
                .replacen(&f.name.to_lowercase(), &f.name, 1)
        })
        .collect();
    println!("inputs:         {}", inputs.join(", "));
    println!(
        "features:       {}",
        model.pipeline().column_names().join(", ")
    );
    println!("output:         {:?}", model.pipeline().output());
    println!(
        "trees:          {} ({} nodes)",
        model.forest().num_trees(),
        model.forest().num_nodes()
    );
}
