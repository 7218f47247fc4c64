//! `upsoak-agent report`: the history as text, JSON or HTML, and the overall verdict. Each
//! transition shows both windows: the disruption window (apply start → settle end, one number
//! per SLO) and the steady window after the settle period.

use std::fmt::Write;

use crate::history::{Disruption, History};
use crate::spec::Verdict;

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "–".to_owned(),
    }
}

fn config(c: &std::collections::BTreeMap<String, String>) -> String {
    c.get("version").cloned().unwrap_or_else(|| "?".to_owned())
}

/// The disruption window of a transition as text lines.
fn disruption_text(out: &mut String, d: &Disruption) {
    let _ = writeln!(
        out,
        "  disruption: {}  (window {}..{}, {}s; {})",
        d.verdict.as_str().to_uppercase(),
        d.window_start,
        d.window_end,
        d.window_end - d.window_start,
        d.phases
    );
    for (k, v) in &d.slos {
        let e = &v.evidence;
        let _ = writeln!(
            out,
            "    {:<38} {:<13} {:>10} {:>10} {:>10}  {}",
            k,
            e.verdict.as_str(),
            fmt(e.value),
            fmt(e.baseline),
            fmt(e.threshold),
            e.reason
        );
    }
}

/// The chunks of a transition's steady period as text: a row per chunk, then the SLOs that
/// did not pass in it.
fn chunks_text(out: &mut String, t: &crate::history::Transition) {
    for (n, c) in t.chunks.iter().enumerate() {
        let _ = writeln!(
            out,
            "  chunk {:<3} {:<13} (window {}..{}, {}s)",
            n + 1,
            c.verdict.as_str(),
            c.window_start,
            c.window_end,
            c.window_end - c.window_start
        );
        for (k, v) in c
            .slos
            .iter()
            .filter(|(_, v)| v.evidence.verdict != Verdict::Pass)
        {
            let e = &v.evidence;
            let _ = writeln!(
                out,
                "    {:<38} {:<13} {:>10} {:>10} {:>10}  {}",
                k,
                e.verdict.as_str(),
                fmt(e.value),
                fmt(e.baseline),
                fmt(e.threshold),
                e.reason
            );
        }
    }
}

/// A table per transition.
pub fn text(h: &History) -> String {
    let mut out = String::new();
    for t in &h.transitions {
        let _ = writeln!(
            out,
            "generation {}: {} → {}  gates {}",
            t.generation,
            config(&t.from),
            config(&t.to),
            t.to.get("feature_gates").map(String::as_str).unwrap_or("")
        );
        if let Some(d) = &t.disruption {
            disruption_text(&mut out, d);
        }
        let Some(j) = &t.judged else {
            let _ = writeln!(out, "  pending: window not over yet");
            continue;
        };
        let _ = writeln!(
            out,
            "  steady verdict: {}  (window {}..{})",
            t.steady_verdict()
                .unwrap_or(j.verdict)
                .as_str()
                .to_uppercase(),
            j.window_start,
            j.window_end
        );
        let _ = writeln!(
            out,
            "  {:<40} {:<13} {:>10} {:>10} {:>10} {:>9}  reason",
            "slo", "verdict", "value", "baseline", "threshold", "p"
        );
        for (k, v) in &j.slos {
            let e = &v.evidence;
            let _ = writeln!(
                out,
                "  {:<40} {:<13} {:>10} {:>10} {:>10} {:>9}  {}",
                k,
                e.verdict.as_str(),
                fmt(e.value),
                fmt(e.baseline),
                fmt(e.threshold),
                e.p_value
                    .map(|p| format!("{p:.1e}"))
                    .unwrap_or_else(|| "–".into()),
                e.reason
            );
        }
        chunks_text(&mut out, t);
    }
    let _ = writeln!(out, "overall: {}", h.overall().as_str().to_uppercase());
    out
}

