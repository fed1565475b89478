//! `GET /api/runs/{id}/histograms/{name}`: one histogram as the quantile
//! bands TensorBoard's distribution view draws of each step.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::json;

use crate::State;
use crate::decode::percent_decode;
use crate::query::parse_histogram_query;
use crate::request::{Result, gated, parse_id};
use crate::response::{ApiError, Body, Code, json_response};
use crate::runs::bad;

/// `GET /api/runs/{id}/histograms/{name}?points=N`: at most N steps
/// spread evenly over the histogram's steps (the last among them), each
/// `{"step", "wall_time", "bands": [9 numbers]}`.
pub(crate) async fn histogram(
    state: &Arc<State>,
    id: &str,
    raw_name: &str,
    query: Option<&str>,
) -> Result<Response<Body>> {
    let id = parse_id(id)?;
    let name = percent_decode(raw_name, false)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the histogram name is malformed percent-encoding"))?;
    let points = parse_histogram_query(query.unwrap_or(""))?;
    let lab = Arc::clone(&state.lab);
    let lookup = name.clone();
    let gate_id = id.clone();
    let found = gated(state, &gate_id, move || {
        Ok(lab.histogram(&id, &lookup, points)?)
    })
    .await?;
    let Some(steps) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::UnknownHistogram,
            "this run has no histogram of that name",
        ));
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "name": name, "points": steps }),
    ))
}
