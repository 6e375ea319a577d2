//! The API's handlers. Each data handler logs one access line (ids, purpose, outcome — never
//! a value); the audit log of a later issue replaces these lines with signed events.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, IfMatch, JsonBody};
use crate::guard::{Access, Admin, Guard, RecordView};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use custodia_audit::event::Pairs;
use custodia_core::{Attributes, CollectionSchema};
use custodia_policy::{Action, Target};
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
    /// The attributes to change; those left out keep their value.
    #[serde(default)]
    #[schema(value_type = Option<custodia_core::Attributes>)]
    pub attributes: Option<custodia_vault::AttributesPatch>,
}

#[derive(Serialize, ToSchema)]
pub struct Written {
    pub id: String,
    pub version: i64,
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
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole_number")]
    pub limit: Option<i64>,
}

/// An optional integer that may also arrive as a float without a fraction (`20.0`, as some
/// JSON encoders write every number): JSON Schema counts both as integers.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected an integer")),
    }
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

/// Writes the access's audit event and its log line; the response may be sent only if
/// this returns `Ok` (fail closed: 503 `audit_unavailable` otherwise).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn audited(
    s: &AppState,
    a: &Access,
    action: &str,
    collection: &str,
    record_ids: &[String],
    fields: &[(&str, &str)],
    searched: &[(&str, &str)],
    outcome: &str,
) -> Result<(), ApiError> {
    tracing::info!(
        target: "custodia::access",
        request_id = %a.request_id,
        actor = %a.who.name,
        purpose = %a.asker.context.purpose,
        reason_given = !a.asker.context.reason.is_empty(),
        action,
        collection,
        records = record_ids.len(),
        outcome,
    );
    let ctx = &a.asker.context;
    let client_addr = ctx.client_ip.to_string();
    let event = custodia_audit::event::EventRef {
        time_ms: now_ms(),
        actor: &a.who.name,
        actor_kind: actor_kind(&a.who),
        session: a.who.session.as_ref().map(|h| &h[..16.min(h.len())]),
        client_addr: Some(&client_addr),
        request_id: Some(&a.request_id),
        action,
        collection: Some(collection),
        record_ids,
        target: None,
        fields: Pairs(fields),
        searched: Pairs(searched),
        purpose: Some(&ctx.purpose),
        reason: (!ctx.reason.is_empty()).then_some(ctx.reason.as_str()),
        outcome,
    };
    s.audit.record_ref(&event).await.map(|_| ())
}

pub(crate) fn actor_kind(p: &crate::auth::Principal) -> &'static str {
    match p.kind {
        crate::auth::PrincipalKind::Token => "token",
        crate::auth::PrincipalKind::User => "user",
        crate::auth::PrincipalKind::Service => "service",
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Refuses (403) a caller who may not read `collection`'s schema, before anything is looked
/// up: the record routes then answer the same for a collection outside the caller's reach
/// whether or not it exists, as `GET /v1/collections/{name}` does.
fn require_visible(s: &AppState, a: &Access, collection: &str) -> Result<(), ApiError> {
    s.guard.require(
        &a.asker,
        Action::ReadSchema,
        &Target::Collection(collection.to_string()),
    )
}

/// The record's attributes, once the policy permits `action` on it.
async fn require_on_record(
    s: &AppState,
    a: &Access,
    collection: &str,
    id: &str,
    action: Action,
) -> Result<custodia_core::Attributes, ApiError> {
    require_visible(s, a, collection)?;
    let (_, current) = s.vault.attributes(collection, id).await?;
    s.guard.require(
        &a.asker,
        action,
        &Guard::record_target(collection, &current),
    )?;
    Ok(current)
}

fn ids_of(id: &str) -> Vec<String> {
    if id == "-" {
        vec![]
    } else {
        vec![id.to_string()]
    }
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
pub async fn metrics(State(s): State<AppState>, a: Admin) -> Result<Response, ApiError> {
    s.guard
        .require(&a.asker, Action::ReadMetrics, &Target::System)?;
    let mut counts = vec![];
    if let Ok(names) = s.vault.list_collections().await {
        for n in names {
            if let Ok(c) = s.vault.count(&n).await {
                counts.push((n, c));
            }
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        {
            let mut text = s.metrics.render(&counts, s.guard.engine.reloads());
            s.audit.render_metrics(&mut text);
            text
        },
    )
        .into_response())
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

/// The collections whose schema the caller may read (`read_schema`); empty if none.
#[utoipa::path(get, path = "/v1/collections", security(("bearer" = [])),
    responses((status = 200, body = CollectionList), (status = 401, body = ErrorBody)))]
pub async fn list_collections(
    State(s): State<AppState>,
    a: Admin,
) -> Result<Json<CollectionList>, ApiError> {
    // Only the collections whose schema the caller may read (none: an empty list).
    let mut collections = s.vault.list_collections().await?;
    collections.retain(|name| {
        s.guard.engine.allows(
            &a.asker,
            Action::ReadSchema,
            &Target::Collection(name.clone()),
        )
    });
    Ok(Json(CollectionList { collections }))
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
    a: Admin,
    ApiPath(name): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    s.guard
        .require(&a.asker, Action::ManageSchema, &Target::System)?;
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

/// A collection's schema: names, types, levels and flags, no customer data. Outside the
/// caller's `read_schema` it is refused (403) before the collection is looked up.
#[utoipa::path(get, path = "/v1/collections/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name")),
    responses((status = 200, body = CollectionInfo), (status = 404, body = ErrorBody)))]
