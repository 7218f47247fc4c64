//! The game protocol's way into the world: SDK calls from a GameServer's UDP port, and the
//! runtime that binds each GameServer a port and serves the protocol on it.

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use upsoak_agones::GameServerState;

use crate::events;
use crate::game::metadata::{self, Meta, SDK_PREFIX};
use crate::game::{self, PortPool, SdkCall, SdkError, SdkHandle};

use super::{Key, World};

/// Starts and stops game protocol servers; absent in model-only tests.
#[derive(Clone)]
pub(super) struct GameRuntime {
    pool: Arc<PortPool>,
    sdk: Arc<dyn SdkHandle>,
    world: Weak<Mutex<World>>,
    /// The simulator's shutdown: every game port's token is its child, so shutting down stops
    /// every UDP task.
    shutdown: CancellationToken,
}

impl World {
    /// Lets GameServers bind UDP ports from `pool` and speak the game protocol until their
    /// GameServer is deleted or `shutdown` is cancelled.
    pub fn attach_game_runtime(
        world: &Arc<Mutex<World>>,
        pool: Arc<PortPool>,
        shutdown: CancellationToken,
    ) {
        if let Ok(mut w) = world.lock() {
            let sdk: Arc<dyn SdkHandle> =
                Arc::new(SdkBridge(Arc::downgrade(world), w.traffic_gate()));
            w.game = Some(GameRuntime {
                pool,
                sdk,
                world: Arc::downgrade(world),
                shutdown,
            });
        }
    }

    /// Binds a UDP port and serves the game protocol for `key` until cancelled. `players` is
    /// the new GameServer's `status.players.capacity` (`None`: PlayerTracking off).
    pub(super) fn start_game(
        &self,
        rt: GameRuntime,
        key: Key,
        players: Option<i64>,
    ) -> CancellationToken {
        let token = rt.shutdown.child_token();
        let stop = token.clone();
        let ip = self.cfg.game.ip;
        let world = rt.world.clone();
        // The SDK sidecar keeps the gates it started with (Agones
        // `site/content/en/docs/Installation/upgrading.md`, "controller derived configuration")
        // and reads its capacity from `status.players` (`pkg/sdkserver/sdkserver.go`, `Run`).
        tokio::spawn(async move {
            let (socket, port) = match rt.pool.bind(ip).await {
                Ok(p) => p,
                Err(e) => {
                    events::GamePortUnavailable {
                        name: &key.1,
                        error: &e,
                    }
                    .emit();
                    return;
                }
            };
            let alive = world
                .upgrade()
                .and_then(|w| w.lock().ok().map(|mut w| w.set_port(&key, port)))
                .unwrap_or(false);
            if alive {
                game::serve(
                    socket,
                    key.0.clone(),
                    key.1.clone(),
                    rt.sdk.clone(),
                    players,
                    stop,
                )
                .await;
            }
            rt.pool.release(port);
        });
        token
    }

    /// Records the bound port; false when the GameServer is gone.
    pub(super) fn set_port(&mut self, key: &Key, port: u16) -> bool {
        match self.gameservers.get_mut(key) {
            Some(r) => {
                r.port = Some(port);
                true
            }
            None => false,
        }
    }

