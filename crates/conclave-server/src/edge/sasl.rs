//! SASL during stream negotiation (RFC 6120 section 6): the mechanisms
//! offered (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN) and the policy for PLAIN,
//! then one exchange from `<auth/>` to `<success/>` or `<failure/>`. The
//! nonzas are read and written with xmpp-parsers' types; the mechanisms
//! are the `sasl` crate's, checking credentials through [`auth`].

use std::net::SocketAddr;

use conclave_store::{Credentials, ScramKeys};
use minidom::Element;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Identity};
use sasl::secret::{self, Pbkdf2Sha1, Pbkdf2Sha256};
use sasl::server::mechanisms::{Plain, Scram};
use sasl::server::{
    Mechanism as ServerMechanism, MechanismError, Provider, ProviderError, Response as Step,
    Validator, ValidatorError,
};
use xmpp_parsers::ns;
use xmpp_parsers::sasl::{
    Auth, Challenge, DefinedCondition as Condition, Failure, Mechanism, Response, Success,
};

use crate::edge::auth;
use crate::edge::negotiate::{next_element, NegotiationContext, NegotiationError};
use crate::edge::stream::{StreamError, XmlStream};

/// The mechanisms this server implements, in its order of preference.
const IMPLEMENTED: [Mechanism; 3] = [
    Mechanism::ScramSha256,
    Mechanism::ScramSha1,
    Mechanism::Plain,
];

/// Outcome of one SASL exchange.
pub(crate) enum SaslOutcome {
    Success(jid::BareJid),
    /// Wrong credentials: counts towards the failed attempts of a connection.
    Failed,
    /// Aborted or malformed exchange: counts only towards the exchanges of a
    /// connection.
    Rejected,
}

/// Whether this peer may authenticate without TLS: the configuration
/// allows it, and only for peers on loopback.
pub(crate) fn plaintext_exception(ctx: &NegotiationContext, peer: SocketAddr) -> bool {
    ctx.allow_plaintext_auth && peer.ip().is_loopback()
}

/// The mechanisms offered on a stream, in order of preference: none before
/// TLS when encryption is required (unless the plaintext exception
/// applies), and PLAIN only over TLS or under that exception.
pub(crate) fn offered(ctx: &NegotiationContext, peer: SocketAddr, secure: bool) -> Vec<Mechanism> {
    let plain_ok = secure || plaintext_exception(ctx, peer);
    if ctx.require_encryption && !plain_ok {
        return Vec::new();
    }
    IMPLEMENTED
        .into_iter()
        .filter(|m| plain_ok || *m != Mechanism::Plain)
        .collect()
}

/// The `<mechanisms/>` stream feature, `None` when nothing is offered.
/// xmpp-parsers has this list only inside its `StreamFeatures`, as a sorted
/// set: it is built here to keep the order of preference.
pub(crate) fn mechanisms_feature(mechanisms: &[Mechanism]) -> Option<Element> {
    if mechanisms.is_empty() {
        return None;
    }
    let list = mechanisms
        .iter()
        .map(|m| Element::builder("mechanism", ns::SASL).append(m.to_string()));
    Some(
        Element::builder("mechanisms", ns::SASL)
            .append_all(list.map(|m| m.build()))
            .build(),
    )
}

/// One SASL exchange on a stream being negotiated.
pub(crate) struct Exchange<'a> {
    pub stream: &'a mut XmlStream,
    pub ctx: &'a NegotiationContext,
    pub peer: SocketAddr,
    /// The virtual host the stream was opened for.
    pub host: &'a str,
    /// Whether the stream runs over TLS.
    pub secure: bool,
}

/// Why an `<auth/>` is refused before any credentials are looked at.
#[derive(Debug, PartialEq)]
struct Refusal {
    condition: Condition,
    text: Option<&'static str>,
}

