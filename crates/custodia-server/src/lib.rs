//! Custodia's HTTP API (axum): bearer-token authentication, collections, encrypted records,
//! blind-index search, C3 verification, key rotation, Prometheus metrics and an OpenAPI
//! document generated from the handlers themselves.
//!
//! Every response to a mistake of the caller is a 4xx in the one JSON error shape; panics
//! become a 500 with no detail; request ids are set and echoed (`x-request-id`); bodies
//! are size-limited and requests time out.
#![forbid(unsafe_code)]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod error;
pub mod extract;
pub mod guard;
pub mod handlers;
pub mod metrics;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::Router;
use custodia_policy::Engine;
use custodia_vault::Vault;
use error::ApiError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use utoipa::OpenApi;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Size of the constant body of `GET /bench/constant` and `GET /bench/constant-audited`;
    /// the routes exist only when set.
    pub bench_body_bytes: Option<usize>,
    pub auth: auth::AuthConfig,
    pub quotas: custodia_policy::quota::QuotaConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            bench_body_bytes: None,
            auth: auth::AuthConfig::default(),
            quotas: Default::default(),
        }
    }
}

/// What every handler shares; cloned per request and per middleware layer, so one
/// reference count instead of one per member.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub vault: Arc<Vault>,
    pub metrics: Arc<metrics::Metrics>,
    pub guard: Arc<guard::Guard>,
    pub auth: Arc<auth::AuthConfig>,
    pub auth_cache: Arc<auth::AuthCache>,
    pub audit: Arc<audit::AuditLog>,
    pub request_timeout: Duration,
    pub bench_body: axum::body::Bytes,
}

