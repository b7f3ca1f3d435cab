//! A real origin on 127.0.0.1:0 that reads paths as leniently as real servers do,
//! so tests can prove tollgate's path guard against it.
//!
//! For every request it computes the path under several lenient readings that real
//! servers use, each applied in its own fixed order:
//! - Tomcat: `;params` stripped per segment, then percent-decoded, `\` as `/`, cut at
//!   NUL, dots resolved;
//! - decode first: percent-decoded, then `;params` stripped, `\` as `/`, cut at NUL or a
//!   decoded `?`, dots resolved;
//! - IIS double decoding: percent-decoded twice, `\` as `/`, cut at NUL, dots resolved;
//! - and, when started case-insensitive, each of those lower-cased.
//!
//! If any reading is a priced path of the test's price list (`is_priced`), it answers
//! `200 PRICED <reading>`; otherwise `200 FREE`. Tests assert that no response that went
//! through tollgate without a receipt ever carries `PRICED`.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::Router;

use super::background_server::BackgroundServer;

pub struct LenientOrigin {
    pub addr: SocketAddr,
    _server: BackgroundServer,
}

impl LenientOrigin {
    /// Starts the origin; `is_priced` decides which (read) paths are priced content.
    pub fn start(case_insensitive: bool, is_priced: fn(&str) -> bool) -> LenientOrigin {
        let server = BackgroundServer::start(move || {
            Router::new().fallback(move |req: Request| async move {
                let raw = req.uri().path().as_bytes().to_vec();
                match readings(&raw, case_insensitive)
                    .into_iter()
                    .find(|r| is_priced(r))
                {
                    Some(r) => format!("PRICED {r}"),
                    None => "FREE".to_string(),
                }
            })
        });
        LenientOrigin {
            addr: server.addr,
            _server: server,
        }
    }
}

/// The paths the lenient servers read `raw` as.
pub fn readings(raw: &[u8], case_insensitive: bool) -> Vec<String> {
    let tomcat = finish(&cut_nul(&slashes(&decode(&strip_params(raw)))));
    let decode_first = finish(&cut_query(&cut_nul(&slashes(&strip_params(&decode(raw))))));
    let iis = finish(&cut_nul(&slashes(&decode(&decode(raw)))));
    let mut out = vec![tomcat, decode_first, iis];
    if case_insensitive {
        let lower: Vec<String> = out.iter().map(|r| r.to_ascii_lowercase()).collect();
        out.extend(lower);
    }
    out
}

fn decode(b: &[u8]) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn strip_params(b: &[u8]) -> Vec<u8> {
    let segs: Vec<&[u8]> = b
        .split(|&c| c == b'/')
        .map(|s| s.split(|&c| c == b';').next().unwrap_or(b""))
        .collect();
    segs.join(&b'/')
}

fn slashes(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\\' { b'/' } else { c })
        .collect()
}

fn cut_nul(b: &[u8]) -> Vec<u8> {
    b.split(|&c| c == 0).next().unwrap_or(b"").to_vec()
}

fn cut_query(b: &[u8]) -> Vec<u8> {
    b.split(|&c| c == b'?' || c == b'#')
        .next()
        .unwrap_or(b"")
        .to_vec()
}

/// Resolves dots and empty segments, as the servers do before mapping to a file.
fn finish(b: &[u8]) -> String {
    let text = String::from_utf8_lossy(b);
    let mut stack: Vec<&str> = Vec::new();
    let mut dir = false;
    for seg in text.split('/') {
        dir = matches!(seg, "" | "." | "..");
        match seg {
            "" | "." => {}
            ".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = format!("/{}", stack.join("/"));
    if dir && !stack.is_empty() {
        out.push('/');
    }
    out
}
