//! Pure helpers for the account login on `account.xiaomi.com`: the password
//! hash, `clientSign`, the `&&&START&&&` prefix, and classification of every
//! JSON reply of the password, captcha, two-factor and QR flows into typed
//! steps.
//!
//! This module does not send requests, follow redirects or keep cookies;
//! the async login driver does that and asks these functions what a reply
//! means. Unknown codes become [`LoginStep::Rejected`] with the server's
//! `code` and `desc`, never a panic.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde_json::{Map, Value};
use sha1::Sha1;

use super::error::CloudProtoError;
use super::form::encode_component;
use super::secrets::{PassToken, Password, Psecurity, Ssecurity};

/// The literal every account JSON reply starts with.
pub const JSON_PREFIX: &str = "&&&START&&&";

/// Account code: not logged in (serviceLogin) or bad credentials / risk
/// control (serviceLoginAuth2).
pub const CODE_NEED_LOGIN: i64 = 70016;
/// Account code: captcha required or wrong.
pub const CODE_CAPTCHA: i64 = 87001;
/// Account code: further verification (2FA) needed.
pub const CODE_NEEDS_VERIFICATION: i64 = 81003;
/// Account code: wrong verification code.
pub const CODE_WRONG_TICKET: i64 = 70014;
/// Codes treated as bad credentials on serviceLoginAuth2.
pub const BAD_CREDENTIAL_CODES: [i64; 3] = [70016, 20003, 70002];

/// The `hash` field of serviceLoginAuth2: MD5 of the UTF-8 password,
/// uppercase hex.
pub fn password_hash(password: &Password) -> String {
    hex::encode_upper(Md5::digest(password.reveal().as_bytes()))
}

/// `clientSign` for the STS URL of non-`xiaomiio` sids:
/// base64(SHA-1(`nonce=<nonce>&<ssecurity>`)).
pub fn client_sign(nonce: &str, ssecurity: &Ssecurity) -> String {
    let message = format!("nonce={nonce}&{}", ssecurity.reveal());
    STANDARD.encode(Sha1::digest(message.as_bytes()))
}

/// The `clientSign=…` query parameter, value url-encoded.
pub fn client_sign_param(nonce: &str, ssecurity: &Ssecurity) -> String {
    format!(
        "clientSign={}",
        encode_component(&client_sign(nonce, ssecurity))
    )
}

/// Removes the `&&&START&&&` prefix (and surrounding whitespace) if present.
pub fn strip_json_prefix(body: &str) -> &str {
    let body = body.trim_start();
    body.strip_prefix(JSON_PREFIX).unwrap_or(body).trim()
}

fn parse_object(body: &str) -> Result<Map<String, Value>, CloudProtoError> {
    match serde_json::from_str::<Value>(strip_json_prefix(body)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CloudProtoError::AccountReply {
            detail: "the reply is not a JSON object".to_owned(),
        }),
        Err(e) => Err(CloudProtoError::AccountReply {
            detail: format!("the reply is not JSON ({e})"),
        }),
    }
}

/// A string field; numbers are rendered as text (user ids, nonces). Empty
/// strings and `null` count as absent.
fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn code_of(map: &Map<String, Value>) -> Option<i64> {
    match map.get("code") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn desc_of(map: &Map<String, Value>) -> String {
    ["desc", "description", "message", "tips"]
        .iter()
        .find_map(|k| text(map, k))
        .unwrap_or_default()
}

/// The credentials of a completed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSuccess {
    /// Root signing secret.
    pub ssecurity: Ssecurity,
    /// Numeric user id, as text.
    pub user_id: String,
    /// The encrypted user id (`cUserId`), if sent.
    pub c_user_id: Option<String>,
    /// The long-lived refresh token, if sent.
    pub pass_token: Option<PassToken>,
    /// The STS URL that sets the `serviceToken` cookie.
    pub location: String,
    /// The login nonce (input of `clientSign`), if sent.
    pub nonce: Option<String>,
    /// `psecurity`, if sent.
    pub psecurity: Option<Psecurity>,
}