/// The history as JSON, with the overall verdict.
pub fn json(h: &History) -> String {
    serde_json::to_string_pretty(
        &serde_json::json!({"overall": h.overall(), "transitions": h.transitions}),
    )
    .unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG line of samples with the threshold dashed.
fn chart(samples: &[(f64, f64)], threshold: Option<f64>) -> String {
    let finite: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(_, v)| v.is_finite())
        .collect();
    if finite.len() < 2 {
        return String::new();
    }
    let (w, hgt) = (240.0, 48.0);
    let (t0, t1) = (finite[0].0, finite[finite.len() - 1].0);
    let mut lo = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let x = |t: f64| (t - t0) / (t1 - t0).max(1e-9) * w;
    let y = |v: f64| hgt - (v - lo) / span * hgt;
    let points: Vec<String> = finite
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let mut svg = format!(
        "<svg width=\"{w}\" height=\"{hgt}\" viewBox=\"0 0 {w} {hgt}\"><polyline fill=\"none\" stroke=\"#36c\" stroke-width=\"1.5\" points=\"{}\"/>",
        points.join(" ")
    );
    if let Some(t) = threshold.filter(|t| t.is_finite()) {
        let _ = write!(
            svg,
            "<line x1=\"0\" x2=\"{w}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#c33\" stroke-dasharray=\"4 3\"/>",
            y(t)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A page: a section per transition, a row per SLO with a chart of its window.
pub fn html(h: &History) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>upsoak report</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left}.pass{color:#080}.fail{color:#c00;font-weight:bold}.warn{color:#b60}.inconclusive{color:#666}</style></head><body>",
    );
    let overall = h.overall();
    let _ = write!(
        out,
        "<h1>upsoak report: <span class=\"{0}\">{0}</span></h1>",
        overall.as_str()
    );
    for t in &h.transitions {
        let _ = write!(
            out,
            "<h2>generation {}: {} → {}</h2><p>gates: {}</p>",
            t.generation,
            escape(&config(&t.from)),
            escape(&config(&t.to)),
            escape(t.to.get("feature_gates").map(String::as_str).unwrap_or(""))
        );
        if let Some(d) = &t.disruption {
            disruption_html(&mut out, d);
        }
        let Some(j) = &t.judged else {
            out.push_str("<p>steady window pending</p>");
            continue;
        };
        let _ = write!(
            out,
            "<p>steady window {1}..{2}: <span class=\"{0}\">{0}</span></p><table><tr><th>SLO</th><th>verdict</th><th>value</th><th>baseline</th><th>threshold</th><th>p</th><th>window (threshold dashed)</th><th>reason</th></tr>",
            j.verdict.as_str(),
            j.window_start,
            j.window_end
        );
        for (k, v) in &j.slos {
            let e = &v.evidence;
            let _ = write!(
                out,
                "<tr><td>{k}</td><td class=\"{v}\">{v}</td><td>{val}</td><td>{b}</td><td>{t}</td><td>{p}</td><td>{c}</td><td>{r}</td></tr>",
                k = escape(k),
                v = e.verdict.as_str(),
                val = fmt(e.value),
                b = fmt(e.baseline),
                t = fmt(e.threshold),
                p = e
                    .p_value
                    .map(|p| format!("{p:.1e}"))
                    .unwrap_or_else(|| "–".into()),
                c = chart(&v.samples, e.threshold),
                r = escape(&e.reason)
            );
        }
        out.push_str("</table>");
        chunks_html(&mut out, t);
    }
    out.push_str("</body></html>\n");
    out
}

/// The chunks of a transition's steady period as an HTML table, a row per chunk with the SLOs
/// that did not pass in it.
fn chunks_html(out: &mut String, t: &crate::history::Transition) {
    if t.chunks.is_empty() {
        return;
    }
    out.push_str("<table class=\"chunks\"><tr><th>chunk</th><th>window</th><th>verdict</th><th>not passed</th></tr>");
    for (n, c) in t.chunks.iter().enumerate() {
        let not_passed: Vec<String> = c
            .slos
            .iter()
            .filter(|(_, v)| v.evidence.verdict != Verdict::Pass)
            .map(|(k, v)| format!("{} ({})", escape(k), escape(&v.evidence.reason)))
            .collect();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}..{}</td><td class=\"{v}\">{v}</td><td>{}</td></tr>",
            n + 1,
            c.window_start,
            c.window_end,
            not_passed.join("<br>"),
            v = c.verdict.as_str()
        );
    }
    out.push_str("</table>");
}

/// The disruption window of a transition as an HTML table, one number per SLO.
fn disruption_html(out: &mut String, d: &Disruption) {
    let _ = write!(
        out,
        "<p>disruption window {}..{} ({}s): <span class=\"{v}\">{v}</span> <small>{}</small></p><table><tr><th>SLO</th><th>verdict</th><th>value</th><th>median of earlier</th><th>threshold</th><th>reason</th></tr>",
        d.window_start,
        d.window_end,
        d.window_end - d.window_start,
        escape(&d.phases),
        v = d.verdict.as_str()
    );
    for (k, v) in &d.slos {
        let e = &v.evidence;
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"{v}\">{v}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(k),
            fmt(e.value),
            fmt(e.baseline),
            fmt(e.threshold),
            escape(&e.reason),
            v = e.verdict.as_str()
        );
    }
    out.push_str("</table>");
}

/// The exit code the overall verdict means.
pub fn exit_code(v: Verdict) -> u8 {
    match v {
        Verdict::Pass | Verdict::Warn => crate::exit::PASS,
        Verdict::Fail => crate::exit::FAIL,
        Verdict::Inconclusive => crate::exit::INCONCLUSIVE,
    }
}
