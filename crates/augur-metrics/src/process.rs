//! The standard `process_*` series (as the official Prometheus clients export them), read from
//! `/proc/self` when the registry is rendered (through [`Registry::gauge_fn`] and
//! [`Registry::counter_fn`], which are prometheus-client collectors). On systems without
//! `/proc` they read as 0.

use crate::Registry;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on every Linux platform).
const TICKS_PER_SECOND: f64 = 100.0;

/// Registers `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_cpu_seconds_total`, `process_open_fds`, `process_start_time_seconds` and
/// `process_max_resident_memory_bytes` (peak RSS, `VmHWM`). Idempotent.
pub fn register(registry: &Registry) {
    registry.gauge_fn(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        || status_kb("VmRSS:") * 1024.0,
    );
    registry.gauge_fn(
        "process_max_resident_memory_bytes",
        "Peak resident memory size in bytes.",
        || status_kb("VmHWM:") * 1024.0,
    );
    registry.gauge_fn(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        || status_kb("VmSize:") * 1024.0,
    );
    registry.counter_fn(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        || {
            let f = stat_fields();
            // Fields after the command: utime is the 14th field of the line, stime the 15th.
            (field(&f, 14) + field(&f, 15)) / TICKS_PER_SECOND
        },
    );
    registry.gauge_fn(
        "process_open_fds",
        "Number of open file descriptors.",
        || {
            std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count() as f64)
                .unwrap_or(0.0)
        },
    );
    registry.gauge_fn(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        || {
            let since_boot = field(&stat_fields(), 22) / TICKS_PER_SECOND;
            boot_time() + since_boot
        },
    );
}

/// A `kB` value from `/proc/self/status`, e.g. `VmRSS:`.
fn status_kb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// The fields of `/proc/self/stat` after the command name (which may contain spaces), so that
/// index 0 is field 3 (`state`) of proc(5).
fn stat_fields() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    text.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Field `n` (1-based, as numbered in proc(5)) of `/proc/self/stat` as a number.
fn field(after_comm: &[String], n: usize) -> f64 {
    after_comm
        .get(n - 3)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The boot time in seconds since the epoch (`btime` in `/proc/stat`).
fn boot_time() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_series_render() {
        let r = Registry::new();
        register(&r);
        register(&r);
        let text = r.render();
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
        if std::path::Path::new("/proc/self/status").exists() {
            let rss = text
                .lines()
                .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap();
            assert!(rss > 1e5, "rss {rss}");
            let start = text
                .lines()
                .find_map(|l| l.strip_prefix("process_start_time_seconds "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap();
            assert!(start > 1.6e9, "start {start}");
        }
    }
}
