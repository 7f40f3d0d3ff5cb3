//! The gate: the single decision point every tool call passes.
//!
//! ```text
//! forbidden? → known tool? → policy (generic tools on?) → arguments →
//! resolve device → exposed? → plan (spec check, tier) → tier cap →
//! authorization (read: none; control: grant, asked once; sensitive:
//! confirmation every call) → read before → execute → read back → audit
//! ```
//!
//! `run_scene` takes the same path with a scene instead of one device:
//! scene shared? → every device it touches exposed? → tier of each
//! operation within its device's cap → dry run (spec check, no IO) →
//! authorization at the scene's tier → run with the automation runner →
//! audit (see [`super::scenes`]).
//!
//! Authorization asks the *user* through a [`Channel`]:
//!
//! - [`Channel::Ask`]: the handshake era: the server sends
//!   `elicitation/create` and waits up to the confirmation timeout
//!   ([`Asker`], implemented by the MCP adapter).
//! - [`Channel::Mrtr`]: 2026-07-28: the gate answers
//!   [`Outcome::NeedInput`]; the adapter returns `input_required` with a
//!   sealed request state that binds a one-time [`PendingConfirm`]. The
//!   retry brings back a [`Resume`], which the gate checks (tool, argument
//!   digest, one-time use) before it counts.
//! - [`Channel::None`]: the client cannot ask: a pending approval is
//!   recorded and its id returned; only `mijia approve ID` makes a retry
//!   with `approval_id` run.
//!
//! Devices are reached the way the CLI reaches them by name
//! ([`Gate::with_via`], `mijia --via local|cloud|auto mcp`, default
//! `auto`): the local network first; a device that does not answer there
//! is tried through the Xiaomi cloud when a session exists and its did is
//! known, by the rules of [`crate::cloud::fallback`] (an action only when
//! no hello was answered, so it never reaches the device twice). Every
//! decision above is taken before any IO, whichever route follows; results
//! name the route (`"route": "local" | "cloud"`), and so does the audit
//! line. `run_scene` steps use the automation runner with the same `via`
//! and the same rules (steps that used the cloud carry `"route": "cloud"`).
//!
//! Nothing in the arguments counts as consent. Every call, refused or not,
//! is written to the audit log. This module has no MCP types.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::approvals::{self, ApprovalKind, NewApproval, Refusal};
use super::audit::{AuditLog, AuditRecord, Decision};
use super::clock::{format_duration, millis, now_ms, rfc3339};
use super::grants::{self, Grant};
use super::policy::Policy;
use super::resolve::{self, Resolution};
use super::scenes as agent_scenes;
use super::tier::{self, Capability, Tier};
use super::tools::{self, ToolDef, WritePlan};
use crate::automation::scenes::{self as automation_scenes, Scene, SceneOutcome, SceneReport};
use crate::automation::{Context, HintReader};
use crate::cloud::fallback::{self, NoFallback};
use crate::cloud::{Route, Via};
use crate::home::{
    poll::{status_many, PollOptions},
    specs::describe_model,
    Device, DeviceEntry, DeviceKey, DeviceOpError, DeviceTarget, ModelCatalog, Paths, PropReading,
    Registry,
};
use crate::transport::{ClientConfig, IdStore};

/// A boxed future (for [`Asker`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The user's answer to a confirmation form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Submitted the form; `confirm` is the box they ticked (or not).
    Accept {
        /// The `confirm` field.
        confirm: bool,
    },
    /// Said no.
    Decline,
    /// Dismissed the form.
    Cancel,
    /// No answer within the timeout.
    Timeout,
    /// The client could not ask (it failed the request).
    Failed(String),
}

/// Asks the user now and waits (handshake-era elicitation).
pub trait Asker: Send + Sync {
    /// Shows `message` with a single "Allow" checkbox; gives up after `timeout`.
    fn ask<'a>(&'a self, message: &'a str, timeout: Duration) -> BoxFuture<'a, Answer>;
}

/// A confirmation the gate asked for through `input_required`; sealed into
/// the request state by the adapter and checked again on the retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfirm {
    /// Random one-time id.
    pub id: String,
    /// The tool.
    pub tool: String,
    /// Digest of the arguments.
    pub digest: String,
    /// Grant or confirm.
    pub kind: ApprovalKind,
    /// Expiry, unix ms.
    pub expires_at_ms: u64,
}

/// What came back with a 2026-07-28 retry.
#[derive(Debug, Clone)]
pub enum Resume {
    /// A state that opened, and the user's answer.
    Answer {
        /// The opened state.
        pending: PendingConfirm,
        /// The answer.
        answer: Answer,
    },
    /// The state's time ran out.
    Expired,
    /// The state was forged, tampered with, or is for other arguments.
    Invalid(String),
}

/// How the gate can reach the user for this call.
pub enum Channel<'a> {
    /// It cannot: out-of-band approval.
    None,
    /// Ask now and wait.
    Ask(&'a dyn Asker),
    /// Ask through `input_required`; `Some` on the retry.
    Mrtr(Option<Resume>),
}

/// Who is calling, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    /// `stdio`, `http`, `direct`.
    pub transport: &'static str,
    /// `name/version`.
    pub client: Option<String>,
    /// The protocol version.
    pub era: Option<String>,
}

/// A finished call, for the adapter to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolReply {
    /// `isError`.
    pub is_error: bool,
    /// Text for the model (what happened, or what to do).
    pub text: String,
    /// `structuredContent`.
    pub structured: Option<Value>,
}

/// What the gate decided.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done (successfully or with an `isError` result).
    Done(ToolReply),
    /// Ask the user through `input_required`, then retry.
    NeedInput {
        /// The confirmation text.
        message: String,
        /// What to seal.
        pending: PendingConfirm,
        /// How long the answer may take.
        ttl: Duration,
    },
}

/// A call the gate cannot route (becomes a JSON-RPC error).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// No such tool.
    #[error("unknown tool '{0}'; call tools/list for the tool names")]
    UnknownTool(String),
}

/// Where `run_scene` finds the user's scenes (see
/// [`super::scenes::FileScenes`]). Asked on every call, so edits apply at
/// once.
pub trait SceneProvider: Send + Sync {
    /// The scenes now, or why they cannot be read.
    fn scenes(&self) -> Result<Vec<Scene>, String>;

    /// Scene names (none when the scenes cannot be read).
    fn names(&self) -> Vec<String> {
        self.scenes()
            .map(|s| s.into_iter().map(|s| s.name).collect())
            .unwrap_or_default()
    }
}

/// No scenes (the default).
#[derive(Debug, Default)]
pub struct NoScenes;

impl SceneProvider for NoScenes {
    fn scenes(&self) -> Result<Vec<Scene>, String> {
        Ok(Vec::new())
    }
}

/// The text of the form's only field.
pub const CONFIRM_FIELD: &str = "confirm";

/// The elicitation schema of a confirmation.
pub fn confirm_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            CONFIRM_FIELD: {
                "type": "boolean",
                "title": "Allow",
                "description": "Tick to allow this action."
            }
        },
        "required": [CONFIRM_FIELD]
    })
}

