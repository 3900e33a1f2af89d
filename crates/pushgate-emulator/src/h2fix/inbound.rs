//! The client-to-server half of an HTTP/2 connection, frame by frame: header blocks are
//! decoded (following the client's HPACK table) so a `:scheme` of `https:` or `http:` can
//! be put right before h2 sees it; every other frame goes through untouched.
//!
//! While no block needed a change, blocks are forwarded byte for byte (the server's HPACK
//! table then mirrors the client's). From the first changed block on, every block is sent
//! as plain literals, which never use the server's table, so the two can no longer
//! disagree. Each request's pseudo-headers are also checked the way h2 checks them, so a
//! stream h2 resets can be logged with the reason (see [`Inbound::request`]).

use std::collections::VecDeque;

use super::hpack::{self, Decoder, Field, HpackError};

/// What an HTTP/2 client sends first.
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest frame payload the server accepts: hyper leaves h2's `SETTINGS_MAX_FRAME_SIZE`
/// at the protocol minimum, so a larger frame is an error there as well.
const MAX_FRAME: usize = 16_384;
/// Largest header block collected (HEADERS plus CONTINUATIONs) before giving up.
const MAX_BLOCK: usize = 1 << 20;
/// How many recent requests are remembered for logging a reset of their stream.
const RECENT: usize = 32;

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The connection cannot go on: the client broke HTTP/2 framing or HPACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InboundError {
    /// Framing error (what h2 would call PROTOCOL_ERROR or FRAME_SIZE_ERROR).
    #[error("HTTP/2 framing: {0}")]
    Frame(&'static str),
    /// Header compression error (h2's COMPRESSION_ERROR).
    #[error(transparent)]
    Hpack(#[from] HpackError),
}

/// A request as the emulator saw it, kept to explain a reset of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeenRequest {
    /// `:method :path :scheme=… :authority=…`, as sent (before any fix).
    pub(crate) summary: String,
    /// What h2 will refuse in it, if anything.
    pub(crate) problem: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Reading the first bytes: HTTP/2 preface or not.
    Sniff,
    /// HTTP/2 frames.
    Frames,
    /// Not HTTP/2 (HTTP/1.1): everything passes as is.
    Other,
}

/// A header block being collected.
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as received, forwarded as they are when nothing changes.
    raw: Vec<u8>,
}

/// State of the client-to-server byte stream of one connection.
#[derive(Debug)]
pub(crate) struct Inbound {
    mode: Mode,
    pending: Vec<u8>,
    /// Payload bytes of a frame being forwarded as they arrive.
    passing: usize,
    block: Option<Block>,
    decoder: Decoder,
    reencode: bool,
    recent: VecDeque<(u32, SeenRequest)>,
}

impl Inbound {
    /// A connection whose first bytes are yet to come.
    pub(crate) fn new() -> Self {
        Self {
            mode: Mode::Sniff,
            pending: Vec::new(),
            passing: 0,
            block: None,
            decoder: Decoder::new(),
            reencode: false,
            recent: VecDeque::new(),
        }
    }

