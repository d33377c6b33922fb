//! Stream negotiation for client connections (RFC 6120 sections 4 to 6):
//! stream header checks, features, STARTTLS (or direct TLS), SASL
//! (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN) and the post-authentication stream
//! restart. The result is an [`Authenticated`] stream ready for binding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use conclave_store::{Credentials, ScramKeys};
use minidom::Element;
use rand::RngCore;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Identity};
use sasl::secret::{self, Pbkdf2Sha1, Pbkdf2Sha256};
use sasl::server::mechanisms::{Plain, Scram};
use sasl::server::{
    Mechanism, MechanismError, Provider, ProviderError, Response, Validator, ValidatorError,
};
use xmpp_parsers::stream_error::DefinedCondition;

use crate::edge::auth;
use crate::edge::stream::{Item, StreamError, StreamHeader, StreamLimits, XmlStream};

pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const NS_STREAM_LIMITS: &str = "urn:xmpp:stream-limits:0";

/// Failed SASL attempts allowed on one connection before it is closed.
pub const MAX_AUTH_ATTEMPTS: u32 = 3;
/// SASL exchanges (of any outcome) allowed on one connection.
pub const MAX_SASL_EXCHANGES: u32 = 10;
/// Time allowed from connection to authenticated, restarted stream.
pub const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(60);

/// What negotiation needs to know, shared by all connections of a listener.
pub struct NegotiationContext {
    /// Virtual hosts served.
    pub hosts: Vec<String>,
    /// SNI-aware TLS configuration; `None` = no STARTTLS offered.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse SASL before TLS (except the loopback plaintext exception).
    pub require_encryption: bool,
    /// PLAIN without TLS, honoured only for loopback peers.
    pub allow_plaintext_auth: bool,
    pub limits: StreamLimits,
    pub store: Arc<dyn conclave_store::Store>,
    /// Added by the core to the post-auth `<stream:features>`.
    pub extra_features: Vec<Element>,
    /// Failed-authentication back-off, shared by all connections.
    pub auth_throttle: auth::AuthThrottle,
}

/// An authenticated stream, ready for resource binding.
pub struct Authenticated {
    /// Restarted after SASL; the post-auth features are already sent.
    pub stream: XmlStream,
    /// The authenticated account (`username@host`).
    pub jid: jid::BareJid,
    pub peer: SocketAddr,
}

/// Why negotiation failed (the peer was told, where it could be).
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    #[error("{0}")]
    Stream(#[from] StreamError),
    #[error("peer closed the stream during negotiation")]
    Closed,
    #[error("negotiation timed out")]
    Timeout,
    #[error("TLS handshake failed: {0}")]
    Tls(String),
}

/// Negotiates one client connection up to an authenticated, restarted stream.
pub async fn negotiate(
    socket: tokio::net::TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
    ctx: Arc<NegotiationContext>,
) -> Result<Authenticated, NegotiationError> {
    let mut stream = XmlStream::new(socket, ctx.limits.clone());
    if direct_tls {
        let Some(tls) = ctx.tls.clone() else {
            return Err(NegotiationError::Tls("no TLS configuration".to_owned()));
        };
        match tokio::time::timeout(NEGOTIATION_TIMEOUT, stream.upgrade_tls(tls)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(NegotiationError::Tls(e.to_string())),
            Err(_) => return Err(NegotiationError::Timeout),
        }
    }
    let mut n = Negotiation {
        stream,
        peer,
        ctx,
        host: None,
        failures: 0,
        exchanges: 0,
    };
    match tokio::time::timeout(NEGOTIATION_TIMEOUT, n.run()).await {
        Ok(Ok(jid)) => Ok(Authenticated {
            stream: n.stream,
            jid,
            peer,
        }),
        Ok(Err(e)) => {
            // Parse errors were already sent; close anything still open.
            n.stream.close(None).await;
            Err(e)
        }
        Err(_) => {
            n.stream
                .close(Some((
                    DefinedCondition::ConnectionTimeout,
                    "stream negotiation took too long".to_owned(),
                )))
                .await;
            Err(NegotiationError::Timeout)
        }
    }
}

struct Negotiation {
    stream: XmlStream,
    peer: SocketAddr,
    ctx: Arc<NegotiationContext>,
    /// The virtual host chosen by the first stream header.
    host: Option<String>,
    failures: u32,
    exchanges: u32,
}

