//! resourceVersions and the watch event log: every change is one [`WatchEvent`], kept for
//! clients resuming from a resourceVersion and broadcast to every open watch. An event holds
//! the changed object itself (shared, not copied) and is encoded once, by the first watcher
//! that reads it, outside the world's lock.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::broadcast;
use upsoak_agones::{Fleet, GameServer};

use super::{Kind, World};
use crate::events;

/// Watch events kept for clients resuming from a resourceVersion, at most.
const EVENT_LOG_LEN: usize = 20_000;

/// Encoded bytes of the objects the kept events hold, at most: the oldest events go first past
/// it, so a few large objects changed often cannot hold gigabytes (D3: 20 000 snapshots of one
/// GameServer grown to 1.4 MB of labels were 2.8 GB). An ordinary GameServer encodes to about
/// 2 KB, so 20 000 of them (about 40 MB) fit. The snapshots in memory take about twice their
/// encoded size, plus the line once a watcher encoded it. The real API server bounds its watch
/// cache by count and time, not bytes (`staging/src/k8s.io/apiserver/pkg/storage/cacher/
/// watch_cache.go`, `watchCache.resizeCacheLocked`); its objects are bounded instead, to
/// etcd's 1.5 MiB request limit. A watch from an event dropped here gets 410 Gone, as there.
const EVENT_LOG_BYTES: usize = 64 << 20;

/// The kept watch events, oldest first, bounded by [`EVENT_LOG_LEN`] and [`EVENT_LOG_BYTES`].
#[derive(Debug, Default)]
pub(super) struct EventLog {
    events: VecDeque<Arc<WatchEvent>>,
    /// The sum of the kept events' [`WatchEvent::size`].
    bytes: usize,
}

impl EventLog {
    /// Keeps `ev`, dropping the oldest events until both bounds hold (the newest is always kept).
    fn push(&mut self, ev: Arc<WatchEvent>) {
        self.bytes += ev.size;
        self.events.push_back(ev);
        while self.events.len() > EVENT_LOG_LEN
            || (self.bytes > EVENT_LOG_BYTES && self.events.len() > 1)
        {
            if let Some(old) = self.events.pop_front() {
                self.bytes -= old.size;
            }
        }
    }

    /// The encoded bytes the kept events hold.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.events.len()
    }
}

/// Counts the bytes written to it: an object's encoded size without keeping the encoding.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One change, as a watch sends it.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The value of each field a field selector may name ([`Watched::FIELDS`]), taken from the
    /// object as it was sent, so a watch selects exactly what a list would.
    pub fields: Vec<(&'static str, String)>,
    type_: &'static str,
    /// The object's encoded size: what this event counts against [`EVENT_LOG_BYTES`].
    size: usize,
    object: Arc<dyn Encode>,
    /// `{"type":…,"object":…}\n`, encoded once for every watcher.
    line: OnceLock<Bytes>,
}

/// An object as a watch event carries it, to encode when a watcher first reads it.
trait Encode: Debug + Send + Sync {
    fn to_json(&self) -> serde_json::Result<String>;
    /// The length of [`Encode::to_json`], counted without building it (0 if it fails).
    fn json_len(&self) -> usize;
}

impl<T: serde::Serialize + Debug + Send + Sync> Encode for T {
    fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
    fn json_len(&self) -> usize {
        let mut count = ByteCount(0);
        match serde_json::to_writer(&mut count, self) {
            Ok(()) => count.0,
            Err(_) => 0,
        }
    }
}

impl WatchEvent {
    /// `{"type":…,"object":…}\n`, encoded by the first caller (never under the world's lock:
    /// the object is an immutable snapshot) and shared by every other.
    pub fn line(&self) -> Bytes {
        self.line
            .get_or_init(|| match self.object.to_json() {
                Ok(body) => Bytes::from(format!(
                    "{{\"type\":\"{}\",\"object\":{body}}}\n",
                    self.type_
                )),
                Err(e) => {
                    // Watchers miss this change; resourceVersions stay in order, so a client
                    // that notices re-lists. Typed objects always encode, so this is a bug if
                    // it happens.
                    events::WatchEventUnencodable {
                        name: &self.name,
                        error: &e,
                    }
                    .emit();
                    Bytes::new()
                }
            })
            .clone()
    }
}

/// An object a watch follows: its kind, its metadata, and the fields a field selector may name.
/// Lists and watches both select through [`Watched::field`], so they always agree.
pub trait Watched: serde::Serialize {
    const KIND: Kind;
    /// The fields `fieldSelector` accepts for this kind.
    const FIELDS: &'static [&'static str];
    fn meta(&self) -> &ObjectMeta;
    /// The value of `field` (one of [`Watched::FIELDS`]); `None` when the object has none.
    fn field(&self, field: &str) -> Option<String>;
}

