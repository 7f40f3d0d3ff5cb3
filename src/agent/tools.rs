//! The tool catalogue and what each tool does to a device.
//!
//! Names are stable snake_case (valid MCP and OpenAI function names). Input
//! schemas are strict: every object has `additionalProperties: false`,
//! every property is listed in `required`, optional values are typed
//! `[T, "null"]`. There is no `confirm` or `force` argument anywhere: only
//! the user can confirm. Annotations come from [`super::tier`].
//!
//! This module knows nothing about policy: [`plan_write`] turns a typed
//! call into a checked [`WritePlan`] (names resolved and values checked
//! against the spec, no IO), and [`execute`] runs it with a read before and
//! a read-back after. The gate decides whether it may run.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use mijia_proto::miot::{NameTable, Spec};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tier::{self, Capability, Tier};
use crate::home::device::{ProfileKind, ResolvedProp};
use crate::home::{Device, DeviceOpError, ModelProfile, PropReading};

// ----------------------------------------------------------------- catalogue

/// One tool.
#[derive(Debug, Clone)]
pub struct ToolDef {
    /// Stable name.
    pub name: &'static str,
    /// Human title.
    pub title: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// Its capability class (tier and annotations follow from it).
    pub capability: Capability,
    /// `set_property` / `run_action`: listed only when the policy allows.
    pub generic: bool,
    /// `run_scene`: listed only when scenes exist.
    pub scene: bool,
    /// JSON Schema of the arguments.
    pub input_schema: Value,
    /// JSON Schema of `structuredContent`.
    pub output_schema: Value,
}

impl ToolDef {
    /// Whether it changes anything.
    pub fn writes(&self) -> bool {
        self.capability != Capability::Read
    }
}

fn nullable(kind: &str, description: &str) -> Value {
    json!({"type": [kind, "null"], "description": description})
}

fn object(props: Vec<(&str, Value)>) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    let properties: Map<String, Value> =
        props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

const DEVICE_DESC: &str = "The device: its name as the user calls it (\"Desk lamp\"), \
    \"room/name\", a few words that pick it out, or its device id. Ambiguous references \
    return the candidates.";
const ROOM_DESC: &str = "Optional room to narrow the device reference.";
const APPROVAL_DESC: &str = "Only when retrying a call that returned approval_required \
    after the user approved it with `mijia approve ID`: that ID. Otherwise null.";

fn device_args(mut extra: Vec<(&'static str, Value)>, device_required: bool) -> Value {
    let mut props = vec![
        (
            "device",
            if device_required {
                json!({"type": "string", "description": DEVICE_DESC})
            } else {
                nullable("string", DEVICE_DESC)
            },
        ),
        ("room", nullable("string", ROOM_DESC)),
    ];
    props.append(&mut extra);
    object(props)
}

fn write_args(extra: Vec<(&'static str, Value)>) -> Value {
    let mut extra = extra;
    extra.push(("approval_id", nullable("string", APPROVAL_DESC)));
    device_args(extra, true)
}

fn device_info_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "room": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "type": {"type": "string"},
            "did": {"type": ["string", "null"]}
        },
        "required": ["name", "type"]
    })
}

/// The `route` of a result: which way the device was reached.
fn route_schema() -> Value {
    json!({
        "type": "string",
        "enum": ["local", "cloud"],
        "description": "How the device was reached: the local network, or the Xiaomi cloud \
            (when it did not answer locally and the user is logged in)."
    })
}

fn write_output() -> Value {
    json!({
        "type": "object",
        "properties": {
            "device": device_info_schema(),
            "action": {"type": "string", "description": "What was done, in words."},
            "tier": {"type": "string", "enum": ["control", "sensitive"]},
            "before": {"type": "object", "description": "Values read before the change."},
            "after": {"type": "object", "description": "Values read back after the change."},
            "changes": {"type": "array", "items": {"type": "object"}},
            "verified": {"type": "boolean", "description": "Whether the read-back shows the requested state."},
            "route": route_schema()
        },
        "required": ["device", "action", "before", "after", "verified", "route"]
    })
}

fn scene_output() -> Value {
    json!({
        "type": "object",
        "properties": {
            "scene": {"type": "string"},
            "tier": {"type": "string", "enum": ["control", "sensitive"], "description": "The highest tier of the devices the scene touches."},
            "decision": {"type": "string", "description": "How the run was authorized (allowed, granted, confirmed, approved_out_of_band)."},
            "dry_run": {"type": "boolean"},
            "outcome": {"type": "string", "enum": ["ok", "failed", "stopped"], "description": "stopped: a guard did not hold, nothing failed."},
            "failed_step": {"type": ["string", "null"], "description": "The first failed step (\"3\", or \"2.1\" inside a parallel group)."},
            "steps": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "step": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["set", "action", "parallel", "wait", "guard"]},
                    "device": {"type": ["string", "null"]},
                    "outcome": {"type": "string", "enum": ["ok", "checked", "failed", "skipped", "stopped"]},
                    "detail": {"type": "string"},
                    "elapsed_ms": {"type": "integer"},
                    "class": {"type": "string"}
                },
                "required": ["step", "kind", "device", "outcome", "detail", "elapsed_ms"]
            }}
        },
        "required": ["scene", "tier", "decision", "dry_run", "outcome", "failed_step", "steps"]
    })
}

