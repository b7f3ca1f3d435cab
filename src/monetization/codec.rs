//! Streaming decode and re-encode of a response body per `Content-Encoding` (gzip,
//! deflate, br, identity), around a filter over the decoded bytes ([`Transcoder`]).
//!
//! Owns the rule for bodies that cannot be read: while the filter has not decided, the
//! transcoder keeps the raw bytes it was given, so a body that turns out corrupt (or
//! truncated), or one the filter leaves alone, goes out exactly as it came. Once the
//! filter has changed the body, corruption found later ends the output cleanly: what was
//! decoded so far is encoded and the encoded stream is properly finished, the rest of the
//! origin's body is dropped, and [`Transcoder::truncated`] says so (the shell logs it).
//!
//! Pure over bytes: no IO, no panics on any input, and memory bounded by the raw bytes
//! held before the decision ([`RAW_LIMIT`]) plus one decoded piece (32 KiB) at a time,
//! whatever the compression ratio.

use std::fmt;
use std::io::{self, Write};

use flate2::write::{DeflateEncoder, GzEncoder, MultiGzDecoder, ZlibEncoder};
use flate2::{Compression, Decompress, FlushDecompress, Status};

/// The raw bytes held at most while the filter has not decided; past it the body
/// passes on unchanged.
pub const RAW_LIMIT: usize = 128 * 1024;

/// gzip/deflate level of re-encoded bodies (zlib's default balance).
const DEFLATE_LEVEL: u32 = 6;
/// brotli quality and window (log2) of re-encoded bodies: a streaming quality with a
/// 1 MiB window, so each response's encoder stays a few MiB.
const BROTLI_QUALITY: u32 = 5;
const BROTLI_LGWIN: u32 = 20;
/// Size of one decoded piece handed to the filter.
const PIECE: usize = 32 * 1024;

/// A `Content-Encoding` the transcoder can decode and encode again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// No coding (absent header or `identity`).
    Identity,
    /// `gzip` (or `x-gzip`); several members are read as one body.
    Gzip,
    /// `deflate`: zlib-wrapped as RFC 9110 says, or the raw deflate some servers send
    /// (told apart by the zlib header; re-encoded the same way).
    Deflate,
    /// `br`.
    Brotli,
}

impl Coding {
    /// The coding named by a `Content-Encoding` value (`None`: the header is absent);
    /// `None` for stacked codings (`gzip, br`) and anything else.
    pub fn from_content_encoding(value: Option<&str>) -> Option<Coding> {
        let v = value.unwrap_or("").trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Some(Coding::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Some(Coding::Gzip)
        } else if v.eq_ignore_ascii_case("deflate") {
            Some(Coding::Deflate)
        } else if v.eq_ignore_ascii_case("br") {
            Some(Coding::Brotli)
        } else {
            None
        }
    }
}

/// What a filter over the decoded body has decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterState {
    /// Not yet: it holds what it was given.
    Undecided,
    /// It changes the body; from now on everything it emits is sent.
    Changed,
    /// It leaves the body alone: the raw bytes go out as they came.
    Unchanged,
}

/// A streaming filter over decoded bytes (the link injector is one). It may change only
/// what it holds before it decides: once it has said `Changed` or `Unchanged`, `push`
/// appends `decoded` as it is (so an identity body then passes without a copy).
pub trait DecodedFilter {
    /// Takes the next decoded bytes; appends the decoded bytes to send to `out`.
    fn push(&mut self, decoded: &[u8], out: &mut Vec<u8>) -> FilterState;
    /// The body ended: appends what it still holds and decides (never `Undecided`).
    fn finish(&mut self, out: &mut Vec<u8>) -> FilterState;
}

/// What to send downstream for one body chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Emit {
    /// The chunk exactly as it came.
    AsIs,
    /// These bytes instead (possibly none, while holding).
    Bytes(Vec<u8>),
}

/// The wire format of a body: [`Coding`] with deflate's wrapping resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Identity,
    Gzip,
    Zlib,
    RawDeflate,
    Brotli,
}

/// Decodes a body in `coding`, runs the decoded bytes through a filter and encodes them
/// again in the same format; see the module doc for what happens to bodies it cannot
/// read.
pub struct Transcoder<F: DecodedFilter> {
    coding: Coding,
    state: State<F>,
    truncated: bool,
}

enum State<F: DecodedFilter> {
    /// The filter has not decided: `raw` is everything received. `decoder` is `None`
    /// only for deflate until two bytes tell zlib from raw.
    Holding {
        raw: Vec<u8>,
        decoder: Option<Decoder<Stage<F>>>,
        filter: Option<F>,
    },
    /// The filter changed the body: decode, filter, encode.
    Rewriting { decoder: Decoder<Stage<F>> },
    /// Raw bytes pass on unchanged.
    Passing,
    /// Nothing more is sent (corrupt after the change, or finished).
    Ended,
}

