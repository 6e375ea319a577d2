//! Custodia's HTTP API (axum): bearer-token authentication, collections, encrypted records,
//! blind-index search, C3 verification, key rotation, Prometheus metrics and an OpenAPI
//! document generated from the handlers themselves.
//!
//! Every response to a mistake of the caller is a 4xx in the one JSON error shape; panics
//! become a 500 with no detail; request ids are set and echoed (`x-request-id`); bodies
//! are size-limited and requests time out.
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod handlers;
pub mod metrics;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use custodia_vault::Vault;
use error::ApiError;
use extract::Principal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Size of the constant body of `GET /bench/constant`; the route exists only when set.
    pub bench_body_bytes: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            bench_body_bytes: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub vault: Arc<Vault>,
    pub metrics: Arc<metrics::Metrics>,
    pub request_timeout: Duration,
    pub bench_body: axum::body::Bytes,
}

/// The whole API as one router.
pub fn router(vault: Arc<Vault>, cfg: &ServerConfig) -> Router {
    let state = AppState {
        vault,
        metrics: Arc::new(metrics::Metrics::default()),
        request_timeout: cfg.request_timeout,
        bench_body: bench_body(cfg.bench_body_bytes.unwrap_or(0)),
    };
    use handlers::*;
    let protected = Router::new()
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/collections", get(list_collections))
        .route(
            "/v1/collections/{name}",
            put(put_collection).get(get_collection),
        )
        .route("/v1/collections/{name}/records", post(create_record))
        .route(
            "/v1/collections/{name}/records/{id}",
            get(get_record).patch(patch_record).delete(delete_record),
        )
        .route("/v1/collections/{name}/records/{id}/verify", post(verify))
        .route("/v1/collections/{name}/search", post(search))
        .route("/v1/collections/{name}/keys/rotate", post(rotate))
        .route_layer(from_fn_with_state(state.clone(), require_auth));
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .merge(protected);
    if cfg.bench_body_bytes.is_some() {
        app = app.route("/bench/constant", get(bench_constant));
    }
    app.fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
        })
        .layer(from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(cfg.body_limit_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("handler panicked");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "internal error",
                )
                .into_response()
            },
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn bench_body(n: usize) -> axum::body::Bytes {
    let pad = n.saturating_sub(10);
    axum::body::Bytes::from(format!("{{\"pad\":\"{}\"}}", "x".repeat(pad)))
}

/// Authenticates `Authorization: Bearer <token>` and records who is calling.
async fn require_auth(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(ApiError::unauthorized)?;
    let principal = s
        .vault
        .authenticate(token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    req.extensions_mut().insert(Principal {
        name: principal.name,
        role: principal.role,
    });
    Ok(next.run(req).await)
}

/// Times out slow requests and counts every response by route template and status.
async fn observe(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = match tokio::time::timeout(s.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took longer than the configured timeout",
        )
        .into_response(),
    };
    s.metrics.observe(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custodia API",
        description = "Encrypted customer records: write, read, search by exact value, crypto-shred. \
Every data call needs `Authorization: Bearer <token>` and `X-Custodia-Purpose: <purpose id>`."
    ),
    paths(
        handlers::healthz,
        handlers::metrics,
        handlers::openapi,
        handlers::list_collections,
        handlers::put_collection,
        handlers::get_collection,
        handlers::create_record,
        handlers::get_record,
        handlers::patch_record,
        handlers::delete_record,
        handlers::search,
        handlers::verify,
        handlers::rotate,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, built once from the handler annotations.
pub fn openapi_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("OpenAPI document serializes")
    })
    .clone()
}

/// Serves the router on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
