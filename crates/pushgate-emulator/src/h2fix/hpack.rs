//! Just enough HPACK (RFC 7541) for [`super::inbound`]: a decoder that follows the client's
//! dynamic table, and an encoder that writes plain literals and never touches the table.

use std::collections::VecDeque;

use super::huffman;

/// Dynamic table size the server allows: hyper sets no `SETTINGS_HEADER_TABLE_SIZE`, so h2
/// advertises the protocol default and a client may not go above it.
pub(crate) const MAX_TABLE_SIZE: usize = 4096;

/// Why a header block could not be decoded (h2 would answer COMPRESSION_ERROR).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HPACK: {0}")]
pub(crate) struct HpackError(pub(crate) &'static str);

/// One decoded header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    /// Lower-case name, pseudo-headers included (`:scheme`).
    pub(crate) name: Vec<u8>,
    /// Raw value bytes.
    pub(crate) value: Vec<u8>,
    /// Sent as "never indexed" (a secret such as `authorization`); re-sent the same way.
    pub(crate) sensitive: bool,
}

/// The client-to-server decoding context of one connection.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Newest first, as HPACK numbers them (index 62 is the front).
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl Decoder {
    /// A fresh context: empty table, the protocol's default size.
    pub(crate) fn new() -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: MAX_TABLE_SIZE,
        }
    }

    /// Decodes one whole header block, updating the dynamic table as the client did.
    pub(crate) fn decode(&mut self, mut src: &[u8]) -> Result<Vec<Field>, HpackError> {
        let mut fields = Vec::new();
        let mut size_update_allowed = true;
        while let Some(&first) = src.first() {
            if first & 0x80 != 0 {
                let index = integer(&mut src, 7)?;
                let (name, value) = self.entry(index)?;
                fields.push(Field {
                    name,
                    value,
                    sensitive: false,
                });
            } else if first & 0xe0 == 0x20 {
                if !size_update_allowed {
                    return Err(HpackError("table size update after a field"));
                }
                let size = integer(&mut src, 5)?;
                if size > MAX_TABLE_SIZE {
                    return Err(HpackError("table size update above the advertised limit"));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                // Literal: with incremental indexing (01), never indexed (0001) or
                // without indexing (0000).
                let (prefix, indexing, sensitive) = if first & 0xc0 == 0x40 {
                    (6, true, false)
                } else {
                    (4, false, first & 0x10 != 0)
                };
                let name_index = integer(&mut src, prefix)?;
                let name = if name_index == 0 {
                    string(&mut src)?
                } else {
                    self.entry(name_index)?.0
                };
                let value = string(&mut src)?;
                if indexing {
                    self.insert(name.clone(), value.clone());
                }
                fields.push(Field {
                    name,
                    value,
                    sensitive,
                });
            }
            size_update_allowed = false;
        }
        Ok(fields)
    }

    fn entry(&self, index: usize) -> Result<(Vec<u8>, Vec<u8>), HpackError> {
        match index {
            0 => Err(HpackError("index 0")),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Ok((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
            }
            _ => self
                .table
                .get(index - 62)
                .cloned()
                .ok_or(HpackError("index beyond the dynamic table")),
        }
    }

    fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let entry_size = name.len() + value.len() + 32;
        self.evict(entry_size);
        // An entry larger than the whole table empties it and is not added (RFC 7541, 4.4).
        if entry_size <= self.max_size {
            self.size += entry_size;
            self.table.push_front((name, value));
        }
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            let Some((name, value)) = self.table.pop_back() else {
                break;
            };
            self.size -= name.len() + value.len() + 32;
        }
    }
}

/// Writes `fields` as literals without indexing (never indexed for sensitive ones) with
/// literal names and raw strings: the server's table is never used, so it cannot disagree
/// with the client's.
pub(crate) fn encode_literals(fields: &[Field], dst: &mut Vec<u8>) {
    for field in fields {
        put_integer(dst, if field.sensitive { 0x10 } else { 0x00 }, 4, 0);
        put_integer(dst, 0, 7, field.name.len());
        dst.extend_from_slice(&field.name);
        put_integer(dst, 0, 7, field.value.len());
        dst.extend_from_slice(&field.value);
    }
}

