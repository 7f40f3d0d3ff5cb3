//! Where the cloud lives: the account host, the STS host and the API base
//! template, with overrides for tests and unusual setups.
//!
//! Precedence: environment (`MIJIA_CLOUD_ACCOUNT_URL`, `MIJIA_CLOUD_API_URL`,
//! `MIJIA_CLOUD_STS_URL`, `MIJIA_CLOUD_REGION`), then `<config_dir>/cloud.toml`:
//!
//! ```toml
//! account_url = "https://account.xiaomi.com"
//! api_url = "https://{region}.api.io.mi.com/app"   # {region} is replaced
//! sts_url = "https://sts.api.io.mi.com/sts"
//! region = "de"
//! ```
//!
//! then Xiaomi's real hosts. Plain `http://` is accepted only for loopback
//! hosts (127.0.0.0/8, `::1`, `localhost`); anything else must be `https://`.
//! The same rule applies to every URL a server hands back during login
//! ([`check_url`]). This module only parses settings; it opens nothing.

use std::net::IpAddr;
use std::path::PathBuf;

use mijia_proto::cloud::{ApiBaseTemplate, Region};
use serde::Deserialize;
use url::Url;

use super::CloudError;
use crate::home::{fsutil, Paths};

/// The default account host.
pub const DEFAULT_ACCOUNT_URL: &str = "https://account.xiaomi.com";
/// The default STS callback (the QR login names it).
pub const DEFAULT_STS_URL: &str = "https://sts.api.io.mi.com/sts";
/// The cloud settings file, in the config directory.
pub const CONFIG_FILE: &str = "cloud.toml";

/// Environment variable overriding the account host.
pub const ENV_ACCOUNT: &str = "MIJIA_CLOUD_ACCOUNT_URL";
/// Environment variable overriding the API base template (`{region}`).
pub const ENV_API: &str = "MIJIA_CLOUD_API_URL";
/// Environment variable overriding the STS callback URL.
pub const ENV_STS: &str = "MIJIA_CLOUD_STS_URL";
/// Environment variable choosing the default region.
pub const ENV_REGION: &str = "MIJIA_CLOUD_REGION";

/// The hosts the client talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEndpoints {
    /// The account host (login, captcha, 2FA, QR, refresh).
    pub account_base: Url,
    /// The API base of each region.
    pub api_template: ApiBaseTemplate,
    /// The STS callback named in QR login requests.
    pub sts: Url,
    /// The region from the environment or `cloud.toml`, if any.
    pub region: Option<Region>,
}

impl Default for CloudEndpoints {
    fn default() -> Self {
        CloudEndpoints {
            account_base: parse_const(DEFAULT_ACCOUNT_URL),
            api_template: ApiBaseTemplate::xiaomi(),
            sts: parse_const(DEFAULT_STS_URL),
            region: None,
        }
    }
}

fn parse_const(s: &str) -> Url {
    // Only called with the constants above, which are valid URLs.
    Url::parse(s).expect("built-in cloud URLs are valid")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    account_url: Option<String>,
    api_url: Option<String>,
    sts_url: Option<String>,
    region: Option<String>,
}

impl CloudEndpoints {
    /// The endpoints for this process: environment, then `cloud.toml`, then
    /// Xiaomi's hosts.
    pub fn load(paths: &Paths) -> Result<Self, CloudError> {
        Self::load_with(paths, |k| std::env::var(k).ok())
    }

