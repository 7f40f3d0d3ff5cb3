//! The crate error type and the one mapping from errors to exit codes.
//!
//! | exit code | [`ExitKind`] | when |
//! |---|---|---|
//! | 0 | `Ok` | success |
//! | 1 | `Other` | anything else: local IO, an unusable reply |
//! | 2 | `Usage` | bad arguments: malformed token, address, JSON params, `SIID.PIID`; an unknown or invalid device/room name; an unknown property or action name, a value out of range or not in the list; a malformed spec file given to `spec import` |
//! | 3 | `Device` | the device answered with an error, or some properties failed; no model in `miIO.info`; in `status --room/--all`, some devices failed but all answered |
//! | 4 | `Unreachable` | no reply: device unreachable, timed out, or wrong token; in `status --room/--all`, at least one device did not answer (the others are still printed) |
//! | 5 | `Config` | configuration, registry or state-file problem (unreadable, corrupt, locked, no home directory); an invalid cloud endpoint |
//! | 6 | `Auth` | cloud authentication needed: not logged in, re-login needed, login refused, captcha or two-factor code needed without a terminal, QR not confirmed |
//! | 7 | `NotMet` | `wait`: the condition did not hold within `--timeout`; `scene run`: a wait step timed out or a guard with `otherwise = "fail"` did not hold |
//!
//! `scene run` exits with the code of its first failed step's class: a
//! name or value that does not check out is 2, a device error 3, no answer
//! 4, a condition not met 7; a scenes file that cannot be used is 5.
//!
//! Cloud failures map onto the same classes as local ones: a device the
//! cloud reports offline or timed out is 4, a MIoT error code from the
//! cloud is 3, the cloud itself unreachable or rate limiting is 4.
//!
//! [`Error::exit_kind`] is the only place that decides the code; `main`
//! is the only place that turns it into a process exit status. Every
//! message says what went wrong and what to do next.

use crate::cloud::CloudError;
use crate::home::{DeviceOpError, HomeError, SpecFileError};
use crate::transport::MiioError;

/// Everything that can go wrong in a `mijia` command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line input, found before any network IO.
    #[error("{0}")]
    Usage(String),
    /// Talking to the device failed.
    #[error(transparent)]
    Miio(#[from] MiioError),
    /// The device answered, but some per-property or action results failed.
    #[error("{failed} of {total} {what} failed on the device (see the results above)")]
    PartialFailure {
        /// How many failed.
        failed: usize,
        /// How many were asked.
        total: usize,
        /// "properties", "writes", "action".
        what: &'static str,
    },
    /// The device rejected an action (its result code is not a success).
    #[error(
        "the device rejected the action: code {code} ({meaning}) — check the action id and \
         its arguments against the device's spec"
    )]
    ActionFailed {
        /// The MIoT result code.
        code: i64,
        /// What it means.
        meaning: &'static str,
    },
    /// A registry, config or state-file problem from the home layer.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// A cloud login, session or API problem.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// A device operation by name failed: a name or value the model does
    /// not accept, no spec, a time limit, an unusable reply. (Transport
    /// failures convert to [`Error::Miio`].)
    #[error(transparent)]
    DeviceOp(DeviceOpError),
    /// `device add` could not ask the device for its model.
    #[error(
        "cannot ask the device for its model: {source}; check --ip and --token, or pass \
         --model MODEL to add it without asking"
    )]
    Detect {
        /// Why.
        source: DeviceOpError,
    },
    /// A spec file that cannot be used (`spec import`).
    #[error(transparent)]
    Spec(#[from] SpecFileError),
    /// Some devices of a room or home poll failed; the others were printed.
    #[error("{failed} of {total} devices in the {scope} gave no status: {detail}")]
    DevicesFailed {
        /// Devices that failed.
        failed: usize,
        /// Devices polled.
        total: usize,
        /// How many of them did not answer.
        unreachable: usize,
        /// "home" or "room Kitchen".
        scope: String,
        /// The summary line.
        detail: String,
    },
    /// Another configuration problem.
    #[error("{0}")]
    Config(String),
    /// An agent (MCP server, policy, approvals, audit) problem.
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    /// A `watch`, `wait` or scene problem.
    #[error(transparent)]
    Automation(#[from] crate::automation::AutomationError),
    /// An error with advice on what else to try (its exit code is the
    /// error's own).
    #[error("{source}; {hint}")]
    Hinted {
        /// The error.
        source: Box<Error>,
        /// What to try.
        hint: String,
    },
    /// A local IO error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The classes of failure, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 0: success.
    Ok,
    /// 1: any other failure.
    Other,
    /// 2: bad arguments.
    Usage,
    /// 3: the device reported an error.
    Device,
    /// 4: the device could not be reached or did not answer.
    Unreachable,
    /// 5: configuration or registry problem.
    Config,
    /// 6: cloud authentication needed (log in, or log in again).
    Auth,
    /// 7: a condition did not hold before its time limit (`wait`, scenes).
    NotMet,
}

impl ExitKind {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Ok => 0,
            ExitKind::Other => 1,
            ExitKind::Usage => 2,
            ExitKind::Device => 3,
            ExitKind::Unreachable => 4,
            ExitKind::Config => 5,
            ExitKind::Auth => 6,
            ExitKind::NotMet => 7,
        }
    }
}

impl Error {
    /// This error with `hint` appended to its message.
    pub fn with_hint(self, hint: impl Into<String>) -> Self {
        Error::Hinted {
            source: Box::new(self),
            hint: hint.into(),
        }
    }

