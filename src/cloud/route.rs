//! Choosing between the local (UDP) and the cloud route for one device.
//!
//! [`Via`] is what the user asked for (`--via local|cloud|auto`); [`Route`]
//! is what was used, for output. [`for_device`] gives the cloud client for
//! a device when a session exists, in the region the device was last
//! listed in (else the session's region). [`local_failure_allows_cloud`]
//! says which local failures make `auto` try the cloud: the device did not
//! answer (unreachable, no reply, wrong token) — never a device error, which
//! the cloud would only repeat. For requests that are not safe to send
//! twice (actions, raw methods) only [`MiioError::Unreachable`] counts: no
//! hello was answered, so the request itself never left.
//!
//! [`MiotRoute`] is the one interface both routes implement (the local
//! [`MiioDevice`](crate::transport::MiioDevice) and [`CloudDeviceRoute`]), so
//! a device facade can hold either and render results the same way.

use std::fmt;
use std::str::FromStr;

use mijia_proto::cloud::Region;
use serde::Serialize;

use super::api::CloudClient;
use super::import::ImportRecord;
use super::CloudError;
use crate::home::Paths;
use crate::transport::{DeviceInfo, MiioError};

/// Which route the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Via {
    /// The local network only.
    Local,
    /// The Xiaomi cloud only.
    Cloud,
    /// Local first; the cloud when the device does not answer and a
    /// session exists.
    #[default]
    Auto,
}

impl FromStr for Via {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Via::Local),
            "cloud" => Ok(Via::Cloud),
            "auto" => Ok(Via::Auto),
            other => Err(format!("unknown route {other:?}: use local, cloud or auto")),
        }
    }
}

/// The route a command used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "route", rename_all = "snake_case")]
pub enum Route {
    /// UDP on the local network.
    Local,
    /// The Xiaomi cloud, in a region.
    Cloud {
        /// The region code.
        region: &'static str,
    },
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Local => f.write_str("local"),
            Route::Cloud { region } => write!(f, "cloud ({region})"),
        }
    }
}

impl Route {
    /// `"local"` or `"cloud"`: the `route` field of JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Local => "local",
            Route::Cloud { .. } => "cloud",
        }
    }

    /// Whether this is the cloud route.
    pub fn is_cloud(&self) -> bool {
        matches!(self, Route::Cloud { .. })
    }

    /// The cloud route of `client`.
    pub fn cloud(client: &CloudClient) -> Route {
        Route::Cloud {
            region: client.region().code(),
        }
    }
}

/// The cloud client for device `did`, or `None` when not logged in.
pub fn for_device(paths: &Paths, did: &str) -> Result<Option<CloudClient>, CloudError> {
    let Some(client) = CloudClient::from_home(paths)? else {
        return Ok(None);
    };
    let listed: Option<Region> = ImportRecord::load(paths)
        .devices
        .get(did)
        .and_then(|w| w.region.as_deref())
        .and_then(|r| r.parse().ok());
    Ok(Some(match listed {
        Some(r) => client.with_region(r),
        None => client,
    }))
}

/// Whether a local failure lets `auto` fall back to the cloud. `repeatable`
/// says whether the request may safely reach the device twice (reads and
/// writes of values do; actions and raw methods may not): then a request
/// that was sent but not answered also counts, otherwise only a device
/// that never answered the hello.
pub fn local_failure_allows_cloud(e: &MiioError, repeatable: bool) -> bool {
    match e {
        MiioError::Unreachable { .. } => true,
        MiioError::NoReply { .. } | MiioError::WrongToken { .. } => repeatable,
        _ => false,
    }
}

/// A boxed future, for the object-safe [`MiotRoute`].
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Why a call on either route failed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The local (UDP) route failed.
    #[error(transparent)]
    Local(#[from] MiioError),
    /// The cloud route failed.
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl From<RouteError> for crate::Error {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::Local(e) => crate::Error::Miio(e),
            RouteError::Cloud(e) => crate::Error::Cloud(e),
        }
    }
}

