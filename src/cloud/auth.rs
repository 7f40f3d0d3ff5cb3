//! Logging in to the Xiaomi account and keeping the session alive.
//!
//! - **Password**: `serviceLogin` → `serviceLoginAuth2` with the uppercase
//!   MD5 of the password → STS (the `serviceToken` cookie). A captcha
//!   (code 87001) is fetched, saved to a file and answered through
//!   [`Interaction::captcha`]; two-factor verification runs the identity
//!   flow in the same cookie jar and asks [`Interaction::verification_code`].
//! - **QR**: `longPolling/loginUrl` → [`Interaction::show_qr`] → long poll
//!   until the user confirms in the Mi Home app or the code expires → STS.
//! - **Refresh**: `serviceLogin` with the stored `passToken`, `userId` and
//!   `deviceId` cookies → STS, no password.
//!
//! Every reply is classified by [`mijia_proto::cloud::login`]; this module
//! only sends requests, keeps the cookie jar and follows `location`, `lp`,
//! `captchaUrl` and `notificationUrl` exactly as the server gives them
//! (resolved against the account host, https or loopback http only).
//! Redirects are followed by hand so every cookie is kept.
//!
//! [`TerminalPrompt`] is the CLI's [`Interaction`]: it prompts only when
//! stdin and stderr are terminals, takes pre-supplied answers
//! (`--captcha-code`, `--verify-code`) first, and otherwise fails with a
//! message saying what to run.

use std::collections::VecDeque;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mijia_proto::cloud::login::{
    identity_list_url, parse_identity_list, parse_login_auth2, parse_qr_poll, parse_qr_start,
    parse_service_login, parse_verify, strip_json_prefix,
};
use mijia_proto::cloud::{
    password_hash, IdentityMethod, LoginStep, LoginSuccess, PassToken, Password, ServiceToken,
    VerifyOutcome,
};
use url::Url;

use super::config::CloudEndpoints;
use super::error::display_url;
use super::http::{CookieJar, Http, Request, Response};
use super::session::Session;
use super::CloudError;
use crate::home::fsutil::{self, PRIVATE_MODE};

/// The service id mijia logs in to.
pub const SID: &str = "xiaomiio";
/// The SDK version sent as a cookie.
pub const SDK_VERSION: &str = "accountsdk-18.8.15";
/// How many captcha answers are tried before giving up.
pub const MAX_CAPTCHA_TRIES: u32 = 5;
/// How many verification codes are tried before giving up (the server
/// locks after about five).
pub const MAX_VERIFY_TRIES: u32 = 5;
/// Longest single long-poll request of a QR login.
pub const LONG_POLL: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 8;
/// Account code of an expired (or unknown) QR login.
pub const CODE_QR_EXPIRED: i64 = 70019;

/// What the login flow needs from the user.
pub trait Interaction: Send {
    /// A captcha image was saved at `image`; return the text in it.
    fn captcha(&mut self, image: &Path, retry: bool) -> Result<String, CloudError>;
    /// A code was sent by `method`; return it.
    fn verification_code(
        &mut self,
        method: IdentityMethod,
        retry: bool,
    ) -> Result<String, CloudError>;
    /// Show the QR code for `login_url` (its PNG is at `image_url`).
    fn show_qr(&mut self, login_url: &str, image_url: &str, timeout_secs: u64);
    /// A progress note for the user.
    fn note(&mut self, message: &str);
}

/// The result of a login or refresh.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// What the account server returned.
    pub login: LoginSuccess,
    /// The STS cookie.
    pub service_token: ServiceToken,
    /// The passToken (from the reply or a cookie).
    pub pass_token: Option<PassToken>,
}

impl Credentials {
    /// A session for these credentials.
    pub fn into_session(
        self,
        device_id: String,
        region: Option<String>,
        account: Option<String>,
        now: u64,
    ) -> Session {
        Session {
            user_id: self.login.user_id,
            c_user_id: self.login.c_user_id,
            ssecurity: self.login.ssecurity,
            service_token: self.service_token,
            pass_token: self.pass_token,
            device_id,
            region,
            account,
            logged_in_at: now,
            saved_at: now,
            refreshes: 0,
        }
    }

