//! The account host: password login (`/pass/serviceLogin`,
//! `/pass/serviceLoginAuth2`), captcha images (`/pass/getCode`), two-factor
//! verification (`/identity/…`), QR login (`/longPolling/…`) and the STS
//! (`/sts`) that turns a login into a `serviceToken` cookie.
//!
//! Every JSON reply starts with `&&&START&&&`; every URL handed out
//! (`location`, `notificationUrl`, `lp`, `qr`, `captchaUrl` unless
//! configured relative) is absolute on this server. This module does not
//! serve the signed app API (see [`super::api`]).

use std::sync::Arc;
use std::time::Instant;

use mijia_proto::cloud::login::client_sign;
use mijia_proto::cloud::password_hash;
use serde_json::{json, Value};

use super::config::LoginOutcome;
use super::http::{Reply, Req};
use super::server::Outcome;
use super::state::{
    random_b64, random_hex, QrPending, QrState, Shared, TwoFactorPending, TWO_FACTOR_ATTEMPTS,
};

/// A 1×1 PNG, the "image" of every captcha and QR code.
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0xe9, 0xfa, 0xdc, 0xd8, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];

const QS: &str = "%3Fsid%3Dxiaomiio%26_json%3Dtrue";
/// Code of a locked two-factor context.
pub const CODE_TOO_MANY_ATTEMPTS: i64 = 70022;
/// Code of an expired QR login.
pub const CODE_QR_EXPIRED: i64 = 70019;

/// Handle one account-host request.
pub(crate) async fn handle(shared: &Arc<Shared>, req: &Req) -> Outcome {
    let path = req.path.as_str();
    match path {
        "/pass/serviceLogin" => service_login(shared, req),
        "/pass/serviceLoginAuth2" => login_auth2(shared, req),
        "/pass/getCode" => get_code(shared),
        "/identity/list" => identity_list(shared, req),
        "/identity/auth/sendPhoneTicket" => send_ticket(shared, req, 4),
        "/identity/auth/sendEmailTicket" => send_ticket(shared, req, 8),
        "/identity/auth/verifyPhone" => verify(shared, req, 4),
        "/identity/auth/verifyEmail" => verify(shared, req, 8),
        "/longPolling/loginUrl" => qr_start(shared),
        "/longPolling/login" => Outcome::new(
            Reply::text(200, "open the Mi Home app and scan this code"),
            "qr content page",
        ),
        "/sts" => sts(shared, req),
        "/fe/service/identity/authStart" | "/fe/service/login/password" => Outcome::new(
            Reply::text(
                200,
                "a web page of the fake account host; clients use the JSON endpoints",
            ),
            "web page",
        ),
        _ => {
            if let Some(id) = path.strip_prefix("/longPolling/lp/") {
                return long_poll(shared, id).await;
            }
            if path.starts_with("/longPolling/qr/") {
                return Outcome::new(Reply::new(200, "image/png", TINY_PNG), "qr image");
            }
            Outcome::new(
                Reply::text(404, "no such page on the fake account host"),
                "404",
            )
        }
    }
}

fn need_login(shared: &Shared, sign: &str, sid: &str) -> Value {
    json!({
        "serviceParam": "{\"checkSafePhone\":false}",
        "qs": QS,
        "code": 70016,
        "description": "login required",
        "securityStatus": 0,
        "_sign": sign,
        "sid": sid,
        "result": "error",
        "captchaUrl": null,
        "callback": shared.sts_url(),
        "location": format!("{}/fe/service/login/password?sid={sid}&_json=true", shared.base_url),
        "pwd": 0,
        "child": 0,
        "desc": "login required",
    })
}

fn success_reply(v: &Value) -> Reply {
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    Reply::account_json(v)
        .with_cookie("passToken", &text("passToken"))
        .with_cookie("userId", &text("userId"))
        .with_cookie("cUserId", &text("cUserId"))
}

fn service_login(shared: &Shared, req: &Req) -> Outcome {
    let sid = req.field("sid").unwrap_or("xiaomiio").to_owned();
    let sts = shared.sts_url();
    let mut g = shared.lock();
    let verdict = match (req.cookie("passToken"), req.cookie("userId")) {
        (Some(pt), Some(uid)) => match g.pass_tokens.get(pt) {
            Some(st) if st.valid && st.user_id.to_string() == uid => {
                let user_id = st.user_id;
                let v = g.new_login(user_id, &sid, &sts, Some(pt));
                return Outcome::new(success_reply(&v), "0 refreshed with passToken");
            }
            Some(st) if !st.valid => "70016 passToken expired",
            Some(_) => "70016 passToken of another user",
            None => "70016 unknown passToken",
        },
        (Some(_), None) => "70016 passToken without userId cookie",
        _ => "70016 not logged in",
    };
    let sign = random_b64(12);
    g.signs.insert(sign.clone());
    Outcome::new(
        Reply::account_json(&need_login(shared, &sign, &sid)),
        verdict,
    )
}

