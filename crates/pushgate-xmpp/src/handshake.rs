//! The CCS login, both sides: stream header, features, SASL PLAIN, stream restart, resource
//! binding and the legacy session.
//!
//! These are protocol steps only: no timeouts, retries or reconnects (callers wrap them in
//! `tokio::time::timeout` and decide what a failure means).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::conn::XmppStream;
use crate::error::{ConnError, HandshakeError};
use crate::parser::{StreamEvent, StreamHeader};
use crate::stanza::{
    CCS_MECHANISMS, Features, Iq, IqPayload, IqType, PlainCredentials, SaslFailure, Stanza,
    StanzaError, StreamError, StreamErrorCondition,
};
use crate::writer;

/// The XMPP domain of CCS (the stream `to`, the SASL host and the JID domain), also for FCM.
pub const CCS_DOMAIN: &str = "gcm.googleapis.com";

const BIND_ID: &str = "bind_1";
const SESSION_ID: &str = "sess_1";

/// What a CCS client logs in with.
#[derive(Clone)]
pub struct ClientLogin {
    /// The sender id (project number).
    pub sender_id: String,
    /// The server (API) key. Secret: never logged.
    pub api_key: String,
    /// Stream `to` and SASL host; [`CCS_DOMAIN`] by default.
    pub domain: String,
    /// Resource to ask for when binding; the server picks one if `None`.
    pub resource: Option<String>,
}

impl ClientLogin {
    /// Credentials for the default CCS domain.
    pub fn new(sender_id: impl Into<String>, api_key: impl Into<String>) -> Self {
        ClientLogin {
            sender_id: sender_id.into(),
            api_key: api_key.into(),
            domain: CCS_DOMAIN.into(),
            resource: None,
        }
    }
}

/// Debug never shows the key.
impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLogin")
            .field("sender_id", &self.sender_id)
            .field("api_key", &"<redacted>")
            .field("domain", &self.domain)
            .field("resource", &self.resource)
            .finish()
    }
}

/// A logged-in client stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSession {
    /// The full JID the server bound (`SENDER@gcm.googleapis.com/RESOURCE`).
    pub jid: String,
    /// The id of the server's post-authentication stream.
    pub stream_id: Option<String>,
    /// Whether the legacy session was offered and established.
    pub session: bool,
}

/// What a CCS server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The server's domain: header `from` and the JID domain.
    pub domain: String,
    /// SASL mechanisms to advertise (only `PLAIN` is implemented).
    pub mechanisms: Vec<String>,
    /// Whether to offer the legacy session after authentication. Answer the session IQ with
    /// [`auto_reply`] in the session loop (the client may also never send it).
    pub offer_session: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            domain: CCS_DOMAIN.into(),
            mechanisms: CCS_MECHANISMS.iter().map(|m| (*m).to_owned()).collect(),
            offer_session: true,
        }
    }
}

/// A logged-in client as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSession {
    /// The sender id from the SASL authcid.
    pub sender_id: String,
    /// The bound resource.
    pub resource: String,
    /// The full JID, `SENDER@domain/RESOURCE`: stanza errors are addressed `to` it.
    pub jid: String,
    /// The credentials the client sent (Debug redacts the password).
    pub credentials: PlainCredentials,
    /// The client's first stream header.
    pub client_header: StreamHeader,
}

/// A fresh stream id (unique within the process; ids need not be unpredictable).
pub fn new_stream_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:08X}{:06X}", nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Replies every XMPP end owes whatever its policy: a pong for a ping, a result for the legacy
/// session request, and `service-unavailable` for any other get/set IQ. `None` for stanzas
/// needing no automatic answer.
pub fn auto_reply(stanza: &Stanza) -> Option<String> {
    let Stanza::Iq(iq) = stanza else {
        return None;
    };
    match (iq.kind, &iq.payload) {
        (IqType::Get, IqPayload::Ping) | (IqType::Set, IqPayload::Session) => {
            Some(iq.result_for().to_xml())
        }
        (IqType::Get | IqType::Set, _) => {
            Some(iq.error_for(StanzaError::service_unavailable()).to_xml())
        }
        (IqType::Result | IqType::Error, _) => None,
    }
}

/// Sends a stream error and the close tag, ignoring write failures (we are giving up anyway).
async fn give_up<S>(stream: &mut XmppStream<S>, condition: StreamErrorCondition, text: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let err = StreamError {
        condition,
        text: Some(text.to_owned()),
    };
    let _ = stream.send(writer::stream_error_and_close(&err)).await;
}

