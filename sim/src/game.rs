//! The simple-game-server protocol, one UDP port per simulated GameServer: [`PortPool`] hands out
//! the ports, [`serve`] answers text commands with `ACK: …` or `ERROR: …`, and every SDK call the
//! game makes reaches the rest of the simulator through [`SdkHandle`].
//!
//! Parsing and game state ([`GameState::handle`]) are kept apart from the socket loop so the
//! protocol can be tested without a network.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Players a game server accepts before its first `PLAYER_CAPACITY n`. Agones starts from the
/// GameServer's `spec.players.initialCapacity`; the simulator has no such field, so it picks a
/// number large enough that sessions are only refused when a test sets a lower capacity.
pub const DEFAULT_PLAYER_CAPACITY: i64 = 100;
/// Capacity of a counter the first time a command names it.
pub const DEFAULT_COUNTER_CAPACITY: i64 = 1000;
/// Capacity of a list the first time a command names it.
pub const DEFAULT_LIST_CAPACITY: i64 = 1000;
/// Largest list capacity; Agones refuses more than 1000 values in a list.
pub const MAX_LIST_CAPACITY: i64 = 1000;
/// Bytes of a datagram that are read; the rest is dropped, as by the real server's 1 KiB buffer.
pub const MAX_DATAGRAM_BYTES: usize = 1024;

/// Why a game port could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// The configured range is empty or starts at port 0 (which would mean "any port").
    #[error("invalid game port range {min}-{max}: need 1 <= min <= max")]
    BadRange { min: u16, max: u16 },
    /// Every port of the range is leased by the pool or held by another process.
    #[error("no free game port in {min}-{max}: every port is leased or held by another process")]
    Exhausted { min: u16, max: u16 },
    /// Binding failed for a reason other than the port being taken (e.g. the IP is not local).
    #[error("cannot bind game port `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// What a game server's SDK calls do to its GameServer object.
pub trait SdkHandle: Send + Sync + 'static {
    /// Applies `call` to the GameServer `namespace/name`. `Err(text)` is sent back as `ERROR: text`.
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), String>;
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

/// Hands out UDP ports from an inclusive range, skipping ports another process holds.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    max: u16,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    leased: BTreeSet<u16>,
    /// The next port to try; it rotates so a released port is not handed out again at once,
    /// which keeps late datagrams for a deleted server from reaching its successor.
    cursor: u16,
}

impl PortPool {
    /// A pool over the ports `min..=max`.
    pub fn new(min: u16, max: u16) -> Result<PortPool, GameError> {
        if min == 0 || min > max {
            return Err(GameError::BadRange { min, max });
        }
        Ok(PortPool {
            min,
            max,
            state: Mutex::new(PoolState {
                leased: BTreeSet::new(),
                cursor: min,
            }),
        })
    }

    /// Binds a UDP socket on `ip` at a port of the range that is neither leased nor held by
    /// another process, and leases that port until [`PortPool::release`].
    pub async fn bind(&self, ip: IpAddr) -> Result<(UdpSocket, u16), GameError> {
        // Each attempt moves the cursor on, so this tries every free port at most once.
        for _ in 0..self.span() {
            let Some(port) = self.lease_next() else {
                break;
            };
            // The lock is not held here: binding is awaited.
            match UdpSocket::bind((ip, port)).await {
                Ok(socket) => return Ok((socket, port)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    // Another process has it; it may let go later, so it goes back to the pool.
                    self.release(port);
                }
                Err(source) => {
                    self.release(port);
                    return Err(GameError::Bind {
                        addr: SocketAddr::new(ip, port),
                        source,
                    });
                }
            }
        }
        Err(GameError::Exhausted {
            min: self.min,
            max: self.max,
        })
    }

    /// Returns a port to the pool; releasing a port that is not leased does nothing.
    pub fn release(&self, port: u16) {
        self.lock().leased.remove(&port);
    }

    /// Ports currently leased.
    pub fn leased(&self) -> usize {
        self.lock().leased.len()
    }

