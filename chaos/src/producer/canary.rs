//! Canary sessions: `count` GameServers held Allocated with a live game session each, *across*
//! transitions, so each upgrade is judged on games that were running when it began.
//!
//! Each canary slot allocates a server from its Fleet (slot `i` from `fleets[i % n]`), then
//! every `interval` reads its GameServer through the Kubernetes API and sends a heartbeat over
//! the game protocol. The heartbeat is a numbered `ECHO` line, which simple-game-server answers
//! with `ACK: <line>` (`examples/simple-game-server/main.go`, `handleResponse`'s default case)
//! and logs as one short line; `GAMESERVER`, which makes the real server read its whole
//! GameServer from the SDK and log it (`handleResponse`, case `"GAMESERVER"`), is sent only to
//! check the server's identity: once when the canary starts, and on a suspicion (an answer
//! after a silence, or an answer that is not the echo of the heartbeat sent). A canary is lost,
//! with a reason, and its slot allocates a replacement:
//!
//! - `deleted`: the GameServer is gone (404, or another object under its name: a new `uid`),
//!   or in `Shutdown`, which Agones ends by deleting it (`pkg/gameservers/controller.go`,
//!   `syncGameServerShutdownState`).
//! - `restarted`: the process answering is not the one allocated. Two signs, both of a real
//!   simple-game-server (`examples/simple-game-server/main.go`): it answers the heartbeat
//!   `GAMESERVER` with `NAME: <its GameServer>`, so a different name at the canary's address is
//!   another process (checked at the start and after a silence, the only time another
//!   process can have taken the canary's address); and it calls `SDK.Ready()` when it starts (`-ready`, on by default,
//!   `ready(s)` in `main`), which Agones lets move an Allocated server back to Ready
//!   (`pkg/sdkserver/sdkserver.go`, `Ready`), so an Allocated canary seen back in
//!   RequestReady or Ready was restarted: nobody else marks it Ready.
//! - `left_allocated`: any other state (Unhealthy, Error, Reserved…).
//! - `timeout`: no heartbeat answered for longer than `timeout`. Its GameServer, maybe still
//!   Allocated, is deleted through the API so it is not held forever.
//!
//! A canary ends without being lost only at `max_age`, and only once a transition went live
//! during its life (the Wanderer's generation changed), so every transition has canaries older
//! than it. On shutdown canaries are told to `EXIT`, as sessions are.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use upsoak_agones::{AllocationState, GameServer, GameServerAllocation, GameServerState};
use upsoak_common::problems::Problems;

use super::address::AddressType;
use super::events::{
    CanariesObserved, CanaryAllocated, CanaryEnded, CanaryHeartbeat, CanaryLost, CanaryReleased,
    CanaryStarted, ProducerMetrics,
};
use super::owner::{Owner, Role, Tracked};
use super::{FleetLoad, classify, resolve};

/// Canaries held at once by default.
pub const DEFAULT_COUNT: usize = 4;
/// Time between heartbeats by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Silence after which a canary is lost, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Age at which a canary is released by default (after a transition).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(2 * 3600);

/// How canaries are kept.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    /// GameServers held Allocated, each with a live session; 0 (or no Fleet) turns canaries
    /// off. At most the sum of the Fleets' `max_replicas`.
    pub count: usize,
    /// Time between two heartbeats of a canary (and two reads of its GameServer); below
    /// `timeout`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// A canary that answers no heartbeat for longer than this is lost (`timeout`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// A canary is released (EXIT, not lost) once this old, and only once a transition went
    /// live during its life.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            count: DEFAULT_COUNT,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl CanaryConfig {
    /// Every problem, with its path below this section; `fleets` are the Producer's.
    pub fn problems(&self, fleets: &[FleetLoad]) -> Problems {
        let mut p = Problems::new();
        if self.count == 0 {
            return p;
        }
        // Without a Fleet there is nothing to hold canaries on: they are off.
        let most: i64 = fleets
            .iter()
            .map(|f| i64::from(f.max_replicas.max(0)))
            .sum();
        if !fleets.is_empty() && i64::try_from(self.count).unwrap_or(i64::MAX) > most {
            p.push(
                "count",
                format!(
                    "{} canaries cannot be held: the Fleets hold {most} servers at most (sum of max_replicas)",
                    self.count
                ),
            );
        }
        if self.interval.is_zero() {
            p.push("interval", "must be above zero");
        }
        if self.interval >= self.timeout {
            p.push(
                "interval",
                format!(
                    "{:?} is not below timeout {:?}: a heartbeat could never be late",
                    self.interval, self.timeout
                ),
            );
        }
        if self.max_age <= self.timeout {
            p.push("max_age", "must be above timeout");
        }
        p
    }
}

