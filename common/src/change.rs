//! What changed between two Agones configurations, in one line a person reads at a glance:
//! `1.58.0 → 1.59.0  +WasmAutoscaler −SidecarContainers  allocationBatchWaitTime 500ms→100ms`.
//! Every place that shows a transition (the agent's log and report, alerts, annotations, the
//! sidecar's log) calls [`describe`], so they all say the same thing; [`full`] is the whole
//! configuration for `report --full-config`.
//!
//! A configuration is the label set of the Wanderer's info metric
//! ([`crate::names::wanderer::CONFIG_INFO`]): `version`, `feature_gates` as Helm's query string
//! (`A=true&B=false`) and `tunables` as `name=value` joined by `&`. Other labels are compared
//! as plain values.

use std::collections::BTreeMap;

use crate::names::wanderer::{FEATURE_GATES_LABEL, TUNABLES_LABEL, VERSION_LABEL};

/// What stands for a value a configuration does not set (the chart's default applies).
pub const UNSET: &str = "default";

/// The parts of a change, each sorted by name; [`std::fmt::Display`] is [`describe`]'s line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The release before and after; `None` where the configuration does not say.
    pub version: (Option<String>, Option<String>),
    /// Gates turned on (`+Gate`).
    pub gates_on: Vec<String>,
    /// Gates turned off (`−Gate`).
    pub gates_off: Vec<String>,
    /// Every other value that changed, `(name, before, after)`; [`UNSET`] where not set.
    pub values: Vec<(String, String, String)>,
}

/// Splits a `k=v&k2=v2` label value into its pairs; a part without `=` is a name with an empty
/// value, so nothing a label holds is lost from the comparison.
fn pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

fn field(c: &BTreeMap<String, String>, k: &str) -> BTreeMap<String, String> {
    c.get(k).map(|s| pairs(s)).unwrap_or_default()
}

/// The change from `from` to `to` (label sets of the Wanderer's info metric).
pub fn diff(from: &BTreeMap<String, String>, to: &BTreeMap<String, String>) -> Change {
    let mut c = Change {
        version: (
            from.get(VERSION_LABEL).cloned(),
            to.get(VERSION_LABEL).cloned(),
        ),
        ..Change::default()
    };
    let (ga, gb) = (
        field(from, FEATURE_GATES_LABEL),
        field(to, FEATURE_GATES_LABEL),
    );
    let names: std::collections::BTreeSet<&String> = ga.keys().chain(gb.keys()).collect();
    for g in names {
        let (a, b) = (ga.get(g).map(String::as_str), gb.get(g).map(String::as_str));
        match (a, b) {
            (a, b) if a == b => {}
            (_, Some("true")) => c.gates_on.push(g.clone()),
            (_, Some("false")) => c.gates_off.push(g.clone()),
            (a, b) => c.values.push((
                g.clone(),
                a.unwrap_or(UNSET).to_owned(),
                b.unwrap_or(UNSET).to_owned(),
            )),
        }
    }
    let (ta, tb) = (field(from, TUNABLES_LABEL), field(to, TUNABLES_LABEL));
    let names: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    for k in names {
        let (a, b) = (ta.get(k), tb.get(k));
        if a != b {
            c.values.push((
                k.clone(),
                a.map_or(UNSET, String::as_str).to_owned(),
                b.map_or(UNSET, String::as_str).to_owned(),
            ));
        }
    }
    let own = [VERSION_LABEL, FEATURE_GATES_LABEL, TUNABLES_LABEL];
    let others: std::collections::BTreeSet<&String> = from
        .keys()
        .chain(to.keys())
        .filter(|k| !own.contains(&k.as_str()))
        .collect();
    for k in others {
        let (a, b) = (from.get(k), to.get(k));
        if a != b {
            c.values.push((
                k.clone(),
                a.map_or(UNSET, String::as_str).to_owned(),
                b.map_or(UNSET, String::as_str).to_owned(),
            ));
        }
    }
    c
}

impl Change {
    /// True when nothing changed: the same release, no gate and no value.
    pub fn is_empty(&self) -> bool {
        self.version.0 == self.version.1
            && self.gates_on.is_empty()
            && self.gates_off.is_empty()
            && self.values.is_empty()
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "?".to_owned());
        match &self.version {
            (a, b) if a == b => f.write_str(&v(b))?,
            (a, b) => write!(f, "{} → {}", v(a), v(b))?,
        }
        let gates: Vec<String> = self
            .gates_on
            .iter()
            .map(|g| format!("+{g}"))
            .chain(self.gates_off.iter().map(|g| format!("−{g}")))
            .collect();
        if !gates.is_empty() {
            write!(f, "  {}", gates.join(" "))?;
        }
        let values: Vec<String> = self
            .values
            .iter()
            .map(|(k, a, b)| format!("{k} {a}→{b}"))
            .collect();
        if !values.is_empty() {
            write!(f, "  {}", values.join(" "))?;
        }
        if self.is_empty() {
            f.write_str("  (no change)")?;
        }
        Ok(())
    }
}

