//! The scansion script format: a header declaring clients, then a list of
//! actions (`connects`, `sends:`, `receives:`, `receives: nothing`,
//! `disconnects`), each with its line number for error reports.
//!
//! Stanza blocks stay text until run time, because `${Name's full JID}` is
//! only known once the server has bound the client; they are checked for
//! well-formedness when the script is parsed.

use std::fmt;

use jid::{BareJid, Jid};
use minidom::{Element, Node};

use crate::xml::escape;

/// Namespace bound to the `scansion:` prefix in stanza blocks.
pub const NS_SCANSION: &str = "https://matthewwild.co.uk/projects/scansion";

/// The default namespace of stanzas in a script.
pub const NS_CLIENT: &str = "jabber:client";

/// A parsed script.
#[derive(Debug, Clone)]
pub struct Script {
    /// The text of the first comment line.
    pub title: String,
    /// The clients declared in the header, in order.
    pub clients: Vec<ClientDecl>,
    /// The actions, in order.
    pub steps: Vec<Step>,
}

/// A `[Client]` section of the header.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDecl {
    /// The client's name (may contain spaces).
    pub name: String,
    /// The account, possibly with a resource to request.
    pub jid: Jid,
    /// The account's password.
    pub password: String,
    /// Other properties, as written.
    pub properties: Vec<(String, String)>,
    /// Line of the `[Client]` line.
    pub line: usize,
}

/// One action of the script.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Line of the action.
    pub line: usize,
    /// The acting client's name.
    pub client: String,
    /// What it does.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Connect, authenticate and bind.
    Connect,
    /// Close the stream.
    Disconnect,
    /// Send the stanzas of the block.
    Send(Block),
    /// Receive stanzas matching those of the block, in order.
    Receive(Block),
    /// Receive nothing for a short while.
    ReceiveNothing,
}

impl Step {
    /// The action line as written in a script (`Romeo receives:`).
    pub fn describe(&self) -> String {
        let verb = match self.action {
            Action::Connect => "connects",
            Action::Disconnect => "disconnects",
            Action::Send(_) => "sends:",
            Action::Receive(_) => "receives:",
            Action::ReceiveNothing => "receives: nothing",
        };
        format!("{} {verb}", self.client)
    }
}

/// An indented block of one or more stanzas.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Line of the block's first line.
    pub line: usize,
    /// The block's text, with the common indentation removed.
    pub text: String,
    /// How many stanzas the block holds.
    pub count: usize,
}

/// What a variable refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// `${Name's JID}`: the bare JID from the header.
    BareJid,
    /// `${Name's full JID}`: the full JID bound by the server.
    FullJid,
}

/// A script that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Line number (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

fn is_comment(line: &str) -> bool {
    line.starts_with('#') || line.starts_with("--") || line.starts_with("//")
}

fn is_indented(line: &str) -> bool {
    line.starts_with([' ', '\t'])
}

fn is_separator(line: &str) -> bool {
    let t = line.trim_end();
    t.len() >= 3 && t.chars().all(|c| c == '-')
}

