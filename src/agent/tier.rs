//! Tiers: how much trust a tool call needs, decided by the server from the
//! device's type (the MIoT spec URN, or the model id for legacy devices),
//! the capability used and the specific service, property or action.
//!
//! | tier | needs |
//! |---|---|
//! | `read` | the device exposed |
//! | `control` | exposed, and a grant for the capability class on that device (asked for on first use, kept until it expires) |
//! | `sensitive` | exposed, and the user's confirmation on every call |
//! | `forbidden` | never: payments, transfers and purchases have no tool, and a request for one is refused |
//!
//! Sensitive: locks, cameras, gas and water valves, heaters (including bath
//! and water heaters and cooking heat: ovens, cookers, fryers), kettles,
//! doors, garage doors and gates, security systems (alarms, arming),
//! free-text speaker commands, the generic `set_property` / `run_action`
//! escape hatches, and scenes that include any of these. A device whose
//! type is unknown is treated as sensitive.
//!
//! Tool annotations ([`Hints`]) come from the same table ([`Capability::hints`])
//! and are only hints for clients; the server never reads them back.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much trust a call needs. Ordered: `Read < Control < Sensitive < Forbidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Reading state and specs.
    Read,
    /// Comfort controls: lights, fans, curtains, climate within range.
    Control,
    /// Needs confirmation on every call.
    Sensitive,
    /// Never allowed.
    Forbidden,
}

impl Tier {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Read => "read",
            Tier::Control => "control",
            Tier::Sensitive => "sensitive",
            Tier::Forbidden => "forbidden",
        }
    }

    /// Parses `read`, `control` or `sensitive` (the tiers a cap may name).
    pub fn parse_cap(text: &str) -> Result<Tier, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "read" | "read-only" | "readonly" => Ok(Tier::Read),
            "control" => Ok(Tier::Control),
            "sensitive" => Ok(Tier::Sensitive),
            other => Err(format!(
                "'{other}' is not a tier cap; use read, control or sensitive"
            )),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability class: what grants are given for, per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Reading state or specs.
    Read,
    /// Switching on and off.
    Power,
    /// Brightness, colour temperature, colour.
    Light,
    /// Target temperature and mode.
    Climate,
    /// Fan speed, mode, oscillation.
    Fan,
    /// Curtains and blinds.
    Cover,
    /// Robot vacuums.
    Vacuum,
    /// The generic property writer.
    Property,
    /// The generic action runner.
    Action,
    /// Scenes.
    Scene,
}

/// Tool annotations: hints for clients, never policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hints {
    /// `readOnlyHint`.
    pub read_only_hint: bool,
    /// `destructiveHint`.
    pub destructive_hint: bool,
    /// `idempotentHint`.
    pub idempotent_hint: bool,
    /// `openWorldHint`.
    pub open_world_hint: bool,
}

