//! Reaching one device the way `--via` says, for scenes, `wait` and
//! `watch`: [`RoutedDevice`].
//!
//! The rules are the CLI's and the MCP gate's, from
//! [`crate::cloud::fallback`]; this module only applies them:
//!
//! - `local`: UDP only.
//! - `cloud`: the Xiaomi cloud only (a session and the device's did are
//!   needed; otherwise every call fails saying so).
//! - `auto`: the local route first; when the device did not answer there
//!   ([`fallback::failure_allows_cloud`]: for an action only when no
//!   hello was answered, so it never reaches the device twice) and a
//!   session exists and the did is known ([`fallback::fallback_route`]),
//!   the same call goes through the cloud. The device then stays on the
//!   cloud for the rest of the run (a scene, a wait, a watch), so later
//!   steps and polls do not wait for the local route again.
//!
//! Push subscriptions (`miIO.sub`) are local only; see
//! [`crate::automation::watch`]. This module sends nothing by itself and
//! prints nothing: results carry the [`Route`] they took, and the local
//! failure that sent them to the cloud.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::cloud::{fallback, CloudError, MiotRoute, NoFallback, Route, Via};
use crate::home::device::DetectedModel;
use crate::home::{
    ActionOutcome, Device, DeviceOpError, DeviceTarget, ModelProfile, Paths, PropReading, SetResult,
};
use crate::transport::{ClientConfig, IdStore};

/// Who reads the hints added to a local failure that could have gone
/// through the cloud: a person at the command line, or an assistant
/// (which tells the user). See [`NoFallback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HintReader {
    /// The command line (`mijia scene run`, `wait`, `watch`).
    #[default]
    User,
    /// An assistant (MCP `run_scene`).
    Assistant,
}

/// How the devices of a run are reached: the route asked for, the home
/// (for the cloud session) and who reads the hints.
#[derive(Debug, Clone, Default)]
pub struct RouteSettings {
    /// The route asked for (`--via`).
    pub via: Via,
    /// The home whose cloud session the cloud route uses; without one,
    /// `auto` is the local route only.
    pub paths: Option<Paths>,
    /// Who reads the hints.
    pub reader: HintReader,
}

/// A successful call and the route it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed<T> {
    /// The result.
    pub value: T,
    /// The route that carried it.
    pub route: Route,
    /// The local failure that made this call go through the cloud (only
    /// on the call that switched to the cloud).
    pub local_error: Option<String>,
}

/// A failed call: the error, the route it failed on, and what else the
/// user should know.
#[derive(Debug)]
pub struct RouteFailure {
    /// What went wrong (on the cloud route, the cloud's error).
    pub error: DeviceOpError,
    /// The route the error came from (`None` when nothing was sent: the
    /// cloud route could not be set up).
    pub route: Option<Route>,
    /// When the cloud failed after the local route: the local failure.
    pub local_error: Option<String>,
    /// What would enable the cloud fallback, worded for the reader.
    pub hint: Option<String>,
    reader: HintReader,
}

impl RouteFailure {
    fn new(error: DeviceOpError, route: Option<Route>, reader: HintReader) -> Self {
        RouteFailure {
            error,
            route,
            local_error: None,
            hint: None,
            reader,
        }
    }

    /// The text to add after the error: the local failure that led to the
    /// cloud, and the hint; `None` when there is neither.
    pub fn note(&self) -> Option<String> {
        let local = self.local_error.as_ref().map(|l| match self.reader {
            HintReader::User => {
                format!("tried through the Xiaomi cloud because the local route failed: {l}")
            }
            HintReader::Assistant => format!(
                "(Tried through the Xiaomi cloud because the local network did not answer: {l}.)"
            ),
        });
        let parts: Vec<String> = local.into_iter().chain(self.hint.clone()).collect();
        if parts.is_empty() {
            return None;
        }
        Some(match self.reader {
            HintReader::User => parts.join("; "),
            HintReader::Assistant => parts.join(" "),
        })
    }