/// A configuration as the Wanderer's info metric labels it: the version, the gates as a query
/// (`A=true&B=false`) and the tunables as one (`a=1&b=info`).
pub fn configuration(version: &str, gates: &str, tunables: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (VERSION_LABEL.to_owned(), version.to_owned()),
        (FEATURE_GATES_LABEL.to_owned(), gates.to_owned()),
        (TUNABLES_LABEL.to_owned(), tunables.to_owned()),
    ])
}

/// The change from `from` to `to` in one line, e.g.
/// `1.58.0 → 1.59.0  +WasmAutoscaler −SidecarContainers  allocationBatchWaitTime 500ms→100ms`.
pub fn describe(from: &BTreeMap<String, String>, to: &BTreeMap<String, String>) -> String {
    diff(from, to).to_string()
}

/// The whole configuration in one line: `1.59.0  gates A=true B=false  tunables x=1`, for
/// `report --full-config` and the HTML report's details.
pub fn full(c: &BTreeMap<String, String>) -> String {
    let mut out = c
        .get(VERSION_LABEL)
        .cloned()
        .unwrap_or_else(|| "?".to_owned());
    for (label, title) in [(FEATURE_GATES_LABEL, "gates"), (TUNABLES_LABEL, "tunables")] {
        let p = field(c, label);
        if !p.is_empty() {
            let items: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("  {title} {}", items.join(" ")));
        }
    }
    for (k, v) in c {
        if ![VERSION_LABEL, FEATURE_GATES_LABEL, TUNABLES_LABEL].contains(&k.as_str()) {
            out.push_str(&format!("  {k}={v}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::configuration as config;

    #[test]
    fn a_change_reads_as_what_changed() {
        let a = config(
            "1.58.0",
            "PlayerTracking=true&SidecarContainers=true&WasmAutoscaler=false",
            "allocationBatchWaitTime=500ms&replicas=2",
        );
        let b = config(
            "1.59.0",
            "PlayerTracking=true&SidecarContainers=false&WasmAutoscaler=true",
            "allocationBatchWaitTime=100ms&replicas=2",
        );
        assert_eq!(
            describe(&a, &b),
            "1.58.0 → 1.59.0  +WasmAutoscaler −SidecarContainers  allocationBatchWaitTime 500ms→100ms"
        );
        let c = diff(&a, &b);
        assert_eq!(c.gates_on, vec!["WasmAutoscaler"]);
        assert_eq!(c.gates_off, vec!["SidecarContainers"]);
    }

    #[test]
    fn unchanged_parts_are_left_out_and_unset_ones_named() {
        let a = config("1.59.0", "A=true", "");
        let b = config("1.59.0", "A=true&B=true", "x=1");
        assert_eq!(describe(&a, &b), "1.59.0  +B  x default→1");
        assert_eq!(describe(&b, &a), "1.59.0  B true→default x 1→default");
        assert_eq!(describe(&a, &a), "1.59.0  (no change)");
        // A gate that left the query reads as back to its default.
        let c = config("1.60.0", "", "");
        assert_eq!(describe(&a, &c), "1.59.0 → 1.60.0  A true→default");
    }

    #[test]
    fn an_unknown_configuration_reads_as_a_question_mark() {
        let empty = BTreeMap::new();
        let b = config("1.59.0", "", "");
        assert_eq!(describe(&empty, &b), "? → 1.59.0");
        assert_eq!(full(&empty), "?");
    }

    #[test]
    fn other_labels_are_compared_as_values() {
        let mut a = config("1.59.0", "", "");
        let mut b = a.clone();
        a.insert("chart".into(), "agones-1".into());
        b.insert("chart".into(), "agones-2".into());
        assert_eq!(describe(&a, &b), "1.59.0  chart agones-1→agones-2");
    }

    #[test]
    fn the_full_configuration_lists_every_part() {
        let a = config("1.59.0", "B=false&A=true", "x=1&y=2");
        assert_eq!(full(&a), "1.59.0  gates A=true B=false  tunables x=1 y=2");
    }
}
