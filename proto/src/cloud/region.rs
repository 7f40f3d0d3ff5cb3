//! Cloud regions, the API base URL of each, and the signed path of a request
//! relative to that base.
//!
//! The default bases point at Xiaomi's real hosts and are meant for users.
//! Tests and the simulated cloud use a template such as
//! `http://127.0.0.1:PORT/{region}/app`, in which `{region}` is replaced for
//! every region, `cn` included.
//!
//! URLs are parsed here just far enough to compare origins and paths; this
//! is not a general URL library and it never resolves hosts.

use std::fmt;
use std::str::FromStr;

use super::error::SignError;

/// A Xiaomi cloud region. Each device lives in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Mainland China (the default; its API host has no region prefix).
    Cn,
    /// Europe.
    De,
    /// United States.
    Us,
    /// Russia.
    Ru,
    /// Taiwan.
    Tw,
    /// Singapore.
    Sg,
    /// India (token extractor only).
    In,
    /// India.
    I2,
}

impl Region {
    /// Every region, in the order tools usually search them.
    pub const ALL: [Region; 8] = [
        Region::Cn,
        Region::De,
        Region::Us,
        Region::Ru,
        Region::Tw,
        Region::Sg,
        Region::In,
        Region::I2,
    ];

    /// The short code used in host names and configuration (`cn`, `de`, …).
    pub const fn code(self) -> &'static str {
        match self {
            Region::Cn => "cn",
            Region::De => "de",
            Region::Us => "us",
            Region::Ru => "ru",
            Region::Tw => "tw",
            Region::Sg => "sg",
            Region::In => "in",
            Region::I2 => "i2",
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A region name that is not one of [`Region::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cloud region {given:?}; use one of: cn, de, us, ru, tw, sg, in, i2")]
pub struct ParseRegionError {
    /// What was given.
    pub given: String,
}

impl FromStr for Region {
    type Err = ParseRegionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Region::ALL
            .into_iter()
            .find(|r| r.code() == wanted)
            .ok_or_else(|| ParseRegionError {
                given: s.to_owned(),
            })
    }
}

/// The marker replaced by the region code in an API base template.
pub const REGION_PLACEHOLDER: &str = "{region}";

/// How to derive the API base of a region: Xiaomi's hosts by default, or a
/// user template containing `{region}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiBaseTemplate {
    template: Option<String>,
}

impl ApiBaseTemplate {
    /// Xiaomi's real hosts: `https://api.io.mi.com/app` for `cn`,
    /// `https://<region>.api.io.mi.com/app` for the others.
    pub fn xiaomi() -> Self {
        ApiBaseTemplate { template: None }
    }

    /// A custom template such as `http://127.0.0.1:8080/{region}/app`. It is
    /// checked by expanding it for `cn`.
    pub fn custom(template: &str) -> Result<Self, SignError> {
        let t = ApiBaseTemplate {
            template: Some(template.trim().to_owned()),
        };
        t.for_region(Region::Cn)?;
        Ok(t)
    }

    /// The template text, if a custom one was given.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    /// The API base for `region`.
    pub fn for_region(&self, region: Region) -> Result<ApiBase, SignError> {
        let url = match (&self.template, region) {
            (Some(t), r) => t.replace(REGION_PLACEHOLDER, r.code()),
            (None, Region::Cn) => "https://api.io.mi.com/app".to_owned(),
            (None, r) => format!("https://{}.api.io.mi.com/app", r.code()),
        };
        ApiBase::parse(&url)
    }
}

/// A parsed URL: scheme, authority, path, with query and fragment dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UrlParts {
    scheme: String,
    authority: String,
    path: String,
    had_query: bool,
}

fn invalid(url: &str, reason: &str) -> SignError {
    SignError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    }
}

fn split_query(s: &str) -> (&str, bool) {
    match s.find(['?', '#']) {
        Some(i) => (s.get(..i).unwrap_or(s), true),
        None => (s, false),
    }
}

fn parse_absolute(url: &str) -> Result<UrlParts, SignError> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(url, "it contains whitespace or control characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(url, "it has no scheme; write http://… or https://…"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(url, "only http and https are supported"));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    let tail = rest.get(end..).unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid(url, "it has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(url, "credentials in URLs are not supported"));
    }
    let mut authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "http" { ":80" } else { ":443" };
    if let Some(stripped) = authority.strip_suffix(default_port) {
        authority = stripped.to_owned();
    }
    let (path, had_query) = split_query(tail);
    Ok(UrlParts {
        scheme,
        authority,
        path: path.to_owned(),
        had_query,
    })
}

/// The API base of one region, e.g. `https://de.api.io.mi.com/app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    parts: UrlParts,
}

impl ApiBase {
    /// Parses a base URL (http or https, no query or fragment). A trailing
    /// `/` is ignored.
    pub fn parse(url: &str) -> Result<Self, SignError> {
        let mut parts = parse_absolute(url.trim())?;
        if parts.had_query {
            return Err(invalid(url, "an API base cannot have a query or fragment"));
        }
        while parts.path.ends_with('/') {
            parts.path.pop();
        }
        if parts.path.contains(REGION_PLACEHOLDER) || parts.authority.contains(REGION_PLACEHOLDER) {
            return Err(invalid(url, "the {region} placeholder was not substituted"));
        }
        Ok(ApiBase { parts })
    }