impl<F: DecodedFilter> fmt::Debug for Transcoder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Holding { raw, .. } => format!("holding {} raw bytes", raw.len()),
            State::Rewriting { .. } => "rewriting".into(),
            State::Passing => "passing".into(),
            State::Ended => "ended".into(),
        };
        f.debug_struct("Transcoder")
            .field("coding", &self.coding)
            .field("state", &state)
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl<F: DecodedFilter> Transcoder<F> {
    /// A transcoder for a body in `coding` through `filter`.
    pub fn new(coding: Coding, filter: F) -> Transcoder<F> {
        let format = match coding {
            Coding::Identity => Some(Format::Identity),
            Coding::Gzip => Some(Format::Gzip),
            Coding::Brotli => Some(Format::Brotli),
            Coding::Deflate => None,
        };
        let (decoder, filter) = match format {
            Some(format) => (Some(Decoder::new(format, Stage::new(filter, format))), None),
            None => (None, Some(filter)),
        };
        Transcoder {
            coding,
            state: State::Holding {
                raw: Vec::new(),
                decoder,
                filter,
            },
            truncated: false,
        }
    }

    /// True once corruption found after the filter changed the body cut the output
    /// short (the encoded output is still complete and well-formed).
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Takes the next raw chunk (`None`: no data) and whether the body ends with it;
    /// says what to send instead.
    pub fn filter(&mut self, chunk: Option<&[u8]>, end: bool) -> Emit {
        let chunk = chunk.unwrap_or(&[]);
        let first = self.push(chunk);
        if !end {
            return first;
        }
        let last = self.finish();
        match (first, last.is_empty()) {
            (first, true) => first,
            (Emit::AsIs, false) => {
                let mut out = chunk.to_vec();
                out.extend_from_slice(&last);
                Emit::Bytes(out)
            }
            (Emit::Bytes(mut out), false) => {
                out.extend_from_slice(&last);
                Emit::Bytes(out)
            }
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Emit {
        match &mut self.state {
            State::Passing => Emit::AsIs,
            State::Ended => Emit::Bytes(Vec::new()),
            State::Rewriting { decoder } => {
                if decoder.format == Format::Identity {
                    // Past the decision an identity body passes as it is.
                    return Emit::AsIs;
                }
                match decoder.write(chunk) {
                    Ok(()) => Emit::Bytes(decoder.sink().take_encoded(true)),
                    Err(_) => Emit::Bytes(self.end_after_corruption()),
                }
            }
            State::Holding {
                raw,
                decoder,
                filter,
            } => {
                raw.extend_from_slice(chunk);
                let decoder = match decoder {
                    Some(d) => {
                        if d.write(chunk).is_err() {
                            return self.pass_raw();
                        }
                        d
                    }
                    None => {
                        // deflate: wait for the two bytes that tell zlib from raw.
                        if raw.len() < 2 {
                            return Emit::Bytes(Vec::new());
                        }
                        let format = if is_zlib_header(raw[0], raw[1]) {
                            Format::Zlib
                        } else {
                            Format::RawDeflate
                        };
                        let Some(filter) = filter.take() else {
                            return self.pass_raw();
                        };
                        let d = decoder.insert(Decoder::new(format, Stage::new(filter, format)));
                        if d.write(raw).is_err() {
                            return self.pass_raw();
                        }
                        d
                    }
                };
                let (state, held) = (decoder.sink().state, raw.len());
                match state {
                    FilterState::Unchanged => self.pass_raw(),
                    FilterState::Changed => self.start_rewriting(),
                    FilterState::Undecided if held > RAW_LIMIT => self.pass_raw(),
                    FilterState::Undecided => Emit::Bytes(Vec::new()),
                }
            }
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Passing | State::Ended => Vec::new(),
            State::Holding { raw, decoder, .. } => {
                let Some(mut decoder) = decoder else {
                    return raw;
                };
                if decoder.finish().is_err() {
                    return raw;
                }
                let sink = decoder.sink();
                if sink.state == FilterState::Undecided {
                    let mut decoded = Vec::new();
                    sink.state = sink.filter.finish(&mut decoded);
                    if sink.state == FilterState::Changed && sink.encode(&decoded).is_err() {
                        return raw;
                    }
                }
                if sink.state != FilterState::Changed {
                    return raw;
                }
                match sink.finish_encoded() {
                    Ok(out) => out,
                    Err(_) => raw,
                }
            }
            State::Rewriting { mut decoder } => {
                let mut out = Vec::new();
                if decoder.finish().is_err() {
                    self.truncated = true;
                }
                out.extend_from_slice(&decoder.sink().finish_encoded().unwrap_or_default());
                out
            }
        }
    }

    /// Gives up: everything held goes out raw and the rest passes unchanged.
    fn pass_raw(&mut self) -> Emit {
        match std::mem::replace(&mut self.state, State::Passing) {
            State::Holding { raw, .. } => Emit::Bytes(raw),
            _ => Emit::AsIs,
        }
    }

    /// The filter changed the body: the held raw bytes are no longer needed.
    fn start_rewriting(&mut self) -> Emit {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Holding {
                decoder: Some(mut decoder),
                ..
            } => {
                let out = decoder.sink().take_encoded(true);
                self.state = State::Rewriting { decoder };
                Emit::Bytes(out)
            }
            other => {
                self.state = other;
                Emit::Bytes(Vec::new())
            }
        }
    }

    /// Corrupt input after the change: finish the encoded stream with what was decoded
    /// and send nothing more.
    fn end_after_corruption(&mut self) -> Vec<u8> {
        self.truncated = true;
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Rewriting { mut decoder } => decoder.sink().finish_encoded().unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// True when two bytes start a zlib stream (RFC 1950: deflate method, window ≤ 32 KiB,
/// header checksum).
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// Where decoded pieces go: the filter, then (once it changed the body) the encoder.
struct Stage<F> {
    filter: F,
    state: FilterState,
    encoder: Option<Encoder>,
    scratch: Vec<u8>,
    /// The encoder failed (not expected: it writes to memory); the body ends.
    failed: bool,
}

impl<F: DecodedFilter> Stage<F> {
    fn new(filter: F, format: Format) -> Stage<F> {
        Stage {
            filter,
            state: FilterState::Undecided,
            encoder: Some(Encoder::new(format)),
            scratch: Vec::new(),
            failed: false,
        }
    }

    fn encode(&mut self, decoded: &[u8]) -> io::Result<()> {
        match self.encoder.as_mut() {
            Some(e) => e.write(decoded),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// The encoded bytes produced so far (`flush`: after a sync flush, so everything
    /// given so far is decodable downstream now).
    fn take_encoded(&mut self, flush: bool) -> Vec<u8> {
        match self.encoder.as_mut() {
            Some(e) => e.take(flush).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    fn finish_encoded(&mut self) -> io::Result<Vec<u8>> {
        match self.encoder.take() {
            Some(e) => e.finish(),
            None => Ok(Vec::new()),
        }
    }
}

impl<F: DecodedFilter> Write for Stage<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        match self.state {
            // The raw bytes go out; nothing decoded is needed any more.
            FilterState::Unchanged => {}
            FilterState::Undecided | FilterState::Changed => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                self.state = self.filter.push(buf, &mut scratch);
                if self.state == FilterState::Changed && self.encode(&scratch).is_err() {
                    self.failed = true;
                }
                self.scratch = scratch;
                if self.failed {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A streaming decoder that owns its sink and writes decoded bytes into it in pieces of
/// at most [`PIECE`] bytes (the third-party decoders' own output buffers), so a body's
/// compression ratio never sets how much is held at once.
struct Decoder<W: Write> {
    format: Format,
    kind: DecoderKind<W>,
}

enum DecoderKind<W: Write> {
    Identity(W),
    /// flate2's gzip reader: header, members, CRC and length checked at each member's
    /// end (a truncated member fails `try_finish`).
    Gzip(Box<MultiGzDecoder<W>>),
    /// zlib or raw deflate with flate2's inflater; `ended` once the stream's end was read.
    Inflate {
        z: Box<Decompress>,
        ended: bool,
        sink: W,
    },
    Brotli(Box<brotli::DecompressorWriter<Counted<W>>>),
}

/// A writer that counts what went through it (to tell when brotli's writer has no more
/// decoded output pending).
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Decoder<W> {
    fn new(format: Format, sink: W) -> Decoder<W> {
        let kind = match format {
            Format::Identity => DecoderKind::Identity(sink),
            Format::Gzip => DecoderKind::Gzip(Box::new(MultiGzDecoder::new(sink))),
            Format::Zlib | Format::RawDeflate => DecoderKind::Inflate {
                z: Box::new(Decompress::new(format == Format::Zlib)),
                ended: false,
                sink,
            },
            Format::Brotli => DecoderKind::Brotli(Box::new(brotli::DecompressorWriter::new(
                Counted {
                    inner: sink,
                    written: 0,
                },
                PIECE,
            ))),
        };
        Decoder { format, kind }
    }

    fn sink(&mut self) -> &mut W {
        match &mut self.kind {
            DecoderKind::Identity(w) => w,
            DecoderKind::Gzip(d) => d.get_mut(),
            DecoderKind::Inflate { sink, .. } => sink,
            DecoderKind::Brotli(d) => &mut d.get_mut().inner,
        }
    }

    /// Decodes `input` into the sink. `Err`: the input is corrupt, or goes on after the
    /// end of the compressed stream (or the sink failed).
    fn write(&mut self, input: &[u8]) -> io::Result<()> {
        match &mut self.kind {
            DecoderKind::Identity(w) => w.write_all(input),
            DecoderKind::Gzip(d) => {
                d.write_all(input)?;
                // flate2's writer keeps its last decoded buffer until the next write:
                // hand it on now.
                d.flush()
            }
            DecoderKind::Brotli(d) => {
                let mut rest = input;
                while !rest.is_empty() {
                    let n = d.write(rest)?;
                    if n == 0 {
                        // Data after the end of the brotli stream.
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                    rest = rest.get(n..).unwrap_or_default();
                }
                // When its input runs out, brotli's writer hands out only one buffer of
                // what it decoded and keeps the rest until more input comes: drain it,
                // so everything decoded so far moves on now.
                loop {
                    let before = d.get_ref().written;
                    // An empty write consumes nothing; it only hands out output.
                    let _consumed: usize = d.write(&[])?;
                    if d.get_ref().written == before {
                        return Ok(());
                    }
                }
            }
            DecoderKind::Inflate { z, ended, sink } => inflate(z, ended, input, sink),
        }
    }

    /// The input ended. `Err`: the stream was incomplete (truncated) or corrupt.
    fn finish(&mut self) -> io::Result<()> {
        match &mut self.kind {
            DecoderKind::Identity(_) => Ok(()),
            DecoderKind::Gzip(d) => d.try_finish(),
            DecoderKind::Brotli(d) => d.close(),
            DecoderKind::Inflate { ended: true, .. } => Ok(()),
            DecoderKind::Inflate { ended: false, .. } => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Inflates `input` into `sink` in pieces of at most [`PIECE`] bytes. Data after the
/// stream's end, or a call that makes no progress on input, is corrupt.
fn inflate(
    z: &mut Decompress,
    ended: &mut bool,
    mut input: &[u8],
    sink: &mut impl Write,
) -> io::Result<()> {
    let mut out = vec![0u8; PIECE];
    loop {
        if *ended {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(io::ErrorKind::InvalidData.into())
            };
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .decompress(input, &mut out, FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let used = usize::try_from(z.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = usize::try_from(z.total_out() - out_before).unwrap_or(usize::MAX);
        sink.write_all(out.get(..produced).unwrap_or(&out))?;
        input = input.get(used..).unwrap_or_default();
        if status == Status::StreamEnd {
            *ended = true;
        } else if input.is_empty() && produced < out.len() {
            return Ok(());
        } else if used == 0 && produced == 0 {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

/// A streaming encoder into memory.
enum Encoder {
    Identity(Vec<u8>),
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Zlib(Box<ZlibEncoder<Vec<u8>>>),
    RawDeflate(Box<DeflateEncoder<Vec<u8>>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    fn new(format: Format) -> Encoder {
        let level = Compression::new(DEFLATE_LEVEL);
        match format {
            Format::Identity => Encoder::Identity(Vec::new()),
            Format::Gzip => Encoder::Gzip(Box::new(GzEncoder::new(Vec::new(), level))),
            Format::Zlib => Encoder::Zlib(Box::new(ZlibEncoder::new(Vec::new(), level))),
            Format::RawDeflate => {
                Encoder::RawDeflate(Box::new(DeflateEncoder::new(Vec::new(), level)))
            }
            Format::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                BROTLI_QUALITY,
                BROTLI_LGWIN,
            ))),
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Identity(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
            Encoder::Gzip(e) => e.write_all(data),
            Encoder::Zlib(e) => e.write_all(data),
            Encoder::RawDeflate(e) => e.write_all(data),
            Encoder::Brotli(e) => e.write_all(data),
        }
    }

    /// The encoded bytes so far, after a sync flush when `flush` (so everything written
    /// so far can be decoded downstream now).
    fn take(&mut self, flush: bool) -> io::Result<Vec<u8>> {
        if flush {
            match self {
                Encoder::Identity(_) => {}
                Encoder::Gzip(e) => e.flush()?,
                Encoder::Zlib(e) => e.flush()?,
                Encoder::RawDeflate(e) => e.flush()?,
                Encoder::Brotli(e) => e.flush()?,
            }
        }
        Ok(std::mem::take(match self {
            Encoder::Identity(v) => v,
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Zlib(e) => e.get_mut(),
            Encoder::RawDeflate(e) => e.get_mut(),
            Encoder::Brotli(e) => e.get_mut(),
        }))
    }

    /// The rest of the encoded stream, properly ended.
    fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Identity(v) => Ok(v),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zlib(e) => e.finish(),
            Encoder::RawDeflate(e) => e.finish(),
            Encoder::Brotli(e) => Ok(e.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests;
