//! The pipeline's HTTP endpoints: `/metrics` (Prometheus), `/healthz` and `/livez` (the process
//! answers), `/readyz` (200 once the source streams, 503 before).

use std::net::SocketAddr;

use augur_core::shutdown::Shutdown;
use augur_core::status::SourceStatus;
use augur_core::{Error, ErrorKind};
use augur_metrics::Registry;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

/// The routes, for embedding in a bigger router (the demo page adds its own).
pub fn router(registry: Registry, status: watch::Receiver<SourceStatus>) -> Router {
    let metrics = move || {
        let r = registry.clone();
        async move {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                r.render(),
            )
        }
    };
    let ready = move || {
        let s = *status.borrow();
        async move {
            match s {
                SourceStatus::Streaming => (StatusCode::OK, "ready\n").into_response(),
                other => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {other:?}\n"),
                )
                    .into_response(),
            }
        }
    };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
}

/// Binds `addr` and serves [`router`] until shutdown.
pub async fn spawn(
    addr: SocketAddr,
    tls: Option<augur_http::ServerTls>,
    registry: Registry,
    status: watch::Receiver<SourceStatus>,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    serve(addr, tls, router(registry, status), shutdown).await
}

/// Binds `addr` and serves `app` (over TLS when `tls`) until shutdown.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<augur_http::ServerTls>,
    app: Router,
    mut shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, Error> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::new(ErrorKind::Config, format!("cannot listen on {addr}"))
            .with_source(e)
            .with_hint("choose another address (http.listen)")
    })?;
    Ok(tokio::spawn(async move {
        let limits = augur_http::Limits::default();
        let stop = async move { shutdown.wait().await };
        let _ = augur_http::serve_with(listener, app, limits, tls, stop).await;
    }))
}
