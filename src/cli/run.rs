//! Executing a validated [`Plan`]: open the device, make the call, print.

use std::sync::Arc;

use super::ids::HomeIdStore;
use super::output;
use super::plan::{Op, Plan};
use crate::transport::{IdStore, MiioDevice};
use crate::Error;

/// Run the plan. Results go to stdout; a device that answered but
/// rejected some items yields [`Error::PartialFailure`] after printing.
pub async fn execute(plan: Plan) -> Result<(), Error> {
    let ids = HomeIdStore::from_env().map(|s| Arc::new(s) as Arc<dyn IdStore>);
    let device = MiioDevice::new(plan.target.addr, plan.target.token, plan.config, ids)?;
    let json = plan.json;
    match plan.op {
        Op::Info => {
            let info = device.info().await?;
            output::emit(&output::info(&info, device.did().await, json))
        }
        Op::Raw { method, params } => {
            let result = device.raw(&method, params).await?;
            output::emit(&output::raw(&result, json))
        }
        Op::Get(props) => {
            let results = device.get_properties(&props).await?;
            output::emit(&output::get(&results, json))?;
            partial(
                results.iter().filter(|r| !r.is_success()).count(),
                results.len(),
                "properties",
            )
        }
        Op::Set(items) => {
            let results = device.set_properties(&items).await?;
            output::emit(&output::set(&items, &results, json))?;
            partial(
                results.iter().filter(|r| !r.is_success()).count(),
                results.len(),
                "writes",
            )
        }
        Op::Action { siid, aiid, ins } => {
            let res = device.action(siid, aiid, ins).await?;
            output::emit(&output::action(siid, aiid, &res, json))?;
            if mijia_proto::miio::PropCode(res.code).is_success() {
                Ok(())
            } else {
                Err(Error::ActionFailed {
                    code: res.code,
                    meaning: mijia_proto::miio::PropCode(res.code).meaning(),
                })
            }
        }
    }
}

fn partial(failed: usize, total: usize, what: &'static str) -> Result<(), Error> {
    if failed == 0 {
        Ok(())
    } else {
        Err(Error::PartialFailure {
            failed,
            total,
            what,
        })
    }
}
