//! The policy enforcement point: turns the caller, the declared purpose and reason and the
//! client address into a Cedar asker, refuses what the policy does not permit, shapes
//! every record into clear / masked / omitted fields, and charges the bulk-harvest quotas.

use crate::auth::{Principal, PrincipalKind};
use crate::error::ApiError;
use crate::extract::Purpose;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{request::Parts, StatusCode};
use custodia_core::{CollectionSchema, Level};
use custodia_policy::quota::{Limits, Quotas};
use custodia_policy::{Action, Asker, Engine, Mode, RequestContext, Target};
use custodia_store::now_unix;
use custodia_vault::Record;
use serde::Serialize;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use utoipa::ToSchema;

pub const REASON_HEADER: &str = "x-custodia-reason";
const MAX_REASON_CHARS: usize = 500;

pub struct Guard {
    pub engine: Arc<Engine>,
    pub quotas: Quotas,
    /// (principal, limit) → minute of the last recorded refusal: a client hammering past its
    /// quota gets one security event a minute, not one database write per request.
    pub reported: std::sync::Mutex<std::collections::HashMap<(String, &'static str), i64>>,
}

impl Guard {
    pub fn new(engine: Arc<Engine>, quotas: Quotas) -> Guard {
        Guard {
            engine,
            quotas,
            reported: Default::default(),
        }
    }

    fn first_report_this_minute(&self, key: &str, limit: &'static str, now: i64) -> bool {
        let mut m = self.reported.lock().expect("report lock");
        if m.len() > 10_000 {
            m.clear();
        }
        let minute = now / 60;
        m.insert((key.to_string(), limit), minute) != Some(minute)
    }
}

/// A data call's caller with its purpose, reason and address, already checked against the
/// caller's allowed purposes.
pub struct Access {
    pub who: Principal,
    pub asker: Asker,
    pub request_id: String,
}

fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The client's address (unspecified when the server runs without connection info).
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn reason_of(parts: &Parts) -> Result<String, ApiError> {
    let Some(v) = parts.headers.get(REASON_HEADER) else {
        return Ok(String::new());
    };
    let bad = || {
        ApiError::bad_request(
            "invalid_header",
            "X-Custodia-Reason",
            format!("the reason is UTF-8 text of at most {MAX_REASON_CHARS} characters without control characters"),
        )
    };
    let text = std::str::from_utf8(v.as_bytes()).map_err(|_| bad())?.trim();
    if text.chars().count() > MAX_REASON_CHARS || text.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(text.to_string())
}

/// Hour (0–23) and weekday (0 = Monday) in China Standard Time, where the staff work.
fn local_clock(now: i64) -> (u8, u8) {
    let local = now + 8 * 3600;
    let hour = local.rem_euclid(86_400) / 3600;
    // 1970-01-01 was a Thursday (weekday 3).
    let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
    (hour as u8, weekday as u8)
}

pub fn asker_for(
    who: &Principal,
    purpose: &str,
    reason: String,
    ip: IpAddr,
) -> Result<Asker, ApiError> {
    if !who.subject.may_use_purpose(purpose) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "purpose_not_allowed",
            "this purpose is not among the caller's allowed purposes",
        )
        .with_field("X-Custodia-Purpose"));
    }
    let (hour, weekday) = local_clock(now_unix());
    Ok(Asker {
        subject: who.subject.clone(),
        context: Arc::new(RequestContext {
            purpose: purpose.to_string(),
            reason,
            hour,
            weekday,
            client_ip: ip,
        }),
    })
}

impl FromRequestParts<AppState> for Access {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let who = Principal::from_request_parts(parts, s).await?;
        let Purpose(purpose) = Purpose::from_request_parts(parts, s).await?;
        let reason = reason_of(parts)?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        let asker = match asker_for(&who, &purpose, reason.clone(), client_ip(parts)) {
            Ok(a) => a,
            Err(refused) => {
                // Refusals are audited like any access (fail closed as well).
                refused_event(s, parts, &who, &purpose, &reason, &request_id, refused.code).await?;
                return Err(refused);
            }
        };
        Ok(Access {
            who,
            asker,
            request_id,
        })
    }
}

/// The audit event of a data call refused before its handler ran: the route and the ids
/// in its path, the purpose, the outcome.
async fn refused_event(
    s: &AppState,
    parts: &Parts,
    who: &Principal,
    purpose: &str,
    reason: &str,
    request_id: &str,
    code: &str,
) -> Result<(), ApiError> {
    let segments: Vec<&str> = parts.uri.path().split('/').collect();
    // /v1/collections/{name}/records/{id}…
    let collection = segments.get(3).map(|c| c.to_string());
    let record_ids = segments
        .get(5)
        .filter(|id| id.len() == 36)
        .map(|id| vec![id.to_string()])
        .unwrap_or_default();
    let route = parts
        .extensions
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let event = custodia_audit::event::Event {
        time_ms: crate::handlers::now_ms(),
        actor: who.name.clone(),
        actor_kind: crate::handlers::actor_kind(who).into(),
        session: who
            .session
            .as_ref()
            .map(|h| h[..16.min(h.len())].to_string()),
        client_addr: Some(client_ip(parts).to_string()),
        request_id: Some(request_id.to_string()),
        action: format!("{} {route}", parts.method),
        collection,
        record_ids,
        target: None,
        fields: Default::default(),
        searched: Default::default(),
        purpose: Some(purpose.to_string()),
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        outcome: code.to_string(),
    };
    s.audit.record(&event).await.map(|_| ())
}

