//! GameServers: how the generic list, watch and get handlers of [`super::Served`] read them,
//! and delete.

use axum::extract::{Path, State};
use serde_json::Value;
use upsoak_agones::GameServer;

use super::table::gs_row;
use super::{ApiResult, ApiState, Served, ok};
use crate::selector::Selector;
use crate::status::ApiError;
use crate::world::World;

impl Served for GameServer {
    const LIST_KIND: &'static str = "GameServerList";
    fn list(w: &World, ns: Option<&str>, labels: &Selector) -> Vec<GameServer> {
        w.list_gameservers(ns, labels)
    }
    fn get(w: &World, ns: &str, name: &str) -> Result<GameServer, ApiError> {
        w.get_gameserver(ns, name)
    }
    fn row(&self) -> Value {
        gs_row(self)
    }
}

pub(super) async fn delete_gameserver(
    State(s): State<ApiState>,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    ok(&s.lock()?.delete_gameserver(&ns, &name)?)
}
