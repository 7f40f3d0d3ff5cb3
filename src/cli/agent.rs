//! The agent commands: `mijia mcp`, `mijia tools`, `mijia policy …`,
//! `mijia approve` / `deny` / `approvals`, and `mijia audit`.
//!
//! `mcp` writes nothing but protocol to stdout; everything else is for
//! people (or JSON with `--json`). Policy, grants, approvals and the audit
//! log are local files (see [`crate::agent`]).

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::args::GlobalArgs;
use super::ids::HomeIdStore;
use crate::agent::audit::{self, AuditLog};
use crate::agent::clock::now_ms;
use crate::agent::gate::Gate;
use crate::agent::mcp::{self, http::HttpOptions};
use crate::agent::policy::Policy;
use crate::agent::scenes::FileScenes;
use crate::agent::tier::Tier;
use crate::agent::{approvals, grants, tools, AgentError};
use crate::automation::SceneFile;
use crate::home::{load_spec_store, ModelCatalog, Paths, Registry};
use crate::transport::{ClientConfig, IdStore};
use crate::Error;

/// The agent commands (flattened into the top-level command list).
#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Serve the home to AI assistants over MCP (stdio by default).
    #[command(after_help = "Add to an MCP client, e.g.:\n  \
        {\"mcpServers\": {\"mijia\": {\"command\": \"mijia\", \"args\": [\"mcp\"]}}}\n\
        Nothing is shared until you run `mijia policy expose`. Scenes from scenes.toml are \
        offered as run_scene once shared with `mijia policy expose --scene NAME` (and every \
        device they touch is exposed).")]
    Mcp(McpArgs),
    /// Print the tool catalogue for other agent frameworks.
    Tools(ToolsArgs),
    /// Show or change what assistants may see and do.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Approve a pending assistant request by its id.
    Approve {
        /// The id the assistant was given (e.g. k3f9x2ab).
        id: String,
    },
    /// Deny a pending assistant request by its id.
    Deny {
        /// The id.
        id: String,
    },
    /// List assistant requests waiting for approval (and recent ones).
    Approvals,
    /// Show the log of assistant tool calls.
    Audit(AuditArgs),
}

/// `mijia mcp`.
#[derive(Debug, Clone, Args)]
pub struct McpArgs {
    /// Serve Streamable HTTP on this loopback address (e.g. 127.0.0.1:8765)
    /// instead of stdio. Requires the bearer token from the state directory.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// With --http: a browser origin allowed to call (repeatable), e.g.
    /// http://localhost:5173. Requests from any other Origin get 403.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
}

/// Catalogue formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToolsFormat {
    /// MCP `tools/list` JSON.
    Mcp,
    /// OpenAI function-calling tools (strict).
    Openai,
}

/// `mijia tools`.
#[derive(Debug, Clone, Args)]
pub struct ToolsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "mcp")]
    pub format: ToolsFormat,
    /// Include the generic set_property / run_action tools even when the
    /// policy has them off, and run_scene even when no scene is shared.
    #[arg(long)]
    pub all: bool,
}

/// `mijia policy …`.
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Print the current policy.
    Show,
    /// Share devices, rooms or scenes with assistants.
    Expose(ExposeArgs),
    /// Stop sharing devices, rooms or scenes (--all: everything).
    Unexpose(ExposeArgs),
    /// Turn the generic set_property / run_action tools on or off.
    AllowGeneric {
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Change a setting: confirm-timeout, grant-ttl, approval-ttl (e.g. 30s, 8h).
    Set {
        /// The setting.
        key: String,
        /// Its value.
        value: String,
    },
    /// List capability grants given to assistants.
    Grants,
    /// Remove grants (all, or one device's).
    Revoke {
        /// The device (all grants when left out).
        device: Option<String>,
    },
}

/// Devices, rooms, scenes or everything.
#[derive(Debug, Clone, Args)]
pub struct ExposeArgs {
    /// Device names.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Rooms (repeatable).
    #[arg(long = "room", value_name = "ROOM")]
    pub rooms: Vec<String>,
    /// Scenes from scenes.toml, for run_scene (repeatable). A shared scene
    /// runs only while every device it touches is exposed too.
    #[arg(long = "scene", value_name = "SCENE")]
    pub scenes: Vec<String>,
    /// Every device in the registry (not scenes: share those by name).
    #[arg(long)]
    pub all: bool,
    /// With expose: the highest tier allowed (read, control, sensitive).
    #[arg(long, value_name = "TIER")]
    pub cap: Option<String>,
}

/// `mijia audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Only the last N calls.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

/// A validated agent command.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    command: AgentCommand,
    json: bool,
    config: ClientConfig,
    via: crate::cloud::Via,
}

