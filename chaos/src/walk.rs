//! The Wanderer's walk: from a seed, a sequence of valid states joined by valid transitions.
//!
//! Each step draws from its own generator, seeded by (seed, step), so a walk resumed after a
//! crash at step N makes the same choice at N+1 as it would have without the crash, given the
//! same current state and coverage.
//!
//! - `random`: uniform over the sampled valid neighbours.
//! - `coverage`: the sampled neighbour that adds the most uncovered pairs (version from→to,
//!   gate×version value, gate×gate values), ties broken at random: pairwise coverage in fewer
//!   steps, as combinatorial testing tools (PICT) do.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::apply::Install;
use crate::runner::Planner;
use crate::space::{Space, Stage, State, Tunable, Value};

/// How the next state is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Random,
    Coverage,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "random" => Some(Strategy::Random),
            "coverage" => Some(Strategy::Coverage),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::Coverage => "coverage",
        }
    }
}

/// Neighbours drawn per step; the valid ones are the candidates.
const SAMPLES: usize = 48;

type GateVersion = (usize, String, bool);
type GatePair = (String, bool, String, bool);

/// Pairs covered so far, and how many can be covered at all.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    versions: BTreeSet<(usize, usize)>,
    gate_version: BTreeSet<GateVersion>,
    gate_pairs: BTreeSet<GatePair>,
    total_versions: usize,
    total_gate_version: usize,
    total_gate_pairs: usize,
}

impl Coverage {
    /// Counts the pairs reachable in `space`: a pair counts when some valid state has it.
    fn new(space: &Space) -> Coverage {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let mut reach_gv = BTreeSet::new();
        let mut reach_gp = BTreeSet::new();
        for v in 0..space.versions.len() {
            // Random valid states of each version find the reachable values and pairs.
            let mut found = 0;
            for _ in 0..400 {
                let s = random_state(space, v, &mut rng);
                if space.is_valid(&s) {
                    found += 1;
                    reach_gv.extend(gate_version(space, &s));
                    reach_gp.extend(gate_pairs(space, &s));
                }
            }
            let _ = found;
        }
        let total_versions = (0..space.versions.len())
            .map(|v| space.reachable_versions(v).len().saturating_sub(1))
            .sum();
        Coverage {
            total_versions,
            total_gate_version: reach_gv.len(),
            total_gate_pairs: reach_gp.len(),
            ..Coverage::default()
        }
    }

    /// Pairs `to` would add, arriving from `from`.
    fn gain(&self, space: &Space, from: &State, to: &State) -> usize {
        let v = usize::from(
            from.version != to.version && !self.versions.contains(&(from.version, to.version)),
        );
        let gv = gate_version(space, to)
            .filter(|t| !self.gate_version.contains(t))
            .count();
        let gp = gate_pairs(space, to)
            .filter(|t| !self.gate_pairs.contains(t))
            .count();
        v + gv + gp
    }

    fn record(&mut self, space: &Space, from: &State, to: &State) {
        if from.version != to.version {
            self.versions.insert((from.version, to.version));
        }
        self.gate_version
            .extend(gate_version(space, from).chain(gate_version(space, to)));
        self.gate_pairs
            .extend(gate_pairs(space, from).chain(gate_pairs(space, to)));
    }

