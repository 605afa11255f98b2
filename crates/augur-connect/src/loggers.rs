//! Dynamic log levels, as Kafka Connect's `/admin/loggers` changes them (KIP-495, KIP-976):
//! the process's log filter is the `--log` filter plus one `target=level` directive per logger
//! set at runtime, re-applied to the live `tracing` subscriber on every change. Logger names
//! are `tracing` targets (`augur_connect`, `augur_postgres::source`); `root` is the default
//! level. Changes last until the process exits, as in Kafka Connect.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Replaces the live subscriber's filter with a filter in `EnvFilter` syntax.
pub type ApplyFilter = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The root logger's name, as Kafka Connect reports it.
pub const ROOT: &str = "root";

/// The levels a logger can be set to (log4j's names; `FATAL` logs as `ERROR`).
const LEVELS: [&str; 7] = ["OFF", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];

/// One logger's level as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggerLevel {
    /// `TRACE` … `OFF`.
    pub level: String,
    /// When it was last set at runtime (ms since the epoch); `null` if set at start.
    pub last_modified: Option<u64>,
}

/// Why a level change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelError {
    /// Not a level (Kafka Connect answers 404).
    InvalidLevel(String),
    /// The logger name cannot be a `tracing` target (400).
    InvalidName(String),
    /// The subscriber refused the new filter (500).
    Apply(String),
}

/// The process's logger levels.
#[derive(Clone)]
pub struct LogLevels {
    /// Levels and the filter parts that are not `target=level`.
    state: Arc<Mutex<State>>,
    /// Applies a filter to the live subscriber (absent: levels are recorded only).
    apply: Option<ApplyFilter>,
}

impl std::fmt::Debug for LogLevels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevels").finish_non_exhaustive()
    }
}

/// The levels behind [`LogLevels`].
#[derive(Debug, Clone)]
struct State {
    /// The root level.
    root: LoggerLevel,
    /// Named loggers.
    loggers: BTreeMap<String, LoggerLevel>,
    /// Directives of the start filter kept as they are (span or field filters).
    other: Vec<String>,
}

static GLOBAL: OnceLock<LogLevels> = OnceLock::new();

/// Makes `filter` (the start filter) and `apply` the process's log levels; the first call wins.
pub fn install(filter: &str, apply: ApplyFilter) {
    let _ = GLOBAL.set(LogLevels::new(filter, Some(apply)));
}

/// The process's log levels: as installed, or (in a library user that installed none) levels
/// that are recorded but change no subscriber.
pub fn global() -> LogLevels {
    GLOBAL.get_or_init(|| LogLevels::new("info", None)).clone()
}