    /// `session` with these credentials, keeping its device id, region
    /// and account.
    pub fn refresh_session(self, session: &Session, now: u64) -> Session {
        Session {
            user_id: self.login.user_id,
            c_user_id: self.login.c_user_id.or_else(|| session.c_user_id.clone()),
            ssecurity: self.login.ssecurity,
            service_token: self.service_token,
            pass_token: self.pass_token.or_else(|| session.pass_token.clone()),
            saved_at: now,
            refreshes: session.refreshes.saturating_add(1),
            ..session.clone()
        }
    }
}

/// Milliseconds since the epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One login conversation with the account host: its cookie jar and
/// endpoints.
#[derive(Debug)]
pub struct Authenticator {
    http: Http,
    endpoints: CloudEndpoints,
    jar: CookieJar,
    device_id: String,
    /// Where a captcha image is saved.
    pub captcha_file: PathBuf,
}

impl Authenticator {
    /// A fresh conversation (empty jar except `sdkVersion` and `deviceId`).
    pub fn new(
        http: Http,
        endpoints: CloudEndpoints,
        device_id: String,
        captcha_file: PathBuf,
    ) -> Self {
        let mut jar = CookieJar::new();
        jar.set(&endpoints.account_base, "sdkVersion", SDK_VERSION);
        jar.set(&endpoints.account_base, "deviceId", &device_id);
        Authenticator {
            http,
            endpoints,
            jar,
            device_id,
            captcha_file,
        }
    }

    /// The cookie jar (names only in `Debug`).
    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    async fn get(&mut self, url: &Url) -> Result<Response, CloudError> {
        let cookie = self.jar.header_for(url);
        let req = Request {
            cookie,
            ..Request::get(url.clone())
        };
        let resp = self.http.send(|| req.clone()).await?;
        self.jar.store(&resp.url, &resp.set_cookies);
        Ok(resp)
    }

    async fn post(&mut self, url: &Url, form: &[(&str, &str)]) -> Result<Response, CloudError> {
        let body = mijia_proto::cloud::form::encode_form(form);
        let cookie = self.jar.header_for(url);
        let req = Request {
            cookie,
            ..Request::post(url.clone(), body)
        };
        let resp = self.http.send(|| req.clone()).await?;
        self.jar.store(&resp.url, &resp.set_cookies);
        Ok(resp)
    }

    /// GET `url` and follow redirects by hand, keeping every cookie.
    async fn follow(&mut self, mut url: Url) -> Result<Response, CloudError> {
        for _ in 0..MAX_REDIRECTS {
            let resp = self.get(&url).await?;
            if !resp.is_redirect() {
                return Ok(resp);
            }
            let next = resp.location.as_deref().unwrap_or_default();
            url = url.join(next).map_err(|e| CloudError::Endpoint {
                what: "redirect".into(),
                value: display_url(&url),
                reason: e.to_string(),
            })?;
            super::config::check_url(&url)?;
        }
        Err(CloudError::Http {
            status: 310,
            url: display_url(&url),
            hint: "too many redirects; retry later or use `mijia cloud login --qr`",
        })
    }

    fn json_reply(resp: &Response) -> Result<String, CloudError> {
        if resp.status != 200 {
            return Err(CloudError::Http {
                status: resp.status,
                url: display_url(&resp.url),
                hint: "the account server refused the request; retry later or use `mijia cloud login --qr`",
            });
        }
        Ok(resp.text())
    }

    async fn service_login(&mut self) -> Result<LoginStep, CloudError> {
        let url = self
            .endpoints
            .account_url(&format!("/pass/serviceLogin?sid={SID}&_json=true"))?;
        let resp = self.get(&url).await?;
        Ok(parse_service_login(&Self::json_reply(&resp)?)?)
    }