/// Why a canary was lost: the label `reason` of `upsoak_producer_canaries_lost_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    Deleted,
    LeftAllocated,
    Timeout,
    Restarted,
    /// Held by an earlier incarnation of the Producer that was killed without releasing it;
    /// found and reclaimed by this one ([`super::owner`]).
    Orphaned,
}

impl LossReason {
    /// Every reason, so each series exists from the start.
    pub const ALL: [LossReason; 5] = [
        LossReason::Deleted,
        LossReason::LeftAllocated,
        LossReason::Timeout,
        LossReason::Restarted,
        LossReason::Orphaned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Deleted => "deleted",
            LossReason::LeftAllocated => "left_allocated",
            LossReason::Timeout => "timeout",
            LossReason::Restarted => "restarted",
            LossReason::Orphaned => "orphaned",
        }
    }
}

/// The Wanderer's generation: a canary may end at `max_age` only once it changed.
pub type Generation = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What the Kubernetes API says of a canary's GameServer, given the `uid` it was allocated as.
pub fn judge_state(gs: &GameServer, uid: Option<&str>) -> Option<(LossReason, String)> {
    if uid.is_some() && gs.metadata.uid.as_deref() != uid {
        return Some((LossReason::Deleted, "replaced by another object".to_owned()));
    }
    match gs.state()? {
        GameServerState::Allocated => None,
        GameServerState::Shutdown => Some((LossReason::Deleted, "Shutdown".to_owned())),
        s @ (GameServerState::Ready | GameServerState::RequestReady) => Some((
            LossReason::Restarted,
            format!("{s}: its process called SDK Ready again, as on start"),
        )),
        s => Some((LossReason::LeftAllocated, s.to_string())),
    }
}

/// The name in a `GAMESERVER` answer (`NAME: x`, with or without a leading `ACK: `).
pub fn answered_name(reply: &str) -> Option<&str> {
    let (_, rest) = reply.split_once("NAME: ")?;
    Some(rest.trim())
}

/// When each slot's canary was born and last answered; read every interval for the gauges.
#[derive(Clone, Copy, Debug)]
struct Life {
    born: Instant,
    last_answer: Instant,
}

type Board = Arc<Mutex<Vec<Option<Life>>>>;

fn set_life(board: &Board, slot: usize, life: Option<Life>) {
    if let Ok(mut b) = board.lock()
        && let Some(s) = b.get_mut(slot)
    {
        *s = life;
    }
}

