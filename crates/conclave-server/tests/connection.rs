//! Integration tests of the connection layer over real loopback sockets:
//! STARTTLS and direct TLS, SASL (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN), the
//! failed-authentication back-off, stream header checks, stream limits and
//! the per-IP connection limit. The client is driven by hand: raw XML over
//! the socket and the `sasl` crate's client mechanisms.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use conclave_server::edge::auth::{self, AuthThrottle};
use conclave_server::edge::listener::{self, ListenerSettings};
use conclave_server::edge::negotiate::{negotiate, Authenticated, NegotiationContext};
use conclave_server::edge::stream::StreamLimits;
use conclave_server::edge::tls::{self, HostTlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sasl::client::mechanisms::Scram;
use sasl::client::Mechanism;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::ChannelBinding;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";

struct Options {
    require_encryption: bool,
    allow_plaintext_auth: bool,
    direct_tls: bool,
    max_stanza_bytes: usize,
    max_connections_per_ip: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            require_encryption: true,
            allow_plaintext_auth: false,
            direct_tls: false,
            max_stanza_bytes: 262_144,
            max_connections_per_ip: 10,
        }
    }
}

/// A listener on a free loopback port, with accounts alice/secret and
/// bob/hunter2 on `localhost`.
struct Server {
    addr: SocketAddr,
    ctx: Arc<NegotiationContext>,
    sessions: mpsc::UnboundedReceiver<Authenticated>,
    cert: CertificateDer<'static>,
    dir: PathBuf,
}

impl Server {
    async fn start(tag: &str, opts: Options) -> Server {
        let dir = support::temp_dir(tag);
        let store = conclave_store::open(dir.join("db.sqlite").to_str().unwrap())
            .await
            .unwrap();
        store
            .create_account("localhost", "alice", &auth::derive_credentials("secret"))
            .await
            .unwrap();
        store
            .create_account("localhost", "bob", &auth::derive_credentials("hunter2"))
            .await
            .unwrap();
        let hosts = [HostTlsSettings {
            host: "localhost".into(),
            cert: None,
            key: None,
        }];
        let tls = tls::server_config(&hosts, &dir).unwrap();
        let cert_pem = std::fs::read(dir.join("certs/localhost.crt")).unwrap();
        let cert = rustls_pemfile::certs(&mut &cert_pem[..])
            .next()
            .unwrap()
            .unwrap();
        let ctx = Arc::new(NegotiationContext {
            hosts: vec!["localhost".into()],
            tls: Some(tls),
            require_encryption: opts.require_encryption,
            allow_plaintext_auth: opts.allow_plaintext_auth,
            limits: StreamLimits {
                max_stanza_bytes: opts.max_stanza_bytes,
                max_depth: 16,
                max_attributes: 100,
                max_bytes_per_second: 0,
            },
            store,
            extra_features: vec![
                minidom::Element::builder("ver", "urn:xmpp:features:rosterver").build(),
            ],
            caps: None,
            auth_throttle: AuthThrottle::default(),
            decoys: auth::DecoyCredentials::load_or_create(&dir).unwrap(),
        });
        let (tx, sessions) = mpsc::unbounded_channel();
        let settings = ListenerSettings {
            addr: "127.0.0.1:0".parse().unwrap(),
            direct_tls: opts.direct_tls,
            max_connections_per_ip: opts.max_connections_per_ip,
        };
        let (addr, accept) = listener::bind(
            &settings,
            Arc::clone(&ctx),
            Arc::new(move |a: Authenticated| {
                let _ = tx.send(a);
            }),
        )
        .await
        .unwrap();
        tokio::spawn(accept);
        Server {
            addr,
            ctx,
            sessions,
            cert,
            dir,
        }
    }

    async fn connect(&self) -> Client {
        Client::new(
            Box::new(TcpStream::connect(self.addr).await.unwrap()),
            self.cert.clone(),
        )
    }

    async fn connect_direct_tls(&self) -> Client {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        Client::new(
            Box::new(tls_connect(tcp, &self.cert).await),
            self.cert.clone(),
        )
    }

