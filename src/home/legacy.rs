//! Legacy (pre-MIoT) miIO vocabularies, as small per-model tables.
//!
//! Before MIoT every vendor had its own JSON-RPC words: properties are read
//! with `get_prop ["power","bright"]` (values in request order) or from a
//! status object (`get_status` → `[{"state":8,…}]`), and each setting has
//! its own setter method (`set_power ["on"]`, `set_ct_abx [k,"smooth",500]`).
//! This module maps friendly names onto that vocabulary for the four
//! families described in `miot-specs/legacy-miio.md`:
//!
//! | family | models | read |
//! |---|---|---|
//! | Yeelight lamps | `yeelink.light.*` without a MIoT spec (mono, ct, colour, ceiling tables) | `get_prop`, values are strings |
//! | Chuangmi plugs | `chuangmi.plug.m1`/`m3`/`v2`/`hmi205`/`hmi206`, `hmi208`, `v1`, `v3` | `get_prop` (+ `get_power` on v3) |
//! | Air purifiers | `zhimi.airpurifier.m1`/`m2`/`v1`–`v7`/`ma1`/`ma2`/`sa1`/`sa2`/`mc1`/`mc2` | `get_prop` in batches of 15 |
//! | Robot vacuums | `rockrobo.vacuum.v1`, `roborock.vacuum.*` | `get_status`, `get_consumable` objects |
//!
//! Each [`LegacyProp`] says where its value comes from ([`Source`]), how it
//! is typed on the wire and for people ([`Kind`]: `"on"`/`"off"` ↔ bool,
//! `temp_dec` ÷ 10, numeric strings → numbers, codes with descriptions),
//! its unit, and how it is written ([`Setter`]). [`LegacyAction`]s are the
//! parameterless or nearly parameterless commands (`app_start`, `toggle`,
//! `reset_filter1`).
//!
//! Names follow the MIoT style (lower case, `-`); every property also
//! answers to its raw vocabulary key (`temp_dec`, `bright`) and a few
//! aliases (`brightness`, `on`). Lookups ignore case and treat `_` as `-`.
//!
//! This module is pure: it builds request params and decodes replies, and
//! never sends anything (the [`Device`](super::device::Device) facade does).
//! Models not listed here can still be driven with `raw`.

use serde_json::{json, Value};

use mijia_proto::miot::{ItemKind, NameError};

/// How many names one `get_prop` request carries at most.
pub const GET_PROP_BATCH: usize = 15;

/// Where a property's value is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A `get_prop` name; the reply is a list in request order.
    Prop(&'static str),
    /// A field of the object a method returns (`get_status` → `[{…}]`).
    Field {
        /// The getter method (no params).
        method: &'static str,
        /// The object key.
        key: &'static str,
    },
    /// An element of the list a method returns (`get_power` → `[300]`).
    Index {
        /// The getter method (no params).
        method: &'static str,
        /// The list position.
        index: usize,
    },
}

impl Source {
    /// The vocabulary key, as shown to users (`bright`, `get_status.state`).
    pub fn key(&self) -> String {
        match self {
            Source::Prop(k) => (*k).to_string(),
            Source::Field { method, key } => format!("{method}.{key}"),
            Source::Index { method, index } => format!("{method}[{index}]"),
        }
    }

    fn raw_key(&self) -> Option<&'static str> {
        match self {
            Source::Prop(k) | Source::Field { key: k, .. } => Some(k),
            Source::Index { .. } => None,
        }
    }
}

/// How a value is typed on the wire and shown to people.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `"on"` / `"off"` on the wire, a bool for people.
    OnOff,
    /// A JSON bool on the wire (also accepts `0`/`1`, `"on"`/`"off"`).
    Bool,
    /// `"1"` / `"0"` (or `1` / `0`) on the wire, a bool for people.
    Flag01,
    /// An integer (Yeelight sends it as a decimal string).
    Int {
        /// Smallest value accepted when writing.
        min: i64,
        /// Largest value accepted when writing.
        max: i64,
    },
    /// A number divided by `divisor` for people (`temp_dec` 186 → 18.6).
    /// Read-only.
    Scaled {
        /// Wire value ÷ divisor = shown value.
        divisor: f64,
    },
    /// One of a few words (`"auto"`, `"silent"`…).
    Choice(&'static [&'static str]),
    /// An integer code with a description per value (`8` = charging).
    Codes(&'static [(i64, &'static str)]),
    /// A colour as the integer `0xRRGGBB` (Yeelight: a decimal string).
    Rgb,
    /// Free text.
    Text,
}

/// How a property is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setter {
    /// Read-only.
    None,
    /// `method [value]`.
    Value(&'static str),
    /// `method [value, "smooth", ms]` (Yeelight transitions).
    Smooth(&'static str, u32),
    /// Separate methods without params for true and false
    /// (`set_usb_on` / `set_usb_off`).
    OnOffMethods(&'static str, &'static str),
    /// Yeelight device settings: `set_ps [cfg, "1"|"0"]`.
    Ps(&'static str),
}

/// One property of a legacy model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegacyProp {
    /// Friendly name, lower case with `-` (`brightness`, `temperature`).
    pub name: &'static str,
    /// Other accepted names (the raw key is always accepted too).
    pub aliases: &'static [&'static str],
    /// Where the value is read from.
    pub source: Source,
    /// Wire and display typing.
    pub kind: Kind,
    /// Unit symbol for display (`%`, `°C`, `K`).
    pub unit: Option<&'static str>,
    /// How it is written.
    pub setter: Setter,
    /// What it is, in words.
    pub description: &'static str,
}

const fn prop(name: &'static str, key: &'static str, kind: Kind) -> LegacyProp {
    LegacyProp {
        name,
        aliases: &[],
        source: Source::Prop(key),
        kind,
        unit: None,
        setter: Setter::None,
        description: "",
    }
}

const fn field(
    name: &'static str,
    method: &'static str,
    key: &'static str,
    kind: Kind,
) -> LegacyProp {
    LegacyProp {
        name,
        aliases: &[],
        source: Source::Field { method, key },
        kind,
        unit: None,
        setter: Setter::None,
        description: "",
    }
}

impl LegacyProp {
    const fn unit(mut self, u: &'static str) -> Self {
        self.unit = Some(u);
        self
    }
    const fn set(mut self, s: Setter) -> Self {
        self.setter = s;
        self
    }
    const fn alias(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
    const fn about(mut self, d: &'static str) -> Self {
        self.description = d;
        self
    }
}

/// Parameters a legacy action takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionParams {
    /// `[]`.
    None,
    /// Always these strings (`find_me [""]`).
    Fixed(&'static [&'static str]),
    /// One word from the list (`reset_consumable ["filter_work_time"]`).
    OneOf(&'static [&'static str]),
}

/// A command of a legacy model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyAction {
    /// Friendly name (`start`, `dock`).
    pub name: &'static str,
    /// Other accepted names (the method is always accepted too).
    pub aliases: &'static [&'static str],
    /// The method sent.
    pub method: &'static str,
    /// Its parameters.
    pub params: ActionParams,
    /// What it does.
    pub description: &'static str,
}

const fn act(name: &'static str, method: &'static str, description: &'static str) -> LegacyAction {
    LegacyAction {
        name,
        aliases: &[],
        method,
        params: ActionParams::None,
        description,
    }
}

/// The vocabulary of one family or model.
#[derive(Debug, PartialEq)]
pub struct LegacyModel {
    /// Short id of the table (`yeelight-color`, `chuangmi-plug-v3`).
    pub id: &'static str,
    /// What it covers, in words.
    pub label: &'static str,
    /// Properties, in status order.
    pub props: &'static [LegacyProp],
    /// Commands.
    pub actions: &'static [LegacyAction],
    /// Names per `get_prop` request.
    pub batch: usize,
}

