//! Sign-in, users, service accounts, policy reload and security events.

use crate::auth::{self, Principal, PrincipalKind, ServiceDoc, UserDoc, SERVICE, USER};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, JsonBody};
use crate::guard::{Admin, ClientIp};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use custodia_core::Tier;
use custodia_policy::{Action, Target};
use custodia_store::now_unix;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn ts(t: Option<i64>) -> Option<String> {
    t.map(custodia_detect::format_timestamp)
}

fn parse_ts(field: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => custodia_detect::parse_timestamp(s)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_field",
                    field,
                    "expected a date (YYYY-MM-DD) or an RFC 3339 time",
                )
            }),
    }
}

fn check_names(field: &str, names: &[String]) -> Result<(), ApiError> {
    if names.len() > 64 || names.iter().any(|n| !custodia_core::is_valid_name(n)) {
        return Err(ApiError::bad_request(
            "invalid_field",
            field,
            "a list of at most 64 ids matching [a-z][a-z0-9_]{0,62}",
        ));
    }
    Ok(())
}

fn check_branch(branch: &str) -> Result<(), ApiError> {
    if custodia_core::Attributes::is_valid_branch(branch) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_field",
            "branch",
            "branch must be at most 64 characters of A-Z, a-z, 0-9, '-' or '_'",
        ))
    }
}

fn check_principal_name(name: &str) -> Result<(), ApiError> {
    if custodia_core::is_valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_field",
            "name",
            "names match [a-z][a-z0-9_]{0,62}",
        ))
    }
}

fn not_found(kind: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        if kind == USER {
            "user_not_found"
        } else {
            "service_account_not_found"
        },
        format!("no such {kind}"),
    )
}

/// Purposes a role gets when a user is created without `allowed_purposes`.
pub fn default_purposes(roles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = roles
        .iter()
        .flat_map(|r| match r.as_str() {
            "cs_agent" => &["customer_service"][..],
            "account_manager" => &["account_service", "customer_service"][..],
            "compliance_officer" => &["dsr", "incident"][..],
            "analyst" => &["analytics"][..],
            "auditor" => &["audit"][..],
            "admin" => &["administration"][..],
            _ => &[][..],
        })
        .map(|s| s.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

// ----- sign-in ----------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current 6-digit TOTP code (required for users enrolled in TOTP).
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    /// Bearer token of the new session (`css_…`); stored only as a hash.
    pub token: String,
    /// Absolute expiry (RFC 3339); the session also ends after the idle timeout.
    pub expires_at: String,
    pub idle_timeout_seconds: i64,
}

#[utoipa::path(post, path = "/v1/auth/login", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse),
              (status = 401, body = ErrorBody, description = "invalid_credentials (which part is wrong is not said)"),
              (status = 429, body = ErrorBody, description = "too_many_attempts: back-off, see Retry-After")))]
pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let result = if body.username.len() > 64 || body.password.len() > 1024 {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "username, password or one-time code is wrong",
        ))
    } else {
        auth::login(
            &s.vault,
            &s.auth,
            &body.username,
            &body.password,
            body.totp.as_deref(),
            ip,
        )
        .await
    };
    // Sign-ins, failed or not, are audited before the answer (fail closed).
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    s.audit
        .record(&crate::audit::login_event(&body.username, ip, outcome))
        .await?;
    let signed = result?;
    Ok(Json(LoginResponse {
        token: signed.token,
        expires_at: custodia_detect::format_timestamp(signed.expires_at),
        idle_timeout_seconds: s.auth.session_idle_secs,
    }))
}

#[utoipa::path(post, path = "/v1/auth/logout", security(("bearer" = [])),
    responses((status = 204, description = "session revoked"), (status = 401, body = ErrorBody)))]
