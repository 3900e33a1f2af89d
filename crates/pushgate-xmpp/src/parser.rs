//! Incremental, push-based XMPP stream parser with hard memory bounds.
//!
//! Bytes are pushed in as they arrive ([`StreamParser::feed`]) and events pulled out
//! ([`StreamParser::next_event`]). A cheap byte-level scanner finds where the stream header and
//! each top-level stanza end — respecting quoted attribute values and CDATA — so input may be
//! split at any byte, even inside a UTF-8 sequence or an entity. Only a *complete* unit is
//! handed to quick-xml, which checks well-formedness and resolves text and references; prefixes
//! are resolved here against the declarations of the stream header and the stanza itself.
//!
//! Bounds: a unit (stream header or stanza) may not grow past a configured byte size, and
//! elements may not nest deeper than a configured depth; whitespace keep-alives between stanzas
//! are dropped as they are scanned. So after `next_event` has returned `Ok(None)` the parser
//! holds at most `max(max_stanza_bytes, max_header_bytes)` bytes, whatever the peer sends.
//!
//! Scanning is lazy: `feed` only appends, `next_event` scans until one event is complete. That
//! is what makes stream restarts exact: after SASL success the caller calls [`StreamParser::reset`]
//! and any bytes the peer already sent are parsed as the beginning of the new stream.

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};

use crate::element::Element;
use crate::error::XmppError;
use crate::ns;

/// Default largest stanza accepted, in bytes. CCS messages are at most 4 KiB of payload; the
/// whole JSON with a notification, plus XML escaping (a peer may escape every quote as
/// `&quot;`), stays well under this.
pub const DEFAULT_MAX_STANZA_BYTES: usize = 64 * 1024;
/// Default largest stream header (plus XML declaration) accepted, in bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 4 * 1024;
/// Default deepest element nesting inside a stanza (the stanza element itself is depth 1).
/// The deepest real CCS stanza (an IQ error) is 3 levels deep.
pub const DEFAULT_MAX_DEPTH: usize = 16;

/// Limits a [`StreamParser`] enforces, so a peer cannot make it buffer or recurse without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserConfig {
    /// Largest stanza, in bytes from its `<` to its final `>`.
    pub max_stanza_bytes: usize,
    /// Largest stream header, and largest XML declaration before it, in bytes.
    pub max_header_bytes: usize,
    /// Deepest element nesting within a stanza (the stanza itself is depth 1).
    pub max_depth: usize,
}

impl Default for ParserConfig {
    fn default() -> Self {
        ParserConfig {
            max_stanza_bytes: DEFAULT_MAX_STANZA_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// The attributes of a peer's `<stream:stream>` opening tag.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// `to`: the domain the initiator wants (`gcm.googleapis.com`).
    pub to: Option<String>,
    /// `from`: the responder's domain.
    pub from: Option<String>,
    /// `id`: the stream id, set by the responding (server) side.
    pub id: Option<String>,
    /// `version`: `1.0` for every peer that supports SASL and features.
    pub version: Option<String>,
    /// `xml:lang`, if given.
    pub lang: Option<String>,
    /// The default namespace declared on the header (`jabber:client`), which stanzas inherit.
    pub content_ns: Option<String>,
    /// Every non-namespace attribute as written, for anything not covered above.
    pub attrs: Vec<(String, String)>,
}

/// One thing the parser recognised on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened (or, after a restart, reopened) the stream.
    StreamOpen(StreamHeader),
    /// A complete top-level child of the stream: a stanza, features, SASL element or stream
    /// error. Classify it with [`crate::stanza::Stanza::from_element`].
    Stanza(Element),
    /// The peer closed the stream with `</stream:stream>`. Later bytes are ignored.
    StreamClose,
}

/// Where in the stream the parser is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the stream header (only whitespace and an XML declaration allowed).
    Prolog,
    /// Inside the stream, between or inside stanzas.
    Open,
    /// After `</stream:stream>`.
    Closed,
}

/// Byte-level lexer state of the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data (or inter-stanza whitespace).
    Text,
    /// Just after `<`.
    Lt,
    /// Inside a start tag; `quote` is the open attribute quote, `slash` whether the last
    /// byte outside quotes was `/`.
    StartTag { quote: Option<u8>, slash: bool },
    /// Inside an end tag.
    EndTag,
    /// After `<!`: how many bytes of `[CDATA[` matched so far.
    Bang { matched: u8 },
    /// Inside CDATA; how many `]` were just seen (capped at 2).
    CData { brackets: u8 },
    /// Inside `<?…`; whether the last byte was `?`.
    Pi { question: bool },
}

/// A namespace binding in scope: prefix (`None` = default namespace) and URI.
type Binding = (Option<String>, String);

