//! Who is calling: users with Argon2id passwords and TOTP, sessions (idle and absolute
//! timeouts, revocable, stored as SHA-256 of the token), sign-in back-off per user and per
//! client address, service accounts with API keys, and the bootstrap admin token.
//!
//! Token prefixes tell the three apart: `css_` session, `csk_` API key, anything else a
//! bootstrap token. Failed sign-ins never say whether the user exists: an unknown user
//! costs the same Argon2id check and counts towards the same back-off.

use crate::error::ApiError;
use axum::http::StatusCode;
use custodia_core::Tier;
use custodia_policy::{Subject, SubjectKind};
use custodia_store::{now_unix, SecurityEvent, SessionRow, Store};
use custodia_vault::Vault;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

pub const USER: &str = "user";
pub const SERVICE: &str = "service";
const SESSION_PREFIX: &str = "css_";
const KEY_PREFIX: &str = "csk_";

/// Sign-in and session settings (`[auth]` in the config file).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session unused this long is over.
    pub session_idle_secs: i64,
    /// A session is over this long after sign-in, used or not.
    pub session_absolute_secs: i64,
    /// Consecutive failures for one username before back-off starts.
    pub lockout_user_after: i64,
    /// Consecutive failures from one client address before back-off starts (higher: an
    /// office behind one NAT address shares it).
    pub lockout_addr_after: i64,
    /// First back-off; it doubles with every further failure, up to `lockout_max_secs`.
    pub lockout_base_secs: i64,
    pub lockout_max_secs: i64,
    /// Accepted TOTP steps either side of now (clock drift).
    pub totp_skew_steps: i64,
    /// Roles that must have a second factor (a user with one of them cannot be created
    /// without TOTP). The default pack also refuses clear C2 to any session without MFA.
    pub mfa_roles: Vec<String>,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_secs: 15 * 60,
            session_absolute_secs: 8 * 3600,
            lockout_user_after: 5,
            lockout_addr_after: 20,
            lockout_base_secs: 30,
            lockout_max_secs: 15 * 60,
            totp_skew_steps: 1,
            mfa_roles: vec![
                "account_manager".into(),
                "compliance_officer".into(),
                "admin".into(),
            ],
            totp_issuer: "Custodia".into(),
        }
    }
}

/// A user as stored (`principals.doc`). Never returned as is: see [`UserView`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserDoc {
    /// Argon2id PHC string.
    pub password: String,
    /// TOTP secret sealed under the vault's secrets key; none if not enrolled.
    #[serde(default)]
    pub totp: Option<String>,
    #[serde(default)]
    pub totp_last_step: i64,
    pub roles: Vec<String>,
    pub branch: String,
    pub clearance: Tier,
    pub allowed_purposes: Vec<String>,
    #[serde(default)]
    pub confidentiality_signed_at: Option<i64>,
    #[serde(default)]
    pub training_completed_at: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
    pub created_at: i64,
}

const YEAR_SECS: i64 = 365 * 86_400;

impl UserDoc {
    /// Signed commitment on file and training within the last 12 months.
    pub fn compliant(&self, now: i64) -> bool {
        self.confidentiality_signed_at.is_some_and(|t| t <= now)
            && self
                .training_completed_at
                .is_some_and(|t| t <= now && now - t <= YEAR_SECS)
    }
}

/// A service account as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceDoc {
    pub collections: Vec<String>,
    pub purposes: Vec<String>,
    pub grants: Vec<String>,
    pub created_at: i64,
    pub rotated_at: i64,
}

/// Grants a service account may hold.
pub const GRANTS: &[&str] = &[
    "create",
    "update",
    "delete",
    "read",
    "read_masked",
    "read_clear",
    "verify",
    "search",
    "list",
    "export",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The bootstrap admin token.
    Token,
    User,
    Service,
}

/// The authenticated caller, put in the request's extensions by the auth middleware.
#[derive(Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub kind: PrincipalKind,
    /// SHA-256 of the session token (sessions only): lets logout revoke exactly it.
    pub session: Option<String>,
    pub subject: Arc<Subject>,
}