    async fn next_session(&mut self) -> Authenticated {
        tokio::time::timeout(Duration::from_secs(10), self.sessions.recv())
            .await
            .expect("no session handed over")
            .expect("listener gone")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Accepts exactly the server's self-signed certificate (pinning), with
/// real signature checks.
#[derive(Debug)]
struct Pinned(CertificateDer<'static>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected certificate".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn tls_connect<IO>(
    io: IO,
    cert: &CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(Pinned(cert.clone())))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), io)
        .await
        .expect("TLS handshake")
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A hand-driven client: raw XML out, text matching in.
struct Client {
    io: Box<dyn Io>,
    buf: String,
    cert: CertificateDer<'static>,
}

impl Client {
    fn new(io: Box<dyn Io>, cert: CertificateDer<'static>) -> Client {
        Client {
            io,
            buf: String::new(),
            cert,
        }
    }

    async fn send(&mut self, xml: &str) {
        self.io.write_all(xml.as_bytes()).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// Reads until `pat` appears; returns everything up to and including it.
    async fn read_until(&mut self, pat: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(i) = self.buf.find(pat) {
                let rest = self.buf.split_off(i + pat.len());
                return std::mem::replace(&mut self.buf, rest);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline.into(), self.io.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {pat:?}; got {:?}", self.buf))
                .unwrap_or(0);
            assert!(
                n > 0,
                "connection closed waiting for {pat:?}; got {:?}",
                self.buf
            );
            self.buf.push_str(std::str::from_utf8(&chunk[..n]).unwrap());
        }
    }

    /// Reads until the server closes the connection.
    async fn read_to_end(&mut self) -> String {
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.io.read_to_end(&mut rest))
            .await
            .expect("server did not close the connection");
        let mut all = std::mem::take(&mut self.buf);
        all.push_str(&String::from_utf8_lossy(&rest));
        all
    }