// ---------------------------------------------------------------- Yeelight

const ONOFF: Kind = Kind::OnOff;
const PERCENT_1: Kind = Kind::Int { min: 1, max: 100 };
const PERCENT_0: Kind = Kind::Int { min: 0, max: 100 };

const Y_POWER: LegacyProp = prop("power", "power", ONOFF)
    .alias(&["on"])
    .set(Setter::Value("set_power"))
    .about("lamp on/off");
const Y_BRIGHT: LegacyProp = prop("brightness", "bright", PERCENT_1)
    .unit("%")
    .set(Setter::Value("set_bright"))
    .about("brightness 1-100");
const Y_NAME: LegacyProp = prop("name", "name", Kind::Text)
    .set(Setter::Value("set_name"))
    .about("user-set name");
const Y_LAN: LegacyProp = prop("lan-ctrl", "lan_ctrl", Kind::Flag01)
    .set(Setter::Ps("cfg_lan_ctrl"))
    .about("LAN developer mode");
const Y_SAVE: LegacyProp = prop("save-state", "save_state", Kind::Flag01)
    .set(Setter::Ps("cfg_save_state"))
    .about("remember state across power cycles");
const Y_DELAY: LegacyProp = prop("delayoff", "delayoff", Kind::Int { min: 0, max: 1440 })
    .unit("min")
    .about("minutes until auto-off, 0 = none");
const Y_FLOWING: LegacyProp = prop("flowing", "flowing", Kind::Flag01).about("colour flow running");
const Y_FLOW_PARAMS: LegacyProp =
    prop("flow-params", "flow_params", Kind::Text).about("colour flow parameters");
const Y_MUSIC: LegacyProp = prop("music-on", "music_on", Kind::Flag01).about("music mode");
const Y_COLOR_MODE: LegacyProp = prop(
    "color-mode",
    "color_mode",
    Kind::Codes(&[(1, "rgb"), (2, "color temperature"), (3, "hsv")]),
)
.about("current colour mode");
const Y_HUE: LegacyProp = prop("hue", "hue", Kind::Int { min: 0, max: 359 }).about("HSV hue 0-359");
const Y_SAT: LegacyProp = prop("saturation", "sat", PERCENT_0)
    .unit("%")
    .about("HSV saturation 0-100");
const Y_RGB: LegacyProp = prop("color", "rgb", Kind::Rgb)
    .alias(&["rgb-color"])
    .set(Setter::Value("set_rgb"))
    .about("colour as 0xRRGGBB");

const fn y_ct(min: i64, max: i64) -> LegacyProp {
    prop("color-temperature", "ct", Kind::Int { min, max })
        .alias(&["ct", "colour-temperature"])
        .unit("K")
        .set(Setter::Smooth("set_ct_abx", 500))
        .about("colour temperature in kelvin")
}

const Y_ACTIONS: &[LegacyAction] = &[
    act("toggle", "toggle", "switch the lamp on or off"),
    act(
        "set-default",
        "set_default",
        "save the current state as the power-on default",
    ),
];

static YEELIGHT_MONO: LegacyModel = LegacyModel {
    id: "yeelight-mono",
    label: "Yeelight white lamp (yeelink.light.mono*)",
    props: &[
        Y_POWER,
        Y_BRIGHT,
        Y_NAME,
        Y_LAN,
        Y_SAVE,
        Y_DELAY,
        Y_FLOWING,
        Y_FLOW_PARAMS,
        Y_MUSIC,
    ],
    actions: Y_ACTIONS,
    batch: GET_PROP_BATCH,
};

static YEELIGHT_CT: LegacyModel = LegacyModel {
    id: "yeelight-ct",
    label: "Yeelight colour-temperature lamp (yeelink.light.ct*)",
    props: &[
        Y_POWER,
        Y_BRIGHT,
        y_ct(2700, 6500),
        Y_COLOR_MODE,
        Y_NAME,
        Y_LAN,
        Y_SAVE,
        Y_DELAY,
        Y_FLOWING,
        Y_FLOW_PARAMS,
        Y_MUSIC,
    ],
    actions: Y_ACTIONS,
    batch: GET_PROP_BATCH,
};

static YEELIGHT_COLOR: LegacyModel = LegacyModel {
    id: "yeelight-color",
    label: "Yeelight colour lamp (yeelink.light.color*, strip*, bslamp*, other yeelink.light.*)",
    props: &[
        Y_POWER,
        Y_BRIGHT,
        y_ct(1700, 6500),
        Y_RGB,
        Y_HUE,
        Y_SAT,
        Y_COLOR_MODE,
        Y_NAME,
        Y_LAN,
        Y_SAVE,
        Y_DELAY,
        Y_FLOWING,
        Y_FLOW_PARAMS,
        Y_MUSIC,
    ],
    actions: Y_ACTIONS,
    batch: GET_PROP_BATCH,
};

static YEELIGHT_CEILING: LegacyModel = LegacyModel {
    id: "yeelight-ceiling",
    label: "Yeelight ceiling light (yeelink.light.ceiling*)",
    props: &[
        Y_POWER,
        Y_BRIGHT,
        y_ct(2700, 6500),
        Y_COLOR_MODE,
        prop(
            "active-mode",
            "active_mode",
            Kind::Codes(&[(0, "daylight"), (1, "moonlight")]),
        )
        .about("daylight or moonlight mode"),
        prop("nightlight-brightness", "nl_br", PERCENT_0)
            .unit("%")
            .about("moonlight brightness"),
        prop("bg-power", "bg_power", ONOFF).about("background light on/off"),
        prop("bg-brightness", "bg_bright", PERCENT_0)
            .unit("%")
            .about("background light brightness"),
        prop(
            "bg-color-temperature",
            "bg_ct",
            Kind::Int {
                min: 1700,
                max: 6500,
            },
        )
        .unit("K")
        .about("background light colour temperature"),
        prop("bg-color", "bg_rgb", Kind::Rgb).about("background light colour"),
        Y_NAME,
        Y_LAN,
        Y_SAVE,
        Y_DELAY,
        Y_FLOWING,
        Y_FLOW_PARAMS,
        Y_MUSIC,
    ],
    actions: Y_ACTIONS,
    batch: GET_PROP_BATCH,
};

// ------------------------------------------------------------------- Plugs

const PLUG_TEMP: LegacyProp = prop(
    "temperature",
    "temperature",
    Kind::Int { min: -40, max: 125 },
)
.unit("°C")
.about("internal temperature");
const PLUG_USB_BOOL: LegacyProp = prop("usb", "usb_on", Kind::Bool)
    .alias(&["usb-power"])
    .set(Setter::OnOffMethods("set_usb_on", "set_usb_off"))
    .about("USB port power");

static PLUG_BASIC: LegacyModel = LegacyModel {
    id: "chuangmi-plug",
    label: "Chuangmi plug (chuangmi.plug.m1, m3, v2, hmi205, hmi206)",
    props: &[
        prop("power", "power", ONOFF)
            .alias(&["on"])
            .set(Setter::Value("set_power"))
            .about("socket on/off"),
        PLUG_TEMP,
    ],
    actions: &[],
    batch: GET_PROP_BATCH,
};

static PLUG_HMI208: LegacyModel = LegacyModel {
    id: "chuangmi-plug-hmi208",
    label: "Chuangmi plug with USB (chuangmi.plug.hmi208)",
    props: &[
        prop("power", "power", ONOFF)
            .alias(&["on"])
            .set(Setter::Value("set_power"))
            .about("socket on/off"),
        PLUG_USB_BOOL,
        PLUG_TEMP,
    ],
    actions: &[],
    batch: GET_PROP_BATCH,
};