pub async fn logout(State(s): State<AppState>, who: Principal) -> Result<StatusCode, ApiError> {
    if let Some(hash) = &who.session {
        s.auth_cache.forget_token_hash(hash);
        s.vault
            .store()
            .revoke_session(hash, now_unix())
            .await
            .map_err(auth::store_err)?;
        tracing::info!(target: "custodia::auth", user = %who.name, "signed out");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    pub name: String,
    /// `user`, `service` or `token` (bootstrap admin).
    pub kind: String,
    pub roles: Vec<String>,
    pub branch: String,
    pub clearance: Tier,
    pub allowed_purposes: Vec<String>,
    /// Whether clear access is possible at all (commitment signed, training current).
    pub compliant: bool,
    /// Whether this session was opened with a second factor.
    pub mfa: bool,
    #[schema(value_type = Object)]
    pub quota: custodia_policy::quota::Limits,
}

/// The caller as policies see it, with its quotas.
#[utoipa::path(get, path = "/v1/auth/whoami", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub async fn whoami(State(s): State<AppState>, who: Principal) -> Json<WhoAmI> {
    let sub = &who.subject;
    Json(WhoAmI {
        name: who.name.clone(),
        kind: match who.kind {
            auth::PrincipalKind::Token => "token",
            auth::PrincipalKind::User => "user",
            auth::PrincipalKind::Service => "service",
        }
        .into(),
        roles: sub.roles.clone(),
        branch: sub.branch.clone(),
        clearance: sub.clearance,
        allowed_purposes: sub.purposes.clone(),
        compliant: sub.compliant,
        mfa: sub.mfa,
        quota: s.guard.limits(&who),
    })
}

// ----- users ------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub name: String,
    /// At least 12 characters, not containing the username.
    #[schema(min_length = 12)]
    pub password: String,
    /// At least one.
    #[schema(min_items = 1)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub branch: String,
    #[serde(default)]
    pub clearance: Tier,
    /// Defaults to the purposes of the user's roles.
    #[serde(default)]
    pub allowed_purposes: Option<Vec<String>>,
    /// Date (or RFC 3339 time) the confidentiality commitment was signed.
    #[serde(default)]
    pub confidentiality_signed_at: Option<String>,
    /// Date (or RFC 3339 time) of the last completed privacy training.
    #[serde(default)]
    pub training_completed_at: Option<String>,
    /// Enrol a TOTP second factor (default true; required for the configured MFA roles).
    #[serde(default = "yes")]
    pub totp: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    pub password: Option<String>,
    pub roles: Option<Vec<String>>,
    pub branch: Option<String>,
    pub clearance: Option<Tier>,
    pub allowed_purposes: Option<Vec<String>>,
    pub confidentiality_signed_at: Option<String>,
    pub training_completed_at: Option<String>,
    pub disabled: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub version: i64,
    pub roles: Vec<String>,
    pub branch: String,
    pub clearance: Tier,
    pub allowed_purposes: Vec<String>,
    pub confidentiality_signed_at: Option<String>,
    pub training_completed_at: Option<String>,
    /// Signed and trained within 12 months: clear access possible.
    pub compliant: bool,
    pub totp_enrolled: bool,
    pub disabled: bool,
    pub created_at: String,
}

fn user_view(name: &str, version: i64, d: &UserDoc) -> UserView {
    UserView {
        name: name.to_string(),
        version,
        roles: d.roles.clone(),
        branch: d.branch.clone(),
        clearance: d.clearance,
        allowed_purposes: d.allowed_purposes.clone(),
        confidentiality_signed_at: ts(d.confidentiality_signed_at),
        training_completed_at: ts(d.training_completed_at),
        compliant: d.compliant(now_unix()),
        totp_enrolled: d.totp.is_some(),
        disabled: d.disabled,
        created_at: custodia_detect::format_timestamp(d.created_at),
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    /// `otpauth://` enrolment URI, shown once (scan it into an authenticator app).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_uri: Option<String>,
}

fn changed_meanwhile() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the account changed meanwhile; retry",
    )
}

/// Stores a changed user if it is still at `version`; returns the new version.
async fn save_user(s: &AppState, name: &str, doc: &UserDoc, version: i64) -> Result<i64, ApiError> {
    let json = serde_json::to_string(doc).expect("user doc serializes");
    s.vault
        .store()
        .put_principal(USER, name, &json, None, Some(version))
        .await
        .map_err(auth::store_err)?
        .ok_or_else(changed_meanwhile)
}

