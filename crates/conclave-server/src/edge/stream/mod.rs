//! One XMPP XML stream (RFC 6120 section 4) over plain TCP or TLS:
//! incremental parsing of the peer's stream into top-level elements, with
//! limits, and serialisation of outgoing stanzas.

pub mod parser;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use xmpp_parsers::stream_error::DefinedCondition;

pub use parser::{Item, ParseError, StreamHeader, StreamParser, NS_CLIENT, NS_STREAM};

/// Limits applied to the peer's stream.
#[derive(Clone, Debug)]
pub struct StreamLimits {
    /// Maximum size in bytes of one top-level element.
    pub max_stanza_bytes: usize,
    /// Maximum nesting depth of elements inside a top-level element.
    pub max_depth: usize,
    /// Maximum number of attributes (namespace declarations included) on
    /// one element, the stream header included.
    pub max_attributes: usize,
    /// Bytes per second read from one connection; beyond, reading pauses
    /// (the peer's sending is held back by TCP). 0: no limit.
    pub max_bytes_per_second: u64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_stanza_bytes: 262_144,
            max_depth: 64,
            max_attributes: 100,
            max_bytes_per_second: 0,
        }
    }
}

/// A token bucket over the bytes read from one connection: `rate` bytes
/// per second, up to `burst` at once. Reading pauses while it is in debt.
#[derive(Debug)]
struct ReadRate {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl ReadRate {
    /// `None` for no limit. The burst is four seconds' worth, and never
    /// less than two of the largest stanzas.
    fn new(limits: &StreamLimits) -> Option<ReadRate> {
        if limits.max_bytes_per_second == 0 {
            return None;
        }
        let rate = limits.max_bytes_per_second as f64;
        let burst = (4.0 * rate).max(2.0 * limits.max_stanza_bytes as f64);
        Some(ReadRate {
            rate,
            burst,
            tokens: burst,
            last: tokio::time::Instant::now(),
        })
    }

