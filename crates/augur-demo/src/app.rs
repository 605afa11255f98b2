//! The listing page's HTTP routes: `GET /` (the seller's page), `GET /operator` (the
//! operator's view: pipeline figures and the latest listings), `GET /api/models` (the known
//! car models, for suggestions), `GET /api/listings` (latest listings with their suggestions),
//! `POST /api/listings` (validate every field and INSERT a car), `GET /api/listings/{id}` (the
//! seller's insight: range, reasons, comparable listings, asking-price verdict), `GET
//! /api/events` (server-sent events: each committed prediction as it happens, pipeline figures
//! every second), plus the pipeline's `/metrics`, `/healthz` and `/readyz`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augur_core::status::SourceStatus;
use augur_metrics::Registry;
use augur_runtime::pipeline::{PipelineMetrics, Written};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use serde_json::json;
use tokio::sync::{broadcast, watch};
use tokio_postgres::Client;

use augur_model::Model;

use crate::insight;
use crate::listing::Listing;

const PAGE: &str = include_str!("page.html");
const OPERATOR: &str = include_str!("operator.html");

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    client: Arc<Client>,
    written: broadcast::Sender<Written>,
    status: watch::Receiver<SourceStatus>,
    metrics: PipelineMetrics,
    latencies: Arc<Mutex<VecDeque<f64>>>,
    predicted_table: String,
    model: Arc<Model>,
    known_models: Arc<Vec<String>>,
}

impl AppState {
    /// State over a SQL client for the source database, the pipeline's model, its
    /// written-prediction broadcast, its status and its metrics registry.
    pub fn new(
        client: Client,
        model: Arc<Model>,
        written: broadcast::Sender<Written>,
        status: watch::Receiver<SourceStatus>,
        registry: &Registry,
    ) -> Self {
        let latencies = Arc::new(Mutex::new(VecDeque::with_capacity(512)));
        // Keep the latest streamed latencies for the page's figures.
        let mut rx = written.subscribe();
        let l2 = latencies.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(w) => {
                        if let Some(ms) = w.latency_ms {
                            let mut l = l2.lock().unwrap_or_else(|e| e.into_inner());
                            if l.len() == 512 {
                                l.pop_front();
                            }
                            l.push_back(ms);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        AppState {
            client: Arc::new(client),
            written,
            status,
            metrics: PipelineMetrics::register(registry),
            latencies,
            predicted_table: "car_data_predicted".into(),
            known_models: Arc::new(insight::known_categories(&model, "model")),
            model,
        }
    }
}

/// The routes.
pub fn router(state: AppState, registry: Registry) -> Router {
    let status = state.status.clone();
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/operator", get(|| async { Html(OPERATOR) }))
        .route("/api/models", get(models))
        .route("/api/listings", get(listings).post(submit))
        .route("/api/listings/{id}", get(listing_insight))
        .route("/api/events", get(events))
        .with_state(state)
        .merge(augur_runtime::pipeline::http::router(registry, status))
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn this_year() -> i32 {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    (1970 + days * 400 / 146_097) as i32
}

async fn submit(State(s): State<AppState>, body: Bytes) -> Response {
    let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_slice(&body) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": "the form could not be read (expected a JSON object)"}),
            );
        }
    };
    let l = match Listing::parse(&obj, this_year(), &s.known_models) {
        Ok(l) => l,
        Err(errors) => {
            let list: Vec<serde_json::Value> = errors
                .iter()
                .map(|e| json!({"field": e.field, "problem": e.problem}))
                .collect();
            let words: Vec<String> = errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.problem))
                .collect();
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": words.join("; "), "errors": list}),
            );
        }
    };
    let r = s
        .client
        .query_one(
            "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[&l.model, &l.year, &l.price, &l.transmission, &l.mileage, &l.fuel_type, &l.tax, &l.mpg, &l.engine_size],
        )
        .await;
    match r {
        Ok(row) => json_response(StatusCode::CREATED, json!({"id": row.get::<_, i32>(0)})),
        Err(e) => {
            tracing::warn!(error = %e, "insert failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "the database refused the listing; try again"}),
            )
        }
    }
}

/// `GET /api/models`: the car models the price model knows, for the form's suggestions.
async fn models(State(s): State<AppState>) -> Response {
    json_response(StatusCode::OK, json!(*s.known_models))
}

