//! FCM v1 projects: service accounts whose key files point their `token_uri` at the
//! emulator, and the per-project message quota (docs/protocols.md, "FCM v1: quotas and limits",
//! "FCM v1: OAuth service-account flow").
//!
//! A project is also a sender: its number is registered as a sender id, so virtual devices
//! created for the project (or for its number) answer `SENDER_ID_MISMATCH` to other
//! projects. RSA key generation is slow, so the default project's key is generated once per
//! process, on first use, and survives resets.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use jsonwebtoken::DecodingKey;
use parking_lot::Mutex;
use pushgate_proto::v1::oauth::ServiceAccountKey;

use crate::senders::Senders;
use crate::{DEFAULT_PROJECT_ID, DEFAULT_SENDER_ID};

/// Why a project could not be created or its key made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProjectError {
    /// The id or number is taken.
    #[error("{0}")]
    Taken(String),
    /// The id or number is malformed.
    #[error("{0}")]
    Invalid(String),
    /// rcgen or jsonwebtoken refused the key (a bug or a broken crypto backend).
    #[error("cannot make an RSA key: {0}")]
    Key(String),
}

/// A project's RSA key pair. `Debug` hides the private key.
pub(crate) struct KeyMaterial {
    /// `private_key_id` and the JWT `kid`: 40 hex digits.
    pub key_id: String,
    /// PKCS#8 PEM of the private key, handed out in the key file only.
    private_pem: String,
    /// The parsed public key, so verifying an assertion parses nothing.
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// A fresh RSA-2048 key (tens of milliseconds: call it off the async threads).
    pub(crate) fn generate() -> Result<Self, ProjectError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| ProjectError::Key(e.to_string()))?;
        let decoding = DecodingKey::from_rsa_pem(pair.public_key_pem().as_bytes())
            .map_err(|e| ProjectError::Key(e.to_string()))?;
        Ok(Self {
            key_id: random_hex(40),
            private_pem: pair.serialize_pem(),
            decoding,
        })
    }
}

static DEFAULT_KEY: OnceLock<Arc<KeyMaterial>> = OnceLock::new();

/// The default project's key, generated on first call and then shared by every instance
/// in the process.
pub(crate) fn default_key() -> Result<Arc<KeyMaterial>, ProjectError> {
    if let Some(key) = DEFAULT_KEY.get() {
        return Ok(key.clone());
    }
    let fresh = Arc::new(KeyMaterial::generate()?);
    // Two racing first callers: one wins, both return the winner.
    Ok(DEFAULT_KEY.get_or_init(|| fresh).clone())
}

/// Where a project's key comes from.
#[derive(Debug)]
enum KeySlot {
    /// The process-wide default key, made on first use.
    Default,
    /// A key made when the project was created.
    Own(Arc<KeyMaterial>),
}

/// Per-project message quota: a token bucket refilled continuously.
#[derive(Debug)]
struct Bucket {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.per_minute));
        self.last = now;
    }

    /// Takes one message; on refusal, how long until one is available.
    fn take(&mut self) -> Result<(), Duration> {
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let rate = f64::from(self.per_minute) / 60.0;
        if rate <= 0.0 {
            return Err(Duration::from_secs(60));
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
    }
}

/// One FCM v1 project (one service account).
#[derive(Debug)]
pub(crate) struct Project {
    /// `project_id`, e.g. `pushgate-emulator`.
    pub id: Arc<str>,
    /// The project number, also its sender id.
    pub number: Arc<str>,
    /// `client_email`, the JWT issuer.
    pub client_email: String,
    /// `client_id`: 21 digits.
    pub client_id: String,
    key: KeySlot,
    quota: Mutex<Bucket>,
}

impl Project {
    /// The key pair (for the default project: made now if this is the first use).
    pub(crate) fn key(&self) -> Result<Arc<KeyMaterial>, ProjectError> {
        match &self.key {
            KeySlot::Default => default_key(),
            KeySlot::Own(key) => Ok(key.clone()),
        }
    }

    /// True when [`Project::key`] would have to generate a key first.
    pub(crate) fn key_pending(&self) -> bool {
        matches!(self.key, KeySlot::Default) && DEFAULT_KEY.get().is_none()
    }

    /// The complete service-account key file, `token_uri` pointing at `base_url`.
    pub(crate) fn key_file(&self, base_url: &str) -> Result<ServiceAccountKey, ProjectError> {
        let key = self.key()?;
        let email = &self.client_email;
        Ok(ServiceAccountKey {
            key_type: "service_account".into(),
            project_id: self.id.to_string(),
            private_key_id: key.key_id.clone(),
            private_key: key.private_pem.clone(),
            client_email: email.clone(),
            client_id: Some(self.client_id.clone()),
            auth_uri: Some("https://accounts.google.com/o/oauth2/auth".into()),
            token_uri: format!("{base_url}/token"),
            auth_provider_x509_cert_url: Some("https://www.googleapis.com/oauth2/v1/certs".into()),
            client_x509_cert_url: Some(format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                email.replace('@', "%40")
            )),
            universe_domain: Some("googleapis.com".into()),
        })
    }

    /// Counts one message against the quota; `Err(wait)` when over it.
    pub(crate) fn take_quota(&self) -> Result<(), Duration> {
        self.quota.lock().take()
    }

    /// Sets the quota; the bucket keeps what it holds, up to the new size.
    pub(crate) fn set_quota(&self, per_minute: u32) {
        let mut bucket = self.quota.lock();
        bucket.refill(Instant::now());
        bucket.per_minute = per_minute;
        bucket.tokens = bucket.tokens.min(f64::from(per_minute));
    }

    /// The quota per minute.
    pub(crate) fn quota(&self) -> u32 {
        self.quota.lock().per_minute
    }
}

