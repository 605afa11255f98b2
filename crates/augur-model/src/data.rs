//! Training data: a small CSV reader, and the data checks that decide which rows are used.
//!
//! # Bad-row policy
//!
//! A row is **excluded from training and cross-validation** when any of these hold:
//! - it has the wrong number of fields;
//! - a field the spec uses (an input or the target) is empty, or a numeric one does not parse
//!   as a finite number;
//! - it breaks one of the spec's [`Check`]s (for the Ford data: a year before 1900 or after next
//!   year, negative mileage or tax, a price or mpg that is not positive, engine size 0 for a car
//!   that is not electric).
//!
//! Nothing is excluded silently: [`DataReport`] counts every problem, with the first line numbers
//! and a few examples, and `augur train` prints it. Rows are never repaired or imputed. Training
//! fails only when too few rows remain.

use std::fmt;
use std::path::Path;

use crate::error::ModelError;
use crate::features::{Check, ColumnData, Columns, FeatureSpec, FieldType};

/// How many line numbers and examples a [`ProblemSummary`] keeps.
const KEEP: usize = 5;

/// A parsed CSV file: a header and string records with their line numbers.
#[derive(Debug, Clone)]
pub struct Table {
    /// The column names.
    pub header: Vec<String>,
    /// The data records.
    pub records: Vec<Record>,
    /// SHA-256 of the file's bytes, hex (the "training-data hash" of a model version).
    pub sha256: String,
}

/// One CSV record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The 1-based line where the record starts (the header is line 1).
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

impl Table {
    /// Reads and parses a CSV file.
    pub fn read_csv(path: &Path) -> Result<Table, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io("reading", path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| ModelError::Csv {
            path: path.into(),
            message: "not UTF-8 text".into(),
        })?;
        Table::parse_csv(&text).map_err(|message| ModelError::Csv {
            path: path.into(),
            message,
        })
    }

    /// Parses CSV text (RFC 4180: commas, double quotes with `""` escapes, LF or CRLF).
    pub fn parse_csv(text: &str) -> Result<Table, String> {
        let sha256 = crate::sha256::hex(text.as_bytes());
        let mut records = Vec::new();
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut line = 1;
        let mut start_line = 1;
        let mut chars = text.chars().peekable();
        let mut any = false;
        while let Some(c) = chars.next() {
            any = true;
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() => in_quotes = true,
                ',' => fields.push(std::mem::take(&mut field)),
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    fields.push(std::mem::take(&mut field));
                    records.push(Record {
                        line: start_line,
                        fields: std::mem::take(&mut fields),
                    });
                    line += 1;
                    start_line = line;
                    any = false;
                }
                _ => field.push(c),
            }
        }
        if in_quotes {
            return Err(format!(
                "unterminated quote in the record starting on line {start_line}"
            ));
        }
        if any {
            fields.push(field);
            records.push(Record {
                line: start_line,
                fields,
            });
        }
        // Blank lines are not records.
        records.retain(|r| !(r.fields.len() == 1 && r.fields[0].trim().is_empty()));
        if records.is_empty() {
            return Err("no header".into());
        }
        let header = records
            .remove(0)
            .fields
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        Ok(Table {
            header,
            records,
            sha256,
        })
    }

    /// The index of a column by name (exact, else ignoring ASCII case).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name).or_else(|| {
            self.header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
        })
    }
}

/// Counts and examples of one kind of problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProblemSummary {
    /// What is wrong, e.g. `year: after 2027` or `engineSize: not positive`.
    pub problem: String,
    /// How many rows have it.
    pub rows: usize,
    /// The first few line numbers.
    pub lines: Vec<usize>,
    /// The first few examples, e.g. `line 17728: year = 2060`.
    pub examples: Vec<String>,
}

/// What the data checks found: how many rows were read, used and excluded, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataReport {
    /// Data rows read (header excluded).
    pub total_rows: usize,
    /// Rows used for training.
    pub used_rows: usize,
    /// Rows excluded (each counted once, whatever its number of problems).
    pub excluded_rows: usize,
    /// One entry per kind of problem, in order of first appearance.
    pub problems: Vec<ProblemSummary>,
}