/// `GET /api/listings/{id}`: what the seller sees about a listing.
async fn listing_insight(State(s): State<AppState>, Path(id): Path<i32>) -> Response {
    let unavailable = |e: tokio_postgres::Error| {
        tracing::warn!(error = %e, "reading a listing failed");
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the database did not answer; try again"}),
        )
    };
    let stored = match insight::read(&s.client, id).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return json_response(
                StatusCode::NOT_FOUND,
                json!({"error": format!("no listing {id}")}),
            );
        }
        Err(e) => return unavailable(e),
    };
    let model = s.model.clone();
    let row = stored.row.clone();
    let explained = tokio::task::spawn_blocking(move || model.explain_json(&row)).await;
    let e = match explained {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            return json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": format!("this listing cannot be priced: {e}")}),
            );
        }
        Err(_) => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal error"}),
            );
        }
    };
    let mut doc = insight::describe(&s.model, &stored, &e);
    match insight::comparables(&s.client, &stored).await {
        Ok(c) => doc["comparables"] = json!(c),
        Err(e) => return unavailable(e),
    }
    json_response(StatusCode::OK, doc)
}

async fn listings(State(s): State<AppState>) -> Response {
    let sql = format!(
        "SELECT c.id, trim(c.model), c.year, c.transmission, c.mileage, c.fueltype, c.price, p.suggestedprice::float8, d.reason \
         FROM car_data c LEFT JOIN {} p USING (id) \
         LEFT JOIN LATERAL (SELECT reason FROM augur_dead_letter WHERE source_table = 'public.car_data' \
           AND key = '{{\"id\":' || c.id || '}}' ORDER BY recorded_at DESC LIMIT 1) d ON p.suggestedprice IS NULL \
         ORDER BY c.id DESC LIMIT 20",
        s.predicted_table
    );
    match s.client.query(&sql, &[]).await {
        Ok(rows) => {
            let items: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    json!({
                        "id": r.get::<_, i32>(0), "model": r.get::<_, Option<String>>(1), "year": r.get::<_, Option<i32>>(2),
                        "transmission": r.get::<_, Option<String>>(3), "mileage": r.get::<_, Option<i32>>(4),
                        "fuelType": r.get::<_, Option<String>>(5), "price": r.get::<_, Option<i32>>(6),
                        "suggestedPrice": r.get::<_, Option<f64>>(7), "problem": r.get::<_, Option<String>>(8),
                    })
                })
                .collect();
            json_response(StatusCode::OK, json!(items))
        }
        // Before the first prediction the predicted table may not exist yet.
        Err(_) => json_response(StatusCode::OK, json!([])),
    }
}

fn stats(s: &AppState, rate: f64) -> serde_json::Value {
    let mut l: Vec<f64> = s
        .latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect();
    l.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| {
        if l.is_empty() {
            serde_json::Value::Null
        } else {
            json!((l[((l.len() - 1) as f64 * q).round() as usize] * 10.0).round() / 10.0)
        }
    };
    json!({
        "status": format!("{:?}", *s.status.borrow()),
        "rows_per_second": (rate * 10.0).round() / 10.0,
        "latency_p50_ms": p(0.5),
        "latency_p99_ms": p(0.99),
        "slot_lag_bytes": s.metrics.slot_lag_bytes.get(),
        "rows_written": s.metrics.written.get(),
        "dead_letters": s.metrics.dead_letters.get(),
    })
}

async fn events(State(s): State<AppState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    enum Next {
        Written(Written),
        Tick,
    }
    let rx = s.written.subscribe();
    let tick = tokio::time::interval(Duration::from_secs(1));
    let last = s.metrics.written.get();
    let stream = futures_util::stream::unfold(
        (rx, tick, s, last, std::time::Instant::now()),
        |(mut rx, mut tick, s, last, at)| async move {
            loop {
                let next = tokio::select! {
                    r = rx.recv() => match r {
                        Ok(w) => Next::Written(w),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick() => Next::Tick,
                };
                return Some(match next {
                    Next::Written(w) => {
                        let id = serde_json::from_str::<serde_json::Value>(&w.key)
                            .ok()
                            .and_then(|k| k.get("id").cloned())
                            .unwrap_or_default();
                        let ev = Event::default().event("prediction").data(
                            json!({"id": id, "price": w.price, "latency_ms": w.latency_ms})
                                .to_string(),
                        );
                        (Ok(ev), (rx, tick, s, last, at))
                    }
                    Next::Tick => {
                        let now = s.metrics.written.get();
                        let rate = (now - last) as f64 / at.elapsed().as_secs_f64().max(0.001);
                        let ev = Event::default()
                            .event("stats")
                            .data(stats(&s, rate).to_string());
                        (Ok(ev), (rx, tick, s, now, std::time::Instant::now()))
                    }
                });
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