impl Capability {
    /// The kebab-case name used in grants and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Read => "read",
            Capability::Power => "power",
            Capability::Light => "light",
            Capability::Climate => "climate",
            Capability::Fan => "fan",
            Capability::Cover => "cover",
            Capability::Vacuum => "vacuum",
            Capability::Property => "property",
            Capability::Action => "action",
            Capability::Scene => "scene",
        }
    }

    /// The annotations of tools using this capability.
    pub fn hints(self) -> Hints {
        let (read_only, destructive, idempotent) = match self {
            Capability::Read => (true, false, true),
            Capability::Power
            | Capability::Light
            | Capability::Climate
            | Capability::Fan
            | Capability::Cover => (false, false, true),
            Capability::Vacuum => (false, false, false),
            Capability::Property | Capability::Action | Capability::Scene => (false, true, false),
        };
        Hints {
            read_only_hint: read_only,
            destructive_hint: destructive,
            idempotent_hint: idempotent,
            // Every tool acts only on the user's own home.
            open_world_hint: false,
        }
    }

    /// The lowest tier a call with this capability can have.
    pub fn base_tier(self) -> Tier {
        match self {
            Capability::Read => Tier::Read,
            Capability::Property | Capability::Action => Tier::Sensitive,
            _ => Tier::Control,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Device types (MIoT URN names) whose every write is sensitive.
pub const SENSITIVE_DEVICE_TYPES: &[&str] = &[
    "lock",
    "door-lock",
    "safe-box",
    "camera",
    "video-doorbell",
    "doorbell",
    "electronic-valve",
    "gas-valve",
    "water-valve",
    "valve",
    "heater",
    "bath-heater",
    "water-heater",
    "electric-blanket",
    "oven",
    "microwave-oven",
    "air-fryer",
    "cooker",
    "pressure-cooker",
    "induction-cooker",
    "integrated-stove",
    "multifunction-cooking-pot",
    "health-pot",
    "kettle",
    "door",
    "garage-door",
    "gate",
    "window-opener",
    "alertor",
    "security-system",
    "unknown",
];

/// Services whose writes are sensitive on any device (a gateway's alarm
/// arming, a lock or door service inside another device, camera control).
pub const SENSITIVE_SERVICES: &[&str] = &[
    "lock",
    "door",
    "garage-door",
    "arming",
    "security",
    "alarm-system",
    "camera-control",
    "valve",
    "ptc-bath-heater",
    "heater",
];

/// Actions and properties that are sensitive wherever they appear:
/// free-text commands to a speaker's assistant.
pub const SENSITIVE_ITEMS: &[&str] = &["execute-text-directive", "execute-text", "text-directive"];

/// Words that mark money moving. Anything named with one is forbidden.
pub const FORBIDDEN_WORDS: &[&str] = &[
    "pay",
    "payment",
    "payments",
    "purchase",
    "purchases",
    "buy",
    "order",
    "orders",
    "checkout",
    "transfer",
    "transfers",
    "recharge",
    "top-up",
    "topup",
    "wallet",
    "billing",
    "subscribe-service",
];

fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Whether a tool, action or property name is about moving money.
pub fn is_forbidden_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    FORBIDDEN_WORDS
        .iter()
        .any(|w| lower == *w || (w.contains('-') && lower.contains(w)))
        || words(name).any(|w| FORBIDDEN_WORDS.contains(&w.as_str()))
}

/// What a write touches, for the finer rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The service type name (`light`, `arming`, `intelligent-speaker`).
    pub service: Option<&'a str>,
    /// The property or action type name (`on`, `execute-text-directive`).
    pub item: Option<&'a str>,
}

/// The tier of one call: `device_type` from [`device_type_of`], the
/// capability, and what it touches.
pub fn classify(device_type: &str, capability: Capability, target: Target<'_>) -> Tier {
    if target.item.is_some_and(is_forbidden_name) || target.service.is_some_and(is_forbidden_name) {
        return Tier::Forbidden;
    }
    if capability == Capability::Read {
        return Tier::Read;
    }
    let sensitive = SENSITIVE_DEVICE_TYPES.contains(&device_type)
        || target
            .service
            .is_some_and(|s| SENSITIVE_SERVICES.contains(&s))
        || target.item.is_some_and(|i| SENSITIVE_ITEMS.contains(&i));
    if sensitive {
        return Tier::Sensitive;
    }
    capability.base_tier()
}

/// The device type of a model: the spec's URN type name when there is a
/// spec, else a guess from the model id's middle part (`yeelink.light.x` →
/// `light`), else `unknown`.
pub fn device_type_of(spec_type: Option<&str>, model: Option<&str>) -> String {
    if let Some(t) = spec_type.filter(|t| !t.is_empty()) {
        return t.to_string();
    }
    let Some(kind) = model.and_then(|m| m.split('.').nth(1)) else {
        return "unknown".into();
    };
    let kind = kind.to_ascii_lowercase();
    let mapped = match kind.as_str() {
        "plug" | "powerstrip" => "outlet",
        "airpurifier" | "airp" => "air-purifier",
        "aircondition" | "acpartner" => "air-conditioner",
        "waterheater" => "water-heater",
        "wifispeaker" => "speaker",
        "sensor_ht" => "temperature-humidity-sensor",
        "ceiling" | "bulb" | "lamp" => "light",
        "bhf_light" => "bath-heater",
        other => other,
    };
    mapped.to_string()
}

