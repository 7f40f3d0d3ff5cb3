//! What automation needs from the home: the registry (device names), the
//! model catalog (specs), transport settings and request-id persistence.

use std::net::SocketAddr;
use std::sync::Arc;

use mijia_proto::miio::Token;

use crate::home::{
    load_spec_store, Device, DeviceOpError, DeviceTarget, ModelCatalog, Paths, Registry,
};
use crate::transport::{ClientConfig, IdStore};

use super::AutomationError;

/// Devices by name and how to reach them. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    registry: Arc<Registry>,
    catalog: Arc<ModelCatalog>,
    config: ClientConfig,
    ids: Option<Arc<dyn IdStore>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("devices", &self.registry.len())
            .field("config", &self.config)
            .field("ids", &self.ids.is_some())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over a registry and a catalog. Request ids start at a
    /// random point unless [`with_ids`](Self::with_ids) gives a store.
    pub fn new(registry: Registry, catalog: Arc<ModelCatalog>, config: ClientConfig) -> Self {
        Context {
            registry: Arc::new(registry),
            catalog,
            config,
            ids: None,
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
        Ok(Context::new(
            registry,
            Arc::new(ModelCatalog::new(store)),
            config,
        ))
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
            token: entry.token,
        })
    }

    /// Opens a device (a socket; nothing is sent yet).
    pub fn connect(&self, device: &Resolved) -> Result<Device, DeviceOpError> {
        device
            .target
            .clone()
            .connect(self.config.clone(), self.ids.clone())
    }
}

/// A device to talk to, with its token (for a push subscription, which
/// uses a socket of its own).
#[derive(Clone)]
pub struct Resolved {
    /// Name, address and model profile.
    pub target: DeviceTarget,
    token: Token,
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
            token,
        }
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// The token (redacted in `Debug`/`Display`).
    pub fn token(&self) -> &Token {
        &self.token
    }
}