/// An administrative caller (no purpose header: administration is the purpose).
pub struct Admin {
    pub who: Principal,
    pub asker: Asker,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let who = Principal::from_request_parts(parts, s).await?;
        let (hour, weekday) = local_clock(now_unix());
        let asker = Asker {
            subject: who.subject.clone(),
            context: Arc::new(RequestContext {
                purpose: "administration".into(),
                reason: reason_of(parts)?,
                hour,
                weekday,
                client_ip: client_ip(parts),
            }),
        };
        Ok(Admin { who, asker })
    }
}

/// A record as the caller may see it.
#[derive(Serialize, ToSchema)]
pub struct RecordView {
    pub id: String,
    pub version: i64,
    pub attributes: custodia_core::Attributes,
    /// Fields the caller may see, clear or masked.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    /// Every field of the schema → `clear`, `masked` or `omitted`.
    #[schema(value_type = Object)]
    pub access: AccessMap,
}

/// The `access` object of a view, serialized straight from the schema and the cached
/// decision (no per-response allocation).
pub struct AccessMap {
    schema: Arc<CollectionSchema>,
    modes: Arc<[Mode]>,
}

impl AccessMap {
    /// Field → mode, for the audit event, in field-name order (as the event's map holds
    /// them); borrowed from the schema, nothing copied.
    pub fn modes(&self) -> Vec<(&str, &'static str)> {
        let mut pairs: Vec<(&str, &'static str)> = self
            .schema
            .fields
            .iter()
            .zip(self.modes.iter())
            .map(|(d, m)| (d.name.as_str(), effective(d, *m).as_str()))
            .collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        pairs
    }

    pub fn mode(&self, field: &str) -> Option<Mode> {
        self.schema
            .fields
            .iter()
            .position(|f| f.name == field)
            .map(|i| effective(&self.schema.fields[i], self.modes[i]))
    }
}

fn effective(def: &custodia_core::FieldDef, mode: Mode) -> Mode {
    if def.level == Level::C3 {
        Mode::Omitted
    } else {
        mode
    }
}

impl Serialize for AccessMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.schema.fields.len()))?;
        for (def, mode) in self.schema.fields.iter().zip(self.modes.iter()) {
            m.serialize_entry(&def.name, effective(def, *mode).as_str())?;
        }
        m.end()
    }
}

fn masked_value(def: &custodia_core::FieldDef, v: &Value) -> Value {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Bool(_) => return Value::String("*".into()),
        Value::Null => return Value::Null,
        other => other.to_string(),
    };
    Value::String(custodia_detect::mask_field(def.mask, def.ty, &text))
}

impl Guard {
    pub fn require(&self, asker: &Asker, action: Action, target: &Target) -> Result<(), ApiError> {
        if self.engine.allows(asker, action, target) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the policy does not permit '{}' here",
                action.as_str()
            )))
        }
    }

    pub fn record_target(collection: &str, attrs: &custodia_core::Attributes) -> Target {
        Target::Record {
            collection: collection.to_string(),
            tier: attrs.tier,
            branch: attrs.branch.clone(),
        }
    }

    /// Shapes a decrypted record for the caller; returns it with its number of clear fields.
    pub fn view(
        &self,
        asker: &Asker,
        schema: &Arc<CollectionSchema>,
        schema_version: i64,
        rec: Record,
    ) -> (RecordView, u64) {
        let modes = self.engine.field_modes(
            asker,
            schema,
            schema_version,
            rec.attributes.tier,
            &rec.attributes.branch,
        );
        let mut fields = rec.fields;
        let mut clear = 0;
        for (def, mode) in schema.fields.iter().zip(modes.iter()) {
            match effective(def, *mode) {
                Mode::Clear => clear += u64::from(fields.contains_key(&def.name)),
                Mode::Masked => {
                    if let Some(v) = fields.get_mut(&def.name) {
                        *v = masked_value(def, v);
                    }
                }
                Mode::Omitted => {
                    fields.remove(&def.name);
                }
            }
        }
        (
            RecordView {
                id: rec.id,
                version: rec.version,
                attributes: rec.attributes,
                fields,
                access: AccessMap {
                    schema: schema.clone(),
                    modes,
                },
            },
            clear,
        )
    }

    pub fn limits(&self, who: &Principal) -> Limits {
        self.quotas.config.limits_for(who.roles())
    }

    /// Charges `records` records and `clear` clear values to the caller, or refuses with
    /// 429 `quota_exceeded` (recorded as a security event) and charges nothing.
    pub async fn charge(
        &self,
        s: &AppState,
        who: &Principal,
        records: u64,
        clear: u64,
    ) -> Result<(), ApiError> {
        if who.kind == PrincipalKind::Token {
            return Ok(());
        }
        let limits = self.limits(who);
        let now = now_unix();
        let key = match who.kind {
            PrincipalKind::Service => format!("service:{}", who.name),
            _ => format!("user:{}", who.name),
        };
        match self.quotas.consume(&key, &limits, records, clear, now) {
            Ok(()) => Ok(()),
            Err(e) => {
                s.metrics.quota_exceeded();
                if self.first_report_this_minute(&key, e.limit_name, now) {
                    crate::auth::security_event(
                        s.vault.store().as_ref(),
                        &who.name,
                        "quota_exceeded",
                        serde_json::json!({
                            "limit": e.limit_name, "value": e.limit,
                            "requested_records": records, "requested_clear": clear,
                        }),
                    )
                    .await;
                }
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exceeded",
                    format!(
                        "quota {} ({}) reached; it has room again at the reset time",
                        e.limit_name, e.limit
                    ),
                )
                .with_retry_after(e.reset_at - now);
                err.reset_at = Some(custodia_detect::format_timestamp(e.reset_at));
                Err(err)
            }
        }
    }
}
