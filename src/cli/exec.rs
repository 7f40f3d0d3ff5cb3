//! Executing a validated [`HomePlan`]: one device operation through the
//! [`Device`] facade, a whole-home poll ([`super::status`]), a registry
//! change ([`super::devices`]) or a spec command ([`super::specs`]).
//!
//! A device operation opens the device, asks for its model first when the
//! plan says names need one (`miIO.info`; only for devices given by
//! address without `--model`), checks names and values against that model
//! before sending anything else, runs the call and prints the result.
//! Per-property failures are printed and then reported as
//! [`Error::PartialFailure`] (exit 3); a registered device that answered
//! on the local route gets its last-seen time recorded.
//!
//! # Routes
//!
//! The plan's `--via` decides how the facade reaches the device:
//!
//! - `local`: UDP only.
//! - `cloud`: the Xiaomi cloud only, with the did from `--did` or the
//!   registry (a device without one is a usage error, exit 2; no session
//!   is exit 6).
//! - `auto` (the default): the local route; if — and only if — the device
//!   did not answer there ([`local_failure_allows_cloud`]: for actions and
//!   raw methods only when no hello was answered, so a request that may
//!   have arrived is never sent twice), a cloud session exists and the
//!   did is known, the same request goes through the cloud. Otherwise the
//!   local error stands, with a hint saying what would enable the
//!   fallback. These rules live in [`crate::cloud::fallback`], shared
//!   with the MCP gate.
//!
//! The output is the same on both routes ([`output`] adds the `route`
//! field to JSON and a `via cloud` line on stderr).

use std::collections::HashMap;
use std::sync::Arc;

use super::devices;
use super::ids::HomeIdStore;
use super::output::{self, Who};
use super::plan::{Destination, HomePlan, Request, Work};
use super::specs;
use super::status;
use crate::cloud::route::local_failure_allows_cloud;
use crate::cloud::{fallback, CloudDeviceRoute, CloudError, MiotRoute, Via};
use crate::home::specs::describe_model;
use crate::home::{unix_now, Device, LastSeen, ModelCatalog, Paths, Seen};
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
    target: Destination,
    op: Request,
    config: ClientConfig,
    json: bool,
    paths: Option<&Paths>,
    catalog: &ModelCatalog,
) -> Result<(), Error> {
    let on = Attempt {
        target: &target,
        op: &op,
        config,
        json,
        catalog,
    };
    match target.via {
        Via::Local => on.local(paths).await,
        Via::Cloud => on.cloud(cloud_route(&target, paths)?, None).await,
        Via::Auto => {
            let local = on.local(paths).await;
            let Err(Error::Miio(e)) = &local else {
                return local;
            };
            if !local_failure_allows_cloud(e, repeatable(&op)) {
                return local;
            }
            match fallback_route(&target, paths) {
                Ok(route) => {
                    tracing::info!(error = %e, "local route failed; trying the cloud");
                    let why = e.to_string();
                    on.cloud(route, Some(&why)).await
                }
                Err(Some(hint)) => local.map_err(|e| e.with_hint(hint)),
                Err(None) => local,
            }
        }
    }
}

/// Whether the request may reach the device twice without harm (reads
/// and value writes), for the `auto` fallback.
fn repeatable(op: &Request) -> bool {
    !matches!(op, Request::Action { .. } | Request::Raw { .. })
}

/// The cloud route for `--via cloud`: the did must be known and a session
/// must exist.
fn cloud_route(target: &Destination, paths: Option<&Paths>) -> Result<Arc<dyn MiotRoute>, Error> {
    let Some(did) = target.cloud_did.as_deref() else {
        if !target.registered {
            return Err(CloudError::NoDid.into());
        }
        return Err(Error::usage(format!(
            "device '{}' has no cloud device id (did) in the registry, so the cloud route \
             cannot address it; run `mijia cloud import` to record it (or pass --did DID)",
            target.device.name
        )));
    };
    let paths = match paths {
        Some(p) => p.clone(),
        None => Paths::from_env()?,
    };
    let route = CloudDeviceRoute::for_device(&paths, did)?.ok_or(CloudError::NotLoggedIn)?;
    Ok(Arc::new(route))
}