    fn span(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    /// Leases the first port from the cursor on that is not leased, and moves the cursor past it.
    fn lease_next(&self) -> Option<u16> {
        let mut st = self.lock();
        for _ in 0..self.span() {
            let port = st.cursor;
            st.cursor = if port == self.max { self.min } else { port + 1 };
            if st.leased.insert(port) {
                return Some(port);
            }
        }
        None
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Nothing panics while holding the lock and every update is a single set operation, so
        // the state is consistent even if a holder did panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Sent as `ACK: <text>`.
    Ack(String),
    /// Sent as `ERROR: <text>`.
    Error(String),
}

impl Reply {
    /// The datagram sent back to the client.
    pub fn to_datagram(&self) -> String {
        match self {
            Reply::Ack(text) => format!("ACK: {text}\n"),
            Reply::Error(text) => format!("ERROR: {text}\n"),
        }
    }
}

/// What handling one command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What to send back.
    pub reply: Reply,
    /// The game is over (`EXIT`, `CRASH`): stop serving after the reply.
    pub stop: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    count: i64,
    capacity: i64,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            count: 0,
            capacity: DEFAULT_COUNTER_CAPACITY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct List {
    /// Distinct values in the order they were appended.
    values: Vec<String>,
    capacity: i64,
}

impl Default for List {
    fn default() -> Self {
        List {
            values: Vec::new(),
            capacity: DEFAULT_LIST_CAPACITY,
        }
    }
}

/// One game server's own state: health, players, counters and lists.
#[derive(Debug, Clone)]
pub struct GameState {
    name: String,
    healthy: bool,
    /// Distinct player ids in the order they connected, which is how Agones lists them.
    players: Vec<String>,
    player_capacity: i64,
    counters: BTreeMap<String, Counter>,
    lists: BTreeMap<String, List>,
}

impl GameState {
    /// A fresh game for the GameServer `name`: healthy, no players, capacity
    /// [`DEFAULT_PLAYER_CAPACITY`], no counters or lists.
    pub fn new(name: &str) -> GameState {
        GameState {
            name: name.to_owned(),
            healthy: true,
            players: Vec::new(),
            player_capacity: DEFAULT_PLAYER_CAPACITY,
            counters: BTreeMap::new(),
            lists: BTreeMap::new(),
        }
    }

    /// False once `UNHEALTHY` was handled: the real server stops its health pings then.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Handles one command `line` (one datagram's text). SDK calls go through `sdk`; when it
    /// refuses, the reply is `ERROR: <its text>` and the game state is left as it was (except
    /// that `EXIT` and `CRASH` still end the game: the process is gone either way).
    pub fn handle(
        &mut self,
        line: &str,
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), String>,
    ) -> Outcome {
        let text = line.trim_end_matches(['\r', '\n']);
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            // Blank input is echoed like any other unknown text.
            return Outcome {
                reply: Reply::Ack(text.to_owned()),
                stop: false,
            };
        };
        let stop = matches!(cmd, "EXIT" | "CRASH") && args.is_empty();
        let reply = match self.command(cmd, args, text, sdk) {
            Ok(ack) => Reply::Ack(ack),
            Err(error) => Reply::Error(error),
        };
        Outcome { reply, stop }
    }

