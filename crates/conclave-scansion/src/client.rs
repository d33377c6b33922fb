//! An asynchronous XMPP client (RFC 6120) on tokio, for tests and load
//! generation: TCP, optional STARTTLS, SASL (SCRAM-SHA-256, SCRAM-SHA-1,
//! PLAIN), resource binding and the legacy session. It sends no initial
//! presence.
//!
//! ```no_run
//! # async fn demo() -> Result<(), conclave_scansion::client::ClientError> {
//! use conclave_scansion::client::{Client, ClientOptions};
//! let jid = "user@localhost/phone".parse().expect("valid JID");
//! let mut client = Client::connect(ClientOptions::new("127.0.0.1", 5222, jid, "password")).await?;
//! println!("bound as {}", client.bound_jid());
//! client.send_raw("<presence/>").await?;
//! let _stanza = client.recv().await?;
//! client.close().await?;
//! # Ok(()) }
//! ```

use std::io;
use std::sync::Arc;
use std::time::Duration;

use jid::{FullJid, Jid};
use minidom::Element;
use sasl::client::mechanisms::{Plain, Scram};
use sasl::client::Mechanism;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Credentials};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::sasl as xsasl;
use xmpp_parsers::stream_features::StreamFeatures;

use crate::tls::insecure_client_config;
use crate::xml::{escape, StreamEvent, StreamParser, XmlError, NS_STREAM};

const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_CLIENT: &str = "jabber:client";

/// When to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Authenticate in the clear when the server offers a usable SASL
    /// mechanism before TLS and does not require TLS; otherwise STARTTLS.
    #[default]
    Auto,
    /// Always STARTTLS; fail if the server does not offer it.
    Require,
    /// Never STARTTLS; fail if the server requires it.
    Never,
}

/// A SASL mechanism the client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-1 (RFC 5802).
    ScramSha1,
    /// PLAIN (RFC 4616).
    Plain,
}

impl SaslMechanism {
    /// The mechanism's registered name.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha1 => "SCRAM-SHA-1",
            SaslMechanism::Plain => "PLAIN",
        }
    }

    /// The default preference: SCRAM-SHA-256, SCRAM-SHA-1, PLAIN.
    pub fn default_preference() -> Vec<SaslMechanism> {
        vec![
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha1,
            SaslMechanism::Plain,
        ]
    }
}

/// How to connect and log in.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Host name or address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The account; a resource, if present, is requested at binding.
    pub jid: Jid,
    /// The account's password.
    pub password: String,
    /// When to use STARTTLS.
    pub tls: TlsMode,
    /// SASL mechanisms in order of preference.
    pub mechanisms: Vec<SaslMechanism>,
    /// Limit for the whole connection and login.
    pub timeout: Duration,
}

impl ClientOptions {
    /// Options with TLS `Auto`, the default mechanism preference and a
    /// 10-second timeout.
    pub fn new(host: impl Into<String>, port: u16, jid: Jid, password: impl Into<String>) -> Self {
        ClientOptions {
            host: host.into(),
            port,
            jid,
            password: password.into(),
            tls: TlsMode::Auto,
            mechanisms: SaslMechanism::default_preference(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why connecting, sending or receiving failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server sent something that is not XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The TLS configuration or handshake failed.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The options require TLS but the server offers no STARTTLS.
    #[error("TLS is required by the client options but the server does not offer STARTTLS")]
    TlsUnavailable,
    /// The server requires TLS but the options forbid it.
    #[error("the server requires STARTTLS but the client options forbid TLS")]
    TlsRequired,
    /// No SASL mechanism in common.
    #[error(
        "no usable SASL mechanism: the server offers [{offered}], the client accepts [{accepted}]"
    )]
    NoMechanism {
        /// What the server offered.
        offered: String,
        /// What the client would use.
        accepted: String,
    },
    /// The server rejected the credentials.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    /// The SASL exchange broke down on the client side.
    #[error("SASL error: {0}")]
    Sasl(String),
    /// Resource binding failed.
    #[error("resource binding failed: {0}")]
    Bind(String),
    /// The server sent a stream error.
    #[error("stream error from the server: {0}")]
    StreamError(String),
    /// The server did something the protocol does not allow at that point.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A time limit was reached.
    #[error("timed out {0}")]
    Timeout(String),
    /// The stream is closed.
    #[error("the stream is closed")]
    Closed,
}

trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}
type BoxStream = Box<dyn AsyncStream>;

