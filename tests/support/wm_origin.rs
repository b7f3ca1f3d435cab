//! A real origin on 127.0.0.1:0 for the Web Monetization link tests: serves HTML (and
//! not) in identity, gzip, br and deflate, with its chunked body split exactly where a
//! test asks, so tollgate's body filter sees the head cut at any byte.
//!
//! Plain tokio over TCP (no framework) so every byte and chunk boundary is the test's:
//! Pingora's HTTP/1 reader hands each chunk of a chunked body to the filter on its own,
//! however the bytes arrive on the socket.
//!
//! The query says what to serve (any path):
//! - `page=small` (default) | `linked` (already carries the link) | `nohead` | `json` |
//!   `big` (with `size=N`: [`big_page_byte`] streamed in 64 KiB chunks) | `notmod` (304)
//!   | `nocontent` (204);
//! - `enc=identity` (default) | `gzip` | `br` | `deflate` (zlib) | `deflate-raw`;
//! - `corrupt=early` (a gzip header, then garbage) | `late` (the whole page gzipped and
//!   sync-flushed, then garbage instead of the stream's end);
//! - `split=K` (one chunk boundary after K encoded bytes) | `split=each` (one chunk per
//!   byte); `cl=1`: a `Content-Length` body instead of chunks.
//!
//! Every HTML answer carries `ETag: "v1"`, `Vary: Accept-Encoding` and
//! `Accept-Ranges: bytes`. HEAD gets the GET's header without a body.

use std::io::Write;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The wallet address the tests configure.
pub const WALLET: &str = "https://wallet.example/alice";
/// The tag tollgate inserts for [`WALLET`].
pub const LINK: &str = "<link rel=\"monetization\" href=\"https://wallet.example/alice\">";
/// The small page: uppercase head with an attribute, after a doctype and a comment.
pub const SMALL_PAGE: &str = "<!doctype html>\n<!-- a post -->\n<html lang=\"en\">\n<HEAD data-theme=\"dark\">\n<meta charset=\"utf-8\">\n<title>A post</title>\n</HEAD>\n<body><p>Hello, reader.</p></body>\n</html>\n";
/// Where the link goes in [`SMALL_PAGE`]: right after this start tag.
pub const SMALL_HEAD_TAG: &str = "<HEAD data-theme=\"dark\">";
/// A page whose head already carries the link.
pub const LINKED_PAGE: &str = "<!doctype html><html><head><title>Linked</title><link rel=\"monetization\" href=\"https://wallet.example/alice\"></head><body>x</body></html>";
/// A page without a head.
pub const NOHEAD_PAGE: &str = "<p>Just a fragment, no head.</p>";
/// A JSON body (served as application/json on the same routes).
pub const JSON_BODY: &str = "{\"head\":\"<head>\",\"n\":1}";

/// The start of the big page, up to and including its head tag.
pub const BIG_PREFIX: &str = "<!doctype html><html><head>";
const BIG_REST: &str = "<title>Big</title></head><body>\n";
const BIG_FILLER: &[u8] = b"<p>All work and no play makes Jack a dull boy.</p>\n";

/// [`SMALL_PAGE`] as tollgate should send it: the link right after the head tag.
pub fn small_page_with_link() -> String {
    let at = SMALL_PAGE.find(SMALL_HEAD_TAG).unwrap() + SMALL_HEAD_TAG.len();
    format!("{}{LINK}{}", &SMALL_PAGE[..at], &SMALL_PAGE[at..])
}

/// Byte `i` of the big page (any size).
pub fn big_page_byte(i: usize) -> u8 {
    let head = BIG_PREFIX.len() + BIG_REST.len();
    if i < BIG_PREFIX.len() {
        BIG_PREFIX.as_bytes()[i]
    } else if i < head {
        BIG_REST.as_bytes()[i - BIG_PREFIX.len()]
    } else {
        BIG_FILLER[(i - head) % BIG_FILLER.len()]
    }
}

/// `data` in the origin's encoding `enc`.
pub fn encode(enc: &str, data: &[u8]) -> Vec<u8> {
    let level = flate2::Compression::default();
    match enc {
        "identity" => data.to_vec(),
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate-raw" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 9, 22);
            e.write_all(data).unwrap();
            e.into_inner()
        }
        other => panic!("unknown encoding {other}"),
    }
}

/// Decodes `data` as `enc` (strictly: a truncated or corrupt stream is an error).
pub fn decode(enc: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    match enc {
        "identity" => out.extend_from_slice(data),
        "gzip" => {
            flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out)?;
        }
        "deflate" => {
            flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)?;
        }
        "deflate-raw" => {
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)?;
        }
        "br" => {
            brotli::Decompressor::new(data, 4096).read_to_end(&mut out)?;
        }
        other => panic!("unknown encoding {other}"),
    }
    Ok(out)
}

/// The `Content-Encoding` header value for `enc`.
pub fn content_encoding(enc: &str) -> Option<&'static str> {
    match enc {
        "gzip" => Some("gzip"),
        "br" => Some("br"),
        "deflate" | "deflate-raw" => Some("deflate"),
        _ => None,
    }
}