/// Reads the next event, telling the peer why if its bytes were refused.
async fn next<S>(stream: &mut XmppStream<S>) -> Result<StreamEvent, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match stream.next_event().await {
        Ok(Some(ev)) => Ok(ev),
        Ok(None) => Err(HandshakeError::Closed),
        Err(ConnError::Xmpp(e)) => {
            let reply = writer::stream_error_and_close(&e.to_stream_error());
            let _ = stream.send(reply).await;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn expect_open<S>(stream: &mut XmppStream<S>) -> Result<StreamHeader, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next(stream).await? {
        StreamEvent::StreamOpen(h) => Ok(h),
        // Unreachable in practice: the parser only yields a header first.
        StreamEvent::Stanza(_) | StreamEvent::StreamClose => {
            Err(HandshakeError::Protocol("expected a stream header".into()))
        }
    }
}

/// The next stanza, classified; a stream error or close ends the handshake.
async fn next_stanza<S>(stream: &mut XmppStream<S>) -> Result<Stanza, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next(stream).await? {
        StreamEvent::Stanza(el) => match Stanza::from_element(el) {
            Stanza::StreamError(e) => {
                let _ = stream.send(writer::CLOSE).await;
                Err(HandshakeError::StreamError(e))
            }
            s => Ok(s),
        },
        StreamEvent::StreamClose => {
            let _ = stream.send(writer::CLOSE).await;
            Err(HandshakeError::Closed)
        }
        StreamEvent::StreamOpen(_) => Err(HandshakeError::Protocol(
            "unexpected second stream header".into(),
        )),
    }
}

async fn expect_features<S>(stream: &mut XmppStream<S>) -> Result<Features, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match next_stanza(stream).await? {
        Stanza::Features(f) => Ok(f),
        _ => {
            give_up(
                stream,
                StreamErrorCondition::UnsupportedStanzaType,
                "expected features",
            )
            .await;
            Err(HandshakeError::Protocol(
                "expected <stream:features>".into(),
            ))
        }
    }
}

/// Logs a client in: header, features, `AUTH PLAIN` as `SENDER@domain`, success, restart,
/// bind and (if offered) session. On `<failure>` the client closes its stream and returns
/// [`HandshakeError::AuthFailed`].
pub async fn client_handshake<S>(
    stream: &mut XmppStream<S>,
    login: &ClientLogin,
) -> Result<ClientSession, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.send(writer::client_header(&login.domain)).await?;
    expect_open(stream).await?;
    let features = expect_features(stream).await?;
    if !features.offers("PLAIN") {
        let _ = stream.send(writer::CLOSE).await;
        return Err(HandshakeError::Protocol(
            "server does not offer SASL PLAIN".into(),
        ));
    }
    let creds = PlainCredentials::for_sender(&login.sender_id, &login.domain, &login.api_key);
    stream.send(writer::auth_plain(&creds)).await?;
    match next_stanza(stream).await? {
        Stanza::Success => {}
        Stanza::Failure(f) => {
            let _ = stream.send(writer::CLOSE).await;
            return Err(HandshakeError::AuthFailed(f));
        }
        _ => {
            give_up(
                stream,
                StreamErrorCondition::UnsupportedStanzaType,
                "expected SASL outcome",
            )
            .await;
            return Err(HandshakeError::Protocol(
                "expected <success> or <failure>".into(),
            ));
        }
    }

    stream.reset();
    stream.send(writer::client_header(&login.domain)).await?;
    let header = expect_open(stream).await?;
    let features = expect_features(stream).await?;
    if !features.bind {
        let _ = stream.send(writer::CLOSE).await;
        return Err(HandshakeError::Protocol(
            "server does not offer resource binding".into(),
        ));
    }
    let bind = Iq::bind_request(BIND_ID, login.resource.as_deref());
    stream.send(bind.to_xml()).await?;
    let jid = match next_stanza(stream).await? {
        Stanza::Iq(Iq {
            id,
            kind: IqType::Result,
            payload: IqPayload::Bind { jid: Some(jid), .. },
            ..
        }) if id == BIND_ID => jid,
        Stanza::Iq(Iq {
            id,
            payload: IqPayload::Error(e),
            ..
        }) if id == BIND_ID => {
            let _ = stream.send(writer::CLOSE).await;
            return Err(HandshakeError::Protocol(format!(
                "bind refused: {}",
                e.condition
            )));
        }
        _ => {
            give_up(
                stream,
                StreamErrorCondition::UnsupportedStanzaType,
                "expected bind result",
            )
            .await;
            return Err(HandshakeError::Protocol("expected the bind result".into()));
        }
    };

    if features.session {
        stream
            .send(Iq::session_request(SESSION_ID).to_xml())
            .await?;
        match next_stanza(stream).await? {
            Stanza::Iq(iq) if iq.id == SESSION_ID && iq.kind == IqType::Result => {}
            _ => {
                let _ = stream.send(writer::CLOSE).await;
                return Err(HandshakeError::Protocol(
                    "session establishment failed".into(),
                ));
            }
        }
    }
    tracing::debug!(%jid, session = features.session, "CCS login complete");
    Ok(ClientSession {
        jid,
        stream_id: header.id,
        session: features.session,
    })
}

