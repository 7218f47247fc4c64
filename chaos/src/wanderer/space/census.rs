//! The census of a space: every valid state enumerated exactly, tunable values grouped into
//! the classes the constraints can tell apart, and the pairs (gate×version, gate×gate) reached.

use std::collections::BTreeSet;

use super::{Space, Stage, TunableSpec, TunableValue};
use crate::wanderer::constraint::Expr;

/// What enumerating every valid state of a space found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    /// How many valid states there are (saturating).
    pub states: u128,
    /// Per version: whether it has a valid state at all.
    pub inhabited: Vec<bool>,
    /// Every (version, gate, value) of a gate the version lets vary that some valid state has.
    pub gate_version: BTreeSet<(usize, String, bool)>,
    /// Every (gate, value, gate, value) of two varying gates, in name order, that some valid
    /// state of some version has.
    pub gate_pairs: BTreeSet<(String, bool, String, bool)>,
}

/// Classes of a tunable's values that every constraint treats alike: a representative and how
/// many values it stands for. The first class holds the tunable's default (min, or the first
/// value).
pub(super) fn tunable_classes(
    name: &str,
    spec: &TunableSpec,
    constraints: &[(String, Expr)],
) -> Vec<(TunableValue, u128)> {
    let mut consts = Vec::new();
    let mut named = false;
    for (_, e) in constraints {
        let (mut g, mut t) = (Vec::new(), Vec::new());
        e.names(&mut g, &mut t);
        named |= t.iter().any(|(n, _)| n == name);
        e.int_constants(name, &mut consts);
    }
    match spec {
        TunableSpec::Enum { values } if named => values
            .iter()
            .map(|v| (TunableValue::Str(v.clone()), 1))
            .collect(),
        TunableSpec::Enum { values } => match values.first() {
            Some(v) => vec![(TunableValue::Str(v.clone()), values.len() as u128)],
            None => Vec::new(),
        },
        TunableSpec::Range { min, max, step } => {
            // Classes are runs of grid indices, `0..count`. A constant on the grid is its own
            // class (`==` tells it apart from its neighbours); one between two grid values only
            // splits the grid there (`<= 450` with step 100 treats 400 and 500 apart, no value
            // equals 450). i128: a range may span all of i64.
            let (lo, st) = (i128::from(*min), i128::from(*step).max(1));
            let count = spec.count() as i128;
            let mut cuts = vec![0, count];
            for c in consts.into_iter().map(i128::from) {
                if c < lo || c > i128::from(*max) {
                    continue;
                }
                let k = (c - lo) / st;
                if (c - lo) % st == 0 {
                    cuts.push(k);
                }
                cuts.push(k + 1);
            }
            cuts.sort_unstable();
            cuts.dedup();
            cuts.windows(2)
                .map(|w| {
                    (
                        TunableValue::Int((lo + w[0] * st) as i64),
                        (w[1] - w[0]) as u128,
                    )
                })
                .collect()
        }
    }
}

impl Space {
    /// The most candidate states a census tries before giving up (about a second of work).
    pub const CENSUS_LIMIT: u128 = 1 << 22;

