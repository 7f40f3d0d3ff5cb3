//! Scenes: named sequences of steps in a TOML file
//! (`<config dir>/scenes.toml`, or any file given with `--file`).
//!
//! # Format
//!
//! ```toml
//! [[scene]]
//! name = "movie-night"                      # letters, digits, '-', '_', '.'
//! description = "Dim the lights, plug in the TV"   # optional
//!
//! [[scene.step]]                            # a set: NAME = VALUE pairs, one request
//! name = "dim"                              # optional label for the results
//! set = { device = "living-room-light", values = { "light.on" = true, "light.brightness" = 20 } }
//!
//! [[scene.step]]                            # members run at the same time
//! parallel = [
//!   { set = { device = "tv-plug", values = { "switch.on" = true } } },
//!   { action = { device = "robot", name = "vacuum.start-sweep" } },
//! ]
//!
//! [[scene.step]]                            # an action; args by position or by name
//! action = { device = "desk-lamp", name = "toggle", args = [] }
//!
//! [[scene.step]]                            # wait for a condition (default timeout 60s)
//! wait = { device = "sensor", property = "temperature", op = "<", value = 30, timeout = "10s" }
//!
//! [[scene.step]]                            # or for a time
//! wait = "500ms"
//!
//! [[scene.step]]                            # a guard: stop here unless it holds
//! guard = { device = "tv-plug", property = "switch.on", op = "==", value = true }
//! # otherwise = "fail" makes a guard that does not hold fail the scene
//! ```
//!
//! Each step has exactly one of `set`, `action`, `parallel`, `wait` and
//! `guard`, plus an optional `name`. Values are TOML strings, numbers or
//! booleans, parsed against the device's spec as `mijia set` parses them
//! (`"sleep"` for a value-list entry, `true`/`"on"` for a bool). `op` is
//! one of `==`, `!=`, `<`, `<=`, `>`, `>=`. Durations are `500ms`, `10s`,
//! `2m`, `1h`. Devices are registry names; a device must have a model in
//! the registry for names (not numeric ids) to resolve.
//!
//! Errors in the file name the scene, the step and the field.
//!
//! # Running
//!
//! [`run_scene`] first resolves every device and checks every name and
//! value against the specs, with no network IO; if anything is wrong,
//! nothing is sent and the faulty steps are reported. A dry run stops
//! there. Otherwise the steps run in order; a parallel group runs its
//! members concurrently and fails if any member fails. After a failed step
//! the scene stops (the remaining steps are reported as skipped) unless
//! `keep_going` is set. A guard that does not hold stops the scene without
//! failing it (outcome `stopped`), unless it says `otherwise = "fail"`.
//! Every step gets a [`StepReport`]; the scene a [`SceneReport`].
//!
//! Device steps follow the context's route (`--via`, see
//! [`crate::automation::route`]): with `auto`, a device that does not
//! answer on the local network is reached through the Xiaomi cloud when a
//! session exists, for the rest of the scene; its steps report
//! `"route": "cloud"`. The checks above never depend on the route.
//!
//! # For the agent layer
//!
//! [`SceneFile::load`] reads the home's scenes (a missing file is no
//! scenes), [`Scene::devices`] and [`Scene::operations`] list what a scene
//! touches so a caller can compute its permission tier before running it,
//! and [`run_scene`] runs it and returns a serializable report.

mod parse;
mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::condition::CompareOp;
use super::AutomationError;
use crate::home::Paths;

pub use run::{
    run_scene, run_scene_with, RunOptions, SceneOutcome, SceneReport, StepOutcome, StepReport,
};

/// The scenes file in a home's config directory.
pub const SCENES_FILE: &str = "scenes.toml";

/// Default time limit of a `wait` on a condition.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed and validated scenes file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SceneFile {
    /// Where it was read from (`None` when it does not exist).
    pub path: Option<PathBuf>,
    /// The scenes, in file order.
    pub scenes: Vec<Scene>,
}

