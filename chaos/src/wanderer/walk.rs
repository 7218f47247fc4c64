//! The Wanderer's walk: from a seed, a sequence of valid states joined by valid transitions.
//!
//! Each step draws from its own generator, seeded by (seed, step), so a walk resumed after a
//! crash at step N makes the same choice at N+1 as it would have without the crash, given the
//! same current state and coverage.
//!
//! The generator is ChaCha8 from the `chacha20` crate, seeded with explicit bytes: a named,
//! portable algorithm, unlike `rand`'s `StdRng`, which "may be changed in any release" and
//! would silently change every recorded walk.
//!
//! - `random`: uniform over the sampled valid neighbours.
//! - `coverage`: the sampled neighbour that adds the most uncovered pairs (version from→to,
//!   gate×version value, gate×gate values), ties broken at random: pairwise coverage in fewer
//!   steps, as combinatorial testing tools (PICT) do.

use std::collections::BTreeSet;

use chacha20::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use upsoak_agones::release::Install;

use super::space::{Space, Stage, State, TunableSpec, TunableValue};

/// The walk, as the Wanderer's loop needs it: deterministic from its seed and what it was told.
/// [`Walk`] is the real one; tests plan fixed cycles.
pub trait Planner: Send {
    /// Seed, strategy name and a hash of the configuration space, journalled on the first line.
    fn identity(&self) -> (u64, String, String);
    /// The target of step `step`, starting from `current` (what is observed installed).
    fn next(&mut self, step: u64, current: &Install) -> Install;
    /// Tells the walk a transition happened (for coverage); called on replay too.
    fn record(&mut self, from: &Install, to: &Install);
    /// Coverage ratios by kind (`version_pairs`, `gate_version`, `gate_pairs`), 0..=1.
    fn coverage(&self) -> Vec<(&'static str, f64)>;
}

/// How the next state is chosen.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Strategy {
    /// Uniform over the valid neighbours.
    Random,
    /// The valid neighbour adding the most uncovered pairs (version hops, gate×version,
    /// gate×gate), ties broken at random.
    Coverage,
}

impl TryFrom<String> for Strategy {
    type Error = String;
    fn try_from(s: String) -> Result<Strategy, String> {
        match s.as_str() {
            "random" => Ok(Strategy::Random),
            "coverage" => Ok(Strategy::Coverage),
            other => Err(format!("`{other}` is not random or coverage")),
        }
    }
}

impl Strategy {
    /// The name journalled and exported.
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
    /// Exact (every valid state enumerated) when the space is small enough, as the shipped one
    /// is; otherwise estimated from random states, and then a ratio may pass 1.
    pub fn new(space: &Space) -> Coverage {
        let (inhabited, reach_gv, reach_gp) = match space.census() {
            Some(c) => (c.inhabited, c.gate_version, c.gate_pairs),
            None => sample_reachable(space),
        };
        let total_versions = (0..space.versions.len())
            .filter(|&v| inhabited[v])
            .map(|v| {
                space
                    .reachable_versions(v)
                    .into_iter()
                    .filter(|&w| w != v && inhabited[w])
                    .count()
            })
            .sum();
        Coverage {
            total_versions,
            total_gate_version: reach_gv.len(),
            total_gate_pairs: reach_gp.len(),
            ..Coverage::default()
        }
    }

