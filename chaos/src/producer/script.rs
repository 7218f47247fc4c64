//! A session's script: the simple-game-server commands sent to an allocated server, in order,
//! checked when the configuration is loaded.
//!
//! The commands and their replies follow Agones' `examples/simple-game-server/main.go`
//! (`handleResponse`): any text that is not a command is echoed as `ACK: <text>`; `GAMESERVER`
//! answers `NAME: <name>`; `LABEL k v` and `ANNOTATION k v` call the Stable `SDK.SetLabel` and
//! `SDK.SetAnnotation` and answer `ACK: <line>`; `EXIT` answers `ACK: EXIT` and calls
//! `SDK.Shutdown`. None of them depends on a feature gate. The player commands call the Alpha
//! PlayerTracking SDK, which refuses them when the gate is off or the server is at capacity
//! (`pkg/sdkserver/sdkserver.go`, `PlayerConnect` and the other player functions), and the
//! server then exits (`log.Fatalf` in `playerConnect` and the like): they are played only when
//! the configuration enables player tracking and the allocated GameServer reports a player
//! capacity (`status.players.capacity > 0`).

use upsoak_common::problems::Problems;

/// One step of a session's script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `ECHO <text>`: sent as written; the server echoes text it has no command for.
    Echo(String),
    /// `GAMESERVER`: the server answers its GameServer's name.
    GameServer,
    /// `LABEL <key> <value>`: `SDK.SetLabel`; `{session}` in the value is the session's id.
    Label(String, String),
    /// `ANNOTATION <key> <value>`: `SDK.SetAnnotation`; `{session}` as for `LABEL`.
    Annotation(String, String),
    /// `WAIT`: an equal share of the session's length passes.
    Wait,
    /// `PLAYER_CONNECT`: the session's players join, one command each (player tracking only).
    PlayerConnect,
    /// `PLAYER_DISCONNECT`: about half the players who joined leave (player tracking only).
    PlayerDisconnect,
    /// `PLAYER_COUNT`: the server answers how many players are connected (player tracking only).
    PlayerCount,
    /// `EXIT`: the server shuts down; the last step, and only there.
    Exit,
}

/// The session's id in `LABEL` and `ANNOTATION` values.
pub const SESSION_PLACEHOLDER: &str = "{session}";

