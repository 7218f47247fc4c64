//! Objectives and baseline criteria, in Keptn's notation:
//!
//! - absolute objective: `>= 0.999`, `< 600`, `<= 0.25`, `== 1` (`=` is read as `==`);
//! - relative to the baseline: `<= +20%` (at most baseline × 1.20), `>= -1%` (at least
//!   baseline × 0.99), `<= +0.05` (at most baseline + 0.05, an absolute delta). The sign is
//!   required, as in Keptn, so that a relative criterion never reads as an absolute one.
//!
//! Special values, decided here once so every caller agrees:
//! - a percentage moves the threshold by a share of `|baseline|`, so `<= +20%` against a
//!   baseline of −10 is −8 (the same direction as against +10);
//! - against a baseline of 0 a percentage is 0: `<= +20%` means `<= 0`. An SLO whose baseline
//!   can be 0 (error rates, restarts) should use an absolute delta (`<= +0.05`) instead;
//! - a NaN or infinite value or baseline cannot be judged: [`Relative::check`] and
//!   [`Objective::check`] return `None`, and the judge reports it (never a pass); the plain
//!   `holds` helpers answer `false` for it, the conservative side.

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
    /// `value cmp threshold`; false when either is NaN.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Cmp::Lt => value < threshold,
            Cmp::Le => value <= threshold,
            Cmp::Gt => value > threshold,
            Cmp::Ge => value >= threshold,
            Cmp::Eq => value == threshold,
        }
    }

    /// Higher values are bad for `<`/`<=`, lower ones for `>`/`>=`; `==` says nothing.
    pub fn higher_is_bad(self) -> Option<bool> {
        match self {
            Cmp::Lt | Cmp::Le => Some(true),
            Cmp::Gt | Cmp::Ge => Some(false),
            Cmp::Eq => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
        }
    }
}