    /// Password login, with captcha and two-factor handling.
    pub async fn login_password(
        &mut self,
        user: &str,
        password: &Password,
        ui: &mut dyn Interaction,
    ) -> Result<Credentials, CloudError> {
        tracing::debug!("password login: serviceLogin");
        let (sign, qs, callback) = match self.service_login().await? {
            LoginStep::NeedPassword { sign, qs, callback } => (sign, qs, callback),
            LoginStep::Success(s) => return self.finish(s).await,
            other => return Err(step_error(other)),
        };
        let hash = password_hash(password);
        let mut captcha: Option<String> = None;
        let mut captcha_tries = 0u32;
        let mut verified = false;
        loop {
            let mut path = "/pass/serviceLoginAuth2".to_owned();
            if captcha.is_some() {
                path.push_str(&format!("?_dc={}", unix_ms()));
            }
            let url = self.endpoints.account_url(&path)?;
            let mut form: Vec<(&str, &str)> = vec![
                ("_json", "true"),
                ("callback", &callback),
                ("hash", &hash),
                ("qs", &qs),
                ("sid", SID),
                ("user", user),
                ("_sign", &sign),
            ];
            if let Some(code) = &captcha {
                form.push(("captCode", code));
            }
            tracing::debug!(
                captcha = captcha.is_some(),
                "password login: serviceLoginAuth2"
            );
            let resp = self.post(&url, &form).await?;
            match parse_login_auth2(&Self::json_reply(&resp)?)? {
                LoginStep::Success(s) => return self.finish(s).await,
                LoginStep::Captcha { captcha_url } => {
                    if captcha_tries >= MAX_CAPTCHA_TRIES {
                        return Err(CloudError::CaptchaFailed {
                            attempts: captcha_tries,
                        });
                    }
                    let image = self.fetch_captcha(&captcha_url).await?;
                    let code = ui.captcha(&image, captcha_tries > 0)?;
                    captcha = Some(code.trim().to_owned());
                    captcha_tries += 1;
                }
                LoginStep::TwoFactor { notification_url } if !verified => {
                    self.two_factor(&notification_url, ui).await?;
                    verified = true;
                    // With the fresh passToken cookie, serviceLogin now
                    // answers with the credentials.
                    match self.service_login().await? {
                        LoginStep::Success(s) => return self.finish(s).await,
                        // Otherwise post the password again: the device is
                        // now trusted.
                        LoginStep::NeedPassword { .. } => {}
                        other => return Err(step_error(other)),
                    }
                }
                LoginStep::TwoFactor { .. } => {
                    return Err(CloudError::VerificationFailed {
                        detail: "the code was accepted but the account still asks for verification"
                            .into(),
                    })
                }
                other => return Err(step_error(other)),
            }
        }
    }

    async fn fetch_captcha(&mut self, captcha_url: &str) -> Result<PathBuf, CloudError> {
        if captcha_url.is_empty() {
            return Err(CloudError::LoginRejected {
                code: mijia_proto::cloud::login::CODE_CAPTCHA,
                desc: "a captcha is required but the server gave no image URL".into(),
            });
        }
        let url = self.endpoints.account_url(captcha_url)?;
        let resp = self.get(&url).await?;
        if resp.status != 200 {
            return Err(CloudError::Http {
                status: resp.status,
                url: display_url(&url),
                hint: "cannot fetch the captcha image; retry, or use `mijia cloud login --qr`",
            });
        }
        fsutil::write_atomic(&self.captcha_file, &resp.body, PRIVATE_MODE)?;
        tracing::debug!(path = %self.captcha_file.display(), len = resp.body.len(), "captcha saved");
        Ok(self.captcha_file.clone())
    }

