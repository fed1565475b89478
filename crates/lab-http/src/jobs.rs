//! Job routes: `POST /api/jobs`, `GET /api/jobs`, `GET /api/jobs/{id}`,
//! `GET /api/jobs/{id}/log` (server-sent events, resumable with
//! `Last-Event-ID`), `POST /api/jobs/{id}/cancel`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use lab_core::jobs::JobError;
use lab_core::runner::JobRequest;
use lab_core::runner::jobs::JobManager;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::State;
use crate::errors::internal;
use crate::guard::Checked;
use crate::request::{ReqBody, Result, blocking, read_json};
use crate::response::{ApiError, Body, Code, json_response};
use crate::signed::{Urls, job_log_path};

fn manager(state: &State) -> Result<&Arc<JobManager>> {
    Ok(state.lab.job_manager()?)
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::Disabled => {
                ApiError::new(StatusCode::FORBIDDEN, Code::RunnerDisabled, message)
            }
            JobError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::RunnerUnavailable,
                message,
            ),
            JobError::Unknown => ApiError::new(StatusCode::NOT_FOUND, Code::UnknownJob, message),
            JobError::NotOwner(_) => ApiError::new(StatusCode::CONFLICT, Code::NotOwner, message),
            JobError::NotRunning => {
                ApiError::new(StatusCode::CONFLICT, Code::JobNotRunning, message)
            }
            JobError::Runner(e) => e.into(),
        }
    }
}

fn job_id(id: &str) -> Result<String> {
    lab_registry::RunId::parse(id)
        .map(|id| id.to_string())
        .map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                Code::UnknownJob,
                "no job with this id",
            )
        })
}

impl From<lab_core::runner::runner::Error> for ApiError {
    fn from(e: lab_core::runner::runner::Error) -> Self {
        use lab_core::runner::runner::Error as E;
        let message = e.to_string();
        match e {
            E::ProgramNotAllowed(_) | E::ProgramNotFound(_) | E::FoundNotAllowed { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, Code::ProgramNotAllowed, message)
            }
            E::EnvNotAllowed(_) => {
                ApiError::new(StatusCode::FORBIDDEN, Code::EnvNotAllowed, message)
            }
            E::BadArgument(_) => ApiError::new(StatusCode::BAD_REQUEST, Code::BadArgument, message),
            // Over a configured maximum (the message names it), or a
            // resource this backend does not offer.
            E::Resources(_) => ApiError::new(StatusCode::BAD_REQUEST, Code::BadResources, message),
            E::ExecHooksRefused(_) => {
                ApiError::new(StatusCode::FORBIDDEN, Code::ExecHooksRefused, message)
            }
            E::Workflow(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, Code::InvalidWorkflow, message)
            }
            E::Cwd(_) => ApiError::new(StatusCode::FORBIDDEN, Code::CwdNotAllowed, message),
            // The program is allowlisted, but its installation cannot be
            // granted without exposing what no job may read.
            E::Installation(_) => {
                ApiError::new(StatusCode::FORBIDDEN, Code::ProgramNotAllowed, message)
            }
            // A configured limit this job could not get: refused, never
            // run without it.
            E::Unavailable(_) | E::Limits(_) | E::Submit(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::RunnerUnavailable,
                message,
            ),
            _ => internal(&message),
        }
    }
}

pub(crate) async fn create(
    state: &Arc<State>,
    req: Request<ReqBody>,
    checked: Checked,
) -> Result<Response<Body>> {
    manager(state)?;
    if let Some(why) = state.lab.runner_unavailable() {
        return Err(JobError::Unavailable(why).into());
    }
    let urls = checked.urls.clone();
    let body: Value = read_json(state, req, &checked).await?;
    if body.get("workflow").is_some() {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct WorkflowJob {
            workflow: String,
            #[serde(default)]
            confirm_exec_hooks: bool,
        }
        let job: WorkflowJob = parse_job(body)?;
        let lab = Arc::clone(&state.lab);
        let record = blocking(move || {
            Ok(lab.start_workflow(std::path::Path::new(&job.workflow), job.confirm_exec_hooks)?)
        })
        .await?;
        return Ok(started(&record, &urls));
    }
    let request: JobRequest = parse_job(body)?;
    let lab = Arc::clone(&state.lab);
    let record = blocking(move || Ok(lab.start_job(request)?)).await?;
    Ok(started(&record, &urls))
}

fn parse_job<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidJson,
            format!("invalid job: {e}"),
        )
    })
}

/// 202 with the new job's ids, the URL of its log stream, and its record.
fn started(record: &lab_core::runner::jobs::JobRecord, urls: &Urls) -> Response<Body> {
    tracing::info!("started job {} ({})", record.id, record.program);
    json_response(
        StatusCode::ACCEPTED,
        &json!({
            "id": record.id,
            "run_id": record.run_id,
            "log_url": urls.url(&job_log_path(&record.id)),
            "job": record,
        }),
    )
}