/// A criterion that does not parse: what is wrong and at which column (1-based, in characters
/// of the text as written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriterionError {
    pub input: String,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for CriterionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` at column {}: {}",
            self.input, self.column, self.message
        )
    }
}

impl std::error::Error for CriterionError {}

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

/// A criterion evaluated: the numbers it was decided on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Check {
    pub value: f64,
    pub threshold: f64,
    pub holds: bool,
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

/// A cursor over the criterion text that knows its column.
struct Scanner<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn column(&self) -> usize {
        self.input[..self.pos].chars().count() + 1
    }
    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }
    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }
    fn error(&self, message: impl Into<String>) -> CriterionError {
        CriterionError {
            input: self.input.to_owned(),
            column: self.column(),
            message: message.into(),
        }
    }

    fn cmp(&mut self) -> Result<Cmp, CriterionError> {
        self.skip_space();
        // Longest operators first, so `<=` is not read as `<` followed by `=`.
        for (op, cmp) in [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("==", Cmp::Eq),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
            ("=", Cmp::Eq),
        ] {
            if self.rest().starts_with(op) {
                self.pos += op.len();
                return Ok(cmp);
            }
        }
        Err(self.error(if self.rest().is_empty() {
            "empty; expected a comparison such as `>= 0.999`".to_owned()
        } else {
            "expected a comparison: <, <=, >, >= or ==".to_owned()
        }))
    }

    /// A finite number running to the end of the text, or to a `%` when `percent_ok`.
    fn number(&mut self, percent_ok: bool) -> Result<(f64, bool), CriterionError> {
        self.skip_space();
        let text = self.rest().trim_end();
        if text.is_empty() {
            return Err(self.error("expected a number"));
        }
        let (digits, percent) = match text.strip_suffix('%') {
            Some(d) if percent_ok => (d.trim_end(), true),
            Some(_) => {
                return Err(self.error("an objective is absolute; `%` belongs in `baseline`"));
            }
            None => (text, false),
        };
        // Report the first character that cannot belong to a number, not just "bad number".
        let bad = digits
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')));
        if let Some((i, c)) = bad {
            let at = Scanner {
                input: self.input,
                pos: self.pos + i,
            };
            return Err(at.error(format!("unexpected `{c}` in a number")));
        }
        match digits.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((v, percent)),
            _ => Err(self.error(format!("`{digits}` is not a finite number"))),
        }
    }
}

impl Objective {
    pub fn parse(s: &str) -> Result<Objective, CriterionError> {
        let mut sc = Scanner { input: s, pos: 0 };
        let cmp = sc.cmp()?;
        let (threshold, _) = sc.number(false)?;
        Ok(Objective { cmp, threshold })
    }

    /// Whether `value` meets the objective; false for NaN.
    pub fn holds(&self, value: f64) -> bool {
        self.cmp.holds(value, self.threshold)
    }

    /// The objective decided for `value`; `None` when the value is not a finite number.
    pub fn check(&self, value: f64) -> Option<Check> {
        value.is_finite().then(|| Check {
            value,
            threshold: self.threshold,
            holds: self.holds(value),
        })
    }
}

impl Relative {
    pub fn parse(s: &str) -> Result<Relative, CriterionError> {
        let mut sc = Scanner { input: s, pos: 0 };
        let cmp = sc.cmp()?;
        sc.skip_space();
        if !(sc.rest().starts_with('+') || sc.rest().starts_with('-')) {
            return Err(sc.error(
                "a baseline criterion is a signed change, e.g. `<= +20%`, `>= -1%` or `<= +0.05`",
            ));
        }
        let (delta, percent) = sc.number(true)?;
        Ok(Relative {
            cmp,
            delta,
            percent,
        })
    }

    /// The threshold this criterion sets against `baseline` (NaN in, NaN out).
    pub fn threshold(&self, baseline: f64) -> f64 {
        if self.percent {
            baseline + baseline.abs() * self.delta / 100.0
        } else {
            baseline + self.delta
        }
    }

    /// Whether `value` meets the criterion against `baseline`; false when either is NaN.
    pub fn holds(&self, value: f64, baseline: f64) -> bool {
        self.cmp.holds(value, self.threshold(baseline))
    }

    /// The criterion decided for `value` against `baseline`; `None` when either is not a
    /// finite number.
    pub fn check(&self, value: f64, baseline: f64) -> Option<Check> {
        (value.is_finite() && baseline.is_finite()).then(|| {
            let threshold = self.threshold(baseline);
            Check {
                value,
                threshold,
                holds: self.cmp.holds(value, threshold),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objectives_parse_and_decide() {
        // (text, value, threshold, holds)
        let table = [
            (">= 0.999", 0.9995, 0.999, true),
            (">= 0.999", 0.99, 0.999, false),
            ("< 600", 599.0, 600.0, true),
            ("< 600", 600.0, 600.0, false),
            ("<= 0.25", 0.25, 0.25, true),
            (">0", 0.0, 0.0, false),
            ("== 1", 1.0, 1.0, true),
            ("= 1", 0.0, 1.0, false),
            (">= -5", -4.0, -5.0, true),
            ("  <=1e3  ", 1000.0, 1000.0, true),
        ];
        for (text, value, threshold, holds) in table {
            let o = Objective::parse(text).unwrap();
            let c = o.check(value).unwrap();
            assert_eq!(
                (c.threshold, c.holds),
                (threshold, holds),
                "{text} at {value}"
            );
        }
        let o = Objective::parse(">= 0.99").unwrap();
        assert!(o.check(f64::NAN).is_none() && !o.holds(f64::NAN));
        assert!(o.check(f64::INFINITY).is_none());
    }

    #[test]
    fn relative_criteria_parse_and_decide() {
        // (text, baseline, value, threshold, holds)
        let table = [
            ("<= +20%", 0.1, 0.11, 0.12, true),
            ("<= +20%", 0.1, 0.13, 0.12, false),
            (">= -1%", 200.0, 198.0, 198.0, true),
            (">= -1%", 200.0, 197.9, 198.0, false),
            ("<= +0.05", 0.1, 0.15, 0.15, true),
            ("<= +0.05", 0.1, 0.16, 0.15, false),
            ("<=+10%", 50.0, 55.0, 55.0, true),
            ("< +100", 500.0, 600.0, 600.0, false),
            // A negative baseline moves the same way: +20 % of -10 is -8.
            ("<= +20%", -10.0, -8.0, -8.0, true),
            // Zero baseline: a percentage of nothing is nothing.
            ("<= +20%", 0.0, 0.0, 0.0, true),
            ("<= +20%", 0.0, 0.001, 0.0, false),
            ("<= +0.05", 0.0, 0.04, 0.05, true),
            ("== +0%", 3.0, 3.0, 3.0, true),
        ];
        for (text, baseline, value, threshold, holds) in table {
            let r = Relative::parse(text).unwrap();
            let c = r.check(value, baseline).unwrap();
            assert!(
                (c.threshold - threshold).abs() < 1e-12 && c.holds == holds,
                "{text} vs baseline {baseline} at {value}: {c:?}"
            );
        }
        let r = Relative::parse("<= +20%").unwrap();
        assert!(r.check(f64::NAN, 1.0).is_none());
        assert!(r.check(1.0, f64::NAN).is_none());
        assert!(!r.holds(1.0, f64::NAN));
        assert_eq!(r.to_string(), "<= +20%");
        assert_eq!(Relative::parse(">= -0.5").unwrap().to_string(), ">= -0.5");
    }

    #[test]
    fn errors_say_what_and_where() {
        // (text, column, part of the message)
        let objectives = [
            ("0.99", 1, "expected a comparison"),
            ("", 1, "empty"),
            ("=> 1", 2, "unexpected `>`"),
            (">= abc", 4, "unexpected `a`"),
            (">= inf", 4, "unexpected `i`"),
            (">=", 3, "expected a number"),
            (">= 1 2", 5, "unexpected ` `"),
            (">= 5%", 4, "`%` belongs in `baseline`"),
            (">= 1e999", 4, "not a finite number"),
        ];
        for (text, column, msg) in objectives {
            let e = Objective::parse(text).unwrap_err();
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.message.contains(msg), "{text}: {e}");
        }
        let relatives = [
            ("<= 20%", 4, "signed change"),
            ("<= +x%", 5, "unexpected `x`"),
            ("~ +1", 1, "expected a comparison"),
            ("<= +", 4, "not a finite number"),
            ("<= +20%%", 7, "unexpected `%`"),
        ];
        for (text, column, msg) in relatives {
            let e = Relative::parse(text).unwrap_err();
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.message.contains(msg), "{text}: {e}");
        }
        assert_eq!(
            Relative::parse("<= 20%").unwrap_err().to_string(),
            "`<= 20%` at column 4: a baseline criterion is a signed change, e.g. `<= +20%`, `>= -1%` or `<= +0.05`"
        );
    }
}