    /// The error with its [`note`](Self::note), for people.
    pub fn detail(&self) -> String {
        match (self.note(), self.reader) {
            (None, _) => self.error.to_string(),
            (Some(n), HintReader::User) => format!("{}; {n}", self.error),
            (Some(n), HintReader::Assistant) => format!("{}. {n}", self.error),
        }
    }
}

impl std::fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail())
    }
}

type OpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DeviceOpError>> + Send + 'a>>;

/// One device, reached by the rules in the [module docs](self). Cheap to
/// share (`Arc`); calls may run concurrently.
pub struct RoutedDevice {
    target: DeviceTarget,
    config: ClientConfig,
    settings: RouteSettings,
    did: Option<String>,
    /// The local route (none for `--via cloud`).
    local: Option<Arc<Device>>,
    /// The cloud route, once in use.
    cloud: Mutex<Option<Arc<Device>>>,
}

impl std::fmt::Debug for RoutedDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedDevice")
            .field("target", &self.target)
            .field("via", &self.settings.via)
            .field("route", &self.route())
            .finish_non_exhaustive()
    }
}

impl RoutedDevice {
    /// Opens the device (a socket for the local route; nothing is sent
    /// yet). `did` is the device id for the cloud route (default: the
    /// target's).
    pub fn open(
        target: DeviceTarget,
        did: Option<String>,
        config: ClientConfig,
        ids: Option<Arc<dyn IdStore>>,
        settings: RouteSettings,
    ) -> Result<Self, DeviceOpError> {
        let did = did.or_else(|| target.did.map(|d| d.to_string()));
        let local = match settings.via {
            Via::Cloud => None,
            Via::Local | Via::Auto => Some(Arc::new(target.clone().connect(config.clone(), ids)?)),
        };
        Ok(RoutedDevice {
            target,
            config,
            settings,
            did,
            local,
            cloud: Mutex::new(None),
        })
    }

    /// The same device with what was learnt about it (its model after
    /// asking the device, its did), on the route it is on now.
    pub fn with_target(
        self,
        target: DeviceTarget,
        ids: Option<Arc<dyn IdStore>>,
    ) -> Result<Self, DeviceOpError> {
        let on_cloud = self.on_cloud();
        let next = RoutedDevice::open(
            target,
            self.did.clone(),
            self.config.clone(),
            ids,
            self.settings.clone(),
        )?;
        if on_cloud {
            next.cloud_device()?;
        }
        Ok(next)
    }

    /// Who it is.
    pub fn target(&self) -> &DeviceTarget {
        &self.target
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.target.name
    }

    /// Its model profile.
    pub fn profile(&self) -> &ModelProfile {
        &self.target.profile
    }

    /// Transport settings of the local route.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The route asked for.
    pub fn via(&self) -> Via {
        self.settings.via
    }

    /// The route calls take now: the cloud once it is in use (always for
    /// `--via cloud` after the first call), else the local one.
    pub fn route(&self) -> Route {
        match self.cloud_now() {
            Some(d) => d.route(),
            None => Route::Local,
        }
    }

    /// Whether calls go through the cloud now.
    pub fn on_cloud(&self) -> bool {
        self.cloud_now().is_some()
    }

    /// Whether the local route may still be used (a push subscription,
    /// for example): not for `--via cloud`, nor once the device went
    /// over to the cloud.
    pub fn local_in_use(&self) -> bool {
        self.local.is_some() && !self.on_cloud()
    }

    /// Reads properties by name ([`Device::get`]); may fall back.
    pub async fn get(&self, names: &[&str]) -> Result<Routed<Vec<PropReading>>, RouteFailure> {
        self.call(true, |d| Box::pin(async move { d.get(names).await }))
            .await
    }

