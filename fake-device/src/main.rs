//! `fake-device`: run a simulated fleet on loopback, or write a fleet file.
//!
//! ```text
//! fake-device serve --fleet FILE [--no-broadcast] [--mdns [--mdns-interface 127.0.0.1]]
//! fake-device serve --model M --addr A --token T --did D [--unprovisioned]
//! fake-device fleet --count N --out FILE [--base 127.1.0.1] [--port 54321] [--seed S]
//! fake-device cloud --addr 127.0.0.1:PORT --fleet FILE
//! fake-device serve --fleet FILE --cloud 127.0.0.1:PORT
//! ```
//!
//! `cloud` (or `serve --cloud ADDR`) runs the fleet and the simulated cloud
//! in one process, sharing device state; after the device lines it prints
//! `{"cloud","api","sts"}` with the account base, the API base template and
//! the STS URL. Accounts and cloud placement come from the fleet file's
//! `[cloud]`, `[[account]]` and `[device.cloud]` tables
//! (see `fake_device::cloud::config`).
//!
//! `serve` prints one JSON line per device on stdout once every socket is
//! bound (`{"name","did","model","addr","token"}`), then runs until SIGINT
//! or SIGTERM. Logs go to stderr (`RUST_LOG`). Errors print one line and
//! exit non-zero.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use fake_device::cloud::{CloudError, FakeCloud, FakeCloudConfig};
use fake_device::mdns::AnnounceOptions;
use fake_device::{DeviceConfig, Fleet, FleetConfig, FleetError, FleetOptions};
use mijia_proto::miio::Token;

#[derive(Parser)]
#[command(
    name = "fake-device",
    version,
    about = "Simulated Xiaomi Mijia devices on loopback"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run devices until killed.
    Serve(ServeArgs),
    /// Write a generated fleet file.
    Fleet(FleetArgs),
    /// Run the fleet and the simulated Xiaomi cloud until killed.
    Cloud(CloudArgs),
}

#[derive(clap::Args)]
struct CloudArgs {
    /// Where the cloud listens (127.0.0.0/8; port 0 = ephemeral).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Fleet file (TOML) with devices, [[account]] tables and [cloud] options.
    #[arg(long)]
    fleet: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Fleet file (TOML).
    #[arg(long, conflicts_with_all = ["model", "addr", "token", "did", "unprovisioned", "name"])]
    fleet: Option<PathBuf>,
    /// Model of a single device.
    #[arg(long, requires = "addr")]
    model: Option<String>,
    /// Address of a single device (127.0.0.0/8; port 0 = ephemeral).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Token (32 hex characters); derived from the did if left out with --unprovisioned.
    #[arg(long)]
    token: Option<String>,
    /// Device id.
    #[arg(long, default_value_t = 100_001)]
    did: u64,
    /// Reveal the token in hello replies.
    #[arg(long)]
    unprovisioned: bool,
    /// Name of a single device.
    #[arg(long, default_value = "device")]
    name: String,
    /// Do not answer hellos sent to 127.255.255.255.
    #[arg(long)]
    no_broadcast: bool,
    /// Announce the devices over mDNS (`_miio._udp.local.`) on a loopback
    /// interface; run inside a private network namespace (`unshare -n`).
    #[arg(long)]
    mdns: bool,
    /// Loopback interface address for --mdns.
    #[arg(long, default_value = "127.0.0.1", requires = "mdns")]
    mdns_interface: Ipv4Addr,
    /// Also run the simulated cloud on this address (127.0.0.0/8).
    #[arg(long, value_name = "ADDR")]
    cloud: Option<SocketAddr>,
}

