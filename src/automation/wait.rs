//! Waiting until a property meets a [`Condition`], on top of a [`Watch`]
//! (polling plus push where the device supports it; polling through the
//! Xiaomi cloud for a device reached there, see [`RoutedDevice`]).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::condition::Condition;
use super::context::Resolved;
use super::route::RoutedDevice;
use super::watch::{Watch, WatchOptions};
use super::AutomationError;
use crate::cloud::Route;

/// The value that met the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Met {
    /// The property's name.
    pub property: String,
    /// The value.
    pub value: Value,
    /// The value for people.
    pub display: String,
    /// How long it took.
    pub elapsed: Duration,
    /// The route the device was read on at the end.
    pub route: Route,
    /// When the device went over to the cloud: the local failure that
    /// made it.
    pub local_error: Option<String>,
}

/// Reads the property now and then on every change until `condition`
/// holds, for at most `timeout`.
///
/// A condition that does not hold in time is [`AutomationError::NotMet`]
/// with the last value read. A device that does not answer the first read
/// (before the time limit) is an [`AutomationError::Device`] error; later
/// failed reads are retried.
pub async fn wait_until(
    resolved: &Resolved,
    device: RoutedDevice,
    condition: &Condition,
    timeout: Duration,
    opts: WatchOptions,
) -> Result<Met, AutomationError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let name = condition.property().to_string();
    let not_met = |last: Option<String>| AutomationError::NotMet {
        condition: format!("{} {}", resolved.name(), condition.describe()),
        after: timeout,
        last,
    };
    let start = Watch::start(resolved, device, std::slice::from_ref(&name), opts);
    let (mut watch, _) = match tokio::time::timeout_at(deadline, start).await {
        Ok(started) => started?,
        Err(_) => return Err(not_met(None)),
    };
    let met = |value: &Value, watch: &Watch| Met {
        property: name.clone(),
        value: value.clone(),
        display: watch
            .display_of(&name)
            .map_or_else(|| value.to_string(), str::to_string),
        elapsed: started.elapsed(),
        route: watch.route(),
        local_error: watch.local_error().map(str::to_string),
    };
    let mut result = None;
    if let Some(v) = watch.value_of(&name).filter(|v| condition.holds(v)) {
        result = Some(met(v, &watch));
    }
    while result.is_none() {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(change) if change.property == name && condition.holds(&change.new) => {
                result = Some(met(&change.new, &watch));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let last = watch.display_of(&name).map(str::to_string);
    watch.close().await;
    result.ok_or_else(|| not_met(last))
}
