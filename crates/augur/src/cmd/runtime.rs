//! The async runtime and signal handling shared by the long-running subcommands.

use std::process::ExitCode;

use augur_core::shutdown::{self, Shutdown};

/// Builds the tokio runtime (two worker threads: this is a two-core-sized program).
pub(crate) fn tokio() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs `work` as a task on the runtime's workers rather than on the thread that blocks on it:
/// a task the workers run is woken by its sibling tasks through the workers' own queues,
/// whereas the blocking thread has to be unparked (a futex call) every time. A panic in `work`
/// is resumed on the caller.
pub(crate) async fn on_workers<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(work).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the main task was cancelled: {e}"),
    }
}

/// A shutdown signal fired by SIGINT or SIGTERM; a second signal exits at once.
pub(crate) fn signals() -> Shutdown {
    let (trigger, listener) = shutdown::channel();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutting down (signal again to exit at once)");
        trigger.trigger();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(130);
    });
    listener
}

/// Prints an augur error with its fix and returns the failure exit code.
pub(crate) fn report(err: &augur_core::Error) -> ExitCode {
    eprintln!("error: {}", err.full_message());
    if let Some(h) = err.hint() {
        eprintln!("  fix: {h}");
    }
    ExitCode::FAILURE
}
