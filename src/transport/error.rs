//! Errors of the miIO client. Each variant says which step failed, how
//! many attempts were made, and what the user can do about it.

use std::fmt;
use std::net::SocketAddr;

use mijia_proto::miio::packet::TooLarge;
use mijia_proto::miio::rpc::PayloadError;
use mijia_proto::miio::DeviceError;

/// The step of an exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Opening or configuring the UDP socket.
    Socket,
    /// The hello handshake.
    Handshake,
    /// Sending a request and waiting for its reply.
    Request,
    /// Checking and decrypting the reply.
    Decode,
    /// The device answered with an error.
    Device,
    /// Interpreting a successful result.
    Result,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Socket => "socket setup",
            Step::Handshake => "handshake",
            Step::Request => "request",
            Step::Decode => "reply decoding",
            Step::Device => "device error",
            Step::Result => "result",
        })
    }
}

/// Why a call to a device failed.
#[derive(Debug, thiserror::Error)]
pub enum MiioError {
    /// No hello reply at all: wrong address, device off or unreachable.
    #[error(
        "no reply to hello from {addr} ({hellos} hello(s) in {attempts} attempt(s)){refused} — \
         check the address and that the device is on",
        refused = if *refused { "; nothing is listening there (port unreachable)" } else { "" }
    )]
    Unreachable {
        /// Device address.
        addr: SocketAddr,
        /// Attempts made.
        attempts: u32,
        /// Hellos sent in total.
        hellos: u32,
        /// Whether the host reported the port closed (ICMP unreachable).
        refused: bool,
    },
    /// The hello worked but the request never got a reply: almost always a
    /// wrong token (devices drop packets whose checksum fails).
    #[error(
        "{addr} answered the hello but not the `{method}` request ({attempts} attempt(s)) — \
         check the token"
    )]
    NoReply {
        /// Device address.
        addr: SocketAddr,
        /// The method sent.
        method: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Replies arrived but failed the checksum: a wrong token (or replies
    /// corrupted on the way).
    #[error(
        "{count} reply(s) from {addr} to `{method}` failed the checksum ({attempts} attempt(s)) — \
         check the token (a wrong token is the usual cause)"
    )]
    WrongToken {
        /// Device address.
        addr: SocketAddr,
        /// The method sent.
        method: String,
        /// Attempts made.
        attempts: u32,
        /// Datagrams that failed the checksum.
        count: u32,
    },
    /// The device answered with an error object.
    #[error("{addr} answered `{method}` with {error}")]
    Device {
        /// Device address.
        addr: SocketAddr,
        /// The method sent.
        method: String,
        /// Attempts made.
        attempts: u32,
        /// Code and message from the device.
        error: DeviceError,
    },
    /// The reply decrypted but was not a usable JSON-RPC message.
    #[error(
        "the reply from {addr} to `{method}` is unusable: {source} — rerun with -v to log it \
         and report the firmware quirk"
    )]
    Payload {
        /// Device address.
        addr: SocketAddr,
        /// The method sent.
        method: String,
        /// Attempts made.
        attempts: u32,
        /// What was wrong.
        source: PayloadError,
    },
    /// The result had an unexpected shape for a typed call.
    #[error("unexpected `{method}` result from {addr}: {detail} — use `raw` to see the reply")]
    UnexpectedResult {
        /// Device address.
        addr: SocketAddr,
        /// The method sent.
        method: String,
        /// What did not fit.
        detail: String,
    },
    /// The request does not fit one datagram.
    #[error("the `{method}` request is too large: {source} — send fewer or smaller values")]
    TooLarge {
        /// The method.
        method: String,
        /// Size details.
        source: TooLarge,
    },
    /// A socket error.
    #[error("network error talking to {addr} during {step}: {source}")]
    Io {
        /// Device address.
        addr: SocketAddr,
        /// The step.
        step: Step,
        /// The OS error.
        source: std::io::Error,
    },
}

impl MiioError {
    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            MiioError::Unreachable { .. } => Step::Handshake,
            MiioError::NoReply { .. } => Step::Request,
            MiioError::WrongToken { .. } | MiioError::Payload { .. } => Step::Decode,
            MiioError::Device { .. } => Step::Device,
            MiioError::UnexpectedResult { .. } => Step::Result,
            MiioError::TooLarge { .. } => Step::Request,
            MiioError::Io { step, .. } => *step,
        }
    }

    /// How many attempts were made before giving up (0 when none applies).
    pub fn attempts(&self) -> u32 {
        match self {
            MiioError::Unreachable { attempts, .. }
            | MiioError::NoReply { attempts, .. }
            | MiioError::WrongToken { attempts, .. }
            | MiioError::Device { attempts, .. }
            | MiioError::Payload { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// The device error, when the device answered with one.
    pub fn device_error(&self) -> Option<&DeviceError> {
        match self {
            MiioError::Device { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the device could not be reached or did not answer in time
    /// (as opposed to answering with an error).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            MiioError::Unreachable { .. }
                | MiioError::NoReply { .. }
                | MiioError::WrongToken { .. }
        )
    }

    /// Whether this failure suggests the batch was too large (`-9999`,
    /// `-30001`, or no answer after a successful hello).
    pub(crate) fn suggests_smaller_batch(&self) -> bool {
        match self {
            MiioError::Device { error, .. } => error.is_retryable(),
            MiioError::NoReply { .. } => true,
            _ => false,
        }
    }
}
