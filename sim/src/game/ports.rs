//! Game ports: [`PortPool`] leases UDP ports from the configured range, skipping ports another
//! process holds, and rotates so a released port is not handed out again at once. A range
//! starting at 0 lets the OS pick any free port, so tests need no range of their own.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::net::UdpSocket;

/// Why a game port could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// The configured range is empty.
    #[error("invalid game port range {min}-{max}: need min <= max, or min 0 for any free port")]
    BadRange { min: u16, max: u16 },
    /// Every port of the range is leased by the pool or held by another process.
    #[error("no free game port in {min}-{max}: every port is leased or held by another process")]
    Exhausted { min: u16, max: u16 },
    /// Binding failed for a reason other than the port being taken (e.g. the IP is not local).
    #[error("cannot bind game port `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Hands out UDP ports from an inclusive range, skipping ports another process holds.
#[derive(Debug)]
pub struct PortPool {
    min: u16,
    max: u16,
    state: Mutex<PoolState>,
}

#[derive(Debug)]
struct PoolState {
    leased: BTreeSet<u16>,
    /// The next port to try; it rotates so a released port is not handed out again at once,
    /// which keeps late datagrams for a deleted server from reaching its successor.
    cursor: u16,
}

impl PortPool {
    /// A pool over the ports `min..=max`; `min` 0 means any free port the OS picks.
    pub fn new(min: u16, max: u16) -> Result<PortPool, GameError> {
        if min != 0 && min > max {
            return Err(GameError::BadRange { min, max });
        }
        Ok(PortPool {
            min,
            max,
            state: Mutex::new(PoolState {
                leased: BTreeSet::new(),
                cursor: min,
            }),
        })
    }

    /// Binds a UDP socket on `ip` at a port of the range that is neither leased nor held by
    /// another process, and leases that port until [`PortPool::release`].
    pub async fn bind(&self, ip: IpAddr) -> Result<(UdpSocket, u16), GameError> {
        if self.min == 0 {
            return self.bind_any(ip).await;
        }
        // Each attempt moves the cursor on, so this tries every free port at most once.
        for _ in 0..self.span() {
            let Some(port) = self.lease_next() else {
                break;
            };
            // The lock is not held here: binding is awaited.
            match UdpSocket::bind((ip, port)).await {
                Ok(socket) => return Ok((socket, port)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    // Another process has it; it may let go later, so it goes back to the pool.
                    self.release(port);
                }
                Err(source) => {
                    self.release(port);
                    return Err(GameError::Bind {
                        addr: SocketAddr::new(ip, port),
                        source,
                    });
                }
            }
        }
        Err(GameError::Exhausted {
            min: self.min,
            max: self.max,
        })
    }

    /// Binds a port the OS picks, and leases it so [`PortPool::leased`] counts it.
    async fn bind_any(&self, ip: IpAddr) -> Result<(UdpSocket, u16), GameError> {
        let any = SocketAddr::new(ip, 0);
        let bind_error = |source| GameError::Bind { addr: any, source };
        let socket = UdpSocket::bind(any).await.map_err(bind_error)?;
        let port = socket.local_addr().map_err(bind_error)?.port();
        self.lock().leased.insert(port);
        Ok((socket, port))
    }

    /// Returns a port to the pool; releasing a port that is not leased does nothing.
    pub fn release(&self, port: u16) {
        self.lock().leased.remove(&port);
    }

    /// Ports currently leased.
    pub fn leased(&self) -> usize {
        self.lock().leased.len()
    }

