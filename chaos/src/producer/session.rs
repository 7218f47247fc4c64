//! A game session on an allocated GameServer, over the simple-game-server UDP protocol:
//! players connect, some leave, the session lasts a random time, then `EXIT`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::events::{ProducerMetrics, SessionOp};

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
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            min_length: Duration::from_secs(2),
            max_length: Duration::from_secs(20),
            max_players: 4,
            command_timeout: Duration::from_secs(2),
            max_sessions: 2000,
        }
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

/// Plays one session on `addr`; returns when the server was told to EXIT (or on shutdown,
/// which also sends EXIT so no server is left allocated by us).
pub async fn play(
    addr: SocketAddr,
    cfg: &SessionConfig,
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
    let players = rng.random_range(1..=cfg.max_players.max(1));
    let mut joined = Vec::new();
    for p in 0..players {
        let id = format!("player-{seed:x}-{p}");
        let (r, _) = command(
            &sock,
            "player_connect",
            &format!("PLAYER_CONNECT {id}"),
            t,
            metrics,
        )
        .await;
        if r == OpResult::Ok {
            joined.push(id);
        }
    }
    command(&sock, "player_count", "PLAYER_COUNT", t, metrics).await;
    let length = if cfg.max_length > cfg.min_length {
        rng.random_range(cfg.min_length..=cfg.max_length)
    } else {
        cfg.min_length
    };
    tokio::select! {
        _ = tokio::time::sleep(length / 2) => {}
        _ = shutdown.cancelled() => {}
    }
    // About half the players leave before the end.
    for id in joined.iter().filter(|_| rng.random_bool(0.5)) {
        command(
            &sock,
            "player_disconnect",
            &format!("PLAYER_DISCONNECT {id}"),
            t,
            metrics,
        )
        .await;
    }
    tokio::select! {
        _ = tokio::time::sleep(length / 2) => {}
        _ = shutdown.cancelled() => {}
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
