//! One allocation, played and released, as the Producer would: a `GameServerAllocation` from a
//! Fleet, `GAMESERVER` over the simple-game-server UDP protocol (it answers `NAME: <name>`,
//! `examples/simple-game-server/main.go`, `handleGameServer`), then `EXIT`, and the GameServer
//! watched until it is Shutdown or gone. A server that did not answer is deleted through the
//! API, so the check never leaves one Allocated.

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{DeleteParams, PostParams};
use tokio::net::UdpSocket;
use upsoak_agones::{AllocationState, GameServer, GameServerAllocation, GameServerState};

use crate::producer::owner::{Owner, Role};

use crate::producer;

/// How often the GameServer is looked at while it is being released.
const RELEASE_POLL: Duration = Duration::from_millis(200);

/// What the round trip found: the server and how it went.
pub struct RoundTrip {
    /// The allocated GameServer.
    pub gameserver: String,
    /// Where it was played.
    pub addr: String,
    /// Its answer to `GAMESERVER`.
    pub reply: String,
    /// How long it took to be Shutdown or gone after `EXIT`.
    pub released_after: Duration,
}

/// Allocates from `fleet` in `ns`, plays `GAMESERVER` then `EXIT` (each reply within `reply`),
/// and waits at most `release` for the server to be released. The allocation carries `owner`'s
/// marks, as the Producer's do, so a preflight killed before its `EXIT` leaves a server the
/// next sidecar reclaims.
pub async fn round_trip(
    client: &kube::Client,
    ns: &str,
    fleet: &str,
    owner: &Owner,
    reply: Duration,
    release: Duration,
    address_types: &[crate::producer::address::AddressType],
) -> Result<RoundTrip, String> {
    let allocations: Api<GameServerAllocation> = Api::namespaced(client.clone(), ns);
    let gameservers: Api<GameServer> = Api::namespaced(client.clone(), ns);
    let gsa = allocations
        .create(
            &PostParams::default(),
            &owner.allocation(fleet, Role::Session),
        )
        .await
        .map_err(|e| format!("allocating from Fleet `{fleet}`: {e}"))?;
    let st = gsa
        .status
        .ok_or_else(|| format!("the allocation from `{fleet}` has no status"))?;
    if st.state != AllocationState::Allocated {
        return Err(format!(
            "the allocation from `{fleet}` answered {}",
            st.state.as_str()
        ));
    }
    let name = st.game_server_name.clone();
    let uid = gameservers
        .get(&name)
        .await
        .ok()
        .and_then(|gs| gs.metadata.uid);
    let played = match producer::resolve(&st, address_types).await {
        None => Err(format!(
            "GameServer `{name}` has no reachable address (status.address `{}`, ports {:?})",
            st.address,
            st.ports.iter().map(|p| p.port).collect::<Vec<_>>()
        )),
        Some(addr) => play(addr, &name, reply)
            .await
            .map(|answer| (addr.to_string(), answer)),
    };
    let (addr, answer) = match played {
        Ok(p) => p,
        Err(e) => {
            // Never leave it Allocated: the API releases what the game did not.
            let cleanup = match gameservers.delete(&name, &DeleteParams::default()).await {
                Ok(_) => "deleted it through the API".to_owned(),
                Err(d) => format!("could not delete it either: {d}"),
            };
            return Err(format!("{e}; {cleanup}"));
        }
    };
    let start = Instant::now();
    loop {
        let released = match gameservers.get(&name).await {
            Err(kube::Error::Api(s)) if s.code == 404 => true,
            Err(e) => return Err(format!("reading GameServer `{name}` after EXIT: {e}")),
            // Another object under the name is a replacement: ours is gone.
            Ok(gs) => {
                gs.metadata.uid != uid
                    || gs
                        .status
                        .is_some_and(|s| s.state == GameServerState::Shutdown)
            }
        };
        if released {
            return Ok(RoundTrip {
                gameserver: name,
                addr,
                reply: answer,
                released_after: start.elapsed(),
            });
        }
        if start.elapsed() > release {
            return Err(format!(
                "GameServer `{name}` answered on {addr} but was not Shutdown or gone {release:?} after EXIT"
            ));
        }
        tokio::time::sleep(RELEASE_POLL).await;
    }
}

/// `GAMESERVER` (the answer must name `name`), then `EXIT`; the first answer.
async fn play(addr: std::net::SocketAddr, name: &str, reply: Duration) -> Result<String, String> {
    let bind: std::net::SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("binding a UDP socket: {e}"))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let answer = ask(&sock, "GAMESERVER", reply)
        .await
        .map_err(|e| format!("GAMESERVER to `{name}` at {addr}: {e}"))?;
    if !answer.contains(name) {
        return Err(format!(
            "GAMESERVER to {addr} answered {answer:?}, which does not name `{name}`"
        ));
    }
    ask(&sock, "EXIT", reply)
        .await
        .map_err(|e| format!("EXIT to `{name}` at {addr}: {e}"))?;
    Ok(answer.trim().to_owned())
}

async fn ask(sock: &UdpSocket, text: &str, timeout: Duration) -> Result<String, String> {
    let mut buf = [0u8; 2048];
    let exchange = async {
        sock.send(text.as_bytes()).await?;
        let n = sock.recv(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(r)) if r.starts_with("ERROR") => Err(format!("answered {:?}", r.trim())),
        Ok(Ok(r)) => Ok(r),
    }
}
