//! The HTTP server: actix's HTTP/1 service over connections whose parser refusals are problems.
//!
//! actix-http refuses a request head it cannot parse (more than 96 headers, a head over 128 KiB,
//! a malformed line) before any middleware runs, and writes a fixed 431 or 400 with an empty body.
//! Clients are promised one error shape everywhere, so the connection rewrites exactly those
//! answers — an empty-bodied 400 or 431, which the application itself never sends (its errors all
//! pass `problems_only`) — into problem documents on their way out. After such an answer actix
//! closes the connection, so nothing follows it.

use crate::app::AppState;
use crate::error::Problem;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::http::StatusCode;
use actix_web::{web, App};
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Serves the application on `listener`, with actix-web's own defaults (keep-alive 5 s, a head
/// within 5 s, one worker per core).
pub fn serve(listener: TcpListener, state: web::Data<AppState>) -> io::Result<Server> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    Ok(Server::build()
        .listen("kopilka-http", listener, move || {
            let state = state.clone();
            let app = App::new()
                .app_data(state.clone())
                .configure(|cfg| super::configure(cfg, &state))
                .wrap(actix_web::middleware::from_fn(crate::metrics::track));
            let config = AppConfig::__priv_test_new(false, addr.to_string(), addr);
            fn_service(|io: TcpStream| async move {
                let peer = io.peer_addr().ok();
                let _ = io.set_nodelay(true);
                Ok::<_, DispatchError>((ProblemIo::new(io), Protocol::Http1, peer))
            })
            .and_then(
                HttpService::build()
                    .keep_alive(Duration::from_secs(5))
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .local_addr(addr)
                    .finish(map_config(app.into_factory(), move |_| config.clone())),
            )
        })?
        .run())
}

/// A connection that turns actix-http's empty parser refusals into problem documents.
pub struct ProblemIo<T> {
    inner: T,
    /// A rewritten answer still to be written, and how much of it is.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// The problem document for actix-http's own empty refusal at the start of `buf`, if it is one.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let (status, code, detail) = if buf.starts_with(b"HTTP/1.1 431 ") {
        (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "request head: at most 96 headers and 128 KiB",
        )
    } else if buf.starts_with(b"HTTP/1.1 400 ") {
        (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "malformed HTTP request",
        )
    } else {
        return None;
    };
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    // An answer with a body is the application's (already a problem); the parser's has none.
    if !head.contains("\r\ncontent-length: 0\r\n") || head_end != buf.len() {
        return None;
    }
    let body = serde_json::to_vec(&Problem {
        type_: format!("/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        code,
        detail,
    })
    .ok()?;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is pending; ready once nothing is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(replacement) = rewrite(buf) {
            self.pending = Some((replacement, 0));
            // The original counts as written; the replacement goes out now or on the next flush.
            if let Poll::Ready(Err(e)) = self.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parsers_empty_refusals_are_rewritten() {
        let parser = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sat, 28 Nov 2026 00:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(parser).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "));
        assert!(out.contains("application/problem+json"));
        assert!(out.ends_with("\"code\":\"headers_too_large\",\"detail\":\"request head: at most 96 headers and 128 KiB\"}"));
        let ours = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 120\r\ncontent-type: application/problem+json\r\n\r\n";
        assert!(rewrite(ours).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ok).is_none());
    }
}
