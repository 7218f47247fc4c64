//! Who allocated a GameServer, so that what a killed Producer left Allocated is found and
//! released (review 2, D1).
//!
//! Agones never frees an Allocated server that nobody tells to shut down, so a `kill -9` of
//! the sidecar would take every server of its live sessions and canaries out of the Fleet for
//! good. Every allocation the Producer makes therefore carries its owner in `spec.metadata`,
//! which Agones copies onto the allocated GameServer (`pkg/gameserverallocations/
//! allocator.go`, `applyAllocationToGameServer`, from the allocation's `MetaPatch` in
//! `pkg/apis/allocation/v1`): the label [`OWNER_LABEL`] (the Producer, stable across restarts
//! and selectable), the label [`ROLE_LABEL`] (`session` or `canary`), and the annotations
//! [`INCARNATION_ANNOTATION`] (this process start, unique) and [`ALLOCATED_AT_ANNOTATION`].
//!
//! - At start, every Allocated server of this owner from another incarnation is an orphan.
//! - Every `reclaim.sweep_every`, an Allocated server of this incarnation that no session or
//!   canary tracks, allocated more than `reclaim.orphan_after` ago, is an orphan too (its
//!   `EXIT` was lost, or its job ended without one).
//!
//! An orphan is told to `EXIT` over the game protocol, as a session ends; still Allocated after
//! `reclaim.exit_grace`, it is deleted. A server allocated by anyone else (no owner label, or
//! another owner's) is never touched. Two Producers sharing Fleets need distinct owners.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use upsoak_agones::allocation::AllocationMetadata;
use upsoak_agones::{GameServer, GameServerAllocation, GameServerState};
use upsoak_common::problems::Problems;

use super::canary::{connect, heartbeat_with};
use super::classify;
use super::events::{OrphanReclaimed, OrphansSwept, ProducerMetrics};

/// Label naming the Producer that allocated a GameServer (`reclaim.owner`).
pub const OWNER_LABEL: &str = "upsoak.dev/producer";
/// Label saying what the allocation is for: [`Role::Session`] or [`Role::Canary`].
pub const ROLE_LABEL: &str = "upsoak.dev/role";
/// Annotation naming the Producer's incarnation (one per process start) that allocated it.
pub const INCARNATION_ANNOTATION: &str = "upsoak.dev/incarnation";
/// Annotation: when the allocation was requested, in Unix milliseconds.
pub const ALLOCATED_AT_ANNOTATION: &str = "upsoak.dev/allocated-unix-ms";

/// The owner label's value by default.
pub const DEFAULT_OWNER: &str = "upsoak";
/// How long an orphan told to `EXIT` has to leave Allocated before it is deleted, by default.
pub const DEFAULT_EXIT_GRACE: Duration = Duration::from_secs(5);
/// Time between two sweeps for untracked servers of this incarnation, by default.
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Age below which an untracked server of this incarnation is left alone (its job may be
/// between the allocation's answer and tracking it), by default.
pub const DEFAULT_ORPHAN_AFTER: Duration = Duration::from_secs(60);
/// The longest `sweep_every`, `exit_grace` or `orphan_after` accepted: a day.
pub const MAX_RECLAIM_DURATION: Duration = Duration::from_secs(86_400);

/// How what a killed Producer left Allocated is reclaimed.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReclaimConfig {
    /// The value of the `upsoak.dev/producer` label on every server this Producer allocates:
    /// stable across restarts, distinct per Producer sharing a Fleet (a label value: at most
    /// 63 characters, alphanumerics and `-_.`, alphanumeric at both ends).
    pub owner: String,
    /// An orphan told to `EXIT` and still Allocated this long after is deleted.
    #[serde(with = "humantime_serde")]
    pub exit_grace: Duration,
    /// Time between two sweeps for Allocated servers of this incarnation nothing tracks.
    #[serde(with = "humantime_serde")]
    pub sweep_every: Duration,
    /// A server of this incarnation is swept only once it was allocated this long ago.
    #[serde(with = "humantime_serde")]
    pub orphan_after: Duration,
}

impl Default for ReclaimConfig {
    fn default() -> Self {
        ReclaimConfig {
            owner: DEFAULT_OWNER.to_owned(),
            exit_grace: DEFAULT_EXIT_GRACE,
            sweep_every: DEFAULT_SWEEP_EVERY,
            orphan_after: DEFAULT_ORPHAN_AFTER,
        }
    }
}