static PLUG_V1: LegacyModel = LegacyModel {
    id: "chuangmi-plug-v1",
    label: "Chuangmi plug v1 (chuangmi.plug.v1)",
    props: &[
        prop("power", "on", Kind::Bool)
            .alias(&["on"])
            .set(Setter::OnOffMethods("set_on", "set_off"))
            .about("socket on/off"),
        PLUG_USB_BOOL,
        PLUG_TEMP,
    ],
    actions: &[],
    batch: GET_PROP_BATCH,
};

static PLUG_V3: LegacyModel = LegacyModel {
    id: "chuangmi-plug-v3",
    label: "Chuangmi plug v3 (chuangmi.plug.v3)",
    props: &[
        prop("power", "on", Kind::Bool)
            .alias(&["on"])
            .set(Setter::Value("set_power"))
            .about("socket on/off"),
        PLUG_USB_BOOL,
        PLUG_TEMP,
        prop("wifi-led", "wifi_led", ONOFF)
            .alias(&["led"])
            .set(Setter::Value("set_wifi_led"))
            .about("status LED"),
        LegacyProp {
            name: "load-power",
            aliases: &["electric-power"],
            source: Source::Index {
                method: "get_power",
                index: 0,
            },
            kind: Kind::Scaled { divisor: 100.0 },
            unit: Some("W"),
            setter: Setter::None,
            description: "load power",
        },
    ],
    actions: &[],
    batch: GET_PROP_BATCH,
};

// ----------------------------------------------------------- Air purifiers

const PURIFIER_MODES: &[&str] = &[
    "auto", "silent", "favorite", "idle", "medium", "high", "strong", "low",
];