impl Script {
    /// Parses a script.
    pub fn parse(text: &str) -> Result<Script, ParseError> {
        let lines: Vec<&str> = text.lines().collect();
        let mut title = None;
        let mut clients: Vec<ClientDecl> = Vec::new();
        let mut i = 0;
        let mut header_done = false;

        // The header.
        while i < lines.len() {
            let raw = lines[i];
            let n = i + 1;
            let line = raw.trim_end();
            i += 1;
            if line.trim().is_empty() {
                continue;
            }
            if is_separator(line) {
                header_done = true;
                break;
            }
            if line.starts_with('#') {
                if title.is_none() {
                    title = Some(line.trim_start_matches('#').trim().to_owned());
                }
                continue;
            }
            if is_comment(line) {
                continue;
            }
            if let Some(name) = line.strip_prefix("[Client]") {
                let name = name.trim();
                if name.is_empty() {
                    return Err(err(n, "[Client] needs a name"));
                }
                if clients.iter().any(|c| c.name == name) {
                    return Err(err(n, format!("client '{name}' is declared twice")));
                }
                let mut props = Vec::new();
                while i < lines.len() && (is_indented(lines[i]) || lines[i].trim().is_empty()) {
                    let prop = lines[i].trim();
                    let pn = i + 1;
                    i += 1;
                    if prop.is_empty() || is_comment(prop) {
                        continue;
                    }
                    let Some((k, v)) = prop.split_once(':') else {
                        return Err(err(
                            pn,
                            format!("expected 'key: value' in client '{name}', got '{prop}'"),
                        ));
                    };
                    props.push((k.trim().to_owned(), v.trim().to_owned(), pn));
                }
                clients.push(client_decl(name, n, props)?);
                continue;
            }
            return Err(err(
                n,
                format!("expected '[Client] Name', a comment or a line of dashes in the header, got '{line}'"),
            ));
        }
        if !header_done {
            return Err(err(
                lines.len().max(1),
                "the header is not closed by a line of three or more dashes",
            ));
        }

        // The actions.
        let mut steps = Vec::new();
        while i < lines.len() {
            let raw = lines[i];
            let n = i + 1;
            let line = raw.trim_end();
            i += 1;
            if line.trim().is_empty() || is_comment(line) {
                continue;
            }
            if is_indented(line) {
                return Err(err(
                    n,
                    "indented line outside a 'sends:' or 'receives:' block",
                ));
            }
            let (client, action) = parse_action(line, n, &clients)?;
            let action = match action {
                ActionKind::Connect => Action::Connect,
                ActionKind::Disconnect => Action::Disconnect,
                ActionKind::ReceiveNothing => Action::ReceiveNothing,
                ActionKind::Send | ActionKind::Receive => {
                    let start = i;
                    let mut end = i;
                    while end < lines.len()
                        && (is_indented(lines[end]) || lines[end].trim().is_empty())
                    {
                        end += 1;
                    }
                    // Trailing blank lines belong to no block.
                    while end > start && lines[end - 1].trim().is_empty() {
                        end -= 1;
                    }
                    if end == start {
                        return Err(err(
                            n,
                            format!("'{line}' is not followed by an indented stanza"),
                        ));
                    }
                    let block = make_block(&lines[start..end], start + 1, &clients)?;
                    i = end;
                    if matches!(action, ActionKind::Send) {
                        Action::Send(block)
                    } else {
                        Action::Receive(block)
                    }
                }
            };
            steps.push(Step {
                line: n,
                client,
                action,
            });
        }

        Ok(Script {
            title: title.unwrap_or_default(),
            clients,
            steps,
        })
    }

    /// The clients declared in the header (accounts the server must have).
    pub fn clients(&self) -> &[ClientDecl] {
        &self.clients
    }

    /// The client declared under `name`.
    pub fn client(&self, name: &str) -> Option<&ClientDecl> {
        self.clients.iter().find(|c| c.name == name)
    }
}

impl ClientDecl {
    /// The bare JID (`${Name's JID}`).
    pub fn bare_jid(&self) -> BareJid {
        self.jid.to_bare()
    }
}

fn client_decl(
    name: &str,
    line: usize,
    props: Vec<(String, String, usize)>,
) -> Result<ClientDecl, ParseError> {
    let mut jid = None;
    let mut password = None;
    let mut properties = Vec::new();
    for (k, v, pn) in props {
        match k.as_str() {
            "jid" => {
                let parsed: Jid = v
                    .parse()
                    .map_err(|e| err(pn, format!("client '{name}': invalid JID '{v}': {e}")))?;
                if parsed.node().is_none() {
                    return Err(err(
                        pn,
                        format!("client '{name}': JID '{v}' has no local part"),
                    ));
                }
                jid = Some(parsed);
            }
            "password" => password = Some(v.clone()),
            _ => {}
        }
        properties.push((k, v));
    }
    let jid = jid.ok_or_else(|| err(line, format!("client '{name}' has no 'jid:'")))?;
    let password =
        password.ok_or_else(|| err(line, format!("client '{name}' has no 'password:'")))?;
    Ok(ClientDecl {
        name: name.to_owned(),
        jid,
        password,
        properties,
        line,
    })
}

