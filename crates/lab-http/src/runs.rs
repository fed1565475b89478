//! Run summaries (title, tags, date, video, thumbnail from a run's own
//! allowlisted files) and the runs list with filtering, sorting and paging.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Response, StatusCode};
use lab_fs::{Allowlist, ArtifactInfo, RunRoot};
use lab_registry::{RunId, RunRecord};
use serde_json::{Value, json};

use crate::State;
use crate::artifacts::content_type;
use crate::decode::query_pairs;
use crate::request::{Result, blocking};
use crate::response::{ApiError, Body, Code, json_response};

/// Default and largest page size of `GET /api/runs`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;
/// Largest metadata file (run.toml / run.json) parsed.
const MAX_META_BYTES: u64 = 64 * 1024;
/// How long a computed summary is reused before the run is looked at again.
const SUMMARY_TTL: Duration = Duration::from_secs(5);
/// Most tags kept per run, and longest tag.
const MAX_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 64;

/// Summaries computed recently, so listing thousands of runs with a filter
/// does not reopen every run on every keystroke.
#[derive(Debug, Default)]
pub(crate) struct Summaries {
    cache: Mutex<HashMap<RunId, (Instant, Arc<Value>)>>,
}

impl Summaries {
    /// The summary of `run`, from the cache when fresh. Blocking.
    fn get(&self, run: &RunRecord, allow: &Allowlist) -> Arc<Value> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, value)) = cache.get(&run.id)
            && at.elapsed() < SUMMARY_TTL
            && value["path"] == run.root.display().to_string()
        {
            return Arc::clone(value);
        }
        drop(cache);
        let value = Arc::new(summarize(run, allow).0);
        cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 200_000 {
            cache.clear();
        }
        cache.insert(run.id.clone(), (Instant::now(), Arc::clone(&value)));
        value
    }
}

/// The basic fields of a run.
pub(crate) fn run_json(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "name": run.dir_name(),
        "path": run.root.display().to_string(),
        "imported_at": run.imported_at,
    })
}

