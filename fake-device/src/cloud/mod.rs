//! A simulated Xiaomi cloud on loopback, backed by the simulated fleet.
//!
//! One HTTP/1.1 server (plain HTTP, 127.0.0.0/8 only) plays three hosts by
//! path:
//!
//! - the **account host** at the root: password login with captcha and
//!   two-factor verification, QR login with long polling, the STS, and the
//!   silent refresh with a `passToken` cookie (`account`);
//! - the **API host** at `/{region}/app/…`, so a client's API base template
//!   is `http://127.0.0.1:PORT/{region}/app`: RC4 and HMAC signed requests
//!   verified with `mijia_proto::cloud`, device list, homes, MIoT
//!   properties and actions and raw miIO calls run against the same
//!   [`DeviceHandle`]s the UDP side serves (`api`);
//! - a **control API** at `/__fake/…` for tests: accounts, scripted login
//!   outcomes, QR confirmation, token expiry, faults, the fake clock and the
//!   request log (`control`); every operation is also a method of
//!   [`FakeCloud`].
//!
//! Faults ([`CloudFaults`]): dropped connections, 5xx, rate limiting
//! (HTTP 429 or a code), slow replies, forced `invalid signature`; expired
//! service tokens in four forms ([`ExpiredForm`]), expired pass tokens,
//! risk control, captcha, two-factor lockout, QR timeout, offline devices
//! and devices in another region.
//!
//! What it does not do: TLS, real host names, the OAuth/MQTT flavour, or
//! anything off loopback. Behaviour the public sources leave open (exact
//! error codes of a QR timeout or 2FA lockout, HTTP status of
//! `invalid signature`) is a documented choice here, not a claim about the
//! real service.

mod account;
mod api;
pub mod config;
mod control;
mod http;
mod server;
mod state;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::cloud_code;
pub use config::{
    AccountConfig, CloudFaults, DeviceCloudConfig, ExpiredForm, FakeCloudConfig, FaultScope,
    LoginOutcome, QrAutoConfirm, RateLimitForm, TwoFactorConfig, TwoFactorMethod,
};
pub use state::RequestRecord;

use crate::DeviceHandle;
use state::Shared;

/// Why the simulated cloud could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The listen address is outside 127.0.0.0/8.
    #[error("the fake cloud listens only on 127.0.0.0/8, not {0}; use e.g. 127.0.0.1:0")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error("fake cloud: cannot listen on {addr}: {source} (is the port taken? use port 0)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The cloud parts of the fleet file are not TOML.
    #[error("fleet file: {0}")]
    Syntax(String),
    /// A cloud setting is wrong.
    #[error("{what}: {problem}")]
    Config {
        /// Which part.
        what: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// No account has this login name or id.
    #[error("no account {0:?} (give its user, email, phone or user_id)")]
    UnknownAccount(String),
    /// No device has this name or did.
    #[error("no device {0:?} (give its name or did)")]
    UnknownDevice(String),
    /// No QR login is waiting.
    #[error("no pending QR login to confirm (start one with /longPolling/loginUrl)")]
    NoPendingQr,
}

pub(crate) fn is_loopback_v4(addr: &SocketAddr) -> bool {
    matches!(addr, SocketAddr::V4(v) if v.ip().is_loopback())
}

