//! The client and the runner against a tiny in-process XMPP server that
//! accepts SASL PLAIN, binds the requested resource, requires the legacy
//! session, and reflects every message back to its sender (from = the
//! message's `to`).
//!
//! It also hands out tokens that only the server knows in advance: an iq
//! get of `<token xmlns='urn:example:token'/>` is answered with a new
//! token, `<token serial='N'>VALUE</token>` (N counts from 1 on each
//! connection, VALUE is random), followed by a message `token N issued`. An
//! iq set of `<redeem xmlns='urn:example:token' serial='N'>VALUE</redeem>`
//! is answered with a result if it names the last token issued, with an
//! error otherwise.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use conclave_scansion::client::{Client, ClientOptions, SaslMechanism, TlsMode};
use conclave_scansion::xml::{escape, StreamEvent, StreamParser};
use conclave_scansion::{run_script, RunOptions, Script};
use minidom::Element;

const NS_TOKEN: &str = "urn:example:token";
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
    let mut serial = 0u32;
    let mut issued: Option<(String, String)> = None;
    while let Some(el) = c.element().await {
        if el.name() == "iq" {
            let id = escape(el.attr("id").unwrap_or(""));
            if el.attr("type") == Some("get") && el.has_child("token", NS_TOKEN) {
                serial += 1;
                let value = format!("{:016x}", RandomState::new().build_hasher().finish());
                c.send(&format!(
                    "<iq type='result' id='{id}' to='{}'><token xmlns='{NS_TOKEN}' serial='{serial}'>{value}</token></iq>\
                     <message from='localhost' to='{}'><body>token {serial} issued</body></message>",
                    escape(&jid),
                    escape(&jid)
                ))
                .await;
                issued = Some((serial.to_string(), value));
            } else if let Some(redeem) = el.get_child("redeem", NS_TOKEN) {
                let offered = (
                    redeem.attr("serial").unwrap_or("").to_owned(),
                    redeem.text(),
                );
                if issued.as_ref() == Some(&offered) {
                    c.send(&format!("<iq type='result' id='{id}'/>")).await;
                } else {
                    c.send(&format!(
                        "<iq type='error' id='{id}'><error type='cancel'>\
                         <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
                    ))
                    .await;
                }
            }
        } else if el.name() == "message" {
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

#[tokio::test]
async fn values_the_server_chose_are_captured_and_sent_back() {
    let port = start_server().await;
    // Two tokens asked for in one block, the four answers taken in one
    // block: each message names the serial the iq before it captured, so
    // the second capture must have replaced the first; the redeem uses the
    // second token's serial and value.
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<iq type='get' id='t1' to='localhost'><token xmlns='urn:example:token'/></iq>\n\
         \t<iq type='get' id='t2' to='localhost'><token xmlns='urn:example:token'/></iq>\n\
         Romeo receives:\n\
         \t<iq type='result' id='t1'>\n\
         \t\t<token xmlns='urn:example:token' serial='{{scansion:capture:serial}}'>{{scansion:capture:value}}</token>\n\
         \t</iq>\n\
         \t<message from='localhost'><body>token ${{serial}} issued</body></message>\n\
         \t<iq type='result' id='t2'>\n\
         \t\t<token xmlns='urn:example:token' serial='{{scansion:capture:serial}}'>{{scansion:capture:value}}</token>\n\
         \t</iq>\n\
         \t<message from='localhost'><body>token ${{serial}} issued</body></message>\n\
         Romeo sends:\n\
         \t<iq type='set' id='redeem-${{serial}}' to='localhost'>\n\
         \t\t<redeem xmlns='urn:example:token' serial='${{serial}}'>${{value}}</redeem>\n\
         \t</iq>\n\
         Romeo receives:\n\
         \t<iq type='result' id='redeem-2'/>\n"
    );
    let script = Script::parse(&text).unwrap();
    let outcome = run_script(&script, &opts(port)).await;
    assert!(outcome.passed, "{}", outcome.failure.unwrap());
}

#[tokio::test]
async fn a_stale_value_sent_back_fails_with_the_values_in_the_report() {
    let port = start_server().await;
    // The first token is captured, then replaced on the server by a second
    // one the script does not capture: redeeming the first is refused.
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<iq type='get' id='t1' to='localhost'><token xmlns='urn:example:token'/></iq>\n\
         Romeo receives:\n\
         \t<iq type='result' id='t1'>\n\
         \t\t<token xmlns='urn:example:token' serial='{{scansion:capture:serial}}'>{{scansion:capture:value}}</token>\n\
         \t</iq>\n\
         Romeo sends:\n\
         \t<iq type='get' id='t2' to='localhost'><token xmlns='urn:example:token'/></iq>\n\
         Romeo receives:\n\
         \t<message from='localhost'><body>token 2 issued</body></message>\n\
         Romeo sends:\n\
         \t<iq type='set' id='redeem-${{serial}}' to='localhost'>\n\
         \t\t<redeem xmlns='urn:example:token' serial='${{serial}}'>${{value}}</redeem>\n\
         \t</iq>\n\
         Romeo receives:\n\
         \t<iq type='result' id='redeem-${{serial}}'/>\n"
    );
    let script = Script::parse(&text).unwrap();
    let outcome = run_script(&script, &opts(port)).await;
    assert!(!outcome.passed);
    let f = outcome.failure.unwrap();
    assert_eq!((f.line, f.step.as_str()), (24, "Romeo receives:"));
    assert!(
        f.reason
            .ends_with("closest: <iq>: attribute 'type': expected 'result', got 'error'"),
        "{}",
        f.reason
    );
    assert_eq!(
        f.expected.as_deref(),
        Some("<iq type='result' id='redeem-1'/>"),
        "the report shows the expected stanza with its values"
    );
    assert_eq!(f.passed_over.len(), 1);
    let (refused, _) = &f.passed_over[0];
    assert!(
        refused.contains("type='error'") && refused.contains("id='redeem-1'"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_missing_capture_fails_the_step_and_names_what_was_expected() {
    let port = start_server().await;
    let text = format!(
        "{HEADER}Romeo connects\n\
         Romeo sends:\n\
         \t<iq type='get' id='t1' to='localhost'><token xmlns='urn:example:token'/></iq>\n\
         Romeo receives:\n\
         \t<iq type='result' id='t1'>\n\
         \t\t<token xmlns='urn:example:token' serial='{{scansion:capture:serial}}' expires='{{scansion:capture:expiry}}'/>\n\
         \t</iq>\n\
         Romeo sends:\n\
         \t<message to='echo@localhost'><body>${{expiry}}</body></message>\n"
    );
    let script = Script::parse(&text).unwrap();
    let outcome = run_script(&script, &opts(port)).await;
    let f = outcome.failure.unwrap();
    assert_eq!(f.line, 12);
    assert!(
        f.reason.ends_with(
            "closest: <iq>/<token xmlns='urn:example:token'>: attribute 'expires': expected a value to capture as 'expiry', missing"
        ),
        "{}",
        f.reason
    );
}