/// Outcome of one SASL exchange.
enum SaslOutcome {
    Success(jid::BareJid),
    /// Wrong credentials: counts towards [`MAX_AUTH_ATTEMPTS`].
    Failed,
    /// Aborted or malformed exchange: counts towards [`MAX_SASL_EXCHANGES`].
    Rejected,
}

impl Negotiation {
    async fn run(&mut self) -> Result<jid::BareJid, NegotiationError> {
        'stream: loop {
            self.open_stream().await?;
            let secure = self.stream.is_secure();
            let features = self.pre_auth_features(secure);
            self.send_features(&features).await?;
            loop {
                let el = self.next_element().await?;
                if el.is("starttls", NS_TLS) {
                    match (&self.ctx.tls, secure) {
                        (Some(tls), false) => {
                            let tls = Arc::clone(tls);
                            self.stream
                                .send_bytes(format!("<proceed xmlns='{NS_TLS}'/>").as_bytes())
                                .await?;
                            self.stream
                                .upgrade_tls(tls)
                                .await
                                .map_err(|e| NegotiationError::Tls(e.to_string()))?;
                            tracing::debug!(peer = %self.peer, "TLS established");
                            continue 'stream;
                        }
                        _ => {
                            self.stream
                                .send_bytes(format!("<failure xmlns='{NS_TLS}'/>").as_bytes())
                                .await?;
                            self.stream.close(None).await;
                            return Err(NegotiationError::Tls(
                                "STARTTLS requested where it is not offered".to_owned(),
                            ));
                        }
                    }
                } else if el.is("auth", NS_SASL) {
                    self.exchanges += 1;
                    match self.sasl(&el, secure).await? {
                        SaslOutcome::Success(jid) => {
                            self.stream.restart();
                            self.open_stream().await?;
                            let features = self.post_auth_features();
                            self.send_features(&features).await?;
                            return Ok(jid);
                        }
                        SaslOutcome::Failed => {
                            self.failures += 1;
                            if self.failures >= MAX_AUTH_ATTEMPTS {
                                return Err(self
                                    .fail(
                                        DefinedCondition::PolicyViolation,
                                        format!(
                                            "too many failed authentication attempts ({MAX_AUTH_ATTEMPTS})"
                                        ),
                                    )
                                    .await);
                            }
                        }
                        SaslOutcome::Rejected => {
                            if self.exchanges >= MAX_SASL_EXCHANGES {
                                return Err(self
                                    .fail(
                                        DefinedCondition::PolicyViolation,
                                        "too many authentication attempts",
                                    )
                                    .await);
                            }
                        }
                    }
                } else {
                    let text = if !secure && self.ctx.require_encryption {
                        "encrypt (STARTTLS) and authenticate first"
                    } else {
                        "authenticate first"
                    };
                    return Err(self.fail(DefinedCondition::NotAuthorized, text).await);
                }
            }
        }
    }

    /// Closes with a stream error and returns the matching error.
    async fn fail(
        &mut self,
        condition: DefinedCondition,
        text: impl Into<String>,
    ) -> NegotiationError {
        let text = text.into();
        self.stream
            .close(Some((condition.clone(), text.clone())))
            .await;
        NegotiationError::Stream(StreamError::Stream { condition, text })
    }

    /// Next top-level element; the end of the stream is an error here.
    async fn next_element(&mut self) -> Result<Element, NegotiationError> {
        match self.stream.next_item().await? {
            Some(Item::Stanza(el)) => Ok(el),
            Some(Item::Header(_)) => Err(self
                .fail(DefinedCondition::NotWellFormed, "unexpected stream header")
                .await),
            Some(Item::End) | None => Err(NegotiationError::Closed),
        }
    }

    /// Reads the peer's stream header, checks it and sends ours.
    async fn open_stream(&mut self) -> Result<(), NegotiationError> {
        let header = match self.stream.next_item().await? {
            Some(Item::Header(h)) => h,
            Some(Item::End) | None => return Err(NegotiationError::Closed),
            Some(Item::Stanza(_)) => {
                return Err(self
                    .fail(DefinedCondition::NotWellFormed, "expected a stream header")
                    .await)
            }
        };
        let host = match self.choose_host(&header) {
            Ok(host) => host,
            Err(text) => return Err(self.fail(DefinedCondition::HostUnknown, text).await),
        };
        let mut id = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut id);
        let id = hex(&id);
        self.stream
            .send_header(Some(&host), Some(&id), header.lang.as_deref())
            .await?;
        self.host = Some(host);
        Ok(())
    }

    fn choose_host(&self, header: &StreamHeader) -> Result<String, String> {
        let requested = match &header.to {
            Some(to) => match jid::Jid::new(to) {
                Ok(j) if j.node().is_none() && j.resource().is_none() => {
                    j.domain().as_str().to_owned()
                }
                _ => return Err(format!("'{to}' is not a host name")),
            },
            // No 'to': the host of the previous header, else the first host.
            None => match self
                .host
                .clone()
                .or_else(|| self.ctx.hosts.first().cloned())
            {
                Some(h) => h,
                None => return Err("this server serves no host".to_owned()),
            },
        };
        // The host as configured (the header's may differ in case).
        let Some(served) = self
            .ctx
            .hosts
            .iter()
            .find(|h| h.eq_ignore_ascii_case(&requested))
        else {
            return Err(format!("this server does not serve '{requested}'"));
        };
        if let Some(previous) = &self.host {
            if !previous.eq_ignore_ascii_case(served) {
                return Err(format!("the stream was opened for '{previous}'"));
            }
        }
        Ok(served.clone())
    }

    fn plaintext_ok(&self, secure: bool) -> bool {
        secure || (self.ctx.allow_plaintext_auth && self.peer.ip().is_loopback())
    }

    /// SASL mechanisms offered on this stream.
    fn mechanisms(&self, secure: bool) -> Vec<&'static str> {
        let plain_ok = self.plaintext_ok(secure);
        if self.ctx.require_encryption && !plain_ok {
            return Vec::new();
        }
        let mut m = vec!["SCRAM-SHA-256", "SCRAM-SHA-1"];
        if plain_ok {
            m.push("PLAIN");
        }
        m
    }

    fn limits_feature(&self) -> Element {
        Element::builder("limits", NS_STREAM_LIMITS)
            .append(
                Element::builder("max-bytes", NS_STREAM_LIMITS)
                    .append(self.ctx.limits.max_stanza_bytes.to_string())
                    .build(),
            )
            .build()
    }

    fn pre_auth_features(&self, secure: bool) -> Vec<Element> {
        let mut features = Vec::new();
        if !secure && self.ctx.tls.is_some() {
            let mut starttls = Element::builder("starttls", NS_TLS);
            let exception = self.ctx.allow_plaintext_auth && self.peer.ip().is_loopback();
            if self.ctx.require_encryption && !exception {
                starttls = starttls.append(Element::builder("required", NS_TLS).build());
            }
            features.push(starttls.build());
        }
        let mechanisms = self.mechanisms(secure);
        if !mechanisms.is_empty() {
            let mut el = Element::builder("mechanisms", NS_SASL);
            for m in mechanisms {
                el = el.append(Element::builder("mechanism", NS_SASL).append(m).build());
            }
            features.push(el.build());
        }
        features.push(self.limits_feature());
        features
    }

    fn post_auth_features(&self) -> Vec<Element> {
        let mut features = vec![
            Element::builder("bind", NS_BIND).build(),
            Element::builder("session", NS_SESSION)
                .append(Element::builder("optional", NS_SESSION).build())
                .build(),
            self.limits_feature(),
        ];
        features.extend(self.ctx.extra_features.iter().cloned());
        features
    }

    async fn send_features(&mut self, features: &[Element]) -> Result<(), StreamError> {
        let mut out = b"<stream:features>".to_vec();
        for f in features {
            out.extend_from_slice(&crate::edge::stream::serialize(f));
        }
        out.extend_from_slice(b"</stream:features>");
        self.stream.send_bytes(&out).await
    }

    async fn sasl_failure(
        &mut self,
        condition: &str,
        text: Option<&str>,
    ) -> Result<(), StreamError> {
        let mut out = format!("<failure xmlns='{NS_SASL}'><{condition}/>");
        if let Some(text) = text {
            out.push_str(&format!("<text xml:lang='en'>{}</text>", escape_text(text)));
        }
        out.push_str("</failure>");
        self.stream.send_bytes(out.as_bytes()).await
    }

    /// Failed authentication: back-off, then `<failure><not-authorized/>`.
    async fn auth_failed(&mut self) -> Result<SaslOutcome, NegotiationError> {
        let ip = self.peer.ip();
        self.ctx.auth_throttle.record_failure(ip);
        let delay = self.ctx.auth_throttle.delay_for(ip);
        tracing::info!(peer = %self.peer, "authentication failed");
        tokio::time::sleep(delay).await;
        self.sasl_failure("not-authorized", None).await?;
        Ok(SaslOutcome::Failed)
    }

    /// One SASL exchange, from `<auth>` to `<success>` or `<failure>`.
    async fn sasl(
        &mut self,
        auth_el: &Element,
        secure: bool,
    ) -> Result<SaslOutcome, NegotiationError> {
        let host = self.host.clone().unwrap_or_default();
        let mechanism = auth_el.attr("mechanism").unwrap_or_default().to_owned();
        let offered = self.mechanisms(secure);
        if !offered.contains(&mechanism.as_str()) {
            let known = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"].contains(&mechanism.as_str());
            if known && !secure {
                self.sasl_failure("encryption-required", Some("use STARTTLS first"))
                    .await?;
            } else {
                self.sasl_failure("invalid-mechanism", None).await?;
            }
            return Ok(SaslOutcome::Rejected);
        }
        let Some(mut payload) = self.decode_payload(auth_el).await? else {
            return Ok(SaslOutcome::Rejected);
        };
        if payload.is_empty() {
            // No initial response: an empty challenge asks for it.
            self.stream
                .send_bytes(format!("<challenge xmlns='{NS_SASL}'/>").as_bytes())
                .await?;
            match self.sasl_response().await? {
                Some(p) => payload = p,
                None => return Ok(SaslOutcome::Rejected),
            }
        }

        // The store is async and the mechanisms are sync: read the account
        // named in the initial response first, then run the mechanism.
        let parsed = if mechanism == "PLAIN" {
            parse_plain(&payload)
        } else {
            parse_scram_first(&payload)
        };
        let Some(initial) = parsed else {
            self.sasl_failure("malformed-request", None).await?;
            return Ok(SaslOutcome::Rejected);
        };
        let Some(username) = auth::normalize_username(&initial.authcid, &host) else {
            return self.auth_failed().await;
        };
        let Ok(jid) = jid::BareJid::new(&format!("{username}@{host}")) else {
            return self.auth_failed().await;
        };
        if let Some(authzid) = &initial.authzid {
            let same = jid::BareJid::new(authzid).is_ok_and(|a| a == jid);
            if !same {
                self.sasl_failure("invalid-authzid", None).await?;
                return Ok(SaslOutcome::Rejected);
            }
        }
        let creds = match self.ctx.store.get_credentials(&host, &username).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading credentials failed: {e}");
                self.sasl_failure("temporary-auth-failure", None).await?;
                return Ok(SaslOutcome::Rejected);
            }
        };
        let mut mech: Box<dyn Mechanism + Send> = match mechanism.as_str() {
            "PLAIN" => Box::new(Plain::new(PlainCheck(creds))),
            _ => {
                // Unknown accounts get random keys: the exchange then fails
                // at the proof, like a wrong password.
                let creds = creds.unwrap_or_else(decoy_credentials);
                let binding = match initial.cb_flag {
                    // The sasl crate's server checks the GS2 flag the other way
                    // round: this selects the branch that accepts a client
                    // without channel binding ('n') with empty binding data.
                    b'n' => ChannelBinding::TlsUnique(Vec::new()),
                    b'y' => ChannelBinding::None,
                    _ => {
                        self.sasl_failure(
                            "malformed-request",
                            Some("channel binding is not offered"),
                        )
                        .await?;
                        return Ok(SaslOutcome::Rejected);
                    }
                };
                if mechanism == "SCRAM-SHA-1" {
                    Box::new(Scram::<Sha1, _>::new(StoredSha1(creds.sha1), binding))
                } else {
                    Box::new(Scram::<Sha256, _>::new(StoredSha256(creds.sha256), binding))
                }
            }
        };

        loop {
            let (m, result) = run_blocking(mech, payload).await;
            mech = m;
            match result {
                Ok(Response::Proceed(challenge)) => {
                    self.stream
                        .send_bytes(
                            format!(
                                "<challenge xmlns='{NS_SASL}'>{}</challenge>",
                                BASE64.encode(&challenge)
                            )
                            .as_bytes(),
                        )
                        .await?;
                    match self.sasl_response().await? {
                        Some(p) => payload = p,
                        None => return Ok(SaslOutcome::Rejected),
                    }
                }
                Ok(Response::Success(_, data)) => {
                    let body = if data.is_empty() {
                        String::new()
                    } else {
                        BASE64.encode(&data)
                    };
                    self.stream
                        .send_bytes(
                            format!("<success xmlns='{NS_SASL}'>{body}</success>").as_bytes(),
                        )
                        .await?;
                    self.ctx.auth_throttle.record_success(self.peer.ip());
                    tracing::info!(peer = %self.peer, %jid, mechanism = %mechanism, "authenticated");
                    return Ok(SaslOutcome::Success(jid));
                }
                Err(e) if is_auth_failure(&e) => return self.auth_failed().await,
                Err(_) => {
                    self.sasl_failure("malformed-request", None).await?;
                    return Ok(SaslOutcome::Rejected);
                }
            }
        }
    }

    /// Base64 payload of `<auth>` or `<response>` (`=` is an empty
    /// response). `None` after a `<failure>` was sent.
    async fn decode_payload(&mut self, el: &Element) -> Result<Option<Vec<u8>>, NegotiationError> {
        let text: String = el
            .text()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if text == "=" {
            return Ok(Some(Vec::new()));
        }
        match BASE64.decode(text.as_bytes()) {
            Ok(p) => Ok(Some(p)),
            Err(_) => {
                self.sasl_failure("incorrect-encoding", None).await?;
                Ok(None)
            }
        }
    }

    /// Waits for `<response>`; `<abort/>` or anything else ends the exchange
    /// (`None`, after the matching `<failure>`).
    async fn sasl_response(&mut self) -> Result<Option<Vec<u8>>, NegotiationError> {
        let el = self.next_element().await?;
        if el.is("response", NS_SASL) {
            let Some(p) = self.decode_payload(&el).await? else {
                return Ok(None);
            };
            if p.is_empty() {
                self.sasl_failure("malformed-request", None).await?;
                return Ok(None);
            }
            Ok(Some(p))
        } else if el.is("abort", NS_SASL) {
            self.sasl_failure("aborted", None).await?;
            Ok(None)
        } else {
            self.sasl_failure(
                "malformed-request",
                Some("expected <response/> or <abort/>"),
            )
            .await?;
            Ok(None)
        }
    }
}

