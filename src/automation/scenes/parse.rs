//! The scenes file, from TOML text to validated [`Scene`]s. Every error
//! names where it is: the scene, the step (`2.1` inside a parallel group)
//! and the field.

use serde_json::Value;
use toml::{Table, Value as Toml};

use super::{ConditionSpec, Scene, Step, StepKind, DEFAULT_WAIT_TIMEOUT};
use crate::automation::condition::CompareOp;
use crate::automation::time::parse_duration;

const STEP_KINDS: &str = "set, action, parallel, wait, guard";

/// Where an error is.
struct At<'a> {
    scene: &'a str,
    step: &'a str,
}

impl At<'_> {
    fn err(&self, field: &str, msg: impl std::fmt::Display) -> String {
        format!(
            "scene '{}', step {}: `{field}`: {msg}",
            self.scene, self.step
        )
    }
}

/// Parses the file's text.
pub(super) fn parse(text: &str) -> Result<Vec<Scene>, String> {
    let doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.to_string().trim()))?;
    for key in doc.keys() {
        if key != "scene" {
            return Err(format!(
                "unknown top-level key `{key}`: the file holds [[scene]] tables only"
            ));
        }
    }
    let Some(scenes) = doc.get("scene") else {
        return Ok(Vec::new());
    };
    let Toml::Array(scenes) = scenes else {
        return Err("`scene` must be an array of tables: write [[scene]]".into());
    };
    let mut out: Vec<Scene> = Vec::with_capacity(scenes.len());
    for (i, s) in scenes.iter().enumerate() {
        let scene = parse_scene(s, i + 1)?;
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&scene.name)) {
            return Err(format!(
                "scene '{}' is defined twice; scene names must be unique",
                scene.name
            ));
        }
        out.push(scene);
    }
    Ok(out)
}

fn parse_scene(v: &Toml, index: usize) -> Result<Scene, String> {
    let Toml::Table(t) = v else {
        return Err(format!("scene #{index} is not a table: write [[scene]]"));
    };
    let name = match t.get("name") {
        Some(Toml::String(s)) => s.trim().to_string(),
        Some(_) => return Err(format!("scene #{index}: `name` must be a string")),
        None => return Err(format!("scene #{index}: `name` is missing")),
    };
    check_name(&name).map_err(|e| format!("scene #{index}: `name`: {e}"))?;
    let description = match t.get("description") {
        None => None,
        Some(Toml::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(_) => return Err(format!("scene '{name}': `description` must be a string")),
    };
    for key in t.keys() {
        if !matches!(key.as_str(), "name" | "description" | "step") {
            return Err(format!(
                "scene '{name}': unknown key `{key}`; a scene has name, description and [[scene.step]] tables"
            ));
        }
    }
    let steps = match t.get("step") {
        Some(Toml::Array(steps)) if !steps.is_empty() => steps,
        Some(Toml::Array(_)) | None => {
            return Err(format!(
                "scene '{name}' has no steps; add [[scene.step]] tables"
            ))
        }
        Some(_) => {
            return Err(format!(
                "scene '{name}': `step` must be an array of tables: write [[scene.step]]"
            ))
        }
    };
    let steps = steps
        .iter()
        .enumerate()
        .map(|(i, s)| parse_step(s, &name, &(i + 1).to_string(), false))
        .collect::<Result<_, _>>()?;
    Ok(Scene {
        name,
        description,
        steps,
    })
}

/// Scene names: letters, digits, `-`, `_`, `.`, starting with a letter or
/// digit, at most 64 characters.
fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid scene name: use letters, digits, '-', '_' and '.' \
             (at most 64), starting with a letter or digit"
        ))
    }
}

