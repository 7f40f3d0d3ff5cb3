//! `mijia status`: every readable property of one device, of a room
//! (`--room`), or of the whole home (`--all`).
//!
//! One device is read with the [`crate::home::Device`] facade like `get`
//! (see [`super::exec`]). Several are polled at once with
//! [`poll_home`]: at most `--concurrency` devices in flight, each with its
//! own time limit, so one offline device costs its own limit and never
//! holds up the others. A progress bar is drawn on stderr only when stderr
//! is a terminal.
//!
//! Output: one table (device, property, value) and a summary line
//! (`30 devices: 28 ok, 2 unreachable (a, b)`), or with `--json` one
//! document `{"devices": [...], "summary": {...}}`. Every device that
//! answered is printed even when others failed; then the exit code is 4
//! if any device did not answer (unreachable, no reply, wrong token,
//! time limit), else 3 if any answered with an error, else 0.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use super::args::GlobalArgs;
use super::output::{self, Who};
use crate::home::poll::{DEFAULT_CONCURRENCY, DEFAULT_DEVICE_TIMEOUT};
use crate::home::{
    poll_home, DeviceTarget, ModelCatalog, Paths, PollOptions, PolledDevice, Registry,
};
use crate::transport::ClientConfig;
use crate::Error;

/// `mijia status` arguments.
#[derive(Debug, Args)]
#[command(override_usage = "mijia status DEVICE\n       \
    mijia status --room ROOM\n       \
    mijia status --all\n       \
    mijia --ip ADDRESS --token HEX status")]
pub struct StatusArgs {
    /// A registered device (leave out with --ip, --room or --all).
    #[arg(value_name = "DEVICE")]
    pub device: Option<String>,

    /// Every device in this room (case-insensitive).
    #[arg(long, value_name = "ROOM", conflicts_with_all = ["all", "device"])]
    pub room: Option<String>,

    /// Every registered device.
    #[arg(long, conflicts_with = "device")]
    pub all: bool,

    /// With --room or --all: how many devices are polled at the same time.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
}

/// A checked `status --room` / `status --all`.
#[derive(Debug, Clone)]
pub struct StatusPlan {
    /// "room Kitchen" or "home", for messages.
    pub scope: String,
    /// The devices, in registry order.
    pub targets: Vec<DeviceTarget>,
    /// Devices in flight at once.
    pub concurrency: usize,
}

/// `Some(device)` when the command reads one device (`None` inside means
/// the device is given by `--ip`), `None` for `--room` and `--all`.
pub fn single_device(a: &StatusArgs, g: &GlobalArgs) -> Result<Option<Option<String>>, Error> {
    if a.room.is_some() || a.all {
        if g.ip.is_some() {
            return Err(Error::usage(
                "--room and --all poll registered devices; drop --ip (and unset MIJIA_IP)",
            ));
        }
        return Ok(None);
    }
    match (&a.device, g.ip.is_some()) {
        (Some(_), true) => Err(Error::usage(
            "with --ip, `status` takes no DEVICE: the address names the device",
        )),
        (None, true) => Ok(Some(None)),
        (Some(d), false) => Ok(Some(Some(d.clone()))),
        (None, false) => Err(Error::usage(
            "name a device (`mijia status DEVICE`), a room (`--room ROOM`) or the whole home \
             (`--all`); `mijia device list` shows names and rooms",
        )),
    }
}

/// Validates `--room` / `--all` against the registry.
pub fn plan(
    a: &StatusArgs,
    paths: Option<&Paths>,
    catalog: &ModelCatalog,
) -> Result<StatusPlan, Error> {
    if a.concurrency == 0 {
        return Err(Error::usage(
            "invalid --concurrency 0: give how many devices to poll at once, at least 1",
        ));
    }
    let paths = paths.ok_or_else(|| Error::usage("no home directory to find devices in"))?;
    let registry = Registry::load(paths)?;
    let (scope, entries) = match &a.room {
        Some(room) => {
            let found = registry.in_room(room)?;
            let canonical = found
                .first()
                .and_then(|e| e.room.clone())
                .unwrap_or_else(|| room.clone());
            (format!("room {canonical}"), found)
        }
        None => ("home".to_string(), registry.devices().iter().collect()),
    };
    if entries.is_empty() {
        return Err(Error::usage(
            "no devices are registered yet; add one with \
             `mijia device add NAME --ip ADDRESS --token HEX`",
        ));
    }
    Ok(StatusPlan {
        scope,
        targets: entries
            .into_iter()
            .map(|e| DeviceTarget::from_entry(e, catalog))
            .collect(),
        concurrency: a.concurrency,
    })
}

/// The time limit for one device: every attempt the transport may make,
/// but at most [`DEFAULT_DEVICE_TIMEOUT`] unless one attempt is longer.
pub fn per_device_timeout(c: &ClientConfig) -> Duration {
    c.timeout
        .saturating_mul(c.attempts())
        .min(DEFAULT_DEVICE_TIMEOUT)
        .max(c.timeout)
}

