//! Java's number formatting (`Double.toString`, `Float.toString`): the text Debezium and
//! Kafka's JsonConverter write, and the JDBC driver's geometric types print.

/// Formats a double as Java's `Double.toString` does: shortest round-trip digits, plain
/// notation for 1e-3 ≤ |v| < 1e7 (always with a fraction, `1.0`), otherwise `d.dddE±n`.
pub fn java_double(v: f64) -> String {
    let sci = if v != 0.0 && v.abs() < f64::MIN_POSITIVE {
        two_digits_if_one(format!("{v:e}"), format!("{v:.1e}"), |t| t.parse() == Ok(v))
    } else {
        format!("{v:e}")
    };
    java_float_digits(sci, v == 0.0, v.is_sign_negative())
}

/// Formats a float as Java's `Float.toString` does.
pub fn java_float(v: f32) -> String {
    let sci = if v != 0.0 && v.abs() < f32::MIN_POSITIVE {
        two_digits_if_one(format!("{v:e}"), format!("{v:.1e}"), |t| t.parse() == Ok(v))
    } else {
        format!("{v:e}")
    };
    java_float_digits(sci, v == 0.0, v.is_sign_negative())
}

/// Java's rule (JDK 19 and later) where the shortest digits are one: of the two-digit
/// decimals that read back as the value, the closest — `4.9E-324` for the smallest double,
/// whose shortest digits are `5E-324`. It differs from `d.0` only among subnormals, where a
/// value's neighbours are far apart, so only they are checked.
fn two_digits_if_one(shortest: String, two: String, reads_back: impl Fn(&str) -> bool) -> String {
    let one_digit = shortest
        .split('e')
        .next()
        .is_some_and(|m| m.trim_start_matches('-').len() == 1);
    if one_digit && reads_back(&two) {
        two
    } else {
        shortest
    }
}

fn java_float_digits(sci: String, zero: bool, negative: bool) -> String {
    if zero {
        return if negative {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e6", "5e-324".
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    let (sign, mant) = match mant.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(24);
    out.push_str(sign);
    if (-3..7).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        out.push('E');
        out.push_str(&exp.to_string());
    }
    out
}