fn refusal(code: i64, desc: &str) -> Value {
    json!({
        "code": code,
        "result": "error",
        "desc": desc,
        "description": desc,
        "location": "",
        "captchaUrl": null,
        "securityStatus": 0,
        "qs": QS,
    })
}

fn captcha_reply(shared: &Shared, relative: bool, now_ms: u64, desc: &str) -> Value {
    let path = format!("/pass/getCode?icodeType=login&_={now_ms}");
    let url = if relative {
        path
    } else {
        format!("{}{path}", shared.base_url)
    };
    json!({
        "code": 87001,
        "result": "error",
        "desc": desc,
        "description": desc,
        "location": "",
        "captchaUrl": url,
        "qs": QS,
    })
}

fn two_factor_reply(shared: &Shared, context: &str) -> Value {
    json!({
        "code": 0,
        "result": "ok",
        "desc": "verification needed",
        "location": "",
        "securityStatus": 16,
        "qs": QS,
        "notificationUrl": format!(
            "{}/fe/service/identity/authStart?sid=xiaomiio&context={context}&_locale=en_GB",
            shared.base_url
        ),
    })
}

fn login_auth2(shared: &Shared, req: &Req) -> Outcome {
    let sid = req.field("sid").unwrap_or("xiaomiio").to_owned();
    let sts = shared.sts_url();
    let mut g = shared.lock();
    let now_ms = g.now_ms();
    let relative = g.captcha_url_relative;
    let login = req.field("user").unwrap_or("");
    let Some(acct) = g.account(login) else {
        return Outcome::new(
            Reply::account_json(&refusal(70016, "wrong user name or password")),
            "70016 unknown user",
        );
    };
    let user_id = acct.cfg.user_id;
    let captcha = acct.cfg.captcha.clone();
    let two_factor_code = acct.cfg.two_factor.as_ref().map(|t| t.code.clone());
    let method_flag = acct.cfg.two_factor.as_ref().map_or(8, |t| t.method.flag());
    let hash_ok = req.field("hash") == Some(password_hash(&acct.cfg.password).as_str());
    let risk = acct.cfg.risk_control;

    let start_two_factor = |g: &mut super::state::Inner, code: String| -> Outcome {
        let context = random_hex(16);
        g.identity.insert(
            context.clone(),
            TwoFactorPending {
                user_id,
                code,
                method_flag,
                sent_flag: None,
                attempts: 0,
                done: false,
            },
        );
        Outcome::new(
            Reply::account_json(&two_factor_reply(shared, &context)),
            "0 two-factor verification required",
        )
    };

    if let Some(o) = g.scripts.get_mut(&user_id).and_then(|q| q.pop_front()) {
        return match o {
            LoginOutcome::Success => {
                let v = g.new_login(user_id, &sid, &sts, None);
                Outcome::new(success_reply(&v), "0 success (scripted)")
            }
            LoginOutcome::BadPassword => Outcome::new(
                Reply::account_json(&refusal(70016, "wrong user name or password")),
                "70016 bad password (scripted)",
            ),
            LoginOutcome::RiskControl => Outcome::new(
                Reply::account_json(&refusal(70016, "wrong user name or password")),
                "70016 risk control (scripted)",
            ),
            LoginOutcome::Captcha => Outcome::new(
                Reply::account_json(&captcha_reply(shared, relative, now_ms, "captcha required")),
                "87001 captcha required (scripted)",
            ),
            LoginOutcome::TwoFactor => {
                let code = two_factor_code.unwrap_or_else(|| "123456".to_owned());
                let mut o = start_two_factor(&mut g, code);
                o.verdict.push_str(" (scripted)");
                o
            }
            LoginOutcome::Error { code, desc } => Outcome::new(
                Reply::account_json(&refusal(code, &desc)),
                format!("{code} {desc} (scripted)"),
            ),
        };
    }

    if let Some(answer) = captcha {
        match req.field("captCode").filter(|c| !c.is_empty()) {
            None => {
                return Outcome::new(
                    Reply::account_json(&captcha_reply(
                        shared,
                        relative,
                        now_ms,
                        "captcha required",
                    )),
                    "87001 captcha required",
                )
            }
            Some(c) => {
                let ick_ok = req.cookie("ick").is_some_and(|i| g.icks.remove(i));
                if !ick_ok || !c.trim().eq_ignore_ascii_case(answer.trim()) {
                    let why = if ick_ok {
                        "87001 wrong captcha"
                    } else {
                        "87001 captcha without a valid ick cookie"
                    };
                    return Outcome::new(
                        Reply::account_json(&captcha_reply(
                            shared,
                            relative,
                            now_ms,
                            "wrong captcha",
                        )),
                        why,
                    );
                }
            }
        }
    }
    if !hash_ok {
        return Outcome::new(
            Reply::account_json(&refusal(70016, "wrong user name or password")),
            "70016 bad password hash",
        );
    }
    if risk {
        return Outcome::new(
            Reply::account_json(&refusal(70016, "wrong user name or password")),
            "70016 risk control",
        );
    }
    if let Some(code) = two_factor_code {
        return start_two_factor(&mut g, code);
    }
    let v = g.new_login(user_id, &sid, &sts, None);
    Outcome::new(success_reply(&v), "0 success")
}

