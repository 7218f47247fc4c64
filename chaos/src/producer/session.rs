//! A game session on an allocated GameServer, over the simple-game-server UDP protocol: the
//! configured [`script`](super::script) is played, its `WAIT` steps share a random session
//! length, and it ends in `EXIT`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::events::{ProducerMetrics, SessionOp};
use super::script::{self, SESSION_PLACEHOLDER, Step};
use upsoak_common::problems::Problems;

/// How sessions are played.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Shortest session.
    #[serde(with = "humantime_serde")]
    pub min_length: Duration,
    /// Longest session.
    #[serde(with = "humantime_serde")]
    pub max_length: Duration,
    /// Most players in one session (at least one joins).
    pub max_players: u32,
    /// How long to wait for each reply.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Sessions played at once; beyond it an allocated server is released at once with EXIT.
    pub max_sessions: usize,
    /// The commands of a session, in order: `ECHO <text>`, `GAMESERVER`, `LABEL <key> <value>`,
    /// `ANNOTATION <key> <value>` (`{session}` in a value is the session's id), `WAIT`,
    /// `PLAYER_CONNECT`, `PLAYER_DISCONNECT`, `PLAYER_COUNT`, and `EXIT` last.
    pub script: Vec<String>,
    /// Plays the script's player steps, on servers whose `status.players.capacity` is above 0
    /// (the Alpha PlayerTracking gate on and `spec.players.initialCapacity` set); off, or on a
    /// server without capacity, they are skipped, as a real simple-game-server exits on them.
    pub player_tracking: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            min_length: Duration::from_secs(2),
            max_length: Duration::from_secs(20),
            max_players: 4,
            command_timeout: Duration::from_secs(2),
            max_sessions: 2000,
            script: script::default_script(),
            player_tracking: false,
        }
    }
}

impl SessionConfig {
    /// Every problem, with its path below this section.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if self.min_length > self.max_length {
            p.push("", "min_length is above max_length");
        }
        if let Err(e) = script::parse(&self.script) {
            p.extend_under("", e);
        }
        p
    }

    /// The parsed script; the default one if the configured one is invalid (it was checked
    /// when the configuration was loaded).
    pub fn steps(&self) -> Vec<Step> {
        script::parse(&self.script)
            .or_else(|_| script::parse(&script::default_script()))
            .unwrap_or_else(|_| vec![Step::Exit])
    }
}

/// Outcome of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    Ok,
    /// The server answered `ERROR: …`.
    Rejected,
    Timeout,
    /// The socket failed (e.g. ICMP port unreachable: nobody listens any more).
    Unreachable,
}

impl OpResult {
    pub fn as_str(self) -> &'static str {
        match self {
            OpResult::Ok => "ok",
            OpResult::Rejected => "rejected",
            OpResult::Timeout => "timeout",
            OpResult::Unreachable => "unreachable",
        }
    }
}

/// Sends one command and waits for its reply; records it.
pub async fn command(
    sock: &UdpSocket,
    op: &str,
    text: &str,
    timeout: Duration,
    metrics: &ProducerMetrics,
) -> (OpResult, String) {
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let outcome = async {
        sock.send(text.as_bytes()).await?;
        let n = sock.recv(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    let (result, reply, rtt) = match tokio::time::timeout(timeout, outcome).await {
        Err(_) => (OpResult::Timeout, String::new(), None),
        Ok(Err(_)) => (OpResult::Unreachable, String::new(), None),
        Ok(Ok(r)) if r.starts_with("ERROR") => (OpResult::Rejected, r, Some(start.elapsed())),
        Ok(Ok(r)) => (OpResult::Ok, r, Some(start.elapsed())),
    };
    SessionOp {
        op,
        result: result.as_str(),
        rtt,
    }
    .emit(metrics);
    (result, reply)
}

/// Plays `steps` on `addr`; returns when the server was told to EXIT (or on shutdown, which
/// cuts the waits short and still sends EXIT, so no server is left allocated by us).
/// `player_capacity` is the server's `status.players.capacity` when player steps may be
/// played (player tracking on in the configuration), else 0: player steps are then skipped.
#[allow(clippy::too_many_arguments)]
pub async fn play(
    addr: SocketAddr,
    cfg: &SessionConfig,
    steps: &[Step],
    player_capacity: i64,
    seed: u64,
    metrics: &ProducerMetrics,
    shutdown: &CancellationToken,
) {
    let Some(sock) = bind_and_connect(addr).await else {
        SessionOp {
            op: "connect",
            result: "unreachable",
            rtt: None,
        }
        .emit(metrics);
        return;
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let t = cfg.command_timeout;
    let session = format!("{seed:x}");
    let length = if cfg.max_length > cfg.min_length {
        rng.random_range(cfg.min_length..=cfg.max_length)
    } else {
        cfg.min_length
    };
    let waits = steps.iter().filter(|s| **s == Step::Wait).count().max(1);
    let wait = length / u32::try_from(waits).unwrap_or(u32::MAX);
    let players_allowed = u32::try_from(player_capacity.max(0)).unwrap_or(u32::MAX);
    let players = rng
        .random_range(1..=cfg.max_players.max(1))
        .min(players_allowed);
    let mut joined: Vec<String> = Vec::new();
    for step in steps {
        if step.is_player_step() && players_allowed == 0 {
            continue;
        }
        match step {
            Step::Echo(text) => {
                command(&sock, "echo", text, t, metrics).await;
            }
            Step::GameServer => {
                command(&sock, "gameserver", "GAMESERVER", t, metrics).await;
            }
            Step::Label(k, v) => {
                let v = v.replace(SESSION_PLACEHOLDER, &session);
                command(&sock, "label", &format!("LABEL {k} {v}"), t, metrics).await;
            }
            Step::Annotation(k, v) => {
                let v = v.replace(SESSION_PLACEHOLDER, &session);
                let line = format!("ANNOTATION {k} {v}");
                command(&sock, "annotation", &line, t, metrics).await;
            }
            Step::Wait => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            Step::PlayerConnect => {
                for p in 0..players {
                    let id = format!("player-{session}-{p}");
                    let line = format!("PLAYER_CONNECT {id}");
                    let (r, _) = command(&sock, "player_connect", &line, t, metrics).await;
                    if r == OpResult::Ok {
                        joined.push(id);
                    }
                }
            }
            Step::PlayerDisconnect => {
                let leaving: Vec<String> = joined
                    .iter()
                    .filter(|_| rng.random_bool(0.5))
                    .cloned()
                    .collect();
                for id in leaving {
                    let line = format!("PLAYER_DISCONNECT {id}");
                    command(&sock, "player_disconnect", &line, t, metrics).await;
                    joined.retain(|j| *j != id);
                }
            }
            Step::PlayerCount => {
                command(&sock, "player_count", "PLAYER_COUNT", t, metrics).await;
            }
            Step::Exit => {}
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    command(&sock, "exit", "EXIT", t, metrics).await;
}

/// A UDP socket connected to `addr`, or `None` when it cannot be bound or connected.
async fn bind_and_connect(addr: SocketAddr) -> Option<UdpSocket> {
    let bind: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.connect(addr).await.ok()?;
    Some(sock)
}
