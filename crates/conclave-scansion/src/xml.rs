//! Incremental parsing of an XMPP stream: bytes in, stream header and
//! top-level elements (stanzas and nonzas) out.
//!
//! Built on `rxml`'s raw parser and `minidom`'s tree builder; no I/O here, so
//! the client can feed it from any transport and stay cancel-safe.

use minidom::tree_builder::TreeBuilder;
use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Parse, RawEvent, RawParser};

/// Namespace of the stream root and its `<stream:*>` children.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";

/// Largest amount of unparsed data, or of one top-level element, accepted.
const MAX_ELEMENT_BYTES: usize = 16 * 1024 * 1024;

/// Deepest nesting accepted (the stream root counts as one level).
const MAX_DEPTH: usize = 128;

/// One thing read from the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The `<stream:stream>` opening tag, with its attributes.
    Header {
        /// The stream id the server chose.
        id: Option<String>,
        /// The server's domain.
        from: Option<String>,
    },
    /// A complete child of the stream root.
    Element(Element),
    /// `</stream:stream>` or the end of the transport.
    End,
}

/// Why the stream could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML from the server: {0}")]
    Syntax(String),
    /// Not namespace-well-formed (e.g. an undeclared prefix).
    #[error("invalid XML from the server: {0}")]
    Tree(#[from] minidom::Error),
    /// Elements nested deeper than the limit.
    #[error("elements from the server are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// An element larger than the limit.
    #[error("an element from the server exceeds {MAX_ELEMENT_BYTES} bytes")]
    TooLarge,
    /// The transport ended in the middle of the stream.
    #[error("the connection closed in the middle of an element")]
    Truncated,
}

/// Parser state for one stream (a stream restart needs a new one).
pub struct StreamParser {
    parser: RawParser,
    builder: TreeBuilder,
    pending: Vec<u8>,
    eof: bool,
    header_seen: bool,
    ended: bool,
    bytes_in_element: usize,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser waiting for a stream header.
    pub fn new() -> Self {
        StreamParser {
            parser: RawParser::new(),
            builder: TreeBuilder::new(),
            pending: Vec::new(),
            eof: false,
            header_seen: false,
            ended: false,
            bytes_in_element: 0,
        }
    }

    /// Appends bytes received from the transport.
    pub fn feed(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// Marks the end of the transport.
    pub fn feed_eof(&mut self) {
        self.eof = true;
    }

    /// Whether bytes received are still waiting to be parsed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next complete event, or `Ok(None)` if more data is needed.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmlError> {
        if self.ended {
            return Ok(Some(StreamEvent::End));
        }
        loop {
            let before = self.pending.len();
            let mut slice: &[u8] = &self.pending;
            let result = self.parser.parse(&mut slice, self.eof);
            let consumed = before - slice.len();
            self.pending.drain(..consumed);
            self.bytes_in_element = self.bytes_in_element.saturating_add(consumed);
            if self.bytes_in_element > MAX_ELEMENT_BYTES {
                return Err(XmlError::TooLarge);
            }
            match result {
                Ok(Some(event)) => {
                    if let Some(out) = self.process(event)? {
                        return Ok(Some(out));
                    }
                }
                Ok(None) => {
                    // End of input. Clean only if the root was closed.
                    self.ended = true;
                    if self.builder.depth() > 1 {
                        return Err(XmlError::Truncated);
                    }
                    return Ok(Some(StreamEvent::End));
                }
                Err(EndOrError::NeedMoreData) => {
                    if self.eof {
                        self.ended = true;
                        if self.builder.depth() > 1 {
                            return Err(XmlError::Truncated);
                        }
                        return Ok(Some(StreamEvent::End));
                    }
                    return Ok(None);
                }
                Err(EndOrError::Error(e)) => return Err(XmlError::Syntax(e.to_string())),
            }
        }
    }

    fn process(&mut self, event: RawEvent) -> Result<Option<StreamEvent>, XmlError> {
        let is_head_close = matches!(event, RawEvent::ElementHeadClose(_));
        let is_foot = matches!(event, RawEvent::ElementFoot(_));
        if matches!(event, RawEvent::Text(..)) && self.builder.depth() <= 1 {
            // Whitespace between top-level elements (keep-alives) is dropped.
            return Ok(None);
        }
        self.builder.process_event(event)?;
        let depth = self.builder.depth();
        if depth > MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        if is_head_close && depth == 1 && !self.header_seen {
            self.header_seen = true;
            self.bytes_in_element = 0;
            let root = self.builder.top();
            let id = root.and_then(|r| r.attr("id")).map(str::to_owned);
            let from = root.and_then(|r| r.attr("from")).map(str::to_owned);
            return Ok(Some(StreamEvent::Header { id, from }));
        }
        if is_foot {
            if depth == 1 {
                self.bytes_in_element = 0;
                if let Some(child) = self.builder.unshift_child() {
                    return Ok(Some(StreamEvent::Element(child)));
                }
            } else if depth == 0 {
                self.ended = true;
                return Ok(Some(StreamEvent::End));
            }
        }
        Ok(None)
    }
}

/// Escapes a string for use in an attribute value or text.
pub fn escape(text: &str) -> String {
    String::from_utf8_lossy(&minidom::element::escape(text.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='localhost' version='1.0'>";

    fn drain(p: &mut StreamParser) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        while let Some(ev) = p.next_event().unwrap() {
            let end = ev == StreamEvent::End;
            out.push(ev);
            if end {
                break;
            }
        }
        out
    }

    #[test]
    fn header_then_stanzas_byte_by_byte() {
        let doc = format!(
            "{HEADER} <message to='a@b'><body>hi &amp; bye</body></message>\n<iq id='1' type='get'/></stream:stream>"
        );
        let mut p = StreamParser::new();
        let mut events = Vec::new();
        for b in doc.as_bytes() {
            p.feed(std::slice::from_ref(b));
            events.extend(drain(&mut p));
        }
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(
            events[0],
            StreamEvent::Header {
                id: Some("abc".into()),
                from: Some("localhost".into())
            }
        );
        let StreamEvent::Element(msg) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(msg.name(), "message");
        assert_eq!(msg.ns(), "jabber:client");
        assert_eq!(
            msg.get_child("body", "jabber:client").unwrap().text(),
            "hi & bye"
        );
        let StreamEvent::Element(iq) = &events[2] else {
            panic!("{events:?}")
        };
        assert_eq!(iq.attr("id"), Some("1"));
        assert_eq!(events[3], StreamEvent::End);
    }

    #[test]
    fn stream_prefixed_children_keep_their_namespace() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(
            b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        );
        let events = drain(&mut p);
        let StreamEvent::Element(f) = &events[1] else {
            panic!("{events:?}")
        };
        assert!(f.is("features", NS_STREAM));
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"<message><body>");
        assert!(matches!(
            p.next_event(),
            Ok(Some(StreamEvent::Header { .. }))
        ));
        assert!(p.next_event().unwrap().is_none());
        p.feed_eof();
        assert!(p.next_event().is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed("<a>".repeat(MAX_DEPTH + 1).as_bytes());
        assert!(matches!(
            p.next_event(),
            Ok(Some(StreamEvent::Header { .. }))
        ));
        assert!(matches!(p.next_event(), Err(XmlError::TooDeep)));
    }

    #[test]
    fn malformed_xml_is_an_error() {
        let mut p = StreamParser::new();
        p.feed(HEADER.as_bytes());
        p.feed(b"<message></iq>");
        let _ = p.next_event();
        assert!(p.next_event().is_err());
    }
}
