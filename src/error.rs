//! The crate error type and the one mapping from errors to exit codes.
//!
//! | exit code | [`ExitKind`] | when |
//! |---|---|---|
//! | 0 | `Ok` | success |
//! | 1 | `Other` | anything else: local IO, an unusable reply |
//! | 2 | `Usage` | bad arguments: malformed token, address, JSON params, `SIID.PIID`; an unknown or invalid device/room name |
//! | 3 | `Device` | the device answered with an error, or some properties failed |
//! | 4 | `Unreachable` | no reply: device unreachable, timed out, or wrong token |
//! | 5 | `Config` | configuration, registry or state-file problem (unreadable, corrupt, locked, no home directory) |
//!
//! [`Error::exit_kind`] is the only place that decides the code; `main`
//! is the only place that turns it into a process exit status. Every
//! message says what went wrong and what to do next.

use crate::home::HomeError;
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
    /// Another configuration problem.
    #[error("{0}")]
    Config(String),
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
        }
    }
}

impl Error {
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
            Error::Home(e) => match e {
                HomeError::DuplicateName { .. }
                | HomeError::DuplicateDid { .. }
                | HomeError::InvalidName { .. }
                | HomeError::UnknownDevice { .. }
                | HomeError::UnknownRoom { .. } => ExitKind::Usage,
                _ => ExitKind::Config,
            },
            Error::Io { .. } => ExitKind::Other,
            Error::Miio(e) => match e {
                MiioError::Unreachable { .. }
                | MiioError::NoReply { .. }
                | MiioError::WrongToken { .. } => ExitKind::Unreachable,
                MiioError::Device { .. } => ExitKind::Device,
                MiioError::TooLarge { .. } => ExitKind::Usage,
                MiioError::Payload { .. }
                | MiioError::UnexpectedResult { .. }
                | MiioError::Io { .. } => ExitKind::Other,
            },
        }
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
    }
}