impl Principal {
    pub fn roles(&self) -> impl Iterator<Item = &str> {
        let service = (self.kind == PrincipalKind::Service).then_some("service");
        self.subject.roles.iter().map(String::as_str).chain(service)
    }
}

fn expired() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the session is unknown, expired or revoked; sign in again",
    )
    .with_field("Authorization")
}

/// Recently resolved sessions and API keys, so that a busy client costs no database read
/// per request. An entry lives `CACHE_TTL`; revocation, rotation and user changes on this
/// node drop the entries at once, on other nodes they take effect within the TTL.
#[derive(Default)]
pub struct AuthCache {
    entries: std::sync::Mutex<HashMap<String, CachedPrincipal>>,
}

#[derive(Clone)]
struct CachedPrincipal {
    at: std::time::Instant,
    principal: Principal,
    /// Sessions: created and last seen (Unix seconds), to keep enforcing both timeouts.
    session: Option<(i64, i64)>,
}

const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
const CACHE_MAX: usize = 10_000;

impl AuthCache {
    fn get(&self, hash: &str) -> Option<CachedPrincipal> {
        let m = self.entries.lock().expect("auth cache");
        m.get(hash).filter(|c| c.at.elapsed() < CACHE_TTL).cloned()
    }

    /// Caches a freshly resolved principal and returns it. If the entry it replaces had the
    /// same subject, that subject's `Arc` is kept: the policy's decision cache compares its
    /// keys by pointer first and by content only when the pointers differ, which with a new
    /// `Arc` at every refresh (each second) meant comparing every role, purpose and grant
    /// on each request.
    fn put(&self, hash: String, mut c: CachedPrincipal) -> Principal {
        let mut m = self.entries.lock().expect("auth cache");
        if let Some(old) = m.get(&hash) {
            if old.principal.subject == c.principal.subject {
                c.principal.subject = old.principal.subject.clone();
            }
        }
        if m.len() >= CACHE_MAX {
            m.retain(|_, v| v.at.elapsed() < CACHE_TTL);
        }
        let principal = c.principal.clone();
        m.insert(hash, c);
        principal
    }

    /// Forgets every cached credential of a user or service account.
    pub fn forget(&self, kind: PrincipalKind, name: &str) {
        self.entries
            .lock()
            .expect("auth cache")
            .retain(|_, v| !(v.principal.kind == kind && v.principal.name == name));
    }

    /// Forgets one session.
    pub fn forget_token_hash(&self, hash: &str) {
        self.entries.lock().expect("auth cache").remove(hash);
    }
}

/// Resolves a bearer token to its principal.
pub async fn authenticate(
    vault: &Vault,
    cfg: &AuthConfig,
    cache: &AuthCache,
    token: &str,
) -> Result<Principal, ApiError> {
    let now = now_unix();
    if token.starts_with(SESSION_PREFIX) || token.starts_with(KEY_PREFIX) {
        let hash = custodia_crypto::token_hash(token);
        if let Some(c) = cache.get(&hash) {
            if let Some((created, last_seen)) = c.session {
                if now - last_seen > cfg.session_idle_secs
                    || now - created > cfg.session_absolute_secs
                {
                    cache.forget_token_hash(&hash);
                    return Err(expired());
                }
            }
            return Ok(c.principal);
        }
        let (principal, session) = resolve(vault, cfg, token, &hash, now).await?;
        return Ok(cache.put(
            hash,
            CachedPrincipal {
                at: std::time::Instant::now(),
                principal,
                session,
            },
        ));
    }
    let t = vault
        .authenticate(token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Principal {
        subject: Arc::new(
            Subject {
                kind: SubjectKind::User,
                name: t.name.clone(),
                roles: vec![t.role.clone()],
                branch: String::new(),
                clearance: Tier::Standard,
                purposes: vec!["administration".into()],
                compliant: false,
                mfa: false,
                grants: vec![],
                collections: vec![],
            }
            .normalized(),
        ),
        name: t.name,
        kind: PrincipalKind::Token,
        session: None,
    })
}

