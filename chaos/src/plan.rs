//! What `validate` and `plan` print: a space's summary, and a seed's walk with the pairwise
//! coverage it reaches, without applying anything.

use std::path::Path;

use crate::error::{Error, Result};
use crate::wanderer::space::{Space, Stage, State, TunableValue};
use crate::wanderer::walk::{self, Strategy, Walk};

/// `validate FILE`: every problem, or a summary of the space.
pub fn validate(path: &Path) -> Result<String> {
    let space = Space::load(path)?;
    let mut out = format!(
        "{}: valid configuration space ({})\n",
        path.display(),
        space.hash
    );
    out.push_str(&format!(
        "hops: up to {} minor up, {} down, downgrades {}\n",
        space.hops.max_up,
        space.hops.max_down,
        if space.hops.allow_downgrade {
            "allowed"
        } else {
            "forbidden"
        }
    ));
    for v in &space.versions {
        let count = |st: Stage| v.gates.values().filter(|s| **s == st).count();
        out.push_str(&format!(
            "  {:<8} gates: {} Stable, {} Beta, {} Alpha; Kubernetes {}\n",
            v.name,
            count(Stage::Stable),
            count(Stage::Beta),
            count(Stage::Alpha),
            v.kubernetes
                .as_ref()
                .map(|k| format!("{}–{}", k.min, k.max))
                .unwrap_or_else(|| "unspecified".into())
        ));
    }
    for (t, spec) in &space.tunables {
        out.push_str(&format!(
            "  tunable {t}: {spec} ({} values){}\n",
            spec.count(),
            chart_line(&space, t)
        ));
    }
    for (c, _) in &space.constraints {
        out.push_str(&format!("  constraint: {c}\n"));
    }
    match space.census() {
        Some(c) => out.push_str(&format!("  valid states: {}\n", c.states)),
        None => out.push_str("  valid states: not counted (more than a census tries)\n"),
    }
    let walk = Walk::new(space, 0, Strategy::Coverage);
    for (kind, _, total) in walk.coverage().counts() {
        out.push_str(&format!("  reachable {kind}: {total}\n"));
    }
    Ok(out)
}

/// ` → path, path (format)`: where the helm applier writes tunable `t`, or nothing.
fn chart_line(space: &Space, t: &str) -> String {
    space
        .chart
        .get(t)
        .map(|c| {
            let format = serde_json::to_value(c.format)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(" → {} ({format})", c.paths.join(", "))
        })
        .unwrap_or_default()
}

/// What `from → to` changes: `1.55.0 → 1.57.0`, `+Gate`, `-Gate`, `tunable=value`.
fn changes(space: &Space, from: &State, to: &State) -> Vec<String> {
    let mut parts = Vec::new();
    if from.version != to.version {
        parts.push(format!(
            "{} → {}",
            space.versions[from.version].name, space.versions[to.version].name
        ));
    }
    for (g, on) in &to.gates {
        if from.gates.get(g) != Some(on)
            && space.versions[to.version].gates.get(g) != Some(&Stage::Stable)
        {
            parts.push(format!("{}{g}", if *on { "+" } else { "-" }));
        }
    }
    for (t, v) in &to.tunables {
        if from.tunables.get(t) != Some(v) {
            parts.push(format!(
                "{t}={}",
                match v {
                    TunableValue::Int(i) => i.to_string(),
                    TunableValue::Str(s) => s.clone(),
                }
            ));
        }
    }
    parts
}

/// `plan`: the walk, printed without applying it.
pub fn plan(
    space_path: &Path,
    seed: u64,
    steps: u64,
    from: Option<&str>,
    strategy: Strategy,
    json: bool,
) -> Result<String> {
    let space = Space::load(space_path)?;
    let start = match from {
        None => space.start(),
        Some(name) => {
            let Some(v) = space.versions.iter().position(|v| v.name == name) else {
                let names: Vec<&str> = space.versions.iter().map(|v| v.name.as_str()).collect();
                return Err(Error::Flag(format!(
                    "--from: `{name}` is not a version of the space ({})",
                    names.join(", ")
                )));
            };
            let s = space.defaults(v);
            if let Some(why) = space.why_invalid(&s) {
                return Err(Error::Flag(format!(
                    "--from: the defaults of `{name}` are not a valid state: {why}"
                )));
            }
            Some(s)
        }
    };
    let mut walk = Walk::new(space.clone(), seed, strategy);
    let states = match start {
        Some(s) => walk.plan_from(s, steps),
        None => Vec::new(),
    };
    let mut out = String::new();
    if json {
        let rows: Vec<serde_json::Value> = states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let install = walk::install(&space, s);
                let changed = match i {
                    0 => Vec::new(),
                    _ => changes(&space, &states[i - 1], s),
                };
                serde_json::json!({"step": i, "version": install.version, "featureGates": install.gate_query(), "tunables": install.tunables, "changes": changed})
            })
            .collect();
        let coverage: serde_json::Map<String, serde_json::Value> = walk
            .coverage()
            .ratios()
            .into_iter()
            .map(|(k, r)| (k.to_owned(), serde_json::Value::from(r)))
            .collect();
        // Loudly: an empty document with exit 0 would read as an empty plan.
        out = serde_json::to_string_pretty(&serde_json::json!({"seed": seed, "strategy": strategy.as_str(), "steps": rows, "coverage": coverage, "chart": space.chart}))
            .map_err(Error::Encode)?;
        out.push('\n');
        return Ok(out);
    }
    out.push_str(&format!(
        "# seed {seed}, strategy {}, space {}\n",
        strategy.as_str(),
        space.hash
    ));
    for (t, spec) in &space.tunables {
        out.push_str(&format!("# tunable {t}: {spec}{}\n", chart_line(&space, t)));
    }
    for (i, s) in states.iter().enumerate() {
        let change = match i {
            0 => "start".to_owned(),
            _ => changes(&space, &states[i - 1], s).join(" "),
        };
        out.push_str(&format!(
            "{i:>4}  {:<8} {change}\n",
            space.versions[s.version].name
        ));
    }
    for (kind, covered, total) in walk.coverage().counts() {
        out.push_str(&format!("coverage {kind}: {covered}/{total}\n"));
    }
    Ok(out)
}