/// Ends every session of a user, on this node at once (cache) and everywhere (database).
async fn end_sessions(s: &AppState, name: &str) -> Result<u64, ApiError> {
    s.auth_cache.forget(PrincipalKind::User, name);
    s.vault
        .store()
        .revoke_user_sessions(name, now_unix())
        .await
        .map_err(auth::store_err)
}

fn require_admin(s: &AppState, a: &Admin, action: Action) -> Result<(), ApiError> {
    s.guard.require(&a.asker, action, &Target::System)
}

fn needs_mfa(cfg: &auth::AuthConfig, roles: &[String]) -> bool {
    roles.iter().any(|r| cfg.mfa_roles.contains(r))
}

fn mfa_required() -> ApiError {
    ApiError::bad_request(
        "mfa_required",
        "totp",
        "users with these roles must enrol a TOTP second factor",
    )
}

/// Creates a user; with TOTP (the default) the answer carries the enrolment URI once.
#[utoipa::path(post, path = "/v1/users", security(("bearer" = [])), request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    a: Admin,
    JsonBody(b): JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let created = install_user(&s.vault, &s.auth, b, None, None).await?;
    tracing::info!(target: "custodia::admin", actor = %a.who.name, user = %created.user.name, "user created");
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Validates and stores a new user; `totp_secret` chosen by the operator (dev) or random;
/// `password_hash` the Argon2id verifier of `b.password` when already computed (the demo
/// users share one, so `serve --dev` runs Argon2id once, not once per user).
pub async fn install_user(
    vault: &custodia_vault::Vault,
    cfg: &auth::AuthConfig,
    b: CreateUser,
    totp_secret: Option<&[u8]>,
    password_hash: Option<String>,
) -> Result<CreatedUser, ApiError> {
    check_principal_name(&b.name)?;
    check_names("roles", &b.roles)?;
    if b.roles.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "roles",
            "give the user at least one role",
        ));
    }
    check_branch(&b.branch)?;
    let purposes = b
        .allowed_purposes
        .clone()
        .unwrap_or_else(|| default_purposes(&b.roles));
    check_names("allowed_purposes", &purposes)?;
    auth::check_password_policy(&b.name, &b.password)?;
    if !b.totp && needs_mfa(cfg, &b.roles) {
        return Err(mfa_required());
    }
    let signed = parse_ts("confidentiality_signed_at", &b.confidentiality_signed_at)?;
    let trained = parse_ts("training_completed_at", &b.training_completed_at)?;
    let (sealed, uri) = if b.totp {
        let (sealed, uri, _) = match totp_secret {
            Some(secret) => auth::totp_from_secret(vault, cfg, &b.name, secret),
            None => auth::enrol_totp(vault, cfg, &b.name),
        };
        (Some(sealed), Some(uri))
    } else {
        (None, None)
    };
    let doc = UserDoc {
        password: match password_hash {
            Some(h) => h,
            None => auth::hash_password(b.password).await,
        },
        totp: sealed,
        totp_last_step: 0,
        roles: b.roles,
        branch: b.branch,
        clearance: b.clearance,
        allowed_purposes: purposes,
        confidentiality_signed_at: signed,
        training_completed_at: trained,
        disabled: false,
        created_at: now_unix(),
    };
    let json = serde_json::to_string(&doc).expect("user doc serializes");
    let put = vault
        .store()
        .put_principal(USER, &b.name, &json, None, None)
        .await
        .map_err(auth::store_err)?;
    if put.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_exists",
            "a user with this name exists",
        )
        .with_field("name"));
    }
    Ok(CreatedUser {
        user: user_view(&b.name, 1, &doc),
        totp_uri: uri,
    })
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

#[utoipa::path(get, path = "/v1/users", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 403, body = ErrorBody)))]
pub async fn list_users(State(s): State<AppState>, a: Admin) -> Result<Json<UserList>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let rows = s
        .vault
        .store()
        .list_principals(USER)
        .await
        .map_err(auth::store_err)?;
    let mut users = vec![];
    for r in rows {
        if let Ok(d) = serde_json::from_str::<UserDoc>(&r.doc) {
            users.push(user_view(&r.name, r.version, &d));
        }
    }
    Ok(Json(UserList { users }))
}

