//! The user's own alerts (Alertmanager's webhook) as verdicts of a transition, bounded: an
//! alert's text is the webhook poster's, so a verdict keeps at most [`MAX_NAME_BYTES`] of its
//! name and [`MAX_SUMMARY_BYTES`] of its summary, and one transition lists at most
//! [`MAX_ALERT_VERDICTS`] alerts (the newest; the older ones are counted in one more failed
//! verdict that says so). Whatever the inbox holds, an alert adds at most a few KiB to each
//! transition it overlaps, and the history and the report grow with the transitions only.

use std::collections::BTreeMap;

use crate::baseline;
use crate::history::SloVerdict;
use crate::judge::Evidence;
use crate::spec::{Severity, Verdict};

use super::Inbox;

/// Most alerts listed in one transition's verdicts.
pub const MAX_ALERT_VERDICTS: usize = 32;
/// Longest alert name kept in a verdict (bytes).
pub const MAX_NAME_BYTES: usize = 128;
/// Longest alert summary kept in a verdict (bytes).
pub const MAX_SUMMARY_BYTES: usize = 1024;

/// The group of these verdicts.
pub const GROUP: &str = "alertmanager";

/// `text` cut to at most `max` bytes on a character boundary, saying how much was left out.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} of {} bytes kept)", &text[..end], end, text.len())
}

/// The alerts that fired in [start, end], each a failed verdict on its (clipped) name, keyed
/// `alertmanager/NAME`.
pub fn inbox_verdicts(inbox: &Inbox, start: i64, end: i64) -> BTreeMap<String, SloVerdict> {
    let mut firing = inbox.firing_between(start, end);
    // The inbox lists the oldest first: the oldest are the detail dropped.
    let dropped = firing.len().saturating_sub(MAX_ALERT_VERDICTS);
    let mut out = BTreeMap::new();
    for a in firing.drain(dropped..) {
        let name = clip(
            a.labels.get("alertname").map_or("unnamed", String::as_str),
            MAX_NAME_BYTES,
        );
        let severity = match a.labels.get("severity").map(String::as_str) {
            Some("critical") => Severity::Critical,
            Some("info") => Severity::Info,
            _ => Severity::Warning,
        };
        let summary = clip(
            a.annotations.get("summary").map_or("", String::as_str),
            MAX_SUMMARY_BYTES,
        );
        let since = clip(&a.starts_at, 64);
        let reason = format!("alert {name} fired during the window (since {since}): {summary}");
        out.insert(
            baseline::key(GROUP, &name),
            failed(
                name.clone(),
                severity,
                format!("alert {name} (Alertmanager webhook)"),
                reason,
            ),
        );
    }
    if dropped > 0 {
        let name = "more alerts".to_owned();
        let reason = format!(
            "{dropped} more alerts fired during the window; not listed: a transition lists at most {MAX_ALERT_VERDICTS} (the newest)"
        );
        out.insert(
            baseline::key(GROUP, &name),
            failed(
                name,
                Severity::Warning,
                "alerts (Alertmanager webhook)".into(),
                reason,
            ),
        );
    }
    out
}

fn failed(slo: String, severity: Severity, query: String, reason: String) -> SloVerdict {
    SloVerdict {
        group: GROUP.into(),
        slo,
        severity,
        query,
        evidence: Evidence::new(Verdict::Fail, reason),
        previous: None,
        samples: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{MAX_INBOX_BYTES, WebhookAlert};

    fn alert(name: &str, summary_len: usize) -> WebhookAlert {
        WebhookAlert {
            status: "firing".into(),
            labels: [("alertname".to_owned(), name.to_owned())].into(),
            annotations: [("summary".to_owned(), "é".repeat(summary_len / 2))].into(),
            starts_at: "2026-11-25T00:00:00Z".into(),
            ends_at: String::new(),
            fingerprint: name.into(),
        }
    }

    #[test]
    fn a_full_inbox_of_large_alerts_adds_a_bounded_verdict_to_a_transition() {
        let inbox = Inbox::in_memory(MAX_INBOX_BYTES);
        // Forty alerts of 200 KiB (the inbox keeps what fits in its 8 MiB) plus one long name.
        let mut alerts: Vec<_> = (0..40)
            .map(|i| alert(&format!("Big{i:02}"), 200 << 10))
            .collect();
        alerts.push(alert(&"N".repeat(10_000), 10));
        inbox.insert(alerts);
        let kept = inbox.alerts().len();
        assert!(kept > MAX_ALERT_VERDICTS, "{kept} alerts kept");
        let t0 = "2026-11-25T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second();
        let v = inbox_verdicts(&inbox, t0, t0 + 60);
        assert_eq!(v.len(), MAX_ALERT_VERDICTS + 1);
        assert!(v.values().all(|s| s.evidence.verdict == Verdict::Fail));
        let more = &v["alertmanager/more alerts"];
        assert!(
            more.evidence
                .reason
                .starts_with(&format!("{} more alerts fired", kept - MAX_ALERT_VERDICTS)),
            "{}",
            more.evidence.reason
        );
        // The newest is listed, its name clipped; the oldest is not.
        assert!(
            v.keys()
                .any(|k| k.starts_with("alertmanager/NNN") && k.ends_with("bytes kept)"))
        );
        assert!(!v.keys().any(|k| k == "alertmanager/Big00"));
        let bytes = serde_json::to_vec(&v).unwrap().len();
        let bound = (MAX_ALERT_VERDICTS + 1) * (3 * MAX_NAME_BYTES + MAX_SUMMARY_BYTES + 512);
        assert!(bytes < bound, "{bytes} bytes of verdicts, bound {bound}");
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_character() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é… (2 of 6 bytes kept)");
    }
}
