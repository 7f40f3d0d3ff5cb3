//! Scenes for assistants: the user's scenes (the same `scenes.toml` that
//! `mijia scene` uses) offered as the `run_scene` tool.
//!
//! The rules the gate applies to `run_scene`:
//!
//! - **Sharing.** A scene runs only if the user shared it by name
//!   (`mijia policy expose --scene NAME`) *and* every device it touches —
//!   waits and guards included — is exposed. `expose --all` shares
//!   devices, not scenes. A scene that is not shared, or that touches a
//!   device that is not, is refused before any packet is sent.
//! - **Tier.** Each operation is classified with the same table as the
//!   typed tools ([`super::tier::classify`]: the device's type, the
//!   service and the property or action); the scene's tier is the highest
//!   of them and at least `control`. Reads (waits, guards) do not raise
//!   it. A property or action that cannot be resolved counts as
//!   sensitive. Every operation must also be within its device's cap.
//! - **Consent.** A control-tier scene needs a grant for that scene (asked
//!   once, kept for the grant lifetime); the grant is bound to the scene's
//!   content, so editing the scene asks again. A sensitive scene needs
//!   the user's confirmation on every run.
//! - **Dry run.** `dry_run: true` checks every step against the specs and
//!   sends nothing; it needs sharing and caps but no consent.
//! - **Route.** Steps reach their devices the way the server's typed
//!   tools do (`mijia --via local|cloud|auto mcp`): the local network
//!   first, the Xiaomi cloud when a device does not answer there and a
//!   session exists (an action only when no hello was answered). Every
//!   decision above is taken before any IO, whichever route follows; a
//!   step that used the cloud carries `"route": "cloud"`.
//!
//! The scenes file is re-read on every call, like the policy.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::gate::SceneProvider;
use super::tier::{self, Capability, Tier};
use super::tools;
use crate::automation::scenes::{describe_step, Operation, OperationKind, Scene, SceneFile, Step};
use crate::home::device::ProfileKind;
use crate::home::{ModelProfile, Paths};

/// The scenes of a home: `<config dir>/scenes.toml` (a missing file is no
/// scenes), or a given file (which must exist).
#[derive(Debug, Clone)]
pub struct FileScenes {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    Home(Paths),
    File(PathBuf),
}

impl FileScenes {
    /// The home's scenes file, as `mijia scene` reads it.
    pub fn home(paths: Paths) -> Self {
        FileScenes {
            source: Source::Home(paths),
        }
    }

    /// A scenes file elsewhere.
    pub fn file(path: PathBuf) -> Self {
        FileScenes {
            source: Source::File(path),
        }
    }
}

impl SceneProvider for FileScenes {
    fn scenes(&self) -> Result<Vec<Scene>, String> {
        let file = match &self.source {
            Source::Home(paths) => SceneFile::load(paths),
            Source::File(path) => SceneFile::load_from(path),
        };
        file.map(|f| f.scenes).map_err(|e| e.to_string())
    }
}

/// Scenes held in memory (for tests and embedding).
#[derive(Debug, Clone, Default)]
pub struct StaticScenes(pub Vec<Scene>);

impl SceneProvider for StaticScenes {
    fn scenes(&self) -> Result<Vec<Scene>, String> {
        Ok(self.0.clone())
    }
}

/// The service and item a property or action name resolves to on this
/// profile; `None` when it does not resolve.
fn target_of(profile: &ModelProfile, kind: &OperationKind) -> Option<Vec<(String, String)>> {
    let spec = profile.spec().map(|s| s.as_ref());
    match kind {
        OperationKind::Read { .. } => Some(Vec::new()),
        OperationKind::Set { properties } => properties
            .iter()
            .map(|p| {
                profile
                    .resolve_prop(p)
                    .ok()
                    .map(|r| tools::item_of(spec, &r))
            })
            .collect(),
        OperationKind::Action { name } => match &profile.kind {
            ProfileKind::Miot { spec, names } => {
                let (siid, aiid) = names.resolve_action(name).ok()?;
                let service = spec.service(siid)?.name().to_string();
                let item = spec.action(siid, aiid)?.name().to_string();
                Some(vec![(service, item)])
            }
            ProfileKind::Legacy(t) => {
                let label = profile.model.as_deref().unwrap_or("this device");
                let a = t.resolve_action(label, name).ok()?;
                Some(vec![(String::new(), a.name.to_string())])
            }
            ProfileKind::Unknown => None,
        },
    }
}