#[utoipa::path(get, path = "/v1/users/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let (doc, version) = auth::load_user(s.vault.store().as_ref(), &name)
        .await?
        .ok_or_else(|| not_found(USER))?;
    Ok(Json(user_view(&name, version, &doc)))
}

/// Changes a user. A new password or disabling revokes the user's sessions.
#[utoipa::path(patch, path = "/v1/users/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")), request_body = PatchUser,
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn patch_user(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
    JsonBody(b): JsonBody<PatchUser>,
) -> Result<Json<UserView>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let store = s.vault.store();
    let (mut doc, version) = auth::load_user(store.as_ref(), &name)
        .await?
        .ok_or_else(|| not_found(USER))?;
    let mut revoke = false;
    if let Some(p) = b.password {
        auth::check_password_policy(&name, &p)?;
        doc.password = auth::hash_password(p).await;
        revoke = true;
    }
    if let Some(r) = b.roles {
        check_names("roles", &r)?;
        if r.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_field",
                "roles",
                "give the user at least one role",
            ));
        }
        if doc.totp.is_none() && needs_mfa(&s.auth, &r) {
            return Err(mfa_required().with_field("roles"));
        }
        doc.roles = r;
    }
    if let Some(v) = b.branch {
        check_branch(&v)?;
        doc.branch = v;
    }
    if let Some(v) = b.clearance {
        doc.clearance = v;
    }
    if let Some(v) = b.allowed_purposes {
        check_names("allowed_purposes", &v)?;
        doc.allowed_purposes = v;
    }
    if b.confidentiality_signed_at.is_some() {
        doc.confidentiality_signed_at =
            parse_ts("confidentiality_signed_at", &b.confidentiality_signed_at)?;
    }
    if b.training_completed_at.is_some() {
        doc.training_completed_at = parse_ts("training_completed_at", &b.training_completed_at)?;
    }
    if let Some(d) = b.disabled {
        revoke |= d && !doc.disabled;
        doc.disabled = d;
    }
    let v = save_user(&s, &name, &doc, version).await?;
    s.auth_cache.forget(PrincipalKind::User, &name);
    if revoke {
        end_sessions(&s, &name).await?;
    }
    tracing::info!(target: "custodia::admin", actor = %a.who.name, user = %name, "user changed");
    Ok(Json(user_view(&name, v, &doc)))
}

#[utoipa::path(delete, path = "/v1/users/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 204, description = "deleted, sessions revoked"), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let store = s.vault.store();
    if !store
        .delete_principal(USER, &name)
        .await
        .map_err(auth::store_err)?
    {
        return Err(not_found(USER));
    }
    end_sessions(&s, &name).await?;
    tracing::info!(target: "custodia::admin", actor = %a.who.name, user = %name, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: u64,
}

/// Ends every session of a user at once.
#[utoipa::path(delete, path = "/v1/users/{name}/sessions", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = Revoked), (status = 404, body = ErrorBody)))]
pub async fn revoke_sessions(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Revoked>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let store = s.vault.store();
    auth::load_user(store.as_ref(), &name)
        .await?
        .ok_or_else(|| not_found(USER))?;
    let revoked = end_sessions(&s, &name).await?;
    tracing::info!(target: "custodia::admin", actor = %a.who.name, user = %name, revoked, "sessions revoked");
    Ok(Json(Revoked { revoked }))
}

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    pub totp_uri: String,
}

/// Replaces a user's TOTP secret (lost phone); the old codes stop working.
#[utoipa::path(post, path = "/v1/users/{name}/totp", security(("bearer" = [])),
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = TotpEnrolment), (status = 404, body = ErrorBody)))]
pub async fn reset_totp(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TotpEnrolment>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let store = s.vault.store();
    let (mut doc, version) = auth::load_user(store.as_ref(), &name)
        .await?
        .ok_or_else(|| not_found(USER))?;
    let (sealed, uri, _) = auth::enrol_totp(&s.vault, &s.auth, &name);
    doc.totp = Some(sealed);
    doc.totp_last_step = 0;
    save_user(&s, &name, &doc, version).await?;
    end_sessions(&s, &name).await?;
    Ok(Json(TotpEnrolment { totp_uri: uri }))
}

