//! `GameServerAllocation` create: parse the selectors, ask the allocator for a plan, then pick
//! (from the Fleet's pool, without the world's lock) and commit (under it) with retries,
//! waiting for the batch loop's wake and the pick-to-commit latency outside every lock.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use upsoak_agones::{
    AllocationState, FLEET_LABEL, GameServerAllocation, GameServerAllocationStatus,
    GameServerState, metrics::NO_FLEET,
};

use super::request::{decode_value, parse_body};
use super::{ApiResult, ApiState, json_response};
use crate::events;
use crate::selector::Selector;
use crate::status::{ApiError, Cause};
use crate::world::count_allocated;

// ----- allocation -----

/// Most `spec.selectors` one allocation may list; each is tried in turn against the Fleet's
/// servers, so a 2 MiB body of empty selectors would otherwise cost 100,000 tries.
pub const MAX_SELECTORS: usize = 100;

/// Also the allocator service's path (`allocator_service::rest`): the same allocation.
pub(crate) async fn allocate(
    State(s): State<ApiState>,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult {
    let v = parse_body(&body, "allocation.agones.dev/v1", "GameServerAllocation")?;
    let gsa: GameServerAllocation = decode_value(v, "gameserverallocations")?;
    if gsa.spec.selectors.len() > MAX_SELECTORS {
        return Err(ApiError::invalid(
            "gameserverallocations",
            "",
            vec![Cause {
                field: "spec.selectors".into(),
                message: format!(
                    "Too many: {}: must have at most {MAX_SELECTORS} items",
                    gsa.spec.selectors.len()
                ),
            }],
        ));
    }
    let mut selectors = Vec::new();
    let mut causes = Vec::new();
    for (i, sel) in gsa.spec.selectors.iter().enumerate() {
        let parsed = Selector::from_label_selector(&sel.selector);
        let state = match sel.game_server_state.as_deref() {
            None | Some("Ready") => Ok(GameServerState::Ready),
            Some("Allocated") => Ok(GameServerState::Allocated),
            Some(other) => Err(format!(
                "Unsupported value: \"{other}\": supported values: \"Ready\", \"Allocated\""
            )),
        };
        match (parsed, state) {
            (Ok(p), Ok(st)) => selectors.push((p, st)),
            (Err(e), _) => causes.push(Cause {
                field: format!("spec.selectors[{i}]"),
                message: e,
            }),
            (_, Err(e)) => causes.push(Cause {
                field: format!("spec.selectors[{i}].gameServerState"),
                message: e,
            }),
        }
    }
    if let Some(sch) = &gsa.spec.scheduling
        && !matches!(sch.as_str(), "Packed" | "Distributed")
    {
        causes.push(Cause {
            field: "spec.scheduling".into(),
            message: format!(
                "Unsupported value: \"{sch}\": supported values: \"Packed\", \"Distributed\""
            ),
        });
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("gameserverallocations", "", causes));
    }
    if selectors.is_empty() {
        selectors.push((Selector::default(), GameServerState::Ready));
    }
    let scheduling = gsa
        .spec
        .scheduling
        .clone()
        .unwrap_or_else(|| "Packed".to_owned());
    let start = Instant::now();
    // Nothing here takes the world's lock but the commit: the plan and the pick come from the
    // allocator, and every metric is recorded after the commit has let go of the lock.
    let alloc = &s.allocator;
    let metrics = alloc.metrics();
    // Agones labels the latency with the allocated server's Fleet, and `none` for every other
    // result (`pkg/gameserverallocations/metrics.go`, `setResponse`).
    let observe = |fleet: &str, status: &str, attempts: Option<u32>| {
        events::AllocationFinished {
            fleet,
            status,
            scheduling: &scheduling,
            took: start.elapsed(),
            attempts,
        }
        .emit(metrics);
    };
    let grant = match alloc.plan() {
        Ok(p) => p,
        Err(e) => {
            // The allocator answered with an error (it is down during an upgrade window and
            // records nothing then).
            if e.code == 500 {
                observe(NO_FLEET, "error", None);
            }
            return Err(e);
        }
    };
    let mut outcome = AllocationState::Contention;
    let mut allocated = None;
    let mut attempts = 0;
    for _ in 0..=grant.retries {
        attempts += 1;
        // Queued until the allocator's batch loop wakes (`world/allocation.rs`, `BatchLoop`);
        // a retry is queued again.
        let queued = grant.batch.until_wake(Instant::now());
        if !queued.is_zero() {
            tokio::time::sleep(queued).await;
        }
        // The pick is held out of every other pick until the commit; if this future is
        // dropped first (the client went away), the hold's drop puts it back.
        let Some(hold) = alloc.pick(&ns, &gsa, &selectors) else {
            outcome = AllocationState::UnAllocated;
            break;
        };
        // Agones' allocator works on a cache; the time between picking and updating is where
        // concurrent allocations race for the same GameServer.
        if grant.latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(grant.latency).await;
        }
        let committed = s.lock()?.commit_allocation(hold, &gsa);
        if let Some((gs, fleet)) = committed {
            if let Some(fleet) = fleet {
                count_allocated(metrics, &ns, &fleet);
            }
            outcome = AllocationState::Allocated;
            allocated = Some(gs);
            break;
        }
    }
    let fleet = allocated.as_ref().map_or(NO_FLEET, |gs| {
        gs.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(FLEET_LABEL))
            .map_or(NO_FLEET, String::as_str)
    });
    observe(
        fleet,
        outcome.as_str(),
        allocated.is_some().then_some(attempts),
    );
    let status = match &allocated {
        Some(gs) => {
            let st = gs.status.clone();
            GameServerAllocationStatus {
                state: outcome,
                game_server_name: gs.metadata.name.clone().unwrap_or_default(),
                ports: st.as_ref().map(|s| s.ports.to_vec()).unwrap_or_default(),
                address: st.as_ref().map(|s| s.address.clone()).unwrap_or_default(),
                // Agones copies the GameServer's addresses (`pkg/gameserverallocations/
                // allocator.go`, the allocation's status).
                addresses: st
                    .as_ref()
                    .map(|s| s.addresses.to_vec())
                    .unwrap_or_default(),
                node_name: st.map(|s| s.node_name).unwrap_or_default(),
                source: "local".to_owned(),
            }
        }
        None => GameServerAllocationStatus {
            state: outcome,
            game_server_name: String::new(),
            ports: Vec::new(),
            address: String::new(),
            addresses: Vec::new(),
            node_name: String::new(),
            source: "local".to_owned(),
        },
    };
    let mut out = gsa;
    out.metadata.namespace = Some(ns);
    out.metadata.name = allocated.and_then(|g| g.metadata.name.clone());
    out.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    out.status = Some(status);
    Ok(json_response(StatusCode::CREATED, &out))
}

#[cfg(test)]
mod tests;
