//! `mijia cloud …`: login, logout, status, devices, import.
//!
//! **Prompts.** The password, a captcha or a two-factor code are asked
//! only when stdin and stderr are terminals. Scripts pass
//! `--password-stdin` (or `MIJIA_CLOUD_PASSWORD`, which other local users
//! may see in the process environment), and may pre-answer a captcha or a
//! verification code with `--captcha-code` / `--verify-code` (each may be
//! repeated; answers are used in order when the question comes up).
//! Anything else fails at once with a message saying what to run; nothing
//! waits on a prompt that cannot be answered. QR login needs no prompt: it
//! prints the code on stderr and waits until the user confirms or the code
//! expires.
//!
//! Device commands through the cloud (`--via`) are not here: they go
//! through the same [`crate::home::Device`] facade as the local route
//! ([`super::exec`]), so their output and errors are the local route's.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfy_table::{presets, ContentArrangement, Table};
use mijia_proto::cloud::{Password, Region};
use serde_json::{json, Value};

use super::args::GlobalArgs;
use super::output;
use crate::cloud::api::CloudHome;
use crate::cloud::auth::{self, Authenticator, TerminalPrompt};
use crate::cloud::http::{Http, HttpConfig};
use crate::cloud::import::{self, ImportAction};
use crate::cloud::{CloudClient, CloudDevice, CloudEndpoints, CloudError, SessionStore};
use crate::home::{unix_now, Paths};
use crate::Error;

/// Environment variable holding the password for non-interactive login.
pub const ENV_PASSWORD: &str = "MIJIA_CLOUD_PASSWORD";
/// Environment variable holding the account name.
pub const ENV_USER: &str = "MIJIA_CLOUD_USER";

/// `mijia cloud`.
#[derive(Debug, Clone, Args)]
pub struct CloudArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CloudCommand,
}

/// The `mijia cloud` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CloudCommand {
    /// Log in to the Xiaomi account (password, captcha and two-factor, or --qr).
    #[command(after_help = "Examples:\n  \
        mijia cloud login --qr                      scan a QR code with the Mi Home app\n  \
        mijia cloud login --user me@example.com     password login (prompts)\n  \
        pass | mijia cloud login --user me@example.com --password-stdin --region de\n\n\
        Non-interactive runs never wait for input: if a captcha or a verification code is\n\
        needed and was not given with --captcha-code / --verify-code, login fails and\n\
        says what to run.")]
    Login(LoginArgs),
    /// Forget the stored session.
    Logout,
    /// Show the stored session (user id, region, age; never the tokens).
    Status,
    /// List the account's devices: name, model, did, address, online, token.
    Devices(ListArgs),
    /// Add the account's devices to the registry (merged by did; local edits are kept).
    Import(ImportArgs),
}

/// `mijia cloud login` options.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Account: e-mail, phone number or numeric user id.
    #[arg(long, env = ENV_USER, value_name = "ACCOUNT")]
    pub user: Option<String>,
    /// Read the password from the first line of stdin (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
    /// Log in by scanning a QR code with the Mi Home app (recommended).
    #[arg(long, conflicts_with_all = ["user", "password_stdin"])]
    pub qr: bool,
    /// The account's region: cn, de, us, ru, tw, sg, in or i2.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Where to save a captcha image (default: in the state directory).
    #[arg(long, value_name = "PATH")]
    pub captcha_file: Option<PathBuf>,
    /// Answer to a captcha, used when one is asked (scripting aid; repeatable).
    #[arg(long, value_name = "TEXT")]
    pub captcha_code: Vec<String>,
    /// Two-factor verification code, used when one is asked (scripting aid; repeatable).
    #[arg(long, value_name = "CODE")]
    pub verify_code: Vec<String>,
}

/// `mijia cloud devices` options.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Search this region only.
    #[arg(long, value_name = "REGION", conflicts_with = "all_regions")]
    pub region: Option<String>,
    /// Search every region (cn, de, us, ru, tw, sg, in, i2).
    #[arg(long)]
    pub all_regions: bool,
    /// Print device tokens in full.
    #[arg(long)]
    pub show_secrets: bool,
}