enum ActionKind {
    Connect,
    Disconnect,
    Send,
    Receive,
    ReceiveNothing,
}

fn parse_action(
    line: &str,
    n: usize,
    clients: &[ClientDecl],
) -> Result<(String, ActionKind), ParseError> {
    const VERBS: [(&str, ActionKind); 5] = [
        (" receives: nothing", ActionKind::ReceiveNothing),
        (" receives:", ActionKind::Receive),
        (" sends:", ActionKind::Send),
        (" disconnects", ActionKind::Disconnect),
        (" connects", ActionKind::Connect),
    ];
    for (suffix, kind) in VERBS {
        if let Some(name) = line.strip_suffix(suffix) {
            let name = name.trim();
            if !clients.iter().any(|c| c.name == name) {
                return Err(err(
                    n,
                    format!("unknown client '{name}' (not declared in the header)"),
                ));
            }
            return Ok((name.to_owned(), kind));
        }
    }
    Err(err(
        n,
        format!("expected 'Name connects', 'Name sends:', 'Name receives:', 'Name receives: nothing' or 'Name disconnects', got '{line}'"),
    ))
}

fn make_block(
    lines: &[&str],
    first_line: usize,
    clients: &[ClientDecl],
) -> Result<Block, ParseError> {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let text = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    // Check variables and well-formedness now, with stand-in values.
    let checked = substitute(&text, |name, kind| {
        let decl = clients.iter().find(|c| c.name == name)?;
        Some(match kind {
            VarKind::BareJid => decl.bare_jid().to_string(),
            VarKind::FullJid => format!("{}/resource", decl.bare_jid()),
        })
    })
    .map_err(|m| err(first_line, m))?;
    let elements = parse_stanzas(&checked).map_err(|m| err(first_line, m))?;
    Ok(Block {
        line: first_line,
        text,
        count: elements.len(),
    })
}

impl Block {
    /// The block's text with variables replaced.
    pub fn resolve(
        &self,
        lookup: impl Fn(&str, VarKind) -> Option<String>,
    ) -> Result<String, String> {
        substitute(&self.text, lookup)
    }
}

/// Replaces `${Name's JID}` and `${Name's full JID}` using `lookup`;
/// values are escaped for XML. Fails on an unknown or unresolved variable.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str, VarKind) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated variable '{}'", &rest[start..]));
        };
        let inner = &after[..end];
        let (name, kind) = parse_variable(inner)?;
        let value = lookup(name, kind).ok_or_else(|| match kind {
            VarKind::FullJid => {
                format!("variable '${{{inner}}}' has no value: is '{name}' declared and connected?")
            }
            VarKind::BareJid => {
                format!("variable '${{{inner}}}': no client '{name}' is declared")
            }
        })?;
        out.push_str(&escape(&value));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_variable(inner: &str) -> Result<(&str, VarKind), String> {
    if let Some(name) = inner.strip_suffix("'s full JID") {
        return Ok((name, VarKind::FullJid));
    }
    if let Some(name) = inner.strip_suffix("'s JID") {
        return Ok((name, VarKind::BareJid));
    }
    Err(format!(
        "unknown variable '${{{inner}}}': expected '${{Name's JID}}' or '${{Name's full JID}}'"
    ))
}

