//! Allocation inside the world: pick a candidate and hold it, then commit it if it is still
//! what was picked. The API's handler (`api/allocation.rs`) runs the retry loop around these.

use std::collections::BTreeSet;
use std::time::Instant;

use rand::RngExt;
use upsoak_agones::{FLEET_LABEL, GameServer, GameServerAllocation, GameServerState};

use crate::events;
use crate::selector::Selector;

use super::{Key, World, fleet_of};

impl World {
    pub(super) fn count_allocation(&mut self, key: &Key) {
        let Some(fleet) = self
            .gameservers
            .get(key)
            .and_then(|r| fleet_of(&r.obj).map(str::to_owned))
        else {
            return;
        };
        events::GameServerAllocated {
            namespace: &key.0,
            fleet: &fleet,
        }
        .emit(&self.metrics);
        if let Some(f) = self.fleets.get_mut(&(key.0.clone(), fleet)) {
            f.allocations += 1;
        }
    }

    // ----- allocation -----

    /// Picks a candidate for `gsa` and holds it for this allocation until
    /// [`World::commit_allocation`]: the first selector with a match wins; Packed picks among
    /// the first `pick_window` matches, Distributed among all.
    pub fn pick_for_allocation(
        &mut self,
        ns: &str,
        gsa: &GameServerAllocation,
        selectors: &[(Selector, GameServerState)],
    ) -> Option<(Key, GameServerState)> {
        let distributed = gsa.spec.scheduling.as_deref() == Some("Distributed");
        let window = if distributed {
            usize::MAX
        } else {
            self.cfg.allocation.pick_window
        };
        for (sel, state) in selectors {
            let mut found: Vec<&String> = Vec::new();
            if *state == GameServerState::Ready {
                let pools: Vec<&BTreeSet<String>> = match sel.equality(FLEET_LABEL) {
                    Some(f) => self
                        .ready
                        .get(&(ns.to_owned(), f.to_owned()))
                        .into_iter()
                        .collect(),
                    None => self
                        .ready
                        .iter()
                        .filter(|((n, _), _)| n == ns)
                        .map(|(_, s)| s)
                        .collect(),
                };
                'pools: for pool in pools {
                    for name in pool {
                        let k = (ns.to_owned(), name.clone());
                        if !self.in_flight.contains(&k)
                            && let Some(r) = self.gameservers.get(&k)
                            && sel.matches(r.obj.metadata.labels.as_ref())
                        {
                            found.push(name);
                            if found.len() >= window {
                                break 'pools;
                            }
                        }
                    }
                }
            } else {
                for ((n, name), r) in &self.gameservers {
                    if n == ns
                        && r.obj.state() == Some(*state)
                        && !self.in_flight.contains(&(n.clone(), name.clone()))
                        && sel.matches(r.obj.metadata.labels.as_ref())
                    {
                        found.push(name);
                        if found.len() >= window {
                            break;
                        }
                    }
                }
            }
            if !found.is_empty() {
                let i = self.rng.random_range(0..found.len());
                let key = (ns.to_owned(), found[i].clone());
                self.in_flight.insert(key.clone());
                return Some((key, *state));
            }
        }
        None
    }

    /// Takes a picked candidate if it is still in `expected` state; `None` when it changed
    /// (deleted, failed, allocated through its SDK) since the pick.
    pub fn commit_allocation(
        &mut self,
        key: &Key,
        expected: GameServerState,
        gsa: &GameServerAllocation,
    ) -> Option<GameServer> {
        self.in_flight.remove(key);
        let state = self.gameservers.get(key)?.obj.state()?;
        if state != expected {
            return None;
        }
        if let Some(meta) = &gsa.spec.metadata
            && let Some(rec) = self.gameservers.get_mut(key)
        {
            for (k, v) in meta.labels.iter().flatten() {
                rec.obj
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
            for (k, v) in meta.annotations.iter().flatten() {
                rec.obj
                    .metadata
                    .annotations
                    .get_or_insert_default()
                    .insert(k.clone(), v.clone());
            }
        }
        let now = Instant::now();
        if state == GameServerState::Allocated {
            self.touch_gameserver(key);
        } else {
            self.set_state(key, GameServerState::Allocated, now);
        }
        self.count_allocation(key);
        self.gameservers.get(key).map(|r| r.obj.clone())
    }
}