impl ReclaimConfig {
    /// Every problem, with its path below this section.
    pub fn problems(&self) -> Problems {
        let mut p = Problems::new();
        if let Err(why) = label_value(&self.owner) {
            p.push(
                "owner",
                format!("`{}` is not a label value: {why}", self.owner),
            );
        }
        for (key, d) in [
            ("exit_grace", self.exit_grace),
            ("sweep_every", self.sweep_every),
            ("orphan_after", self.orphan_after),
        ] {
            if d.is_zero() || d > MAX_RECLAIM_DURATION {
                p.push(
                    key,
                    format!("{d:?} is not between 0s (excluded) and {MAX_RECLAIM_DURATION:?}"),
                );
            }
        }
        p
    }
}

/// Kubernetes' label value rule (`IsValidLabelValue`, apimachinery `validation.go`), non-empty.
fn label_value(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Err("must not be empty");
    }
    if v.len() > 63 {
        return Err("longer than 63 characters");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !v.chars().all(ok) {
        return Err("only alphanumerics, `-`, `_` and `.` are allowed");
    }
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends(v.chars().next()) || !ends(v.chars().last()) {
        return Err("must start and end with an alphanumeric");
    }
    Ok(())
}

/// What an allocation is for: the [`ROLE_LABEL`] value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Session,
    Canary,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Session => "session",
            Role::Canary => "canary",
        }
    }
}

/// This Producer incarnation's identity, and the servers its sessions and canaries hold.
#[derive(Clone, Debug)]
pub struct Owner {
    owner: String,
    incarnation: String,
    tracked: Arc<Mutex<HashSet<String>>>,
}

impl Owner {
    /// A new incarnation of `owner`: unique per process start (pid, start time, and a count
    /// for Producers started in one process).
    pub fn new(owner: &str) -> Owner {
        static STARTS: AtomicU64 = AtomicU64::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        Owner {
            owner: owner.to_owned(),
            incarnation: format!("{}-{}-{n}", std::process::id(), now_unix_ms()),
            tracked: Arc::default(),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    /// An allocation from `fleet` that puts this incarnation's marks on the server.
    pub fn allocation(&self, fleet: &str, role: Role) -> GameServerAllocation {
        let mut request = GameServerAllocation::from_fleet(fleet);
        request.spec.metadata = Some(AllocationMetadata {
            labels: Some(BTreeMap::from([
                (OWNER_LABEL.to_owned(), self.owner.clone()),
                (ROLE_LABEL.to_owned(), role.as_str().to_owned()),
            ])),
            annotations: Some(BTreeMap::from([
                (INCARNATION_ANNOTATION.to_owned(), self.incarnation.clone()),
                (
                    ALLOCATED_AT_ANNOTATION.to_owned(),
                    now_unix_ms().to_string(),
                ),
            ])),
        });
        request
    }

    /// Marks `gameserver` as held by a live session or canary until the guard is dropped.
    pub fn track(&self, gameserver: &str) -> Tracked {
        if let Ok(mut t) = self.tracked.lock() {
            t.insert(gameserver.to_owned());
        }
        Tracked {
            name: gameserver.to_owned(),
            tracked: self.tracked.clone(),
        }
    }

    fn is_tracked(&self, gameserver: &str) -> bool {
        self.tracked
            .lock()
            .map(|t| t.contains(gameserver))
            .unwrap_or(true)
    }

    /// Whether `gs` is an orphan of this owner, and its role: Allocated with this owner's
    /// label, and either another incarnation's, or this one's, untracked and allocated more
    /// than `orphan_after` before `now_ms` (`None` for `orphan_after` means at start: only
    /// other incarnations').
    pub fn orphan(
        &self,
        gs: &GameServer,
        orphan_after: Option<Duration>,
        now_ms: u64,
    ) -> Option<Role> {
        if gs.state() != Some(GameServerState::Allocated) {
            return None;
        }
        let labels = gs.metadata.labels.as_ref()?;
        if labels.get(OWNER_LABEL) != Some(&self.owner) {
            return None;
        }
        let role = match labels.get(ROLE_LABEL).map(String::as_str) {
            Some("canary") => Role::Canary,
            _ => Role::Session,
        };
        let annotations = gs.metadata.annotations.as_ref();
        let incarnation = annotations.and_then(|a| a.get(INCARNATION_ANNOTATION));
        if incarnation != Some(&self.incarnation) {
            return Some(role);
        }
        let after = orphan_after?;
        let name = gs.metadata.name.as_deref()?;
        let at: u64 = annotations
            .and_then(|a| a.get(ALLOCATED_AT_ANNOTATION))
            .and_then(|v| v.parse().ok())?;
        let old = now_ms.saturating_sub(at) > u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        (old && !self.is_tracked(name)).then_some(role)
    }
}

/// A server held by a live session or canary; untracked when dropped.
#[derive(Debug)]
pub struct Tracked {
    name: String,
    tracked: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut t) = self.tracked.lock() {
            t.remove(&self.name);
        }
    }
}

