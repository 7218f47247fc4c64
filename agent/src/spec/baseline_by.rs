//! `baseline_by`: the configuration keys an SLO's baseline must share with the judged window
//! (`version`, `tunable:NAME`, `gate:NAME`), checked field by field with its path.

use serde_yaml::{Mapping, Value};

use super::{Checker, SloWindow};
use crate::vars::kind;
use crate::wanderer::ConfigKey;

impl Checker {
    /// The keys of `baseline_by` at `at`, as written and parsed; every bad item is a problem
    /// at `at.baseline_by[i]`. Refused on SLOs it cannot act on: disruption SLOs (judged
    /// against earlier transitions' median, not a steady baseline) and SLOs with neither a
    /// `baseline` criterion nor a `budget` (the objective alone decides them).
    pub(super) fn baseline_by(
        &mut self,
        m: &Mapping,
        at: &str,
        window: SloWindow,
    ) -> (Vec<String>, Vec<ConfigKey>) {
        let here = format!("{at}.baseline_by");
        let items = match m.get("baseline_by") {
            None | Some(Value::Null) => return (Vec::new(), Vec::new()),
            Some(Value::Sequence(items)) if items.is_empty() => {
                self.problem(
                    here,
                    "an empty list: give at least one key, or leave it out",
                );
                return (Vec::new(), Vec::new());
            }
            Some(Value::Sequence(items)) => items,
            Some(v) => {
                self.problem(
                    here,
                    format!(
                        "expected a list of configuration keys such as [tunable:allocationBatchWaitTime], found {}",
                        kind(v)
                    ),
                );
                return (Vec::new(), Vec::new());
            }
        };
        if !window.is_steady() {
            self.problem(
                &here,
                "only steady SLOs take it: a disruption SLO is judged against earlier transitions' median",
            );
        } else if !m.contains_key("baseline") && !m.contains_key("budget") {
            self.problem(
                &here,
                "needs a `baseline` criterion or a `budget`: without one the objective alone decides and no baseline is compared",
            );
        }
        let (mut written, mut keys) = (Vec::new(), Vec::new());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{here}[{i}]");
            let Value::String(s) = item else {
                self.problem(path, format!("expected a string, found {}", kind(item)));
                continue;
            };
            match ConfigKey::parse(s.trim()) {
                Err(e) => self.problem(path, e),
                Ok(k) if keys.contains(&k) => self.problem(path, format!("`{k}` is listed twice")),
                Ok(k) => {
                    written.push(k.to_string());
                    keys.push(k);
                }
            }
        }
        (written, keys)
    }
}