fn build_catalogue() -> Vec<ToolDef> {
    let reading = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "id": {"type": "string"},
            "value": {},
            "display": {"type": "string"},
            "unit": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]}
        },
        "required": ["name", "display"]
    });
    vec![
        ToolDef {
            name: "home_overview",
            title: "Home overview",
            description: "List the rooms and devices the user has shared with you, whether each \
                is online, and its key values (on/off, brightness, temperature, mode...). Call \
                this first to learn device names.",
            capability: Capability::Read,
            generic: false,
            scene: false,
            input_schema: object(vec![(
                "room",
                nullable("string", "Only this room (null for the whole home)."),
            )]),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "rooms": {"type": "array", "items": {"type": "string"}},
                    "devices": {"type": "array", "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "room": {"type": ["string", "null"]},
                            "model": {"type": ["string", "null"]},
                            "type": {"type": "string"},
                            "online": {"type": "boolean"},
                            "values": {"type": "object"},
                            "error": {"type": ["string", "null"]},
                            "route": {"type": ["string", "null"], "enum": ["local", "cloud", null], "description": "The route that answered (null when none did)."}
                        },
                        "required": ["name", "type", "online", "values", "route"]
                    }},
                    "scenes": {"type": "array", "description": "Scenes run_scene can run.", "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "description": {"type": ["string", "null"]}
                        },
                        "required": ["name"]
                    }}
                },
                "required": ["rooms", "devices"]
            }),
        },
        ToolDef {
            name: "get_device_state",
            title: "Get device state",
            description: "Read a device's current values with units and labels: every readable \
                property, or only the named ones (names from describe_device).",
            capability: Capability::Read,
            generic: false,
            scene: false,
            input_schema: device_args(
                vec![(
                    "properties",
                    json!({
                        "type": ["array", "null"],
                        "items": {"type": "string"},
                        "description": "Property names such as \"light.brightness\" (null for all)."
                    }),
                )],
                true,
            ),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "device": device_info_schema(),
                    "online": {"type": "boolean"},
                    "route": route_schema(),
                    "properties": {"type": "array", "items": reading}
                },
                "required": ["device", "online", "route", "properties"]
            }),
        },
        ToolDef {
            name: "describe_device",
            title: "Describe device",
            description: "Explain what a device is and what can be done with it, in plain words: \
                its properties (with ranges and allowed values), its actions, and which tools \
                apply.",
            capability: Capability::Read,
            generic: false,
            scene: false,
            input_schema: device_args(Vec::new(), true),
            output_schema: json!({
                "type": "object",
                "properties": {
                    "device": device_info_schema(),
                    "summary": {"type": "string"},
                    "tools": {"type": "array", "items": {"type": "string"}},
                    "properties": {"type": "array", "items": {"type": "object"}},
                    "actions": {"type": "array", "items": {"type": "object"}}
                },
                "required": ["device", "summary", "tools", "properties", "actions"]
            }),
        },
        ToolDef {
            name: "turn_on",
            title: "Turn on",
            description: "Switch a device on. Reports the state before and after (read back).",
            capability: Capability::Power,
            generic: false,
            scene: false,
            input_schema: write_args(Vec::new()),
            output_schema: write_output(),
        },
        ToolDef {
            name: "turn_off",
            title: "Turn off",
            description: "Switch a device off. Reports the state before and after (read back).",
            capability: Capability::Power,
            generic: false,
            scene: false,
            input_schema: write_args(Vec::new()),
            output_schema: write_output(),
        },
        ToolDef {
            name: "set_light",
            title: "Set light",
            description: "Set a light's brightness, colour temperature and/or colour (the light \
                is switched on too). Give at least one; values are checked against the device's \
                range.",
            capability: Capability::Light,
            generic: false,
            scene: false,
            input_schema: write_args(vec![
                ("brightness", nullable("integer", "Brightness in percent (usually 1-100).")),
                ("color_temperature", nullable("integer", "Colour temperature in kelvin, e.g. 2700 (warm) to 6500 (cool).")),
                ("color", nullable("string", "Colour as #RRGGBB or a name: red, orange, yellow, green, cyan, blue, purple, pink, white, warm white.")),
            ]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "set_climate",
            title: "Set climate",
            description: "Set the target temperature and/or mode of an air conditioner, heater or \
                thermostat. Heaters are sensitive: the user confirms each change.",
            capability: Capability::Climate,
            generic: false,
            scene: false,
            input_schema: write_args(vec![
                ("target_temperature", nullable("number", "Target temperature in °C.")),
                ("mode", nullable("string", "Mode by name as listed by describe_device (e.g. cool, heat, auto).")),
            ]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "set_fan",
            title: "Set fan",
            description: "Set a fan's or purifier's speed level, mode and/or oscillation.",
            capability: Capability::Fan,
            generic: false,
            scene: false,
            input_schema: write_args(vec![
                ("speed", nullable("integer", "Fan level as listed by describe_device (e.g. 1-3).")),
                ("mode", nullable("string", "Mode by name (e.g. auto, sleep, natural wind).")),
                ("oscillate", nullable("boolean", "Swing on or off.")),
            ]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "set_cover",
            title: "Set cover",
            description: "Move a curtain or blind: to a position in percent, or open, close or stop.",
            capability: Capability::Cover,
            generic: false,
            scene: false,
            input_schema: write_args(vec![
                ("position", nullable("integer", "Target position in percent (0 closed, 100 open).")),
                ("command", json!({"type": ["string", "null"], "enum": ["open", "close", "stop", null], "description": "open, close or stop (null when giving a position)."})),
            ]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "vacuum",
            title: "Robot vacuum",
            description: "Start cleaning, stop, or send a robot vacuum back to its dock.",
            capability: Capability::Vacuum,
            generic: false,
            scene: false,
            input_schema: write_args(vec![(
                "command",
                json!({"type": "string", "enum": ["start", "stop", "dock"], "description": "What to do."}),
            )]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "run_scene",
            title: "Run scene",
            description: "Run one of the scenes the user has shared (names from home_overview): \
                its steps run in order and each step's result is reported. A scene needs every \
                device it touches to be shared; its tier is that of its most sensitive device, so \
                a scene with a lock, heater, kettle, camera or valve needs the user's \
                confirmation every time. dry_run checks the scene against the devices' specs \
                and sends nothing.",
            capability: Capability::Scene,
            generic: false,
            scene: true,
            input_schema: object(vec![
                ("scene", json!({"type": "string", "description": "The scene's name, e.g. \"movie-night\"."})),
                ("dry_run", nullable("boolean", "true to only check the scene (nothing is sent, no confirmation needed); null or false to run it.")),
                ("approval_id", nullable("string", APPROVAL_DESC)),
            ]),
            output_schema: scene_output(),
        },
        ToolDef {
            name: "set_property",
            title: "Set property (generic)",
            description: "Write one property by name (from describe_device), checked against the \
                device's spec. Prefer the typed tools; this needs the user's confirmation every \
                time.",
            capability: Capability::Property,
            generic: true,
            scene: false,
            input_schema: write_args(vec![
                ("property", json!({"type": "string", "description": "Property name such as \"light.brightness\" (or siid.piid)."})),
                ("value", json!({"type": ["string", "number", "boolean"], "description": "The value; a value-list entry may be given by its description."})),
            ]),
            output_schema: write_output(),
        },
        ToolDef {
            name: "run_action",
            title: "Run action (generic)",
            description: "Run one action by name (from describe_device) with its arguments, \
                checked against the device's spec. Needs the user's confirmation every time.",
            capability: Capability::Action,
            generic: true,
            scene: false,
            input_schema: write_args(vec![
                ("action", json!({"type": "string", "description": "Action name such as \"light.toggle\" (or siid.aiid)."})),
                ("args", json!({"type": ["array", "null"], "items": {"type": ["string", "number", "boolean"]}, "description": "Arguments in order (null for none)."})),
            ]),
            output_schema: write_output(),
        },
    ]
}

/// Every tool mijia knows, in listing order.
pub fn catalogue() -> &'static [ToolDef] {
    static TOOLS: OnceLock<Vec<ToolDef>> = OnceLock::new();
    TOOLS.get_or_init(build_catalogue)
}

/// A tool by name.
pub fn find(name: &str) -> Option<&'static ToolDef> {
    catalogue().iter().find(|t| t.name == name)
}

/// The tools to list: generic ones only when the policy turns them on,
/// `run_scene` only when scenes exist.
pub fn listed(generic: bool, scenes: bool) -> Vec<&'static ToolDef> {
    catalogue()
        .iter()
        .filter(|t| (!t.generic || generic) && (!t.scene || scenes))
        .collect()
}

