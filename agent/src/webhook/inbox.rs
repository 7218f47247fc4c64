//! The alerts Alertmanager posted, bounded in bytes (the oldest go first, counted) and
//! deduplicated by fingerprint and start in O(log n) per alert, kept in `inbox.json` in the
//! state dir (written atomically after every accepted post, read at start) so a restart inside a
//! judge window loses no alert.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::WebhookAlert;

/// Bytes of alerts (as JSON) kept by default; a post beyond drops the oldest.
pub const MAX_INBOX_BYTES: usize = 8 << 20;

/// The inbox's file in the state dir.
pub const INBOX_FILE: &str = "inbox.json";

/// Format version of [`INBOX_FILE`].
const FORMAT: u32 = 1;

/// What [`INBOX_FILE`] holds: the alerts, oldest first.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    /// Format version ([`FORMAT`]).
    version: u32,
    /// The alerts, oldest first.
    alerts: Vec<WebhookAlert>,
}

/// An alert's identity: Alertmanager's fingerprint (its labels' hash) or, without one, its labels;
/// and its start. A newer state of the same alert (resolved, say) replaces the older one.
type Key = (String, String);

fn key(a: &WebhookAlert) -> Key {
    let id = match a.fingerprint.is_empty() {
        false => a.fingerprint.clone(),
        true => serde_json::to_string(&a.labels).unwrap_or_default(),
    };
    (id, a.starts_at.clone())
}

struct Entry {
    seq: u64,
    bytes: usize,
    alert: WebhookAlert,
}

#[derive(Default)]
struct Store {
    by_key: HashMap<Key, Entry>,
    /// Insertion order: the oldest is dropped first.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    next: u64,
}

impl Store {
    fn remove(&mut self, k: &Key) -> Option<Entry> {
        let e = self.by_key.remove(k)?;
        self.order.remove(&e.seq);
        self.bytes -= e.bytes;
        Some(e)
    }

    fn ordered(&self) -> Vec<WebhookAlert> {
        self.order
            .values()
            .filter_map(|k| self.by_key.get(k))
            .map(|e| e.alert.clone())
            .collect()
    }
}

/// What [`Inbox::insert`] did.
#[derive(Debug, Default, PartialEq)]
pub struct Inserted {
    /// Alerts kept (new, or newer states of known ones).
    pub kept: usize,
    /// Alerts dropped to stay within the byte bound (older ones, or a new one larger than it).
    pub dropped: usize,
    /// The inbox afterwards: alerts and bytes.
    pub alerts: usize,
    pub bytes: usize,
}

/// Alerts received, shared between the HTTP handler and the evaluator.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<Mutex<Store>>,
    max_bytes: usize,
    /// Where it is kept; `None`: in memory only (tests).
    file: Option<Arc<PathBuf>>,
    /// One writer of the file at a time, so the last write holds the latest alerts.
    writing: Arc<Mutex<()>>,
}

impl Default for Inbox {
    /// In memory only, bounded by [`MAX_INBOX_BYTES`].
    fn default() -> Inbox {
        Inbox::in_memory(MAX_INBOX_BYTES)
    }
}

