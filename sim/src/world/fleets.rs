//! Fleets: create, update and delete as the API asks, names and UIDs, and the Fleet
//! controller that keeps each Fleet's GameServers at its replicas and its status current.

use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rand::RngExt;
use upsoak_agones::{Fleet, FleetStatus, GameServerState};

use crate::events;
use crate::selector::Selector;
use crate::status::{ApiError, Cause, Webhook};
use crate::validate::validate_fleet;

use super::{FleetRecord, Key, World, now_ts};

/// GameServers a Fleet creates per reconcile tick, so one big scale-up does not hold the lock.
const CREATE_BATCH: usize = 500;

/// Game ports the OS can hand out when the range starts at 0 (any free port): the size of
/// Linux's default ephemeral range, 32768-60999 (`net.ipv4.ip_local_port_range`).
pub const OS_PICKED_PORTS: usize = 28_232;

impl World {
    // ----- Fleets -----

    pub fn get_fleet(&self, ns: &str, name: &str) -> Result<Fleet, ApiError> {
        self.fleets
            .get(&(ns.to_owned(), name.to_owned()))
            .map(|r| r.obj.clone())
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))
    }

    /// Fleets in `ns` (or every namespace) matching `sel`.
    pub fn list_fleets(&self, ns: Option<&str>, sel: &Selector) -> Vec<Fleet> {
        self.fleets
            .iter()
            .filter(|((n, _), _)| ns.is_none_or(|x| x == n))
            .filter(|(_, r)| sel.matches(r.obj.metadata.labels.as_ref()))
            .map(|(_, r)| r.obj.clone())
            .collect()
    }

    /// Creates a Fleet; its GameServers follow on the next reconcile.
    pub fn create_fleet(&mut self, ns: &str, mut fleet: Fleet) -> Result<Fleet, ApiError> {
        // Agones registers `/mutate` and `/validate` for Fleet CREATE
        // (`pkg/fleets/controller.go`, `NewExtensions`: `creationMutationHandler`).
        self.admit(Webhook::Mutation)?;
        let name = self.assign_name(ns, &mut fleet.metadata, |w, k| w.fleets.contains_key(k))?;
        validate_fleet(&fleet, &name)?;
        let key = (ns.to_owned(), name.clone());
        if self.fleets.contains_key(&key) {
            return Err(ApiError::already_exists("fleets.agones.dev", &name));
        }
        self.check_port_capacity(&key, fleet.spec.replicas)?;
        let rv = self.next_rv();
        let m = &mut fleet.metadata;
        m.namespace = Some(ns.to_owned());
        m.uid = Some(self.new_uid());
        m.resource_version = Some(rv.to_string());
        m.generation = Some(1);
        m.creation_timestamp = Some(now_ts());
        fleet.api_version = "agones.dev/v1".to_owned();
        fleet.kind = "Fleet".to_owned();
        // No `status.labelSelector`: Agones' FleetStatus has none (`pkg/apis/agones/v1/fleet.go`).
        fleet.status = Some(FleetStatus::default());
        self.emit("ADDED", fleet.clone());
        self.dirty.insert(key.clone());
        let pool = self.alloc.pools.pool(&key);
        self.fleets.insert(
            key,
            FleetRecord {
                obj: fleet.clone(),
                allocations: 0,
                pool,
            },
        );
        Ok(fleet)
    }

    /// Replaces a Fleet's spec, metadata labels and annotations (PUT, and the result of a patch).
    /// A `resourceVersion` that is not the current one is a conflict; status is ignored, as the
    /// status subresource is enabled for Fleets.
    pub fn update_fleet(&mut self, ns: &str, name: &str, new: Fleet) -> Result<Fleet, ApiError> {
        // Fleet UPDATE goes through `/validate` (`pkg/fleets/controller.go`, `NewExtensions`:
        // `creationValidationHandler` for `admissionv1.Update`).
        self.admit(Webhook::Validation)?;
        self.write_fleet(ns, name, new)
    }

    /// Sets a Fleet's `spec.replicas` through its scale subresource. The chart's webhook rules
    /// name the resource `fleets`, which does not match the subresource `fleets/scale`
    /// (`install/helm/agones/templates/extensions.yaml`), so a scale is admitted even while
    /// `agones-extensions` is down.
    pub fn scale_fleet(&mut self, ns: &str, name: &str, new: Fleet) -> Result<Fleet, ApiError> {
        self.write_fleet(ns, name, new)
    }

    /// An admitted update or scale.
    fn write_fleet(&mut self, ns: &str, name: &str, mut new: Fleet) -> Result<Fleet, ApiError> {
        let key = (ns.to_owned(), name.to_owned());
        let current = self
            .fleets
            .get(&key)
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))?;
        match new.metadata.resource_version.as_deref() {
            None | Some("") => {
                return Err(ApiError::invalid(
                    "fleets",
                    name,
                    vec![Cause {
                        field: "metadata.resourceVersion".into(),
                        message: "Invalid value: 0x0: must be specified for an update".into(),
                    }],
                ));
            }
            Some(rv) if Some(rv) != current.obj.metadata.resource_version.as_deref() => {
                return Err(ApiError::conflict("fleets.agones.dev", name));
            }
            Some(_) => {}
        }
        if let Some(n) = &new.metadata.name
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        validate_fleet(&new, name)?;
        if new.spec.replicas > current.obj.spec.replicas {
            self.check_port_capacity(&key, new.spec.replicas)?;
        }
        let old = current.obj.clone();
        let spec_changed = old.spec != new.spec;
        let rv = self.next_rv();
        // Server-owned metadata stays the server's.
        let mut meta = old.metadata.clone();
        meta.labels = new.metadata.labels.take();
        meta.annotations = new.metadata.annotations.take();
        meta.resource_version = Some(rv.to_string());
        if spec_changed {
            meta.generation = Some(meta.generation.unwrap_or(1) + 1);
        }
        let fleet = Fleet {
            api_version: old.api_version.clone(),
            kind: old.kind.clone(),
            metadata: meta,
            spec: new.spec,
            status: old.status.clone(),
        };
        self.emit("MODIFIED", fleet.clone());
        if let Some(rec) = self.fleets.get_mut(&key) {
            rec.obj = fleet.clone();
        }
        self.dirty.insert(key);
        Ok(fleet)
    }

    /// How many GameServers the configured game port range can hold: one UDP port each (the
    /// simulator gives every GameServer one port, whatever its template lists).
    pub fn port_capacity(&self) -> usize {
        let g = &self.cfg.game;
        if g.port_min == 0 {
            OS_PICKED_PORTS
        } else {
            usize::from(g.port_max.saturating_sub(g.port_min)) + 1
        }
    }

    /// Refuses (422 naming the limit) `replicas` for the Fleet `key` when, with every other
    /// Fleet's replicas, they exceed what the port range can hold. Without this check a typo of
    /// a few zeros creates GameServers that never get a port, 500 per tick, until memory runs
    /// out. Real Agones has no such limit (its ports come from every node); the simulator runs
    /// on one host.
    fn check_port_capacity(&self, key: &Key, replicas: i32) -> Result<(), ApiError> {
        let capacity = self.port_capacity();
        let others: usize = self
            .fleets
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(_, r)| usize::try_from(r.obj.spec.replicas).unwrap_or(0))
            .sum();
        let want = usize::try_from(replicas).unwrap_or(0);
        if others.saturating_add(want) <= capacity {
            return Ok(());
        }
        let g = &self.cfg.game;
        let range = if g.port_min == 0 {
            "any free port (range 0)".to_owned()
        } else {
            format!("{}-{}", g.port_min, g.port_max)
        };
        Err(ApiError::invalid(
            "fleets",
            &key.1,
            vec![Cause {
                field: "spec.replicas".into(),
                message: format!(
                    "Invalid value: {replicas}: must be no more than {}: the simulator's game port range {range} holds {capacity} GameServers and other Fleets ask for {others}",
                    capacity.saturating_sub(others)
                ),
            }],
        ))
    }

    /// Deletes a Fleet and, as its owner, its GameServers.
    pub fn delete_fleet(&mut self, ns: &str, name: &str) -> Result<Fleet, ApiError> {
        // No Agones webhook covers DELETE (`install/helm/agones/templates/extensions.yaml`), so a
        // delete succeeds during an upgrade window.
        let key = (ns.to_owned(), name.to_owned());
        let rec = self
            .fleets
            .remove(&key)
            .ok_or_else(|| ApiError::not_found("fleets.agones.dev", name))?;
        let mut fleet = rec.obj;
        fleet.metadata.resource_version = Some(self.next_rv().to_string());
        self.emit("DELETED", fleet.clone());
        let owned: Vec<Key> = self
            .members
            .get(&key)
            .into_iter()
            .flatten()
            .map(|n| (ns.to_owned(), n.clone()))
            .collect();
        for k in owned {
            self.remove_gameserver(&k);
        }
        self.members.remove(&key);
        self.dirty.remove(&key);
        self.alloc.pools.forget(&key);
        Ok(fleet)
    }

    /// Refuses a write `webhook` must admit while an upgrade window has `agones-extensions` down.
    pub(super) fn admit(&self, webhook: Webhook) -> Result<(), ApiError> {
        if self.upgrade.is_some() {
            events::WriteRefused {
                webhook: webhook.name(),
            }
            .emit();
            Err(ApiError::webhook_unavailable(webhook))
        } else {
            Ok(())
        }
    }

    /// Resolves `name` or `generateName`; 422 when neither is usable.
    pub(super) fn assign_name(
        &mut self,
        ns: &str,
        meta: &mut ObjectMeta,
        exists: impl Fn(&World, &Key) -> bool,
    ) -> Result<String, ApiError> {
        if let Some(n) = meta.name.clone().filter(|n| !n.is_empty()) {
            return Ok(n);
        }
        let Some(prefix) = meta.generate_name.clone().filter(|p| !p.is_empty()) else {
            return Err(ApiError::invalid(
                "fleets",
                "",
                vec![Cause {
                    field: "metadata.name".into(),
                    message: "Required value: name or generateName is required".into(),
                }],
            ));
        };
        loop {
            let candidate = format!("{prefix}{}", self.random_suffix());
            if !exists(self, &(ns.to_owned(), candidate.clone())) {
                meta.name = Some(candidate.clone());
                return Ok(candidate);
            }
        }
    }

    pub(super) fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..5)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    pub(super) fn new_uid(&mut self) -> String {
        let a: u128 = self.rng.random();
        let h = format!("{a:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    // ----- the Fleet controller -----

    pub(super) fn reconcile_fleets(&mut self, now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for key in dirty {
            let Some((fleet, counts)) = self
                .fleets
                .get(&key)
                .map(|r| (r.obj.clone(), r.pool.counts()))
            else {
                continue;
            };
            // Failed and finished servers no longer count: they are replaced at once.
            let alive = usize::try_from(counts.alive()).unwrap_or(0);
            let want = usize::try_from(fleet.spec.replicas).unwrap_or(0);
            let mut more_to_create = false;
            let (mut created, mut removed) = (0, 0);
            if alive < want {
                let missing = want - alive;
                created = missing.min(CREATE_BATCH);
                let began = Instant::now();
                for _ in 0..created {
                    self.spawn_gameserver(&key.0, &fleet, now);
                }
                events::GameServersAdded {
                    count: created,
                    took: began.elapsed(),
                }
                .emit(&self.metrics);
                more_to_create = missing > CREATE_BATCH;
            } else if alive > want {
                // Remove servers not yet Ready first, then Ready ones; never Allocated or Reserved.
                let mut removable: Vec<(String, GameServerState)> = self
                    .members
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter_map(|n| {
                        let r = self.gameservers.get(&(key.0.clone(), n.clone()))?;
                        Some((n.clone(), r.obj.state()?))
                    })
                    .filter(|(_, s)| s.is_before_ready() || *s == GameServerState::Ready)
                    .collect();
                removable.sort_by_key(|(_, s)| *s == GameServerState::Ready);
                let doomed: Vec<Key> = removable
                    .into_iter()
                    .take(alive - want)
                    .map(|(n, _)| (key.0.clone(), n))
                    .collect();
                removed = doomed.len();
                for k in doomed {
                    self.remove_gameserver(&k);
                }
            }
            events::FleetReconciled {
                namespace: &key.0,
                fleet: &key.1,
                created,
                removed,
            }
            .emit();
            self.update_fleet_status(&key);
            // Removing servers marked the Fleet again, though it is settled; a big scale-up
            // continues on the next tick, so it never holds the lock for long.
            if more_to_create {
                self.dirty.insert(key.clone());
            } else {
                self.dirty.remove(&key);
            }
        }
    }

    /// Sets a Fleet's status from its pool's state counts (kept as its servers change, so
    /// this takes no pass over them); emits MODIFIED only on change.
    pub(super) fn update_fleet_status(&mut self, key: &Key) {
        let Some(rec) = self.fleets.get(key) else {
            return;
        };
        let c = rec.pool.counts();
        let st = FleetStatus {
            replicas: c.alive(),
            ready_replicas: c.get(GameServerState::Ready),
            reserved_replicas: c.get(GameServerState::Reserved),
            allocated_replicas: c.get(GameServerState::Allocated),
            allocations: Some(rec.allocations),
            label_selector: None,
        };
        if rec.obj.status.as_ref() == Some(&st) {
            return;
        }
        let rv = self.next_rv();
        let Some(rec) = self.fleets.get_mut(key) else {
            return;
        };
        rec.obj.status = Some(st);
        rec.obj.metadata.resource_version = Some(rv.to_string());
        let fleet = rec.obj.clone();
        self.emit("MODIFIED", fleet);
    }
}

/// The template of Fleets the config seeds: one UDP port, as Agones' simple-game-server.
pub fn default_template() -> upsoak_agones::GameServerTemplateSpec {
    upsoak_agones::GameServerTemplateSpec {
        metadata: None,
        spec: upsoak_agones::GameServerSpec {
            ports: vec![upsoak_agones::GameServerPort {
                name: "default".to_owned(),
                port_policy: Some("Dynamic".to_owned()),
                container_port: Some(7654),
                host_port: None,
                protocol: Some("UDP".to_owned()),
                range: None,
            }],
            template: serde_json::json!({
                "spec": {"containers": [{"name": "simple-game-server",
                    "image": "us-docker.pkg.dev/agones-images/examples/simple-game-server:0.39"}]}
            }),
            ..upsoak_agones::GameServerSpec::default()
        },
    }
}