/// Runs one mechanism step off the async threads (PLAIN derives a key).
async fn run_blocking(
    mut mech: Box<dyn Mechanism + Send>,
    payload: Vec<u8>,
) -> (Box<dyn Mechanism + Send>, Result<Response, MechanismError>) {
    match tokio::task::spawn_blocking(move || {
        let r = mech.respond(&payload);
        (mech, r)
    })
    .await
    {
        Ok(pair) => pair,
        Err(_) => (
            Box::new(Plain::new(PlainCheck(None))),
            Err(MechanismError::AuthenticationFailed),
        ),
    }
}

fn is_auth_failure(e: &MechanismError) -> bool {
    matches!(
        e,
        MechanismError::AuthenticationFailed
            | MechanismError::ValidatorError(_)
            | MechanismError::ProviderError(_)
    )
}

/// Fields of an initial SASL response needed before running the mechanism.
struct InitialResponse {
    authcid: String,
    authzid: Option<String>,
    /// SCRAM GS2 channel-binding flag (`n`, `y` or `p`).
    cb_flag: u8,
}

/// PLAIN: `authzid NUL authcid NUL password`.
fn parse_plain(payload: &[u8]) -> Option<InitialResponse> {
    let mut parts = payload.split(|&b| b == 0);
    let authzid = std::str::from_utf8(parts.next()?).ok()?;
    let authcid = std::str::from_utf8(parts.next()?).ok()?;
    parts.next()?;
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    Some(InitialResponse {
        authcid: authcid.to_owned(),
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        cb_flag: b'n',
    })
}