/// Routes as they are registered: `(path, methods)`, for tests that walk every route.
type RouteList = Vec<(&'static str, Vec<Method>)>;

struct Routes {
    router: Router<AppState>,
    list: RouteList,
}

impl Routes {
    fn add(mut self, path: &'static str, methods: &[Method], mr: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, mr);
        self.list.push((path, methods.to_vec()));
        self
    }
}

fn protected_routes() -> Routes {
    use admin::*;
    use handlers::*;
    use Method as M;
    let r = Routes {
        router: Router::new(),
        list: vec![],
    };
    r.add("/metrics", &[M::GET], get(metrics))
        .add("/openapi.json", &[M::GET], get(openapi))
        .add("/v1/auth/logout", &[M::POST], post(logout))
        .add("/v1/auth/whoami", &[M::GET], get(whoami))
        .add(
            "/v1/users",
            &[M::GET, M::POST],
            get(list_users).post(create_user),
        )
        .add(
            "/v1/users/{name}",
            &[M::GET, M::PATCH, M::DELETE],
            get(get_user).patch(patch_user).delete(delete_user),
        )
        .add(
            "/v1/users/{name}/sessions",
            &[M::DELETE],
            delete(revoke_sessions),
        )
        .add("/v1/users/{name}/totp", &[M::POST], post(reset_totp))
        .add(
            "/v1/service-accounts",
            &[M::GET, M::POST],
            get(list_services).post(create_service),
        )
        .add(
            "/v1/service-accounts/{name}",
            &[M::DELETE],
            delete(delete_service),
        )
        .add(
            "/v1/service-accounts/{name}/rotate",
            &[M::POST],
            post(rotate_service_key),
        )
        .add("/v1/policies/reload", &[M::POST], post(reload_policies))
        .add("/v1/audit/tree-head", &[M::GET], get(audit::tree_head))
        .add(
            "/v1/audit/proof/inclusion",
            &[M::GET],
            get(audit::inclusion),
        )
        .add(
            "/v1/audit/proof/consistency",
            &[M::GET],
            get(audit::consistency),
        )
        .add("/v1/audit/events", &[M::GET], get(audit::events))
        .add("/v1/security-events", &[M::GET], get(security_events))
        .add("/v1/collections", &[M::GET], get(list_collections))
        .add(
            "/v1/collections/{name}",
            &[M::PUT, M::GET],
            axum::routing::put(put_collection).get(get_collection),
        )
        .add(
            "/v1/collections/{name}/records",
            &[M::POST, M::GET],
            post(create_record).get(list_records),
        )
        .add(
            "/v1/collections/{name}/records/{id}",
            &[M::GET, M::PATCH, M::DELETE],
            get(get_record).patch(patch_record).delete(delete_record),
        )
        .add(
            "/v1/collections/{name}/records/{id}/verify",
            &[M::POST],
            post(verify),
        )
        .add("/v1/collections/{name}/search", &[M::POST], post(search))
        .add(
            "/v1/collections/{name}/keys/rotate",
            &[M::POST],
            post(rotate),
        )
}

/// Every authenticated route with its methods (`/healthz` and `/v1/auth/login` are the
/// only routes without authentication).
pub fn authenticated_routes() -> Vec<(&'static str, Vec<Method>)> {
    protected_routes().list
}

/// Re-reads the policy pack (API, `custodia policy reload`, SIGHUP).
pub fn reload_policies(s: &AppState) -> Result<usize, custodia_policy::PolicyError> {
    let n = s.guard.engine.reload()?;
    tracing::info!(target: "custodia::admin", policies = n, source = %s.guard.engine.source(), "policies reloaded");
    Ok(n)
}

/// The whole API as one router.
pub fn router(
    vault: Arc<Vault>,
    engine: Arc<Engine>,
    audit: Arc<audit::AuditLog>,
    cfg: &ServerConfig,
) -> Router {
    let state = AppState(Arc::new(Shared {
        vault,
        metrics: Arc::new(metrics::Metrics::default()),
        guard: Arc::new(guard::Guard::new(
            engine,
            custodia_policy::quota::Quotas::new(cfg.quotas.clone()),
        )),
        auth: Arc::new(cfg.auth.clone()),
        auth_cache: Arc::new(auth::AuthCache::default()),
        audit,
        request_timeout: cfg.request_timeout,
        bench_body: bench_body(cfg.bench_body_bytes.unwrap_or(0)),
    }));
    let protected = protected_routes()
        .router
        .route_layer(from_fn_with_state(state.clone(), audit::audit_admin))
        .route_layer(from_fn_with_state(state.clone(), require_auth));
    let mut app = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/v1/auth/login", post(admin::login))
        .merge(protected);
    if cfg.bench_body_bytes.is_some() {
        app = app
            .route("/bench/constant", get(handlers::bench_constant))
            .route(
                "/bench/constant-audited",
                get(handlers::bench_constant_audited),
            );
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
        .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
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
    let principal = auth::authenticate(&s.vault, &s.auth, &s.auth_cache, token).await?;
    req.extensions_mut().insert(principal);
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
Every data call needs `Authorization: Bearer <token>` (a session from /v1/auth/login, an API key, \
or the bootstrap admin token) and `X-Custodia-Purpose: <purpose id>`; each field of a record comes back \
clear, masked or omitted as the Cedar policy decides (`access`)."
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
        handlers::list_records,
        handlers::verify,
        handlers::rotate,
        admin::login,
        admin::logout,
        admin::whoami,
        admin::create_user,
        admin::list_users,
        admin::get_user,
        admin::patch_user,
        admin::delete_user,
        admin::revoke_sessions,
        admin::reset_totp,
        admin::create_service,
        admin::list_services,
        admin::rotate_service_key,
        admin::delete_service,
        admin::reload_policies,
        admin::security_events,
        audit::tree_head,
        audit::inclusion,
        audit::consistency,
        audit::events,
    ),
    modifiers(&BearerAuth, &Conformance)
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

/// Makes the document say what the extractors and middleware do on every route, so that
/// a client generated from it, or a contract test run against it (`tests/contract/run.sh`),
/// meets no undocumented status and no request the spec allows but the server refuses:
/// the shared headers and path segments get the patterns the server checks, and each
/// operation lists the error statuses its extractors can answer with.
struct Conformance;

const NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,62}$";
/// `Attributes::is_valid_branch`, on records and users.
const BRANCH_PATTERN: &str = "^[A-Za-z0-9_-]{0,64}$";
/// What `parse_timestamp` reads (a date, or an RFC 3339 time); empty: no bound.
/// Secured routes that any authenticated caller may use whatever its roles and grants: they
/// never answer 403 and document none (`/v1/collections` asks the policy about each
/// collection, but only to filter its list). `api.rs` calls them as a service
/// account without a single grant.
const OPEN_TO_EVERY_CALLER: [&str; 4] = [
    "/openapi.json",
    "/v1/auth/logout",
    "/v1/auth/whoami",
    "/v1/collections",
];

const TIME_PATTERN: &str = "^([0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))?)?$";
const ID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

impl utoipa::Modify for Conformance {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
        let text = |pattern: &str, max: Option<usize>| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .max_length(max)
                .build()
        };
        // Lists of ids (what `check_names` accepts) and branches in bodies.
        if let Some(components) = openapi.components.as_mut() {
            use utoipa::openapi::schema::{ArrayItems, Schema};
            use utoipa::openapi::RefOr;
            for schema in components.schemas.values_mut() {
                let RefOr::T(Schema::Object(o)) = schema else {
                    continue;
                };
                for (prop, p) in o.properties.iter_mut() {
                    let ids = ["roles", "allowed_purposes", "purposes", "collections"];
                    match (prop.as_str(), p) {
                        (name, RefOr::T(Schema::Array(a))) if ids.contains(&name) => {
                            a.items = ArrayItems::RefOrSchema(Box::new(
                                text(NAME_PATTERN, Some(63)).into(),
                            ));
                            a.max_items = Some(64);
                        }
                        ("branch", RefOr::T(Schema::Object(b))) => {
                            b.pattern = Some(BRANCH_PATTERN.into());
                            b.max_length = Some(64);
                        }
                        _ => {}
                    }
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            // Service account names may also hold '-' (`demo-app`).
            let name_pattern = if path.starts_with("/v1/service-accounts") {
                "^[a-z][a-z0-9_-]{0,62}$"
            } else {
                NAME_PATTERN
            };
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let mut errors: Vec<(u16, &str)> = vec![];
                if op.security.is_some() {
                    errors.push((401, "unauthorized: no valid bearer token"));
                    if !OPEN_TO_EVERY_CALLER.contains(&path.as_str()) {
                        errors.push((403, "forbidden: the policy does not permit it"));
                    }
                    errors.push((503, "storage_error, audit_unavailable or timeout"));
                }
                if op.request_body.is_some() {
                    errors.push((400, "invalid_json, invalid_body or invalid_field"));
                    errors.push((413, "payload_too_large"));
                    errors.push((415, "unsupported_media_type: send application/json"));
                }
                for p in op.parameters.iter_mut().flatten() {
                    let schema = match (&p.parameter_in, p.name.as_str()) {
                        (ParameterIn::Header, "X-Custodia-Purpose") => {
                            p.required = Required::True;
                            errors.push((400, "missing_purpose or invalid_header"));
                            errors.push((429, "quota_exceeded"));
                            text(NAME_PATTERN, Some(63))
                        }
                        (ParameterIn::Header, "X-Custodia-Reason") => {
                            errors.push((400, "invalid_header"));
                            text("^[^\\u0000-\\u001f\\u007f-\\u009f]*$", Some(500))
                        }
                        (ParameterIn::Header, "If-Match") => {
                            p.required = Required::True;
                            errors.push((400, "invalid_header"));
                            errors.push((428, "precondition_required: send If-Match"));
                            text("^(W/)?\"?[1-9][0-9]{0,17}\"?$", None)
                        }
                        (ParameterIn::Path, "name") => {
                            errors.push((404, "no such collection, user or service account"));
                            text(name_pattern, Some(63))
                        }
                        (ParameterIn::Path, "id") => {
                            errors.push((404, "record_not_found"));
                            text(ID_PATTERN, Some(36))
                        }
                        (ParameterIn::Query, name) => {
                            errors.push((400, "invalid_query"));
                            if name != "since" && name != "until" {
                                continue;
                            }
                            text(TIME_PATTERN, None)
                        }
                        _ => continue,
                    };
                    p.schema = Some(schema.into());
                }
                for (status, what) in errors {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(what)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
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

/// Request ids in UUID layout: a random 64-bit prefix drawn once per process, then a
/// counter. tower_http's `MakeRequestUuid` drew 16 random bytes from the OS per request (a
/// `getrandom` system call, ~1 % of the server's CPU under load); a request id has to be
/// unique — across nodes and restarts too, hence the random prefix — not secret (a client
/// may send its own).
#[derive(Clone)]
struct RequestIds(Arc<(u64, std::sync::atomic::AtomicU64)>);

impl RequestIds {
    fn new() -> RequestIds {
        let prefix = uuid::Uuid::new_v4().as_u64_pair().0;
        RequestIds(Arc::new((prefix, std::sync::atomic::AtomicU64::new(0))))
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let (p, counter) = &*self.0;
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            p >> 32,
            (p >> 16) & 0xffff,
            p & 0xffff,
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        );
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

#[cfg(test)]
mod openapi_tests {
    use serde_json::Value;

    fn operations() -> Vec<(String, String, Value)> {
        let doc: Value = serde_json::from_str(&super::openapi_json()).unwrap();
        let mut out = vec![];
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        assert!(out.len() >= 33, "{} operations", out.len());
        out
    }

    fn params<'a>(op: &'a Value, location: &str) -> Vec<&'a Value> {
        op["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == location).collect())
            .unwrap_or_default()
    }

    /// Query strings were once documented as path parameters (utoipa's default for an
    /// `IntoParams` struct), so a generated client would have put `?index=` into the path.
    #[test]
    fn path_parameters_are_exactly_the_template_segments() {
        for (path, method, op) in operations() {
            let mut documented: Vec<&str> = params(&op, "path")
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let mut template: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            documented.sort();
            template.sort();
            assert_eq!(documented, template, "{method} {path}");
            for p in params(&op, "path") {
                assert!(p["schema"]["pattern"].is_string(), "{method} {path} {p}");
            }
        }
        let (_, _, inclusion) = operations()
            .into_iter()
            .find(|(p, _, _)| p == "/v1/audit/proof/inclusion")
            .unwrap();
        let query: Vec<(&str, bool)> = params(&inclusion, "query")
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
            .collect();
        assert_eq!(query, [("index", true), ("size", false)]);
    }

    /// Times and branches carry the rules the server checks, wherever they appear.
    #[test]
    fn times_and_branches_have_their_patterns() {
        let mut times = 0;
        for (path, method, op) in operations() {
            for p in params(&op, "query") {
                if p["name"] == "since" || p["name"] == "until" {
                    assert_eq!(
                        p["schema"]["pattern"],
                        super::TIME_PATTERN,
                        "{method} {path}"
                    );
                    times += 1;
                }
            }
        }
        assert_eq!(times, 3, "since/until of audit and security events");
        let doc: Value = serde_json::from_str(&super::openapi_json()).unwrap();
        for schema in ["Attributes", "CreateUser", "PatchUser"] {
            let branch = &doc["components"]["schemas"][schema]["properties"]["branch"];
            assert_eq!(branch["pattern"], super::BRANCH_PATTERN, "{schema}");
        }
    }

    #[test]
    fn every_operation_documents_the_errors_its_extractors_give() {
        for (path, method, op) in operations() {
            let has = |status: &str| op["responses"].get(status).is_some();
            let secured = op.get("security").is_some();
            assert_eq!(
                secured,
                path != "/healthz" && path != "/v1/auth/login",
                "{path}"
            );
            for status in ["401", "503"] {
                assert!(!secured || has(status), "{method} {path} lacks {status}");
            }
            // 403 wherever a policy or role check can refuse, and only there.
            let open = super::OPEN_TO_EVERY_CALLER.contains(&path.as_str());
            assert_eq!(has("403"), secured && !open, "{method} {path}: 403");
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(has(status), "{method} {path} lacks {status}");
                }
            }
            if !params(&op, "path").is_empty() {
                assert!(has("404"), "{method} {path} lacks 404");
            }
            for p in params(&op, "header") {
                match p["name"].as_str().unwrap() {
                    "X-Custodia-Purpose" => {
                        assert_eq!(p["required"], true, "{method} {path}");
                        assert_eq!(p["schema"]["pattern"], "^[a-z][a-z0-9_]{0,62}$");
                        assert!(has("400") && has("429"), "{method} {path}");
                    }
                    "X-Custodia-Reason" => {
                        assert_eq!(p["schema"]["maxLength"], 500, "{method} {path}")
                    }
                    "If-Match" => {
                        assert_eq!(p["required"], true, "{method} {path}");
                        assert!(has("412") && has("428"), "{method} {path}");
                    }
                    other => panic!("{method} {path}: undocumented header rule for {other}"),
                }
            }
        }
    }
}
