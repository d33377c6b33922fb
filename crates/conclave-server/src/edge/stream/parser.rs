//! Incremental parser for the peer's side of an XML stream: the stream
//! header, then one top-level element at a time, with the stream limits
//! (stanza size, nesting depth, attributes per element) and restricted XML
//! enforced. The header is bounded like a stanza: its bytes count against
//! the stanza size limit and its attributes against the attribute limit.
//!
//! Duplicate attributes are found with a set: rxml checks them only in its
//! namespace-resolving parser, and minidom's tree builder reads the raw
//! events, so the check is done here.
//!
//! Bytes are fed in arbitrary chunks; all state lives in [`StreamParser`],
//! so the I/O layer can stop between any two chunks.

use std::collections::{BTreeMap, HashSet};

use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Parse, RawEvent, RawParser, WithOptions};
use xmpp_parsers::stream_error::DefinedCondition;

use super::StreamLimits;

/// Namespace of the stream root element.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";
/// Default namespace of a client stream.
pub const NS_CLIENT: &str = "jabber:client";

/// The peer's stream header (`<stream:stream ...>`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    pub to: Option<String>,
    pub from: Option<String>,
    pub version: Option<String>,
    pub lang: Option<String>,
}

/// One item read from the stream.
#[derive(Debug)]
pub enum Item {
    Header(StreamHeader),
    Stanza(Element),
    /// `</stream:stream>`.
    End,
}

/// A violation of the stream rules: the stream error to send.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub condition: DefinedCondition,
    pub text: String,
}

impl ParseError {
    fn new(condition: DefinedCondition, text: impl Into<String>) -> Self {
        ParseError {
            condition,
            text: text.into(),
        }
    }
}

/// An attribute name: prefix and local name.
type AttrName = (Option<String>, String);

/// The header being read: root name and its attributes so far.
struct PendingHeader {
    prefix: Option<String>,
    name: String,
    attrs: BTreeMap<AttrName, String>,
}

enum State {
    /// Before (or inside) the root element's start tag.
    Header(Option<PendingHeader>),
    /// Inside the stream, between or inside top-level elements.
    Body,
    /// The root element was closed, or an error was reported.
    Done,
}

/// Incremental parser of one stream (until a restart).
pub struct StreamParser {
    raw: RawParser,
    limits: StreamLimits,
    state: State,
    /// Namespace declarations of the stream header, known to every stanza.
    prefixes: BTreeMap<Option<String>, String>,
    builder: Option<TreeBuilder>,
    /// Depth inside the current top-level element (0 = between stanzas).
    depth: usize,
    /// Bytes of the current top-level element, or of the stream header.
    stanza_bytes: usize,
    /// Attribute names of the element head being read (duplicate check).
    head_attrs: HashSet<AttrName>,
    /// Whether any non-whitespace byte reached the XML parser yet.
    started: bool,
}

impl StreamParser {
    pub fn new(limits: StreamLimits) -> Self {
        // A single token (name, attribute value, text chunk) may not exceed
        // the stanza limit; this also bounds what the lexer buffers.
        let options = rxml::Options {
            max_token_length: limits.max_stanza_bytes.max(1024),
            ..Default::default()
        };
        StreamParser {
            raw: <RawParser as WithOptions>::with_options(options),
            limits,
            state: State::Header(None),
            prefixes: BTreeMap::new(),
            builder: None,
            depth: 0,
            stanza_bytes: 0,
            head_attrs: HashSet::new(),
            started: false,
        }
    }

    /// Frees the XML lexer's scratch buffers and other temporaries that an
    /// idle stream does not need (they grow again on the next stanza).
    pub fn release_temporaries(&mut self) {
        self.raw.release_temporaries();
        if self.builder.is_none() {
            self.head_attrs = HashSet::new();
        }
    }