impl DataReport {
    /// Records one problem of a row.
    fn add(&mut self, problem: String, line: usize, example: String) {
        let entry = match self.problems.iter().position(|p| p.problem == problem) {
            Some(i) => &mut self.problems[i],
            None => {
                self.problems.push(ProblemSummary {
                    problem,
                    rows: 0,
                    lines: vec![],
                    examples: vec![],
                });
                self.problems.last_mut().expect("just pushed")
            }
        };
        entry.rows += 1;
        if entry.lines.len() < KEEP {
            entry.lines.push(line);
            entry.examples.push(format!("line {line}: {example}"));
        }
    }
}

impl fmt::Display for DataReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "data: {} rows read, {} used, {} excluded",
            self.total_rows, self.used_rows, self.excluded_rows
        )?;
        for p in &self.problems {
            let lines: Vec<String> = p.lines.iter().map(|l| l.to_string()).collect();
            let more = if p.rows > p.lines.len() { ", ..." } else { "" };
            writeln!(
                f,
                "  {:>6} rows  {}  (lines {}{more})",
                p.rows,
                p.problem,
                lines.join(", ")
            )?;
            for e in &p.examples {
                writeln!(f, "           e.g. {e}")?;
            }
        }
        Ok(())
    }
}

/// Where a spec field sits in the table, and its type.
struct Bound {
    /// Column index in the table.
    col: usize,
    /// Field name.
    name: String,
    /// Number or category.
    kind: FieldType,
}

/// Applies the spec's column mapping and data checks to a table.
///
/// Returns the clean rows (fields in spec order, then the target) and the report. Fails if a
/// column the spec names is absent or fewer than `min_rows` rows remain.
pub fn prepare(
    spec: &FeatureSpec,
    table: &Table,
    min_rows: usize,
) -> Result<(Columns, DataReport), ModelError> {
    prepare_at(spec, table, min_rows, crate::time::current_year())
}

/// [`prepare`] with an explicit current year (for tests).
pub(crate) fn prepare_at(
    spec: &FeatureSpec,
    table: &Table,
    min_rows: usize,
    year: i32,
) -> Result<(Columns, DataReport), ModelError> {
    spec.validate()?;
    let bound = bind_fields(spec, table)?;
    let col_of = |name: &str| {
        bound
            .iter()
            .position(|b| b.name == name)
            .expect("validated name")
    };

    let mut report = DataReport {
        total_rows: table.records.len(),
        ..DataReport::default()
    };
    let mut rows = RowBuffers::new(bound.len());
    for rec in &table.records {
        if rec.fields.len() != table.header.len() {
            report.add(
                "wrong number of fields".into(),
                rec.line,
                format!(
                    "{} fields, header has {}",
                    rec.fields.len(),
                    table.header.len()
                ),
            );
            report.excluded_rows += 1;
            continue;
        }
        let mut bad = rows.parse(&bound, rec, &mut report);
        if !bad {
            bad = rows.fails_checks(spec, &col_of, rec.line, year, &mut report);
        }
        if bad {
            report.excluded_rows += 1;
            continue;
        }
        rows.keep(&bound);
    }
    report.used_rows = report.total_rows - report.excluded_rows;
    if report.used_rows < min_rows {
        return Err(ModelError::NotEnoughData(format!(
            "{} usable rows of {} (need {min_rows})\n{report}",
            report.used_rows, report.total_rows
        )));
    }
    Ok((rows.into_columns(spec, &bound), report))
}

/// Binds every spec field, then the target, to its table column.
fn bind_fields(spec: &FeatureSpec, table: &Table) -> Result<Vec<Bound>, ModelError> {
    let bind = |name: &str, kind: FieldType| -> Result<Bound, ModelError> {
        let col = table.column(name).ok_or_else(|| {
            ModelError::Spec(format!(
                "column {name} is not in the data (columns: {})",
                table.header.join(", ")
            ))
        })?;
        Ok(Bound {
            col,
            name: name.to_string(),
            kind,
        })
    };
    let mut bound = Vec::with_capacity(spec.fields.len() + 1);
    for f in &spec.fields {
        bound.push(bind(&f.name, spec.field_type(&f.name).expect("own field"))?);
    }
    bound.push(bind(&spec.target, FieldType::Numeric)?);
    Ok(bound)
}