/// The digest that binds approvals and request states to a call: SHA-256
/// of the tool name and the arguments with keys sorted, nulls and
/// `approval_id` left out.
pub fn args_digest(tool: &str, args: &Value) -> String {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        if !x.is_null() && k != "approval_id" {
                            out.insert(k.clone(), canon(x));
                        }
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    // serde_json may keep insertion order; build the text by hand from
    // the canonical value so the digest never depends on it.
    fn text(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(x) = m.get(k) {
                        text(x, out);
                    }
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    text(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    text(&canon(args), &mut s);
    let mut h = Sha256::new();
    h.update(tool.as_bytes());
    h.update(b"\n");
    h.update(s.as_bytes());
    hex::encode(h.finalize())
}

fn reply_err(text: impl Into<String>) -> ToolReply {
    ToolReply {
        is_error: true,
        text: text.into(),
        structured: None,
    }
}

fn done_err(text: impl Into<String>) -> Outcome {
    Outcome::Done(reply_err(text))
}

/// The gate of one home.
pub struct Gate {
    paths: Paths,
    catalog: Arc<ModelCatalog>,
    config: ClientConfig,
    ids: Option<Arc<dyn IdStore>>,
    devices: tokio::sync::Mutex<HashMap<String, Arc<Device>>>,
    used: Mutex<HashMap<String, u64>>,
    scenes: Arc<dyn SceneProvider>,
    audit: AuditLog,
    overview_timeout: Duration,
    via: Via,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("paths", &self.paths)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// One device's reading for `home_overview`, on whichever route answered.
struct Polled {
    /// Whether it answered (even with an error of its own).
    online: bool,
    /// Its readable properties, or why not.
    result: Result<Vec<PropReading>, String>,
    /// The route that answered.
    route: Option<Route>,
}

/// Why the gate has no cloud route to a device.
enum NoCloud {
    /// No session, no did, or unusable cloud settings.
    Unavailable(NoFallback),
    /// The device handle could not be made (a local socket).
    Connect(DeviceOpError),
}

/// One device, resolved and checked against exposure.
struct Resolved {
    entry: DeviceEntry,
}

/// What the user is asked to consent to: one device's change, or a scene.
struct Consent<'a> {
    /// The tool.
    tool: &'static str,
    /// The device's or scene's name.
    subject: &'a str,
    /// `device` or `scene` (the key in structured results).
    label: &'static str,
    /// The grant key (device key, or [`agent_scenes::scene_key`]).
    key: &'a str,
    /// The capability class granted.
    capability: Capability,
    /// The tier.
    tier: Tier,
    /// What would be done, in words.
    action: &'a str,
    /// The question shown to the user.
    question: String,
    /// One line for `mijia approvals`.
    summary: String,
    /// [`args_digest`] of the call.
    digest: String,
}

impl Gate {
    /// A gate over a home: `catalog` from the home's spec store, `config`
    /// for talking to devices, `ids` to persist request ids.
    pub fn new(
        paths: Paths,
        catalog: ModelCatalog,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
    ) -> Self {
        let overview_timeout = config
            .timeout
            .saturating_mul(config.retries.saturating_add(1))
            .min(Duration::from_secs(5));
        Gate {
            audit: AuditLog::new(&paths),
            paths,
            catalog: Arc::new(catalog),
            config,
            ids,
            devices: tokio::sync::Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
            scenes: Arc::new(NoScenes),
            overview_timeout,
            via: Via::Auto,
        }
    }

    /// Reaches devices over `via` (default [`Via::Auto`]: the local
    /// network, and the Xiaomi cloud when a device does not answer there
    /// and a session exists — the CLI's rules, [`crate::cloud::fallback`]).
    pub fn with_via(mut self, via: Via) -> Self {
        self.via = via;
        self
    }

    /// Uses `scenes` for `run_scene`.
    pub fn with_scenes(mut self, scenes: Arc<dyn SceneProvider>) -> Self {
        self.scenes = scenes;
        self
    }

    /// The home's paths.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The current policy (nothing exposed if the file is unusable).
    pub fn policy(&self) -> Policy {
        Policy::load(&self.paths).unwrap_or_else(|e| {
            tracing::error!("{e}; exposing nothing until it is fixed");
            Policy::default()
        })
    }

    /// The tools to list now: `run_scene` once the user has shared a
    /// scene that exists.
    pub fn list_tools(&self) -> Vec<&'static ToolDef> {
        let policy = self.policy();
        tools::listed(
            policy.tools.generic,
            !self.shared_scenes(&policy).is_empty(),
        )
    }

    /// The scenes that exist and are shared by name (their devices are
    /// checked when one runs).
    fn shared_scenes(&self, policy: &Policy) -> Vec<Scene> {
        if policy.expose.scenes.is_empty() {
            return Vec::new();
        }
        match self.scenes.scenes() {
            Ok(list) => list
                .into_iter()
                .filter(|s| policy.is_scene_exposed(&s.name))
                .collect(),
            Err(e) => {
                tracing::warn!("scenes: {e}");
                Vec::new()
            }
        }
    }

    fn registry(&self) -> Result<Registry, String> {
        Registry::load(&self.paths).map_err(|e| {
            format!("the device registry cannot be read ({e}); tell the user to fix it")
        })
    }

    /// Runs one tool call through the gate and audits it.
    pub async fn call(
        &self,
        tool: &str,
        args: Value,
        meta: &CallMeta,
        channel: Channel<'_>,
    ) -> Result<Outcome, GateError> {
        let started = Instant::now();
        let mut rec = AuditRecord::new(
            now_ms(),
            meta.transport,
            tool,
            args.clone(),
            Decision::Invalid,
        );
        rec.client = meta.client.clone();
        rec.era = meta.era.clone();
        let out = self.decide(tool, &args, channel, &mut rec).await;
        rec.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &out {
            Ok(Outcome::Done(r)) => {
                rec.message = r.text.lines().next().unwrap_or_default().to_string();
                rec.result = if !rec.decision.executes() {
                    "none".into()
                } else if r.is_error {
                    "error".into()
                } else {
                    "ok".into()
                };
            }
            Ok(Outcome::NeedInput { message, .. }) => {
                rec.decision = Decision::InputRequired;
                rec.message = message.clone();
            }
            Err(e) => {
                rec.decision = Decision::Invalid;
                rec.message = e.to_string();
            }
        }
        if let Err(e) = self.audit.append(&rec) {
            tracing::error!("audit log: {e}");
        }
        out
    }

    async fn decide(
        &self,
        tool: &str,
        args: &Value,
        channel: Channel<'_>,
        rec: &mut AuditRecord,
    ) -> Result<Outcome, GateError> {
        if tier::is_forbidden_name(tool) {
            rec.decision = Decision::Forbidden;
            rec.tier = Some(Tier::Forbidden.to_string());
            return Ok(done_err(format!(
                "Refused: '{tool}' would move money (payments, transfers, purchases). mijia has \
                 no such tool and never does this for an assistant. Tell the user to do it \
                 themselves in the vendor's app."
            )));
        }
        let def = tools::find(tool).ok_or_else(|| GateError::UnknownTool(tool.to_string()))?;
        let policy = match Policy::load(&self.paths) {
            Ok(p) => p,
            Err(e) => {
                rec.decision = Decision::Denied;
                return Ok(done_err(format!(
                    "The agent policy cannot be read ({e}). Tell the user to fix it or run \
                     `mijia policy show`."
                )));
            }
        };
        if def.generic && !policy.tools.generic {
            rec.decision = Decision::Denied;
            return Ok(done_err(format!(
                "{tool} is turned off by the user's policy. Use the typed tools (turn_on, \
                 set_light, ...), or ask the user to run `mijia policy allow-generic on`."
            )));
        }
        if def.scene {
            return Ok(self.run_scene(def, args, &policy, channel, rec).await);
        }
        let registry = match self.registry() {
            Ok(r) => r,
            Err(e) => return Ok(done_err(e)),
        };
        match def.name {
            "home_overview" => Ok(self.overview(args, &policy, &registry, rec).await),
            "get_device_state" => Ok(self.state(args, &policy, &registry, rec).await),
            "describe_device" => Ok(self.describe(args, &policy, &registry, rec)),
            _ => Ok(self
                .write(def, args, &policy, &registry, channel, rec)
                .await),
        }
    }

    fn resolve(
        &self,
        policy: &Policy,
        registry: &Registry,
        device: &str,
        room: Option<&str>,
        rec: &mut AuditRecord,
    ) -> Result<Resolved, ToolReply> {
        let exposed = |e: &DeviceEntry| policy.is_exposed(&e.name, e.room.as_deref());
        match resolve::resolve(registry.devices(), device, room, exposed) {
            Resolution::One(e) => {
                rec.device = Some(e.name.clone());
                rec.did = e.did.map(|d| d.to_string());
                rec.model = e.model.clone();
                Ok(Resolved { entry: e.clone() })
            }
            Resolution::Ambiguous(c) => {
                rec.decision = Decision::Invalid;
                let names: Vec<Value> = c
                    .iter()
                    .map(|e| json!({"name": e.name, "room": e.room, "model": e.model}))
                    .collect();
                let list: Vec<String> = c
                    .iter()
                    .map(|e| match &e.room {
                        Some(r) => format!("{} ({r})", e.name),
                        None => e.name.clone(),
                    })
                    .collect();
                Err(ToolReply {
                    is_error: true,
                    text: format!(
                        "'{device}' matches {} devices: {}. Ask the user which one they mean, then \
                         call again with its exact name.",
                        c.len(),
                        list.join(", ")
                    ),
                    structured: Some(json!({"status": "ambiguous", "candidates": names})),
                })
            }
            Resolution::NotExposed(e) => {
                rec.decision = Decision::Denied;
                rec.device = Some(e.name.clone());
                rec.did = e.did.map(|d| d.to_string());
                rec.model = e.model.clone();
                Err(reply_err(format!(
                    "'{}' is not shared with assistants. Do not try other ways to reach it. If the \
                     user wants you to use it, they can run: mijia policy expose \"{}\"",
                    e.name, e.name
                )))
            }
            Resolution::NotFound(close) => {
                rec.decision = Decision::Invalid;
                let hint = if close.is_empty() {
                    "Call home_overview to see the device names.".to_string()
                } else {
                    format!("Did you mean: {}?", close.join(", "))
                };
                Err(reply_err(format!("No device called '{device}'. {hint}")))
            }
        }
    }

    fn target(&self, entry: &DeviceEntry) -> DeviceTarget {
        DeviceTarget::from_entry(entry, &self.catalog)
    }

    /// A connected device, kept for later calls.
    async fn device(&self, entry: &DeviceEntry) -> Result<Arc<Device>, DeviceOpError> {
        // The token is part of the key so a re-paired device gets a new session.
        let key = format!(
            "{}|{}|{:?}|{}",
            entry.name,
            entry.addr(),
            entry.model,
            entry.token.reveal()
        );
        let mut map = self.devices.lock().await;
        if let Some(d) = map.get(&key) {
            return Ok(Arc::clone(d));
        }
        let d = Arc::new(
            self.target(entry)
                .connect(self.config.clone(), self.ids.clone())?,
        );
        map.insert(key, Arc::clone(&d));
        Ok(d)
    }

    /// The same device through the Xiaomi cloud, or why there is no
    /// such route (worded for the assistant, when the user can fix it).
    fn cloud_device(&self, entry: &DeviceEntry) -> Result<Arc<Device>, NoCloud> {
        let did = entry.did.map(|d| d.to_string());
        let route = fallback::fallback_route(Some(&self.paths), did.as_deref())
            .map_err(NoCloud::Unavailable)?;
        let device = self
            .target(entry)
            .connect(self.config.clone(), None)
            .map_err(NoCloud::Connect)?;
        Ok(Arc::new(device.with_route(Arc::new(route))))
    }

    /// The device on the route a call starts with: the local one, or the
    /// cloud for `--via cloud`.
    async fn first_route(&self, entry: &DeviceEntry) -> Result<Arc<Device>, ToolReply> {
        match self.via {
            Via::Local | Via::Auto => self
                .device(entry)
                .await
                .map_err(|e| self.io_error(entry, &e)),
            Via::Cloud => self.cloud_device(entry).map_err(|no| match no {
                NoCloud::Connect(e) => self.io_error(entry, &e),
                NoCloud::Unavailable(no) => reply_err(format!(
                    "{} cannot be reached: this server uses only the Xiaomi cloud route, and {}",
                    entry.name,
                    match no.agent_hint() {
                        Some(h) => h,
                        None => "the cloud session went away; tell the user.".to_string(),
                    }
                )),
            }),
        }
    }

    /// After `e` failed on `device`: the cloud device to try the same
    /// request on, when the `auto` rules allow it ([`fallback`]);
    /// otherwise the reply for the failure, with a hint when the user
    /// could enable the fallback. `repeatable`: the request may reach the
    /// device twice (reads, value writes; not actions).
    fn fall_back(
        &self,
        entry: &DeviceEntry,
        device: &Device,
        e: &DeviceOpError,
        repeatable: bool,
    ) -> Result<Arc<Device>, ToolReply> {
        if self.via != Via::Auto
            || device.route().is_cloud()
            || !fallback::failure_allows_cloud(e, repeatable)
        {
            return Err(self.io_error(entry, e));
        }
        match self.cloud_device(entry) {
            Ok(cloud) => {
                tracing::info!(device = %entry.name, error = %e, "local route failed; trying the cloud");
                Ok(cloud)
            }
            Err(no) => {
                let mut reply = self.io_error(entry, e);
                let hint = match no {
                    NoCloud::Unavailable(no) => no.agent_hint(),
                    NoCloud::Connect(_) => None,
                };
                if let Some(h) = hint {
                    reply.text.push(' ');
                    reply.text.push_str(&h);
                }
                Err(reply)
            }
        }
    }

    /// The reply for `e` on the cloud after `local` failed on the LAN.
    fn cloud_error(&self, entry: &DeviceEntry, e: &DeviceOpError, local: &str) -> ToolReply {
        let mut reply = self.io_error(entry, e);
        reply.text.push_str(&format!(
            " (Tried through the Xiaomi cloud because the local network did not answer: {local}.)"
        ));
        reply
    }

    fn device_json(&self, entry: &DeviceEntry) -> Value {
        let target = self.target(entry);
        json!({
            "name": entry.name,
            "room": entry.room,
            "model": entry.model,
            "type": tools::device_type(&target.profile),
            "did": entry.did.map(|d| d.to_string()),
        })
    }

    fn io_error(&self, entry: &DeviceEntry, e: &DeviceOpError) -> ToolReply {
        if e.is_validation() {
            return reply_err(format!(
                "{}: {e}. Call describe_device to see valid names and values.",
                entry.name
            ));
        }
        if e.is_timeout() {
            return reply_err(format!(
                "{} did not answer ({e}). It may be offline or unplugged: tell the user, or try \
                 again later. Nothing was changed.",
                entry.name
            ));
        }
        reply_err(format!(
            "{}: {e}. Tell the user; retrying will not help.",
            entry.name
        ))
    }

    // ------------------------------------------------------------- reads

    async fn overview(
        &self,
        args: &Value,
        policy: &Policy,
        registry: &Registry,
        rec: &mut AuditRecord,
    ) -> Outcome {
        rec.tier = Some(Tier::Read.to_string());
        let a: tools::OverviewArgs = match serde_json::from_value(args.clone()) {
            Ok(a) => a,
            Err(e) => return done_err(format!("invalid arguments for home_overview: {e}")),
        };
        let room = a
            .room
            .as_deref()
            .map(resolve::norm)
            .filter(|r| !r.is_empty());
        let entries: Vec<&DeviceEntry> = registry
            .devices()
            .iter()
            .filter(|e| policy.is_exposed(&e.name, e.room.as_deref()))
            .filter(|e| {
                room.as_ref()
                    .is_none_or(|r| e.room.as_deref().map(resolve::norm).as_ref() == Some(r))
            })
            .collect();
        rec.decision = Decision::Allowed;
        let scenes: Vec<Value> = if room.is_some() {
            Vec::new()
        } else {
            self.shared_scenes(policy)
                .iter()
                .map(|s| json!({"name": s.name, "description": s.description}))
                .collect()
        };
        if entries.is_empty() {
            let text = if !policy.exposes_anything() {
                "The user has not shared any device with assistants yet. They can do so with \
                 `mijia policy expose NAME`, `--room ROOM` or `--all`."
                    .to_string()
            } else {
                "No shared device matches.".to_string()
            };
            return Outcome::Done(ToolReply {
                is_error: false,
                text,
                structured: Some(json!({"rooms": [], "devices": []})),
            });
        }
        let targets: Vec<DeviceTarget> = entries.iter().map(|e| self.target(e)).collect();
        let opts = PollOptions {
            concurrency: 64,
            per_device_timeout: self.overview_timeout,
            config: self.config.clone(),
        };
        let polled = self.poll_with_fallback(&entries, targets, &opts).await;
        let mut rooms: Vec<String> = Vec::new();
        let mut devices = Vec::new();
        let mut lines = Vec::new();
        for (entry, p) in entries.iter().zip(&polled) {
            if let Some(r) = &entry.room {
                if !rooms.contains(r) {
                    rooms.push(r.clone());
                }
            }
            let (online, values, error) = match &p.result {
                Ok(readings) => (true, tools::key_values(readings), None),
                Err(e) => (p.online, Map::new(), Some(e.clone())),
            };
            let mut d = self.device_json(entry);
            if let Some(obj) = d.as_object_mut() {
                obj.remove("did");
                obj.insert("online".into(), json!(online));
                obj.insert("values".into(), Value::Object(values.clone()));
                obj.insert("error".into(), json!(error));
                obj.insert("route".into(), json!(p.route.map(|r| r.kind())));
            }
            let vals: Vec<String> = values
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            lines.push(format!(
                "- {} ({}){}: {}",
                entry.name,
                entry.room.as_deref().unwrap_or("no room"),
                if online { "" } else { " OFFLINE" },
                vals.join(", ")
            ));
            devices.push(d);
        }
        let mut text = format!("{} shared devices:\n{}", devices.len(), lines.join("\n"));
        let mut structured = json!({"rooms": rooms, "devices": devices});
        if !scenes.is_empty() {
            let names: Vec<&str> = scenes.iter().filter_map(|s| s["name"].as_str()).collect();
            text.push_str(&format!("\nScenes (run_scene): {}", names.join(", ")));
            structured["scenes"] = Value::Array(scenes);
        }
        Outcome::Done(ToolReply {
            is_error: false,
            text,
            structured: Some(structured),
        })
    }

    /// Polls `entries` (their `targets`) on the local network, then, by
    /// the `auto` rules, reads the ones that did not answer through the
    /// cloud (all of them for `--via cloud`), concurrently and within the
    /// same per-device limit.
    async fn poll_with_fallback(
        &self,
        entries: &[&DeviceEntry],
        targets: Vec<DeviceTarget>,
        opts: &PollOptions,
    ) -> Vec<Polled> {
        let mut out: Vec<Polled> = Vec::with_capacity(entries.len());
        let mut retry: Vec<(usize, Option<String>)> = Vec::new();
        if self.via == Via::Cloud {
            for i in 0..entries.len() {
                out.push(Polled {
                    online: false,
                    result: Err(String::new()),
                    route: None,
                });
                retry.push((i, None));
            }
        } else {
            let polled = status_many(targets, self.ids.clone(), opts, |_| {}).await;
            for (i, p) in polled.into_iter().enumerate() {
                let online = p.answered();
                match p.result {
                    Ok(r) => out.push(Polled {
                        online: true,
                        result: Ok(r),
                        route: Some(Route::Local),
                    }),
                    Err(e) => {
                        if self.via == Via::Auto && fallback::failure_allows_cloud(&e, true) {
                            retry.push((i, Some(e.to_string())));
                        }
                        out.push(Polled {
                            online,
                            result: Err(e.to_string()),
                            route: None,
                        });
                    }
                }
            }
        }
        let limit = opts.per_device_timeout;
        let mut tasks = tokio::task::JoinSet::new();
        for (i, local) in retry {
            let Some(entry) = entries.get(i) else {
                continue;
            };
            match self.cloud_device(entry) {
                Ok(device) => {
                    tasks.spawn(async move {
                        let result = tokio::time::timeout(limit, device.status())
                            .await
                            .unwrap_or(Err(DeviceOpError::Timeout { after: limit }));
                        (i, device.route(), local, result)
                    });
                }
                // Auto without a cloud route: the local error stands.
                Err(_) if local.is_some() => {}
                Err(NoCloud::Connect(e)) => {
                    if let Some(p) = out.get_mut(i) {
                        p.result = Err(e.to_string());
                    }
                }
                Err(NoCloud::Unavailable(no)) => {
                    if let Some(p) = out.get_mut(i) {
                        p.result = Err(no
                            .agent_hint()
                            .unwrap_or_else(|| "no cloud session".to_string()));
                    }
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            let Ok((i, route, local, result)) = done else {
                continue;
            };
            let Some(p) = out.get_mut(i) else {
                continue;
            };
            match result {
                Ok(r) => {
                    *p = Polled {
                        online: true,
                        result: Ok(r),
                        route: Some(route),
                    }
                }
                Err(e) => {
                    p.result = Err(match local {
                        Some(local) => format!("{local}; through the Xiaomi cloud: {e}"),
                        None => e.to_string(),
                    });
                }
            }
        }
        out
    }

    async fn state(
        &self,
        args: &Value,
        policy: &Policy,
        registry: &Registry,
        rec: &mut AuditRecord,
    ) -> Outcome {
        rec.tier = Some(Tier::Read.to_string());
        let a: tools::StateArgs = match serde_json::from_value(args.clone()) {
            Ok(a) => a,
            Err(e) => return done_err(format!("invalid arguments for get_device_state: {e}")),
        };
        let r = match self.resolve(policy, registry, &a.device, a.room.as_deref(), rec) {
            Ok(r) => r,
            Err(reply) => return Outcome::Done(reply),
        };
        rec.decision = Decision::Allowed;
        let mut device = match self.first_route(&r.entry).await {
            Ok(d) => d,
            Err(reply) => return Outcome::Done(reply),
        };
        let props = a.properties.as_deref();
        let readings = match read_state(&device, props).await {
            Ok(r) => r,
            Err(e) => {
                device = match self.fall_back(&r.entry, &device, &e, true) {
                    Ok(cloud) => cloud,
                    Err(reply) => return Outcome::Done(reply),
                };
                match read_state(&device, props).await {
                    Ok(r) => r,
                    Err(e2) => {
                        return Outcome::Done(self.cloud_error(&r.entry, &e2, &e.to_string()))
                    }
                }
            }
        };
        let route = device.route();
        rec.route = Some(route.kind().to_string());
        let lines: Vec<String> = readings
            .iter()
            .map(|x| format!("{} = {}", x.name, x.display))
            .collect();
        let via = if route.is_cloud() {
            format!(" (read through the Xiaomi {route})")
        } else {
            String::new()
        };
        Outcome::Done(ToolReply {
            is_error: false,
            text: format!("{}{via}:\n{}", r.entry.name, lines.join("\n")),
            structured: Some(json!({
                "device": self.device_json(&r.entry),
                "online": true,
                "route": route.kind(),
                "properties": readings.iter().map(tools::reading_json).collect::<Vec<_>>(),
            })),
        })
    }

    fn describe(
        &self,
        args: &Value,
        policy: &Policy,
        registry: &Registry,
        rec: &mut AuditRecord,
    ) -> Outcome {
        rec.tier = Some(Tier::Read.to_string());
        let a: tools::DescribeArgs = match serde_json::from_value(args.clone()) {
            Ok(a) => a,
            Err(e) => return done_err(format!("invalid arguments for describe_device: {e}")),
        };
        let r = match self.resolve(policy, registry, &a.device, a.room.as_deref(), rec) {
            Ok(r) => r,
            Err(reply) => return Outcome::Done(reply),
        };
        rec.decision = Decision::Allowed;
        let (structured, text) = self.describe_entry(&r.entry, policy);
        Outcome::Done(ToolReply {
            is_error: false,
            text,
            structured: Some(structured),
        })
    }

    /// The spec of a device in plain words (also the spec resource).
    pub fn describe_entry(&self, entry: &DeviceEntry, policy: &Policy) -> (Value, String) {
        let target = self.target(entry);
        let dtype = tools::device_type(&target.profile);
        let table = entry
            .model
            .as_deref()
            .and_then(|m| describe_model(self.catalog.store(), m));
        let probe = tools::WriteArgs {
            device: entry.name.clone(),
            room: None,
            approval_id: None,
            brightness: Some(50),
            color_temperature: None,
            color: None,
            target_temperature: None,
            mode: None,
            speed: None,
            oscillate: None,
            position: None,
            command: None,
            property: None,
            value: None,
            action: None,
            args: None,
        };
        let mut usable: Vec<String> = Vec::new();
        let mut tiers: Vec<String> = Vec::new();
        for (tool, patch) in [
            ("turn_on", json!({})),
            ("set_light", json!({"brightness": 50})),
            ("set_light", json!({"color_temperature": 4000})),
            ("set_climate", json!({"target_temperature": 24})),
            ("set_fan", json!({"oscillate": true})),
            ("set_fan", json!({"speed": 1})),
            ("set_cover", json!({"position": 50})),
            ("vacuum", json!({"command": "start"})),
        ] {
            let Some(def) = tools::find(tool) else {
                continue;
            };
            if usable.iter().any(|u| u == tool) {
                continue;
            }
            let mut a = probe.clone();
            a.brightness = patch.get("brightness").and_then(Value::as_i64);
            a.color_temperature = patch.get("color_temperature").and_then(Value::as_i64);
            a.target_temperature = patch.get("target_temperature").and_then(Value::as_f64);
            a.oscillate = patch.get("oscillate").and_then(Value::as_bool);
            a.speed = patch.get("speed").and_then(Value::as_i64);
            a.position = patch.get("position").and_then(Value::as_i64);
            a.command = patch
                .get("command")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Ok(plan) = tools::plan_write(def, &a, &entry.name, &target.profile) {
                usable.push(tool.to_string());
                if tool == "turn_on" {
                    usable.push("turn_off".into());
                }
                tiers.push(format!("{tool}: {}", plan.tier));
            }
        }
        if policy.tools.generic {
            usable.push("set_property".into());
            usable.push("run_action".into());
        }
        let cap = policy.cap_for(&entry.name, entry.room.as_deref());
        let where_ = entry
            .room
            .as_deref()
            .map_or_else(String::new, |r| format!(" in {r}"));
        let mut text = format!(
            "{} is a {dtype} ({}){where_}.",
            entry.name,
            entry.model.as_deref().unwrap_or("unknown model")
        );
        if usable.is_empty() {
            text.push_str(" No typed control applies; you can read its state.");
        } else {
            text.push_str(&format!(" Tools that apply: {}.", usable.join(", ")));
        }
        text.push_str(&format!(
            " Tiers: {}. Control-tier changes ask the user once per kind of control; sensitive \
             ones ask every time. The user's cap for this device is '{cap}'.",
            if tiers.is_empty() {
                "read only".to_string()
            } else {
                tiers.join(", ")
            }
        ));
        let (props, actions) = match &table {
            Some(t) => {
                let mut lines = Vec::new();
                for p in &t.properties {
                    if p.access.contains('w') {
                        lines.push(format!("{} ({}): {}", p.name, p.description, p.allowed));
                    }
                }
                if !lines.is_empty() {
                    text.push_str(&format!("\nWritable: {}", lines.join("; ")));
                }
                let acts: Vec<String> = t.actions.iter().map(|a| a.name.clone()).collect();
                if !acts.is_empty() {
                    text.push_str(&format!("\nActions: {}", acts.join(", ")));
                }
                (
                    serde_json::to_value(&t.properties).unwrap_or(json!([])),
                    serde_json::to_value(&t.actions).unwrap_or(json!([])),
                )
            }
            None => {
                text.push_str(
                    "\nmijia has no spec for this model, so only raw reads are possible.",
                );
                (json!([]), json!([]))
            }
        };
        (
            json!({
                "device": self.device_json(entry),
                "summary": text,
                "tools": usable,
                "properties": props,
                "actions": actions,
            }),
            text,
        )
    }

    // ------------------------------------------------------------ writes

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        def: &'static ToolDef,
        args: &Value,
        policy: &Policy,
        registry: &Registry,
        channel: Channel<'_>,
        rec: &mut AuditRecord,
    ) -> Outcome {
        let a = match tools::parse_write_args(def, args) {
            Ok(a) => a,
            Err(e) => {
                rec.decision = Decision::Invalid;
                return done_err(format!("Invalid arguments for {}: {e}", def.name));
            }
        };
        rec.approval_id = a.approval_id.clone();
        let r = match self.resolve(policy, registry, &a.device, a.room.as_deref(), rec) {
            Ok(r) => r,
            Err(reply) => return Outcome::Done(reply),
        };
        let entry = &r.entry;
        let target = self.target(entry);
        let mut plan = match tools::plan_write(def, &a, &entry.name, &target.profile) {
            Ok(p) => p,
            Err(e) => {
                rec.decision = Decision::Invalid;
                return done_err(format!("{} — nothing was sent.", e.0));
            }
        };
        rec.tier = Some(plan.tier.to_string());
        if plan.tier == Tier::Forbidden {
            rec.decision = Decision::Forbidden;
            return done_err(format!(
                "Refused: {} on {} would move money. mijia never does this for an assistant.",
                plan.action, entry.name
            ));
        }
        let cap = policy.cap_for(&entry.name, entry.room.as_deref());
        if plan.tier > cap {
            rec.decision = Decision::Denied;
            return done_err(format!(
                "Refused: '{}' on {} is {}-tier, but the user allows at most '{cap}' on this \
                 device. Tell the user; they can change it with `mijia policy expose \"{}\" --cap \
                 {}`.",
                plan.action, entry.name, plan.tier, entry.name, plan.tier
            ));
        }
        let key = DeviceKey::of(entry).to_string();
        let now = now_ms();
        let kind = match plan.tier {
            Tier::Read => None,
            Tier::Control => {
                if grants::find(&self.paths, &key, plan.capability, now).is_some() {
                    None
                } else {
                    Some(ApprovalKind::Grant)
                }
            }
            Tier::Sensitive | Tier::Forbidden => Some(ApprovalKind::Confirm),
        };
        // Connect and read the current state before asking: the question
        // names the change, and an offline device fails before anyone is
        // bothered.
        // On the local network first; a device that does not answer there
        // is read (and then written) through the cloud when the `auto`
        // rules allow it. No write has been sent yet, so this is safe.
        let mut device = match self.first_route(entry).await {
            Ok(d) => d,
            Err(reply) => {
                rec.decision = Decision::Allowed;
                return Outcome::Done(reply);
            }
        };
        let before = match tools::read_before(&device, &plan).await {
            Ok(b) => b,
            Err(e) => {
                rec.decision = Decision::Allowed;
                device = match self.fall_back(entry, &device, &e, true) {
                    Ok(cloud) => cloud,
                    Err(reply) => return Outcome::Done(reply),
                };
                match tools::read_before(&device, &plan).await {
                    Ok(b) => b,
                    Err(e2) => return Outcome::Done(self.cloud_error(entry, &e2, &e.to_string())),
                }
            }
        };
        plan.preview = tools::preview(&plan, &target.profile, &before);
        rec.before = Some(Value::Object(before.clone()));
        let decision = match kind {
            None => Decision::Allowed,
            Some(kind) => {
                let consent = Consent {
                    tool: def.name,
                    subject: &entry.name,
                    label: "device",
                    key: &key,
                    capability: plan.capability,
                    tier: plan.tier,
                    action: &plan.action,
                    question: self.question(def, entry, &plan, kind, policy),
                    summary: format!("{} {}: {}", def.name, entry.name, plan.action),
                    digest: args_digest(def.name, args),
                };
                match self
                    .authorize(
                        &consent,
                        a.approval_id.as_deref(),
                        kind,
                        policy,
                        channel,
                        rec,
                    )
                    .await
                {
                    Ok(d) => d,
                    Err(outcome) => return outcome,
                }
            }
        };
        rec.decision = decision;
        let outcome = match tools::execute(&device, &plan, before.clone()).await {
            Ok(o) => o,
            Err(e) => {
                // Value writes may be repeated; an action only when no
                // hello was answered (it never reached the device).
                let repeatable = matches!(plan.op, tools::WriteOp::Set(_));
                device = match self.fall_back(entry, &device, &e, repeatable) {
                    Ok(cloud) => cloud,
                    Err(reply) => return Outcome::Done(reply),
                };
                match tools::execute(&device, &plan, before).await {
                    Ok(o) => o,
                    Err(e2) => return Outcome::Done(self.cloud_error(entry, &e2, &e.to_string())),
                }
            }
        };
        let route = device.route();
        rec.route = Some(route.kind().to_string());
        rec.after = Some(Value::Object(outcome.after.clone()));
        let changed: Vec<String> = plan.preview.clone();
        let mut text = format!(
            "{}: {} — {}.",
            entry.name,
            plan.action,
            if outcome.verified {
                "done, read back"
            } else {
                "sent, but the read-back does not show the requested state"
            }
        );
        if !changed.is_empty() {
            text.push_str(&format!(" Requested: {}.", changed.join("; ")));
        }
        if !outcome.after.is_empty() {
            let now: Vec<String> = outcome
                .after
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            text.push_str(&format!(" Now: {}.", now.join(", ")));
        }
        if let Some(e) = &outcome.error {
            text.push_str(&format!(
                " The device refused: {e}. Check the value with describe_device."
            ));
        }
        if route.is_cloud() {
            text.push_str(&format!(" (Through the Xiaomi {route}.)"));
        }
        Outcome::Done(ToolReply {
            is_error: !outcome.verified && outcome.error.is_some(),
            text,
            structured: Some(json!({
                "device": self.device_json(entry),
                "action": plan.action,
                "tier": plan.tier,
                "decision": decision.as_str(),
                "before": outcome.before,
                "after": outcome.after,
                "changes": outcome.changes,
                "verified": outcome.verified,
                "route": route.kind(),
            })),
        })
    }

    // ------------------------------------------------------------ scenes

    async fn run_scene(
        &self,
        def: &'static ToolDef,
        args: &Value,
        policy: &Policy,
        channel: Channel<'_>,
        rec: &mut AuditRecord,
    ) -> Outcome {
        let a: tools::SceneArgs = match serde_json::from_value(args.clone()) {
            Ok(a) => a,
            Err(e) => {
                rec.decision = Decision::Invalid;
                return done_err(format!("Invalid arguments for {}: {e}", def.name));
            }
        };
        rec.approval_id = a.approval_id.clone();
        let all = match self.scenes.scenes() {
            Ok(s) => s,
            Err(e) => {
                rec.decision = Decision::Invalid;
                return done_err(format!(
                    "The user's scenes cannot be read ({e}). Tell the user; `mijia scene list` \
                     shows the problem."
                ));
            }
        };
        let Some(scene) = all
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(a.scene.trim()))
        else {
            rec.decision = Decision::Invalid;
            let shared: Vec<&str> = all
                .iter()
                .filter(|s| policy.is_scene_exposed(&s.name))
                .map(|s| s.name.as_str())
                .collect();
            return done_err(if shared.is_empty() {
                format!(
                    "There is no scene '{}', and the user has shared no scene. Control devices one \
                     at a time instead.",
                    a.scene
                )
            } else {
                format!(
                    "There is no scene '{}'. Shared scenes: {}.",
                    a.scene,
                    shared.join(", ")
                )
            });
        };
        rec.scene = Some(scene.name.clone());
        if !policy.is_scene_exposed(&scene.name) {
            rec.decision = Decision::Denied;
            return done_err(format!(
                "Scene '{}' is not shared with assistants. Do not run its steps one by one instead. \
                 If the user wants you to run it, they can run: mijia policy expose --scene \"{}\"",
                scene.name, scene.name
            ));
        }
        let registry = match self.registry() {
            Ok(r) => r,
            Err(e) => {
                rec.decision = Decision::Invalid;
                return done_err(e);
            }
        };
        // Every device it touches (reads included): registered and exposed.
        let mut hidden: Vec<String> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        for name in scene.devices() {
            match registry.get(&name) {
                Ok(e) if policy.is_exposed(&e.name, e.room.as_deref()) => {}
                Ok(e) => hidden.push(e.name.clone()),
                Err(_) => missing.push(name),
            }
        }
        if !hidden.is_empty() {
            rec.decision = Decision::Denied;
            let names: Vec<String> = hidden.iter().map(|n| format!("'{n}'")).collect();
            let args: Vec<String> = hidden.iter().map(|n| format!("\"{n}\"")).collect();
            return done_err(format!(
                "Scene '{}' touches {}, which {} not shared with assistants, so the scene cannot \
                 run; nothing was sent. Do not try other ways to reach {}. If the user wants this \
                 scene run, they can run: mijia policy expose {}",
                scene.name,
                names.join(", "),
                if hidden.len() == 1 { "is" } else { "are" },
                if hidden.len() == 1 { "it" } else { "them" },
                args.join(" ")
            ));
        }
        if !missing.is_empty() {
            rec.decision = Decision::Invalid;
            return done_err(format!(
                "Scene '{}' uses {}, which {} not in the user's device list; nothing was sent. \
                 Tell the user the scene needs fixing (`mijia scene run {} --dry-run` shows it).",
                scene.name,
                missing
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                scene.name
            ));
        }
        // Tier: every operation classified, each within its device's cap.
        let mut tier = Capability::Scene.base_tier();
        let mut sensitive: Vec<String> = Vec::new();
        for op in scene.operations() {
            let Ok(entry) = registry.get(&op.device) else {
                continue;
            };
            let t = agent_scenes::operation_tier(&op, &self.target(entry).profile);
            if t == Tier::Forbidden {
                rec.tier = Some(t.to_string());
                rec.decision = Decision::Forbidden;
                return done_err(format!(
                    "Refused: step {} of scene '{}' would move money. mijia never does this for \
                     an assistant.",
                    op.step, scene.name
                ));
            }
            let cap = policy.cap_for(&entry.name, entry.room.as_deref());
            if t > cap {
                rec.tier = Some(t.to_string());
                rec.decision = Decision::Denied;
                return done_err(format!(
                    "Refused: step {} of scene '{}' is {t}-tier on {}, but the user allows at most \
                     '{cap}' on this device. Tell the user; they can change it with `mijia policy \
                     expose \"{}\" --cap {t}`.",
                    op.step, scene.name, entry.name, entry.name
                ));
            }
            if t == Tier::Sensitive && !sensitive.contains(&entry.name) {
                sensitive.push(entry.name.clone());
            }
            tier = tier.max(t);
        }
        rec.tier = Some(tier.to_string());
        let dry_run = a.dry_run.unwrap_or(false);
        let ctx = Context::new(registry, Arc::clone(&self.catalog), self.config.clone())
            .with_ids(self.ids.clone())
            .with_home(self.paths.clone())
            .with_via(self.via)
            .with_hints_for(HintReader::Assistant);
        // Check every step against the specs first: no IO, and nobody is
        // asked about a scene that cannot run.
        let check = automation_scenes::run_scene(scene, &ctx, true).await;
        if dry_run || !check.is_ok() {
            rec.decision = if check.is_ok() {
                Decision::Allowed
            } else {
                Decision::Invalid
            };
            return scene_reply(scene, tier, rec.decision, dry_run, false, &check);
        }
        let key = agent_scenes::scene_key(scene);
        let kind = match tier {
            Tier::Read => None,
            Tier::Control => {
                if grants::find(&self.paths, &key, Capability::Scene, now_ms()).is_some() {
                    None
                } else {
                    Some(ApprovalKind::Grant)
                }
            }
            Tier::Sensitive | Tier::Forbidden => Some(ApprovalKind::Confirm),
        };
        let decision = match kind {
            None => Decision::Allowed,
            Some(kind) => {
                let consent = Consent {
                    tool: def.name,
                    subject: &scene.name,
                    label: "scene",
                    key: &key,
                    capability: Capability::Scene,
                    tier,
                    action: "run scene",
                    question: scene_question(scene, kind, &sensitive, policy),
                    summary: format!(
                        "{} {}: {}",
                        def.name,
                        scene.name,
                        agent_scenes::steps_line(scene, 6)
                    ),
                    digest: args_digest(def.name, args),
                };
                match self
                    .authorize(
                        &consent,
                        a.approval_id.as_deref(),
                        kind,
                        policy,
                        channel,
                        rec,
                    )
                    .await
                {
                    Ok(d) => d,
                    Err(outcome) => return outcome,
                }
            }
        };
        rec.decision = decision;
        let report = automation_scenes::run_scene(scene, &ctx, false).await;
        let steps: Vec<Value> = report
            .steps
            .iter()
            .map(|s| json!({"step": s.step, "outcome": s.outcome, "detail": s.detail}))
            .collect();
        rec.after = Some(json!({"outcome": report.outcome, "steps": steps}));
        scene_reply(scene, tier, decision, false, true, &report)
    }

    fn question(
        &self,
        def: &ToolDef,
        entry: &DeviceEntry,
        plan: &WritePlan,
        kind: ApprovalKind,
        policy: &Policy,
    ) -> String {
        let place = match (&entry.model, &entry.room) {
            (Some(m), Some(r)) => format!(" ({m}, {r})"),
            (Some(m), None) => format!(" ({m})"),
            (None, Some(r)) => format!(" ({r})"),
            (None, None) => String::new(),
        };
        let change = if plan.preview.is_empty() {
            String::new()
        } else {
            format!(" [{}]", plan.preview.join("; "))
        };
        match kind {
            ApprovalKind::Confirm => format!(
                "An assistant asks to {}: {}{place}{change} ({} action). Allow it this once?",
                plan.action, entry.name, plan.tier
            ),
            ApprovalKind::Grant => format!(
                "An assistant asks to {}: {}{place}{change}. Allow it to use {} controls on {} for \
                 the next {} (via {})?",
                plan.action,
                entry.name,
                plan.capability,
                entry.name,
                format_duration(policy.timing.grant_ttl),
                def.name
            ),
        }
    }

    fn mark_used(&self, id: &str, expires_at_ms: u64) -> bool {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        used.retain(|_, exp| *exp + 60_000 > now);
        if used.contains_key(id) {
            return false;
        }
        used.insert(id.to_string(), expires_at_ms);
        true
    }

    fn store_grant(&self, c: &Consent<'_>, policy: &Policy, via: String) {
        let now = now_ms();
        let g = Grant {
            device_key: c.key.to_string(),
            device: c.subject.to_string(),
            class: c.capability,
            granted_at_ms: now,
            expires_at_ms: now.saturating_add(millis(policy.timing.grant_ttl)),
            via,
        };
        if let Err(e) = grants::add(&self.paths, g, now) {
            tracing::error!("grant not stored: {e}");
        }
    }

    /// Asks (or checks) the user's consent. `Ok(decision)` to run.
    async fn authorize(
        &self,
        c: &Consent<'_>,
        approval_id: Option<&str>,
        kind: ApprovalKind,
        policy: &Policy,
        channel: Channel<'_>,
        rec: &mut AuditRecord,
    ) -> Result<Decision, Outcome> {
        let timeout = policy.timing.confirm_timeout;
        let digest = c.digest.as_str();
        let granted = |this: &Self, via: &str| {
            if kind == ApprovalKind::Grant {
                this.store_grant(c, policy, via.to_string());
            }
        };
        // A retry after out-of-band approval.
        if let Some(id) = approval_id.filter(|s| !s.trim().is_empty()) {
            let now = now_ms();
            let refusal = match approvals::redeem(&self.paths, id, c.tool, digest, now) {
                Ok(Ok(approval)) => {
                    granted(self, &format!("approval:{}", approval.id));
                    return Ok(Decision::ApprovedOutOfBand);
                }
                Ok(Err(r)) => r,
                Err(e) => {
                    rec.decision = Decision::Rejected;
                    return Err(done_err(format!(
                        "Approvals cannot be read ({e}); tell the user."
                    )));
                }
            };
            let (decision, text) = match refusal {
                Refusal::Pending(x) => (
                    Decision::ApprovalPending,
                    format!(
                        "Approval {} is still waiting for the user. Ask them to run `mijia approve \
                         {}` (it expires at {}), then call again with the same arguments.",
                        x.id,
                        x.id,
                        rfc3339(x.expires_at_ms)
                    ),
                ),
                Refusal::Denied(x) => (
                    Decision::Declined,
                    format!(
                        "The user denied request {}. Do not retry; nothing was changed.",
                        x.id
                    ),
                ),
                Refusal::Expired(x) => (
                    Decision::Expired,
                    format!(
                        "Approval {} expired. Call again without approval_id to ask the user anew.",
                        x.id
                    ),
                ),
                Refusal::Used(x) => (
                    Decision::Rejected,
                    format!(
                        "Approval {} was already used; each approval runs one call. Call again \
                         without approval_id to ask the user anew.",
                        x.id
                    ),
                ),
                Refusal::Mismatch(x) => (
                    Decision::Rejected,
                    format!(
                        "Approval {} was for a different call ({} with other arguments). It cannot \
                         be used for this one; call again without approval_id.",
                        x.id, x.tool
                    ),
                ),
                Refusal::Unknown => (
                    Decision::Rejected,
                    format!("There is no approval '{id}'. Call again without approval_id."),
                ),
            };
            rec.decision = decision;
            return Err(done_err(text));
        }
        let message = c.question.clone();
        let answer = match channel {
            Channel::Ask(asker) => asker.ask(&message, timeout).await,
            Channel::Mrtr(None) => {
                let pending = PendingConfirm {
                    id: approvals::new_id(),
                    tool: c.tool.to_string(),
                    digest: digest.to_string(),
                    kind,
                    expires_at_ms: now_ms().saturating_add(millis(timeout)),
                };
                return Err(Outcome::NeedInput {
                    message,
                    pending,
                    ttl: timeout,
                });
            }
            Channel::Mrtr(Some(Resume::Expired)) => Answer::Timeout,
            Channel::Mrtr(Some(Resume::Invalid(why))) => {
                rec.decision = Decision::Rejected;
                return Err(done_err(format!(
                    "The confirmation could not be verified ({why}); nothing was changed. Call \
                     again with the same arguments and without request state to ask the user."
                )));
            }
            Channel::Mrtr(Some(Resume::Answer { pending, answer })) => {
                if pending.tool != c.tool || pending.digest != digest || pending.kind != kind {
                    rec.decision = Decision::Rejected;
                    return Err(done_err(
                        "The confirmation was for a different call; nothing was changed. Call again \
                         to ask the user.",
                    ));
                }
                if now_ms() >= pending.expires_at_ms {
                    Answer::Timeout
                } else if !self.mark_used(&pending.id, pending.expires_at_ms) {
                    rec.decision = Decision::Rejected;
                    return Err(done_err(
                        "This confirmation was already used; each one allows one call. Call again \
                         to ask the user.",
                    ));
                } else {
                    answer
                }
            }
            Channel::None => Answer::Failed("the client cannot show forms".into()),
        };
        match answer {
            Answer::Accept { confirm: true } => {
                granted(self, "elicitation");
                Ok(if kind == ApprovalKind::Grant {
                    Decision::Granted
                } else {
                    Decision::Confirmed
                })
            }
            Answer::Accept { confirm: false } | Answer::Decline => {
                rec.decision = Decision::Declined;
                Err(done_err(format!(
                    "The user declined: {} {} was not done. Do not retry unless the user asks again.",
                    c.action, c.subject
                )))
            }
            Answer::Cancel => {
                rec.decision = Decision::Cancelled;
                Err(done_err(format!(
                    "The user dismissed the confirmation: {} {} was not done. Ask the user in the \
                     chat whether they want it.",
                    c.action, c.subject
                )))
            }
            Answer::Timeout => {
                rec.decision = Decision::Expired;
                Err(done_err(format!(
                    "Confirmation expired: the user did not answer within {}, so {} {} was not \
                     done. Ask the user in the chat whether to try again.",
                    format_duration(timeout),
                    c.action,
                    c.subject
                )))
            }
            Answer::Failed(why) => {
                // The client cannot ask: fall back to out-of-band approval.
                tracing::debug!("elicitation unavailable: {why}");
                let now = now_ms();
                let new = NewApproval {
                    tool: c.tool.to_string(),
                    args_digest: digest.to_string(),
                    device: c.subject.to_string(),
                    device_key: c.key.to_string(),
                    class: c.capability,
                    tier: c.tier,
                    kind,
                    summary: c.summary.clone(),
                };
                let approval = match approvals::create(
                    &self.paths,
                    new,
                    now,
                    millis(policy.timing.approval_ttl),
                ) {
                    Ok(x) => x,
                    Err(e) => {
                        rec.decision = Decision::Denied;
                        return Err(done_err(format!(
                            "Approval cannot be recorded ({e}); tell the user."
                        )));
                    }
                };
                rec.decision = Decision::ApprovalPending;
                rec.approval_id = Some(approval.id.clone());
                let expires = rfc3339(approval.expires_at_ms);
                Err(Outcome::Done(ToolReply {
                    is_error: true,
                    text: format!(
                        "This needs the user's approval, and this client cannot ask them. Ask the \
                         user to run `mijia approve {id}` (or `mijia deny {id}`) before {expires}. \
                         Then call {tool} again with the same arguments and approval_id \"{id}\". \
                         Request: {}",
                        message,
                        id = approval.id,
                        tool = c.tool
                    ),
                    structured: Some({
                        let mut v = json!({
                            "status": "approval_required",
                            "approval_id": approval.id,
                            "expires_at": expires,
                            "action": c.action,
                            "tier": c.tier,
                        });
                        v[c.label] = json!(c.subject);
                        v
                    }),
                }))
            }
        }
    }

    // --------------------------------------------------------- resources

    /// The resources: the device list and each exposed device's spec.
    pub fn resources(&self) -> Vec<ResourceInfo> {
        let policy = self.policy();
        let mut out = vec![ResourceInfo {
            uri: "mijia://devices".into(),
            name: "devices".into(),
            title: "Shared devices".into(),
            description: "The devices the user shares with assistants: name, room, model, type."
                .into(),
        }];
        if let Ok(reg) = Registry::load(&self.paths) {
            for e in reg.devices() {
                if policy.is_exposed(&e.name, e.room.as_deref()) {
                    out.push(ResourceInfo {
                        uri: spec_uri(e),
                        name: format!("spec of {}", e.name),
                        title: format!("{}: spec", e.name),
                        description: format!(
                            "What {} ({}) can do, in plain words.",
                            e.name,
                            e.model.as_deref().unwrap_or("unknown model")
                        ),
                    });
                }
            }
        }
        out
    }

    /// The JSON text of a resource, or `None` when there is no such
    /// (exposed) resource.
    pub fn read_resource(&self, uri: &str) -> Option<String> {
        let policy = self.policy();
        let reg = Registry::load(&self.paths).ok()?;
        let exposed: Vec<&DeviceEntry> = reg
            .devices()
            .iter()
            .filter(|e| policy.is_exposed(&e.name, e.room.as_deref()))
            .collect();
        if uri == "mijia://devices" {
            let list: Vec<Value> = exposed.iter().map(|e| self.device_json(e)).collect();
            return serde_json::to_string_pretty(&json!({"devices": list})).ok();
        }
        let e = exposed.into_iter().find(|e| spec_uri(e) == uri)?;
        let (v, _) = self.describe_entry(e, &policy);
        serde_json::to_string_pretty(&v).ok()
    }
}

/// The question for a scene.
/// `get_device_state`'s read: the named properties, or every readable one.
async fn read_state(
    device: &Device,
    props: Option<&[String]>,
) -> Result<Vec<PropReading>, DeviceOpError> {
    match props {
        Some(props) if !props.is_empty() => {
            let names: Vec<&str> = props.iter().map(String::as_str).collect();
            device.get(&names).await
        }
        _ => device.status().await,
    }
}

fn scene_question(
    scene: &Scene,
    kind: ApprovalKind,
    sensitive: &[String],
    policy: &Policy,
) -> String {
    let about = scene
        .description
        .as_deref()
        .map_or_else(String::new, |d| format!(" ({d})"));
    let steps = agent_scenes::steps_line(scene, 12);
    match kind {
        ApprovalKind::Confirm => format!(
            "An assistant asks to run scene '{}'{about}: {steps}. It is a sensitive action because \
             it touches {}. Allow it this once?",
            scene.name,
            sensitive.join(", ")
        ),
        ApprovalKind::Grant => format!(
            "An assistant asks to run scene '{}'{about}: {steps}. Allow it to run this scene for \
             the next {} (until the scene is changed)?",
            scene.name,
            format_duration(policy.timing.grant_ttl)
        ),
    }
}

/// The result of `run_scene`: a line per step, `isError` naming the
/// failed step. `ran`: the steps were run (not only checked).
fn scene_reply(
    scene: &Scene,
    tier: Tier,
    decision: Decision,
    dry_run: bool,
    ran: bool,
    report: &SceneReport,
) -> Outcome {
    let failed = report.first_failure();
    let head = match report.outcome {
        SceneOutcome::Ok if !ran => format!(
            "Scene '{}' checks out ({tier} tier); nothing was sent.",
            scene.name
        ),
        SceneOutcome::Ok => format!(
            "Scene '{}' ran: {} steps done.",
            scene.name,
            report.steps.len()
        ),
        SceneOutcome::Stopped => {
            let at = report
                .steps
                .iter()
                .find(|s| s.outcome == automation_scenes::StepOutcome::Stopped);
            format!(
                "Scene '{}' stopped at step {}: {}. Nothing failed; the remaining steps were \
                 skipped.",
                scene.name,
                at.map_or("?", |s| s.step.as_str()),
                at.map_or("a guard did not hold", |s| s.detail.as_str())
            )
        }
        SceneOutcome::Failed => {
            let what = report.error().map_or_else(
                || format!("scene '{}' failed", scene.name),
                |e| e.to_string(),
            );
            if ran {
                format!(
                    "{what}. The steps after it were skipped; the steps before it stay done. Tell \
                     the user."
                )
            } else {
                format!(
                    "{what}. The scene does not check out, so nothing was sent. Tell the user the \
                     scene needs fixing."
                )
            }
        }
    };
    let lines: Vec<String> = report
        .steps
        .iter()
        .map(|s| {
            let label = s
                .name
                .as_deref()
                .map_or_else(String::new, |n| format!(" [{n}]"));
            let device = s
                .device
                .as_deref()
                .map_or_else(String::new, |d| format!(" {d}"));
            let outcome = serde_json::to_value(s.outcome)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                "- {}{label} {}{device}: {outcome} — {}",
                s.step, s.kind, s.detail
            )
        })
        .collect();
    Outcome::Done(ToolReply {
        is_error: report.outcome == SceneOutcome::Failed,
        text: format!("{head}\n{}", lines.join("\n")),
        structured: Some(json!({
            "scene": scene.name,
            "tier": tier,
            "decision": decision.as_str(),
            "dry_run": dry_run,
            "outcome": report.outcome,
            "failed_step": failed.map(|s| s.step.clone()),
            "steps": report.steps,
        })),
    })
}

/// One listed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// `mijia://…`.
    pub uri: String,
    /// Short name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
}

fn spec_uri(e: &DeviceEntry) -> String {
    let id = match e.did {
        Some(d) => d.to_string(),
        None => resolve::norm(&e.name).replace(' ', "-"),
    };
    format!("mijia://device/{id}/spec")
}