/// A run's summary and (when its directory opens) its artifacts.
fn summarize(run: &RunRecord, allow: &Allowlist) -> (Value, Option<(Vec<ArtifactInfo>, Value)>) {
    let mut value = run_json(run);
    let opened = RunRoot::open_ambient(&run.root).and_then(|root| {
        let artifacts = root.list_artifacts(allow)?;
        let meta = read_meta(&root, allow);
        Ok((artifacts, meta))
    });
    let Ok((artifacts, meta)) = opened else {
        value["available"] = Value::Bool(false);
        value["title"] = Value::String(run.dir_name().to_owned());
        value["tags"] = json!([]);
        value["created"] = Value::String(lab_fs::bundle::iso8601_utc(run.imported_at));
        value["has_video"] = Value::Bool(false);
        return (value, None);
    };
    let title = meta
        .get("name")
        .or_else(|| meta.get("title"))
        .and_then(Value::as_str)
        .unwrap_or(run.dir_name());
    let tags: Vec<Value> = meta
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(Value::as_str)
                .filter(|t| t.len() <= MAX_TAG_LEN)
                .take(MAX_TAGS)
                .map(|t| Value::String(t.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let created = meta
        .get("created")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| lab_fs::bundle::iso8601_utc(run.imported_at));
    let video = artifacts
        .iter()
        .find(|a| a.name.as_str().ends_with(".mp4"))
        .map(|a| a.name.to_string());
    let thumbnail = ["thumbnail.png", "thumbnail.jpg", "preview.png"]
        .iter()
        .find(|t| artifacts.iter().any(|a| a.name.as_str() == **t))
        .map(|t| (*t).to_owned())
        .or_else(|| {
            artifacts
                .iter()
                .find(|a| a.name.as_str().starts_with("images/"))
                .map(|a| a.name.to_string())
        });
    value["available"] = Value::Bool(true);
    value["title"] = Value::String(title.to_owned());
    value["tags"] = Value::Array(tags);
    value["created"] = Value::String(created);
    value["has_video"] = Value::Bool(video.is_some());
    value["video"] = video.map(Value::String).unwrap_or(Value::Null);
    value["thumbnail"] = thumbnail.map(Value::String).unwrap_or(Value::Null);
    value["artifact_count"] = json!(artifacts.len());
    (value, Some((artifacts, meta)))
}

/// run.toml, else run.json, parsed into JSON; `null` when absent or invalid.
fn read_meta(root: &RunRoot, allow: &Allowlist) -> Value {
    for (name, is_toml) in [("run.toml", true), ("run.json", false)] {
        let Ok(name) = allow.check(name) else {
            continue;
        };
        let Ok(artifact) = root.open_artifact(&name) else {
            continue;
        };
        let mut text = String::new();
        if artifact
            .file
            .take(MAX_META_BYTES)
            .read_to_string(&mut text)
            .is_err()
        {
            return Value::Null;
        }
        let parsed = if is_toml {
            toml::from_str::<Value>(&text).ok()
        } else {
            serde_json::from_str::<Value>(&text).ok()
        };
        return parsed.unwrap_or(Value::Null);
    }
    Value::Null
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Id,
    Name,
    Created,
    Imported,
}

/// `GET /api/runs?limit=&cursor=&q=&tag=&has_video=&sort=&order=`.
pub(crate) async fn list(state: &Arc<State>, query: Option<&str>) -> Result<Response<Body>> {
    let bad =
        |message: &'static str| ApiError::new(StatusCode::BAD_REQUEST, Code::BadQuery, message);
    let pairs = query_pairs(query.unwrap_or("")).ok_or_else(|| bad("malformed query string"))?;
    let mut limit = DEFAULT_PAGE;
    let mut offset = 0usize;
    let mut text: Option<String> = None;
    let mut tag: Option<String> = None;
    let mut has_video: Option<bool> = None;
    let mut sort = Sort::Id;
    let mut descending = false;
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad("limit must be a number from 1 to 500"))?;
            }
            "cursor" if !value.is_empty() => {
                offset = value
                    .parse::<usize>()
                    .map_err(|_| bad("cursor must be a next_cursor from a previous page"))?;
            }
            "q" if !value.is_empty() => text = Some(value.to_lowercase()),
            "tag" if !value.is_empty() => tag = Some(value),
            "has_video" => {
                has_video = Some(match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("has_video must be true or false")),
                });
            }
            "sort" => {
                sort = match value.as_str() {
                    "id" => Sort::Id,
                    "name" => Sort::Name,
                    "created" => Sort::Created,
                    "imported" => Sort::Imported,
                    _ => return Err(bad("sort must be id, name, created or imported")),
                };
            }
            "order" => {
                descending = match value.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad("order must be asc or desc")),
                };
            }
            _ => {}
        }
    }
    let state = Arc::clone(state);
    let (items, total) = blocking(move || {
        let runs = state.registry.runs()?;
        // Without a filter or a metadata sort, only the page is summarised.
        if text.is_none() && tag.is_none() && has_video.is_none() && sort == Sort::Id {
            let ordered: Vec<&RunRecord> = if descending {
                runs.iter().rev().collect()
            } else {
                runs.iter().collect()
            };
            let page = ordered
                .iter()
                .skip(offset)
                .take(limit)
                .map(|run| (*state.summaries.get(run, &state.allowlist)).clone())
                .collect();
            return Ok((page, runs.len()));
        }
        let mut rows: Vec<Arc<Value>> = runs
            .iter()
            .map(|run| state.summaries.get(run, &state.allowlist))
            .filter(|s| {
                let field = |k: &str| s[k].as_str().unwrap_or("").to_lowercase();
                let tags: Vec<&str> = s["tags"]
                    .as_array()
                    .map(|t| t.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                text.as_deref().is_none_or(|q| {
                    field("id").contains(q)
                        || field("name").contains(q)
                        || field("title").contains(q)
                        || tags.iter().any(|t| t.to_lowercase().contains(q))
                }) && tag.as_deref().is_none_or(|t| tags.contains(&t))
                    && has_video.is_none_or(|v| s["has_video"].as_bool() == Some(v))
            })
            .collect();
        let key = |s: &Value, k: &str| s[k].as_str().unwrap_or("").to_lowercase();
        match sort {
            Sort::Id => {}
            Sort::Name => rows.sort_by_cached_key(|s| (key(s, "title"), key(s, "id"))),
            Sort::Created => rows.sort_by_cached_key(|s| (key(s, "created"), key(s, "id"))),
            Sort::Imported => {
                rows.sort_by_cached_key(|s| (s["imported_at"].as_u64().unwrap_or(0), key(s, "id")))
            }
        }
        if descending {
            rows.reverse();
        }
        let total = rows.len();
        let page: Vec<Value> = rows
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|s| (*s).clone())
            .collect();
        Ok((page, total))
    })
    .await?;
    let end = offset + items.len();
    let next = (end < total).then(|| end.to_string());
    Ok(json_response(
        StatusCode::OK,
        &json!({ "runs": items, "next_cursor": next, "total": total }),
    ))
}

/// `GET /api/runs/{id}`: the summary, metadata and artifacts.
pub(crate) async fn show(state: &Arc<State>, id: RunId) -> Result<Response<Body>> {
    let state = Arc::clone(state);
    let (mut body, details) = blocking(move || {
        let run = state.registry.get(&id)?;
        Ok(summarize(&run, &state.allowlist))
    })
    .await?;
    let Some((artifacts, meta)) = details else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::RunUnavailable,
            "the run directory cannot be opened (moved or deleted?)",
        ));
    };
    let listed: Vec<Value> = artifacts
        .iter()
        .map(|a| {
            json!({
                "name": a.name.as_str(),
                "size": a.len,
                "type": content_type(&a.name),
                "modified": a.modified.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
            })
        })
        .collect();
    body["artifacts"] = Value::Array(listed);
    body["meta"] = meta;
    Ok(json_response(StatusCode::OK, &body))
}