    /// The base as a URL string, without a trailing `/`.
    pub fn as_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.parts.scheme, self.parts.authority, self.parts.path
        )
    }

    /// The path of the base (`/app`, or `/de/app` for a template).
    pub fn path(&self) -> &str {
        &self.parts.path
    }

    /// True for a plain-HTTP base. Callers allow that for loopback only.
    pub fn is_plain_http(&self) -> bool {
        self.parts.scheme == "http"
    }

    /// The full URL of an endpoint given relative to the base
    /// (`/home/device_list` or `home/device_list`).
    pub fn endpoint_url(&self, endpoint: &str) -> String {
        format!("{}/{}", self.as_url(), endpoint.trim_start_matches('/'))
    }

    /// The path that is signed for `target`: the part of its path after the
    /// base's path, starting with `/` (e.g. `/home/device_list`).
    ///
    /// `target` is either an absolute URL, which must have the base's scheme
    /// and host, or a request path starting with `/` as a server sees it.
    /// Query and fragment are ignored. Paths with `.` or `..` segments are
    /// refused, since their meaning depends on normalisation.
    pub fn signed_path(&self, target: &str) -> Result<String, SignError> {
        let outside = || SignError::OutsideApiBase {
            url: target.to_owned(),
            base: self.as_url(),
        };
        let path = if target.starts_with('/') {
            split_query(target).0.to_owned()
        } else {
            let parts = parse_absolute(target)?;
            if parts.scheme != self.parts.scheme || parts.authority != self.parts.authority {
                return Err(outside());
            }
            parts.path
        };
        let rest = path
            .strip_prefix(self.parts.path.as_str())
            .ok_or_else(outside)?;
        if !rest.starts_with('/') || rest.len() < 2 {
            return Err(outside());
        }
        if rest.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(invalid(target, "dot segments are not allowed in API paths"));
        }
        Ok(rest.to_owned())
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_region_case_insensitively() {
        for r in Region::ALL {
            assert_eq!(r.code().parse::<Region>().unwrap(), r);
            assert_eq!(r.code().to_uppercase().parse::<Region>().unwrap(), r);
            assert_eq!(r.to_string(), r.code());
        }
        assert_eq!(" de ".parse::<Region>().unwrap(), Region::De);
    }

    #[test]
    fn unknown_region_lists_valid_ones() {
        let err = "eu".parse::<Region>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"eu\""), "{msg}");
        for r in Region::ALL {
            assert!(msg.contains(r.code()), "{msg} lacks {r}");
        }
        assert!("".parse::<Region>().is_err());
    }

    #[test]
    fn default_bases() {
        let t = ApiBaseTemplate::xiaomi();
        assert_eq!(
            t.for_region(Region::Cn).unwrap().as_url(),
            "https://api.io.mi.com/app"
        );
        assert_eq!(
            t.for_region(Region::De).unwrap().as_url(),
            "https://de.api.io.mi.com/app"
        );
        assert_eq!(
            t.for_region(Region::I2).unwrap().as_url(),
            "https://i2.api.io.mi.com/app"
        );
        assert_eq!(ApiBaseTemplate::default(), t);
    }

    #[test]
    fn custom_template_substitutes_every_region_including_cn() {
        let t = ApiBaseTemplate::custom("http://127.0.0.1:8123/{region}/app").unwrap();
        assert_eq!(
            t.for_region(Region::Cn).unwrap().as_url(),
            "http://127.0.0.1:8123/cn/app"
        );
        let de = t.for_region(Region::De).unwrap();
        assert_eq!(de.as_url(), "http://127.0.0.1:8123/de/app");
        assert!(de.is_plain_http());
        assert_eq!(de.path(), "/de/app");
        assert!(ApiBaseTemplate::custom("ftp://x/{region}").is_err());
        assert!(ApiBaseTemplate::custom("127.0.0.1/{region}").is_err());
        assert!(ApiBaseTemplate::custom("http://h/app?x=1").is_err());
    }

    #[test]
    fn signed_path_from_urls_and_request_paths() {
        let base = ApiBase::parse("https://de.api.io.mi.com/app").unwrap();
        assert_eq!(
            base.signed_path("https://de.api.io.mi.com/app/home/device_list")
                .unwrap(),
            "/home/device_list"
        );
        assert_eq!(
            base.signed_path("HTTPS://DE.api.io.mi.com:443/app/miotspec/prop/get?x=1")
                .unwrap(),
            "/miotspec/prop/get"
        );
        assert_eq!(
            base.endpoint_url("home/device_list"),
            "https://de.api.io.mi.com/app/home/device_list"
        );
        // A host containing "com" elsewhere does not confuse it.
        let odd = ApiBase::parse("http://127.0.0.1:9/com/app/").unwrap();
        assert_eq!(
            odd.signed_path("http://127.0.0.1:9/com/app/v2/home/comfy")
                .unwrap(),
            "/v2/home/comfy"
        );
        assert_eq!(
            odd.signed_path("/com/app/home/rpc/1").unwrap(),
            "/home/rpc/1"
        );
    }

    #[test]
    fn signed_path_refuses_foreign_urls() {
        let base = ApiBase::parse("https://de.api.io.mi.com/app").unwrap();
        for bad in [
            "https://us.api.io.mi.com/app/home/device_list",
            "http://de.api.io.mi.com/app/home/device_list",
            "https://de.api.io.mi.com/application/home",
            "https://de.api.io.mi.com/app",
            "https://de.api.io.mi.com/app/",
            "/other/app/home",
        ] {
            let err = base.signed_path(bad).unwrap_err();
            assert!(
                matches!(err, SignError::OutsideApiBase { .. }),
                "{bad}: {err}"
            );
        }
        assert!(base
            .signed_path("https://de.api.io.mi.com/app/../x")
            .is_err());
        assert!(base.signed_path("not a url").is_err());
    }
}