/// What an account reply asks the client to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginStep {
    /// serviceLogin without a valid passToken: post the password with these
    /// values to serviceLoginAuth2.
    NeedPassword {
        /// `_sign`, to echo back.
        sign: String,
        /// `qs`, to echo back.
        qs: String,
        /// `callback`, to echo back.
        callback: String,
    },
    /// Logged in; fetch `location` for the service token.
    Success(LoginSuccess),
    /// A captcha must be solved (or the answer was wrong).
    Captcha {
        /// The image URL as given (usually relative to the account host).
        captcha_url: String,
    },
    /// Two-factor verification is needed.
    TwoFactor {
        /// The `notificationUrl` as given.
        notification_url: String,
    },
    /// Wrong user or password, or risk control refusing a right one.
    BadCredentials {
        /// The account server's code.
        code: i64,
        /// The account server's description.
        desc: String,
    },
    /// Any other refusal.
    Rejected {
        /// The account server's code.
        code: i64,
        /// The account server's description.
        desc: String,
    },
}

fn success(map: &Map<String, Value>) -> Result<Option<LoginSuccess>, CloudProtoError> {
    let Some(ss) = text(map, "ssecurity") else {
        return Ok(None);
    };
    let ssecurity = Ssecurity::from_base64(&ss)?;
    let user_id = text(map, "userId").ok_or_else(|| CloudProtoError::AccountReply {
        detail: "a successful login reply has no userId".to_owned(),
    })?;
    let location = text(map, "location").ok_or_else(|| CloudProtoError::AccountReply {
        detail: "a successful login reply has no location (STS URL)".to_owned(),
    })?;
    Ok(Some(LoginSuccess {
        ssecurity,
        user_id,
        c_user_id: text(map, "cUserId"),
        pass_token: text(map, "passToken").map(PassToken::new),
        location,
        nonce: text(map, "nonce"),
        psecurity: text(map, "psecurity").map(Psecurity::new),
    }))
}

fn captcha(map: &Map<String, Value>) -> LoginStep {
    LoginStep::Captcha {
        captcha_url: text(map, "captchaUrl").unwrap_or_default(),
    }
}

/// Classifies the reply of `GET /pass/serviceLogin`.
pub fn parse_service_login(body: &str) -> Result<LoginStep, CloudProtoError> {
    let map = parse_object(body)?;
    if let Some(s) = success(&map)? {
        return Ok(LoginStep::Success(s));
    }
    match code_of(&map) {
        Some(CODE_NEED_LOGIN) => {
            let sign = text(&map, "_sign").ok_or_else(|| CloudProtoError::AccountReply {
                detail: "serviceLogin asked for a password but sent no _sign".to_owned(),
            })?;
            Ok(LoginStep::NeedPassword {
                sign,
                qs: text(&map, "qs").unwrap_or_default(),
                callback: text(&map, "callback").unwrap_or_default(),
            })
        }
        Some(CODE_CAPTCHA) => Ok(captcha(&map)),
        Some(code) => Ok(LoginStep::Rejected {
            code,
            desc: desc_of(&map),
        }),
        None => Err(CloudProtoError::AccountReply {
            detail: "serviceLogin reply has no code".to_owned(),
        }),
    }
}

/// Classifies the reply of `POST /pass/serviceLoginAuth2`, and the final
/// long-poll reply of a QR login.
pub fn parse_login_auth2(body: &str) -> Result<LoginStep, CloudProtoError> {
    let map = parse_object(body)?;
    let code = code_of(&map);
    let ok = code == Some(0) || text(&map, "result").as_deref() == Some("ok");
    if ok {
        if let Some(s) = success(&map)? {
            return Ok(LoginStep::Success(s));
        }
        if let Some(notification_url) = text(&map, "notificationUrl") {
            return Ok(LoginStep::TwoFactor { notification_url });
        }
    }
    match code {
        Some(CODE_CAPTCHA) => Ok(captcha(&map)),
        Some(CODE_NEEDS_VERIFICATION) => Ok(LoginStep::TwoFactor {
            notification_url: text(&map, "notificationUrl").unwrap_or_default(),
        }),
        Some(code) if BAD_CREDENTIAL_CODES.contains(&code) => Ok(LoginStep::BadCredentials {
            code,
            desc: desc_of(&map),
        }),
        Some(code) => Ok(LoginStep::Rejected {
            code,
            desc: desc_of(&map),
        }),
        None => Err(CloudProtoError::AccountReply {
            detail: "serviceLoginAuth2 reply has no code".to_owned(),
        }),
    }
}

/// The first reply of a QR login (`/longPolling/loginUrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrStart {
    /// PNG of the QR code.
    pub qr_image_url: String,
    /// The QR content, for rendering in a terminal.
    pub login_url: String,
    /// The long-poll URL.
    pub long_poll_url: String,
    /// Seconds until the QR code expires.
    pub timeout_secs: u64,
    /// The suggested polling interval, if sent (unit as sent by the server).
    pub interval: Option<u64>,
}