/// SCRAM client-first message: `gs2-cbind-flag,[a=authzid],n=user,r=nonce...`.
fn parse_scram_first(payload: &[u8]) -> Option<InitialResponse> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(3, ',');
    let flag = parts.next()?;
    let authzid = parts.next()?;
    let bare = parts.next()?;
    let cb_flag = *flag.as_bytes().first()?;
    let authzid = match authzid {
        "" => None,
        a => Some(decode_saslname(a.strip_prefix("a=")?)?),
    };
    let user = bare.split(',').next()?.strip_prefix("n=")?;
    let authcid = decode_saslname(user)?;
    if authcid.is_empty() {
        return None;
    }
    Some(InitialResponse {
        authcid,
        authzid,
        cb_flag,
    })
}

/// RFC 5802 saslname: `=2C` is `,` and `=3D` is `=`.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i)?);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

fn decoy_credentials() -> Credentials {
    let mut rng = rand::thread_rng();
    let mut keys = |len: usize| {
        let mut salt = vec![0u8; 16];
        let mut salted_password = vec![0u8; len];
        rng.fill_bytes(&mut salt);
        rng.fill_bytes(&mut salted_password);
        ScramKeys {
            salt,
            iterations: auth::SCRAM_ITERATIONS,
            salted_password,
        }
    };
    Credentials {
        sha1: keys(20),
        sha256: keys(32),
    }
}

