//! The allocator service's mTLS endpoint on a real simulator: an allocation over TLS with the
//! published client material, a client certificate from an old CA refused once an install
//! rotated them (the chart's `generateTLS` default), and fixed certificates kept across one.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{eventually, test_config};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use upsoak_sim::config::SimConfig;
use upsoak_sim::server::Sim;
use upsoak_testkit::TempDir;

async fn start(dir: &Path, generate_tls: bool) -> (Sim, CancellationToken) {
    // reqwest with rustls wants a process-wide provider even for a preconfigured client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let extra = format!(
        "upgrade_window: 300ms\nfleets: [ {{ name: f, replicas: 3 }} ]\nallocator_service: {{ listen: \"127.0.0.1:0\", client_dir: \"{}\", generate_tls: {generate_tls} }}",
        dir.display()
    );
    let cfg = SimConfig::parse(&test_config(&extra), "test").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let (sim, _handle) = Sim::start(cfg, listener, stop.clone(), 1).unwrap();
    (sim, stop)
}

/// A matchmaker's client: the material in `dir` as it is now, with the ring provider.
fn client(dir: &Path, with_cert: bool) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("tls-ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = if with_cert {
        let certs = CertificateDer::pem_file_iter(dir.join("tls.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(cfg)
        .build()
        .unwrap()
}

async fn allocate(http: &reqwest::Client, sim: &Sim) -> Result<(u16, Value), reqwest::Error> {
    let addr = sim.allocator_service.unwrap();
    let r = http
        .post(format!(
            "https://localhost:{}/gameserverallocation",
            addr.port()
        ))
        .json(&json!({"namespace": "default", "gameServerSelectors": [{"matchLabels": {"agones.dev/fleet": "f"}}]}))
        .send()
        .await?;
    let code = r.status().as_u16();
    Ok((code, r.json().await?))
}

async fn first_allocation(http: &reqwest::Client, sim: &Sim) -> Value {
    eventually(10, "an allocation over mTLS", || async {
        match allocate(http, sim).await {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    })
    .await
}

async fn install(sim: &Sim, version: &str) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/upsoak/v1/install", sim.addr))
        .json(&json!({"version": version}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test]
async fn an_install_rotates_the_certificates_and_the_old_client_is_refused() {
    let dir = TempDir::new("alloc-rotate");
    let (sim, stop) = start(dir.path(), true).await;
    let old = client(dir.path(), true);
    let v = first_allocation(&old, &sim).await;
    assert!(
        v["gameServerName"].as_str().is_some_and(|n| !n.is_empty()),
        "{v}"
    );
    assert!(v["ports"][0]["port"].as_i64().is_some(), "{v}");
    // No client certificate: refused in the handshake.
    assert!(allocate(&client(dir.path(), false), &sim).await.is_err());

    let before = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    install(&sim, "1.59.0").await;
    // The window closes; the old client's certificate (and its CA) are no longer accepted.
    eventually(10, "the window to close", || async {
        (!sim.world.lock().unwrap().in_upgrade_window()).then_some(())
    })
    .await;
    let after = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    assert_ne!(before, after, "the install issued a new client certificate");
    let refused = allocate(&old, &sim).await;
    assert!(
        refused.is_err(),
        "the old client still allocates: {refused:?}"
    );
    // The material now published works.
    first_allocation(&client(dir.path(), true), &sim).await;
    stop.cancel();
}

#[tokio::test]
async fn fixed_certificates_survive_an_install() {
    let dir = TempDir::new("alloc-fixed");
    let (sim, stop) = start(dir.path(), false).await;
    let held = client(dir.path(), true);
    first_allocation(&held, &sim).await;
    let before = std::fs::read_to_string(dir.path().join("tls.crt")).unwrap();
    install(&sim, "1.59.0").await;
    eventually(10, "the window to close", || async {
        (!sim.world.lock().unwrap().in_upgrade_window()).then_some(())
    })
    .await;
    assert_eq!(
        before,
        std::fs::read_to_string(dir.path().join("tls.crt")).unwrap()
    );
    first_allocation(&held, &sim).await;
    stop.cancel();
}

#[tokio::test]
async fn unallocated_is_resource_exhausted_as_the_gateway_writes_it() {
    let dir = TempDir::new("alloc-none");
    let (sim, stop) = start(dir.path(), true).await;
    let http = client(dir.path(), true);
    let addr = sim.allocator_service.unwrap();
    let r = http
        .post(format!(
            "https://localhost:{}/gameserverallocation",
            addr.port()
        ))
        .json(&json!({"gameServerSelectors": [{"matchLabels": {"agones.dev/fleet": "none"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 8, "{v}");
    assert_eq!(
        v["message"], "there is no available GameServer to allocate",
        "{v}"
    );
    stop.cancel();
}