fn get_code(shared: &Shared) -> Outcome {
    let ick = random_hex(16);
    shared.lock().icks.insert(ick.clone());
    Outcome::new(
        Reply::new(200, "image/png", TINY_PNG).with_cookie("ick", &ick),
        "captcha image",
    )
}

fn identity_list(shared: &Shared, req: &Req) -> Outcome {
    let context = req.field("context").unwrap_or("");
    let mut g = shared.lock();
    let Some(p) = g.identity.get(context).filter(|p| !p.done) else {
        return Outcome::new(
            Reply::account_json(
                &json!({"code": 2, "desc": "unknown or finished verification context"}),
            ),
            "2 unknown identity context",
        );
    };
    let flag = p.method_flag;
    let session = random_hex(16);
    g.identity_sessions
        .insert(session.clone(), context.to_owned());
    Outcome::new(
        Reply::account_json(&json!({"code": 0, "flag": flag, "options": [4, 8]}))
            .with_cookie("identity_session", &session),
        "0 identity list",
    )
}

fn pending_context(shared: &Shared, req: &Req) -> Option<String> {
    let s = req.cookie("identity_session")?;
    shared.lock().identity_sessions.get(s).cloned()
}

fn send_ticket(shared: &Shared, req: &Req, flag: u64) -> Outcome {
    let Some(ctx) = pending_context(shared, req) else {
        return Outcome::new(
            Reply::account_json(
                &json!({"code": 2, "desc": "no identity_session cookie; GET /identity/list first"}),
            ),
            "2 no identity session",
        );
    };
    let mut g = shared.lock();
    match g.identity.get_mut(&ctx) {
        Some(p) => {
            p.sent_flag = Some(flag);
            Outcome::new(
                Reply::account_json(&json!({"code": 0, "result": "ok"})),
                format!("0 code sent (flag {flag})"),
            )
        }
        None => Outcome::new(
            Reply::account_json(&json!({"code": 2, "desc": "verification context expired"})),
            "2 identity context gone",
        ),
    }
}

fn verify(shared: &Shared, req: &Req, flag: u64) -> Outcome {
    let Some(ctx) = pending_context(shared, req) else {
        return Outcome::new(
            Reply::account_json(
                &json!({"code": 2, "desc": "no identity_session cookie; GET /identity/list first"}),
            ),
            "2 no identity session",
        );
    };
    let sts = shared.sts_url();
    let mut g = shared.lock();
    let Some(p) = g.identity.get_mut(&ctx) else {
        return Outcome::new(
            Reply::account_json(&json!({"code": 2, "desc": "verification context expired"})),
            "2 identity context gone",
        );
    };
    if p.done {
        return Outcome::new(
            Reply::account_json(&json!({"code": 2, "desc": "already verified; log in again"})),
            "2 already verified",
        );
    }
    if p.attempts >= TWO_FACTOR_ATTEMPTS {
        return Outcome::new(
            Reply::account_json(
                &json!({"code": CODE_TOO_MANY_ATTEMPTS, "desc": "too many wrong codes; try again later"}),
            ),
            format!("{CODE_TOO_MANY_ATTEMPTS} locked"),
        );
    }
    match p.sent_flag {
        None => {
            return Outcome::new(
                Reply::account_json(
                    &json!({"code": 2, "desc": "no code was sent; call send{Phone,Email}Ticket first"}),
                ),
                "2 verify before send",
            )
        }
        Some(f) if f != flag => {
            return Outcome::new(
                Reply::account_json(
                    &json!({"code": 2, "desc": "the code was sent by another method"}),
                ),
                "2 wrong method",
            )
        }
        Some(_) => {}
    }
    let ticket = req.field("ticket").unwrap_or("").trim();
    if ticket != p.code {
        p.attempts += 1;
        let left = TWO_FACTOR_ATTEMPTS.saturating_sub(p.attempts);
        return Outcome::new(
            Reply::account_json(
                &json!({"code": 70014, "desc": "wrong verification code", "tips": format!("{left} attempts left")}),
            ),
            format!("70014 wrong code ({left} left)"),
        );
    }
    p.done = true;
    let user_id = p.user_id;
    let v = g.new_login(user_id, "xiaomiio", &sts, None);
    let location = v.get("location").cloned().unwrap_or(Value::Null);
    let mut reply = success_reply(&v);
    if let Reply::Http { body, .. } = &mut reply {
        *body = format!(
            "{}{}",
            super::http::JSON_PREFIX,
            json!({"code": 0, "result": "ok", "location": location})
        )
        .into_bytes();
    }
    Outcome::new(reply, "0 verified")
}

