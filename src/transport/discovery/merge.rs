//! Merging finds by did, and what is known about each device.
//!
//! [`Merger`] is plain state, no IO: it combines finds from every source
//! into one [`Discovered`] per did, adds what the caller already knows
//! (names, models and tokens, see [`KnownDevice`]), decides which devices
//! get a `miIO.info` call and with which token, and records the outcome.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mijia_proto::miio::Token;

use super::{Found, Source};
use crate::transport::DeviceInfo;

/// A device the caller already knows (from its registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// The user's name for it.
    pub name: String,
    /// Its did, if known.
    pub did: Option<u64>,
    /// Its last known address.
    pub ip: IpAddr,
    /// Its model, if known.
    pub model: Option<String>,
    /// Its token.
    pub token: Token,
}

/// Where a device's model came from, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelSource {
    /// The device said so in `miIO.info`.
    Info,
    /// The registry.
    Registry,
    /// The mDNS instance name (lossy: `-` may have been `.` or `-`).
    Mdns,
}

impl ModelSource {
    /// `info`, `registry` or `mdns`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSource::Info => "info",
            ModelSource::Registry => "registry",
            ModelSource::Mdns => "mdns",
        }
    }
}

/// Where a device's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// The device revealed it in its hello reply (not yet paired).
    Revealed,
    /// The registry.
    Registry,
    /// The caller offered it ([`super::DiscoverOptions::tokens`]) and the
    /// device answered `miIO.info` with it.
    Given,
}

impl TokenSource {
    /// `revealed`, `registry` or `given`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Revealed => "revealed",
            TokenSource::Registry => "registry",
            TokenSource::Given => "given",
        }
    }
}

/// The `miIO.info` step for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoState {
    /// No token to ask with (or info disabled).
    NotTried,
    /// A call is running or queued.
    Pending,
    /// The device answered.
    Done {
        /// Firmware version.
        firmware: Option<String>,
        /// MAC address.
        mac: Option<String>,
    },
    /// No usable answer.
    Failed(String),
}

/// Everything learnt about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The device id.
    pub did: u64,
    /// Its address (the first one seen).
    pub addr: SocketAddr,
    /// How it was found, in the order the sources first saw it.
    pub sources: Vec<Source>,
    /// Its model, if known.
    pub model: Option<String>,
    /// Where [`model`](Self::model) came from.
    pub model_source: Option<ModelSource>,
    /// A token that works (or is expected to) for this device.
    pub token: Option<Token>,
    /// Where [`token`](Self::token) came from.
    pub token_source: Option<TokenSource>,
    /// The registry name, if the registry knows it.
    pub name: Option<String>,
    /// The device clock from its hello reply.
    pub stamp: Option<u32>,
    /// The `miIO.info` step.
    pub info: InfoState,
    /// When it was first found, from the start of discovery.
    pub first_seen: Duration,
}

impl Discovered {
    /// Whether nothing more is expected for it (no `miIO.info` running).
    pub fn is_settled(&self) -> bool {
        self.info != InfoState::Pending
    }

    /// Whether the device revealed its own token.
    pub fn revealed_token(&self) -> Option<Token> {
        self.token
            .filter(|_| self.token_source == Some(TokenSource::Revealed))
    }

    fn set_model(&mut self, model: Option<String>, source: ModelSource) {
        let Some(model) = model.filter(|m| !m.is_empty()) else {
            return;
        };
        if self.model_source.is_none_or(|cur| source <= cur) {
            self.model = Some(model);
            self.model_source = Some(source);
        }
    }
}

/// A `miIO.info` call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoJob {
    /// The device.
    pub did: u64,
    /// Where it is.
    pub addr: SocketAddr,
    /// The token to try.
    pub token: Token,
    /// Where the token came from.
    pub source: TokenSource,
}

/// The merge state.
#[derive(Debug, Default)]
pub struct Merger {
    known: Vec<KnownDevice>,
    given: Vec<Token>,
    info: bool,
    devices: Vec<Discovered>,
    by_did: HashMap<u64, usize>,
}

/// What a merge step changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing new.
    None,
    /// A new device (index into [`Merger::devices`]).
    New(usize),
    /// A known device changed.
    Updated(usize),
}

impl Merger {
    /// A merger that knows these devices, may try `given` tokens on
    /// devices without one, and asks for `miIO.info` when `info` is set.
    pub fn new(known: Vec<KnownDevice>, given: Vec<Token>, info: bool) -> Merger {
        Merger {
            known,
            given,
            info,
            ..Merger::default()
        }
    }

