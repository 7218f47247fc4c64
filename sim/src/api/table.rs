//! kubectl's `Table` answers: Agones' printer columns for Fleets and GameServers, for lists,
//! gets and each line of a watch.

use serde_json::{Value, json};
use upsoak_agones::{Fleet, GameServer};

use crate::world::Kind;

// ----- tables (kubectl get) -----

pub(super) fn age(ts: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> String {
    let Some(t) = ts else {
        return "<unknown>".to_owned();
    };
    let secs = jiff::Timestamp::now().duration_since(t.0).as_secs().max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub(super) fn column(name: &str, type_: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": type_, "format": format, "description": "", "priority": 0})
}

pub(super) fn row(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    cells: Vec<Value>,
) -> Value {
    json!({"cells": cells, "object": {"kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

pub(super) fn fleet_row(f: &Fleet) -> Value {
    let st = f.status.clone().unwrap_or_default();
    row(
        &f.metadata,
        vec![
            json!(f.metadata.name),
            json!(
                f.spec
                    .scheduling
                    .clone()
                    .unwrap_or_else(|| "Packed".to_owned())
            ),
            json!(f.spec.replicas),
            json!(st.replicas),
            json!(st.allocated_replicas),
            json!(st.ready_replicas),
            json!(age(f.metadata.creation_timestamp.as_ref())),
        ],
    )
}

pub(super) fn gs_row(g: &GameServer) -> Value {
    let st = g.status.as_ref();
    row(
        &g.metadata,
        vec![
            json!(g.metadata.name),
            json!(st.map(|s| s.state.as_str()).unwrap_or("")),
            json!(st.map(|s| s.address.clone()).unwrap_or_default()),
            json!(
                st.and_then(|s| s.ports.first())
                    .map(|p| p.port.to_string())
                    .unwrap_or_default()
            ),
            json!(st.map(|s| s.node_name.clone()).unwrap_or_default()),
            json!(age(g.metadata.creation_timestamp.as_ref())),
        ],
    )
}

pub(super) fn table(kind: Kind, rows: Vec<Value>, meta: impl serde::Serialize) -> Value {
    let columns = match kind {
        Kind::Fleet => vec![
            column("Name", "string"),
            column("Scheduling", "string"),
            column("Desired", "integer"),
            column("Current", "integer"),
            column("Allocated", "integer"),
            column("Ready", "integer"),
            column("Age", "date"),
        ],
        Kind::GameServer => vec![
            column("Name", "string"),
            column("State", "string"),
            column("Address", "string"),
            column("Port", "string"),
            column("Node", "string"),
            column("Age", "date"),
        ],
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns, "rows": rows})
}
