//! Request extractors that turn every kind of bad input into the API's JSON error shape.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use serde::de::DeserializeOwned;

pub const PURPOSE_HEADER: &str = "x-custodia-purpose";

/// A JSON body. Errors report the position, never the offending text (it may be personal).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v.split(';').next().unwrap_or("").trim();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            )
            .with_field("Content-Type"));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub async fn body_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "request body exceeds the configured limit",
                )
                .with_field("body")
            } else {
                ApiError::bad_request("invalid_body", "body", "request body could not be read")
            }
        })
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "does not have the expected shape",
            serde_json::error::Category::Eof => "ends too early",
            _ => "is not valid JSON",
        };
        ApiError::bad_request(
            "invalid_json",
            "body",
            format!(
                "request body {what} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// The declared purpose of a data access (`X-Custodia-Purpose`), required on data calls.
#[derive(Clone, Debug)]
pub struct Purpose(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Purpose {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if parts.headers.get_all(PURPOSE_HEADER).iter().count() > 1 {
            return Err(ApiError::bad_request(
                "invalid_header",
                "X-Custodia-Purpose",
                "declare exactly one purpose per request",
            ));
        }
        let Some(v) = parts.headers.get(PURPOSE_HEADER) else {
            return Err(ApiError::bad_request(
                "missing_purpose",
                "X-Custodia-Purpose",
                "data calls must declare a purpose in the X-Custodia-Purpose header",
            ));
        };
        let ok = v
            .to_str()
            .ok()
            .filter(|s| custodia_core::is_valid_name(s))
            .map(str::to_string);
        ok.map(Purpose).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_header",
                "X-Custodia-Purpose",
                "purpose must be an id matching [a-z][a-z0-9_]{0,62}",
            )
        })
    }
}

/// `If-Match: <version>` (quoted, weak or bare), required to change a record.
pub struct IfMatch(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "changing a record needs If-Match: <version> from the last read",
            )
            .with_field("If-Match"));
        };
        v.to_str()
            .ok()
            .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|n| *n >= 1)
            .map(IfMatch)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_header",
                    "If-Match",
                    "If-Match must be a record version such as \"3\"",
                )
            })
    }
}

/// The request id set by the request-id layer (echoed in `x-request-id`).
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string(),
        ))
    }
}

/// Path parameters; a segment that is not valid UTF-8 after percent-decoding is a 400 in
/// the API's error shape (axum's own rejection would be plain text quoting the segment).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|_| ApiError::bad_request("invalid_path", "path", "malformed path parameter"))
    }
}
