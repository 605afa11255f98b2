//! The worker's lifecycle: bind the REST listener, connect to Kafka and read the state
//! topics, resume every connector in its target state, serve until shutdown, then stop.
//!
//! Shutdown order: the signal fires → the listener stops accepting and in-flight requests
//! finish → every connector's tasks are told to stop and drain (capture confirms its last
//! position and saves its offsets, sinks commit) → status records say `UNASSIGNED` → the state
//! producer flushes → [`ConnectServer::run`] returns. Target states are untouched, so the next
//! start resumes every connector where it was.

use std::net::SocketAddr;
use std::time::Duration;

use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind};

use crate::config::WorkerConfig;
use crate::routes::router;
use crate::store::StateStore;
use crate::worker::Worker;

/// How long in-flight requests get after the shutdown signal.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// A started worker: listening, state read, connectors resumed.
#[derive(Debug)]
pub struct ConnectServer {
    /// The REST listener.
    listener: tokio::net::TcpListener,
    /// Its address.
    local_addr: SocketAddr,
    /// The worker.
    worker: Worker,
    /// The settings.
    config: WorkerConfig,
}

impl ConnectServer {
    /// Validates `config`, binds its address, reads the state topics (creating them when
    /// missing) and resumes every stored connector.
    pub async fn start(config: WorkerConfig) -> Result<ConnectServer, Error> {
        config.validate()?;
        let (listener, local_addr) = augur_http::bind(config.addr).await?;
        let (store, restored) = StateStore::open(&config).await?;
        let worker = Worker::start(config.clone(), local_addr.to_string(), store, restored)?;
        Ok(ConnectServer {
            listener,
            local_addr,
            worker,
            config,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The worker (for embedding and tests).
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Serves until `shutdown` fires, then stops every connector (see the module docs).
    pub async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        let ConnectServer {
            listener,
            local_addr,
            worker,
            config,
        } = self;
        let mut signal = shutdown.clone();
        let app = router(
            worker.clone(),
            config.max_body_bytes,
            config.rest_auth.clone(),
        );
        let serve = augur_http::serve_with(
            listener,
            app,
            augur_http::Limits::default(),
            config.tls.clone(),
            async move { signal.wait().await },
        );
        let mut serving = tokio::spawn(serve);
        tracing::info!(address = %local_addr, kafka = %config.bootstrap_servers, "connect worker listening");
        let mut outer = shutdown.clone();
        let early = tokio::select! {
            _ = outer.wait() => None,
            r = &mut serving => Some(r),
        };
        let served = match early {
            Some(r) => r,
            None => {
                tracing::info!("shutting down: finishing requests, then stopping connectors");
                match tokio::time::timeout(HTTP_DRAIN, &mut serving).await {
                    Ok(r) => r,
                    Err(_) => {
                        serving.abort();
                        Ok(Ok(()))
                    }
                }
            }
        };
        worker.shutdown().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::new(ErrorKind::Io, "the HTTP server failed").with_source(e)),
            Err(e) => Err(Error::new(
                ErrorKind::Internal,
                format!("the HTTP server task failed: {e}"),
            )),
        }
    }
}