    async fn two_factor(
        &mut self,
        notification_url: &str,
        ui: &mut dyn Interaction,
    ) -> Result<(), CloudError> {
        if notification_url.is_empty() {
            return Err(CloudError::VerificationFailed {
                detail: "the account asks for verification but gave no verification URL".into(),
            });
        }
        let notification = self.endpoints.account_url(notification_url)?;
        let list = self
            .endpoints
            .account_url(&identity_list_url(notification.as_str()))?;
        tracing::debug!("two-factor: identity list");
        let resp = self.get(&list).await?;
        let options = parse_identity_list(&Self::json_reply(&resp)?)?;
        let method = options
            .preferred
            .filter(|m| options.options.contains(m))
            .or_else(|| options.options.first().copied())
            .unwrap_or(IdentityMethod::Email);
        let send = self.endpoints.account_url(method.send_ticket_path())?;
        let resp = self
            .post(&send, &[("retry", "0"), ("icode", ""), ("_json", "true")])
            .await?;
        let sent = Self::json_reply(&resp)?;
        if let Some(code) = reply_code(&sent).filter(|c| *c != 0) {
            return Err(CloudError::VerificationFailed {
                detail: format!(
                    "the account server did not send a code (code {code}{})",
                    reply_desc(&sent)
                ),
            });
        }
        ui.note(&format!(
            "A verification code was sent by {}.",
            method_name(method)
        ));
        let flag = method.flag().to_string();
        for attempt in 0..MAX_VERIFY_TRIES {
            let code = ui.verification_code(method, attempt > 0)?;
            let url = self.endpoints.account_url(&format!(
                "{}?_dc={}",
                method.verify_path(),
                unix_ms()
            ))?;
            let resp = self
                .post(
                    &url,
                    &[
                        ("_flag", &flag),
                        ("ticket", code.trim()),
                        ("trust", "true"),
                        ("_json", "true"),
                    ],
                )
                .await?;
            match parse_verify(&Self::json_reply(&resp)?)? {
                VerifyOutcome::Verified { location } => {
                    let next = self.endpoints.account_url(&location)?;
                    let _ = self.follow(next).await?;
                    return Ok(());
                }
                VerifyOutcome::WrongCode => {
                    ui.note("The verification code was not accepted.");
                }
                VerifyOutcome::Rejected { code, desc } => {
                    return Err(CloudError::VerificationFailed {
                        detail: format!(
                            "the account server refused the code (code {code}{})",
                            if desc.is_empty() {
                                String::new()
                            } else {
                                format!(": {desc}")
                            }
                        ),
                    })
                }
            }
        }
        Err(CloudError::VerificationFailed {
            detail: format!("{MAX_VERIFY_TRIES} wrong codes"),
        })
    }

    /// QR login: show the code, long-poll until confirmed or expired.
    pub async fn login_qr(&mut self, ui: &mut dyn Interaction) -> Result<Credentials, CloudError> {
        let mut url = self.endpoints.account_url("/longPolling/loginUrl")?;
        let qs = format!("?sid={SID}&_json=true");
        url.query_pairs_mut()
            .append_pair("_qrsize", "240")
            .append_pair("qs", &qs)
            .append_pair("callback", self.endpoints.sts.as_str())
            .append_pair("_hasLogo", "false")
            .append_pair("sid", SID)
            .append_pair("serviceParam", "")
            .append_pair("_locale", "en_GB")
            .append_pair("_dc", &unix_ms().to_string());
        let resp = self.get(&url).await?;
        let start = parse_qr_start(&Self::json_reply(&resp)?)?;
        ui.show_qr(&start.login_url, &start.qr_image_url, start.timeout_secs);
        let lp = self.endpoints.account_url(&start.long_poll_url)?;
        let deadline = Instant::now() + Duration::from_secs(start.timeout_secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CloudError::QrExpired {
                    secs: start.timeout_secs,
                });
            }
            let req = Request {
                cookie: self.jar.header_for(&lp),
                timeout: Some(left.min(LONG_POLL)),
                retry_timeouts: false,
                ..Request::get(lp.clone())
            };
            tracing::debug!(left_s = left.as_secs(), "QR login: long poll");
            let resp = match self.http.send(|| req.clone()).await {
                Ok(r) => r,
                Err(CloudError::Timeout { .. }) => continue,
                Err(e) => return Err(e),
            };
            self.jar.store(&resp.url, &resp.set_cookies);
            let near_end =
                deadline.saturating_duration_since(Instant::now()) < Duration::from_secs(1);
            if resp.status != 200 {
                if near_end || resp.status == 408 {
                    continue;
                }
                return Err(CloudError::Http {
                    status: resp.status,
                    url: display_url(&lp),
                    hint: "the QR login failed; run `mijia cloud login --qr` again",
                });
            }
            match parse_qr_poll(&resp.text())? {
                LoginStep::Success(s) => return self.finish(s).await,
                LoginStep::Rejected { code, .. } | LoginStep::BadCredentials { code, .. }
                    if code == CODE_QR_EXPIRED || near_end =>
                {
                    return Err(CloudError::QrExpired {
                        secs: start.timeout_secs,
                    })
                }
                other => return Err(step_error(other)),
            }
        }
    }

    /// A new service token from the session's passToken, without the
    /// password. Fails with [`CloudError::ReloginNeeded`] when the account
    /// server wants a full login.
    pub async fn refresh(&mut self, session: &Session) -> Result<Credentials, CloudError> {
        let Some(pass) = session.pass_token.as_ref().filter(|p| !p.is_empty()) else {
            return Err(CloudError::relogin("no passToken is stored to refresh it"));
        };
        let base = self.endpoints.account_base.clone();
        self.jar.set(&base, "passToken", pass.reveal());
        self.jar.set(&base, "userId", &session.user_id);
        if let Some(c) = &session.c_user_id {
            self.jar.set(&base, "cUserId", c);
        }
        self.jar.set(&base, "deviceId", &session.device_id);
        self.device_id.clone_from(&session.device_id);
        tracing::debug!("refreshing the service token from the passToken");
        match self.service_login().await {
            Ok(LoginStep::Success(s)) => self.finish(s).await.map_err(|e| match e {
                e @ (CloudError::Network { .. }
                | CloudError::Timeout { .. }
                | CloudError::Unavailable { .. }) => e,
                other => CloudError::relogin(format!("the refresh failed: {other}")),
            }),
            Ok(LoginStep::NeedPassword { .. }) => Err(CloudError::relogin(
                "the service token expired and the passToken was refused",
            )),
            Ok(other) => Err(CloudError::relogin(format!(
                "the refresh was refused: {}",
                step_error(other)
            ))),
            Err(
                e @ (CloudError::Network { .. }
                | CloudError::Timeout { .. }
                | CloudError::Unavailable { .. }),
            ) => Err(e),
            Err(e) => Err(CloudError::relogin(format!("the refresh failed: {e}"))),
        }
    }

    /// STS: fetch `location` for the `serviceToken` cookie.
    async fn finish(&mut self, s: LoginSuccess) -> Result<Credentials, CloudError> {
        let url = self.endpoints.account_url(&s.location)?;
        tracing::debug!(url = %display_url(&url), "STS");
        let resp = self.follow(url).await?;
        if resp.status == 403 {
            return Err(CloudError::Http {
                status: 403,
                url: display_url(&resp.url),
                hint: "the STS host denied access; log in again with `mijia cloud login`",
            });
        }
        let token = self.jar.get("serviceToken").map(ServiceToken::new);
        let Some(service_token) = token.filter(|t| !t.is_empty()) else {
            return Err(CloudError::LoginRejected {
                code: i64::from(resp.status),
                desc: "the STS reply set no serviceToken cookie".into(),
            });
        };
        let pass_token = s
            .pass_token
            .clone()
            .or_else(|| self.jar.get("passToken").map(PassToken::new));
        Ok(Credentials {
            login: s,
            service_token,
            pass_token,
        })
    }
}

