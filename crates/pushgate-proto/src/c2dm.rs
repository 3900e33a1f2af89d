//! C2DM (2010–2012): ClientLogin and `/c2dm/send` (docs/protocols.md, "C2DM").
//!
//! Send answers are the same `id=` / `Error=` lines as the legacy plain-text form, so they are
//! parsed with [`PlainTextResponse`](crate::legacy::PlainTextResponse) and classified with the
//! shared [`ErrorCode`](crate::legacy::ErrorCode).

use std::collections::BTreeMap;
use std::fmt;

use crate::ValidationError;

/// Most bytes of payload (`data.<key>` keys plus values) one C2DM message may carry.
pub const MAX_PAYLOAD_BYTES: usize = 1024;
/// Response header through which the server hands the sender a new auth token.
pub const UPDATE_CLIENT_AUTH: &str = "Update-Client-Auth";
/// The ClientLogin service name of C2DM.
pub const SERVICE: &str = "ac2dm";

/// `accountType` of a ClientLogin request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountType {
    /// Try a hosted (Apps) account, then a Google account.
    #[default]
    HostedOrGoogle,
    /// A Google account.
    Google,
    /// A hosted (Apps) account.
    Hosted,
}

impl AccountType {
    /// Wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::HostedOrGoogle => "HOSTED_OR_GOOGLE",
            AccountType::Google => "GOOGLE",
            AccountType::Hosted => "HOSTED",
        }
    }

    /// Reads a wire value.
    pub fn parse(text: &str) -> Option<Self> {
        [
            AccountType::HostedOrGoogle,
            AccountType::Google,
            AccountType::Hosted,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// A ClientLogin request (`POST /accounts/ClientLogin`). `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientLoginRequest {
    /// The role account registered for C2DM.
    pub email: String,
    /// Its password.
    pub passwd: String,
    /// Account type.
    pub account_type: AccountType,
    /// Service, `ac2dm` for C2DM.
    pub service: String,
    /// Free-form application identifier.
    pub source: String,
}

impl fmt::Debug for ClientLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLoginRequest")
            .field("email", &self.email)
            .field("passwd", &"<redacted>")
            .field("account_type", &self.account_type)
            .field("service", &self.service)
            .field("source", &self.source)
            .finish()
    }
}

impl ClientLoginRequest {
    /// Encodes the form body.
    pub fn to_form(&self) -> String {
        crate::form::encode(&[
            ("accountType", self.account_type.as_str()),
            ("Email", self.email.as_str()),
            ("Passwd", self.passwd.as_str()),
            ("service", self.service.as_str()),
            ("source", self.source.as_str()),
        ])
    }

    /// Decodes a form body; missing `Email`/`Passwd` or an unknown `accountType` are errors
    /// naming the field.
    pub fn from_form(body: &str) -> Result<Self, ValidationError> {
        let pairs = crate::form::decode(body)?;
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let account_type = match get("accountType") {
            None => AccountType::HostedOrGoogle,
            Some(t) => AccountType::parse(&t).ok_or_else(|| {
                ValidationError::new(
                    "accountType",
                    format!("{t:?} is not HOSTED_OR_GOOGLE, GOOGLE or HOSTED"),
                )
            })?,
        };
        Ok(ClientLoginRequest {
            email: get("Email").ok_or_else(|| ValidationError::new("Email", "is required"))?,
            passwd: get("Passwd").ok_or_else(|| ValidationError::new("Passwd", "is required"))?,
            account_type,
            service: get("service").unwrap_or_default(),
            source: get("source").unwrap_or_default(),
        })
    }
}

/// A ClientLogin answer: tokens on 200, `Error=` (and maybe captcha fields) on 403.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientLoginResponse {
    /// `SID=`, `LSID=`, `Auth=` lines; only `Auth` is used.
    Tokens {
        /// Session id (unused).
        sid: String,
        /// Long-lived session id (unused).
        lsid: String,
        /// The token for `Authorization: GoogleLogin auth=...`.
        auth: String,
    },
    /// `Error=<code>` (`BadAuthentication`, `CaptchaRequired`, ...).
    Error {
        /// The error code.
        code: String,
        /// `Url=` help page.
        url: Option<String>,
        /// `CaptchaToken=` for `CaptchaRequired`.
        captcha_token: Option<String>,
        /// `CaptchaUrl=` for `CaptchaRequired`.
        captcha_url: Option<String>,
    },
}

impl fmt::Debug for ClientLoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientLoginResponse::Tokens { .. } => {
                f.write_str("ClientLoginResponse::Tokens(<redacted>)")
            }
            ClientLoginResponse::Error { code, .. } => {
                write!(f, "ClientLoginResponse::Error({code})")
            }
        }
    }
}

fn lines(body: &str) -> BTreeMap<&str, &str> {
    body.lines()
        .filter_map(|l| l.trim().split_once('='))
        .collect()
}

impl ClientLoginResponse {
    /// Parses a body: an `Auth=` line means tokens, an `Error=` line means failure.
    pub fn parse(body: &str) -> Option<Self> {
        let fields = lines(body);
        if let Some(auth) = fields.get("Auth") {
            return Some(ClientLoginResponse::Tokens {
                sid: fields.get("SID").unwrap_or(&"").to_string(),
                lsid: fields.get("LSID").unwrap_or(&"").to_string(),
                auth: auth.to_string(),
            });
        }
        let code = fields.get("Error")?;
        Some(ClientLoginResponse::Error {
            code: code.to_string(),
            url: fields.get("Url").map(|s| s.to_string()),
            captcha_token: fields.get("CaptchaToken").map(|s| s.to_string()),
            captcha_url: fields.get("CaptchaUrl").map(|s| s.to_string()),
        })
    }