/// `GET /api/jobs`: every job, each readable one with `log_url`.
pub(crate) async fn list(state: &Arc<State>, urls: &Urls) -> Result<Response<Body>> {
    let jobs: Vec<Value> = manager(state)?
        .list()
        .into_iter()
        .map(|entry| {
            let log_url = match &entry {
                lab_core::runner::jobs::JobEntry::Record(record) => {
                    Some(urls.url(&job_log_path(&record.id)))
                }
                lab_core::runner::jobs::JobEntry::Unreadable(_) => None,
            };
            let mut value = json!(entry);
            if let (Some(url), Value::Object(object)) = (log_url, &mut value) {
                object.insert("log_url".into(), Value::String(url));
            }
            value
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "jobs": jobs })))
}

/// `GET /api/jobs/{id}`: the record, with `log_url`.
pub(crate) async fn show(state: &Arc<State>, id: &str, urls: &Urls) -> Result<Response<Body>> {
    let id = job_id(id)?;
    let record = manager(state)?.get(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::UnknownJob,
            "no job with this id",
        )
    })?;
    let mut value = json!(record);
    if let Value::Object(object) = &mut value {
        object.insert(
            "log_url".into(),
            Value::String(urls.url(&job_log_path(&record.id))),
        );
    }
    Ok(json_response(StatusCode::OK, &value))
}

pub(crate) async fn cancel(state: &Arc<State>, id: &str) -> Result<Response<Body>> {
    let id = job_id(id)?;
    state.lab.cancel_job(&id)?;
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({"id": id, "cancelling": true}),
    ))
}

/// A body fed by a channel: the SSE stream.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// One SSE event; the text travels as a JSON string so every byte and line
/// break survives exactly.
fn event(id: Option<u64>, kind: &str, text: &str) -> Bytes {
    let data = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("{id}event: {kind}\ndata: {data}\n\n"))
}

pub(crate) async fn log(
    state: &Arc<State>,
    headers: &HeaderMap,
    id: &str,
) -> Result<Response<Body>> {
    let id = job_id(id)?;
    let jobs = Arc::clone(manager(state)?);
    let record = jobs.get(&id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            Code::UnknownJob,
            "no job with this id",
        )
    })?;
    let last: u64 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    if jobs.log_since(&id, last).is_some() {
        tokio::spawn(async move {
            let mut last = last;
            loop {
                let Some((slice, mut changed)) = jobs.log_since(&id, last) else {
                    break;
                };
                if slice.gap
                    && tx
                        .send(event(
                            None,
                            "gap",
                            "older output was dropped from memory; the log file has it all",
                        ))
                        .await
                        .is_err()
                {
                    return;
                }
                for ev in slice.events {
                    last = ev.seq;
                    if tx
                        .send(event(Some(ev.seq), ev.kind, &ev.text))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if slice.done {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(15), changed.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        if tx
                            .send(Bytes::from_static(b": keep-alive\n\n"))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
    } else if record.state == lab_core::runner::JobState::Running {
        // A job another process runs (`lab run`): its log files, followed
        // as they grow (from their last 1 MiB), until its record ends.
        let lab = Arc::clone(&state.lab);
        let run_id = record.run_id.clone();
        tokio::spawn(async move {
            let mut offsets: [Option<u64>; 2] = [None, None];
            let mut seq = last;
            let mut quiet = 0u32;
            loop {
                let ended = jobs
                    .get(&id)
                    .filter(|r| r.state != lab_core::runner::JobState::Running);
                let (lab, run_id, from) = (Arc::clone(&lab), run_id.clone(), offsets);
                let read = blocking(move || Ok(lab.job_log_grown(&run_id, from))).await;
                let Ok((chunks, now)) = read else { break };
                offsets = now;
                for (kind, text) in chunks {
                    seq += 1;
                    if tx.send(event(Some(seq), kind, &text)).await.is_err() {
                        return;
                    }
                    quiet = 0;
                }
                if let Some(ended) = ended {
                    let _ = tx
                        .send(event(
                            Some(seq + 1),
                            "end",
                            &ended.exit.unwrap_or_default().to_string(),
                        ))
                        .await;
                    return;
                }
                quiet += 1;
                if quiet.is_multiple_of(30)
                    && tx
                        .send(Bytes::from_static(b": keep-alive\n\n"))
                        .await
                        .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    } else {
        // A job from before a restart: its (already redacted) log files,
        // reached the one way every run is: its record in the registry.
        let run_id = jobs.get(&id).map(|record| record.run_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                Code::UnknownJob,
                "no job with this id",
            )
        })?;
        let lab = Arc::clone(&state.lab);
        let events = blocking(move || Ok(lab.job_log_tail(&run_id)?)).await?;
        for (kind, text) in events {
            // The same ids whichever files are there: stdout 1, stderr 2.
            let seq = if kind == "stdout" { 1 } else { 2 };
            if seq > last {
                let _ = tx.try_send(event(Some(seq), kind, &text));
            }
        }
        let _ = tx.try_send(event(
            Some(3),
            "end",
            &record.exit.clone().unwrap_or_default().to_string(),
        ));
    }
    let mut response = Response::new(ChannelBody(rx).boxed());
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