/// The default script: commands the simple-game-server answers whatever the feature gates, the
/// player commands (skipped unless player tracking is on for the server), and `EXIT`.
pub fn default_script() -> Vec<String> {
    [
        "ECHO hello",
        "GAMESERVER",
        "LABEL upsoak-session {session}",
        "PLAYER_CONNECT",
        "PLAYER_COUNT",
        "WAIT",
        "PLAYER_DISCONNECT",
        "ANNOTATION upsoak-session {session}",
        "WAIT",
        "EXIT",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl Step {
    /// Parses one line of the script; the error says what is wrong with it.
    pub fn parse(line: &str) -> Result<Step, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else {
            return Err("an empty step".to_owned());
        };
        let none = |step: Step| {
            if args.is_empty() {
                Ok(step)
            } else {
                Err(format!("{verb} takes no arguments, got {}", args.len()))
            }
        };
        match verb {
            "ECHO" if args.is_empty() => Err("ECHO needs the text to send".to_owned()),
            "ECHO" => Ok(Step::Echo(line.trim().to_owned())),
            "GAMESERVER" => none(Step::GameServer),
            "WAIT" => none(Step::Wait),
            "PLAYER_CONNECT" => none(Step::PlayerConnect),
            "PLAYER_DISCONNECT" => none(Step::PlayerDisconnect),
            "PLAYER_COUNT" => none(Step::PlayerCount),
            "EXIT" => none(Step::Exit),
            "LABEL" | "ANNOTATION" => match args {
                [k, _] if k.len() > MAX_KEY => Err(format!(
                    "{verb} key `{k}` is {} characters; at most {MAX_KEY}, as the SDK server \
                     prefixes it with `{SDK_PREFIX}` and a label or annotation name is at most 63",
                    k.len()
                )),
                [k, v] if label_like(k) && label_like(&v.replace(SESSION_PLACEHOLDER, "x")) => {
                    Ok(if verb == "LABEL" {
                        Step::Label((*k).to_owned(), (*v).to_owned())
                    } else {
                        Step::Annotation((*k).to_owned(), (*v).to_owned())
                    })
                }
                [_, _] => Err(format!(
                    "{verb} key and value must be 1-63 letters, digits, `-`, `_` or `.`"
                )),
                _ => Err(format!(
                    "{verb} takes a key and a value, got {}",
                    args.len()
                )),
            },
            other => Err(format!(
                "unknown command `{other}` (ECHO, GAMESERVER, LABEL, ANNOTATION, WAIT, \
                 PLAYER_CONNECT, PLAYER_DISCONNECT, PLAYER_COUNT, EXIT)"
            )),
        }
    }

    /// True for the commands of the Alpha PlayerTracking SDK.
    pub fn is_player_step(&self) -> bool {
        matches!(
            self,
            Step::PlayerConnect | Step::PlayerDisconnect | Step::PlayerCount
        )
    }
}

/// What the SDK server puts before a `SetLabel`/`SetAnnotation` key: Agones
/// `pkg/sdkserver/sdkserver.go`, `metadataPrefix = "agones.dev/sdk-"`.
pub const SDK_PREFIX: &str = "agones.dev/sdk-";

/// The longest key `LABEL` and `ANNOTATION` take: the name after the `agones.dev/` prefix is
/// `sdk-<key>`, and a qualified name's name part is at most 63 characters (k8s.io/apimachinery
/// `pkg/util/validation`, `IsQualifiedName`), so 63 − `sdk-`.len() = 59.
pub const MAX_KEY: usize = 63 - "sdk-".len();

/// A Kubernetes label key name or value (the SDK prefixes the key with `agones.dev/sdk-`):
/// the label's value must be valid or the SDK server's update of the GameServer fails.
fn label_like(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Parses `lines`; every problem is at `script[i]`. The script must end with `EXIT`.
pub fn parse(lines: &[String]) -> Result<Vec<Step>, Problems> {
    let mut p = Problems::new();
    let mut steps = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match Step::parse(line) {
            Ok(Step::Exit) if i + 1 != lines.len() => {
                p.push(format!("script[{i}]"), "EXIT must be the last step");
            }
            Ok(step) => steps.push(step),
            Err(e) => p.push(format!("script[{i}]"), format!("`{line}`: {e}")),
        }
    }
    if steps.last() != Some(&Step::Exit) && p.is_empty() {
        p.push("script", "must end with EXIT, which releases the server");
    }
    p.into_result(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_default_script_parses() {
        let steps = parse(&default_script()).unwrap();
        assert_eq!(steps.first(), Some(&Step::Echo("ECHO hello".into())));
        assert_eq!(steps.last(), Some(&Step::Exit));
        assert_eq!(steps.iter().filter(|s| s.is_player_step()).count(), 3);
    }

    #[test]
    fn bad_steps_are_reported_at_their_index() {
        let e = parse(&lines(&[
            "CRASH",
            "LABEL k",
            "LABEL k bad/value",
            "WAIT 3",
            "ECHO",
            "EXIT",
            "GAMESERVER",
        ]))
        .unwrap_err()
        .to_string();
        for want in [
            "script[0]: `CRASH`: unknown command `CRASH`",
            "script[1]: `LABEL k`: LABEL takes a key and a value, got 1",
            "script[2]: `LABEL k bad/value`: LABEL key and value",
            "script[3]: `WAIT 3`: WAIT takes no arguments, got 1",
            "script[4]: `ECHO`: ECHO needs the text",
            "script[5]: EXIT must be the last step",
        ] {
            assert!(e.contains(want), "missing {want:?} in {e}");
        }
        let e = parse(&lines(&["GAMESERVER"])).unwrap_err().to_string();
        assert!(e.contains("script: must end with EXIT"), "{e}");
    }

    #[test]
    fn label_and_annotation_keys_leave_room_for_the_sdk_prefix() {
        let at_most = "k".repeat(MAX_KEY);
        let too_long = "k".repeat(MAX_KEY + 1);
        assert_eq!(MAX_KEY, 59);
        // The label the SDK server writes: `agones.dev/sdk-` + 59 = a 63-character name part.
        assert_eq!(
            format!("{SDK_PREFIX}{at_most}").len() - "agones.dev/".len(),
            63
        );
        let ok = parse(&[
            format!("LABEL {at_most} v"),
            format!("ANNOTATION {at_most} v"),
            "EXIT".to_owned(),
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        let e = parse(&[
            "ECHO hi".to_owned(),
            format!("LABEL {too_long} v"),
            format!("ANNOTATION {too_long} v"),
            "EXIT".to_owned(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("script[1]: `LABEL kkk") && e.contains("LABEL key `kkk"),
            "{e}"
        );
        assert!(e.contains("is 60 characters; at most 59"), "{e}");
        assert!(e.contains("script[2]: `ANNOTATION kkk"), "{e}");
    }
}