    /// Writes properties ([`Device::set`]); may fall back (a value
    /// written twice is the same value).
    pub async fn set(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Routed<Vec<SetResult>>, RouteFailure> {
        self.call(true, |d| Box::pin(async move { d.set(pairs).await }))
            .await
    }

    /// Runs an action ([`Device::action`]); falls back only when no hello
    /// was answered, so it never reaches the device twice.
    pub async fn action(
        &self,
        name: &str,
        args: &[String],
    ) -> Result<Routed<ActionOutcome>, RouteFailure> {
        self.call(false, |d| {
            Box::pin(async move { d.action(name, args).await })
        })
        .await
    }

    /// Asks for the model (`miIO.info`, [`Device::detect_model`]); may
    /// fall back, as `mijia info` does.
    pub async fn detect_model(&self) -> Result<Routed<DetectedModel>, RouteFailure> {
        self.call(true, |d| Box::pin(async move { d.detect_model().await }))
            .await
    }

    fn cloud_now(&self) -> Option<Arc<Device>> {
        self.cloud
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Arc::clone)
    }

    /// The cloud route to this device, or why there is none.
    fn cloud_route(&self) -> Result<Arc<dyn MiotRoute>, NoFallback> {
        let route = fallback::fallback_route(self.settings.paths.as_ref(), self.did.as_deref())?;
        Ok(Arc::new(route))
    }

    /// The device on the cloud route, set up on first use.
    fn cloud_device(&self) -> Result<Arc<Device>, DeviceOpError> {
        if let Some(d) = self.cloud_now() {
            return Ok(d);
        }
        let route = self.cloud_route().map_err(|no| self.no_cloud(no))?;
        self.switch(route)
    }

    /// Puts the device on `route` from now on (the first caller wins when
    /// two switch at once).
    fn switch(&self, route: Arc<dyn MiotRoute>) -> Result<Arc<Device>, DeviceOpError> {
        let device = self
            .target
            .clone()
            .connect(self.config.clone(), None)?
            .with_route(route);
        let mut slot = self.cloud.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::clone(slot.get_or_insert_with(|| Arc::new(device))))
    }

    /// The error for `--via cloud` when the cloud route cannot be used.
    fn no_cloud(&self, no: NoFallback) -> DeviceOpError {
        match no {
            NoFallback::NoDid => DeviceOpError::Usage(format!(
                "device '{}' has no cloud device id (did) in the registry, so the cloud route \
                 cannot address it; run `mijia cloud import` to record it (or pass --did DID)",
                self.target.name
            )),
            NoFallback::Unusable(e) => e.into(),
            NoFallback::NoHome | NoFallback::NotLoggedIn | NoFallback::Gone => {
                CloudError::NotLoggedIn.into()
            }
        }
    }

    fn hint(&self, no: &NoFallback) -> Option<String> {
        match self.settings.reader {
            HintReader::User => no.cli_hint(),
            HintReader::Assistant => no.agent_hint(),
        }
    }

    /// Runs `op` on the route the rules choose. `repeatable`: the request
    /// may reach the device twice without harm.
    async fn call<'a, T>(
        &'a self,
        repeatable: bool,
        op: impl Fn(Arc<Device>) -> OpFuture<'a, T>,
    ) -> Result<Routed<T>, RouteFailure> {
        let reader = self.settings.reader;
        let on_cloud = |d: Arc<Device>| {
            let route = d.route();
            let fut = op(d);
            async move {
                fut.await
                    .map(|value| Routed {
                        value,
                        route,
                        local_error: None,
                    })
                    .map_err(|e| RouteFailure::new(e, Some(route), reader))
            }
        };
        if let Some(cloud) = self.cloud_now() {
            return on_cloud(cloud).await;
        }
        let local = match (&self.local, self.settings.via) {
            (Some(local), Via::Local | Via::Auto) => Arc::clone(local),
            _ => {
                let cloud = self
                    .cloud_device()
                    .map_err(|e| RouteFailure::new(e, None, reader))?;
                return on_cloud(cloud).await;
            }
        };
        let e = match op(local).await {
            Ok(value) => {
                return Ok(Routed {
                    value,
                    route: Route::Local,
                    local_error: None,
                })
            }
            Err(e) => e,
        };
        if self.settings.via != Via::Auto || !fallback::failure_allows_cloud(&e, repeatable) {
            return Err(RouteFailure::new(e, Some(Route::Local), reader));
        }
        let route = match self.cloud_route() {
            Ok(route) => route,
            Err(no) => {
                let mut failure = RouteFailure::new(e, Some(Route::Local), reader);
                failure.hint = self.hint(&no);
                return Err(failure);
            }
        };
        let cloud = match self.switch(route) {
            Ok(d) => d,
            Err(connect) => {
                tracing::debug!(device = %self.target.name, error = %connect, "no cloud device");
                return Err(RouteFailure::new(e, Some(Route::Local), reader));
            }
        };
        tracing::info!(device = %self.target.name, error = %e, "local route failed; trying the cloud");
        let why = e.to_string();
        match on_cloud(cloud).await {
            Ok(mut done) => {
                done.local_error = Some(why);
                Ok(done)
            }
            Err(mut failed) => {
                failed.local_error = Some(why);
                Err(failed)
            }
        }
    }
}