/// One named scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Its name (unique in the file, case-insensitive).
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// An optional label.
    pub name: Option<String>,
    /// What it does.
    pub kind: StepKind,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Write properties of one device (one request).
    Set {
        /// The device's registry name.
        device: String,
        /// Property names and values, in file order.
        values: Vec<(String, Value)>,
    },
    /// Run an action.
    Action {
        /// The device's registry name.
        device: String,
        /// The action's name (or `siid.aiid`).
        action: String,
        /// Its arguments: by position, or `NAME=VALUE`.
        args: Vec<String>,
    },
    /// Steps that run at the same time.
    Parallel(Vec<Step>),
    /// Wait for a time.
    Sleep(Duration),
    /// Wait until a condition holds.
    WaitFor {
        /// The condition.
        condition: ConditionSpec,
        /// The time limit; not met by then is a failure.
        timeout: Duration,
    },
    /// Continue only if a condition holds now.
    Guard {
        /// The condition.
        condition: ConditionSpec,
        /// Whether a guard that does not hold fails the scene (otherwise
        /// it stops the scene).
        fail: bool,
    },
}

/// A condition as written in a scene file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionSpec {
    /// The device's registry name.
    pub device: String,
    /// The property's name.
    pub property: String,
    /// The operator.
    pub op: CompareOp,
    /// The value.
    pub value: Value,
}

impl ConditionSpec {
    /// `sensor temperature < 30`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} {} {}",
            self.device,
            self.property,
            self.op,
            value_text(&self.value)
        )
    }
}

/// What a step does to a device, for permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationKind {
    /// Writes these properties.
    Set {
        /// Property names.
        properties: Vec<String>,
    },
    /// Runs this action.
    Action {
        /// The action's name.
        name: String,
    },
    /// Reads this property (waits and guards).
    Read {
        /// The property's name.
        property: String,
    },
}

/// One device operation of a scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The step's path (`3`, `2.1`).
    pub step: String,
    /// The device's registry name.
    pub device: String,
    /// What it does.
    pub kind: OperationKind,
}

impl StepKind {
    /// `set`, `action`, `parallel`, `wait`, `guard`.
    pub fn label(&self) -> &'static str {
        match self {
            StepKind::Set { .. } => "set",
            StepKind::Action { .. } => "action",
            StepKind::Parallel(_) => "parallel",
            StepKind::Sleep(_) | StepKind::WaitFor { .. } => "wait",
            StepKind::Guard { .. } => "guard",
        }
    }

    /// The device it addresses, if one.
    pub fn device(&self) -> Option<&str> {
        match self {
            StepKind::Set { device, .. } | StepKind::Action { device, .. } => Some(device),
            StepKind::WaitFor { condition, .. } | StepKind::Guard { condition, .. } => {
                Some(&condition.device)
            }
            StepKind::Parallel(_) | StepKind::Sleep(_) => None,
        }
    }
}

impl Scene {
    /// The devices it touches (reads included), each once, in order of
    /// first use.
    pub fn devices(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for op in self.operations() {
            if !out.iter().any(|d| d.eq_ignore_ascii_case(&op.device)) {
                out.push(op.device);
            }
        }
        out
    }

    /// Every device operation, parallel groups flattened, in file order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            collect_operations(step, &(i + 1).to_string(), &mut out);
        }
        out
    }

    /// The scene as text, for `scene show`.
    pub fn render(&self) -> String {
        let mut out = format!("scene {}\n", self.name);
        if let Some(d) = &self.description {
            out.push_str(&format!("  {d}\n"));
        }
        for (i, step) in self.steps.iter().enumerate() {
            render_step(step, &(i + 1).to_string(), 1, &mut out);
        }
        out
    }
}

