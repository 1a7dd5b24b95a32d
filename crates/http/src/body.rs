//! Reading request bodies: a hard size limit and JSON objects only.

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};
use zhima_domain::Errno;

use crate::error::ApiError;

/// The largest body accepted: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        Errno::PayloadTooLarge,
        format!("request body is larger than {BODY_LIMIT} bytes"),
    )
}

/// How long a whole body may take to arrive by default (`http.body_timeout_secs`),
/// from when the handler starts reading it:
/// headers already time out in actix; without this a body sent a byte every
/// few seconds held a connection and its memory for ever.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`BODY_LIMIT`].
    TooLarge,
    /// The connection failed or the body was malformed on the wire.
    Unreadable,
    /// The body did not arrive within [`BODY_TIMEOUT`].
    TimedOut,
}

/// Reads the whole body, up to [`BODY_LIMIT`] (checked against the declared
/// length first, and while reading, so a chunked body cannot exceed it).
pub async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, BodyError> {
    let declared = req
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| match e {
                actix_web::error::PayloadError::Overflow => BodyError::TooLarge,
                _ => BodyError::Unreadable,
            })?;
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let limit = req
        .app_data::<web::Data<crate::AppState>>()
        .map_or(BODY_TIMEOUT, |s| s.body_timeout);
    actix_web::rt::time::timeout(limit, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}

/// Reads the body as a JSON object. Over [`BODY_LIMIT`]: 413 (errno 1413),
/// without reading the rest. Not JSON, or not an object: errno 1002.
pub async fn json_object(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Map<String, Value>, ApiError> {
    let body = read_limited(req, payload).await.map_err(|e| match e {
        BodyError::TooLarge => too_large(),
        BodyError::Unreadable => {
            ApiError::new(Errno::BadRequest, "the request body could not be read")
        }
        BodyError::TimedOut => ApiError::new(
            Errno::RequestTimeout,
            "the request body did not arrive in time",
        ),
    })?;
    parse_object(&body)
}

/// A JSON object whose keys are each given once: `{"level":"gold",
/// "level":"standard"}` is refused (`Err` says why), never read as its last
/// value. Nested objects are not looked into.
pub fn unique_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    struct Unique(Map<String, Value>);
    impl<'de> serde::Deserialize<'de> for Unique {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Unique;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut access: A,
                ) -> Result<Unique, A::Error> {
                    let mut map = Map::new();
                    while let Some((k, v)) = access.next_entry::<String, Value>()? {
                        if map.contains_key(&k) {
                            return Err(serde::de::Error::custom(format!(
                                "the key {k:?} is given twice"
                            )));
                        }
                        map.insert(k, v);
                    }
                    Ok(Unique(map))
                }
            }
            d.deserialize_any(Visitor)
        }
    }
    serde_json::from_slice::<Unique>(body)
        .map(|u| u.0)
        .map_err(|e| e.to_string())
}

/// A request body as a JSON object, or errno 1002 saying why not (empty,
/// not JSON, or not an object).
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            Errno::BadRequest,
            "the request body must be a JSON object; it is empty",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::new(
            Errno::BadRequest,
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            Errno::BadRequest,
            format!("the request body is not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_objects_refuse_a_repeated_key() {
        let ok = super::unique_object(br#"{"level":"gold","access_token":"t","x":{"a":1,"a":2}}"#);
        assert_eq!(ok.unwrap()["level"], "gold");
        let twice = super::unique_object(br#"{"level":"gold","level":"standard"}"#);
        assert!(twice.unwrap_err().contains("given twice"));
        assert!(super::unique_object(b"[1]").is_err());
        assert!(super::unique_object(b"{").is_err());
    }
}