/// `mijia cloud import` options.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Search this region only.
    #[arg(long, value_name = "REGION", conflicts_with = "all_regions")]
    pub region: Option<String>,
    /// Search every region.
    #[arg(long)]
    pub all_regions: bool,
    /// Show what would change without writing the registry.
    #[arg(long)]
    pub dry_run: bool,
}

/// Which regions to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionChoice {
    /// One region given with `--region`.
    One(Region),
    /// `--all-regions`.
    All,
    /// The session's region, or all when it has none.
    Default,
}

/// A validated `mijia cloud` command.
#[derive(Debug, Clone)]
pub enum CloudPlan {
    /// `cloud login`.
    Login {
        /// Options.
        args: LoginArgs,
        /// The region given.
        region: Option<Region>,
        /// JSON output.
        json: bool,
    },
    /// `cloud logout`.
    Logout {
        /// JSON output.
        json: bool,
    },
    /// `cloud status`.
    Status {
        /// JSON output.
        json: bool,
    },
    /// `cloud devices`.
    Devices {
        /// Regions.
        regions: RegionChoice,
        /// Print tokens.
        show_secrets: bool,
        /// JSON output.
        json: bool,
    },
    /// `cloud import`.
    Import {
        /// Regions.
        regions: RegionChoice,
        /// Do not write.
        dry_run: bool,
        /// JSON output.
        json: bool,
    },
}

fn region_arg(text: Option<&str>) -> Result<Option<Region>, Error> {
    text.map(|r| r.parse::<Region>().map_err(|e| Error::usage(e.to_string())))
        .transpose()
}

fn choice(region: Option<&str>, all: bool) -> Result<RegionChoice, Error> {
    Ok(match (region_arg(region)?, all) {
        (Some(r), _) => RegionChoice::One(r),
        (None, true) => RegionChoice::All,
        (None, false) => RegionChoice::Default,
    })
}

/// Validates a `mijia cloud` command.
pub fn plan(args: &CloudArgs, g: &GlobalArgs) -> Result<CloudPlan, Error> {
    Ok(match &args.command {
        CloudCommand::Login(a) => CloudPlan::Login {
            region: region_arg(a.region.as_deref())?,
            args: a.clone(),
            json: g.json,
        },
        CloudCommand::Logout => CloudPlan::Logout { json: g.json },
        CloudCommand::Status => CloudPlan::Status { json: g.json },
        CloudCommand::Devices(a) => CloudPlan::Devices {
            regions: choice(a.region.as_deref(), a.all_regions)?,
            show_secrets: a.show_secrets,
            json: g.json,
        },
        CloudCommand::Import(a) => CloudPlan::Import {
            regions: choice(a.region.as_deref(), a.all_regions)?,
            dry_run: a.dry_run,
            json: g.json,
        },
    })
}