/// Polls the devices, prints every result, and says which failed.
pub async fn execute(
    plan: StatusPlan,
    config: ClientConfig,
    json: bool,
    paths: &Paths,
) -> Result<(), Error> {
    let total = plan.targets.len();
    let opts = PollOptions {
        concurrency: plan.concurrency,
        per_device_timeout: per_device_timeout(&config),
        config,
    };
    let bar = progress_bar(total);
    let polled = poll_home(paths, plan.targets, &opts, |p| {
        if let Some(b) = &bar {
            b.set_message(p.name.to_string());
            b.inc(1);
        }
    })
    .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let summary = Summary::of(&polled);
    let text = if json {
        render_json(&polled, &summary)
    } else {
        format!("{}{}\n", render_table(&polled), summary.line())
    };
    output::emit(&text)?;
    summary.into_result(&plan.scope)
}

/// A progress bar on stderr, only when stderr is a terminal.
fn progress_bar(total: usize) -> Option<indicatif::ProgressBar> {
    if total < 2 || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} devices  {wide_msg}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn who(p: &PolledDevice) -> (String, Who<'_>) {
    let address = p.addr.to_string();
    let w = Who {
        name: &p.name,
        room: p.room.as_deref(),
        model: p.model.as_deref(),
        address: "",
    };
    (address, w)
}

fn render_json(polled: &[PolledDevice], summary: &Summary) -> String {
    let devices: Vec<Value> = polled
        .iter()
        .map(|p| {
            let (address, mut w) = who(p);
            w.address = &address;
            output::device_status_json(w, p.result.as_deref())
        })
        .collect();
    let doc = json!({
        "devices": devices,
        "summary": {
            "total": summary.total,
            "ok": summary.ok,
            "unreachable": summary.unreachable,
            "failed": summary.failed,
        },
    });
    // Compact: a whole home is big, and this is for programs.
    let mut s = doc.to_string();
    s.push('\n');
    s
}

fn render_table(polled: &[PolledDevice]) -> String {
    let mut t = output::table(&["device", "property", "value"]);
    for p in polled {
        match &p.result {
            Ok(readings) if readings.is_empty() => {
                t.add_row(vec![p.name.clone(), "-".into(), "(no properties)".into()]);
            }
            Ok(readings) => {
                for (i, r) in readings.iter().enumerate() {
                    let device = if i == 0 {
                        p.name.clone()
                    } else {
                        String::new()
                    };
                    let value = if r.is_ok() {
                        r.display.clone()
                    } else {
                        format!("error: {}", r.display)
                    };
                    t.add_row(vec![device, r.name.clone(), value]);
                }
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "unreachable"
                } else {
                    "failed"
                };
                t.add_row(vec![p.name.clone(), format!("({what})"), e.to_string()]);
            }
        }
    }
    format!("{t}\n")
}

/// Counts and names of what happened.
#[derive(Debug, Default)]
struct Summary {
    total: usize,
    ok: usize,
    unreachable: Vec<String>,
    failed: Vec<String>,
}

impl Summary {
    fn of(polled: &[PolledDevice]) -> Summary {
        let mut s = Summary {
            total: polled.len(),
            ..Summary::default()
        };
        for p in polled {
            match &p.result {
                Ok(_) => s.ok += 1,
                Err(e) if e.is_timeout() => s.unreachable.push(p.name.clone()),
                Err(_) => s.failed.push(p.name.clone()),
            }
        }
        s
    }

    /// `30 devices: 28 ok, 2 unreachable (a, b)`.
    fn line(&self) -> String {
        let mut line = format!(
            "{} device{}: {} ok",
            self.total,
            if self.total == 1 { "" } else { "s" },
            self.ok
        );
        if !self.unreachable.is_empty() {
            line.push_str(&format!(
                ", {} unreachable ({})",
                self.unreachable.len(),
                names(&self.unreachable)
            ));
        }
        if !self.failed.is_empty() {
            line.push_str(&format!(
                ", {} failed ({})",
                self.failed.len(),
                names(&self.failed)
            ));
        }
        line
    }

    fn into_result(self, scope: &str) -> Result<(), Error> {
        if self.unreachable.is_empty() && self.failed.is_empty() {
            return Ok(());
        }
        Err(Error::DevicesFailed {
            failed: self.unreachable.len() + self.failed.len(),
            total: self.total,
            unreachable: self.unreachable.len(),
            scope: scope.to_string(),
            detail: self.line(),
        })
    }
}

/// Up to ten names, then how many more.
fn names(list: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = list
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > SHOWN {
        s.push_str(&format!(" and {} more", list.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_device_limits() {
        let c = |t: u64, r: u32| ClientConfig {
            timeout: Duration::from_millis(t),
            retries: r,
            ..ClientConfig::default()
        };
        assert_eq!(per_device_timeout(&c(300, 2)), Duration::from_millis(900));
        assert_eq!(per_device_timeout(&c(5000, 2)), DEFAULT_DEVICE_TIMEOUT);
        assert_eq!(
            per_device_timeout(&c(10_000, 0)),
            Duration::from_millis(10_000)
        );
    }

    #[test]
    fn summary_lines_name_the_failures() {
        let s = Summary {
            total: 30,
            ok: 27,
            unreachable: vec!["a".into(), "b".into()],
            failed: vec!["c".into()],
        };
        assert_eq!(
            s.line(),
            "30 devices: 27 ok, 2 unreachable (a, b), 1 failed (c)"
        );
        let many: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
        assert!(names(&many).ends_with("d9 and 2 more"));
    }
}