/// The parsed values of the current row and the clean rows so far, one entry per bound field.
struct RowBuffers<'t> {
    /// Kept numeric values per bound field.
    nums: Vec<Vec<f64>>,
    /// Kept categories per bound field.
    cats: Vec<Vec<String>>,
    /// The current row's numbers.
    num_row: Vec<f64>,
    /// The current row's categories.
    cat_row: Vec<&'t str>,
}

impl<'t> RowBuffers<'t> {
    /// Empty buffers for `n` bound fields.
    fn new(n: usize) -> Self {
        RowBuffers {
            nums: vec![Vec::new(); n],
            cats: vec![Vec::new(); n],
            num_row: vec![0.0f64; n],
            cat_row: vec![""; n],
        }
    }

    /// Parses a record's bound fields into the current row; reports problems, returns whether
    /// any field was bad.
    #[inline]
    fn parse(&mut self, bound: &[Bound], rec: &'t Record, report: &mut DataReport) -> bool {
        let mut bad = false;
        for (i, b) in bound.iter().enumerate() {
            let raw = rec.fields[b.col].trim();
            if raw.is_empty() {
                report.add(
                    format!("{}: missing", b.name),
                    rec.line,
                    format!("{} is empty", b.name),
                );
                bad = true;
                continue;
            }
            match b.kind {
                FieldType::Numeric => match raw.parse::<f64>() {
                    Ok(x) if x.is_finite() => self.num_row[i] = x,
                    _ => {
                        report.add(
                            format!("{}: not a number", b.name),
                            rec.line,
                            format!("{} = {raw:?}", b.name),
                        );
                        bad = true;
                    }
                },
                FieldType::Categorical => self.cat_row[i] = raw,
            }
        }
        bad
    }

    /// Runs the spec's checks on the current row; reports problems, returns whether any failed.
    #[inline]
    fn fails_checks(
        &self,
        spec: &FeatureSpec,
        col_of: &dyn Fn(&str) -> usize,
        line: usize,
        year: i32,
        report: &mut DataReport,
    ) -> bool {
        let mut bad = false;
        for c in &spec.checks {
            if let Some((problem, example)) =
                check_row(c, col_of, &self.num_row, &self.cat_row, year)
            {
                report.add(problem, line, example);
                bad = true;
            }
        }
        bad
    }

    /// Appends the current row to the kept columns.
    #[inline]
    fn keep(&mut self, bound: &[Bound]) {
        for (i, b) in bound.iter().enumerate() {
            match b.kind {
                FieldType::Numeric => self.nums[i].push(self.num_row[i]),
                FieldType::Categorical => self.cats[i].push(self.cat_row[i].to_string()),
            }
        }
    }

    /// The kept rows as [`Columns`] (the last bound field is the target).
    fn into_columns(mut self, spec: &FeatureSpec, bound: &[Bound]) -> Columns {
        let target = std::mem::take(&mut self.nums[bound.len() - 1]);
        let fields = bound[..bound.len() - 1]
            .iter()
            .enumerate()
            .map(|(i, b)| match b.kind {
                FieldType::Numeric => ColumnData::Numeric(std::mem::take(&mut self.nums[i])),
                FieldType::Categorical => {
                    ColumnData::Categorical(std::mem::take(&mut self.cats[i]))
                }
            })
            .collect();
        let names = spec.fields.iter().map(|f| f.name.clone()).collect();
        Columns {
            names,
            fields,
            target,
        }
    }
}

