//! The HTTP layer under the cloud client: one `reqwest` client with no
//! automatic redirects and no cookie store, a small cookie jar of our own
//! (so the login flow can read `passToken` and `serviceToken`), timeouts,
//! and bounded retries with exponential back-off.
//!
//! Retried: connection errors, timeouts, HTTP 429 and 5xx — at most
//! [`HttpConfig::attempts`] times, waiting `backoff_base · 2ⁿ` (capped, or
//! the server's `Retry-After` when shorter than the cap). Every attempt
//! rebuilds its request, so signed API calls get a fresh nonce. Nothing
//! else is retried here; session problems are handled a layer up.
//!
//! Logs name the method, scheme, host and path, the status and the body
//! length — never a query string, a cookie, a form field or a body.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::config::check_url;
use super::error::display_url;
use super::CloudError;

/// The largest reply body accepted (16 MiB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// User-Agent imitating the Android app, as the other clients do.
pub const USER_AGENT: &str =
    "Android-7.1.1-1.0.0-ONEPLUS A3010-136-MIJIARSCLIENT APP/xiaomi.smarthome APPV/62830";

/// Timeouts and retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Per-request timeout (whole exchange).
    pub timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Total attempts for retryable failures (at least 1).
    pub attempts: u32,
    /// First back-off pause.
    pub backoff_base: Duration,
    /// Longest back-off pause.
    pub backoff_max: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            attempts: 4,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(4),
        }
    }
}

impl HttpConfig {
    /// The pause before retry number `n` (0-based).
    pub fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// GET or POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `GET`.
    Get,
    /// `POST` with a urlencoded form body.
    Post,
}

/// One request, rebuilt for every attempt.
#[derive(Clone)]
pub struct Request {
    /// GET or POST.
    pub verb: Verb,
    /// The URL (already checked for https / loopback http).
    pub url: Url,
    /// The urlencoded body of a POST.
    pub body: Option<String>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The `Cookie` header value.
    pub cookie: Option<String>,
    /// A timeout other than the default (long polls).
    pub timeout: Option<Duration>,
    /// Whether a read timeout may be retried (false for long polls, where
    /// the caller decides).
    pub retry_timeouts: bool,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: Url) -> Self {
        Request {
            verb: Verb::Get,
            url,
            body: None,
            headers: Vec::new(),
            cookie: None,
            timeout: None,
            retry_timeouts: true,
        }
    }

    /// A POST of a urlencoded `body` to `url`.
    pub fn post(url: Url, body: String) -> Self {
        Request {
            verb: Verb::Post,
            body: Some(body),
            ..Request::get(url)
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("verb", &self.verb)
            .field("url", &display_url(&self.url))
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish_non_exhaustive()
    }
}

/// A reply.
pub struct Response {
    /// The URL that was fetched.
    pub url: Url,
    /// HTTP status.
    pub status: u16,
    /// Raw `Set-Cookie` header values.
    pub set_cookies: Vec<String>,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `extension-pragma` header (some login replies carry JSON there).
    pub extension_pragma: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True for 3xx with a `Location`.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.location.is_some()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("url", &display_url(&self.url))
            .field("status", &self.status)
            .field("cookies", &self.set_cookies.len())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed, before deciding whether to retry.
enum Attempt {
    Done(Response),
    Retry {
        status: Option<u16>,
        wait: Option<Duration>,
        detail: String,
    },
    Fatal(CloudError),
}

/// The HTTP client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    config: HttpConfig,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("config", &self.config)
            .finish()
    }
}