struct StoredSha1(ScramKeys);

impl Provider<Pbkdf2Sha1> for StoredSha1 {
    fn provide(&self, _identity: &Identity) -> Result<Pbkdf2Sha1, ProviderError> {
        Ok(Pbkdf2Sha1 {
            salt: self.0.salt.clone(),
            iterations: self.0.iterations,
            digest: self.0.salted_password.clone(),
        })
    }
}
sasl::impl_validator_using_provider!(StoredSha1, Pbkdf2Sha1);

struct StoredSha256(ScramKeys);

impl Provider<Pbkdf2Sha256> for StoredSha256 {
    fn provide(&self, _identity: &Identity) -> Result<Pbkdf2Sha256, ProviderError> {
        Ok(Pbkdf2Sha256 {
            salt: self.0.salt.clone(),
            iterations: self.0.iterations,
            digest: self.0.salted_password.clone(),
        })
    }
}
sasl::impl_validator_using_provider!(StoredSha256, Pbkdf2Sha256);

/// PLAIN: checks the password against the stored SCRAM keys.
struct PlainCheck(Option<Credentials>);

impl Validator<secret::Plain> for PlainCheck {
    fn validate(&self, _identity: &Identity, value: &secret::Plain) -> Result<(), ValidatorError> {
        match &self.0 {
            Some(creds) if auth::check_password(creds, &value.0) => Ok(()),
            _ => Err(ValidatorError::AuthenticationFailed),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_first_message_parsing() {
        let m = parse_scram_first(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(m.authcid, "user");
        assert_eq!(m.authzid, None);
        assert_eq!(m.cb_flag, b'n');
        let m = parse_scram_first(b"y,a=juliet@example.com,n=a=2Cb=3Dc,r=x").unwrap();
        assert_eq!(m.authcid, "a,b=c");
        assert_eq!(m.authzid.as_deref(), Some("juliet@example.com"));
        assert!(parse_scram_first(b"n,,r=x").is_none());
        assert!(parse_scram_first(b"n,,n=,r=x").is_none());
        assert!(parse_scram_first(b"n,,n=bad=2X,r=x").is_none());
        assert!(parse_scram_first(b"garbage").is_none());
        assert!(parse_scram_first(b"n,,n=a=").is_none());
    }

    #[test]
    fn plain_message_parsing() {
        let m = parse_plain(b"\0alice\0secret").unwrap();
        assert_eq!(m.authcid, "alice");
        assert_eq!(m.authzid, None);
        let m = parse_plain(b"alice@localhost\0alice\0secret").unwrap();
        assert_eq!(m.authzid.as_deref(), Some("alice@localhost"));
        assert!(parse_plain(b"alice\0secret").is_none());
        assert!(parse_plain(b"\0\0secret").is_none());
        assert!(parse_plain(b"\0a\0b\0c").is_none());
    }
}
