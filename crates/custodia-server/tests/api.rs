//! The API over real HTTP on a real port, on SQLite and (with `CUSTODIA_TEST_DATABASE_URL`)
//! PostgreSQL. Assertion messages show status codes and error bodies only — error bodies
//! never hold personal values, record bodies are never printed.

use custodia_detect::synth::Synth;
use custodia_server::ServerConfig;
use custodia_store::testing::TempPg;
use custodia_vault::stored::SealedFields;
use custodia_vault::{CollectionSchema, Suite, Vault};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const TOKEN: &str = "test-admin-token-0123456789";
const CUSTOMERS_TOML: &str = include_str!("../../../examples/customers.toml");

struct Server {
    base: String,
    http: Client,
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<TempPg>,
}

impl Server {
    async fn boot(pg_admin: Option<&str>) -> Server {
        Server::boot_with(
            pg_admin,
            ServerConfig {
                body_limit_bytes: 64 * 1024,
                ..ServerConfig::default()
            },
        )
        .await
    }

    async fn boot_with(pg_admin: Option<&str>, cfg: ServerConfig) -> Server {
        let (url, dir, pg) = match pg_admin {
            None => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("c.db").display());
                (url, Some(dir), None)
            }
            Some(admin) => {
                let pg = TempPg::create(admin).await;
                (pg.url.clone(), None, Some(pg))
            }
        };
        let store = custodia_store::open(&url).await.unwrap();
        let vault = Vault::init(store, Suite::Intl, b"api test passphrase", true)
            .await
            .unwrap();
        vault.install_token(TOKEN, "admin", "admin").await.unwrap();
        let app = custodia_server::router(Arc::new(vault), &cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(custodia_server::serve(
            listener,
            app,
            std::future::pending(),
        ));
        Server {
            base: format!("http://{addr}"),
            http: Client::new(),
            url,
            _dir: dir,
            pg,
        }
    }

    async fn finish(self) {
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("X-Custodia-Purpose", "account_service")
    }

    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let resp = rb.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, headers, body)
    }

    async fn put_customers(&self) {
        let (st, _, body) = self
            .send(
                self.req(Method::PUT, "/v1/collections/customers")
                    .header("Content-Type", "application/toml")
                    .body(CUSTOMERS_TOML),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }

    async fn record_count(&self) -> i64 {
        let (_, _, body) = self.send(self.req(Method::GET, "/metrics")).await;
        let text = body.as_str().unwrap().to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("custodia_records{collection=\"customers\"} "))
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    }
}

fn customer(s: &mut Synth) -> Value {
    let fields: serde_json::Map<String, Value> = s
        .customer()
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    json!({"fields": fields, "attributes": {"tier": "high", "branch": "SH-002"}})
}

fn assert_error(
    status: StatusCode,
    body: &Value,
    want: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    if let Some(f) = field {
        assert_eq!(body["error"]["field"], f, "{body}");
    }
}

/// Every route in the OpenAPI document (which is generated from the handlers) refuses a
/// request without a valid token, except `/healthz`.
async fn every_route_requires_auth(s: &Server) {
    let doc: Value = serde_json::from_str(&custodia_server::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "OpenAPI lists the routes");
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path
            .replace("{name}", "customers")
            .replace("{id}", "00000000-0000-4000-8000-000000000000");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some("wrong-token")] {
                let mut rb = s
                    .http
                    .request(m.clone(), format!("{}{concrete}", s.base))
                    .header("X-Custodia-Purpose", "account_service")
                    .header("Content-Type", "application/json")
                    .body("{}");
                if let Some(t) = token {
                    rb = rb.bearer_auth(t);
                }
                let (st, headers, body) = s.send(rb).await;
                if path == "/healthz" {
                    assert_eq!(st, StatusCode::OK);
                } else {
                    assert_error(st, &body, StatusCode::UNAUTHORIZED, "unauthorized", None);
                    assert_eq!(headers["www-authenticate"], "Bearer");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 26, "checked {checked} route/method pairs");
}