impl Exchange<'_> {
    /// Runs the exchange that `<auth/>` starts, to `<success/>` or
    /// `<failure/>`.
    pub async fn run(&mut self, auth_el: Element) -> Result<SaslOutcome, NegotiationError> {
        let offered = offered(self.ctx, self.peer, self.secure);
        let Auth {
            mechanism,
            data: mut payload,
        } = match read_auth(auth_el, &offered, self.secure) {
            Ok(auth) => auth,
            Err(refusal) => {
                self.failure(refusal.condition, refusal.text).await?;
                return Ok(SaslOutcome::Rejected);
            }
        };
        if payload.is_empty() {
            // No initial response: an empty challenge asks for it.
            self.challenge(Vec::new()).await?;
            match self.response().await? {
                Some(p) => payload = p,
                None => return Ok(SaslOutcome::Rejected),
            }
        }

        // The store is async and the mechanisms are sync: read the account
        // named in the initial response first, then run the mechanism.
        let parsed = if mechanism == Mechanism::Plain {
            parse_plain(&payload)
        } else {
            parse_scram_first(&payload)
        };
        let Some(initial) = parsed else {
            self.failure(Condition::MalformedRequest, None).await?;
            return Ok(SaslOutcome::Rejected);
        };
        let Some(username) = auth::normalize_username(&initial.authcid, self.host) else {
            return self.auth_failed(None).await;
        };
        let Ok(jid) = jid::BareJid::new(&format!("{username}@{}", self.host)) else {
            return self.auth_failed(None).await;
        };
        let account = jid.to_string();
        if let Some(authzid) = &initial.authzid {
            let same = jid::BareJid::new(authzid).is_ok_and(|a| a == jid);
            if !same {
                self.failure(Condition::InvalidAuthzid, None).await?;
                return Ok(SaslOutcome::Rejected);
            }
        }
        let creds = match self.ctx.store.get_credentials(self.host, &username).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("reading credentials failed: {e}");
                self.failure(Condition::TemporaryAuthFailure, None).await?;
                return Ok(SaslOutcome::Rejected);
            }
        };
        // Unknown accounts get decoy keys: the same salt each time they are
        // asked for, shaped like a real account's, and the exchange fails at
        // the proof (SCRAM) or after the same key derivation (PLAIN), like a
        // wrong password. The SCRAM proof itself is compared inside the sasl
        // crate, not in constant time; it is bound to this exchange's server
        // nonce and checked once, so its timing tells nothing that could
        // serve another attempt.
        let creds = creds.unwrap_or_else(|| self.ctx.decoys.for_account(self.host, &username));
        let mut mech: Box<dyn ServerMechanism + Send> = if mechanism == Mechanism::Plain {
            Box::new(Plain::new(PlainCheck(Some(creds))))
        } else {
            let binding = match initial.cb_flag {
                // The sasl crate's server checks the GS2 flag the other way
                // round: this selects the branch that accepts a client
                // without channel binding ('n') with empty binding data.
                b'n' => ChannelBinding::TlsUnique(Vec::new()),
                b'y' => ChannelBinding::None,
                _ => {
                    self.failure(
                        Condition::MalformedRequest,
                        Some("channel binding is not offered"),
                    )
                    .await?;
                    return Ok(SaslOutcome::Rejected);
                }
            };
            if mechanism == Mechanism::ScramSha1 {
                Box::new(Scram::<Sha1, _>::new(StoredSha1(creds.sha1), binding))
            } else {
                Box::new(Scram::<Sha256, _>::new(StoredSha256(creds.sha256), binding))
            }
        };

        loop {
            let (m, result) = run_blocking(mech, payload).await;
            mech = m;
            match result {
                Ok(Step::Proceed(challenge)) => {
                    self.challenge(challenge).await?;
                    match self.response().await? {
                        Some(p) => payload = p,
                        None => return Ok(SaslOutcome::Rejected),
                    }
                }
                Ok(Step::Success(_, data)) => {
                    self.stream.send(&Success { data }.into()).await?;
                    self.ctx.auth_throttle.record_success(&account);
                    tracing::info!(peer = %self.peer, %jid, %mechanism, "authenticated");
                    return Ok(SaslOutcome::Success(jid));
                }
                Err(e) if is_auth_failure(&e) => return self.auth_failed(Some(&account)).await,
                Err(_) => {
                    self.failure(Condition::MalformedRequest, None).await?;
                    return Ok(SaslOutcome::Rejected);
                }
            }
        }
    }

    async fn failure(
        &mut self,
        condition: Condition,
        text: Option<&str>,
    ) -> Result<(), StreamError> {
        self.stream.send(&failure(condition, text)).await
    }

    async fn challenge(&mut self, data: Vec<u8>) -> Result<(), StreamError> {
        self.stream.send(&challenge(data)).await
    }

    /// Failed authentication at `account` (`None`: the name given is not
    /// a valid account name): back-off, then `<failure><not-authorized/>`.
    async fn auth_failed(
        &mut self,
        account: Option<&str>,
    ) -> Result<SaslOutcome, NegotiationError> {
        let ip = self.peer.ip();
        self.ctx.auth_throttle.record_failure(ip, account);
        let delay = self.ctx.auth_throttle.delay(ip, account);
        tracing::info!(peer = %self.peer, "authentication failed");
        tokio::time::sleep(delay).await;
        self.failure(Condition::NotAuthorized, None).await?;
        Ok(SaslOutcome::Failed)
    }

    /// Waits for `<response/>`; `<abort/>` or anything else ends the
    /// exchange (`None`, after the matching `<failure/>`).
    async fn response(&mut self) -> Result<Option<Vec<u8>>, NegotiationError> {
        let el = next_element(self.stream).await?;
        if el.is("response", ns::SASL) {
            match Response::try_from(rfc6120_payload(el)) {
                Ok(Response { data }) if data.is_empty() => {
                    self.failure(Condition::MalformedRequest, None).await?;
                    Ok(None)
                }
                Ok(Response { data }) => Ok(Some(data)),
                Err(_) => {
                    self.failure(Condition::IncorrectEncoding, None).await?;
                    Ok(None)
                }
            }
        } else if el.is("abort", ns::SASL) {
            self.failure(Condition::Aborted, None).await?;
            Ok(None)
        } else {
            self.failure(
                Condition::MalformedRequest,
                Some("expected <response/> or <abort/>"),
            )
            .await?;
            Ok(None)
        }
    }
}

