//! Arguments → a validated plan, before any network IO.
//!
//! Every malformed input (address, token, `SIID.PIID`, JSON) is a usage
//! error here, with a message naming the problem and the expected form.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mijia_proto::miio::Token;
use serde_json::Value;

use super::args::{Cli, Command};
use crate::transport::{ClientConfig, PropId};
use crate::Error;

/// Longest accepted `--timeout`.
const MAX_TIMEOUT_SECS: f64 = 600.0;

/// A device addressed directly.
#[derive(Debug, Clone)]
pub struct Target {
    /// IP and port.
    pub addr: SocketAddr,
    /// The token.
    pub token: Token,
}

/// What to do with the device.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `miIO.info`.
    Info,
    /// Any method.
    Raw {
        /// Method name.
        method: String,
        /// Params (array or object).
        params: Value,
    },
    /// `get_properties`.
    Get(Vec<PropId>),
    /// `set_properties`.
    Set(Vec<(PropId, Value)>),
    /// `action`.
    Action {
        /// Service.
        siid: u32,
        /// Action.
        aiid: u32,
        /// `in` values.
        ins: Vec<Value>,
    },
}

/// A fully validated command.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The device.
    pub target: Target,
    /// Transport settings.
    pub config: ClientConfig,
    /// JSON output instead of tables.
    pub json: bool,
    /// The operation.
    pub op: Op,
}

/// Validate everything the user gave.
pub fn plan(cli: &Cli) -> Result<Plan, Error> {
    let g = &cli.global;
    let op = op(&cli.command)?;
    let ip = g
        .ip
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::usage("no device address: pass --ip ADDRESS (or set MIJIA_IP)"))?;
    let ip: IpAddr = ip.parse().map_err(|_| {
        Error::usage(format!(
            "invalid --ip {ip:?}: expected an IPv4 or IPv6 address such as 192.168.1.20"
        ))
    })?;
    let token = g.token.as_deref().ok_or_else(|| {
        Error::usage(
            "no device token: pass --token HEX (or set MIJIA_TOKEN); a token is 32 hex characters",
        )
    })?;
    let token: Token = token
        .parse()
        .map_err(|e| Error::usage(format!("invalid token: {e}")))?;
    if g.port == 0 {
        return Err(Error::usage(
            "invalid --port 0: give the device's UDP port (54321 on real devices)",
        ));
    }
    let timeout = timeout(g.timeout)?;
    let handshake_timeout = timeout.min(ClientConfig::default().handshake_timeout);
    let config = ClientConfig {
        port: g.port,
        timeout,
        retries: g.retries,
        handshake_timeout,
        hello_interval: (handshake_timeout / 3).min(ClientConfig::default().hello_interval),
        ..ClientConfig::default()
    };
    Ok(Plan {
        target: Target {
            addr: SocketAddr::new(ip, g.port),
            token,
        },
        config,
        json: g.json,
        op,
    })
}