/// A tool as an MCP `Tool` object.
pub fn mcp_json(t: &ToolDef) -> Value {
    let hints = t.capability.hints();
    json!({
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "inputSchema": t.input_schema,
        "outputSchema": t.output_schema,
        "annotations": {
            "title": t.title,
            "readOnlyHint": hints.read_only_hint,
            "destructiveHint": hints.destructive_hint,
            "idempotentHint": hints.idempotent_hint,
            "openWorldHint": hints.open_world_hint,
        },
    })
}

/// A tool as an OpenAI function-calling tool (strict mode).
pub fn openai_json(t: &ToolDef) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": t.name,
            "description": t.description,
            "parameters": t.input_schema,
            "strict": true,
        }
    })
}

// ------------------------------------------------------------------ arguments

/// `home_overview`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverviewArgs {
    /// Room filter.
    #[serde(default)]
    pub room: Option<String>,
}

/// `get_device_state`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateArgs {
    /// Device reference.
    pub device: String,
    /// Room.
    #[serde(default)]
    pub room: Option<String>,
    /// Property names.
    #[serde(default)]
    pub properties: Option<Vec<String>>,
}

/// `describe_device`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescribeArgs {
    /// Device reference.
    pub device: String,
    /// Room.
    #[serde(default)]
    pub room: Option<String>,
}

/// `run_scene`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneArgs {
    /// The scene's name.
    pub scene: String,
    /// Check only.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Retry after out-of-band approval.
    #[serde(default)]
    pub approval_id: Option<String>,
}

