//! `GET /api/runs/{id}/metrics/{name}`: one series, downsampled.

use std::sync::Arc;

use http::{HeaderMap, Response, StatusCode, header};
use serde_json::json;

use crate::State;
use crate::decode::percent_decode;
use crate::query::parse_metric_query;
use crate::request::{Result, gated, parse_id};
use crate::response::{ApiError, Body, Code, json_response};
use crate::runs::bad;

/// `GET /api/runs/{id}/metrics/{name}?points=&from=&to=&x=`: one series
/// downsampled into buckets (first x, last y, min, max), with an ETag
/// that changes when the series grows.
pub(crate) async fn metric(
    state: &Arc<State>,
    headers: &HeaderMap,
    id: &str,
    raw_name: &str,
    query: Option<&str>,
) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let name = percent_decode(raw_name, false)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the metric name is malformed percent-encoding"))?;
    let query = parse_metric_query(query.unwrap_or(""))?;
    let lab = Arc::clone(&state.lab);
    let lookup = name.clone();
    let gate_id = id.clone();
    let found = gated(
        state,
        &gate_id,
        move || Ok(lab.series(&id, &lookup, query)?),
    )
    .await?;
    let Some((etag, buckets)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::UnknownMetric,
            "this run has no metric of that name",
        ));
    };
    // RFC 9110 §13.1.2: weak comparison, so `W/"…"` matches too.
    let mut response = if lab_stream::if_none_match(headers, &etag) {
        let mut r = Response::new(crate::response::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_response(
            StatusCode::OK,
            &json!({
                "name": name,
                "count": buckets.count,
                "x": buckets.x,
                "y": buckets.y,
                "min": buckets.min,
                "max": buckets.max,
            }),
        )
    };
    if let Ok(v) = http::HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}
