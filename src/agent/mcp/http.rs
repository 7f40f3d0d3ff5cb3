//! Streamable HTTP for the MCP server, on loopback only.
//!
//! - Binds a loopback address (`127.0.0.0/8` or `::1`); anything else is
//!   refused, since there is no OAuth here.
//! - Requires `Authorization: Bearer TOKEN` on every request (401
//!   otherwise). The token is random, generated on first use, stored in
//!   `state/mcp-http-token` (mode 0600) and printed once to stderr.
//! - Validates `Origin` through the SDK (`with_allowed_origins` plus
//!   `enforce_origin_validation`): requests without an Origin pass, a
//!   present Origin must be on the `--allow-origin` list (empty by
//!   default) or gets 403. `Host` must be a loopback name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use super::McpServer;
use crate::agent::gate::Gate;
use crate::agent::AgentError;
use crate::home::fsutil::{self, PRIVATE_MODE};
use crate::home::Paths;

/// The token file name, in the state directory.
pub const TOKEN_FILE: &str = "mcp-http-token";

/// `state/mcp-http-token`.
pub fn token_file(paths: &Paths) -> PathBuf {
    paths.state_dir.join(TOKEN_FILE)
}

/// The bearer token: read, or generated and stored (and then returned
/// with `true`).
pub fn load_or_create_token(paths: &Paths) -> Result<(String, bool), AgentError> {
    let path = token_file(paths);
    if let Some(bytes) = fsutil::read_optional(&path)? {
        let t = String::from_utf8_lossy(&bytes).trim().to_string();
        if t.len() >= 32 {
            return Ok((t, false));
        }
    }
    fsutil::create_private_dir(&paths.state_dir)?;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    fsutil::write_atomic(&path, format!("{token}\n").as_bytes(), PRIVATE_MODE)?;
    Ok((token, true))
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Where to listen (loopback).
    pub addr: SocketAddr,
    /// Origins allowed to call (`http://localhost:5173`); empty = none.
    pub allowed_origins: Vec<String>,
}

fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_bearer(State(token): State<Arc<String>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same_secret(t.trim().as_bytes(), token.as_bytes()));
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token; the token is in the mijia state directory (mcp-http-token)\n",
        )
            .into_response()
    }
}

/// Serves MCP over Streamable HTTP at `http://ADDR/mcp` until the process
/// is stopped.
pub async fn serve(gate: Arc<Gate>, opts: HttpOptions) -> Result<(), AgentError> {
    if !opts.addr.ip().is_loopback() {
        return Err(AgentError::Usage(format!(
            "--http {} is not a loopback address; mijia serves HTTP only on 127.0.0.1 (or ::1)",
            opts.addr
        )));
    }
    for o in &opts.allowed_origins {
        if !o.contains("://") {
            return Err(AgentError::Usage(format!(
                "--allow-origin '{o}' needs a scheme, like http://localhost:5173"
            )));
        }
    }
    let (token, created) = load_or_create_token(gate.paths())?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| AgentError::Io {
            action: "listen on",
            path: PathBuf::from(opts.addr.to_string()),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| AgentError::Io {
        action: "listen on",
        path: PathBuf::from(opts.addr.to_string()),
        source,
    })?;
    if created {
        eprintln!(
            "mijia mcp: new bearer token (stored in {}): {token}",
            token_file(gate.paths()).display()
        );
    }
    eprintln!("mijia mcp: listening on http://{local}/mcp");
    let mut hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    hosts.push(local.ip().to_string());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(opts.allowed_origins.clone())
        .enforce_origin_validation();
    let server = McpServer::new(gate, "http")?;
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let app =
        axum::Router::new()
            .nest_service("/mcp", service)
            .layer(middleware::from_fn_with_state(
                Arc::new(token),
                require_bearer,
            ));
    axum::serve(listener, app)
        .await
        .map_err(|e| AgentError::Serve(e.to_string()))
}
