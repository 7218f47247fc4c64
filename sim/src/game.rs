//! The simple-game-server UDP protocol, one port per GameServer: text commands in, `ACK: …`
//! or `ERROR: …` out; state changes go to the world through [`SdkHandle`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Why a game port could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    #[error("invalid game port range {min}-{max}")]
    BadRange { min: u16, max: u16 },
    #[error("every game port in {min}-{max} is in use")]
    Exhausted { min: u16, max: u16 },
}

/// What a game server's SDK calls do to its GameServer object.
pub trait SdkHandle: Send + Sync + 'static {
    /// Applies `call` to the GameServer `namespace/name`. `Err(text)` is sent back as `ERROR: text`.
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), String>;
}

/// An SDK call a game server makes.
#[derive(Debug, Clone, PartialEq)]
pub enum SdkCall {
    Ready,
    Allocate,
    Shutdown,
    Unhealthy,
    Reserve(Duration),
    Label(String, String),
    Annotation(String, String),
    /// Sent after every change of the player list or capacity, for `status.players`.
    Players {
        count: i64,
        capacity: i64,
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
    cursor: u16,
}

impl PortPool {
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

    /// The next port after the cursor that is not leased; rotating so a released port is not
    /// reused at once (a late datagram for the old server must not reach the new one).
    fn lease_candidate(&self) -> Option<u16> {
        let mut st = self.state.lock().ok()?;
        let span = u32::from(self.max - self.min) + 1;
        for _ in 0..span {
            let p = st.cursor;
            st.cursor = if p == self.max { self.min } else { p + 1 };
            if st.leased.insert(p) {
                return Some(p);
            }
        }
        None
    }

    /// Binds a free port of the range on `ip`.
    pub async fn bind(&self, ip: IpAddr) -> Result<(UdpSocket, u16), GameError> {
        let span = u32::from(self.max - self.min) + 1;
        for _ in 0..span {
            let Some(port) = self.lease_candidate() else {
                break;
            };
            match UdpSocket::bind((ip, port)).await {
                Ok(s) => return Ok((s, port)),
                // Held by someone else: keep it leased so we stop trying it, and move on.
                Err(_) => continue,
            }
        }
        Err(GameError::Exhausted {
            min: self.min,
            max: self.max,
        })
    }

    /// Returns a port to the pool.
    pub fn release(&self, port: u16) {
        if let Ok(mut st) = self.state.lock() {
            st.leased.remove(&port);
        }
    }

    /// Ports currently leased.
    pub fn leased(&self) -> usize {
        self.state.lock().map(|s| s.leased.len()).unwrap_or(0)
    }
}

/// The game's own state: players, counters and lists.
#[derive(Debug)]
pub struct GameState {
    name: String,
    players: Vec<String>,
    player_capacity: i64,
    counters: BTreeMap<String, (i64, i64)>,
    lists: BTreeMap<String, (Vec<String>, i64)>,
}

/// Player capacity before `PLAYER_CAPACITY n`.
pub const DEFAULT_PLAYER_CAPACITY: i64 = 100;
const DEFAULT_CAPACITY: i64 = 1000;
const MAX_LIST_CAPACITY: i64 = 1000;
const MAX_DATAGRAM: usize = 1024;

/// What one command does: the reply, an SDK call to make, and whether the loop ends.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub reply: Result<String, String>,
    pub call: Option<SdkCall>,
    pub stop: bool,
}

impl Outcome {
    fn ack(text: impl Into<String>) -> Outcome {
        Outcome {
            reply: Ok(text.into()),
            call: None,
            stop: false,
        }
    }
    fn err(text: impl Into<String>) -> Outcome {
        Outcome {
            reply: Err(text.into()),
            call: None,
            stop: false,
        }
    }
    fn call(text: impl Into<String>, call: SdkCall) -> Outcome {
        Outcome {
            reply: Ok(text.into()),
            call: Some(call),
            stop: false,
        }
    }
}