pub async fn get_collection(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CollectionInfo>, ApiError> {
    check_name("collection", &name)?;
    s.guard.require(
        &a.asker,
        Action::ReadSchema,
        &Target::Collection(name.clone()),
    )?;
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
              (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "duplicate value in a unique field")))]
pub async fn create_record(
    State(s): State<AppState>,
    a: Access,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<CreateRecord>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    let target = Guard::record_target(&name, &body.attributes);
    let r = async {
        s.guard.require(&a.asker, Action::Create, &target)?;
        let input = RecordInput {
            fields: body.fields,
            attributes: body.attributes,
        };
        s.vault.create(&name, input).await.map_err(ApiError::from)
    }
    .await;
    let id = r.as_ref().map(|w| w.id.as_str()).unwrap_or("-");
    audited(&s, &a, "create", &name, &ids_of(id), &[], &[], outcome(&r)).await?;
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

/// Reads one record, shaped by policy: each field clear, masked or omitted (`access`).
#[utoipa::path(get, path = "/v1/collections/{name}/records/{id}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access"),
           ("X-Custodia-Reason" = Option<String>, Header, description = "why (required by some policies, e.g. compliance officers' clear access)")),
    responses((status = 200, body = RecordView, headers(("ETag" = String, description = "record version"))),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 410, body = ErrorBody, description = "crypto-shredded"),
              (status = 429, body = ErrorBody, description = "quota_exceeded"),
              (status = 500, body = ErrorBody, description = "integrity_error: a ciphertext was altered or moved")))]
pub async fn get_record(
    State(s): State<AppState>,
    a: Access,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = async {
        require_visible(&s, &a, &name)?;
        let (schema, version, rec) = s.vault.get_with_schema(&name, &id).await?;
        s.guard.require(
            &a.asker,
            Action::Read,
            &Guard::record_target(&name, &rec.attributes),
        )?;
        let (view, clear) = s.guard.view(&a.asker, &schema, version, rec);
        s.guard.charge(&s, &a.who, 1, clear).await?;
        Ok::<_, ApiError>(view)
    }
    .await;
    let modes = r.as_ref().map(|v| v.access.modes()).unwrap_or_default();
    audited(
        &s,
        &a,
        "read",
        &name,
        &ids_of(&id),
        &modes,
        &[],
        outcome(&r),
    )
    .await?;
    let view = r?;
    let etag = etag(view.version);
    Ok(([(header::ETAG, etag)], Json(view)).into_response())
}

