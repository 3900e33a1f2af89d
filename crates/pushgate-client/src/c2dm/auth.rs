//! How a C2DM sender authenticates, and the auth token it holds.

use std::fmt;

use pushgate_proto::c2dm::AccountType;

/// Google's ClientLogin URL (docs/protocols.md, "C2DM: ClientLogin").
pub const DEFAULT_LOGIN_URL: &str = "https://www.google.com/accounts/ClientLogin";

/// The credentials a [`C2dmSender`](super::C2dmSender) starts from.
///
/// Exists because C2DM senders either held the role account's password (and logged in with
/// ClientLogin whenever the token was refused) or only a token obtained elsewhere. `Debug`
/// never shows the password or the token.
#[derive(Clone)]
pub enum C2dmAuth {
    /// Log in with ClientLogin; log in again once when a send gets HTTP 401.
    ClientLogin {
        /// The role account registered for C2DM.
        email: String,
        /// Its password; never logged nor shown by `Debug`.
        password: String,
        /// `accountType` of the login request.
        account_type: AccountType,
        /// Free-form application identifier (`source`).
        source: String,
        /// Where to log in; `None` means [`DEFAULT_LOGIN_URL`].
        login_url: Option<String>,
    },
    /// A ClientLogin `Auth` token obtained elsewhere; a 401 cannot be repaired.
    Token(String),
}

impl C2dmAuth {
    /// ClientLogin credentials with the default account type (`HOSTED_OR_GOOGLE`) and login URL.
    pub fn client_login(
        email: impl Into<String>,
        password: impl Into<String>,
        source: impl Into<String>,
    ) -> Self {
        C2dmAuth::ClientLogin {
            email: email.into(),
            password: password.into(),
            account_type: AccountType::default(),
            source: source.into(),
            login_url: None,
        }
    }

    /// The same credentials logging in at `url` (e.g. an emulator's
    /// `http://127.0.0.1:port/accounts/ClientLogin`); no effect on [`C2dmAuth::Token`].
    pub fn with_login_url(mut self, url: impl Into<String>) -> Self {
        if let C2dmAuth::ClientLogin { login_url, .. } = &mut self {
            *login_url = Some(url.into());
        }
        self
    }

    /// True when the sender can log in by itself.
    pub fn can_login(&self) -> bool {
        matches!(self, C2dmAuth::ClientLogin { .. })
    }
}

impl fmt::Debug for C2dmAuth {
    /// Shows the account, never the password or token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            C2dmAuth::ClientLogin {
                email,
                account_type,
                source,
                login_url,
                ..
            } => f
                .debug_struct("ClientLogin")
                .field("email", email)
                .field("password", &"<redacted>")
                .field("account_type", account_type)
                .field("source", source)
                .field("login_url", login_url)
                .finish(),
            C2dmAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A ClientLogin `Auth` token, as handed out by [`C2dmSender::current_token`](super::C2dmSender::current_token)
/// and [`C2dmSender::auth_updates`](super::C2dmSender::auth_updates).
///
/// Exists so that the token can travel (to a store, through a watch channel) without ever
/// showing up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        AuthToken(token.into())
    }

    /// The token itself, for persisting it.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let auth = C2dmAuth::client_login("c2dm@example.com", "hunter2-pw", "app-1")
            .with_login_url("http://127.0.0.1:1/accounts/ClientLogin");
        let shown = format!("{auth:?}");
        assert!(!shown.contains("hunter2-pw"), "{shown}");
        assert!(shown.contains("c2dm@example.com"), "{shown}");
        let token = C2dmAuth::Token("DQAAAGgA-secret".into());
        assert!(!format!("{token:?}").contains("DQAAAGgA"));
        assert!(!format!("{:?}", AuthToken::new("DQAAAGgA-secret")).contains("DQAAAGgA"));
        assert!(auth.can_login() && !token.can_login());
    }
}