static PURIFIER: LegacyModel = LegacyModel {
    id: "zhimi-airpurifier",
    label: "Xiaomi air purifier (zhimi.airpurifier.m1, m2, v1-v7, ma1, ma2, sa1, sa2, mc1, mc2)",
    props: &[
        prop("power", "power", ONOFF)
            .alias(&["on"])
            .set(Setter::Value("set_power"))
            .about("purifier on/off"),
        prop("aqi", "aqi", Kind::Int { min: 0, max: 1000 })
            .alias(&["pm2.5-density", "pm25"])
            .unit("μg/m3")
            .about("PM2.5 now"),
        prop(
            "average-aqi",
            "average_aqi",
            Kind::Int { min: 0, max: 1000 },
        )
        .unit("μg/m3")
        .about("PM2.5 average"),
        prop("humidity", "humidity", PERCENT_0)
            .alias(&["relative-humidity"])
            .unit("%")
            .about("relative humidity"),
        prop("temperature", "temp_dec", Kind::Scaled { divisor: 10.0 })
            .unit("°C")
            .about("temperature (sent × 10)"),
        prop("mode", "mode", Kind::Choice(PURIFIER_MODES))
            .set(Setter::Value("set_mode"))
            .about("operation mode"),
        prop(
            "favorite-level",
            "favorite_level",
            Kind::Int { min: 0, max: 17 },
        )
        .set(Setter::Value("set_level_favorite"))
        .about("fan level in favorite mode"),
        prop("filter-life", "filter1_life", PERCENT_0)
            .unit("%")
            .about("filter life left"),
        prop(
            "filter-hours-used",
            "f1_hour_used",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("h")
        .about("filter hours used"),
        prop(
            "filter-hours",
            "f1_hour",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("h")
        .about("filter rated hours"),
        prop(
            "use-time",
            "use_time",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("s")
        .about("total run time"),
        prop(
            "motor-speed",
            "motor1_speed",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("rpm")
        .about("motor speed"),
        prop(
            "motor2-speed",
            "motor2_speed",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("rpm")
        .about("second motor speed"),
        prop(
            "purify-volume",
            "purify_volume",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("m³")
        .about("air purified"),
        prop("led", "led", ONOFF)
            .set(Setter::Value("set_led"))
            .about("display LED"),
        prop(
            "led-brightness",
            "led_b",
            Kind::Codes(&[(0, "bright"), (1, "dim"), (2, "off")]),
        )
        .set(Setter::Value("set_led_b"))
        .about("LED brightness"),
        prop(
            "illuminance",
            "bright",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .about("ambient light sensor"),
        prop("buzzer", "buzzer", ONOFF)
            .set(Setter::Value("set_buzzer"))
            .about("buzzer on/off"),
        prop("child-lock", "child_lock", ONOFF)
            .set(Setter::Value("set_child_lock"))
            .about("physical buttons locked"),
        prop("volume", "volume", PERCENT_0)
            .unit("%")
            .set(Setter::Value("set_volume"))
            .about("buzzer volume"),
        prop("rfid-product-id", "rfid_product_id", Kind::Text).about("filter RFID product"),
        prop("rfid-tag", "rfid_tag", Kind::Text).about("filter RFID tag"),
        prop(
            "learn-mode",
            "act_sleep",
            Kind::Choice(&["single", "close"]),
        )
        .set(Setter::Value("set_act_sleep"))
        .about("sleep learning mode"),
        prop("sleep-mode", "sleep_mode", Kind::Text).about("sleep mode state"),
        prop(
            "sleep-time",
            "sleep_time",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .unit("s")
        .about("sleep mode counter"),
        prop(
            "sleep-data-num",
            "sleep_data_num",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
        )
        .about("sleep mode samples"),
        prop(
            "app-extra",
            "app_extra",
            Kind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
        )
        .set(Setter::Value("set_app_extra"))
        .about("vendor flag"),
        prop("auto-detect", "act_det", ONOFF)
            .set(Setter::Value("set_act_det"))
            .about("keep measuring while off"),
        prop("button-pressed", "button_pressed", Kind::Text).about("last physical button"),
    ],
    actions: &[act(
        "reset-filter",
        "reset_filter1",
        "reset the filter life counter",
    )],
    batch: GET_PROP_BATCH,
};

// ----------------------------------------------------------- Robot vacuums

const VACUUM_STATES: &[(i64, &str)] = &[
    (1, "starting"),
    (2, "charger disconnected"),
    (3, "idle"),
    (4, "remote control"),
    (5, "cleaning"),
    (6, "returning home"),
    (7, "manual"),
    (8, "charging"),
    (9, "charging problem"),
    (10, "paused"),
    (11, "spot cleaning"),
    (12, "error"),
    (13, "shutting down"),
    (14, "updating"),
    (15, "docking"),
    (16, "going to target"),
    (17, "zoned cleaning"),
    (18, "segment cleaning"),
    (100, "charging complete"),
];

const CONSUMABLES: &[&str] = &[
    "main_brush_work_time",
    "side_brush_work_time",
    "filter_work_time",
    "sensor_dirty_time",
];

const SECONDS: Kind = Kind::Int {
    min: 0,
    max: i64::MAX,
};

static VACUUM: LegacyModel = LegacyModel {
    id: "roborock-vacuum",
    label: "Roborock / Mi robot vacuum (rockrobo.vacuum.v1, roborock.vacuum.*)",
    props: &[
        field("state", "get_status", "state", Kind::Codes(VACUUM_STATES)).about("what it is doing"),
        field("battery", "get_status", "battery", PERCENT_0)
            .alias(&["battery-level"])
            .unit("%")
            .about("battery level"),
        field(
            "fan-power",
            "get_status",
            "fan_power",
            Kind::Int { min: 1, max: 105 },
        )
        .alias(&["fan-speed"])
        .unit("%")
        .set(Setter::Value("set_custom_mode"))
        .about("suction power"),
        field("clean-time", "get_status", "clean_time", SECONDS)
            .unit("s")
            .about("duration of the current or last clean"),
        field(
            "clean-area",
            "get_status",
            "clean_area",
            Kind::Scaled {
                divisor: 1_000_000.0,
            },
        )
        .unit("m²")
        .about("area of the current or last clean (sent in mm²)"),
        field("error-code", "get_status", "error_code", SECONDS).about("0 = no error"),
        field("in-cleaning", "get_status", "in_cleaning", SECONDS)
            .about("0 no, 1 cleaning, 2 zoned, 3 segment"),
        field("dnd-enabled", "get_status", "dnd_enabled", Kind::Flag01).about("do-not-disturb"),
        field("map-present", "get_status", "map_present", Kind::Flag01).about("a map exists"),
        field("water-box", "get_status", "water_box_status", Kind::Flag01)
            .about("water box attached"),
        field(
            "main-brush-time",
            "get_consumable",
            "main_brush_work_time",
            SECONDS,
        )
        .unit("s")
        .about("main brush use"),
        field(
            "side-brush-time",
            "get_consumable",
            "side_brush_work_time",
            SECONDS,
        )
        .unit("s")
        .about("side brush use"),
        field("filter-time", "get_consumable", "filter_work_time", SECONDS)
            .unit("s")
            .about("filter use"),
        field(
            "sensor-dirty-time",
            "get_consumable",
            "sensor_dirty_time",
            SECONDS,
        )
        .unit("s")
        .about("time since sensors were cleaned"),
    ],
    actions: &[
        act("start", "app_start", "start cleaning"),
        act("stop", "app_stop", "stop cleaning"),
        act("pause", "app_pause", "pause cleaning"),
        act("spot", "app_spot", "clean around the current spot"),
        LegacyAction {
            name: "dock",
            aliases: &["charge", "home", "return-home"],
            method: "app_charge",
            params: ActionParams::None,
            description: "go back to the dock",
        },
        LegacyAction {
            name: "find",
            aliases: &["locate", "find-me"],
            method: "find_me",
            params: ActionParams::Fixed(&[""]),
            description: "play a sound",
        },
        LegacyAction {
            name: "reset-consumable",
            aliases: &[],
            method: "reset_consumable",
            params: ActionParams::OneOf(CONSUMABLES),
            description: "reset a consumable counter",
        },
    ],
    batch: GET_PROP_BATCH,
};

/// Every table, for listings.
pub fn all_tables() -> [&'static LegacyModel; 10] {
    [
        &YEELIGHT_MONO,
        &YEELIGHT_CT,
        &YEELIGHT_COLOR,
        &YEELIGHT_CEILING,
        &PLUG_BASIC,
        &PLUG_HMI208,
        &PLUG_V1,
        &PLUG_V3,
        &PURIFIER,
        &VACUUM,
    ]
}

/// The legacy table for `model` (case-insensitive), if it is one of the
/// families above. Callers prefer a MIoT spec when one exists (see
/// [`ModelCatalog`](super::device::ModelCatalog)).
pub fn for_model(model: &str) -> Option<&'static LegacyModel> {
    let m = model.trim().to_ascii_lowercase();
    if let Some(rest) = m.strip_prefix("yeelink.light.") {
        if rest.is_empty() {
            return None;
        }
        return Some(if rest.starts_with("mono") {
            &YEELIGHT_MONO
        } else if rest.starts_with("ct") {
            &YEELIGHT_CT
        } else if rest.starts_with("ceiling") {
            &YEELIGHT_CEILING
        } else {
            &YEELIGHT_COLOR
        });
    }
    if let Some(rest) = m.strip_prefix("chuangmi.plug.") {
        return match rest {
            "m1" | "m3" | "v2" | "hmi205" | "hmi206" => Some(&PLUG_BASIC),
            "hmi208" => Some(&PLUG_HMI208),
            "v1" => Some(&PLUG_V1),
            "v3" => Some(&PLUG_V3),
            _ => None,
        };
    }
    if let Some(rest) = m.strip_prefix("zhimi.airpurifier.") {
        return match rest {
            "m1" | "m2" | "v1" | "v2" | "v3" | "v4" | "v5" | "v6" | "v7" | "ma1" | "ma2"
            | "sa1" | "sa2" | "mc1" | "mc2" => Some(&PURIFIER),
            _ => None,
        };
    }
    if m == "rockrobo.vacuum.v1"
        || m.strip_prefix("roborock.vacuum.")
            .is_some_and(|r| !r.is_empty())
    {
        return Some(&VACUUM);
    }
    None
}

// ----------------------------------------------------------------- errors

/// A value that a legacy property or action does not accept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LegacyValueError {
    /// The text does not suit the type.
    #[error("{name} expects {expected}, got {got}")]
    WrongType {
        /// Property or action name.
        name: String,
        /// What is accepted, in words.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A number outside the accepted range.
    #[error("{name} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// Property name.
        name: String,
        /// Lower bound.
        min: i64,
        /// Upper bound.
        max: i64,
        /// What was given.
        got: String,
    },
    /// Not one of the accepted words or codes.
    #[error("{name} must be one of: {}; got {got}", .allowed.join(", "))]
    NotInList {
        /// Property or action name.
        name: String,
        /// The accepted entries.
        allowed: Vec<String>,
        /// What was given.
        got: String,
    },
    /// The property has no setter.
    #[error("{name} cannot be written on {model}; it can only be read")]
    ReadOnly {
        /// Property name.
        name: String,
        /// The table label.
        model: String,
    },
    /// Wrong number of action arguments.
    #[error("{action} takes {expected}, got {got} argument(s)")]
    ArgCount {
        /// Action name.
        action: String,
        /// What it takes, in words.
        expected: String,
        /// How many were given.
        got: usize,
    },
}

// --------------------------------------------------------------- resolving

fn normalize(s: &str) -> String {
    s.trim().to_lowercase().replace('_', "-")
}

/// Optimal-string-alignment distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (i, row) in d.chunks_mut(w).enumerate() {
        if let Some(first) = row.first_mut() {
            *first = i;
        }
    }
    for (j, cell) in d.iter_mut().take(w).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// Up to five names close to `q`: substring matches and small edit
/// distances, best first.
fn closest<'a>(q: &str, names: impl Iterator<Item = (&'a str, Vec<String>)>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = Vec::new();
    for (name, keys) in names {
        let best = keys
            .iter()
            .map(|k| {
                if !q.is_empty() && (k.contains(q) || q.contains(k.as_str())) {
                    0
                } else {
                    distance(q, k)
                }
            })
            .min()
            .unwrap_or(usize::MAX);
        let limit = (q.chars().count() / 3).max(2);
        if best <= limit {
            scored.push((best, name));
        }
    }
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(5)
        .map(|(_, n)| n.to_string())
        .collect()
}

impl LegacyProp {
    fn keys(&self) -> Vec<String> {
        let mut k = vec![normalize(self.name)];
        k.extend(self.aliases.iter().map(|a| normalize(a)));
        if let Some(raw) = self.source.raw_key() {
            k.push(normalize(raw));
        }
        k
    }

    /// Whether the property can be written.
    pub fn is_writable(&self) -> bool {
        self.setter != Setter::None
    }
}

impl LegacyAction {
    fn keys(&self) -> Vec<String> {
        let mut k = vec![normalize(self.name), normalize(self.method)];
        k.extend(self.aliases.iter().map(|a| normalize(a)));
        k
    }

    /// What the action takes, in words.
    pub fn params_text(&self) -> String {
        match self.params {
            ActionParams::None | ActionParams::Fixed(_) => "no arguments".into(),
            ActionParams::OneOf(list) => format!("1 argument (one of: {})", list.join(", ")),
        }
    }
}

impl LegacyModel {
    /// The property called `name` (friendly name, alias or raw key).
    pub fn resolve_prop(&self, label: &str, name: &str) -> Result<&'static LegacyProp, NameError> {
        let q = normalize(name);
        if q.is_empty() {
            return Err(NameError::Empty {
                kind: ItemKind::Property,
            });
        }
        let props: &'static [LegacyProp] = self.props;
        if let Some(p) = props.iter().find(|p| normalize(p.name) == q) {
            return Ok(p);
        }
        let hits: Vec<&'static LegacyProp> =
            props.iter().filter(|p| p.keys().contains(&q)).collect();
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(NameError::Unknown {
                kind: ItemKind::Property,
                query: name.trim().to_string(),
                label: label.to_string(),
                candidates: closest(&q, props.iter().map(|p| (p.name, p.keys()))),
                kind_is_empty: props.is_empty(),
            }),
            many => Err(NameError::Ambiguous {
                kind: ItemKind::Property,
                query: name.trim().to_string(),
                label: label.to_string(),
                candidates: many.iter().map(|p| p.name.to_string()).collect(),
            }),
        }
    }

    /// The action called `name` (friendly name, alias or method).
    pub fn resolve_action(
        &self,
        label: &str,
        name: &str,
    ) -> Result<&'static LegacyAction, NameError> {
        let q = normalize(name);
        if q.is_empty() {
            return Err(NameError::Empty {
                kind: ItemKind::Action,
            });
        }
        let actions: &'static [LegacyAction] = self.actions;
        match actions.iter().find(|a| a.keys().contains(&q)) {
            Some(a) => Ok(a),
            None => Err(NameError::Unknown {
                kind: ItemKind::Action,
                query: name.trim().to_string(),
                label: label.to_string(),
                candidates: closest(&q, actions.iter().map(|a| (a.name, a.keys()))),
                kind_is_empty: actions.is_empty(),
            }),
        }
    }

    /// The requests that read `props`: `get_prop` batches of at most
    /// [`batch`](Self::batch) names (each name once), then one call per
    /// getter method. Each call lists which of `props` it answers.
    pub fn read_plan(&self, props: &[&LegacyProp]) -> Vec<ReadCall> {
        let mut names: Vec<&'static str> = Vec::new();
        let mut methods: Vec<&'static str> = Vec::new();
        for p in props {
            match p.source {
                Source::Prop(k) => {
                    if !names.contains(&k) {
                        names.push(k);
                    }
                }
                Source::Field { method, .. } | Source::Index { method, .. } => {
                    if !methods.contains(&method) {
                        methods.push(method);
                    }
                }
            }
        }
        let mut calls: Vec<ReadCall> = names
            .chunks(self.batch.max(1))
            .map(|chunk| ReadCall {
                method: "get_prop",
                names: chunk.to_vec(),
            })
            .collect();
        calls.extend(methods.into_iter().map(|m| ReadCall {
            method: m,
            names: Vec::new(),
        }));
        calls
    }
}

