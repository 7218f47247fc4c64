//! A tunable's allowed values in the Wanderer's space: an integer grid `min, min + step, …,
//! max` or a list of words. The simulator's wider `upsoak_agones::release::TunableSpec` (any
//! integer in a range) says what an install may hold; this says what the walk visits.

use std::fmt;

pub use upsoak_agones::release::TunableValue;

/// The values a walk gives a tunable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunableSpec {
    /// Integers `min, min + step, …, max`: `max − min` is a multiple of `step` (checked when
    /// the space loads), and `step` is 1 when the space gives none.
    Range { min: i64, max: i64, step: i64 },
    /// One of these words.
    Enum { values: Vec<String> },
}

impl TunableSpec {
    /// How many values it has.
    pub fn count(&self) -> u128 {
        match self {
            TunableSpec::Range { min, max, step } => {
                let span = i128::from(*max) - i128::from(*min);
                if span < 0 || *step < 1 {
                    0
                } else {
                    (span / i128::from(*step)) as u128 + 1
                }
            }
            TunableSpec::Enum { values } => values.len() as u128,
        }
    }

    /// The `i`-th value, first is 0; `None` past the last.
    pub fn nth(&self, i: u128) -> Option<TunableValue> {
        if i >= self.count() {
            return None;
        }
        match self {
            TunableSpec::Range { min, step, .. } => {
                let v = i128::from(*min) + i128::try_from(i).ok()? * i128::from(*step);
                i64::try_from(v).ok().map(TunableValue::Int)
            }
            TunableSpec::Enum { values } => values
                .get(usize::try_from(i).ok()?)
                .cloned()
                .map(TunableValue::Str),
        }
    }

    /// The grid values below and above `i` (equal when `i` is on the grid), each clamped to
    /// `min..=max`; `None` for an enum.
    pub fn around(&self, i: i64) -> Option<(i64, i64)> {
        let TunableSpec::Range { min, max, step } = self else {
            return None;
        };
        let (lo, hi, st) = (
            i128::from(*min),
            i128::from(*max),
            i128::from((*step).max(1)),
        );
        let x = i128::from(i).clamp(lo, hi);
        let below = lo + (x - lo).div_euclid(st) * st;
        let above = if below == x { x } else { (below + st).min(hi) };
        // Both lie within min..=max, so they fit an i64.
        Some((below as i64, above as i64))
    }

    /// The value of the grid nearest `i` (ties go down), within `min..=max`; `None` for an enum.
    pub fn nearest(&self, i: i64) -> Option<i64> {
        let (below, above) = self.around(i)?;
        Some(
            if i128::from(above) - i128::from(i) < i128::from(i) - i128::from(below) {
                above
            } else {
                below
            },
        )
    }

    /// Why `value` is not one of its values, or `None` when it is; the message names no path,
    /// so callers put it under theirs (`tunable `NAME``).
    pub fn problem(&self, value: &TunableValue) -> Option<String> {
        match (self, value) {
            (TunableSpec::Range { min, max, .. }, TunableValue::Int(i)) if i < min || i > max => {
                Some(format!("{i} is outside {self}"))
            }
            (TunableSpec::Range { .. }, TunableValue::Int(i)) => {
                let (below, above) = self.around(*i)?;
                (below != *i).then(|| {
                    format!(
                        "{i} is off the step grid of {self} (nearest values {below} and {above})"
                    )
                })
            }
            (TunableSpec::Range { .. }, TunableValue::Str(s)) => {
                Some(format!("`{s}` is not an integer"))
            }
            (TunableSpec::Enum { values }, v) if !values.iter().any(|x| *x == v.to_string()) => {
                Some(format!("`{v}` is not one of {}", values.join(", ")))
            }
            (TunableSpec::Enum { .. }, _) => None,
        }
    }
}

/// `100..=1000 step 100`, `1..=5` (step 1), `info | debug`.
impl fmt::Display for TunableSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunableSpec::Range { min, max, step: 1 } => write!(f, "{min}..={max}"),
            TunableSpec::Range { min, max, step } => write!(f, "{min}..={max} step {step}"),
            TunableSpec::Enum { values } => f.write_str(&values.join(" | ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stepped_range_has_its_grid_and_names_what_is_off_it() {
        let s = TunableSpec::Range {
            min: 100,
            max: 1000,
            step: 100,
        };
        assert_eq!(s.count(), 10);
        assert_eq!(s.nth(0), Some(TunableValue::Int(100)));
        assert_eq!(s.nth(9), Some(TunableValue::Int(1000)));
        assert_eq!(s.nth(10), None);
        assert_eq!(s.to_string(), "100..=1000 step 100");
        assert_eq!(s.problem(&TunableValue::Int(400)), None);
        assert_eq!(
            s.problem(&TunableValue::Int(450)).as_deref(),
            Some("450 is off the step grid of 100..=1000 step 100 (nearest values 400 and 500)")
        );
        assert_eq!(
            s.problem(&TunableValue::Int(1100)).as_deref(),
            Some("1100 is outside 100..=1000 step 100")
        );
        assert_eq!(
            s.problem(&TunableValue::from("fast")).as_deref(),
            Some("`fast` is not an integer")
        );
        // Nearest, ties down, clamped to the range.
        for (x, want) in [
            (449, 400),
            (450, 400),
            (451, 500),
            (5, 100),
            (4000, 1000),
            (700, 700),
        ] {
            assert_eq!(s.nearest(x), Some(want), "{x}");
        }
        let whole = TunableSpec::Range {
            min: i64::MIN,
            max: i64::MAX,
            step: 1,
        };
        assert_eq!(whole.count(), u128::from(u64::MAX) + 1);
        assert_eq!(whole.nearest(-7), Some(-7));
        assert_eq!(whole.to_string(), format!("{}..={}", i64::MIN, i64::MAX));
        let words = TunableSpec::Enum {
            values: vec!["info".into(), "debug".into()],
        };
        assert_eq!(words.to_string(), "info | debug");
        assert_eq!(words.nth(1), Some(TunableValue::from("debug")));
        assert_eq!(words.nearest(3), None);
        assert!(words.problem(&TunableValue::from("trace")).is_some());
    }
}