impl Http {
    /// A client with `config`.
    pub fn new(config: HttpConfig) -> Result<Self, CloudError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .user_agent(USER_AGENT)
            .https_only(false)
            .build()
            .map_err(|e| CloudError::Network {
                url: "(client setup)".into(),
                detail: e.to_string(),
            })?;
        Ok(Http { client, config })
    }

    /// The retry policy.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends the request `build` makes, retrying transient failures.
    pub async fn send(&self, build: impl Fn() -> Request) -> Result<Response, CloudError> {
        let attempts = self.config.attempts.max(1);
        let mut last = None;
        for n in 0..attempts {
            let req = build();
            check_url(&req.url)?;
            let shown = display_url(&req.url);
            match self.attempt(req).await {
                Attempt::Done(resp) => {
                    tracing::debug!(url = %shown, status = resp.status, len = resp.body.len(), "cloud reply");
                    return Ok(resp);
                }
                Attempt::Fatal(e) => return Err(e),
                Attempt::Retry {
                    status,
                    wait,
                    detail,
                } => {
                    let pause = self.config.backoff(n);
                    let pause = wait.map_or(pause, |w| w.min(self.config.backoff_max).max(pause));
                    tracing::debug!(url = %shown, ?status, attempt = n + 1, %detail, "cloud request failed");
                    last = Some((status, shown, detail));
                    if n + 1 < attempts {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
        Err(match last {
            Some((Some(429), url, _)) => CloudError::RateLimited { url, attempts },
            Some((Some(status), url, _)) => CloudError::Unavailable {
                status,
                url,
                attempts,
            },
            Some((None, url, detail)) => CloudError::Network { url, detail },
            None => CloudError::Network {
                url: "(none)".into(),
                detail: "no attempt was made".into(),
            },
        })
    }

    async fn attempt(&self, req: Request) -> Attempt {
        let url = req.url.clone();
        let mut rb = match req.verb {
            Verb::Get => self.client.get(url.clone()),
            Verb::Post => self
                .client
                .post(url.clone())
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(req.body.clone().unwrap_or_default()),
        };
        rb = rb.timeout(req.timeout.unwrap_or(self.config.timeout));
        for (k, v) in &req.headers {
            rb = rb.header(*k, v.as_str());
        }
        if let Some(c) = &req.cookie {
            rb = rb.header("Cookie", c.as_str());
        }
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return classify_error(&e, req.retry_timeouts),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let text_header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let location = text_header("location");
        let extension_pragma = text_header("extension-pragma");
        let retry_after = text_header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) => return e,
        };
        if status == 429 || (500..600).contains(&status) {
            return Attempt::Retry {
                status: Some(status),
                wait: retry_after,
                detail: format!("HTTP {status}"),
            };
        }
        Attempt::Done(Response {
            url,
            status,
            set_cookies,
            location,
            extension_pragma,
            body,
        })
    }
}

fn classify_error(e: &reqwest::Error, retry_timeouts: bool) -> Attempt {
    let url = e.url().map(display_url).unwrap_or_default();
    // reqwest's Display includes the URL with its query; describe the
    // cause without it.
    let detail = describe(e);
    if e.is_timeout() && !retry_timeouts {
        return Attempt::Fatal(CloudError::Timeout { url });
    }
    if e.is_timeout() || e.is_connect() || e.is_request() {
        return Attempt::Retry {
            status: None,
            wait: None,
            detail,
        };
    }
    Attempt::Fatal(CloudError::Network { url, detail })
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_owned());
    } else if e.is_connect() {
        parts.push("connection failed".to_owned());
    }
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.is_empty() {
        parts.push("request failed".to_owned());
    }
    parts.join(": ")
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, Attempt> {
    let url = display_url(resp.url());
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Attempt::Fatal(CloudError::Network {
                        url,
                        detail: format!("the reply is larger than {MAX_BODY} bytes"),
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(Attempt::Retry {
                    status: None,
                    wait: None,
                    detail: describe(&e),
                })
            }
        }
    }
}

/// One stored cookie.
#[derive(Clone, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    /// The host (host-only) or the domain it applies to.
    domain: String,
    host_only: bool,
}

/// A minimal cookie jar: name, value and domain; paths, expiry dates and
/// flags are ignored (the login flow needs no more). `Debug` shows names
/// only.
#[derive(Clone, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.cookies
                    .iter()
                    .map(|c| format!("{}@{}", c.name, c.domain)),
            )
            .finish()
    }
}

