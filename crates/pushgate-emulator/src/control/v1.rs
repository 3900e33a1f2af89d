//! Control routes for FCM v1, nested under `/emulator`: projects (service-account key
//! files), per-project quota, and the access-token lifetime.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::Deserialize;
use serde_json::json;

use super::ControlError;
use super::fields::json_body;
use crate::oauth::{Https, base_url};
use crate::projects::{KeyMaterial, Project, ProjectError};
use crate::respond;
use crate::state::EmulatorState;

/// Longest access-token lifetime `PUT /emulator/oauth` accepts (one day).
const MAX_LIFETIME_SECS: u64 = 86_400;

fn project_error(e: ProjectError) -> ControlError {
    match e {
        ProjectError::Taken(m) => ControlError::Conflict(m),
        ProjectError::Invalid(m) => ControlError::BadRequest(m),
        ProjectError::Key(m) => ControlError::BadRequest(format!("key generation failed: {m}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProject {
    project_id: String,
    #[serde(default)]
    project_number: Option<NumberOrString>,
}

/// A project number given as a JSON number or string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

/// `POST /emulator/projects {"project_id","project_number"?}` → 201 and the project's
/// service-account key file.
pub(super) async fn create_project(
    State(state): State<EmulatorState>,
    https: Option<Extension<Https>>,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ControlError> {
    let spec: NewProject = json_body(&bytes, "body")?;
    let number = spec.project_number.map(|n| match n {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::Text(s) => s,
    });
    let key = tokio::task::spawn_blocking(KeyMaterial::generate)
        .await
        .map_err(|e| ControlError::BadRequest(format!("key generation failed: {e}")))?
        .map_err(project_error)?;
    let inner = state.get();
    let project = inner
        .projects
        .create(&inner.senders, &spec.project_id, number.as_deref(), key)
        .map_err(project_error)?;
    tracing::info!(project_id = %project.id, number = %project.number, "project created");
    let base = base_url(&uri, &headers, https.is_some());
    let file = project.key_file(&base).map_err(project_error)?;
    Ok(respond::json(StatusCode::CREATED, &file))
}

fn find(state: &EmulatorState, name: &str) -> Result<std::sync::Arc<Project>, ControlError> {
    state
        .get()
        .projects
        .get(name)
        .ok_or_else(|| ControlError::NotFound(format!("project: no project {name:?}")))
}

/// `GET /emulator/projects/{project}/key`: the key file again, for this request's host.
pub(super) async fn key_file(
    State(state): State<EmulatorState>,
    Path(name): Path<String>,
    https: Option<Extension<Https>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ControlError> {
    let project = find(&state, &name)?;
    let base = base_url(&uri, &headers, https.is_some());
    let file = tokio::task::spawn_blocking(move || project.key_file(&base))
        .await
        .map_err(|e| ControlError::BadRequest(format!("key generation failed: {e}")))?
        .map_err(project_error)?;
    Ok(respond::json(StatusCode::OK, &file))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Quota {
    per_minute: u32,
}

/// `PUT /emulator/projects/{project}/quota {"per_minute"}`: sends per minute.
pub(super) async fn set_quota(
    State(state): State<EmulatorState>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ControlError> {
    let quota: Quota = json_body(&bytes, "body")?;
    let project = find(&state, &name)?;
    project.set_quota(quota.per_minute);
    tracing::info!(project_id = %project.id, per_minute = quota.per_minute, "project quota set");
    Ok(respond::json(
        StatusCode::OK,
        &json!({"project_id": &*project.id, "per_minute": project.quota()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OAuthSettings {
    lifetime_secs: u64,
}

/// `PUT /emulator/oauth {"lifetime_secs"}`: lifetime of access tokens issued from now on.
pub(super) async fn set_oauth(
    State(state): State<EmulatorState>,
    bytes: Bytes,
) -> Result<Response, ControlError> {
    let settings: OAuthSettings = json_body(&bytes, "body")?;
    if !(1..=MAX_LIFETIME_SECS).contains(&settings.lifetime_secs) {
        return Err(ControlError::BadRequest(format!(
            "lifetime_secs: must be between 1 and {MAX_LIFETIME_SECS}, got {}",
            settings.lifetime_secs
        )));
    }
    state.get().oauth.set_lifetime_secs(settings.lifetime_secs);
    tracing::info!(
        lifetime_secs = settings.lifetime_secs,
        "access-token lifetime set"
    );
    Ok(respond::json(
        StatusCode::OK,
        &json!({"lifetime_secs": settings.lifetime_secs}),
    ))
}
