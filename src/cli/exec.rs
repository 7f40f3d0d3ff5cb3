//! Executing a validated [`Plan`]: one device operation through the
//! [`Device`] facade, a whole-home poll ([`super::status`]), a registry
//! change ([`super::devices`]) or a spec command ([`super::specs`]).
//!
//! A device operation opens the device, asks for its model first when the
//! plan says names need one (`miIO.info`; only for devices given by
//! address without `--model`), checks names and values against that model
//! before sending anything else, runs the call and prints the result.
//! Per-property failures are printed and then reported as
//! [`Error::PartialFailure`] (exit 3); a registered device that answered
//! gets its last-seen time recorded.

use std::collections::HashMap;
use std::sync::Arc;

use super::devices;
use super::ids::HomeIdStore;
use super::output::{self, Who};
use super::plan::{Destination, HomePlan, Request, Work};
use super::specs;
use super::status;
use crate::home::specs::describe_model;
use crate::home::{unix_now, Device, DeviceOpError, LastSeen, ModelCatalog, Paths, Seen};
use crate::transport::{ClientConfig, IdStore};
use crate::Error;

/// Runs the plan. Results go to stdout.
pub async fn execute(plan: HomePlan) -> Result<(), Error> {
    let HomePlan {
        config,
        json,
        paths,
        catalog,
        work,
    } = plan;
    let need_paths = || {
        paths
            .as_ref()
            .ok_or_else(|| Error::usage("no home directory"))
    };
    match work {
        Work::Device { target, op } => {
            one_device(target, op, config, json, paths.as_ref(), &catalog).await
        }
        Work::Status(s) => status::execute(s, config, json, need_paths()?).await,
        Work::Registry(d) => devices::execute(d, need_paths()?, &catalog, config, json).await,
        Work::Spec(s) => specs::execute(s, catalog.store(), paths.as_ref(), json),
    }
}

async fn one_device(
    mut target: Destination,
    op: Request,
    config: ClientConfig,
    json: bool,
    paths: Option<&Paths>,
    catalog: &ModelCatalog,
) -> Result<(), Error> {
    let ids: Option<Arc<dyn IdStore>> = match paths {
        Some(p) => Some(Arc::new(HomeIdStore::new(p.clone()))),
        None => HomeIdStore::from_env().map(|s| Arc::new(s) as Arc<dyn IdStore>),
    };
    if target.detect {
        let probe = target.device.clone().connect(config.clone(), ids.clone())?;
        let found = probe.detect_model().await?;
        drop(probe);
        tracing::debug!(model = %found.model, "model asked from the device");
        target.device.profile = catalog.profile(Some(&found.model));
        if target.device.did.is_none() {
            target.device.did = found.did;
        }
        super::plan::prevalidate(&target.device.profile, &op)?;
    }
    let dev = target.device.clone().connect(config, ids)?;
    let result = run(&dev, &op, json, catalog).await;
    let answered = match &result {
        Ok(()) => true,
        Err(Error::DeviceOp(e)) => !e.is_timeout() && !e.is_validation(),
        Err(Error::PartialFailure { .. } | Error::ActionFailed { .. }) => true,
        Err(_) => false,
    };
    if let (true, true, Some(paths)) = (target.registered, answered, paths) {
        let seen = Seen {
            at: unix_now(),
            ip: target.device.addr.ip(),
        };
        if let Err(e) = LastSeen::record_seen(paths, &[(target.device.key(), seen)]) {
            tracing::warn!("last-seen time not recorded: {e}");
        }
    }
    result
}

async fn run(dev: &Device, op: &Request, json: bool, catalog: &ModelCatalog) -> Result<(), Error> {
    match op {
        Request::Info => {
            let info = dev.miio().info().await.map_err(DeviceOpError::from)?;
            output::emit(&output::info(&info, dev.miio().did().await, json))
        }
        Request::Raw { method, params } => {
            let result = dev.raw(method, params.clone()).await?;
            output::emit(&output::raw(&result, json))
        }
        Request::Status => {
            let readings = dev.status().await?;
            let t = dev.target();
            let address = t.addr.to_string();
            let who = Who {
                name: &t.name,
                room: t.room.as_deref(),
                model: t.model(),
                address: &address,
            };
            let access = access_map(catalog, t.model());
            output::emit(&output::status(who, &readings, &access, json))
        }
        Request::Get(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let readings = dev.get(&names).await?;
            output::emit(&output::readings(&readings, json))?;
            partial(
                readings.iter().filter(|r| !r.is_ok()).count(),
                readings.len(),
                "properties",
            )
        }
        Request::Set(pairs) => {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let results = dev.set(&pairs).await?;
            output::emit(&output::writes(&results, json))?;
            partial(
                results.iter().filter(|r| !r.is_ok()).count(),
                results.len(),
                "writes",
            )
        }
        Request::Action { name, args } => {
            let res = dev.action(name, args).await?;
            output::emit(&output::outcome(&res, json))?;
            if res.error.is_none() {
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

/// Access letters by property id, from the model's spec or legacy table.
fn access_map(catalog: &ModelCatalog, model: Option<&str>) -> HashMap<String, String> {
    model
        .and_then(|m| describe_model(catalog.store(), m))
        .map(|t| t.properties.into_iter().map(|p| (p.id, p.access)).collect())
        .unwrap_or_default()
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