/// A session or API key from the database.
async fn resolve(
    vault: &Vault,
    cfg: &AuthConfig,
    token: &str,
    hash: &str,
    now: i64,
) -> Result<(Principal, Option<(i64, i64)>), ApiError> {
    let store = vault.store();
    if token.starts_with(SESSION_PREFIX) {
        let s = store.get_session(hash).await.map_err(store_err)?;
        let Some(s) = s else {
            return Err(expired());
        };
        if s.revoked_at.is_some()
            || now - s.last_seen > cfg.session_idle_secs
            || now - s.created_at > cfg.session_absolute_secs
        {
            return Err(expired());
        }
        let Some((doc, _)) = load_user(store.as_ref(), &s.username).await? else {
            return Err(expired());
        };
        if doc.disabled {
            return Err(expired());
        }
        let touch_every = (cfg.session_idle_secs / 2).clamp(1, 30);
        if now - s.last_seen >= touch_every {
            store.touch_session(hash, now).await.map_err(store_err)?;
        }
        let subject = user_subject(&s.username, &doc, s.mfa, now);
        let last_seen = if now - s.last_seen >= touch_every {
            now
        } else {
            s.last_seen
        };
        return Ok((
            Principal {
                name: s.username,
                kind: PrincipalKind::User,
                session: Some(hash.to_string()),
                subject: Arc::new(subject),
            },
            Some((s.created_at, last_seen)),
        ));
    }
    let row = store
        .find_principal_by_secret(hash)
        .await
        .map_err(store_err)?
        .filter(|r| r.kind == SERVICE)
        .ok_or_else(ApiError::unauthorized)?;
    let doc: ServiceDoc = serde_json::from_str(&row.doc).map_err(|_| damaged())?;
    Ok((
        Principal {
            subject: Arc::new(service_subject(&row.name, &doc)),
            name: row.name,
            kind: PrincipalKind::Service,
            session: None,
        },
        None,
    ))
}

pub fn user_subject(name: &str, doc: &UserDoc, mfa: bool, now: i64) -> Subject {
    Subject {
        kind: SubjectKind::User,
        name: name.to_string(),
        roles: doc.roles.clone(),
        branch: doc.branch.clone(),
        clearance: doc.clearance,
        purposes: doc.allowed_purposes.clone(),
        compliant: doc.compliant(now),
        mfa,
        grants: vec![],
        collections: vec![],
    }
    .normalized()
}

pub fn service_subject(name: &str, doc: &ServiceDoc) -> Subject {
    Subject {
        kind: SubjectKind::Service,
        name: name.to_string(),
        roles: vec![],
        branch: String::new(),
        clearance: Tier::Standard,
        purposes: doc.purposes.clone(),
        compliant: true,
        mfa: false,
        grants: doc.grants.clone(),
        collections: doc.collections.clone(),
    }
    .normalized()
}

pub fn store_err(e: custodia_store::StoreError) -> ApiError {
    ApiError::from(custodia_vault::VaultError::from(e))
}

fn damaged() -> ApiError {
    tracing::error!("a stored principal document does not parse");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "internal error",
    )
}

pub async fn load_user(store: &dyn Store, name: &str) -> Result<Option<(UserDoc, i64)>, ApiError> {
    match store.get_principal(USER, name).await.map_err(store_err)? {
        Some(row) => Ok(Some((
            serde_json::from_str(&row.doc).map_err(|_| damaged())?,
            row.version,
        ))),
        None => Ok(None),
    }
}

pub async fn load_service(
    store: &dyn Store,
    name: &str,
) -> Result<Option<(ServiceDoc, i64)>, ApiError> {
    match store
        .get_principal(SERVICE, name)
        .await
        .map_err(store_err)?
    {
        Some(row) => Ok(Some((
            serde_json::from_str(&row.doc).map_err(|_| damaged())?,
            row.version,
        ))),
        None => Ok(None),
    }
}

/// Checks a password against the policy: at least 12 characters, not the username.
pub fn check_password_policy(username: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 12 {
        return Err(ApiError::bad_request(
            "weak_password",
            "password",
            "passwords have at least 12 characters",
        ));
    }
    if password.len() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "password",
            "passwords have at most 1024 bytes",
        ));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(ApiError::bad_request(
            "weak_password",
            "password",
            "the password must not contain the username",
        ));
    }
    Ok(())
}