    /// The ACK text of one command, or the ERROR text.
    fn command(
        &mut self,
        cmd: &str,
        args: &[&str],
        text: &str,
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), String>,
    ) -> Result<String, String> {
        // Like the real server, commands that only act are acknowledged with their own text.
        let echo = || Ok(text.to_owned());
        match cmd {
            "EXIT" => {
                let [] = exact(cmd, args)?;
                sdk(SdkCall::Shutdown)?;
                echo()
            }
            "CRASH" => {
                // The real process dies without a Shutdown; its health pings stop, so Agones
                // marks it Unhealthy. Replying is a courtesy the real one cannot offer.
                let [] = exact(cmd, args)?;
                self.healthy = false;
                sdk(SdkCall::Unhealthy)?;
                echo()
            }
            "UNHEALTHY" => {
                let [] = exact(cmd, args)?;
                self.healthy = false;
                sdk(SdkCall::Unhealthy)?;
                echo()
            }
            "GAMESERVER" => {
                let [] = exact(cmd, args)?;
                Ok(format!("NAME: {}", self.name))
            }
            "READY" => {
                let [] = exact(cmd, args)?;
                sdk(SdkCall::Ready)?;
                echo()
            }
            "ALLOCATE" => {
                let [] = exact(cmd, args)?;
                sdk(SdkCall::Allocate)?;
                echo()
            }
            "RESERVE" => {
                let [duration] = exact(cmd, args)?;
                let duration = parse_duration(duration).ok_or_else(|| {
                    format!("RESERVE: `{duration}` is not a duration like 10s, 1m30s or 500ms")
                })?;
                sdk(SdkCall::Reserve(duration))?;
                echo()
            }
            "LABEL" => {
                let [key, value] = exact(cmd, args)?;
                sdk(SdkCall::Label(key.to_owned(), value.to_owned()))?;
                echo()
            }
            "ANNOTATION" => {
                let [key, value] = exact(cmd, args)?;
                sdk(SdkCall::Annotation(key.to_owned(), value.to_owned()))?;
                echo()
            }
            "PLAYER_CAPACITY" => match args {
                [] => Ok(self.player_capacity.to_string()),
                [capacity] => {
                    let capacity = number(cmd, "capacity", capacity)?;
                    if capacity < 0 {
                        return Err(format!(
                            "PLAYER_CAPACITY: capacity must not be negative, got {capacity}"
                        ));
                    }
                    self.set_players(self.players.clone(), capacity, sdk)?;
                    echo()
                }
                _ => Err(format!(
                    "PLAYER_CAPACITY takes 0 or 1 argument, got {}",
                    args.len()
                )),
            },
            "PLAYER_CONNECT" => {
                let [id] = exact(cmd, args)?;
                if self.is_connected(id) {
                    return Err(format!(
                        "PLAYER_CONNECT: player `{id}` is already connected"
                    ));
                }
                if len_i64(self.players.len()) >= self.player_capacity {
                    return Err(format!(
                        "PLAYER_CONNECT: players are at capacity ({})",
                        self.player_capacity
                    ));
                }
                let mut players = self.players.clone();
                players.push(id.to_owned());
                self.set_players(players, self.player_capacity, sdk)?;
                echo()
            }
            "PLAYER_DISCONNECT" => {
                let [id] = exact(cmd, args)?;
                if !self.is_connected(id) {
                    return Err(format!("PLAYER_DISCONNECT: player `{id}` is not connected"));
                }
                let players = self.players.iter().filter(|p| *p != id).cloned().collect();
                self.set_players(players, self.player_capacity, sdk)?;
                echo()
            }
            "PLAYER_CONNECTED" => {
                let [id] = exact(cmd, args)?;
                Ok(self.is_connected(id).to_string())
            }
            "GET_PLAYERS" => {
                let [] = exact(cmd, args)?;
                Ok(self.players.join(","))
            }
            "PLAYER_COUNT" => {
                let [] = exact(cmd, args)?;
                Ok(self.players.len().to_string())
            }
            // Counters and lists: replies carry the real server's words (`COUNTER: 3`,
            // `SUCCESS: true`, …) so output reads the same as against Agones.
            "GET_COUNTER_COUNT" => {
                let [name] = exact(cmd, args)?;
                Ok(format!("COUNTER: {}", self.counter(name).count))
            }
            "GET_COUNTER_CAPACITY" => {
                let [name] = exact(cmd, args)?;
                Ok(format!("CAPACITY: {}", self.counter(name).capacity))
            }
            "INCREMENT_COUNTER" | "DECREMENT_COUNTER" => {
                let [name, amount] = exact(cmd, args)?;
                let amount = number(cmd, "amount", amount)?;
                if amount < 0 {
                    return Err(format!("{cmd}: amount must not be negative, got {amount}"));
                }
                let current = self.counter(name);
                let count = if cmd == "INCREMENT_COUNTER" {
                    current.count.checked_add(amount)
                } else {
                    current.count.checked_sub(amount)
                };
                let count = count
                    .filter(|c| (0..=current.capacity).contains(c))
                    .ok_or_else(|| {
                        format!(
                            "{cmd}: counter `{name}` at {} of capacity {} cannot change by {amount}",
                            current.count, current.capacity
                        )
                    })?;
                self.counters
                    .insert(name.to_owned(), Counter { count, ..current });
                Ok("SUCCESS: true".to_owned())
            }
            "SET_COUNTER_COUNT" => {
                let [name, count] = exact(cmd, args)?;
                let count = number(cmd, "count", count)?;
                let current = self.counter(name);
                if !(0..=current.capacity).contains(&count) {
                    return Err(format!(
                        "SET_COUNTER_COUNT: count {count} of counter `{name}` is outside 0..={}",
                        current.capacity
                    ));
                }
                self.counters
                    .insert(name.to_owned(), Counter { count, ..current });
                Ok("SUCCESS: true".to_owned())
            }
            "SET_COUNTER_CAPACITY" => {
                let [name, capacity] = exact(cmd, args)?;
                let capacity = number(cmd, "capacity", capacity)?;
                if capacity < 0 {
                    return Err(format!(
                        "SET_COUNTER_CAPACITY: capacity must not be negative, got {capacity}"
                    ));
                }
                let current = self.counter(name);
                // A count above the new capacity is cut down to it, keeping count <= capacity.
                let counter = Counter {
                    count: current.count.min(capacity),
                    capacity,
                };
                self.counters.insert(name.to_owned(), counter);
                Ok("SUCCESS: true".to_owned())
            }
            "GET_LIST_CAPACITY" => {
                let [name] = exact(cmd, args)?;
                Ok(format!("CAPACITY: {}", self.list(name).capacity))
            }
            "SET_LIST_CAPACITY" => {
                let [name, capacity] = exact(cmd, args)?;
                let capacity = number(cmd, "capacity", capacity)?;
                if !(0..=MAX_LIST_CAPACITY).contains(&capacity) {
                    return Err(format!(
                        "SET_LIST_CAPACITY: capacity {capacity} is outside 0..={MAX_LIST_CAPACITY}"
                    ));
                }
                let list = self.lists.entry(name.to_owned()).or_default();
                list.capacity = capacity;
                // Values beyond the new capacity are dropped from the end, as Agones does.
                list.values
                    .truncate(usize::try_from(capacity).unwrap_or(usize::MAX));
                Ok("SUCCESS: true".to_owned())
            }
            "LIST_CONTAINS" => {
                // The real server answers "not contained" with an ERROR; here it is an answer.
                let [name, value] = exact(cmd, args)?;
                let contains = self
                    .lists
                    .get(name)
                    .is_some_and(|l| l.values.iter().any(|v| v == value));
                Ok(contains.to_string())
            }
            "GET_LIST_LENGTH" => {
                let [name] = exact(cmd, args)?;
                Ok(format!("LENGTH: {}", self.list(name).values.len()))
            }
            "GET_LIST_VALUES" => {
                let [name] = exact(cmd, args)?;
                let list = self.list(name);
                if list.values.is_empty() {
                    Ok("NO VALUES".to_owned())
                } else {
                    Ok(format!("VALUES: {}", list.values.join(",")))
                }
            }
            "APPEND_LIST_VALUE" => {
                let [name, value] = exact(cmd, args)?;
                let list = self.list(name);
                if list.values.iter().any(|v| v == value) {
                    return Err(format!(
                        "APPEND_LIST_VALUE: `{value}` is already in list `{name}`"
                    ));
                }
                if len_i64(list.values.len()) >= list.capacity {
                    return Err(format!(
                        "APPEND_LIST_VALUE: list `{name}` is at capacity ({})",
                        list.capacity
                    ));
                }
                self.lists
                    .entry(name.to_owned())
                    .or_default()
                    .values
                    .push(value.to_owned());
                Ok("SUCCESS: true".to_owned())
            }
            "DELETE_LIST_VALUE" => {
                let [name, value] = exact(cmd, args)?;
                let Some(list) = self
                    .lists
                    .get_mut(name)
                    .filter(|l| l.values.iter().any(|v| v == value))
                else {
                    return Err(format!(
                        "DELETE_LIST_VALUE: `{value}` is not in list `{name}`"
                    ));
                };
                list.values.retain(|v| v != value);
                Ok("SUCCESS: true".to_owned())
            }
            _ => echo(),
        }
    }

    fn is_connected(&self, id: &str) -> bool {
        self.players.iter().any(|p| p == id)
    }

    /// Tells the world about a new player list or capacity, and keeps it only if accepted.
    fn set_players(
        &mut self,
        players: Vec<String>,
        capacity: i64,
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), String>,
    ) -> Result<(), String> {
        sdk(SdkCall::Players {
            count: len_i64(players.len()),
            capacity,
            ids: players.clone(),
        })?;
        self.players = players;
        self.player_capacity = capacity;
        Ok(())
    }

    /// A counter as it is, or as it would be when first named.
    fn counter(&self, name: &str) -> Counter {
        self.counters.get(name).copied().unwrap_or_default()
    }

    /// A list as it is, or as it would be when first named.
    fn list(&self, name: &str) -> List {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

/// Exactly `N` arguments, or an error naming the command.
fn exact<'a, const N: usize>(cmd: &str, args: &[&'a str]) -> Result<[&'a str; N], String> {
    <[&'a str; N]>::try_from(args).map_err(|_| {
        let wanted = match N {
            0 => "no arguments".to_owned(),
            1 => "1 argument".to_owned(),
            n => format!("{n} arguments"),
        };
        format!("{cmd} takes {wanted}, got {}", args.len())
    })
}

