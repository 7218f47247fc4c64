//! `helm history REL -o json`, and the revision a release left pending is rolled back to.
//!
//! helm's own `--atomic` rollback goes to "the last successful release": the newest revision
//! whose status is `deployed` or `superseded` (helm v3 `pkg/action/upgrade.go`, `failRelease`),
//! and `helm rollback REL` without a revision goes blindly to the revision below the last
//! (`pkg/action/rollback.go`, `prepareRollback`). After a helm killed mid-rollback the last
//! revision is a `pending-rollback` one whose predecessor is the failed upgrade, so the target is
//! chosen here, from the history, the way `failRelease` chooses it.

use serde::Deserialize;

/// One revision as `helm history -o json` prints it (helm's `cmd/helm/history.go`
/// `releaseInfo`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Revision {
    /// The revision number.
    pub revision: u64,
    /// `deployed`, `superseded`, `failed`, `pending-rollback`, …
    pub status: String,
    /// `NAME-VERSION`, e.g. `agones-1.60.0`.
    #[serde(default)]
    pub chart: String,
    /// The chart's appVersion.
    #[serde(default)]
    pub app_version: String,
    /// When it was written, as helm formats it.
    #[serde(default)]
    pub updated: String,
    /// `Upgrade complete`, `Rollback to 3`, …
    #[serde(default)]
    pub description: String,
}

/// Parses `helm history -o json`; the error says what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<Revision>, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("`helm history -o json` is not a revision list: {e}"))
}

/// The newest `deployed` or `superseded` revision below `pending`, or `None` when there is
/// none (a first install, or only failed revisions below it).
pub fn rollback_target(history: &[Revision], pending: u64) -> Option<&Revision> {
    history
        .iter()
        .filter(|r| r.revision < pending && matches!(r.status.as_str(), "deployed" | "superseded"))
        .max_by_key(|r| r.revision)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(revision: u64, status: &str) -> Revision {
        Revision {
            revision,
            status: status.into(),
            chart: String::new(),
            app_version: String::new(),
            updated: String::new(),
            description: String::new(),
        }
    }

    #[test]
    fn the_target_is_the_last_good_revision_never_the_one_below_blindly() {
        // A killed --atomic upgrade: 2 failed, its rollback 3 left pending.
        let h = [
            rev(1, "deployed"),
            rev(2, "failed"),
            rev(3, "pending-rollback"),
        ];
        assert_eq!(rollback_target(&h, 3).map(|r| r.revision), Some(1));
        let h = [
            rev(1, "superseded"),
            rev(2, "superseded"),
            rev(3, "failed"),
            rev(4, "failed"),
            rev(5, "pending-upgrade"),
        ];
        assert_eq!(rollback_target(&h, 5).map(|r| r.revision), Some(2));
        // Never above the pending one, and nothing when nothing good is below it.
        let h = [
            rev(1, "failed"),
            rev(2, "pending-upgrade"),
            rev(3, "deployed"),
        ];
        assert_eq!(rollback_target(&h, 2), None);
    }

    #[test]
    fn helm_history_json_parses_and_garbage_says_so() {
        let text = r#"[{"revision":1,"updated":"2026-12-07T20:00:00Z","status":"superseded","chart":"agones-1.59.0","app_version":"1.59.0","description":"Install complete"},
            {"revision":2,"updated":"2026-12-07T20:10:00Z","status":"deployed","chart":"agones-1.60.0","app_version":"1.60.0","description":"Upgrade complete"}]"#;
        let h = parse(text).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[1].chart, "agones-1.60.0");
        assert!(parse("{}").unwrap_err().contains("not a revision list"));
    }
}
