//! The raw command line, as clap parses it. Nothing here is validated
//! beyond syntax; [`super::plan`](mod@super::plan) turns it into a checked plan.

use clap::{Args, Parser, Subcommand};

pub use super::cloud::CloudArgs;
pub use super::devices::DeviceCommand;
pub use super::discover::DiscoverArgs;
pub use super::specs::SpecArgs;
pub use super::status::StatusArgs;

/// Control Xiaomi Mijia devices on the local network.
#[derive(Debug, Parser)]
#[command(name = "mijia", version, propagate_version = true)]
#[command(
    about = "Control Xiaomi Mijia (miIO / MIoT) devices on the local network",
    after_help = "Examples:\n  \
        mijia device add desk-lamp --ip 192.168.1.20 --token 0123…cdef --room Office\n  \
        mijia device list\n  \
        mijia status desk-lamp\n  \
        mijia set desk-lamp light.on=on light.brightness=40\n  \
        mijia get desk-lamp light.brightness light.color-temperature\n  \
        mijia action desk-lamp toggle\n  \
        mijia status --room Office\n  \
        mijia status --all\n  \
        mijia spec yeelink.light.color1\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef get 2.1 2.2    (by address, no registry)\n\n\
        Exit codes: 0 ok, 1 other error, 2 bad arguments, 3 device error,\n\
        4 device unreachable / no reply / wrong token, 5 config or registry problem,\n\
        6 cloud login needed, 7 condition not met in time (`wait`, scenes)."
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Device IP address.
    #[arg(long, env = "MIJIA_IP", global = true, value_name = "ADDRESS")]
    pub ip: Option<String>,

    /// Device token: 32 hex characters.
    #[arg(
        long,
        env = "MIJIA_TOKEN",
        global = true,
        value_name = "HEX",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Device UDP port.
    #[arg(long, env = "MIJIA_PORT", global = true, default_value_t = 54321)]
    pub port: u16,

    /// The device's model (e.g. yeelink.light.color1): with --ip, to use
    /// names without asking the device; with `device add`, to skip
    /// detection; with `spec import`, the model the file describes.
    #[arg(long, global = true, value_name = "MODEL")]
    pub model: Option<String>,

    /// Seconds to wait for each reply (per attempt).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        default_value_t = 5.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,

    /// Extra attempts after a timeout or a busy reply (attempts = retries + 1).
    #[arg(long, global = true, value_name = "N", default_value_t = 2)]
    pub retries: u32,

    /// Print one JSON document on stdout instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    /// Route to the device: local (UDP), cloud (needs `mijia cloud login`), or
    /// auto: local, then the cloud if the device does not answer and a session exists.
    #[arg(long, global = true, value_enum, default_value_t = crate::cloud::Via::Auto)]
    pub via: crate::cloud::Via,

    /// Device id for the cloud route (default: the registry entry with this --ip).
    #[arg(long, global = true, value_name = "DID")]
    pub did: Option<String>,

    /// Log protocol steps to stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show model, firmware, MAC, uptime and network of a device (`miIO.info`).
    #[command(override_usage = "mijia info DEVICE\n       mijia --ip ADDRESS --token HEX info")]
    Info {
        /// A registered device (leave out with --ip).
        #[arg(value_name = "DEVICE")]
        device: Option<String>,
    },

    /// Read every readable property of a device, a room, or the whole home.
    Status(StatusArgs),

    /// Read properties by name (light.brightness) or id (2.2).
    #[command(override_usage = "mijia get DEVICE NAME...\n       \
        mijia --ip ADDRESS --token HEX get NAME...")]
    Get {
        /// The device (unless --ip is given), then property names or
        /// SIID.PIID ids.
        #[arg(value_name = "NAME", required = true, num_args = 1..)]
        args: Vec<String>,
    },

    /// Write several properties in one request and show the read-back.
    #[command(override_usage = "mijia set DEVICE NAME=VALUE...\n       \
        mijia --ip ADDRESS --token HEX set NAME=VALUE...")]
    Set {
        /// The device (unless --ip is given), then NAME=VALUE pairs:
        /// light.brightness=40, light.on=on, mode=sleep (a value-list
        /// entry by its description), 2.1=true.
        #[arg(value_name = "NAME=VALUE", required = true, num_args = 1.., allow_hyphen_values = true)]
        args: Vec<String>,
    },

    /// Run an action, with arguments by position or by NAME=VALUE.
    #[command(override_usage = "mijia action DEVICE ACTION [ARG...]\n       \
        mijia --ip ADDRESS --token HEX action ACTION [ARG...]")]
    Action {
        /// The device (unless --ip is given), the action's name or
        /// SIID.AIID, then its arguments.
        #[arg(value_name = "ARG", required = true, num_args = 1.., allow_hyphen_values = true)]
        args: Vec<String>,
    },

    /// Send any method with JSON params and print the result.
    #[command(override_usage = "mijia raw DEVICE METHOD [PARAMS_JSON]\n       \
        mijia --ip ADDRESS --token HEX raw METHOD [PARAMS_JSON]")]
    Raw {
        /// The device (unless --ip is given), the method (get_prop,
        /// miIO.info), then params as a JSON array or object (default []).
        #[arg(value_name = "ARG", required = true, num_args = 1..=3, allow_hyphen_values = true)]
        args: Vec<String>,
    },

    /// The home registry: add, list, rename and remove devices; rooms.
    #[command(subcommand)]
    Device(DeviceCommand),

    /// Show a model's services, properties and actions; import or list specs.
    Spec(SpecArgs),

    /// Xiaomi cloud: login, logout, status, devices, import.
    Cloud(CloudArgs),

    /// Find devices by broadcast hello, address sweep and mDNS (no --ip or --token needed).
    Discover(DiscoverArgs),

    /// Stream property changes as JSON lines (polling, plus device push where supported).
    Watch(super::automation::WatchArgs),

    /// Wait until a property meets a condition (exit 0), or time out (exit 7).
    Wait(super::automation::WaitArgs),

    /// Scenes from scenes.toml: list, show, run (with --dry-run).
    #[command(subcommand)]
    Scene(super::automation::SceneCommand),

    /// Agent commands: mcp, tools, policy, approve, deny, approvals, audit.
    #[command(flatten)]
    Agent(super::agent::AgentCommand),
}