#[utoipa::path(patch, path = "/v1/collections/{name}/records/{id}", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("If-Match" = String, Header, description = "the version last read"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = PatchRecord,
    responses((status = 200, body = Written), (status = 403, body = ErrorBody),
              (status = 412, body = ErrorBody),
              (status = 428, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn patch_record(
    State(s): State<AppState>,
    a: Access,
    ApiPath((name, id)): ApiPath<(String, String)>,
    IfMatch(version): IfMatch,
    JsonBody(body): JsonBody<PatchRecord>,
) -> Result<Response, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = async {
        let current = require_on_record(&s, &a, &name, &id, Action::Update).await?;
        if let Some(p) = &body.attributes {
            let moved = custodia_core::Attributes {
                tier: p.tier.unwrap_or(current.tier),
                branch: p.branch.clone().unwrap_or(current.branch.clone()),
            };
            // Moving a customer to another branch or tier needs the right there too.
            s.guard.require(
                &a.asker,
                Action::Update,
                &Guard::record_target(&name, &moved),
            )?;
        }
        let patch = RecordPatch {
            fields: body.fields,
            attributes: body.attributes,
        };
        s.vault
            .update(&name, &id, version, patch)
            .await
            .map_err(ApiError::from)
    }
    .await;
    audited(&s, &a, "update", &name, &ids_of(&id), &[], &[], outcome(&r)).await?;
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
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access"),
           ("X-Custodia-Reason" = Option<String>, Header, description = "why (the default pack requires one for erasure)")),
    responses((status = 204, description = "record crypto-shredded"), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn delete_record(
    State(s): State<AppState>,
    a: Access,
    ApiPath((name, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = async {
        require_on_record(&s, &a, &name, &id, Action::Delete).await?;
        s.vault.delete(&name, &id).await.map_err(ApiError::from)
    }
    .await;
    audited(&s, &a, "delete", &name, &ids_of(&id), &[], &[], outcome(&r)).await?;
    r?;
    Ok(StatusCode::NO_CONTENT)
}

/// Finds customers by exact values of searchable fields; results are shaped by policy and
/// cut to the caller's per-search quota.
#[utoipa::path(post, path = "/v1/collections/{name}/search", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access"),
           ("X-Custodia-Reason" = Option<String>, Header, description = "why")),
    request_body = SearchRequest,
    responses((status = 200, body = SearchResult), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn search(
    State(s): State<AppState>,
    a: Access,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<SearchRequest>,
) -> Result<Json<SearchResult>, ApiError> {
    check_name("collection", &name)?;
    let r = async {
        s.guard
            .require(&a.asker, Action::Search, &Target::Collection(name.clone()))?;
        let max = s.guard.limits(&a.who).search_limit as i64;
        let limit = body.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        // Validate the requested limit first (a 400 names it), then cut it to the quota.
        if !(1..=custodia_vault::MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_field",
                "limit",
                format!(
                    "limit must be between 1 and {}",
                    custodia_vault::MAX_SEARCH_LIMIT
                ),
            ));
        }
        if max == 0 {
            return Err(ApiError::forbidden("this caller's search quota is zero"));
        }
        let (schema, version) = s.vault.collection(&name).await?;
        let found = s
            .vault
            .search(&name, &body.conditions, limit.min(max))
            .await?;
        let mut views = Vec::with_capacity(found.len());
        let mut clear = 0;
        for rec in found {
            if !s.guard.engine.allows(
                &a.asker,
                Action::Read,
                &Guard::record_target(&name, &rec.attributes),
            ) {
                continue;
            }
            let (v, c) = s.guard.view(&a.asker, &schema, version, rec);
            clear += c;
            views.push(v);
        }
        s.guard
            .charge(&s, &a.who, views.len() as u64, clear)
            .await?;
        Ok(views)
    }
    .await;
    // The searched field names, never the values.
    let mut searched: Vec<(&str, &str)> = body
        .conditions
        .keys()
        .map(|f| (f.as_str(), "exact"))
        .collect();
    searched.sort_unstable(); // the event's maps are in key order
    let (ids, modes) = match &r {
        Ok(records) => (
            records.iter().map(|v| v.id.clone()).collect(),
            records
                .first()
                .map(|v| v.access.modes())
                .unwrap_or_default(),
        ),
        Err(_) => (vec![], vec![]),
    };
    audited(
        &s,
        &a,
        "search",
        &name,
        &ids,
        &modes,
        &searched,
        outcome(&r),
    )
    .await?;
    let records = r?;
    Ok(Json(SearchResult {
        count: records.len(),
        records,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Return ids after this one (the last id of the previous page).
    pub after: Option<String>,
    /// At most 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct IdList {
    pub ids: Vec<String>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Lists record ids (no field values), only for service accounts granted `list`.
#[utoipa::path(get, path = "/v1/collections/{name}/records", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"), ListQuery,
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    responses((status = 200, body = IdList), (status = 403, body = ErrorBody)))]
pub async fn list_records(
    State(s): State<AppState>,
    a: Access,
    ApiPath(name): ApiPath<String>,
    q: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<IdList>, ApiError> {
    check_name("collection", &name)?;
    let axum::extract::Query(q) = q.map_err(|_| {
        ApiError::bad_request("invalid_query", "query", "expected ?after=<id>&limit=<n>")
    })?;
    let r = async {
        s.guard
            .require(&a.asker, Action::List, &Target::Collection(name.clone()))?;
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_field",
                "limit",
                "limit must be between 1 and 1000",
            ));
        }
        let ids = s.vault.list_ids(&name, q.after.as_deref(), limit).await?;
        let next = (ids.len() as i64 == limit)
            .then(|| ids.last().cloned())
            .flatten();
        Ok(IdList { ids, next })
    }
    .await;
    let listed = r.as_ref().map(|l| l.ids.clone()).unwrap_or_default();
    audited(&s, &a, "list", &name, &listed, &[], &[], outcome(&r)).await?;
    r.map(Json)
}

#[utoipa::path(post, path = "/v1/collections/{name}/records/{id}/verify", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name"),
           ("id" = String, Path, description = "record id"),
           ("X-Custodia-Purpose" = String, Header, description = "purpose id of this access")),
    request_body = VerifyRequest,
    responses((status = 200, body = VerifyResult), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn verify(
    State(s): State<AppState>,
    a: Access,
    ApiPath((name, id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyResult>, ApiError> {
    check_name("collection", &name)?;
    check_id(&id)?;
    let r = async {
        require_on_record(&s, &a, &name, &id, Action::Verify).await?;
        s.vault
            .verify(&name, &id, &body.field, &body.value)
            .await
            .map_err(ApiError::from)
    }
    .await;
    audited(&s, &a, "verify", &name, &ids_of(&id), &[], &[], outcome(&r)).await?;
    Ok(Json(VerifyResult { matches: r? }))
}

#[utoipa::path(post, path = "/v1/collections/{name}/keys/rotate", security(("bearer" = [])),
    params(("name" = String, Path, description = "collection name")),
    responses((status = 200, body = Rotation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Rotation>, ApiError> {
    check_name("collection", &name)?;
    s.guard
        .require(&a.asker, Action::ManageKeys, &Target::System)?;
    let (kek_version, rewrapped) = s.vault.rotate(&name).await?;
    tracing::info!(target: "custodia::admin", actor = %a.who.name, collection = %name, kek_version, rewrapped, "keys rotated");
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

/// [`bench_constant`] after appending an audit event durably, as every data read does
/// (`--bench-body-bytes` only): the event has the shape and size of a 12-field read's. The
/// read path measured against this reference costs what it adds beyond the audit. The event
/// names the benchmark as its actor (`actor_kind: "benchmark"`).
pub async fn bench_constant_audited(State(s): State<AppState>) -> Result<Response, ApiError> {
    const FIELDS: [(&str, &str); 12] = [
        ("address", "masked"),
        ("annual_income", "clear"),
        ("bank_card", "masked"),
        ("date_of_birth", "clear"),
        ("email", "clear"),
        ("employer_uscc", "clear"),
        ("full_name", "clear"),
        ("id_no", "masked"),
        ("mobile", "clear"),
        ("notes", "clear"),
        ("risk_score", "clear"),
        ("segment", "clear"),
    ];
    let record_ids = ["0192f0c4-7a7e-7b8e-9a55-3c1de2f0a9b1".to_string()];
    let event = custodia_audit::event::EventRef {
        time_ms: now_ms(),
        // Marked as the benchmark's (the route needs no token): an investigation tells these
        // events apart, and finds them with `actor=bench/constant-audited`.
        actor: "bench/constant-audited",
        actor_kind: "benchmark",
        session: None,
        client_addr: Some("127.0.0.1"),
        request_id: Some("0192f0c4-7a7e-7b8e-9a55-3c1de2f0a9b2"),
        action: "read",
        collection: Some("customers"),
        record_ids: &record_ids,
        target: None,
        fields: Pairs(&FIELDS),
        searched: Pairs(&[]),
        purpose: Some("account_service"),
        reason: None,
        outcome: "ok",
    };
    s.audit.record_ref(&event).await?;
    Ok(bench_constant(State(s)).await)
}