    /// Opens a stream to `to`; returns the stream features.
    async fn open(&mut self, to: &str) -> String {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xml:lang='en' \
             xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        ))
        .await;
        let header = self.read_until(">").await;
        let header = if header.starts_with("<?xml") {
            self.read_until(">").await
        } else {
            header
        };
        if !header.contains("<stream:stream") {
            let rest = self.read_to_end().await;
            panic!("no stream header: {header}{rest}");
        }
        assert!(header.contains(&format!("from='{to}'")), "{header}");
        assert!(header.contains(" id='"), "{header}");
        assert!(header.contains("version='1.0'"), "{header}");
        self.read_until("</stream:features>").await
    }

    /// STARTTLS on this connection; returns the new stream's features.
    async fn starttls(self) -> (Client, String) {
        let mut c = self;
        c.send(&format!("<starttls xmlns='{TLS}'/>")).await;
        let proceed = c.read_until("/>").await;
        assert!(proceed.contains("<proceed"), "{proceed}");
        let tls = tls_connect(c.io, &c.cert).await;
        let mut c = Client::new(Box::new(tls), c.cert);
        let features = c.open("localhost").await;
        (c, features)
    }

    /// SCRAM exchange; returns the server's final answer.
    async fn scram<M: Mechanism>(&mut self, mut mech: M) -> String {
        let initial = BASE64.encode(mech.initial());
        self.send(&format!(
            "<auth xmlns='{SASL}' mechanism='{}'>{initial}</auth>",
            mech.name()
        ))
        .await;
        let reply = self.read_sasl_reply().await;
        let Some(challenge) = between(
            &reply,
            "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
            "</challenge>",
        ) else {
            return reply;
        };
        let challenge = BASE64.decode(challenge).unwrap();
        let response = mech.response(&challenge).unwrap();
        self.send(&format!(
            "<response xmlns='{SASL}'>{}</response>",
            BASE64.encode(response)
        ))
        .await;
        let reply = self.read_sasl_reply().await;
        if let Some(data) = between(
            &reply,
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>",
            "</success>",
        ) {
            // Verifies the server signature.
            mech.success(&BASE64.decode(data).unwrap())
                .expect("server signature");
        }
        reply
    }

    async fn plain(&mut self, user: &str, password: &str) -> String {
        let payload = BASE64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='{SASL}' mechanism='PLAIN'>{payload}</auth>"
        ))
        .await;
        self.read_sasl_reply().await
    }

    /// Reads one `<challenge>`, `<success>` or `<failure>` element.
    async fn read_sasl_reply(&mut self) -> String {
        let first = self.read_until(">").await;
        if first.ends_with("/>") {
            return first;
        }
        let end = if first.contains("<challenge") {
            "</challenge>"
        } else if first.contains("<success") {
            "</success>"
        } else {
            "</failure>"
        };
        if first.ends_with(end) {
            return first;
        }
        let rest = self.read_until(end).await;
        first + &rest
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn mechanisms(features: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = features;
    while let Some(i) = rest.find("<mechanism>") {
        let after = &rest[i + "<mechanism>".len()..];
        let j = after.find("</mechanism>").unwrap();
        out.push(after[..j].to_owned());
        rest = &after[j..];
    }
    out
}

fn scram256(user: &str, password: &str) -> Scram<Sha256> {
    Scram::<Sha256>::new(user, password.to_owned(), ChannelBinding::None).unwrap()
}

#[tokio::test]
async fn starttls_then_scram_sha256_then_stanzas() {
    let mut server = Server::start("s256", Options::default()).await;
    let mut c = server.connect().await;
    let features = c.open("localhost").await;
    assert!(
        features
            .contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
        "{features}"
    );
    assert!(
        mechanisms(&features).is_empty(),
        "SASL offered before TLS: {features}"
    );
    assert!(
        features.contains("<max-bytes>262144</max-bytes>"),
        "{features}"
    );

    let (mut c, features) = c.starttls().await;
    assert!(!features.contains("starttls"), "{features}");
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    );
    assert!(features.contains("urn:xmpp:stream-limits:0"), "{features}");

    let reply = c.scram(scram256("alice", "secret")).await;
    assert!(reply.contains("<success"), "{reply}");
    let features = c.open("localhost").await;
    assert!(
        features.contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{features}"
    );
    assert!(
        features
            .contains("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"),
        "{features}"
    );
    assert!(
        features.contains("urn:xmpp:features:rosterver"),
        "{features}"
    );
    assert!(
        features.contains("<max-bytes>262144</max-bytes>"),
        "{features}"
    );
    assert!(mechanisms(&features).is_empty(), "{features}");

    let mut session = server.next_session().await;
    assert_eq!(session.jid.to_string(), "alice@localhost");
    assert!(session.stream.is_secure());

    // Client to server: whitespace keepalives are skipped.
    c.send("  \n<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let iq = session.stream.next_stanza().await.unwrap().unwrap();
    assert!(iq.is("iq", "jabber:client"));
    assert_eq!(iq.attr("id"), Some("p1"));
    assert!(iq.has_child("ping", "urn:xmpp:ping"));

    // Server to client.
    let reply = minidom::Element::builder("iq", "jabber:client")
        .attr(minidom::rxml::xml_ncname!("type").into(), "result")
        .attr(minidom::rxml::xml_ncname!("id").into(), "p1")
        .build();
    session.stream.send(&reply).await.unwrap();
    let got = c.read_until("/>").await;
    assert!(got.contains("<iq") && got.contains("id='p1'"), "{got}");

    // Orderly close from the client.
    c.send("</stream:stream>").await;
    assert!(session.stream.next_stanza().await.unwrap().is_none());
    session.stream.close(None).await;
    assert!(c.read_to_end().await.contains("</stream:stream>"));
}

#[tokio::test]
async fn scram_sha1_and_nodeprep_of_the_username() {
    let mut server = Server::start("s1", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    let mech = Scram::<Sha1>::new("Bob", "hunter2".to_owned(), ChannelBinding::None).unwrap();
    let reply = c.scram(mech).await;
    assert!(reply.contains("<success"), "{reply}");
    c.open("localhost").await;
    assert_eq!(server.next_session().await.jid.to_string(), "bob@localhost");
}

#[tokio::test]
async fn direct_tls_listener() {
    let opts = Options {
        direct_tls: true,
        ..Options::default()
    };
    let mut server = Server::start("direct", opts).await;
    let mut c = server.connect_direct_tls().await;
    let features = c.open("localhost").await;
    assert!(!features.contains("starttls"), "{features}");
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    );
    let reply = c.plain("alice", "secret").await;
    assert!(reply.contains("<success"), "{reply}");
    c.open("localhost").await;
    assert!(server.next_session().await.stream.is_secure());
}

#[tokio::test]
async fn plain_refused_on_plaintext_from_a_remote_peer() {
    let server = Server::start(
        "plainremote",
        Options {
            require_encryption: false,
            allow_plaintext_auth: true,
            ..Options::default()
        },
    )
    .await;
    // negotiate() itself, told that the peer is not on loopback.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = Arc::clone(&server.ctx);
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let remote: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        negotiate(socket, remote, false, ctx).await
    });
    let mut c = Client::new(
        Box::new(TcpStream::connect(addr).await.unwrap()),
        server.cert.clone(),
    );
    let features = c.open("localhost").await;
    assert_eq!(mechanisms(&features), ["SCRAM-SHA-256", "SCRAM-SHA-1"]);
    assert!(!features.contains("<required/>"), "{features}");
    let reply = c.plain("alice", "secret").await;
    assert!(reply.contains("<encryption-required/>"), "{reply}");
    // SCRAM is still allowed on this stream (encryption not required).
    let reply = c.scram(scram256("alice", "secret")).await;
    assert!(reply.contains("<success"), "{reply}");
    c.open("localhost").await;
    let auth = task.await.unwrap().unwrap();
    assert_eq!(auth.jid.to_string(), "alice@localhost");
    assert!(!auth.stream.is_secure());
}

