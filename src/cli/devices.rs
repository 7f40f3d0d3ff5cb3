//! `mijia device …`: the home registry from the command line.
//!
//! - `add NAME --ip A --token T [--model M] [--room R] [--port P]`: when
//!   `--model` is left out the device is asked (`miIO.info`) for its model
//!   and its did is recorded too. The name, room and duplicates are
//!   checked before the device is contacted.
//! - `list [--show-secrets]`: name, room, model, address, last seen;
//!   tokens only with `--show-secrets`.
//! - `remove NAME`, `rename OLD NEW`, `set-room NAME [ROOM]`.
//!
//! Every change goes through [`Registry::update`] (locked, re-read,
//! validated, written atomically with mode 0600).

use std::sync::Arc;

use clap::Subcommand;
use serde_json::{json, Value};

use super::args::GlobalArgs;
use super::ids::HomeIdStore;
use super::output;
use super::plan::{address, model_arg};
use crate::home::{
    unix_now, DeviceEntry, DeviceKey, DeviceTarget, LastSeen, ModelCatalog, Paths, Registry,
};
use crate::transport::{ClientConfig, IdStore};
use crate::Error;

/// `mijia device` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a device under a name. Without --model, its model (and
    /// device id) are asked from the device.
    #[command(override_usage = "mijia device add NAME --ip ADDRESS --token HEX \
        [--model MODEL] [--room ROOM] [--port PORT]")]
    Add {
        /// The name to use in commands: starts with a letter; letters,
        /// digits, spaces, '-' and '_'; unique, case-insensitive.
        #[arg(value_name = "NAME")]
        name: String,
        /// The room it is in.
        #[arg(long, value_name = "ROOM")]
        room: Option<String>,
    },

    /// List the registered devices: name, room, model, address, last seen.
    List {
        /// Also show each device's token.
        #[arg(long)]
        show_secrets: bool,
    },

    /// Forget a device.
    Remove {
        /// Its name.
        #[arg(value_name = "NAME")]
        name: String,
    },

    /// Give a device another name.
    Rename {
        /// Its name now.
        #[arg(value_name = "OLD")]
        old: String,
        /// The new name.
        #[arg(value_name = "NEW")]
        new: String,
    },

    /// Put a device in a room; leave out ROOM to take it out of its room.
    SetRoom {
        /// The device.
        #[arg(value_name = "NAME")]
        name: String,
        /// The room.
        #[arg(value_name = "ROOM")]
        room: Option<String>,
    },
}

/// A checked `device` command.
#[derive(Debug, Clone)]
pub enum DevicePlan {
    /// Add this entry, asking the device for its model first when unknown.
    Add(DeviceEntry),
    /// List.
    List {
        /// Show tokens.
        show_secrets: bool,
    },
    /// Remove.
    Remove(String),
    /// Rename.
    Rename(String, String),
    /// Set or clear the room.
    SetRoom(String, Option<String>),
}

/// Checks the arguments (and, for `add`, the name against the registry).
pub fn plan(
    cmd: &DeviceCommand,
    g: &GlobalArgs,
    paths: Option<&Paths>,
) -> Result<DevicePlan, Error> {
    let paths = paths.ok_or_else(|| Error::usage("no home directory for the registry"))?;
    Ok(match cmd {
        DeviceCommand::Add { name, room } => {
            let (addr, token) = address(g).map_err(|e| {
                Error::usage(format!(
                    "{e}; `device add` needs the device's address and token: \
                     mijia device add {} --ip ADDRESS --token HEX",
                    quoted(name)
                ))
            })?;
            let mut entry = DeviceEntry::new(name.trim(), addr.ip(), token);
            entry.port = (addr.port() != mijia_proto::miio::DEFAULT_PORT).then_some(addr.port());
            entry.model = model_arg(g)?;
            entry.room = room.as_deref().map(str::trim).map(str::to_string);
            entry.added = Some(unix_now());
            // Name, room and duplicates are checked before any packet.
            Registry::load(paths)?.add(entry.clone())?;
            DevicePlan::Add(entry)
        }
        DeviceCommand::List { show_secrets } => DevicePlan::List {
            show_secrets: *show_secrets,
        },
        DeviceCommand::Remove { name } => DevicePlan::Remove(name.clone()),
        DeviceCommand::Rename { old, new } => DevicePlan::Rename(old.clone(), new.trim().into()),
        DeviceCommand::SetRoom { name, room } => DevicePlan::SetRoom(
            name.clone(),
            room.as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        ),
    })
}

