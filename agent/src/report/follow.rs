//! `upsoak-agent report --follow`: prints each transition as it is detected and each verdict
//! row as it is judged, read from the history file (`history.json` in the state directory,
//! which the running agent replaces atomically whenever it progresses), until SIGINT or
//! SIGTERM. Reading the file rather than the agent's HTTP API works on a finished run, on a
//! copied state directory and without the agent's credentials.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::html::utc;
use super::{Row, RowKind, change_of, rows};
use crate::history::{History, Transition};
use crate::spec::Verdict;

/// What has been printed: a transition's detection (`None`) or one of its rows.
type Key = (u64, Option<(RowKind, i64)>);

/// The lines not yet printed for `h`, in history order; marks them printed in `seen`.
pub fn new_lines(h: &History, seen: &mut BTreeSet<Key>) -> Vec<String> {
    let mut out = Vec::new();
    for t in &h.transitions {
        if seen.insert((t.generation, None)) {
            out.push(format!(
                "{}  generation {}: {}  detected",
                utc(t.at),
                t.generation,
                change_of(t)
            ));
        }
        for r in rows(t) {
            if seen.insert((t.generation, Some((r.kind, r.window_start)))) {
                out.push(row_line(t, &r));
            }
        }
    }
    out
}

/// A verdict row in one line: when, which transition, which window, the verdict, and the SLOs
/// that did not pass.
fn row_line(t: &Transition, r: &Row<'_>) -> String {
    let mut line = format!(
        "{}  generation {}: {}  {} {}  (window {}..{})",
        utc(r.judged_at.max(r.window_end)),
        t.generation,
        change_of(t),
        r.label(),
        r.verdict.as_str().to_uppercase(),
        r.window_start,
        r.window_end
    );
    for v in [Verdict::Fail, Verdict::Inconclusive, Verdict::Warn] {
        let names: Vec<&str> = r
            .slos
            .iter()
            .filter(|(_, s)| s.evidence.verdict == v)
            .map(|(k, _)| k.as_str())
            .collect();
        if !names.is_empty() {
            line.push_str(&format!("  {}: {}", v.as_str(), names.join(", ")));
        }
    }
    line
}

/// Follows the history in `state_dir`, reading it every `every`, writing each new line to
/// `print`, until `stop` is cancelled. Returns the overall verdict of the last history read.
pub async fn follow(
    state_dir: &Path,
    every: Duration,
    stop: &CancellationToken,
    mut print: impl FnMut(&str),
) -> crate::Result<Verdict> {
    let mut seen = BTreeSet::new();
    loop {
        let dir = state_dir.to_owned();
        let h = tokio::task::spawn_blocking(move || History::load(&dir))
            .await
            .map_err(|e| {
                crate::Error::Read(state_dir.display().to_string(), std::io::Error::other(e))
            })??;
        for l in new_lines(&h, &mut seen) {
            print(&l);
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(h.overall()),
            _ = tokio::time::sleep(every) => {}
        }
    }
}