fn number(map: &Map<String, Value>, key: &str) -> Option<u64> {
    match map.get(key) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses the reply of `GET /longPolling/loginUrl`.
pub fn parse_qr_start(body: &str) -> Result<QrStart, CloudProtoError> {
    let map = parse_object(body)?;
    match code_of(&map) {
        Some(0) => {}
        Some(code) => {
            return Err(CloudProtoError::AccountReply {
                detail: format!("QR login refused with code {code} ({})", desc_of(&map)),
            })
        }
        None => {
            return Err(CloudProtoError::AccountReply {
                detail: "QR login reply has no code".to_owned(),
            })
        }
    }
    let need = |key: &str| {
        text(&map, key).ok_or_else(|| CloudProtoError::AccountReply {
            detail: format!("QR login reply has no {key:?}"),
        })
    };
    Ok(QrStart {
        qr_image_url: need("qr")?,
        login_url: need("loginUrl")?,
        long_poll_url: need("lp")?,
        timeout_secs: number(&map, "timeout").unwrap_or(300),
        interval: number(&map, "timeInterval"),
    })
}

/// Parses the long-poll reply of a QR login (same shape as a password
/// login's success).
pub fn parse_qr_poll(body: &str) -> Result<LoginStep, CloudProtoError> {
    parse_login_auth2(body)
}

/// A way to receive a verification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityMethod {
    /// SMS (flag 4).
    Phone,
    /// E-mail (flag 8).
    Email,
}

impl IdentityMethod {
    /// The numeric flag.
    pub const fn flag(self) -> u64 {
        match self {
            IdentityMethod::Phone => 4,
            IdentityMethod::Email => 8,
        }
    }

    /// The method for a numeric flag.
    pub const fn from_flag(flag: u64) -> Option<Self> {
        match flag {
            4 => Some(IdentityMethod::Phone),
            8 => Some(IdentityMethod::Email),
            _ => None,
        }
    }

    /// The path that sends a code.
    pub const fn send_ticket_path(self) -> &'static str {
        match self {
            IdentityMethod::Phone => "/identity/auth/sendPhoneTicket",
            IdentityMethod::Email => "/identity/auth/sendEmailTicket",
        }
    }

    /// The path that checks a code.
    pub const fn verify_path(self) -> &'static str {
        match self {
            IdentityMethod::Phone => "/identity/auth/verifyPhone",
            IdentityMethod::Email => "/identity/auth/verifyEmail",
        }
    }
}

/// The reply of `GET /identity/list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOptions {
    /// The server's preferred method.
    pub preferred: Option<IdentityMethod>,
    /// Every method offered (unknown flags are skipped).
    pub options: Vec<IdentityMethod>,
}

/// Parses the reply of `GET /identity/list`.
pub fn parse_identity_list(body: &str) -> Result<IdentityOptions, CloudProtoError> {
    let map = parse_object(body)?;
    if let Some(code) = code_of(&map).filter(|c| *c != 0) {
        return Err(CloudProtoError::AccountReply {
            detail: format!(
                "the identity list was refused with code {code} ({})",
                desc_of(&map)
            ),
        });
    }
    let preferred = number(&map, "flag").and_then(IdentityMethod::from_flag);
    let mut options: Vec<IdentityMethod> = match map.get("options") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_u64)
            .filter_map(IdentityMethod::from_flag)
            .collect(),
        _ => Vec::new(),
    };
    if options.is_empty() {
        options.extend(preferred);
    }
    if options.is_empty() {
        return Err(CloudProtoError::AccountReply {
            detail: "the identity list offers no known verification method (SMS or e-mail)"
                .to_owned(),
        });
    }
    Ok(IdentityOptions { preferred, options })
}

/// The outcome of `POST /identity/auth/verify{Phone,Email}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// Accepted; follow `location`.
    Verified {
        /// Where to go next.
        location: String,
    },
    /// The code was wrong (70014).
    WrongCode,
    /// Any other refusal (e.g. 2: wrong method; lockout).
    Rejected {
        /// The account server's code.
        code: i64,
        /// The account server's description.
        desc: String,
    },
}

/// Parses the reply of a verification-code check.
pub fn parse_verify(body: &str) -> Result<VerifyOutcome, CloudProtoError> {
    let map = parse_object(body)?;
    match code_of(&map) {
        Some(0) => text(&map, "location")
            .map(|location| VerifyOutcome::Verified { location })
            .ok_or_else(|| CloudProtoError::AccountReply {
                detail: "the code was accepted but the reply has no location".to_owned(),
            }),
        Some(CODE_WRONG_TICKET) => Ok(VerifyOutcome::WrongCode),
        Some(code) => Ok(VerifyOutcome::Rejected {
            code,
            desc: desc_of(&map),
        }),
        None => Err(CloudProtoError::AccountReply {
            detail: "the verification reply has no code".to_owned(),
        }),
    }
}