/// The MIoT calls a device facade makes, the same on both routes: the
/// local [`MiioDevice`](crate::transport::MiioDevice) and a
/// [`CloudDeviceRoute`] (a [`CloudClient`] bound to one did). Results use
/// the transport's types, with cloud codes already translated to the
/// device-level MIoT codes, so a facade can render both routes alike.
pub trait MiotRoute: Send + Sync {
    /// Which route this is.
    fn route(&self) -> Route;
    /// `get_properties`; one result per property, in order.
    fn get_properties<'a>(
        &'a self,
        props: &'a [crate::transport::PropId],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>>;
    /// `set_properties`; one result per item, in order.
    fn set_properties<'a>(
        &'a self,
        props: &'a [(crate::transport::PropId, serde_json::Value)],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>>;
    /// `action`.
    fn action<'a>(
        &'a self,
        siid: u32,
        aiid: u32,
        ins: Vec<serde_json::Value>,
    ) -> BoxFuture<'a, Result<crate::transport::ActionResult, RouteError>>;
    /// Any miIO method.
    fn raw<'a>(
        &'a self,
        method: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, RouteError>>;
    /// `miIO.info`.
    fn info(&self) -> BoxFuture<'_, Result<DeviceInfo, RouteError>>;
}

impl MiotRoute for crate::transport::MiioDevice {
    fn route(&self) -> Route {
        Route::Local
    }

    fn get_properties<'a>(
        &'a self,
        props: &'a [crate::transport::PropId],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>> {
        Box::pin(
            async move { Ok(crate::transport::MiioDevice::get_properties(self, props).await?) },
        )
    }

    fn set_properties<'a>(
        &'a self,
        props: &'a [(crate::transport::PropId, serde_json::Value)],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>> {
        Box::pin(
            async move { Ok(crate::transport::MiioDevice::set_properties(self, props).await?) },
        )
    }

    fn action<'a>(
        &'a self,
        siid: u32,
        aiid: u32,
        ins: Vec<serde_json::Value>,
    ) -> BoxFuture<'a, Result<crate::transport::ActionResult, RouteError>> {
        Box::pin(
            async move { Ok(crate::transport::MiioDevice::action(self, siid, aiid, ins).await?) },
        )
    }

    fn raw<'a>(
        &'a self,
        method: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, RouteError>> {
        Box::pin(async move { Ok(crate::transport::MiioDevice::raw(self, method, params).await?) })
    }

    fn info(&self) -> BoxFuture<'_, Result<DeviceInfo, RouteError>> {
        Box::pin(async move { Ok(crate::transport::MiioDevice::info(self).await?) })
    }
}

/// A [`CloudClient`] bound to one device.
#[derive(Debug, Clone)]
pub struct CloudDeviceRoute {
    /// The client (its region is the device's).
    pub client: CloudClient,
    /// The device id.
    pub did: String,
}

impl CloudDeviceRoute {
    /// The cloud route to `did` of the home at `paths`, or `None` when not
    /// logged in.
    pub fn for_device(paths: &Paths, did: &str) -> Result<Option<Self>, CloudError> {
        Ok(for_device(paths, did)?.map(|client| CloudDeviceRoute {
            client,
            did: did.to_owned(),
        }))
    }
}

impl MiotRoute for CloudDeviceRoute {
    fn route(&self) -> Route {
        Route::cloud(&self.client)
    }

    fn get_properties<'a>(
        &'a self,
        props: &'a [crate::transport::PropId],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>> {
        Box::pin(async move { Ok(self.client.get_properties(&self.did, props).await?) })
    }

    fn set_properties<'a>(
        &'a self,
        props: &'a [(crate::transport::PropId, serde_json::Value)],
    ) -> BoxFuture<'a, Result<Vec<crate::transport::PropResult>, RouteError>> {
        Box::pin(async move { Ok(self.client.set_properties(&self.did, props).await?) })
    }

    fn action<'a>(
        &'a self,
        siid: u32,
        aiid: u32,
        ins: Vec<serde_json::Value>,
    ) -> BoxFuture<'a, Result<crate::transport::ActionResult, RouteError>> {
        Box::pin(async move { Ok(self.client.action(&self.did, siid, aiid, ins).await?) })
    }

    fn raw<'a>(
        &'a self,
        method: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<serde_json::Value, RouteError>> {
        Box::pin(async move { Ok(self.client.rpc(&self.did, method, params).await?) })
    }

    fn info(&self) -> BoxFuture<'_, Result<DeviceInfo, RouteError>> {
        Box::pin(async move {
            let raw = self
                .client
                .rpc(&self.did, "miIO.info", serde_json::json!([]))
                .await?;
            DeviceInfo::from_value(raw).ok_or_else(|| {
                RouteError::Cloud(CloudError::Proto(
                    mijia_proto::cloud::CloudProtoError::Shape {
                        detail: format!("miIO.info of device {} is not an object", self.did),
                    },
                ))
            })
        })
    }
}
