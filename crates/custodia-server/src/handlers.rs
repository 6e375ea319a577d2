//! The API's handlers. Each data handler logs one access line (ids, purpose, outcome — never
//! a value); the audit log of a later issue replaces these lines with signed events.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, IfMatch, JsonBody, Principal, Purpose, RequestId};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use custodia_core::{Attributes, CollectionSchema};
use custodia_vault::{RecordInput, RecordPatch, DEFAULT_SEARCH_LIMIT};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct CollectionInfo {
    pub name: String,
    pub version: i64,
    pub schema: CollectionSchema,
}

#[derive(Serialize, ToSchema)]
pub struct CollectionList {
    pub collections: Vec<String>,
}

/// Body of `POST …/records`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRecord {
    /// Field name → value, as declared in the collection schema.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    pub attributes: Attributes,
}

/// Body of `PATCH …/records/{id}`: fields set to `null` are removed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRecord {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<custodia_vault::AttributesPatch>,
}

#[derive(Serialize, ToSchema)]
pub struct Written {
    pub id: String,
    pub version: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub id: String,
    pub version: i64,
    pub attributes: Attributes,
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
}

impl From<custodia_vault::Record> for RecordView {
    fn from(r: custodia_vault::Record) -> Self {
        RecordView {
            id: r.id,
            version: r.version,
            attributes: r.attributes,
            fields: r.fields,
        }
    }
}

/// Body of `POST …/search`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Searchable field → exact value (any surface form; normalized as on write).
    #[serde(rename = "where")]
    #[schema(value_type = Object)]
    pub conditions: Map<String, Value>,
    /// At most 100; default 20.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResult {
    pub records: Vec<RecordView>,
    pub count: usize,
}

/// Body of `POST …/records/{id}/verify`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub field: String,
    #[schema(value_type = String)]
    pub value: Value,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyResult {
    #[serde(rename = "match")]
    pub matches: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Rotation {
    pub collection: String,
    pub kek_version: i64,
    pub rewrapped: u64,
}

fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if custodia_core::is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "collection_not_found",
            format!("{kind} names match [a-z][a-z0-9_]{{0,62}}"),
        ))
    }
}

/// Record ids are UUIDs; anything else cannot name a record.
fn check_id(id: &str) -> Result<(), ApiError> {
    let ok = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "record_not_found",
            "record not found",
        ))
    }
}

fn access_log(
    req: &RequestId,
    who: &Principal,
    purpose: &Purpose,
    action: &str,
    collection: &str,
    record: &str,
    outcome: &str,
) {
    tracing::info!(
        target: "custodia::access",
        request_id = %req.0,
        actor = %who.name,
        purpose = %purpose.0,
        action,
        collection,
        record,
        outcome,
    );
}

fn outcome<T>(r: &Result<T, ApiError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code,
    }
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/metrics", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    let mut counts = vec![];
    if let Ok(names) = s.vault.list_collections().await {
        for n in names {
            if let Ok(c) = s.vault.count(&n).await {
                counts.push((n, c));
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        s.metrics.render(&counts),
    )
        .into_response()
}

#[utoipa::path(get, path = "/openapi.json", security(("bearer" = [])),
    responses((status = 200, description = "This API's OpenAPI 3.1 document")))]
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        crate::openapi_json(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/v1/collections", security(("bearer" = [])),
    responses((status = 200, body = CollectionList), (status = 401, body = ErrorBody)))]
pub async fn list_collections(State(s): State<AppState>) -> Result<Json<CollectionList>, ApiError> {
    Ok(Json(CollectionList {
        collections: s.vault.list_collections().await?,
    }))
}

/// Creates or evolves a collection. The body is the schema as JSON, or as TOML with
/// `Content-Type: application/toml`.
#[utoipa::path(put, path = "/v1/collections/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name")),
    request_body = CollectionSchema,
    responses((status = 201, body = CollectionInfo, description = "created"),
              (status = 200, body = CollectionInfo, description = "changed"),
              (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_collection(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    let is_toml = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("toml"));
    let mut schema: CollectionSchema = if is_toml {
        let bytes = crate::extract::body_bytes(req, &()).await?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            ApiError::bad_request("invalid_schema", "body", "TOML body must be UTF-8")
        })?;
        CollectionSchema::from_toml(text)
            .map_err(|e| ApiError::bad_request("invalid_schema", "body", e.message))?
    } else {
        let JsonBody(schema) = JsonBody::<CollectionSchema>::from_request(req, &()).await?;
        schema
    };
    if schema.name.is_empty() {
        schema.name = name.clone();
    } else if schema.name != name {
        return Err(ApiError::bad_request(
            "invalid_schema",
            "name",
            "the schema's name differs from the collection named in the path",
        ));
    }
    let (version, created) = s.vault.put_collection(schema.clone()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(CollectionInfo {
            name,
            version,
            schema,
        }),
    )
        .into_response())
}

use axum::extract::FromRequest;

#[utoipa::path(get, path = "/v1/collections/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name")),
    responses((status = 200, body = CollectionInfo), (status = 404, body = ErrorBody)))]
