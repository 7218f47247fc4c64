//! The simple-game-server protocol, one UDP port per simulated GameServer: [`PortPool`] hands out
//! the ports, [`serve`] answers text commands with `ACK: …` or `ERROR: …`, and every SDK call the
//! game makes reaches the rest of the simulator through [`SdkHandle`].
//!
//! - [`ports`]: the port range and its leases.
//! - [`protocol`]: one game's state and the text commands it answers (kept apart from the
//!   socket loop so the protocol is tested without a network).
//! - [`counters`]: the Counters and Lists commands.
//! - [`metadata`]: the API server's limits on the labels and annotations a game sets.

mod counters;
pub mod metadata;
mod ports;
mod protocol;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use upsoak_agones::GameServerState;

use crate::events;

pub use counters::{DEFAULT_COUNTER_CAPACITY, DEFAULT_LIST_CAPACITY, MAX_LIST_CAPACITY};
pub use ports::{GameError, PortPool};
pub use protocol::{DEFAULT_PLAYER_CAPACITY, GameState, MAX_REPLY_BYTES, Outcome, Reply};

/// Bytes of a datagram that are read; the rest is dropped, as by the real server's 1 KiB buffer.
pub const MAX_DATAGRAM_BYTES: usize = 1024;

/// Encoded bytes of a GameServer an SDK update may leave, at most: etcd refuses a write past
/// 1.5 MiB (`--max-request-bytes`, etcd `server/embed/config.go`, `DefaultMaxRequestBytes`),
/// so the API server cannot store a larger object and the sidecar's update fails.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// What a game server's SDK calls do to its GameServer object.
pub trait SdkHandle: Send + Sync + 'static {
    /// Applies `call` to the GameServer `namespace/name`. An error is sent back as `ERROR: …`.
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), SdkError>;

    /// True while an `upgrade_drops_game_traffic` fault silences game ports: a datagram is
    /// then dropped unread and unanswered, as by a network that lost it.
    fn traffic_dropped(&self) -> bool {
        false
    }
}

/// Why an SDK call was refused; its text is the protocol's `ERROR: …` reply.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The GameServer is gone (deleted, or never existed).
    #[error("gameserver {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    /// `SDK.Ready()` from a state that cannot become Ready.
    #[error("cannot mark a {0} gameserver Ready")]
    CannotReady(GameServerState),
    /// `SDK.Allocate()` from a state that cannot be allocated.
    #[error("cannot allocate a {0} gameserver")]
    CannotAllocate(GameServerState),
    /// `SDK.SetLabel` or `SDK.SetAnnotation` with an empty key.
    #[error("empty key")]
    EmptyKey,
    /// `SDK.SetLabel` or `SDK.SetAnnotation` that the API server would refuse (a key, value,
    /// count or total size past its limits); the GameServer is unchanged.
    #[error("{0}")]
    MetadataRefused(String),
    /// An update that would make the GameServer larger than [`MAX_OBJECT_BYTES`].
    #[error(
        "the GameServer would be {0} bytes, more than the {MAX_OBJECT_BYTES} the API server stores"
    )]
    TooLarge(usize),
    /// `SDK.Reserve(d)` whose end is beyond what a timestamp can hold.
    #[error("a reservation of {0:?} ends beyond the representable time")]
    ReservationTooLong(Duration, #[source] jiff::Error),
    /// The simulator is being dropped.
    #[error("the simulator is shutting down")]
    ShuttingDown,
    /// The simulator's state lock is poisoned (a panic elsewhere).
    #[error("the simulator's state is unavailable")]
    Unavailable,
}

/// The protocol's replies are text: a refused call is its message.
impl From<SdkError> for String {
    fn from(e: SdkError) -> String {
        e.to_string()
    }
}

/// An SDK call a game server makes.
#[derive(Debug, Clone, PartialEq)]
pub enum SdkCall {
    /// `SDK.Ready()`.
    Ready,
    /// `SDK.Allocate()`: the game allocates itself.
    Allocate,
    /// `SDK.Shutdown()`.
    Shutdown,
    /// The game stopped its health pings (or died): the GameServer becomes Unhealthy.
    Unhealthy,
    /// `SDK.Reserve(duration)`; zero means until told otherwise.
    Reserve(Duration),
    /// `SDK.SetLabel(key, value)`.
    Label(String, String),
    /// `SDK.SetAnnotation(key, value)`.
    Annotation(String, String),
    /// Sent after every change of the player list or capacity, for `status.players`.
    Players {
        /// Players connected.
        count: i64,
        /// Players allowed.
        capacity: i64,
        /// Connected player ids, in the order they connected.
        ids: Vec<String>,
    },
}

