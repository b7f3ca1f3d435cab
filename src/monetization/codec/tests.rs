//! Unit tests of the codec module.
use super::*;
use std::io::Read;

/// A filter that, once it has 4 bytes, inserts `[X]` after them (changed) or, for
/// bodies starting with "keep", leaves them alone; then passes everything on.
struct Mark {
    held: Vec<u8>,
    decided: Option<FilterState>,
}

impl Mark {
    fn new() -> Mark {
        Mark {
            held: Vec::new(),
            decided: None,
        }
    }
}

impl DecodedFilter for Mark {
    fn push(&mut self, decoded: &[u8], out: &mut Vec<u8>) -> FilterState {
        if let Some(s) = self.decided {
            out.extend_from_slice(decoded);
            return s;
        }
        self.held.extend_from_slice(decoded);
        if self.held.len() < 4 {
            return FilterState::Undecided;
        }
        let s = if self.held.starts_with(b"keep") {
            FilterState::Unchanged
        } else {
            out.extend_from_slice(&self.held[..4]);
            out.extend_from_slice(b"[X]");
            self.held.drain(..4);
            FilterState::Changed
        };
        out.append(&mut self.held);
        self.decided = Some(s);
        s
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> FilterState {
        let s = self.decided.unwrap_or(FilterState::Unchanged);
        out.append(&mut self.held);
        self.decided = Some(s);
        s
    }
}

fn marked(body: &[u8]) -> Vec<u8> {
    let mut v = body[..4].to_vec();
    v.extend_from_slice(b"[X]");
    v.extend_from_slice(&body[4..]);
    v
}

/// Asserts equality without printing megabytes.
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes vs {} expected, first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

fn encode(format: Format, data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(format);
    e.write(data).unwrap();
    e.finish().unwrap()
}

fn decode(coding: &str, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match coding {
        "identity" => out.extend_from_slice(data),
        "gzip" => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        }
        "zlib" => {
            flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)?;
        }
        "raw" => {
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)?;
        }
        "br" => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
        }
        _ => unreachable!(),
    }
    Ok(out)
}

fn run(coding: Coding, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut t = Transcoder::new(coding, Mark::new());
    let mut out = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        match t.filter(Some(c), i + 1 == chunks.len()) {
            Emit::AsIs => out.extend_from_slice(c),
            Emit::Bytes(b) => out.extend_from_slice(&b),
        }
    }
    if chunks.is_empty() {
        if let Emit::Bytes(b) = t.filter(None, true) {
            out.extend_from_slice(&b);
        }
    }
    (out, t.truncated())
}

const FORMATS: [(Coding, Format, &str); 5] = [
    (Coding::Identity, Format::Identity, "identity"),
    (Coding::Gzip, Format::Gzip, "gzip"),
    (Coding::Deflate, Format::Zlib, "zlib"),
    (Coding::Deflate, Format::RawDeflate, "raw"),
    (Coding::Brotli, Format::Brotli, "br"),
];

// Rules out: a body re-encoded in another format, or losing bytes at chunk edges.
#[test]
fn changed_bodies_leave_in_their_own_format_at_any_split() {
    let body: Vec<u8> = b"hello world, "
        .iter()
        .cycle()
        .take(3000)
        .copied()
        .collect();
    let expected = marked(&body);
    for (coding, format, name) in FORMATS {
        let wire = encode(format, &body);
        for k in (0..=wire.len()).step_by(7).chain([1, wire.len() - 1]) {
            let (out, truncated) = run(coding, &[&wire[..k], &wire[k..]]);
            assert!(!truncated);
            same(
                &decode(name, &out).unwrap(),
                &expected,
                &format!("{name} split {k}"),
            );
        }
        let ones: Vec<&[u8]> = wire.chunks(1).collect();
        let (out, _) = run(coding, &ones);
        same(
            &decode(name, &out).unwrap(),
            &expected,
            &format!("{name} bytewise"),
        );
    }
}

// Rules out: re-encoding (or altering) a body the filter leaves alone.
#[test]
fn unchanged_bodies_pass_byte_exact() {
    let body = b"keep this body exactly as it is".repeat(50);
    for (coding, format, name) in FORMATS {
        let wire = encode(format, &body);
        for k in [0, 1, 2, 5, wire.len() / 2, wire.len()] {
            let (out, _) = run(coding, &[&wire[..k], &wire[k..]]);
            same(&out, &wire, &format!("{name} split {k}"));
        }
    }
}

// Rules out: a 500, a hang or a mangled body when the compressed body is corrupt
// or truncated before the filter decided: the raw bytes go out untouched.
#[test]
fn corrupt_before_the_decision_passes_raw() {
    let garbage =
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03this is not deflate data at all".to_vec();
    let (out, _) = run(Coding::Gzip, &[&garbage[..5], &garbage[5..]]);
    assert_eq!(out, garbage);
    for (coding, format, name) in FORMATS {
        if coding == Coding::Identity {
            continue;
        }
        // Truncated while the filter still holds everything (it needs 4 bytes).
        let wire = encode(format, b"ab");
        let cut = &wire[..wire.len() - 3];
        let (out, _) = run(coding, &[cut]);
        assert_eq!(out, cut, "{name} truncated");
        // Flipped bytes in the middle of a short stream.
        let mut bad = wire.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad[mid + 1] ^= 0x55;
        let (out, _) = run(coding, &[&bad]);
        assert!(out == bad || decode(name, &out).is_ok(), "{name} flipped");
        // Not the format at all.
        let junk = b"<html>not compressed</html>".to_vec();
        let (out, _) = run(coding, &[&junk[..3], &junk[3..]]);
        assert_eq!(out, junk, "{name} junk");
        // Trailing garbage after the stream end, with everything undecided.
        let mut tail = encode(format, b"ab");
        tail.extend_from_slice(b"GARBAGE");
        let (out, _) = run(coding, &[&tail]);
        assert_eq!(out, tail, "{name} trailing garbage");
    }
    let (out, _) = run(Coding::Deflate, &[b"x"]);
    assert_eq!(out, b"x");
    let (out, _) = run(Coding::Gzip, &[]);
    assert!(out.is_empty());
}

