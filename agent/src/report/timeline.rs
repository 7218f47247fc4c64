//! The run's timeline, the HTML report's first drawing: a band per configuration (from the
//! moment it went live to the next transition), a line per transition, and a lane per kind of
//! verdict row with each window coloured by its verdict; each mark links to its transition's
//! section and names it on hover.

use std::collections::BTreeMap;
use std::fmt::Write;

use upsoak_common::change;

use super::html::escape;
use super::svg::{Scale, time_label, time_ticks};
use super::{RowKind, change_of, rows};
use crate::history::History;

const W: f64 = 960.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 12.0;
/// Configuration band, then one lane per [`RowKind`], then the time axis.
const BAND: (f64, f64) = (8.0, 30.0);
const LANE_H: f64 = 16.0;
const LANE_GAP: f64 = 4.0;
const PALETTE: usize = 8;

fn lane_top(k: RowKind) -> f64 {
    let i = match k {
        RowKind::Disruption => 0.0,
        RowKind::Steady => 1.0,
    };
    BAND.0 + BAND.1 + LANE_GAP + i * (LANE_H + LANE_GAP)
}

/// The timeline as a `<section>`; a sentence instead when nothing was seen yet.
pub fn timeline(h: &History, now: Option<i64>) -> String {
    let mut out = String::from("<section id=\"timeline\"><h2>Timeline</h2>");
    let Some(first) = h.transitions.first() else {
        out.push_str("<p>No transition seen yet.</p></section>");
        return out;
    };
    let all_rows: Vec<_> = h
        .transitions
        .iter()
        .flat_map(|t| rows(t).into_iter().map(move |r| (t, r)))
        .collect();
    let t0 = all_rows
        .iter()
        .map(|(_, r)| r.window_start)
        .fold(first.at, i64::min);
    let mut t1 = all_rows
        .iter()
        .map(|(_, r)| r.window_end)
        .chain(h.transitions.iter().map(|t| t.at))
        .chain(now)
        .fold(t0, i64::max);
    // The last configuration's band shows even before anything judged it.
    let last = h.transitions.last().map_or(t0, |t| t.at);
    t1 = t1.max(last + ((t1 - t0) / 20).max(60));
    let x = Scale {
        d0: t0 as f64,
        d1: t1 as f64,
        r0: LEFT,
        r1: W - RIGHT,
    };
    let axis_y = lane_top(RowKind::Steady) + LANE_H + 6.0;
    let height = axis_y + 30.0;
    let _ = write!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\">"
    );
    let _ = write!(
        out,
        "<text class=\"lane\" x=\"4\" y=\"{:.1}\">configuration</text>",
        BAND.0 + BAND.1 / 2.0 + 4.0
    );
    for k in [RowKind::Disruption, RowKind::Steady] {
        let _ = write!(
            out,
            "<text class=\"lane\" x=\"4\" y=\"{:.1}\">{}</text>",
            lane_top(k) + LANE_H - 4.0,
            k.as_str()
        );
    }
    // Configuration bands: the first transition's `from` until it, then each `to` until the
    // next transition (the last until the end). The same configuration keeps its colour.
    let mut colours: BTreeMap<String, usize> = BTreeMap::new();
    let mut colour = |c: &BTreeMap<String, String>| {
        let n = colours.len();
        *colours.entry(change::full(c)).or_insert(n) % PALETTE
    };
    let mut bands = vec![(t0, first.at, &first.from, None)];
    for (i, t) in h.transitions.iter().enumerate() {
        let end = h.transitions.get(i + 1).map_or(t1, |n| n.at);
        bands.push((t.at, end, &t.to, Some(t)));
    }
    for (a, b, cfg, t) in bands {
        let (px0, px1) = (x.at(a as f64), x.at(b as f64));
        if px1 - px0 < 0.5 {
            continue;
        }
        let title = match t {
            Some(t) => format!("generation {}: {}", t.generation, change::full(cfg)),
            None => format!(
                "before generation {}: {}",
                first.generation,
                change::full(cfg)
            ),
        };
        let _ = write!(
            out,
            "<rect class=\"config-band c{}\" x=\"{px0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\"><title>{}</title></rect>",
            colour(cfg),
            BAND.0,
            px1 - px0,
            BAND.1,
            escape(&title)
        );
        let version = cfg.get("version").map(String::as_str).unwrap_or("?");
        // A label only where it fits (about 6 px a character).
        if px1 - px0 > 6.5 * version.len() as f64 + 6.0 {
            let _ = write!(
                out,
                "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                px0 + 3.0,
                BAND.0 + BAND.1 / 2.0 + 4.0,
                escape(version)
            );
        }
    }
    for (t, r) in &all_rows {
        let px0 = x.at(r.window_start as f64);
        // A short window on a week-long run still shows.
        let w = (x.at(r.window_end as f64) - px0).max(2.0);
        let _ = write!(
            out,
            "<a href=\"#generation-{g}\"><rect class=\"window-verdict v-{v}\" data-kind=\"{k}\" data-generation=\"{g}\" x=\"{px0:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{LANE_H}\"><title>generation {g} {k} window: {v} ({c})</title></rect></a>",
            g = t.generation,
            v = r.verdict.as_str(),
            k = r.kind.as_str(),
            y = lane_top(r.kind),
            c = escape(&change_of(t)),
        );
    }
    for t in &h.transitions {
        let px = x.at(t.at as f64);
        let _ = write!(
            out,
            "<a href=\"#generation-{g}\"><line class=\"transition\" data-generation=\"{g}\" x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{}\" y2=\"{axis_y}\"><title>generation {g}: {}</title></line></a>",
            BAND.0 - 4.0,
            escape(&change_of(t)),
            g = t.generation,
        );
    }
    let _ = write!(
        out,
        "<g class=\"axis x\"><line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{axis_y}\" y2=\"{axis_y}\"/>",
        W - RIGHT
    );
    for tick in time_ticks(t0, t1, 8) {
        let px = x.at(tick as f64);
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{axis_y}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
            axis_y + 4.0,
            axis_y + 16.0,
            super::svg::anchor(px, W - RIGHT),
            time_label(tick, t1 - t0)
        );
    }
    let _ = write!(
        out,
        "<text class=\"unit\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">time (UTC)</text></g></svg>",
        W - RIGHT,
        height - 2.0
    );
    out.push_str("<p class=\"legend\">");
    for (class, name) in [
        ("s-pass", "pass"),
        ("s-warn", "warn"),
        ("s-fail", "fail"),
        ("s-inconclusive", "inconclusive"),
        ("s-disruption", "disruption window"),
        ("s-steady", "steady window"),
        ("s-baseline", "baseline mean to threshold"),
        ("s-threshold", "threshold"),
    ] {
        let _ = write!(
            out,
            "<span><span class=\"swatch {class}\"></span>{name}</span>"
        );
    }
    out.push_str("</p></section>");
    out
}