/// Now in Unix milliseconds (wall clock: it is compared with an annotation another process
/// wrote).
fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// What one reclaim pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    /// Orphans found.
    pub found: usize,
    /// Left Allocated after `EXIT`.
    pub exited: usize,
    /// Deleted after the grace.
    pub deleted: usize,
    /// Could not be released (the API failed); tried again at the next sweep.
    pub failed: usize,
    /// Canaries among the orphans.
    pub canaries: usize,
}

/// Reclaims the orphans of `owner` in `namespace` once: at start (`orphan_after` `None`: other
/// incarnations' only) or in a sweep. An error listing is returned as its kind.
pub async fn reclaim(
    gameservers: &Api<GameServer>,
    owner: &Owner,
    cfg: &ReclaimConfig,
    orphan_after: Option<Duration>,
    metrics: &ProducerMetrics,
) -> Result<Reclaimed, &'static str> {
    let params = ListParams::default().labels(&format!("{OWNER_LABEL}={}", owner.owner()));
    let list = tokio::time::timeout(cfg.exit_grace.max(Duration::from_secs(5)), async {
        gameservers.list(&params).await
    })
    .await
    .map_err(|_| "error_timeout")?
    .map_err(|e| classify(&e))?;
    let now_ms = now_unix_ms();
    let orphans: Vec<(GameServer, Role)> = list
        .items
        .into_iter()
        .filter_map(|gs| owner.orphan(&gs, orphan_after, now_ms).map(|r| (gs, r)))
        .collect();
    let mut done = Reclaimed {
        found: orphans.len(),
        ..Reclaimed::default()
    };
    let mut jobs = tokio::task::JoinSet::new();
    for (gs, role) in orphans {
        let api = gameservers.clone();
        let cfg = cfg.clone();
        jobs.spawn(async move { (role, release(&api, &gs, &cfg).await) });
    }
    while let Some(r) = jobs.join_next().await {
        let Ok((role, (name, how))) = r else {
            done.failed += 1;
            continue;
        };
        match how {
            Ok(reason) => {
                if reason == "exit" {
                    done.exited += 1;
                } else {
                    done.deleted += 1;
                }
                if role == Role::Canary {
                    done.canaries += 1;
                }
                OrphanReclaimed {
                    gameserver: &name,
                    role: role.as_str(),
                    reason,
                }
                .emit(metrics);
            }
            Err(kind) => {
                done.failed += 1;
                tracing::warn!(gameserver = %name, error = kind, "cannot reclaim an orphaned GameServer");
            }
        }
    }
    Ok(done)
}

/// Tells `gs` to `EXIT`, waits up to `exit_grace` for it to leave Allocated, then deletes it;
/// its name and `exit` or `deleted`, or the kind of the API error.
async fn release(
    api: &Api<GameServer>,
    gs: &GameServer,
    cfg: &ReclaimConfig,
) -> (String, Result<&'static str, &'static str>) {
    let name = gs.metadata.name.clone().unwrap_or_default();
    let uid = gs.metadata.uid.clone();
    if let Some(addr) = address(gs)
        && let Ok(sock) = connect(addr).await
    {
        // Best effort: the process may be gone, or the datagram lost; the grace decides.
        let _ = heartbeat_with(&sock, "EXIT", Duration::from_millis(500)).await;
    }
    let deadline = tokio::time::Instant::now() + cfg.exit_grace;
    loop {
        let gone = match api.get(&name).await {
            Err(kube::Error::Api(s)) if s.code == 404 => true,
            Err(_) => false,
            Ok(now) => now.metadata.uid != uid || now.state() != Some(GameServerState::Allocated),
        };
        if gone {
            return (name, Ok("exit"));
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deleted = api.delete(&name, &DeleteParams::default()).await;
    let result = match deleted {
        Ok(_) => Ok("deleted"),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok("exit"),
        Err(e) => Err(classify(&e)),
    };
    (name, result)
}

/// The game port of `gs` at the first IP address of [`super::address::candidates`] in the
/// default order (no name is resolved for a best-effort `EXIT`).
fn address(gs: &GameServer) -> Option<SocketAddr> {
    let st = gs.status.as_ref()?;
    let port = st.ports.first().and_then(|p| u16::try_from(p.port).ok())?;
    let ip =
        super::address::candidates(&st.address, &st.addresses, &super::address::default_order())
            .iter()
            .find_map(|a| a.parse().ok())?;
    Some(SocketAddr::new(ip, port))
}

/// Reclaims other incarnations' orphans once, then sweeps for this one's every
/// `cfg.sweep_every` (not with `sweeps` off: servers kept on purpose) until `shutdown`.
pub async fn run(
    gameservers: Api<GameServer>,
    owner: Owner,
    cfg: ReclaimConfig,
    sweeps: bool,
    metrics: ProducerMetrics,
    shutdown: CancellationToken,
) {
    let at_start = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = reclaim(&gameservers, &owner, &cfg, None, &metrics) => r,
    };
    OrphansSwept {
        owner: owner.owner(),
        incarnation: owner.incarnation(),
        when: "start",
        result: at_start,
    }
    .emit(&metrics);
    if !sweeps {
        return;
    }
    let mut tick = tokio::time::interval(cfg.sweep_every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let swept = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = reclaim(&gameservers, &owner, &cfg, Some(cfg.orphan_after), &metrics) => r,
        };
        OrphansSwept {
            owner: owner.owner(),
            incarnation: owner.incarnation(),
            when: "sweep",
            result: swept,
        }
        .emit(&metrics);
    }
}

