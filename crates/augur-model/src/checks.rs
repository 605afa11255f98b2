//! The training data checks a model records, applied to every row it is asked to price: a
//! listing the trainer would have excluded (year 2060, mileage below 0, engine size 0 for a
//! fuel car) gets a per-row error naming the check, never a number.

use crate::error::{FieldError, FieldProblem};
use crate::features::{Check, InputField, Value};

/// One recorded check, bound to input positions.
#[derive(Debug, Clone)]
enum Bound {
    Range {
        input: usize,
        min: Option<f64>,
        max: Option<f64>,
    },
    NotInFuture {
        input: usize,
        years_ahead: i32,
    },
    Positive {
        input: usize,
        unless: Option<(usize, Vec<String>)>,
    },
}

/// The checks of one model that name its inputs (checks on the target are training-only).
#[derive(Debug, Clone, Default)]
pub(crate) struct InputChecks {
    checks: Vec<Bound>,
}

fn number(v: Value<'_>) -> Option<f64> {
    match v {
        Value::Number(x) => Some(x),
        Value::Text(s) => s.trim().parse().ok(),
        Value::Missing => None,
    }
}

impl InputChecks {
    /// Binds `checks` to `inputs` (by exact name); checks on other fields are skipped.
    pub(crate) fn bind(checks: &[Check], inputs: &[InputField]) -> InputChecks {
        let at = |name: &str| inputs.iter().position(|f| f.name == name);
        let checks = checks
            .iter()
            .filter_map(|c| {
                Some(match c {
                    Check::Range { field, min, max } => Bound::Range {
                        input: at(field)?,
                        min: *min,
                        max: *max,
                    },
                    Check::NotInFuture { field, years_ahead } => Bound::NotInFuture {
                        input: at(field)?,
                        years_ahead: *years_ahead,
                    },
                    Check::Positive {
                        field,
                        unless_field,
                        unless_values,
                    } => Bound::Positive {
                        input: at(field)?,
                        unless: match unless_field {
                            Some(u) => Some((at(u)?, unless_values.clone())),
                            None => None,
                        },
                    },
                })
            })
            .collect();
        InputChecks { checks }
    }

    /// The first check `values` (one row in input order) fails. Values that are not numbers
    /// are left to the feature pipeline, which names the problem.
    pub(crate) fn check(
        &self,
        inputs: &[InputField],
        values: &[Value<'_>],
        year: i32,
    ) -> Result<(), FieldError> {
        let fail = |input: usize, rule: String| {
            Err(FieldError {
                field: inputs[input].name.clone(),
                problem: FieldProblem::Check(rule),
            })
        };
        for c in &self.checks {
            match c {
                Bound::Range { input, min, max } => {
                    let Some(x) = number(values[*input]) else {
                        continue;
                    };
                    if let Some(m) = min
                        && x < *m
                    {
                        return fail(*input, format!("below {m}"));
                    }
                    if let Some(m) = max
                        && x > *m
                    {
                        return fail(*input, format!("above {m}"));
                    }
                }
                Bound::NotInFuture { input, years_ahead } => {
                    let Some(x) = number(values[*input]) else {
                        continue;
                    };
                    let last = year + years_ahead;
                    if x > f64::from(last) {
                        return fail(*input, format!("after {last}"));
                    }
                }
                Bound::Positive { input, unless } => {
                    let Some(x) = number(values[*input]) else {
                        continue;
                    };
                    if x > 0.0 {
                        continue;
                    }
                    match unless {
                        None => return fail(*input, "not positive".into()),
                        Some((u, excused)) => {
                            let excuse = match values[*u] {
                                Value::Text(t) => {
                                    excused.iter().any(|e| e.eq_ignore_ascii_case(t.trim()))
                                }
                                _ => false,
                            };
                            if !excuse {
                                let rule = format!(
                                    "not positive (and {} is not {})",
                                    inputs[*u].name,
                                    excused.join("/")
                                );
                                return fail(*input, rule);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
