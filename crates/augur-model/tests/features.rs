//! Feature pipeline units: log1p, standard scaling, one-hot, frequency encoding with "Other",
//! target-mean encoding, case-insensitive inputs and per-field errors.

use augur_model::data::{Table, prepare};
use augur_model::features::{
    Column, FeaturePipeline, FeatureSpec, OutputTransform, PipelineSpec, Value,
};
use augur_model::{FieldProblem, FieldType};

/// A hand-made table: 6 rows with two models seen 3 and 2 times and one seen once.
const CSV: &str = "model,year,price,transmission,mileage,fuelType,tax,mpg,engineSize\n\
    Fiesta,2015,1000,Manual,0,Petrol,0,50,1.0\n\
    Fiesta,2016,2000,Manual,9,Petrol,0,50,1.0\n\
    Fiesta,2017,4000,Automatic,99,Diesel,0,50,1.0\n\
    Focus,2018,8000,Manual,999,Diesel,0,50,1.0\n\
    Focus,2019,16000,Manual,9999,Petrol,0,50,1.0\n\
    Mustang,2020,32000,Automatic,99999,Petrol,0,50,5.0\n";

fn fitted() -> FeaturePipeline {
    let table = Table::parse_csv(CSV).unwrap();
    let mut spec = FeatureSpec::ford();
    // Categories seen fewer than 2 times fold into Other (Mustang), for every categorical field.
    for f in &mut spec.fields {
        if let augur_model::features::FieldKind::Categorical { min_count, .. } = &mut f.kind {
            *min_count = 2;
        }
    }
    let (cols, report) = prepare(&spec, &table, 1).unwrap();
    assert_eq!(report.used_rows, 6);
    let rows: Vec<usize> = (0..cols.len()).collect();
    FeaturePipeline::fit(&spec, &cols, &rows).unwrap()
}

fn column<'a>(p: &'a FeaturePipeline, name: &str) -> (usize, &'a Column) {
    let i = p
        .column_names()
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name}: {:?}", p.column_names()));
    (i, &p.spec().columns[i])
}

fn row<'a>(
    model: &'a str,
    year: f64,
    trans: &'a str,
    mileage: f64,
    fuel: &'a str,
) -> Vec<Value<'a>> {
    vec![
        Value::Text(model),
        Value::Number(year),
        Value::Text(trans),
        Value::Number(mileage),
        Value::Text(fuel),
        Value::Number(0.0),
        Value::Number(50.0),
        Value::Number(1.0),
    ]
}

fn transform(p: &FeaturePipeline, values: &[Value<'_>]) -> Vec<f32> {
    let mut out = vec![0.0; p.num_columns()];
    p.transform(values, &mut out).unwrap();
    out
}

#[test]
fn inputs_are_the_spec_fields_with_types() {
    let p = fitted();
    let names: Vec<&str> = p.inputs().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "model",
            "year",
            "transmission",
            "mileage",
            "fuelType",
            "tax",
            "mpg",
            "engineSize"
        ]
    );
    assert_eq!(p.inputs()[0].kind, FieldType::Categorical);
    assert_eq!(p.inputs()[1].kind, FieldType::Numeric);
    assert_eq!(p.input_index("enginesize"), Some(7));
    assert_eq!(p.input_index("FUELTYPE"), Some(4));
    assert_eq!(p.input_index("colour"), None);
    assert_eq!(p.output(), OutputTransform::Exp);
}

#[test]
fn log1p_and_standard_scaling_are_learned() {
    let p = fitted();
    let (i, col) = column(&p, "log1p(mileage)");
    let logs: Vec<f64> = [0.0f64, 9.0, 99.0, 999.0, 9999.0, 99999.0]
        .iter()
        .map(|x| x.ln_1p())
        .collect();
    let mean = logs.iter().sum::<f64>() / 6.0;
    let std = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 6.0).sqrt();
    match col {
        Column::Numeric {
            log1p,
            center,
            scale,
            ..
        } => {
            assert!(*log1p);
            assert!((center - mean).abs() < 1e-12);
            assert!((scale - std).abs() < 1e-12);
        }
        other => panic!("{other:?}"),
    }
    let x = transform(&p, &row("Fiesta", 2017.0, "Manual", 99.0, "Petrol"));
    assert_eq!(x[i], ((99.0f64.ln_1p() - mean) / std) as f32);
    // year is scaled without log: mean 2017.5, population std sqrt(35/12).
    let (j, _) = column(&p, "year");
    assert!((x[j] as f64 - (-0.5 / (35.0f64 / 12.0).sqrt())).abs() < 1e-6);
}

