//! `augur models promote` and `augur models compare`: moving an alias through the promotion
//! checks, and two versions side by side.

use std::path::{Path, PathBuf};

use anyhow::Context;
use augur_model::data::Table;
use augur_model::{Model, ModelError, ModelSource, ModelStore, PromotionPolicy};

/// Runs `augur models promote TAG --alias ALIAS`: checks TAG against what `name@ALIAS` points
/// at now (input signature always; cross-validated MAE unless `force`) and moves the alias.
pub(crate) fn promote(
    store: &ModelStore,
    tag: &str,
    alias: &str,
    policy: PromotionPolicy,
) -> anyhow::Result<()> {
    policy.validate().map_err(anyhow::Error::msg)?;
    let candidate = store.load(tag)?;
    let name = &candidate.meta().name;
    let alias_tag = format!("{name}@{alias}");
    match store.load(&alias_tag) {
        Ok(current) if current.tag() == candidate.tag() => {
            eprintln!("{alias_tag} already points at {}", candidate.tag());
            return Ok(());
        }
        Ok(current) => augur_model::promotion::check(&current, &candidate, &policy)
            .map_err(|r| anyhow::anyhow!("refused to promote {tag} to {alias_tag}: {r}"))?,
        Err(ModelError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let version = candidate.meta().version;
    match store.set_alias(&alias_tag, version)? {
        Some(before) => eprintln!("{alias_tag} now points at version {version} (was {before})"),
        None => eprintln!("{alias_tag} points at version {version}"),
    }
    Ok(())
}

/// Runs `augur models compare A B`: metrics side by side, then the price differences on up to
/// `sample` rows of `data` (default: A's training data file, when it is still there).
pub(crate) fn compare(
    store: &ModelStore,
    a: &str,
    b: &str,
    data: Option<&Path>,
    sample: usize,
) -> anyhow::Result<()> {
    let (a, b) = (store.load(a)?, store.load(b)?);
    print_side_by_side(&a, &b);
    let data = match data {
        Some(p) => p.to_path_buf(),
        None => match training_file(&a).filter(|p| p.is_file()) {
            Some(p) => p,
            None => {
                println!("\nno data to compare predictions on: pass --data CSV");
                return Ok(());
            }
        },
    };
    let table = Table::read_csv(&data).with_context(|| format!("reading {}", data.display()))?;
    let diffs = PriceDiffs::measure(&a, &b, &table, sample);
    println!(
        "\npredictions on {} ({} rows sampled):",
        data.display(),
        diffs.rows
    );
    diffs.print(&a, &b);
    Ok(())
}

/// The training data file a model records, if it was trained by augur.
fn training_file(m: &Model) -> Option<PathBuf> {
    match &m.meta().source {
        ModelSource::Trained { data_file, .. } => Some(PathBuf::from(data_file)),
        ModelSource::Xgboost { .. } => None,
    }
}

/// One line per property: the two models' values in two columns.
fn print_side_by_side(a: &Model, b: &Model) {
    let line = |what: &str, x: String, y: String| println!("{what:<16} {x:<34} {y}");
    line("", a.tag().into(), b.tag().into());
    line(
        "created",
        a.meta().created_at.clone(),
        b.meta().created_at.clone(),
    );
    line("source", source(a), source(b));
    line("data sha256", data_hash(a), data_hash(b));
    line("data rows used", rows_used(a), rows_used(b));
    let cv = |m: &Model, f: &dyn Fn(&augur_model::Metrics) -> String| {
        m.meta().cv().map(|c| f(&c.pooled)).unwrap_or("-".into())
    };
    line(
        "cv MAE",
        cv(a, &|m| format!("{:.2}", m.mae)),
        cv(b, &|m| format!("{:.2}", m.mae)),
    );
    line(
        "cv RMSE",
        cv(a, &|m| format!("{:.2}", m.rmse)),
        cv(b, &|m| format!("{:.2}", m.rmse)),
    );
    line(
        "cv R²",
        cv(a, &|m| format!("{:.4}", m.r2)),
        cv(b, &|m| format!("{:.4}", m.r2)),
    );
    line(
        "cv MAPE",
        cv(a, &|m| format!("{:.2} %", m.mape)),
        cv(b, &|m| format!("{:.2} %", m.mape)),
    );
    let trees = |m: &Model| {
        format!(
            "{} ({} nodes)",
            m.forest().num_trees(),
            m.forest().num_nodes()
        )
    };
    line("trees", trees(a), trees(b));
    let inputs = augur_model::promotion::signature_difference(a.input_fields(), b.input_fields());
    println!(
        "{:<16} {}",
        "inputs",
        inputs.map_or("the same".into(), |d| format!("differ: {d}"))
    );
}

/// Where a model came from, in a few words.
fn source(m: &Model) -> String {
    match &m.meta().source {
        ModelSource::Trained { data_file, .. } => format!("trained on {data_file}"),
        ModelSource::Xgboost { file, .. } => format!("xgboost {file}"),
    }
}

/// The first 12 hex digits of the training data's (or imported file's) hash.
fn data_hash(m: &Model) -> String {
    let h = match &m.meta().source {
        ModelSource::Trained { data_sha256, .. } => data_sha256,
        ModelSource::Xgboost { file_sha256, .. } => file_sha256,
    };
    h.chars().take(12).collect()
}

/// The rows a trained model used, of those read.
fn rows_used(m: &Model) -> String {
    match &m.meta().source {
        ModelSource::Trained { data_report, .. } => {
            format!("{} of {}", data_report.used_rows, data_report.total_rows)
        }
        ModelSource::Xgboost { .. } => "-".into(),
    }
}

/// How two models' prices differ on a sample of rows.
struct PriceDiffs {
    /// Rows sampled.
    rows: usize,
    /// Rows both models priced.
    both: usize,
    /// Rows only one model could price (the other refused the inputs).
    one_failed: usize,
    /// |a − b| per row both priced, with the row's line number and the two prices.
    diffs: Vec<(f64, usize, f64, f64)>,
}

impl PriceDiffs {
    /// Prices up to `sample` rows, evenly spread over the table, with both models.
    fn measure(a: &Model, b: &Model, table: &Table, sample: usize) -> PriceDiffs {
        let n = table.records.len();
        let take = sample.clamp(1, n.max(1)).min(n);
        let mut out = PriceDiffs {
            rows: take,
            both: 0,
            one_failed: 0,
            diffs: Vec::with_capacity(take),
        };
        for k in 0..take {
            let rec = &table.records[k * n / take];
            let row: serde_json::Map<String, serde_json::Value> = table
                .header
                .iter()
                .zip(&rec.fields)
                .map(|(h, v)| (h.clone(), serde_json::Value::String(v.clone())))
                .collect();
            match (a.predict_json(&row), b.predict_json(&row)) {
                (Ok(x), Ok(y)) => {
                    out.both += 1;
                    out.diffs.push(((x - y).abs(), rec.line, x, y));
                }
                (Ok(_), Err(_)) | (Err(_), Ok(_)) => out.one_failed += 1,
                (Err(_), Err(_)) => {}
            }
        }
        out
    }

    /// Prints the summary and the rows that differ most.
    fn print(mut self, a: &Model, b: &Model) {
        if self.both == 0 {
            println!(
                "  no row was priced by both models ({} by one only)",
                self.one_failed
            );
            return;
        }
        let n = self.both as f64;
        let mean = self.diffs.iter().map(|d| d.0).sum::<f64>() / n;
        let rel = |d: &(f64, usize, f64, f64)| d.0 / d.2.abs().max(1.0);
        let mean_pct = 100.0 * self.diffs.iter().map(rel).sum::<f64>() / n;
        let over5 = self.diffs.iter().filter(|d| rel(d) > 0.05).count();
        self.diffs.sort_by(|x, y| y.0.total_cmp(&x.0));
        println!("  priced by both:        {}", self.both);
        println!("  priced by one only:    {}", self.one_failed);
        println!("  mean |difference|:     £{mean:.2} ({mean_pct:.2} %)");
        println!("  largest difference:    £{:.2}", self.diffs[0].0);
        println!(
            "  differ by more than 5 %: {over5} ({:.1} %)",
            100.0 * over5 as f64 / n
        );
        println!("  most different rows:");
        for (d, line, x, y) in self.diffs.iter().take(3) {
            println!(
                "    line {line}: {} £{x:.0}, {} £{y:.0} (£{d:.0} apart)",
                a.tag(),
                b.tag()
            );
        }
    }
}
