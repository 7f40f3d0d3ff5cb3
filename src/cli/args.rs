//! The raw command line, as clap parses it. Nothing here is validated
//! beyond syntax; [`super::plan`] turns it into a checked plan.

use clap::{Args, Parser, Subcommand};

/// Control Xiaomi Mijia devices on the local network.
#[derive(Debug, Parser)]
#[command(name = "mijia", version, propagate_version = true)]
#[command(
    about = "Control Xiaomi Mijia (miIO / MIoT) devices on the local network",
    after_help = "Examples:\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef info\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef get 2.1 2.2\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef set 2.1=true 2.5=60\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef action 5.1 '[\"hello\"]'\n  \
        mijia --ip 192.168.1.20 --token 0123…cdef raw get_prop '[\"power\"]'\n\n\
        Exit codes: 0 ok, 1 other error, 2 bad arguments, 3 device error,\n\
        4 device unreachable / no reply / wrong token, 5 config or registry problem."
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

    /// Log protocol steps to stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show model, firmware, MAC, uptime and network of the device (`miIO.info`).
    Info,

    /// Send any method with JSON params and print the result.
    Raw {
        /// Method name, e.g. `get_prop` or `miIO.info`.
        method: String,
        /// Params as JSON (an array or object); default `[]`.
        #[arg(value_name = "PARAMS_JSON", allow_hyphen_values = true)]
        params: Option<String>,
    },

    /// Read MIoT properties.
    Get {
        /// Properties as SIID.PIID, e.g. 2.1.
        #[arg(value_name = "SIID.PIID", required = true, num_args = 1..)]
        props: Vec<String>,
    },

    /// Write MIoT properties.
    Set {
        /// Assignments as SIID.PIID=VALUE; VALUE is JSON (true, 42, "on"),
        /// anything else is taken as a string.
        #[arg(value_name = "SIID.PIID=VALUE", required = true, num_args = 1.., allow_hyphen_values = true)]
        assignments: Vec<String>,
    },

    /// Run a MIoT action.
    Action {
        /// The action as SIID.AIID, e.g. 5.1.
        #[arg(value_name = "SIID.AIID")]
        action: String,
        /// Input arguments as a JSON array; default `[]`.
        #[arg(value_name = "ARGS_JSON", allow_hyphen_values = true)]
        args: Option<String>,
    },
}