    /// [`load`](Self::load) with an explicit environment (for tests).
    pub fn load_with(
        paths: &Paths,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CloudError> {
        let file_path = paths.config_dir.join(CONFIG_FILE);
        let file = read_config(&file_path)?;
        let env = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let from_file = |v: &Option<String>| v.as_ref().map(|s| s.trim().to_owned());
        let file_label = |key: &str| format!("{key} in {}", file_path.display());
        let pick = |env_key: &str, file_key: &str, file_val: &Option<String>| {
            env(env_key)
                .map(|v| (env_key.to_owned(), v))
                .or_else(|| from_file(file_val).map(|v| (file_label(file_key), v)))
        };

        let mut out = CloudEndpoints::default();
        if let Some((what, v)) = pick(ENV_ACCOUNT, "account_url", &file.account_url) {
            out.account_base = parse_base(&what, &v)?;
        }
        if let Some((what, v)) = pick(ENV_STS, "sts_url", &file.sts_url) {
            out.sts = parse_base(&what, &v)?;
        }
        if let Some((what, v)) = pick(ENV_API, "api_url", &file.api_url) {
            out.api_template = parse_template(&what, &v)?;
        }
        if let Some((what, v)) = pick(ENV_REGION, "region", &file.region) {
            out.region = Some(
                v.parse()
                    .map_err(
                        |e: mijia_proto::cloud::ParseRegionError| CloudError::Endpoint {
                            what,
                            value: v.clone(),
                            reason: e.to_string(),
                        },
                    )?,
            );
        }
        Ok(out)
    }

    /// The endpoints of a fake cloud: account and STS at `account`, API at
    /// `api_template` (with `{region}`).
    pub fn custom(account: &str, api_template: &str) -> Result<Self, CloudError> {
        let account_base = parse_base("account URL", account)?;
        let sts = account_base
            .join("/sts")
            .map_err(|e| CloudError::Endpoint {
                what: "account URL".into(),
                value: account.into(),
                reason: e.to_string(),
            })?;
        Ok(CloudEndpoints {
            account_base,
            api_template: parse_template("API URL", api_template)?,
            sts,
            region: None,
        })
    }

    /// An account-host URL: `path` (absolute path or full URL, as a server
    /// returns it) resolved against the account base and checked.
    pub fn account_url(&self, path_or_url: &str) -> Result<Url, CloudError> {
        let url = self
            .account_base
            .join(path_or_url)
            .map_err(|e| CloudError::Endpoint {
                what: "URL from the account server".into(),
                value: strip_query(path_or_url),
                reason: e.to_string(),
            })?;
        check_url(&url)?;
        Ok(url)
    }

    /// True when any endpoint differs from Xiaomi's defaults.
    pub fn is_custom(&self) -> bool {
        self.account_base.as_str() != parse_const(DEFAULT_ACCOUNT_URL).as_str()
            || self.api_template.template().is_some()
    }
}

fn read_config(path: &std::path::Path) -> Result<ConfigFile, CloudError> {
    let Some(bytes) = fsutil::read_optional(path)? else {
        return Ok(ConfigFile::default());
    };
    let text = String::from_utf8(bytes).map_err(|_| CloudError::CorruptFile {
        path: path.to_path_buf(),
        detail: "it is not UTF-8 text".into(),
    })?;
    toml::from_str(&text).map_err(|e| CloudError::CorruptFile {
        path: path.to_path_buf(),
        detail: e.message().to_string(),
    })
}

fn strip_query(s: &str) -> String {
    s.split(['?', '#']).next().unwrap_or_default().to_owned()
}

fn parse_base(what: &str, value: &str) -> Result<Url, CloudError> {
    let bad = |reason: String| CloudError::Endpoint {
        what: what.to_owned(),
        value: strip_query(value),
        reason,
    };
    let url = Url::parse(value).map_err(|e| {
        bad(format!(
            "{e}; give an absolute URL such as https://account.xiaomi.com"
        ))
    })?;
    check_url(&url).map_err(|_| bad(insecure_reason()))?;
    Ok(url)
}

fn parse_template(what: &str, value: &str) -> Result<ApiBaseTemplate, CloudError> {
    let bad = |reason: String| CloudError::Endpoint {
        what: what.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let t = ApiBaseTemplate::custom(value).map_err(|e| {
        bad(format!(
            "{e}; give a URL template such as https://{{region}}.api.io.mi.com/app"
        ))
    })?;
    for r in Region::ALL {
        let base = t.for_region(r).map_err(|e| bad(e.to_string()))?;
        let url = Url::parse(&base.as_url()).map_err(|e| bad(e.to_string()))?;
        check_url(&url).map_err(|_| bad(insecure_reason()))?;
    }
    Ok(t)
}

fn insecure_reason() -> String {
    "plain http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://"
        .to_owned()
}

/// True for 127.0.0.0/8, `::1` and `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Accepts `https://…`, and `http://…` on loopback only.
pub fn check_url(url: &Url) -> Result<(), CloudError> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback_host(url) => Ok(()),
        _ => Err(CloudError::Endpoint {
            what: "URL".into(),
            value: super::error::display_url(url),
            reason: insecure_reason(),
        }),
    }
}

/// The path of `cloud.toml`.
pub fn config_path(paths: &Paths) -> PathBuf {
    paths.config_dir.join(CONFIG_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = Paths::at(dir.path());
        (dir, p)
    }

    #[test]
    fn defaults_are_xiaomi() {
        let (_d, p) = paths();
        let e = CloudEndpoints::load_with(&p, |_| None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.account_base.as_str(), "https://account.xiaomi.com/");
        assert!(!e.is_custom());
        assert_eq!(e.region, None);
    }

    #[test]
    fn env_beats_file_and_http_is_loopback_only() {
        let (_d, p) = paths();
        std::fs::create_dir_all(&p.config_dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            p.config_dir.join(CONFIG_FILE),
            "api_url = \"http://127.0.0.1:9/{region}/app\"\nregion = \"de\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = CloudEndpoints::load_with(&p, |k| {
            (k == ENV_ACCOUNT).then(|| "http://127.0.0.2:8/".to_owned())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.account_base.as_str(), "http://127.0.0.2:8/");
        assert_eq!(e.region, Some(Region::De));
        assert_eq!(
            e.api_template
                .for_region(Region::Us)
                .map(|b| b.as_url())
                .ok(),
            Some("http://127.0.0.1:9/us/app".to_owned())
        );
        let err = CloudEndpoints::load_with(&p, |k| {
            (k == ENV_ACCOUNT).then(|| "http://example.com/".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = CloudEndpoints::load_with(&p, |k| {
            (k == ENV_API).then(|| "http://10.0.0.1/{region}/app".to_owned())
        })
        .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn relative_urls_resolve_against_the_account_host() {
        let e = CloudEndpoints::custom("http://127.0.0.1:5/", "http://127.0.0.1:5/{region}/app")
            .unwrap_or_else(|e| panic!("{e}"));
        let u = e
            .account_url("/pass/getCode?icodeType=login")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:5/pass/getCode?icodeType=login"
        );
        assert!(e.account_url("http://192.0.2.1/x").is_err());
        assert_eq!(e.sts.as_str(), "http://127.0.0.1:5/sts");
    }
}