/// A GameServer named by `meta` in `state`, for the Producer's unit tests.
#[cfg(test)]
pub(crate) fn gameserver_in(
    meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    state: GameServerState,
) -> GameServer {
    let mut g = GameServer::new(meta, Default::default());
    g.status = Some(upsoak_agones::GameServerStatus {
        state,
        ports: Default::default(),
        address: String::new(),
        addresses: Default::default(),
        node_name: String::new(),
        reserved_until: None,
        players: None,
    });
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn gs(
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        state: GameServerState,
    ) -> GameServer {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        gameserver_in(
            ObjectMeta {
                name: Some("gs-1".into()),
                labels: map(labels),
                annotations: map(annotations),
                ..ObjectMeta::default()
            },
            state,
        )
    }

    #[test]
    fn only_allocated_servers_of_this_owner_are_orphans() {
        let me = Owner::new("soak-a");
        let before = Owner::new("soak-a");
        assert_ne!(me.incarnation(), before.incarnation());
        let theirs = [(OWNER_LABEL, "soak-a"), (ROLE_LABEL, "canary")];
        let old = [
            (INCARNATION_ANNOTATION, before.incarnation()),
            (ALLOCATED_AT_ANNOTATION, "0"),
        ];
        let now = now_unix_ms();
        let alloc = GameServerState::Allocated;
        assert_eq!(
            me.orphan(&gs(&theirs, &old, alloc), None, now),
            Some(Role::Canary)
        );
        // Not Allocated, no owner label, another owner: never touched.
        assert_eq!(
            me.orphan(&gs(&theirs, &old, GameServerState::Ready), None, now),
            None
        );
        assert_eq!(me.orphan(&gs(&[], &old, alloc), None, now), None);
        let other = [(OWNER_LABEL, "soak-b")];
        assert_eq!(me.orphan(&gs(&other, &old, alloc), None, now), None);
        // This incarnation's: only in a sweep, untracked and older than the grace.
        let mine_at = |at: u64| {
            [
                (INCARNATION_ANNOTATION, me.incarnation().to_owned()),
                (ALLOCATED_AT_ANNOTATION, at.to_string()),
            ]
        };
        let a = mine_at(now - 120_000);
        let a: Vec<(&str, &str)> = a.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let session = [(OWNER_LABEL, "soak-a")];
        let grace = Some(Duration::from_secs(60));
        assert_eq!(me.orphan(&gs(&session, &a, alloc), None, now), None);
        assert_eq!(
            me.orphan(&gs(&session, &a, alloc), grace, now),
            Some(Role::Session)
        );
        let held = me.track("gs-1");
        assert_eq!(me.orphan(&gs(&session, &a, alloc), grace, now), None);
        drop(held);
        let young = mine_at(now - 1_000);
        let young: Vec<(&str, &str)> = young.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(me.orphan(&gs(&session, &young, alloc), grace, now), None);
    }

    #[test]
    fn bad_settings_are_refused_with_their_key() {
        let bad = ReclaimConfig {
            owner: "-no spaces-".into(),
            exit_grace: Duration::ZERO,
            sweep_every: Duration::from_secs(86_401),
            orphan_after: Duration::from_secs(1),
        };
        let text: Vec<String> = bad.problems().iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("owner: `-no spaces-` is not a label value"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("exit_grace: 0ns is not between"),
            "{text:?}"
        );
        assert!(text[2].starts_with("sweep_every: 86401s"), "{text:?}");
        assert!(ReclaimConfig::default().problems().is_empty());
        let long = ReclaimConfig {
            owner: "a".repeat(64),
            ..ReclaimConfig::default()
        };
        assert!(!long.problems().is_empty());
    }
}
