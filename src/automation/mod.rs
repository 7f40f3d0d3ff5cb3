//! Scripted home automation: watch, wait and scenes, on top of the
//! [`Device`](crate::home::Device) facade.
//!
//! - [`watch`]: stream property changes of one device — an initial read,
//!   then polling, plus device push (`miIO.sub`) where the device supports
//!   it, with a slower safety-net poll while push is active.
//! - [`wait`]: block until a property meets a [`condition`]
//!   (`light.brightness >= 50`), or time out.
//! - [`condition`]: comparison operators and values parsed against the
//!   property's spec.
//! - [`scenes`]: named sequences of sets, actions, parallel groups, waits
//!   and guards in a TOML file; checked against the specs before anything
//!   is sent, with a dry run that sends nothing. The library entry points
//!   for the agent layer are [`scenes::SceneFile::load`],
//!   [`scenes::Scene::devices`], [`scenes::Scene::operations`] and
//!   [`scenes::run_scene`].
//! - [`context`]: devices by registry name, the model catalog,
//!   transport settings and the route (`--via`).
//! - [`route`]: [`RoutedDevice`], one device reached by the `--via`
//!   rules that the CLI and the MCP gate follow
//!   ([`crate::cloud::fallback`]): local first, the Xiaomi cloud when the
//!   device does not answer and a session exists.
//!
//! This layer prints nothing (the CLI renders [`watch::Change`]s and
//! [`scenes::SceneReport`]s) and never bypasses the facade's name and value
//! checks. Push uses [`crate::transport::push`] and stays on the local
//! network; a device reached through the cloud is polled.

pub mod condition;
pub mod context;
mod error;
pub mod route;
pub mod scenes;
pub mod time;
pub mod wait;
pub mod watch;

pub use condition::{CompareOp, Condition};
pub use context::{Context, Resolved};
pub use error::{AutomationError, FailureClass};
pub use route::{HintReader, RouteFailure, RouteSettings, Routed, RoutedDevice};
pub use scenes::{run_scene, Scene, SceneFile, SceneReport};
pub use wait::{wait_until, Met};
pub use watch::{Change, ChangeSource, Watch, WatchOptions};