/// The lock even if a holder panicked: the store is changed one alert at a time, so it is
/// consistent, and losing it would read as "no alert fired".
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inbox {
    /// An inbox that is not kept on disk, bounded by `max_bytes`.
    pub fn in_memory(max_bytes: usize) -> Inbox {
        Inbox {
            store: Arc::default(),
            max_bytes,
            file: None,
            writing: Arc::default(),
        }
    }

    /// The inbox kept in `state_dir`, with the alerts it held (none if it has no file yet).
    pub fn open(state_dir: &Path, max_bytes: usize) -> crate::Result<Inbox> {
        let p = state_dir.join(INBOX_FILE);
        let shown = || p.display().to_string();
        let mut inbox = Inbox::in_memory(max_bytes);
        match std::fs::read(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::Read(shown(), e)),
            Ok(bytes) => {
                let saved: Saved = serde_json::from_slice(&bytes)
                    .map_err(|e| crate::Error::Decode(shown(), "webhook inbox", e))?;
                if saved.version != FORMAT {
                    return Err(crate::Error::FormatVersion {
                        path: shown(),
                        found: saved.version,
                        want: FORMAT,
                    });
                }
                inbox.insert(saved.alerts);
            }
        }
        inbox.file = Some(Arc::new(p));
        Ok(inbox)
    }

    /// Where it is kept, if anywhere.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref().map(PathBuf::as_path)
    }

    /// Adds `alerts` (a newer state of a known alert replaces it), then drops the oldest until
    /// the inbox is within its byte bound. O(log n) per alert.
    pub fn insert(&self, alerts: Vec<WebhookAlert>) -> Inserted {
        let mut s = lock(&self.store);
        let mut out = Inserted::default();
        for a in alerts {
            let k = key(&a);
            s.remove(&k);
            let bytes = serde_json::to_vec(&a).map_or(usize::MAX, |v| v.len());
            if bytes > self.max_bytes {
                out.dropped += 1;
                continue;
            }
            let seq = s.next;
            s.next += 1;
            s.order.insert(seq, k.clone());
            s.by_key.insert(
                k,
                Entry {
                    seq,
                    bytes,
                    alert: a,
                },
            );
            s.bytes += bytes;
            out.kept += 1;
            while s.bytes > self.max_bytes {
                let Some((_, oldest)) = s.order.pop_first() else {
                    break;
                };
                s.remove(&oldest);
                out.dropped += 1;
            }
        }
        out.alerts = s.by_key.len();
        out.bytes = s.bytes;
        out
    }

    /// The alerts, oldest first.
    pub fn alerts(&self) -> Vec<WebhookAlert> {
        lock(&self.store).ordered()
    }

    /// The alerts that fired during [from, to], except the agent's own, oldest first.
    pub fn firing_between(&self, from: i64, to: i64) -> Vec<WebhookAlert> {
        let s = lock(&self.store);
        s.order
            .values()
            .filter_map(|k| s.by_key.get(k))
            .map(|e| &e.alert)
            .filter(|a| {
                a.labels.get("alertname").map(String::as_str) != Some(crate::sinks::ALERT_NAME)
            })
            .filter(|a| a.overlaps(from, to))
            .cloned()
            .collect()
    }

    /// Writes the alerts to the inbox's file, if it has one: a temporary file, synced, renamed
    /// over it, and the directory synced, so a crash leaves the old or the new inbox, whole.
    pub async fn save(&self) -> crate::Result<()> {
        let Some(p) = self.file.clone() else {
            return Ok(());
        };
        let me = self.clone();
        let shown = p.display().to_string();
        tokio::task::spawn_blocking(move || {
            let _one_writer = lock(&me.writing);
            let saved = Saved {
                version: FORMAT,
                alerts: me.alerts(),
            };
            write_atomic(&p, &saved)
        })
        .await
        .map_err(|e| crate::Error::Write(shown, std::io::Error::other(e)))?
    }
}

fn write_atomic(p: &Path, saved: &Saved) -> crate::Result<()> {
    let w = |e| crate::Error::Write(p.display().to_string(), e);
    let text = serde_json::to_vec(saved).map_err(|e| w(std::io::Error::other(e)))?;
    upsoak_common::state::write_atomic(p, &text).map_err(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, fingerprint: &str, summary_len: usize) -> WebhookAlert {
        WebhookAlert {
            status: "firing".into(),
            labels: [("alertname".to_owned(), name.to_owned())].into(),
            annotations: [("summary".to_owned(), "x".repeat(summary_len))].into(),
            starts_at: "2026-11-25T00:00:00Z".into(),
            ends_at: String::new(),
            fingerprint: fingerprint.into(),
        }
    }

    #[test]
    fn a_newer_state_replaces_the_alert_and_bytes_bound_drops_the_oldest() {
        let one = serde_json::to_vec(&alert("a", "f1", 100)).unwrap().len();
        // Room for three (a resolved state is a few bytes longer than a firing one).
        let inbox = Inbox::in_memory(3 * one + 16);
        let r = inbox.insert(vec![alert("a", "f1", 100), alert("b", "f2", 100)]);
        assert_eq!((r.kept, r.dropped, r.alerts), (2, 0, 2));
        // Same fingerprint and start: replaced, not added.
        let mut resolved = alert("a", "f1", 100);
        resolved.status = "resolved".into();
        let r = inbox.insert(vec![resolved]);
        assert_eq!((r.alerts, r.dropped), (2, 0));
        // Two more: the oldest (b, since a was refreshed) goes first.
        let r = inbox.insert(vec![alert("c", "f3", 100), alert("d", "f4", 100)]);
        assert_eq!((r.alerts, r.dropped), (3, 1));
        let names: Vec<String> = inbox
            .alerts()
            .iter()
            .map(|a| a.labels["alertname"].clone())
            .collect();
        assert_eq!(names, ["a", "c", "d"]);
        assert!(r.bytes <= 3 * one + 16);
        // One larger than the whole bound is dropped, and nothing else.
        let r = inbox.insert(vec![alert("huge", "f5", 10 * one)]);
        assert_eq!((r.kept, r.dropped, r.alerts), (0, 1, 3));
    }

    #[test]
    fn fifty_thousand_alerts_in_one_post_are_deduplicated_quickly() {
        let inbox = Inbox::in_memory(usize::MAX);
        let many: Vec<WebhookAlert> = (0..50_000)
            .map(|i| alert("a", &format!("f{}", i % 25_000), 10))
            .collect();
        let r = inbox.insert(many);
        assert_eq!(r.alerts, 25_000);
    }
}