/// Applies one check to a parsed row; returns the problem and an example when it fails.
fn check_row(
    check: &Check,
    col_of: &dyn Fn(&str) -> usize,
    nums: &[f64],
    cats: &[&str],
    year: i32,
) -> Option<(String, String)> {
    let show = |field: &str, x: f64| format!("{field} = {x}");
    match check {
        Check::Range { field, min, max } => {
            let x = nums[col_of(field)];
            if let Some(m) = min
                && x < *m
            {
                return Some((format!("{field}: below {m}"), show(field, x)));
            }
            if let Some(m) = max
                && x > *m
            {
                return Some((format!("{field}: above {m}"), show(field, x)));
            }
            None
        }
        Check::NotInFuture { field, years_ahead } => {
            let x = nums[col_of(field)];
            let last = year + years_ahead;
            (x > last as f64).then(|| (format!("{field}: after {last}"), show(field, x)))
        }
        Check::Positive {
            field,
            unless_field,
            unless_values,
        } => {
            let x = nums[col_of(field)];
            if x > 0.0 {
                return None;
            }
            if let Some(u) = unless_field {
                let v = cats[col_of(u)];
                if unless_values.iter().any(|e| e == v) {
                    return None;
                }
                let problem = format!(
                    "{field}: not positive (and {u} is not {})",
                    unless_values.join("/")
                );
                return Some((problem, format!("{field} = {x}, {u} = {v}")));
            }
            Some((format!("{field}: not positive"), show(field, x)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "model,year,price,transmission,mileage,fuelType,tax,mpg,engineSize\n\
         Fiesta,2017,12000,Automatic,15944,Petrol,150,57.7,1\n\
         Fiesta,2060,6495,Automatic,54807,Petrol,205,42.8,1.4\n\
         Focus,2018,14000,Manual,-5,Petrol,150,57.7,1\n\
         Focus,2018,14000,Manual,9083,Petrol,150,57.7,0\n\
         Ka,2018,9000,Manual,9083,Electric,0,57.7,0\n\
         \"Kuga\",2019,,Manual,100,Diesel,145,50,2\n\
         Kuga,2019,20000,Manual,abc,Diesel,145,50,2\n\
         Kuga,2019,20000\n";

    #[test]
    fn reports_and_excludes_bad_rows() {
        let table = Table::parse_csv(CSV).unwrap();
        assert_eq!(table.records.len(), 8);
        let (cols, report) = prepare_at(&FeatureSpec::ford(), &table, 1, 2026).unwrap();
        assert_eq!(report.total_rows, 8);
        assert_eq!(report.used_rows, 2, "{report}");
        assert_eq!(cols.len(), 2);
        assert_eq!(report.excluded_rows, 6);
        let find = |p: &str| {
            report
                .problems
                .iter()
                .find(|s| s.problem == p)
                .unwrap_or_else(|| panic!("{p}: {report}"))
        };
        assert_eq!(find("year: after 2027").lines, vec![3]);
        assert_eq!(
            find("year: after 2027").examples,
            vec!["line 3: year = 2060".to_string()]
        );
        assert_eq!(find("mileage: below 0").lines, vec![4]);
        assert_eq!(
            find("engineSize: not positive (and fuelType is not Electric)").lines,
            vec![5]
        );
        assert_eq!(find("price: missing").lines, vec![7]);
        assert_eq!(find("mileage: not a number").lines, vec![8]);
        assert_eq!(find("wrong number of fields").lines, vec![9]);
        let text = report.to_string();
        assert!(text.contains("6 excluded"), "{text}");
    }

    #[test]
    fn parses_quotes_and_crlf() {
        let t = Table::parse_csv("a,b\r\n\"x,\"\"y\"\"\",2\r\n").unwrap();
        assert_eq!(t.header, vec!["a", "b"]);
        assert_eq!(t.records[0].fields, vec!["x,\"y\"", "2"]);
        assert_eq!(t.records[0].line, 2);
    }

    #[test]
    fn missing_column_is_an_error() {
        let t = Table::parse_csv("a,b\n1,2\n").unwrap();
        assert!(matches!(
            prepare(&FeatureSpec::ford(), &t, 1),
            Err(ModelError::Spec(_))
        ));
    }
}