    /// A usage error with this message.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// Which exit code this error maps to (see the module docs).
    pub fn exit_kind(&self) -> ExitKind {
        match self {
            Error::Usage(_) => ExitKind::Usage,
            Error::PartialFailure { .. } | Error::ActionFailed { .. } => ExitKind::Device,
            Error::Config(_) => ExitKind::Config,
            Error::Home(e) => home_kind(e),
            Error::Cloud(e) => cloud_kind(e),
            Error::Hinted { source, .. } => source.exit_kind(),
            Error::Io { .. } => ExitKind::Other,
            Error::Agent(e) => match e {
                crate::agent::AgentError::Home(h) => home_kind(h),
                e if e.is_usage() => ExitKind::Usage,
                e if e.is_config() => ExitKind::Config,
                _ => ExitKind::Other,
            },
            Error::Automation(e) => automation_kind(e),
            Error::Miio(e) => miio_kind(e),
            Error::DeviceOp(e) | Error::Detect { source: e } => device_op_kind(e),
            Error::Spec(SpecFileError::Home(h)) => home_kind(h),
            Error::Spec(_) => ExitKind::Usage,
            Error::DevicesFailed { unreachable, .. } => {
                if *unreachable > 0 {
                    ExitKind::Unreachable
                } else {
                    ExitKind::Device
                }
            }
        }
    }
}

impl From<DeviceOpError> for Error {
    /// Transport failures keep their own variant (and exit code).
    fn from(e: DeviceOpError) -> Self {
        match e {
            DeviceOpError::Miio(m) => Error::Miio(m),
            DeviceOpError::Cloud(c) => Error::Cloud(*c),
            other => Error::DeviceOp(other),
        }
    }
}

fn cloud_kind(e: &CloudError) -> ExitKind {
    match e {
        CloudError::Home(h) => home_kind(h),
        CloudError::Endpoint { .. } | CloudError::CorruptFile { .. } => ExitKind::Config,
        CloudError::NoDid | CloudError::UnknownDevice { .. } => ExitKind::Usage,
        CloudError::Api { .. } => ExitKind::Device,
        e if e.is_unreachable() => ExitKind::Unreachable,
        CloudError::BadSignature { .. } | CloudError::Http { .. } | CloudError::Io { .. } => {
            ExitKind::Other
        }
        e if e.needs_login() => ExitKind::Auth,
        _ => ExitKind::Other,
    }
}

fn miio_kind(e: &MiioError) -> ExitKind {
    match e {
        MiioError::Unreachable { .. }
        | MiioError::NoReply { .. }
        | MiioError::WrongToken { .. } => ExitKind::Unreachable,
        MiioError::Device { .. } => ExitKind::Device,
        MiioError::TooLarge { .. } => ExitKind::Usage,
        MiioError::Payload { .. } | MiioError::UnexpectedResult { .. } | MiioError::Io { .. } => {
            ExitKind::Other
        }
    }
}

/// Validation → 2, no answer → 4, the device's own error, no model or an
/// unusable reply → 3, a bug → 1.
fn device_op_kind(e: &DeviceOpError) -> ExitKind {
    match e {
        e if e.is_validation() => ExitKind::Usage,
        e if e.is_timeout() => ExitKind::Unreachable,
        DeviceOpError::Miio(m) => miio_kind(m),
        DeviceOpError::Cloud(c) => cloud_kind(c),
        DeviceOpError::NoModel | DeviceOpError::Reply(_) => ExitKind::Device,
        _ => ExitKind::Other,
    }
}

fn automation_kind(e: &crate::automation::AutomationError) -> ExitKind {
    use crate::automation::{AutomationError, FailureClass};
    match e {
        AutomationError::Home(h) => home_kind(h),
        AutomationError::Device { source, .. } => device_op_kind(source),
        e => match e.class() {
            FailureClass::Usage => ExitKind::Usage,
            FailureClass::Config => ExitKind::Config,
            FailureClass::Device => ExitKind::Device,
            FailureClass::Unreachable => ExitKind::Unreachable,
            FailureClass::NotMet => ExitKind::NotMet,
            FailureClass::Other => ExitKind::Other,
        },
    }
}

fn home_kind(e: &HomeError) -> ExitKind {
    match e {
        HomeError::DuplicateName { .. }
        | HomeError::DuplicateDid { .. }
        | HomeError::InvalidName { .. }
        | HomeError::UnknownDevice { .. }
        | HomeError::UnknownRoom { .. } => ExitKind::Usage,
        _ => ExitKind::Config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Error::usage("x").exit_kind().code(), 2);
        assert_eq!(Error::Config("x".into()).exit_kind().code(), 5);
        let e = Error::from(MiioError::NoReply {
            addr: ([127, 0, 0, 1], 54321).into(),
            method: "miIO.info".into(),
            attempts: 3,
        });
        assert_eq!(e.exit_kind(), ExitKind::Unreachable);
        assert!(e.to_string().contains("check the token"));
        let e = Error::from(CloudError::relogin("expired"));
        assert_eq!(e.exit_kind().code(), 6);
        assert!(e.to_string().contains("re-login needed"), "{e}");
        assert_eq!(
            Error::from(CloudError::NotLoggedIn).exit_kind(),
            ExitKind::Auth
        );
        let e = Error::from(CloudError::DeviceOffline {
            did: "1".into(),
            code: -704042011,
        });
        assert_eq!(e.exit_kind(), ExitKind::Unreachable);
    }
}
