//! The spec checker's `vars:` and `budget:` parts: the user's stack substituted as `${name}`,
//! and error-budget blocks with their counter selectors checked.

use serde_yaml::{Mapping, Value};

use super::{BUDGET_FIELDS, Budget, Checker, WINDOW_PLACEHOLDER, WINDOW_PLACEHOLDER_CHECK};
use crate::vars::{WINDOW_VAR, kind};

impl Checker {
    /// The `vars:` block: a mapping of names to strings, `window` reserved.
    pub(super) fn vars(&mut self, v: Option<&Value>) {
        let m = match v {
            None | Some(Value::Null) => return,
            Some(Value::Mapping(m)) => m,
            Some(v) => {
                self.problem("vars", format!("expected a mapping, found {}", kind(v)));
                return;
            }
        };
        for (k, v) in m {
            let Some(k) = k.as_str() else {
                self.problem("vars", format!("a key is {}, not a string", kind(k)));
                continue;
            };
            let at = format!("vars.{k}");
            let name_ok = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                self.problem(
                    at,
                    format!(
                        "`{k}` must start with a letter or `_` and hold only letters, digits or `_`"
                    ),
                );
                continue;
            }
            if k == WINDOW_VAR {
                self.problem(
                    at,
                    "`window` is reserved: `${window}` is the disruption window's length, filled in when the SLO is evaluated",
                );
                continue;
            }
            match v {
                Value::String(s) => {
                    self.vars.insert(k.to_owned(), s.clone());
                }
                Value::Number(n) => {
                    self.vars.insert(k.to_owned(), n.to_string());
                }
                v => self.problem(at, format!("expected a string, found {}", kind(v))),
            }
        }
    }

    /// `text` with every `${name}` replaced by its var (`${window}` left as written); each
    /// unknown or unterminated reference is a problem at `at`.
    pub(super) fn substitute(&mut self, text: &str, at: &str) -> String {
        match crate::vars::substitute(text, &self.vars) {
            Ok(s) => s,
            Err(problems) => {
                for p in problems {
                    self.problem(at, p);
                }
                text.to_owned()
            }
        }
    }

    /// The `budget:` block, its selectors substituted and checked.
    pub(super) fn budget(&mut self, m: &Mapping, at: &str) -> Option<Budget> {
        let v = m.get("budget")?;
        let at = format!("{at}.budget");
        let b = self.mapping(v, &at, BUDGET_FIELDS)?;
        let good: Option<String> = self.required(b, &at, "good");
        let total: Option<String> = self.required(b, &at, "total");
        let target: Option<f64> = self.required(b, &at, "target");
        if let Some(t) = target
            && !(t > 0.0 && t < 1.0)
        {
            self.problem(
                format!("{at}.target"),
                format!("{t} is not a share in (0, 1), e.g. 0.995 for 99.5 % good"),
            );
        }
        let mut sel = |s: Option<String>, k: &str| {
            let s = self.substitute(&s?, &format!("{at}.{k}"));
            self.selector(&s, &format!("{at}.{k}"));
            Some(s)
        };
        let good = sel(good, "good");
        let total = sel(total, "total");
        Some(Budget {
            good: good?,
            total: total?,
            target: target?,
        })
    }

    /// A counter selector: `rate(s[1m])` must parse.
    pub(super) fn selector(&mut self, s: &str, at: &str) {
        let probe = format!(
            "rate({}[1m])",
            s.replace(WINDOW_PLACEHOLDER, WINDOW_PLACEHOLDER_CHECK)
        );
        if let Err(e) = super::parse_promql(&probe) {
            self.problem(
                at,
                format!(
                    "not a counter selector (`rate(…[1m])` of it does not parse): {}",
                    e.trim()
                ),
            );
        }
    }
}