/// An integer argument, or an error naming the command and the argument.
fn number(cmd: &str, what: &str, text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("{cmd}: {what} `{text}` is not an integer"))
}

fn len_i64(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// Parses a duration the way Go's `time.ParseDuration` does (the real server uses it): decimal
/// numbers each followed by a unit `ns`, `us`/`µs`, `ms`, `s`, `m` or `h`, e.g. `10s`, `1m30s`,
/// `1.5h`; a bare `0` is allowed. Negative durations are refused: a reservation cannot end
/// before it starts.
fn parse_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut seconds = 0.0_f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        if !number.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        seconds += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Serves the game protocol for the GameServer `namespace/name` on `socket` until `shutdown` is
/// cancelled or the game ends (`EXIT`, `CRASH`). One command per datagram; the reply goes back
/// to its sender.
pub async fn serve(
    socket: UdpSocket,
    namespace: String,
    name: String,
    sdk: Arc<dyn SdkHandle>,
    shutdown: CancellationToken,
) {
    let mut game = GameState::new(&name);
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
                tracing::debug!(%namespace, gameserver = %name, %error, "game port read failed");
                continue;
            }
        };
        // Datagrams longer than the buffer are cut to it; broken UTF-8 becomes U+FFFD.
        let line = String::from_utf8_lossy(&buf[..len]);
        let outcome = game.handle(&line, &mut |call| sdk.sdk(&namespace, &name, call));
        if let Err(error) = socket
            .send_to(outcome.reply.to_datagram().as_bytes(), peer)
            .await
        {
            // An unanswered client is the client's loss, not a reason to stop the server.
            tracing::debug!(%namespace, gameserver = %name, %peer, %error, "game reply failed");
        }
        if outcome.stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// Handles `line`, returning the outcome and the SDK calls it made (all accepted).
    fn run(g: &mut GameState, line: &str) -> (Outcome, Vec<SdkCall>) {
        let mut calls = Vec::new();
        let out = g.handle(line, &mut |c| {
            calls.push(c);
            Ok(())
        });
        (out, calls)
    }

    fn ack(g: &mut GameState, line: &str) -> String {
        match run(g, line).0.reply {
            Reply::Ack(text) => text,
            Reply::Error(e) => panic!("{line:?}: ERROR: {e}"),
        }
    }

    /// The error text; also checks that a refused command made no SDK call and did not stop.
    fn err(g: &mut GameState, line: &str) -> String {
        match run(g, line) {
            (
                Outcome {
                    reply: Reply::Error(e),
                    stop: false,
                },
                calls,
            ) if calls.is_empty() => e,
            other => panic!("{line:?}: expected a plain error, got {other:?}"),
        }
    }

    fn players(count: i64, capacity: i64, ids: &[&str]) -> SdkCall {
        SdkCall::Players {
            count,
            capacity,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn lifecycle_commands_make_their_sdk_calls() {
        let mut g = GameState::new("gs-1");
        let acked = |out: Outcome, text: &str, stop: bool| {
            assert_eq!(
                out,
                Outcome {
                    reply: Reply::Ack(text.into()),
                    stop
                }
            );
        };
        let (out, calls) = run(&mut g, "READY");
        acked(out, "READY", false);
        assert_eq!(calls, [SdkCall::Ready]);
        let (out, calls) = run(&mut g, "ALLOCATE\r\n");
        acked(out, "ALLOCATE", false);
        assert_eq!(calls, [SdkCall::Allocate]);
        let (out, calls) = run(&mut g, "LABEL mode ctf");
        acked(out, "LABEL mode ctf", false);
        assert_eq!(calls, [SdkCall::Label("mode".into(), "ctf".into())]);
        let (out, calls) = run(&mut g, "ANNOTATION map dust");
        acked(out, "ANNOTATION map dust", false);
        assert_eq!(calls, [SdkCall::Annotation("map".into(), "dust".into())]);
        let (out, calls) = run(&mut g, "RESERVE 10s");
        acked(out, "RESERVE 10s", false);
        assert_eq!(calls, [SdkCall::Reserve(Duration::from_secs(10))]);
        let (out, calls) = run(&mut g, "GAMESERVER");
        acked(out, "NAME: gs-1", false);
        assert!(calls.is_empty());

        assert!(g.healthy());
        let (out, calls) = run(&mut g, "UNHEALTHY");
        acked(out, "UNHEALTHY", false);
        assert_eq!(calls, [SdkCall::Unhealthy]);
        assert!(!g.healthy());

        let (out, calls) = run(&mut g, "EXIT");
        acked(out, "EXIT", true);
        assert_eq!(calls, [SdkCall::Shutdown]);
        // A crash is no shutdown: the world only sees the health pings stop.
        let mut g = GameState::new("gs-2");
        let (out, calls) = run(&mut g, "CRASH\n");
        acked(out, "CRASH", true);
        assert_eq!(calls, [SdkCall::Unhealthy]);
        assert!(!g.healthy());
    }

    #[test]
    fn reserve_takes_go_durations() {
        let cases = [
            ("10s", Some(Duration::from_secs(10))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("500ms", Some(Duration::from_millis(500))),
            ("1.5h", Some(Duration::from_secs(5400))),
            ("250us", Some(Duration::from_micros(250))),
            ("0", Some(Duration::ZERO)),
            ("+2s", Some(Duration::from_secs(2))),
            ("10", None),
            ("-1s", None),
            ("s", None),
            (".s", None),
            ("1.2.3s", None),
            ("10 s", None),
            ("10d", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn wrong_arguments_are_errors_naming_the_command() {
        let mut g = GameState::new("gs");
        let cases = [
            ("EXIT now", "EXIT takes no arguments, got 1"),
            ("CRASH hard", "CRASH takes no arguments, got 1"),
            ("READY 1", "READY takes no arguments, got 1"),
            ("GAMESERVER x", "GAMESERVER takes no arguments, got 1"),
            ("RESERVE", "RESERVE takes 1 argument, got 0"),
            ("RESERVE 1s 2s", "RESERVE takes 1 argument, got 2"),
            (
                "RESERVE soon",
                "RESERVE: `soon` is not a duration like 10s, 1m30s or 500ms",
            ),
            ("LABEL k", "LABEL takes 2 arguments, got 1"),
            ("ANNOTATION a b c", "ANNOTATION takes 2 arguments, got 3"),
            (
                "PLAYER_CAPACITY 1 2",
                "PLAYER_CAPACITY takes 0 or 1 argument, got 2",
            ),
            (
                "PLAYER_CAPACITY many",
                "PLAYER_CAPACITY: capacity `many` is not an integer",
            ),
            (
                "PLAYER_CAPACITY -1",
                "PLAYER_CAPACITY: capacity must not be negative, got -1",
            ),
            ("PLAYER_CONNECT", "PLAYER_CONNECT takes 1 argument, got 0"),
            (
                "PLAYER_DISCONNECT a b",
                "PLAYER_DISCONNECT takes 1 argument, got 2",
            ),
            (
                "PLAYER_CONNECTED",
                "PLAYER_CONNECTED takes 1 argument, got 0",
            ),
            ("GET_PLAYERS all", "GET_PLAYERS takes no arguments, got 1"),
            ("PLAYER_COUNT x", "PLAYER_COUNT takes no arguments, got 1"),
            (
                "GET_COUNTER_COUNT",
                "GET_COUNTER_COUNT takes 1 argument, got 0",
            ),
            (
                "INCREMENT_COUNTER c",
                "INCREMENT_COUNTER takes 2 arguments, got 1",
            ),
            (
                "INCREMENT_COUNTER c x",
                "INCREMENT_COUNTER: amount `x` is not an integer",
            ),
            (
                "DECREMENT_COUNTER c 1.5",
                "DECREMENT_COUNTER: amount `1.5` is not an integer",
            ),
            (
                "SET_COUNTER_COUNT c ten",
                "SET_COUNTER_COUNT: count `ten` is not an integer",
            ),
            (
                "SET_COUNTER_CAPACITY c",
                "SET_COUNTER_CAPACITY takes 2 arguments, got 1",
            ),
            (
                "GET_LIST_CAPACITY",
                "GET_LIST_CAPACITY takes 1 argument, got 0",
            ),
            (
                "SET_LIST_CAPACITY l big",
                "SET_LIST_CAPACITY: capacity `big` is not an integer",
            ),
            ("LIST_CONTAINS l", "LIST_CONTAINS takes 2 arguments, got 1"),
            ("GET_LIST_LENGTH", "GET_LIST_LENGTH takes 1 argument, got 0"),
            (
                "GET_LIST_VALUES a b",
                "GET_LIST_VALUES takes 1 argument, got 2",
            ),
            (
                "APPEND_LIST_VALUE l",
                "APPEND_LIST_VALUE takes 2 arguments, got 1",
            ),
            (
                "DELETE_LIST_VALUE l a b",
                "DELETE_LIST_VALUE takes 2 arguments, got 3",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(err(&mut g, line), want, "{line:?}");
        }
        // None of them changed anything.
        assert_eq!(ack(&mut g, "PLAYER_CAPACITY"), "100");
        assert!(g.healthy());
    }

    #[test]
    fn anything_else_is_echoed() {
        let mut g = GameState::new("gs");
        for (line, want) in [
            ("hello world\r\n", "hello world"),
            ("hello  world", "hello  world"),
            ("", ""),
            ("\n", ""),
            ("   ", "   "),
            // Commands are case-sensitive, as in the real server.
            ("ready", "ready"),
            ("EXITNOW", "EXITNOW"),
            ("\u{fffd}\u{fffd}", "\u{fffd}\u{fffd}"),
        ] {
            let (out, calls) = run(&mut g, line);
            assert_eq!(
                out,
                Outcome {
                    reply: Reply::Ack(want.into()),
                    stop: false
                },
                "{line:?}"
            );
            assert!(calls.is_empty());
        }
        assert_eq!(Reply::Ack("x".into()).to_datagram(), "ACK: x\n");
        assert_eq!(Reply::Error("y".into()).to_datagram(), "ERROR: y\n");
    }

    #[test]
    fn players_connect_up_to_capacity_and_are_mirrored() {
        let mut g = GameState::new("gs");
        assert_eq!(ack(&mut g, "PLAYER_CAPACITY"), "100");
        let (out, calls) = run(&mut g, "PLAYER_CAPACITY 2");
        assert_eq!(out.reply, Reply::Ack("PLAYER_CAPACITY 2".into()));
        assert_eq!(calls, [players(0, 2, &[])]);
        assert_eq!(ack(&mut g, "PLAYER_CAPACITY"), "2");

        let (out, calls) = run(&mut g, "PLAYER_CONNECT b");
        assert_eq!(out.reply, Reply::Ack("PLAYER_CONNECT b".into()));
        assert_eq!(calls, [players(1, 2, &["b"])]);
        assert_eq!(
            err(&mut g, "PLAYER_CONNECT b"),
            "PLAYER_CONNECT: player `b` is already connected"
        );
        let (_, calls) = run(&mut g, "PLAYER_CONNECT a");
        assert_eq!(calls, [players(2, 2, &["b", "a"])]);
        assert_eq!(
            err(&mut g, "PLAYER_CONNECT c"),
            "PLAYER_CONNECT: players are at capacity (2)"
        );
        // Connection order, not sorted order.
        assert_eq!(ack(&mut g, "GET_PLAYERS"), "b,a");
        assert_eq!(ack(&mut g, "PLAYER_COUNT"), "2");
        assert_eq!(ack(&mut g, "PLAYER_CONNECTED a"), "true");
        assert_eq!(ack(&mut g, "PLAYER_CONNECTED c"), "false");

        assert_eq!(
            err(&mut g, "PLAYER_DISCONNECT c"),
            "PLAYER_DISCONNECT: player `c` is not connected"
        );
        let (out, calls) = run(&mut g, "PLAYER_DISCONNECT b");
        assert_eq!(out.reply, Reply::Ack("PLAYER_DISCONNECT b".into()));
        assert_eq!(calls, [players(1, 2, &["a"])]);
        assert_eq!(ack(&mut g, "PLAYER_CONNECTED b"), "false");

        // Lowering the capacity below the count keeps the players, but lets nobody in.
        let (_, calls) = run(&mut g, "PLAYER_CAPACITY 0");
        assert_eq!(calls, [players(1, 0, &["a"])]);
        assert!(err(&mut g, "PLAYER_CONNECT d").contains("at capacity (0)"));
        assert_eq!(ack(&mut g, "GET_PLAYERS"), "a");
        let (_, calls) = run(&mut g, "PLAYER_DISCONNECT a");
        assert_eq!(calls, [players(0, 0, &[])]);
        assert_eq!(ack(&mut g, "GET_PLAYERS"), "");
        assert_eq!(ack(&mut g, "PLAYER_COUNT"), "0");
    }

    #[test]
    fn a_refused_sdk_call_is_an_error_and_changes_nothing() {
        let mut g = GameState::new("gs");
        let mut refuse = |_: SdkCall| Err::<(), _>("gameserver is being deleted".to_owned());
        let out = g.handle("PLAYER_CONNECT a", &mut refuse);
        assert_eq!(
            out,
            Outcome {
                reply: Reply::Error("gameserver is being deleted".into()),
                stop: false
            }
        );
        assert_eq!(ack(&mut g, "PLAYER_COUNT"), "0");
        g.handle("PLAYER_CAPACITY 5", &mut refuse);
        assert_eq!(ack(&mut g, "PLAYER_CAPACITY"), "100");
        ack(&mut g, "PLAYER_CONNECT a");
        g.handle("PLAYER_DISCONNECT a", &mut refuse);
        assert_eq!(ack(&mut g, "GET_PLAYERS"), "a");
        let out = g.handle("READY", &mut refuse);
        assert_eq!(
            out.reply,
            Reply::Error("gameserver is being deleted".into())
        );
        // EXIT still ends the game: the process exits whatever the SDK said.
        let out = g.handle("EXIT", &mut refuse);
        assert_eq!(
            out,
            Outcome {
                reply: Reply::Error("gameserver is being deleted".into()),
                stop: true
            }
        );
    }

    #[test]
    fn counters_stay_within_zero_and_capacity() {
        let mut g = GameState::new("gs");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 0");
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY rooms"), "CAPACITY: 1000");
        assert_eq!(ack(&mut g, "INCREMENT_COUNTER rooms 3"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "DECREMENT_COUNTER rooms 1"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 2");
        assert_eq!(
            err(&mut g, "DECREMENT_COUNTER rooms 3"),
            "DECREMENT_COUNTER: counter `rooms` at 2 of capacity 1000 cannot change by 3"
        );
        assert_eq!(
            err(&mut g, "INCREMENT_COUNTER rooms 999"),
            "INCREMENT_COUNTER: counter `rooms` at 2 of capacity 1000 cannot change by 999"
        );
        assert!(err(&mut g, "INCREMENT_COUNTER rooms 9223372036854775807").contains("cannot"));
        assert_eq!(
            err(&mut g, "INCREMENT_COUNTER rooms -1"),
            "INCREMENT_COUNTER: amount must not be negative, got -1"
        );
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 2");

        assert_eq!(ack(&mut g, "SET_COUNTER_COUNT rooms 1000"), "SUCCESS: true");
        assert_eq!(
            err(&mut g, "SET_COUNTER_COUNT rooms 1001"),
            "SET_COUNTER_COUNT: count 1001 of counter `rooms` is outside 0..=1000"
        );
        assert!(err(&mut g, "SET_COUNTER_COUNT rooms -1").contains("outside 0..=1000"));
        // A smaller capacity cuts the count down to it.
        assert_eq!(ack(&mut g, "SET_COUNTER_CAPACITY rooms 5"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY rooms"), "CAPACITY: 5");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 5");
        assert!(err(&mut g, "INCREMENT_COUNTER rooms 1").contains("at 5 of capacity 5"));
        assert_eq!(
            err(&mut g, "SET_COUNTER_CAPACITY rooms -1"),
            "SET_COUNTER_CAPACITY: capacity must not be negative, got -1"
        );
        assert_eq!(ack(&mut g, "SET_COUNTER_CAPACITY rooms 0"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 0");
        // Counters are independent.
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY other"), "CAPACITY: 1000");
    }

    #[test]
    fn lists_hold_distinct_values_up_to_capacity() {
        let mut g = GameState::new("gs");
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY maps"), "CAPACITY: 1000");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 0");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "NO VALUES");
        assert_eq!(ack(&mut g, "LIST_CONTAINS maps dust"), "false");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps dust"), "SUCCESS: true");
        assert_eq!(
            ack(&mut g, "APPEND_LIST_VALUE maps inferno"),
            "SUCCESS: true"
        );
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps nuke"), "SUCCESS: true");
        assert_eq!(
            err(&mut g, "APPEND_LIST_VALUE maps dust"),
            "APPEND_LIST_VALUE: `dust` is already in list `maps`"
        );
        assert_eq!(ack(&mut g, "LIST_CONTAINS maps inferno"), "true");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 3");
        assert_eq!(
            ack(&mut g, "GET_LIST_VALUES maps"),
            "VALUES: dust,inferno,nuke"
        );

        assert_eq!(
            err(&mut g, "SET_LIST_CAPACITY maps 1001"),
            "SET_LIST_CAPACITY: capacity 1001 is outside 0..=1000"
        );
        assert!(err(&mut g, "SET_LIST_CAPACITY maps -1").contains("outside 0..=1000"));
        assert_eq!(ack(&mut g, "SET_LIST_CAPACITY maps 1000"), "SUCCESS: true");
        // A smaller capacity drops values from the end.
        assert_eq!(ack(&mut g, "SET_LIST_CAPACITY maps 2"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY maps"), "CAPACITY: 2");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "VALUES: dust,inferno");
        assert_eq!(
            err(&mut g, "APPEND_LIST_VALUE maps nuke"),
            "APPEND_LIST_VALUE: list `maps` is at capacity (2)"
        );

        assert_eq!(
            err(&mut g, "DELETE_LIST_VALUE maps nuke"),
            "DELETE_LIST_VALUE: `nuke` is not in list `maps`"
        );
        assert!(err(&mut g, "DELETE_LIST_VALUE nowhere x").contains("not in list `nowhere`"));
        assert_eq!(ack(&mut g, "DELETE_LIST_VALUE maps dust"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "VALUES: inferno");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps nuke"), "SUCCESS: true");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 2");
        // Lists are independent.
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY other"), "CAPACITY: 1000");
    }

    #[test]
    fn port_pool_rejects_empty_ranges() {
        assert!(matches!(
            PortPool::new(10, 5),
            Err(GameError::BadRange { min: 10, max: 5 })
        ));
        assert!(matches!(
            PortPool::new(0, 5),
            Err(GameError::BadRange { min: 0, max: 5 })
        ));
        assert_eq!(
            PortPool::new(0, 5).unwrap_err().to_string(),
            "invalid game port range 0-5: need 1 <= min <= max"
        );
        assert!(PortPool::new(7, 7).is_ok());
        assert!(PortPool::new(65535, 65535).is_ok());
    }

    #[test]
    fn port_pool_rotates_before_reusing() {
        let pool = PortPool::new(65533, 65535).unwrap();
        let a = pool.lease_next().unwrap();
        let b = pool.lease_next().unwrap();
        pool.release(a);
        let c = pool.lease_next().unwrap();
        assert_eq!([a, b, c], [65533, 65534, 65535]);
        // Wraps around to the released port only now.
        assert_eq!(pool.lease_next(), Some(a));
        assert_eq!(pool.lease_next(), None);
        assert_eq!(pool.leased(), 3);
        pool.release(1);
        assert_eq!(pool.leased(), 3);
    }

    /// Records every SDK call; refuses reservations.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, String, SdkCall)>>);

    impl Recorder {
        fn calls(&self) -> Vec<(String, String, SdkCall)> {
            self.0.lock().unwrap().clone()
        }
    }

    impl SdkHandle for Recorder {
        fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), String> {
            if matches!(call, SdkCall::Reserve(_)) {
                return Err("reservations are refused".into());
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
        let pool = PortPool::new(31700, 31709).unwrap();
        let gs = start(&pool, "gs-1").await;
        assert!((31700..=31709).contains(&gs.port));
        let c = &gs.client;
        assert_eq!(say(c, b"GAMESERVER").await, "ACK: NAME: gs-1\n");
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
            "ERROR: PLAYER_CONNECT: player `p1` is already connected\n"
        );
        assert_eq!(say(c, b"GET_PLAYERS").await, "ACK: p1,p2\n");
        assert_eq!(
            say(c, b"RESERVE 30s").await,
            "ERROR: reservations are refused\n"
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
        let pool = PortPool::new(31710, 31719).unwrap();
        let gs = start(&pool, "gs-2").await;
        assert_eq!(say(&gs.client, b"PLAYER_COUNT").await, "ACK: 0\n");
        gs.stop.cancel();
        ends(gs.task).await;
        assert!(gs.recorder.calls().is_empty());

        let gs = start(&pool, "gs-3").await;
        assert_eq!(say(&gs.client, b"CRASH").await, "ACK: CRASH\n");
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
        let pool = PortPool::new(31720, 31729).unwrap();
        let gs = start(&pool, "gs-4").await;
        let c = &gs.client;
        // 4 KiB of invalid UTF-8: read as 1 KiB of U+FFFD and echoed.
        let reply = say(c, &[0xff; 4096]).await;
        assert_eq!(
            reply,
            format!("ACK: {}\n", "\u{fffd}".repeat(MAX_DATAGRAM_BYTES))
        );
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
        assert_eq!(say(c, b"PLAYER_COUNT").await, "ACK: 1\n");
        assert_eq!(say(c, b"GAMESERVER").await, "ACK: NAME: gs-4\n");
        assert!(!gs.task.is_finished());
        gs.stop.cancel();
        ends(gs.task).await;
    }

    #[tokio::test]
    async fn port_pool_runs_out_and_reuses_released_ports() {
        let pool = PortPool::new(31730, 31732).unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.bind(LOCALHOST).await.unwrap());
        }
        let mut ports: Vec<u16> = held.iter().map(|(_, p)| *p).collect();
        ports.sort_unstable();
        assert_eq!(ports, [31730, 31731, 31732]);
        assert_eq!(pool.leased(), 3);
        assert!(matches!(
            pool.bind(LOCALHOST).await,
            Err(GameError::Exhausted {
                min: 31730,
                max: 31732
            })
        ));

        // The server on the middle port ends: its socket closes and its port comes back.
        let (socket, port) = held.remove(1);
        drop(socket);
        pool.release(port);
        assert_eq!(pool.leased(), 2);
        let (_socket, again) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(again, port);
        assert_eq!(pool.leased(), 3);
    }

    #[tokio::test]
    async fn port_pool_skips_ports_held_by_another_process() {
        let pool = PortPool::new(31740, 31741).unwrap();
        let squatter = std::net::UdpSocket::bind((LOCALHOST, 31740)).unwrap();
        let (_socket, port) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(port, 31741);
        // The held port is not leased, so it is tried again once it is let go.
        assert!(matches!(
            pool.bind(LOCALHOST).await,
            Err(GameError::Exhausted { .. })
        ));
        assert_eq!(pool.leased(), 1);
        drop(squatter);
        let (_socket, port) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(port, 31740);
        assert_eq!(pool.leased(), 2);
    }

    #[tokio::test]
    async fn binding_a_foreign_ip_is_an_error_not_exhaustion() {
        let pool = PortPool::new(31750, 31759).unwrap();
        // TEST-NET-1 is never assigned to a local interface.
        let foreign: IpAddr = "192.0.2.1".parse().unwrap();
        let error = pool.bind(foreign).await.unwrap_err();
        assert!(matches!(error, GameError::Bind { .. }), "{error:?}");
        assert_eq!(error.to_string(), "cannot bind game port `192.0.2.1:31750`");
        assert_eq!(pool.leased(), 0);
    }
}