/// Any write tool: the target plus the tool's own fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// Device reference.
    pub device: String,
    /// Room.
    #[serde(default)]
    pub room: Option<String>,
    /// Retry after out-of-band approval.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// set_light.
    #[serde(default)]
    pub brightness: Option<i64>,
    /// set_light.
    #[serde(default)]
    pub color_temperature: Option<i64>,
    /// set_light.
    #[serde(default)]
    pub color: Option<String>,
    /// set_climate.
    #[serde(default)]
    pub target_temperature: Option<f64>,
    /// set_climate, set_fan.
    #[serde(default)]
    pub mode: Option<String>,
    /// set_fan.
    #[serde(default)]
    pub speed: Option<i64>,
    /// set_fan.
    #[serde(default)]
    pub oscillate: Option<bool>,
    /// set_cover.
    #[serde(default)]
    pub position: Option<i64>,
    /// set_cover, vacuum.
    #[serde(default)]
    pub command: Option<String>,
    /// set_property.
    #[serde(default)]
    pub property: Option<String>,
    /// set_property.
    #[serde(default)]
    pub value: Option<Value>,
    /// run_action.
    #[serde(default)]
    pub action: Option<String>,
    /// run_action.
    #[serde(default)]
    pub args: Option<Vec<Value>>,
}

/// Parses a write tool's arguments, rejecting fields the tool does not
/// take (the schemas are strict, so this matches them).
pub fn parse_write_args(tool: &ToolDef, args: &Value) -> Result<WriteArgs, String> {
    let allowed: Vec<&str> = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if let Some(obj) = args.as_object() {
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!(
                "{} does not take '{k}'; it takes: {}",
                tool.name,
                allowed.join(", ")
            ));
        }
    }
    serde_json::from_value(args.clone()).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- planning

/// The device type of a profile (see [`tier::device_type_of`]).
pub fn device_type(profile: &ModelProfile) -> String {
    tier::device_type_of(
        profile.spec().map(|s| s.device_type()),
        profile.model.as_deref(),
    )
}

/// What a write does, checked, before any IO.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// Capability class.
    pub capability: Capability,
    /// Tier (from the table, before caps).
    pub tier: Tier,
    /// In words: "turn on", "set brightness to 40 %".
    pub action: String,
    /// What to send.
    pub op: WriteOp,
    /// Properties to read before and after.
    pub watch: Vec<String>,
    /// `name: before → after` lines, filled once `before` is known.
    pub preview: Vec<String>,
}

/// The device operation.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Property writes (`name`, value text) in one request.
    Set(Vec<(String, String)>),
    /// An action with its arguments.
    Action(String, Vec<String>),
}

/// A property found in a spec.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    service: String,
    item: String,
}

const NOT_CONTROLS: &[&str] = &[
    "device-information",
    "indicator-light",
    "physical-controls-locked",
    "alarm",
    "screen",
];

fn find_prop(
    spec: &Spec,
    names: &NameTable,
    preferred: &[&str],
    items: &[&str],
    anywhere: bool,
) -> Option<Found> {
    let services = spec.services_by_iid();
    let pick = |svc: &mijia_proto::miot::Service| -> Option<Found> {
        for item in items {
            let first = svc
                .properties
                .iter()
                .filter(|p| p.name() == *item && p.access.write)
                .min_by_key(|p| p.iid);
            if let Some(p) = first {
                let name = names
                    .property_name(svc.iid, p.iid)
                    .map_or_else(|| format!("{}.{}", svc.iid, p.iid), str::to_string);
                return Some(Found {
                    name,
                    service: svc.name().to_string(),
                    item: (*item).to_string(),
                });
            }
        }
        None
    };
    for want in preferred {
        for svc in services.iter().filter(|s| s.name() == *want) {
            if let Some(f) = pick(svc) {
                return Some(f);
            }
        }
    }
    if anywhere {
        for svc in services
            .iter()
            .filter(|s| !NOT_CONTROLS.contains(&s.name()))
        {
            if let Some(f) = pick(svc) {
                return Some(f);
            }
        }
    }
    None
}

fn find_action(spec: &Spec, names: &NameTable, items: &[&str]) -> Option<Found> {
    for item in items {
        for svc in spec.services_by_iid() {
            let first = svc
                .actions
                .iter()
                .filter(|a| a.name() == *item && a.ins.is_empty())
                .min_by_key(|a| a.iid);
            if let Some(a) = first {
                let name = names
                    .action_name(svc.iid, a.iid)
                    .map_or_else(|| format!("{}.{}", svc.iid, a.iid), str::to_string);
                return Some(Found {
                    name,
                    service: svc.name().to_string(),
                    item: (*item).to_string(),
                });
            }
        }
    }
    None
}

/// Why a call cannot be planned: the text says what to do instead.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError(pub String);

fn unsupported(device: &str, what: &str) -> PlanError {
    PlanError(format!(
        "{device} has no {what}; call describe_device to see what it can do"
    ))
}