/// One read request of a [`LegacyModel::read_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCall {
    /// `get_prop` or a getter such as `get_status`.
    pub method: &'static str,
    /// The `get_prop` names (empty for getters).
    pub names: Vec<&'static str>,
}

impl ReadCall {
    /// The params to send.
    pub fn params(&self) -> Value {
        Value::Array(self.names.iter().map(|n| json!(n)).collect())
    }
}

/// What one read produced: raw wire values by source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawValues {
    props: Vec<(&'static str, Value)>,
    objects: Vec<(&'static str, Value)>,
}

/// Why a getter reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// `get_prop` returned a different number of values than names asked.
    #[error("the device returned {got} value(s) for {asked} name(s)")]
    CountMismatch {
        /// Names asked.
        asked: usize,
        /// Values returned.
        got: usize,
    },
    /// The result has an unexpected shape.
    #[error("unexpected reply to `{method}`: {detail}")]
    Shape {
        /// The method.
        method: &'static str,
        /// What did not fit.
        detail: String,
    },
}

impl RawValues {
    /// Records the result of `call`. A `get_prop` reply must have one value
    /// per name (firmware that drops unknown names gets
    /// [`ReplyError::CountMismatch`]; ask for names one at a time then).
    pub fn absorb(&mut self, call: &ReadCall, result: &Value) -> Result<(), ReplyError> {
        if call.method == "get_prop" {
            let Some(list) = result.as_array() else {
                return Err(ReplyError::Shape {
                    method: call.method,
                    detail: "the result is not a list".into(),
                });
            };
            if list.len() != call.names.len() {
                return Err(ReplyError::CountMismatch {
                    asked: call.names.len(),
                    got: list.len(),
                });
            }
            self.props
                .extend(call.names.iter().copied().zip(list.iter().cloned()));
        } else {
            if let Value::String(s) = result {
                return Err(ReplyError::Shape {
                    method: call.method,
                    detail: format!("the device answered {s:?}"),
                });
            }
            self.objects.push((call.method, result.clone()));
        }
        Ok(())
    }

    /// The raw value of `p`, if the replies had one. `""` and `null` (what
    /// devices send for names they lack) count as absent.
    pub fn get(&self, p: &LegacyProp) -> Option<&Value> {
        let v = match p.source {
            Source::Prop(k) => self.props.iter().find(|(n, _)| *n == k).map(|(_, v)| v),
            Source::Field { method, key } => {
                let obj = self.objects.iter().find(|(m, _)| *m == method)?;
                // `[{…}]` or a bare object.
                let o = match &obj.1 {
                    Value::Array(a) => a.first()?,
                    other => other,
                };
                o.get(key)
            }
            Source::Index { method, index } => {
                let obj = self.objects.iter().find(|(m, _)| *m == method)?;
                match &obj.1 {
                    Value::Array(a) => a.get(index),
                    other if index == 0 => Some(other),
                    _ => None,
                }
            }
        }?;
        match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            other => Some(other),
        }
    }
}

// ------------------------------------------------------------------ values

fn number_text(t: &str) -> Option<f64> {
    let t = t.trim();
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn whole(f: f64) -> Option<i64> {
    // `as` saturates; the range check keeps the conversion exact.
    #[allow(clippy::cast_possible_truncation)]
    let i = f as i64;
    #[allow(clippy::cast_precision_loss)]
    let back = i as f64;
    (f.fract() == 0.0 && back == f && f.abs() < 9.0e15).then_some(i)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole)),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .ok()
                .or_else(|| number_text(t).and_then(whole))
        }
        _ => None,
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => number_text(s),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(_) => match as_int(v) {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Some(true),
            "off" | "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn float_value(f: f64) -> Value {
    match whole(f) {
        Some(i) => Value::from(i),
        None => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
    }
}

