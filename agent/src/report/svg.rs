//! The HTML report's drawings as inline SVG: linear scales, "nice" ticks for values and times,
//! and the chart of one SLO (time and value axes with units, the baseline's band, the
//! threshold, the run's windows shaded). Every element carries a `class` naming what it shows,
//! so tests find them by parsing the page, and the page's CSS colours them.

use std::fmt::Write;

use super::html::escape;

/// A linear map from a domain to a pixel range.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn at(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < 1e-12 {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// About `n` round values covering `lo..=hi` (steps of 1, 2 or 5 × 10^k).
pub fn value_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 && out.len() < 4 * n + 2 {
        // -0.0 and 0.30000000000000004 read badly.
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// A value as a tick label: short, without trailing zeros.
pub fn value_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

const TIME_STEPS: [i64; 17] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400,
];

/// About `n` round times (unix seconds, multiples of a round step) covering `t0..=t1`.
pub fn time_ticks(t0: i64, t1: i64, n: usize) -> Vec<i64> {
    if t1 <= t0 || n == 0 {
        return vec![t0];
    }
    let raw = (t1 - t0) / n as i64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / 86400 + 1) * 86400);
    let first = t0.div_euclid(step) * step + if t0.rem_euclid(step) == 0 { 0 } else { step };
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= t1)
        .take(4 * n + 2)
        .collect()
}

/// A time as a tick label in UTC: `HH:MM:SS` within a day, `MM-DD HH:MM` over longer spans.
pub fn time_label(t: i64, span: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(t) else {
        return t.to_string();
    };
    let f = if span > 86400 {
        "%m-%d %H:%M"
    } else if span > 600 {
        "%H:%M"
    } else {
        "%H:%M:%S"
    };
    ts.strftime(f).to_string()
}

/// How a time tick's label hangs: centred on its tick, or ending at it near the right edge so
/// it is not cut off.
pub fn anchor(px: f64, right: f64) -> &'static str {
    if px > right - 28.0 { "end" } else { "middle" }
}

/// A shaded window of a chart: a verdict row's time span.
#[derive(Clone, Debug)]
pub struct Shade {
    /// `disruption` or `steady`: the CSS class `window <kind>`.
    pub kind: &'static str,
    pub start: i64,
    pub end: i64,
    /// Shown on hover.
    pub title: String,
}

/// What one SLO's chart shows.
#[derive(Clone, Debug)]
pub struct SloChart<'a> {
    /// `(unix seconds, value)`; NaN where a step had no value.
    pub samples: &'a [(f64, f64)],
    pub baseline: Option<f64>,
    pub threshold: Option<f64>,
    /// The value axis' unit, e.g. `s`, `MiB/h`; empty when unitless.
    pub unit: &'a str,
    /// The transition's judged windows.
    pub shades: &'a [Shade],
}

const W: f64 = 640.0;
const H: f64 = 180.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 34.0;

