//! The allocation cache: for each Fleet, the GameServers an allocation may pick (Ready and
//! Allocated), those held by an allocation between its pick and its commit, and how many of the
//! Fleet's servers are in each state. Each Fleet's [`FleetPool`] has its own lock, so a pick
//! never takes the world's lock, and picks from different Fleets never meet.
//!
//! This follows Agones' allocator (`pkg/gameserverallocations`): `AllocationCache` in
//! `allocation_cache.go` keeps the Ready and Allocated GameServers
//! (`readyOrAllocatedGameServerMatcher`), fed by the informer's updates; `ListenAndAllocate` in
//! `allocator.go` picks from it and takes the pick out of the cache (`RemoveGameServer`, a
//! conflict when it is already gone) before `applyAllocationToGameServer` updates it, and puts
//! it back (`AddGameServer`) when that update fails for a reason other than a conflict.
//!
//! Lock order: the world's lock, then one pool's. The world updates a pool (holding both)
//! whenever one of its servers changes; a pick takes pools' locks only (several, in key order,
//! for a selector that names no Fleet), and so does releasing a hold. Nothing takes the world's
//! lock while holding a pool's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use upsoak_agones::{FLEET_LABEL, GameServer, GameServerState};

use crate::selector::Selector;

use super::Key;

/// Every Fleet's pool, by (namespace, fleet).
pub(super) struct Pools {
    by_fleet: RwLock<BTreeMap<Key, Arc<FleetPool>>>,
    seed: u64,
}

/// One Fleet's allocatable servers and state counts, behind the Fleet's own lock.
pub(super) struct FleetPool {
    inner: Mutex<PoolState>,
}

struct PoolState {
    /// Pickable servers in Ready, by name, as the world has them now.
    ready: BTreeMap<String, Arc<GameServer>>,
    /// Pickable servers in Allocated (for selectors with `gameServerState: Allocated`).
    allocated: BTreeMap<String, Arc<GameServer>>,
    /// Picked by an allocation that has not committed or given up: in no candidate list, so
    /// no other allocation picks it. The value follows the world's changes (`None` once the
    /// server left Ready and Allocated, or was deleted), so a release puts it back where the
    /// world has it.
    held: HashMap<String, Option<Arc<GameServer>>>,
    /// The Fleet's servers in each state, indexed as [`GameServerState::ALL`].
    counts: [i32; GameServerState::ALL.len()],
    rng: StdRng,
}

fn index(s: GameServerState) -> usize {
    GameServerState::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or_default()
}

/// A pool's lock; a panic while holding it leaves plain maps behind, still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PoolState {
    fn candidates(&mut self, s: GameServerState) -> Option<&mut BTreeMap<String, Arc<GameServer>>> {
        match s {
            GameServerState::Ready => Some(&mut self.ready),
            GameServerState::Allocated => Some(&mut self.allocated),
            _ => None,
        }
    }

    /// Puts a released server back among the candidates of its state, if it has one.
    fn place(&mut self, name: String, gs: Arc<GameServer>) {
        if let Some(map) = gs.state().and_then(|s| self.candidates(s)) {
            map.insert(name, gs);
        }
    }
}

impl Pools {
    pub(super) fn new(seed: u64) -> Pools {
        Pools {
            by_fleet: RwLock::new(BTreeMap::new()),
            seed,
        }
    }

    /// The pool of Fleet `key`, created empty the first time.
    pub(super) fn pool(&self, key: &Key) -> Arc<FleetPool> {
        if let Some(p) = self
            .by_fleet
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return p.clone();
        }
        let mut map = self
            .by_fleet
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let seed =
            self.seed ^ upsoak_common::fnv::fnv1a64(format!("{}/{}", key.0, key.1).as_bytes());
        map.entry(key.clone())
            .or_insert_with(|| {
                Arc::new(FleetPool {
                    inner: Mutex::new(PoolState {
                        ready: BTreeMap::new(),
                        allocated: BTreeMap::new(),
                        held: HashMap::new(),
                        counts: [0; GameServerState::ALL.len()],
                        rng: StdRng::seed_from_u64(seed),
                    }),
                })
            })
            .clone()
    }

    /// Servers held by an allocation between its pick and its commit, in every pool.
    pub(super) fn holds(&self) -> usize {
        let pools: Vec<Arc<FleetPool>> = self
            .by_fleet
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        pools.iter().map(|p| lock(&p.inner).held.len()).sum()
    }

    /// Forgets a deleted Fleet's pool (its servers are gone; a hold on one releases into it).
    pub(super) fn forget(&self, key: &Key) {
        self.by_fleet
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Picks a candidate for the first selector that has one and holds it until the returned
    /// [`Hold`] commits or drops. Packed picks at random among the first `window` matches in
    /// name order, Distributed (`window` = `usize::MAX`) among all of them.
    pub(super) fn pick(
        &self,
        ns: &str,
        selectors: &[(Selector, GameServerState)],
        window: usize,
    ) -> Option<Hold> {
        for (sel, state) in selectors {
            let pools: Vec<Arc<FleetPool>> = {
                let map = self.by_fleet.read().unwrap_or_else(PoisonError::into_inner);
                match sel.equality(FLEET_LABEL) {
                    Some(f) => map
                        .get(&(ns.to_owned(), f.to_owned()))
                        .cloned()
                        .into_iter()
                        .collect(),
                    None => map
                        .iter()
                        .filter(|((n, _), _)| n == ns)
                        .map(|(_, p)| p.clone())
                        .collect(),
                }
            };
            // Several pools are locked together, in key order, so the pick is one atomic
            // choice among all of them (the world never holds two pools' locks).
            let mut guards: Vec<MutexGuard<'_, PoolState>> =
                pools.iter().map(|p| lock(&p.inner)).collect();
            let n = matching(&guards, sel, *state).take(window).count();
            let Some(first) = guards.first_mut() else {
                continue;
            };
            if n == 0 {
                continue;
            }
            let at = first.rng.random_range(0..n);
            let Some((i, name)) = matching(&guards, sel, *state)
                .nth(at)
                .map(|(i, name)| (i, name.clone()))
            else {
                continue;
            };
            let g = &mut guards[i];
            let gs = g.candidates(*state).and_then(|m| m.remove(&name))?;
            g.held.insert(name.clone(), Some(gs));
            return Some(Hold {
                pool: pools[i].clone(),
                key: (ns.to_owned(), name),
                expected: *state,
                open: true,
            });
        }
        None
    }
}

