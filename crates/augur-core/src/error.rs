//! One error type for every stage: a kind that decides retries, a one-line description, an
//! optional fix for the user, and the chained cause.

use std::fmt;

/// What went wrong, coarsely. [`ErrorKind::retry`] is the one place that maps a kind to a
/// retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid (bad value, missing key). Fixed by the user.
    Config,
    /// The source database is not set up for capture (wal_level, privileges, missing table,
    /// slot held elsewhere). Fixed by the user or an administrator.
    SourceSetup,
    /// Authentication was refused.
    Auth,
    /// A network connection failed or broke.
    Connection,
    /// The peer spoke something unexpected.
    Protocol,
    /// A record or value could not be understood or converted.
    Data,
    /// A destination refused or failed a write (Kafka delivery, sink statement).
    Destination,
    /// A destination's target conflicts with the data (e.g. a column type mismatch).
    DestinationSchema,
    /// A local file or process operation failed.
    Io,
    /// The model could not be loaded or evaluated.
    Model,
    /// A bug or an invariant violation.
    Internal,
}

/// What the runtime should do about an error of a given kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after a backoff; the condition is usually transient.
    WithBackoff,
    /// Do not retry; stop and tell the user.
    Fatal,
    /// Do not retry this record; route it to the dead-letter destination and go on.
    DeadLetter,
}

impl ErrorKind {
    /// The single retry policy of augur.
    pub fn retry(self) -> Retry {
        match self {
            ErrorKind::Connection | ErrorKind::Destination | ErrorKind::Io => Retry::WithBackoff,
            ErrorKind::Data => Retry::DeadLetter,
            ErrorKind::Config
            | ErrorKind::SourceSetup
            | ErrorKind::Auth
            | ErrorKind::Protocol
            | ErrorKind::DestinationSchema
            | ErrorKind::Model
            | ErrorKind::Internal => Retry::Fatal,
        }
    }

    /// A short lowercase label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::SourceSetup => "source_setup",
            ErrorKind::Auth => "auth",
            ErrorKind::Connection => "connection",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Data => "data",
            ErrorKind::Destination => "destination",
            ErrorKind::DestinationSchema => "destination_schema",
            ErrorKind::Io => "io",
            ErrorKind::Model => "model",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An augur error.
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` described by `message` (one line, no trailing period, no row values).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Adds what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Chains the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Adds an already boxed cause (as other error types keep theirs).
    pub fn with_boxed_source(
        mut self,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Self {
        self.source = Some(source);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line description.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The suggested fix, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The description followed by every cause, `: `-separated, on one line.
    pub fn full_message(&self) -> String {
        let mut out = self.message.clone();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cur {
            let text = e.to_string();
            if !text.is_empty() && !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cur = e.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(h) = &self.hint {
            d.field("hint", h);
        }
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_message_chains_causes_once() {
        let io = std::io::Error::other("connection refused");
        let e = Error::new(
            ErrorKind::Connection,
            "cannot reach postgres at 127.0.0.1:1",
        )
        .with_source(io)
        .with_hint("start the server");
        assert_eq!(
            e.full_message(),
            "cannot reach postgres at 127.0.0.1:1: connection refused"
        );
        assert_eq!(e.hint(), Some("start the server"));
        assert_eq!(e.kind().retry(), Retry::WithBackoff);
    }
}
