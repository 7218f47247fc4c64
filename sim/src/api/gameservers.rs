//! GameServer handlers: delete. List and get are the generic handlers of [`super::Served`].

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::request::{GS_FIELDS, field_of_gs, list_query, wants_table};
use super::table::{gs_row, table};
use super::watch::watch;
use super::{ApiResult, ApiState, List, Params, ok};
use crate::world::Kind;

// ----- GameServers -----

pub(super) async fn list_all_gameservers(s: State<ApiState>, h: HeaderMap, p: Params) -> ApiResult {
    list_gameservers_in(s.0, None, h, p.0).await
}

pub(super) async fn list_gameservers(
    s: State<ApiState>,
    Path(ns): Path<String>,
    h: HeaderMap,
    p: Params,
) -> ApiResult {
    list_gameservers_in(s.0, Some(ns), h, p.0).await
}

pub(super) async fn list_gameservers_in(
    s: ApiState,
    ns: Option<String>,
    h: HeaderMap,
    p: HashMap<String, String>,
) -> ApiResult {
    let q = list_query(&p, &GS_FIELDS)?;
    let as_table = wants_table(&h);
    if q.watch {
        return watch(s, Kind::GameServer, ns, q, as_table);
    }
    let (items, rv) = {
        let w = s.lock()?;
        let items = w.list_gameservers(ns.as_deref(), &q.labels, |g| {
            q.fields.matches(|k| field_of_gs(g, k))
        });
        (items, w.resource_version())
    };
    if as_table {
        return ok(&table(
            Kind::GameServer,
            items.iter().map(gs_row).collect(),
            rv,
        ));
    }
    ok(&List::new("GameServerList", rv, &items))
}

pub(super) async fn get_gameserver(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
    h: HeaderMap,
) -> ApiResult {
    let (g, rv) = {
        let w = s.lock()?;
        (w.get_gameserver(&ns, &name)?, w.resource_version())
    };
    if wants_table(&h) {
        return ok(&table(Kind::GameServer, vec![gs_row(&g)], rv));
    }
    ok(&g)
}

pub(super) async fn delete_gameserver(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&s.lock()?.delete_gameserver(&ns, &name)?)
}
