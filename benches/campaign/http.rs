//! A bare HTTP/1.1 client over tokio sockets for the connection campaigns: one
//! request at a time on a kept-alive connection, bytes written as given (so a
//! campaign can send what no well-behaved client library would), responses read
//! with `Content-Length`, chunked or close-delimited bodies.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The most a response head may hold before the client gives up on it.
const MAX_HEAD: usize = 64 * 1024;

/// One response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A kept-alive client connection.
pub struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        // Small buffers: a flood holds thousands of these.
        Ok(Conn {
            io: BufReader::with_capacity(2048, s),
        })
    }

    /// Writes `req` and reads one response.
    pub async fn send(&mut self, req: &[u8]) -> io::Result<Resp> {
        self.io.get_mut().write_all(req).await?;
        read_response(&mut self.io).await
    }

    /// The socket, for campaigns that write and read on their own terms.
    pub fn stream(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.io
    }
}

/// `GET path` with `Host` and the given extra header lines (each ending in CRLF).
pub fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: tollgate.test\r\n{extra}\r\n").into_bytes()
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads one response (the body of a `HEAD` or a 1xx/204/304 is not read).
pub async fn read_response<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Resp> {
    let mut line = String::new();
    let mut head_bytes = 0usize;
    let mut lines = Vec::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a complete response head",
            ));
        }
        head_bytes += n;
        if head_bytes > MAX_HEAD {
            return Err(bad("response head too large".into()));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if lines.is_empty() {
                continue; // stray CRLF before a response
            }
            break;
        }
        lines.push(l.to_string());
    }
    let status: u16 = lines[0]
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {:?}", lines[0])))?;
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if status < 200 || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed inside a chunked body",
                ));
            }
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = resp.body.len();
            resp.body.resize(start + size, 0);
            r.read_exact(&mut resp.body[start..]).await?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).await?;
        }
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {len:?}")))?;
        resp.body.resize(len, 0);
        r.read_exact(&mut resp.body).await?;
    } else {
        r.read_to_end(&mut resp.body).await?;
    }
    Ok(resp)
}