/// Reads `<auth/>`: its mechanism must be one offered on this stream and
/// its payload base64, or the refusal says which is wrong.
fn read_auth(el: Element, offered: &[Mechanism], secure: bool) -> Result<Auth, Refusal> {
    let refuse = |mechanism: Option<Mechanism>| {
        if mechanism.is_some_and(|m| IMPLEMENTED.contains(&m)) && !secure {
            Refusal {
                condition: Condition::EncryptionRequired,
                text: Some("use STARTTLS first"),
            }
        } else {
            Refusal {
                condition: Condition::InvalidMechanism,
                text: None,
            }
        }
    };
    let named = el.attr("mechanism").map(str::to_owned);
    match Auth::try_from(rfc6120_payload(el)) {
        Ok(auth) if offered.contains(&auth.mechanism) => Ok(auth),
        Ok(auth) => Err(refuse(Some(auth.mechanism))),
        // The mechanism is missing or unknown, or the payload is not base64.
        Err(_) => match named.and_then(|m| m.parse::<Mechanism>().ok()) {
            Some(m) if offered.contains(&m) => Err(Refusal {
                condition: Condition::IncorrectEncoding,
                text: None,
            }),
            m => Err(refuse(m)),
        },
    }
}

/// The payload of `<auth/>` or `<response/>` in the form xmpp-parsers
/// decodes (plain base64): RFC 6120 (section 6.4.2) writes an empty
/// response as `=`, and whitespace inside the base64 is ignored.
fn rfc6120_payload(mut el: Element) -> Element {
    let text: String = el
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    el.take_nodes();
    if !text.is_empty() && text != "=" {
        el.append_text(text);
    }
    el
}

/// `<failure/>` with this condition and, if any, an English text.
fn failure(condition: Condition, text: Option<&str>) -> Element {
    Failure {
        defined_condition: condition,
        texts: text
            .map(|t| ("en".to_owned(), t.to_owned()))
            .into_iter()
            .collect(),
    }
    .into()
}

/// `<challenge/>` carrying `data`; the empty challenge that asks for the
/// initial response is an empty element.
fn challenge(data: Vec<u8>) -> Element {
    let empty = data.is_empty();
    let mut el = Element::from(Challenge { data });
    if empty {
        el.take_nodes();
    }
    el
}