async fn records_crud(s: &Server) {
    let (st, _, body) = s
        .send(
            s.req(Method::PUT, "/v1/collections/customers")
                .header("Content-Type", "application/toml")
                .body(CUSTOMERS_TOML),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "second PUT of the same schema: {body}");
    let (st, _, body) = s
        .send(s.req(Method::GET, "/v1/collections/customers"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["schema"]["fields"].as_array().unwrap().len(), 13);

    let mut synth = Synth::new(5);
    let mut rec = customer(&mut synth);
    let mobile = rec["fields"]["mobile"].as_str().unwrap().to_string();
    let spaced = format!("+86 {} {} {}", &mobile[..3], &mobile[3..7], &mobile[7..]);
    rec["fields"]["mobile"] = json!(spaced);
    rec["fields"]["phone_pin"] = json!("908172");
    let (st, headers, body) = s
        .send(
            s.req(Method::POST, "/v1/collections/customers/records")
                .json(&rec),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(headers["etag"], "\"1\"");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(body["version"], 1);
    let path = format!("/v1/collections/customers/records/{id}");

    let (st, headers, body) = s.send(s.req(Method::GET, &path)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers["etag"], "\"1\"");
    assert_eq!(body["id"], id.as_str());
    assert!(
        body["fields"]["mobile"] == mobile.as_str(),
        "mobile not returned in canonical form"
    );
    assert!(
        body["fields"].get("phone_pin").is_none(),
        "C3 never returned"
    );
    assert_eq!(
        body["attributes"],
        json!({"tier": "high", "branch": "SH-002"})
    );

    let (st, _, body) = s
        .send(
            s.req(Method::POST, &format!("{path}/verify"))
                .json(&json!({"field": "phone_pin", "value": "908172"})),
        )
        .await;
    assert_eq!((st, body["match"].clone()), (StatusCode::OK, json!(true)));

    let patch = json!({"fields": {"annual_income": 123456}});
    let (st, _, body) = s.send(s.req(Method::PATCH, &path).json(&patch)).await;
    assert_error(
        st,
        &body,
        StatusCode::PRECONDITION_REQUIRED,
        "precondition_required",
        Some("If-Match"),
    );
    let (st, _, body) = s
        .send(
            s.req(Method::PATCH, &path)
                .header("If-Match", "\"7\"")
                .json(&patch),
        )
        .await;
    assert_error(
        st,
        &body,
        StatusCode::PRECONDITION_FAILED,
        "version_mismatch",
        None,
    );
    let (st, headers, body) = s
        .send(
            s.req(Method::PATCH, &path)
                .header("If-Match", "\"1\"")
                .json(&patch),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["version"], 2);
    assert_eq!(headers["etag"], "\"2\"");

    // Concurrent PATCHes at the same version: one wins, the other gets 412.
    let p1 = s.send(
        s.req(Method::PATCH, &path)
            .header("If-Match", "2")
            .json(&json!({"fields": {"risk_score": "1.5"}})),
    );
    let p2 = s.send(
        s.req(Method::PATCH, &path)
            .header("If-Match", "2")
            .json(&json!({"fields": {"risk_score": "2.5"}})),
    );
    let ((a, _, _), (b, _, _)) = tokio::join!(p1, p2);
    let mut got = [a.as_u16(), b.as_u16()];
    got.sort();
    assert_eq!(got, [200, 412]);

    let dashed = format!("{}-{}-{}", &mobile[..3], &mobile[3..7], &mobile[7..]);
    let (st, _, body) = s
        .send(
            s.req(Method::POST, "/v1/collections/customers/search")
                .json(&json!({"where": {"mobile": dashed}, "limit": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["count"], 1);
    assert_eq!(body["records"][0]["id"], id.as_str());
    assert_eq!(body["records"][0]["version"], 3);

    let (st, _, _) = s.send(s.req(Method::DELETE, &path)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, body) = s.send(s.req(Method::GET, &path)).await;
    assert_error(st, &body, StatusCode::NOT_FOUND, "record_not_found", None);
    let (st, _, body) = s.send(s.req(Method::DELETE, &path)).await;
    assert_error(st, &body, StatusCode::NOT_FOUND, "record_not_found", None);
    let (st, _, body) = s
        .send(
            s.req(Method::POST, "/v1/collections/customers/search")
                .json(&json!({"where": {"mobile": mobile}})),
        )
        .await;
    assert_eq!((st, body["count"].clone()), (StatusCode::OK, json!(0)));
}

/// Bad input: a 4xx in the one error shape, naming the field, never echoing the value, and
/// nothing written.
async fn bad_input(s: &Server) {
    let before = s.record_count().await;
    let mut synth = Synth::new(6);
    let good = customer(&mut synth);
    let secret_mobile = "15412345678"; // unallocated prefix: invalid
    let mut bad = good.clone();
    bad["fields"]["mobile"] = json!(secret_mobile);
    let records = "/v1/collections/customers/records";

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str, Option<&str>)> = vec![
        (s.req(Method::POST, records).json(&bad), StatusCode::BAD_REQUEST, "invalid_field", Some("mobile")),
        (
            s.req(Method::POST, records).json(&{
                let mut b = good.clone();
                b["fields"]["id_no"] = json!("11010519491231002Y");
                b
            }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("id_no"),
        ),
        (
            s.req(Method::POST, records).json(&{
                let mut b = good.clone();
                b["fields"]["bank_card"] = json!("6222020200112233441");
                b
            }),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("bank_card"),
        ),
        (
            s.req(Method::POST, records).json(&{
                let mut b = good.clone();
                b["fields"]["shoe_size"] = json!("42");
                b
            }),
            StatusCode::BAD_REQUEST,
            "unknown_field",
            Some("shoe_size"),
        ),
        (
            s.req(Method::POST, records).json(&{
                let mut b = good.clone();
                b["fields"].as_object_mut().unwrap().remove("id_no");
                b
            }),
            StatusCode::BAD_REQUEST,
            "missing_field",
            Some("id_no"),
        ),
        (
            s.req(Method::POST, records).json(&{
                let mut b = good.clone();
                b["attributes"]["tier"] = json!("platinum");
                b
            }),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            Some("body"),
        ),
        (
            s.req(Method::POST, records)
                .header("Content-Type", "application/json")
                .body(format!("{{\"fields\":{{\"mobile\":\"{secret_mobile}\"")),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            Some("body"),
        ),
        (
            s.req(Method::POST, records)
                .header("Content-Type", "application/json")
                .body(format!("{{\"fields\":\"{secret_mobile}\"}}")),
            StatusCode::BAD_REQUEST,
            "invalid_json",
            Some("body"),
        ),
        (
            s.req(Method::POST, records).header("Content-Type", "text/plain").body("hi"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            Some("Content-Type"),
        ),
        (
            s.req(Method::POST, records)
                .header("Content-Type", "application/json")
                .body(format!("{{\"fields\":{{\"notes\":\"{}\"}}}}", "x".repeat(70 * 1024))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            Some("body"),
        ),
        (
            s.http
                .post(format!("{}{records}", s.base))
                .bearer_auth(TOKEN)
                .json(&good),
            StatusCode::BAD_REQUEST,
            "missing_purpose",
            Some("X-Custodia-Purpose"),
        ),
        (
            s.req(Method::POST, records).header("X-Custodia-Purpose", "Marketing Blast!").json(&good),
            StatusCode::BAD_REQUEST,
            "invalid_header",
            Some("X-Custodia-Purpose"),
        ),
        (
            s.req(Method::POST, "/v1/collections/nobody/records").json(&good),
            StatusCode::NOT_FOUND,
            "collection_not_found",
            None,
        ),
        (
            s.req(Method::GET, "/v1/collections/customers/records/not-a-uuid"),
            StatusCode::NOT_FOUND,
            "record_not_found",
            None,
        ),
        (
            s.req(Method::POST, "/v1/collections/customers/search")
                .json(&json!({"where": {"address": "北京"}})),
            StatusCode::BAD_REQUEST,
            "not_searchable",
            Some("address"),
        ),
        (
            s.req(Method::POST, "/v1/collections/customers/search")
                .json(&json!({"where": {"mobile": secret_mobile}})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("mobile"),
        ),
        (
            s.req(Method::POST, "/v1/collections/customers/search")
                .json(&json!({"where": {"mobile": "13812345678"}, "limit": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("limit"),
        ),
        (
            s.req(Method::POST, "/v1/collections/customers/search").json(&json!({"where": {}})),
            StatusCode::BAD_REQUEST,
            "invalid_field",
            Some("where"),
        ),
        (
            s.req(Method::PUT, "/v1/collections/Bad-Name").json(&json!({"fields": []})),
            StatusCode::NOT_FOUND,
            "collection_not_found",
            None,
        ),
        (
            s.req(Method::PUT, "/v1/collections/other")
                .json(&json!({"fields": [{"name": "pin", "type": "string", "level": "C3", "searchable": true}]})),
            StatusCode::BAD_REQUEST,
            "invalid_schema",
            Some("pin"),
        ),
        (
            s.req(Method::PUT, "/v1/collections/customers")
                .json(&json!({"fields": [{"name": "x", "type": "string", "level": "C1"}]})),
            StatusCode::CONFLICT,
            "schema_conflict",
            None,
        ),
        (s.req(Method::GET, "/v1/nothing-here"), StatusCode::NOT_FOUND, "not_found", None),
        (
            s.req(Method::GET, "/v1/collections/customers/records/%FF%FE"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
            Some("path"),
        ),
        (
            s.req(Method::DELETE, "/v1/collections/customers"),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        ),
    ];
    for (i, (rb, status, code, field)) in cases.into_iter().enumerate() {
        let resp = rb.send().await.unwrap();
        let st = resp.status();
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(secret_mobile)
                && !text.contains("11010519491231002Y")
                && !text.contains("6222020200112233441"),
            "case {i}: error body echoes the submitted value"
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("case {i}: body is not JSON"));
        assert!(st.is_client_error(), "case {i}: {st} {body}");
        assert_error(st, &body, status, code, field);
    }
    assert_eq!(
        s.record_count().await,
        before,
        "no bad request wrote anything"
    );
}

async fn moved_ciphertext_over_http(s: &Server) {
    let mut synth = Synth::new(7);
    let mut ids = vec![];
    for _ in 0..2 {
        let (st, _, body) = s
            .send(
                s.req(Method::POST, "/v1/collections/customers/records")
                    .json(&customer(&mut synth)),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    // A DBA copies record 0's encrypted mobile into record 1.
    let sql_get = "SELECT fields FROM records WHERE id = $1";
    let sql_set = "UPDATE records SET fields = $1 WHERE id = $2";
    macro_rules! tamper {
        ($pool:expr) => {{
            let pool = $pool;
            let a: Vec<u8> = sqlx::query_scalar(sql_get)
                .bind(&ids[0])
                .fetch_one(&pool)
                .await
                .unwrap();
            let b: Vec<u8> = sqlx::query_scalar(sql_get)
                .bind(&ids[1])
                .fetch_one(&pool)
                .await
                .unwrap();
            let a = SealedFields::decode(&a).unwrap();
            let mut b = SealedFields::decode(&b).unwrap();
            b.set("mobile", a.get("mobile").unwrap().to_vec());
            sqlx::query(sql_set)
                .bind(b.encode())
                .bind(&ids[1])
                .execute(&pool)
                .await
                .unwrap();
        }};
    }
    if s.url.starts_with("sqlite") {
        tamper!(sqlx::SqlitePool::connect(&s.url).await.unwrap());
    } else {
        tamper!(sqlx::PgPool::connect(&s.url).await.unwrap());
    }
    let (st, _, body) = s
        .send(s.req(
            Method::GET,
            &format!("/v1/collections/customers/records/{}", ids[1]),
        ))
        .await;
    assert_error(
        st,
        &body,
        StatusCode::INTERNAL_SERVER_ERROR,
        "integrity_error",
        Some("mobile"),
    );
    assert!(
        body.get("fields").is_none(),
        "nothing of the record is returned"
    );
}

async fn openapi_metrics_request_ids(s: &Server) {
    let (st, _, doc) = s.send(s.req(Method::GET, "/openapi.json")).await;
    assert_eq!(st, StatusCode::OK);
    for p in [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/collections/{name}",
        "/v1/collections/{name}/records",
        "/v1/collections/{name}/records/{id}",
        "/v1/collections/{name}/search",
    ] {
        assert!(doc["paths"].get(p).is_some(), "OpenAPI lacks {p}");
    }
    assert!(doc["paths"]["/v1/collections/{name}/records/{id}"]
        .get("patch")
        .is_some());
    let (st, _, text) = s.send(s.req(Method::GET, "/metrics")).await;
    assert_eq!(st, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(text.contains("custodia_http_requests_total{method=\"POST\",route=\"/v1/collections/{name}/records\",status=\"201\"}"));
    assert!(text.contains("status=\"400\""));
    let resp = s.req(Method::GET, "/healthz").send().await.unwrap();
    assert!(resp
        .headers()
        .get("x-request-id")
        .is_some_and(|v| v.len() >= 32));
    let resp = s
        .req(Method::GET, "/healthz")
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-me-42");
}

async fn run_all(s: &Server) {
    s.put_customers().await;
    every_route_requires_auth(s).await;
    records_crud(s).await;
    bad_input(s).await;
    moved_ciphertext_over_http(s).await;
    openapi_metrics_request_ids(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_sqlite() {
    let s = Server::boot(None).await;
    run_all(&s).await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_postgres() {
    let Ok(admin) = std::env::var("CUSTODIA_TEST_DATABASE_URL") else {
        eprintln!("api_on_postgres skipped: CUSTODIA_TEST_DATABASE_URL is not set");
        return;
    };
    let s = Server::boot(Some(&admin)).await;
    run_all(&s).await;
    s.finish().await;
    custodia_store::testing::mark_suite_passed("custodia-server api_on_postgres");
}

/// A request that outlives the configured timeout gets 503 `timeout` in the error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out() {
    let s = Server::boot_with(
        None,
        ServerConfig {
            request_timeout: std::time::Duration::ZERO,
            ..ServerConfig::default()
        },
    )
    .await;
    let (st, _, body) = s.send(s.req(Method::GET, "/v1/collections")).await;
    assert_error(st, &body, StatusCode::SERVICE_UNAVAILABLE, "timeout", None);
    s.finish().await;
}

#[test]
fn schema_example_is_valid() {
    let s = CollectionSchema::from_toml(CUSTOMERS_TOML).unwrap();
    s.validate().unwrap();
}