/// A colour name or `#RRGGBB` as the integer the spec wants.
pub fn parse_color(text: &str) -> Result<u32, PlanError> {
    let t = text.trim().to_ascii_lowercase();
    let named = match t.as_str() {
        "red" => Some(0xFF0000),
        "orange" => Some(0xFF8000),
        "yellow" => Some(0xFFD000),
        "green" => Some(0x00FF00),
        "cyan" => Some(0x00FFFF),
        "blue" => Some(0x0000FF),
        "purple" | "violet" => Some(0x8000FF),
        "pink" => Some(0xFF60A0),
        "white" => Some(0xFFFFFF),
        "warm white" | "warm-white" => Some(0xFFD6AA),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    let hex = t.strip_prefix('#').unwrap_or(&t);
    if hex.len() == 6 {
        if let Ok(c) = u32::from_str_radix(hex, 16) {
            return Ok(c);
        }
    }
    Err(PlanError(format!(
        "'{text}' is not a colour; give #RRGGBB or a name such as red, blue or warm white"
    )))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Plans a typed or generic write on one device. `name` is the device's
/// name for messages. No IO.
pub fn plan_write(
    tool: &ToolDef,
    args: &WriteArgs,
    name: &str,
    profile: &ModelProfile,
) -> Result<WritePlan, PlanError> {
    let dtype = device_type(profile);
    let capability = tool.capability;
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut action: Option<(String, Vec<String>)> = None;
    let words: String;
    let (spec, names) = match &profile.kind {
        ProfileKind::Miot { spec, names } => (Some(spec.as_ref()), Some(names)),
        _ => (None, None),
    };
    // A property by spec item names, or a legacy name.
    let prop =
        |preferred: &[&str], items: &[&str], legacy: &[&str], anywhere: bool| -> Option<Found> {
            if let (Some(spec), Some(names)) = (spec, names) {
                return find_prop(spec, names, preferred, items, anywhere);
            }
            legacy.iter().find_map(|l| match profile.resolve_prop(l) {
                Ok(ResolvedProp::Legacy(p))
                    if !matches!(p.setter, crate::home::legacy::Setter::None) =>
                {
                    Some(Found {
                        name: p.name.to_string(),
                        service: String::new(),
                        item: p.name.to_string(),
                    })
                }
                _ => None,
            })
        };
    match tool.name {
        "turn_on" | "turn_off" => {
            let on = tool.name == "turn_on";
            let p = prop(
                &[dtype.as_str()],
                &["on", "switch-status", "power"],
                &["power", "on"],
                true,
            )
            .ok_or_else(|| unsupported(name, "on/off switch"))?;
            let v = if p.service.is_empty() {
                if on {
                    "on"
                } else {
                    "off"
                }
            } else if on {
                "true"
            } else {
                "false"
            };
            pairs.push((p.name.clone(), v.to_string()));
            touched.push((p.service, p.item));
            words = if on {
                "turn on".into()
            } else {
                "turn off".into()
            };
        }
        "set_light" => {
            if args.brightness.is_none() && args.color_temperature.is_none() && args.color.is_none()
            {
                return Err(PlanError(
                    "give brightness, color_temperature or color".into(),
                ));
            }
            let mut parts = Vec::new();
            let light = ["light"];
            if let Some(b) = args.brightness {
                let p = prop(&light, &["brightness"], &["brightness"], false)
                    .ok_or_else(|| unsupported(name, "brightness control"))?;
                pairs.push((p.name.clone(), b.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("brightness {b} %"));
            }
            if let Some(ct) = args.color_temperature {
                let p = prop(
                    &light,
                    &["color-temperature"],
                    &["color-temperature"],
                    false,
                )
                .ok_or_else(|| unsupported(name, "colour temperature control"))?;
                pairs.push((p.name.clone(), ct.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("colour temperature {ct} K"));
            }
            if let Some(c) = &args.color {
                let rgb = parse_color(c)?;
                let p = prop(&light, &["color"], &["color", "rgb"], false)
                    .ok_or_else(|| unsupported(name, "colour control"))?;
                pairs.push((p.name.clone(), rgb.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("colour #{rgb:06X}"));
            }
            if let Some(p) = prop(&light, &["on"], &["power"], false) {
                let v = if p.service.is_empty() { "on" } else { "true" };
                pairs.insert(0, (p.name.clone(), v.to_string()));
                touched.push((p.service, p.item));
            }
            words = format!("set {}", parts.join(", "));
        }
        "set_climate" => {
            if args.target_temperature.is_none() && args.mode.is_none() {
                return Err(PlanError("give target_temperature or mode".into()));
            }
            let services = [
                dtype.as_str(),
                "air-conditioner",
                "heater",
                "thermostat",
                "water-heater",
                "ptc-bath-heater",
                "kettle",
            ];
            let mut parts = Vec::new();
            if let Some(t) = args.target_temperature {
                let p = prop(
                    &services,
                    &["target-temperature"],
                    &["target-temperature", "temperature"],
                    true,
                )
                .ok_or_else(|| unsupported(name, "target temperature"))?;
                pairs.push((p.name.clone(), t.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("target temperature {t} °C"));
            }
            if let Some(m) = &args.mode {
                let p = prop(&services, &["mode"], &["mode"], false)
                    .ok_or_else(|| unsupported(name, "mode setting"))?;
                pairs.push((p.name.clone(), m.clone()));
                touched.push((p.service, p.item));
                parts.push(format!("mode {m}"));
            }
            words = format!("set {}", parts.join(", "));
        }
        "set_fan" => {
            if args.speed.is_none() && args.mode.is_none() && args.oscillate.is_none() {
                return Err(PlanError("give speed, mode or oscillate".into()));
            }
            let services = [
                "fan",
                "air-purifier",
                "fan-control",
                "ceiling-fan",
                "humidifier",
                dtype.as_str(),
            ];
            let mut parts = Vec::new();
            if let Some(s) = args.speed {
                let p = prop(
                    &services,
                    &["fan-level", "speed-level", "motor-speed"],
                    &["fan-level", "speed", "favorite-level"],
                    false,
                )
                .ok_or_else(|| unsupported(name, "fan speed setting"))?;
                pairs.push((p.name.clone(), s.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("speed {s}"));
            }
            if let Some(m) = &args.mode {
                let p = prop(&services, &["mode"], &["mode"], false)
                    .ok_or_else(|| unsupported(name, "fan mode"))?;
                pairs.push((p.name.clone(), m.clone()));
                touched.push((p.service, p.item));
                parts.push(format!("mode {m}"));
            }
            if let Some(o) = args.oscillate {
                let p = prop(
                    &services,
                    &["horizontal-swing", "oscillate", "vertical-swing"],
                    &["oscillate", "angle-enable"],
                    false,
                )
                .ok_or_else(|| unsupported(name, "oscillation"))?;
                pairs.push((p.name.clone(), o.to_string()));
                touched.push((p.service, p.item));
                parts.push(format!("oscillation {}", if o { "on" } else { "off" }));
            }
            words = format!("set {}", parts.join(", "));
        }
        "set_cover" => {
            let services = ["curtain", "window-opener", "airer", dtype.as_str()];
            match (args.position, args.command.as_deref()) {
                (Some(pos), None) => {
                    let p = prop(&services, &["target-position"], &["target-position"], false)
                        .ok_or_else(|| unsupported(name, "position control"))?;
                    pairs.push((p.name.clone(), pos.to_string()));
                    touched.push((p.service, p.item));
                    words = format!("move to {pos} %");
                }
                (None, Some(cmd)) => {
                    let p = prop(&services, &["motor-control"], &["motor-control"], false)
                        .ok_or_else(|| unsupported(name, "open/close control"))?;
                    let candidates: &[&str] = match cmd {
                        "open" => &["open"],
                        "close" => &["close"],
                        "stop" => &["stop", "pause"],
                        other => {
                            return Err(PlanError(format!(
                                "command '{other}' is not open, close or stop"
                            )))
                        }
                    };
                    let value = candidates
                        .iter()
                        .find(|v| profile.plan_set(&[(p.name.as_str(), v)]).is_ok())
                        .ok_or_else(|| unsupported(name, &format!("'{cmd}' command")))?;
                    pairs.push((p.name.clone(), (*value).to_string()));
                    touched.push((p.service, p.item));
                    words = cmd.to_string();
                }
                _ => {
                    return Err(PlanError(
                        "give either position or command (open, close, stop)".into(),
                    ))
                }
            }
        }
        "vacuum" => {
            let cmd = args.command.as_deref().unwrap_or("");
            let (miot, legacy): (&[&str], &[&str]) = match cmd {
                "start" => (
                    &["start-sweep", "start-clean", "start-cleaning"],
                    &["start"],
                ),
                "stop" => (
                    &[
                        "stop-sweeping",
                        "stop-clean",
                        "stop-cleaning",
                        "pause-sweeping",
                    ],
                    &["stop", "pause"],
                ),
                "dock" => (
                    &["start-charge", "return-to-charge", "back-charge"],
                    &["dock", "home"],
                ),
                other => {
                    return Err(PlanError(format!(
                        "command '{other}' is not start, stop or dock"
                    )))
                }
            };
            let found = if let (Some(spec), Some(names)) = (spec, names) {
                find_action(spec, names, miot)
            } else {
                legacy.iter().find_map(|l| {
                    profile.plan_action(l, &[]).ok().map(|_| Found {
                        name: (*l).to_string(),
                        service: String::new(),
                        item: (*l).to_string(),
                    })
                })
            };
            let f = found.ok_or_else(|| unsupported(name, &format!("'{cmd}' action")))?;
            touched.push((f.service, f.item));
            action = Some((f.name, Vec::new()));
            words = match cmd {
                "start" => "start cleaning".into(),
                "stop" => "stop cleaning".into(),
                _ => "return to the dock".into(),
            };
        }
        "set_property" => {
            let pname = args
                .property
                .clone()
                .ok_or_else(|| PlanError("give property".into()))?;
            let value = args
                .value
                .as_ref()
                .ok_or_else(|| PlanError("give value".into()))?;
            let resolved = profile
                .resolve_prop(&pname)
                .map_err(|e| PlanError(e.to_string()))?;
            let (service, item) = item_of(spec, &resolved);
            pairs.push((resolved.name().to_string(), value_text(value)));
            touched.push((service, item));
            words = format!("set {} to {}", resolved.name(), value_text(value));
        }
        "run_action" => {
            let aname = args
                .action
                .clone()
                .ok_or_else(|| PlanError("give action".into()))?;
            let list: Vec<String> = args
                .args
                .clone()
                .unwrap_or_default()
                .iter()
                .map(value_text)
                .collect();
            let plan = profile
                .plan_action(&aname, &list)
                .map_err(|e| PlanError(e.to_string()))?;
            let (service, item, full) = match (&plan, spec) {
                (
                    crate::home::device::ActionPlan::Miot {
                        name, siid, aiid, ..
                    },
                    Some(spec),
                ) => (
                    spec.service(*siid)
                        .map(|s| s.name().to_string())
                        .unwrap_or_default(),
                    spec.action(*siid, *aiid)
                        .map(|a| a.name().to_string())
                        .unwrap_or_else(|| name.clone()),
                    name.clone(),
                ),
                (crate::home::device::ActionPlan::Miot { name, .. }, None) => {
                    (String::new(), name.clone(), name.clone())
                }
                (crate::home::device::ActionPlan::Legacy { action, .. }, _) => (
                    String::new(),
                    action.name.to_string(),
                    action.name.to_string(),
                ),
            };
            touched.push((service, item));
            words = format!("run {full}");
            action = Some((aname, list));
        }
        other => return Err(PlanError(format!("{other} is not a write tool"))),
    }
    // Check every value against the spec now, before asking anyone.
    if !pairs.is_empty() {
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        profile
            .plan_set(&refs)
            .map_err(|e| PlanError(e.to_string()))?;
    }
    let mut tier = Tier::Read;
    for (service, item) in &touched {
        let t = tier::classify(
            &dtype,
            capability,
            tier::Target {
                service: Some(service.as_str()).filter(|s| !s.is_empty()),
                item: Some(item.as_str()),
            },
        );
        tier = tier.max(t);
    }
    tier = tier.max(capability.base_tier());
    let watch: Vec<String> = match &action {
        Some(_) => status_props(profile),
        None => pairs.iter().map(|(n, _)| n.clone()).collect(),
    };
    let op = match action {
        Some((n, a)) => WriteOp::Action(n, a),
        None => WriteOp::Set(pairs),
    };
    Ok(WritePlan {
        capability,
        tier,
        action: words,
        op,
        watch,
        preview: Vec::new(),
    })
}

/// The service and item type names of a resolved property (empty service
/// for legacy devices).
pub(crate) fn item_of(spec: Option<&Spec>, p: &ResolvedProp) -> (String, String) {
    match (p, spec) {
        (ResolvedProp::Miot { id, name }, Some(spec)) => (
            spec.service(id.siid)
                .map(|s| s.name().to_string())
                .unwrap_or_default(),
            spec.property(id.siid, id.piid)
                .map(|p| p.name().to_string())
                .unwrap_or_else(|| name.clone()),
        ),
        (ResolvedProp::Miot { name, .. }, None) => (String::new(), name.clone()),
        (ResolvedProp::Legacy(l), _) => (String::new(), l.name.to_string()),
    }
}

/// Property items worth showing in an overview and around actions.
pub const KEY_ITEMS: &[&str] = &[
    "on",
    "brightness",
    "color-temperature",
    "mode",
    "target-temperature",
    "temperature",
    "relative-humidity",
    "fan-level",
    "current-position",
    "target-position",
    "status",
    "battery-level",
    "arming-mode",
    "power",
];

fn item_name(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}

/// Status-like readable properties (for reads around actions).
fn status_props(profile: &ModelProfile) -> Vec<String> {
    profile
        .plan_status()
        .map(|all| {
            all.iter()
                .map(|p| p.name().to_string())
                .filter(|n| ["status", "on", "power", "state"].contains(&item_name(n)))
                .take(4)
                .collect()
        })
        .unwrap_or_default()
}

/// The key values of a status reading, by property name.
pub fn key_values(readings: &[PropReading]) -> Map<String, Value> {
    readings
        .iter()
        .filter(|r| r.is_ok() && KEY_ITEMS.contains(&item_name(&r.name)))
        .map(|r| (r.name.clone(), Value::String(r.display.clone())))
        .collect()
}

/// A reading as JSON for `get_device_state`.
pub fn reading_json(r: &PropReading) -> Value {
    json!({
        "name": r.name,
        "id": r.addr.to_string(),
        "value": r.value,
        "display": r.display,
        "unit": r.unit,
        "error": r.error,
    })
}

// ----------------------------------------------------------------- execution

/// What a write did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// Values before, by property name.
    pub before: Map<String, Value>,
    /// Values read back after.
    pub after: Map<String, Value>,
    /// Per-property results.
    pub changes: Vec<Value>,
    /// Whether the read-back shows the requested state (and the device
    /// accepted every item).
    pub verified: bool,
    /// The device's complaint, when it refused something.
    pub error: Option<String>,
}

fn values(readings: &[PropReading]) -> Map<String, Value> {
    readings
        .iter()
        .map(|r| (r.name.clone(), r.value.clone().unwrap_or(Value::Null)))
        .collect()
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-6,
        _ => a == b,
    }
}

/// Reads the watched properties (the state before a write).
pub async fn read_before(
    device: &Device,
    plan: &WritePlan,
) -> Result<Map<String, Value>, DeviceOpError> {
    if plan.watch.is_empty() {
        return Ok(Map::new());
    }
    let names: Vec<&str> = plan.watch.iter().map(String::as_str).collect();
    Ok(values(&device.get(&names).await?))
}

/// `name: before → after` lines for the confirmation message.
pub fn preview(
    plan: &WritePlan,
    profile: &ModelProfile,
    before: &Map<String, Value>,
) -> Vec<String> {
    match &plan.op {
        WriteOp::Set(pairs) => {
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let Ok(planned) = profile.plan_set(&refs) else {
                return Vec::new();
            };
            planned
                .iter()
                .map(|w| {
                    let was = before.get(w.prop.name()).map_or_else(
                        || "?".to_string(),
                        |v| match v {
                            Value::Bool(true) => "on".to_string(),
                            Value::Bool(false) => "off".to_string(),
                            other => value_text(other),
                        },
                    );
                    let to = match &w.value {
                        Value::Bool(true) => "on".to_string(),
                        Value::Bool(false) => "off".to_string(),
                        _ => w.display.clone(),
                    };
                    format!("{}: {was} → {to}", w.prop.name())
                })
                .collect()
        }
        WriteOp::Action(name, args) => vec![if args.is_empty() {
            format!("action {name}")
        } else {
            format!("action {name}({})", args.join(", "))
        }],
    }
}

/// Runs a planned write: send, then read back.
pub async fn execute(
    device: &Device,
    plan: &WritePlan,
    before: Map<String, Value>,
) -> Result<WriteOutcome, DeviceOpError> {
    match &plan.op {
        WriteOp::Set(pairs) => {
            let refs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let results = device.set(&refs).await?;
            let mut after = Map::new();
            let mut changes = Vec::new();
            let mut verified = true;
            let mut error = None;
            for r in &results {
                let now = r.after.as_ref().and_then(|a| a.value.clone());
                let ok = r.is_ok() && now.as_ref().is_some_and(|v| same_value(v, &r.requested));
                verified &= ok;
                if let Some(e) = &r.error {
                    error.get_or_insert_with(|| format!("{}: {e}", r.name));
                }
                after.insert(r.name.clone(), now.clone().unwrap_or(Value::Null));
                changes.push(json!({
                    "property": r.name,
                    "requested": r.requested,
                    "before": before.get(&r.name).cloned().unwrap_or(Value::Null),
                    "after": now,
                    "ok": ok,
                    "error": r.error,
                }));
            }
            Ok(WriteOutcome {
                before,
                after,
                changes,
                verified,
                error,
            })
        }
        WriteOp::Action(name, args) => {
            let out = device.action(name, args).await?;
            let ok = out.error.is_none();
            let after = if plan.watch.is_empty() {
                Map::new()
            } else {
                let names: Vec<&str> = plan.watch.iter().map(String::as_str).collect();
                device
                    .get(&names)
                    .await
                    .map(|r| values(&r))
                    .unwrap_or_default()
            };
            let outputs: BTreeMap<String, Value> = out
                .out
                .iter()
                .map(|o| (o.name.clone(), o.value.clone()))
                .collect();
            Ok(WriteOutcome {
                before,
                after,
                changes: vec![json!({
                    "action": out.name,
                    "id": out.id,
                    "code": out.code,
                    "ok": ok,
                    "error": out.error,
                    "outputs": outputs,
                })],
                verified: ok,
                error: out.error.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks schema positions only (properties' values, items).
    fn walk_objects(v: &Value, path: &str, out: &mut Vec<String>) {
        let is_object = match &v["type"] {
            Value::String(t) => t == "object",
            Value::Array(ts) => ts.iter().any(|t| t == "object"),
            _ => false,
        };
        if is_object {
            if v.get("additionalProperties") != Some(&json!(false)) {
                out.push(format!("{path}: additionalProperties is not false"));
            }
            let req: Vec<&str> = v
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = v.get("properties").and_then(Value::as_object) {
                for (k, child) in props {
                    if !req.contains(&k.as_str()) {
                        out.push(format!("{path}: '{k}' not required"));
                    }
                    walk_objects(child, &format!("{path}/{k}"), out);
                }
            }
        }
        if let Some(items) = v.get("items") {
            walk_objects(items, &format!("{path}[]"), out);
        }
    }

    #[test]
    fn input_schemas_are_strict_and_names_portable() {
        let mut problems = Vec::new();
        for t in catalogue() {
            assert!(
                t.name.len() <= 64 && t.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                t.name
            );
            walk_objects(&t.input_schema, t.name, &mut problems);
            let props = t.input_schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for forbidden in ["confirm", "force", "confirmed", "yes"] {
                assert!(
                    !props.contains_key(forbidden),
                    "{} takes {forbidden}",
                    t.name
                );
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn listing_follows_switches() {
        let names = |g, s| listed(g, s).iter().map(|t| t.name).collect::<Vec<_>>();
        assert!(!names(false, false).contains(&"set_property"));
        assert!(names(true, false).contains(&"run_action"));
        assert!(!names(true, false).contains(&"run_scene"));
        assert!(names(false, true).contains(&"run_scene"));
        let mcp = mcp_json(find("turn_on").unwrap());
        assert_eq!(mcp["annotations"]["readOnlyHint"], json!(false));
        assert_eq!(mcp["annotations"]["destructiveHint"], json!(false));
        assert_eq!(mcp["annotations"]["openWorldHint"], json!(false));
        let oa = openai_json(find("home_overview").unwrap());
        assert_eq!(oa["function"]["strict"], json!(true));
        // run_scene: a write that may be destructive, never idempotent.
        let scene = mcp_json(find("run_scene").unwrap());
        assert_eq!(scene["annotations"]["readOnlyHint"], json!(false));
        assert_eq!(scene["annotations"]["destructiveHint"], json!(true));
        assert_eq!(scene["annotations"]["idempotentHint"], json!(false));
        assert_eq!(
            scene["inputSchema"]["required"],
            json!(["scene", "dry_run", "approval_id"])
        );
        assert_eq!(
            scene["outputSchema"]["properties"]["tier"]["enum"],
            json!(["control", "sensitive"])
        );
    }

    #[test]
    fn colours() {
        assert_eq!(parse_color("#FF8000").unwrap(), 0xFF8000);
        assert_eq!(parse_color("blue").unwrap(), 0x0000FF);
        assert!(parse_color("plaid").is_err());
    }

    #[test]
    fn unknown_fields_rejected() {
        let t = find("turn_on").unwrap();
        let e = parse_write_args(t, &json!({"device": "x", "confirm": true})).unwrap_err();
        assert!(e.contains("confirm"), "{e}");
        let ok = parse_write_args(
            t,
            &json!({"device": "x", "room": null, "approval_id": null}),
        )
        .unwrap();
        assert_eq!(ok.device, "x");
    }
}
