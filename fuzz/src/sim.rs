//! Fuzz targets of the simulator's parsers: its config file, request bodies (objects, patches
//! of every type, installs), label and field selectors, and the UDP game protocol.

use serde_json::{Value, json};
use upsoak_sim::api::{PatchType, apply_patch, decode_value, parse_body};
use upsoak_sim::config::SimConfig;
use upsoak_sim::game::GameState;
use upsoak_sim::selector::{FieldSelector, Selector};

/// A target: its name (the directory of its saved inputs) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this module.
pub const TARGETS: &[Target] = &[
    ("sim_config", sim_config),
    ("sim_patch", sim_patch),
    ("sim_body", sim_body),
    ("sim_selector", sim_selector),
    ("sim_game", sim_game),
];

/// The simulator's YAML config, parsed and validated.
pub fn sim_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SimConfig::parse(text, "fuzz.yaml");
    }
}

/// A patch of each type applied to a Fleet as the API serves it; the first byte picks the
/// type. A result must stay within the documented limits.
pub fn sim_patch(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let pt = match kind % 3 {
        0 => PatchType::Merge,
        1 => PatchType::Json,
        _ => PatchType::Apply,
    };
    let mut doc = json!({"apiVersion": "agones.dev/v1", "kind": "Fleet",
        "metadata": {"name": "f", "namespace": "default", "resourceVersion": "7",
            "labels": {"a": "b"}},
        "spec": {"replicas": 2, "template": {"spec": {"ports": [{"name": "default",
            "containerPort": 7654}]}}}});
    if apply_patch(&mut doc, pt, body, "fleets").is_ok() {
        let _ = decode_value::<upsoak_agones::Fleet>(doc, "fleets");
    }
}

/// A request body of each kind the API decodes; the first byte picks the kind.
pub fn sim_body(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => {
            if let Ok(v) = parse_body(body, "agones.dev/v1", "Fleet") {
                let _ = decode_value::<upsoak_agones::Fleet>(v, "fleets");
            }
        }
        1 => {
            if let Ok(v) = parse_body(body, "allocation.agones.dev/v1", "GameServerAllocation")
                && let Ok(gsa) =
                    decode_value::<upsoak_agones::GameServerAllocation>(v, "gameserverallocations")
            {
                for s in &gsa.spec.selectors {
                    let _ = Selector::from_label_selector(&s.selector);
                }
            }
        }
        2 => {
            if let Ok(cfg) = SimConfig::default_config()
                && let Ok(v) = serde_json::from_slice::<Value>(body)
                && let Ok(install) = decode_value::<upsoak_agones::release::Install>(v, "install")
            {
                let _ = cfg.check_install(&install);
            }
        }
        _ => {
            let _ = parse_body(body, "autoscaling/v1", "Scale");
        }
    }
}

/// `?labelSelector=` and `?fieldSelector=` strings, matched against a few labels.
pub fn sim_selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = Selector::parse(text) {
        let labels = [("a".to_owned(), "b".to_owned())].into_iter().collect();
        let _ = s.matches(Some(&labels));
        let _ = s.matches(None);
    }
    if let Ok(f) = FieldSelector::parse(text, &["metadata.name", "status.state"]) {
        let _ = f.matches(|k| Some(k.to_owned()));
    }
}

/// Datagrams of the simple-game-server protocol, one command per line, with every SDK call
/// allowed.
pub fn sim_game(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut game = GameState::new("gs");
    for line in text.lines().take(64) {
        let _ = game.handle(line, &mut |_| Ok(()));
    }
}