/// A logged-in XMPP client session.
pub struct Client {
    reader: ClientReader,
    writer: ClientWriter,
}

/// The receiving half of a [`Client`].
pub struct ClientReader {
    io: ReadHalf<BoxStream>,
    parser: StreamParser,
    buf: Vec<u8>,
    closed: bool,
}

/// The sending half of a [`Client`].
pub struct ClientWriter {
    io: WriteHalf<BoxStream>,
    jid: FullJid,
    closed: bool,
}

impl Client {
    /// Connects, negotiates the stream, authenticates and binds a resource.
    pub async fn connect(opts: ClientOptions) -> Result<Client, ClientError> {
        let limit = opts.timeout;
        tokio::time::timeout(limit, negotiate(opts))
            .await
            .map_err(|_| ClientError::Timeout(format!("logging in (after {limit:?})")))?
    }

    /// The full JID the server bound.
    pub fn bound_jid(&self) -> &FullJid {
        &self.writer.jid
    }

    /// Sends one element.
    pub async fn send(&mut self, element: &Element) -> Result<(), ClientError> {
        self.writer.send(element).await
    }

    /// Sends already-serialised XML as it is.
    pub async fn send_raw(&mut self, xml: &str) -> Result<(), ClientError> {
        self.writer.send_raw(xml).await
    }

    /// The next stanza (or nonza); `Ok(None)` once the stream has ended.
    /// Cancel-safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Result<Option<Element>, ClientError> {
        self.reader.recv().await
    }

    /// Like [`Client::recv`], failing with [`ClientError::Timeout`] after `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Option<Element>, ClientError> {
        self.reader.recv_timeout(limit).await
    }

    /// Sends `</stream:stream>`, waits briefly for the server's, and shuts
    /// the connection down.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.writer.send_close().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        // Drain until the server closes its side, an error, or the deadline.
        while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, self.reader.recv()).await {}
        self.writer.shutdown().await
    }

    /// Splits into halves that two tasks can use at once.
    pub fn into_split(self) -> (ClientReader, ClientWriter) {
        (self.reader, self.writer)
    }
}

impl ClientReader {
    /// The next stanza (or nonza); `Ok(None)` once the stream has ended.
    /// A `<stream:error/>` is returned as [`ClientError::StreamError`].
    /// Cancel-safe: dropping the future loses no data.
    pub async fn recv(&mut self) -> Result<Option<Element>, ClientError> {
        loop {
            if self.closed {
                return Ok(None);
            }
            match self.parser.next_event()? {
                Some(StreamEvent::Element(el)) => {
                    if el.is("error", NS_STREAM) {
                        self.closed = true;
                        return Err(ClientError::StreamError(describe_stream_error(&el)));
                    }
                    return Ok(Some(el));
                }
                Some(StreamEvent::End) => {
                    self.closed = true;
                    return Ok(None);
                }
                Some(StreamEvent::Header { .. }) => {
                    return Err(ClientError::Protocol(
                        "unexpected stream header after negotiation".into(),
                    ))
                }
                None => {}
            }
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                self.parser.feed_eof();
            } else if let Some(data) = self.buf.get(..n) {
                self.parser.feed(data);
            }
        }
    }

    /// Like [`ClientReader::recv`], failing with [`ClientError::Timeout`]
    /// after `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Result<Option<Element>, ClientError> {
        tokio::time::timeout(limit, self.recv())
            .await
            .map_err(|_| ClientError::Timeout(format!("waiting for a stanza ({limit:?})")))?
    }
}

impl ClientWriter {
    /// The full JID the server bound.
    pub fn bound_jid(&self) -> &FullJid {
        &self.jid
    }

    /// Sends one element.
    pub async fn send(&mut self, element: &Element) -> Result<(), ClientError> {
        self.send_raw(&String::from(element)).await
    }