fn parse_step(v: &Toml, scene: &str, path: &str, in_parallel: bool) -> Result<Step, String> {
    let at = At { scene, step: path };
    let Toml::Table(t) = v else {
        return Err(format!(
            "scene '{scene}', step {path}: a step must be a table with one of {STEP_KINDS}"
        ));
    };
    let name = match t.get("name") {
        None => None,
        Some(Toml::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(_) => return Err(at.err("name", "must be a string")),
    };
    let kinds: Vec<&str> = t
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "name")
        .collect();
    for k in &kinds {
        if !STEP_KINDS.split(", ").any(|s| s == *k) {
            return Err(format!(
                "scene '{scene}', step {path}: unknown key `{k}`; a step has one of {STEP_KINDS} \
                 (and an optional name)"
            ));
        }
    }
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "scene '{scene}', step {path}: the step does nothing; give one of {STEP_KINDS}"
            ))
        }
        many => {
            return Err(format!(
                "scene '{scene}', step {path}: one step has {}; split it into one step each",
                many.join(" and ")
            ))
        }
    };
    let body = t.get(kind).unwrap_or(&Toml::Boolean(false));
    let kind = match kind {
        "set" => parse_set(body, &at)?,
        "action" => parse_action(body, &at)?,
        "parallel" => {
            let Toml::Array(members) = body else {
                return Err(at.err("parallel", "must be an array of steps: parallel = [ { set = {…} }, … ]"));
            };
            if members.is_empty() {
                return Err(at.err("parallel", "is empty; give the steps to run together"));
            }
            StepKind::Parallel(
                members
                    .iter()
                    .enumerate()
                    .map(|(j, m)| parse_step(m, scene, &format!("{path}.{}", j + 1), true))
                    .collect::<Result<_, _>>()?,
            )
        }
        "wait" => match body {
            Toml::String(d) => StepKind::Sleep(parse_duration(d).map_err(|e| at.err("wait", e))?),
            Toml::Table(w) => {
                let condition = parse_condition(w, "wait", &at, &["timeout"])?;
                let timeout = match w.get("timeout") {
                    None => DEFAULT_WAIT_TIMEOUT,
                    Some(Toml::String(d)) => {
                        parse_duration(d).map_err(|e| at.err("wait.timeout", e))?
                    }
                    Some(Toml::Integer(n)) if *n >= 0 => std::time::Duration::from_secs(
                        u64::try_from(*n).unwrap_or_default(),
                    ),
                    Some(_) => return Err(at.err("wait.timeout", "must be a duration like \"10s\"")),
                };
                StepKind::WaitFor { condition, timeout }
            }
            _ => {
                return Err(at.err(
                    "wait",
                    "must be a duration (wait = \"500ms\") or a condition (wait = { device, property, op, value, timeout })",
                ))
            }
        },
        _ => {
            if in_parallel {
                return Err(at.err(
                    "guard",
                    "a guard cannot be inside a parallel group; put it before the group",
                ));
            }
            let Toml::Table(g) = body else {
                return Err(at.err("guard", "must be a table: guard = { device, property, op, value }"));
            };
            let condition = parse_condition(g, "guard", &at, &["otherwise"])?;
            let fail = match g.get("otherwise") {
                None => false,
                Some(Toml::String(s)) if s == "stop" => false,
                Some(Toml::String(s)) if s == "fail" => true,
                Some(_) => return Err(at.err("guard.otherwise", "must be \"stop\" or \"fail\"")),
            };
            StepKind::Guard { condition, fail }
        }
    };
    Ok(Step { name, kind })
}

