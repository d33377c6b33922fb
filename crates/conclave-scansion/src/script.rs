//! The scansion script format: a header declaring clients, then a list of
//! actions (`connects`, `sends:`, `receives:`, `receives: nothing`,
//! `disconnects`), each with its line number for error reports.
//!
//! Variables are substituted when a step runs, not when the script is
//! parsed: `${Name's full JID}` is only known once the server has bound the
//! client, and `${NAME}` once an earlier stanza captured it with
//! `{scansion:capture:NAME}`. A block is parsed into its stanzas with a
//! placeholder where each variable is written ([`Stanza`]); the placeholders
//! are replaced in attribute values and text when the step runs
//! ([`Stanza::resolve`]). Parsing checks that every block is well-formed and
//! that every variable names a declared client or a name captured by an
//! earlier stanza of the script.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jid::{BareJid, Jid};
use minidom::{Element, Node};

use crate::matcher::CAPTURE_PREFIX;
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
    /// The block's stanzas, in order, with their variables unresolved.
    pub stanzas: Vec<Stanza>,
}

/// What a client variable refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// `${Name's JID}`: the bare JID from the header.
    BareJid,
    /// `${Name's full JID}`: the full JID bound by the server.
    FullJid,
}

/// A variable, as written between `${` and `}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// `${Name's JID}` or `${Name's full JID}`.
    Client {
        /// The client's name.
        name: String,
        /// Which of its JIDs.
        kind: VarKind,
    },
    /// `${NAME}`: the value last captured as `NAME`.
    Captured(String),
}

impl Var {
    /// Reads a variable from the text between `${` and `}`.
    pub fn parse(inner: &str) -> Var {
        if let Some(name) = inner.strip_suffix("'s full JID") {
            return Var::Client {
                name: name.to_owned(),
                kind: VarKind::FullJid,
            };
        }
        if let Some(name) = inner.strip_suffix("'s JID") {
            return Var::Client {
                name: name.to_owned(),
                kind: VarKind::BareJid,
            };
        }
        Var::Captured(inner.to_owned())
    }
}

/// A variable where a stanza uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct VarUse {
    /// What it refers to.
    pub var: Var,
    /// As written between `${` and `}`.
    pub written: String,
    /// The script line it is written on.
    pub line: usize,
    /// Its placeholder's number in the block.
    id: usize,
}

impl VarUse {
    /// Why this variable has no value, in one line; `at_line` adds the line
    /// it is written on after its name.
    fn no_value(&self, at_line: bool) -> String {
        let written = &self.written;
        let at = if at_line {
            format!(" (line {})", self.line)
        } else {
            String::new()
        };
        match &self.var {
            Var::Client {
                name,
                kind: VarKind::FullJid,
            } if at_line => format!(
                "variable '${{{written}}}'{at} has no value: is '{name}' declared and connected?"
            ),
            Var::Client { name, .. } => {
                format!("variable '${{{written}}}'{at}: no client '{name}' is declared")
            }
            Var::Captured(_) => format!(
                "unknown variable '${{{written}}}'{at}: neither a client's JID \
                 ('${{Name's JID}}', '${{Name's full JID}}') nor a name captured by an earlier stanza"
            ),
        }
    }
}

/// One stanza of a block, its variables not yet replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Stanza {
    /// The stanza with a placeholder for each variable.
    template: Element,
    /// The character that delimits placeholders (absent from the block).
    marker: char,
    /// The variables it uses, in the order they are written.
    vars: Vec<VarUse>,
    /// The names it captures (`{scansion:capture:NAME}`), each once.
    captures: Vec<String>,
}

impl Stanza {
    /// The variables the stanza uses, in the order they are written.
    pub fn vars(&self) -> &[VarUse] {
        &self.vars
    }

    /// The names the stanza captures when it matches, each once.
    pub fn captures(&self) -> &[String] {
        &self.captures
    }

    /// The stanza with every variable replaced by its value from `lookup`.
    /// Fails, naming the variable and its line, on one `lookup` has no value for.
    pub fn resolve(&self, lookup: impl Fn(&Var) -> Option<String>) -> Result<Element, String> {
        let mut values: HashMap<usize, String> = HashMap::with_capacity(self.vars.len());
        for used in &self.vars {
            let value = lookup(&used.var).ok_or_else(|| used.no_value(true))?;
            values.insert(used.id, value);
        }
        let mut el = self.template.clone();
        fill(&mut el, self.marker, &values);
        Ok(el)
    }
}