    /// The connection turned out to be HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.mode == Mode::Frames
    }

    /// The connection turned out not to be HTTP/2: bytes need not come through here.
    pub(crate) fn is_other(&self) -> bool {
        self.mode == Mode::Other
    }

    /// The request last seen on `stream`, if still remembered.
    pub(crate) fn request(&self, stream: u32) -> Option<&SeenRequest> {
        self.recent
            .iter()
            .rev()
            .find(|(id, _)| *id == stream)
            .map(|(_, r)| r)
    }

    /// Takes bytes read from the client and appends to `out` what the server may read.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), InboundError> {
        if self.mode == Mode::Other {
            out.extend_from_slice(input);
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut at = 0;
        let result = self.process(&mut at, out);
        self.pending.drain(..at);
        result
    }

    fn process(&mut self, at: &mut usize, out: &mut Vec<u8>) -> Result<(), InboundError> {
        loop {
            let rest = &self.pending[*at..];
            match self.mode {
                Mode::Other => {
                    out.extend_from_slice(rest);
                    *at = self.pending.len();
                    return Ok(());
                }
                Mode::Sniff => {
                    let n = rest.len().min(PREFACE.len());
                    if rest[..n] != PREFACE[..n] {
                        self.mode = Mode::Other;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return Ok(());
                    }
                    out.extend_from_slice(PREFACE);
                    *at += PREFACE.len();
                    self.mode = Mode::Frames;
                }
                Mode::Frames => {
                    if self.passing > 0 {
                        let n = rest.len().min(self.passing);
                        if n == 0 {
                            return Ok(());
                        }
                        out.extend_from_slice(&rest[..n]);
                        *at += n;
                        self.passing -= n;
                        continue;
                    }
                    if rest.len() < 9 {
                        return Ok(());
                    }
                    let len = usize::from(rest[0]) << 16
                        | usize::from(rest[1]) << 8
                        | usize::from(rest[2]);
                    let kind = rest[3];
                    let flags = rest[4];
                    let stream =
                        u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7fff_ffff;
                    if self.block.is_some() && kind != CONTINUATION {
                        return Err(InboundError::Frame(
                            "header block not followed by CONTINUATION",
                        ));
                    }
                    if kind != HEADERS && kind != CONTINUATION {
                        out.extend_from_slice(&rest[..9]);
                        *at += 9;
                        self.passing = len;
                        continue;
                    }
                    if len > MAX_FRAME {
                        return Err(InboundError::Frame(
                            "header frame larger than SETTINGS_MAX_FRAME_SIZE",
                        ));
                    }
                    if rest.len() < 9 + len {
                        return Ok(());
                    }
                    let frame = rest[..9 + len].to_vec();
                    *at += 9 + len;
                    self.header_frame(kind, flags, stream, frame, out)?;
                }
            }
        }
    }

    fn header_frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        frame: Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), InboundError> {
        let payload = &frame[9..];
        let block = if kind == HEADERS {
            let mut body = payload;
            let mut padding = 0;
            if flags & PADDED != 0 {
                let (&pad, rest) = body
                    .split_first()
                    .ok_or(InboundError::Frame("PADDED HEADERS without a pad length"))?;
                padding = usize::from(pad);
                body = rest;
            }
            let mut priority = None;
            if flags & PRIORITY != 0 {
                if body.len() < 5 {
                    return Err(InboundError::Frame("HEADERS too short for its priority"));
                }
                let mut p = [0u8; 5];
                p.copy_from_slice(&body[..5]);
                priority = Some(p);
                body = &body[5..];
            }
            if padding > body.len() {
                return Err(InboundError::Frame("HEADERS padding longer than the frame"));
            }
            let fragment = body[..body.len() - padding].to_vec();
            self.block.insert(Block {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                fragment,
                raw: frame,
            })
        } else {
            let block = self
                .block
                .as_mut()
                .ok_or(InboundError::Frame("CONTINUATION without HEADERS"))?;
            if block.stream != stream {
                return Err(InboundError::Frame("CONTINUATION on another stream"));
            }
            block.fragment.extend_from_slice(payload);
            block.raw.extend_from_slice(&frame);
            block
        };
        if block.raw.len() > MAX_BLOCK {
            return Err(InboundError::Frame("header block too large"));
        }
        if flags & END_HEADERS != 0 {
            let block = self.block.take().expect("collected above");
            self.finish(block, out)?;
        }
        Ok(())
    }

    /// A whole header block: fix `:scheme` if needed, remember the request, forward it.
    fn finish(&mut self, block: Block, out: &mut Vec<u8>) -> Result<(), InboundError> {
        let mut fields = self.decoder.decode(&block.fragment)?;
        let changed = normalise_scheme(&mut fields);
        if fields.iter().any(|f| f.name.starts_with(b":")) {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent
                .push_back((block.stream, seen(&fields, changed)));
        }
        if changed {
            self.reencode = true;
        }
        if !self.reencode {
            out.extend_from_slice(&block.raw);
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(block.fragment.len() * 2);
        hpack::encode_literals(&fields, &mut encoded);
        write_block(&block, &encoded, out);
        Ok(())
    }
}

/// Turns a `:scheme` of `https:` or `http:` into `https` or `http`: Google's front ends
/// accept the colon (firebase-admin for Node sends it), h2 does not (`http::uri::Scheme`
/// refuses `:` in a scheme). Returns whether anything changed.
fn normalise_scheme(fields: &mut [Field]) -> bool {
    let mut changed = false;
    for field in fields.iter_mut().filter(|f| f.name == b":scheme") {
        if field.value == b"https:" || field.value == b"http:" {
            field.value.pop();
            changed = true;
        }
    }
    changed
}

