//! The server's entity capabilities (XEP-0115) in the stream features
//! before and after authentication: the `ver` is recomputed here, independently, from
//! the server's disco#info, and it names that disco#info as a node.

mod support;

use base64::Engine as _;
use minidom::Element;
use sha1::{Digest, Sha1};
use support::{header, Client, TestServer};

const STREAMS: &str = "http://etherx.jabber.org/streams";
const CAPS: &str = "http://jabber.org/protocol/caps";
const INFO: &str = "http://jabber.org/protocol/disco#info";
const DATA: &str = "jabber:x:data";

/// A form's FORM_TYPE and its other fields with their sorted values.
type Form = (String, Vec<(String, Vec<String>)>);

/// The verification string of XEP-0115 section 5.1, with forms (5.4).
fn ver_of(query: &Element) -> String {
    let mut s = String::new();
    let mut identities: Vec<String> = query
        .children()
        .filter(|c| c.is("identity", INFO))
        .map(|i| {
            format!(
                "{}/{}/{}/{}",
                i.attr("category").unwrap_or(""),
                i.attr("type").unwrap_or(""),
                i.attr("xml:lang").unwrap_or(""),
                i.attr("name").unwrap_or("")
            )
        })
        .collect();
    identities.sort();
    for i in identities {
        s.push_str(&i);
        s.push('<');
    }
    let mut features: Vec<String> = query
        .children()
        .filter(|c| c.is("feature", INFO))
        .filter_map(|f| f.attr("var").map(str::to_owned))
        .collect();
    features.sort();
    for f in features {
        s.push_str(&f);
        s.push('<');
    }
    let values = |f: &Element| -> Vec<String> {
        let mut v: Vec<String> = f
            .children()
            .filter(|c| c.is("value", DATA))
            .map(|c| c.text())
            .collect();
        v.sort();
        v
    };
    let mut forms: Vec<Form> = query
        .children()
        .filter(|c| c.is("x", DATA))
        .map(|x| {
            let mut form_type = String::new();
            let mut fields = Vec::new();
            for f in x.children().filter(|c| c.is("field", DATA)) {
                let var = f.attr("var").unwrap_or("").to_owned();
                if var == "FORM_TYPE" {
                    form_type = values(f).join("");
                } else {
                    fields.push((var, values(f)));
                }
            }
            fields.sort();
            (form_type, fields)
        })
        .collect();
    forms.sort();
    for (form_type, fields) in forms {
        s.push_str(&form_type);
        s.push('<');
        for (var, vals) in fields {
            s.push_str(&var);
            s.push('<');
            for v in vals {
                s.push_str(&v);
                s.push('<');
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// Logs in by hand, returning the client and the caps element of the
/// post-authentication stream features.
async fn login_with_features(s: &TestServer) -> (Client, Element) {
    let mut c = Client::connect(s.addr).await;
    c.send(&header("localhost")).await;
    let before = c.expect("features", |e| e.is("features", STREAMS)).await;
    let creds = base64::engine::general_purpose::STANDARD.encode("\0alice\0secret");
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
    ))
    .await;
    c.expect("success", |e| e.name() == "success").await;
    c.restart();
    c.send(&header("localhost")).await;
    let features = c
        .expect("post-auth features", |e| e.is("features", STREAMS))
        .await;
    let caps = features
        .get_child("c", CAPS)
        .cloned()
        .expect("caps in the stream features");
    // The same caps before authentication.
    assert_eq!(before.get_child("c", CAPS), Some(&caps));
    c.bind(Some("caps")).await;
    (c, caps)
}

async fn disco_info(c: &mut Client, node: Option<&str>) -> Element {
    let node = node.map(|n| format!(" node='{n}'")).unwrap_or_default();
    c.iq(
        &format!("<iq type='get' id='di' to='localhost'><query xmlns='{INFO}'{node}/></iq>"),
        "di",
    )
    .await
}

#[tokio::test]
async fn caps_ver_matches_the_servers_disco_info() {
    let mut config = support::test_config("caps");
    config.contact.admin = vec!["xmpp:admin@localhost".into()];
    let s = TestServer::start_with(config).await;
    s.add_user("alice", "secret").await;
    let (mut c, caps) = login_with_features(&s).await;
    assert_eq!(caps.attr("hash"), Some("sha-1"));
    let node = caps.attr("node").expect("node").to_owned();
    let ver = caps.attr("ver").expect("ver").to_owned();

    let reply = disco_info(&mut c, None).await;
    let query = reply.get_child("query", INFO).expect("disco#info");
    assert!(
        query.has_child("x", DATA),
        "the contact form is part of the hash"
    );
    assert_eq!(ver_of(query), ver);

    // The caps node names the same disco#info.
    let reply = disco_info(&mut c, Some(&format!("{node}#{ver}"))).await;
    assert_eq!(reply.attr("type"), Some("result"));
    let query = reply.get_child("query", INFO).expect("disco#info");
    assert_eq!(query.attr("node"), Some(format!("{node}#{ver}").as_str()));
    assert_eq!(ver_of(query), ver);
    // Any other node does not exist.
    let reply = disco_info(&mut c, Some(&format!("{node}#other"))).await;
    assert_eq!(reply.attr("type"), Some("error"));
    s.stop().await;
}

#[tokio::test]
async fn caps_ver_is_stable_and_follows_the_features() {
    let mut vers = Vec::new();
    for (tag, contact) in [("caps-a", false), ("caps-b", false), ("caps-c", true)] {
        let mut config = support::test_config(tag);
        if contact {
            config.contact.abuse = vec!["mailto:abuse@localhost".into()];
        }
        let s = TestServer::start_with(config).await;
        s.add_user("alice", "secret").await;
        let (_c, caps) = login_with_features(&s).await;
        vers.push(caps.attr("ver").expect("ver").to_owned());
        s.stop().await;
    }
    assert_eq!(vers[0], vers[1], "same features, same ver");
    assert_ne!(vers[0], vers[2], "other features, other ver");
}