// ----- service accounts ---------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,62}$")]
    pub name: String,
    /// Collections the key may touch.
    pub collections: Vec<String>,
    /// Purposes it may declare.
    pub purposes: Vec<String>,
    /// Any of create, update, delete, read, read_masked, read_clear, verify, search, list, export.
    pub grants: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub collections: Vec<String>,
    pub purposes: Vec<String>,
    pub grants: Vec<String>,
    pub created_at: String,
    pub rotated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceKey {
    #[serde(flatten)]
    pub account: ServiceView,
    /// The API key (`csk_…`), shown this once; only its hash is stored.
    pub api_key: String,
}

fn service_view(name: &str, d: &ServiceDoc) -> ServiceView {
    ServiceView {
        name: name.to_string(),
        collections: d.collections.clone(),
        purposes: d.purposes.clone(),
        grants: d.grants.clone(),
        created_at: custodia_detect::format_timestamp(d.created_at),
        rotated_at: custodia_detect::format_timestamp(d.rotated_at),
    }
}

/// Creates a service account and returns its API key once.
#[utoipa::path(post, path = "/v1/service-accounts", security(("bearer" = [])), request_body = CreateService,
    responses((status = 201, body = ServiceKey), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_service(
    State(s): State<AppState>,
    a: Admin,
    JsonBody(b): JsonBody<CreateService>,
) -> Result<Response, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let (view, key) = install_service(&s.vault, b, None).await?;
    tracing::info!(target: "custodia::admin", actor = %a.who.name, service = %view.name, "service account created");
    Ok((
        StatusCode::CREATED,
        Json(ServiceKey {
            account: view,
            api_key: key,
        }),
    )
        .into_response())
}

/// Validates and stores a new service account; `key` chosen by the operator or random.
pub async fn install_service(
    vault: &custodia_vault::Vault,
    b: CreateService,
    key: Option<String>,
) -> Result<(ServiceView, String), ApiError> {
    let name_ok = !b.name.is_empty()
        && b.name.len() <= 63
        && b.name.starts_with(|c: char| c.is_ascii_lowercase())
        && b.name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if !name_ok {
        return Err(ApiError::bad_request(
            "invalid_field",
            "name",
            "names match [a-z][a-z0-9_-]{0,62}",
        ));
    }
    check_names("collections", &b.collections)?;
    check_names("purposes", &b.purposes)?;
    if let Some(g) = b
        .grants
        .iter()
        .find(|g| !auth::GRANTS.contains(&g.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "grants",
            format!(
                "unknown grant '{}'; grants are {}",
                g.chars().take(32).collect::<String>(),
                auth::GRANTS.join(", ")
            ),
        ));
    }
    let now = now_unix();
    let doc = ServiceDoc {
        collections: b.collections,
        purposes: b.purposes,
        grants: b.grants,
        created_at: now,
        rotated_at: now,
    };
    let key = key.unwrap_or_else(auth::new_api_key);
    let json = serde_json::to_string(&doc).expect("service doc serializes");
    let put = vault
        .store()
        .put_principal(
            SERVICE,
            &b.name,
            &json,
            Some(&custodia_crypto::token_hash(&key)),
            None,
        )
        .await
        .map_err(auth::store_err)?;
    if put.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "service_account_exists",
            "a service account with this name exists",
        )
        .with_field("name"));
    }
    Ok((service_view(&b.name, &doc), key))
}

#[derive(Serialize, ToSchema)]
pub struct ServiceList {
    pub service_accounts: Vec<ServiceView>,
}

#[utoipa::path(get, path = "/v1/service-accounts", security(("bearer" = [])),
    responses((status = 200, body = ServiceList), (status = 403, body = ErrorBody)))]
pub async fn list_services(
    State(s): State<AppState>,
    a: Admin,
) -> Result<Json<ServiceList>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let rows = s
        .vault
        .store()
        .list_principals(SERVICE)
        .await
        .map_err(auth::store_err)?;
    let service_accounts = rows
        .iter()
        .filter_map(|r| {
            serde_json::from_str::<ServiceDoc>(&r.doc)
                .ok()
                .map(|d| service_view(&r.name, &d))
        })
        .collect();
    Ok(Json(ServiceList { service_accounts }))
}

