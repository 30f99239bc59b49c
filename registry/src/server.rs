//! Serving the router over HTTP or HTTPS (axum-server on hyper), with each connection's limits:
//! a cap on open connections, in all and from one address (one over either is closed at once,
//! before any byte is read: one host holding idle sockets cannot lock the others out), and
//! hyper's header read timeout, which also ends a kept-alive connection that sends no new
//! request. The limits of a request itself (body size, body stall, handler time) are the
//! router's (`api::router`).

use std::future::Future;
use std::io;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at most, and from one IP address; the next one is closed at once.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Time a connection has to send a whole request head, and the longest a kept-alive
    /// connection may sit idle before its next request.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_connections: 512, max_connections_per_ip: 32, header_read_timeout: Duration::from_secs(10) }
    }
}

/// Serves `app` on `listener` until `handle` shuts it down; HTTPS when `tls` is given.
pub async fn serve(listener: std::net::TcpListener, app: Router, limits: Limits, tls: Option<RustlsConfig>, handle: Handle) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let capped = Capped {
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        max: limits.max_connections,
        per_ip: Arc::new(Mutex::new(HashMap::new())),
        max_per_ip: limits.max_connections_per_ip,
        first_byte: limits.header_read_timeout,
    };
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(capped).handle(handle);
            connection_limits(server.http_builder(), &limits);
            server.serve(make).await
        }
        Some(config) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let acceptor = RustlsAcceptor::new(config).handshake_timeout(limits.header_read_timeout).acceptor(capped);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor).handle(handle);
            connection_limits(server.http_builder(), &limits);
            server.serve(make).await
        }
    }
}

fn connection_limits(b: &mut hyper_util::server::conn::auto::Builder<TokioExecutor>, limits: &Limits) {
    b.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
}

/// The acceptor that holds one permit per open connection.
#[derive(Clone)]
struct Capped {
    permits: Arc<Semaphore>,
    max: usize,
    /// Open connections per peer address.
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_ip: usize,
    /// How long a new connection may stay silent.
    first_byte: Duration,
}

impl<S: Send + 'static> Accept<TcpStream, S> for Capped {
    type Stream = Permitted;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Permitted, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let taken = self.take(&stream);
        let first_byte = self.first_byte;
        Box::pin(async move {
            let (permit, slot) = taken?;
            // hyper first reads to tell HTTP/1 from HTTP/2, without a timeout of its own: a
            // connection that sends nothing is closed here (then hyper's header timeout runs).
            // A peek, not `readable()`, which may report a socket readable with nothing in it.
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut first)).await {
                Ok(Ok(0)) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a request")),
                Ok(r) => drop(r?),
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "no request within the header timeout")),
            }
            Ok((Permitted { stream, _permit: permit, _slot: slot }, service))
        })
    }
}

impl Capped {
    /// A slot of the peer's address and a permit of the cap, or why the connection is closed.
    fn take(&self, stream: &TcpStream) -> io::Result<(OwnedSemaphorePermit, IpSlot)> {
        let peer = stream.peer_addr()?;
        let ip = peer.ip();
        {
            let mut open = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = open.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                tracing::warn!("connection from {peer} closed: {n} connections from {ip} are open, the cap per address");
                return Err(io::Error::other("connection cap per address reached"));
            }
            *n += 1;
        }
        let slot = IpSlot { ip, open: self.per_ip.clone() };
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((permit, slot)),
            Err(_) => {
                tracing::warn!("connection from {peer} closed: {} connections are open, the cap (--max-connections)", self.max);
                Err(io::Error::other("connection cap reached"))
            }
        }
    }
}

/// One open connection of an address, given back on drop.
struct IpSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// A connection with its permit: the permit goes back when the connection is dropped.
pub struct Permitted {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    _slot: IpSlot,
}

impl AsyncRead for Permitted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Permitted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The soft limit on open files (`ulimit -n`), from /proc/self/limits.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