/// One SLO's chart: empty when it has fewer than two values to draw.
pub fn slo_chart(c: &SloChart<'_>) -> String {
    let finite: Vec<(f64, f64)> = c
        .samples
        .iter()
        .copied()
        .filter(|(t, v)| v.is_finite() && t.is_finite())
        .collect();
    if finite.len() < 2 {
        return String::new();
    }
    let mut t0 = finite[0].0;
    let mut t1 = finite[finite.len() - 1].0;
    for s in c.shades {
        t0 = t0.min(s.start as f64);
        t1 = t1.max(s.end as f64);
    }
    let marks = [c.baseline, c.threshold];
    let values = finite
        .iter()
        .map(|p| p.1)
        .chain(marks.iter().flatten().copied().filter(|v| v.is_finite()));
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    let pad = if hi > lo {
        (hi - lo) * 0.08
    } else {
        lo.abs().max(1.0) * 0.1
    };
    lo -= pad;
    hi += pad;
    let ticks = value_ticks(lo, hi, 4);
    if let (Some(a), Some(b)) = (ticks.first(), ticks.last()) {
        lo = lo.min(*a);
        hi = hi.max(*b);
    }
    let x = Scale {
        d0: t0,
        d1: t1,
        r0: LEFT,
        r1: W - RIGHT,
    };
    let y = Scale {
        d0: lo,
        d1: hi,
        r0: H - BOTTOM,
        r1: TOP,
    };
    let (px0, px1, py0, py1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let mut s = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">"
    );
    for sh in c.shades {
        let (a, b) = (x.at(sh.start as f64).max(px0), x.at(sh.end as f64).min(px1));
        if b > a {
            let _ = write!(
                s,
                "<rect class=\"window {}\" x=\"{a:.1}\" y=\"{py1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                sh.kind,
                b - a,
                py0 - py1,
                escape(&sh.title)
            );
        }
    }
    if let (Some(b), Some(t)) = (c.baseline, c.threshold)
        && b.is_finite()
        && t.is_finite()
    {
        let (a, z) = (y.at(b).min(y.at(t)), y.at(b).max(y.at(t)));
        let _ = write!(
            s,
            "<rect class=\"band baseline\" x=\"{px0}\" y=\"{a:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>baseline {} to threshold {}</title></rect>",
            px1 - px0,
            (z - a).max(1.0),
            value_label(b),
            value_label(t)
        );
    }
    if let Some(b) = c.baseline.filter(|v| v.is_finite()) {
        let _ = write!(
            s,
            "<line class=\"baseline\" x1=\"{px0}\" x2=\"{px1}\" y1=\"{0:.1}\" y2=\"{0:.1}\"><title>baseline mean {1}</title></line>",
            y.at(b),
            value_label(b)
        );
    }
    if let Some(t) = c.threshold.filter(|v| v.is_finite()) {
        let _ = write!(
            s,
            "<line class=\"threshold\" x1=\"{px0}\" x2=\"{px1}\" y1=\"{0:.1}\" y2=\"{0:.1}\"><title>threshold {1}</title></line>",
            y.at(t),
            value_label(t)
        );
    }
    // Axes: the value axis with its unit, the time axis in UTC.
    let _ = write!(
        s,
        "<g class=\"axis y\"><line x1=\"{px0}\" x2=\"{px0}\" y1=\"{py0}\" y2=\"{py1}\"/>"
    );
    for v in &ticks {
        let py = y.at(*v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{px0}\" x2=\"{px1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px0 - 4.0,
            py + 4.0,
            value_label(*v)
        );
    }
    let unit = if c.unit.is_empty() {
        "value".to_owned()
    } else {
        escape(c.unit)
    };
    let _ = write!(
        s,
        "<text class=\"unit\" x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{unit}</text></g>",
        (py0 + py1) / 2.0,
        (py0 + py1) / 2.0
    );
    let _ = write!(
        s,
        "<g class=\"axis x\"><line x1=\"{px0}\" x2=\"{px1}\" y1=\"{py0}\" y2=\"{py0}\"/>"
    );
    let (a, b) = (t0.floor() as i64, t1.ceil() as i64);
    for t in time_ticks(a, b, 5) {
        let px = x.at(t as f64);
        let _ = write!(
            s,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{py0}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
            py0 + 4.0,
            py0 + 16.0,
            anchor(px, px1),
            time_label(t, b - a)
        );
    }
    let _ = write!(
        s,
        "<text class=\"unit\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (UTC)</text></g>",
        (px0 + px1) / 2.0,
        H - 4.0
    );
    let points: Vec<String> = finite
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x.at(*t), y.at(*v)))
        .collect();
    let _ = write!(
        s,
        "<polyline class=\"series\" points=\"{}\"/></svg>",
        points.join(" ")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round_and_cover_the_range() {
        assert_eq!(value_ticks(0.0, 1.0, 4), vec![0.0, 0.5, 1.0]);
        assert_eq!(value_ticks(-3.3, 47.0, 4), vec![0.0, 20.0, 40.0]);
        let fine = value_ticks(-3.3, 47.0, 10);
        assert_eq!(fine.first(), Some(&0.0));
        assert!(
            fine.windows(2).all(|w| (w[1] - w[0] - 10.0).abs() < 1e-9),
            "{fine:?}"
        );
        assert_eq!(value_label(0.30000000000000004), "0.3");
        assert_eq!(value_label(2.5e-5), "2.5e-5");
    }

    #[test]
    fn time_ticks_fall_on_round_times() {
        let t = time_ticks(1_000_003, 1_000_003 + 3600, 5);
        assert!(t.iter().all(|x| x % 900 == 0), "{t:?}");
        assert_eq!(time_label(0, 60), "00:00:00");
        assert_eq!(time_label(86_400 * 3 + 3600, 7 * 86_400), "01-04 01:00");
    }
}