    /// Applies an SDK call from a game server process.
    pub fn sdk(&mut self, ns: &str, name: &str, call: SdkCall) -> Result<(), SdkError> {
        let key = (ns.to_owned(), name.to_owned());
        let now = Instant::now();
        let state = self
            .gameservers
            .get(&key)
            .and_then(|r| r.obj.state())
            .ok_or_else(|| SdkError::NotFound {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            })?;
        match call {
            SdkCall::Ready => match state {
                GameServerState::Scheduled | GameServerState::RequestReady => {
                    self.set_state(&key, GameServerState::Ready, now)
                }
                // Agones lets an Allocated or Reserved server mark itself Ready again.
                GameServerState::Allocated | GameServerState::Reserved => {
                    self.set_state(&key, GameServerState::Ready, now)
                }
                GameServerState::Ready => {}
                other => return Err(SdkError::CannotReady(other)),
            },
            SdkCall::Allocate => match state {
                GameServerState::Ready | GameServerState::Reserved => {
                    self.set_state(&key, GameServerState::Allocated, now);
                    self.count_allocation(&key);
                }
                GameServerState::Allocated => {}
                other => return Err(SdkError::CannotAllocate(other)),
            },
            SdkCall::Shutdown => self.set_state(&key, GameServerState::Shutdown, now),
            SdkCall::Unhealthy => self.set_state(&key, GameServerState::Unhealthy, now),
            SdkCall::Reserve(d) => {
                if let Some(rec) = self.gameservers.get_mut(&key)
                    && let Some(st) = Arc::make_mut(&mut rec.obj).status.as_mut()
                {
                    let until = jiff::SignedDuration::try_from(d)
                        .and_then(|d| Timestamp::now().checked_add(d))
                        .map_err(|e| SdkError::ReservationTooLong(d, e))?;
                    st.reserved_until = Some(until.to_string());
                }
                self.set_state(&key, GameServerState::Reserved, now);
                self.set_due(&key, Some(now + d));
            }
            SdkCall::Label(k, _) | SdkCall::Annotation(k, _) if k.is_empty() => {
                return Err(SdkError::EmptyKey);
            }
            SdkCall::Label(k, v) => {
                if let Some(rec) = self.gameservers.get_mut(&key) {
                    metadata::check(Meta::Label, &k, &v, rec.obj.metadata.labels.as_ref())
                        .map_err(SdkError::MetadataRefused)?;
                    Arc::make_mut(&mut rec.obj)
                        .metadata
                        .labels
                        .get_or_insert_default()
                        .insert(format!("{SDK_PREFIX}{k}"), v);
                }
                self.touch_gameserver(&key);
            }
            SdkCall::Annotation(k, v) => {
                if let Some(rec) = self.gameservers.get_mut(&key) {
                    let current = rec.obj.metadata.annotations.as_ref();
                    metadata::check(Meta::Annotation, &k, &v, current)
                        .map_err(SdkError::MetadataRefused)?;
                    Arc::make_mut(&mut rec.obj)
                        .metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(format!("{SDK_PREFIX}{k}"), v);
                }
                self.touch_gameserver(&key);
            }
            SdkCall::Players {
                count,
                capacity,
                ids,
            } => {
                // Player ids have no limit of their own (capacity is the game's to set), so the
                // object's size bounds them: the list the update would write is refused past
                // [`game::MAX_OBJECT_BYTES`], before anything changes.
                let ids_bytes: usize = ids.iter().map(|id| id.len() + 3).sum();
                if let Some(rec) = self.gameservers.get(&key) {
                    let old_ids: usize = rec
                        .obj
                        .status
                        .as_ref()
                        .and_then(|st| st.players.as_ref())
                        .map_or(0, |p| p.ids.iter().map(|id| id.len() + 3).sum());
                    let size = serde_json::to_vec(&*rec.obj).map_or(0, |v| v.len());
                    let after = size.saturating_sub(old_ids) + ids_bytes;
                    if after > game::MAX_OBJECT_BYTES {
                        return Err(SdkError::TooLarge(after));
                    }
                }
                if let Some(rec) = self.gameservers.get_mut(&key)
                    && let Some(st) = Arc::make_mut(&mut rec.obj).status.as_mut()
                {
                    // The ids stay nil (`null`) until a player connects; once made they stay a
                    // list, `[]` after the last one leaves (`pkg/sdkserver/sdkserver.go`,
                    // `PlayerConnect` appends, `PlayerDisconnect` cuts, `updatePlayerCapacity`
                    // leaves them alone).
                    let was_nil = st.players.as_ref().is_none_or(|p| p.ids.is_nil());
                    let ids = if ids.is_empty() && was_nil {
                        upsoak_agones::NullableVec::nil()
                    } else {
                        ids.into()
                    };
                    st.players = Some(upsoak_agones::gameserver::PlayerStatus {
                        count,
                        capacity,
                        ids,
                    });
                }
                self.touch_gameserver(&key);
            }
        }
        Ok(())
    }
}

/// The game protocol's way into the world; holds it weakly so the world can be dropped, and
/// the gate an `upgrade_drops_game_traffic` fault closes (read without the world's lock).
struct SdkBridge(Weak<Mutex<World>>, super::TrafficGate);

impl SdkHandle for SdkBridge {
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), SdkError> {
        let world = self.0.upgrade().ok_or(SdkError::ShuttingDown)?;
        let mut w = world.lock().map_err(|_| SdkError::Unavailable)?;
        w.sdk(namespace, name, call)
    }

    fn traffic_dropped(&self) -> bool {
        self.1.dropped()
    }
}