    /// (kind, covered, total) for each kind of pair.
    pub fn counts(&self) -> [(&'static str, usize, usize); 3] {
        [
            ("version_pairs", self.versions.len(), self.total_versions),
            (
                "gate_version",
                self.gate_version.len(),
                self.total_gate_version,
            ),
            ("gate_pairs", self.gate_pairs.len(), self.total_gate_pairs),
        ]
    }

    /// Covered share of each kind, 0..=1.
    pub fn ratios(&self) -> Vec<(&'static str, f64)> {
        self.counts()
            .iter()
            .map(|(k, c, t)| (*k, if *t == 0 { 1.0 } else { *c as f64 / *t as f64 }))
            .collect()
    }

    /// True when every reachable pair of every kind is covered.
    pub fn complete(&self) -> bool {
        self.counts().iter().all(|(_, c, t)| c >= t)
    }
}

/// (version, gate, value) of each gate the version lets vary.
fn gate_version<'a>(space: &'a Space, s: &'a State) -> impl Iterator<Item = GateVersion> + 'a {
    let gates = &space.versions[s.version].gates;
    s.gates
        .iter()
        .filter(move |(g, _)| gates.get(*g) != Some(&Stage::Stable))
        .map(move |(g, on)| (s.version, g.clone(), *on))
}

/// Value pairs of the gates the state's version lets vary.
fn gate_pairs<'a>(space: &'a Space, s: &'a State) -> impl Iterator<Item = GatePair> + 'a {
    let gates = &space.versions[s.version].gates;
    let free: Vec<(&String, bool)> = s
        .gates
        .iter()
        .filter(|(g, _)| gates.get(*g) != Some(&Stage::Stable))
        .map(|(g, on)| (g, *on))
        .collect();
    let mut out = Vec::with_capacity(free.len() * free.len() / 2);
    for i in 0..free.len() {
        for j in i + 1..free.len() {
            out.push((free[i].0.clone(), free[i].1, free[j].0.clone(), free[j].1));
        }
    }
    out.into_iter()
}

fn random_value(t: &Tunable, rng: &mut StdRng) -> Value {
    match t {
        Tunable::Int { min, max } => Value::Int(rng.random_range(*min..=*max)),
        Tunable::Enum { values } => {
            Value::Str(values[rng.random_range(0..values.len().max(1))].clone())
        }
    }
}

/// A state of version `v` with every non-Stable gate and tunable at random.
fn random_state(space: &Space, v: usize, rng: &mut StdRng) -> State {
    let mut s = space.defaults(v);
    for (g, stage) in &space.versions[v].gates {
        if *stage != Stage::Stable {
            s.gates.insert(g.clone(), rng.random_bool(0.5));
        }
    }
    for (t, spec) in &space.tunables {
        s.tunables.insert(t.clone(), random_value(spec, rng));
    }
    s
}

/// A seeded walk over a space.
#[derive(Clone, Debug)]
pub struct Walk {
    space: Space,
    seed: u64,
    strategy: Strategy,
    coverage: Coverage,
}

impl Walk {
    pub fn new(space: Space, seed: u64, strategy: Strategy) -> Walk {
        let coverage = Coverage::new(&space);
        Walk {
            space,
            seed,
            strategy,
            coverage,
        }
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    fn rng(&self, step: u64) -> StdRng {
        // splitmix64 of (seed, step): independent, reproducible streams per step.
        let mut z = self.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        StdRng::seed_from_u64(z ^ (z >> 31))
    }

    /// Valid neighbours of `from`, drawn with `rng`, without duplicates, in draw order.
    fn candidates(&self, from: &State, rng: &mut StdRng) -> Vec<State> {
        let versions = self.space.reachable_versions(from.version);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for _ in 0..SAMPLES {
            let v = versions[rng.random_range(0..versions.len())];
            let mut s = self.space.defaults(v);
            // Gates keep their values across versions where they exist.
            for (g, on) in &from.gates {
                if self.space.versions[v]
                    .gates
                    .get(g)
                    .is_some_and(|st| *st != Stage::Stable)
                {
                    s.gates.insert(g.clone(), *on);
                }
            }
            s.tunables = from.tunables.clone();
            let free: Vec<String> = self.space.versions[v]
                .gates
                .iter()
                .filter(|(_, st)| **st != Stage::Stable)
                .map(|(g, _)| g.clone())
                .collect();
            for _ in 0..rng.random_range(0..=3usize) {
                if let Some(g) = free.get(rng.random_range(0..free.len().max(1))) {
                    let on = s.gates.get(g).copied().unwrap_or(false);
                    s.gates.insert(g.clone(), !on);
                }
            }
            if !self.space.tunables.is_empty() && rng.random_bool(0.3) {
                let i = rng.random_range(0..self.space.tunables.len());
                if let Some((t, spec)) = self.space.tunables.iter().nth(i) {
                    s.tunables.insert(t.clone(), random_value(spec, rng));
                }
            }
            if self.space.why_invalid_transition(from, &s).is_none() && seen.insert(s.clone()) {
                out.push(s);
            }
        }
        out
    }

    /// The state step `step` moves to from `from`; `None` when no valid neighbour was found.
    pub fn choose(&self, step: u64, from: &State) -> Option<State> {
        let mut rng = self.rng(step);
        let mut cands = self.candidates(from, &mut rng);
        if cands.is_empty() {
            return None;
        }
        match self.strategy {
            Strategy::Random => {
                let i = rng.random_range(0..cands.len());
                Some(cands.swap_remove(i))
            }
            Strategy::Coverage => {
                cands.shuffle(&mut rng);
                cands
                    .into_iter()
                    .enumerate()
                    .max_by_key(|(i, c)| (self.coverage.gain(&self.space, from, c), usize::MAX - i))
                    .map(|(_, c)| c)
            }
        }
    }

    /// Records that `from → to` happened.
    pub fn record_states(&mut self, from: &State, to: &State) {
        self.coverage.record(&self.space, from, to);
    }

    /// The first `steps` states of the walk from the space's start, recording each.
    pub fn plan(&mut self, steps: u64) -> Vec<State> {
        let Some(mut cur) = self.space.start() else {
            return Vec::new();
        };
        let mut out = vec![cur.clone()];
        for step in 1..=steps {
            let Some(next) = self.choose(step, &cur) else {
                break;
            };
            self.record_states(&cur, &next);
            out.push(next.clone());
            cur = next;
        }
        out
    }
}

impl Planner for Walk {
    fn identity(&self) -> (u64, String, String) {
        (
            self.seed,
            self.strategy.as_str().to_owned(),
            self.space.hash.clone(),
        )
    }