/// Replaces placeholders in the attribute values and text of `el` and its
/// descendants.
fn fill(el: &mut Element, marker: char, values: &HashMap<usize, String>) {
    for value in el.attrs_mut().values_mut() {
        if value.contains(marker) {
            *value = fill_str(value, marker, values);
        }
    }
    for node in el.nodes_mut() {
        match node {
            Node::Element(child) => fill(child, marker, values),
            Node::Text(text) if text.contains(marker) => *text = fill_str(text, marker, values),
            Node::Text(_) => {}
        }
    }
}

/// `text` with each `<marker>id<marker>` replaced by the value of `id`.
fn fill_str(text: &str, marker: char, values: &HashMap<usize, String>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split(marker).enumerate() {
        if i % 2 == 0 {
            out.push_str(piece);
        } else if let Some(value) = piece.parse().ok().and_then(|id: usize| values.get(&id)) {
            out.push_str(value);
        }
    }
    out
}

/// The placeholder numbers used in the attribute values and text of `el`
/// and its descendants, in document order.
fn placeholders(el: &Element, marker: char, out: &mut Vec<usize>) {
    let mut scan = |text: &str| {
        for (i, piece) in text.split(marker).enumerate() {
            if i % 2 == 1 {
                if let Ok(id) = piece.parse() {
                    out.push(id);
                }
            }
        }
    };
    for value in el.attrs().values() {
        scan(value);
    }
    for text in el.texts() {
        scan(text);
    }
    for child in el.children() {
        placeholders(child, marker, out);
    }
}

/// The captures written in `el` and its descendants: attribute values and
/// (trimmed) texts that are `{scansion:capture:NAME}`.
fn captures_in(el: &Element, out: &mut Vec<String>) -> Result<(), BadCapture> {
    for value in el.attrs().values() {
        if let Some(name) = capture_directive(value)? {
            out.push(name.to_owned());
        }
    }
    let text = el.text();
    if let Some(name) = capture_directive(text.trim())? {
        out.push(name.to_owned());
    }
    for child in el.children() {
        captures_in(child, out)?;
    }
    Ok(())
}

/// A capture written wrongly.
struct BadCapture {
    /// The attribute value or text, as parsed.
    value: String,
    /// Why, in one line.
    message: String,
}

/// The name in a value that is a capture, `None` if the value holds none;
/// an error for a capture that is not the whole value or has an unusable name.
fn capture_directive(value: &str) -> Result<Option<&str>, BadCapture> {
    let Some(at) = value.find(CAPTURE_PREFIX) else {
        return Ok(None);
    };
    let Some(name) = value
        .strip_prefix(CAPTURE_PREFIX)
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|_| at == 0)
    else {
        return Err(BadCapture {
            value: value.to_owned(),
            message: format!(
                "'{value}': a capture must be the whole attribute value or text, as '{CAPTURE_PREFIX}NAME}}'"
            ),
        });
    };
    let bad = if name.is_empty() {
        Some("the name is empty")
    } else if name.trim() != name {
        Some("the name starts or ends with a space")
    } else if name.contains(['{', '}', '$']) {
        Some("the name contains '{', '}' or '$'")
    } else if name.chars().any(is_private_use) {
        Some("the name contains a variable or a private-use character")
    } else if matches!(Var::parse(name), Var::Client { .. }) {
        Some("a name ending in \"'s JID\" or \"'s full JID\" is read as a client's JID")
    } else {
        None
    };
    match bad {
        Some(why) => Err(BadCapture {
            value: value.to_owned(),
            message: format!("'{value}': cannot capture: {why}"),
        }),
        None => Ok(Some(name)),
    }
}

fn is_private_use(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

/// The values captured so far, by name; a later capture replaces an
/// earlier one of the same name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    values: HashMap<String, String>,
}

impl Captures {
    /// No values yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the values captured by one matched stanza.
    pub fn store(&mut self, captured: impl IntoIterator<Item = (String, String)>) {
        self.values.extend(captured);
    }

