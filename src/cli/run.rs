//! Dispatching a validated command to the module that runs it.

use super::args::{Cli, Command};
use super::cloud::{self as cloud_cli, CloudPlan};
use super::discover::{self, DiscoverPlan};
use super::plan::HomePlan;
use crate::Error;

/// A validated command.
#[derive(Debug, Clone)]
pub enum Planned {
    /// `discover`.
    Discover(DiscoverPlan),
    /// `cloud …`.
    Cloud(CloudPlan),
    /// Device commands (by name, `--ip` or `--did`, on either route),
    /// rooms, the registry and specs.
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
        _ => super::plan::plan_home(cli).map(Planned::Home),
    }
}

/// Run a planned command.
pub async fn execute(planned: Planned) -> Result<(), Error> {
    match planned {
        Planned::Discover(p) => discover::execute(p).await,
        Planned::Cloud(p) => cloud_cli::execute(p).await,
        Planned::Home(p) => super::exec::execute(p).await,
        Planned::Agent(p) => super::agent::execute(p).await,
        Planned::Automation(p) => super::automation::execute(p).await,
    }
}
