//! One game server's protocol state: health and players, and the text commands it answers.
//! Counters and lists are [`super::counters`]'s.

use super::counters::CountsAndLists;
use super::{SdkCall, SdkError};
use super::{exact, len_i64, number};
use crate::duration::parse_go_duration;

/// Players a game built with [`GameState::new`] (PlayerTracking on) accepts before its first
/// `PLAYER_CAPACITY n`. A served GameServer starts from [`GameState::with_players`] instead:
/// its `status.players.capacity`, from `spec.players.initialCapacity` (default 0).
pub const DEFAULT_PLAYER_CAPACITY: i64 = 100;

/// Bytes of a reply datagram at most: a whole read datagram ([`super::MAX_DATAGRAM_BYTES`]) echoed
/// with the longest prefix, `ERROR: `, and the newline.
pub const MAX_REPLY_BYTES: usize = super::MAX_DATAGRAM_BYTES + "ERROR: ".len() + 1;

/// The answer to one command, in the forms the simple-game-server sends
/// (`examples/simple-game-server/main.go`, `udpReadWriteLoop`: `ERROR: ` on an error, `ACK: `
/// only when the handler sets `addACK`, else the handler's text as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Sent as `ACK: <text>`.
    Ack(String),
    /// Sent as `<text>` (`NAME: gs`, `3`, `COUNTER: 3`, `SUCCESS`, …).
    Plain(String),
    /// Sent as `ERROR: <text>`.
    Error(String),
    /// Nothing is sent: the process exited (`log.Fatalf` in the simple-game-server).
    Silent,
}

impl Reply {
    /// The datagram sent back to the client, at most [`MAX_REPLY_BYTES`]: a longer text (a
    /// long player list, an echo of invalid UTF-8 read as U+FFFD, three bytes each) is cut at a
    /// character boundary and still ends with its newline, so no reply is larger than the bound
    /// on what is read, plus its prefix, whatever the object holds.
    pub fn to_datagram(&self) -> String {
        let (prefix, text) = match self {
            Reply::Ack(text) => ("ACK: ", text),
            Reply::Plain(text) => ("", text),
            Reply::Error(text) => ("ERROR: ", text),
            Reply::Silent => return String::new(),
        };
        let room = MAX_REPLY_BYTES - prefix.len() - 1;
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{prefix}{}\n", &text[..end])
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

/// One game server's own state: health, players, counters and lists.
#[derive(Debug, Clone)]
pub struct GameState {
    name: String,
    healthy: bool,
    /// Distinct player ids in the order they connected, which is how Agones lists them.
    players: Vec<String>,
    player_capacity: i64,
    /// The PlayerTracking gate as the server's SDK sidecar started with it.
    player_tracking: bool,
    counts: CountsAndLists,
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
            player_tracking: true,
            counts: CountsAndLists::default(),
        }
    }

    /// A fresh game whose SDK has PlayerTracking on with `capacity` (from
    /// `status.players.capacity`), or off (`None`).
    pub fn with_players(name: &str, players: Option<i64>) -> GameState {
        GameState {
            player_tracking: players.is_some(),
            player_capacity: players.unwrap_or(0),
            ..GameState::new(name)
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
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), SdkError>,
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
        // The player commands call the Alpha PlayerTracking SDK, which refuses them with the gate
        // off, and PlayerConnect at capacity (Agones `pkg/sdkserver/sdkserver.go`,
        // `PlayerConnect` … `GetPlayerCapacity`); the simple-game-server then exits with
        // `log.Fatalf` and sends nothing (`examples/simple-game-server/main.go`, `playerConnect`
        // and the like). Its health pings stop, so Agones marks the GameServer Unhealthy.
        let player_cmd = matches!(
            cmd,
            "PLAYER_CAPACITY"
                | "PLAYER_CONNECT"
                | "PLAYER_DISCONNECT"
                | "PLAYER_CONNECTED"
                | "GET_PLAYERS"
                | "PLAYER_COUNT"
        );
        let at_capacity = cmd == "PLAYER_CONNECT"
            && args.len() == 1
            && !self.is_connected(args[0])
            && len_i64(self.players.len()) >= self.player_capacity;
        if player_cmd && (!self.player_tracking || at_capacity) {
            self.healthy = false;
            // A refusal of the Unhealthy call changes nothing: the process is gone either way.
            let _ = sdk(SdkCall::Unhealthy);
            return Outcome {
                reply: Reply::Silent,
                stop: true,
            };
        }
        if cmd == "CRASH" {
            // `handleCrash`: `os.Exit` before any reply. The health pings stop, so Agones marks
            // the GameServer Unhealthy.
            self.healthy = false;
            let _ = sdk(SdkCall::Unhealthy);
            return Outcome {
                reply: Reply::Silent,
                stop: true,
            };
        }
        // The server exits after replying only to the exact text `EXIT` (`udpReadWriteLoop`).
        let stop = cmd == "EXIT" && args.is_empty();
        let reply = self
            .command(cmd, args, text, sdk)
            .unwrap_or_else(Reply::Error);
        Outcome { reply, stop }
    }