/// The `/identity/list` URL for a `notificationUrl`: its path
/// `/fe/service/identity/authStart` replaced by `/identity/list`, query kept.
pub fn identity_list_url(notification_url: &str) -> String {
    notification_url.replacen("/fe/service/identity/authStart", "/identity/list", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SS: &str = "rmiKudqfR0nPsTBl/lkHjg==";

    fn pre(json: &str) -> String {
        format!("{JSON_PREFIX}{json}")
    }

    #[test]
    fn hashes() {
        assert_eq!(
            password_hash(&Password::new("correct horse battery staple")),
            "9CC2AE8A1BA7A93DA39B46FC1019C481"
        );
        let ss = Ssecurity::from_base64(SS).unwrap();
        assert_eq!(
            client_sign("1234567890123", &ss),
            "1Er9BjQ65Cg2cmviszBc3WQBIUE="
        );
        assert_eq!(
            client_sign_param("1234567890123", &ss),
            "clientSign=1Er9BjQ65Cg2cmviszBc3WQBIUE%3D"
        );
    }

    #[test]
    fn prefix_is_optional() {
        assert_eq!(strip_json_prefix("&&&START&&&{}"), "{}");
        assert_eq!(strip_json_prefix(" {} "), "{}");
        assert!(parse_service_login("&&&START&&&").is_err());
        assert!(parse_service_login("<html>").is_err());
        assert!(parse_service_login("[1]").is_err());
    }

    #[test]
    fn service_login_needs_password() {
        let body = pre(
            r#"{"code":70016,"result":"error","_sign":"abc=","qs":"%3Fsid%3Dxiaomiio%26_json%3Dtrue","callback":"https://sts.api.io.mi.com/sts","sid":"xiaomiio","location":"https://account.xiaomi.com/fe/login","captchaUrl":null}"#,
        );
        assert_eq!(
            parse_service_login(&body).unwrap(),
            LoginStep::NeedPassword {
                sign: "abc=".into(),
                qs: "%3Fsid%3Dxiaomiio%26_json%3Dtrue".into(),
                callback: "https://sts.api.io.mi.com/sts".into(),
            }
        );
        assert!(parse_service_login(&pre(r#"{"code":70016}"#)).is_err());
    }

    fn success_body(code: i64) -> String {
        pre(&format!(
            r#"{{"code":{code},"ssecurity":"{SS}","userId":1111111111,"cUserId":"cu-1","passToken":"V1:pt","location":"http://127.0.0.1:1/sts?x=1","nonce":1234567890123,"psecurity":"ps","notificationUrl":""}}"#
        ))
    }

    #[test]
    fn success_from_service_login_and_auth2() {
        for parse in [parse_service_login, parse_login_auth2, parse_qr_poll] {
            let LoginStep::Success(s) = parse(&success_body(0)).unwrap() else {
                panic!("not success");
            };
            assert_eq!(s.ssecurity.reveal(), SS);
            assert_eq!(s.user_id, "1111111111");
            assert_eq!(s.c_user_id.as_deref(), Some("cu-1"));
            assert_eq!(s.pass_token.as_ref().map(PassToken::reveal), Some("V1:pt"));
            assert_eq!(s.location, "http://127.0.0.1:1/sts?x=1");
            assert_eq!(s.nonce.as_deref(), Some("1234567890123"));
            assert_eq!(s.psecurity.as_ref().map(Psecurity::reveal), Some("ps"));
            let dbg = format!("{s:?}");
            assert!(!dbg.contains(SS) && !dbg.contains("V1:pt"), "{dbg}");
        }
        // Broken ssecurity is an error, not a success.
        let bad = pre(r#"{"code":0,"ssecurity":"%%","userId":1,"location":"x"}"#);
        assert!(matches!(
            parse_login_auth2(&bad),
            Err(CloudProtoError::Sign(_))
        ));
        let no_uid = pre(&format!(
            r#"{{"code":0,"ssecurity":"{SS}","location":"x"}}"#
        ));
        assert!(parse_login_auth2(&no_uid).is_err());
    }

    #[test]
    fn auth2_classification() {
        let two_fa = pre(
            r#"{"code":0,"result":"ok","location":"","securityStatus":16,"notificationUrl":"https://account.xiaomi.com/fe/service/identity/authStart?sid=xiaomiio&context=abc"}"#,
        );
        let LoginStep::TwoFactor { notification_url } = parse_login_auth2(&two_fa).unwrap() else {
            panic!("not 2fa");
        };
        assert_eq!(
            identity_list_url(&notification_url),
            "https://account.xiaomi.com/identity/list?sid=xiaomiio&context=abc"
        );
        assert_eq!(
            parse_login_auth2(&pre(r#"{"code":81003,"desc":"verify"}"#)).unwrap(),
            LoginStep::TwoFactor {
                notification_url: String::new()
            }
        );
        assert_eq!(
            parse_login_auth2(&pre(
                r#"{"code":87001,"captchaUrl":"/pass/getCode?icodeType=login&_=1"}"#
            ))
            .unwrap(),
            LoginStep::Captcha {
                captcha_url: "/pass/getCode?icodeType=login&_=1".into()
            }
        );
        for code in BAD_CREDENTIAL_CODES {
            assert_eq!(
                parse_login_auth2(&pre(&format!(
                    r#"{{"code":{code},"desc":"wrong","location":""}}"#
                )))
                .unwrap(),
                LoginStep::BadCredentials {
                    code,
                    desc: "wrong".into()
                }
            );
        }
        assert_eq!(
            parse_login_auth2(&pre(r#"{"code":12345,"description":"huh"}"#)).unwrap(),
            LoginStep::Rejected {
                code: 12345,
                desc: "huh".into()
            }
        );
        // code 0 with neither ssecurity nor notificationUrl is not success.
        assert!(matches!(
            parse_login_auth2(&pre(r#"{"code":0}"#)).unwrap(),
            LoginStep::Rejected { code: 0, .. }
        ));
        assert!(parse_login_auth2(&pre(r#"{"x":1}"#)).is_err());
    }

    #[test]
    fn qr_start() {
        let body = pre(
            r#"{"code":0,"qr":"http://127.0.0.1:1/qr.png","loginUrl":"https://account.xiaomi.com/longPolling/login?x","lp":"http://127.0.0.1:1/lp/abc","timeout":300,"timeInterval":1000}"#,
        );
        assert_eq!(
            parse_qr_start(&body).unwrap(),
            QrStart {
                qr_image_url: "http://127.0.0.1:1/qr.png".into(),
                login_url: "https://account.xiaomi.com/longPolling/login?x".into(),
                long_poll_url: "http://127.0.0.1:1/lp/abc".into(),
                timeout_secs: 300,
                interval: Some(1000),
            }
        );
        assert!(parse_qr_start(&pre(r#"{"code":0,"qr":"a","loginUrl":"b"}"#)).is_err());
        assert!(parse_qr_start(&pre(r#"{"code":1,"desc":"no"}"#)).is_err());
    }

    #[test]
    fn identity_list_and_verify() {
        let o = parse_identity_list(&pre(r#"{"code":0,"flag":8,"options":[4,8,99]}"#)).unwrap();
        assert_eq!(o.preferred, Some(IdentityMethod::Email));
        assert_eq!(
            o.options,
            vec![IdentityMethod::Phone, IdentityMethod::Email]
        );
        let o = parse_identity_list(&pre(r#"{"flag":4}"#)).unwrap();
        assert_eq!(o.options, vec![IdentityMethod::Phone]);
        assert!(parse_identity_list(&pre(r#"{"code":0,"options":[]}"#)).is_err());
        assert!(parse_identity_list(&pre(r#"{"code":70016}"#)).is_err());
        assert_eq!(
            IdentityMethod::Email.verify_path(),
            "/identity/auth/verifyEmail"
        );
        assert_eq!(IdentityMethod::from_flag(4), Some(IdentityMethod::Phone));

        assert_eq!(
            parse_verify(&pre(r#"{"code":0,"location":"http://127.0.0.1:1/sts"}"#)).unwrap(),
            VerifyOutcome::Verified {
                location: "http://127.0.0.1:1/sts".into()
            }
        );
        assert_eq!(
            parse_verify(&pre(r#"{"code":70014,"tips":"wrong"}"#)).unwrap(),
            VerifyOutcome::WrongCode
        );
        assert_eq!(
            parse_verify(&pre(r#"{"code":2,"desc":"method"}"#)).unwrap(),
            VerifyOutcome::Rejected {
                code: 2,
                desc: "method".into()
            }
        );
        assert!(parse_verify(&pre(r#"{"code":0}"#)).is_err());
    }
}