/// Accepts a client: header with a fresh id, features, SASL PLAIN (checked by
/// `authenticate`, which sees the decoded credentials), success or `<failure>` + close,
/// restart, bind with `SENDER@domain/RESOURCE`. Returns after the bind result; answer the
/// optional session IQ and pings with [`auto_reply`] in the session loop.
pub async fn server_handshake<S, F>(
    stream: &mut XmppStream<S>,
    opts: &ServerOptions,
    authenticate: F,
) -> Result<ServerSession, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&PlainCredentials) -> bool,
{
    let client_header = expect_open(stream).await?;
    let mut out = writer::server_header(&opts.domain, &new_stream_id());
    out.push_str(
        &Features {
            mechanisms: opts.mechanisms.clone(),
            ..Features::default()
        }
        .to_xml(),
    );
    stream.send(out).await?;

    let auth = match next_stanza(stream).await? {
        Stanza::Auth(a) => a,
        _ => {
            give_up(
                stream,
                StreamErrorCondition::NotAuthorized,
                "authenticate first",
            )
            .await;
            return Err(HandshakeError::Protocol("expected <auth>".into()));
        }
    };
    let outcome = if auth.mechanism != "PLAIN" {
        Err(SaslFailure {
            condition: "invalid-mechanism".into(),
            text: None,
        })
    } else {
        match auth.plain_credentials() {
            Err(e) => Err(SaslFailure {
                condition: e.condition().into(),
                text: None,
            }),
            Ok(creds) => match creds.sender_id() {
                Some(sender) if authenticate(&creds) => Ok((sender.to_owned(), creds)),
                _ => Err(SaslFailure::not_authorized()),
            },
        }
    };
    let (sender_id, credentials) = match outcome {
        Ok(ok) => ok,
        Err(failure) => {
            // The authcid is an identity, not a secret; the password is never logged.
            tracing::debug!(condition = %failure.condition, "CCS SASL refused");
            let mut out = failure.to_xml();
            out.push_str(writer::CLOSE);
            let _ = stream.send(out).await;
            return Err(HandshakeError::AuthFailed(failure));
        }
    };
    stream.send(writer::SUCCESS).await?;

    stream.reset();
    expect_open(stream).await?;
    let mut out = writer::server_header(&opts.domain, &new_stream_id());
    out.push_str(&Features::bind(opts.offer_session).to_xml());
    stream.send(out).await?;

    loop {
        let stanza = next_stanza(stream).await?;
        if let Stanza::Iq(Iq {
            id,
            kind: IqType::Set,
            payload: IqPayload::Bind { resource, .. },
            ..
        }) = &stanza
        {
            let resource = match resource.as_deref() {
                Some(r) if !r.is_empty() => r.to_owned(),
                _ => format!("pushgate-{}", new_stream_id()),
            };
            let jid = format!("{sender_id}@{}/{resource}", opts.domain);
            stream.send(Iq::bind_result(id, &jid).to_xml()).await?;
            tracing::debug!(%jid, "CCS client bound");
            return Ok(ServerSession {
                sender_id,
                resource,
                jid,
                credentials,
                client_header,
            });
        }
        match (&stanza, auto_reply(&stanza)) {
            // Pings before binding are harmless; answer and keep waiting.
            (Stanza::Iq(_), Some(reply)) => stream.send(reply).await?,
            _ => {
                give_up(
                    stream,
                    StreamErrorCondition::NotAuthorized,
                    "bind a resource first",
                )
                .await;
                return Err(HandshakeError::Protocol("expected a bind request".into()));
            }
        }
    }
}
