//! The MCP adapter: the only module that uses the MCP SDK (`rmcp`, pinned).
//!
//! [`McpServer`] implements the SDK's server handler on top of the
//! [`Gate`]: tool listing and calls, resources (the device list and each
//! device's spec). One server answers both protocol eras on the same
//! transport:
//!
//! - handshake era (up to 2025-11-25, `initialize`): confirmations are
//!   `elicitation/create` requests sent to the client and awaited with the
//!   policy's timeout;
//! - 2026-07-28 (stateless, `server/discover`, per-request `_meta`):
//!   confirmations are `input_required` results carrying the form and a
//!   `requestState` sealed with HMAC (a per-process random key), bound to
//!   the tool and the digest of its arguments, expiring with the
//!   confirmation timeout; the gate enforces one-time use.
//!
//! A client that declares no elicitation gets a pending approval id
//! instead (see [`super::approvals`]).
//!
//! Transports: [`serve_stdio`] (protocol on stdout only; logs go to
//! stderr) and [`http::serve`] (Streamable HTTP on loopback with a bearer
//! token and Origin validation).

pub mod http;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::RngCore;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest,
    ElicitRequestParams, ElicitationAction, ElicitationSchema, ErrorCode, Implementation,
    InputRequest, InputRequests, InputRequiredResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, RequestStateCodec, RequestStateError, SealOptions, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, Peer, ServerHandler, ServiceError, ServiceExt};
use serde_json::{json, Value};

use super::gate::{
    self, Answer, Asker, BoxFuture, CallMeta, Channel, Gate, Outcome, PendingConfirm, Resume,
    ToolReply,
};
use super::tools::{self, ToolDef};
use super::AgentError;

/// The key of the confirmation in `inputRequests` / `inputResponses`.
const INPUT_KEY: &str = "confirm";

const INSTRUCTIONS: &str = "mijia controls the user's Xiaomi Mijia home. Call home_overview \
first to learn rooms and device names. Refer to devices by the names it returns; when a \
reference is ambiguous the tool lists the candidates: ask the user which one, do not guess. \
Some actions need the user's confirmation, which the user gives in their client or with \
`mijia approve ID`; you cannot confirm on their behalf. Payments and purchases are never \
possible.";

/// The MCP server: cheap to clone (one per HTTP session).
#[derive(Clone)]
pub struct McpServer {
    gate: Arc<Gate>,
    codec: Arc<RequestStateCodec>,
    transport: &'static str,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl McpServer {
    /// A server over `gate`; `transport` names it in the audit log.
    pub fn new(gate: Arc<Gate>, transport: &'static str) -> Result<Self, AgentError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let codec = RequestStateCodec::try_new(key.to_vec())
            .map_err(|e| AgentError::Serve(format!("request state key: {e}")))?;
        Ok(McpServer {
            gate,
            codec: Arc::new(codec),
            transport,
        })
    }

    fn tool_list(&self) -> Result<ListToolsResult, ErrorData> {
        // Tool objects are built once per listing variant.
        static CACHE: OnceLock<Vec<(Vec<&'static str>, Vec<Value>)>> = OnceLock::new();
        let listed = self.gate.list_tools();
        let names: Vec<&'static str> = listed.iter().map(|t| t.name).collect();
        let cache = CACHE.get_or_init(|| {
            [(false, false), (true, false), (false, true), (true, true)]
                .into_iter()
                .map(|(g, s)| {
                    let l = tools::listed(g, s);
                    (
                        l.iter().map(|t| t.name).collect(),
                        l.iter().map(|t| tools::mcp_json(t)).collect(),
                    )
                })
                .collect()
        });
        let tools_json = cache
            .iter()
            .find(|(n, _)| *n == names)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| listed.iter().map(|t| tools::mcp_json(t)).collect());
        serde_json::from_value(json!({ "resultType": "complete", "tools": tools_json }))
            .map_err(|e| ErrorData::internal_error(format!("tool list: {e}"), None))
    }
}

fn is_modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn can_elicit_form(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

fn call_meta(ctx: &RequestContext<RoleServer>, transport: &'static str) -> CallMeta {
    CallMeta {
        transport,
        client: ctx
            .client_info()
            .map(|i| format!("{}/{}", i.name, i.version)),
        era: ctx.protocol_version().map(|v| v.as_str().to_string()),
    }
}

fn to_result(reply: ToolReply) -> CallToolResult {
    let mut r = if reply.is_error {
        CallToolResult::error(vec![ContentBlock::text(reply.text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(reply.text)])
    };
    if let Some(s) = reply.structured {
        // Mirror the structured result as JSON text for older clients.
        if let Ok(text) = serde_json::to_string(&s) {
            r.content.push(ContentBlock::text(text));
        }
        r.structured_content = Some(s);
    }
    r
}

fn confirm_form(message: &str) -> Result<ElicitRequestParams, ErrorData> {
    let schema: ElicitationSchema = serde_json::from_value(gate::confirm_schema())
        .map_err(|e| ErrorData::internal_error(format!("confirmation form: {e}"), None))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message.to_string(),
        requested_schema: schema,
    })
}