    /// Enumerates every valid state, exactly: all combinations of the gates each version lets
    /// vary, times the classes of tunable values the constraints can tell apart. `None` when
    /// that is more than [`Space::CENSUS_LIMIT`] states.
    pub fn census(&self) -> Option<Census> {
        let classes: Vec<(String, Vec<(TunableValue, u128)>)> = self
            .tunables
            .iter()
            .map(|(t, spec)| (t.clone(), tunable_classes(t, spec, &self.constraints)))
            .collect();
        let combos = classes
            .iter()
            .try_fold(1u128, |n, (_, c)| n.checked_mul(c.len() as u128))?;
        let mut tries = 0u128;
        for v in &self.versions {
            let free = v.gates.values().filter(|s| **s != Stage::Stable).count();
            let masks = 1u128.checked_shl(u32::try_from(free).ok()?)?;
            tries = tries.checked_add(masks.checked_mul(combos)?)?;
        }
        if tries > Self::CENSUS_LIMIT {
            return None;
        }
        let mut census = Census {
            states: 0,
            inhabited: vec![false; self.versions.len()],
            gate_version: BTreeSet::new(),
            gate_pairs: BTreeSet::new(),
        };
        for (vi, v) in self.versions.iter().enumerate() {
            let free: Vec<&String> = v
                .gates
                .iter()
                .filter(|(_, s)| **s != Stage::Stable)
                .map(|(g, _)| g)
                .collect();
            let n = free.len();
            // Seen values of gate i, and of gate pairs (i, j) as 2·a + b, by index: cheaper
            // than building named tuples for each of thousands of states.
            let mut seen_gv = vec![[false; 2]; n];
            let mut seen_gp = vec![[false; 4]; n * n];
            let mut s = self.defaults(vi);
            for combo in 0..combos {
                let mut rest = combo;
                let mut weight = 1u128;
                for (t, cls) in &classes {
                    let k = cls.len() as u128;
                    let (value, w) = &cls[(rest % k) as usize];
                    rest /= k;
                    weight = weight.saturating_mul(*w);
                    s.tunables.insert(t.clone(), value.clone());
                }
                for mask in 0u64..(1u64 << n) {
                    for (i, g) in free.iter().enumerate() {
                        if let Some(on) = s.gates.get_mut(*g) {
                            *on = mask >> i & 1 == 1;
                        }
                    }
                    if !self.holds_constraints(&s) {
                        continue;
                    }
                    census.states = census.states.saturating_add(weight);
                    census.inhabited[vi] = true;
                    let bit = |i: usize| (mask >> i & 1) as usize;
                    for i in 0..n {
                        seen_gv[i][bit(i)] = true;
                        for j in i + 1..n {
                            seen_gp[i * n + j][2 * bit(i) + bit(j)] = true;
                        }
                    }
                }
            }
            for i in 0..n {
                for (b, seen) in seen_gv[i].iter().enumerate() {
                    if *seen {
                        census.gate_version.insert((vi, free[i].clone(), b == 1));
                    }
                }
                for j in i + 1..n {
                    for (ab, seen) in seen_gp[i * n + j].iter().enumerate() {
                        if *seen {
                            census.gate_pairs.insert((
                                free[i].clone(),
                                ab >= 2,
                                free[j].clone(),
                                ab % 2 == 1,
                            ));
                        }
                    }
                }
            }
        }
        Some(census)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../spaces/agones.yaml");

    #[test]
    fn the_census_counts_exactly() {
        // Brute force over every integer agrees with the census's classes of values.
        let text = r#"
versions:
  - { version: 1.0.0, gates: { A: Alpha, B: Beta, S: Stable } }
  - { version: 1.1.0, gates: { A: Alpha, B: Stable, C: Alpha } }
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
tunables:
  wait: { min: 0, max: 40 }
  level: { values: [info, debug, trace] }
constraints:
  - IF gate:A THEN tunable:wait < 10 OR tunable:wait == 30
  - IF tunable:level == trace THEN NOT gate:B
  - IF version >= 1.1 THEN NOT (gate:A AND gate:C)
"#;
        let s = Space::parse(text, "t").unwrap();
        let c = s.census().unwrap();
        let mut brute = 0u128;
        for v in 0..2 {
            let free: Vec<String> = s.versions[v]
                .gates
                .iter()
                .filter(|(_, st)| **st != Stage::Stable)
                .map(|(g, _)| g.clone())
                .collect();
            for mask in 0..1u32 << free.len() {
                for wait in 0..=40 {
                    for level in ["info", "debug", "trace"] {
                        let mut st = s.defaults(v);
                        for (i, g) in free.iter().enumerate() {
                            st.gates.insert(g.clone(), mask >> i & 1 == 1);
                        }
                        st.tunables.insert("wait".into(), TunableValue::Int(wait));
                        st.tunables
                            .insert("level".into(), TunableValue::Str(level.into()));
                        brute += u128::from(s.is_valid(&st));
                    }
                }
            }
        }
        assert_eq!(c.states, brute);
        assert_eq!(c.inhabited, [true, true]);
        // 1.1.0: A and C both on is never valid, each alone is.
        assert!(!c.gate_pairs.contains(&("A".into(), true, "C".into(), true)));
        assert!(
            c.gate_pairs
                .contains(&("A".into(), true, "C".into(), false))
        );
        assert!(c.gate_version.contains(&(1, "C".into(), true)));

        // The shipped space, by hand: free gates 13, 13, 13, 13, 11, 10; PlayerAllocationFilter
        // needs PlayerTracking (3 of 4), Example and ProcessorAllocator off (Dev gates), 10
        // batch waits (100..=1000 step 100), times 2 log levels, times 5 allocator replica counts.
        let shipped = Space::parse(SHIPPED, "agones.yaml").unwrap();
        let others = 4 * (1 << 9) + (1 << 7) + (1 << 6);
        assert_eq!(shipped.census().unwrap().states, 3 * 10 * 2 * 5 * others);
        // Walking ProcessorAllocator (its `NOT` line deleted) keeps `<= 500` meaningful: with
        // it on, only the 5 waits 100..=500 of the grid are valid.
        let walked = SHIPPED.replace("  - NOT gate:ProcessorAllocator\n", "");
        assert_ne!(walked, SHIPPED);
        let walked = Space::parse(&walked, "walked.yaml").unwrap();
        assert_eq!(
            walked.census().unwrap().states,
            3 * (10 + 5) * 2 * 5 * others
        );
    }

    #[test]
    fn a_stepped_tunable_is_counted_on_its_grid() {
        // Brute force over every integer, off the grid and outside the range too, against the
        // census's classes: `<= 450` splits the grid between 400 and 500, `== 700` is its own
        // class, `> 750` splits between 700 and 800, `> 2000` matches no grid value.
        let text = r#"
versions:
  - { version: 1.0.0, gates: { A: Alpha, B: Beta, C: Alpha } }
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
tunables:
  batch: { min: 100, max: 1000, step: 100 }
  wait: { min: 0, max: 40, step: 5 }
constraints:
  - IF gate:A THEN tunable:batch <= 450
  - IF gate:B THEN tunable:batch == 700 OR tunable:wait >= 12
  - IF gate:C THEN tunable:batch > 750 AND NOT tunable:batch > 2000
"#;
        let s = Space::parse(text, "t").unwrap();
        let classes = tunable_classes("batch", &s.tunables["batch"], &s.constraints);
        let int = |v: &TunableValue| match v {
            TunableValue::Int(i) => *i,
            TunableValue::Str(_) => unreachable!(),
        };
        assert_eq!(
            classes
                .iter()
                .map(|(v, n)| (int(v), *n))
                .collect::<Vec<_>>(),
            [(100, 4), (500, 2), (700, 1), (800, 3)]
        );
        let mut brute = 0u128;
        let mut grid = BTreeSet::new();
        for mask in 0..8u32 {
            for batch in 0..=1100 {
                for wait in -2..=42 {
                    let mut st = s.defaults(0);
                    for (i, g) in ["A", "B", "C"].iter().enumerate() {
                        st.gates.insert((*g).into(), mask >> i & 1 == 1);
                    }
                    st.tunables.insert("batch".into(), TunableValue::Int(batch));
                    st.tunables.insert("wait".into(), TunableValue::Int(wait));
                    if s.is_valid(&st) {
                        brute += 1;
                        grid.insert((batch, wait));
                    }
                }
            }
        }
        assert_eq!(s.census().unwrap().states, brute);
        assert!(brute > 0);
        assert!(
            grid.iter()
                .all(|(b, w)| b % 100 == 0 && (100..=1000).contains(b) && w % 5 == 0),
            "a value off the grid was valid"
        );
        assert_eq!(grid.len(), 10 * 9);
    }
}