    /// Sends already-serialised XML as it is.
    pub async fn send_raw(&mut self, xml: &str) -> Result<(), ClientError> {
        if self.closed {
            return Err(ClientError::Closed);
        }
        self.io.write_all(xml.as_bytes()).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Sends `</stream:stream>`; later sends fail with [`ClientError::Closed`].
    pub async fn send_close(&mut self) -> Result<(), ClientError> {
        if !self.closed {
            self.io.write_all(b"</stream:stream>").await?;
            self.io.flush().await?;
            self.closed = true;
        }
        Ok(())
    }

    /// Shuts the write side of the connection down (after `send_close`).
    pub async fn shutdown(mut self) -> Result<(), ClientError> {
        self.send_close().await?;
        match self.io.shutdown().await {
            Ok(()) => Ok(()),
            // The server may have closed first.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The stream during negotiation, before it is split.
struct Negotiation {
    io: BoxStream,
    parser: StreamParser,
    domain: String,
}

impl Negotiation {
    async fn send(&mut self, data: &str) -> Result<(), ClientError> {
        self.io.write_all(data.as_bytes()).await?;
        self.io.flush().await?;
        Ok(())
    }

    async fn next(&mut self) -> Result<StreamEvent, ClientError> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(ev) = self.parser.next_event()? {
                return Ok(ev);
            }
            let n = self.io.read(&mut buf).await?;
            if n == 0 {
                self.parser.feed_eof();
            } else if let Some(data) = buf.get(..n) {
                self.parser.feed(data);
            }
        }
    }

    async fn next_element(&mut self, waiting_for: &str) -> Result<Element, ClientError> {
        match self.next().await? {
            StreamEvent::Element(el) if el.is("error", NS_STREAM) => {
                Err(ClientError::StreamError(describe_stream_error(&el)))
            }
            StreamEvent::Element(el) => Ok(el),
            StreamEvent::End => Err(ClientError::Protocol(format!(
                "the server closed the stream while the client waited for {waiting_for}"
            ))),
            StreamEvent::Header { .. } => Err(ClientError::Protocol(format!(
                "a second stream header arrived while the client waited for {waiting_for}"
            ))),
        }
    }

    /// Opens a (new) stream and returns the server's features.
    async fn open_stream(&mut self) -> Result<StreamFeatures, ClientError> {
        self.parser = StreamParser::new();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' to='{}' version='1.0'>",
            escape(&self.domain)
        );
        self.send(&header).await?;
        match self.next().await? {
            StreamEvent::Header { .. } => {}
            StreamEvent::End => {
                return Err(ClientError::Protocol(
                    "the server closed the connection instead of opening a stream".into(),
                ))
            }
            StreamEvent::Element(el) => {
                return Err(ClientError::Protocol(format!(
                    "expected a stream header, got <{}>",
                    el.name()
                )))
            }
        }
        let features = self.next_element("<stream:features>").await?;
        if !features.is("features", NS_STREAM) {
            return Err(ClientError::Protocol(format!(
                "expected <stream:features>, got <{}>",
                features.name()
            )));
        }
        StreamFeatures::try_from(features)
            .map_err(|e| ClientError::Protocol(format!("invalid <stream:features>: {e}")))
    }

    async fn starttls(self) -> Result<Negotiation, ClientError> {
        let mut this = self;
        this.send(&format!("<starttls xmlns='{NS_TLS}'/>")).await?;
        let answer = this.next_element("<proceed/>").await?;
        if !answer.is("proceed", NS_TLS) {
            return Err(ClientError::Tls(format!(
                "the server answered <{}> to <starttls/>",
                answer.name()
            )));
        }
        if this.parser.has_pending() {
            return Err(ClientError::Protocol(
                "the server sent data after <proceed/> before the TLS handshake".into(),
            ));
        }
        let config = insecure_client_config().map_err(|e| ClientError::Tls(e.to_string()))?;
        let connector = TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from(this.domain.clone())
            .map_err(|e| ClientError::Tls(format!("server name {:?}: {e}", this.domain)))?;
        let tls = connector
            .connect(name, this.io)
            .await
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Negotiation {
            io: Box::new(tls),
            parser: StreamParser::new(),
            domain: this.domain,
        })
    }