#[test]
fn one_hot_folds_rare_and_unseen_categories_into_all_zeros() {
    let p = fitted();
    assert!(
        p.column_names()
            .contains(&"transmission=Automatic".to_string())
    );
    assert!(
        p.column_names()
            .contains(&"transmission=Manual".to_string())
    );
    let (a, _) = column(&p, "transmission=Automatic");
    let (m, _) = column(&p, "transmission=Manual");
    let x = transform(&p, &row("Fiesta", 2017.0, "Automatic", 9.0, "Petrol"));
    assert_eq!((x[a], x[m]), (1.0, 0.0));
    let x = transform(&p, &row("Fiesta", 2017.0, "Semi-Auto", 9.0, "Petrol"));
    assert_eq!((x[a], x[m]), (0.0, 0.0), "unseen category is all zeros");
}

#[test]
fn frequency_encoding_with_other() {
    let p = fitted();
    let (i, col) = column(&p, "model:frequency");
    match col {
        Column::Lookup { table, other, .. } => {
            assert_eq!(
                table.len(),
                2,
                "Mustang (seen once) folds into Other: {table:?}"
            );
            assert_eq!(table["Fiesta"], 0.5);
            assert!((table["Focus"] - 2.0 / 6.0).abs() < 1e-12);
            assert!((other - 1.0 / 6.0).abs() < 1e-12);
        }
        c => panic!("{c:?}"),
    }
    // Values are trimmed, as the Ford data writes " Fiesta".
    assert_eq!(
        transform(&p, &row(" Fiesta", 2017.0, "Manual", 9.0, "Petrol"))[i],
        0.5
    );
    assert_eq!(
        transform(&p, &row("Mustang", 2017.0, "Manual", 9.0, "Petrol"))[i],
        (1.0f64 / 6.0) as f32
    );
    assert_eq!(
        transform(&p, &row("Model T", 2017.0, "Manual", 9.0, "Petrol"))[i],
        (1.0f64 / 6.0) as f32,
        "unseen model is Other, not an error"
    );
}

#[test]
fn target_mean_is_smoothed_towards_the_overall_mean() {
    let p = fitted();
    let (_, col) = column(&p, "model:target_mean");
    let logs: Vec<f64> = [1000.0f64, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0]
        .iter()
        .map(|x| x.ln())
        .collect();
    let prior = logs.iter().sum::<f64>() / 6.0;
    let m = 20.0;
    match col {
        Column::Lookup { table, other, .. } => {
            let fiesta = (logs[0] + logs[1] + logs[2] + m * prior) / (3.0 + m);
            assert!((table["Fiesta"] - fiesta).abs() < 1e-9);
            assert!((other - (logs[5] + m * prior) / (1.0 + m)).abs() < 1e-9);
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn field_errors_name_the_field() {
    let p = fitted();
    let mut out = vec![0.0; p.num_columns()];
    let mut values = row("Fiesta", 2017.0, "Manual", 9.0, "Petrol");
    values[3] = Value::Missing;
    let e = p.transform(&values, &mut out).unwrap_err();
    assert_eq!(
        (e.field.as_str(), &e.problem),
        ("mileage", &FieldProblem::Missing)
    );
    values[3] = Value::Text("lots");
    let e = p.transform(&values, &mut out).unwrap_err();
    assert!(
        matches!(
            e.problem,
            FieldProblem::WrongType {
                expected: "a number",
                ..
            }
        ),
        "{e}"
    );
    values[3] = Value::Text(" 42 ");
    p.transform(&values, &mut out)
        .expect("numbers as strings are accepted");
    values[3] = Value::Number(-5.0);
    let e = p.transform(&values, &mut out).unwrap_err();
    assert!(matches!(e.problem, FieldProblem::OutOfDomain(_)), "{e}");
    values[3] = Value::Number(9.0);
    values[0] = Value::Number(3.0);
    let e = p.transform(&values, &mut out).unwrap_err();
    assert_eq!(
        e.to_string(),
        "field model: expected a string, got a number"
    );
}

#[test]
fn pipeline_spec_round_trips_through_json() {
    let p = fitted();
    let json = serde_json::to_string(p.spec()).unwrap();
    let back: PipelineSpec = serde_json::from_str(&json).unwrap();
    let q = FeaturePipeline::new(back).unwrap();
    let values = row("Focus", 2019.0, "Manual", 1234.0, "Diesel");
    assert_eq!(transform(&p, &values), transform(&q, &values));
}