/// The tier of one scene operation on a device with this profile. Reads
/// are `read`; writes are classified like the typed tools; a name that
/// does not resolve is `sensitive` (or `forbidden` if it names money).
pub fn operation_tier(op: &Operation, profile: &ModelProfile) -> Tier {
    if let OperationKind::Read { .. } = op.kind {
        return Tier::Read;
    }
    let dtype = tools::device_type(profile);
    let Some(targets) = target_of(profile, &op.kind) else {
        let raw: Vec<&str> = match &op.kind {
            OperationKind::Set { properties } => properties.iter().map(String::as_str).collect(),
            OperationKind::Action { name } => vec![name.as_str()],
            OperationKind::Read { property } => vec![property.as_str()],
        };
        return if raw.iter().any(|n| tier::is_forbidden_name(n)) {
            Tier::Forbidden
        } else {
            Tier::Sensitive
        };
    };
    let mut out = Capability::Scene.base_tier();
    for (service, item) in &targets {
        let t = tier::classify(
            &dtype,
            Capability::Scene,
            tier::Target {
                service: Some(service.as_str()).filter(|s| !s.is_empty()),
                item: Some(item.as_str()),
            },
        );
        out = out.max(t);
    }
    out
}

/// The grant key of a scene: its name and a digest of its steps, so a
/// grant does not outlive an edit of the scene.
pub fn scene_key(scene: &Scene) -> String {
    let mut h = Sha256::new();
    h.update(scene.render().as_bytes());
    let digest = hex::encode(h.finalize());
    format!(
        "scene:{}:{}",
        scene.name.to_ascii_lowercase(),
        digest.get(..16).unwrap_or(&digest)
    )
}

fn flatten(steps: &[Step], prefix: Option<&str>, out: &mut Vec<String>) {
    for (i, s) in steps.iter().enumerate() {
        let path = match prefix {
            Some(p) => format!("{p}.{}", i + 1),
            None => (i + 1).to_string(),
        };
        match &s.kind {
            crate::automation::scenes::StepKind::Parallel(members) => {
                flatten(members, Some(&path), out);
            }
            other => out.push(format!("{path}: {}", describe_step(other))),
        }
    }
}

