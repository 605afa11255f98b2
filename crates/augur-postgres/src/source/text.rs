//! Parsers for PostgreSQL's text output formats (as pgoutput and `COPY … TO STDOUT` print them
//! with `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`, `bytea_output=hex`).

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (astronomical year numbering:
/// 1 BC is year 0).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of `days` since 1970-01-01 (inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A date as days since the epoch, or an infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    /// Days since 1970-01-01.
    Days(i64),
    /// `infinity`.
    PosInfinity,
    /// `-infinity`.
    NegInfinity,
}

/// A date or timestamp text: an infinity, or a finite value with its ` BC` suffix split off.
enum Era<'a> {
    PosInfinity,
    NegInfinity,
    Finite { body: &'a str, bc: bool },
}

/// Reads `infinity`, `-infinity` or a value with an optional ` BC` suffix.
fn era(s: &str) -> Era<'_> {
    match s {
        "infinity" => Era::PosInfinity,
        "-infinity" => Era::NegInfinity,
        _ => match s.strip_suffix(" BC") {
            Some(body) => Era::Finite { body, bc: true },
            None => Era::Finite { body: s, bc: false },
        },
    }
}

/// Parses `YYYY-MM-DD[ BC]`, `infinity` or `-infinity`.
pub fn parse_date(s: &str) -> Option<DateValue> {
    let (body, bc) = match era(s) {
        Era::PosInfinity => return Some(DateValue::PosInfinity),
        Era::NegInfinity => return Some(DateValue::NegInfinity),
        Era::Finite { body, bc } => (body, bc),
    };
    let (y, m, d) = split_date(body)?;
    let y = if bc { 1 - y } else { y };
    Some(DateValue::Days(days_from_civil(y, m, d)))
}

fn split_date(s: &str) -> Option<(i64, u32, u32)> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Parses `HH:MM:SS[.ffffff]` into microseconds past midnight (24:00:00 allowed).
pub fn parse_time_micros(s: &str) -> Option<i64> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut it = hms.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next()?.parse().ok()?;
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || !(0..=60).contains(&sec) {
        return None;
    }
    let mut micros = 0i64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        micros = f.parse::<i64>().ok()? * 10i64.pow(6 - f.len() as u32);
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// Splits a UTC offset (`+02`, `-05:30`, `+05:30:15`) off the end of a time or timestamp.
/// Returns the rest and the offset in seconds east of UTC.
pub fn split_offset(s: &str) -> Option<(&str, i64)> {
    let idx = s.rfind(['+', '-'])?;
    // A '-' inside the date part is not an offset: the offset follows the time part.
    if !s[..idx].contains(':') {
        return None;
    }
    let (rest, off) = s.split_at(idx);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut parts = off[1..].split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let sec: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Some((rest, sign * (h * 3600 + m * 60 + sec)))
}

