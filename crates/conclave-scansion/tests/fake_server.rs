//! The client and the runner against a tiny in-process XMPP server that
//! accepts SASL PLAIN, binds the requested resource, requires the legacy
//! session, and reflects every message back to its sender (from = the
//! message's `to`).

use std::time::Duration;

use conclave_scansion::client::{Client, ClientOptions, SaslMechanism, TlsMode};
use conclave_scansion::xml::{escape, StreamEvent, StreamParser};
use conclave_scansion::{run_script, RunOptions, Script};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASSWORD: &str = "secret";

struct Conn {
    sock: TcpStream,
    parser: StreamParser,
}

impl Conn {
    async fn next(&mut self) -> StreamEvent {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(ev) = self.parser.next_event().unwrap() {
                return ev;
            }
            let n = self.sock.read(&mut buf).await.unwrap();
            if n == 0 {
                self.parser.feed_eof();
            } else {
                self.parser.feed(&buf[..n]);
            }
        }
    }

    async fn element(&mut self) -> Option<Element> {
        match self.next().await {
            StreamEvent::Element(el) => Some(el),
            StreamEvent::End => None,
            StreamEvent::Header { .. } => panic!("unexpected header"),
        }
    }

    async fn send(&mut self, s: &str) {
        self.sock.write_all(s.as_bytes()).await.unwrap();
    }

    async fn open(&mut self, features: &str) {
        self.parser = StreamParser::new();
        assert!(matches!(self.next().await, StreamEvent::Header { .. }));
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>\
             <stream:features>{features}</stream:features>"
        ))
        .await;
    }
}

async fn handle(sock: TcpStream) {
    let mut c = Conn {
        sock,
        parser: StreamParser::new(),
    };
    c.open("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>")
        .await;
    let auth = c.element().await.unwrap();
    let auth = xmpp_parsers::sasl::Auth::try_from(auth).unwrap();
    let mut parts = auth.data.split(|b| *b == 0).skip(1);
    let user = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
    let password = parts.next().unwrap();
    if password != PASSWORD.as_bytes() {
        c.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
            .await;
        return;
    }
    c.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
        .await;
    c.open(
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>\
         <session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
    )
    .await;
    let bind = c.element().await.unwrap();
    let resource = bind
        .children()
        .next()
        .and_then(|b| b.children().next())
        .map(|r| r.text())
        .unwrap_or_else(|| "generated".into());
    let jid = format!("{user}@localhost/{resource}");
    c.send(&format!(
        "<iq type='result' id='{}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>{}</jid></bind></iq>",
        escape(bind.attr("id").unwrap()),
        escape(&jid)
    ))
    .await;
    let session = c.element().await.unwrap();
    assert!(session.has_child("session", "urn:ietf:params:xml:ns:xmpp-session"));
    c.send(&format!(
        "<iq type='result' id='{}'/>",
        escape(session.attr("id").unwrap())
    ))
    .await;
    while let Some(el) = c.element().await {
        if el.name() == "message" {
            let body = el
                .get_child("body", "jabber:client")
                .map(|b| b.text())
                .unwrap_or_default();
            c.send(&format!(
                "<message from='{}' to='{}'><body>{}</body></message>",
                escape(el.attr("to").unwrap_or("nobody@localhost")),
                escape(&jid),
                escape(&body)
            ))
            .await;
        }
    }
    c.send("</stream:stream>").await;
}

async fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::spawn(handle(sock));
        }
    });
    port
}

fn opts(port: u16) -> RunOptions {
    RunOptions {
        port,
        timeout: Duration::from_millis(500),
        quiet_period: Duration::from_millis(200),
        ..RunOptions::default()
    }
}

const HEADER: &str =
    "# Echo\n\n[Client] Romeo\n\tjid: romeo@localhost/phone\n\tpassword: secret\n\n-----\n\n";