/// Keeps `cfg.count` canaries on `fleets` until `shutdown`; a keeper that panicked panics here.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    client: kube::Client,
    owner: Owner,
    namespace: String,
    fleets: Vec<String>,
    cfg: CanaryConfig,
    address_types: Vec<AddressType>,
    metrics: ProducerMetrics,
    generation: Option<Generation>,
    shutdown: CancellationToken,
) {
    if cfg.count == 0 || fleets.is_empty() {
        return;
    }
    let board: Board = Arc::new(Mutex::new(vec![None; cfg.count]));
    let mut keepers = tokio::task::JoinSet::new();
    for slot in 0..cfg.count {
        let keeper = Keeper {
            slot,
            fleet: fleets[slot % fleets.len()].clone(),
            owner: owner.clone(),
            allocations: Api::namespaced(client.clone(), &namespace),
            gameservers: Api::namespaced(client.clone(), &namespace),
            cfg: cfg.clone(),
            address_types: address_types.clone(),
            metrics: metrics.clone(),
            generation: generation.clone(),
            board: board.clone(),
            shutdown: shutdown.clone(),
        };
        keepers.spawn(keeper.run());
    }
    let mut tick = tokio::time::interval(cfg.interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let lives: Vec<Life> = board
            .lock()
            .map(|b| b.iter().flatten().copied().collect())
            .unwrap_or_default();
        CanariesObserved {
            longest_silence: lives
                .iter()
                .map(|l| now.saturating_duration_since(l.last_answer))
                .max()
                .unwrap_or_default(),
            oldest_age: lives
                .iter()
                .map(|l| now.saturating_duration_since(l.born))
                .max()
                .unwrap_or_default(),
        }
        .emit(&metrics);
    }
    while let Some(r) = keepers.join_next().await {
        if let Err(e) = r
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    CanariesObserved {
        longest_silence: Duration::ZERO,
        oldest_age: Duration::ZERO,
    }
    .emit(&metrics);
}

/// One canary slot: allocate, hold, and on loss or retirement, allocate again.
struct Keeper {
    slot: usize,
    fleet: String,
    owner: Owner,
    allocations: Api<GameServerAllocation>,
    gameservers: Api<GameServer>,
    cfg: CanaryConfig,
    address_types: Vec<AddressType>,
    metrics: ProducerMetrics,
    generation: Option<Generation>,
    board: Board,
    shutdown: CancellationToken,
}

/// A canary being held.
struct Held {
    /// Held by this canary until it is released, so a sweep leaves it alone (only dropped).
    _tracked: Tracked,
    name: String,
    uid: Option<String>,
    addr: SocketAddr,
    sock: UdpSocket,
}

/// How holding a canary ended.
enum End {
    Lost(LossReason, String),
    /// `max_age` reached after a transition.
    Retired,
    Shutdown,
}

impl Keeper {
    async fn run(self) {
        while let Some(held) = self.allocate().await {
            self.hold(held).await;
        }
    }

    /// Allocates until a server is held; `None` on shutdown.
    async fn allocate(&self) -> Option<Held> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            let request = self.owner.allocation(&self.fleet, Role::Canary);
            let sent = tokio::time::timeout(
                self.cfg.timeout,
                self.allocations.create(&PostParams::default(), &request),
            )
            .await;
            let (result, status) = match sent {
                Err(_) => ("error_timeout", None),
                Ok(Err(e)) => (classify(&e), None),
                Ok(Ok(gsa)) => match gsa.status {
                    Some(st) => (st.state.as_str(), Some(st)),
                    None => ("error_decode", None),
                },
            };
            CanaryAllocated {
                slot: self.slot,
                fleet: &self.fleet,
                result,
            }
            .emit(&self.metrics);
            if let Some(st) = status.filter(|s| s.state == AllocationState::Allocated)
                && let Some(addr) = resolve(&st, &self.address_types).await
                && let Ok(sock) = connect(addr).await
            {
                // The uid tells a later object of the same name apart; unknown if unreadable.
                let uid = self
                    .gameservers
                    .get(&st.game_server_name)
                    .await
                    .ok()
                    .and_then(|g| g.metadata.uid);
                return Some(Held {
                    _tracked: self.owner.track(&st.game_server_name),
                    name: st.game_server_name,
                    uid,
                    addr,
                    sock,
                });
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.cfg.interval) => {}
            }
        }
    }

    /// Heartbeats and watches `held` until it is lost, retired or the Producer stops.
    async fn hold(&self, held: Held) {
        let born = Instant::now();
        let born_generation = self.generation.as_ref().map(|g| g());
        let mut last_answer = born;
        let mut answered_once = false;
        set_life(&self.board, self.slot, Some(Life { born, last_answer }));
        CanaryStarted {
            slot: self.slot,
            gameserver: &held.name,
            addr: held.addr,
        }
        .emit(&self.metrics);
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The identity is checked before the first heartbeat, then on a suspicion.
        let mut suspect = true;
        let mut seq: u64 = 0;
        let end = loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break End::Shutdown,
                _ = tick.tick() => {}
            }
            if let Some((reason, detail)) = self.read(&held).await {
                break End::Lost(reason, detail);
            }
            seq += 1;
            let line = echo_line(self.slot, seq);
            let answered = heartbeat_with(&held.sock, &line, self.cfg.interval).await;
            let answered = match answered {
                Some(reply) => {
                    suspect |= !is_echo_of(&reply, &line);
                    if suspect {
                        match identity(&held.sock, self.cfg.interval).await {
                            Identity::Answered(name) if name != held.name => {
                                break End::Lost(
                                    LossReason::Restarted,
                                    format!("answers as `{name}`"),
                                );
                            }
                            Identity::Answered(_) => {
                                suspect = false;
                                true
                            }
                            // Still suspect: asked again at the next answer.
                            Identity::Silent => false,
                        }
                    } else {
                        true
                    }
                }
                None => {
                    // A silence: another process may answer at this address next.
                    suspect = true;
                    false
                }
            };
            if answered {
                let now = Instant::now();
                if answered_once {
                    CanaryHeartbeat {
                        slot: self.slot,
                        gap: now.saturating_duration_since(last_answer),
                    }
                    .emit(&self.metrics);
                }
                answered_once = true;
                last_answer = now;
                set_life(&self.board, self.slot, Some(Life { born, last_answer }));
            }
            let silent = last_answer.elapsed();
            if silent > self.cfg.timeout {
                break End::Lost(
                    LossReason::Timeout,
                    format!("no answer for {:.1} s", silent.as_secs_f64()),
                );
            }
            let transitioned = match (&self.generation, born_generation) {
                (Some(g), Some(at_birth)) => g() != at_birth,
                _ => false,
            };
            if born.elapsed() >= self.cfg.max_age && transitioned {
                break End::Retired;
            }
        };
        set_life(&self.board, self.slot, None);
        let age = born.elapsed();
        match end {
            End::Lost(reason, detail) => {
                CanaryLost {
                    slot: self.slot,
                    gameserver: &held.name,
                    reason,
                    detail: &detail,
                    age,
                }
                .emit(&self.metrics);
                if reason == LossReason::Timeout {
                    self.release(&held, true).await;
                }
            }
            End::Retired | End::Shutdown => {
                CanaryEnded {
                    slot: self.slot,
                    gameserver: &held.name,
                    why: if matches!(end, End::Retired) {
                        "max_age"
                    } else {
                        "shutdown"
                    },
                    age,
                }
                .emit(&self.metrics);
                self.release(&held, false).await;
            }
        }
    }

    /// The GameServer as the API shows it: a loss, or `None` while it is held (or unreadable:
    /// the API may be down during an upgrade, which is not the canary's loss).
    async fn read(&self, held: &Held) -> Option<(LossReason, String)> {
        match tokio::time::timeout(self.cfg.interval, self.gameservers.get(&held.name)).await {
            Ok(Ok(gs)) => judge_state(&gs, held.uid.as_deref()),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                Some((LossReason::Deleted, "not found".to_owned()))
            }
            _ => None,
        }
    }

    /// Tells the server to `EXIT` (best effort); with `delete`, also deletes its GameServer,
    /// which may still be Allocated though it stopped answering.
    async fn release(&self, held: &Held, delete: bool) {
        let answered = heartbeat_with(&held.sock, "EXIT", Duration::from_millis(500))
            .await
            .is_some();
        CanaryReleased {
            gameserver: &held.name,
            how: "exit",
            result: if answered { "ok" } else { "timeout" },
        }
        .emit();
        if delete {
            let deleted = tokio::time::timeout(
                self.cfg.timeout,
                self.gameservers
                    .delete(&held.name, &DeleteParams::default()),
            )
            .await;
            CanaryReleased {
                gameserver: &held.name,
                how: "delete",
                result: match deleted {
                    Err(_) => "error_timeout",
                    Ok(Err(e)) => classify(&e),
                    Ok(Ok(_)) => "ok",
                },
            }
            .emit();
        }
    }
}

