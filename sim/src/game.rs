//! TEMPORARY STUB written by the lead so the rest of sim compiles; helper-1 replaces this whole file.
use std::net::IpAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum GameError {
    #[error("no free port")]
    Exhausted,
}
#[derive(Debug, Clone, PartialEq)]
pub enum SdkCall {
    Ready,
    Allocate,
    Shutdown,
    Unhealthy,
    Reserve(std::time::Duration),
    Label(String, String),
    Annotation(String, String),
    Players {
        count: i64,
        capacity: i64,
        ids: Vec<String>,
    },
}
pub trait SdkHandle: Send + Sync + 'static {
    fn sdk(&self, namespace: &str, name: &str, call: SdkCall) -> Result<(), String>;
}
#[derive(Debug)]
pub struct PortPool(std::sync::Mutex<(u16, u16, u16)>);
impl PortPool {
    pub fn new(min: u16, max: u16) -> Result<Self, GameError> {
        Ok(PortPool(std::sync::Mutex::new((min, max, min))))
    }
    pub async fn bind(&self, ip: IpAddr) -> Result<(UdpSocket, u16), GameError> {
        let p = {
            let mut g = self.0.lock().map_err(|_| GameError::Exhausted)?;
            let p = g.2;
            g.2 += 1;
            p
        };
        let s = UdpSocket::bind((ip, p))
            .await
            .map_err(|_| GameError::Exhausted)?;
        Ok((s, p))
    }
    pub fn release(&self, _port: u16) {}
}
pub async fn serve(
    _socket: UdpSocket,
    _namespace: String,
    _name: String,
    _sdk: Arc<dyn SdkHandle>,
    shutdown: CancellationToken,
) {
    shutdown.cancelled().await
}