    async fn authenticate(
        &mut self,
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        let credentials = Credentials::default()
            .with_username(username)
            .with_password(password)
            .with_channel_binding(ChannelBinding::None);
        let sasl_err = |e: sasl::client::MechanismError| ClientError::Sasl(e.to_string());
        let (mut mech, wire): (Box<dyn Mechanism + Send>, xsasl::Mechanism) = match mechanism {
            SaslMechanism::ScramSha256 => (
                Box::new(Scram::<Sha256>::from_credentials(credentials).map_err(sasl_err)?),
                xsasl::Mechanism::ScramSha256,
            ),
            SaslMechanism::ScramSha1 => (
                Box::new(Scram::<Sha1>::from_credentials(credentials).map_err(sasl_err)?),
                xsasl::Mechanism::ScramSha1,
            ),
            SaslMechanism::Plain => (
                Box::new(Plain::from_credentials(credentials).map_err(sasl_err)?),
                xsasl::Mechanism::Plain,
            ),
        };
        let auth = xsasl::Auth {
            mechanism: wire,
            data: mech.initial(),
        };
        self.send(&String::from(&Element::from(auth))).await?;
        loop {
            let el = self.next_element("a SASL answer").await?;
            if el.is("challenge", NS_SASL) {
                let challenge = xsasl::Challenge::try_from(el)
                    .map_err(|e| ClientError::Sasl(format!("invalid <challenge/>: {e}")))?;
                let data = mech.response(&challenge.data).map_err(sasl_err)?;
                let response = xsasl::Response { data };
                self.send(&String::from(&Element::from(response))).await?;
            } else if el.is("success", NS_SASL) {
                let success = xsasl::Success::try_from(el)
                    .map_err(|e| ClientError::Sasl(format!("invalid <success/>: {e}")))?;
                return mech.success(&success.data).map_err(sasl_err);
            } else if el.is("failure", NS_SASL) {
                let condition = el
                    .children()
                    .find(|c| c.name() != "text")
                    .map(|c| c.name().to_owned())
                    .unwrap_or_else(|| "no condition".into());
                let text = el
                    .get_child("text", NS_SASL)
                    .map(|t| format!(" ({})", t.text()))
                    .unwrap_or_default();
                return Err(ClientError::AuthFailed(format!(
                    "{} as {username}: {condition}{text}",
                    mechanism.name()
                )));
            } else {
                return Err(ClientError::Protocol(format!(
                    "unexpected <{}> during SASL",
                    el.name()
                )));
            }
        }
    }

    async fn bind(&mut self, resource: Option<String>) -> Result<FullJid, ClientError> {
        let request = Iq::from_set("bind-1", BindQuery::new(resource));
        self.send(&String::from(&Element::from(request))).await?;
        loop {
            let el = self.next_element("the bind result").await?;
            if !el.is("iq", NS_CLIENT) || el.attr("id") != Some("bind-1") {
                continue;
            }
            let iq =
                Iq::try_from(el).map_err(|e| ClientError::Bind(format!("invalid <iq/>: {e}")))?;
            return match iq {
                Iq::Result {
                    payload: Some(payload),
                    ..
                } => BindResponse::try_from(payload)
                    .map(FullJid::from)
                    .map_err(|e| ClientError::Bind(format!("invalid <bind/> result: {e}"))),
                Iq::Result { payload: None, .. } => {
                    Err(ClientError::Bind("the result carries no <bind/>".into()))
                }
                Iq::Error { error, .. } => Err(ClientError::Bind(format!(
                    "{:?} ({:?})",
                    error.defined_condition, error.type_
                ))),
                _ => Err(ClientError::Bind("unexpected iq type in answer".into())),
            };
        }
    }

    async fn session(&mut self) -> Result<(), ClientError> {
        let request = Element::builder("iq", NS_CLIENT)
            .attr(rxml::xml_ncname!("type").into(), "set")
            .attr(rxml::xml_ncname!("id").into(), "session-1")
            .append(Element::bare("session", NS_SESSION))
            .build();
        self.send(&String::from(&request)).await?;
        loop {
            let el = self.next_element("the session result").await?;
            if el.is("iq", NS_CLIENT) && el.attr("id") == Some("session-1") {
                return match el.attr("type") {
                    Some("result") => Ok(()),
                    other => Err(ClientError::Protocol(format!(
                        "session establishment answered with type {other:?}"
                    ))),
                };
            }
        }
    }
}

