//! Versions a maintainer soaks before a release: a space with SemVer pre-releases
//! (`1.61.0-dev-abc123`, `1.61.0-rc.1`) ordered by SemVer precedence, in constraints and hops,
//! with a dev build's own image tag and chart. `validate` accepts it; `plan` walks it in order;
//! the helm applier's generated values and arguments carry the build's tag and chart.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use upsoak_agones::release::Install;
use upsoak_chaos::wanderer::apply::HelmApplier;
use upsoak_chaos::wanderer::space::Space;
use upsoak_testkit::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-chaos");

const SPACE: &str = r#"versions:
  - version: 1.60.0
    gates: { PlayerTracking: Alpha }
  - version: 1.61.0-dev-abc123
    image_tag: 1.61.0-dev-abc123-amd64
    chart: ./install/helm/agones
    gates: { PlayerTracking: Alpha }
  - version: 1.61.0-rc.1
    chart: oci://us-docker.pkg.dev/agones-images/charts/agones
    gates: { PlayerTracking: Beta }
  - version: 1.61.0
    gates: { PlayerTracking: Beta }
hops: { max_up: 1, max_down: 1, allow_downgrade: true }
constraints:
  - IF version >= 1.61.0-rc.1 THEN gate:PlayerTracking
"#;

#[test]
fn a_space_with_pre_releases_validates_and_plans_in_semver_order() {
    let dir = TempDir::new("chaos-prerelease");
    let path = dir.write("space.yaml", SPACE);
    let o = Command::new(BIN)
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(BIN)
        .args(["plan", "--space"])
        .arg(&path)
        .args(["--seed", "3", "--steps", "40", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let versions: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["version"].as_str().unwrap())
        .collect();
    for v in ["1.61.0-dev-abc123", "1.61.0-rc.1"] {
        assert!(versions.contains(&v), "{v} is walked: {versions:?}");
    }
    // The constraint holds by precedence: from the release candidate on, the gate is on;
    // the dev build (older than rc.1) may have it off.
    for s in plan["steps"].as_array().unwrap() {
        if ["1.61.0-rc.1", "1.61.0"].contains(&s["version"].as_str().unwrap()) {
            assert!(
                s["featureGates"]
                    .as_str()
                    .unwrap()
                    .contains("PlayerTracking=true"),
                "{s}"
            );
        }
    }

    // Listed out of precedence order, it is refused with where.
    let bad = dir.write(
        "bad.yaml",
        &SPACE
            .replace("1.61.0-dev-abc123", "1.61.0-zz")
            .replace("1.61.0-rc.1\n", "1.61.0-alpha.1\n"),
    );
    let o = Command::new(BIN)
        .arg("validate")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("versions[2].version: `1.61.0-alpha.1` must be newer than `1.61.0-zz`"),
        "{err}"
    );
}

#[test]
fn a_dev_build_is_installed_from_its_chart_with_its_image_tag() {
    let space = Space::parse(SPACE, "space.yaml").unwrap();
    assert_eq!(
        space.image_tag("1.61.0-dev-abc123"),
        "1.61.0-dev-abc123-amd64"
    );
    assert_eq!(space.image_tag("1.61.0-rc.1"), "1.61.0-rc.1");
    let dir = TempDir::new("chaos-prerelease-helm");
    let mut a = HelmApplier::new("helm".into(), dir.to_path_buf());
    a.charts
        .insert("1.61.0-dev-abc123".into(), "./install/helm/agones".into());
    a.image_tags
        .insert("1.61.0-dev-abc123".into(), "1.61.0-dev-abc123-amd64".into());
    let dev = Install {
        version: "1.61.0-dev-abc123".into(),
        ..Install::default()
    };
    let yaml = a.values_yaml(&dev).unwrap();
    assert!(
        yaml.contains("image:\n    tag: 1.61.0-dev-abc123-amd64\n"),
        "{yaml}"
    );
    let args = a.upgrade_args(&dev, &dir.join("v.yaml"));
    assert_eq!(
        args[3..6],
        ["./install/helm/agones", "--version", "1.61.0-dev-abc123"]
    );
    let rc = Install {
        version: "1.61.0-rc.1".into(),
        ..Install::default()
    };
    assert!(!a.values_yaml(&rc).unwrap().contains("image:"));
    assert_eq!(a.upgrade_args(&rc, &dir.join("v.yaml"))[3], "agones/agones");
}