impl GameState {
    pub fn new(name: &str) -> GameState {
        GameState {
            name: name.to_owned(),
            players: Vec::new(),
            player_capacity: DEFAULT_PLAYER_CAPACITY,
            counters: BTreeMap::new(),
            lists: BTreeMap::new(),
        }
    }

    fn players_call(&self) -> SdkCall {
        SdkCall::Players {
            count: self.players.len() as i64,
            capacity: self.player_capacity,
            ids: self.players.clone(),
        }
    }

    /// Handles one command line.
    pub fn handle(&mut self, line: &str) -> Outcome {
        let text = line.trim_end_matches(['\r', '\n']);
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((&cmd, args)) = words.split_first() else {
            return Outcome::ack(text);
        };
        let want = |n: usize| -> Result<(), Outcome> {
            if args.len() == n {
                Ok(())
            } else {
                Err(Outcome::err(format!(
                    "{cmd} takes {n} argument{}, got {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                )))
            }
        };
        let num = |s: &str| -> Result<i64, Outcome> {
            s.parse::<i64>()
                .map_err(|_| Outcome::err(format!("{cmd}: `{s}` is not a number")))
        };
        let result: Result<Outcome, Outcome> = (|| match cmd {
            "EXIT" => Ok(Outcome {
                reply: Ok("EXIT".into()),
                call: Some(SdkCall::Shutdown),
                stop: true,
            }),
            "CRASH" => Ok(Outcome {
                reply: Ok("CRASH".into()),
                call: Some(SdkCall::Unhealthy),
                stop: true,
            }),
            "UNHEALTHY" => Ok(Outcome::call("UNHEALTHY", SdkCall::Unhealthy)),
            "GAMESERVER" => Ok(Outcome::ack(format!("NAME: {}", self.name))),
            "READY" => Ok(Outcome::call("READY", SdkCall::Ready)),
            "ALLOCATE" => Ok(Outcome::call("ALLOCATE", SdkCall::Allocate)),
            "RESERVE" => {
                want(1)?;
                let d = parse_duration(args[0]).ok_or_else(|| {
                    Outcome::err(format!("RESERVE: `{}` is not a duration", args[0]))
                })?;
                Ok(Outcome::call(text, SdkCall::Reserve(d)))
            }
            "LABEL" | "ANNOTATION" => {
                want(2)?;
                let (k, v) = (args[0].to_owned(), args[1].to_owned());
                let call = if cmd == "LABEL" {
                    SdkCall::Label(k, v)
                } else {
                    SdkCall::Annotation(k, v)
                };
                Ok(Outcome::call(text, call))
            }
            "PLAYER_CAPACITY" => match args {
                [] => Ok(Outcome::ack(self.player_capacity.to_string())),
                [n] => {
                    let n = num(n)?;
                    if n < 0 {
                        return Err(Outcome::err("PLAYER_CAPACITY: capacity must be >= 0"));
                    }
                    self.player_capacity = n;
                    Ok(Outcome::call(text, self.players_call()))
                }
                _ => Err(Outcome::err("PLAYER_CAPACITY takes 0 or 1 argument")),
            },
            "PLAYER_CONNECT" => {
                want(1)?;
                if self.players.iter().any(|p| p == args[0]) {
                    return Err(Outcome::err(format!(
                        "player {} is already connected",
                        args[0]
                    )));
                }
                if self.players.len() as i64 >= self.player_capacity {
                    return Err(Outcome::err("players are at capacity"));
                }
                self.players.push(args[0].to_owned());
                Ok(Outcome::call(text, self.players_call()))
            }
            "PLAYER_DISCONNECT" => {
                want(1)?;
                let before = self.players.len();
                self.players.retain(|p| p != args[0]);
                if self.players.len() == before {
                    return Err(Outcome::err(format!("player {} is not connected", args[0])));
                }
                Ok(Outcome::call(text, self.players_call()))
            }
            "PLAYER_CONNECTED" => {
                want(1)?;
                Ok(Outcome::ack(
                    self.players.iter().any(|p| p == args[0]).to_string(),
                ))
            }
            "GET_PLAYERS" => Ok(Outcome::ack(self.players.join(","))),
            "PLAYER_COUNT" => Ok(Outcome::ack(self.players.len().to_string())),
            "GET_COUNTER_COUNT" | "GET_COUNTER_CAPACITY" => {
                want(1)?;
                let (count, cap) = self
                    .counters
                    .get(args[0])
                    .copied()
                    .unwrap_or((0, DEFAULT_CAPACITY));
                Ok(Outcome::ack(
                    if cmd == "GET_COUNTER_COUNT" {
                        count
                    } else {
                        cap
                    }
                    .to_string(),
                ))
            }
            "INCREMENT_COUNTER"
            | "DECREMENT_COUNTER"
            | "SET_COUNTER_COUNT"
            | "SET_COUNTER_CAPACITY" => {
                want(2)?;
                let n = num(args[1])?;
                let entry = self
                    .counters
                    .entry(args[0].to_owned())
                    .or_insert((0, DEFAULT_CAPACITY));
                let (count, cap) = match cmd {
                    "INCREMENT_COUNTER" => (entry.0.saturating_add(n), entry.1),
                    "DECREMENT_COUNTER" => (entry.0.saturating_sub(n), entry.1),
                    "SET_COUNTER_COUNT" => (n, entry.1),
                    _ => (entry.0.min(n.max(0)), n),
                };
                if cap < 0 {
                    return Err(Outcome::err(format!("{cmd}: capacity must be >= 0")));
                }
                if !(0..=cap).contains(&count) {
                    return Err(Outcome::err(format!(
                        "{cmd}: count {count} is outside 0..={cap}"
                    )));
                }
                *entry = (count, cap);
                Ok(Outcome::ack(count.to_string()))
            }
            "GET_LIST_CAPACITY" | "GET_LIST_LENGTH" | "GET_LIST_VALUES" => {
                want(1)?;
                let (values, cap) = self
                    .lists
                    .get(args[0])
                    .cloned()
                    .unwrap_or((Vec::new(), DEFAULT_CAPACITY));
                Ok(Outcome::ack(match cmd {
                    "GET_LIST_CAPACITY" => cap.to_string(),
                    "GET_LIST_LENGTH" => values.len().to_string(),
                    _ => values.join(","),
                }))
            }
            "SET_LIST_CAPACITY" => {
                want(2)?;
                let n = num(args[1])?;
                if !(0..=MAX_LIST_CAPACITY).contains(&n) {
                    return Err(Outcome::err(format!(
                        "SET_LIST_CAPACITY: {n} is outside 0..={MAX_LIST_CAPACITY}"
                    )));
                }
                let entry = self
                    .lists
                    .entry(args[0].to_owned())
                    .or_insert((Vec::new(), DEFAULT_CAPACITY));
                entry.1 = n;
                entry.0.truncate(usize::try_from(n).unwrap_or(0));
                Ok(Outcome::ack(n.to_string()))
            }
            "LIST_CONTAINS" => {
                want(2)?;
                let has = self
                    .lists
                    .get(args[0])
                    .is_some_and(|(v, _)| v.iter().any(|x| x == args[1]));
                Ok(Outcome::ack(has.to_string()))
            }
            "APPEND_LIST_VALUE" => {
                want(2)?;
                let entry = self
                    .lists
                    .entry(args[0].to_owned())
                    .or_insert((Vec::new(), DEFAULT_CAPACITY));
                if entry.0.iter().any(|x| x == args[1]) {
                    return Err(Outcome::err(format!(
                        "{} is already in list {}",
                        args[1], args[0]
                    )));
                }
                if entry.0.len() as i64 >= entry.1 {
                    return Err(Outcome::err(format!("list {} is at capacity", args[0])));
                }
                entry.0.push(args[1].to_owned());
                Ok(Outcome::ack(text))
            }
            "DELETE_LIST_VALUE" => {
                want(2)?;
                let entry = self
                    .lists
                    .entry(args[0].to_owned())
                    .or_insert((Vec::new(), DEFAULT_CAPACITY));
                let before = entry.0.len();
                entry.0.retain(|x| x != args[1]);
                if entry.0.len() == before {
                    return Err(Outcome::err(format!(
                        "{} is not in list {}",
                        args[1], args[0]
                    )));
                }
                Ok(Outcome::ack(text))
            }
            _ => Ok(Outcome::ack(text)),
        })();
        result.unwrap_or_else(|e| e)
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    Duration::try_from_secs_f64(v * mul).ok()
}

/// Serves one GameServer's port until `shutdown` or `EXIT`/`CRASH`.
pub async fn serve(
    socket: UdpSocket,
    namespace: String,
    name: String,
    sdk: Arc<dyn SdkHandle>,
    shutdown: CancellationToken,
) {
    let mut state = GameState::new(&name);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors from an earlier peer surface here on Linux; keep serving.
                Err(_) => continue,
            },
        };
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut out = state.handle(&line);
        if let Some(call) = out.call.take()
            && let Err(e) = sdk.sdk(&namespace, &name, call)
        {
            out.reply = Err(e);
        }
        let reply = match &out.reply {
            Ok(t) => format!("ACK: {t}\n"),
            Err(e) => format!("ERROR: {e}\n"),
        };
        // A reply that cannot be sent is the client's loss, not the server's end.
        let _ = socket.send_to(reply.as_bytes(), from).await;
        if out.stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<SdkCall>>);

    impl SdkHandle for Recorder {
        fn sdk(&self, _: &str, _: &str, call: SdkCall) -> Result<(), String> {
            if call == SdkCall::Reserve(Duration::from_secs(999)) {
                return Err("refused".into());
            }
            self.0.lock().unwrap().push(call);
            Ok(())
        }
    }

    #[test]
    fn commands_reply_like_the_simple_game_server() {
        let mut g = GameState::new("gs-1");
        let ack = |g: &mut GameState, l: &str| g.handle(l).reply.unwrap();
        let err = |g: &mut GameState, l: &str| g.handle(l).reply.unwrap_err();
        assert_eq!(ack(&mut g, "GAMESERVER"), "NAME: gs-1");
        assert_eq!(ack(&mut g, "hello world\n"), "hello world");
        assert_eq!(ack(&mut g, ""), "");
        assert_eq!(g.handle("READY").call, Some(SdkCall::Ready));
        assert_eq!(
            g.handle("RESERVE 10s").call,
            Some(SdkCall::Reserve(Duration::from_secs(10)))
        );
        assert!(err(&mut g, "RESERVE soon").contains("not a duration"));
        assert_eq!(
            g.handle("LABEL k v").call,
            Some(SdkCall::Label("k".into(), "v".into()))
        );
        assert!(err(&mut g, "LABEL k").contains("takes 2 arguments"));
        assert_eq!(ack(&mut g, "PLAYER_CAPACITY"), "100");
        assert_eq!(
            g.handle("PLAYER_CAPACITY 2").call,
            Some(SdkCall::Players {
                count: 0,
                capacity: 2,
                ids: vec![]
            })
        );
        assert!(g.handle("PLAYER_CONNECT a").reply.is_ok());
        assert!(err(&mut g, "PLAYER_CONNECT a").contains("already connected"));
        assert!(g.handle("PLAYER_CONNECT b").reply.is_ok());
        assert!(err(&mut g, "PLAYER_CONNECT c").contains("capacity"));
        assert_eq!(ack(&mut g, "GET_PLAYERS"), "a,b");
        assert_eq!(ack(&mut g, "PLAYER_COUNT"), "2");
        assert_eq!(ack(&mut g, "PLAYER_CONNECTED b"), "true");
        assert!(err(&mut g, "PLAYER_DISCONNECT z").contains("not connected"));
        assert_eq!(
            g.handle("PLAYER_DISCONNECT a").call,
            Some(SdkCall::Players {
                count: 1,
                capacity: 2,
                ids: vec!["b".into()]
            })
        );
        assert!(err(&mut g, "PLAYER_CAPACITY many").contains("not a number"));
        let exit = g.handle("EXIT");
        assert_eq!((exit.call, exit.stop), (Some(SdkCall::Shutdown), true));
    }

    #[test]
    fn counters_and_lists_keep_their_bounds() {
        let mut g = GameState::new("gs");
        let ack = |g: &mut GameState, l: &str| g.handle(l).reply.unwrap();
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY rooms"), "1000");
        assert_eq!(ack(&mut g, "INCREMENT_COUNTER rooms 3"), "3");
        assert_eq!(ack(&mut g, "DECREMENT_COUNTER rooms 1"), "2");
        assert!(g.handle("DECREMENT_COUNTER rooms 5").reply.is_err());
        assert_eq!(ack(&mut g, "SET_COUNTER_CAPACITY rooms 2"), "2");
        assert!(g.handle("INCREMENT_COUNTER rooms 1").reply.is_err());
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "2");
        assert!(g.handle("SET_LIST_CAPACITY l 1001").reply.is_err());
        assert_eq!(ack(&mut g, "SET_LIST_CAPACITY l 1"), "1");
        assert!(g.handle("APPEND_LIST_VALUE l x").reply.is_ok());
        assert!(g.handle("APPEND_LIST_VALUE l y").reply.is_err());
        assert_eq!(ack(&mut g, "LIST_CONTAINS l x"), "true");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH l"), "1");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES l"), "x");
        assert!(g.handle("DELETE_LIST_VALUE l nope").reply.is_err());
        assert!(g.handle("DELETE_LIST_VALUE l x").reply.is_ok());
        assert!(g.handle("INCREMENT_COUNTER rooms x").reply.is_err());
    }

    #[test]
    fn port_pool_rotates_and_runs_out() {
        let pool = PortPool::new(47100, 47102).unwrap();
        let a = pool.lease_candidate().unwrap();
        let b = pool.lease_candidate().unwrap();
        pool.release(a);
        // The next lease moves on rather than reusing `a` at once.
        let c = pool.lease_candidate().unwrap();
        assert!(c != a && c != b);
        assert_eq!(pool.lease_candidate(), Some(a));
        assert_eq!(pool.lease_candidate(), None);
        assert_eq!(pool.leased(), 3);
        assert!(PortPool::new(10, 5).is_err());
        assert!(PortPool::new(0, 5).is_err());
    }

    #[tokio::test]
    async fn serves_over_real_udp_and_stops_on_exit_or_cancel() {
        let pool = PortPool::new(47200, 47220).unwrap();
        let (sock, port) = pool.bind("127.0.0.1".parse().unwrap()).await.unwrap();
        let rec = Arc::new(Recorder::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(
            sock,
            "ns".into(),
            "gs-9".into(),
            rec.clone(),
            stop.clone(),
        ));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 2048];
        let mut say = async |t: &[u8]| {
            client.send(t).await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        assert_eq!(say(b"READY").await, "ACK: READY\n");
        assert_eq!(say(b"PLAYER_CONNECT p1").await, "ACK: PLAYER_CONNECT p1\n");
        assert_eq!(say(b"RESERVE 999s").await, "ERROR: refused\n");
        // Garbage, longer than a datagram we read: answered, not fatal.
        let reply = say(&[0xff; 4096]).await;
        assert!(reply.starts_with("ACK: "), "{reply}");
        assert_eq!(say(b"EXIT").await, "ACK: EXIT\n");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            *rec.0.lock().unwrap(),
            vec![
                SdkCall::Ready,
                SdkCall::Players {
                    count: 1,
                    capacity: 100,
                    ids: vec!["p1".into()]
                },
                SdkCall::Shutdown
            ]
        );
        // A second server stops on cancellation.
        let (sock, _) = pool.bind("127.0.0.1".parse().unwrap()).await.unwrap();
        let task = tokio::spawn(serve(sock, "ns".into(), "gs-10".into(), rec, stop.clone()));
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