/// The first `N` arguments (more are ignored), or the real server's error for too few.
fn exact<'a, const N: usize>(cmd: &str, args: &[&'a str]) -> Result<[&'a str; N], String> {
    // The real handlers check only for too few parts and ignore extra ones
    // (`examples/simple-game-server/handlers.go`: `if len(parts) < 2 { "Invalid …" }`).
    args.get(..N)
        .and_then(|a| <[&'a str; N]>::try_from(a).ok())
        .ok_or_else(|| {
            let plural = if N == 1 { "" } else { "s" };
            format!("Invalid {cmd}, should have {N} argument{plural}")
        })
}

/// An integer argument, or Go's `strconv.ParseInt` error text, as the real server answers.
fn number(_cmd: &str, _what: &str, text: &str) -> Result<i64, String> {
    text.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {text:?}: {why}")
    })
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Serves the game protocol for the GameServer `namespace/name` on `socket` until `shutdown` is
/// cancelled or the game ends (`EXIT`, `CRASH`, a refused player command). `players` is the
/// PlayerTracking capacity its SDK started with, `None` with the gate off. One command per datagram; the reply goes back
/// to its sender.
pub async fn serve(
    socket: UdpSocket,
    namespace: String,
    name: String,
    sdk: Arc<dyn SdkHandle>,
    players: Option<i64>,
    shutdown: CancellationToken,
) {
    let mut game = GameState::with_players(&name, players);
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        let received = tokio::select! {
            // Cancellation wins over a datagram that arrived at the same time.
            biased;
            () = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (len, peer) = match received {
            Ok(r) => r,
            Err(error) => {
                // A failed read concerns one datagram (e.g. an ICMP error from an earlier
                // peer), not the server: keep serving.
                events::GameReadFailed {
                    namespace: &namespace,
                    name: &name,
                    error: &error,
                }
                .emit();
                continue;
            }
        };
        if sdk.traffic_dropped() {
            continue;
        }
        // Datagrams longer than the buffer are cut to it; broken UTF-8 becomes U+FFFD.
        let line = String::from_utf8_lossy(&buf[..len]);
        let outcome = game.handle(&line, &mut |call| sdk.sdk(&namespace, &name, call));
        if outcome.reply == Reply::Silent {
            return;
        }
        if let Err(error) = socket
            .send_to(outcome.reply.to_datagram().as_bytes(), peer)
            .await
        {
            // An unanswered client is the client's loss, not a reason to stop the server.
            events::GameReplyFailed {
                namespace: &namespace,
                name: &name,
                peer: &peer,
                error: &error,
            }
            .emit();
        }
        if outcome.stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;

    use super::protocol::tests::players;
    use super::*;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// Records every SDK call; refuses reservations.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String, SdkCall)>>);

    impl Recorder {
        fn calls(&self) -> Vec<(String, String, SdkCall)> {
            self.0.lock().unwrap().clone()
        }
    }

    impl SdkHandle for Recorder {
        fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), SdkError> {
            if matches!(call, SdkCall::Reserve(_)) {
                return Err(SdkError::CannotAllocate(GameServerState::Reserved));
            }
            self.0
                .lock()
                .unwrap()
                .push((namespace.to_owned(), name.to_owned(), call));
            Ok(())
        }
    }

    /// A game server on a port of `pool`, and a client connected to it.
    struct Running {
        port: u16,
        recorder: Arc<Recorder>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        client: UdpSocket,
    }

    async fn start(pool: &PortPool, name: &str) -> Running {
        let (socket, port) = pool.bind(LOCALHOST).await.unwrap();
        let recorder = Arc::new(Recorder::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(
            socket,
            "ns".into(),
            name.into(),
            recorder.clone(),
            Some(100),
            stop.clone(),
        ));
        let client = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        client.connect((LOCALHOST, port)).await.unwrap();
        Running {
            port,
            recorder,
            stop,
            task,
            client,
        }
    }

    async fn say(client: &UdpSocket, datagram: &[u8]) -> String {
        client.send(datagram).await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("no reply within 5s")
            .unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    async fn ends(task: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the game loop did not stop within 5s")
            .unwrap();
    }

    #[tokio::test]
    async fn a_session_over_udp_makes_exactly_its_sdk_calls_and_exit_stops_it() {
        let pool = PortPool::new(0, 0).unwrap();
        let gs = start(&pool, "gs-1").await;
        assert!(gs.port > 0);
        let c = &gs.client;
        assert_eq!(say(c, b"GAMESERVER").await, "NAME: gs-1\n");
        assert_eq!(say(c, b"READY\n").await, "ACK: READY\n");
        assert_eq!(
            say(c, b"PLAYER_CONNECT p1").await,
            "ACK: PLAYER_CONNECT p1\n"
        );
        assert_eq!(
            say(c, b"PLAYER_CONNECT p2").await,
            "ACK: PLAYER_CONNECT p2\n"
        );
        assert_eq!(
            say(c, b"PLAYER_CONNECT p1").await,
            "ACK: PLAYER_CONNECT p1\n"
        );
        assert_eq!(say(c, b"GET_PLAYERS").await, "p1,p2\n");
        assert_eq!(
            say(c, b"RESERVE 30s").await,
            "ERROR: cannot allocate a Reserved gameserver\n"
        );
        assert_eq!(say(c, b"EXIT").await, "ACK: EXIT\n");
        ends(gs.task).await;
        let call = |c: SdkCall| ("ns".to_owned(), "gs-1".to_owned(), c);
        assert_eq!(
            gs.recorder.calls(),
            [
                call(SdkCall::Ready),
                call(players(1, 100, &["p1"])),
                call(players(2, 100, &["p1", "p2"])),
                call(SdkCall::Shutdown),
            ]
        );
    }

    #[tokio::test]
    async fn the_loop_stops_on_cancellation_and_on_crash() {
        let pool = PortPool::new(0, 0).unwrap();
        let gs = start(&pool, "gs-2").await;
        assert_eq!(say(&gs.client, b"PLAYER_COUNT").await, "0\n");
        gs.stop.cancel();
        ends(gs.task).await;
        assert!(gs.recorder.calls().is_empty());

        let gs = start(&pool, "gs-3").await;
        // CRASH exits without a reply, as `os.Exit` does.
        gs.client.send(b"CRASH").await.unwrap();
        ends(gs.task).await;
        assert_eq!(
            gs.recorder.calls(),
            [("ns".into(), "gs-3".into(), SdkCall::Unhealthy)]
        );
        // The token was never cancelled: the loop ended by itself.
        assert!(!gs.stop.is_cancelled());
    }

    #[tokio::test]
    async fn oversized_and_garbage_datagrams_are_answered_and_survived() {
        let pool = PortPool::new(0, 0).unwrap();
        let gs = start(&pool, "gs-4").await;
        let c = &gs.client;
        // 4 KiB of invalid UTF-8: read as 1 KiB of U+FFFD (3 KiB of text), echoed cut to the
        // reply bound at a character boundary.
        let reply = say(c, &[0xff; 4096]).await;
        let fits = (MAX_REPLY_BYTES - "ACK: \n".len()) / 3;
        assert_eq!(reply, format!("ACK: {}\n", "\u{fffd}".repeat(fits)));
        assert!(reply.len() <= MAX_REPLY_BYTES);
        // 4 KiB of text: cut to its first 1 KiB.
        let long = "x".repeat(4096);
        assert_eq!(
            say(c, long.as_bytes()).await,
            format!("ACK: {}\n", &long[..MAX_DATAGRAM_BYTES])
        );
        // A command cut in the middle of its arguments is still parsed, not a crash.
        let mut cut = b"PLAYER_CONNECT ".to_vec();
        cut.extend([b'p'; 2000]);
        let reply = say(c, &cut).await;
        assert_eq!(
            reply,
            format!("ACK: {}\n", String::from_utf8_lossy(&cut[..1024]))
        );
        assert_eq!(say(c, b"PLAYER_COUNT").await, "1\n");
        assert_eq!(say(c, b"GAMESERVER").await, "NAME: gs-4\n");
        assert!(!gs.task.is_finished());
        gs.stop.cancel();
        ends(gs.task).await;
    }
}