    fn span(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    /// Leases the first port from the cursor on that is not leased, and moves the cursor past it.
    fn lease_next(&self) -> Option<u16> {
        let mut st = self.lock();
        for _ in 0..self.span() {
            let port = st.cursor;
            st.cursor = if port == self.max { self.min } else { port + 1 };
            if st.leased.insert(port) {
                return Some(port);
            }
        }
        None
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Nothing panics while holding the lock and every update is a single set operation, so
        // the state is consistent even if a holder did panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// The first of `n` consecutive loopback UDP ports that are all free now, above Linux's
    /// ephemeral range (so the OS does not hand them out meanwhile), starting at an offset of
    /// this process so concurrent test runs look in different places.
    fn free_block(n: u16) -> u16 {
        let start = 61_000 + u16::try_from(std::process::id() % 400).unwrap() * 10;
        (start..65_000)
            .chain(61_000..start)
            .step_by(usize::from(n))
            .find(|&base| {
                (base..base + n).all(|p| std::net::UdpSocket::bind((LOCALHOST, p)).is_ok())
            })
            .expect("a free block of loopback UDP ports")
    }

    #[test]
    fn port_pool_rejects_empty_ranges() {
        assert!(matches!(
            PortPool::new(10, 5),
            Err(GameError::BadRange { min: 10, max: 5 })
        ));
        assert_eq!(
            PortPool::new(10, 5).unwrap_err().to_string(),
            "invalid game port range 10-5: need min <= max, or min 0 for any free port"
        );
        // 0 is any free port, whatever the end of the range says.
        assert!(PortPool::new(0, 5).is_ok());
        assert!(PortPool::new(0, 0).is_ok());
        assert!(PortPool::new(7, 7).is_ok());
        assert!(PortPool::new(65535, 65535).is_ok());
    }

    #[test]
    fn port_pool_rotates_before_reusing() {
        let pool = PortPool::new(65533, 65535).unwrap();
        let a = pool.lease_next().unwrap();
        let b = pool.lease_next().unwrap();
        pool.release(a);
        let c = pool.lease_next().unwrap();
        assert_eq!([a, b, c], [65533, 65534, 65535]);
        // Wraps around to the released port only now.
        assert_eq!(pool.lease_next(), Some(a));
        assert_eq!(pool.lease_next(), None);
        assert_eq!(pool.leased(), 3);
        pool.release(1);
        assert_eq!(pool.leased(), 3);
    }

    #[tokio::test]
    async fn port_pool_runs_out_and_reuses_released_ports() {
        let min = free_block(3);
        let pool = PortPool::new(min, min + 2).unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.bind(LOCALHOST).await.unwrap());
        }
        let mut ports: Vec<u16> = held.iter().map(|(_, p)| *p).collect();
        ports.sort_unstable();
        assert_eq!(ports, [min, min + 1, min + 2]);
        assert_eq!(pool.leased(), 3);
        assert!(matches!(
            pool.bind(LOCALHOST).await,
            Err(GameError::Exhausted { min: m, max: x }) if (m, x) == (min, min + 2)
        ));

        // The server on the middle port ends: its socket closes and its port comes back.
        let (socket, port) = held.remove(1);
        drop(socket);
        pool.release(port);
        assert_eq!(pool.leased(), 2);
        let (_socket, again) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(again, port);
        assert_eq!(pool.leased(), 3);
    }

    #[tokio::test]
    async fn port_pool_skips_ports_held_by_another_process() {
        let min = free_block(2);
        let pool = PortPool::new(min, min + 1).unwrap();
        let squatter = std::net::UdpSocket::bind((LOCALHOST, min)).unwrap();
        let (_socket, port) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(port, min + 1);
        // The held port is not leased, so it is tried again once it is let go.
        assert!(matches!(
            pool.bind(LOCALHOST).await,
            Err(GameError::Exhausted { .. })
        ));
        assert_eq!(pool.leased(), 1);
        drop(squatter);
        let (_socket, port) = pool.bind(LOCALHOST).await.unwrap();
        assert_eq!(port, min);
        assert_eq!(pool.leased(), 2);
    }

    #[tokio::test]
    async fn a_range_from_0_binds_any_free_port_and_leases_it() {
        let pool = PortPool::new(0, 0).unwrap();
        let (a, pa) = pool.bind(LOCALHOST).await.unwrap();
        let (_b, pb) = pool.bind(LOCALHOST).await.unwrap();
        assert_ne!(pa, pb);
        assert_eq!(a.local_addr().unwrap().port(), pa);
        assert_eq!(pool.leased(), 2);
        pool.release(pa);
        assert_eq!(pool.leased(), 1);
    }

    #[tokio::test]
    async fn binding_a_foreign_ip_is_an_error_not_exhaustion() {
        let pool = PortPool::new(31750, 31759).unwrap();
        // TEST-NET-1 is never assigned to a local interface.
        let foreign: IpAddr = "192.0.2.1".parse().unwrap();
        let error = pool.bind(foreign).await.unwrap_err();
        assert!(matches!(error, GameError::Bind { .. }), "{error:?}");
        assert_eq!(error.to_string(), "cannot bind game port `192.0.2.1:31750`");
        assert_eq!(pool.leased(), 0);
    }
}
