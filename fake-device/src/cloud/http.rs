//! The HTTP plumbing of the simulated cloud: the accept loop (loopback
//! peers only), reading a request into [`Req`] (query, cookies, form body),
//! and turning a [`Reply`] into a hyper response or a dropped connection.
//!
//! No routing or protocol logic lives here (see [`super::server`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mijia_proto::cloud::form::decode_form;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::state::Shared;

/// Largest request body read (bigger bodies get HTTP 413).
pub const MAX_BODY: usize = 1024 * 1024;

/// One request, read in full.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub cookies: BTreeMap<String, String>,
    pub body: Bytes,
    /// The body as form fields (empty when it is not a form).
    pub form: Vec<(String, String)>,
}

impl Req {
    /// A field from the form body, else from the query string.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A cookie.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn parse_cookies(headers: &hyper::HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in headers.get_all(hyper::header::COOKIE) {
        let Ok(text) = v.to_str() else { continue };
        for part in text.split(';') {
            if let Some((k, v)) = part.split_once('=') {
                out.insert(k.trim().to_owned(), v.trim().trim_matches('"').to_owned());
            }
        }
    }
    out
}

fn decode_or_empty(text: &str) -> Vec<(String, String)> {
    decode_form(text).unwrap_or_default()
}

/// What to send back.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// An HTTP response.
    Http {
        status: u16,
        content_type: &'static str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Drop,
}

/// Prefix of every account-host JSON reply.
pub const JSON_PREFIX: &str = "&&&START&&&";

impl Reply {
    /// Any body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Http {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Plain JSON (API host, control API).
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", v.to_string())
    }

    /// Account-host JSON: `&&&START&&&` then the JSON.
    pub fn account_json(v: &serde_json::Value) -> Reply {
        Reply::new(
            200,
            "application/json;charset=UTF-8",
            format!("{JSON_PREFIX}{v}"),
        )
    }

    /// Plain text.
    pub fn text(status: u16, s: &str) -> Reply {
        Reply::new(status, "text/plain;charset=UTF-8", s.to_owned())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Adds a `Set-Cookie` (host-only, path `/`).
    pub fn with_cookie(self, name: &str, value: &str) -> Reply {
        self.with_header("set-cookie", &format!("{name}={value}; Path=/; HttpOnly"))
    }

    /// The status, if any (for the request log).
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Http { status, .. } => Some(*status),
            Reply::Drop => None,
        }
    }
}

/// The error that makes hyper close a connection without a reply.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose (injected fault)")]
pub(crate) struct Dropped;

fn to_response(reply: Reply) -> Result<Response<Full<Bytes>>, Dropped> {
    let Reply::Http {
        status,
        content_type,
        headers,
        body,
    } = reply
    else {
        return Err(Dropped);
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(k, v);
        }
    }
    Ok(resp)
}

async fn read(req: Request<Incoming>) -> Result<Req, Reply> {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().map(decode_or_empty).unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let cookies = parse_cookies(&parts.headers);
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Reply::text(413, "request body too large or unreadable")),
    };
    let form = std::str::from_utf8(&body)
        .map(decode_or_empty)
        .unwrap_or_default();
    Ok(Req {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query,
        headers,
        cookies,
        body,
        form,
    })
}

async fn serve_one(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let reply = match read(req).await {
        Ok(r) => super::server::handle(&shared, r).await,
        Err(reply) => reply,
    };
    to_response(reply)
}

/// Accepts connections until `stop` turns true; each connection is served
/// on its own task, all aborted when the loop ends.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => {
                let (stream, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        continue;
                    }
                };
                if !is_loopback_peer(&peer) {
                    tracing::warn!(%peer, "refusing a connection from outside 127.0.0.0/8");
                    continue;
                }
                let shared = Arc::clone(&shared);
                conns.spawn(async move {
                    let svc = service_fn(move |req| serve_one(Arc::clone(&shared), req));
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await
                    {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
        }
    }
    conns.abort_all();
}

fn is_loopback_peer(peer: &SocketAddr) -> bool {
    match peer {
        SocketAddr::V4(v) => v.ip().is_loopback(),
        SocketAddr::V6(v) => v.ip().to_ipv4_mapped().is_some_and(|i| i.is_loopback()),
    }
}