/// The candidates in state `state` that `sel` matches, pool by pool, each in name order.
fn matching<'a>(
    guards: &'a [MutexGuard<'_, PoolState>],
    sel: &'a Selector,
    state: GameServerState,
) -> impl Iterator<Item = (usize, &'a String)> + 'a {
    guards.iter().enumerate().flat_map(move |(i, g)| {
        let map = match state {
            GameServerState::Ready => Some(&g.ready),
            GameServerState::Allocated => Some(&g.allocated),
            _ => None,
        };
        map.into_iter()
            .flatten()
            .filter(|(_, gs)| sel.matches(gs.metadata.labels.as_ref()))
            .map(move |(name, _)| (i, name))
    })
}

impl FleetPool {
    /// Follows a change of one of the Fleet's servers: `before` is the state it was counted in
    /// (`None` when new), `after` the server now (`None` when deleted).
    pub(super) fn update(
        &self,
        name: &str,
        before: Option<GameServerState>,
        after: Option<&Arc<GameServer>>,
    ) {
        let mut p = lock(&self.inner);
        let now = after.and_then(|g| g.state());
        if let Some(s) = before {
            p.counts[index(s)] -= 1;
        }
        if let Some(s) = now {
            p.counts[index(s)] += 1;
        }
        if let Some(h) = p.held.get_mut(name) {
            *h = after
                .filter(|g| {
                    matches!(
                        g.state(),
                        Some(GameServerState::Ready | GameServerState::Allocated)
                    )
                })
                .cloned();
            return;
        }
        if let Some(s) = before
            && before != now
            && let Some(map) = p.candidates(s)
        {
            map.remove(name);
        }
        if let (Some(s), Some(g)) = (now, after)
            && let Some(map) = p.candidates(s)
        {
            match map.get_mut(name) {
                Some(slot) => *slot = g.clone(),
                None => {
                    map.insert(name.to_owned(), g.clone());
                }
            }
        }
    }

    /// How many of the Fleet's servers are in each state.
    pub(super) fn counts(&self) -> StateCounts {
        StateCounts(lock(&self.inner).counts)
    }

    /// Ends a hold: back among the candidates where the world has the server now.
    fn release(&self, name: &str) {
        let mut p = lock(&self.inner);
        if let Some(Some(gs)) = p.held.remove(name) {
            p.place(name.to_owned(), gs);
        }
    }

    /// Ends a hold whose commit goes ahead: the world's update that follows places the server.
    fn unhold(&self, name: &str) {
        lock(&self.inner).held.remove(name);
    }
}

/// A Fleet's servers per state.
#[derive(Clone, Copy, Debug)]
pub(super) struct StateCounts([i32; GameServerState::ALL.len()]);

impl StateCounts {
    pub(super) fn get(&self, s: GameServerState) -> i32 {
        self.0[index(s)]
    }

    /// Servers that count towards the Fleet's replicas: all but the failed and finished.
    pub(super) fn alive(&self) -> i32 {
        self.0.iter().sum::<i32>()
            - self.get(GameServerState::Shutdown)
            - self.get(GameServerState::Error)
            - self.get(GameServerState::Unhealthy)
    }
}

/// A server picked for one allocation and held out of every other pick until it is committed
/// ([`Hold::commit`]) or dropped; dropping it (an allocation that loses its race, or whose
/// client went away between pick and commit) puts the server back.
pub struct Hold {
    pool: Arc<FleetPool>,
    key: Key,
    expected: GameServerState,
    open: bool,
}

impl Hold {
    /// (namespace, name) of the held server.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The state it was picked in; the commit goes ahead only if it is still in it.
    pub fn expected(&self) -> GameServerState {
        self.expected
    }

    /// Ends the hold for a commit that goes ahead (call with the world's lock held, before the
    /// world's update that moves the server).
    pub(super) fn commit(mut self) {
        self.open = false;
        self.pool.unhold(&self.key.1);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.open {
            self.pool.release(&self.key.1);
        }
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("open", &self.open)
            .finish()
    }
}