fn qr_start(shared: &Shared) -> Outcome {
    let id = random_hex(12);
    let base = &shared.base_url;
    let mut g = shared.lock();
    let now = Instant::now();
    let auto = g.qr_auto_confirm.clone().and_then(|a| {
        let user = g.account(&a.user)?.cfg.user_id;
        Some((user, now + std::time::Duration::from_millis(a.after_ms)))
    });
    let timeout = g.qr_timeout;
    g.qrs.retain(|q| q.expires > now);
    g.qrs.push(QrPending {
        id: id.clone(),
        created: now,
        expires: now + timeout,
        auto,
        confirmed_by: None,
        reply: None,
    });
    let v = json!({
        "code": 0,
        "result": "ok",
        "desc": "ok",
        "qr": format!("{base}/longPolling/qr/{id}.png"),
        "loginUrl": format!("{base}/longPolling/login?ticket={id}"),
        "lp": format!("{base}/longPolling/lp/{id}"),
        "timeout": timeout.as_secs(),
        "timeInterval": 1000,
    });
    Outcome::new(Reply::account_json(&v), "0 qr login started")
}

async fn long_poll(shared: &Shared, id: &str) -> Outcome {
    let sts = shared.sts_url();
    loop {
        let notified = shared.qr_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let state = {
            let mut g = shared.lock();
            g.qr_state(id, Instant::now())
        };
        match state {
            QrState::Unknown => {
                return Outcome::new(
                    Reply::account_json(
                        &json!({"code": CODE_QR_EXPIRED, "result": "error", "desc": "unknown QR login"}),
                    ),
                    format!("{CODE_QR_EXPIRED} unknown qr"),
                )
            }
            QrState::Expired => {
                return Outcome::new(
                    Reply::account_json(
                        &json!({"code": CODE_QR_EXPIRED, "result": "error", "desc": "the QR code expired; start a new QR login"}),
                    ),
                    format!("{CODE_QR_EXPIRED} qr expired"),
                )
            }
            QrState::Confirmed(user_id) => {
                let mut g = shared.lock();
                let existing = g
                    .qrs
                    .iter()
                    .find(|q| q.id == id)
                    .and_then(|q| q.reply.clone());
                let v = match existing {
                    Some(v) => v,
                    None => {
                        let v = g.new_login(user_id, "xiaomiio", &sts, None);
                        if let Some(q) = g.qrs.iter_mut().find(|q| q.id == id) {
                            q.reply = Some(v.clone());
                        }
                        v
                    }
                };
                return Outcome::new(success_reply(&v), "0 qr confirmed");
            }
            QrState::Pending { wake_at } => {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake_at)) => {}
                }
            }
        }
    }
}

fn sts(shared: &Shared, req: &Req) -> Outcome {
    let ticket = req.field("_ssign").unwrap_or("");
    let mut g = shared.lock();
    let Some((grant, token)) = g.redeem(ticket) else {
        return Outcome::new(Reply::text(403, "Access denied"), "403 unknown STS ticket");
    };
    if grant.sid != "xiaomiio" {
        let expected = client_sign(&grant.nonce, &grant.ssecurity);
        if req.field("clientSign") != Some(expected.as_str()) {
            return Outcome::new(
                Reply::text(403, "Access denied"),
                "403 missing or wrong clientSign",
            );
        }
    }
    let c_user_id = g
        .account_by_id(grant.user_id)
        .map(|a| a.c_user_id.clone())
        .unwrap_or_default();
    let pragma = json!({"nonce": grant.nonce, "ssecurity": grant.ssecurity.reveal()}).to_string();
    Outcome::new(
        Reply::text(200, "ok")
            .with_cookie("serviceToken", &token)
            .with_cookie("yetAnotherServiceToken", &token)
            .with_cookie("userId", &grant.user_id.to_string())
            .with_cookie("cUserId", &c_user_id)
            .with_header("extension-pragma", &pragma),
        "200 serviceToken issued",
    )
}
