//! Errors of the home layer. Each message says what went wrong and what to
//! do next, because they reach the user unchanged through the CLI.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while reading or changing the home on disk.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// A file or directory could not be read, written or created.
    #[error("cannot {action} {}: {source}; check that the path exists and that you own it", path.display())]
    Io {
        /// What we were doing ("read", "write", "create directory", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A config file exists but cannot be used. It is never overwritten.
    #[error(
        "{p} is not a valid mijia file: {detail}\nfix it by hand, or move it away \
         (e.g. `mv {p} {p}.bak`) to start afresh; mijia will not overwrite it",
        p = path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column when known.
        detail: String,
    },

    /// The registry could not be encoded (a bug: the in-memory registry is
    /// always encodable).
    #[error("cannot encode {}: {detail}; this is a bug in mijia, please report it", path.display())]
    Encode {
        /// The file that was about to be written.
        path: PathBuf,
        /// The encoder's message.
        detail: String,
    },

    /// Another device already has this name (names are case-insensitive).
    #[error(
        "a device named '{existing}' already exists (names are case-insensitive); \
         choose another name, or remove the old one with `mijia device remove \"{existing}\"`"
    )]
    DuplicateName {
        /// The name that was asked for.
        name: String,
        /// The name of the device that already has it.
        existing: String,
    },

    /// Another entry already describes the device with this did.
    #[error(
        "device {did} is already registered as '{existing}'; use that name, \
         or rename it with `mijia device rename \"{existing}\" NEW`"
    )]
    DuplicateDid {
        /// The device id.
        did: u64,
        /// The name it is registered under.
        existing: String,
    },

    /// A device or room name breaks the naming rules.
    #[error("{name:?} is not a valid {kind} name: {reason}. {}", NAME_RULES)]
    InvalidName {
        /// "device" or "room".
        kind: &'static str,
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// No device has this name.
    #[error(
        "no device named '{name}'{}; run `mijia device list` to see names, \
         or `mijia device add NAME --ip ADDRESS --token HEX` to add one",
        DidYouMean(suggestions)
    )]
    UnknownDevice {
        /// The name that was asked for.
        name: String,
        /// Registered names close to it, best first.
        suggestions: Vec<String>,
    },

    /// No device is in this room.
    #[error(
        "no device is in room '{room}'{}; run `mijia device list` to see rooms, \
         or `mijia device set-room NAME ROOM` to put a device there",
        KnownRooms(known)
    )]
    UnknownRoom {
        /// The room that was asked for.
        room: String,
        /// The rooms that exist.
        known: Vec<String>,
    },

    /// Another process held a lock for too long.
    #[error(
        "{} is locked by another mijia process (waited {}s); wait for it to finish \
         and retry. The lock is released when that process exits, so if none is \
         running, look for a hung `mijia` with `ps`",
        path.display(),
        waited.as_secs()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },

    /// Neither `MIJIA_HOME` nor a home directory is known.
    #[error(
        "cannot tell where to keep mijia's files: HOME is not set; set MIJIA_HOME \
         to a directory (or set HOME, or XDG_CONFIG_HOME and XDG_STATE_HOME)"
    )]
    NoHomeDir,
}

/// The naming rules, quoted by [`HomeError::InvalidName`].
pub const NAME_RULES: &str = "Names start with a letter, use only letters, digits, \
     spaces, '-' and '_', and are at most 64 characters long";

impl HomeError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        HomeError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

struct DidYouMean<'a>(&'a [String]);

impl fmt::Display for DidYouMean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => Ok(()),
            [one] => write!(f, " (did you mean '{one}'?)"),
            many => {
                f.write_str(" (did you mean ")?;
                for (i, s) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if i + 1 == many.len() { " or " } else { ", " })?;
                    }
                    write!(f, "'{s}'")?;
                }
                f.write_str("?)")
            }
        }
    }
}

struct KnownRooms<'a>(&'a [String]);

impl fmt::Display for KnownRooms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(" (no rooms are set yet)");
        }
        f.write_str(" (rooms: ")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "'{r}'")?;
        }
        f.write_str(")")
    }
}
