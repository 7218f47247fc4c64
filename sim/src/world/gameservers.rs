//! GameServers: the store, the timers that move each server through its lifecycle, the state
//! machine, and injected failures. Every change also goes to the server's Fleet pool
//! (`ready.rs`), which allocation picks from.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rand::RngExt;
use upsoak_agones::{
    FLEET_LABEL, Fleet, GAMESERVERSET_LABEL, GameServer, GameServerState, GameServerStatus,
    GameServerStatusPort, NullableVec, metrics::NO_FLEET,
};

use crate::config::{FailureState, FaultKind};
use crate::events;
use crate::selector::Selector;
use crate::status::ApiError;

use super::{GsRecord, Key, NODE_NAME, World, fleet_of, now_ts};

impl World {
    // ----- GameServers -----

    pub fn get_gameserver(&self, ns: &str, name: &str) -> Result<GameServer, ApiError> {
        self.gameservers
            .get(&(ns.to_owned(), name.to_owned()))
            .map(|r| GameServer::clone(&r.obj))
            .ok_or_else(|| ApiError::not_found("gameservers.agones.dev", name))
    }

    /// GameServers in `ns` (or every namespace) matching `sel`.
    pub fn list_gameservers(&self, ns: Option<&str>, sel: &Selector) -> Vec<GameServer> {
        self.gameservers
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|x| x == n))
            .filter(|(_, r)| sel.matches(r.obj.metadata.labels.as_ref()))
            .map(|(_, r)| GameServer::clone(&r.obj))
            .collect()
    }

    /// Deletes a GameServer (its Fleet, if any, replaces it).
    pub fn delete_gameserver(&mut self, ns: &str, name: &str) -> Result<GameServer, ApiError> {
        let key = (ns.to_owned(), name.to_owned());
        self.remove_gameserver(&key)
            .ok_or_else(|| ApiError::not_found("gameservers.agones.dev", name))
    }

    pub(super) fn remove_gameserver(&mut self, key: &Key) -> Option<GameServer> {
        let rec = self.gameservers.remove(key)?;
        rec.pool.update(&key.1, rec.obj.state(), None);
        if let Some(d) = rec.due {
            self.timers.remove(&(d, key.clone()));
        }
        if let Some(f) = fleet_of(&rec.obj) {
            let fk = (key.0.clone(), f.to_owned());
            if let Some(m) = self.members.get_mut(&fk) {
                m.remove(&key.1);
            }
            self.dirty.insert(fk);
        }
        if let Some(token) = &rec.game {
            token.cancel();
        }
        let mut gs = Arc::unwrap_or_clone(rec.obj);
        gs.metadata.resource_version = Some(self.next_rv().to_string());
        self.emit("DELETED", gs.clone());
        Some(gs)
    }

    /// Creates a GameServer for `fleet` from its template.
    pub(super) fn spawn_gameserver(&mut self, ns: &str, fleet: &Fleet, now: Instant) {
        let fleet_name = fleet.metadata.name.clone().unwrap_or_default();
        let name = loop {
            let n = format!("{fleet_name}-{}", self.random_suffix());
            if !self.gameservers.contains_key(&(ns.to_owned(), n.clone())) {
                break n;
            }
        };
        let tmeta = fleet.spec.template.metadata.clone().unwrap_or_default();
        let mut labels = tmeta.labels.unwrap_or_default();
        labels.insert(FLEET_LABEL.to_owned(), fleet_name.clone());
        labels.insert(GAMESERVERSET_LABEL.to_owned(), format!("{fleet_name}-set"));
        let rv = self.next_rv();
        let meta = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.to_owned()),
            uid: Some(self.new_uid()),
            resource_version: Some(rv.to_string()),
            generation: Some(1),
            creation_timestamp: Some(now_ts()),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "agones.dev/v1".to_owned(),
                kind: "Fleet".to_owned(),
                name: fleet_name.clone(),
                uid: fleet.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        };
        let mut gs = GameServer::new(meta, fleet.spec.template.spec.clone());
        // Agones' defaulting leaves `ports` and `addresses` nil, which Go writes as `null`
        // (`pkg/apis/agones/v1/gameserver.go`, `GameServerStatus` has no `omitempty`), until
        // the server is scheduled.
        gs.status = Some(GameServerStatus {
            state: GameServerState::Creating,
            ports: NullableVec::nil(),
            address: String::new(),
            addresses: NullableVec::nil(),
            node_name: String::new(),
            reserved_until: None,
            // With PlayerTracking on, Agones starts `status.players` with the capacity
            // `spec.players.initialCapacity` (0 when unset); off, there is none
            // (`pkg/apis/agones/v1/gameserver.go`, `applyStatusDefaults`).
            players: self
                .installed
                .gates
                .get("PlayerTracking")
                .copied()
                .unwrap_or(false)
                .then(|| upsoak_agones::gameserver::PlayerStatus {
                    count: 0,
                    capacity: fleet
                        .spec
                        .template
                        .spec
                        .players
                        .as_ref()
                        .and_then(|p| p["initialCapacity"].as_i64())
                        .unwrap_or(0),
                    // `&PlayerStatus{}`: its `IDs` nil, so `"ids": null`.
                    ids: NullableVec::nil(),
                }),
        });
        let key = (ns.to_owned(), name);
        events::GameServerCreated {
            namespace: ns,
            fleet: &fleet_name,
            name: &key.1,
        }
        .emit(&self.metrics);
        let gs = Arc::new(gs);
        self.emit::<GameServer>("ADDED", gs.clone());
        let pool = self.alloc.pools.pool(&(key.0.clone(), fleet_name.clone()));
        pool.update(&key.1, None, Some(&gs));
        // Read from the object itself: the record is inserted only below.
        let players = gs
            .status
            .as_ref()
            .and_then(|s| s.players.as_ref())
            .map(|p| p.capacity);
        let game = self
            .game
            .clone()
            .map(|rt| self.start_game(rt, key.clone(), players));
        self.members
            .entry((key.0.clone(), fleet_name))
            .or_default()
            .insert(key.1.clone());
        self.gameservers.insert(
            key.clone(),
            GsRecord {
                obj: gs,
                pool,
                since: now,
                due: None,
                port: None,
                game,
            },
        );
        self.set_due(&key, Some(now + self.cfg.lifecycle.scheduled_after));
    }

    /// The metrics controller's periodic collection: GameServers per node, on the one node
    /// (`pkg/metrics/controller.go`, `collectNodeCounts`; it runs from the start, then every
    /// 15 s, and not while the controller is being replaced).
    pub(super) fn collect_node_counts(&mut self, now: Instant) {
        if self.upgrade.is_some()
            || self
                .last_collect
                .is_some_and(|t| now.saturating_duration_since(t) < super::METRIC_RESYNC_PERIOD)
        {
            return;
        }
        self.last_collect = Some(now);
        let on_node = self
            .gameservers
            .values()
            .filter(|r| {
                r.obj
                    .status
                    .as_ref()
                    .is_some_and(|s| !s.node_name.is_empty())
            })
            .count();
        events::NodesCollected {
            gameservers_per_node: &[on_node],
        }
        .emit(&self.metrics);
    }

    /// Sets when a GameServer moves next by itself, keeping the timer index in step.
    pub(super) fn set_due(&mut self, key: &Key, due: Option<Instant>) {
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        if let Some(old) = rec.due.take() {
            self.timers.remove(&(old, key.clone()));
        }
        rec.due = due;
        if let Some(d) = due {
            self.timers.insert((d, key.clone()));
        }
    }

    /// Marks the Fleet of a GameServer for reconciliation.
    pub(super) fn mark_dirty(&mut self, ns: &str, gs: &GameServer) {
        if let Some(f) = fleet_of(gs) {
            self.dirty.insert((ns.to_owned(), f.to_owned()));
        }
    }

    /// Moves a GameServer to `to`, with the metrics, index and event that go with it.
    pub(super) fn set_state(&mut self, key: &Key, to: GameServerState, now: Instant) {
        let lifecycle = self.cfg.lifecycle.clone();
        let ip = self.cfg.game.ip;
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        let Some(from) = rec.obj.state() else { return };
        if from == to {
            return;
        }
        let elapsed = now.saturating_duration_since(rec.since);
        rec.since = now;
        let due = match to {
            GameServerState::Scheduled => Some(now + lifecycle.request_ready_after),
            GameServerState::RequestReady => Some(now + lifecycle.ready_after),
            GameServerState::Shutdown => Some(now + lifecycle.delete_after_shutdown),
            GameServerState::Error | GameServerState::Unhealthy => {
                Some(now + lifecycle.delete_after_failure)
            }
            _ => None,
        };
        let port = rec.port;
        // The one copy of this change: the watch log and the pool still share the old object.
        let gs = Arc::make_mut(&mut rec.obj);
        if let Some(st) = gs.status.as_mut() {
            st.state = to;
            if to == GameServerState::Scheduled {
                st.node_name = NODE_NAME.to_owned();
                st.address = ip.to_string();
                // `applyGameServerAddressAndPort` (`pkg/gameservers/gameservers.go`) makes both
                // lists here: the node's addresses, and one port per spec port (`make`, so a
                // made list even when the simulator has no port to give).
                st.addresses = vec![upsoak_agones::gameserver::NodeAddress {
                    address: ip.to_string(),
                    type_: "InternalIP".to_owned(),
                }]
                .into();
                let port_name = gs
                    .spec
                    .ports
                    .first()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".to_owned());
                st.ports = port
                    .map(|p| {
                        vec![GameServerStatusPort {
                            name: port_name,
                            port: i32::from(p),
                        }]
                    })
                    .unwrap_or_default()
                    .into();
            }
            if to != GameServerState::Reserved {
                st.reserved_until = None;
            }
        }
        let gs = rec.obj.clone();
        events::GameServerStateChanged {
            namespace: &key.0,
            fleet: fleet_of(&gs).unwrap_or(NO_FLEET),
            name: &key.1,
            from,
            to,
            in_from: elapsed,
        }
        .emit(&self.metrics);
        self.set_due(key, due);
        self.mark_dirty(&key.0, &gs);
        // Unshared again, so the resourceVersion is set in place.
        drop(gs);
        self.bump(key, Some(from));
    }

    /// Bumps the resourceVersion of a changed GameServer and emits MODIFIED.
    pub(super) fn touch_gameserver(&mut self, key: &Key) {
        self.bump(key, None);
    }

    /// Bumps the resourceVersion, emits MODIFIED and updates the Fleet's pool; `from` is the
    /// state before the change, when it changed.
    fn bump(&mut self, key: &Key, from: Option<GameServerState>) {
        let rv = self.next_rv();
        let Some(rec) = self.gameservers.get_mut(key) else {
            return;
        };
        let obj = Arc::make_mut(&mut rec.obj);
        let before = from.or(obj.state());
        obj.metadata.resource_version = Some(rv.to_string());
        rec.pool.update(&key.1, before, Some(&rec.obj));
        let gs = rec.obj.clone();
        self.emit::<GameServer>("MODIFIED", gs);
    }

    // ----- the lifecycle controller -----

    pub(super) fn advance_lifecycle(&mut self, now: Instant) {
        let has_game = self.game.is_some();
        let tick = self.cfg.lifecycle.tick;
        while let Some((due, key)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, key.clone()));
            let Some(rec) = self.gameservers.get_mut(&key) else {
                continue;
            };
            rec.due = None;
            let Some(state) = rec.obj.state() else {
                continue;
            };
            // Scheduling waits for the game port, as a pod waits for its node port.
            if has_game && state == GameServerState::Creating && rec.port.is_none() {
                self.set_due(&key, Some(now + tick));
                continue;
            }
            match state {
                GameServerState::Creating => self.set_state(&key, GameServerState::Scheduled, now),
                GameServerState::Scheduled => {
                    self.set_state(&key, GameServerState::RequestReady, now)
                }
                GameServerState::RequestReady => self.set_state(&key, GameServerState::Ready, now),
                GameServerState::Reserved => self.set_state(&key, GameServerState::Ready, now),
                GameServerState::Shutdown | GameServerState::Error | GameServerState::Unhealthy => {
                    self.remove_gameserver(&key);
                }
                _ => {}
            }
        }
    }

    pub(super) fn inject_failures(&mut self, now: Instant, dt: f64) {
        let failures: Vec<(f64, FailureState)> = self
            .active_faults()
            .filter_map(|k| match k {
                FaultKind::GameServerFailures { per_second, state } => Some((*per_second, *state)),
                _ => None,
            })
            .collect();
        for (per_second, state) in failures {
            let p = (per_second * dt).min(1.0);
            let victims: Vec<Key> = self
                .gameservers
                .iter()
                .filter(|(_, r)| {
                    matches!(
                        r.obj.state(),
                        Some(GameServerState::Ready | GameServerState::Allocated)
                    )
                })
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
                .into_iter()
                .filter(|_| self.rng.random::<f64>() < p)
                .collect();
            let to = match state {
                FailureState::Error => GameServerState::Error,
                FailureState::Unhealthy => GameServerState::Unhealthy,
            };
            for key in victims {
                self.set_state(&key, to, now);
            }
        }
    }
}