    /// The reply to one command, or the ERROR text.
    fn command(
        &mut self,
        cmd: &str,
        args: &[&str],
        text: &str,
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), SdkError>,
    ) -> Result<Reply, String> {
        // Like the real server, commands that only act are acknowledged with their own text
        // (`defaultReply`).
        let echo = || Ok(Reply::Ack(text.to_owned()));
        let plain = |t: String| Ok(Reply::Plain(t));
        match cmd {
            "EXIT" => {
                // `EXIT` with arguments is acknowledged and does nothing (the exit follows
                // only the exact text `EXIT`).
                if args.is_empty() {
                    sdk(SdkCall::Shutdown)?;
                }
                echo()
            }
            "UNHEALTHY" => {
                self.healthy = false;
                sdk(SdkCall::Unhealthy)?;
                echo()
            }
            "GAMESERVER" => plain(format!("NAME: {}", self.name)),
            "READY" => {
                sdk(SdkCall::Ready)?;
                echo()
            }
            "ALLOCATE" => {
                sdk(SdkCall::Allocate)?;
                echo()
            }
            "RESERVE" => {
                let [duration] = exact(cmd, args)?;
                // `time.ParseDuration`'s error text.
                let duration = parse_go_duration(duration)
                    .ok_or_else(|| format!("time: invalid duration {duration:?}"))?;
                sdk(SdkCall::Reserve(duration))?;
                echo()
            }
            "LABEL" | "ANNOTATION" => {
                // `handleLabel`, `handleAnnotation`: no arguments set `timestamp` to the Unix
                // time (the legacy form), two set that key and value, anything else is an error.
                let (key, value) = match args {
                    [] => (
                        "timestamp".to_owned(),
                        jiff::Timestamp::now().as_second().to_string(),
                    ),
                    [k, v] => ((*k).to_owned(), (*v).to_owned()),
                    _ => {
                        return Err(format!(
                            "Invalid {cmd} command, must use zero or 2 arguments"
                        ));
                    }
                };
                sdk(if cmd == "LABEL" {
                    SdkCall::Label(key, value)
                } else {
                    SdkCall::Annotation(key, value)
                })?;
                echo()
            }
            "PLAYER_CAPACITY" => match args {
                [] => plain(self.player_capacity.to_string()),
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
                _ => Err("Invalid PLAYER_CAPACITY, should have 0 or 1 arguments".to_owned()),
            },
            "PLAYER_CONNECT" => {
                let [id] = exact(cmd, args)?;
                // Agones answers a duplicate with false and no error: the server ACKs it.
                if self.is_connected(id) {
                    return echo();
                }
                let mut players = self.players.clone();
                players.push(id.to_owned());
                self.set_players(players, self.player_capacity, sdk)?;
                echo()
            }
            "PLAYER_DISCONNECT" => {
                let [id] = exact(cmd, args)?;
                // Agones answers an unknown player with false and no error: the server ACKs it.
                if !self.is_connected(id) {
                    return echo();
                }
                let players = self.players.iter().filter(|p| *p != id).cloned().collect();
                self.set_players(players, self.player_capacity, sdk)?;
                echo()
            }
            "PLAYER_CONNECTED" => {
                let [id] = exact(cmd, args)?;
                plain(self.is_connected(id).to_string())
            }
            "GET_PLAYERS" => plain(self.players.join(",")),
            "PLAYER_COUNT" => plain(self.players.len().to_string()),
            _ => match self.counts.command(cmd, args)? {
                Some(reply) => plain(reply),
                None => echo(),
            },
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
        sdk: &mut dyn FnMut(SdkCall) -> Result<(), SdkError>,
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
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Handles `line`, returning the outcome and the SDK calls it made (all accepted).
    fn run(g: &mut GameState, line: &str) -> (Outcome, Vec<SdkCall>) {
        let mut calls = Vec::new();
        let out = g.handle(line, &mut |c| {
            calls.push(c);
            Ok(())
        });
        (out, calls)
    }

    /// The text of a reply sent without `ACK: ` (a query's answer).
    fn plain(g: &mut GameState, line: &str) -> String {
        match run(g, line).0.reply {
            Reply::Plain(text) => text,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn ack(g: &mut GameState, line: &str) -> String {
        match run(g, line).0.reply {
            Reply::Ack(text) => text,
            other => panic!("{line:?}: {other:?}"),
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

    pub(in crate::game) fn players(count: i64, capacity: i64, ids: &[&str]) -> SdkCall {
        SdkCall::Players {
            count,
            capacity,
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn wrong_arguments_are_errors_naming_the_command() {
        // The real server's texts (`examples/simple-game-server/handlers.go`); extra
        // arguments are ignored, too few are an error.
        let mut g = GameState::new("gs");
        let cases = [
            ("RESERVE", "Invalid RESERVE, should have 1 argument"),
            ("RESERVE soon", "time: invalid duration \"soon\""),
            (
                "LABEL k",
                "Invalid LABEL command, must use zero or 2 arguments",
            ),
            (
                "ANNOTATION a b c",
                "Invalid ANNOTATION command, must use zero or 2 arguments",
            ),
            (
                "PLAYER_CAPACITY 1 2",
                "Invalid PLAYER_CAPACITY, should have 0 or 1 arguments",
            ),
            (
                "PLAYER_CAPACITY many",
                "strconv.ParseInt: parsing \"many\": invalid syntax",
            ),
            (
                "PLAYER_CAPACITY -1",
                "PLAYER_CAPACITY: capacity must not be negative, got -1",
            ),
            (
                "PLAYER_CONNECT",
                "Invalid PLAYER_CONNECT, should have 1 argument",
            ),
            (
                "PLAYER_CONNECTED",
                "Invalid PLAYER_CONNECTED, should have 1 argument",
            ),
            (
                "GET_COUNTER_COUNT",
                "Invalid GET_COUNTER_COUNT, should have 1 argument",
            ),
            (
                "INCREMENT_COUNTER c",
                "Invalid INCREMENT_COUNTER, should have 2 arguments",
            ),
            (
                "INCREMENT_COUNTER c x",
                "strconv.ParseInt: parsing \"x\": invalid syntax",
            ),
            (
                "DECREMENT_COUNTER c 1.5",
                "strconv.ParseInt: parsing \"1.5\": invalid syntax",
            ),
            (
                "SET_COUNTER_COUNT c 99999999999999999999",
                "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
            ),
            (
                "GET_LIST_CAPACITY",
                "Invalid GET_LIST_CAPACITY, should have 1 argument",
            ),
            (
                "LIST_CONTAINS l",
                "Invalid LIST_CONTAINS, should have 2 arguments",
            ),
            (
                "APPEND_LIST_VALUE l",
                "Invalid APPEND_LIST_VALUE, should have 2 arguments",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(err(&mut g, line), want, "{line:?}");
        }
        // None of them changed anything.
        assert_eq!(plain(&mut g, "PLAYER_CAPACITY"), "100");
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
        assert_eq!(plain(&mut g, "PLAYER_CAPACITY"), "100");
        let (out, calls) = run(&mut g, "PLAYER_CAPACITY 2");
        assert_eq!(out.reply, Reply::Ack("PLAYER_CAPACITY 2".into()));
        assert_eq!(calls, [players(0, 2, &[])]);
        assert_eq!(plain(&mut g, "PLAYER_CAPACITY"), "2");

        let (out, calls) = run(&mut g, "PLAYER_CONNECT b");
        assert_eq!(out.reply, Reply::Ack("PLAYER_CONNECT b".into()));
        assert_eq!(calls, [players(1, 2, &["b"])]);
        let (out, calls) = run(&mut g, "PLAYER_CONNECT b");
        assert_eq!(out.reply, Reply::Ack("PLAYER_CONNECT b".into()));
        assert!(calls.is_empty());
        let (_, calls) = run(&mut g, "PLAYER_CONNECT a");
        assert_eq!(calls, [players(2, 2, &["b", "a"])]);
        // Connection order, not sorted order.
        assert_eq!(plain(&mut g, "GET_PLAYERS"), "b,a");
        assert_eq!(plain(&mut g, "PLAYER_COUNT"), "2");
        assert_eq!(plain(&mut g, "PLAYER_CONNECTED a"), "true");
        assert_eq!(plain(&mut g, "PLAYER_CONNECTED c"), "false");

        assert_eq!(ack(&mut g, "PLAYER_DISCONNECT c"), "PLAYER_DISCONNECT c");
        let (out, calls) = run(&mut g, "PLAYER_DISCONNECT b");
        assert_eq!(out.reply, Reply::Ack("PLAYER_DISCONNECT b".into()));
        assert_eq!(calls, [players(1, 2, &["a"])]);
        assert_eq!(plain(&mut g, "PLAYER_CONNECTED b"), "false");

        // Lowering the capacity below the count keeps the players.
        let (_, calls) = run(&mut g, "PLAYER_CAPACITY 0");
        assert_eq!(calls, [players(1, 0, &["a"])]);
        assert_eq!(plain(&mut g, "GET_PLAYERS"), "a");
        let (_, calls) = run(&mut g, "PLAYER_DISCONNECT a");
        assert_eq!(calls, [players(0, 0, &[])]);
        assert_eq!(plain(&mut g, "GET_PLAYERS"), "");
        assert_eq!(plain(&mut g, "PLAYER_COUNT"), "0");
        // At capacity a connect is refused by the SDK and the server exits, unanswered.
        let (out, calls) = run(&mut g, "PLAYER_CONNECT d");
        assert_eq!(
            out,
            Outcome {
                reply: Reply::Silent,
                stop: true
            }
        );
        assert_eq!(calls, [SdkCall::Unhealthy]);
        assert!(!g.healthy());
    }

    #[test]
    fn with_the_gate_off_every_player_command_makes_the_server_exit() {
        for line in [
            "PLAYER_CONNECT a",
            "PLAYER_COUNT",
            "GET_PLAYERS",
            "PLAYER_CAPACITY",
        ] {
            let mut g = GameState::with_players("gs", None);
            assert_eq!(ack(&mut g, "LABEL k v"), "LABEL k v");
            let (out, calls) = run(&mut g, line);
            assert_eq!(
                out,
                Outcome {
                    reply: Reply::Silent,
                    stop: true
                },
                "{line}"
            );
            assert_eq!(calls, [SdkCall::Unhealthy], "{line}");
        }
        let mut g = GameState::with_players("gs", Some(1));
        assert_eq!(ack(&mut g, "PLAYER_CONNECT a"), "PLAYER_CONNECT a");
    }

    #[test]
    fn a_refused_sdk_call_is_an_error_and_changes_nothing() {
        let mut g = GameState::new("gs");
        let mut refuse = |_: SdkCall| {
            Err::<(), _>(SdkError::NotFound {
                namespace: "ns".into(),
                name: "gs".into(),
            })
        };
        let out = g.handle("PLAYER_CONNECT a", &mut refuse);
        assert_eq!(
            out,
            Outcome {
                reply: Reply::Error("gameserver ns/gs not found".into()),
                stop: false
            }
        );
        assert_eq!(plain(&mut g, "PLAYER_COUNT"), "0");
        g.handle("PLAYER_CAPACITY 5", &mut refuse);
        assert_eq!(plain(&mut g, "PLAYER_CAPACITY"), "100");
        ack(&mut g, "PLAYER_CONNECT a");
        g.handle("PLAYER_DISCONNECT a", &mut refuse);
        assert_eq!(plain(&mut g, "GET_PLAYERS"), "a");
        let out = g.handle("READY", &mut refuse);
        assert_eq!(out.reply, Reply::Error("gameserver ns/gs not found".into()));
        // EXIT still ends the game: the process exits whatever the SDK said.
        let out = g.handle("EXIT", &mut refuse);
        assert_eq!(
            out,
            Outcome {
                reply: Reply::Error("gameserver ns/gs not found".into()),
                stop: true
            }
        );
    }
}
