//! `mijia spec …`: what mijia knows about models.
//!
//! - `spec MODEL [--json]`: services, properties (access, format, range or
//!   value list, unit) and actions (arguments by name), from the model's
//!   MIoT spec or its legacy table ([`describe_model`]).
//! - `spec import FILE [--model M]`: validates a MIoT spec document and
//!   installs it in the user spec directory ([`import_spec`]); a malformed
//!   document is an error naming the file and the element at fault.
//! - `spec list`: every model with a spec, bundled or the user's, and the
//!   legacy families.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::args::GlobalArgs;
use super::output;
use super::plan::{model_arg, path_arg};
use crate::home::legacy;
use crate::home::specs::{describe_model, import_spec, ModelTable};
use crate::home::Paths;
use crate::Error;
use mijia_proto::miot::{SpecSource, SpecStore};

/// `mijia spec` arguments.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    override_usage = "mijia spec MODEL\n       \
        mijia spec import FILE [--model MODEL]\n       \
        mijia spec list"
)]
pub struct SpecArgs {
    /// The model to describe, e.g. yeelink.light.color1.
    #[arg(value_name = "MODEL", required = true)]
    pub model: Option<String>,

    /// Import or list specs.
    #[command(subcommand)]
    pub command: Option<SpecCommand>,
}

/// `mijia spec` subcommands.
#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Check a MIoT spec document (JSON) and add it to the spec directory.
    /// The model is --model, else the file name (MODEL.json), else looked
    /// up by the document's type.
    Import {
        /// The spec document.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List the models mijia has a spec for, and the legacy families.
    List,
}

/// A checked `spec` command.
#[derive(Debug, Clone)]
pub enum SpecPlan {
    /// Describe a model.
    Show(String),
    /// Import a file.
    Import {
        /// The document.
        file: PathBuf,
        /// The model, when given.
        model: Option<String>,
    },
    /// List.
    List,
}

/// Checks the arguments.
pub fn plan(a: &SpecArgs, g: &GlobalArgs) -> Result<SpecPlan, Error> {
    Ok(match (&a.command, &a.model) {
        (Some(SpecCommand::Import { file }), _) => SpecPlan::Import {
            file: path_arg(file, "FILE")?,
            model: model_arg(g)?,
        },
        (Some(SpecCommand::List), _) => SpecPlan::List,
        (None, Some(m)) if !m.trim().is_empty() => SpecPlan::Show(m.trim().to_string()),
        (None, _) => {
            return Err(Error::usage(
                "name a model, e.g. `mijia spec yeelink.light.color1`; `mijia spec list` shows \
                 the models mijia knows",
            ))
        }
    })
}

/// Runs a `spec` command.
pub fn execute(
    plan: SpecPlan,
    store: &SpecStore,
    paths: Option<&Paths>,
    json: bool,
) -> Result<(), Error> {
    match plan {
        SpecPlan::Show(model) => {
            let table = describe_model(store, &model).ok_or_else(|| {
                Error::usage(format!(
                    "mijia has no spec or legacy table for {model}; `mijia spec list` shows the \
                     models it knows, and `mijia spec import FILE --model {model}` adds a spec"
                ))
            })?;
            if json {
                let doc = serde_json::to_value(&table).unwrap_or_else(|_| json!({}));
                return output::emit(&output::json_doc(&doc));
            }
            output::emit(&render(&table))
        }
        SpecPlan::Import { file, model } => {
            let paths = paths.ok_or_else(|| Error::usage("no home directory for user specs"))?;
            let done = import_spec(paths, &file, model.as_deref())?;
            for n in &done.notes {
                eprintln!("note: {}: {n}", file.display());
            }
            if json {
                let doc = serde_json::to_value(&done).unwrap_or_else(|_| json!({}));
                return output::emit(&output::json_doc(&doc));
            }
            let mut text = format!(
                "Imported {} as the spec of {} ({}).",
                file.display(),
                done.model,
                done.path.display()
            );
            if done.replaced {
                text.push_str(" It replaces your earlier spec for this model.");
            }
            if done.overrides_bundled {
                text.push_str(" It overrides the bundled spec.");
            }
            output::emit(&format!("{text}\n"))
        }
        SpecPlan::List => list(store, json),
    }
}

fn list(store: &SpecStore, json: bool) -> Result<(), Error> {
    let rows: Vec<(String, &'static str, String)> = store
        .models()
        .into_iter()
        .map(|m| {
            let (kind, file) = match store.source(&m) {
                Some(SpecSource::User { file }) => ("user", file),
                Some(SpecSource::Bundled { file, .. }) => ("bundled", file.to_string()),
                None => ("-", String::new()),
            };
            (m, kind, file)
        })
        .collect();
    let families = legacy::all_tables();
    if json {
        let specs: Vec<Value> = rows
            .iter()
            .map(|(m, kind, file)| json!({"model": m, "source": kind, "file": file}))
            .collect();
        let legacy: Vec<Value> = families
            .iter()
            .map(|t| json!({"id": t.id, "covers": t.label}))
            .collect();
        return output::emit(&output::json_doc(
            &json!({"specs": specs, "legacy": legacy}),
        ));
    }
    let mut t = output::table(&["model", "source", "file"]);
    for (m, kind, file) in &rows {
        t.add_row(vec![m.clone(), kind.to_string(), file.clone()]);
    }
    let mut l = output::table(&["legacy table", "covers"]);
    for f in families {
        l.add_row(vec![f.id.to_string(), f.label.to_string()]);
    }
    output::emit(&format!(
        "MIoT specs\n{t}\n\nLegacy miIO tables (status, get and set by name)\n{l}\n"
    ))
}

/// The tables of `spec MODEL`.
fn render(t: &ModelTable) -> String {
    let mut out = format!("{} ({}): {}\n", t.model, t.protocol, t.source);
    if let Some(note) = &t.note {
        out.push_str(&format!("note: {note}\n"));
    }
    if !t.services.is_empty() {
        let mut s = output::table(&["siid", "service", "description"]);
        for r in &t.services {
            s.add_row(vec![
                r.siid.to_string(),
                r.name.clone(),
                r.description.clone(),
            ]);
        }
        out.push_str(&format!("\nServices\n{s}\n"));
    }
    let mut p = output::table(&[
        "property",
        "id",
        "access",
        "format",
        "range or values",
        "unit",
        "description",
    ]);
    for r in &t.properties {
        p.add_row(vec![
            r.name.clone(),
            r.id.clone(),
            r.access.clone(),
            r.format.clone(),
            r.allowed.clone(),
            r.unit.clone().unwrap_or_default(),
            r.description.clone(),
        ]);
    }
    out.push_str(&format!("\nProperties\n{p}\n"));
    if !t.actions.is_empty() {
        let mut a = output::table(&["action", "id", "arguments", "outputs", "description"]);
        for r in &t.actions {
            a.add_row(vec![
                r.name.clone(),
                r.id.clone(),
                r.ins.join(", "),
                r.outs.join(", "),
                r.description.clone(),
            ]);
        }
        out.push_str(&format!("\nActions\n{a}\n"));
    }
    out
}
