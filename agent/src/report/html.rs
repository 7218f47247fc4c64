//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched),
//! well-formed XML as well as HTML so tests can parse it. It opens with the run's timeline
//! ([`super::timeline`]), then a section per transition headed by what it changed, its full
//! configuration one click away, and per verdict row a table of the SLOs and a chart of each
//! SLO that has samples ([`super::svg::slo_chart`]).

use std::fmt::Write;

use upsoak_common::change;

use super::svg::{self, Shade, SloChart};
use super::{Row, change_of, fmt, rows};
use crate::history::{History, Transition};

/// Escapes text for HTML and XML (content and attribute values).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How the page is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct HtmlOptions {
    /// Seconds after which the browser reloads the page (the live report); `None`: never.
    pub refresh_s: Option<u32>,
    /// Unix seconds the page shows as its end (the live report's now); `None`: the last
    /// window's end.
    pub now: Option<i64>,
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}h2{white-space:pre-wrap}\
td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.verdict.pass,td.pass{color:#080}.verdict.fail,td.fail{color:#c00;font-weight:bold}\
.verdict.warn,td.warn{color:#b60}.verdict.inconclusive,td.inconclusive{color:#666}\
.v-pass{fill:#2e9d2e}.v-warn{fill:#e6a100}.v-fail{fill:#d62728}.v-inconclusive{fill:#9a9a9a}\
.config-band{stroke:#fff;stroke-width:1}.c0{fill:#dbe9f6}.c1{fill:#f6e3cf}.c2{fill:#dcefd9}\
.c3{fill:#eadcf2}.c4{fill:#f6f1c8}.c5{fill:#d5eeee}.c6{fill:#f2d7df}.c7{fill:#e4e4e4}\
.transition{stroke:#333;stroke-width:1}.lane{font-size:11px;fill:#444}\
.window.disruption{fill:#f4c98d;opacity:.45}.window.steady{fill:#a9cbed;opacity:.45}\
.band.baseline{fill:#7fbf7f;opacity:.25}line.baseline{stroke:#393;stroke-dasharray:2 2}\
line.threshold{stroke:#c33;stroke-dasharray:6 3;stroke-width:1.5}\
.series{fill:none;stroke:#2962b5;stroke-width:1.5}.axis line{stroke:#555}.axis line.grid{stroke:#eee}\
.tick{font-size:10px;fill:#444}.unit{font-size:11px;fill:#222}.label{font-size:10px;fill:#333}\
figure{display:inline-block;margin:.5em 1em .5em 0}figcaption{font-size:12px}\
.legend span{display:inline-block;margin-right:1em;font-size:12px}\
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}\
.s-pass{background:#2e9d2e}.s-warn{background:#e6a100}.s-fail{background:#d62728}\
.s-inconclusive{background:#9a9a9a}.s-disruption{background:#f4c98d}.s-steady{background:#a9cbed}\
.s-baseline{background:#bfdfbf}.s-threshold{background:#c33}\
details.config{margin:.3em 0 .8em}details.config dd{font-family:monospace}";

/// A UTC time for people: `2026-11-30 05:12:00`.
pub fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The unit of an SLO's value, read from its name and query (the specs carry no unit): the
/// memory-growth SLOs' `deriv(…_bytes) * 3600 / 2^20` is MiB/h, a `rate` of CPU seconds is
/// cores, a quantile or gauge of `_seconds` is seconds, success and convergence are ratios,
/// readiness and scrapes are 1 (up) or 0. Empty when none of these fits.
pub fn unit_of(slo: &str, query: &str) -> &'static str {
    let q = query.replace(' ', "");
    if q.contains("_bytes") && q.contains("deriv(") && q.contains("3600") && q.contains("2^20") {
        "MiB/h"
    } else if q.contains("_bytes") {
        "bytes"
    } else if q.contains("cpu_seconds_total") && q.contains("rate(") {
        "CPU cores"
    } else if q.contains("_seconds") && (q.contains("histogram_quantile(") || !q.contains("rate("))
    {
        "seconds"
    } else if slo.ends_with("-success") || slo.ends_with("-converged") || q.contains("ratio") {
        "ratio"
    } else if slo.ends_with("-ready") || slo.ends_with("-scraped") || q.starts_with("min(up{") {
        "1 = up"
    } else {
        ""
    }
}

fn verdict_span(v: crate::spec::Verdict) -> String {
    format!("<span class=\"verdict {0}\">{0}</span>", v.as_str())
}

/// A verdict row: its heading, the SLO table, and a chart per SLO with samples.
fn row_html(out: &mut String, t: &Transition, r: &Row<'_>, shades: &[Shade]) {
    let _ = write!(
        out,
        "<div class=\"row {kind}\" data-verdict=\"{v}\"><h3>{label} window {a} → {b} ({len}s): {span}</h3>",
        kind = r.kind.as_str(),
        label = r.label(),
        v = r.verdict.as_str(),
        a = utc(r.window_start),
        b = utc(r.window_end),
        len = r.window_end - r.window_start,
        span = verdict_span(r.verdict),
    );
    if !r.note.is_empty() {
        let _ = write!(out, "<p><small>{}</small></p>", escape(r.note));
    }
    out.push_str("<table><tr><th>SLO</th><th>verdict</th><th>value</th><th>baseline</th><th>threshold</th><th>p</th><th>reason</th></tr>");
    for (k, v) in r.slos {
        let e = &v.evidence;
        let _ = write!(
            out,
            "<tr class=\"slo\"><td>{k}</td><td class=\"{v}\">{v}</td><td>{val}</td><td>{b}</td><td>{t}</td><td>{p}</td><td>{r}</td></tr>",
            k = escape(k),
            v = e.verdict.as_str(),
            val = fmt(e.value),
            b = fmt(e.baseline),
            t = fmt(e.threshold),
            p = e
                .p_value
                .map(|p| format!("{p:.1e}"))
                .unwrap_or_else(|| "–".into()),
            r = escape(&e.reason)
        );
    }
    out.push_str("</table>");
    for (k, v) in r.slos {
        let e = &v.evidence;
        let chart = svg::slo_chart(&SloChart {
            samples: &v.samples,
            baseline: e.baseline,
            threshold: e.threshold,
            unit: unit_of(&v.slo, &v.query),
            shades,
        });
        if !chart.is_empty() {
            let _ = write!(
                out,
                "<figure class=\"slo-chart\" data-slo=\"{k}\" data-generation=\"{g}\"><figcaption>{k}: {span}</figcaption>{chart}</figure>",
                k = escape(k),
                g = t.generation,
                span = verdict_span(e.verdict)
            );
        }
    }
    out.push_str("</div>");
}

/// A transition's section.
fn transition_html(out: &mut String, t: &Transition) {
    let rs = rows(t);
    let shades: Vec<Shade> = rs
        .iter()
        .map(|r| Shade {
            kind: r.kind.as_str(),
            start: r.window_start,
            end: r.window_end,
            title: format!("{} window: {}", r.kind.as_str(), r.verdict.as_str()),
        })
        .collect();
    let _ = write!(
        out,
        "<section class=\"transition\" id=\"generation-{g}\"><h2>generation {g}: {c}</h2><p>live at {at}</p><details class=\"config\"><summary>full configuration</summary><dl><dt>from</dt><dd>{from}</dd><dt>to</dt><dd>{to}</dd></dl></details>",
        g = t.generation,
        c = escape(&change_of(t)),
        at = utc(t.at),
        from = escape(&change::full(&t.from)),
        to = escape(&change::full(&t.to)),
    );
    for r in &rs {
        row_html(out, t, r, &shades);
    }
    if t.judged.is_none() {
        out.push_str("<p class=\"pending\">steady window pending</p>");
    }
    out.push_str("</section>");
}

/// The page, with default options.
pub fn html(h: &History) -> String {
    html_with(h, &HtmlOptions::default())
}

/// The page: the overall verdict, the timeline, a section per transition.
pub fn html_with(h: &History, o: &HtmlOptions) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>",
    );
    if let Some(s) = o.refresh_s {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{s}\"/>");
    }
    let _ = write!(
        out,
        "<title>upsoak report</title><style>{STYLE}</style></head><body><h1>upsoak report: {}</h1>",
        verdict_span(h.overall())
    );
    let judged = h.transitions.iter().filter(|t| t.judged.is_some()).count();
    let _ = write!(
        out,
        "<p class=\"summary\">{} transitions, {judged} judged",
        h.transitions.len()
    );
    if let Some(now) = o.now {
        let _ = write!(out, "; as of {} UTC", utc(now));
    }
    if let Some(s) = o.refresh_s {
        let _ = write!(out, "; this page reloads every {s}s");
    }
    out.push_str("</p>");
    out.push_str(&super::timeline::timeline(h, o.now));
    for t in &h.transitions {
        transition_html(&mut out, t);
    }
    out.push_str("</body></html>\n");
    out
}