    fn refill(&mut self, now: tokio::time::Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` bytes read (the bucket may go into debt).
    fn debit(&mut self, n: usize) {
        self.refill(tokio::time::Instant::now());
        self.tokens -= n as f64;
    }

    /// When reading may go on: now, or once the debt is paid.
    fn ready_at(&mut self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        self.refill(now);
        if self.tokens >= 0.0 {
            now
        } else {
            now + std::time::Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Why a stream stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A stream error (already sent to the peer when it came from parsing).
    #[error("stream error <{}/>: {text}", condition_name(condition))]
    Stream {
        condition: DefinedCondition,
        text: String,
    },
    /// The stream was already closed.
    #[error("the stream is closed")]
    Closed,
}

impl StreamError {
    /// The stream-error condition this error carries, if any.
    pub fn condition(&self) -> Option<&DefinedCondition> {
        match self {
            StreamError::Stream { condition, .. } => Some(condition),
            _ => None,
        }
    }
}

/// The XML name of a stream-error condition (`policy-violation`, ...).
pub fn condition_name(condition: &DefinedCondition) -> String {
    let el: minidom::Element = condition.clone().into();
    el.name().to_owned()
}

/// The transport under a stream.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The most read from the socket at once. The buffer lives on the stack for
/// the duration of one poll only: a stream waiting for data holds none.
const READ_CHUNK: usize = 16 * 1024;

/// Reads what the socket has (at most [`READ_CHUNK`] bytes) and appends it
/// to `pending`. When the socket has nothing to give, the memory an idle
/// stream does not need is released first: `pending` if the parser took
/// every byte, and the XML lexer's scratch buffers. Cancel-safe: bytes are
/// in `pending` before `Ready` is returned.
fn poll_read_into(
    io: &mut Io,
    cx: &mut Context<'_>,
    pending: &mut Vec<u8>,
    parser: &mut StreamParser,
) -> Poll<std::io::Result<usize>> {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
    let mut read = ReadBuf::uninit(&mut buf);
    match Pin::new(io).poll_read(cx, &mut read) {
        Poll::Ready(Ok(())) => {
            let filled = read.filled();
            pending.extend_from_slice(filled);
            Poll::Ready(Ok(filled.len()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => {
            if pending.is_empty() && pending.capacity() > 0 {
                *pending = Vec::new();
            }
            parser.release_temporaries();
            Poll::Pending
        }
    }
}

/// One XMPP XML stream.
pub struct XmlStream {
    io: Option<Io>,
    parser: StreamParser,
    limits: StreamLimits,
    /// Bytes read from the socket and not yet given to the parser. Freed
    /// whenever the socket has nothing more to give and the parser took
    /// every byte, so an idle stream holds no read buffer.
    pending: Vec<u8>,
    /// Whether our own stream header was sent (a stream error needs one).
    header_sent: bool,
    /// The peer closed its stream or the socket.
    peer_closed: bool,
    /// The read rate limit, if any.
    rate: Option<ReadRate>,
    /// Kept alive as long as the stream (per-IP connection slot, ...).
    guards: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl XmlStream {
    /// A new stream over a plain TCP socket, expecting a stream header.
    pub(crate) fn new(socket: TcpStream, limits: StreamLimits) -> Self {
        Self::from_io(Io::Plain(socket), limits)
    }

    pub(crate) fn from_io(io: Io, limits: StreamLimits) -> Self {
        let rate = ReadRate::new(&limits);
        XmlStream {
            io: Some(io),
            parser: StreamParser::new(limits.clone()),
            limits,
            pending: Vec::new(),
            header_sent: false,
            peer_closed: false,
            rate,
            guards: Vec::new(),
        }
    }

    /// Keeps `guard` alive until the stream is dropped.
    pub(crate) fn hold(&mut self, guard: Box<dyn std::any::Any + Send + Sync>) {
        self.guards.push(guard);
    }

    /// Next top-level element (stanza or nonza) after negotiation.
    /// `Ok(None)` when the peer closed the stream or the socket. Cancel-safe.
    pub async fn next_stanza(&mut self) -> Result<Option<minidom::Element>, StreamError> {
        match self.next_item().await? {
            None | Some(Item::End) => Ok(None),
            Some(Item::Stanza(el)) => Ok(Some(el)),
            Some(Item::Header(_)) => {
                let err = (
                    DefinedCondition::NotWellFormed,
                    "unexpected stream header".to_owned(),
                );
                Err(self.fail(err).await)
            }
        }
    }

    /// Next parsed item. Parse errors are sent to the peer as stream errors
    /// (and the stream closed) before being returned. Cancel-safe: the only
    /// await point is a socket read into an owned buffer.
    pub(crate) async fn next_item(&mut self) -> Result<Option<Item>, StreamError> {
        if self.peer_closed {
            return Ok(None);
        }
        loop {
            if !self.pending.is_empty() {
                let mut slice = &self.pending[..];
                let result = self.parser.feed(&mut slice);
                let consumed = self.pending.len() - slice.len();
                self.pending.drain(..consumed);
                match result {
                    Ok(Some(item)) => {
                        if matches!(item, Item::End) {
                            self.peer_closed = true;
                        }
                        return Ok(Some(item));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(self.fail((e.condition, e.text)).await),
                }
            }
            // Over its rate, the connection waits before reading more
            // (cancel-safe: the debt is already counted).
            // (No timer at all while within the rate: a sleep, even one
            // already due, waits for the timer's next tick.)
            if let Some(rate) = &mut self.rate {
                let at = rate.ready_at();
                if at > tokio::time::Instant::now() {
                    tokio::time::sleep_until(at).await;
                }
            }
            let io = self.io.as_mut().ok_or(StreamError::Closed)?;
            let (pending, parser) = (&mut self.pending, &mut self.parser);
            let n = std::future::poll_fn(|cx| poll_read_into(io, cx, pending, parser)).await?;
            if n == 0 {
                self.peer_closed = true;
                return Ok(None);
            }
            if let Some(rate) = &mut self.rate {
                rate.debit(n);
            }
        }
    }

    /// Sends the stream error, closes, and returns the matching error.
    async fn fail(&mut self, (condition, text): (DefinedCondition, String)) -> StreamError {
        self.close(Some((condition.clone(), text.clone()))).await;
        StreamError::Stream { condition, text }
    }

    /// Serialises one stanza (default namespace jabber:client) and flushes.
    pub async fn send(&mut self, stanza: &minidom::Element) -> Result<(), StreamError> {
        self.send_bytes(&serialize(stanza)).await
    }

    /// Writes already-serialised stanza bytes and flushes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        let io = self.io.as_mut().ok_or(StreamError::Closed)?;
        io.write_all(bytes).await?;
        io.flush().await?;
        Ok(())
    }

    /// Sends `<stream:error>` with this condition (if any) and text, then
    /// `</stream:stream>`, then shuts the socket down.
    pub async fn close(&mut self, error: Option<(DefinedCondition, String)>) {
        let Some(mut io) = self.io.take() else {
            return;
        };
        let mut out = Vec::new();
        if !self.header_sent {
            out.extend_from_slice(&stream_header_bytes(None, None, None));
        }
        if let Some((condition, text)) = error {
            out.extend_from_slice(&stream_error_bytes(condition, &text));
        }
        out.extend_from_slice(b"</stream:stream>");
        // The peer may already be gone: nothing more to do then.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = io.write_all(&out).await;
            let _ = io.flush().await;
            let _ = io.shutdown().await;
        })
        .await;
    }

    /// Whether the stream runs over TLS.
    pub fn is_secure(&self) -> bool {
        matches!(self.io, Some(Io::Tls(_)))
    }

    /// The peer closed its side of the stream.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Sends our stream header.
    pub(crate) async fn send_header(
        &mut self,
        from: Option<&str>,
        id: Option<&str>,
        lang: Option<&str>,
    ) -> Result<(), StreamError> {
        let bytes = stream_header_bytes(from, id, lang);
        self.send_bytes(&bytes).await?;
        self.header_sent = true;
        Ok(())
    }

    /// Stream restart (after SASL success): a fresh parser expecting a new
    /// header. Bytes the peer already sent are kept.
    pub(crate) fn restart(&mut self) {
        self.parser = StreamParser::new(self.limits.clone());
        self.header_sent = false;
        self.peer_closed = false;
    }

    /// STARTTLS / direct TLS: runs the TLS handshake, then restarts the
    /// stream. Plaintext bytes received before the handshake are dropped.
    pub(crate) async fn upgrade_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
    ) -> Result<(), StreamError> {
        let Some(Io::Plain(tcp)) = self.io.take() else {
            return Err(StreamError::Stream {
                condition: DefinedCondition::UndefinedCondition,
                text: "the stream is already encrypted".to_owned(),
            });
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = tokio::time::timeout(std::time::Duration::from_secs(30), acceptor.accept(tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        self.io = Some(Io::Tls(Box::new(tls)));
        self.pending.clear();
        self.restart();
        Ok(())
    }
}

/// Serialises a stanza the way [`XmlStream::send`] would (for fan-out:
/// serialise once, `send_bytes` to many).
///
/// minidom writes the namespace of the top element explicitly, so stanzas
/// come out as `<message xmlns="jabber:client" ...>`: redundant inside a
/// `jabber:client` stream, but valid, and correct for any namespace.
pub fn serialize(stanza: &minidom::Element) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = stanza.write_to(&mut out) {
        tracing::warn!("could not serialise a stanza: {e}");
        out.clear();
    }
    out
}

/// Our stream header (`<?xml?>` prelude included). It is the one element
/// written by hand, as it stays open; its values are escaped by minidom.
pub(crate) fn stream_header_bytes(
    from: Option<&str>,
    id: Option<&str>,
    lang: Option<&str>,
) -> Vec<u8> {
    let mut out = format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAM}' version='1.0'"
    )
    .into_bytes();
    let lang = Some(lang.unwrap_or("en"));
    for (name, value) in [("from", from), ("id", id), ("xml:lang", lang)] {
        if let Some(value) = value {
            out.extend_from_slice(format!(" {name}='").as_bytes());
            out.extend_from_slice(&minidom::element::escape(value.as_bytes()));
            out.push(b'\'');
        }
    }
    out.push(b'>');
    out
}

/// `<stream:error>` with this condition and text.
pub(crate) fn stream_error_bytes(condition: DefinedCondition, text: &str) -> Vec<u8> {
    let error = xmpp_parsers::stream_error::StreamError {
        condition,
        texts: if text.is_empty() {
            Default::default()
        } else {
            [(Default::default(), text.to_owned())]
                .into_iter()
                .collect()
        },
        application_specific: Vec::new(),
    };
    let el: minidom::Element = error.into();
    serialize(&el)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' \
        xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    /// A server-side stream and the client socket talking to it.
    async fn pair() -> (XmlStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (XmlStream::new(server, StreamLimits::default()), client)
    }

    #[tokio::test(start_paused = true)]
    async fn the_read_rate_is_a_token_bucket() {
        let limits = StreamLimits {
            max_stanza_bytes: 100,
            max_bytes_per_second: 1000,
            ..StreamLimits::default()
        };
        let mut rate = ReadRate::new(&limits).expect("a limit");
        let start = tokio::time::Instant::now();
        // Four seconds' worth may come at once.
        rate.debit(4000);
        assert_eq!(rate.ready_at(), start);
        // One second more is a second of debt.
        rate.debit(1000);
        assert_eq!(rate.ready_at(), start + std::time::Duration::from_secs(1));
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert_eq!(rate.ready_at(), start + std::time::Duration::from_secs(1));
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert_eq!(rate.ready_at(), tokio::time::Instant::now());
        assert!(
            ReadRate::new(&StreamLimits::default()).is_none(),
            "0: no limit"
        );
    }

    #[tokio::test]
    async fn a_connection_over_its_rate_is_read_slowly_not_dropped() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let limits = StreamLimits {
            max_stanza_bytes: 4096,
            max_bytes_per_second: 40_000,
            ..StreamLimits::default()
        };
        let mut stream = XmlStream::new(server, limits);
        let body = "x".repeat(1900);
        let stanza = format!("<message to='a@localhost'><body>{body}</body></message>");
        let count = 100; // about 195 KB: 160 KB of burst, then 40 KB/s
        let writer = tokio::spawn(async move {
            client.write_all(HEADER).await.unwrap();
            for _ in 0..count {
                client.write_all(stanza.as_bytes()).await.unwrap();
            }
            client
        });
        let start = std::time::Instant::now();
        assert!(matches!(
            stream.next_item().await,
            Ok(Some(Item::Header(_)))
        ));
        for _ in 0..count {
            assert!(stream.next_stanza().await.unwrap().is_some());
        }
        // A lower bound only: the debt beyond the burst takes its time.
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(700),
            "{:?}",
            start.elapsed()
        );
        drop(writer.await.unwrap());
    }

    #[test]
    fn stream_header_values_are_escaped() {
        assert_eq!(
            stream_header_bytes(Some("a'b&c"), Some("<id>"), None),
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0' \
              from='a&apos;b&amp;c' id='&lt;id&gt;' xml:lang='en'>"
        );
        assert_eq!(
            stream_header_bytes(None, None, Some("\"fr\"")),
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
              xmlns:stream='http://etherx.jabber.org/streams' version='1.0' \
              xml:lang='&quot;fr&quot;'>"
        );
    }

    #[tokio::test]
    async fn idle_stream_holds_no_read_buffer() {
        let (mut stream, mut client) = pair().await;
        client.write_all(HEADER).await.unwrap();
        client
            .write_all(b"<presence/><message to='a@localhost'><body>")
            .await
            .unwrap();
        assert!(matches!(
            stream.next_item().await.unwrap(),
            Some(Item::Header(_))
        ));
        let Some(Item::Stanza(el)) = stream.next_item().await.unwrap() else {
            panic!("expected a stanza");
        };
        assert_eq!(el.name(), "presence");
        // Half a stanza is buffered while the socket has nothing more.
        let wait = std::time::Duration::from_millis(50);
        assert!(tokio::time::timeout(wait, stream.next_item())
            .await
            .is_err());
        // The rest arrives: the stanza is whole, and an idle stream then
        // keeps no read buffer.
        client.write_all(b"hi</body></message>").await.unwrap();
        let Some(Item::Stanza(el)) = stream.next_item().await.unwrap() else {
            panic!("expected a stanza");
        };
        assert_eq!(el.name(), "message");
        assert_eq!(
            el.get_child("body", NS_CLIENT).map(|b| b.text()),
            Some("hi".to_owned())
        );
        assert!(tokio::time::timeout(wait, stream.next_item())
            .await
            .is_err());
        assert_eq!(stream.pending.capacity(), 0);
    }

    #[tokio::test]
    async fn reads_larger_than_one_chunk_are_reassembled() {
        let (mut stream, mut client) = pair().await;
        let body = "x".repeat(3 * READ_CHUNK);
        let stanza = format!("<message to='a@localhost'><body>{body}</body></message>");
        let writer = tokio::spawn(async move {
            client.write_all(HEADER).await.unwrap();
            client.write_all(stanza.as_bytes()).await.unwrap();
            client
        });
        assert!(matches!(
            stream.next_item().await.unwrap(),
            Some(Item::Header(_))
        ));
        let Some(Item::Stanza(el)) = stream.next_item().await.unwrap() else {
            panic!("expected a stanza");
        };
        assert_eq!(
            el.get_child("body", NS_CLIENT).map(|b| b.text()),
            Some(body)
        );
        let _client = writer.await.unwrap();
    }
}
