//! [`Secret`]: a string that never shows itself in `Debug` or `Display` (passwords).

use std::fmt;

/// A secret string. Printing it shows `********`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("********")
    }
}

/// `value` with every password a connection string can carry replaced by `hidden`: the
/// password of `scheme://user:password@host`, and every parameter whose name ends in
/// `password` (`password=`, `sslpassword=`, …) whether in a URL query (`?…&…`, `;…`) or in
/// libpq's `key=value key=value` form.
pub fn mask_url(value: &str, hidden: &str) -> String {
    let mut out = value.to_string();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, hidden);
        }
    }
    mask_password_parameters(&out, hidden)
}

/// Replaces the values of `…password=value` parameters, a parameter starting after `?`, `&`,
/// `;`, whitespace or at the start, its value ending at the next of those.
fn mask_password_parameters(s: &str, hidden: &str) -> String {
    let is_sep = |c: char| matches!(c, '?' | '&' | ';') || c.is_whitespace();
    let mut result = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let name_start = rest[..eq].rfind(is_sep).map_or(0, |i| i + 1);
        let name = &rest[name_start..eq];
        let value_end = rest[eq + 1..]
            .find(is_sep)
            .map_or(rest.len(), |i| eq + 1 + i);
        result.push_str(&rest[..=eq]);
        let secret = name.to_ascii_lowercase().ends_with("password") && !name.contains("://");
        if secret && value_end > eq + 1 {
            result.push_str(hidden);
        } else {
            result.push_str(&rest[eq + 1..value_end]);
        }
        rest = &rest[value_end..];
    }
    result.push_str(rest);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_password_a_connection_string_carries_is_masked() {
        let m = |s: &str| mask_url(s, "****");
        assert_eq!(m("postgres://u:pw@h:5/db"), "postgres://u:****@h:5/db");
        assert_eq!(
            m("postgres://u@h/db?sslpassword=k3y&sslmode=verify-full&password=p"),
            "postgres://u@h/db?sslpassword=****&sslmode=verify-full&password=****"
        );
        assert_eq!(
            m("jdbc:postgresql://db:5432/cars?user=u&password=hunter2&ssl=false"),
            "jdbc:postgresql://db:5432/cars?user=u&password=****&ssl=false"
        );
        assert_eq!(
            m("host=h user=u password=secret sslpassword=x dbname=d"),
            "host=h user=u password=**** sslpassword=**** dbname=d"
        );
        assert_eq!(
            m("jdbc:sqlserver://h;password=p;user=u"),
            "jdbc:sqlserver://h;password=****;user=u"
        );
        assert_eq!(m("passwordless=yes&other=1"), "passwordless=yes&other=1");
        assert_eq!(m("no secrets here"), "no secrets here");
    }
}