    fn next(&mut self, step: u64, current: &Install) -> Install {
        let start = self.space.start().unwrap_or_else(|| self.space.defaults(0));
        // An install outside the space (an unknown version) walks back to the start.
        let Some(from) = self.space.state_of(current, &start) else {
            return self.space.install(&start);
        };
        match self.choose(step, &from) {
            Some(to) => self.space.install(&to),
            None => self.space.install(&from),
        }
    }

    fn record(&mut self, from: &Install, to: &Install) {
        let start = self.space.start().unwrap_or_else(|| self.space.defaults(0));
        if let (Some(a), Some(b)) = (
            self.space.state_of(from, &start),
            self.space.state_of(to, &start),
        ) {
            self.record_states(&a, &b);
        }
    }

    fn coverage(&self) -> Vec<(&'static str, f64)> {
        self.coverage.ratios()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Space {
        Space::parse(include_str!("../spaces/agones.yaml"), "agones.yaml").unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_walk_and_another_seed_another() {
        for strategy in [Strategy::Random, Strategy::Coverage] {
            let a = Walk::new(shipped(), 42, strategy).plan(30);
            let b = Walk::new(shipped(), 42, strategy).plan(30);
            let c = Walk::new(shipped(), 43, strategy).plan(30);
            assert_eq!(a, b);
            assert_ne!(a, c);
            assert_eq!(a.len(), 31);
        }
    }

    #[test]
    fn every_generated_transition_is_valid_over_100k_steps() {
        let space = shipped();
        let walk = Walk::new(space.clone(), 7, Strategy::Random);
        let mut cur = space.start().unwrap();
        let mut versions_seen = BTreeSet::new();
        for step in 1..=100_000u64 {
            let next = walk.choose(step, &cur).expect("a valid neighbour exists");
            if let Some(why) = space.why_invalid_transition(&cur, &next) {
                panic!("step {step}: {why}\n{cur:?}\n-> {next:?}");
            }
            versions_seen.insert(next.version);
            cur = next;
        }
        assert_eq!(versions_seen.len(), space.versions.len());
    }

    /// Steps until every reachable pair is covered, or `limit`.
    fn steps_to_full(seed: u64, strategy: Strategy, limit: u64) -> u64 {
        let mut walk = Walk::new(shipped(), seed, strategy);
        let mut cur = walk.space().start().unwrap();
        for step in 1..=limit {
            let next = walk.choose(step, &cur).unwrap();
            walk.record_states(&cur, &next);
            cur = next;
            if walk.coverage().complete() {
                return step;
            }
        }
        limit
    }

    #[test]
    fn coverage_reaches_full_pairwise_coverage_in_fewer_steps_than_random() {
        let seeds = [1u64, 2, 3, 4, 5];
        let limit = 3000;
        let cov: Vec<u64> = seeds
            .iter()
            .map(|s| steps_to_full(*s, Strategy::Coverage, limit))
            .collect();
        let rnd: Vec<u64> = seeds
            .iter()
            .map(|s| steps_to_full(*s, Strategy::Random, limit))
            .collect();
        assert!(
            cov.iter().all(|s| *s < limit),
            "coverage never completed: {cov:?}"
        );
        let (c, r) = (cov.iter().sum::<u64>(), rnd.iter().sum::<u64>());
        assert!(c < r, "coverage {cov:?} vs random {rnd:?}");
    }
}