/// The origin's body for `query` (what it sends, encoded), without the big page.
pub fn wire_body(query: &str) -> Vec<u8> {
    let q = Query::parse(query);
    match q.corrupt.as_str() {
        "early" => {
            let mut v = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec();
            v.extend_from_slice(b"this is not deflate data <head> at all");
            return v;
        }
        "late" => {
            // The page, decodable up to a sync flush, then garbage instead of the end.
            let page = SMALL_PAGE.as_bytes();
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(page).unwrap();
            e.flush().unwrap();
            let mut v = e.get_ref().clone();
            v.extend_from_slice(&[0xff; 64]);
            return v;
        }
        _ => {}
    }
    let page: &[u8] = match q.page.as_str() {
        "linked" => LINKED_PAGE.as_bytes(),
        "nohead" => NOHEAD_PAGE.as_bytes(),
        "json" => JSON_BODY.as_bytes(),
        _ => SMALL_PAGE.as_bytes(),
    };
    encode(&q.enc, page)
}

struct Query {
    page: String,
    enc: String,
    corrupt: String,
    split: Option<String>,
    content_length: bool,
    size: usize,
}

impl Query {
    fn parse(query: &str) -> Query {
        let mut q = Query {
            page: "small".into(),
            enc: "identity".into(),
            corrupt: String::new(),
            split: None,
            content_length: false,
            size: 0,
        };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "page" => q.page = v.into(),
                "enc" => q.enc = v.into(),
                "corrupt" => q.corrupt = v.into(),
                "split" => q.split = Some(v.into()),
                "cl" => q.content_length = v == "1",
                "size" => q.size = v.parse().unwrap(),
                _ => {}
            }
        }
        q
    }
}

/// A running origin; stopped (and its thread joined) on drop.
pub struct WmOrigin {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WmOrigin {
    pub fn start() -> WmOrigin {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => {
                            if let Ok((stream, _)) = accepted {
                                tokio::spawn(serve(stream));
                            }
                        }
                    }
                }
            });
            rt.shutdown_background();
        });
        let addr = addr_rx.recv().unwrap();
        WmOrigin {
            addr,
            shutdown: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for WmOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves requests on one connection (keep-alive) until the peer closes.
async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut tmp = [0u8; 4096];
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("/").to_string();
        let body_len: usize = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        // Skip the request body.
        while buf.len() < head_end + body_len {
            let mut tmp = [0u8; 4096];
            match stream.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        let query = target.split_once('?').map_or("", |(_, q)| q).to_string();
        if respond(&mut stream, &method, &query).await.is_err() {
            return;
        }
    }
}

async fn respond(stream: &mut TcpStream, method: &str, query: &str) -> std::io::Result<()> {
    let q = Query::parse(query);
    let head_only = method == "HEAD";
    match q.page.as_str() {
        "notmod" => {
            return stream
                .write_all(
                    b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nVary: Accept-Encoding\r\n\r\n",
                )
                .await;
        }
        "nocontent" => {
            return stream
                .write_all(b"HTTP/1.1 204 No Content\r\nContent-Type: text/html\r\n\r\n")
                .await;
        }
        "big" => return big(stream, q.size, &q.enc, head_only).await,
        _ => {}
    }
    let body = wire_body(query);
    let content_type = if q.page == "json" {
        "application/json"
    } else {
        "text/html; charset=utf-8"
    };
    let enc = if q.corrupt.is_empty() {
        content_encoding(&q.enc)
    } else {
        Some("gzip")
    };
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nETag: \"v1\"\r\nVary: Accept-Encoding\r\nAccept-Ranges: bytes\r\n"
    );
    if let Some(e) = enc {
        head.push_str(&format!("Content-Encoding: {e}\r\n"));
    }
    if q.content_length || head_only {
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await?;
        if !head_only {
            stream.write_all(&body).await?;
        }
        return stream.flush().await;
    }
    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let pieces: Vec<&[u8]> = match q.split.as_deref() {
        Some("each") => body.chunks(1).collect(),
        Some(k) => {
            let k: usize = k.parse::<usize>().unwrap().min(body.len());
            vec![&body[..k], &body[k..]]
        }
        None => vec![&body[..]],
    };
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        write_chunk(stream, piece).await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await
}

async fn write_chunk(stream: &mut TcpStream, piece: &[u8]) -> std::io::Result<()> {
    let mut frame = format!("{:X}\r\n", piece.len()).into_bytes();
    frame.extend_from_slice(piece);
    frame.extend_from_slice(b"\r\n");
    stream.write_all(&frame).await
}

/// The big page, `size` bytes, in 64 KiB chunks generated as they are sent; with
/// `enc=gzip` compressed on the fly (each chunk sync-flushed).
async fn big(
    stream: &mut TcpStream,
    size: usize,
    enc: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let gzip = enc == "gzip";
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        if gzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        }
    );
    stream.write_all(head.as_bytes()).await?;
    if head_only {
        return stream.flush().await;
    }
    const CHUNK: usize = 64 * 1024;
    let mut encoder =
        gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    let mut piece = Vec::with_capacity(CHUNK);
    let mut at = 0;
    while at < size {
        let end = (at + CHUNK).min(size);
        piece.clear();
        piece.extend((at..end).map(big_page_byte));
        match encoder.as_mut() {
            Some(e) => {
                e.write_all(&piece)?;
                e.flush()?;
                let out = std::mem::take(e.get_mut());
                write_chunk(stream, &out).await?;
            }
            None => write_chunk(stream, &piece).await?,
        }
        at = end;
    }
    if let Some(e) = encoder {
        write_chunk(stream, &e.finish()?).await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.flush().await
}