fn answer_of(action: &ElicitationAction, content: Option<&Value>) -> Answer {
    match action {
        ElicitationAction::Accept => Answer::Accept {
            confirm: content
                .and_then(|c| c.get(INPUT_KEY))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        ElicitationAction::Decline => Answer::Decline,
        _ => Answer::Cancel,
    }
}

/// Handshake-era elicitation through the peer.
struct PeerAsker {
    peer: Peer<RoleServer>,
}

impl Asker for PeerAsker {
    fn ask<'a>(&'a self, message: &'a str, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let params = match confirm_form(message) {
                Ok(p) => p,
                Err(e) => return Answer::Failed(e.message.to_string()),
            };
            match self
                .peer
                .create_elicitation_with_timeout(params, Some(timeout))
                .await
            {
                Ok(r) => answer_of(&r.action, r.content.as_ref()),
                Err(ServiceError::Timeout { .. }) => Answer::Timeout,
                Err(e) => Answer::Failed(e.to_string()),
            }
        })
    }
}

fn resume_of(
    codec: &RequestStateCodec,
    req: &CallToolRequestParams,
    args: &Value,
) -> Option<Resume> {
    let state = req.request_state.as_deref()?;
    let ad = format!("{}\n{}", req.name, gate::args_digest(&req.name, args));
    match codec.open_json_with::<PendingConfirm>(state, ad.as_bytes()) {
        Ok(pending) => {
            let answer = match req.input_responses.as_ref().and_then(|m| m.get(INPUT_KEY)) {
                None => Answer::Cancel,
                Some(v) => match v.get("action").and_then(Value::as_str) {
                    Some("accept") => answer_of(&ElicitationAction::Accept, v.get("content")),
                    Some("decline") => Answer::Decline,
                    _ => Answer::Cancel,
                },
            };
            Some(Resume::Answer { pending, answer })
        }
        Err(RequestStateError::Expired) => Some(Resume::Expired),
        Err(e) => Some(Resume::Invalid(e.to_string())),
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("mijia", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::KNOWN_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tool_list()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let meta = call_meta(&context, self.transport);
        let modern = is_modern(&context);
        let elicit = can_elicit_form(&context);
        let asker = PeerAsker {
            peer: context.peer.clone(),
        };
        let channel = match (modern, elicit) {
            (_, false) => Channel::None,
            (false, true) => Channel::Ask(&asker),
            (true, true) => Channel::Mrtr(resume_of(&self.codec, &request, &args)),
        };
        let outcome = self
            .gate
            .call(&request.name, args, &meta, channel)
            .await
            .map_err(|e| ErrorData::new(ErrorCode::INVALID_PARAMS, e.to_string(), None))?;
        match outcome {
            Outcome::Done(reply) => Ok(CallToolResponse::Complete(to_result(reply))),
            Outcome::NeedInput {
                message,
                pending,
                ttl,
            } => {
                let ad = format!("{}\n{}", pending.tool, pending.digest);
                let state = self
                    .codec
                    .seal_json_with(
                        &pending,
                        &SealOptions::new().associated_data(ad.as_bytes()).ttl(ttl),
                    )
                    .map_err(|e| ErrorData::internal_error(format!("request state: {e}"), None))?;
                let mut requests = InputRequests::new();
                requests.insert(
                    INPUT_KEY.to_string(),
                    InputRequest::Elicitation(ElicitRequest::new(confirm_form(&message)?)),
                );
                Ok(CallToolResponse::InputRequired(InputRequiredResult::new(
                    Some(requests),
                    Some(state),
                )))
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let list: Vec<Value> = self
            .gate
            .resources()
            .into_iter()
            .map(|r| {
                json!({
                    "uri": r.uri,
                    "name": r.name,
                    "title": r.title,
                    "description": r.description,
                    "mimeType": "application/json",
                })
            })
            .collect();
        serde_json::from_value(json!({ "resultType": "complete", "resources": list }))
            .map_err(|e| ErrorData::internal_error(format!("resource list: {e}"), None))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(text) = self.gate.read_resource(&request.uri) else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {}; list them with resources/list", request.uri),
                None,
            ));
        };
        let result: ReadResourceResult = serde_json::from_value(json!({
            "resultType": "complete",
            "contents": [{"uri": request.uri, "mimeType": "application/json", "text": text}]
        }))
        .map_err(|e| ErrorData::internal_error(format!("resource: {e}"), None))?;
        Ok(ReadResourceResponse::Complete(result))
    }
}

/// Serves MCP on stdin/stdout until the client closes stdin.
pub async fn serve_stdio(gate: Arc<Gate>) -> Result<(), AgentError> {
    let server = McpServer::new(gate, "stdio")?;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| AgentError::Serve(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| AgentError::Serve(e.to_string()))?;
    Ok(())
}

/// The tool catalogue as MCP `tools/list` JSON (for `mijia tools`).
pub fn catalogue_json(defs: &[&ToolDef]) -> Value {
    json!({ "tools": defs.iter().map(|t| tools::mcp_json(t)).collect::<Vec<_>>() })
}
