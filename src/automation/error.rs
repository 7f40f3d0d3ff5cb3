//! [`AutomationError`]: why a watch, a wait or a scene could not run.

use std::path::PathBuf;
use std::time::Duration;

use crate::cloud::CloudError;
use crate::home::{DeviceOpError, HomeError};

use super::time::format_duration;

/// The class of a failure, for exit codes (see [`crate::error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The user's input: a name, a value, an operator, a scene file entry.
    Usage,
    /// A configuration file that cannot be used.
    Config,
    /// The device answered with an error.
    Device,
    /// The device did not answer.
    Unreachable,
    /// A condition did not hold before its time limit.
    NotMet,
    /// Anything else.
    Other,
}

impl FailureClass {
    /// The class of a device operation error.
    pub fn of_device_op(e: &DeviceOpError) -> FailureClass {
        if e.is_validation() {
            FailureClass::Usage
        } else if e.is_timeout() {
            FailureClass::Unreachable
        } else if matches!(e, DeviceOpError::Miio(m) if m.device_error().is_some())
            || matches!(e, DeviceOpError::NoModel | DeviceOpError::Reply(_))
            || matches!(e, DeviceOpError::Cloud(c) if matches!(**c, CloudError::Api { .. }))
        {
            FailureClass::Device
        } else {
            FailureClass::Other
        }
    }
}

/// Why an automation command failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum AutomationError {
    /// Bad input: an operator, a value, a duration, a missing argument.
    #[error("{0}")]
    Usage(String),
    /// The registry or another home file.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// A device operation failed (a name or value the model does not
    /// accept, or the device did not answer).
    #[error("{device}: {source}{}", .note.as_deref().map(|n| format!("; {n}")).unwrap_or_default())]
    Device {
        /// The device's name.
        device: String,
        /// What went wrong.
        source: Box<DeviceOpError>,
        /// The local failure that led to the cloud, or what would enable
        /// the cloud fallback (see [`super::RouteFailure::note`]).
        note: Option<String>,
    },
    /// A scene file that cannot be used; the detail names the scene, the
    /// step and the field.
    #[error("{}: {detail} — fix the file (see `mijia scene --help` for the format)", .path.display())]
    SceneFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        detail: String,
    },
    /// No scene by that name.
    #[error("no scene named '{name}'; {}", known_scenes(.known))]
    UnknownScene {
        /// The name given.
        name: String,
        /// The scenes in the file.
        known: Vec<String>,
    },
    /// A condition did not hold within its time limit.
    #[error(
        "condition {condition} not met within {} (last value {})",
        format_duration(*.after),
        .last.as_deref().unwrap_or("unknown: nothing read")
    )]
    NotMet {
        /// The condition, as written (`lamp light.brightness >= 50`).
        condition: String,
        /// The time limit.
        after: Duration,
        /// The last value read, for people.
        last: Option<String>,
    },
    /// A scene step failed (the scene's results were printed).
    #[error("scene '{scene}' failed at step {step} ({what}): {detail}")]
    SceneFailed {
        /// The scene.
        scene: String,
        /// The failed step's path (`3`, `2.1`).
        step: String,
        /// The step's kind and device (`set lamp`).
        what: String,
        /// What went wrong.
        detail: String,
        /// The failure's class (sets the exit code).
        class: FailureClass,
    },
    /// A local IO problem (stdout, a file).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn known_scenes(known: &[String]) -> String {
    if known.is_empty() {
        "there are no scenes yet: add them to scenes.toml in the config directory".into()
    } else {
        format!("known scenes: {}", known.join(", "))
    }
}

impl AutomationError {
    /// The class of this failure (home and device errors are classed by
    /// their own rules in [`crate::error`]).
    pub fn class(&self) -> FailureClass {
        match self {
            AutomationError::Usage(_) | AutomationError::UnknownScene { .. } => FailureClass::Usage,
            AutomationError::Home(
                HomeError::DuplicateName { .. }
                | HomeError::DuplicateDid { .. }
                | HomeError::InvalidName { .. }
                | HomeError::UnknownDevice { .. }
                | HomeError::UnknownRoom { .. },
            ) => FailureClass::Usage,
            AutomationError::Home(_) | AutomationError::SceneFile { .. } => FailureClass::Config,
            AutomationError::Device { source, .. } => FailureClass::of_device_op(source),
            AutomationError::NotMet { .. } => FailureClass::NotMet,
            AutomationError::SceneFailed { class, .. } => *class,
            AutomationError::Io { .. } => FailureClass::Other,
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        AutomationError::Usage(msg.into())
    }

    /// A device error for `device`.
    pub fn device(device: &str, source: DeviceOpError) -> Self {
        AutomationError::Device {
            device: device.to_string(),
            source: Box::new(source),
            note: None,
        }
    }

    /// A device error for `device` from a routed call, with its note.
    pub fn routed(device: &str, failure: super::RouteFailure) -> Self {
        let note = failure.note();
        AutomationError::Device {
            device: device.to_string(),
            source: Box::new(failure.error),
            note,
        }
    }
}