/// Parses a block's (resolved) text into its stanzas, in the `jabber:client`
/// namespace, with the `scansion:` prefix declared.
pub fn parse_stanzas(text: &str) -> Result<Vec<Element>, String> {
    let wrapped = format!(
        "<scansion-block xmlns='{NS_CLIENT}' xmlns:scansion='{NS_SCANSION}'>{text}</scansion-block>"
    );
    let root: Element = wrapped
        .parse()
        .map_err(|e| format!("the stanza block is not well-formed XML: {e}"))?;
    let stray = root.texts().map(str::trim).find(|t| !t.is_empty());
    if let Some(t) = stray {
        return Err(format!("text outside any stanza in the block: '{t}'"));
    }
    let elements: Vec<Element> = root.children().map(strip_whitespace).collect();
    if elements.is_empty() {
        return Err("the block holds no stanza".into());
    }
    Ok(elements)
}

/// A copy of `el` without whitespace-only text nodes (indentation), which
/// the format declares not significant.
pub fn strip_whitespace(el: &Element) -> Element {
    let mut out = el.clone();
    for node in out.take_nodes() {
        match node {
            Node::Element(child) => {
                out.append_child(strip_whitespace(&child));
            }
            Node::Text(text) if text.trim().is_empty() => {}
            Node::Text(text) => out.append_text_node(text),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "# Title of the script
# A second comment is not the title

[Client] Romeo
\tjid: romeo@localhost/phone
\tpassword: secret

[Client] Juliet's phone
\tjid: juliet@localhost
\tpassword: pw
\tsomething: else

---

Romeo connects
// a comment
-- another comment
# and another

Romeo sends:
\t<presence to=\"room@conference.localhost/Romeo\">
\t\t<x xmlns=\"http://jabber.org/protocol/muc\"/>
\t</presence>

Juliet's phone receives:
\t<message from=\"${Romeo's JID}\" to=\"${Juliet's phone's full JID}\"/>
\t<iq type='result' scansion:strict='false'/>

Romeo receives: nothing
Romeo disconnects
";

    #[test]
    fn parses_header_clients_and_steps_with_line_numbers() {
        let s = Script::parse(SCRIPT).unwrap();
        assert_eq!(s.title, "Title of the script");
        assert_eq!(s.clients().len(), 2);
        let romeo = &s.clients()[0];
        assert_eq!(romeo.name, "Romeo");
        assert_eq!(romeo.jid.to_string(), "romeo@localhost/phone");
        assert_eq!(romeo.bare_jid().to_string(), "romeo@localhost");
        assert_eq!(romeo.password, "secret");
        assert_eq!(romeo.line, 4);
        let juliet = s.client("Juliet's phone").unwrap();
        assert_eq!(
            juliet.properties.last(),
            Some(&("something".to_owned(), "else".to_owned()))
        );

        let lines: Vec<(usize, &str)> = s
            .steps
            .iter()
            .map(|st| (st.line, st.client.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                (15, "Romeo"),
                (20, "Romeo"),
                (25, "Juliet's phone"),
                (29, "Romeo"),
                (30, "Romeo")
            ]
        );
        assert_eq!(s.steps[0].action, Action::Connect);
        let Action::Send(send) = &s.steps[1].action else {
            panic!()
        };
        assert_eq!(send.line, 21);
        assert_eq!(send.count, 1);
        assert!(
            send.text.starts_with("<presence"),
            "indentation removed: {:?}",
            send.text
        );
        let Action::Receive(recv) = &s.steps[2].action else {
            panic!()
        };
        assert_eq!(recv.count, 2, "several stanzas in one block");
        assert_eq!(s.steps[3].action, Action::ReceiveNothing);
        assert_eq!(s.steps[4].action, Action::Disconnect);
        assert_eq!(s.steps[2].describe(), "Juliet's phone receives:");
        assert_eq!(s.steps[3].describe(), "Romeo receives: nothing");
    }

    #[test]
    fn variables_resolve_to_bare_and_bound_jids() {
        let s = Script::parse(SCRIPT).unwrap();
        let Action::Receive(block) = &s.steps[2].action else {
            panic!()
        };
        let text = block
            .resolve(|name, kind| match (name, kind) {
                ("Romeo", VarKind::BareJid) => Some("romeo@localhost".into()),
                ("Juliet's phone", VarKind::FullJid) => Some("juliet@localhost/a'b".into()),
                _ => None,
            })
            .unwrap();
        let stanzas = parse_stanzas(&text).unwrap();
        assert_eq!(stanzas[0].attr("from"), Some("romeo@localhost"));
        assert_eq!(
            stanzas[0].attr("to"),
            Some("juliet@localhost/a'b"),
            "values are escaped"
        );
        assert_eq!(stanzas[0].ns(), NS_CLIENT);
        assert_eq!(
            String::from(&parse_stanzas("<a>\n\t<b> x </b>\n</a>").unwrap()[0]),
            "<a xmlns='jabber:client'><b> x </b></a>",
            "indentation is dropped, other text kept"
        );
        assert_eq!(
            stanzas[1]
                .attrs()
                .get(&rxml::Namespace::from(NS_SCANSION.to_owned()), "strict"),
            Some(&"false".to_owned()),
            "scansion: needs no declaration"
        );
    }

    #[test]
    fn unresolved_full_jid_is_reported() {
        let e = substitute("<a to=\"${Romeo's full JID}\"/>", |_, _| None).unwrap_err();
        assert!(e.contains("Romeo") && e.contains("connected"), "{e}");
    }

    #[test]
    fn separator_needs_three_dashes() {
        let ok = "# T\n[Client] A\n\tjid: a@b\n\tpassword: p\n----------\nA connects\n";
        assert_eq!(Script::parse(ok).unwrap().steps.len(), 1);
        let short = "# T\n[Client] A\n\tjid: a@b\n\tpassword: p\n--\nA connects\n";
        let e = Script::parse(short).unwrap_err();
        assert!(e.message.contains("[Client]"), "{e}");
    }

    fn parse_err(body: &str) -> ParseError {
        let text = format!("# T\n[Client] A\n\tjid: a@localhost\n\tpassword: p\n-----\n{body}");
        Script::parse(&text).unwrap_err()
    }

    #[test]
    fn errors_carry_line_numbers_and_say_what_is_wrong() {
        let e = parse_err("A connects\nB connects\n");
        assert_eq!(e.line, 7);
        assert!(e.message.contains("unknown client 'B'"), "{e}");

        let e = parse_err("A sends:\n\t<message><body></message>\n");
        assert_eq!(e.line, 7);
        assert!(e.message.contains("not well-formed"), "{e}");

        let e = parse_err("A sends:\n\t<message to=\"${A's resource}\"/>\n");
        assert!(e.message.contains("unknown variable"), "{e}");

        let e = parse_err("A sends:\n\t<message to=\"${B's JID}\"/>\n");
        assert!(e.message.contains("no client 'B'"), "{e}");

        let e = parse_err("A sends:\nA connects\n");
        assert_eq!(e.line, 6);
        assert!(
            e.message.contains("not followed by an indented stanza"),
            "{e}"
        );

        let e = parse_err("A connects\n\t<message/>\n");
        assert_eq!(e.line, 7);
        assert!(e.message.contains("outside"), "{e}");

        let e = parse_err("A dances\n");
        assert!(e.message.contains("expected 'Name connects'"), "{e}");

        let e = parse_err("A sends:\n\thello <message/>\n");
        assert!(e.message.contains("text outside any stanza"), "{e}");

        let e = Script::parse("# T\n[Client] A\n\tpassword: p\n---\n").unwrap_err();
        assert!(e.message.contains("no 'jid:'"), "{e}");

        let e =
            Script::parse("# T\n[Client] A\n\tjid: a@b\n\tpassword: p\nA connects\n").unwrap_err();
        assert!(e.message.contains("dashes"), "{e}");
    }

    #[test]
    fn seed_scripts_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/scansion");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "scs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let s = Script::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(s.clients().len() >= 2);
                assert!(s.title.starts_with("MUC:"), "{}", s.title);
                n += 1;
            }
        }
        assert_eq!(n, 4);
    }
}
