//! Executing a validated [`Plan`]: open the device, make the call, print.

use super::args::{Cli, Command};
use super::cloud::{self as cloud_cli, CloudPlan};
use super::discover::{self, DiscoverPlan};
use super::plan::{HomePlan, Plan};
use crate::Error;

/// A validated command: one device operation, or a discovery.
#[derive(Debug, Clone)]
pub enum Planned {
    /// A command addressed to one device.
    Device(Plan),
    /// `discover`.
    Discover(DiscoverPlan),
    /// `cloud …`, or a device command routed by `--via cloud|auto`.
    Cloud(CloudPlan),
    /// Devices by name, rooms, the registry and specs (the local route).
    Home(HomePlan),
    /// `mcp`, `tools`, `policy`, `approve`, `deny`, `approvals`, `audit`.
    Agent(super::agent::AgentPlan),
    /// `watch`, `wait`, `scene …`.
    Automation(super::automation::AutomationPlan),
}

/// Validate the command line into a [`Planned`] command.
pub fn plan(cli: &Cli) -> Result<Planned, Error> {
    match &cli.command {
        Command::Discover(a) => discover::plan(a, &cli.global).map(Planned::Discover),
        Command::Agent(a) => super::agent::plan(a, &cli.global).map(Planned::Agent),
        Command::Cloud(a) => cloud_cli::plan(a, &cli.global).map(Planned::Cloud),
        Command::Watch(_) | Command::Wait(_) | Command::Scene(_) => {
            super::automation::plan(cli).map(Planned::Automation)
        }
        _ if cli.global.via != crate::cloud::Via::Local
            && super::plan::routable(cli, cli.global.via == crate::cloud::Via::Cloud) =>
        {
            cloud_cli::plan_device(cli).map(Planned::Cloud)
        }
        _ => super::plan::plan_home(cli).map(Planned::Home),
    }
}

/// Run a planned command.
pub async fn execute(planned: Planned) -> Result<(), Error> {
    match planned {
        Planned::Device(p) => execute_device(p).await,
        Planned::Discover(p) => discover::execute(p).await,
        Planned::Cloud(p) => cloud_cli::execute(p).await,
        Planned::Home(p) => super::exec::execute(p).await,
        Planned::Agent(p) => super::agent::execute(p).await,
        Planned::Automation(p) => super::automation::execute(p).await,
    }
}

/// Run a by-address plan in numeric ids on the local route, with the
/// same output as [`super::exec`]. Results go to stdout; a device that
/// answered but rejected some items yields [`Error::PartialFailure`]
/// after printing.
pub async fn execute_device(plan: Plan) -> Result<(), Error> {
    super::exec::execute(HomePlan::from(plan)).await
}