pub async fn get_collection(
    State(s): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CollectionInfo>, ApiError> {
    check_name("collection", &name)?;
    let (schema, version) = s.vault.collection(&name).await?;
    Ok(Json(CollectionInfo {
        name,
        version,
        schema: (*schema).clone(),
    }))
}

#[utoipa::path(post, path = "/v1/collections/{name}/records", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = CreateRecord,
    responses((status = 201, body = Written), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "duplicate value in a unique field")))]
pub async fn create_record(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CreateRecord>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    let input = RecordInput {
        fields: body.fields,
        attributes: body.attributes,
    };
    let r = s.vault.create(&name, input).await.map_err(ApiError::from);
    let id = r.as_ref().map(|w| w.id.as_str()).unwrap_or("-");
    access_log(&rid, &who, &purpose, "create", &name, id, outcome(&r));
    let w = r?;
    let etag = etag(w.version);
    Ok((
        StatusCode::CREATED,
        [(header::ETAG, etag)],
        Json(Written {
            id: w.id,
            version: w.version,
        }),
    )
        .into_response())
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header")
}

#[utoipa::path(get, path = "/v1/collections/{name}/records/{id}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    responses((status = 200, body = RecordView, headers(("ETag" = String, description = "record version"))),
              (status = 404, body = ErrorBody), (status = 410, body = ErrorBody, description = "crypto-shredded"),
              (status = 500, body = ErrorBody, description = "integrity_error: a ciphertext was altered or moved")))]
pub async fn get_record(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = s.vault.get(&name, &id).await.map_err(ApiError::from);
    access_log(&rid, &who, &purpose, "read", &name, &id, outcome(&r));
    let rec = r?;
    let etag = etag(rec.version);
    Ok(([(header::ETAG, etag)], Json(RecordView::from(rec))).into_response())
}

#[utoipa::path(patch, path = "/v1/collections/{name}/records/{id}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("If-Match" = String, Header, description = "the version last read"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = PatchRecord,
    responses((status = 200, body = Written), (status = 412, body = ErrorBody),
              (status = 428, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn patch_record(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath((name, id)): ApiPath<(String, String)>,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<PatchRecord>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let patch = RecordPatch {
        fields: body.fields,
        attributes: body.attributes,
    };
    let r = s
        .vault
        .update(&name, &id, version, patch)
        .await
        .map_err(ApiError::from);
    access_log(&rid, &who, &purpose, "update", &name, &id, outcome(&r));
    let w = r?;
    let etag = etag(w.version);
    Ok((
        [(header::ETAG, etag)],
        Json(Written {
            id: w.id,
            version: w.version,
        }),
    )
        .into_response())
}

#[utoipa::path(delete, path = "/v1/collections/{name}/records/{id}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    responses((status = 204, description = "record crypto-shredded"), (status = 404, body = ErrorBody)))]
pub async fn delete_record(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = s.vault.delete(&name, &id).await.map_err(ApiError::from);
    access_log(&rid, &who, &purpose, "delete", &name, &id, outcome(&r));
    r?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/collections/{name}/search", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = SearchRequest,
    responses((status = 200, body = SearchResult), (status = 400, body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchRequest>,
) -> Result<Json<SearchResult>, ApiError> {
    check_name("collection", &name)?;
    let limit = body.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    let r = s
        .vault
        .search(&name, &body.conditions, limit)
        .await
        .map_err(ApiError::from);
    let fields: Vec<&str> = body.conditions.keys().map(String::as_str).collect();
    let ids = match &r {
        Ok(records) => records
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => "-".into(),
    };
    tracing::info!(
        target: "custodia::access",
        request_id = %rid.0, actor = %who.name, purpose = %purpose.0, action = "search",
        collection = %name, by = %fields.join(","), records = %ids, outcome = outcome(&r),
    );
    let records: Vec<RecordView> = r?.into_iter().map(RecordView::from).collect();
    Ok(Json(SearchResult {
        count: records.len(),
        records,
    }))
}

#[utoipa::path(post, path = "/v1/collections/{name}/records/{id}/verify", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = VerifyRequest,
    responses((status = 200, body = VerifyResult), (status = 400, body = ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    rid: RequestId,
    who: Principal,
    purpose: Purpose,
    ApiPath((name, id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyResult>, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = s
        .vault
        .verify(&name, &id, &body.field, &body.value)
        .await
        .map_err(ApiError::from);
    access_log(&rid, &who, &purpose, "verify", &name, &id, outcome(&r));
    Ok(Json(VerifyResult { matches: r? }))
}

#[utoipa::path(post, path = "/v1/collections/{name}/keys/rotate", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name")),
    responses((status = 200, body = Rotation), (status = 404, body = ErrorBody)))]
pub async fn rotate(
    State(s): State<AppState>,
    who: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Rotation>, ApiError> {
    check_name("collection", &name)?;
    let (kek_version, rewrapped) = s.vault.rotate(&name).await?;
    tracing::info!(target: "custodia::admin", actor = %who.name, collection = %name, kek_version, rewrapped, "keys rotated");
    Ok(Json(Rotation {
        collection: name,
        kek_version,
        rewrapped,
    }))
}

/// A bare handler returning a constant body of a chosen size, enabled only with
/// `--bench-body-bytes`: the reference the read path is measured against.
pub async fn bench_constant(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s.bench_body.clone(),
    )
        .into_response()
}