/// What the request looks like and what h2 will object to (the checks of
/// `h2::server::Peer::convert_poll_message`, minus CONNECT).
fn seen(fields: &[Field], changed: bool) -> SeenRequest {
    let get = |name: &[u8]| {
        fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| String::from_utf8_lossy(&f.value).into_owned())
    };
    let method = get(b":method");
    let scheme = get(b":scheme");
    let authority = get(b":authority");
    let path = get(b":path");
    let problem = if method.is_none() {
        Some("missing :method".to_owned())
    } else if fields.iter().any(|f| f.name == b":status") {
        Some(":status in a request".to_owned())
    } else if let Some((v, Err(e))) = authority
        .as_deref()
        .map(|v| (v, http::uri::Authority::try_from(v)))
    {
        Some(format!("malformed :authority {v:?}: {e}"))
    } else if let Some((v, Err(e))) = scheme
        .as_deref()
        .map(|v| (v, http::uri::Scheme::try_from(v)))
    {
        Some(format!("malformed :scheme {v:?}: {e}"))
    } else if scheme.is_none() && method.as_deref() != Some("CONNECT") {
        Some("missing :scheme".to_owned())
    } else if path.as_deref() == Some("") {
        Some("empty :path".to_owned())
    } else if let Some((v, Err(e))) = path
        .as_deref()
        .map(|v| (v, http::uri::PathAndQuery::try_from(v)))
    {
        Some(format!("malformed :path {v:?}: {e}"))
    } else {
        None
    };
    let mut summary = format!(
        "{} {}",
        method.unwrap_or_default(),
        path.unwrap_or_default()
    );
    if let Some(scheme) = scheme {
        // As sent: the colon put back if it was taken off.
        let colon = if changed { ":" } else { "" };
        summary.push_str(&format!(" :scheme={scheme}{colon}"));
    }
    if let Some(authority) = authority {
        summary.push_str(&format!(" :authority={authority}"));
    }
    SeenRequest { summary, problem }
}

/// Writes a re-encoded header block as HEADERS plus CONTINUATIONs of at most [`MAX_FRAME`].
fn write_block(block: &Block, encoded: &[u8], out: &mut Vec<u8>) {
    let priority_len = if block.priority.is_some() { 5 } else { 0 };
    let first_room = MAX_FRAME - priority_len;
    let (first, mut rest) = encoded.split_at(encoded.len().min(first_room));
    let mut flags = if block.end_stream { END_STREAM } else { 0 };
    if block.priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    frame_header(
        out,
        priority_len + first.len(),
        HEADERS,
        flags,
        block.stream,
    );
    if let Some(p) = block.priority {
        out.extend_from_slice(&p);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, more) = rest.split_at(rest.len().min(MAX_FRAME));
        let flags = if more.is_empty() { END_HEADERS } else { 0 };
        frame_header(out, chunk.len(), CONTINUATION, flags, block.stream);
        out.extend_from_slice(chunk);
        rest = more;
    }
}

fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame_header(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    fn raw_string(out: &mut Vec<u8>, s: &[u8]) {
        out.push(s.len() as u8);
        out.extend_from_slice(s);
    }

    /// `:method POST`, `:scheme` as given (literal with incremental indexing, as nghttp2
    /// sends it), `:path /fcm/send`.
    fn request_block(scheme: &[u8]) -> Vec<u8> {
        let mut block = vec![0x83, 0x47];
        raw_string(&mut block, scheme);
        block.push(0x44);
        raw_string(&mut block, b"/fcm/send");
        block
    }

    /// Feeds `input` in chunks of `chunk` bytes; returns what the server would read.
    fn run(inbound: &mut Inbound, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            inbound.feed(piece, &mut out).unwrap();
        }
        out
    }

    /// Splits server-side bytes into frames: (kind, flags, stream, payload).
    fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut bytes = &bytes[PREFACE.len()..];
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len =
                usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
            let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
            out.push((bytes[3], bytes[4], stream, bytes[9..9 + len].to_vec()));
            bytes = &bytes[9 + len..];
        }
        out
    }

    fn decoded(decoder: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        decoder
            .decode(block)
            .unwrap()
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name).unwrap(),
                    String::from_utf8(f.value).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn http1_passes_through_untouched() {
        let request = b"POST /fcm/send HTTP/1.1\r\nHost: x\r\n\r\n";
        for chunk in [1, 3, request.len()] {
            let mut inbound = Inbound::new();
            assert_eq!(run(&mut inbound, request, chunk), request);
            assert!(inbound.is_other());
        }
    }

    #[test]
    fn blocks_that_need_no_fix_pass_byte_for_byte() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        input.extend(frame(HEADERS, END_HEADERS, 1, &request_block(b"https")));
        input.extend(frame(0x0, END_STREAM, 1, b"{\"to\":\"x\"}"));
        for chunk in [1, 5, 9, input.len()] {
            let mut inbound = Inbound::new();
            assert_eq!(run(&mut inbound, &input, chunk), input, "chunks of {chunk}");
            assert!(inbound.is_h2());
            assert_eq!(
                inbound.request(1).unwrap().summary,
                "POST /fcm/send :scheme=https"
            );
            assert_eq!(inbound.request(1).unwrap().problem, None);
        }
    }

    #[test]
    fn scheme_with_a_colon_is_fixed_also_when_referred_to_by_index() {
        let mut input = PREFACE.to_vec();
        // Stream 1 indexes `:scheme: https:`; stream 3 refers to it as dynamic entry 63
        // (`:path` was added after it, so it is 62), split over a CONTINUATION.
        let mut padded = vec![3];
        padded.extend(request_block(b"https:"));
        padded.extend([0, 0, 0]);
        input.extend(frame(HEADERS, END_HEADERS | PADDED, 1, &padded));
        input.extend(frame(HEADERS, END_STREAM, 3, &[0x83, 0xbf]));
        input.extend(frame(CONTINUATION, END_HEADERS, 3, &[0xbe]));
        for chunk in [1, 7, input.len()] {
            let mut inbound = Inbound::new();
            let out = run(&mut inbound, &input, chunk);
            let frames = frames(&out);
            assert_eq!(frames.len(), 2, "one HEADERS per request, no padding left");
            let mut server = Decoder::new();
            let first = decoded(&mut server, &frames[0].3);
            assert_eq!(first[1], (":scheme".to_owned(), "https".to_owned()));
            assert_eq!(
                (frames[1].0, frames[1].1, frames[1].2),
                (HEADERS, END_STREAM | END_HEADERS, 3)
            );
            let second = decoded(&mut server, &frames[1].3);
            assert_eq!(second[1], (":scheme".to_owned(), "https".to_owned()));
            assert_eq!(second[2], (":path".to_owned(), "/fcm/send".to_owned()));
            assert!(
                server.decode(&[0xbe]).is_err(),
                "the server's table stays empty"
            );
            assert_eq!(
                inbound.request(3).unwrap().summary,
                "POST /fcm/send :scheme=https:"
            );
        }
    }

    #[test]
    fn large_rewritten_blocks_are_split_into_continuations() {
        let mut block = request_block(b"http:");
        block.push(0x00);
        raw_string(&mut block, b"x-big");
        let big = vec![b'a'; 40_000];
        // Length 40,000 with a 7-bit prefix: 127, then 39,873 in 7-bit groups.
        block.extend([0x7f, 0xc1, 0xb7, 0x02]);
        block.extend(&big);
        let mut input = PREFACE.to_vec();
        let (a, b) = block.split_at(10_000);
        let (b, c) = b.split_at(16_000);
        input.extend(frame(HEADERS, END_STREAM, 1, a));
        input.extend(frame(CONTINUATION, 0, 1, b));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, c));
        let mut inbound = Inbound::new();
        let frames = frames(&run(&mut inbound, &input, 4096));
        assert!(frames.iter().all(|f| f.3.len() <= MAX_FRAME));
        assert_eq!(frames[0].0, HEADERS);
        assert!(frames[1..].iter().all(|f| f.0 == CONTINUATION));
        assert_eq!(frames.last().unwrap().1, END_HEADERS);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.3.clone()).collect();
        let fields = decoded(&mut Decoder::new(), &joined);
        assert_eq!(fields[1].1, "http");
        assert_eq!(fields[3].1.len(), big.len());
    }

    #[test]
    fn invalid_requests_are_remembered_with_the_reason_h2_will_give() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            HEADERS,
            END_HEADERS | END_STREAM,
            1,
            &request_block(b"ftp:"),
        ));
        let mut inbound = Inbound::new();
        let out = run(&mut inbound, &input, input.len());
        assert_eq!(out, input, "nothing to fix: passed as is for h2 to refuse");
        let seen = inbound.request(1).unwrap();
        let problem = seen.problem.as_deref().unwrap_or("");
        assert!(
            problem.starts_with("malformed :scheme \"ftp:\""),
            "{problem:?}"
        );
    }

    #[test]
    fn broken_framing_and_hpack_are_errors() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &request_block(b"https")));
        input.extend(frame(0x0, 0, 1, b"data before CONTINUATION"));
        let mut out = Vec::new();
        assert!(matches!(
            Inbound::new().feed(&input, &mut out),
            Err(InboundError::Frame(_))
        ));
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0xc0]));
        assert!(matches!(
            Inbound::new().feed(&input, &mut out),
            Err(InboundError::Hpack(_))
        ));
    }
}