fn device_of(t: &Table, field: &str, at: &At<'_>) -> Result<String, String> {
    match t.get("device") {
        Some(Toml::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(_) => Err(at.err(&format!("{field}.device"), "must be a device name")),
        None => Err(at.err(
            &format!("{field}.device"),
            "is missing; name a registered device (see `mijia device list`)",
        )),
    }
}

fn only_keys(t: &Table, field: &str, allowed: &[&str], at: &At<'_>) -> Result<(), String> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(at.err(
                &format!("{field}.{k}"),
                format!("unknown key; {field} takes {}", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

fn parse_set(body: &Toml, at: &At<'_>) -> Result<StepKind, String> {
    let Toml::Table(t) = body else {
        return Err(at.err(
            "set",
            "must be a table: set = { device = \"…\", values = { NAME = VALUE } }",
        ));
    };
    only_keys(t, "set", &["device", "values"], at)?;
    let device = device_of(t, "set", at)?;
    let Some(Toml::Table(values)) = t.get("values") else {
        return Err(at.err(
            "set.values",
            "must be a table of NAME = VALUE, e.g. values = { \"light.on\" = true }",
        ));
    };
    if values.is_empty() {
        return Err(at.err("set.values", "is empty; give NAME = VALUE pairs"));
    }
    let values = values
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                scalar(v).map_err(|e| at.err(&format!("set.values.{k}"), e))?,
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(StepKind::Set { device, values })
}

fn parse_action(body: &Toml, at: &At<'_>) -> Result<StepKind, String> {
    let Toml::Table(t) = body else {
        return Err(at.err(
            "action",
            "must be a table: action = { device = \"…\", name = \"…\" }",
        ));
    };
    only_keys(t, "action", &["device", "name", "args"], at)?;
    let device = device_of(t, "action", at)?;
    let action = match t.get("name") {
        Some(Toml::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(at.err("action.name", "must be the action's name, e.g. \"toggle\"")),
    };
    let args = match t.get("args") {
        None => Vec::new(),
        Some(Toml::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                scalar(v)
                    .map(|v| super::value_text(&v))
                    .map_err(|e| at.err(&format!("action.args[{i}]"), e))
            })
            .collect::<Result<_, _>>()?,
        Some(Toml::Table(named)) => named
            .iter()
            .map(|(k, v)| {
                scalar(v)
                    .map(|v| format!("{k}={}", super::value_text(&v)))
                    .map_err(|e| at.err(&format!("action.args.{k}"), e))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(at.err(
                "action.args",
                "must be a list (by position) or a table (by name)",
            ))
        }
    };
    Ok(StepKind::Action {
        device,
        action,
        args,
    })
}

fn parse_condition(
    t: &Table,
    field: &str,
    at: &At<'_>,
    extra: &[&str],
) -> Result<ConditionSpec, String> {
    let mut allowed = vec!["device", "property", "op", "value"];
    allowed.extend_from_slice(extra);
    only_keys(t, field, &allowed, at)?;
    let device = device_of(t, field, at)?;
    let property = match t.get("property") {
        Some(Toml::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(at.err(&format!("{field}.property"), "must be a property name")),
    };
    let op: CompareOp = match t.get("op") {
        Some(Toml::String(s)) => s.parse().map_err(|e| at.err(&format!("{field}.op"), e))?,
        _ => {
            return Err(at.err(
                &format!("{field}.op"),
                "must be one of \"==\", \"!=\", \"<\", \"<=\", \">\", \">=\"",
            ))
        }
    };
    let value = match t.get("value") {
        Some(v) => scalar(v).map_err(|e| at.err(&format!("{field}.value"), e))?,
        None => return Err(at.err(&format!("{field}.value"), "is missing")),
    };
    Ok(ConditionSpec {
        device,
        property,
        op,
        value,
    })
}

/// A value: a string, number or boolean.
fn scalar(v: &Toml) -> Result<Value, String> {
    match v {
        Toml::String(s) => Ok(Value::String(s.clone())),
        Toml::Integer(i) => Ok(Value::from(*i)),
        Toml::Float(f) if f.is_finite() => Ok(Value::from(*f)),
        Toml::Boolean(b) => Ok(Value::Bool(*b)),
        _ => Err("must be a string, a number or true/false".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const GOOD: &str = r#"
[[scene]]
name = "movie-night"
description = "Lights down"

[[scene.step]]
name = "dim"
set = { device = "lamp", values = { "light.on" = true, "light.brightness" = 20 } }

[[scene.step]]
parallel = [
  { set = { device = "plug", values = { "switch.on" = "on" } } },
  { action = { device = "lamp", name = "toggle" } },
  { wait = "250ms" },
]

[[scene.step]]
wait = { device = "sensor", property = "temperature", op = "<", value = 30.5, timeout = "10s" }

[[scene.step]]
guard = { device = "plug", property = "switch.on", op = "==", value = true, otherwise = "fail" }

[[scene.step]]
action = { device = "lamp", name = "set-brightness", args = { brightness = 40 } }
"#;

    #[test]
    fn parses_every_step_kind() {
        let scenes = parse(GOOD).unwrap_or_else(|e| panic!("{e}"));
        let [s] = scenes.as_slice() else {
            panic!("one scene expected: {scenes:?}")
        };
        assert_eq!(s.name, "movie-night");
        assert_eq!(s.steps.len(), 5);
        assert_eq!(s.steps[0].name.as_deref(), Some("dim"));
        let StepKind::Parallel(members) = &s.steps[1].kind else {
            panic!("parallel expected")
        };
        assert_eq!(members.len(), 3);
        assert_eq!(members[2].kind, StepKind::Sleep(Duration::from_millis(250)));
        assert!(matches!(
            &s.steps[2].kind,
            StepKind::WaitFor { timeout, condition } if *timeout == Duration::from_secs(10)
                && condition.op == CompareOp::Lt
        ));
        assert!(matches!(
            &s.steps[3].kind,
            StepKind::Guard { fail: true, .. }
        ));
        assert!(matches!(
            &s.steps[4].kind,
            StepKind::Action { args, .. } if args == &["brightness=40".to_string()]
        ));
        assert_eq!(s.devices(), vec!["lamp", "plug", "sensor"]);
        let ops = s.operations();
        assert_eq!(ops.len(), 6);
        assert_eq!(ops[1].step, "2.1");
    }

    #[test]
    fn errors_name_scene_step_and_field() {
        let cases = [
            ("[[scene]]\nname = \"a\"\n", "scene 'a' has no steps"),
            ("[[scene]]\n[[scene.step]]\nwait = \"1s\"\n", "scene #1: `name` is missing"),
            ("[[scene]]\nname = \"a b\"\n[[scene.step]]\nwait = \"1s\"\n", "not a valid scene name"),
            (
                "[[scene]]\nname = \"a\"\n[[scene.step]]\nwait = { device = \"s\", property = \"t\", op = \"=~\", value = 1 }\n",
                "scene 'a', step 1: `wait.op`",
            ),
            (
                "[[scene]]\nname = \"a\"\n[[scene.step]]\nwait = \"1s\"\n[[scene.step]]\nparallel = [ { set = { device = \"x\", values = { v = [1] } } } ]\n",
                "scene 'a', step 2.1: `set.values.v`",
            ),
            (
                "[[scene]]\nname = \"a\"\n[[scene.step]]\nset = { device = \"x\", values = { v = 1 } }\nwait = \"1s\"\n",
                "split it",
            ),
            (
                "[[scene]]\nname = \"a\"\n[[scene.step]]\nparallel = [ { guard = { device = \"x\", property = \"p\", op = \"==\", value = 1 } } ]\n",
                "step 1.1: `guard`",
            ),
            ("[[scene]]\nname = \"a\"\n[[scene.step]]\nwait = \"soon\"\n", "`wait`: invalid duration"),
            ("[[scene]]\nname = \"a\"\n[[scene.step]]\nfrobnicate = 1\n", "unknown key `frobnicate`"),
            (
                "[[scene]]\nname = \"a\"\n[[scene.step]]\nwait = \"1s\"\n[[scene]]\nname = \"A\"\n[[scene.step]]\nwait = \"1s\"\n",
                "defined twice",
            ),
            ("scene = 1", "array of tables"),
            ("[[scene\n", "not valid TOML"),
        ];
        for (text, want) in cases {
            match parse(text) {
                Ok(s) => panic!("accepted {text:?}: {s:?}"),
                Err(e) => assert!(e.contains(want), "{text:?}: {e:?} lacks {want:?}"),
            }
        }
        assert_eq!(parse(""), Ok(Vec::new()));
    }
}
