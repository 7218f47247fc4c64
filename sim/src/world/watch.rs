//! resourceVersions and the watch event log: every change is one [`WatchEvent`], kept for
//! clients resuming from a resourceVersion and broadcast to every open watch. An event holds
//! the changed object itself (shared, not copied) and is encoded once, by the first watcher
//! that reads it, outside the world's lock.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::broadcast;
use upsoak_agones::{Fleet, GameServer};

use super::{Kind, World};
use crate::events;

/// Watch events kept for clients resuming from a resourceVersion.
const EVENT_LOG_LEN: usize = 20_000;

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
    object: Arc<dyn Encode>,
    /// `{"type":…,"object":…}\n`, encoded once for every watcher.
    line: OnceLock<Bytes>,
}

/// An object as a watch event carries it, to encode when a watcher first reads it.
trait Encode: Debug + Send + Sync {
    fn to_json(&self) -> serde_json::Result<String>;
}

impl<T: serde::Serialize + Debug + Send + Sync> Encode for T {
    fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
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
        match self.events.front() {
            Some(first) if first.rv <= rv + 1 => {
                Some(self.events.iter().filter(|e| e.rv > rv).cloned().collect())
            }
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
            object: object.clone(),
            line: OnceLock::new(),
        });
        if self.events.len() >= EVENT_LOG_LEN {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(ev);
    }
}