#[tokio::test]
async fn client_logs_in_and_exchanges_stanzas_from_two_tasks() {
    let port = start_server().await;
    let mut o = ClientOptions::new(
        "127.0.0.1",
        port,
        "romeo@localhost/phone".parse().unwrap(),
        PASSWORD,
    );
    o.tls = TlsMode::Never;
    let client = Client::connect(o).await.unwrap();
    assert_eq!(client.bound_jid().to_string(), "romeo@localhost/phone");
    let (mut reader, mut writer) = client.into_split();
    let sender = tokio::spawn(async move {
        for i in 0..20 {
            writer
                .send_raw(&format!(
                    "<message to='echo@localhost'><body>{i}</body></message>"
                ))
                .await
                .unwrap();
        }
        writer
    });
    for i in 0..20 {
        let el = reader
            .recv_timeout(Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(el.attr("from"), Some("echo@localhost"));
        assert_eq!(
            el.get_child("body", "jabber:client").unwrap().text(),
            i.to_string()
        );
    }
    let mut writer = sender.await.unwrap();
    writer.send_close().await.unwrap();
    assert!(
        reader.recv().await.unwrap().is_none(),
        "server closed its stream"
    );
}

#[tokio::test]
async fn wrong_password_is_reported() {
    let port = start_server().await;
    let mut o = ClientOptions::new("127.0.0.1", port, "romeo@localhost".parse().unwrap(), "bad");
    o.mechanisms = vec![SaslMechanism::Plain];
    let err = Client::connect(o).await.err().unwrap().to_string();
    assert!(
        err.contains("authentication failed") && err.contains("not-authorized"),
        "{err}"
    );
}

#[tokio::test]
async fn tls_required_by_the_client_but_not_offered() {
    let port = start_server().await;
    let mut o = ClientOptions::new(
        "127.0.0.1",
        port,
        "romeo@localhost".parse().unwrap(),
        PASSWORD,
    );
    o.tls = TlsMode::Require;
    let err = Client::connect(o).await.err().unwrap().to_string();
    assert!(err.contains("does not offer STARTTLS"), "{err}");
}

#[tokio::test]
async fn script_passes_over_unmatched_stanzas_and_ignores_sends_after_disconnect() {
    let port = start_server().await;
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>one</body></message>\n\
         \t<message to='echo@localhost'><body>two</body></message>\n\
         Romeo receives:\n\
         \t<message from='echo@localhost'><body>two</body></message>\n\
         Romeo receives: nothing\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>three</body></message>\n\
         Romeo receives:\n\
         \t<message from='echo@localhost' to=\"${{Romeo's full JID}}\"><body>three</body></message>\n\
         Romeo disconnects\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>ignored</body></message>\n"
    );
    let script = Script::parse(&text).unwrap();
    let outcome = run_script(&script, &opts(port)).await;
    assert!(outcome.passed, "{}", outcome.failure.unwrap());
    assert_eq!(outcome.title, "Echo");
}

#[tokio::test]
async fn failure_report_names_the_line_the_reason_and_what_was_passed_over() {
    let port = start_server().await;
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>three</body></message>\n\
         Romeo receives:\n\
         \t<message from='echo@localhost'><body>four</body></message>\n"
    );
    let script = Script::parse(&text).unwrap();
    let outcome = run_script(&script, &opts(port)).await;
    assert!(!outcome.passed);
    let f = outcome.failure.unwrap();
    assert_eq!(f.line, 12);
    assert_eq!(f.step, "Romeo receives:");
    assert!(
        f.reason
            .ends_with("closest: <message>/<body>: text: expected 'four', got 'three'"),
        "{}",
        f.reason
    );
    assert_eq!(f.passed_over.len(), 1);
    let report = f.to_string();
    assert!(report.contains("line 12: Romeo receives:"), "{report}");
    assert!(
        report
            .contains("expected:\n    <message from='echo@localhost'><body>four</body></message>"),
        "{report}"
    );
    assert!(report.contains("received and passed over (1):"), "{report}");
    assert!(report.contains("<body>three</body>"), "{report}");
}

#[tokio::test]
async fn receives_nothing_fails_when_a_stanza_arrives() {
    let port = start_server().await;
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>x</body></message>\n\
         Romeo receives: nothing\n"
    );
    let outcome = run_script(&Script::parse(&text).unwrap(), &opts(port)).await;
    let f = outcome.failure.unwrap();
    assert_eq!(f.reason, "expected nothing, received <message>");
    assert_eq!(f.line, 12);
}

#[tokio::test]
async fn connection_refused_is_a_failure_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let text = format!("{HEADER}Romeo connects\n");
    let outcome = run_script(&Script::parse(&text).unwrap(), &opts(port)).await;
    let f = outcome.failure.unwrap();
    assert!(f.reason.contains("cannot connect"), "{}", f.reason);
}