fn timeout(secs: f64) -> Result<Duration, Error> {
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_TIMEOUT_SECS {
        return Err(Error::usage(format!(
            "invalid --timeout {secs}: give the seconds to wait per attempt, more than 0 and at most {MAX_TIMEOUT_SECS}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn op(cmd: &Command) -> Result<Op, Error> {
    Ok(match cmd {
        Command::Info => Op::Info,
        Command::Raw { method, params } => {
            let method = method.trim();
            if method.is_empty() {
                return Err(Error::usage(
                    "empty METHOD: give a method name such as get_prop or miIO.info",
                ));
            }
            let params = match params {
                None => Value::Array(Vec::new()),
                Some(text) => {
                    let v = json_arg("PARAMS_JSON", text, r#"'["power","bright"]'"#)?;
                    if !(v.is_array() || v.is_object()) {
                        return Err(Error::usage(format!(
                            "PARAMS_JSON must be a JSON array or object, got {text:?}; for example '[\"power\"]'"
                        )));
                    }
                    v
                }
            };
            Op::Raw {
                method: method.to_owned(),
                params,
            }
        }
        Command::Get { props } => Op::Get(
            props
                .iter()
                .map(|p| pair(p, "property", "SIID.PIID", "2.1").map(|(s, p)| PropId::new(s, p)))
                .collect::<Result<_, _>>()?,
        ),
        Command::Set { assignments } => Op::Set(
            assignments
                .iter()
                .map(|a| assignment(a))
                .collect::<Result<_, _>>()?,
        ),
        Command::Action { action, args } => {
            let (siid, aiid) = pair(action, "action", "SIID.AIID", "5.1")?;
            let ins = match args {
                None => Vec::new(),
                Some(text) => match json_arg("ARGS_JSON", text, r#"'["hello", 1]'"#)? {
                    Value::Array(a) => a,
                    _ => {
                        return Err(Error::usage(format!(
                            "ARGS_JSON must be a JSON array of the action's input values, got {text:?}; for example '[\"hello\", 1]'"
                        )))
                    }
                },
            };
            Op::Action { siid, aiid, ins }
        }
    })
}

fn json_arg(name: &str, text: &str, example: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| {
        Error::usage(format!(
            "invalid {name} {text:?}: {e}; give valid JSON such as {example} (quote it for the shell)"
        ))
    })
}

/// `A.B` with two positive integers.
fn pair(text: &str, what: &str, form: &str, example: &str) -> Result<(u32, u32), Error> {
    let bad = |why: &str| {
        Error::usage(format!(
            "invalid {what} {text:?}: {why}; expected {form}, two positive numbers such as {example}"
        ))
    };
    let (a, b) = text.trim().split_once('.').ok_or_else(|| bad("no '.'"))?;
    let num = |s: &str, part: &str| -> Result<u32, Error> {
        match s.parse::<u32>() {
            Ok(0) => Err(bad(&format!("{part} must not be 0"))),
            Ok(n) => Ok(n),
            Err(_) => Err(bad(&format!("{part} {s:?} is not a number"))),
        }
    };
    let part_a = &form[..form.find('.').unwrap_or(form.len())];
    let part_b = form.rsplit('.').next().unwrap_or(form);
    Ok((num(a, part_a)?, num(b, part_b)?))
}

/// `SIID.PIID=VALUE`: VALUE is JSON if it parses, else a string.
fn assignment(text: &str) -> Result<(PropId, Value), Error> {
    let (prop, value) = text.split_once('=').ok_or_else(|| {
        Error::usage(format!(
            "invalid assignment {text:?}: expected SIID.PIID=VALUE such as 2.1=true or 2.5=60"
        ))
    })?;
    let (siid, piid) = pair(prop, "property", "SIID.PIID", "2.1")?;
    if value.is_empty() {
        return Err(Error::usage(format!(
            "invalid assignment {text:?}: no value after '='; write 2.1=true, 2.5=60 or 2.3='\"\"' for an empty string"
        )));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((PropId::new(siid, piid), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    fn parse(args: &[&str]) -> Result<Plan, Error> {
        let mut all = vec![
            "mijia",
            "--ip",
            "127.0.0.1",
            "--token",
            "00112233445566778899aabbccddeeff",
        ];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).map_err(|e| Error::usage(e.to_string()))?;
        plan(&cli)
    }

    fn usage(args: &[&str]) -> String {
        match parse(args) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn good_plans() {
        let p = parse(&["get", "2.1", "3.10"]).map_err(|e| e.to_string());
        assert_eq!(
            p.map(|p| p.op),
            Ok(Op::Get(vec![PropId::new(2, 1), PropId::new(3, 10)]))
        );
        let p = parse(&[
            "set",
            "2.1=true",
            "2.2=50",
            "2.3=on",
            "2.4=\"x y\"",
            "2.5=-3",
        ])
        .map_err(|e| e.to_string());
        let want = Op::Set(vec![
            (PropId::new(2, 1), json!(true)),
            (PropId::new(2, 2), json!(50)),
            (PropId::new(2, 3), json!("on")),
            (PropId::new(2, 4), json!("x y")),
            (PropId::new(2, 5), json!(-3)),
        ]);
        assert_eq!(p.map(|p| p.op), Ok(want));
        let p =
            parse(&["--timeout", "0.25", "action", "5.1", "[\"hi\"]"]).map_err(|e| e.to_string());
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.op,
            Op::Action {
                siid: 5,
                aiid: 1,
                ins: vec![json!("hi")]
            }
        );
        assert_eq!(p.config.timeout, Duration::from_millis(250));
        assert_eq!(p.config.handshake_timeout, Duration::from_millis(250));
    }

    #[test]
    fn bad_input_is_a_usage_error_naming_the_problem() {
        assert!(usage(&["get", "2"]).contains("expected SIID.PIID"));
        assert!(usage(&["get", "2.x"]).contains("\"x\" is not a number"));
        assert!(usage(&["get", "0.1"]).contains("must not be 0"));
        assert!(usage(&["set", "2.1"]).contains("SIID.PIID=VALUE"));
        assert!(usage(&["set", "2.1="]).contains("no value"));
        assert!(usage(&["raw", "get_prop", "[\"power\""]).contains("line 1 column"));
        assert!(usage(&["raw", "get_prop", "5"]).contains("array or object"));
        assert!(usage(&["action", "5.1", "{}"]).contains("JSON array"));
        assert!(usage(&["--timeout", "0", "info"]).contains("--timeout"));
        assert!(usage(&["--timeout", "NaN", "info"]).contains("--timeout"));
        let cli = Cli::try_parse_from(["mijia", "--ip", "127.0.0.1", "--token", "0011", "info"]);
        let m = cli
            .map_err(|e| e.to_string())
            .and_then(|c| plan(&c).map_err(|e| e.to_string()));
        assert_eq!(
            m.err().as_deref(),
            Some("invalid token: a token is 32 hex characters, got 4")
        );
        let cli = Cli::try_parse_from([
            "mijia",
            "--ip",
            "nope",
            "--token",
            "00112233445566778899aabbccddeeff",
            "info",
        ]);
        let m = cli
            .map_err(|e| e.to_string())
            .and_then(|c| plan(&c).map_err(|e| e.to_string()));
        assert!(m.err().is_some_and(|m| m.contains("invalid --ip")));
    }
}