/// Validates an agent command.
pub fn plan(command: &AgentCommand, global: &GlobalArgs) -> Result<AgentPlan, Error> {
    if !(global.timeout.is_finite() && global.timeout > 0.0) {
        return Err(Error::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let config = ClientConfig {
        timeout: std::time::Duration::from_secs_f64(global.timeout),
        retries: global.retries,
        ..ClientConfig::default()
    };
    if let AgentCommand::Policy(PolicyCommand::Expose(a) | PolicyCommand::Unexpose(a)) = command {
        if a.names.is_empty() && a.rooms.is_empty() && a.scenes.is_empty() && !a.all {
            return Err(Error::usage(
                "name a device, give --room ROOM, --scene SCENE, or --all",
            ));
        }
        if let Some(c) = &a.cap {
            Tier::parse_cap(c).map_err(Error::usage)?;
        }
    }
    Ok(AgentPlan {
        command: command.clone(),
        json: global.json,
        config,
        via: global.via,
    })
}

fn paths() -> Result<Paths, Error> {
    Ok(Paths::from_env()?)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "cannot write to stdout".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn print_json(v: &serde_json::Value) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Config(e.to_string()))?;
    out(&format!("{text}\n"))
}

/// Builds the gate for this home.
pub fn gate(paths: Paths, config: ClientConfig) -> Gate {
    let (store, warnings) = load_spec_store(&paths);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let ids: Arc<dyn IdStore> = Arc::new(HomeIdStore::new(paths.clone()));
    let scenes = Arc::new(FileScenes::home(paths.clone()));
    Gate::new(paths, ModelCatalog::new(store), config, Some(ids)).with_scenes(scenes)
}

/// Runs an agent command.
pub async fn execute(plan: AgentPlan) -> Result<(), Error> {
    let json = plan.json;
    match plan.command {
        AgentCommand::Mcp(a) => {
            let home = paths()?;
            // `--via`: how the server reaches devices (default auto: the
            // local network, then the cloud when logged in).
            let gate = Arc::new(gate(home.clone(), plan.config).with_via(plan.via));
            let policy = gate.policy();
            if !policy.exposes_anything() {
                eprintln!(
                    "mijia mcp: nothing is shared with assistants yet; expose devices with \
                     `mijia policy expose NAME`, `--room ROOM` or `--all`"
                );
            }
            match SceneFile::load(&home) {
                Ok(file) => {
                    let unshared: Vec<String> = file
                        .names()
                        .into_iter()
                        .filter(|n| !policy.is_scene_exposed(n))
                        .collect();
                    if !unshared.is_empty() {
                        eprintln!(
                            "mijia mcp: scenes not shared (share with `mijia policy expose \
                             --scene NAME`): {}",
                            unshared.join(", ")
                        );
                    }
                }
                Err(e) => eprintln!("mijia mcp: run_scene is off: {e}"),
            }
            match a.http {
                None => mcp::serve_stdio(gate).await?,
                Some(addr) => {
                    mcp::http::serve(
                        gate,
                        HttpOptions {
                            addr,
                            allowed_origins: a.allow_origin,
                        },
                    )
                    .await?
                }
            }
            Ok(())
        }
        AgentCommand::Tools(a) => {
            let home = Paths::from_env().ok();
            let policy = home.as_ref().and_then(|p| Policy::load(p).ok());
            let generic = a.all || policy.as_ref().is_some_and(|p| p.tools.generic);
            // run_scene as `mijia mcp` would list it: once a scene that
            // exists is shared.
            let scenes = a.all
                || match (&home, &policy) {
                    (Some(h), Some(p)) => SceneFile::load(h)
                        .map(|f| f.names().iter().any(|n| p.is_scene_exposed(n)))
                        .unwrap_or(false),
                    _ => false,
                };
            let listed = tools::listed(generic, scenes);
            let v = match a.format {
                ToolsFormat::Mcp => {
                    json!({"tools": listed.iter().map(|t| tools::mcp_json(t)).collect::<Vec<_>>()})
                }
                ToolsFormat::Openai => json!(listed
                    .iter()
                    .map(|t| tools::openai_json(t))
                    .collect::<Vec<_>>()),
            };
            print_json(&v)
        }
        AgentCommand::Policy(cmd) => policy(cmd, json),
        AgentCommand::Approve { id } => settle(&id, true, json),
        AgentCommand::Deny { id } => settle(&id, false, json),
        AgentCommand::Approvals => {
            let p = paths()?;
            let list = approvals::list(&p)?;
            let now = now_ms();
            if json {
                return print_json(&json!({"approvals": list.iter().map(|a| {
                    let mut v = serde_json::to_value(a).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() { o.insert("state".into(), json!(a.state_word(now))); }
                    v
                }).collect::<Vec<_>>()}));
            }
            if list.is_empty() {
                out("No assistant requests.
")?;
            }
            for a in &list {
                out(&format!("{}\n", a.line(now)))?;
            }
            Ok(())
        }
        AgentCommand::Audit(a) => {
            let p = paths()?;
            let log = AuditLog::new(&p);
            let (mut records, bad) = log.read_all()?;
            if let Some(n) = a.tail {
                let skip = records.len().saturating_sub(n);
                records.drain(..skip);
            }
            if json {
                return print_json(
                    &json!({"path": log.path(), "records": records, "unreadable_lines": bad}),
                );
            }
            if records.is_empty() {
                println!(
                    "No assistant tool calls logged yet ({}).",
                    log.path().display()
                );
            }
            for r in &records {
                out(&format!("{}\n", audit::render_line(r)))?;
            }
            if bad > 0 {
                eprintln!(
                    "warning: {bad} unreadable lines in {}",
                    log.path().display()
                );
            }
            Ok(())
        }
    }
}

fn settle(id: &str, approve: bool, json: bool) -> Result<(), Error> {
    let p = paths()?;
    let a = approvals::settle(&p, id, approve, now_ms())?;
    if json {
        return print_json(&serde_json::to_value(&a).unwrap_or_default());
    }
    if approve {
        println!(
            "Approved {}: {}. The assistant may now retry the call (once).",
            a.id, a.summary
        );
    } else {
        println!("Denied {}: {}.", a.id, a.summary);
    }
    Ok(())
}

fn policy(cmd: PolicyCommand, json: bool) -> Result<(), Error> {
    let p = paths()?;
    match cmd {
        PolicyCommand::Show => {
            let policy = Policy::load(&p)?;
            if json {
                return print_json(
                    &serde_json::to_value(&policy).map_err(|e| Error::Config(e.to_string()))?,
                );
            }
            out(&policy.render())?;
            Ok(())
        }
        PolicyCommand::Expose(a) => {
            let reg = Registry::load(&p)?;
            for n in &a.names {
                reg.get(n)?;
            }
            for r in &a.rooms {
                reg.in_room(r)?;
            }
            let cap = a
                .cap
                .as_deref()
                .map(Tier::parse_cap)
                .transpose()
                .map_err(Error::usage)?;
            let names: Vec<String> = a
                .names
                .iter()
                .filter_map(|n| reg.get(n).ok().map(|e| e.name.clone()))
                .collect();
            let scenes: Vec<String> = if a.scenes.is_empty() {
                Vec::new()
            } else {
                let file = SceneFile::load(&p)?;
                a.scenes
                    .iter()
                    .map(|s| file.get(s).map(|x| x.name.clone()))
                    .collect::<Result<_, _>>()?
            };
            let policy = Policy::update(&p, |pol| {
                if a.all {
                    pol.expose.all = true;
                }
                for s in &scenes {
                    pol.expose_scene(s);
                }
                for n in &names {
                    pol.expose_device(n);
                    if let Some(c) = cap {
                        pol.set_device_cap(n, c);
                    }
                }
                for r in &a.rooms {
                    pol.expose_room(r);
                    if let Some(c) = cap {
                        pol.set_room_cap(r, c);
                    }
                }
                Ok(pol.clone())
            })?;
            if !json {
                out(&policy.render())?;
            }
            Ok(())
        }
        PolicyCommand::Unexpose(a) => {
            let policy = Policy::update(&p, |pol| {
                if a.all {
                    pol.expose.all = false;
                    pol.expose.devices.clear();
                    pol.expose.rooms.clear();
                    pol.expose.scenes.clear();
                }
                for n in &a.names {
                    if !pol.unexpose_device(n) && !pol.expose.all {
                        return Err(AgentError::Usage(format!("'{n}' is not exposed by name")));
                    }
                }
                for r in &a.rooms {
                    if !pol.unexpose_room(r) {
                        return Err(AgentError::Usage(format!("room '{r}' is not exposed")));
                    }
                }
                for s in &a.scenes {
                    if !pol.unexpose_scene(s) {
                        return Err(AgentError::Usage(format!("scene '{s}' is not shared")));
                    }
                }
                Ok(pol.clone())
            })?;
            if !json {
                out(&policy.render())?;
            }
            Ok(())
        }
        PolicyCommand::AllowGeneric { state } => {
            let on = state == "on";
            Policy::update(&p, |pol| {
                pol.tools.generic = on;
                Ok(())
            })?;
            println!(
                "Generic tools (set_property, run_action) are {}.",
                if on {
                    "on; each call still needs the user's confirmation"
                } else {
                    "off"
                }
            );
            Ok(())
        }
        PolicyCommand::Set { key, value } => {
            let policy = Policy::update(&p, |pol| {
                pol.set(&key, &value)?;
                Ok(pol.clone())
            })?;
            if !json {
                out(&policy.render())?;
            }
            Ok(())
        }
        PolicyCommand::Grants => {
            let list = grants::list(&p)?;
            let now = now_ms();
            if json {
                return print_json(&json!({"grants": list}));
            }
            let valid: Vec<_> = list.iter().filter(|g| g.is_valid(now)).collect();
            if valid.is_empty() {
                out("No grants.\n")?;
            }
            for g in valid {
                println!(
                    "{}  {}  until {}  ({})",
                    g.device,
                    g.class,
                    crate::agent::clock::rfc3339(g.expires_at_ms),
                    g.via
                );
            }
            Ok(())
        }
        PolicyCommand::Revoke { device } => {
            let n = grants::revoke(&p, device.as_deref())?;
            out(&format!("Removed {n} grant(s).\n"))?;
            Ok(())
        }
    }
}