impl Watched for Fleet {
    const KIND: Kind = Kind::Fleet;
    const FIELDS: &'static [&'static str] = &["metadata.name", "metadata.namespace"];
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "metadata.name" => self.metadata.name.clone(),
            "metadata.namespace" => self.metadata.namespace.clone(),
            _ => None,
        }
    }
}

impl Watched for GameServer {
    const KIND: Kind = Kind::GameServer;
    const FIELDS: &'static [&'static str] = &[
        "metadata.name",
        "metadata.namespace",
        "status.state",
        "status.nodeName",
    ];
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn field(&self, field: &str) -> Option<String> {
        match field {
            "metadata.name" => self.metadata.name.clone(),
            "metadata.namespace" => self.metadata.namespace.clone(),
            "status.state" => self.state().map(|s| s.as_str().to_owned()),
            "status.nodeName" => self.status.as_ref().map(|s| s.node_name.clone()),
            _ => None,
        }
    }
}

impl World {
    /// A receiver of every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// How many watches are open (each holds one receiver of [`World::subscribe`]).
    pub fn watchers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Events after `rv`, or `None` when the log no longer reaches back that far (410 Gone).
    pub fn events_since(&self, rv: u64) -> Option<Vec<Arc<WatchEvent>>> {
        if rv >= self.rv {
            return Some(Vec::new());
        }
        match self.events.events.front() {
            Some(first) if first.rv <= rv + 1 => Some(
                self.events
                    .events
                    .iter()
                    .filter(|e| e.rv > rv)
                    .cloned()
                    .collect(),
            ),
            // Nothing has happened since the world began: every rv up to now is current.
            None => Some(Vec::new()),
            Some(_) => None,
        }
    }

    pub(super) fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Records a change of `object` (`ADDED`, `MODIFIED`, `DELETED`) and sends it to watchers.
    pub(super) fn emit<T: Watched + Debug + Send + Sync + 'static>(
        &mut self,
        type_: &'static str,
        object: impl Into<Arc<T>>,
    ) {
        let object: Arc<T> = object.into();
        let meta = object.meta();
        let rv = meta
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.rv);
        let ev = Arc::new(WatchEvent {
            rv,
            kind: T::KIND,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            fields: T::FIELDS
                .iter()
                .filter_map(|f| Some((*f, object.field(f)?)))
                .collect(),
            type_,
            size: object.json_len(),
            object: object.clone(),
            line: OnceLock::new(),
        });
        self.events.push(ev.clone());
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MODIFIED event of a GameServer carrying `bytes` of annotation.
    fn event(rv: u64, bytes: usize) -> Arc<WatchEvent> {
        let mut gs = GameServer::default();
        gs.metadata.annotations = Some([("a".to_owned(), "v".repeat(bytes))].into());
        let object: Arc<dyn Encode> = Arc::new(gs);
        Arc::new(WatchEvent {
            rv,
            kind: Kind::GameServer,
            namespace: String::new(),
            name: String::new(),
            labels: BTreeMap::new(),
            fields: Vec::new(),
            type_: "MODIFIED",
            size: object.json_len(),
            object,
            line: OnceLock::new(),
        })
    }

    #[test]
    fn the_log_drops_the_oldest_events_past_its_bytes_and_keeps_the_newest() {
        let mut log = EventLog::default();
        let one = event(0, 1 << 20).size;
        assert!(one > 1 << 20, "the size counts the encoded object");
        for rv in 1..=100 {
            log.push(event(rv, 1 << 20));
            assert!(
                log.bytes() <= EVENT_LOG_BYTES,
                "after {rv}: {}",
                log.bytes()
            );
        }
        assert_eq!(log.len(), EVENT_LOG_BYTES / one);
        assert_eq!(log.events.back().map(|e| e.rv), Some(100));
        assert_eq!(log.bytes(), log.len() * one);
        // One event over the bound on its own is still kept: the newest always is.
        log.push(event(101, EVENT_LOG_BYTES));
        assert_eq!(log.len(), 1);
        // Small events are bounded by count.
        for rv in 102..102 + EVENT_LOG_LEN as u64 + 10 {
            log.push(event(rv, 1));
        }
        assert_eq!(log.len(), EVENT_LOG_LEN);
        let newest = log.events.back().unwrap();
        assert_eq!(newest.rv, 102 + EVENT_LOG_LEN as u64 + 9);
        assert!(newest.line().starts_with(b"{\"type\":\"MODIFIED\""));
    }
}
