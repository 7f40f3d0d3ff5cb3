//! Routing of one request: the control API (`/__fake/…`, never faulted or
//! logged), the API host (`/{region}/app/…`) and everything else as the
//! account host; injected faults (drop, 5xx, rate limit, delay) before the
//! handler; one request-log record after it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::config::{FaultScope, RateLimitForm};
use super::http::{Reply, Req};
use super::state::{RequestRecord, Shared};
use super::{account, api, control};

/// What a handler did with a request.
pub(crate) struct Outcome {
    pub reply: Reply,
    pub verdict: String,
    pub data: Option<Value>,
}

impl Outcome {
    pub fn new(reply: Reply, verdict: impl Into<String>) -> Outcome {
        Outcome {
            reply,
            verdict: verdict.into(),
            data: None,
        }
    }
}

/// `/{region}/app/{rest}` → (`region`, `/{rest}`).
pub(crate) fn api_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (region, rest) = rest.split_once('/')?;
    let signed = rest.strip_prefix("app")?;
    if region.is_empty() || !(signed.is_empty() || signed.starts_with('/')) {
        return None;
    }
    Some((region, signed))
}

enum Fault {
    Drop,
    ServerError(u16),
    RateLimited(RateLimitForm),
}

fn take_fault(shared: &Shared, is_api: bool) -> (Option<Fault>, u64) {
    let mut g = shared.lock();
    let f = &mut g.faults;
    let in_scope = match f.scope {
        FaultScope::Api => is_api,
        FaultScope::Account => !is_api,
        FaultScope::All => true,
    };
    if !in_scope {
        return (None, 0);
    }
    let fault = if f.drop_connections > 0 {
        f.drop_connections -= 1;
        Some(Fault::Drop)
    } else if f.server_errors > 0 {
        f.server_errors -= 1;
        Some(Fault::ServerError(f.server_error_status))
    } else if f.rate_limit > 0 {
        f.rate_limit -= 1;
        Some(Fault::RateLimited(f.rate_limit_form))
    } else {
        None
    };
    (fault, f.delay_ms)
}

const LOGGED_HEADERS: [&str; 4] = [
    "miot-encrypt-algorithm",
    "miot-accept-encoding",
    "x-xiaomi-protocal-flag-cli",
    "user-agent",
];

fn to_map(fields: &[(String, String)]) -> BTreeMap<String, String> {
    fields.iter().cloned().collect()
}

/// Handle one request.
pub(crate) async fn handle(shared: &Arc<Shared>, req: Req) -> Reply {
    if req.path == "/__fake" || req.path.starts_with("/__fake/") {
        return control::handle(shared, &req);
    }
    let api = api_path(&req.path);
    let (fault, delay_ms) = take_fault(shared, api.is_some());
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let outcome = match fault {
        Some(Fault::Drop) => Outcome::new(Reply::Drop, "connection dropped (fault)"),
        Some(Fault::ServerError(status)) => Outcome::new(
            Reply::text(status, "Service Temporarily Unavailable"),
            format!("HTTP {status} (fault)"),
        ),
        Some(Fault::RateLimited(RateLimitForm::Http429)) => Outcome::new(
            Reply::text(429, "Too Many Requests"),
            "rate limited: HTTP 429 (fault)",
        ),
        Some(Fault::RateLimited(RateLimitForm::Code)) => {
            let body = json!({"code": -106, "message": "request too frequent"});
            let reply = if api.is_some() {
                Reply::json(200, &body)
            } else {
                Reply::account_json(&body)
            };
            Outcome::new(reply, "rate limited: code -106 (fault)")
        }
        None => match api {
            Some((region, signed)) => api::handle(shared, &req, region, signed).await,
            None => account::handle(shared, &req).await,
        },
    };
    let headers = LOGGED_HEADERS
        .iter()
        .filter_map(|h| Some(((*h).to_owned(), req.header(h)?.to_owned())))
        .collect();
    let mut g = shared.lock();
    let at_ms = g.now_ms();
    g.record(RequestRecord {
        seq: 0,
        at_ms,
        method: req.method.clone(),
        path: req.path.clone(),
        host: if api.is_some() { "api" } else { "account" }.to_owned(),
        region: api.map(|(r, _)| r.to_owned()),
        query: to_map(&req.query),
        form: to_map(&req.form),
        cookies: req.cookies.clone(),
        headers,
        data: outcome.data,
        verdict: outcome.verdict,
        status: outcome.reply.status(),
    });
    outcome.reply
}

#[cfg(test)]
mod tests {
    use super::api_path;

    #[test]
    fn api_paths() {
        assert_eq!(
            api_path("/de/app/home/device_list"),
            Some(("de", "/home/device_list"))
        );
        assert_eq!(
            api_path("/cn/app/home/rpc/100001"),
            Some(("cn", "/home/rpc/100001"))
        );
        assert_eq!(api_path("/pass/serviceLogin"), None);
        assert_eq!(api_path("/de/apple/x"), None);
        assert_eq!(api_path("/sts"), None);
    }
}