    /// The value last captured as `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
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
        let mut captured = HashSet::new();
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
                    let receives = matches!(action, ActionKind::Receive);
                    check_captures(&block, receives, &mut captured)?;
                    i = end;
                    if !receives {
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
    let block_err = |m: String| err(first_line, m);

    // Each variable becomes a placeholder, `<marker>id<marker>`, with a
    // marker character the block does not contain: the block is then parsed
    // once, and the placeholders replaced in the tree when the step runs.
    let marker = ('\u{E000}'..='\u{F8FF}')
        .find(|c| !text.contains(*c))
        .ok_or_else(|| block_err("the block uses every private-use character".into()))?;
    let mut uses = Vec::new();
    let mut marked = String::with_capacity(text.len());
    for piece in pieces(&text).map_err(block_err)? {
        match piece {
            Piece::Text(t) => marked.push_str(t),
            Piece::Var { inner, offset } => {
                let id = uses.len();
                marked.push(marker);
                marked.push_str(&id.to_string());
                marked.push(marker);
                uses.push(VarUse {
                    var: Var::parse(inner),
                    written: inner.to_owned(),
                    line: first_line + text[..offset].matches('\n').count(),
                    id,
                });
            }
        }
    }
    let elements = parse_stanzas(&marked).map_err(block_err)?;

    let mut placed = vec![false; uses.len()];
    let mut stanzas = Vec::with_capacity(elements.len());
    for template in elements {
        let mut ids = Vec::new();
        placeholders(&template, marker, &mut ids);
        let mut vars = Vec::with_capacity(ids.len());
        for id in ids {
            if let (Some(used), Some(seen)) = (uses.get(id), placed.get_mut(id)) {
                *seen = true;
                vars.push(used.clone());
            }
        }
        let mut captures = Vec::new();
        captures_in(&template, &mut captures)
            .map_err(|bad| err(line_of(&text, first_line, &bad.value), bad.message))?;
        let mut seen = HashSet::new();
        if let Some(twice) = captures.iter().find(|n| !seen.insert(n.as_str())) {
            let directive = format!("{CAPTURE_PREFIX}{twice}}}");
            return Err(err(
                line_of(&text, first_line, &directive),
                format!("'{directive}' appears twice in one stanza"),
            ));
        }
        stanzas.push(Stanza {
            template,
            marker,
            vars,
            captures,
        });
    }
    if let Some(lost) = uses.iter().zip(&placed).find(|(_, seen)| !**seen) {
        let used = lost.0;
        return Err(err(
            used.line,
            format!(
                "variable '${{{}}}' is not in an attribute value or a text",
                used.written
            ),
        ));
    }
    for used in stanzas.iter().flat_map(|s| &s.vars) {
        if let Var::Client { name, .. } = &used.var {
            if !clients.iter().any(|c| &c.name == name) {
                return Err(err(used.line, used.no_value(false)));
            }
        }
    }
    Ok(Block {
        line: first_line,
        text,
        count: stanzas.len(),
        stanzas,
    })
}

/// The line of the block on which `needle` is first written; the block's
/// first line if it is not found as written (e.g. written with entities).
fn line_of(text: &str, first_line: usize, needle: &str) -> usize {
    text.find(needle)
        .map(|at| first_line + text[..at].matches('\n').count())
        .unwrap_or(first_line)
}

/// Checks, in script order, that every captured variable a block uses was
/// captured by an earlier stanza, and records the block's own captures.
fn check_captures(
    block: &Block,
    receives: bool,
    captured: &mut HashSet<String>,
) -> Result<(), ParseError> {
    for stanza in &block.stanzas {
        for used in &stanza.vars {
            if let Var::Captured(name) = &used.var {
                if !captured.contains(name) {
                    return Err(err(used.line, used.no_value(false)));
                }
            }
        }
        if let Some(name) = stanza.captures.first() {
            if !receives {
                let directive = format!("{CAPTURE_PREFIX}{name}}}");
                return Err(err(
                    line_of(&block.text, block.line, &directive),
                    format!("'{directive}': a capture has a meaning only in a 'receives:' block"),
                ));
            }
        }
        captured.extend(stanza.captures.iter().cloned());
    }
    Ok(())
}

enum Piece<'a> {
    Text(&'a str),
    Var { inner: &'a str, offset: usize },
}

/// Splits `text` into literal text and `${...}` variables.
fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("${") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unterminated variable '{}'", &rest[start..]));
        };
        out.push(Piece::Var {
            inner: &after[..end],
            offset: offset + start,
        });
        let consumed = start + 2 + end + 1;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

impl Block {
    /// The block's text with client variables replaced (a captured
    /// variable is an error here: run-time substitution goes through
    /// [`Block::stanzas`] and [`Stanza::resolve`]).
    pub fn resolve(
        &self,
        lookup: impl Fn(&str, VarKind) -> Option<String>,
    ) -> Result<String, String> {
        substitute(&self.text, lookup)
    }

    /// The block's text for a report: each variable `lookup` knows is
    /// replaced by its value, the others are left as written.
    pub fn display(&self, lookup: impl Fn(&Var) -> Option<String>) -> String {
        let Ok(pieces) = pieces(&self.text) else {
            return self.text.clone();
        };
        let mut out = String::with_capacity(self.text.len());
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { inner, .. } => match lookup(&Var::parse(inner)) {
                    Some(value) => out.push_str(&escape(&value)),
                    None => {
                        out.push_str("${");
                        out.push_str(inner);
                        out.push('}');
                    }
                },
            }
        }
        out
    }
}

