//! Durations, in one place. The game protocol's `RESERVE` takes Go's `time.ParseDuration`
//! grammar, as the real simple-game-server does; configuration durations are read with
//! `humantime` like the sidecar's and the agent's, and also take the decimal forms the
//! simulator's config always accepted (`1.5s`, `0.5m`).

use std::time::Duration;

/// Parses a duration the way Go's `time.ParseDuration` does (the real server uses it): decimal
/// numbers each followed by a unit `ns`, `us`/`µs`, `ms`, `s`, `m` or `h`, e.g. `10s`, `1m30s`,
/// `1.5h`; a bare `0` is allowed. Negative durations are refused: a reservation cannot end
/// before it starts.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        if !number.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Parses a configuration duration: `humantime` (`250ms`, `20s`, `1m 30s`, `1h`), or one
/// decimal number with a unit (`1.5s`), which older configs use and `humantime` refuses.
pub fn parse_config_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    match humantime::parse_duration(text) {
        Ok(d) => Ok(d),
        Err(e) => decimal(text).ok_or_else(|| format!("duration `{text}`: {e}")),
    }
}

/// `1.5s`, `0.25h`: one decimal number and one unit of `ms`, `s`, `m`, `h`.
fn decimal(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    if !matches!(unit, "ms" | "s" | "m" | "h") {
        return None;
    }
    parse_go_duration(&format!("{number}{unit}"))
}

/// Serde for configuration durations: read as [`parse_config_duration`], written as
/// `humantime` writes them.
pub mod config_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_config_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_takes_go_durations() {
        let cases = [
            ("10s", Some(Duration::from_secs(10))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1.5h", Some(Duration::from_secs(5400))),
            ("250us", Some(Duration::from_micros(250))),
            ("0", Some(Duration::ZERO)),
            ("+2s", Some(Duration::from_secs(2))),
            ("10", None),
            ("-1s", None),
            ("s", None),
            (".s", None),
            ("1.2.3s", None),
            ("10 s", None),
            ("10d", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn config_durations_take_humantime_and_decimals() {
        let ok = [
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("0.5m", Duration::from_secs(30)),
            ("1h", Duration::from_secs(3600)),
            ("20s", Duration::from_secs(20)),
            (" 5s ", Duration::from_secs(5)),
            ("1m 30s", Duration::from_secs(90)),
            ("0ms", Duration::ZERO),
            ("1.5d", Duration::from_secs(129_600)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_config_duration(text), Ok(want), "{text:?}");
        }
        for bad in ["5", "5 fortnights", "", "1.5x", "-1s", "ms"] {
            assert!(parse_config_duration(bad).is_err(), "{bad:?}");
        }
    }
}
