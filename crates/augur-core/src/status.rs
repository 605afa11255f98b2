//! [`SourceStatus`]: where a source is in its life, for readiness checks and live pages.

/// What the source is doing, for readiness probes and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceStatus {
    /// Connecting and checking.
    #[default]
    Starting,
    /// Reading the initial snapshot.
    Snapshot,
    /// Streaming changes.
    Streaming,
    /// Stopped.
    Stopped,
}
