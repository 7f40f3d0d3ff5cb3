//! What automation needs from the home: the registry (device names), the
//! model catalog (specs), transport settings, request-id persistence and
//! the route to devices ([`RouteSettings`]: `--via` and the home whose
//! cloud session the cloud route uses).

use std::net::SocketAddr;
use std::sync::Arc;

use mijia_proto::miio::Token;

use crate::cloud::Via;
use crate::home::{
    load_spec_store, Device, DeviceOpError, DeviceTarget, ModelCatalog, Paths, Registry,
};
use crate::transport::{ClientConfig, IdStore};

use super::route::{HintReader, RouteSettings, RoutedDevice};
use super::AutomationError;

/// Devices by name and how to reach them. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    registry: Arc<Registry>,
    catalog: Arc<ModelCatalog>,
    config: ClientConfig,
    ids: Option<Arc<dyn IdStore>>,
    route: RouteSettings,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("devices", &self.registry.len())
            .field("config", &self.config)
            .field("ids", &self.ids.is_some())
            .field("via", &self.route.via)
            .field("home", &self.route.paths.is_some())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over a registry and a catalog. Request ids start at a
    /// random point unless [`with_ids`](Self::with_ids) gives a store.
    /// Devices are reached on the local route only until
    /// [`with_home`](Self::with_home) names a home whose cloud session
    /// the `auto` fallback (or [`with_via`](Self::with_via)) can use.
    pub fn new(registry: Registry, catalog: Arc<ModelCatalog>, config: ClientConfig) -> Self {
        Context {
            registry: Arc::new(registry),
            catalog,
            config,
            ids: None,
            route: RouteSettings::default(),
        }
    }

    /// The home's registry and specs (bundled plus `config/specs`). Spec
    /// files that cannot be used are logged as warnings and skipped.
    pub fn load(paths: &Paths, config: ClientConfig) -> Result<Self, AutomationError> {
        let registry = Registry::load(paths)?;
        let (store, warnings) = load_spec_store(paths);
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(
            Context::new(registry, Arc::new(ModelCatalog::new(store)), config)
                .with_home(paths.clone()),
        )
    }

    /// Use the cloud session of the home at `paths` for the cloud route.
    pub fn with_home(mut self, paths: Paths) -> Self {
        self.route.paths = Some(paths);
        self
    }

    /// Reach devices over `via` (default [`Via::Auto`]; see
    /// [`super::route`]).
    pub fn with_via(mut self, via: Via) -> Self {
        self.route.via = via;
        self
    }

    /// Word hints for `reader` (default: a person at the command line).
    pub fn with_hints_for(mut self, reader: HintReader) -> Self {
        self.route.reader = reader;
        self
    }

    /// How devices are reached.
    pub fn route_settings(&self) -> &RouteSettings {
        &self.route
    }

    /// Persist request ids through `ids`.
    pub fn with_ids(mut self, ids: Option<Arc<dyn IdStore>>) -> Self {
        self.ids = ids;
        self
    }

    /// Transport settings.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The request-id store, if any.
    pub fn ids(&self) -> Option<Arc<dyn IdStore>> {
        self.ids.clone()
    }

    /// The model catalog.
    pub fn catalog(&self) -> &Arc<ModelCatalog> {
        &self.catalog
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A registered device by name (case-insensitive). The error lists
    /// close names.
    pub fn resolve(&self, name: &str) -> Result<Resolved, AutomationError> {
        let entry = self.registry.get(name)?;
        Ok(Resolved {
            target: DeviceTarget::from_entry(entry, &self.catalog),
            cloud_did: None,
        })
    }

    /// Opens a device on the local route only (a socket; nothing is sent
    /// yet).
    pub fn connect(&self, device: &Resolved) -> Result<Device, DeviceOpError> {
        device
            .target
            .clone()
            .connect(self.config.clone(), self.ids.clone())
    }

    /// Opens a device on the route the settings choose (a socket for the
    /// local route; nothing is sent yet).
    pub fn open(&self, device: &Resolved) -> Result<RoutedDevice, DeviceOpError> {
        RoutedDevice::open(
            device.target.clone(),
            device.cloud_did.clone(),
            self.config.clone(),
            self.ids.clone(),
            self.route.clone(),
        )
    }
}

/// A device to talk to, and the did its cloud route uses.
#[derive(Clone)]
pub struct Resolved {
    /// Name, address, token and model profile.
    pub target: DeviceTarget,
    cloud_did: Option<String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.target.fmt(f)
    }
}

impl Resolved {
    /// A device given by address and token (`--ip`/`--token`).
    pub fn ad_hoc(
        addr: SocketAddr,
        token: Token,
        model: Option<&str>,
        catalog: &ModelCatalog,
    ) -> Self {
        Resolved {
            target: DeviceTarget::ad_hoc(addr, token, model, catalog),
            cloud_did: None,
        }
    }

    /// Use `did` on the cloud route (default: the registry's).
    pub fn with_cloud_did(mut self, did: Option<String>) -> Self {
        if did.is_some() {
            self.cloud_did = did;
        }
        self
    }

    /// The device id the cloud route uses, when known.
    pub fn cloud_did(&self) -> Option<String> {
        self.cloud_did
            .clone()
            .or_else(|| self.target.did.map(|d| d.to_string()))
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// The token (redacted in `Debug`/`Display`).
    pub fn token(&self) -> &Token {
        self.target.token()
    }
}