impl LogLevels {
    /// Levels parsed from a start filter (`info`, `augur_runtime=debug,warn`).
    pub fn new(filter: &str, apply: Option<ApplyFilter>) -> LogLevels {
        let mut state = State {
            root: LoggerLevel {
                level: "ERROR".into(),
                last_modified: None,
            },
            loggers: BTreeMap::new(),
            other: Vec::new(),
        };
        for d in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                None if level_name(d).is_some() => {
                    state.root.level = level_name(d).unwrap_or_default()
                }
                Some((t, l)) if valid_name(t) && level_name(l).is_some() => {
                    let level = level_name(l).unwrap_or_default();
                    state.loggers.insert(
                        t.to_string(),
                        LoggerLevel {
                            level,
                            last_modified: None,
                        },
                    );
                }
                _ => state.other.push(d.to_string()),
            }
        }
        LogLevels {
            state: Arc::new(Mutex::new(state)),
            apply,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every logger with a level, and `root`, by name.
    pub fn all(&self) -> BTreeMap<String, LoggerLevel> {
        let s = self.lock();
        let mut out = s.loggers.clone();
        out.insert(ROOT.into(), s.root.clone());
        out
    }

    /// One logger's level (`root` in any case is the root), or `None` for an unknown logger.
    pub fn get(&self, name: &str) -> Option<LoggerLevel> {
        let s = self.lock();
        if name.eq_ignore_ascii_case(ROOT) {
            return Some(s.root.clone());
        }
        s.loggers.get(name).cloned()
    }

    /// Sets `name` and every known logger whose name starts with it (for `root`: every
    /// logger) to `level`; returns the changed loggers' names, sorted.
    pub fn set(&self, name: &str, level: &str) -> Result<Vec<String>, LevelError> {
        let level = level_name(level).ok_or_else(|| LevelError::InvalidLevel(level.into()))?;
        let is_root = name.eq_ignore_ascii_case(ROOT);
        if !is_root && !valid_name(name) {
            return Err(LevelError::InvalidName(name.into()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let set = LoggerLevel {
            level,
            last_modified: Some(now),
        };
        let mut s = self.lock();
        let mut next = s.clone();
        let mut changed = Vec::new();
        for (n, l) in next.loggers.iter_mut() {
            if is_root || n.starts_with(name) {
                *l = set.clone();
                changed.push(n.clone());
            }
        }
        if is_root {
            next.root = set;
            changed.push(ROOT.into());
        } else if !next.loggers.contains_key(name) {
            next.loggers.insert(name.to_string(), set);
            changed.push(name.to_string());
        }
        if let Some(apply) = &self.apply {
            apply(&next.filter()).map_err(LevelError::Apply)?;
        }
        *s = next;
        changed.sort();
        Ok(changed)
    }

    /// The filter these levels make, in `EnvFilter` syntax.
    pub fn filter(&self) -> String {
        self.lock().filter()
    }
}

impl State {
    /// The root level, the kept directives, then each logger's `target=level`.
    fn filter(&self) -> String {
        let mut parts = vec![directive_level(&self.root.level).to_string()];
        parts.extend(self.other.iter().cloned());
        for (name, l) in &self.loggers {
            parts.push(format!("{name}={}", directive_level(&l.level)));
        }
        parts.join(",")
    }
}

/// A level's canonical (upper-case) name, or `None` if it is not a level.
fn level_name(s: &str) -> Option<String> {
    let up = s.trim().to_ascii_uppercase();
    let up = if up == "WARNING" { "WARN".into() } else { up };
    LEVELS.contains(&up.as_str()).then_some(up)
}

/// The `EnvFilter` level of a log4j level.
fn directive_level(level: &str) -> &'static str {
    match level {
        "OFF" => "off",
        "FATAL" | "ERROR" => "error",
        "WARN" => "warn",
        "DEBUG" => "debug",
        "TRACE" => "trace",
        _ => "info",
    }
}

/// Whether `name` can be a `tracing` target in a filter directive (letters, digits, `_`,
/// `-`, `.` and `::`), so a name can never smuggle in another directive.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_filters_become_levels_and_back() {
        let l = LogLevels::new("augur_runtime=debug,warn,augur[span]=trace", None);
        let all = l.all();
        assert_eq!(all["root"].level, "WARN");
        assert_eq!(all["augur_runtime"].level, "DEBUG");
        assert_eq!(all["augur_runtime"].last_modified, None);
        assert_eq!(l.filter(), "warn,augur[span]=trace,augur_runtime=debug");
    }

    #[test]
    fn setting_a_prefix_sets_its_children_and_root_sets_all() {
        let applied = Arc::new(Mutex::new(String::new()));
        let seen = applied.clone();
        let apply: ApplyFilter = Arc::new(move |f: &str| {
            *seen.lock().unwrap() = f.to_string();
            Ok(())
        });
        let l = LogLevels::new("info,augur_connect::worker=warn", Some(apply));
        let changed = l.set("augur_connect", "debug").unwrap();
        assert_eq!(changed, vec!["augur_connect", "augur_connect::worker"]);
        assert_eq!(l.get("augur_connect::worker").unwrap().level, "DEBUG");
        assert!(l.get("augur_connect").unwrap().last_modified.is_some());
        assert_eq!(
            *applied.lock().unwrap(),
            "info,augur_connect=debug,augur_connect::worker=debug"
        );
        let changed = l.set("ROOT", "Error").unwrap();
        assert_eq!(
            changed,
            vec!["augur_connect", "augur_connect::worker", "root"]
        );
        assert_eq!(l.get("root").unwrap().level, "ERROR");
        assert!(l.get("nothing").is_none());
    }

    #[test]
    fn bad_levels_and_names_change_nothing() {
        let l = LogLevels::new("info", None);
        assert_eq!(
            l.set("augur", "loud"),
            Err(LevelError::InvalidLevel("loud".into()))
        );
        assert!(matches!(
            l.set("a=trace,b", "debug"),
            Err(LevelError::InvalidName(_))
        ));
        let failing: ApplyFilter = Arc::new(|_: &str| Err("no".into()));
        let l = LogLevels::new("info", Some(failing));
        assert_eq!(l.set("augur", "debug"), Err(LevelError::Apply("no".into())));
        assert!(l.get("augur").is_none());
        assert_eq!(l.filter(), "info");
    }
}