/// Issues a new API key; the old one stops working at once.
#[utoipa::path(post, path = "/v1/service-accounts/{name}/rotate", security(("bearer" = [])),
    params(("name" = String, Path, description = "service account name")),
    responses((status = 200, body = ServiceKey), (status = 404, body = ErrorBody)))]
pub async fn rotate_service_key(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ServiceKey>, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    let store = s.vault.store();
    let (mut doc, version) = auth::load_service(store.as_ref(), &name)
        .await?
        .ok_or_else(|| not_found("service account"))?;
    doc.rotated_at = now_unix();
    let key = auth::new_api_key();
    let json = serde_json::to_string(&doc).expect("service doc serializes");
    store
        .put_principal(
            SERVICE,
            &name,
            &json,
            Some(&custodia_crypto::token_hash(&key)),
            Some(version),
        )
        .await
        .map_err(auth::store_err)?
        .ok_or_else(changed_meanwhile)?;
    s.auth_cache.forget(PrincipalKind::Service, &name);
    tracing::info!(target: "custodia::admin", actor = %a.who.name, service = %name, "API key rotated");
    Ok(Json(ServiceKey {
        account: service_view(&name, &doc),
        api_key: key,
    }))
}

#[utoipa::path(delete, path = "/v1/service-accounts/{name}", security(("bearer" = [])),
    params(("name" = String, Path, description = "service account name")),
    responses((status = 204, description = "deleted; its key stops working"), (status = 404, body = ErrorBody)))]
pub async fn delete_service(
    State(s): State<AppState>,
    a: Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    require_admin(&s, &a, Action::ManageUsers)?;
    if !s
        .vault
        .store()
        .delete_principal(SERVICE, &name)
        .await
        .map_err(auth::store_err)?
    {
        return Err(not_found("service account"));
    }
    s.auth_cache.forget(PrincipalKind::Service, &name);
    tracing::info!(target: "custodia::admin", actor = %a.who.name, service = %name, "service account deleted");
    Ok(StatusCode::NO_CONTENT)
}

// ----- policy and security events ----------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct PolicyReloaded {
    pub policies: usize,
    pub source: String,
}

/// Re-reads the policy files; a broken pack is refused (400) and the running one stays.
#[utoipa::path(post, path = "/v1/policies/reload", security(("bearer" = [])),
    responses((status = 200, body = PolicyReloaded), (status = 400, body = ErrorBody)))]
pub async fn reload_policies(
    State(s): State<AppState>,
    a: Admin,
) -> Result<Json<PolicyReloaded>, ApiError> {
    require_admin(&s, &a, Action::ManagePolicy)?;
    let n = crate::reload_policies(&s)
        .map_err(|e| ApiError::bad_request("invalid_policy", "policies", e.to_string()))?;
    Ok(Json(PolicyReloaded {
        policies: n,
        source: s.guard.engine.source(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// RFC 3339 time or date; default: the last 24 hours.
    pub since: Option<String>,
    /// At most 1000; default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventView>,
}

/// Security events for alerting: quota refusals, sign-in back-offs.
#[utoipa::path(get, path = "/v1/security-events", security(("bearer" = [])), params(EventsQuery),
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody)))]
pub async fn security_events(
    State(s): State<AppState>,
    a: Admin,
    q: Result<axum::extract::Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventList>, ApiError> {
    require_admin(&s, &a, Action::ReadAudit)?;
    let axum::extract::Query(q) = q.map_err(|_| {
        ApiError::bad_request("invalid_query", "query", "expected ?since=<time>&limit=<n>")
    })?;
    let since = parse_ts("since", &q.since)?.unwrap_or(now_unix() - 86_400);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = s
        .vault
        .store()
        .security_events(since, limit)
        .await
        .map_err(auth::store_err)?;
    Ok(Json(EventList {
        events: rows
            .into_iter()
            .map(|e| EventView {
                id: e.id,
                at: custodia_detect::format_timestamp(e.at),
                actor: e.actor,
                kind: e.kind,
                detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    }))
}
