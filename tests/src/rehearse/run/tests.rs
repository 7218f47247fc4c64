use super::*;

#[test]
fn rewrites_match_whole_paths_once() {
    let rw = Rewrites(vec![
        (
            "/var/lib/upsoak/chaos".into(),
            "/tmp/r/fs/var/lib/upsoak/chaos".into(),
        ),
        ("/tmp".into(), "/tmp/r/fs/tmp".into()),
        (
            "upsoak-agent.upsoak.svc:9465".into(),
            "127.0.0.1:9465".into(),
        ),
    ]);
    assert_eq!(
        rw.apply("state_dir: /var/lib/upsoak/chaos"),
        "state_dir: /tmp/r/fs/var/lib/upsoak/chaos"
    );
    assert_eq!(rw.apply("HOME=/tmp"), "HOME=/tmp/r/fs/tmp");
    assert_eq!(rw.apply("/tmp/helm/cache"), "/tmp/r/fs/tmp/helm/cache");
    assert_eq!(rw.apply("/tmpfoo"), "/tmpfoo");
    assert_eq!(rw.apply("/x/tmp"), "/x/tmp");
    assert_eq!(
        rw.apply("http://upsoak-agent.upsoak.svc:9465/api"),
        "http://127.0.0.1:9465/api"
    );
}

#[test]
fn only_durations_may_be_overridden() {
    assert!(parse_override("upsoak-agent:UPSOAK_SETTLE=2m").is_ok());
    assert!(parse_override("upsoak-agent:UPSOAK_SETTLE=fast").is_err());
    assert!(parse_override("upsoak-agent:RUST_LOG=1s").is_err());
    assert!(parse_override("UPSOAK_SETTLE=1s").is_err());
}