fn method_name(m: IdentityMethod) -> &'static str {
    match m {
        IdentityMethod::Phone => "SMS",
        IdentityMethod::Email => "e-mail",
    }
}

fn reply_json(body: &str) -> Option<serde_json::Value> {
    serde_json::from_str(strip_json_prefix(body)).ok()
}

fn reply_code(body: &str) -> Option<i64> {
    reply_json(body).and_then(|v| v.get("code").and_then(serde_json::Value::as_i64))
}

fn reply_desc(body: &str) -> String {
    reply_json(body)
        .and_then(|v| {
            ["desc", "description", "tips"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|d| d.as_str()).map(str::to_owned))
        })
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn step_error(step: LoginStep) -> CloudError {
    match step {
        LoginStep::BadCredentials { code, desc } => CloudError::BadCredentials { code, desc },
        LoginStep::Rejected { code, desc } => CloudError::LoginRejected { code, desc },
        LoginStep::Captcha { .. } => CloudError::LoginRejected {
            code: mijia_proto::cloud::login::CODE_CAPTCHA,
            desc: "a captcha was requested at an unexpected step".into(),
        },
        LoginStep::TwoFactor { .. } => CloudError::LoginRejected {
            code: mijia_proto::cloud::login::CODE_NEEDS_VERIFICATION,
            desc: "verification was requested at an unexpected step".into(),
        },
        LoginStep::NeedPassword { .. } => CloudError::LoginRejected {
            code: mijia_proto::cloud::login::CODE_NEED_LOGIN,
            desc: "the account server asked for the password again".into(),
        },
        LoginStep::Success(_) => CloudError::LoginRejected {
            code: 0,
            desc: "unexpected success reply".into(),
        },
    }
}

/// The CLI's [`Interaction`]: answers given on the command line first,
/// then prompts on the terminal, otherwise a clear error.
#[derive(Debug, Default)]
pub struct TerminalPrompt {
    /// Whether stdin and stderr are terminals.
    pub interactive: bool,
    /// Captcha answers to use before prompting (`--captcha-code`).
    pub captcha_codes: VecDeque<String>,
    /// Verification codes to use before prompting (`--verify-code`).
    pub verify_codes: VecDeque<String>,
}

