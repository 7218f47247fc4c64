//! Tests of the simulator's configuration: parsing, validation with paths, the default's overlay.
use super::*;
use upsoak_agones::release::{TunableValue, parse_query};

#[test]
fn default_config_is_valid_and_matches_the_reference_gates() {
    let c = SimConfig::default_config().unwrap();
    assert_eq!(c.versions.len(), 6);
    let v155 = c.version("1.55.0").unwrap();
    assert_eq!(v155.gates["SidecarContainers"], Stage::Alpha);
    let v156 = c.version("1.56.0").unwrap();
    assert_eq!(v156.gates["SidecarContainers"], Stage::Beta);
    let v159 = c.version("1.59.0").unwrap();
    assert_eq!(v159.gates["PortRanges"], Stage::Stable);
    assert_eq!(v159.gates["PortPolicyNone"], Stage::Beta);
    let v160 = c.version("1.60.0").unwrap();
    assert_eq!(v160.gates["PortPolicyNone"], Stage::Stable);
    assert_eq!(v160.gates["ProcessorAllocator"], Stage::Alpha);
}

#[test]
fn install_checks_name_every_problem() {
    let c = SimConfig::default_config().unwrap();
    let bad = Install {
        version: "1.60.0".into(),
        feature_gates: parse_query("PortRanges=false&Nope=true&PlayerTracking=true").unwrap(),
        tunables: BTreeMap::from([
            ("allocationBatchWaitTime".into(), TunableValue::Int(5000)),
            ("logLevel".into(), TunableValue::Str("loud".into())),
        ]),
    };
    let errs: Vec<String> = c
        .check_install(&bad)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec![
            "featureGates.Nope: unknown feature gate for Agones 1.60.0",
            "featureGates.PortRanges: gate is Stable in Agones 1.60.0 and cannot be disabled",
            "tunables.allocationBatchWaitTime: 5000 is outside 0..=2000",
            "tunables.logLevel: `loud` is not one of info, debug, error",
        ]
    );
    let unknown = Install {
        version: "9.9.9".into(),
        ..Install::default()
    };
    let first = c.check_install(&unknown).unwrap_err().to_string();
    assert!(first.starts_with("version: unknown version"), "{first}");
}

#[test]
fn bad_config_lists_every_problem_with_its_path() {
    let yaml = r#"
namespace: Bad_NS
initial: { version: 2.0.0 }
versions:
  - version: "1.0"
    gates: { lower: Alpha }
game: { port_min: 10, port_max: 5 }
fleets: [ { name: a, replicas: -1 }, { name: a, replicas: 1 } ]
faults:
  - { name: slow, kind: allocation_latency, multiplier: -2, when: { version: 3.0.0 } }
"#;
    let e = SimConfig::parse(yaml, "t.yaml").unwrap_err();
    let text = e.to_string();
    for want in [
        "namespace: `Bad_NS`",
        "versions[0].version: `1.0` is not MAJOR.MINOR.PATCH",
        "versions[0].gates.lower:",
        "initial.version: unknown version `2.0.0`",
        "game: port range 10-5",
        "fleets[0].replicas: -1 is negative",
        "fleets[1].name: `a` is listed twice",
        "faults[0].when.version: unknown version `3.0.0`",
        "faults[0].multiplier: -2",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn upgrade_faults_parse_and_their_values_are_checked() {
    let base = "initial: { version: 1.60.0 }\nversions: [ { version: 1.60.0, gates: {} } ]\n";
    let ok = format!(
        "{base}faults:\n  - {{ name: k, kind: upgrade_kills_allocated, fraction: 0.5, when: {{ version: 1.60.0 }} }}\n  - {{ name: s, kind: upgrade_stalls, factor: 3 }}\n  - {{ name: d, kind: upgrade_drops_game_traffic, duration: 4s }}\n"
    );
    let c = SimConfig::parse(&ok, "ok").unwrap();
    assert_eq!(
        c.faults.iter().map(|f| f.kind.clone()).collect::<Vec<_>>(),
        vec![
            FaultKind::UpgradeKillsAllocated { fraction: 0.5 },
            FaultKind::UpgradeStalls { factor: 3.0 },
            FaultKind::UpgradeDropsGameTraffic {
                duration: Duration::from_secs(4)
            },
        ]
    );
    assert!(c.faults.iter().all(|f| f.kind.during_upgrade()));
    let bad = format!(
        "{base}faults:\n  - {{ name: k, kind: upgrade_kills_allocated, fraction: 2 }}\n  - {{ name: s, kind: upgrade_stalls, factor: 0.5 }}\n  - {{ name: d, kind: upgrade_drops_game_traffic, duration: 0s }}\n"
    );
    let text = SimConfig::parse(&bad, "bad").unwrap_err().to_string();
    for want in [
        "faults[0].fraction: 2 is not within 0..1",
        "faults[1].factor: 0.5 is not a finite number >= 1",
        "faults[2].duration: must be above zero",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for (yaml, want) in [
        (
            "{ name: k, kind: upgrade_kill_allocated, fraction: 1 }",
            "unknown variant `upgrade_kill_allocated`",
        ),
        (
            "{ name: k, kind: upgrade_kills_allocated, fractoin: 1 }",
            "unknown field `fractoin`",
        ),
    ] {
        let e = SimConfig::parse(&format!("{base}faults: [ {yaml} ]\n"), "typo").unwrap_err();
        let first = e.problems.iter().next().unwrap().to_string();
        assert!(first.starts_with("faults[0]"), "{first}");
        assert!(first.contains(want), "{first}");
    }
}

#[test]
fn syntax_and_type_errors_are_located() {
    let first = |e: &Invalid| e.problems.iter().next().unwrap().to_string();
    let e = SimConfig::parse("versions: [\n  {", "x.yaml").unwrap_err();
    assert!(first(&e).starts_with("x.yaml:"), "{e}");
    let e = SimConfig::parse(
        "initial: {version: 1.60.0}\nversions: []\nlifecycle: { tick: 5 parsecs }\n",
        "y.yaml",
    )
    .unwrap_err();
    assert!(first(&e).starts_with("lifecycle.tick:"), "{e}");
    let e =
        SimConfig::parse("initial: {version: 1.60.0}\nversions: []\nbogus: 1\n", "z").unwrap_err();
    assert!(first(&e).contains("unknown field `bogus`"), "{e}");
}

#[test]
fn a_file_with_only_faults_or_fleets_runs_the_default_versions_with_them() {
    let c = SimConfig::parse(
        "faults: [ { name: slow, kind: allocation_latency, multiplier: 2, when: { version: 1.59.0 } } ]\n",
        "faults.yaml",
    )
    .unwrap();
    let d = SimConfig::default_config().unwrap();
    assert_eq!(c.versions.len(), d.versions.len());
    assert_eq!(c.initial.version, d.initial.version);
    assert_eq!(c.tunables, d.tunables);
    assert_eq!(c.faults[0].name, "slow");
    let c = SimConfig::parse("fleets: [ { name: f, replicas: 3 } ]\n", "fleets.yaml").unwrap();
    assert_eq!((c.fleets[0].name.as_str(), c.versions.len()), ("f", 6));
    // A key the file sets replaces the default's whole, and is judged as given.
    let e = SimConfig::parse("initial: { version: 9.9.9 }\n", "i.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("initial") && e.contains("9.9.9"), "{e}");
}