fn collect_operations(step: &Step, path: &str, out: &mut Vec<Operation>) {
    let (device, kind) = match &step.kind {
        StepKind::Set { device, values } => (
            device,
            OperationKind::Set {
                properties: values.iter().map(|(n, _)| n.clone()).collect(),
            },
        ),
        StepKind::Action { device, action, .. } => (
            device,
            OperationKind::Action {
                name: action.clone(),
            },
        ),
        StepKind::WaitFor { condition, .. } | StepKind::Guard { condition, .. } => (
            &condition.device,
            OperationKind::Read {
                property: condition.property.clone(),
            },
        ),
        StepKind::Parallel(members) => {
            for (j, m) in members.iter().enumerate() {
                collect_operations(m, &format!("{path}.{}", j + 1), out);
            }
            return;
        }
        StepKind::Sleep(_) => return,
    };
    out.push(Operation {
        step: path.to_string(),
        device: device.clone(),
        kind,
    });
}

fn render_step(step: &Step, path: &str, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let label = step
        .name
        .as_deref()
        .map(|n| format!(" [{n}]"))
        .unwrap_or_default();
    let what = describe_step(&step.kind);
    out.push_str(&format!("{pad}{path}{label}: {what}\n"));
    if let StepKind::Parallel(members) = &step.kind {
        for (j, m) in members.iter().enumerate() {
            render_step(m, &format!("{path}.{}", j + 1), depth + 1, out);
        }
    }
}

/// One line describing a step: `set lamp light.on=true light.brightness=20`.
pub fn describe_step(kind: &StepKind) -> String {
    match kind {
        StepKind::Set { device, values } => {
            let pairs: Vec<String> = values
                .iter()
                .map(|(n, v)| format!("{n}={}", value_text(v)))
                .collect();
            format!("set {device} {}", pairs.join(" "))
        }
        StepKind::Action {
            device,
            action,
            args,
        } => {
            if args.is_empty() {
                format!("action {device} {action}")
            } else {
                format!("action {device} {action} {}", args.join(" "))
            }
        }
        StepKind::Parallel(members) => format!("parallel ({} steps)", members.len()),
        StepKind::Sleep(d) => format!("wait {}", super::time::format_duration(*d)),
        StepKind::WaitFor { condition, timeout } => format!(
            "wait until {} (timeout {})",
            condition.describe(),
            super::time::format_duration(*timeout)
        ),
        StepKind::Guard { condition, fail } => format!(
            "guard {}{}",
            condition.describe(),
            if *fail {
                " (else fail)"
            } else {
                " (else stop)"
            }
        ),
    }
}

/// A scene value as the text `set` would take.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SceneFile {
    /// `<config dir>/scenes.toml` of a home.
    pub fn default_path(paths: &Paths) -> PathBuf {
        paths.config_dir.join(SCENES_FILE)
    }

    /// The home's scenes. A missing file is no scenes.
    pub fn load(paths: &Paths) -> Result<SceneFile, AutomationError> {
        Self::load_optional(&Self::default_path(paths))
    }

    /// The scenes in `path`; a missing file is an error.
    pub fn load_from(path: &Path) -> Result<SceneFile, AutomationError> {
        let text = std::fs::read_to_string(path).map_err(|e| AutomationError::SceneFile {
            path: path.to_path_buf(),
            detail: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, path)
    }

    fn load_optional(path: &Path) -> Result<SceneFile, AutomationError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SceneFile::default()),
            Err(e) => Err(AutomationError::SceneFile {
                path: path.to_path_buf(),
                detail: format!("cannot read it: {e}"),
            }),
        }
    }

    /// Parses and validates the text of a scenes file; `path` is for
    /// messages.
    pub fn parse(text: &str, path: &Path) -> Result<SceneFile, AutomationError> {
        let scenes = parse::parse(text).map_err(|detail| AutomationError::SceneFile {
            path: path.to_path_buf(),
            detail,
        })?;
        Ok(SceneFile {
            path: Some(path.to_path_buf()),
            scenes,
        })
    }

    /// The scene names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.scenes.iter().map(|s| s.name.clone()).collect()
    }

    /// A scene by name (case-insensitive).
    pub fn get(&self, name: &str) -> Result<&Scene, AutomationError> {
        self.scenes
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| AutomationError::UnknownScene {
                name: name.to_string(),
                known: self.names(),
            })
    }
}