/// Serializes `Some(cloud route)` as `"cloud"`, the `route` field of JSON
/// output (as in `mijia get --json`).
pub(crate) fn serialize_cloud_route<S: serde::Serializer>(
    route: &Option<Route>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match route {
        Some(r) => s.serialize_str(r.kind()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::ModelCatalog;
    use crate::transport::MiioError;

    fn target() -> DeviceTarget {
        let catalog = ModelCatalog::new(mijia_proto::miot::SpecStore::new());
        DeviceTarget::ad_hoc(
            ([127, 0, 0, 1], 9).into(),
            mijia_proto::miio::Token::from_bytes([1; 16]),
            None,
            &catalog,
        )
    }

    fn unreachable() -> DeviceOpError {
        DeviceOpError::Miio(MiioError::Unreachable {
            addr: ([127, 0, 0, 1], 9).into(),
            attempts: 1,
            hellos: 1,
            refused: true,
        })
    }

    #[test]
    fn failures_add_the_local_error_and_the_hint_for_their_reader() {
        let mut f = RouteFailure::new(unreachable(), Some(Route::Local), HintReader::User);
        assert_eq!(f.note(), None);
        assert_eq!(f.detail(), unreachable().to_string());
        f.hint = Some("or run `mijia cloud login`".into());
        assert_eq!(
            f.detail(),
            format!("{}; or run `mijia cloud login`", unreachable())
        );
        let mut f = RouteFailure::new(
            DeviceOpError::Usage("x".into()),
            Some(Route::Cloud { region: "de" }),
            HintReader::Assistant,
        );
        f.local_error = Some("no reply to hello".into());
        let text = f.detail();
        assert!(
            text.starts_with("x. (Tried through the Xiaomi cloud"),
            "{text}"
        );
        assert!(text.contains("no reply to hello"), "{text}");
    }

    #[tokio::test]
    async fn via_cloud_without_a_session_fails_before_sending() {
        let dir = tempfile::tempdir().unwrap();
        for paths in [None, Some(Paths::at(dir.path()))] {
            let settings = RouteSettings {
                via: Via::Cloud,
                paths,
                reader: HintReader::User,
            };
            let d = RoutedDevice::open(
                target(),
                Some("42".into()),
                ClientConfig::default(),
                None,
                settings,
            )
            .unwrap();
            assert!(!d.local_in_use());
            let f = d.get(&["2.1"]).await.unwrap_err();
            assert!(f.route.is_none(), "{f:?}");
            assert!(
                matches!(&f.error, DeviceOpError::Cloud(c) if matches!(**c, CloudError::NotLoggedIn)),
                "{f:?}"
            );
            assert_eq!(d.route(), Route::Local, "not on the cloud");
        }
    }

    #[tokio::test]
    async fn auto_without_a_home_is_the_local_route() {
        let settings = RouteSettings::default();
        assert_eq!(settings.via, Via::Auto);
        let d =
            RoutedDevice::open(target(), None, ClientConfig::default(), None, settings).unwrap();
        assert!(d.local_in_use());
        assert_eq!(d.route(), Route::Local);
    }
}