pub(crate) async fn connect(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

/// The heartbeat line of `slot`'s `seq`th beat: text simple-game-server has no command for,
/// so it echoes it (`ACK: <line>`), numbered so a late answer to an earlier beat is told apart.
pub fn echo_line(slot: usize, seq: u64) -> String {
    format!("ECHO upsoak-canary-{slot}-{seq}")
}

/// True when `reply` is the server's echo of `line` (`ACK: <line>`, a newline after it).
pub fn is_echo_of(reply: &str, line: &str) -> bool {
    reply.trim_end() == format!("ACK: {line}")
}

/// What a `GAMESERVER` identity check found.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// The server named its GameServer (or answered something else, kept as is).
    Answered(String),
    Silent,
}

/// Asks the server at `sock` for its GameServer's name, within `wait`.
async fn identity(sock: &UdpSocket, wait: Duration) -> Identity {
    match heartbeat_with(sock, "GAMESERVER", wait).await {
        Some(reply) => Identity::Answered(
            answered_name(&reply).map_or_else(|| reply.trim().to_owned(), str::to_owned),
        ),
        None => Identity::Silent,
    }
}

pub(crate) async fn heartbeat_with(sock: &UdpSocket, text: &str, wait: Duration) -> Option<String> {
    let mut buf = [0u8; 1024];
    // A late answer to an earlier heartbeat is not this one's.
    while sock.try_recv(&mut buf).is_ok() {}
    let exchange = async {
        sock.send(text.as_bytes()).await?;
        let n = sock.recv(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    match tokio::time::timeout(wait, exchange).await {
        Ok(Ok(reply)) => Some(reply),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn gs(uid: &str, state: GameServerState) -> GameServer {
        crate::producer::owner::gameserver_in(
            ObjectMeta {
                name: Some("gs-1".into()),
                uid: Some(uid.into()),
                ..ObjectMeta::default()
            },
            state,
        )
    }

    #[test]
    fn each_state_is_judged_with_its_reason() {
        let reason = |uid, s| judge_state(&gs(uid, s), Some("u1")).map(|(r, _)| r);
        assert_eq!(reason("u1", GameServerState::Allocated), None);
        assert_eq!(
            reason("u1", GameServerState::Shutdown),
            Some(LossReason::Deleted)
        );
        assert_eq!(
            reason("u2", GameServerState::Allocated),
            Some(LossReason::Deleted)
        );
        assert_eq!(
            reason("u1", GameServerState::Ready),
            Some(LossReason::Restarted)
        );
        assert_eq!(
            reason("u1", GameServerState::RequestReady),
            Some(LossReason::Restarted)
        );
        for s in [
            GameServerState::Unhealthy,
            GameServerState::Error,
            GameServerState::Reserved,
        ] {
            assert_eq!(reason("u1", s), Some(LossReason::LeftAllocated), "{s}");
        }
    }

    #[test]
    fn a_heartbeat_is_answered_only_by_its_own_echo() {
        let line = echo_line(2, 7);
        assert_eq!(line, "ECHO upsoak-canary-2-7");
        // simple-game-server's answer to text it has no command for.
        assert!(is_echo_of("ACK: ECHO upsoak-canary-2-7\n", &line));
        // A late answer to the previous beat, or another command's answer, is not.
        assert!(!is_echo_of("ACK: ECHO upsoak-canary-2-6\n", &line));
        assert!(!is_echo_of("NAME: gs-1\n", &line));
        assert!(!is_echo_of("ACK: ECHO upsoak-canary-2-70\n", &line));
    }

    /// The simulator's game server (its simple-game-server protocol), with an SDK that
    /// accepts every call.
    struct Accepting;
    impl upsoak_sim::game::SdkHandle for Accepting {
        fn sdk(
            &self,
            _: &str,
            _: &str,
            _: upsoak_sim::game::SdkCall,
        ) -> Result<(), upsoak_sim::game::SdkError> {
            Ok(())
        }
    }

    /// Another GameServer's process at the canary's address (the simulator's game server for
    /// `gs-2`): its answer to a heartbeat is a plain echo, and only the identity check names it.
    #[tokio::test]
    async fn the_identity_check_names_the_server_at_the_address_and_a_heartbeat_does_not() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(upsoak_sim::game::serve(
            server,
            "default".into(),
            "gs-2".into(),
            Arc::new(Accepting),
            None,
            stop.clone(),
        ));
        let sock = connect(addr).await.unwrap();
        let line = echo_line(0, 1);
        let reply = heartbeat_with(&sock, &line, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(is_echo_of(&reply, &line), "{reply}");
        assert!(answered_name(&reply).is_none(), "{reply}");
        assert_eq!(
            identity(&sock, Duration::from_secs(5)).await,
            Identity::Answered("gs-2".into())
        );
        stop.cancel();
        task.await.unwrap();
        // Nobody at the address: silent.
        assert_eq!(
            identity(&sock, Duration::from_millis(200)).await,
            Identity::Silent
        );
    }

    #[test]
    fn the_name_is_read_from_real_and_simulated_answers() {
        assert_eq!(answered_name("NAME: gs-1\n"), Some("gs-1"));
        assert_eq!(answered_name("ACK: NAME: gs-1\n"), Some("gs-1"));
        assert_eq!(answered_name("ACK: hello\n"), None);
    }

    #[test]
    fn unmeetable_configurations_are_refused_with_their_key() {
        let fleets = [FleetLoad {
            max_replicas: 3,
            ..FleetLoad::default()
        }];
        let bad = CanaryConfig {
            count: 4,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_age: Duration::from_secs(1),
        };
        let text: Vec<String> = bad
            .problems(&fleets)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            text[0].starts_with("count: 4 canaries cannot be held"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("interval: 5s is not below timeout 5s"),
            "{text:?}"
        );
        assert!(text[2].starts_with("max_age:"), "{text:?}");
        // No Fleet: nothing to hold them on, so they are off, not an error.
        assert!(
            CanaryConfig::default()
                .problems(&[])
                .iter()
                .next()
                .is_none()
        );
        let off = CanaryConfig { count: 0, ..bad };
        assert!(off.problems(&[]).iter().next().is_none());
        assert!(
            CanaryConfig::default()
                .problems(&[FleetLoad::default()])
                .iter()
                .next()
                .is_none()
        );
    }
}