/// Every project, by id, by number and by `client_email`.
#[derive(Debug)]
pub(crate) struct Projects {
    by_name: DashMap<Arc<str>, Arc<Project>>,
    by_email: DashMap<String, Arc<Project>>,
    default_quota: u32,
}

/// `firebase-adminsdk@<project>.iam.gserviceaccount.com`.
fn client_email(project_id: &str) -> String {
    format!("firebase-adminsdk@{project_id}.iam.gserviceaccount.com")
}

impl Projects {
    /// The registry with only the default project.
    pub(crate) fn new(default_quota: u32) -> Self {
        let projects = Self {
            by_name: DashMap::new(),
            by_email: DashMap::new(),
            default_quota,
        };
        projects.install_default();
        projects
    }

    fn install_default(&self) {
        let project = Arc::new(Project {
            id: Arc::from(DEFAULT_PROJECT_ID),
            number: Arc::from(DEFAULT_SENDER_ID),
            client_email: client_email(DEFAULT_PROJECT_ID),
            client_id: "100000000000000000001".into(),
            key: KeySlot::Default,
            quota: Mutex::new(Bucket::new(self.default_quota)),
        });
        self.insert(project);
    }

    fn insert(&self, project: Arc<Project>) {
        self.by_name.insert(project.id.clone(), project.clone());
        self.by_name.insert(project.number.clone(), project.clone());
        self.by_email
            .insert(project.client_email.clone(), project.clone());
    }

    /// Creates a project with a fresh key; `number` defaults to a fresh numeric id. The
    /// number becomes a sender id.
    pub(crate) fn create(
        &self,
        senders: &Senders,
        project_id: &str,
        number: Option<&str>,
        key: KeyMaterial,
    ) -> Result<Arc<Project>, ProjectError> {
        check_project_id(project_id)?;
        if let Some(n) = number
            && (n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ProjectError::Invalid(format!(
                "project_number: must be 1 to 20 digits, got {n:?}"
            )));
        }
        if self.by_name.contains_key(project_id) {
            return Err(ProjectError::Taken(format!(
                "project_id: project {project_id:?} exists"
            )));
        }
        let number = match number {
            Some(n) if self.by_name.contains_key(n) => {
                return Err(ProjectError::Taken(format!(
                    "project_number: {n} is the number of another project"
                )));
            }
            Some(n) => n.to_string(),
            None => self.fresh_number(),
        };
        let project = Arc::new(Project {
            id: Arc::from(project_id),
            number: senders.intern(&number),
            client_email: client_email(project_id),
            client_id: random_digits(21),
            key: KeySlot::Own(Arc::new(key)),
            quota: Mutex::new(Bucket::new(self.default_quota)),
        });
        self.insert(project.clone());
        Ok(project)
    }

    fn fresh_number(&self) -> String {
        loop {
            let n = format!(
                "{}",
                100_000_000_000u64 + rand::random::<u64>() % 900_000_000_000
            );
            if !self.by_name.contains_key(n.as_str()) {
                return n;
            }
        }
    }

    /// The project with this id or number.
    pub(crate) fn get(&self, id_or_number: &str) -> Option<Arc<Project>> {
        self.by_name.get(id_or_number).map(|p| p.value().clone())
    }

    /// The project whose service account is `client_email`.
    pub(crate) fn by_email(&self, client_email: &str) -> Option<Arc<Project>> {
        self.by_email.get(client_email).map(|p| p.value().clone())
    }

    /// Back to only the default project (call after the senders' reset).
    pub(crate) fn reset(&self, senders: &Senders) {
        self.by_name.clear();
        self.by_email.clear();
        self.install_default();
        senders.intern(DEFAULT_SENDER_ID);
    }
}

/// Google's rule, loosely: 1 to 63 of `[a-z0-9-]`, starting with a letter (so an id never
/// looks like a number).
fn check_project_id(id: &str) -> Result<(), ProjectError> {
    let ok = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ProjectError::Invalid(format!(
            "project_id: must be 1 to 63 of [a-z0-9-] starting with a letter, got {id:?}"
        )))
    }
}

fn random_hex(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        out.push_str(&format!("{:016x}", rand::random::<u64>()));
    }
    out.truncate(len);
    out
}

fn random_digits(len: usize) -> String {
    let mut out = String::with_capacity(len);
    out.push('1');
    while out.len() < len {
        out.push_str(&format!(
            "{:018}",
            rand::random::<u64>() % 1_000_000_000_000_000_000
        ));
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_beyond_quota_and_says_how_long() {
        let mut bucket = Bucket::new(2);
        assert!(bucket.take().is_ok());
        assert!(bucket.take().is_ok());
        let wait = bucket.take().unwrap_err();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
    }

    #[test]
    fn project_ids_are_checked() {
        assert!(check_project_id("my-proj-1").is_ok());
        assert!(check_project_id("123").is_err());
        assert!(check_project_id("").is_err());
        assert!(check_project_id("Upper").is_err());
    }
}