    /// Renders the body as the service sent it.
    pub fn to_body(&self) -> String {
        match self {
            ClientLoginResponse::Tokens { sid, lsid, auth } => {
                format!("SID={sid}\nLSID={lsid}\nAuth={auth}\n")
            }
            ClientLoginResponse::Error {
                code,
                url,
                captcha_token,
                captcha_url,
            } => {
                let mut out = format!("Error={code}\n");
                for (k, v) in [
                    ("Url", url),
                    ("CaptchaToken", captcha_token),
                    ("CaptchaUrl", captcha_url),
                ] {
                    if let Some(v) = v {
                        out.push_str(&format!("{k}={v}\n"));
                    }
                }
                out
            }
        }
    }
}

/// A `/c2dm/send` form request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct C2dmRequest {
    /// The one recipient.
    pub registration_id: String,
    /// Required by C2DM.
    pub collapse_key: Option<String>,
    /// `data.<key>` parameters.
    pub data: BTreeMap<String, String>,
    /// Present means true.
    pub delay_while_idle: bool,
}

impl C2dmRequest {
    /// Encodes the form body.
    pub fn to_form(&self) -> String {
        let mut pairs: Vec<(String, String)> =
            vec![("registration_id".into(), self.registration_id.clone())];
        if let Some(k) = &self.collapse_key {
            pairs.push(("collapse_key".into(), k.clone()));
        }
        if self.delay_while_idle {
            pairs.push(("delay_while_idle".into(), "1".into()));
        }
        crate::form::push_data(&mut pairs, &self.data);
        crate::form::encode(&pairs)
    }

    /// Decodes a form body. `delay_while_idle` counts as set whatever its value (c2dm4j sent
    /// the bare name).
    pub fn from_form(body: &str) -> Result<Self, ValidationError> {
        let pairs = crate::form::decode(body)?;
        let mut request = C2dmRequest::default();
        for (key, value) in pairs {
            match key.as_str() {
                "registration_id" => request.registration_id = value,
                "collapse_key" => request.collapse_key = Some(value),
                "delay_while_idle" => request.delay_while_idle = true,
                other => {
                    if let Some(k) = other.strip_prefix("data.") {
                        request.data.insert(k.to_string(), value);
                    }
                }
            }
        }
        Ok(request)
    }

    /// Payload size as C2DM counts it: keys plus values of `data.<key>`.
    pub fn payload_bytes(&self) -> usize {
        self.data.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The checks the service runs, as client-side errors naming the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.registration_id.is_empty() {
            return Err(ValidationError::new("registration_id", "is required"));
        }
        if self.collapse_key.as_deref().unwrap_or("").is_empty() {
            return Err(ValidationError::new("collapse_key", "is required by C2DM"));
        }
        let size = self.payload_bytes();
        if size > MAX_PAYLOAD_BYTES {
            return Err(ValidationError::new(
                "data",
                format!(
                    "payload is {size} bytes, over the C2DM limit of {MAX_PAYLOAD_BYTES} bytes"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_login_answers() {
        let ok = ClientLoginResponse::parse("SID=s\nLSID=l\nAuth=DQAAAGgA\n").unwrap();
        assert!(matches!(&ok, ClientLoginResponse::Tokens { auth, .. } if auth == "DQAAAGgA"));
        assert!(!format!("{ok:?}").contains("DQAAAGgA"));
        let err = ClientLoginResponse::parse(
            "Error=CaptchaRequired\nUrl=https://x\nCaptchaToken=t\nCaptchaUrl=Captcha?ctoken=t\n",
        )
        .unwrap();
        assert_eq!(ClientLoginResponse::parse(&err.to_body()).unwrap(), err);
        assert!(ClientLoginResponse::parse("hello").is_none());
    }

    #[test]
    fn client_login_request_checks_fields() {
        let r = ClientLoginRequest {
            email: "a@b.c".into(),
            passwd: "p&w=d".into(),
            account_type: AccountType::Google,
            service: SERVICE.into(),
            source: "x-y-1".into(),
        };
        assert_eq!(ClientLoginRequest::from_form(&r.to_form()).unwrap(), r);
        assert!(!format!("{r:?}").contains("p&w=d"));
        assert_eq!(
            ClientLoginRequest::from_form("Email=a&Passwd=b&accountType=OTHER")
                .unwrap_err()
                .field,
            "accountType"
        );
        assert_eq!(
            ClientLoginRequest::from_form("Email=a").unwrap_err().field,
            "Passwd"
        );
    }

    #[test]
    fn send_rules() {
        let mut r = C2dmRequest {
            registration_id: "r".into(),
            collapse_key: Some("c".into()),
            ..C2dmRequest::default()
        };
        r.data.insert("k".into(), "x".repeat(1023));
        r.validate().unwrap();
        r.data.insert("k".into(), "x".repeat(1024));
        let err = r.validate().unwrap_err();
        assert!(
            err.problem.contains("1025") && err.problem.contains("1024"),
            "{err}"
        );
        r.collapse_key = None;
        assert_eq!(r.validate().unwrap_err().field, "collapse_key");
        // c2dm4j sent the bare name.
        assert!(
            C2dmRequest::from_form("registration_id=a&delay_while_idle")
                .unwrap()
                .delay_while_idle
        );
    }

    proptest! {
        #[test]
        fn send_form_round_trips(
            registration_id in "\\PC{1,30}",
            collapse_key in proptest::option::of("\\PC{0,10}"),
            data in proptest::collection::btree_map("[a-z0-9_.]{1,10}", "\\PC{0,20}", 0..5),
            delay_while_idle in any::<bool>(),
        ) {
            let r = C2dmRequest { registration_id, collapse_key, data, delay_while_idle };
            prop_assert_eq!(C2dmRequest::from_form(&r.to_form()).unwrap(), r);
        }
    }
}
