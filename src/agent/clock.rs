//! Wall-clock helpers for the agent files: unix milliseconds, RFC 3339
//! timestamps, and the short duration syntax of the policy file (`30s`,
//! `10m`, `8h`, `1d`). Pure functions except [`now_ms`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current time in unix milliseconds (0 before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` as an RFC 3339 UTC timestamp with milliseconds
/// (`2026-08-01T12:00:00.123Z`).
pub fn rfc3339(ms: u64) -> String {
    crate::automation::time::rfc3339(UNIX_EPOCH + Duration::from_millis(ms))
}

/// Parses `30s`, `1500ms`, `10m`, `8h`, `1d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad =
        || format!("'{text}' is not a duration; write it like 30s, 10m, 8h or 1d (ms, s, m, h, d)");
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if !secs.is_finite() || !(0.0..=366.0 * 86_400.0).contains(&secs) {
        return Err(format!("'{text}' is out of range (0 to 366 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The shortest exact form of `d` in the syntax [`parse_duration`] reads.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s != 0 && s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Milliseconds in `d`, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_785_585_600_123), "2026-08-01T12:00:00.123Z");
    }

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [
            ("30s", 30.0),
            ("10m", 600.0),
            ("8h", 28_800.0),
            ("1d", 86_400.0),
        ] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.as_secs_f64(), secs);
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("400d").is_err());
    }
}