/// Incremental parser of one XMPP stream (one direction of a connection).
///
/// ```
/// use pushgate_xmpp::parser::{StreamEvent, StreamParser};
/// let mut p = StreamParser::new();
/// p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><mess")?;
/// assert!(matches!(p.next_event()?, Some(StreamEvent::StreamOpen(_))));
/// assert_eq!(p.next_event()?, None);
/// p.feed(b"age id='1'/>")?;
/// assert!(matches!(p.next_event()?, Some(StreamEvent::Stanza(el)) if el.name == "message"));
/// # Ok::<(), pushgate_xmpp::XmppError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamParser {
    cfg: ParserConfig,
    /// Unconsumed input: `buf[start..pos]` is the scanned part of the current unit,
    /// `buf[pos..]` is not scanned yet.
    buf: Vec<u8>,
    start: usize,
    pos: usize,
    phase: Phase,
    lex: Lex,
    /// Element depth inside the current stanza (0 = between stanzas).
    depth: usize,
    /// Namespace bindings declared on the stream header, inherited by every stanza.
    root_scope: Vec<Binding>,
    /// The header's qualified name (`stream:stream`), which the closing tag must repeat.
    header_qname: String,
    failed: Option<XmppError>,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    /// A parser with the default limits.
    pub fn new() -> Self {
        Self::with_config(ParserConfig::default())
    }

    /// A parser with explicit limits.
    pub fn with_config(cfg: ParserConfig) -> Self {
        StreamParser {
            cfg,
            buf: Vec::new(),
            start: 0,
            pos: 0,
            phase: Phase::Prolog,
            lex: Lex::Text,
            depth: 0,
            root_scope: Vec::new(),
            header_qname: String::new(),
            failed: None,
        }
    }

    /// The limits this parser enforces.
    pub fn config(&self) -> &ParserConfig {
        &self.cfg
    }

    /// Appends bytes received from the peer. Nothing is parsed until [`Self::next_event`].
    ///
    /// Feed only after `next_event` returned `Ok(None)`, so that unscanned input stays bounded
    /// by the size of one read. Fails with the earlier error if the parser is poisoned.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), XmppError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.phase == Phase::Closed {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Scans buffered input until one event is complete; `Ok(None)` means more bytes are needed.
    ///
    /// An error poisons the parser (and frees its buffer): the stream cannot be resynchronised.
    pub fn next_event(&mut self) -> Result<Option<StreamEvent>, XmppError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.scan() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                self.start = 0;
                self.pos = 0;
                Err(e)
            }
        }
    }

    /// Starts a new stream on the same connection (RFC 6120 §4.3.3: after SASL success both
    /// sides forget the old stream and the initiator sends a fresh header).
    ///
    /// Call it right after the event that ends the old stream's use (e.g. after reading or
    /// sending `<success/>`); bytes not yet scanned are kept and parsed as the new stream.
    pub fn reset(&mut self) {
        self.buf.drain(..self.pos);
        self.start = 0;
        self.pos = 0;
        self.phase = Phase::Prolog;
        self.lex = Lex::Text;
        self.depth = 0;
        self.root_scope.clear();
        self.header_qname.clear();
        self.failed = None;
    }

    /// Bytes currently held (unscanned input plus the unfinished unit). Bounded by the unit
    /// limits once `next_event` has returned `Ok(None)`.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True between `StreamOpen` and `StreamClose`.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// True after the peer's `</stream:stream>`.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True if a stream header, XML declaration or stanza has begun but not ended, i.e. the
    /// connection ending now would truncate something.
    pub fn in_unit(&self) -> bool {
        self.failed.is_none() && self.pos > self.start
    }

    fn unit_limit(&self) -> usize {
        match self.phase {
            Phase::Prolog => self.cfg.max_header_bytes,
            Phase::Open | Phase::Closed => self.cfg.max_stanza_bytes,
        }
    }

    fn scan(&mut self) -> Result<Option<StreamEvent>, XmppError> {
        if self.phase == Phase::Closed {
            self.buf.clear();
            self.start = 0;
            self.pos = 0;
            return Ok(None);
        }
        let limit = self.unit_limit();
        while self.pos < self.buf.len() {
            let b = self.buf[self.pos];
            self.pos += 1;
            if self.pos - self.start > limit {
                return Err(XmppError::StanzaTooLarge { limit });
            }
            match self.lex {
                Lex::Text => {
                    if b == b'<' {
                        self.lex = Lex::Lt;
                    } else if self.depth == 0 {
                        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                            // Keep-alive whitespace: drop it at once.
                            self.start = self.pos;
                            continue;
                        }
                        return Err(XmppError::NotWellFormed(
                            "character data outside a stanza".into(),
                        ));
                    } else {
                        check_byte(b)?;
                    }
                }
                Lex::Lt => match b {
                    b'/' => self.lex = Lex::EndTag,
                    b'!' => self.lex = Lex::Bang { matched: 0 },
                    b'?' if self.phase == Phase::Prolog => self.lex = Lex::Pi { question: false },
                    b'?' => {
                        return Err(XmppError::RestrictedXml("processing instruction".into()));
                    }
                    b'>' | b'<' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'=' => {
                        return Err(XmppError::NotWellFormed("bad character after '<'".into()));
                    }
                    _ => {
                        check_byte(b)?;
                        self.lex = Lex::StartTag {
                            quote: None,
                            slash: false,
                        };
                    }
                },
                Lex::StartTag { quote, slash } => match quote {
                    Some(q) => {
                        check_byte(b)?;
                        if b == q {
                            self.lex = Lex::StartTag { quote: None, slash };
                        }
                    }
                    None => match b {
                        b'"' | b'\'' => {
                            self.lex = Lex::StartTag {
                                quote: Some(b),
                                slash: false,
                            }
                        }
                        b'>' => {
                            self.lex = Lex::Text;
                            if let Some(ev) = self.end_of_start_tag(slash)? {
                                return Ok(Some(ev));
                            }
                        }
                        b'<' => {
                            return Err(XmppError::NotWellFormed("'<' inside a tag".into()));
                        }
                        _ => {
                            check_byte(b)?;
                            self.lex = Lex::StartTag {
                                quote: None,
                                slash: b == b'/',
                            };
                        }
                    },
                },
                Lex::EndTag => match b {
                    b'>' => {
                        self.lex = Lex::Text;
                        if let Some(ev) = self.end_of_end_tag()? {
                            return Ok(Some(ev));
                        }
                    }
                    b'<' | b'"' | b'\'' => {
                        return Err(XmppError::NotWellFormed("bad character in end tag".into()));
                    }
                    _ => check_byte(b)?,
                },
                Lex::Bang { matched } => {
                    const CDATA: &[u8] = b"[CDATA[";
                    let m = usize::from(matched);
                    if CDATA.get(m) == Some(&b) {
                        if m + 1 == CDATA.len() {
                            if self.depth == 0 {
                                return Err(XmppError::NotWellFormed(
                                    "CDATA outside a stanza".into(),
                                ));
                            }
                            self.lex = Lex::CData { brackets: 0 };
                        } else {
                            self.lex = Lex::Bang {
                                matched: matched + 1,
                            };
                        }
                    } else {
                        let what = match (m, b) {
                            (0, b'-') => "comment",
                            (0, b'D') => "document type declaration",
                            _ => "markup declaration",
                        };
                        return Err(XmppError::RestrictedXml(what.into()));
                    }
                }
                Lex::CData { brackets } => match b {
                    b']' => {
                        self.lex = Lex::CData {
                            brackets: (brackets + 1).min(2),
                        }
                    }
                    b'>' if brackets == 2 => self.lex = Lex::Text,
                    _ => {
                        check_byte(b)?;
                        self.lex = Lex::CData { brackets: 0 };
                    }
                },
                Lex::Pi { question } => {
                    if b == b'>' && question {
                        self.lex = Lex::Text;
                        self.end_of_declaration()?;
                    } else {
                        check_byte(b)?;
                        self.lex = Lex::Pi {
                            question: b == b'?',
                        };
                    }
                }
            }
        }
        Ok(None)
    }

    /// The scanned unit `buf[start..pos]`, consumed.
    fn take_unit(&mut self) -> (usize, usize) {
        let range = (self.start, self.pos);
        self.start = self.pos;
        range
    }

    fn end_of_declaration(&mut self) -> Result<(), XmppError> {
        let (s, e) = self.take_unit();
        let unit = &self.buf[s..e];
        // Only the XML declaration `<?xml version=...?>` is allowed, and only before the header.
        let is_decl = unit.len() > 6
            && unit.starts_with(b"<?xml")
            && matches!(unit[5], b' ' | b'\t' | b'\r' | b'\n');
        if is_decl {
            Ok(())
        } else {
            Err(XmppError::RestrictedXml("processing instruction".into()))
        }
    }

    fn end_of_start_tag(&mut self, self_closing: bool) -> Result<Option<StreamEvent>, XmppError> {
        match self.phase {
            Phase::Prolog => {
                if self_closing {
                    return Err(XmppError::NotWellFormed(
                        "the stream header must not be self-closed".into(),
                    ));
                }
                let (s, e) = self.take_unit();
                let (header, scope, qname) = parse_header(&self.buf[s..e])?;
                self.root_scope = scope;
                self.header_qname = qname;
                self.phase = Phase::Open;
                Ok(Some(StreamEvent::StreamOpen(header)))
            }
            Phase::Open | Phase::Closed => {
                if self_closing {
                    if self.depth == 0 {
                        return self.finish_stanza();
                    }
                    return Ok(None);
                }
                self.depth += 1;
                if self.depth > self.cfg.max_depth {
                    return Err(XmppError::TooDeep {
                        limit: self.cfg.max_depth,
                    });
                }
                Ok(None)
            }
        }
    }

    fn end_of_end_tag(&mut self) -> Result<Option<StreamEvent>, XmppError> {
        if self.phase == Phase::Prolog {
            return Err(XmppError::NotWellFormed(
                "end tag before the stream header".into(),
            ));
        }
        if self.depth == 0 {
            let (s, e) = self.take_unit();
            let unit = &self.buf[s..e];
            // `</` name whitespace? `>`
            let name = unit
                .get(2..unit.len().saturating_sub(1))
                .map(|n| n.trim_ascii_end())
                .unwrap_or_default();
            if name != self.header_qname.as_bytes() {
                return Err(XmppError::NotWellFormed(format!(
                    "stream opened as <{}> closed with </{}>",
                    self.header_qname,
                    String::from_utf8_lossy(name)
                )));
            }
            self.phase = Phase::Closed;
            return Ok(Some(StreamEvent::StreamClose));
        }
        self.depth -= 1;
        if self.depth == 0 {
            return self.finish_stanza();
        }
        Ok(None)
    }

    fn finish_stanza(&mut self) -> Result<Option<StreamEvent>, XmppError> {
        let (s, e) = self.take_unit();
        let el = parse_stanza(&self.buf[s..e], &self.root_scope)?;
        Ok(Some(StreamEvent::Stanza(el)))
    }
}