fn domain_matches(host: &str, domain: &str) -> bool {
    host.eq_ignore_ascii_case(domain)
        || (host.len() > domain.len()
            && host
                .to_ascii_lowercase()
                .ends_with(&domain.to_ascii_lowercase())
            && host.as_bytes().get(host.len() - domain.len() - 1) == Some(&b'.'))
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        CookieJar::default()
    }

    /// Sets a cookie for `url`'s host and its subdomains.
    pub fn set(&mut self, url: &Url, name: &str, value: &str) {
        let host = url.host_str().unwrap_or_default().to_owned();
        self.put(Cookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain: host,
            host_only: false,
        });
    }

    fn put(&mut self, cookie: Cookie) {
        self.cookies
            .retain(|c| !(c.name == cookie.name && c.domain.eq_ignore_ascii_case(&cookie.domain)));
        self.cookies.push(cookie);
    }

    /// Stores the `Set-Cookie` headers of a reply from `url`.
    pub fn store(&mut self, url: &Url, set_cookies: &[String]) {
        let host = url.host_str().unwrap_or_default().to_owned();
        for header in set_cookies {
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            if name.is_empty() {
                continue;
            }
            let mut domain = None;
            let mut delete = false;
            for attr in parts {
                let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "domain" => domain = Some(v.trim_start_matches('.').to_owned()),
                    "max-age" => delete |= v.parse::<i64>().is_ok_and(|s| s <= 0),
                    _ => {}
                }
            }
            let (domain, host_only) = match domain {
                Some(d) if !d.is_empty() && domain_matches(&host, &d) => (d, false),
                _ => (host.clone(), true),
            };
            if delete || value.is_empty() || value == "EXPIRED" {
                self.cookies
                    .retain(|c| !(c.name == name && c.domain.eq_ignore_ascii_case(&domain)));
                continue;
            }
            self.put(Cookie {
                name: name.to_owned(),
                value: value.to_owned(),
                domain,
                host_only,
            });
        }
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str().unwrap_or_default();
        let parts: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| {
                if c.host_only {
                    c.domain.eq_ignore_ascii_case(host)
                } else {
                    domain_matches(host, &c.domain)
                }
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// The most recently stored value of cookie `name`, on any domain.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .rev()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
    }

    /// Names of the cookies held (for tests and debug logs).
    pub fn names(&self) -> Vec<&str> {
        self.cookies.iter().map(|c| c.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn jar_scopes_by_domain_and_deletes() {
        let mut jar = CookieJar::new();
        let acct = url("https://account.xiaomi.com/pass/serviceLogin");
        jar.store(
            &acct,
            &[
                "passToken=V1:abc; Domain=.xiaomi.com; Path=/; HttpOnly".into(),
                "userId=42; Path=/".into(),
                "bogus".into(),
            ],
        );
        assert_eq!(jar.get("passToken"), Some("V1:abc"));
        let other = url("https://c3.account.xiaomi.com/x");
        assert_eq!(jar.header_for(&other).as_deref(), Some("passToken=V1:abc"));
        assert_eq!(
            jar.header_for(&acct).as_deref(),
            Some("passToken=V1:abc; userId=42")
        );
        assert_eq!(jar.header_for(&url("https://api.io.mi.com/app")), None);
        jar.store(&acct, &["userId=EXPIRED; Max-Age=0".into()]);
        assert_eq!(jar.get("userId"), None);
        assert!(!format!("{jar:?}").contains("V1:abc"));
        // A Domain attribute that does not cover the host is host-only.
        jar.store(
            &url("http://127.0.0.1:9/sts"),
            &["serviceToken=st; Domain=.mi.com".into()],
        );
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:9/x")).as_deref(),
            Some("serviceToken=st")
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = HttpConfig::default();
        assert_eq!(c.backoff(0), Duration::from_millis(250));
        assert_eq!(c.backoff(2), Duration::from_secs(1));
        assert_eq!(c.backoff(30), Duration::from_secs(4));
    }
}