// Rules out: a hang or an unterminated stream when corruption shows only after the
// body was changed: the output is a complete stream of what was decoded.
#[test]
fn corrupt_after_the_change_ends_cleanly() {
    let mut x = 0x9e37_79b9u32;
    let body: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b"abcdefghijklmnop <>"[(x % 19) as usize]
        })
        .collect();
    for (coding, format, name) in FORMATS {
        if coding == Coding::Identity {
            continue;
        }
        let wire = encode(format, &body);
        let cut = wire.len() * 2 / 3;
        let mut bad = wire.clone();
        for b in &mut bad[cut..cut + 64] {
            *b ^= 0xa5;
        }
        let (out, truncated) = run(
            coding,
            &[&bad[..cut], &bad[cut..cut + 32], &bad[cut + 32..]],
        );
        // Raw deflate has no checksum: damage that still decodes goes unnoticed.
        assert!(truncated || name == "raw", "{name}");
        // What decoded before the corruption was noticed went out (deflate and
        // brotli may decode damaged data a little before failing; gzip and zlib
        // notice at the latest at their checksum), in a well-formed stream.
        let expected = marked(&body);
        let got = decode(name, &out).expect("a well-formed stream");
        let intact = body.len() / 2;
        assert!(
            got.len() >= intact && got.len() <= expected.len() + 64 * 1024,
            "{name}: {} of {}, wire {}",
            got.len(),
            expected.len(),
            wire.len()
        );
        same(&got[..intact], &expected[..intact], name);
        // Truncated after the change: same.
        let (out, truncated) = run(coding, &[&wire[..cut]]);
        assert!(truncated, "{name} truncated");
        let got = decode(name, &out).expect("a well-formed stream");
        same(&got, &expected[..got.len()], name);
    }
}

// Rules out: decoded bytes kept inside a decoder (brotli's writer keeps all but one
// buffer until more input comes), delaying the page and the link decision.
#[test]
fn what_arrived_goes_out_at_once() {
    let body: Vec<u8> = (0..400_000u32)
        .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
        .collect();
    for (coding, format, name) in FORMATS {
        let wire = encode(format, &body);
        let mut t = Transcoder::new(coding, Mark::new());
        let half = &wire[..wire.len() / 2];
        let sent = match t.filter(Some(half), false) {
            Emit::AsIs => half.to_vec(),
            Emit::Bytes(b) => b,
        };
        // Everything the half decodes to (plus the filter's 3 bytes) is decodable
        // from what was sent.
        let mut reference = Decoder::new(format, Vec::new());
        reference.write(half).unwrap();
        let mut d = Decoder::new(format, Vec::new());
        d.write(&sent).unwrap();
        let (got, want) = (d.sink().len(), reference.sink().len() + 3);
        assert!(want > 20_000, "{name}: a meaningful half");
        assert_eq!(got, want, "{name}: decodable so far");
    }
}

// Rules out: a decompression bomb growing the transcoder's memory with its ratio.
#[test]
fn output_stays_bounded_for_highly_compressed_input() {
    let body = vec![b'a'; 20 * 1024 * 1024];
    for (coding, format, name) in FORMATS {
        if coding == Coding::Identity {
            continue;
        }
        let wire = encode(format, &body);
        let mut t = Transcoder::new(coding, Mark::new());
        let mut total = Vec::new();
        for c in wire.chunks(16 * 1024) {
            if let Emit::Bytes(b) = t.filter(Some(c), false) {
                // Each output is about as small as the input that made it.
                assert!(b.len() < 256 * 1024, "{name}: {}", b.len());
                total.extend_from_slice(&b);
            }
        }
        if let Emit::Bytes(b) = t.filter(None, true) {
            total.extend_from_slice(&b);
        }
        assert_eq!(
            decode(name, &total).unwrap().len(),
            body.len() + 3,
            "{name}"
        );
    }
}

#[test]
fn zlib_header_detection() {
    assert!(is_zlib_header(0x78, 0x9c));
    assert!(is_zlib_header(0x78, 0x01));
    assert!(is_zlib_header(0x78, 0xda));
    let raw = encode(Format::RawDeflate, b"hello hello hello");
    assert!(!is_zlib_header(raw[0], raw[1]));
}

#[test]
fn content_encoding_names() {
    assert_eq!(Coding::from_content_encoding(None), Some(Coding::Identity));
    assert_eq!(
        Coding::from_content_encoding(Some(" GZip ")),
        Some(Coding::Gzip)
    );
    assert_eq!(Coding::from_content_encoding(Some("compress")), None);
}