/// Runs one mechanism step off the async threads (PLAIN derives a key).
async fn run_blocking(
    mut mech: Box<dyn ServerMechanism + Send>,
    payload: Vec<u8>,
) -> (
    Box<dyn ServerMechanism + Send>,
    Result<Step, MechanismError>,
) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::stream::serialize;

    fn xml(el: &Element) -> String {
        String::from_utf8(serialize(el)).unwrap()
    }

    fn auth_el(xml: &str) -> Element {
        xml.parse().unwrap()
    }

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

    #[test]
    fn auth_payloads_as_rfc6120_writes_them() {
        let all = IMPLEMENTED;
        let auth = |payload: &str| {
            read_auth(
                auth_el(&format!(
                    "<auth xmlns='{}' mechanism='PLAIN'>{payload}</auth>",
                    ns::SASL
                )),
                &all,
                true,
            )
        };
        // `=` and no text at all are both an empty initial response.
        assert_eq!(auth("=").unwrap().data, b"");
        assert_eq!(auth("").unwrap().data, b"");
        // Whitespace inside the base64 is ignored, and so are children.
        assert_eq!(auth(" AGEA\n Yg== ").unwrap().data, b"\0a\0b");
        assert_eq!(auth("<x/>AGEAYg==").unwrap().data, b"\0a\0b");
        assert_eq!(
            auth("not base64!"),
            Err(Refusal {
                condition: Condition::IncorrectEncoding,
                text: None
            })
        );
    }

    #[test]
    fn auth_mechanism_refusals() {
        let plaintext = [Mechanism::ScramSha256, Mechanism::ScramSha1];
        let auth = |mechanism: &str, payload: &str, offered: &[Mechanism], secure: bool| {
            read_auth(
                auth_el(&format!(
                    "<auth xmlns='{}'{mechanism}>{payload}</auth>",
                    ns::SASL
                )),
                offered,
                secure,
            )
            .map(|a| a.mechanism)
            .map_err(|r| r.condition)
        };
        let m = " mechanism='SCRAM-SHA-1'";
        assert_eq!(auth(m, "", &plaintext, false), Ok(Mechanism::ScramSha1));
        // Implemented but not offered here: encryption first.
        let m = " mechanism='PLAIN'";
        assert_eq!(
            auth(m, "AGEAYg==", &plaintext, false),
            Err(Condition::EncryptionRequired)
        );
        assert_eq!(
            auth(m, "not base64!", &plaintext, false),
            Err(Condition::EncryptionRequired)
        );
        assert_eq!(auth(m, "", &[], false), Err(Condition::EncryptionRequired));
        // Not implemented, unknown, missing.
        for m in [
            " mechanism='SCRAM-SHA-1-PLUS'",
            " mechanism='DIGEST-MD5'",
            "",
        ] {
            assert_eq!(
                auth(m, "AGEAYg==", &IMPLEMENTED, true),
                Err(Condition::InvalidMechanism),
                "{m}"
            );
            assert_eq!(
                auth(m, "not base64!", &plaintext, false),
                Err(Condition::InvalidMechanism),
                "{m}"
            );
        }
    }

    #[test]
    fn nonzas_on_the_wire() {
        let sasl = "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'";
        assert_eq!(xml(&challenge(Vec::new())), format!("<challenge {sasl}/>"));
        assert_eq!(
            xml(&challenge(b"r=abc".to_vec())),
            format!("<challenge {sasl}>cj1hYmM=</challenge>")
        );
        assert_eq!(
            xml(&Success { data: Vec::new() }.into()),
            format!("<success {sasl}></success>")
        );
        assert_eq!(
            xml(&Success {
                data: b"v=abc".to_vec()
            }
            .into()),
            format!("<success {sasl}>dj1hYmM=</success>")
        );
        assert_eq!(
            xml(&failure(Condition::NotAuthorized, None)),
            format!("<failure {sasl}><not-authorized/></failure>")
        );
        assert_eq!(
            xml(&failure(
                Condition::MalformedRequest,
                Some("expected <response/> or <abort/>")
            )),
            format!(
                "<failure {sasl}><malformed-request/><text xml:lang='en'>\
                 expected &lt;response/&gt; or &lt;abort/&gt;</text></failure>"
            )
        );
        assert_eq!(
            xml(&mechanisms_feature(&IMPLEMENTED).unwrap()),
            format!(
                "<mechanisms {sasl}><mechanism>SCRAM-SHA-256</mechanism>\
                 <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
            )
        );
        assert!(mechanisms_feature(&[]).is_none());
    }
}
