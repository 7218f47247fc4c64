//! resourceVersions and the watch event log: every change is one [`WatchEvent`], encoded once,
//! kept for clients resuming from a resourceVersion and broadcast to every open watch.

use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use tokio::sync::broadcast;
use upsoak_agones::GameServerState;

use super::{Kind, World};

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
    /// GameServer state, for `fieldSelector=status.state=…`.
    pub state: Option<GameServerState>,
    /// `{"type":…,"object":…}\n`, encoded once for every watcher.
    pub line: Bytes,
}

impl World {
    /// A receiver of every future event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
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

    pub(super) fn emit(
        &mut self,
        kind: Kind,
        type_: &str,
        meta: &ObjectMeta,
        state: Option<GameServerState>,
        object: &impl serde::Serialize,
    ) {
        let rv = meta
            .resource_version
            .as_deref()
            .and_then(|r| r.parse().ok())
            .unwrap_or(self.rv);
        let body = serde_json::to_string(object).unwrap_or_else(|_| "{}".to_owned());
        let line = Bytes::from(format!("{{\"type\":\"{type_}\",\"object\":{body}}}\n"));
        let ev = Arc::new(WatchEvent {
            rv,
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            state,
            line,
        });
        if self.events.len() >= EVENT_LOG_LEN {
            self.events.pop_front();
        }
        self.events.push_back(ev.clone());
        // No receivers is normal: nobody is watching.
        let _ = self.tx.send(ev);
    }
}
