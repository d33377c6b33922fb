//! Stream negotiation for client connections (RFC 6120 sections 4 to 6):
//! stream header checks, features, STARTTLS (or direct TLS), the SASL
//! exchanges ([`crate::edge::sasl`]) and the post-authentication stream
//! restart. The result is an [`Authenticated`] stream ready for binding.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use minidom::Element;
use rand::RngCore;
use xmpp_parsers::bind::BindFeature;
use xmpp_parsers::ns;
use xmpp_parsers::starttls::{self, StartTls};
use xmpp_parsers::stream_error::DefinedCondition;
use xmpp_parsers::stream_limits::Limits;

use crate::edge::auth;
use crate::edge::sasl::{self, SaslOutcome};
use crate::edge::stream::{Item, StreamError, StreamHeader, StreamLimits, XmlStream};

/// Legacy session establishment (RFC 3921), announced as optional;
/// xmpp-parsers has no type for it.
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";

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
    /// The server's entity capabilities (XEP-0115), offered in the stream
    /// features before and after authentication, as Prosody offers them.
    pub caps: Option<Element>,
    /// Failed-authentication back-off, shared by all connections.
    pub auth_throttle: auth::AuthThrottle,
    /// Credentials shown for accounts that do not exist.
    pub decoys: auth::DecoyCredentials,
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

impl Negotiation {
    async fn run(&mut self) -> Result<jid::BareJid, NegotiationError> {
        'stream: loop {
            self.open_stream().await?;
            let secure = self.stream.is_secure();
            let features = self.pre_auth_features(secure);
            self.send_features(&features).await?;
            loop {
                let el = self.next_element().await?;
                if el.is("starttls", ns::TLS) {
                    match (&self.ctx.tls, secure) {
                        (Some(tls), false) => {
                            let tls = Arc::clone(tls);
                            self.stream.send(&starttls::Proceed.into()).await?;
                            self.stream
                                .upgrade_tls(tls)
                                .await
                                .map_err(|e| NegotiationError::Tls(e.to_string()))?;
                            tracing::debug!(peer = %self.peer, "TLS established");
                            continue 'stream;
                        }
                        _ => {
                            self.stream.send(&starttls::Failure.into()).await?;
                            self.stream.close(None).await;
                            return Err(NegotiationError::Tls(
                                "STARTTLS requested where it is not offered".to_owned(),
                            ));
                        }
                    }
                } else if el.is("auth", ns::SASL) {
                    self.exchanges += 1;
                    let host = self.host.clone().unwrap_or_default();
                    let mut exchange = sasl::Exchange {
                        stream: &mut self.stream,
                        ctx: &self.ctx,
                        peer: self.peer,
                        host: &host,
                        secure,
                    };
                    match exchange.run(el).await? {
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

    async fn fail(
        &mut self,
        condition: DefinedCondition,
        text: impl Into<String>,
    ) -> NegotiationError {
        fail(&mut self.stream, condition, text).await
    }

    async fn next_element(&mut self) -> Result<Element, NegotiationError> {
        next_element(&mut self.stream).await
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

    /// XEP-0478 stream limits: the largest stanza accepted.
    fn limits_feature(&self) -> Element {
        let max = self.ctx.limits.max_stanza_bytes;
        Limits {
            max_bytes: NonZeroU32::new(u32::try_from(max).unwrap_or(u32::MAX)),
            idle_seconds: None,
        }
        .into()
    }

    fn pre_auth_features(&self, secure: bool) -> Vec<Element> {
        let mut features = Vec::new();
        if !secure && self.ctx.tls.is_some() {
            let exception = sasl::plaintext_exception(&self.ctx, self.peer);
            let required = self.ctx.require_encryption && !exception;
            features.push(StartTls { required }.into());
        }
        let mechanisms = sasl::offered(&self.ctx, self.peer, secure);
        features.extend(sasl::mechanisms_feature(&mechanisms));
        features.push(self.limits_feature());
        features.extend(self.ctx.caps.iter().cloned());
        features
    }

    fn post_auth_features(&self) -> Vec<Element> {
        let mut features = vec![
            BindFeature { required: false }.into(),
            Element::builder("session", NS_SESSION)
                .append(Element::builder("optional", NS_SESSION).build())
                .build(),
            self.limits_feature(),
        ];
        features.extend(self.ctx.extra_features.iter().cloned());
        features.extend(self.ctx.caps.iter().cloned());
        features
    }

    /// Sends `<stream:features>`. xmpp-parsers' `StreamFeatures` would
    /// write it unprefixed and reorder the features and the mechanisms, so
    /// only the features inside are typed.
    async fn send_features(&mut self, features: &[Element]) -> Result<(), StreamError> {
        let mut out = b"<stream:features>".to_vec();
        for f in features {
            out.extend_from_slice(&crate::edge::stream::serialize(f));
        }
        out.extend_from_slice(b"</stream:features>");
        self.stream.send_bytes(&out).await
    }
}

/// Closes with a stream error and returns the matching error.
async fn fail(
    stream: &mut XmlStream,
    condition: DefinedCondition,
    text: impl Into<String>,
) -> NegotiationError {
    let text = text.into();
    stream.close(Some((condition.clone(), text.clone()))).await;
    NegotiationError::Stream(StreamError::Stream { condition, text })
}

/// Next top-level element; the end of the stream is an error here.
pub(crate) async fn next_element(stream: &mut XmlStream) -> Result<Element, NegotiationError> {
    match stream.next_item().await? {
        Some(Item::Stanza(el)) => Ok(el),
        Some(Item::Header(_)) => Err(fail(
            stream,
            DefinedCondition::NotWellFormed,
            "unexpected stream header",
        )
        .await),
        Some(Item::End) | None => Err(NegotiationError::Closed),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