/// Argon2id in a blocking thread (it takes tens of milliseconds by design).
pub async fn hash_password(password: String) -> String {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || custodia_crypto::make_verifier(&password))
        .await
        .expect("argon2 task")
}

async fn check_password(verifier: String, password: &str) -> bool {
    let password = zeroize::Zeroizing::new(password.to_string());
    tokio::task::spawn_blocking(move || custodia_crypto::check_verifier(&verifier, &password))
        .await
        .unwrap_or(false)
}

/// A verifier of a random password: checked when the user does not exist, so that an
/// unknown username takes as long as a wrong password.
fn dummy_verifier() -> &'static str {
    static V: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    V.get_or_init(|| custodia_crypto::make_verifier(&custodia_crypto::random_token()))
}

pub fn new_session_token() -> String {
    format!("{SESSION_PREFIX}{}", &custodia_crypto::random_token()[4..])
}

pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", &custodia_crypto::random_token()[4..])
}

fn totp_label(user: &str) -> String {
    format!("totp/{user}")
}

/// A fresh TOTP secret: `(sealed for storage, otpauth URI, base32 secret)`.
pub fn enrol_totp(vault: &Vault, cfg: &AuthConfig, user: &str) -> (String, String, String) {
    let secret = custodia_crypto::totp::generate_secret();
    totp_from_secret(vault, cfg, user, &secret)
}

pub fn totp_from_secret(
    vault: &Vault,
    cfg: &AuthConfig,
    user: &str,
    secret: &[u8],
) -> (String, String, String) {
    (
        vault.seal_secret(&totp_label(user), secret),
        custodia_crypto::totp::otpauth_uri(&cfg.totp_issuer, user, secret),
        custodia_crypto::totp::base32_encode(secret),
    )
}

/// What a successful sign-in returns.
pub struct SignedIn {
    pub token: String,
    pub expires_at: i64,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "username, password or one-time code is wrong",
    )
}

fn locked(until: i64, now: i64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        "too many failed sign-ins; wait before trying again",
    )
    .with_retry_after(until - now)
}

/// Signs a user in, enforcing back-off and TOTP replay protection.
pub async fn login(
    vault: &Vault,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
    totp: Option<&str>,
    addr: IpAddr,
) -> Result<SignedIn, ApiError> {
    let store = vault.store().as_ref();
    let now = now_unix();
    let keys = [
        (format!("user:{username}"), cfg.lockout_user_after),
        (format!("addr:{addr}"), cfg.lockout_addr_after),
    ];
    for (key, _) in &keys {
        if let Some((_, until, _)) = store.login_failures(key).await.map_err(store_err)? {
            // Whole seconds: a lock "until t" holds through second t.
            if until >= now {
                return Err(locked(until, now));
            }
        }
    }
    let outcome = try_login(vault, cfg, username, password, totp, now).await?;
    match outcome {
        Some(signed) => {
            // Only the user's count: one good account must not reset its address's count.
            store
                .clear_login_failures(&keys[0].0)
                .await
                .map_err(store_err)?;
            tracing::info!(target: "custodia::auth", user = %username, %addr, "signed in");
            Ok(signed)
        }
        None => {
            for (key, after) in &keys {
                // Failures are forgotten after a quiet period as long as the longest back-off.
                let failures = match store.login_failures(key).await.map_err(store_err)? {
                    Some((f, _, last)) if now - last <= cfg.lockout_max_secs => f,
                    _ => 0,
                } + 1;
                let mut until = 0;
                if failures >= *after {
                    let doublings = (failures - after).min(20) as u32;
                    let wait = cfg
                        .lockout_base_secs
                        .saturating_mul(1i64 << doublings)
                        .min(cfg.lockout_max_secs);
                    until = now + wait;
                    let kind = key.split(':').next().unwrap_or("");
                    security_event(
                        store,
                        username,
                        "login_back_off",
                        serde_json::json!({"key_kind": kind, "failures": failures, "wait_secs": wait}),
                    )
                    .await;
                }
                store
                    .set_login_failures(key, failures, until)
                    .await
                    .map_err(store_err)?;
            }
            tracing::warn!(target: "custodia::auth", user = %username, %addr, "failed sign-in");
            Err(invalid_credentials())
        }
    }
}