/// The cloud route for the `auto` fallback ([`fallback::fallback_route`],
/// the rules the MCP gate uses too), or why there is none: a hint to add
/// to the local error, when something the user can do would enable it.
fn fallback_route(
    target: &Destination,
    paths: Option<&Paths>,
) -> Result<Arc<dyn MiotRoute>, Option<String>> {
    match fallback::fallback_route(paths, target.cloud_did.as_deref()) {
        Ok(route) => Ok(Arc::new(route)),
        Err(no) => Err(no.cli_hint()),
    }
}

/// One try of the operation on one route.
struct Attempt<'a> {
    target: &'a Destination,
    op: &'a Request,
    config: ClientConfig,
    json: bool,
    catalog: &'a ModelCatalog,
}

impl Attempt<'_> {
    /// On the local route; a registered device that answered gets its
    /// last-seen time recorded.
    async fn local(&self, paths: Option<&Paths>) -> Result<(), Error> {
        let ids: Option<Arc<dyn IdStore>> = match paths {
            Some(p) => Some(Arc::new(HomeIdStore::new(p.clone()))),
            None => HomeIdStore::from_env().map(|s| Arc::new(s) as Arc<dyn IdStore>),
        };
        let result = self.run(ids, None).await;
        let answered = match &result {
            Ok(()) => true,
            Err(Error::DeviceOp(e)) => !e.is_timeout() && !e.is_validation(),
            Err(Error::PartialFailure { .. } | Error::ActionFailed { .. }) => true,
            Err(_) => false,
        };
        if let (true, true, Some(paths)) = (self.target.registered, answered, paths) {
            let seen = Seen {
                at: unix_now(),
                ip: self.target.device.addr.ip(),
            };
            if let Err(e) = LastSeen::record_seen(paths, &[(self.target.device.key(), seen)]) {
                tracing::warn!("last-seen time not recorded: {e}");
            }
        }
        result
    }

    /// Through the cloud; `fallback_from` is the local failure that led
    /// here, if any.
    async fn cloud(
        &self,
        route: Arc<dyn MiotRoute>,
        fallback_from: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(note) = output::route_note(route.route(), fallback_from) {
            eprintln!("{note}");
        }
        self.run(None, Some(route)).await
    }

    /// Asks for the model first when the plan says so (and checks the
    /// request against it), then runs the request and prints the result.
    async fn run(
        &self,
        ids: Option<Arc<dyn IdStore>>,
        route: Option<Arc<dyn MiotRoute>>,
    ) -> Result<(), Error> {
        let connect = |t: crate::home::DeviceTarget| -> Result<Device, Error> {
            let dev = t.connect(self.config.clone(), ids.clone())?;
            Ok(match &route {
                Some(r) => dev.with_route(Arc::clone(r)),
                None => dev,
            })
        };
        let mut device = self.target.device.clone();
        if self.target.detect {
            let probe = connect(device.clone())?;
            let found = probe.detect_model().await?;
            drop(probe);
            tracing::debug!(model = %found.model, "model asked from the device");
            device.profile = self.catalog.profile(Some(&found.model));
            if device.did.is_none() {
                device.did = found.did;
            }
            super::plan::prevalidate(&device.profile, self.op)?;
        }
        let dev = connect(device)?;
        run(&dev, self.op, self.json, self.catalog).await
    }
}

async fn run(dev: &Device, op: &Request, json: bool, catalog: &ModelCatalog) -> Result<(), Error> {
    let route = dev.route();
    match op {
        Request::Info => {
            let (info, did) = dev.info().await?;
            output::emit(&output::info(&info, did, route, json))
        }
        Request::Raw { method, params } => {
            let result = dev.raw(method, params.clone()).await?;
            output::emit(&output::raw(&result, json))
        }
        Request::Status => {
            let readings = dev.status().await?;
            let t = dev.target();
            let address = if t.has_address() {
                t.addr.to_string()
            } else {
                "-".to_string()
            };
            let who = Who {
                name: &t.name,
                room: t.room.as_deref(),
                model: t.model(),
                address: &address,
            };
            let access = access_map(catalog, t.model());
            output::emit(&output::status(who, &readings, &access, route, json))
        }
        Request::Get(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let readings = dev.get(&names).await?;
            output::emit(&output::readings(&readings, route, json))?;
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
            output::emit(&output::writes(&results, route, json))?;
            partial(
                results.iter().filter(|r| !r.is_ok()).count(),
                results.len(),
                "writes",
            )
        }
        Request::Action { name, args } => {
            let res = dev.action(name, args).await?;
            output::emit(&output::outcome(&res, route, json))?;
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