fn number_display(v: &Value) -> String {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => {
                // Trim float noise from the division (18.599999 → 18.6).
                let s = format!("{f:.6}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn quoted(s: &str) -> String {
    let mut q: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        q.push('…');
    }
    format!("'{q}'")
}

impl LegacyProp {
    /// Turns a raw wire value into the value shown to people: bools for
    /// on/off flags, numbers for numeric strings, scaled numbers. A value
    /// that does not fit the type is returned unchanged.
    pub fn decode(&self, raw: &Value) -> Value {
        let decoded = match self.kind {
            Kind::OnOff | Kind::Bool | Kind::Flag01 => as_bool(raw).map(Value::Bool),
            Kind::Int { .. } | Kind::Codes(_) | Kind::Rgb => as_int(raw).map(Value::from),
            Kind::Scaled { divisor } => as_float(raw)
                .filter(|_| divisor != 0.0)
                .map(|f| float_value(f / divisor)),
            Kind::Choice(_) | Kind::Text => None,
        };
        decoded.unwrap_or_else(|| raw.clone())
    }

    /// Renders a decoded value: `on`/`off`, `40 %`, `18.6 °C`,
    /// `8 (charging)`, `16711680 (#FF0000)`.
    pub fn display(&self, v: &Value) -> String {
        let text = match (self.kind, v) {
            (_, Value::Bool(b)) => return if *b { "on".into() } else { "off".into() },
            (_, Value::String(s)) => return s.clone(),
            (Kind::Codes(codes), Value::Number(_)) => {
                let n = number_display(v);
                return match as_int(v).and_then(|i| codes.iter().find(|(c, _)| *c == i)) {
                    Some((_, d)) => format!("{n} ({d})"),
                    None => n,
                };
            }
            (Kind::Rgb, Value::Number(_)) => {
                let n = number_display(v);
                return match as_int(v).filter(|i| (0..=0xFF_FFFF).contains(i)) {
                    Some(i) => format!("{n} (#{i:06X})"),
                    None => n,
                };
            }
            (_, Value::Number(_)) => number_display(v),
            (_, other) => return other.to_string(),
        };
        match self.unit {
            Some(u) => format!("{text} {u}"),
            None => text,
        }
    }

    /// What the property accepts when written, in words.
    pub fn allowed_text(&self) -> String {
        match self.kind {
            Kind::OnOff | Kind::Bool | Kind::Flag01 => "on or off".into(),
            Kind::Int { min, max } => {
                if min == i64::MIN && max == i64::MAX {
                    "an integer".into()
                } else if max == i64::MAX {
                    format!("an integer from {min}")
                } else {
                    format!("between {min} and {max}")
                }
            }
            Kind::Scaled { .. } => "a number".into(),
            Kind::Choice(list) => format!("one of: {}", list.join(", ")),
            Kind::Codes(codes) => format!(
                "one of: {}",
                codes
                    .iter()
                    .map(|(c, d)| format!("{c} ({d})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Kind::Rgb => "a colour: 0xRRGGBB, #RRGGBB or an integer".into(),
            Kind::Text => "text".into(),
        }
    }

    /// The format in words, for spec tables (`bool`, `int`, `string`…).
    pub fn format_name(&self) -> &'static str {
        match self.kind {
            Kind::OnOff | Kind::Bool | Kind::Flag01 => "bool",
            Kind::Int { .. } | Kind::Codes(_) | Kind::Rgb => "int",
            Kind::Scaled { .. } => "float",
            Kind::Choice(_) | Kind::Text => "string",
        }
    }

    /// Parses what a person typed: `on`/`off`/`true`/`false`/`1`/`0` for
    /// flags, integers (range-checked), words of a choice (ignoring case),
    /// codes by number or description, colours as `0xRRGGBB`, `#RRGGBB` or
    /// decimal. Fails for read-only properties, so nothing is sent.
    pub fn parse_user(&self, model: &LegacyModel, text: &str) -> Result<Value, LegacyValueError> {
        if !self.is_writable() {
            return Err(LegacyValueError::ReadOnly {
                name: self.name.to_string(),
                model: model.label.to_string(),
            });
        }
        self.parse_value(text)
    }

    fn parse_value(&self, text: &str) -> Result<Value, LegacyValueError> {
        let t = text.trim();
        let wrong = |expected: &str| LegacyValueError::WrongType {
            name: self.name.to_string(),
            expected: expected.to_string(),
            got: quoted(text),
        };
        match self.kind {
            Kind::OnOff | Kind::Bool | Kind::Flag01 => match t.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok(Value::Bool(true)),
                "off" | "false" | "no" | "0" => Ok(Value::Bool(false)),
                _ => Err(wrong("on/off, true/false, yes/no or 1/0")),
            },
            Kind::Int { min, max } => {
                let i = t.parse::<i64>().map_err(|_| wrong("an integer"))?;
                if i < min || i > max {
                    return Err(LegacyValueError::OutOfRange {
                        name: self.name.to_string(),
                        min,
                        max,
                        got: i.to_string(),
                    });
                }
                Ok(Value::from(i))
            }
            Kind::Scaled { .. } => number_text(t)
                .map(float_value)
                .ok_or_else(|| wrong("a number")),
            Kind::Choice(list) => list
                .iter()
                .find(|w| w.eq_ignore_ascii_case(t))
                .map(|w| Value::String((*w).to_string()))
                .ok_or_else(|| LegacyValueError::NotInList {
                    name: self.name.to_string(),
                    allowed: list.iter().map(|w| (*w).to_string()).collect(),
                    got: quoted(text),
                }),
            Kind::Codes(codes) => {
                let hit = match t.parse::<i64>() {
                    Ok(i) => codes.iter().find(|(c, _)| *c == i),
                    Err(_) => codes.iter().find(|(_, d)| normalize(d) == normalize(t)),
                };
                hit.map(|(c, _)| Value::from(*c))
                    .ok_or_else(|| LegacyValueError::NotInList {
                        name: self.name.to_string(),
                        allowed: codes.iter().map(|(c, d)| format!("{c} ({d})")).collect(),
                        got: quoted(text),
                    })
            }
            Kind::Rgb => {
                let hex = t
                    .strip_prefix('#')
                    .or_else(|| t.strip_prefix("0x"))
                    .or_else(|| t.strip_prefix("0X"));
                let n = match hex {
                    Some(h) => i64::from_str_radix(h, 16).ok(),
                    None => t.parse::<i64>().ok(),
                }
                .ok_or_else(|| wrong("a colour: 0xRRGGBB, #RRGGBB or an integer"))?;
                if !(0..=0xFF_FFFF).contains(&n) {
                    return Err(LegacyValueError::OutOfRange {
                        name: self.name.to_string(),
                        min: 0,
                        max: 0xFF_FFFF,
                        got: n.to_string(),
                    });
                }
                Ok(Value::from(n))
            }
            Kind::Text => Ok(Value::String(text.to_string())),
        }
    }

    /// The setter request for a value from [`parse_user`](Self::parse_user):
    /// `(method, params)`. `None` when the property is read-only.
    pub fn encode_set(&self, v: &Value) -> Option<(&'static str, Value)> {
        let wire = match (self.kind, v) {
            (Kind::OnOff, Value::Bool(b)) => json!(if *b { "on" } else { "off" }),
            (Kind::Flag01, Value::Bool(b)) => json!(if *b { "1" } else { "0" }),
            (Kind::Scaled { divisor }, Value::Number(n)) => {
                let f = n.as_f64().unwrap_or(0.0) * divisor;
                float_value(f.round())
            }
            (_, other) => other.clone(),
        };
        match self.setter {
            Setter::None => None,
            Setter::Value(m) => Some((m, json!([wire]))),
            Setter::Smooth(m, ms) => Some((m, json!([wire, "smooth", ms]))),
            Setter::OnOffMethods(on, off) => {
                let method = if as_bool(v).unwrap_or(false) { on } else { off };
                Some((method, json!([])))
            }
            Setter::Ps(cfg) => {
                let flag = if as_bool(v).unwrap_or(false) {
                    "1"
                } else {
                    "0"
                };
                Some(("set_ps", json!([cfg, flag])))
            }
        }
    }
}

impl LegacyAction {
    /// The params for this action given the user's arguments.
    pub fn encode(&self, args: &[String]) -> Result<Value, LegacyValueError> {
        let count = |expected: &str| LegacyValueError::ArgCount {
            action: self.name.to_string(),
            expected: expected.to_string(),
            got: args.len(),
        };
        match self.params {
            ActionParams::None if args.is_empty() => Ok(json!([])),
            ActionParams::Fixed(fixed) if args.is_empty() => Ok(json!(fixed)),
            ActionParams::None | ActionParams::Fixed(_) => Err(count("no arguments")),
            ActionParams::OneOf(list) => {
                let [arg] = args else {
                    return Err(count(&format!("1 argument (one of: {})", list.join(", "))));
                };
                list.iter()
                    .find(|w| normalize(w) == normalize(arg))
                    .map(|w| json!([w]))
                    .ok_or_else(|| LegacyValueError::NotInList {
                        name: self.name.to_string(),
                        allowed: list.iter().map(|w| (*w).to_string()).collect(),
                        got: quoted(arg),
                    })
            }
        }
    }
}

/// Whether a setter or command reply means success: `["ok"]`, `"ok"`,
/// `[0]` or `0`. Roborock answers `"unknown_method"` for methods it lacks.
pub fn reply_is_ok(result: &Value) -> bool {
    let one = match result {
        Value::Array(a) if a.len() == 1 => &a[0],
        other => other,
    };
    match one {
        Value::String(s) => s.eq_ignore_ascii_case("ok"),
        Value::Number(_) => as_int(one) == Some(0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(model: &str, name: &str) -> &'static LegacyProp {
        let m = for_model(model).unwrap();
        m.resolve_prop(model, name).unwrap()
    }

    #[test]
    fn models_map_to_families() {
        assert_eq!(
            for_model("yeelink.light.mono1").unwrap().id,
            "yeelight-mono"
        );
        assert_eq!(
            for_model("Yeelink.Light.Color2").unwrap().id,
            "yeelight-color"
        );
        assert_eq!(
            for_model("yeelink.light.ceiling4").unwrap().id,
            "yeelight-ceiling"
        );
        assert_eq!(for_model("yeelink.light.ct2").unwrap().id, "yeelight-ct");
        assert_eq!(
            for_model("yeelink.light.bslamp1").unwrap().id,
            "yeelight-color"
        );
        for m in ["m1", "m3", "v2", "hmi205", "hmi206"] {
            assert_eq!(
                for_model(&format!("chuangmi.plug.{m}")).unwrap().id,
                "chuangmi-plug"
            );
        }
        assert_eq!(
            for_model("chuangmi.plug.v1").unwrap().id,
            "chuangmi-plug-v1"
        );
        assert_eq!(
            for_model("chuangmi.plug.v3").unwrap().id,
            "chuangmi-plug-v3"
        );
        assert_eq!(
            for_model("chuangmi.plug.hmi208").unwrap().id,
            "chuangmi-plug-hmi208"
        );
        assert!(for_model("chuangmi.plug.212a01").is_none());
        for m in [
            "m1", "m2", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "ma1", "ma2", "sa1", "sa2",
            "mc1", "mc2",
        ] {
            assert_eq!(
                for_model(&format!("zhimi.airpurifier.{m}")).unwrap().id,
                "zhimi-airpurifier"
            );
        }
        assert!(for_model("zhimi.airpurifier.mb3").is_none());
        assert_eq!(
            for_model("rockrobo.vacuum.v1").unwrap().id,
            "roborock-vacuum"
        );
        assert_eq!(
            for_model("roborock.vacuum.s5").unwrap().id,
            "roborock-vacuum"
        );
        assert!(for_model("roborock.vacuum.").is_none());
        assert!(for_model("acme.light.x").is_none());
        // Tables are internally consistent: names unique, keys unambiguous.
        for t in all_tables() {
            assert!(t.props.len() <= 29, "{}", t.id);
            for prop in t.props {
                assert_eq!(t.resolve_prop(t.id, prop.name).unwrap(), prop);
                if let Some(k) = prop.source.raw_key() {
                    assert_eq!(t.resolve_prop(t.id, k).unwrap(), prop, "{} {k}", t.id);
                }
            }
            for a in t.actions {
                assert_eq!(t.resolve_action(t.id, a.method).unwrap(), a);
            }
        }
        assert_eq!(PURIFIER.props.len(), 29);
    }

    #[test]
    fn yeelight_strings_decode_and_setters_encode() {
        let m = "yeelink.light.color1";
        let table = for_model(m).unwrap();
        let props: Vec<&LegacyProp> = ["power", "brightness", "ct", "color", "color_mode"]
            .iter()
            .map(|n| p(m, n))
            .collect();
        let plan = table.read_plan(&props);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            plan[0].params(),
            json!(["power", "bright", "ct", "rgb", "color_mode"])
        );
        // The example reply from legacy-miio.md.
        let mut raw = RawValues::default();
        raw.absorb(&plan[0], &json!(["off", "100", "3584", "", "2"]))
            .unwrap();
        let got: Vec<Option<Value>> = props
            .iter()
            .map(|p| raw.get(p).map(|v| p.decode(v)))
            .collect();
        assert_eq!(
            got,
            vec![
                Some(json!(false)),
                Some(json!(100)),
                Some(json!(3584)),
                None,
                Some(json!(2))
            ]
        );
        assert_eq!(props[1].display(&json!(100)), "100 %");
        assert_eq!(props[2].display(&json!(3584)), "3584 K");
        assert_eq!(props[4].display(&json!(2)), "2 (color temperature)");
        assert_eq!(props[3].display(&json!(16_711_680)), "16711680 (#FF0000)");

        let power = props[0];
        let on = power.parse_user(table, "ON").unwrap();
        assert_eq!(power.encode_set(&on), Some(("set_power", json!(["on"]))));
        let b = props[1].parse_user(table, "40").unwrap();
        assert_eq!(props[1].encode_set(&b), Some(("set_bright", json!([40]))));
        let e = props[1].parse_user(table, "0").unwrap_err();
        assert_eq!(e.to_string(), "brightness must be between 1 and 100, got 0");
        let ct = props[2].parse_user(table, "2700").unwrap();
        assert_eq!(
            props[2].encode_set(&ct),
            Some(("set_ct_abx", json!([2700, "smooth", 500])))
        );
        assert!(props[2].parse_user(table, "1000").is_err());
        // mono lamps have no colour temperature at all.
        let mono = for_model("yeelink.light.mono1").unwrap();
        let err = mono
            .resolve_prop("yeelink.light.mono1", "brigthness")
            .unwrap_err();
        assert!(
            err.to_string().contains("did you mean: brightness"),
            "{err}"
        );
        assert!(mono.resolve_prop("x", "ct").is_err());
        let rgb = props[3].parse_user(table, "#ff0000").unwrap();
        assert_eq!(
            props[3].encode_set(&rgb),
            Some(("set_rgb", json!([16_711_680])))
        );
        let lan = p(m, "lan_ctrl");
        let off = lan.parse_user(table, "off").unwrap();
        assert_eq!(
            lan.encode_set(&off),
            Some(("set_ps", json!(["cfg_lan_ctrl", "0"])))
        );
        let cm = props[4].parse_user(table, "1").unwrap_err();
        assert!(matches!(cm, LegacyValueError::ReadOnly { .. }), "{cm}");
        let toggle = table.resolve_action(m, "toggle").unwrap();
        assert_eq!(toggle.encode(&[]).unwrap(), json!([]));
        assert!(toggle.encode(&["x".into()]).is_err());
    }

    #[test]
    fn plugs_per_model_names_and_setters() {
        let m1 = for_model("chuangmi.plug.m1").unwrap();
        let props: Vec<&LegacyProp> = m1.props.iter().collect();
        let plan = m1.read_plan(&props);
        assert_eq!(plan[0].params(), json!(["power", "temperature"]));
        let mut raw = RawValues::default();
        raw.absorb(&plan[0], &json!(["on", 32])).unwrap();
        assert_eq!(props[0].decode(raw.get(props[0]).unwrap()), json!(true));
        assert_eq!(props[1].display(&props[1].decode(&json!(32))), "32 °C");
        let off = props[0].parse_user(m1, "0").unwrap();
        assert_eq!(
            props[0].encode_set(&off),
            Some(("set_power", json!(["off"])))
        );

        let v1 = for_model("chuangmi.plug.v1").unwrap();
        let power = v1.resolve_prop("v1", "power").unwrap();
        assert_eq!(power.source, Source::Prop("on"));
        let on = power.parse_user(v1, "on").unwrap();
        assert_eq!(power.encode_set(&on), Some(("set_on", json!([]))));
        let usb = v1.resolve_prop("v1", "usb_on").unwrap();
        let off = usb.parse_user(v1, "false").unwrap();
        assert_eq!(usb.encode_set(&off), Some(("set_usb_off", json!([]))));

        let v3 = for_model("chuangmi.plug.v3").unwrap();
        let props: Vec<&LegacyProp> = v3.props.iter().collect();
        let plan = v3.read_plan(&props);
        assert_eq!(plan.len(), 2);
        assert_eq!(
            plan[0].params(),
            json!(["on", "usb_on", "temperature", "wifi_led"])
        );
        assert_eq!(plan[1].method, "get_power");
        let mut raw = RawValues::default();
        raw.absorb(&plan[0], &json!([true, true, 32, "off"]))
            .unwrap();
        raw.absorb(&plan[1], &json!([300])).unwrap();
        let load = v3.resolve_prop("v3", "load-power").unwrap();
        let v = load.decode(raw.get(load).unwrap());
        assert_eq!(v, json!(3));
        assert_eq!(load.display(&v), "3 W");
        let led = v3.resolve_prop("v3", "wifi_led").unwrap();
        assert_eq!(led.decode(raw.get(led).unwrap()), json!(false));
        assert!(load.parse_user(v3, "5").is_err());
        // A count mismatch is reported, not guessed at.
        let mut raw = RawValues::default();
        assert_eq!(
            raw.absorb(&plan[0], &json!([true])),
            Err(ReplyError::CountMismatch { asked: 4, got: 1 })
        );
    }

    #[test]
    fn purifier_scaling_modes_and_batches() {
        let t = for_model("zhimi.airpurifier.m2").unwrap();
        let all: Vec<&LegacyProp> = t.props.iter().collect();
        let plan = t.read_plan(&all);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].names.len(), 15);
        assert_eq!(plan[1].names.len(), 14);
        let temp = t.resolve_prop("m2", "temp_dec").unwrap();
        assert_eq!(temp.name, "temperature");
        let v = temp.decode(&json!(186));
        assert_eq!(v, json!(18.6));
        assert_eq!(temp.display(&v), "18.6 °C");
        assert_eq!(temp.display(&temp.decode(&json!(200))), "20 °C");
        let mode = t.resolve_prop("m2", "mode").unwrap();
        let v = mode.parse_user(t, "Silent").unwrap();
        assert_eq!(mode.encode_set(&v), Some(("set_mode", json!(["silent"]))));
        let e = mode.parse_user(t, "turbo").unwrap_err();
        assert!(e.to_string().contains("one of: auto, silent"), "{e}");
        let fav = t.resolve_prop("m2", "favorite_level").unwrap();
        assert!(fav.parse_user(t, "18").is_err());
        assert_eq!(
            fav.encode_set(&fav.parse_user(t, "17").unwrap()),
            Some(("set_level_favorite", json!([17])))
        );
        let led_b = t.resolve_prop("m2", "led_b").unwrap();
        let dim = led_b.parse_user(t, "dim").unwrap();
        assert_eq!(led_b.encode_set(&dim), Some(("set_led_b", json!([1]))));
        assert_eq!(led_b.display(&json!(2)), "2 (off)");
        let buzzer = t.resolve_prop("m2", "buzzer").unwrap();
        assert_eq!(buzzer.decode(&json!("off")), json!(false));
        assert!(temp.parse_user(t, "20").is_err());
        let reset = t.resolve_action("m2", "reset-filter").unwrap();
        assert_eq!(reset.method, "reset_filter1");
    }

    #[test]
    fn vacuum_status_object_and_commands() {
        let t = for_model("roborock.vacuum.s5").unwrap();
        let all: Vec<&LegacyProp> = t.props.iter().collect();
        let plan = t.read_plan(&all);
        let methods: Vec<&str> = plan.iter().map(|c| c.method).collect();
        assert_eq!(methods, vec!["get_status", "get_consumable"]);
        assert_eq!(plan[0].params(), json!([]));
        let mut raw = RawValues::default();
        raw.absorb(
            &plan[0],
            &json!([{"state":8,"battery":100,"fan_power":20,"clean_time":0,"clean_area":2_500_000,
                     "error_code":0,"in_cleaning":0,"dnd_enabled":1,"map_present":1,"msg_ver":4,
                     "msg_seq":320,"water_box_status":1}]),
        )
        .unwrap();
        raw.absorb(&plan[1], &json!([{"main_brush_work_time":32454}]))
            .unwrap();
        let state = t.resolve_prop("s5", "state").unwrap();
        assert_eq!(
            state.display(&state.decode(raw.get(state).unwrap())),
            "8 (charging)"
        );
        let area = t.resolve_prop("s5", "clean_area").unwrap();
        assert_eq!(area.display(&area.decode(raw.get(area).unwrap())), "2.5 m²");
        let dnd = t.resolve_prop("s5", "dnd_enabled").unwrap();
        assert_eq!(dnd.decode(raw.get(dnd).unwrap()), json!(true));
        let side = t.resolve_prop("s5", "side-brush-time").unwrap();
        assert_eq!(raw.get(side), None);
        assert!(raw.absorb(&plan[0], &json!("unknown_method")).is_err());

        let dock = t.resolve_action("s5", "charge").unwrap();
        assert_eq!(
            (dock.method, dock.encode(&[]).unwrap()),
            ("app_charge", json!([]))
        );
        let find = t.resolve_action("s5", "find").unwrap();
        assert_eq!(find.encode(&[]).unwrap(), json!([""]));
        let reset = t.resolve_action("s5", "reset_consumable").unwrap();
        assert_eq!(
            reset.encode(&["filter_work_time".into()]).unwrap(),
            json!(["filter_work_time"])
        );
        assert!(reset.encode(&[]).is_err());
        assert!(reset.encode(&["wheels".into()]).is_err());
        let start = t.resolve_action("s5", "app_start").unwrap();
        assert_eq!(start.name, "start");
        let e = t.resolve_action("s5", "strat").unwrap_err();
        assert!(e.to_string().contains("did you mean: start"), "{e}");
        let fan = t.resolve_prop("s5", "fan_power").unwrap();
        let v = fan.parse_user(t, "60").unwrap();
        assert_eq!(fan.encode_set(&v), Some(("set_custom_mode", json!([60]))));

        assert!(reply_is_ok(&json!(["ok"])));
        assert!(reply_is_ok(&json!("ok")));
        assert!(reply_is_ok(&json!([0])));
        assert!(!reply_is_ok(&json!("unknown_method")));
        assert!(!reply_is_ok(&json!(["error"])));
    }
}