/// A name, quoted for the shell when it has spaces.
fn quoted(name: &str) -> String {
    if name.contains(' ') {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

/// Runs a `device` command.
pub async fn execute(
    plan: DevicePlan,
    paths: &Paths,
    catalog: &ModelCatalog,
    config: ClientConfig,
    json: bool,
) -> Result<(), Error> {
    match plan {
        DevicePlan::Add(entry) => add(entry, paths, catalog, config, json).await,
        DevicePlan::List { show_secrets } => list(paths, show_secrets, json),
        DevicePlan::Remove(name) => {
            let removed = Registry::update(paths, |r| r.remove(&name))?;
            done(
                json,
                json!({"removed": removed.name}),
                format!("Removed '{}'.", removed.name),
            )
        }
        DevicePlan::Rename(old, new) => {
            let was = Registry::update(paths, |r| {
                let was = r.get(&old)?.name.clone();
                r.rename(&old, &new)?;
                Ok(was)
            })?;
            done(
                json,
                json!({"renamed": was, "to": new}),
                format!("Renamed '{was}' to '{new}'."),
            )
        }
        DevicePlan::SetRoom(name, room) => {
            let (name, room) = Registry::update(paths, |r| {
                r.set_room(&name, room.as_deref())?;
                let e = r.get(&name)?;
                Ok((e.name.clone(), e.room.clone()))
            })?;
            let text = match &room {
                Some(room) => format!("'{name}' is in room '{room}'."),
                None => format!("'{name}' is in no room now."),
            };
            done(json, json!({"device": name, "room": room}), text)
        }
    }
}

fn done(json: bool, doc: Value, text: String) -> Result<(), Error> {
    if json {
        output::emit(&output::json_doc(&doc))
    } else {
        output::emit(&format!("{text}\n"))
    }
}

async fn add(
    mut entry: DeviceEntry,
    paths: &Paths,
    catalog: &ModelCatalog,
    config: ClientConfig,
    json: bool,
) -> Result<(), Error> {
    let detected = entry.model.is_none();
    if detected {
        let ids = Arc::new(HomeIdStore::new(paths.clone())) as Arc<dyn IdStore>;
        let target = DeviceTarget::ad_hoc(entry.addr(), entry.token, None, catalog);
        let found = async {
            let dev = target.connect(config, Some(ids))?;
            dev.detect_model().await
        }
        .await
        .map_err(|source| Error::Detect { source })?;
        entry.model = Some(found.model.to_ascii_lowercase());
        entry.did = found.did;
    }
    let model = entry.model.clone().unwrap_or_default();
    let seen_key = DeviceKey::of(&entry);
    let ip = entry.ip;
    Registry::update(paths, |r| r.add(entry.clone()))?;
    if detected {
        // It just answered.
        let seen = crate::home::Seen { at: unix_now(), ip };
        if let Err(e) = LastSeen::record_seen(paths, &[(seen_key, seen)]) {
            tracing::warn!("last-seen time not recorded: {e}");
        }
    }
    let profile = catalog.profile(Some(&model));
    let known = profile.spec().is_some() || profile.legacy().is_some();
    if !known {
        eprintln!(
            "note: mijia has no spec for {model}: use numeric ids (2.1) and `raw` with it, or \
             add its spec with `mijia spec import FILE --model {model}`"
        );
    }
    if json {
        return output::emit(&output::json_doc(&json!({
            "added": entry_json(&entry, None, false),
            "model_detected": detected,
        })));
    }
    let mut text = format!("Added '{}': {model}", entry.name);
    if detected {
        text.push_str(" (asked the device)");
    }
    if let Some(did) = entry.did {
        text.push_str(&format!(", did {did}"));
    }
    text.push_str(&format!(", at {}", address_text(&entry)));
    if let Some(room) = &entry.room {
        text.push_str(&format!(", in room {room}"));
    }
    output::emit(&format!("{text}.\n"))
}

/// `ip`, or `ip:port` when the port is not the default.
fn address_text(e: &DeviceEntry) -> String {
    match e.port {
        Some(p) if p != mijia_proto::miio::DEFAULT_PORT => e.addr().to_string(),
        _ => e.ip.to_string(),
    }
}

fn entry_json(e: &DeviceEntry, last_seen: Option<u64>, show_secrets: bool) -> Value {
    let mut v = json!({
        "name": e.name,
        "room": e.room,
        "model": e.model,
        "address": address_text(e),
        "did": e.did.map(|d| d.to_string()),
        "last_seen": last_seen,
    });
    if show_secrets {
        if let Some(o) = v.as_object_mut() {
            o.insert("token".into(), json!(e.token.reveal()));
        }
    }
    v
}

fn list(paths: &Paths, show_secrets: bool, json: bool) -> Result<(), Error> {
    let registry = Registry::load(paths)?;
    let seen = LastSeen::load(paths);
    let now = unix_now();
    let last = |e: &DeviceEntry| seen.get(&DeviceKey::of(e)).map(|s| s.at);
    if json {
        let devices: Vec<Value> = registry
            .devices()
            .iter()
            .map(|e| entry_json(e, last(e), show_secrets))
            .collect();
        return output::emit(&output::json_doc(&json!({ "devices": devices })));
    }
    if registry.is_empty() {
        return output::emit(
            "No devices yet. Add one with `mijia device add NAME --ip ADDRESS --token HEX`.\n",
        );
    }
    let mut header = vec!["name", "room", "model", "address", "last seen"];
    if show_secrets {
        header.push("token");
    }
    let mut t = output::table(&header);
    for e in registry.devices() {
        let mut row = vec![
            e.name.clone(),
            e.room.clone().unwrap_or_else(|| "-".into()),
            e.model.clone().unwrap_or_else(|| "-".into()),
            address_text(e),
            output::ago(last(e), now),
        ];
        if show_secrets {
            row.push(e.token.reveal());
        }
        t.add_row(row);
    }
    output::emit(&format!("{t}\n"))
}
