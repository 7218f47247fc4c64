//! `upsoak-agent report`: the history as text, JSON or HTML, and the overall verdict. A
//! transition reads as what changed ([`upsoak_common::change::describe`]); its full
//! configuration is one flag (`--full-config`) or one click (the HTML's details) away, and
//! always in the JSON. Each transition shows its verdict rows ([`rows`]): the disruption window
//! (apply start → settle end, one number per SLO) and the steady window(s) after the settle
//! period. Renderers iterate the rows, so a new kind of row (a steady chunk) needs no renderer
//! change.
//!
//! - [`html`]: the self-contained page (inline CSS and SVG: a timeline, a chart per SLO).
//! - [`timeline`]: the whole run in one drawing (configuration bands, transitions, verdicts).
//! - [`svg`]: the charts' drawing (axes, ticks, bands).
//! - [`follow`]: `report --follow`, new verdict rows as they are written to the history.
//! - [`live`]: `GET /report` on the agent's HTTP port, the page refreshed.

use std::collections::BTreeMap;
use std::fmt::Write;

use upsoak_common::change;

use crate::history::{History, SloVerdict, Transition};
use crate::spec::Verdict;

pub mod follow;
pub mod html;
pub mod live;
pub mod svg;
pub mod timeline;

pub use html::html;

/// Which window of its transition a verdict row judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowKind {
    /// Apply start → settle end, one number per SLO.
    Disruption,
    /// After the settle period: per-step samples against the baseline.
    Steady,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Disruption => "disruption",
            RowKind::Steady => "steady",
        }
    }
}

/// One judged window of a transition, with its verdict and each SLO's evidence.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    pub kind: RowKind,
    /// Unix seconds.
    pub window_start: i64,
    pub window_end: i64,
    /// Unix seconds the verdict was reached.
    pub judged_at: i64,
    pub verdict: Verdict,
    /// By `group/slo`.
    pub slos: &'a BTreeMap<String, SloVerdict>,
    /// How the window was placed (the disruption window's phases), empty when nothing to say.
    pub note: &'a str,
    /// The steady period's chunk this row judged (1 = the first after the first window), if
    /// it is one (`--steady-every`).
    pub chunk: Option<usize>,
}

impl Row<'_> {
    /// What the row is called: `disruption`, `steady`, or `chunk N` of the steady period.
    pub fn label(&self) -> String {
        match self.chunk {
            Some(n) => format!("chunk {n}"),
            None => self.kind.as_str().to_owned(),
        }
    }
}

/// The judged rows of a transition in time order: its disruption window, then its steady
/// window and its chunks. The one place that knows where rows live in a [`Transition`].
pub fn rows(t: &Transition) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    if let Some(d) = &t.disruption {
        out.push(Row {
            kind: RowKind::Disruption,
            window_start: d.window_start,
            window_end: d.window_end,
            judged_at: d.judged_at,
            verdict: d.verdict,
            slos: &d.slos,
            note: &d.phases,
            chunk: None,
        });
    }
    if let Some(j) = &t.judged {
        out.push(Row {
            kind: RowKind::Steady,
            window_start: j.window_start,
            window_end: j.window_end,
            judged_at: j.judged_at,
            verdict: j.verdict,
            slos: &j.slos,
            note: "",
            chunk: None,
        });
    }
    // The steady period judged on after the first window, chunk by chunk.
    for (n, c) in t.chunks.iter().enumerate() {
        out.push(Row {
            kind: RowKind::Steady,
            window_start: c.window_start,
            window_end: c.window_end,
            judged_at: c.judged_at,
            verdict: c.verdict,
            slos: &c.slos,
            note: "",
            chunk: Some(n + 1),
        });
    }
    out.sort_by_key(|r| (r.window_start, r.kind));
    out
}

/// What a transition changed, in one line.
pub fn change_of(t: &Transition) -> String {
    change::describe(&t.from, &t.to)
}

pub(crate) fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "–".to_owned(),
    }
}

fn p_value(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1e}")).unwrap_or_else(|| "–".into())
}

/// What `text` prints besides the verdicts.
#[derive(Clone, Copy, Debug, Default)]
pub struct TextOptions {
    /// Each transition's whole configuration before and after, not only what changed.
    pub full_config: bool,
}

/// A row's heading line and its SLO table.
fn row_text(out: &mut String, r: &Row<'_>) {
    let _ = write!(
        out,
        "  {}: {}  (window {}..{}, {}s",
        r.label(),
        r.verdict.as_str().to_uppercase(),
        r.window_start,
        r.window_end,
        r.window_end - r.window_start,
    );
    if !r.note.is_empty() {
        let _ = write!(out, "; {}", r.note);
    }
    let _ = writeln!(out, ")");
    let _ = writeln!(
        out,
        "    {:<40} {:<13} {:>10} {:>10} {:>10} {:>9}  reason",
        "slo", "verdict", "value", "baseline", "threshold", "p"
    );
    for (k, v) in r.slos {
        let e = &v.evidence;
        let _ = writeln!(
            out,
            "    {:<40} {:<13} {:>10} {:>10} {:>10} {:>9}  {}",
            k,
            e.verdict.as_str(),
            fmt(e.value),
            fmt(e.baseline),
            fmt(e.threshold),
            p_value(e.p_value),
            e.reason
        );
    }
}

/// A table per transition, headed by what it changed.
pub fn text(h: &History) -> String {
    text_with(h, TextOptions::default())
}

/// [`text`], with the options of `report`'s flags.
pub fn text_with(h: &History, o: TextOptions) -> String {
    let mut out = String::new();
    for t in &h.transitions {
        let _ = writeln!(out, "generation {}: {}", t.generation, change_of(t));
        if o.full_config {
            let _ = writeln!(out, "  from: {}", change::full(&t.from));
            let _ = writeln!(out, "  to:   {}", change::full(&t.to));
        }
        for r in rows(t) {
            row_text(&mut out, &r);
        }
        if !t.chunks.is_empty()
            && let Some(v) = t.steady_verdict()
        {
            let _ = writeln!(
                out,
                "  steady verdict: {}  (the worst of the first window and {} chunks)",
                v.as_str().to_uppercase(),
                t.chunks.len()
            );
        }
        if t.judged.is_none() {
            let _ = writeln!(out, "  pending: steady window not over yet");
        }
    }
    let _ = writeln!(out, "overall: {}", h.overall().as_str().to_uppercase());
    out
}

/// The history as JSON, with the overall verdict; each transition keeps its full `from` and
/// `to` configurations and gains `change`, the one-line summary.
pub fn json(h: &History) -> String {
    let transitions: Vec<serde_json::Value> = h
        .transitions
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("change".to_owned(), change_of(t).into());
            }
            v
        })
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({"overall": h.overall(), "transitions": transitions}),
    )
    .unwrap_or_default()
}

/// The exit code the overall verdict means.
pub fn exit_code(v: Verdict) -> u8 {
    match v {
        Verdict::Pass | Verdict::Warn => crate::exit::PASS,
        Verdict::Fail => crate::exit::FAIL,
        Verdict::Inconclusive => crate::exit::INCONCLUSIVE,
    }
}