/// The tier of a scene: that of its most sensitive step.
pub fn scene_tier(steps: impl IntoIterator<Item = Tier>) -> Tier {
    steps.into_iter().fold(Tier::Control, Tier::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let t = Target::default();
        assert_eq!(classify("light", Capability::Read, t), Tier::Read);
        assert_eq!(classify("lock", Capability::Read, t), Tier::Read);
        assert_eq!(classify("light", Capability::Power, t), Tier::Control);
        assert_eq!(classify("light", Capability::Light, t), Tier::Control);
        for sensitive in [
            "lock",
            "camera",
            "heater",
            "kettle",
            "oven",
            "garage-door",
            "door",
            "electronic-valve",
            "water-heater",
            "unknown",
        ] {
            assert_eq!(
                classify(sensitive, Capability::Power, t),
                Tier::Sensitive,
                "{sensitive}"
            );
        }
        let arming = Target {
            service: Some("arming"),
            item: Some("arming-mode"),
        };
        assert_eq!(
            classify("gateway", Capability::Property, arming),
            Tier::Sensitive
        );
        let light = Target {
            service: Some("indicator-light"),
            item: Some("on"),
        };
        assert_eq!(classify("gateway", Capability::Power, light), Tier::Control);
        let say = Target {
            service: Some("intelligent-speaker"),
            item: Some("play-text"),
        };
        let command = Target {
            service: Some("intelligent-speaker"),
            item: Some("execute-text-directive"),
        };
        assert_eq!(classify("speaker", Capability::Vacuum, say), Tier::Control);
        assert_eq!(
            classify("speaker", Capability::Action, command),
            Tier::Sensitive
        );
        // Generic tools are sensitive even on a lamp.
        assert_eq!(classify("light", Capability::Property, t), Tier::Sensitive);
        let buy = Target {
            service: Some("consumables"),
            item: Some("buy-filter"),
        };
        assert_eq!(
            classify("air-purifier", Capability::Action, buy),
            Tier::Forbidden
        );
        assert_eq!(
            scene_tier([Tier::Control, Tier::Sensitive]),
            Tier::Sensitive
        );
        assert_eq!(scene_tier([]), Tier::Control);
    }

    #[test]
    fn forbidden_names() {
        for n in [
            "pay",
            "make_payment",
            "purchase_item",
            "buy",
            "transfer_money",
            "order-filter",
            "top-up",
        ] {
            assert!(is_forbidden_name(n), "{n}");
        }
        for n in ["turn_on", "set_light", "display", "border-light", "paylo"] {
            assert!(!is_forbidden_name(n), "{n}");
        }
    }

    #[test]
    fn hints_follow_the_table() {
        assert!(Capability::Read.hints().read_only_hint);
        assert!(!Capability::Power.hints().destructive_hint);
        assert!(Capability::Action.hints().destructive_hint);
        assert!(!Capability::Vacuum.hints().idempotent_hint);
        assert!([Capability::Read, Capability::Light, Capability::Scene]
            .iter()
            .all(|c| !c.hints().open_world_hint));
    }

    #[test]
    fn device_types() {
        assert_eq!(
            device_type_of(Some("heater"), Some("zhimi.heater.mc2")),
            "heater"
        );
        assert_eq!(device_type_of(None, Some("chuangmi.plug.v3")), "outlet");
        assert_eq!(
            device_type_of(None, Some("yeelink.light.ceiling1")),
            "light"
        );
        assert_eq!(device_type_of(None, None), "unknown");
    }
}