    /// All devices, in the order they were found.
    pub fn devices(&self) -> &[Discovered] {
        &self.devices
    }

    /// The devices, consumed.
    pub fn into_devices(self) -> Vec<Discovered> {
        self.devices
    }

    /// A device by did.
    pub fn get(&self, did: u64) -> Option<&Discovered> {
        self.by_did.get(&did).map(|i| &self.devices[*i])
    }

    fn known_for(&self, did: u64, ip: IpAddr) -> Option<&KnownDevice> {
        self.known
            .iter()
            .find(|k| k.did == Some(did))
            .or_else(|| self.known.iter().find(|k| k.did.is_none() && k.ip == ip))
    }

    /// Add a find. Returns what changed and, for a device that just got a
    /// token to try, the `miIO.info` call to make.
    pub fn add(&mut self, f: Found) -> (Change, Option<InfoJob>) {
        if let Some(&i) = self.by_did.get(&f.did) {
            let d = &mut self.devices[i];
            let before = d.clone();
            if !d.sources.contains(&f.source) {
                d.sources.push(f.source);
            }
            if d.stamp.is_none() {
                d.stamp = f.stamp;
            }
            if f.source == Source::Mdns {
                d.set_model(f.model, ModelSource::Mdns);
            }
            let mut job = None;
            if let Some(t) = f.token {
                if d.token_source != Some(TokenSource::Revealed) && d.token != Some(t) {
                    // A revealed token beats any other: it is the device's own.
                    d.token = Some(t);
                    d.token_source = Some(TokenSource::Revealed);
                    if self.info {
                        // Any call still running used another token; its
                        // result will be ignored.
                        d.info = InfoState::Pending;
                        job = Some(InfoJob {
                            did: d.did,
                            addr: d.addr,
                            token: t,
                            source: TokenSource::Revealed,
                        });
                    }
                }
            }
            let change = if *d == before {
                Change::None
            } else {
                Change::Updated(i)
            };
            return (change, job);
        }
        let known = self.known_for(f.did, f.addr.ip()).cloned();
        let mut d = Discovered {
            did: f.did,
            addr: f.addr,
            sources: vec![f.source],
            model: None,
            model_source: None,
            token: None,
            token_source: None,
            name: known.as_ref().map(|k| k.name.clone()),
            stamp: f.stamp,
            info: InfoState::NotTried,
            first_seen: f.after,
        };
        if f.source == Source::Mdns {
            d.set_model(f.model, ModelSource::Mdns);
        }
        if let Some(k) = &known {
            d.set_model(k.model.clone(), ModelSource::Registry);
        }
        let candidate = match (f.token, &known, self.given.first()) {
            (Some(t), _, _) => Some((t, TokenSource::Revealed)),
            (None, Some(k), _) => Some((k.token, TokenSource::Registry)),
            (None, None, Some(t)) => Some((*t, TokenSource::Given)),
            (None, None, None) => None,
        };
        if let Some((t, src)) = candidate {
            if src != TokenSource::Given {
                d.token = Some(t);
                d.token_source = Some(src);
            }
        }
        let job = candidate.filter(|_| self.info).map(|(token, source)| {
            d.info = InfoState::Pending;
            InfoJob {
                did: d.did,
                addr: d.addr,
                token,
                source,
            }
        });
        let i = self.devices.len();
        self.by_did.insert(d.did, i);
        self.devices.push(d);
        (Change::New(i), job)
    }

    /// Record the outcome of a `miIO.info` call. A given token that failed
    /// is tried with the next given token, if any (returned as a new job).
    pub fn info_result(
        &mut self,
        job: &InfoJob,
        result: Result<DeviceInfo, String>,
    ) -> (Change, Option<InfoJob>) {
        let Some(&i) = self.by_did.get(&job.did) else {
            return (Change::None, None);
        };
        let d = &mut self.devices[i];
        if d.token.is_some() && d.token != Some(job.token) {
            // A better token arrived meanwhile; its own call decides.
            return (Change::None, None);
        }
        let mut next = None;
        match result {
            Ok(info) => {
                d.set_model(info.model.clone(), ModelSource::Info);
                d.token = Some(job.token);
                d.token_source = Some(job.source);
                d.info = InfoState::Done {
                    firmware: info.fw_ver,
                    mac: info.mac,
                };
            }
            Err(e) if job.source == TokenSource::Given => {
                let pos = self.given.iter().position(|t| *t == job.token);
                match pos.and_then(|p| self.given.get(p + 1)) {
                    Some(t) => {
                        next = Some(InfoJob {
                            token: *t,
                            ..job.clone()
                        });
                    }
                    None => {
                        d.info = InfoState::Failed(format!(
                            "no given token works ({e}); the device needs its own token"
                        ));
                    }
                }
            }
            Err(e) => d.info = InfoState::Failed(e),
        }
        (Change::Updated(i), next)
    }