/// Runs a `mijia cloud` command.
pub async fn execute(plan: CloudPlan) -> Result<(), Error> {
    match plan {
        CloudPlan::Login { args, region, json } => login(args, region, json).await,
        CloudPlan::Logout { json } => logout(json),
        CloudPlan::Status { json } => status(json),
        CloudPlan::Devices {
            regions,
            show_secrets,
            json,
        } => devices(regions, show_secrets, json).await,
        CloudPlan::Import {
            regions,
            dry_run,
            json,
        } => import_devices(regions, dry_run, json).await,
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

fn json_doc(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

fn ago(then: u64) -> String {
    let s = unix_now().saturating_sub(then);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

// ------------------------------------------------------------------ login

fn read_password_stdin() -> Result<Password, Error> {
    let mut text = String::new();
    std::io::stdin()
        .lock()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            context: "cannot read the password from stdin".into(),
            source,
        })?;
    let line = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if line.is_empty() {
        return Err(Error::usage(
            "--password-stdin: stdin is empty; pipe the password in, e.g. `pass show mi | mijia cloud login --user NAME --password-stdin`",
        ));
    }
    Ok(Password::new(line))
}

async fn login(args: LoginArgs, region: Option<Region>, json: bool) -> Result<(), Error> {
    let paths = Paths::from_env()?;
    let endpoints = CloudEndpoints::load(&paths)?;
    let store = SessionStore::new(&paths);
    let device_id = store.device_id()?;
    let previous = store.load().ok().flatten();
    let captcha_file = args
        .captcha_file
        .clone()
        .unwrap_or_else(|| paths.state_dir.join("cloud-captcha.png"));
    let http = Http::new(HttpConfig::default())?;
    let mut auth = Authenticator::new(http, endpoints.clone(), device_id.clone(), captcha_file);
    let mut ui = TerminalPrompt::from_terminal(args.captcha_code.clone(), args.verify_code.clone());

    let (creds, account) = if args.qr {
        (auth.login_qr(&mut ui).await?, None)
    } else {
        let user = match args.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => u.to_owned(),
            None if ui.interactive => auth::ask_line("Xiaomi account (e-mail, phone or user id): ")?,
            None => {
                return Err(CloudError::NotInteractive {
                    what: "the account name",
                    hint: "pass --user ACCOUNT (or set MIJIA_CLOUD_USER), or use `mijia cloud login --qr`",
                }
                .into())
            }
        };
        let password = if args.password_stdin {
            read_password_stdin()?
        } else if let Some(p) = std::env::var(ENV_PASSWORD).ok().filter(|p| !p.is_empty()) {
            Password::new(p)
        } else if ui.interactive {
            Password::new(auth::ask_secret("Password: ")?)
        } else {
            return Err(CloudError::NotInteractive {
                what: "the password",
                hint: "pass --password-stdin (or set MIJIA_CLOUD_PASSWORD), or use `mijia cloud login --qr`",
            }
            .into());
        };
        (
            auth.login_password(&user, &password, &mut ui).await?,
            Some(user),
        )
    };
    let region = region
        .or(endpoints.region)
        .or_else(|| previous.as_ref().and_then(|s| s.region()))
        .map(|r| r.code().to_owned());
    let session = creds.into_session(device_id, region.clone(), account, unix_now());
    store.save(&session)?;
    tracing::debug!(cookies = ?auth.jar(), "login finished");
    let text = if json {
        json_doc(&json!({
            "logged_in": true,
            "user_id": session.user_id,
            "region": region,
            "session_file": store.path().display().to_string(),
        }))
    } else {
        format!(
            "Logged in as user {}{}. Session saved to {} (mode 0600).\n",
            session.user_id,
            region
                .as_deref()
                .map(|r| format!(" (region {r})"))
                .unwrap_or_default(),
            store.path().display()
        )
    };
    output::emit(&text)
}

fn logout(json: bool) -> Result<(), Error> {
    let paths = Paths::from_env()?;
    let store = SessionStore::new(&paths);
    let removed = store.remove()?;
    let text = if json {
        json_doc(&json!({"logged_out": removed}))
    } else if removed {
        format!("Logged out; removed {}.\n", store.path().display())
    } else {
        "Not logged in; nothing to remove.\n".to_owned()
    };
    output::emit(&text)
}

fn status(json: bool) -> Result<(), Error> {
    let paths = Paths::from_env()?;
    let store = SessionStore::new(&paths);
    let session = store.require()?;
    let endpoints = CloudEndpoints::load(&paths)?;
    let api = endpoints
        .api_template
        .template()
        .unwrap_or("https://{region}.api.io.mi.com/app")
        .to_owned();
    if json {
        return output::emit(&json_doc(&json!({
            "logged_in": true,
            "user_id": session.user_id,
            "account": session.account,
            "region": session.region,
            "logged_in_at": session.logged_in_at,
            "saved_at": session.saved_at,
            "refreshes": session.refreshes,
            "service_token": !session.service_token.is_empty(),
            "pass_token": session.pass_token.as_ref().is_some_and(|p| !p.is_empty()),
            "session_file": store.path().display().to_string(),
            "account_url": endpoints.account_base.as_str(),
            "api_url": api,
        })));
    }
    let yes_no = |b: bool| if b { "present" } else { "absent" }.to_owned();
    let mut t = table(&["field", "value"]);
    t.add_row(vec!["user id".to_owned(), session.user_id.clone()]);
    if let Some(a) = &session.account {
        t.add_row(vec!["account".to_owned(), a.clone()]);
    }
    t.add_row(vec![
        "region".to_owned(),
        session
            .region
            .clone()
            .unwrap_or_else(|| "not set (device listing searches all)".to_owned()),
    ]);
    t.add_row(vec!["logged in".to_owned(), ago(session.logged_in_at)]);
    t.add_row(vec![
        "last saved".to_owned(),
        format!(
            "{} ({} refreshes)",
            ago(session.saved_at),
            session.refreshes
        ),
    ]);
    t.add_row(vec![
        "service token".to_owned(),
        yes_no(!session.service_token.is_empty()),
    ]);
    t.add_row(vec![
        "pass token".to_owned(),
        yes_no(session.pass_token.as_ref().is_some_and(|p| !p.is_empty())),
    ]);
    t.add_row(vec![
        "session file".to_owned(),
        store.path().display().to_string(),
    ]);
    t.add_row(vec![
        "account host".to_owned(),
        endpoints.account_base.to_string(),
    ]);
    t.add_row(vec!["API".to_owned(), api]);
    output::emit(&format!("{t}\n"))
}

// ---------------------------------------------------------------- devices

struct Search {
    searched: Vec<Region>,
    devices: Vec<CloudDevice>,
    failed: BTreeMap<String, String>,
    client: CloudClient,
}

async fn search(regions: RegionChoice) -> Result<(Paths, Search), Error> {
    let paths = Paths::from_env()?;
    let client = CloudClient::from_home(&paths)?.ok_or(CloudError::NotLoggedIn)?;
    let session_region = client.session().region();
    let list: Vec<Region> = match regions {
        RegionChoice::One(r) => vec![r],
        RegionChoice::All => Region::ALL.to_vec(),
        RegionChoice::Default => match session_region {
            Some(r) => vec![r],
            None => Region::ALL.to_vec(),
        },
    };
    let mut out = Search {
        searched: Vec::new(),
        devices: Vec::new(),
        failed: BTreeMap::new(),
        client: client.clone(),
    };
    for r in &list {
        let c = client.with_region(*r);
        match c.device_list().await {
            Ok(mut ds) => {
                out.searched.push(*r);
                out.devices.append(&mut ds);
            }
            Err(e) if list.len() > 1 && !e.needs_login() => {
                tracing::debug!(region = %r, error = %e, "region failed");
                out.failed.insert(r.code().to_owned(), e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Remember the account's region when it was unknown and the search
    // found devices in exactly one.
    let found: Vec<&str> = {
        let mut v: Vec<&str> = out.devices.iter().map(|d| d.region.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    if session_region.is_none() && found.len() == 1 {
        let mut s = out.client.session();
        s.region = found.first().map(|r| (*r).to_owned());
        SessionStore::new(&paths).save(&s)?;
    }
    Ok((paths, out))
}

fn searched_line(s: &Search) -> String {
    let names: Vec<&str> = s.searched.iter().map(|r| r.code()).collect();
    let mut by_region: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &s.devices {
        *by_region.entry(d.region.as_str()).or_default() += 1;
    }
    let found = if by_region.is_empty() {
        "no devices found (wrong region? try --all-regions)".to_owned()
    } else {
        by_region
            .iter()
            .map(|(r, n)| format!("{n} in {r}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut line = format!("searched regions: {}; found {found}", names.join(", "));
    for (r, e) in &s.failed {
        line.push_str(&format!("\nregion {r} failed: {e}"));
    }
    line
}

async fn devices(regions: RegionChoice, show_secrets: bool, json: bool) -> Result<(), Error> {
    let (_paths, s) = search(regions).await?;
    let token_text = |d: &CloudDevice| match &d.token {
        Some(t) if show_secrets => t.reveal(),
        Some(_) => "<redacted>".to_owned(),
        None => "-".to_owned(),
    };
    if json {
        let items: Vec<Value> = s
            .devices
            .iter()
            .map(|d| {
                json!({
                    "did": d.did,
                    "name": d.name,
                    "model": d.model,
                    "localip": d.localip.map(|i| i.to_string()),
                    "online": d.online,
                    "region": d.region,
                    "token": token_text(d),
                })
            })
            .collect();
        return output::emit(&json_doc(&json!({
            "regions_searched": s.searched.iter().map(|r| r.code()).collect::<Vec<_>>(),
            "regions_failed": s.failed,
            "devices": items,
        })));
    }
    let multi = s.searched.len() > 1;
    let mut header = vec!["name", "model", "did", "local ip", "online", "token"];
    if multi {
        header.push("region");
    }
    let mut t = table(&header);
    for d in &s.devices {
        let mut row = vec![
            d.name.clone(),
            d.model.clone(),
            d.did.clone(),
            d.localip.map_or_else(|| "-".to_owned(), |i| i.to_string()),
            match d.online {
                Some(true) => "online".to_owned(),
                Some(false) => "offline".to_owned(),
                None => "?".to_owned(),
            },
            token_text(d),
        ];
        if multi {
            row.push(d.region.clone());
        }
        t.add_row(row);
    }
    output::emit(&format!("{t}\n{}\n", searched_line(&s)))
}

async fn import_devices(regions: RegionChoice, dry_run: bool, json: bool) -> Result<(), Error> {
    let (paths, s) = search(regions).await?;
    let mut homes: Vec<CloudHome> = Vec::new();
    let mut with_devices: Vec<&str> = s.devices.iter().map(|d| d.region.as_str()).collect();
    with_devices.sort_unstable();
    with_devices.dedup();
    for r in with_devices {
        let Ok(region) = r.parse::<Region>() else {
            continue;
        };
        match s.client.with_region(region).homes().await {
            Ok(mut h) => homes.append(&mut h),
            Err(e) if !e.needs_login() => {
                tracing::warn!(region = r, error = %e, "cannot read homes; rooms are not imported")
            }
            Err(e) => return Err(e.into()),
        }
    }
    let rooms: HashMap<String, String> = CloudHome::room_map(&homes);
    let report = import::import(&paths, &s.devices, &rooms, dry_run)?;
    if json {
        return output::emit(&json_doc(&json!({
            "dry_run": dry_run,
            "regions_searched": s.searched.iter().map(|r| r.code()).collect::<Vec<_>>(),
            "devices": report.devices,
            "added": report.count(ImportAction::Added),
            "updated": report.count(ImportAction::Updated),
            "unchanged": report.count(ImportAction::Unchanged),
            "skipped": report.count(ImportAction::Skipped),
            "kept_local_edits": report.kept_edits(),
        })));
    }
    let mut t = table(&["name", "did", "result", "details"]);
    for d in &report.devices {
        let mut details: Vec<String> = d.changed.clone();
        details.extend(d.kept.iter().map(|k| {
            if d.action == ImportAction::Skipped {
                k.clone()
            } else {
                format!("kept your {k}")
            }
        }));
        t.add_row(vec![
            d.name.clone(),
            d.did.clone(),
            format!("{:?}", d.action).to_lowercase(),
            if details.is_empty() {
                "-".to_owned()
            } else {
                details.join("; ")
            },
        ]);
    }
    output::emit(&format!(
        "{t}\n{}{} added, {} updated, {} unchanged, {} kept local edits, {} skipped\n{}\n",
        if dry_run {
            "dry run (nothing written): "
        } else {
            ""
        },
        report.count(ImportAction::Added),
        report.count(ImportAction::Updated),
        report.count(ImportAction::Unchanged),
        report.kept_edits(),
        report.count(ImportAction::Skipped),
        searched_line(&s)
    ))
}