/// A timestamp as microseconds since the epoch (UTC), or an infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampValue {
    /// Microseconds since 1970-01-01T00:00:00Z (wider than `i64`: PostgreSQL's last years
    /// do not fit one).
    Micros(i128),
    /// `infinity`.
    PosInfinity,
    /// `-infinity`.
    NegInfinity,
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff][+TZ][ BC]`; a missing offset means UTC.
pub fn parse_timestamp(s: &str) -> Option<TimestampValue> {
    let (body, bc) = match era(s) {
        Era::PosInfinity => return Some(TimestampValue::PosInfinity),
        Era::NegInfinity => return Some(TimestampValue::NegInfinity),
        Era::Finite { body, bc } => (body, bc),
    };
    let (date, time) = body.split_once(' ')?;
    let (time, offset) = match split_offset(time) {
        Some((t, o)) => (t, o),
        None => (time, 0),
    };
    let (y, m, d) = split_date(date)?;
    let y = if bc { 1 - y } else { y };
    let days = i128::from(days_from_civil(y, m, d));
    let micros = i128::from(parse_time_micros(time)?);
    Some(TimestampValue::Micros(
        days * 86_400_000_000 + micros - i128::from(offset) * 1_000_000,
    ))
}

/// Formats microseconds since the epoch as ISO-8601 UTC the way Java's
/// `DateTimeFormatter.ISO_OFFSET_DATE_TIME` prints an `OffsetDateTime` (fraction trimmed in
/// groups of three digits, `Z` for UTC).
pub fn format_iso_utc(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rem = micros.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    push_year(&mut out, y);
    out.push_str(&format!("-{m:02}-{d:02}T"));
    push_time(&mut out, rem);
    out.push('Z');
    out
}

/// Formats microseconds since the epoch as Debezium's `ZonedTimestamp` does: UTC with `Z`, and
/// exactly `precision` fraction digits (none for precision 0).
pub fn format_zoned_timestamp(micros: i128, precision: i32) -> String {
    let days = micros.div_euclid(86_400_000_000) as i64;
    let rem = micros.rem_euclid(86_400_000_000) as i64;
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    push_year(&mut out, y);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    out.push_str(&format!(
        "-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    ));
    let p = precision.clamp(0, 6) as usize;
    if p > 0 {
        let digits = format!("{frac:06}");
        out.push('.');
        out.push_str(&digits[..p]);
    } else if frac != 0 {
        push_trimmed_fraction(&mut out, frac);
    }
    out.push('Z');
    out
}

fn push_trimmed_fraction(out: &mut String, frac: i64) {
    let digits = format!("{frac:06}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// Pushes `HH:MM:SS` of microseconds past midnight; returns the microseconds left over.
fn push_hms(out: &mut String, micros: i64) -> i64 {
    let secs = micros / 1_000_000;
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    ));
    micros % 1_000_000
}

/// Formats microseconds past midnight as `ISO_OFFSET_TIME` prints the time part: `HH:MM:SS`
/// and the fraction with as few digits as it needs (none when zero).
pub fn push_time_trimmed(out: &mut String, micros: i64) {
    let frac = push_hms(out, micros);
    if frac != 0 {
        push_trimmed_fraction(out, frac);
    }
}

/// Formats microseconds past midnight as Java's `ISO_LOCAL_TIME` prints a `LocalTime`.
pub fn push_time(out: &mut String, micros: i64) {
    let frac = push_hms(out, micros);
    if frac != 0 {
        if frac % 1000 == 0 {
            out.push_str(&format!(".{:03}", frac / 1000));
        } else {
            out.push_str(&format!(".{frac:06}"));
        }
    }
}

fn push_year(out: &mut String, y: i64) {
    if (0..=9999).contains(&y) {
        out.push_str(&format!("{y:04}"));
    } else if y > 9999 {
        out.push_str(&format!("+{y}"));
    } else {
        out.push_str(&format!("-{:04}", -y));
    }
}

/// Parses an ISO-8601 interval as `IntervalStyle=iso_8601` prints it (`P1Y2M3DT4H5M6.5S`,
/// components may be negative) into (months, days, microseconds).
pub fn parse_iso_interval(s: &str) -> Option<(i64, i64, i64)> {
    let body = s.strip_prefix('P')?;
    let (date, time) = match body.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
    let mut num = String::new();
    for c in date.chars() {
        match c {
            'Y' => months += take_int(&mut num)? * 12,
            'M' => months += take_int(&mut num)?,
            'W' => days += take_int(&mut num)? * 7,
            'D' => days += take_int(&mut num)?,
            _ => num.push(c),
        }
    }
    if !num.is_empty() {
        return None;
    }
    if let Some(time) = time {
        for c in time.chars() {
            match c {
                'H' => micros += take_int(&mut num)? * 3_600_000_000,
                'M' => micros += take_int(&mut num)? * 60_000_000,
                'S' => {
                    micros += take_seconds_micros(&num)?;
                    num.clear();
                }
                _ => num.push(c),
            }
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some((months, days, micros))
}

fn take_int(num: &mut String) -> Option<i64> {
    let v = num.parse().ok();
    num.clear();
    v
}

fn take_seconds_micros(num: &str) -> Option<i64> {
    let neg = num.starts_with('-');
    let digits = num.trim_start_matches(['-', '+']);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut f = 0i64;
    if !frac.is_empty() {
        let frac = &frac[..frac.len().min(6)];
        f = frac.parse::<i64>().ok()? * 10i64.pow(6 - frac.len() as u32);
    }
    let v = whole * 1_000_000 + f;
    Some(if neg { -v } else { v })
}

/// Decodes `bytea` hex output (`\x0a0b`).
pub fn parse_bytea_hex(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let nib = |b: u8| -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    };
    hex.as_bytes()
        .chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// One element of a parsed array literal: `None` for an unquoted `NULL`.
pub type ArrayElement = Option<String>;

/// Parses a one-dimensional array literal (`{1,2,NULL,"a b","x\"y"}`) with `,` as the
/// delimiter. Returns `None` for malformed or multi-dimensional input.
pub fn parse_array(s: &str) -> Option<Vec<ArrayElement>> {
    // Arrays with non-default lower bounds print a `[2:3]=` prefix.
    let s = match s.find("={") {
        Some(i) if s.starts_with('[') => &s[i + 1..],
        _ => s,
    };
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    if inner.is_empty() {
        return Some(out);
    }
    let bytes = inner.as_bytes();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'{') {
            return None; // nested: multi-dimensional
        }
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match *bytes.get(i)? {
                    b'\\' => {
                        v.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b => {
                        v.push(b);
                        i += 1;
                    }
                }
            }
            out.push(Some(String::from_utf8(v).ok()?));
        } else {
            let start = i;
            let mut v = Vec::new();
            while i < bytes.len() && bytes[i] != b',' {
                if bytes[i] == b'\\' {
                    v.push(*bytes.get(i + 1)?);
                    i += 2;
                } else {
                    v.push(bytes[i]);
                    i += 1;
                }
            }
            let raw = &inner[start..i];
            if raw.eq_ignore_ascii_case("NULL") {
                out.push(None);
            } else {
                out.push(Some(String::from_utf8(v).ok()?.trim().to_string()));
            }
        }
        match bytes.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return None,
        }
    }
    Some(out)
}

/// The number of top-level elements of a multi-dimensional array literal (`{{1,2},{3,4}}` → 2,
/// lower bounds like `[1:2][1:2]=` allowed); `None` when `s` is not a well-formed one.
pub fn nested_array_len(s: &str) -> Option<usize> {
    let s = match s.find("={") {
        Some(i) if s.starts_with('[') => &s[i + 1..],
        _ => s,
    };
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    if !inner.starts_with('{') {
        return None;
    }
    let (mut depth, mut quoted, mut escaped, mut n) = (0usize, false, false, 0);
    for b in inner.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'{' if !quoted => {
                n += usize::from(depth == 0);
                depth += 1;
            }
            b'}' if !quoted => depth = depth.checked_sub(1)?,
            _ => {}
        }
    }
    (depth == 0 && !quoted).then_some(n)
}

/// Splits one line of `COPY … TO STDOUT` text format into fields, undoing its backslash
/// escapes; `None` stands for `\N`.
pub fn split_copy_line(line: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut fields = Vec::new();
    let mut cur = Vec::new();
    let mut null = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match b {
            b'\t' => {
                fields.push(if null {
                    None
                } else {
                    Some(std::mem::take(&mut cur))
                });
                cur.clear();
                null = false;
                i += 1;
            }
            b'\\' => {
                let next = *line.get(i + 1)?;
                i += 2;
                match next {
                    b'N' => null = true,
                    b'b' => cur.push(8),
                    b'f' => cur.push(12),
                    b'n' => cur.push(b'\n'),
                    b'r' => cur.push(b'\r'),
                    b't' => cur.push(b'\t'),
                    b'v' => cur.push(11),
                    b'0'..=b'7' => {
                        let mut v = u32::from(next - b'0');
                        let mut n = 1;
                        while n < 3 && i < line.len() && (b'0'..=b'7').contains(&line[i]) {
                            v = v * 8 + u32::from(line[i] - b'0');
                            i += 1;
                            n += 1;
                        }
                        cur.push(v as u8);
                    }
                    b'x' => {
                        let mut v = 0u32;
                        let mut n = 0;
                        while n < 2 && i < line.len() && line[i].is_ascii_hexdigit() {
                            v = v * 16 + (line[i] as char).to_digit(16)?;
                            i += 1;
                            n += 1;
                        }
                        cur.push(v as u8);
                    }
                    other => cur.push(other),
                }
            }
            _ => {
                cur.push(b);
                i += 1;
            }
        }
    }
    fields.push(if null { None } else { Some(cur) });
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(parse_date("2024-02-29"), Some(DateValue::Days(19782)));
        assert_eq!(
            parse_date("0001-01-01 BC"),
            Some(DateValue::Days(days_from_civil(0, 1, 1)))
        );
        for d in [-800_000i64, -1, 0, 1, 19782, 2_900_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(parse_date("infinity"), Some(DateValue::PosInfinity));
        assert_eq!(parse_date("2024-13-01"), None);
    }

    #[test]
    fn timestamps_and_offsets() {
        assert_eq!(
            parse_timestamp("2024-01-02 03:04:05.123456"),
            Some(TimestampValue::Micros(1_704_164_645_123_456))
        );
        assert_eq!(
            parse_timestamp("2024-01-02 05:04:05.5+02"),
            Some(TimestampValue::Micros(1_704_164_645_500_000))
        );
        assert_eq!(
            parse_timestamp("2024-01-01 22:34:05-04:30"),
            Some(TimestampValue::Micros(1_704_164_645_000_000))
        );
        assert_eq!(
            format_iso_utc(1_704_164_645_123_456),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(
            format_iso_utc(1_704_164_645_120_000),
            "2024-01-02T03:04:05.120Z"
        );
        assert_eq!(
            format_iso_utc(1_704_164_645_000_000),
            "2024-01-02T03:04:05Z"
        );
        // Debezium pads ZonedTimestamp to the column precision (measured).
        let t = parse_timestamp("2024-03-01 12:34:56.5+02").unwrap();
        let TimestampValue::Micros(m) = t else {
            panic!()
        };
        assert_eq!(format_zoned_timestamp(m, 6), "2024-03-01T10:34:56.500000Z");
        assert_eq!(format_zoned_timestamp(m, 3), "2024-03-01T10:34:56.500Z");
        assert_eq!(
            format_zoned_timestamp(m - 500_000, 0),
            "2024-03-01T10:34:56Z"
        );
        assert_eq!(format_zoned_timestamp(0, 6), "1970-01-01T00:00:00.000000Z");
        let mut s = String::new();
        push_time_trimmed(&mut s, 38_096_500_000);
        assert_eq!(s, "10:34:56.5");
    }

    #[test]
    fn times_and_intervals() {
        assert_eq!(parse_time_micros("13:45:01.5"), Some(49_501_500_000));
        assert_eq!(parse_time_micros("24:00:00"), Some(86_400_000_000));
        assert_eq!(parse_time_micros("1:2"), None);
        assert_eq!(
            parse_iso_interval("P1Y2M3DT4H5M6.5S"),
            Some((14, 3, 14_706_500_000))
        );
        assert_eq!(parse_iso_interval("PT-1.25S"), Some((0, 0, -1_250_000)));
        assert_eq!(parse_iso_interval("P-1D"), Some((0, -1, 0)));
        assert_eq!(parse_iso_interval("nonsense"), None);
    }

    #[test]
    fn arrays_and_bytea() {
        assert_eq!(
            parse_array(r#"{1,NULL,"a b","x\"y",c}"#).unwrap(),
            vec![
                Some("1".into()),
                None,
                Some("a b".into()),
                Some("x\"y".into()),
                Some("c".into())
            ]
        );
        assert_eq!(parse_array("{}").unwrap(), Vec::<ArrayElement>::new());
        assert_eq!(
            parse_array(r#"{"NULL"}"#).unwrap(),
            vec![Some("NULL".into())]
        );
        assert!(parse_array("{{1,2},{3,4}}").is_none());
        assert_eq!(nested_array_len("{{1,2},{3,4}}"), Some(2));
        assert_eq!(nested_array_len(r#"{{"a}",b},{"c\"{",d},{e,f}}"#), Some(3));
        assert_eq!(nested_array_len("[1:2][0:1]={{1,2},{3,4}}"), Some(2));
        assert_eq!(nested_array_len("{{{1}},{{2}}}"), Some(2));
        assert_eq!(nested_array_len("{1,2}"), None);
        assert_eq!(nested_array_len("{{1,2}"), None);
        assert_eq!(parse_array("[0:1]={5,6}").unwrap().len(), 2);
        assert_eq!(parse_bytea_hex("\\x00ff10").unwrap(), vec![0, 255, 16]);
        assert!(parse_bytea_hex("\\x0").is_none());
    }

    #[test]
    fn copy_lines_unescape() {
        let f = split_copy_line(b"1\t\\N\ta\\tb\\\\c\t").unwrap();
        assert_eq!(
            f,
            vec![
                Some(b"1".to_vec()),
                None,
                Some(b"a\tb\\c".to_vec()),
                Some(vec![])
            ]
        );
    }

    /// A date as PostgreSQL's `DateStyle=ISO` prints it.
    fn pg_date(days: i64) -> String {
        let (y, m, d) = civil_from_days(days);
        if y <= 0 {
            format!("{:04}-{m:02}-{d:02} BC", 1 - y)
        } else {
            format!("{y:04}-{m:02}-{d:02}")
        }
    }

    proptest::proptest! {
        /// Every date PostgreSQL can print (4713 BC to 5874897 AD) parses back to its day.
        #[test]
        fn dates_round_trip(days in -2_440_588i64..2_147_483_494) {
            proptest::prop_assert_eq!(parse_date(&pg_date(days)), Some(DateValue::Days(days)));
        }

        /// Times of day with any fraction parse back to their microseconds.
        #[test]
        fn times_round_trip(micros in 0i64..86_400_000_000) {
            let mut text = String::new();
            push_time(&mut text, micros);
            proptest::prop_assert_eq!(parse_time_micros(&text), Some(micros));
        }

        /// Timestamps with an offset parse back to the same instant in UTC.
        #[test]
        fn timestamps_with_offsets_round_trip(
            micros in -210_866_760_000_000_000i64..6_000_000_000_000_000_000,
            offset_min in -15 * 60i64..=15 * 60,
        ) {
            let local = micros + offset_min * 60_000_000;
            let days = local.div_euclid(86_400_000_000);
            let mut text = pg_date(days);
            let date_end = text.find(" BC").unwrap_or(text.len());
            let bc = text.split_off(date_end);
            text.push(' ');
            push_time(&mut text, local.rem_euclid(86_400_000_000));
            let sign = if offset_min < 0 { '-' } else { '+' };
            text.push_str(&format!("{sign}{:02}:{:02}", offset_min.abs() / 60, offset_min.abs() % 60));
            text.push_str(&bc);
            proptest::prop_assert_eq!(parse_timestamp(&text), Some(TimestampValue::Micros(i128::from(micros))), "{}", text);
        }
    }
}