#[derive(clap::Args)]
struct FleetArgs {
    /// How many devices.
    #[arg(long)]
    count: usize,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// First address (stays inside 127.0.0.0/8).
    #[arg(long, default_value = "127.1.0.1")]
    base: Ipv4Addr,
    /// Port of every device (0 = ephemeral).
    #[arg(long, default_value_t = 54321)]
    port: u16,
    /// Seed for dids and tokens.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write to stdout: {0}")]
    Stdout(std::io::Error),
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Fleet(a) => write_fleet(a),
        Command::Cloud(a) => serve_cloud(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-device: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ServeArgs) -> Result<FleetConfig, CliError> {
    if let Some(path) = &args.fleet {
        let text = std::fs::read_to_string(path).map_err(|source| FleetError::File {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(FleetConfig::from_toml(&text)?);
    }
    let (Some(model), Some(addr)) = (&args.model, args.addr) else {
        return Err(CliError::Usage(
            "give --fleet FILE, or --model M --addr A (with --token T or --unprovisioned)".into(),
        ));
    };
    let mut d = DeviceConfig::new(args.name.clone(), model.clone(), args.did, addr);
    d.unprovisioned = args.unprovisioned;
    d.token = match &args.token {
        Some(t) => Some(
            t.parse::<Token>()
                .map_err(|e| CliError::Usage(format!("--token: {e}")))?,
        ),
        None => None,
    };
    let cfg = FleetConfig { devices: vec![d] };
    cfg.validate()?;
    Ok(cfg)
}

fn serve(args: ServeArgs) -> Result<(), CliError> {
    let cfg = load(&args)?;
    let cloud = args
        .cloud
        .map(|addr| cloud_config(args.fleet.as_deref(), addr))
        .transpose()?;
    let options = FleetOptions {
        broadcast: !args.no_broadcast,
        mdns: args.mdns.then_some(AnnounceOptions {
            interface: args.mdns_interface,
            ..AnnounceOptions::default()
        }),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        let shutdown = Shutdown::install();
        let fleet = Fleet::start_with(cfg, options).await?;
        print_ready(&fleet)?;
        let cloud = match cloud {
            Some(c) => Some(start_cloud(&fleet, c).await?),
            None => None,
        };
        shutdown.wait().await;
        tracing::info!("shutting down");
        drop(cloud);
        fleet.shutdown().await;
        Ok(())
    })
}

/// The cloud parts of the fleet file at `path` (defaults without one),
/// listening on `addr`.
fn cloud_config(
    path: Option<&std::path::Path>,
    addr: SocketAddr,
) -> Result<FakeCloudConfig, CliError> {
    let mut cfg = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| FleetError::File {
                path: p.display().to_string(),
                source,
            })?;
            FakeCloudConfig::from_fleet_toml(&text)?
        }
        None => FakeCloudConfig::default(),
    };
    cfg.addr = addr;
    cfg.validate()?;
    Ok(cfg)
}

/// One JSON line per device on stdout, once every socket is bound.
fn print_ready(fleet: &Fleet) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for d in fleet.devices() {
        let line = serde_json::json!({
            "name": d.name,
            "did": d.did.to_string(),
            "model": d.model,
            "addr": d.addr.to_string(),
            "token": d.token.reveal(),
        });
        writeln!(out, "{line}").map_err(CliError::Stdout)?;
    }
    out.flush().map_err(CliError::Stdout)
}

/// Start the cloud over `fleet`'s devices and print its ready line.
async fn start_cloud(fleet: &Fleet, cfg: FakeCloudConfig) -> Result<FakeCloud, CliError> {
    let cloud = FakeCloud::start(cfg, fleet.handles().to_vec()).await?;
    let line = serde_json::json!({
        "cloud": cloud.base_url(),
        "api": cloud.api_template(),
        "sts": cloud.sts_url(),
    });
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{line}").map_err(CliError::Stdout)?;
    out.flush().map_err(CliError::Stdout)?;
    Ok(cloud)
}

fn serve_cloud(args: CloudArgs) -> Result<(), CliError> {
    let fleet_cfg = match &args.fleet {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| FleetError::File {
                path: path.display().to_string(),
                source,
            })?;
            FleetConfig::from_toml(&text)?
        }
        None => FleetConfig::default(),
    };
    let cloud = cloud_config(args.fleet.as_deref(), args.addr)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async move {
        let shutdown = Shutdown::install();
        let fleet = Fleet::start(fleet_cfg).await?;
        print_ready(&fleet)?;
        let cloud = start_cloud(&fleet, cloud).await?;
        shutdown.wait().await;
        tracing::info!("shutting down");
        drop(cloud);
        fleet.shutdown().await;
        Ok(())
    })
}

/// SIGINT and SIGTERM, caught from the moment this is made: make it before
/// printing the ready lines, so a caller that signals as soon as it has read
/// them gets a clean shutdown rather than the default (killed) action.
struct Shutdown {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Shutdown {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Shutdown {}
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            async fn next(s: Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            match (self.int.is_some(), self.term.is_some()) {
                (false, false) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
                _ => {
                    tokio::select! {
                        _ = next(self.int) => {}
                        _ = next(self.term) => {}
                    }
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn write_fleet(args: FleetArgs) -> Result<(), CliError> {
    if args.count == 0 {
        return Err(CliError::Usage("--count must be at least 1".into()));
    }
    let cfg = FleetConfig::generate(args.count, args.base, args.port, args.seed);
    let text = cfg.to_toml()?;
    std::fs::write(&args.out, text).map_err(|source| FleetError::File {
        path: args.out.display().to_string(),
        source,
    })?;
    eprintln!(
        "wrote {} devices to {}",
        cfg.devices.len(),
        args.out.display()
    );
    Ok(())
}