fn session_required(features: &StreamFeatures) -> bool {
    features
        .others
        .iter()
        .any(|f| f.is("session", NS_SESSION) && !f.has_child("optional", NS_SESSION))
}

fn choose_mechanism(
    features: &StreamFeatures,
    preference: &[SaslMechanism],
) -> Option<SaslMechanism> {
    preference
        .iter()
        .copied()
        .find(|m| features.sasl_mechanisms.contains(m.name()))
}

fn no_mechanism(features: &StreamFeatures, preference: &[SaslMechanism]) -> ClientError {
    ClientError::NoMechanism {
        offered: features
            .sasl_mechanisms
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        accepted: preference
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn describe_stream_error(el: &Element) -> String {
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| "undefined".into());
    match el.children().find(|c| c.name() == "text") {
        Some(t) => format!("{condition} ({})", t.text()),
        None => condition,
    }
}

async fn negotiate(opts: ClientOptions) -> Result<Client, ClientError> {
    let addr = format!("{}:{}", opts.host, opts.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|source| ClientError::Connect {
            addr: addr.clone(),
            source,
        })?;
    // Stanzas are small and latency matters more than throughput here.
    tcp.set_nodelay(true)?;
    let username = opts
        .jid
        .node()
        .map(|n| n.as_str().to_owned())
        .ok_or_else(|| ClientError::Sasl(format!("{} has no local part", opts.jid)))?;
    let mut neg = Negotiation {
        io: Box::new(tcp),
        parser: StreamParser::new(),
        domain: opts.jid.domain().as_str().to_owned(),
    };
    let mut features = neg.open_stream().await?;
    let starttls = features.starttls.as_ref().map(|s| s.required);
    let clear_mechanism = choose_mechanism(&features, &opts.mechanisms);
    let use_tls = match (opts.tls, starttls) {
        (TlsMode::Never, Some(true)) => return Err(ClientError::TlsRequired),
        (TlsMode::Never, _) => false,
        (TlsMode::Require, None) => return Err(ClientError::TlsUnavailable),
        (TlsMode::Require, Some(_)) => true,
        (TlsMode::Auto, Some(true)) => true,
        (TlsMode::Auto, Some(false)) => clear_mechanism.is_none(),
        (TlsMode::Auto, None) => false,
    };
    if use_tls {
        neg = neg.starttls().await?;
        features = neg.open_stream().await?;
    }
    let mechanism = choose_mechanism(&features, &opts.mechanisms)
        .ok_or_else(|| no_mechanism(&features, &opts.mechanisms))?;
    neg.authenticate(mechanism, &username, &opts.password)
        .await?;
    let features = neg.open_stream().await?;
    if features.bind.is_none() {
        return Err(ClientError::Bind(
            "the server offers no resource binding".into(),
        ));
    }
    let resource = opts.jid.resource().map(|r| r.as_str().to_owned());
    let jid = neg.bind(resource).await?;
    if session_required(&features) {
        neg.session().await?;
    }
    let (read, write) = tokio::io::split(neg.io);
    // Data already buffered by the parser stays with it.
    let reader = ClientReader {
        io: read,
        parser: neg.parser,
        buf: vec![0u8; 16 * 1024],
        closed: false,
    };
    let writer = ClientWriter {
        io: write,
        jid,
        closed: false,
    };
    Ok(Client { reader, writer })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(xml: &str) -> StreamFeatures {
        let el: Element = xml.parse().unwrap();
        StreamFeatures::try_from(el).unwrap()
    }

    #[test]
    fn mechanism_preference_is_respected() {
        let f = features(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
             <mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism>\
             </mechanisms></stream:features>",
        );
        assert_eq!(
            choose_mechanism(&f, &SaslMechanism::default_preference()),
            Some(SaslMechanism::ScramSha1)
        );
        assert_eq!(
            choose_mechanism(&f, &[SaslMechanism::Plain]),
            Some(SaslMechanism::Plain)
        );
        assert_eq!(choose_mechanism(&f, &[SaslMechanism::ScramSha256]), None);
    }

    #[test]
    fn session_only_when_not_optional() {
        let required = features(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>",
        );
        let optional = features(
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
             <session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>",
        );
        assert!(session_required(&required));
        assert!(!session_required(&optional));
    }
}
