//! The `auto` route's fallback to the cloud, shared by every face (the
//! CLI's by-name commands and the MCP gate) so they follow one set of
//! rules:
//!
//! 1. Try the local route first.
//! 2. Fall back only when the device did not answer there
//!    ([`failure_allows_cloud`]; for requests that must not reach the
//!    device twice — actions, raw methods — only when no hello was
//!    answered, so the request itself never left). A device error never
//!    falls back: the cloud would only repeat it.
//! 3. Fall back only when a cloud session exists and the device's did is
//!    known ([`fallback_route`]); otherwise the local error stands, and
//!    [`NoFallback`] says what the user could do to enable the fallback.
//!
//! This module decides; it sends nothing and prints nothing.

use super::route::local_failure_allows_cloud;
use super::{CloudDeviceRoute, CloudError, SessionStore};
use crate::home::{DeviceOpError, Paths};

/// Why the `auto` fallback has no cloud route for a device.
#[derive(Debug)]
pub enum NoFallback {
    /// There is no home directory to look for a session in.
    NoHome,
    /// Nobody is logged in to the Xiaomi cloud.
    NotLoggedIn,
    /// The device has no did in the registry (and none was given).
    NoDid,
    /// The session or the cloud settings cannot be used.
    Unusable(CloudError),
    /// The session went away between the check and its use.
    Gone,
}

impl NoFallback {
    /// The hint to add to the local error on the command line, when
    /// something the user can do would enable the fallback.
    pub fn cli_hint(&self) -> Option<String> {
        match self {
            NoFallback::NoHome | NoFallback::Gone => None,
            NoFallback::NotLoggedIn => Some(
                "or run `mijia cloud login` so that mijia can reach it through the Xiaomi \
                 cloud when the local network cannot"
                    .into(),
            ),
            NoFallback::NoDid => Some(
                "the cloud fallback needs the device id: run `mijia cloud import` (or pass \
                 --did DID)"
                    .into(),
            ),
            NoFallback::Unusable(e) => Some(format!("the cloud fallback is not available: {e}")),
        }
    }

    /// The same, worded for an assistant (which tells the user).
    pub fn agent_hint(&self) -> Option<String> {
        match self {
            NoFallback::NoHome | NoFallback::Gone => None,
            NoFallback::NotLoggedIn => Some(
                "If the user runs `mijia cloud login`, mijia can reach it through the Xiaomi \
                 cloud when the local network cannot."
                    .into(),
            ),
            NoFallback::NoDid => Some(
                "The cloud fallback needs its device id: the user can run `mijia cloud \
                 import` to record it."
                    .into(),
            ),
            NoFallback::Unusable(e) => Some(format!(
                "The cloud fallback is not available ({e}); tell the user."
            )),
        }
    }
}

/// Whether a failed device operation may be retried through the cloud
/// (rule 2). `repeatable` says whether the request may reach the device
/// twice without harm: reads and value writes may, actions and raw
/// methods may not. The per-device time limit of a poll counts like a
/// request that went unanswered.
pub fn failure_allows_cloud(e: &DeviceOpError, repeatable: bool) -> bool {
    match e {
        DeviceOpError::Miio(e) => local_failure_allows_cloud(e, repeatable),
        DeviceOpError::Timeout { .. } => repeatable,
        _ => false,
    }
}

/// The cloud route to the device with did `did` for the `auto` fallback
/// (rule 3), or why there is none.
pub fn fallback_route(
    paths: Option<&Paths>,
    did: Option<&str>,
) -> Result<CloudDeviceRoute, NoFallback> {
    let paths = paths.ok_or(NoFallback::NoHome)?;
    match SessionStore::new(paths).load() {
        Ok(Some(_)) => {}
        Ok(None) => return Err(NoFallback::NotLoggedIn),
        Err(e) => return Err(NoFallback::Unusable(e)),
    }
    let did = did.ok_or(NoFallback::NoDid)?;
    match CloudDeviceRoute::for_device(paths, did) {
        Ok(Some(route)) => Ok(route),
        Ok(None) => Err(NoFallback::Gone),
        Err(e) => Err(NoFallback::Unusable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MiioError;

    #[test]
    fn only_silence_falls_back() {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 54321).into();
        let unreachable = DeviceOpError::Miio(MiioError::Unreachable {
            addr,
            attempts: 3,
            hellos: 3,
            refused: true,
        });
        assert!(failure_allows_cloud(&unreachable, true));
        assert!(failure_allows_cloud(&unreachable, false));
        let timeout = DeviceOpError::Timeout {
            after: std::time::Duration::from_secs(1),
        };
        assert!(failure_allows_cloud(&timeout, true));
        assert!(!failure_allows_cloud(&timeout, false));
        let usage = DeviceOpError::Usage("bad".into());
        assert!(!failure_allows_cloud(&usage, true));
    }

    #[test]
    fn no_home_or_session_means_no_route() {
        assert!(matches!(
            fallback_route(None, Some("1")),
            Err(NoFallback::NoHome)
        ));
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        let no = fallback_route(Some(&paths), Some("1")).unwrap_err();
        assert!(matches!(no, NoFallback::NotLoggedIn), "{no:?}");
        assert!(no.cli_hint().unwrap().contains("mijia cloud login"));
        assert!(no.agent_hint().unwrap().contains("mijia cloud login"));
    }
}