#[tokio::test]
async fn plain_allowed_on_loopback_when_configured() {
    let mut server = Server::start(
        "plainlocal",
        Options {
            allow_plaintext_auth: true,
            ..Options::default()
        },
    )
    .await;
    let mut c = server.connect().await;
    let features = c.open("localhost").await;
    // Encryption is required, but the loopback exception applies.
    assert!(features.contains("starttls"), "{features}");
    assert!(!features.contains("<required/>"), "{features}");
    assert_eq!(
        mechanisms(&features),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    );
    let reply = c.plain("alice", "secret").await;
    assert!(reply.contains("<success"), "{reply}");
    c.open("localhost").await;
    let session = server.next_session().await;
    assert!(!session.stream.is_secure());
}

#[tokio::test]
async fn plaintext_sasl_refused_when_encryption_required() {
    let server = Server::start("plainreq", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let reply = c.plain("alice", "secret").await;
    assert!(reply.contains("<encryption-required/>"), "{reply}");
    // A stanza before authentication closes the stream.
    c.send("<message to='bob@localhost'><body>x</body></message>")
        .await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<not-authorized"), "{rest}");
}

#[tokio::test]
async fn wrong_password_is_not_authorized_with_growing_back_off() {
    let mut server = Server::start("backoff", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;

    let t = Instant::now();
    let reply = c.scram(scram256("alice", "wrong")).await;
    let first = t.elapsed();
    assert!(reply.contains("<not-authorized/>"), "{reply}");
    assert!(
        first >= Duration::from_millis(240),
        "first failure after {first:?}"
    );

    let t = Instant::now();
    let reply = c.plain("alice", "still wrong").await;
    let second = t.elapsed();
    assert!(reply.contains("<not-authorized/>"), "{reply}");
    assert!(
        second >= Duration::from_millis(490),
        "second failure after {second:?}"
    );

    // An unknown account looks the same.
    let reply = c.scram(scram256("nobody", "x")).await;
    assert!(reply.contains("<not-authorized/>"), "{reply}");
    // That was the third failure on this connection: it is closed.
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");

    // The back-off is per address and shared by connections; success resets
    // the account's, not the address's (see the next test).
    let ip = "127.0.0.1".parse().unwrap();
    assert!(server.ctx.auth_throttle.delay_for(ip) >= Duration::from_secs(1));
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    let reply = c.scram(scram256("alice", "secret")).await;
    assert!(reply.contains("<success"), "{reply}");
    c.open("localhost").await;
    server.next_session().await;
    assert_eq!(
        server
            .ctx
            .auth_throttle
            .delay_for_account("alice@localhost"),
        Duration::ZERO
    );
}

#[tokio::test]
async fn a_login_does_not_reset_the_back_off_for_another_account() {
    let mut server = Server::start("backoff-accounts", Options::default()).await;
    let throttle = &server.ctx.auth_throttle;
    let ip = "127.0.0.1".parse().unwrap();
    let elsewhere = "192.0.2.7".parse().unwrap();
    let bob = Some("bob@localhost");

    // Two guesses at bob's password.
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    assert!(c
        .scram(scram256("bob", "guess1"))
        .await
        .contains("<not-authorized/>"));
    assert!(c.plain("bob", "guess2").await.contains("<not-authorized/>"));
    assert_eq!(throttle.delay(ip, bob), Duration::from_millis(500));
    assert_eq!(throttle.delay(elsewhere, bob), Duration::from_millis(500));

    // The guesser logs in to an account of its own, from the same address.
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    assert!(c
        .scram(scram256("alice", "secret"))
        .await
        .contains("<success"));
    c.open("localhost").await;
    server.next_session().await;

    // The next guess at bob still waits as long, from here or elsewhere;
    // so does a guess at another account from this address.
    let throttle = &server.ctx.auth_throttle;
    assert_eq!(throttle.delay(ip, bob), Duration::from_millis(500));
    assert_eq!(throttle.delay(elsewhere, bob), Duration::from_millis(500));
    assert_eq!(
        throttle.delay(ip, Some("carol@localhost")),
        Duration::from_millis(500)
    );
    assert_eq!(
        throttle.delay(elsewhere, Some("carol@localhost")),
        Duration::ZERO
    );
}

/// Starts a SCRAM exchange for `user` and aborts it; returns the salt and
/// iteration count of the server's first message.
async fn scram_salt(c: &mut Client, mechanism: &str, user: &str) -> (Vec<u8>, String) {
    let initial = BASE64.encode(format!("n,,n={user},r=clientnonce"));
    c.send(&format!(
        "<auth xmlns='{SASL}' mechanism='{mechanism}'>{initial}</auth>"
    ))
    .await;
    let reply = c.read_sasl_reply().await;
    let challenge = between(&reply, "'>", "</challenge>").unwrap_or_else(|| panic!("{reply}"));
    let first = String::from_utf8(BASE64.decode(challenge).unwrap()).unwrap();
    let field = |name: &str| {
        first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {first}"))
            .to_owned()
    };
    let salt = BASE64.decode(field("s=")).unwrap();
    let iterations = field("i=");
    c.send(&format!("<abort xmlns='{SASL}'/>")).await;
    let reply = c.read_sasl_reply().await;
    assert!(reply.contains("<aborted/>"), "{reply}");
    (salt, iterations)
}

#[tokio::test]
async fn unknown_accounts_have_stable_salts_shaped_like_real_ones() {
    let server = Server::start("decoys", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-1"] {
        let real = scram_salt(&mut c, mechanism, "alice").await;
        let nobody = scram_salt(&mut c, mechanism, "nobody").await;
        // Asked again, on another connection: the same salt, as for alice.
        let mut d = server.connect().await;
        d.open("localhost").await;
        let (mut d, _) = d.starttls().await;
        assert_eq!(scram_salt(&mut d, mechanism, "nobody").await, nobody);
        assert_eq!(scram_salt(&mut d, mechanism, "alice").await, real);
        // The same form: salt length and iteration count.
        assert_eq!(nobody.0.len(), real.0.len(), "{mechanism}");
        assert_eq!(nobody.1, real.1, "{mechanism}");
        // Another unknown account has its own salt; the name is nodeprep'd
        // as a real account's is.
        assert_ne!(scram_salt(&mut c, mechanism, "nobody2").await.0, nobody.0);
        assert_eq!(scram_salt(&mut c, mechanism, "NoBody").await, nobody);
    }
}

#[tokio::test]
async fn sasl_abort_and_unknown_mechanism() {
    let server = Server::start("abort", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let (mut c, _) = c.starttls().await;
    c.send(&format!("<auth xmlns='{SASL}' mechanism='DIGEST-MD5'/>"))
        .await;
    let reply = c.read_sasl_reply().await;
    assert!(reply.contains("<invalid-mechanism/>"), "{reply}");
    // No initial response: an empty challenge, then abort.
    c.send(&format!("<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'/>"))
        .await;
    let reply = c.read_sasl_reply().await;
    assert!(reply.contains("<challenge"), "{reply}");
    c.send(&format!("<abort xmlns='{SASL}'/>")).await;
    let reply = c.read_sasl_reply().await;
    assert!(reply.contains("<aborted/>"), "{reply}");
    c.send(&format!(
        "<auth xmlns='{SASL}' mechanism='PLAIN'>not base64!</auth>"
    ))
    .await;
    let reply = c.read_sasl_reply().await;
    assert!(reply.contains("<failure"), "{reply}");
    // Still usable afterwards.
    let reply = c.scram(scram256("alice", "secret")).await;
    assert!(reply.contains("<success"), "{reply}");
}

#[tokio::test]
async fn unknown_host_is_host_unknown() {
    let server = Server::start("host", Options::default()).await;
    let mut c = server.connect().await;
    c.send(
        "<?xml version='1.0'?><stream:stream to='example.net' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
    .await;
    let all = c.read_to_end().await;
    assert!(all.contains("<stream:stream"), "{all}");
    assert!(all.contains("<host-unknown"), "{all}");
    assert!(all.ends_with("</stream:stream>"), "{all}");

    // Host names are case-insensitive; the reply names the configured host.
    let mut c = server.connect().await;
    c.send(
        "<?xml version='1.0'?><stream:stream to='LocalHost' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
    .await;
    let header = c.read_until("</stream:features>").await;
    assert!(header.contains("from='localhost'"), "{header}");
}

#[tokio::test]
async fn bad_namespace_and_version_in_the_header() {
    let server = Server::start("header", Options::default()).await;
    let mut c = server.connect().await;
    c.send(
        "<stream:stream to='localhost' version='1.0' \
         xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
    .await;
    assert!(c.read_to_end().await.contains("<invalid-namespace"));
    let mut c = server.connect().await;
    c.send(
        "<stream:stream to='localhost' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
    .await;
    assert!(c.read_to_end().await.contains("<unsupported-version"));
}

#[tokio::test]
async fn oversize_stanza_is_a_policy_violation() {
    let mut server = Server::start(
        "size",
        Options {
            max_stanza_bytes: 2048,
            allow_plaintext_auth: true,
            ..Options::default()
        },
    )
    .await;
    // Before authentication.
    let mut c = server.connect().await;
    let features = c.open("localhost").await;
    assert!(
        features.contains("<max-bytes>2048</max-bytes>"),
        "{features}"
    );
    c.send(&format!(
        "<auth xmlns='{SASL}' mechanism='PLAIN'>{}</auth>",
        "A".repeat(4000)
    ))
    .await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
    assert!(rest.contains("2048"), "{rest}");

    // After authentication: the core sees the error, the client gets it.
    let mut c = server.connect().await;
    c.open("localhost").await;
    assert!(c.plain("alice", "secret").await.contains("<success"));
    c.open("localhost").await;
    let mut session = server.next_session().await;
    c.send(&format!(
        "<message><body>{}</body></message>",
        "x".repeat(3000)
    ))
    .await;
    let err = session.stream.next_stanza().await.unwrap_err();
    assert!(err.to_string().contains("policy-violation"), "{err}");
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
}

#[tokio::test]
async fn restricted_xml_is_refused() {
    let server = Server::start("restricted", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    c.send("<?foo bar?>").await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<restricted-xml"), "{rest}");
}

#[tokio::test]
async fn connections_per_ip_are_limited() {
    let server = Server::start(
        "perip",
        Options {
            max_connections_per_ip: 2,
            ..Options::default()
        },
    )
    .await;
    let mut a = server.connect().await;
    a.open("localhost").await;
    let mut b = server.connect().await;
    b.open("localhost").await;
    let mut c = server.connect().await;
    c.send(
        "<stream:stream to='localhost' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    )
    .await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
    // Closing one frees its slot.
    a.send("</stream:stream>").await;
    a.read_to_end().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut d = server.connect().await;
    let features = d.open("localhost").await;
    assert!(features.contains("starttls"), "{features}");
}

#[tokio::test]
async fn header_with_too_many_attributes_is_a_policy_violation() {
    let server = Server::start("header-attrs", Options::default()).await;
    let mut c = server.connect().await;
    // A little over the limit: the server takes it in one read, so closing
    // leaves nothing unread that would reset the connection.
    let attrs: String = (0..150).map(|i| format!(" a{i}='v'")).collect();
    c.send(&format!(
        "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
         xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'{attrs}>"
    ))
    .await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
    assert!(rest.contains("limit of 100"), "{rest}");
    assert!(rest.ends_with("</stream:stream>"), "{rest}");
}

#[tokio::test]
async fn stanza_with_too_many_attributes_is_a_policy_violation() {
    let server = Server::start("stanza-attrs", Options::default()).await;
    let mut c = server.connect().await;
    c.open("localhost").await;
    let attrs: String = (0..150).map(|i| format!(" a{i}='v'")).collect();
    c.send(&format!("<starttls xmlns='{TLS}'{attrs}/>")).await;
    let rest = c.read_to_end().await;
    assert!(rest.contains("<policy-violation"), "{rest}");
    assert!(rest.contains("limit of 100"), "{rest}");
    assert!(rest.ends_with("</stream:stream>"), "{rest}");
}