/// `Some` on success, `None` on any credential mistake (which one is not said).
async fn try_login(
    vault: &Vault,
    cfg: &AuthConfig,
    username: &str,
    password: &str,
    totp: Option<&str>,
    now: i64,
) -> Result<Option<SignedIn>, ApiError> {
    let store = vault.store().as_ref();
    let user = if custodia_core::is_valid_name(username) {
        load_user(store, username).await?
    } else {
        None
    };
    let Some((doc, version)) = user else {
        check_password(dummy_verifier().to_string(), password).await;
        return Ok(None);
    };
    if !check_password(doc.password.clone(), password).await || doc.disabled {
        return Ok(None);
    }
    let mut mfa = false;
    if let Some(sealed) = &doc.totp {
        let Some(code) = totp else {
            return Ok(None);
        };
        let secret = vault.open_secret(&totp_label(username), sealed)?;
        let Some(step) =
            custodia_crypto::totp::matching_step(&secret, code, now, cfg.totp_skew_steps)
        else {
            return Ok(None);
        };
        if step <= doc.totp_last_step {
            // A code already used (or an older one): replay.
            return Ok(None);
        }
        let mut updated = doc.clone();
        updated.totp_last_step = step;
        let json = serde_json::to_string(&updated).expect("user doc serializes");
        let put = store
            .put_principal(USER, username, &json, None, Some(version))
            .await
            .map_err(store_err)?;
        if put.is_none() {
            // Another sign-in used a code concurrently.
            return Ok(None);
        }
        mfa = true;
    }
    let token = new_session_token();
    store
        .insert_session(&SessionRow {
            token_hash: custodia_crypto::token_hash(&token),
            username: username.to_string(),
            mfa,
            created_at: now,
            last_seen: now,
            revoked_at: None,
        })
        .await
        .map_err(store_err)?;
    Ok(Some(SignedIn {
        token,
        expires_at: now + cfg.session_absolute_secs,
    }))
}

/// Records an event for alerting; failures to record are logged, not fatal.
pub async fn security_event(store: &dyn Store, actor: &str, kind: &str, detail: serde_json::Value) {
    let e = SecurityEvent {
        id: uuid::Uuid::now_v7().to_string(),
        at: now_unix(),
        actor: actor.to_string(),
        kind: kind.to_string(),
        detail: detail.to_string(),
    };
    if let Err(err) = store.insert_security_event(&e).await {
        tracing::error!(error = %err, kind, "could not record a security event");
    }
    tracing::warn!(target: "custodia::alert", actor, kind, detail = %e.detail);
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(roles: &[&str]) -> CachedPrincipal {
        CachedPrincipal {
            at: std::time::Instant::now(),
            principal: Principal {
                name: "app".into(),
                kind: PrincipalKind::Service,
                session: None,
                subject: Arc::new(Subject {
                    kind: SubjectKind::Service,
                    name: "app".into(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                    branch: String::new(),
                    clearance: Tier::Standard,
                    purposes: vec!["account_service".into()],
                    compliant: false,
                    mfa: false,
                    grants: vec!["read".into()],
                    collections: vec!["customers".into()],
                }),
            },
            session: None,
        }
    }

    #[test]
    fn a_refreshed_entry_keeps_its_subject_unless_the_subject_changed() {
        let cache = AuthCache::default();
        let first = cache.put("h".into(), resolved(&["service"]));
        let again = cache.put("h".into(), resolved(&["service"]));
        assert!(Arc::ptr_eq(&first.subject, &again.subject));
        let changed = cache.put("h".into(), resolved(&["auditor"]));
        assert!(!Arc::ptr_eq(&first.subject, &changed.subject));
        assert_eq!(changed.subject.roles, ["auditor"]);
        let other = cache.put("other".into(), resolved(&["service"]));
        assert!(!Arc::ptr_eq(&first.subject, &other.subject));
    }
}