    /// Parses from `buf` (advancing it) until one item is complete.
    /// `Ok(None)`: every byte was consumed and more are needed.
    pub fn feed(&mut self, buf: &mut &[u8]) -> Result<Option<Item>, ParseError> {
        if matches!(self.state, State::Done) {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(ParseError::new(
                DefinedCondition::NotWellFormed,
                "data after the end of the stream",
            ));
        }
        if !self.started {
            // Whitespace keepalives before the header (e.g. just before a
            // stream restart) are skipped: the XML parser would refuse them.
            while let Some((&b, rest)) = buf.split_first() {
                if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    break;
                }
                *buf = rest;
            }
            if buf.is_empty() {
                return Ok(None);
            }
            self.started = true;
        }
        loop {
            let event = match self.raw.parse(buf, false) {
                Ok(Some(ev)) => ev,
                Ok(None) => {
                    self.state = State::Done;
                    return Ok(Some(Item::End));
                }
                Err(EndOrError::NeedMoreData) => return Ok(None),
                Err(EndOrError::Error(e)) => {
                    self.state = State::Done;
                    return Err(map_xml_error(&e));
                }
            };
            let result = match self.state {
                State::Header(_) => self.header_event(event),
                State::Body => self.body_event(event),
                State::Done => Ok(None),
            };
            match result {
                Ok(Some(item)) => return Ok(Some(item)),
                Ok(None) => {}
                Err(e) => {
                    self.state = State::Done;
                    return Err(e);
                }
            }
        }
    }

    fn header_event(&mut self, event: RawEvent) -> Result<Option<Item>, ParseError> {
        self.stanza_bytes = self.stanza_bytes.saturating_add(event.metrics().len());
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            return Err(ParseError::new(
                DefinedCondition::PolicyViolation,
                format!(
                    "stream header larger than the limit of {} bytes",
                    self.limits.max_stanza_bytes
                ),
            ));
        }
        let max_attributes = self.limits.max_attributes;
        let State::Header(pending) = &mut self.state else {
            return Ok(None);
        };
        match event {
            RawEvent::XmlDeclaration(..) => Ok(None),
            RawEvent::ElementHeadOpen(_, (prefix, name)) => {
                *pending = Some(PendingHeader {
                    prefix: prefix.map(|p| p.as_str().to_owned()),
                    name: name.as_str().to_owned(),
                    attrs: BTreeMap::new(),
                });
                Ok(None)
            }
            RawEvent::Attribute(_, (prefix, name), value) => {
                if let Some(p) = pending.as_mut() {
                    if p.attrs.len() >= max_attributes {
                        return Err(too_many_attributes("the stream header", max_attributes));
                    }
                    let key = (
                        prefix.map(|p| p.as_str().to_owned()),
                        name.as_str().to_owned(),
                    );
                    if p.attrs.insert(key, value).is_some() {
                        return Err(ParseError::new(
                            DefinedCondition::NotWellFormed,
                            "duplicate attribute in the stream header",
                        ));
                    }
                }
                Ok(None)
            }
            RawEvent::ElementHeadClose(_) => {
                let Some(p) = pending.take() else {
                    return Err(ParseError::new(
                        DefinedCondition::NotWellFormed,
                        "bad stream header",
                    ));
                };
                let header = self.finish_header(p)?;
                self.state = State::Body;
                Ok(Some(Item::Header(header)))
            }
            RawEvent::ElementFoot(_) | RawEvent::Text(..) => Err(ParseError::new(
                DefinedCondition::NotWellFormed,
                "expected a stream header",
            )),
        }
    }

    fn finish_header(&mut self, p: PendingHeader) -> Result<StreamHeader, ParseError> {
        let mut prefixes = BTreeMap::new();
        let mut header = StreamHeader::default();
        for ((prefix, name), value) in p.attrs {
            match (prefix.as_deref(), name.as_str()) {
                (None, "xmlns") => {
                    prefixes.insert(None, value);
                }
                (Some("xmlns"), decl) => {
                    prefixes.insert(Some(decl.to_owned()), value);
                }
                (None, "to") => header.to = Some(value),
                (None, "from") => header.from = Some(value),
                (None, "version") => header.version = Some(value),
                (Some("xml"), "lang") => header.lang = Some(value),
                _ => {}
            }
        }
        let root_ns = prefixes.get(&p.prefix).map(String::as_str);
        if p.name != "stream" || root_ns != Some(NS_STREAM) {
            return Err(ParseError::new(
                DefinedCondition::InvalidNamespace,
                format!("the stream root must be <stream> in the {NS_STREAM} namespace"),
            ));
        }
        if prefixes.get(&None).map(String::as_str) != Some(NS_CLIENT) {
            return Err(ParseError::new(
                DefinedCondition::InvalidNamespace,
                format!("the default namespace of a client stream must be {NS_CLIENT}"),
            ));
        }
        let major = header
            .version
            .as_deref()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.trim().parse::<u32>().ok());
        if major != Some(1) {
            return Err(ParseError::new(
                DefinedCondition::UnsupportedVersion,
                "only XMPP stream version 1.0 is supported",
            ));
        }
        self.prefixes = prefixes;
        Ok(header)
    }

    fn body_event(&mut self, event: RawEvent) -> Result<Option<Item>, ParseError> {
        if self.depth == 0 {
            match &event {
                RawEvent::Text(_, text) => {
                    if xml_whitespace(text.as_str()) {
                        // Whitespace keepalive.
                        return Ok(None);
                    }
                    return Err(ParseError::new(
                        DefinedCondition::BadFormat,
                        "text is not allowed between stanzas",
                    ));
                }
                RawEvent::ElementFoot(_) => {
                    self.state = State::Done;
                    return Ok(Some(Item::End));
                }
                RawEvent::ElementHeadOpen(..) => {
                    // Two entries: the stream's declarations stay in scope
                    // without being copied onto the stanza itself.
                    let empty: BTreeMap<Option<String>, String> = BTreeMap::new();
                    self.builder = Some(
                        TreeBuilder::new()
                            .with_prefixes_stack(vec![self.prefixes.clone().into(), empty.into()]),
                    );
                    self.stanza_bytes = 0;
                }
                _ => {}
            }
        }
        self.stanza_bytes = self.stanza_bytes.saturating_add(event.metrics().len());
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            return Err(ParseError::new(
                DefinedCondition::PolicyViolation,
                format!(
                    "stanza larger than the limit of {} bytes",
                    self.limits.max_stanza_bytes
                ),
            ));
        }
        let mut finished = false;
        match &event {
            RawEvent::ElementHeadOpen(..) => {
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(ParseError::new(
                        DefinedCondition::PolicyViolation,
                        format!(
                            "elements nested deeper than the limit of {}",
                            self.limits.max_depth
                        ),
                    ));
                }
                self.head_attrs.clear();
            }
            RawEvent::Attribute(_, (prefix, name), _) => {
                if self.head_attrs.len() >= self.limits.max_attributes {
                    return Err(too_many_attributes(
                        "an element",
                        self.limits.max_attributes,
                    ));
                }
                let key = (
                    prefix.as_ref().map(|p| p.as_str().to_owned()),
                    name.as_str().to_owned(),
                );
                if !self.head_attrs.insert(key) {
                    return Err(ParseError::new(
                        DefinedCondition::NotWellFormed,
                        "duplicate attribute",
                    ));
                }
            }
            RawEvent::ElementFoot(_) => {
                self.depth -= 1;
                finished = self.depth == 0;
            }
            _ => {}
        }
        let Some(builder) = self.builder.as_mut() else {
            return Ok(None);
        };
        builder.process_event(event).map_err(|e| match e {
            minidom::Error::MissingNamespace => ParseError::new(
                DefinedCondition::BadNamespacePrefix,
                "undeclared namespace prefix",
            ),
            other => ParseError::new(DefinedCondition::NotWellFormed, other.to_string()),
        })?;
        if finished {
            let root = self.builder.take().and_then(|b| b.root);
            return match root {
                Some(el) => Ok(Some(Item::Stanza(el))),
                None => Err(ParseError::new(
                    DefinedCondition::InternalServerError,
                    "could not build the stanza",
                )),
            };
        }
        Ok(None)
    }
}