    /// The same totals with nothing covered yet, for another walk over the same space without
    /// enumerating it again.
    pub fn fresh(&self) -> Coverage {
        Coverage {
            total_versions: self.total_versions,
            total_gate_version: self.total_gate_version,
            total_gate_pairs: self.total_gate_pairs,
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

/// Versions with a valid state, and the pairs found, from random states of each version.
fn sample_reachable(space: &Space) -> (Vec<bool>, BTreeSet<GateVersion>, BTreeSet<GatePair>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut inhabited = vec![false; space.versions.len()];
    let mut reach_gv = BTreeSet::new();
    let mut reach_gp = BTreeSet::new();
    for (v, seen) in inhabited.iter_mut().enumerate() {
        for _ in 0..4000 {
            let s = random_state(space, v, &mut rng);
            if space.holds_constraints(&s) {
                *seen = true;
                reach_gv.extend(gate_version(space, &s));
                reach_gp.extend(gate_pairs(space, &s));
            }
        }
    }
    (inhabited, reach_gv, reach_gp)
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

/// A value of `t` drawn uniformly from its values: for a range, one of its step grid.
fn random_value(t: &TunableSpec, rng: &mut ChaCha8Rng) -> TunableValue {
    match t {
        // Step 1 draws exactly as before steps existed: recorded walks stay the same.
        TunableSpec::Range { min, max, step: 1 } => {
            TunableValue::Int(rng.random_range(*min..=*max))
        }
        TunableSpec::Range { min, max, step } => {
            // The loader guarantees step ≥ 1 and max − min a multiple of it; i128 because the
            // span may exceed i64.
            let st = i128::from(*step).max(1);
            let n = ((i128::from(*max) - i128::from(*min)) / st) as u64;
            let k = i128::from(rng.random_range(0..=n));
            TunableValue::Int((i128::from(*min) + k * st) as i64)
        }
        TunableSpec::Enum { values } => {
            TunableValue::Str(values[rng.random_range(0..values.len().max(1))].clone())
        }
    }
}

/// A state of version `v` with every non-Stable gate and tunable at random.
fn random_state(space: &Space, v: usize, rng: &mut ChaCha8Rng) -> State {
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

/// The generator of step `step` of the walk seeded `seed`. The schedule's jitter draws from the
/// same seeding (on its own ChaCha stream, so it never shifts the walk's draws): a replay waits
/// exactly as the original did, whatever `rand` release is linked.
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    // splitmix64 over (seed, step): independent, reproducible streams per step, expanded to
    // ChaCha's 32-byte key by hand so no library default decides the seed.
    let mut z = seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(x ^ (x >> 31)).to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// A seeded walk over a space.
#[derive(Clone, Debug)]
pub struct Walk {
    space: Space,
    seed: u64,
    strategy: Strategy,
    coverage: Coverage,
    /// Per version, the gates it lets vary (not Stable), in name order.
    free: Vec<Vec<String>>,
}

impl Walk {
    pub fn new(space: Space, seed: u64, strategy: Strategy) -> Walk {
        let coverage = Coverage::new(&space);
        Walk::with_coverage(space, seed, strategy, coverage)
    }

    /// A walk whose coverage starts from `coverage` (e.g. [`Coverage::fresh`] of another walk
    /// over the same space), which skips counting the space's pairs again.
    pub fn with_coverage(space: Space, seed: u64, strategy: Strategy, coverage: Coverage) -> Walk {
        let free = space
            .versions
            .iter()
            .map(|v| {
                v.gates
                    .iter()
                    .filter(|(_, st)| **st != Stage::Stable)
                    .map(|(g, _)| g.clone())
                    .collect()
            })
            .collect();
        Walk {
            free,
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

    fn rng(&self, step: u64) -> ChaCha8Rng {
        step_rng(self.seed, step)
    }

    /// `from` moved to version `v`: gates keep their values where `v` lets them vary, the
    /// others take `v`'s defaults; tunables are kept.
    fn moved(&self, from: &State, v: usize) -> State {
        let mut s = self.space.defaults(v);
        for g in &self.free[v] {
            if let (Some(on), Some(was)) = (s.gates.get_mut(g), from.gates.get(g)) {
                *on = *was;
            }
        }
        s.tunables.clone_from(&from.tunables);
        s
    }

    /// Valid neighbours of `from`, drawn with `rng`, without duplicates, in draw order.
    fn candidates(&self, from: &State, rng: &mut ChaCha8Rng) -> Vec<State> {
        // `from` is checked once here rather than once per candidate; the version is drawn
        // within the hop, so a candidate only needs to be a valid state other than `from`.
        if !self.space.is_valid(from) {
            return Vec::new();
        }
        let versions = self.space.reachable_versions(from.version);
        let mut out: Vec<State> = Vec::new();
        for _ in 0..SAMPLES {
            let v = versions[rng.random_range(0..versions.len())];
            let mut s = if v == from.version {
                from.clone()
            } else {
                self.moved(from, v)
            };
            let free = &self.free[v];
            for _ in 0..rng.random_range(0..=3usize) {
                if let Some(g) = free.get(rng.random_range(0..free.len().max(1)))
                    && let Some(on) = s.gates.get_mut(g)
                {
                    *on = !*on;
                }
            }
            if !self.space.tunables.is_empty() && rng.random_bool(0.3) {
                let i = rng.random_range(0..self.space.tunables.len());
                if let Some((t, spec)) = self.space.tunables.iter().nth(i)
                    && let Some(value) = s.tunables.get_mut(t)
                {
                    *value = random_value(spec, rng);
                }
            }
            // A linear scan: at most SAMPLES states, cheaper than hashing or cloning into a set.
            if s != *from && !out.contains(&s) && self.space.is_valid(&s) {
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
        match self.space.start() {
            Some(start) => self.plan_from(start, steps),
            None => Vec::new(),
        }
    }

    /// The first `steps` states of the walk from `start`, recording each; just `start` when it
    /// is not a valid state.
    pub fn plan_from(&mut self, start: State, steps: u64) -> Vec<State> {
        let mut cur = start;
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
        let Some(from) = state_of(&self.space, current, &start) else {
            return install(&self.space, &start);
        };
        match self.choose(step, &from) {
            Some(to) => install(&self.space, &to),
            None => install(&self.space, &from),
        }
    }

    fn record(&mut self, from: &Install, to: &Install) {
        let start = self.space.start().unwrap_or_else(|| self.space.defaults(0));
        if let (Some(a), Some(b)) = (
            state_of(&self.space, from, &start),
            state_of(&self.space, to, &start),
        ) {
            self.record_states(&a, &b);
        }
    }

    fn coverage(&self) -> Vec<(&'static str, f64)> {
        self.coverage.ratios()
    }
}

/// What to install for `s`: the version and every gate's value.
pub fn install(space: &Space, s: &State) -> Install {
    Install {
        version: space.versions[s.version].name.clone(),
        feature_gates: s.gates.clone(),
        tunables: s.tunables.clone(),
    }
}

/// The state an observed install is in, when it is a point of `space`: gates the install does
/// not report take their defaults, tunables it does not report keep `fallback`'s. An integer
/// the cluster holds off the tunable's step grid or outside its range (set by hand, or by an
/// older space) counts as the nearest grid value, so the walk goes on from the closest point of
/// the space; a word the enum does not list counts as `fallback`'s. The journal and the
/// transition's `from` keep the value as observed.
fn state_of(space: &Space, i: &Install, fallback: &State) -> Option<State> {
    let v = space.versions.iter().position(|x| x.name == i.version)?;
    let mut s = space.defaults(v);
    for (g, on) in &i.feature_gates {
        if s.gates.contains_key(g) {
            s.gates.insert(g.clone(), *on);
        }
    }
    for (t, spec) in &space.tunables {
        let val = match (spec, i.tunables.get(t)) {
            (TunableSpec::Range { .. }, Some(TunableValue::Int(x))) => {
                spec.nearest(*x).map(TunableValue::Int)
            }
            (TunableSpec::Enum { values }, Some(v @ TunableValue::Str(x)))
                if values.contains(x) =>
            {
                Some(v.clone())
            }
            _ => None,
        }
        .or_else(|| fallback.tunables.get(t).cloned());
        if let Some(val) = val {
            s.tunables.insert(t.clone(), val);
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Space {
        Space::parse(include_str!("../../spaces/agones.yaml"), "agones.yaml").unwrap()
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
        let started = std::time::Instant::now();
        for step in 1..=100_000u64 {
            let next = walk.choose(step, &cur).expect("a valid neighbour exists");
            if let Some(why) = space.why_invalid_transition(&cur, &next) {
                panic!("step {step}: {why}\n{cur:?}\n-> {next:?}");
            }
            versions_seen.insert(next.version);
            cur = next;
        }
        assert_eq!(versions_seen.len(), space.versions.len());
        println!("100,000 transitions checked in {:?}", started.elapsed());
    }

    #[test]
    fn a_stepped_tunable_walks_only_its_grid_and_an_unstepped_one_as_before() {
        let space = shipped();
        assert_eq!(
            space.tunables["allocationBatchWaitTime"].to_string(),
            "100..=1000 step 100"
        );
        for strategy in [Strategy::Random, Strategy::Coverage] {
            let walk = Walk::new(space.clone(), 5, strategy);
            let mut cur = space.start().unwrap();
            let mut seen = BTreeSet::new();
            for step in 1..=5000u64 {
                cur = walk.choose(step, &cur).unwrap();
                let TunableValue::Int(w) = cur.tunables["allocationBatchWaitTime"] else {
                    panic!("{cur:?}")
                };
                assert!(
                    w % 100 == 0 && (100..=1000).contains(&w),
                    "step {step}: {w}"
                );
                seen.insert(w);
            }
            // Every value of the grid, each visited again and again.
            assert_eq!(seen.len(), 10, "{strategy:?}: {seen:?}");
        }
        // Without `step` a range draws exactly as before steps existed: the batch waits of
        // seed 42's random walk over the previous shipped space (every integer 100..=1000).
        let unstepped = include_str!("../../spaces/agones.yaml").replace("    step: 100\n", "");
        let unstepped = Space::parse(&unstepped, "unstepped.yaml").unwrap();
        let mut waits: Vec<i64> = Vec::new();
        for s in Walk::new(unstepped, 42, Strategy::Random).plan(200) {
            if let TunableValue::Int(w) = s.tunables["allocationBatchWaitTime"]
                && waits.last() != Some(&w)
            {
                waits.push(w);
            }
        }
        assert_eq!(
            waits[..12],
            [100, 860, 611, 146, 823, 758, 270, 143, 177, 702, 399, 686]
        );
    }

    #[test]
    fn an_observed_value_off_the_grid_walks_on_from_the_nearest_grid_value() {
        let space = shipped();
        let mut walk = Walk::new(space.clone(), 3, Strategy::Coverage);
        let start = space.start().unwrap();
        let mut seen = install(&space, &start);
        // Set by hand on the cluster: off the grid, and past the range.
        seen.tunables
            .insert("allocationBatchWaitTime".into(), TunableValue::Int(450));
        seen.tunables
            .insert("allocatorReplicas".into(), TunableValue::Int(9));
        seen.tunables
            .insert("logLevel".into(), TunableValue::from("trace"));
        let from = state_of(&space, &seen, &start).unwrap();
        assert_eq!(
            from.tunables["allocationBatchWaitTime"],
            TunableValue::Int(400)
        );
        assert_eq!(from.tunables["allocatorReplicas"], TunableValue::Int(5));
        assert_eq!(from.tunables["logLevel"], start.tunables["logLevel"]);
        assert!(space.is_valid(&from));
        let mut off = start.clone();
        off.tunables
            .insert("allocationBatchWaitTime".into(), TunableValue::Int(450));
        assert_eq!(
            space.why_invalid(&off).as_deref(),
            Some(
                "tunable `allocationBatchWaitTime`: 450 is off the step grid of 100..=1000 step 100 (nearest values 400 and 500)"
            )
        );
        // The walk's next target is a valid state of the space, not a repeat of the off value.
        for step in 1..=20 {
            let target = walk.next(step, &seen);
            let to = state_of(&space, &target, &start).unwrap();
            assert_eq!(to.tunables, target.tunables, "a target is on the grid");
            assert!(space.is_valid(&to), "{target:?}");
        }
    }

    #[test]
    fn a_walk_can_start_elsewhere() {
        let space = shipped();
        let start = space.defaults(3);
        let states = Walk::new(space.clone(), 9, Strategy::Random).plan_from(start.clone(), 20);
        assert_eq!(states[0], start);
        assert_eq!(states.len(), 21);
        let mut bad = space.defaults(3);
        bad.gates.insert("Example".into(), true);
        assert_eq!(
            Walk::new(space, 9, Strategy::Random)
                .plan_from(bad, 5)
                .len(),
            1
        );
    }

    #[test]
    fn a_space_too_large_to_enumerate_still_walks_on_estimated_totals() {
        let gates: Vec<String> = (0..23).map(|i| format!("G{i:02}: Alpha")).collect();
        let text = format!(
            "versions:\n  - {{ version: 1.0.0, gates: {{ {} }} }}\n  - {{ version: 1.1.0, gates: {{ {} }} }}\nhops: {{ max_up: 1, max_down: 1, allow_downgrade: false }}\nconstraints: [ \"IF gate:G00 THEN NOT gate:G01\" ]\n",
            gates.join(", "),
            gates.join(", ")
        );
        let space = Space::parse(&text, "big").unwrap();
        assert!(space.census().is_none());
        let mut walk = Walk::new(space.clone(), 3, Strategy::Coverage);
        // One version hop exists (1.0 → 1.1, no downgrades); every gate value and every pair
        // but G00 on with G01 on, found by sampling.
        assert_eq!(
            walk.coverage().counts().map(|(_, _, t)| t),
            [1, 2 * 23 * 2, 253 * 4 - 1]
        );
        let states = walk.plan(50);
        assert_eq!(states.len(), 51);
        for w in states.windows(2) {
            assert_eq!(space.why_invalid_transition(&w[0], &w[1]), None);
        }
    }

    /// Steps until every reachable pair is covered, or `limit`.
    fn steps_to_full(totals: &Coverage, seed: u64, strategy: Strategy, limit: u64) -> u64 {
        let mut walk = Walk::with_coverage(shipped(), seed, strategy, totals.fresh());
        let mut cur = walk.space().start().unwrap();
        for step in 1..=limit {
            let next = walk.choose(step, &cur).unwrap();
            walk.record_states(&cur, &next);
            cur = next;
            for (kind, ratio) in walk.coverage().ratios() {
                // Exact totals: a walk can never cover more than exists.
                assert!(ratio <= 1.0, "{kind} at {ratio} after step {step}");
            }
            if walk.coverage().complete() {
                return step;
            }
        }
        limit
    }

    #[test]
    fn coverage_reaches_full_pairwise_coverage_in_fewer_steps_than_random() {
        let totals = Coverage::new(&shipped());
        assert_eq!(
            totals.counts().map(|(k, _, t)| (k, t)),
            // 6 versions, hops of 2 both ways: 2+3+4+4+3+2 ordered version pairs. Free gates
            // 13·4 + 11 + 10 = 73, each on and off, less Example and ProcessorAllocator (Dev
            // gates) on in each version: 134. 13 gate names, 78 pairs × 4 values, less the 24
            // with Example on, the 23 more with ProcessorAllocator on, and PlayerAllocationFilter
            // on with PlayerTracking off: 264.
            [
                ("version_pairs", 18),
                ("gate_version", 134),
                ("gate_pairs", 264)
            ]
        );
        let seeds = 1..=10u64;
        let limit = 5000;
        let cov: Vec<u64> = seeds
            .clone()
            .map(|s| steps_to_full(&totals, s, Strategy::Coverage, limit))
            .collect();
        let rnd: Vec<u64> = seeds
            .map(|s| steps_to_full(&totals, s, Strategy::Random, limit))
            .collect();
        println!("steps to full pairwise coverage: coverage {cov:?}, random {rnd:?}");
        assert!(
            cov.iter().chain(&rnd).all(|s| *s < limit),
            "a walk never completed: coverage {cov:?}, random {rnd:?}"
        );
        let (c, r) = (cov.iter().sum::<u64>(), rnd.iter().sum::<u64>());
        // Not merely fewer on average: at least twice as fast, as PICT-style greedy choice should be.
        assert!(2 * c < r, "coverage {cov:?} vs random {rnd:?}");
    }
}