/// A running simulated cloud. Dropping it stops the server.
pub struct FakeCloud {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCloud")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeCloud {
    /// Validate, bind (127.0.0.0/8 only) and serve. `devices` are the
    /// fleet's handles (e.g. `fleet.handles().to_vec()`); each gets its
    /// cloud placement from `config.devices` by name. Must run inside a
    /// tokio runtime.
    pub async fn start(
        config: FakeCloudConfig,
        devices: Vec<DeviceHandle>,
    ) -> Result<FakeCloud, CloudError> {
        config.validate()?;
        let bind_err = |source| CloudError::Bind {
            addr: config.addr,
            source,
        };
        let listener = TcpListener::bind(config.addr).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new(Shared::new(format!("http://{addr}"), &config, devices)?);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(http::accept_loop(listener, Arc::clone(&shared), stop_rx));
        tracing::info!(%addr, "fake cloud started");
        Ok(FakeCloud {
            shared,
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The account host, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The API base template, `http://127.0.0.1:PORT/{region}/app`.
    pub fn api_template(&self) -> String {
        format!("{}/{{region}}/app", self.shared.base_url)
    }

    /// The API base of one region, e.g. `http://127.0.0.1:PORT/de/app`.
    pub fn api_base(&self, region: mijia_proto::cloud::Region) -> String {
        format!("{}/{}/app", self.shared.base_url, region.code())
    }

    /// The STS URL, `http://127.0.0.1:PORT/sts`.
    pub fn sts_url(&self) -> String {
        self.shared.sts_url()
    }

    /// Add an account; returns its user id.
    pub fn add_account(&self, account: AccountConfig) -> Result<u64, CloudError> {
        control::add_account(&self.shared, account)
    }

    /// Queue replies for the next password logins of `user`.
    pub fn script_login(&self, user: &str, outcomes: Vec<LoginOutcome>) -> Result<(), CloudError> {
        control::script(&self.shared, user, outcomes)
    }

    /// Confirm the newest pending QR login for `user` (or the only account);
    /// returns the QR login id.
    pub fn confirm_qr(&self, user: Option<&str>) -> Result<String, CloudError> {
        let id = self.shared.lock().confirm_qr(user, None)?;
        self.shared.qr_changed.notify_waiters();
        Ok(id)
    }

    /// Expire the current service tokens of `user` (every account for
    /// `None`); they are answered in `form` from now on. Returns how many.
    pub fn expire_service_tokens(
        &self,
        user: Option<&str>,
        form: ExpiredForm,
    ) -> Result<usize, CloudError> {
        control::expire_service_tokens(&self.shared, user, form)
    }

    /// Expire the pass tokens of `user` (every account for `None`): the
    /// silent refresh then gets 70016. Returns how many.
    pub fn expire_pass_tokens(&self, user: Option<&str>) -> Result<usize, CloudError> {
        control::expire_pass_tokens(&self.shared, user)
    }

    /// The current faults.
    pub fn faults(&self) -> CloudFaults {
        self.shared.lock().faults.clone()
    }

    /// Replace the faults.
    pub fn set_faults(&self, faults: CloudFaults) {
        self.shared.lock().faults = faults;
    }

    /// Move the fake clock (nonce checks, token lifetime, log times);
    /// returns its new time in ms since the epoch.
    pub fn advance_clock(&self, secs: i64) -> u64 {
        control::advance_clock(&self.shared, secs)
    }

    /// The fake clock, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.shared.lock().now_ms()
    }

    /// The request log, oldest first (bounded; control calls not included).
    pub fn requests(&self) -> Vec<RequestRecord> {
        control::requests(&self.shared)
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Report a device online or offline in the cloud (by name or did).
    pub fn set_device_online(&self, device: &str, online: bool) -> Result<(), CloudError> {
        control::set_device(&self.shared, device, Some(online), None)
    }

    /// Move a device to another region (by name or did).
    pub fn set_device_region(
        &self,
        device: &str,
        region: mijia_proto::cloud::Region,
    ) -> Result<(), CloudError> {
        control::set_device(&self.shared, device, None, Some(region.code()))
    }

    /// How many live (not expired) service-token sessions `user` has.
    pub fn live_sessions(&self, user: &str) -> Result<usize, CloudError> {
        let g = self.shared.lock();
        let ids = g.user_ids(Some(user))?;
        Ok(g.sessions
            .values()
            .filter(|s| ids.contains(&s.user_id) && s.expired.is_none())
            .count())
    }

    /// Stop the server and wait for it.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FakeCloud {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}