/// Reads an HPACK integer with an `n`-bit prefix (RFC 7541, 5.1).
fn integer(src: &mut &[u8], n: u32) -> Result<usize, HpackError> {
    const TRUNCATED: HpackError = HpackError("truncated integer");
    let (&first, rest) = src.split_first().ok_or(TRUNCATED)?;
    *src = rest;
    let max_prefix = (1usize << n) - 1;
    let mut value = usize::from(first) & max_prefix;
    if value < max_prefix {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let (&byte, rest) = src.split_first().ok_or(TRUNCATED)?;
        *src = rest;
        if shift > 28 {
            return Err(HpackError("integer too large"));
        }
        value += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Reads a string literal, raw or Huffman-coded (RFC 7541, 5.2).
fn string(src: &mut &[u8]) -> Result<Vec<u8>, HpackError> {
    let huffman = src.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(src, 7)?;
    if len > src.len() {
        return Err(HpackError("truncated string"));
    }
    let (bytes, rest) = src.split_at(len);
    *src = rest;
    if huffman {
        huffman::decode(bytes).map_err(|_| HpackError("bad Huffman string"))
    } else {
        Ok(bytes.to_vec())
    }
}

/// Writes `value` as an HPACK integer with an `n`-bit prefix after the `flags` bits.
fn put_integer(dst: &mut Vec<u8>, flags: u8, n: u32, value: usize) {
    let max_prefix = (1usize << n) - 1;
    if value < max_prefix {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

/// RFC 7541, appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(fields: &[Field]) -> Vec<(&str, &str)> {
        fields
            .iter()
            .map(|f| {
                (
                    std::str::from_utf8(&f.name).unwrap(),
                    std::str::from_utf8(&f.value).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn decodes_the_rfc_request_sequence_with_huffman_and_the_dynamic_table() {
        // RFC 7541, C.4.1 to C.4.3: three requests sharing the dynamic table.
        let mut decoder = Decoder::new();
        let first = decoder
            .decode(&[
                0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
                0x90, 0xf4, 0xff,
            ])
            .unwrap();
        assert_eq!(
            pairs(&first),
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ]
        );
        let second = decoder
            .decode(&[
                0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
            ])
            .unwrap();
        assert_eq!(pairs(&second)[3], (":authority", "www.example.com"));
        assert_eq!(pairs(&second)[4], ("cache-control", "no-cache"));
        let third = decoder
            .decode(&[
                0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
                0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
            ])
            .unwrap();
        assert_eq!(
            pairs(&third),
            [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ]
        );
        assert_eq!(decoder.size, 164);
    }

    #[test]
    fn literals_round_trip_and_keep_sensitivity() {
        let fields = vec![
            Field {
                name: b":scheme".to_vec(),
                value: b"https".to_vec(),
                sensitive: false,
            },
            Field {
                name: b"authorization".to_vec(),
                value: vec![b'x'; 300],
                sensitive: true,
            },
        ];
        let mut block = Vec::new();
        encode_literals(&fields, &mut block);
        let mut decoder = Decoder::new();
        assert_eq!(decoder.decode(&block).unwrap(), fields);
        assert!(decoder.table.is_empty());
    }

    #[test]
    fn refuses_bad_indexes_and_oversized_tables() {
        assert!(Decoder::new().decode(&[0x80]).is_err());
        assert!(Decoder::new().decode(&[0xbe]).is_err());
        // Size update to 4097: 0x3f then 4097 - 31 = 4066 = 0xe2 0x1f.
        assert!(Decoder::new().decode(&[0x3f, 0xe2, 0x1f]).is_err());
        assert!(Decoder::new().decode(&[0x3f, 0xe1, 0x1f]).is_ok());
    }
}