/// Rejects C0 control characters other than tab, LF and CR (not allowed anywhere in XML 1.0).
fn check_byte(b: u8) -> Result<(), XmppError> {
    if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') {
        return Err(XmppError::NotWellFormed(format!(
            "control character 0x{b:02x}"
        )));
    }
    Ok(())
}

fn is_legal_char(c: char) -> bool {
    c >= ' ' || matches!(c, '\t' | '\n' | '\r')
}

fn map_qx(e: quick_xml::Error) -> XmppError {
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            XmppError::RestrictedXml(format!("undefined entity &{name};"))
        }
        other => XmppError::NotWellFormed(other.to_string()),
    }
}

fn to_str(unit: &[u8]) -> Result<&str, XmppError> {
    std::str::from_utf8(unit).map_err(|_| XmppError::NotWellFormed("invalid UTF-8".into()))
}

fn lookup<'a>(scopes: &'a [Binding], prefix: Option<&str>) -> Option<&'a str> {
    if prefix == Some("xml") {
        return Some(ns::XML);
    }
    scopes
        .iter()
        .rev()
        .find(|(p, _)| p.as_deref() == prefix)
        .map(|(_, uri)| uri.as_str())
}

/// Turns a start tag into an element without children, pushing its namespace declarations on
/// `scopes` and resolving its prefix.
fn open_element(tag: &BytesStart<'_>, scopes: &mut Vec<Binding>) -> Result<Element, XmppError> {
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| XmppError::NotWellFormed(e.to_string()))?;
        let key = attr.key.0;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(map_qx)?
            .into_owned();
        if !value.chars().all(is_legal_char) {
            return Err(XmppError::NotWellFormed(
                "control character in attribute".into(),
            ));
        }
        if key == "xmlns" {
            scopes.push((None, value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            if value.is_empty() || prefix == "xmlns" || prefix == "xml" {
                return Err(XmppError::NotWellFormed(format!(
                    "bad namespace declaration {key}"
                )));
            }
            scopes.push((Some(prefix.to_owned()), value));
        } else {
            attrs.push((key.to_owned(), value));
        }
    }
    for (key, _) in &attrs {
        if let Some((prefix, _)) = key.split_once(':')
            && lookup(scopes, Some(prefix)).is_none()
        {
            return Err(XmppError::BadNamespacePrefix(prefix.to_owned()));
        }
    }
    let qname = tag.name().0;
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, qname),
    };
    let ns = match lookup(scopes, prefix) {
        Some(uri) => uri.to_owned(),
        None => match prefix {
            Some(p) => return Err(XmppError::BadNamespacePrefix(p.to_owned())),
            None => String::new(),
        },
    };
    Ok(Element {
        name: local.to_owned(),
        ns,
        attrs,
        children: Vec::new(),
        text: String::new(),
    })
}