/// Replaces `${Name's JID}` and `${Name's full JID}` in `text` using
/// `lookup`; values are escaped for XML. Fails on any other variable, and on
/// one `lookup` has no value for.
pub fn substitute(
    text: &str,
    lookup: impl Fn(&str, VarKind) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text)? {
        let inner = match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Var { inner, .. } => inner,
        };
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
    }
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

    /// A script with clients A and B, then `body`; the body starts on line 9.
    fn script(body: &str) -> Result<Script, ParseError> {
        Script::parse(&format!(
            "# T\n[Client] A\n\tjid: a@localhost\n\tpassword: p\n[Client] B\n\tjid: b@localhost\n\tpassword: p\n-----\n{body}"
        ))
    }

    fn block(s: &Script, step: usize) -> &Block {
        match &s.steps[step].action {
            Action::Send(b) | Action::Receive(b) => b,
            other => panic!("step {step} is {other:?}"),
        }
    }

    /// Values of the clients' JIDs, and of `captures`.
    fn values<'a>(captures: &'a Captures) -> impl Fn(&Var) -> Option<String> + 'a {
        move |var| match var {
            Var::Client {
                name,
                kind: VarKind::BareJid,
            } if name == "A" => Some("a@localhost".into()),
            Var::Client {
                name,
                kind: VarKind::FullJid,
            } if name == "A" => Some("a@localhost/r".into()),
            Var::Client { .. } => None,
            Var::Captured(name) => captures.get(name).map(str::to_owned),
        }
    }

    #[test]
    fn captures_in_attributes_and_text_are_listed_per_stanza() {
        let s = script(
            "A receives:\n\t<iq id='{scansion:capture:id}' type='result'>\n\t\t<time xmlns='urn:xmpp:time'><utc>\n\t\t\t{scansion:capture:stamp}\n\t\t</utc></time>\n\t</iq>\n\
             A sends:\n\t<iq id='${id}' type='get'><q xmlns='x'>at ${stamp}, ${A's JID}</q></iq>\n",
        )
        .unwrap();
        let received = block(&s, 0);
        assert_eq!(received.stanzas.len(), 1);
        let mut names = received.stanzas[0].captures().to_vec();
        names.sort();
        assert_eq!(names, ["id", "stamp"]);
        assert!(received.stanzas[0].vars().is_empty());

        let sent = &block(&s, 1).stanzas[0];
        let used: Vec<(&str, usize)> = sent
            .vars()
            .iter()
            .map(|v| (v.written.as_str(), v.line))
            .collect();
        assert_eq!(used, [("id", 16), ("stamp", 16), ("A's JID", 16)]);
        assert_eq!(sent.vars()[0].var, Var::Captured("id".into()));

        let mut captures = Captures::new();
        captures.store([
            ("id".to_owned(), "q'1<".to_owned()),
            ("stamp".to_owned(), "noon".to_owned()),
        ]);
        let el = sent.resolve(values(&captures)).unwrap();
        assert_eq!(el.attr("id"), Some("q'1<"), "a value is used as is");
        assert_eq!(
            el.get_child("q", "x").unwrap().text(),
            "at noon, a@localhost"
        );
    }

    #[test]
    fn a_variable_is_neither_a_jid_nor_captured_before_it_fails_with_its_line() {
        let reason = "unknown variable '${id}': neither a client's JID \
                      ('${Name's JID}', '${Name's full JID}') nor a name captured by an earlier stanza";
        // Never captured, written on the block's second line.
        let e = script("A sends:\n\t<iq type='get'>\n\t\t<q xmlns='x' v='${id}'/>\n\t</iq>\n")
            .unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (11, reason));
        // Used before the step that captures it.
        let e = script(
            "A sends:\n\t<iq id='${id}'/>\nA receives:\n\t<iq id='{scansion:capture:id}'/>\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (10, reason));
        // Used by the stanza that captures it: the capture is stored only
        // once that stanza has matched.
        let e =
            script("A receives:\n\t<iq id='{scansion:capture:id}'><q xmlns='x' v='${id}'/></iq>\n")
                .unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (10, reason));
        // Captured by another client's step: captures are the script's.
        script("B receives:\n\t<iq id='{scansion:capture:id}'/>\nA sends:\n\t<iq id='${id}'/>\n")
            .unwrap();
        // Client variables keep their own errors.
        let e = script("A sends:\n\t<m/>\n\t<m to='${C's full JID}'/>\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (11, "variable '${C's full JID}': no client 'C' is declared")
        );
    }

    #[test]
    fn captures_written_wrongly_are_refused() {
        let e = script("A sends:\n\t<iq id='{scansion:capture:id}'/>\n").unwrap_err();
        assert_eq!(e.line, 10);
        assert!(e.message.contains("only in a 'receives:' block"), "{e}");

        let e = script("A receives:\n\t<iq>\n\t\t<a v='{scansion:capture:x}'/>\n\t\t<b v='{scansion:capture:x}'/>\n\t</iq>\n")
            .unwrap_err();
        assert_eq!(e.line, 11);
        assert!(e.message.contains("appears twice in one stanza"), "{e}");

        let e = script("A receives:\n\t<iq>\n\t\t<a v='id-{scansion:capture:x}'/>\n\t</iq>\n")
            .unwrap_err();
        assert_eq!(e.line, 11);
        assert!(
            e.message.contains("the whole attribute value or text"),
            "{e}"
        );

        for bad in ["", "B's JID", "a}b", "${x}"] {
            let e = script(&format!(
                "A receives:\n\t<iq id='{{scansion:capture:x}}'/>\nA receives:\n\t<iq><a>{{scansion:capture:{bad}}}</a></iq>\n"
            ))
            .unwrap_err();
            assert!(
                e.message.contains("cannot capture") || e.message.contains("whole attribute"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn several_stanzas_per_block_each_resolved_in_turn() {
        let s = script(
            "A sends:\n\t<iq id='1'/>\n\t<iq id='2' to='${A's JID}'/>\n\
             A receives:\n\t<iq id='{scansion:capture:id}'/>\n\t<message><body>${id}</body></message>\n\t<iq id='${id}'/>\n",
        )
        .unwrap();
        let sent = block(&s, 0);
        assert_eq!((sent.count, sent.stanzas.len()), (2, 2));
        let none = Captures::new();
        let ids: Vec<String> = sent
            .stanzas
            .iter()
            .map(|st| {
                st.resolve(values(&none))
                    .unwrap()
                    .attr("id")
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["1", "2"]);

        let received = block(&s, 1);
        assert_eq!(received.stanzas.len(), 3);
        assert_eq!(received.stanzas[0].captures(), ["id"]);
        let e = received.stanzas[1].resolve(values(&none)).unwrap_err();
        assert!(
            e.starts_with("unknown variable '${id}' (line 14): neither a client's JID"),
            "{e}"
        );
        let mut captures = Captures::new();
        captures.store([("id".to_owned(), "7".to_owned())]);
        let body = received.stanzas[1].resolve(values(&captures)).unwrap();
        assert_eq!(body.get_child("body", NS_CLIENT).unwrap().text(), "7");
        assert_eq!(
            received.stanzas[2]
                .resolve(values(&captures))
                .unwrap()
                .attr("id"),
            Some("7")
        );
        // A report shows the block with what is known.
        assert_eq!(
            received.display(values(&none)),
            "<iq id='{scansion:capture:id}'/>\n<message><body>${id}</body></message>\n<iq id='${id}'/>"
        );
        assert!(received
            .display(values(&captures))
            .ends_with("<iq id='7'/>"));
    }

    #[test]
    fn a_later_capture_replaces_an_earlier_one() {
        use crate::matcher::match_capturing;
        let s = script(
            "A receives:\n\t<iq id='{scansion:capture:id}'/>\n\t<iq id='{scansion:capture:id}'/>\n\
             A sends:\n\t<iq id='${id}'/>\n",
        )
        .unwrap();
        let received = block(&s, 0);
        let mut captures = Captures::new();
        for (stanza, got) in received
            .stanzas
            .iter()
            .zip(["<iq id='first'/>", "<iq id='second'/>"])
        {
            let expected = stanza.resolve(values(&captures)).unwrap();
            let got = parse_stanzas(got).unwrap().remove(0);
            captures.store(match_capturing(&expected, &got, false).unwrap());
        }
        assert_eq!(captures.get("id"), Some("second"));
        let sent = block(&s, 1).stanzas[0].resolve(values(&captures)).unwrap();
        assert_eq!(sent.attr("id"), Some("second"));
    }

    #[test]
    fn full_jid_without_a_bound_client_fails_at_run_time_with_its_line() {
        let s = script("B sends:\n\t<m>\n\t\t<x to='${A's full JID}'/></m>\n").unwrap();
        let e = block(&s, 0).stanzas[0].resolve(|_| None).unwrap_err();
        assert_eq!(
            e,
            "variable '${A's full JID}' (line 11) has no value: is 'A' declared and connected?"
        );
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