    /// Mark every pending call as cut off by the deadline; returns the
    /// indexes changed.
    pub fn expire(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, d) in self.devices.iter_mut().enumerate() {
            if d.info == InfoState::Pending {
                d.info = InfoState::Failed("no miIO.info answer before the timeout".into());
                out.push(i);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn found(did: u64, host: u8, source: Source) -> Found {
        Found {
            did,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 54321),
            source,
            model: None,
            token: None,
            stamp: Some(5),
            after: Duration::ZERO,
        }
    }

    #[test]
    fn merges_sources_by_did() {
        let mut m = Merger::new(Vec::new(), Vec::new(), true);
        assert_eq!(m.add(found(1, 2, Source::Sweep)), (Change::New(0), None));
        assert_eq!(m.add(found(1, 2, Source::Sweep)), (Change::None, None));
        assert_eq!(
            m.add(found(1, 2, Source::Broadcast)),
            (Change::Updated(0), None)
        );
        let mut f = found(1, 2, Source::Mdns);
        f.model = Some("yeelink.light.color1".into());
        assert_eq!(m.add(f).0, Change::Updated(0));
        let d = m.get(1).cloned().unwrap_or_else(|| panic!("device 1"));
        assert_eq!(
            d.sources,
            vec![Source::Sweep, Source::Broadcast, Source::Mdns]
        );
        assert_eq!(d.model_source, Some(ModelSource::Mdns));
        assert!(d.is_settled());
        assert_eq!(m.add(found(2, 3, Source::Broadcast)).0, Change::New(1));
        assert_eq!(m.devices().len(), 2);
    }

    #[test]
    fn tokens_and_models_by_trust() {
        let token = Token::from_bytes([7; 16]);
        let known = KnownDevice {
            name: "Desk".into(),
            did: Some(1),
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
            model: Some("reg.model.v1".into()),
            token,
        };
        let mut m = Merger::new(vec![known], Vec::new(), true);
        let mut f = found(1, 2, Source::Mdns);
        f.model = Some("mdns.model.v1".into());
        let (change, job) = m.add(f);
        assert_eq!(change, Change::New(0));
        let job = job.unwrap_or_else(|| panic!("an info job"));
        assert_eq!(job.source, TokenSource::Registry);
        let d = &m.devices()[0];
        assert_eq!(d.name.as_deref(), Some("Desk"));
        assert_eq!(d.model.as_deref(), Some("reg.model.v1"));
        assert!(!d.is_settled());
        let info = DeviceInfo::from_value(serde_json::json!({"model": "real.model.v2"}))
            .unwrap_or_else(|| panic!("info"));
        m.info_result(&job, Ok(info));
        let d = &m.devices()[0];
        assert_eq!(d.model.as_deref(), Some("real.model.v2"));
        assert_eq!(d.model_source, Some(ModelSource::Info));
        assert!(d.is_settled());

        // A revealed token.
        let mut f = found(3, 4, Source::Broadcast);
        f.token = Some(token);
        let (_, job) = m.add(f);
        assert_eq!(job.map(|j| j.source), Some(TokenSource::Revealed));
        assert_eq!(m.devices()[1].revealed_token(), Some(token));
        assert_eq!(m.expire(), vec![1]);
        assert!(matches!(m.devices()[1].info, InfoState::Failed(_)));
    }

    #[test]
    fn given_tokens_are_tried_in_turn() {
        let (a, b) = (Token::from_bytes([1; 16]), Token::from_bytes([2; 16]));
        let mut m = Merger::new(Vec::new(), vec![a, b], true);
        let (_, job) = m.add(found(5, 2, Source::Sweep));
        let job = job.unwrap_or_else(|| panic!("job"));
        assert_eq!((job.token, job.source), (a, TokenSource::Given));
        assert_eq!(m.devices()[0].token, None);
        let (_, next) = m.info_result(&job, Err("no reply".into()));
        let next = next.unwrap_or_else(|| panic!("second token"));
        assert_eq!(next.token, b);
        let (_, last) = m.info_result(&next, Err("no reply".into()));
        assert_eq!(last, None);
        assert!(matches!(m.devices()[0].info, InfoState::Failed(_)));
        assert_eq!(m.devices()[0].token, None);
    }
}