impl TerminalPrompt {
    /// A prompt that is interactive when stdin and stderr are terminals.
    pub fn from_terminal(captcha_codes: Vec<String>, verify_codes: Vec<String>) -> Self {
        TerminalPrompt {
            interactive: is_interactive(),
            captcha_codes: captcha_codes.into(),
            verify_codes: verify_codes.into(),
        }
    }
}

/// True when stdin and stderr are both terminals.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Prints `question` on stderr and reads one line from stdin.
pub fn ask_line(question: &str) -> Result<String, CloudError> {
    let io = |context: &str| {
        let context = context.to_owned();
        move |source| CloudError::Io { context, source }
    };
    let mut err = std::io::stderr().lock();
    write!(err, "{question}").map_err(io("cannot write the prompt"))?;
    err.flush().map_err(io("cannot write the prompt"))?;
    drop(err);
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(io("cannot read the answer"))?;
    if n == 0 {
        return Err(CloudError::Io {
            context: "cannot read the answer".into(),
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "end of input"),
        });
    }
    Ok(line.trim().to_owned())
}

/// Reads a line from the terminal with echo off (via `stty`), falling back
/// to a visible prompt if `stty` is unavailable.
pub fn ask_secret(question: &str) -> Result<String, CloudError> {
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty")
            .ok()
            .and_then(|tty| {
                std::process::Command::new("stty")
                    .arg(arg)
                    .stdin(tty)
                    .status()
                    .ok()
            })
            .is_some_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let answer = ask_line(question);
    if hidden {
        stty("echo");
        eprintln!();
    }
    answer
}

impl Interaction for TerminalPrompt {
    fn captcha(&mut self, image: &Path, retry: bool) -> Result<String, CloudError> {
        if let Some(code) = self.captcha_codes.pop_front() {
            return Ok(code);
        }
        if !self.interactive {
            return Err(CloudError::CaptchaRequired {
                image: image.to_path_buf(),
            });
        }
        if retry {
            eprintln!("The captcha answer was not accepted; a new image was saved.");
        }
        eprintln!(
            "Captcha required: open {} and type the characters.",
            image.display()
        );
        ask_line("Captcha: ")
    }

    fn verification_code(
        &mut self,
        method: IdentityMethod,
        retry: bool,
    ) -> Result<String, CloudError> {
        if let Some(code) = self.verify_codes.pop_front() {
            return Ok(code);
        }
        if !self.interactive {
            return Err(CloudError::VerificationRequired {
                method: method_name(method),
            });
        }
        if retry {
            eprintln!("Try again.");
        }
        ask_line(&format!("Code sent by {}: ", method_name(method)))
    }

    fn show_qr(&mut self, login_url: &str, image_url: &str, timeout_secs: u64) {
        let mut text = String::new();
        match qrcode::QrCode::new(login_url.as_bytes()) {
            Ok(code) => {
                text.push_str(
                    &code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build(),
                );
                text.push('\n');
            }
            Err(e) => text.push_str(&format!("(cannot draw the QR code here: {e})\n")),
        }
        text.push_str(&format!(
            "Scan this code with the Mi Home app (Profile → scan), or open:\n  {login_url}\n\
             QR image: {image_url}\nWaiting up to {timeout_secs} s for confirmation…\n"
        ));
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    fn note(&mut self, message: &str) {
        eprintln!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_interactive_prompts_fail_with_what_to_run() {
        let mut p = TerminalPrompt {
            interactive: false,
            captcha_codes: VecDeque::from(vec!["abcd".to_owned()]),
            verify_codes: VecDeque::new(),
        };
        let img = Path::new("/tmp/x.png");
        assert_eq!(p.captcha(img, false).ok().as_deref(), Some("abcd"));
        let e = p.captcha(img, true).unwrap_err();
        assert!(e.to_string().contains("/tmp/x.png") && e.to_string().contains("--qr"));
        let e = p
            .verification_code(IdentityMethod::Email, false)
            .unwrap_err();
        assert!(e.to_string().contains("e-mail"), "{e}");
        assert!(e.needs_login());
    }
}