/// The scene's steps in one line for a confirmation question (at most
/// `max` steps, then a count).
pub fn steps_line(scene: &Scene, max: usize) -> String {
    let mut all = Vec::new();
    flatten(&scene.steps, None, &mut all);
    let more = all.len().saturating_sub(max);
    all.truncate(max);
    let mut text = all.join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;
    use crate::agent::approvals;
    use crate::agent::audit::{AuditLog, Decision};
    use crate::agent::gate::{Answer, Asker, BoxFuture, CallMeta, Channel, Gate, Outcome};
    use crate::agent::grants;
    use crate::agent::policy::Policy;
    use crate::home::{load_spec_store, DeviceEntry, ModelCatalog, Registry};
    use crate::transport::ClientConfig;
    use mijia_proto::miio::Token;

    const LAMP: &str = "yeelink.light.color1";
    const HEATER: &str = "zhimi.heater.mc2";

    const SCENES: &str = r#"
[[scene]]
name = "evening"
[[scene.step]]
set = { device = "lamp", values = { "light.on" = true, "light.brightness" = 30 } }
[[scene.step]]
guard = { device = "heater", property = "heater.on", op = "==", value = false }

[[scene]]
name = "warm-up"
[[scene.step]]
parallel = [
  { set = { device = "lamp", values = { "light.on" = true } } },
  { set = { device = "heater", values = { "heater.on" = true } } },
]

[[scene]]
name = "lamp-and-hidden"
[[scene.step]]
set = { device = "lamp", values = { "light.on" = false } }
[[scene.step]]
set = { device = "hidden", values = { "light.on" = false } }

[[scene]]
name = "bad-value"
[[scene.step]]
set = { device = "lamp", values = { "light.brightness" = 400 } }
"#;

    fn scenes() -> Vec<Scene> {
        SceneFile::parse(SCENES, Path::new("scenes.toml"))
            .unwrap()
            .scenes
    }

    fn scene(name: &str) -> Scene {
        scenes().into_iter().find(|s| s.name == name).unwrap()
    }

    /// A home whose devices sit on a loopback address nothing listens on:
    /// every test here must decide before any IO.
    struct Home {
        _dir: tempfile::TempDir,
        paths: Paths,
    }

    fn home() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::at(dir.path());
        Registry::update(&paths, |reg| {
            for (i, (name, model, room)) in [
                ("lamp", LAMP, "Office"),
                ("heater", HEATER, "Bedroom"),
                ("hidden", LAMP, "Hall"),
            ]
            .into_iter()
            .enumerate()
            {
                let ip = std::net::Ipv4Addr::new(127, 62, 9, u8::try_from(i + 1).unwrap());
                let mut e = DeviceEntry::new(name, ip.into(), Token::from_bytes([7u8; 16]));
                e.model = Some(model.to_string());
                e.room = Some(room.to_string());
                e.did = Some(9_000 + u64::try_from(i).unwrap());
                reg.add(e)?;
            }
            Ok(())
        })
        .unwrap();
        Policy::update(&paths, |p| {
            p.expose_device("lamp");
            p.expose_device("heater");
            for s in ["evening", "warm-up", "lamp-and-hidden", "bad-value"] {
                p.expose_scene(s);
            }
            p.set("confirm-timeout", "1s")
        })
        .unwrap();
        Home { _dir: dir, paths }
    }

    fn gate(home: &Home) -> Gate {
        let (store, _) = load_spec_store(&home.paths);
        let config = ClientConfig {
            timeout: Duration::from_millis(200),
            retries: 0,
            ..ClientConfig::default()
        };
        Gate::new(home.paths.clone(), ModelCatalog::new(store), config, None)
            .with_scenes(Arc::new(StaticScenes(scenes())))
    }

    fn meta() -> CallMeta {
        CallMeta {
            transport: "direct",
            client: Some("test/1".into()),
            era: None,
        }
    }

    /// Counts questions; always says no.
    #[derive(Default)]
    struct No(std::sync::Mutex<Vec<String>>);

    impl Asker for No {
        fn ask<'a>(&'a self, message: &'a str, _t: Duration) -> BoxFuture<'a, Answer> {
            Box::pin(async move {
                self.0.lock().unwrap().push(message.to_string());
                Answer::Decline
            })
        }
    }

    async fn run(gate: &Gate, args: Value, channel: Channel<'_>) -> (bool, String, Value) {
        match gate.call("run_scene", args, &meta(), channel).await {
            Ok(Outcome::Done(r)) => (r.is_error, r.text, r.structured.unwrap_or(Value::Null)),
            Ok(Outcome::NeedInput { message, .. }) => {
                (true, format!("NEED INPUT: {message}"), Value::Null)
            }
            Err(e) => (true, format!("GATE ERROR: {e}"), Value::Null),
        }
    }

    fn decisions(home: &Home) -> Vec<(Option<String>, Decision)> {
        AuditLog::new(&home.paths)
            .read_all()
            .unwrap()
            .0
            .into_iter()
            .map(|r| (r.scene, r.decision))
            .collect()
    }

    #[test]
    fn scene_tier_is_the_highest_tier_of_what_it_touches() {
        let (store, _) = load_spec_store(&Paths::at(Path::new("/nonexistent-mijia-home")));
        let catalog = ModelCatalog::new(store);
        let profile_of = |device: &str| match device {
            "heater" => catalog.profile(Some(HEATER)),
            _ => catalog.profile(Some(LAMP)),
        };
        let tier_of = |s: &Scene| {
            tier::scene_tier(
                s.operations()
                    .iter()
                    .map(|op| operation_tier(op, &profile_of(&op.device))),
            )
        };
        // A lamp write plus a guard that only reads the heater: control.
        let evening = scene("evening");
        let ops = evening.operations();
        assert_eq!(operation_tier(&ops[0], &profile_of("lamp")), Tier::Control);
        assert_eq!(operation_tier(&ops[1], &profile_of("heater")), Tier::Read);
        assert_eq!(tier_of(&evening), Tier::Control);
        // Writing the heater inside a parallel group: sensitive.
        assert_eq!(tier_of(&scene("warm-up")), Tier::Sensitive);
        // A name that does not resolve counts as sensitive; money is forbidden.
        let unknown = Operation {
            step: "1".into(),
            device: "lamp".into(),
            kind: OperationKind::Set {
                properties: vec!["light.no-such-thing".into()],
            },
        };
        assert_eq!(
            operation_tier(&unknown, &profile_of("lamp")),
            Tier::Sensitive
        );
        let pay = Operation {
            step: "1".into(),
            device: "lamp".into(),
            kind: OperationKind::Action {
                name: "buy-filter".into(),
            },
        };
        assert_eq!(operation_tier(&pay, &profile_of("lamp")), Tier::Forbidden);
        // A model without a spec or table: unknown type, sensitive.
        let unknown_model = catalog.profile(Some("acme.thing.v9"));
        assert_eq!(operation_tier(&ops[0], &unknown_model), Tier::Sensitive);
    }

    #[test]
    fn scene_keys_change_with_the_scene() {
        let a = scene("evening");
        let mut b = a.clone();
        assert_eq!(scene_key(&a), scene_key(&b));
        b.steps.pop();
        assert_ne!(scene_key(&a), scene_key(&b));
        assert!(scene_key(&a).starts_with("scene:evening:"));
        let line = steps_line(&scene("warm-up"), 1);
        assert!(line.starts_with("1.1: set lamp"), "{line}");
        assert!(line.ends_with("and 1 more"), "{line}");
    }

    #[tokio::test]
    async fn listing_follows_the_shared_scenes() {
        let home = home();
        let g = gate(&home);
        assert!(g.list_tools().iter().any(|t| t.name == "run_scene"));
        Policy::update(&home.paths, |p| {
            p.expose.scenes.clear();
            Ok(())
        })
        .unwrap();
        assert!(
            !g.list_tools().iter().any(|t| t.name == "run_scene"),
            "no scene shared, no run_scene"
        );
        let bare = Gate::new(
            home.paths.clone(),
            ModelCatalog::new(load_spec_store(&home.paths).0),
            ClientConfig::default(),
            None,
        );
        assert!(!bare.list_tools().iter().any(|t| t.name == "run_scene"));
    }

    #[tokio::test]
    async fn unshared_scenes_and_scenes_with_unexposed_devices_are_refused() {
        let home = home();
        let g = gate(&home);
        let user = No::default();
        // A device of the scene is not exposed: refused, nobody asked.
        let (err, text, _) = run(
            &g,
            json!({"scene": "lamp-and-hidden", "dry_run": null, "approval_id": null}),
            Channel::Ask(&user),
        )
        .await;
        assert!(err, "{text}");
        assert!(
            text.contains("'hidden'") && text.contains("mijia policy expose"),
            "{text}"
        );
        // Even a dry run needs every device exposed.
        let (err, text, _) = run(
            &g,
            json!({"scene": "lamp-and-hidden", "dry_run": true}),
            Channel::Ask(&user),
        )
        .await;
        assert!(err && text.contains("'hidden'"), "{text}");
        // Not shared by name: refused, even though its devices are exposed.
        Policy::update(&home.paths, |p| {
            p.unexpose_scene("evening");
            Ok(())
        })
        .unwrap();
        let (err, text, _) = run(&g, json!({"scene": "Evening"}), Channel::Ask(&user)).await;
        assert!(err, "{text}");
        assert!(text.contains("mijia policy expose --scene"), "{text}");
        // Unknown scene: the shared names are listed.
        let (err, text, _) = run(&g, json!({"scene": "party"}), Channel::Ask(&user)).await;
        assert!(
            err && text.contains("warm-up") && !text.contains("evening"),
            "{text}"
        );
        // A confirm smuggled in the arguments is rejected.
        let (err, text, _) = run(
            &g,
            json!({"scene": "warm-up", "confirm": true}),
            Channel::Ask(&user),
        )
        .await;
        assert!(err && text.contains("confirm"), "{text}");
        // Caps apply per device.
        Policy::update(&home.paths, |p| {
            p.set_device_cap("heater", Tier::Control);
            Ok(())
        })
        .unwrap();
        let (err, text, _) = run(&g, json!({"scene": "warm-up"}), Channel::Ask(&user)).await;
        assert!(err && text.contains("at most 'control'"), "{text}");
        assert!(user.0.lock().unwrap().is_empty(), "nobody was asked");
        assert_eq!(
            decisions(&home),
            [
                (Some("lamp-and-hidden".into()), Decision::Denied),
                (Some("lamp-and-hidden".into()), Decision::Denied),
                (Some("evening".into()), Decision::Denied),
                (None, Decision::Invalid),
                (None, Decision::Invalid),
                (Some("warm-up".into()), Decision::Denied),
            ]
        );
    }

    #[tokio::test]
    async fn sensitive_scenes_need_confirmation_every_time() {
        let home = home();
        let g = gate(&home);
        let user = No::default();
        let args = json!({"scene": "warm-up", "dry_run": null, "approval_id": null});
        // Declined: refused.
        let (err, text, _) = run(&g, args.clone(), Channel::Ask(&user)).await;
        assert!(err && text.contains("declined"), "{text}");
        let asked = user.0.lock().unwrap().clone();
        assert_eq!(asked.len(), 1);
        assert!(
            asked[0].contains("warm-up")
                && asked[0].contains("heater")
                && asked[0].contains("this once"),
            "{}",
            asked[0]
        );
        // 2026-07-28: the gate asks for input instead of running.
        match g
            .call("run_scene", args.clone(), &meta(), Channel::Mrtr(None))
            .await
        {
            Ok(Outcome::NeedInput {
                pending, message, ..
            }) => {
                assert_eq!(pending.kind, approvals::ApprovalKind::Confirm);
                assert!(message.contains("sensitive"), "{message}");
            }
            other => panic!("expected input_required, got {other:?}"),
        }
        // A client that cannot ask: a pending approval, nothing run.
        let (err, text, s) = run(&g, args.clone(), Channel::None).await;
        assert!(err && text.contains("mijia approve"), "{text}");
        assert_eq!(s["status"], json!("approval_required"));
        assert_eq!(s["scene"], json!("warm-up"));
        assert_eq!(s["tier"], json!("sensitive"));
        let id = s["approval_id"].as_str().unwrap().to_string();
        // Retrying with the id before the user approves runs nothing.
        let mut retry = args.clone();
        retry["approval_id"] = json!(id);
        let (err, text, _) = run(&g, retry, Channel::None).await;
        assert!(err && text.contains("still waiting"), "{text}");
        // Sensitive scenes never leave grants behind.
        assert!(grants::list(&home.paths).unwrap().is_empty());
        // A dry run needs no confirmation and sends nothing.
        let (err, text, s) = run(
            &g,
            json!({"scene": "warm-up", "dry_run": true}),
            Channel::Ask(&user),
        )
        .await;
        assert!(!err, "{text}");
        assert_eq!(s["dry_run"], json!(true));
        assert_eq!(s["tier"], json!("sensitive"));
        assert_eq!(s["steps"][0]["outcome"], json!("checked"));
        assert_eq!(user.0.lock().unwrap().len(), 1, "dry runs ask nobody");
        // A scene that does not check out is refused before asking.
        let (err, text, s) = run(&g, json!({"scene": "bad-value"}), Channel::Ask(&user)).await;
        assert!(err && text.contains("step 1"), "{text}");
        assert_eq!(s["failed_step"], json!("1"));
        assert_eq!(user.0.lock().unwrap().len(), 1);
        let d: Vec<Decision> = decisions(&home).into_iter().map(|(_, d)| d).collect();
        assert_eq!(
            d,
            [
                Decision::Declined,
                Decision::InputRequired,
                Decision::ApprovalPending,
                Decision::ApprovalPending,
                Decision::Allowed,
                Decision::Invalid,
            ]
        );
    }

    /// Always says yes.
    struct Yes;

    impl Asker for Yes {
        fn ask<'a>(&'a self, _message: &'a str, _t: Duration) -> BoxFuture<'a, Answer> {
            Box::pin(async move { Answer::Accept { confirm: true } })
        }
    }

    #[tokio::test]
    async fn scenes_follow_the_gates_route() {
        let home = home();
        let args = json!({"scene": "evening", "dry_run": null, "approval_id": null});
        // --via cloud and no session: the step fails before anything is
        // sent, saying so.
        let g = gate(&home).with_via(crate::cloud::Via::Cloud);
        let (err, text, s) = run(&g, args.clone(), Channel::Ask(&Yes)).await;
        assert!(err, "{text}");
        assert_eq!(s["steps"][0]["outcome"], json!("failed"), "{s}");
        let detail = s["steps"][0]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("not logged in"), "{detail}");
        // auto: the LAN does not answer and there is no session: the local
        // error, with what the user could do, worded for the assistant.
        let g = gate(&home);
        let (err, text, s) = run(&g, args, Channel::Ask(&Yes)).await;
        assert!(err, "{text}");
        let detail = s["steps"][0]["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("did not answer") || detail.contains("no reply"),
            "{detail}"
        );
        assert!(
            detail.contains("If the user runs `mijia cloud login`"),
            "{detail}"
        );
        assert!(s["steps"][0].get("route").is_none(), "{s}");
    }
}
