//! The connection guard in front of every listener (IO shell of [`super`]).
//!
//! [`Limited`] wraps a pingora app. For each request on a connection it reads the
//! request head itself before the app sees a byte: the first byte must come within
//! `idle_timeout` (a kept-alive connection) or `header_timeout` (a new one), the
//! whole head within `header_timeout` of its first byte, and the head may be at
//! most [`super::MAX_HEAD`] bytes (else `431` and close). What it read is handed to
//! the app unchanged through [`Guarded`], a stream that replays those bytes first.
//! A connection holds one of `max_connections` permits for its whole life; one
//! accepted when none is left is closed at once, so a flood never piles up tasks.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::head::head_len;
use super::{Limits, MAX_HEAD};

/// What the guard did with a connection, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `max_connections` were open.
    Full,
    /// The head was not complete within `header_timeout`.
    SlowHead,
    /// The head was larger than [`MAX_HEAD`] (answered 431).
    LargeHead,
}

/// A pingora app behind the limits.
pub struct Limited<A> {
    inner: Arc<A>,
    limits: Limits,
    permits: Arc<Semaphore>,
}

impl<A> Limited<A> {
    /// `inner` behind `limits` (its own `max_connections` permits).
    pub fn new(inner: A, limits: Limits) -> Limited<A> {
        Limited {
            inner: Arc::new(inner),
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for Limited<A> {
    /// The HTTP/1.1 keep-alive loop of pingora's own `ServerApp` for HTTP apps,
    /// with each request's head read under the limits first (tollgate's listeners
    /// speak HTTP/1.x in clear; no h2c, no TLS).
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            note(Closed::Full);
            return None;
        };
        let mut guarded = Box::new(Guarded {
            inner: stream,
            prefix: BytesMut::new(),
            _permit: permit,
        });
        // A new connection must send its head within header_timeout; a kept-alive
        // one may stay silent for idle_timeout before its next request.
        let mut wait_first = self.limits.header_timeout;
        let mut settings: Option<HttpPersistentSettings> = None;
        loop {
            let mut stop = shutdown.clone();
            if *stop.borrow() {
                return None;
            }
            let read = tokio::select! {
                r = read_head(&mut guarded, wait_first, self.limits.header_timeout) => r,
                _ = stop.changed() => return None,
            };
            match read {
                Ok(true) => {}
                Ok(false) => return None,
                Err(closed) => {
                    note(closed);
                    if closed == Closed::LargeHead {
                        let _ = guarded.inner.write_all(TOO_LARGE).await;
                        let _ = guarded.inner.flush().await;
                        Shutdown::shutdown(&mut *guarded.inner).await;
                    }
                    return None;
                }
            }
            let mut session = ServerSession::new_http1(guarded);
            match settings.take() {
                Some(s) => s.apply_to_session(&mut session),
                None => session.set_keepalive_reuses_remaining(
                    self.inner
                        .server_options()
                        .and_then(|o| o.keepalive_request_limit),
                ),
            }
            session.set_keepalive(if *shutdown.borrow() {
                None
            } else {
                Some(self.limits.idle_timeout.as_secs())
            });
            let (stream, persistent) = self
                .inner
                .process_new_http(session, shutdown)
                .await?
                .consume();
            settings = persistent;
            guarded = stream.into_any().downcast::<Guarded>().ok()?;
            if guarded.prefix.is_empty() {
                // Idle until the next request: give the head buffer back.
                guarded.prefix = BytesMut::new();
            }
            wait_first = self.limits.idle_timeout;
        }
    }

    async fn cleanup(&self) {
        self.inner.http_cleanup().await
    }
}

fn note(closed: Closed) {
    crate::metrics::connection_closed(closed);
    tracing::debug!(?closed, "connection closed by the limits");
}

/// The 431 answer to an oversized head (then the connection closes).
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Type: application/json\r\nContent-Length: 79\r\nConnection: close\r\n\
Cache-Control: no-store\r\n\r\n\
{\"code\":\"header_too_large\",\"message\":\"the request head is larger than 64 KiB\"}\n";

/// The first read of a head: most heads fit (browsers send 0.4–1.5 KiB).
const FIRST_READ: usize = 1024;

/// Reads into `g.prefix` until it holds a whole head. `Ok(false)`: the client
/// closed (or went idle past `wait_first`) before sending anything.
async fn read_head(
    g: &mut Guarded,
    wait_first: Duration,
    header_timeout: Duration,
) -> Result<bool, Closed> {
    if g.prefix.is_empty() {
        // Waiting on a small buffer of the task's own, not the head buffer: a
        // connection that idles between requests holds no buffer of its own (the
        // L4 read buffer is off too, see `server::listen`).
        let mut first = [0u8; FIRST_READ];
        match tokio::time::timeout(wait_first, g.inner.read(&mut first)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(false),
            Ok(Ok(n)) => {
                g.prefix.reserve(4096);
                g.prefix.extend_from_slice(&first[..n]);
            }
            // Idle keep-alive: closed quietly. A new connection that never spoke
            // is a slow head.
            Err(_) if wait_first != header_timeout => return Ok(false),
            Err(_) => return Err(Closed::SlowHead),
        }
    }
    let deadline = Instant::now() + header_timeout;
    loop {
        match head_len(&g.prefix) {
            Some(n) if n > MAX_HEAD => return Err(Closed::LargeHead),
            Some(_) => return Ok(true),
            None if g.prefix.len() > MAX_HEAD => return Err(Closed::LargeHead),
            None => {}
        }
        g.prefix.reserve(4096);
        match tokio::time::timeout_at(deadline, g.inner.read_buf(&mut g.prefix)).await {
            // Closed mid-head: nothing to answer.
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(false),
            Ok(Ok(_)) => {}
            Err(_) => return Err(Closed::SlowHead),
        }
    }
}

/// A client connection whose first bytes were read by the limits: reads return
/// those bytes first, then the socket's. Holds the connection's permit.
pub struct Guarded {
    inner: Stream,
    prefix: BytesMut,
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("buffered", &self.prefix.len())
            .finish()
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for Guarded {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut *self.inner).await
    }
}

impl UniqueID for Guarded {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for Guarded {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for Guarded {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for Guarded {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for Guarded {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, d: SocketDigest) {
        self.inner.set_socket_digest(d)
    }
}

#[async_trait]
impl Peek for Guarded {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        if self.prefix.len() >= buf.len() {
            buf.copy_from_slice(&self.prefix[..buf.len()]);
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::TOO_LARGE;

    #[test]
    fn the_431_answer_says_its_length() {
        let text = std::str::from_utf8(TOO_LARGE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "header_too_large");
    }
}
