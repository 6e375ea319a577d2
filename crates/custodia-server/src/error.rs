//! The one JSON error shape of the API: `{"error":{"code","message","field"}}`. Messages
//! name fields and rules, never values; storage and crypto internals are logged, not returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use custodia_vault::VaultError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Seconds until retrying makes sense (`Retry-After`), for 429s.
    pub retry_after: Option<i64>,
    /// When a quota has room again (RFC 3339), for `quota_exceeded`.
    pub reset_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_field`.
    pub code: String,
    /// Human-readable explanation; never contains a personal value.
    pub message: String,
    /// The field, header or parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `quota_exceeded`: when the quota has room again (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            reset_at: None,
        }
    }

    pub fn with_retry_after(mut self, secs: i64) -> ApiError {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).with_field(field)
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer …)",
        )
        .with_field("Authorization")
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> ApiError {
        let status = match &e {
            VaultError::InvalidField { .. }
            | VaultError::UnknownField { .. }
            | VaultError::MissingField { .. }
            | VaultError::NotSearchable { .. }
            | VaultError::InvalidSchema { .. } => StatusCode::BAD_REQUEST,
            VaultError::SchemaConflict { .. } | VaultError::Duplicate { .. } => {
                StatusCode::CONFLICT
            }
            VaultError::CollectionNotFound(_) | VaultError::RecordNotFound => StatusCode::NOT_FOUND,
            VaultError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            VaultError::Shredded => StatusCode::GONE,
            VaultError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            VaultError::AlreadyInitialized | VaultError::NotInitialized => StatusCode::CONFLICT,
            VaultError::Integrity { .. }
            | VaultError::BadPassphrase
            | VaultError::KeyDamaged(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            VaultError::Store(inner) => {
                tracing::error!(error = %inner, "storage error");
                "the storage backend is unavailable; retry later".to_string()
            }
            VaultError::KeyDamaged(_) | VaultError::Integrity { .. } => {
                tracing::error!(error = %e, "integrity failure");
                e.to_string()
            }
            _ => e.to_string(),
        };
        ApiError {
            status,
            code: e.code(),
            message,
            field: e.field().map(str::to_string),
            retry_after: None,
            reset_at: None,
        }
    }
}

/// The error code of a response, kept as a response extension for the audit middleware.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                reset_at: self.reset_at,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
