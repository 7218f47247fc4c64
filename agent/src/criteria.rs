//! Objectives and baseline criteria, in Keptn's notation:
//!
//! - absolute objective: `>= 0.999`, `< 600`, `<= 0.25`, `== 1`;
//! - relative to the baseline: `<= +20%` (at most baseline × 1.20), `>= -1%` (at least
//!   baseline × 0.99), `<= +0.05` (at most baseline + 0.05, an absolute delta).
//!
//! A relative criterion against a baseline of 0 uses the delta form only: a percentage of zero
//! is zero, so `<= +20%` against 0 means `<= 0`. A NaN value never satisfies a criterion.

use std::fmt;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Lt => value < threshold,
            Cmp::Le => value <= threshold,
            Cmp::Gt => value > threshold,
            Cmp::Ge => value >= threshold,
            Cmp::Eq => value == threshold,
        }
    }

    /// Higher values are bad for `<`/`<=`, lower ones for `>`/`>=`.
    pub fn higher_is_bad(self) -> Option<bool> {
        match self {
            Cmp::Lt | Cmp::Le => Some(true),
            Cmp::Gt | Cmp::Ge => Some(false),
            Cmp::Eq => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
        }
    }
}

/// An absolute objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub cmp: Cmp,
    pub threshold: f64,
}

/// A criterion relative to a baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Relative {
    pub cmp: Cmp,
    /// Signed change allowed.
    pub delta: f64,
    /// `delta` is a percentage of the baseline rather than an absolute amount.
    pub percent: bool,
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cmp.as_str(), self.threshold)
    }
}

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:+}{}",
            self.cmp.as_str(),
            self.delta,
            if self.percent { "%" } else { "" }
        )
    }
}

fn split_cmp(s: &str) -> Result<(Cmp, &str), String> {
    let s = s.trim();
    for (p, c) in [
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("==", Cmp::Eq),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ] {
        if let Some(rest) = s.strip_prefix(p) {
            return Ok((c, rest.trim()));
        }
    }
    Err(format!("`{s}` must start with <, <=, >, >= or =="))
}

fn number(s: &str, whole: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{whole}`: `{s}` is not a finite number"))
}

impl Objective {
    pub fn parse(s: &str) -> Result<Objective, String> {
        let (cmp, rest) = split_cmp(s)?;
        Ok(Objective {
            cmp,
            threshold: number(rest, s)?,
        })
    }

    pub fn holds(&self, value: f64) -> bool {
        self.cmp.holds(value, self.threshold)
    }
}

impl Relative {
    pub fn parse(s: &str) -> Result<Relative, String> {
        let (cmp, rest) = split_cmp(s)?;
        if !(rest.starts_with('+') || rest.starts_with('-')) {
            return Err(format!(
                "`{s}`: a baseline criterion is a signed change, e.g. `<= +20%` or `>= -0.01`"
            ));
        }
        let (num, percent) = match rest.strip_suffix('%') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        Ok(Relative {
            cmp,
            delta: number(num, s)?,
            percent,
        })
    }

    /// The threshold this criterion sets against `baseline`.
    pub fn threshold(&self, baseline: f64) -> f64 {
        if self.percent {
            baseline + baseline.abs() * self.delta / 100.0
        } else {
            baseline + self.delta
        }
    }

    pub fn holds(&self, value: f64, baseline: f64) -> bool {
        self.cmp.holds(value, self.threshold(baseline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates_keptn_style_criteria() {
        let o = Objective::parse(">= 0.999").unwrap();
        assert!(o.holds(0.9995) && !o.holds(0.99) && !o.holds(f64::NAN));
        let r = Relative::parse("<= +20%").unwrap();
        assert!((r.threshold(0.1) - 0.12).abs() < 1e-12);
        assert!(r.holds(0.11, 0.1) && !r.holds(0.13, 0.1));
        let r = Relative::parse(">= -1%").unwrap();
        assert!((r.threshold(200.0) - 198.0).abs() < 1e-9);
        let r = Relative::parse("<= +0.05").unwrap();
        assert!((r.threshold(0.1) - 0.15).abs() < 1e-12);
        // A negative baseline moves the same way: +20 % of -10 is -8.
        assert!((Relative::parse("<= +20%").unwrap().threshold(-10.0) + 8.0).abs() < 1e-12);
        // Zero baseline: the percentage of nothing is nothing.
        assert_eq!(Relative::parse("<= +20%").unwrap().threshold(0.0), 0.0);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in ["0.99", "=> 1", ">= abc", ">= inf"] {
            assert!(Objective::parse(bad).is_err(), "{bad}");
        }
        for bad in ["<= 20%", "<= +x%", "~ +1"] {
            assert!(Relative::parse(bad).is_err(), "{bad}");
        }
    }
}