/// Parses a complete `<stream:stream …>` opening tag.
fn parse_header(unit: &[u8]) -> Result<(StreamHeader, Vec<Binding>, String), XmppError> {
    let text = to_str(unit)?;
    let mut reader = Reader::from_str(text);
    let tag = match reader.read_event().map_err(map_qx)? {
        Event::Start(tag) => tag,
        _ => {
            return Err(XmppError::NotWellFormed(
                "expected the stream header".into(),
            ));
        }
    };
    let mut scope = Vec::new();
    let el = open_element(&tag, &mut scope)?;
    if !el.is("stream", ns::STREAMS) {
        return Err(XmppError::InvalidNamespace(format!(
            "stream header is {{{}}}{}",
            el.ns, el.name
        )));
    }
    let get = |name: &str| el.attr(name).map(str::to_owned);
    let header = StreamHeader {
        to: get("to"),
        from: get("from"),
        id: get("id"),
        version: get("version"),
        lang: get("xml:lang"),
        content_ns: lookup(&scope, None).map(str::to_owned),
        attrs: el.attrs.clone(),
    };
    Ok((header, scope, tag.name().0.to_owned()))
}

/// Parses one complete stanza into an element tree, with the stream header's namespace
/// bindings in scope. Iterative, so depth costs no stack.
fn parse_stanza(unit: &[u8], root_scope: &[Binding]) -> Result<Element, XmppError> {
    let text = to_str(unit)?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut scopes: Vec<Binding> = root_scope.to_vec();
    let mut marks: Vec<usize> = Vec::new();
    let mut stack: Vec<Element> = Vec::new();
    let mut done: Option<Element> = None;

    fn close(el: Element, stack: &mut [Element], done: &mut Option<Element>) {
        match stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => *done = Some(el),
        }
    }
    fn current(stack: &mut [Element]) -> Result<&mut Element, XmppError> {
        stack
            .last_mut()
            .ok_or_else(|| XmppError::NotWellFormed("character data outside a stanza".into()))
    }

    loop {
        match reader.read_event().map_err(map_qx)? {
            Event::Start(tag) | Event::Empty(tag) if done.is_some() => {
                return Err(XmppError::NotWellFormed(format!(
                    "element <{}> after the end of a stanza",
                    tag.name().0
                )));
            }
            Event::Start(tag) => {
                marks.push(scopes.len());
                let el = open_element(&tag, &mut scopes)?;
                stack.push(el);
            }
            Event::Empty(tag) => {
                let mark = scopes.len();
                let el = open_element(&tag, &mut scopes)?;
                scopes.truncate(mark);
                close(el, &mut stack, &mut done);
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmppError::NotWellFormed("unmatched end tag".into()))?;
                if let Some(mark) = marks.pop() {
                    scopes.truncate(mark);
                }
                close(el, &mut stack, &mut done);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                if stack.is_empty() {
                    if !content.trim_ascii().is_empty() {
                        return Err(XmppError::NotWellFormed(
                            "character data outside a stanza".into(),
                        ));
                    }
                } else {
                    current(&mut stack)?.text.push_str(&content);
                }
            }
            Event::CData(c) => {
                let content = c.xml10_content();
                current(&mut stack)?.text.push_str(&content);
            }
            Event::GeneralRef(r) => {
                let el = current(&mut stack)?;
                match r.resolve_char_ref().map_err(map_qx)? {
                    Some(c) if is_legal_char(c) => el.text.push(c),
                    Some(c) => {
                        return Err(XmppError::NotWellFormed(format!(
                            "character reference to U+{:04X}",
                            u32::from(c)
                        )));
                    }
                    None => match resolve_predefined_entity(&r) {
                        Some(s) => el.text.push_str(s),
                        None => {
                            return Err(XmppError::RestrictedXml(format!(
                                "undefined entity &{};",
                                &*r
                            )));
                        }
                    },
                }
            }
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) | Event::Decl(_) => {
                return Err(XmppError::RestrictedXml(
                    "comment, DTD or processing instruction".into(),
                ));
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmppError::NotWellFormed("unclosed element".into()));
    }
    done.ok_or_else(|| XmppError::NotWellFormed("empty stanza".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "<stream:stream to=\"gcm.googleapis.com\" version=\"1.0\" xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\">";

    fn stream(body: &str) -> String {
        format!("{HEADER}{body}")
    }

    /// Feeds everything, collects events until more input is needed or an error.
    fn parse_all(p: &mut StreamParser, bytes: &[u8]) -> (Vec<StreamEvent>, Option<XmppError>) {
        p.feed(bytes).unwrap();
        let mut evs = Vec::new();
        loop {
            match p.next_event() {
                Ok(Some(ev)) => evs.push(ev),
                Ok(None) => return (evs, None),
                Err(e) => return (evs, Some(e)),
            }
        }
    }

    fn parse_chunks(bytes: &[u8], sizes: &[usize]) -> (Vec<StreamEvent>, Option<XmppError>) {
        let mut p = StreamParser::new();
        let mut evs = Vec::new();
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(i % sizes.len().max(1))
                .copied()
                .unwrap_or(1)
                .max(1);
            i += 1;
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            let (mut e, err) = parse_all(&mut p, chunk);
            evs.append(&mut e);
            if err.is_some() {
                return (evs, err);
            }
        }
        (evs, None)
    }

    fn stanzas(evs: &[StreamEvent]) -> Vec<&Element> {
        evs.iter()
            .filter_map(|e| match e {
                StreamEvent::Stanza(el) => Some(el),
                _ => None,
            })
            .collect()
    }

    fn only_stanza(body: &str) -> Element {
        let (evs, err) = parse_all(&mut StreamParser::new(), stream(body).as_bytes());
        assert_eq!(err, None);
        let s = stanzas(&evs);
        assert_eq!(s.len(), 1, "{evs:?}");
        s[0].clone()
    }

    fn first_error(bytes: &[u8]) -> XmppError {
        let (_, err) = parse_all(&mut StreamParser::new(), bytes);
        err.expect("expected an error")
    }

    const CCS_SESSION: &str = concat!(
        "<?xml version='1.0' encoding='UTF-8'?>\n",
        "<stream:stream to=\"gcm.googleapis.com\" version=\"1.0\" xmlns=\"jabber:client\" ",
        "xmlns:stream=\"http://etherx.jabber.org/streams\" xml:lang='en'>",
        "  \n",
        "<auth mechanism=\"PLAIN\" xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">AGEAYg==</auth>",
        " ",
        "<message id=\"m1\"><gcm xmlns=\"google:mobile:data\">{&quot;to&quot;:&quot;tok&quot;,&quot;data&quot;:{&quot;k&quot;:&quot;é 😀 a&lt;b&amp;c&quot;}}</gcm></message>\n",
        "<message id='m2' type='normal'><data:gcm xmlns:data='google:mobile:data'><![CDATA[{\"x\":\"]]]]><![CDATA[>\"}]]></data:gcm></message>",
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<str:features xmlns:str='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></str:features>",
        "\t\r\n",
        "</stream:stream>",
        "trailing junk is ignored after close",
    );

    #[test]
    fn ccs_session_whole() {
        let (evs, err) = parse_all(&mut StreamParser::new(), CCS_SESSION.as_bytes());
        assert_eq!(err, None);
        assert_eq!(evs.len(), 7, "{evs:#?}");
        let StreamEvent::StreamOpen(h) = &evs[0] else {
            panic!("{:?}", evs[0])
        };
        assert_eq!(h.to.as_deref(), Some("gcm.googleapis.com"));
        assert_eq!(h.version.as_deref(), Some("1.0"));
        assert_eq!(h.lang.as_deref(), Some("en"));
        assert_eq!(h.content_ns.as_deref(), Some(ns::CLIENT));
        assert_eq!(h.id, None);
        let s = stanzas(&evs);
        assert!(s[0].is("auth", ns::SASL));
        assert_eq!(s[0].text, "AGEAYg==");
        assert!(s[1].is("message", ns::CLIENT));
        assert_eq!(
            s[1].child("gcm", ns::GCM).unwrap().text,
            r#"{"to":"tok","data":{"k":"é 😀 a<b&c"}}"#
        );
        assert_eq!(s[2].attr("type"), Some("normal"));
        assert_eq!(s[2].child("gcm", ns::GCM).unwrap().text, r#"{"x":"]]>"}"#);
        assert!(s[3].is("iq", ns::CLIENT));
        assert!(s[3].child("ping", ns::PING).is_some());
        assert!(s[4].is("features", ns::STREAMS));
        assert_eq!(evs[6], StreamEvent::StreamClose);
    }

    #[test]
    fn byte_by_byte_matches_whole() {
        let whole = parse_all(&mut StreamParser::new(), CCS_SESSION.as_bytes());
        let bytewise = parse_chunks(CCS_SESSION.as_bytes(), &[1]);
        assert_eq!(whole, bytewise);
    }

    proptest! {
        #[test]
        fn random_chunks_match_whole(sizes in proptest::collection::vec(1usize..40, 1..30)) {
            let whole = parse_all(&mut StreamParser::new(), CCS_SESSION.as_bytes());
            prop_assert_eq!(whole, parse_chunks(CCS_SESSION.as_bytes(), &sizes));
        }
    }

    #[test]
    fn entity_and_char_references_in_json() {
        let el = only_stanza(
            "<message id=''><gcm xmlns='google:mobile:data'>{&quot;a&quot;:&quot;x&amp;y&lt;z&#x41;&#66;&apos;&gt;&quot;}</gcm></message>",
        );
        assert_eq!(el.attr("id"), Some(""));
        assert_eq!(
            el.child("gcm", ns::GCM).unwrap().text,
            r#"{"a":"x&y<zAB'>"}"#
        );
    }

    #[test]
    fn entity_split_across_feeds() {
        let s = stream(
            "<message><gcm xmlns='google:mobile:data'>&quot;&#x1F600;&quot;</gcm></message>",
        );
        for cut in 0..s.len() {
            let mut p = StreamParser::new();
            let (mut evs, err) = parse_all(&mut p, &s.as_bytes()[..cut]);
            assert_eq!(err, None);
            let (mut more, err) = parse_all(&mut p, &s.as_bytes()[cut..]);
            assert_eq!(err, None);
            evs.append(&mut more);
            assert_eq!(stanzas(&evs)[0].children[0].text, "\"😀\"");
        }
    }

    #[test]
    fn attribute_values_may_contain_gt_and_slash() {
        let el = only_stanza("<message id='a>b/' to=\"x&amp;y\"/>");
        assert_eq!(el.attr("id"), Some("a>b/"));
        assert_eq!(el.attr("to"), Some("x&y"));
    }

    #[test]
    fn namespaces_resolve_by_uri_not_prefix() {
        let el = only_stanza(
            "<m:message xmlns:m='jabber:client' xmlns:g='google:mobile:data'><g:gcm>{}</g:gcm><other xmlns=''/><gcm/></m:message>",
        );
        assert!(el.is("message", ns::CLIENT));
        assert!(el.children[0].is("gcm", ns::GCM));
        assert!(el.children[1].is("other", ""));
        // Unprefixed child inherits the stream's default namespace, not the parent's prefix.
        assert!(el.children[2].is("gcm", ns::CLIENT));
    }

    #[test]
    fn stanza_scoped_declarations_do_not_leak() {
        let (evs, err) = parse_all(
            &mut StreamParser::new(),
            stream("<a xmlns:p='urn:p'><p:b/></a><p:c/>").as_bytes(),
        );
        assert_eq!(stanzas(&evs).len(), 1);
        assert_eq!(err, Some(XmppError::BadNamespacePrefix("p".into())));
    }

    #[test]
    fn unbound_attribute_prefix_is_refused() {
        assert_eq!(
            first_error(stream("<a q:x='1'/>").as_bytes()),
            XmppError::BadNamespacePrefix("q".into())
        );
        let el = only_stanza("<a xml:lang='en'/>");
        assert_eq!(el.attr("xml:lang"), Some("en"));
    }

    #[test]
    fn oversized_stanza_is_refused_at_the_limit() {
        let cfg = ParserConfig {
            max_stanza_bytes: 100,
            ..ParserConfig::default()
        };
        let ok = format!("<m>{}</m>", "x".repeat(93));
        assert_eq!(ok.len(), 100);
        let mut p = StreamParser::with_config(cfg);
        let (evs, err) = parse_all(&mut p, stream(&ok).as_bytes());
        assert_eq!((stanzas(&evs).len(), err), (1, None));
        let too_big = format!("<m>{}</m>", "x".repeat(94));
        let mut p = StreamParser::with_config(cfg);
        let (_, err) = parse_all(&mut p, stream(&too_big).as_bytes());
        assert_eq!(err, Some(XmppError::StanzaTooLarge { limit: 100 }));
        assert_eq!(p.buffered_len(), 0, "buffer freed on error");
        assert_eq!(
            p.feed(b"more"),
            Err(XmppError::StanzaTooLarge { limit: 100 })
        );
    }

    #[test]
    fn giant_unclosed_text_node_errors_without_growing() {
        let mut p = StreamParser::new();
        parse_all(
            &mut p,
            stream("<message><gcm xmlns='google:mobile:data'>").as_bytes(),
        );
        let chunk = [b'a'; 8192];
        let mut fed = 0usize;
        let err = loop {
            fed += chunk.len();
            assert!(fed < 10 * 1024 * 1024, "never refused");
            let (_, err) = parse_all(&mut p, &chunk);
            if let Some(e) = err {
                break e;
            }
            assert!(p.buffered_len() <= DEFAULT_MAX_STANZA_BYTES);
        };
        assert_eq!(
            err,
            XmppError::StanzaTooLarge {
                limit: DEFAULT_MAX_STANZA_BYTES
            }
        );
        assert!(fed <= DEFAULT_MAX_STANZA_BYTES + chunk.len());
        assert_eq!(
            err.condition(),
            crate::stanza::StreamErrorCondition::PolicyViolation
        );
    }

    #[test]
    fn giant_header_and_attribute_are_refused() {
        let mut p = StreamParser::new();
        let big = format!("<stream:stream a='{}", "x".repeat(10_000));
        assert_eq!(
            parse_all(&mut p, big.as_bytes()).1,
            Some(XmppError::StanzaTooLarge {
                limit: DEFAULT_MAX_HEADER_BYTES
            })
        );
        let big = stream(&format!("<m a='{}", "x".repeat(70_000)));
        assert!(matches!(
            first_error(big.as_bytes()),
            XmppError::StanzaTooLarge { .. }
        ));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let cfg = ParserConfig {
            max_depth: 4,
            ..ParserConfig::default()
        };
        let mut p = StreamParser::with_config(cfg);
        let (evs, err) = parse_all(&mut p, stream("<a><b><c><d/></c></b></a>").as_bytes());
        assert_eq!((stanzas(&evs).len(), err), (1, None));
        let mut p = StreamParser::with_config(cfg);
        let (_, err) = parse_all(&mut p, stream("<a><b><c><d><e>").as_bytes());
        assert_eq!(err, Some(XmppError::TooDeep { limit: 4 }));
        let deep = stream(&"<a>".repeat(100_000));
        assert_eq!(
            first_error(deep.as_bytes()),
            XmppError::TooDeep {
                limit: DEFAULT_MAX_DEPTH
            }
        );
    }

    #[test]
    fn restricted_xml_is_refused() {
        for bad in [
            "<!DOCTYPE stream:stream [<!ENTITY x 'boom'>]>",
            "<!-- hi -->",
            "<?php echo 1 ?>",
        ] {
            let e = first_error(bad.as_bytes());
            assert!(matches!(e, XmppError::RestrictedXml(_)), "{bad}: {e:?}");
        }
        for bad in [
            "<m>&custom;</m>",
            "<m><!-- c --></m>",
            "<?xml version='1.0'?>",
            "<m a='&x;'/>",
            "<m><?pi x?></m>",
        ] {
            let e = first_error(stream(bad).as_bytes());
            assert!(matches!(e, XmppError::RestrictedXml(_)), "{bad}: {e:?}");
            assert_eq!(
                e.condition(),
                crate::stanza::StreamErrorCondition::RestrictedXml
            );
        }
    }

    #[test]
    fn malformed_input_is_not_well_formed() {
        for bad in [
            "<a></b>",
            "<a><b></a></b>",
            "text at stream level",
            "<a>&#0;</a>",
            "<a>&#x1;</a>",
            "<a>\u{1}</a>",
            "<a>&amp</a>",
            "<a b='1' b='2'/>",
            "< a/>",
            "</a>",
            "<a x=\"1\u{2}\"/>",
        ] {
            let e = first_error(stream(bad).as_bytes());
            assert!(matches!(e, XmppError::NotWellFormed(_)), "{bad}: {e:?}");
        }
        let mut bytes = stream("<a>").into_bytes();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b"</a>");
        assert!(matches!(first_error(&bytes), XmppError::NotWellFormed(_)));
    }

    #[test]
    fn header_problems() {
        let e = first_error(
            b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'/>",
        );
        assert!(matches!(e, XmppError::NotWellFormed(_)), "{e:?}");
        let e = first_error(b"<stream:stream xmlns:stream='urn:wrong'>");
        assert!(matches!(e, XmppError::InvalidNamespace(_)), "{e:?}");
        let e = first_error(b"<stream xmlns='jabber:client'>");
        assert!(matches!(e, XmppError::InvalidNamespace(_)), "{e:?}");
        let e = first_error(b"<stream:stream>");
        assert_eq!(e, XmppError::BadNamespacePrefix("stream".into()));
        let e = first_error(stream("</stream:other>").as_bytes());
        assert!(matches!(e, XmppError::NotWellFormed(_)), "{e:?}");
        // Another prefix for the streams namespace is fine, and the close must repeat it.
        let (evs, err) = parse_all(
            &mut StreamParser::new(),
            b"<s:stream xmlns:s='http://etherx.jabber.org/streams'><s:features/></s:stream >",
        );
        assert_eq!(err, None);
        assert!(stanzas(&evs)[0].is("features", ns::STREAMS));
        assert_eq!(evs.last(), Some(&StreamEvent::StreamClose));
    }

    #[test]
    fn keepalive_whitespace_is_not_buffered() {
        let mut p = StreamParser::new();
        parse_all(&mut p, stream("").as_bytes());
        for _ in 0..1000 {
            let (evs, err) = parse_all(&mut p, b" \n\t\r ");
            assert!(evs.is_empty() && err.is_none());
            assert_eq!(p.buffered_len(), 0);
        }
        assert!(!p.in_unit());
        parse_all(&mut p, b"<mess");
        assert!(p.in_unit());
    }

    #[test]
    fn reset_parses_pipelined_restart() {
        let mut p = StreamParser::new();
        let bytes = stream(&format!(
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{}<iq id='b' type='set'/>",
            HEADER.replace("gcm.googleapis.com", "restarted")
        ));
        p.feed(bytes.as_bytes()).unwrap();
        assert!(matches!(
            p.next_event(),
            Ok(Some(StreamEvent::StreamOpen(_)))
        ));
        assert!(
            matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(el))) if el.name == "success")
        );
        p.reset();
        assert!(!p.is_open());
        match p.next_event() {
            Ok(Some(StreamEvent::StreamOpen(h))) => assert_eq!(h.to.as_deref(), Some("restarted")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(p.next_event(), Ok(Some(StreamEvent::Stanza(el))) if el.name == "iq"));
        assert!(p.is_open());
    }

    #[test]
    fn closed_stream_ignores_the_rest() {
        let mut p = StreamParser::new();
        let (evs, err) = parse_all(&mut p, stream("</stream:stream>").as_bytes());
        assert_eq!((evs.len(), err), (2, None));
        assert!(p.is_closed());
        let (evs, err) = parse_all(&mut p, b"<junk");
        assert_eq!((evs.len(), err), (0, None));
        assert_eq!(p.buffered_len(), 0);
    }

    #[test]
    fn text_reassembled_from_pieces() {
        let el = only_stanza("<m>a&amp;<![CDATA[<b>]]>c&#x10FFFF;\r\nd</m>");
        assert_eq!(el.text, "a&<b>c\u{10FFFF}\nd");
    }

    #[test]
    fn nasty_corpus_keeps_invariants() {
        let mut corpus: Vec<Vec<u8>> = vec![
            Vec::new(),
            CCS_SESSION.as_bytes().to_vec(),
            stream(&"<a>".repeat(50)).into_bytes(),
            stream(&"x".repeat(2000)).into_bytes(),
            stream(&format!("<m>{}", "y".repeat(5000))).into_bytes(),
            stream("<![CDATA[").into_bytes(),
            stream("<m><![CDATA[]]]]]]>").into_bytes(),
            stream("<m a='>>>'").into_bytes(),
            stream("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").into_bytes(),
            format!(
                "{}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{HEADER}<m/></stream:stream>",
                HEADER
            )
            .into_bytes(),
            b"<?xml version='1.0'?><?xml version='1.0'?>".to_vec(),
            b"<?xml".repeat(100),
            b"<<<<>>>>".to_vec(),
            b"\xef\xbb\xbf<stream:stream>".to_vec(),
            [stream("<m>").as_bytes(), b"\xf0\x9f\x98</m>"].concat(),
            stream("<a:b:c/>").into_bytes(),
            stream("<m xmlns:p=''/>").into_bytes(),
            stream("<m xmlns:xmlns='x'/>").into_bytes(),
            stream("</>").into_bytes(),
            stream("<m></m ></stream:stream ><x>").into_bytes(),
            stream("<!").into_bytes(),
            stream("<m>&#xFFFFFFFF;</m>").into_bytes(),
            stream("<m>&#;&#x;</m>").into_bytes(),
            stream("<m>]]></m>").into_bytes(),
            vec![0u8; 300],
            vec![b'<'; 300],
        ];
        let mut seeded = Vec::new();
        for c in &corpus {
            for seed in [1u64, 7, 0xdead_beef, u64::MAX] {
                let mut d = seed.to_le_bytes().to_vec();
                d.extend_from_slice(c);
                seeded.push(d);
            }
        }
        corpus.extend(seeded);
        for input in &corpus {
            crate::fuzzing::check_stream_parser(input);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_keep_invariants(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            crate::fuzzing::check_stream_parser(&data);
        }

        #[test]
        fn xmlish_bytes_keep_invariants(
            seed in any::<u64>(),
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"),
                    Just("<m>"), Just("</m>"), Just("<a x='1'/>"), Just("&amp;"), Just("&quot;"),
                    Just("<![CDATA["), Just("]]>"), Just(" "), Just("é"), Just("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
                    Just("</stream:stream>"), Just("<p:q xmlns:p='u'>"), Just("</p:q>"), Just("<"), Just(">"), Just("'"),
                ],
                0..60,
            ),
        ) {
            let mut data = seed.to_le_bytes().to_vec();
            data.extend(parts.concat().into_bytes());
            crate::fuzzing::check_stream_parser(&data);
        }
    }
}