/// The limit on attributes per element was reached (before the attribute
/// over the limit is stored or checked).
fn too_many_attributes(what: &str, limit: usize) -> ParseError {
    ParseError::new(
        DefinedCondition::PolicyViolation,
        format!("{what} has more attributes than the limit of {limit}"),
    )
}

fn xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn map_xml_error(e: &rxml::Error) -> ParseError {
    use rxml::Error as E;
    match e {
        E::RestrictedXml(what)
            if *what == "long name or reference" || *what == "event too long" =>
        {
            ParseError::new(
                DefinedCondition::PolicyViolation,
                format!("XML token too long ({what})"),
            )
        }
        E::RestrictedXml(what) => ParseError::new(
            DefinedCondition::RestrictedXml,
            format!("restricted XML: {what} are not allowed"),
        ),
        E::UndeclaredEntity => ParseError::new(
            DefinedCondition::RestrictedXml,
            "entity references other than the predefined ones are not allowed",
        ),
        E::UndeclaredNamespacePrefix(_) => {
            ParseError::new(DefinedCondition::BadNamespacePrefix, e.to_string())
        }
        E::InvalidUtf8Byte(_) => ParseError::new(
            DefinedCondition::UnsupportedEncoding,
            "the stream is not valid UTF-8",
        ),
        other => ParseError::new(DefinedCondition::NotWellFormed, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
        xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    fn limits() -> StreamLimits {
        StreamLimits {
            max_stanza_bytes: 4096,
            max_depth: 8,
            max_attributes: 1024,
            max_bytes_per_second: 0,
        }
    }

    /// Feeds `chunks` one after the other; returns the items and the error.
    fn run(chunks: &[&[u8]], limits: StreamLimits) -> (Vec<Item>, Option<ParseError>) {
        let mut p = StreamParser::new(limits);
        let mut items = Vec::new();
        for chunk in chunks {
            let mut buf = *chunk;
            loop {
                match p.feed(&mut buf) {
                    Ok(Some(item)) => items.push(item),
                    Ok(None) => break,
                    Err(e) => return (items, Some(e)),
                }
            }
            assert!(buf.is_empty(), "parser left bytes unconsumed");
        }
        (items, None)
    }

    fn stanzas(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Stanza(el) => {
                    Some(String::from_utf8(crate::edge::stream::serialize(el)).unwrap())
                }
                _ => None,
            })
            .collect()
    }

    fn error_of(doc: &str) -> ParseError {
        let (_, err) = run(&[doc.as_bytes()], limits());
        err.unwrap_or_else(|| panic!("expected a stream error for {doc}"))
    }

    #[test]
    fn header_then_stanzas_then_end() {
        let doc = format!(
            "{HEADER}<message to='a@b' type='chat'><body>hi &amp; bye</body></message> \n\
             <iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq></stream:stream>"
        );
        let (items, err) = run(&[doc.as_bytes()], limits());
        assert!(err.is_none(), "{err:?}");
        let Item::Header(h) = &items[0] else {
            panic!("no header")
        };
        assert_eq!(h.to.as_deref(), Some("localhost"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        let Item::Stanza(msg) = &items[1] else {
            panic!("no message")
        };
        assert!(msg.is("message", NS_CLIENT));
        assert_eq!(msg.attr("to"), Some("a@b"));
        assert_eq!(msg.get_child("body", NS_CLIENT).unwrap().text(), "hi & bye");
        let Item::Stanza(iq) = &items[2] else {
            panic!("no iq")
        };
        assert!(iq.has_child("query", "jabber:iq:roster"));
        assert!(matches!(items[3], Item::End));
        assert_eq!(items.len(), 4);
    }

    #[test]
    fn every_split_point_gives_the_same_stanzas() {
        let doc = format!(
            "{HEADER}<message to='a@b'><body>h\u{e9}llo \u{1F600} &lt;x&gt;</body><x xmlns='urn:x' a='1'/></message> \
             <presence/><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>\n</stream:stream>"
        );
        let bytes = doc.as_bytes();
        let (whole, err) = run(&[bytes], limits());
        assert!(err.is_none());
        let expected = stanzas(&whole);
        assert_eq!(expected.len(), 3);
        for i in 0..=bytes.len() {
            let (items, err) = run(&[&bytes[..i], &bytes[i..]], limits());
            assert!(err.is_none(), "split at {i}: {err:?}");
            assert_eq!(stanzas(&items), expected, "split at {i}");
            assert!(matches!(items.last(), Some(Item::End)), "split at {i}");
        }
        // Byte by byte.
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let (items, err) = run(&chunks, limits());
        assert!(err.is_none());
        assert_eq!(stanzas(&items), expected);
    }

    #[test]
    fn whitespace_keepalives_are_ignored() {
        let doc = format!("{HEADER} \n\t <presence/>\n\n   <presence/>  ");
        let (items, err) = run(&[doc.as_bytes(), b"\n", b" "], limits());
        assert!(err.is_none());
        assert_eq!(stanzas(&items).len(), 2);
        assert_eq!(items.len(), 3);
    }

    #[test]
    fn stanzas_keep_the_stream_namespace_only_once() {
        let doc = format!("{HEADER}<message><body>x</body></message>");
        let (items, _) = run(&[doc.as_bytes()], limits());
        let out = stanzas(&items).remove(0);
        assert!(!out.contains("xmlns:stream"), "{out}");
        assert_eq!(out.matches("jabber:client").count(), 1, "{out}");
    }

    #[test]
    fn oversized_stanza_is_a_policy_violation() {
        let body = "x".repeat(5000);
        let e = error_of(&format!("{HEADER}<message><body>{body}</body></message>"));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
        assert!(e.text.contains("4096"), "{}", e.text);
        // Many small attributes too.
        let attrs: String = (0..600).map(|i| format!(" a{i}='v'")).collect();
        let e = error_of(&format!("{HEADER}<message{attrs}/>"));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
        // Just under the limit passes, and the count restarts per stanza.
        let body = "x".repeat(3900);
        let doc = format!(
            "{HEADER}<message><body>{body}</body></message><message><body>{body}</body></message>"
        );
        let (items, err) = run(&[doc.as_bytes()], limits());
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stanzas(&items).len(), 2);
    }

    #[test]
    fn too_deep_nesting_is_a_policy_violation() {
        let ok = format!("{HEADER}<a><b><c><d><e><f><g><h/></g></f></e></d></c></b></a>");
        assert!(run(&[ok.as_bytes()], limits()).1.is_none());
        let e = error_of(&format!("{HEADER}{}", "<a>".repeat(9)));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
        assert!(e.text.contains("nested"), "{}", e.text);
    }

    #[test]
    fn dtd_entities_and_processing_instructions_are_restricted() {
        for doc in [
            "<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]><stream:stream/>".to_owned(),
            format!("{HEADER}<message><body>&x;</body></message>"),
            format!("{HEADER}<?pi data?>"),
            format!("{HEADER}<message><!-- comment --></message>"),
        ] {
            let e = error_of(&doc);
            assert!(
                matches!(
                    e.condition,
                    DefinedCondition::RestrictedXml | DefinedCondition::NotWellFormed
                ),
                "{doc}: {e:?}"
            );
        }
        let e = error_of(&format!("{HEADER}<message><body>&x;</body></message>"));
        assert_eq!(e.condition, DefinedCondition::RestrictedXml);
        let e = error_of(&format!("{HEADER}<?pi data?>"));
        assert_eq!(e.condition, DefinedCondition::RestrictedXml);
    }

    #[test]
    fn malformed_xml_is_not_well_formed() {
        for doc in [
            format!("{HEADER}<message></presence>"),
            format!("{HEADER}<message a='1' a='2'/>"),
            format!("{HEADER}<<message/>"),
            format!("{HEADER}<message a=1/>"),
        ] {
            let e = error_of(&doc);
            assert_eq!(e.condition, DefinedCondition::NotWellFormed, "{doc}");
        }
        let e = error_of(&format!("{HEADER}<foo:message/>"));
        assert_eq!(e.condition, DefinedCondition::BadNamespacePrefix);
        let e = error_of(&format!("{HEADER}stray text<presence/>"));
        assert_eq!(e.condition, DefinedCondition::BadFormat);
    }

    #[test]
    fn bad_stream_headers() {
        let e = error_of("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
        assert_eq!(e.condition, DefinedCondition::InvalidNamespace);
        let e = error_of(
            "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0'>",
        );
        assert_eq!(e.condition, DefinedCondition::InvalidNamespace);
        let e = error_of("<stream xmlns='jabber:client' version='1.0'>");
        assert_eq!(e.condition, DefinedCondition::InvalidNamespace);
        let e = error_of("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='2.0'>");
        assert_eq!(e.condition, DefinedCondition::UnsupportedVersion);
        let e = error_of(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        assert_eq!(e.condition, DefinedCondition::UnsupportedVersion);
        // Whitespace before a header without XML declaration is fine
        // (a keepalive sent just before a stream restart).
        let (items, err) = run(
            &[b" \n<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"],
            limits(),
        );
        assert!(err.is_none(), "{err:?}");
        assert!(matches!(items.first(), Some(Item::Header(_))));
        // Another prefix for the stream namespace is fine.
        let (items, err) = run(
            &[b"<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' version='1.0'><presence/></s:stream>"],
            limits(),
        );
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stanzas(&items).len(), 1);
        assert!(matches!(items.last(), Some(Item::End)));
    }

    /// Feeds `doc` at once; returns the error and how many bytes the
    /// parser had taken from the buffer when it stopped.
    fn error_and_consumed(doc: &str, limits: StreamLimits) -> (ParseError, usize) {
        let mut p = StreamParser::new(limits);
        let mut buf = doc.as_bytes();
        loop {
            match p.feed(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error for a document of {} bytes", doc.len()),
                Err(e) => return (e, doc.len() - buf.len()),
            }
        }
    }

    fn attribute_limits(max_attributes: usize) -> StreamLimits {
        StreamLimits {
            max_stanza_bytes: 1 << 20,
            max_depth: 8,
            max_attributes,
            max_bytes_per_second: 0,
        }
    }

    /// ` a00000='v'`: every attribute the same length.
    fn numbered_attrs(n: usize) -> String {
        (0..n).map(|i| format!(" a{i:05}='v'")).collect()
    }
    const ATTR_LEN: usize = " a00000='v'".len();

    const HEADER_OPEN: &str = "<stream:stream to='localhost' version='1.0' \
        xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";

    #[test]
    fn header_attributes_are_limited_before_the_rest_is_read() {
        // Four attributes in HEADER_OPEN, so twelve of these fit under 16.
        let ok = format!("{HEADER_OPEN}{}>", numbered_attrs(12));
        let (items, err) = run(&[ok.as_bytes()], attribute_limits(16));
        assert!(err.is_none(), "{err:?}");
        assert!(matches!(items.first(), Some(Item::Header(_))));

        let doc = format!("{HEADER_OPEN}{}>", numbered_attrs(5000));
        let (e, consumed) = error_and_consumed(&doc, attribute_limits(16));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
        assert!(e.text.contains("stream header"), "{}", e.text);
        assert!(e.text.contains("16"), "{}", e.text);
        // Parsing stopped at the 17th attribute: not one more was read.
        let limit = HEADER_OPEN.len() + 13 * ATTR_LEN;
        assert!(
            consumed <= limit,
            "read {consumed} bytes, more than {limit}"
        );
    }

    #[test]
    fn header_bytes_count_against_the_stanza_limit() {
        // Every token is under the token limit; together they exceed 4096.
        let attrs: String = (0..6)
            .map(|i| format!(" a{i}='{}'", "v".repeat(1000)))
            .collect();
        let e = error_of(&format!("{HEADER_OPEN}{attrs}>"));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
        assert!(e.text.contains("stream header"), "{}", e.text);
        assert!(e.text.contains("4096"), "{}", e.text);
        // Under the limit, the same header is fine.
        let attrs: String = (0..3)
            .map(|i| format!(" a{i}='{}'", "v".repeat(1000)))
            .collect();
        let (items, err) = run(&[format!("{HEADER_OPEN}{attrs}>").as_bytes()], limits());
        assert!(err.is_none(), "{err:?}");
        assert!(matches!(items.first(), Some(Item::Header(_))));
    }

    #[test]
    fn element_attributes_are_limited_before_the_rest_is_read() {
        let header = format!("{HEADER_OPEN}>");
        // Exactly at the limit, on the stanza and on a child: fine.
        let ok = format!(
            "{header}<message{}><x xmlns='urn:x'{}/></message>",
            numbered_attrs(16),
            numbered_attrs(15)
        );
        let (items, err) = run(&[ok.as_bytes()], attribute_limits(16));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stanzas(&items).len(), 1);

        for doc in [
            format!("{header}<message{}/>", numbered_attrs(5000)),
            format!("{header}<message><body{}/></message>", numbered_attrs(5000)),
        ] {
            let (e, consumed) = error_and_consumed(&doc, attribute_limits(16));
            assert_eq!(e.condition, DefinedCondition::PolicyViolation);
            assert!(e.text.contains("attributes"), "{}", e.text);
            assert!(e.text.contains("16"), "{}", e.text);
            let limit = header.len() + "<message><body".len() + 17 * ATTR_LEN;
            assert!(
                consumed <= limit,
                "read {consumed} bytes, more than {limit}"
            );
        }
        // Namespace declarations are attributes too.
        let decls: String = (0..17).map(|i| format!(" xmlns:p{i}='urn:p{i}'")).collect();
        let (e, _) =
            error_and_consumed(&format!("{header}<message{decls}/>"), attribute_limits(16));
        assert_eq!(e.condition, DefinedCondition::PolicyViolation);
    }

    #[test]
    fn duplicate_attributes_are_found_anywhere_in_the_head() {
        let header = format!("{HEADER_OPEN}>");
        for doc in [
            format!("{header}<message{} a00003='again'/>", numbered_attrs(15)),
            format!(
                "{header}<message xmlns:p='urn:p' p:a='1'{} p:a='2'/>",
                numbered_attrs(10)
            ),
            format!(
                "{header}<message xmlns:p='urn:p'{} xmlns:p='urn:q'/>",
                numbered_attrs(10)
            ),
            format!("{HEADER_OPEN}{} a00000='again'>", numbered_attrs(10)),
            format!("{HEADER_OPEN} version='1.0'>"),
        ] {
            let (e, _) = error_and_consumed(&doc, attribute_limits(32));
            assert_eq!(e.condition, DefinedCondition::NotWellFormed, "{doc}");
            assert!(e.text.contains("duplicate"), "{doc}: {}", e.text);
        }
        // The same local name under two prefixes is two attributes.
        let doc = format!("{header}<message xmlns:p='urn:p' a='1' p:a='2'/>");
        let (items, err) = run(&[doc.as_bytes()], attribute_limits(32));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(stanzas(&items).len(), 1);
    }

    #[test]
    fn nothing_is_accepted_after_an_error() {
        let mut p = StreamParser::new(limits());
        let mut buf = &b"<<"[..];
        assert!(p.feed(&mut buf).is_err());
        let mut buf = &b"<presence/>"[..];
        assert!(p.feed(&mut buf).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // xorshift: deterministic pseudo-random inputs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"<>/='\" &;:?!-[]abcxmlns\n\t\xc3\xa9\xff\x00";
        for round in 0..2000 {
            let len = (next() % 200) as usize;
            let mut input: Vec<u8> = if round % 2 == 0 {
                HEADER.as_bytes().to_vec()
            } else {
                Vec::new()
            };
            for _ in 0..len {
                let r = next();
                input.push(if r % 4 == 0 {
                    (r >> 8) as u8
                } else {
                    alphabet[((r >> 8) as usize) % alphabet.len()]
                });
            }
            let split = (next() as usize) % (input.len() + 1);
            let _ = run(&[&input[..split], &input[split..]], limits());
        }
    }
}
