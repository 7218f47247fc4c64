//! The Alertmanager webhook of the real `upsoak-agent run` over HTTP: credentials (bearer and
//! basic, as a real Alertmanager's `http_config` sends them), the body limit, and the inbox kept
//! across a restart; bad credential or inbox files exit 2 naming the file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::TempDir;
use upsoak_agent::server::WEBHOOK_PATH;

const BIN: &str = env!("CARGO_BIN_EXE_upsoak-agent");
const DEFAULT_SPECS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/slos.yaml");

/// `upsoak-agent run` (no probes, Prometheus unreachable) on a free port; killed when dropped.
struct Agent {
    child: Child,
    url: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(state: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--no-probes", "--listen", "127.0.0.1:0", "--specs"])
        .arg(DEFAULT_SPECS)
        .arg("--state-dir")
        .arg(state)
        .env("UPSOAK_PROMETHEUS", "http://127.0.0.1:1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Agent {
    fn start(state: &Path, env: &[(&str, &str)]) -> Agent {
        let mut child = command(state, env).spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = match first.trim().strip_prefix("listening on ") {
            Some(u) => u.to_owned(),
            None => {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the agent did not start: {first}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        Agent { child, url }
    }

    fn webhook(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.url)
    }

    /// The value of the series `series` on `/metrics`.
    async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }
}

/// Runs the agent with `env` to its end: the exit code and stderr.
fn run_to_end(state: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = command(state, env).output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn payload(name: &str) -> serde_json::Value {
    serde_json::json!({"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": name, "severity": "critical"}, "annotations": {"summary": "s"}, "startsAt": "2026-11-25T00:00:00Z", "fingerprint": format!("fp-{name}")}]})
}

fn inbox_names(state: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(state.join("inbox.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_bodies_are_bounded_and_the_inbox_survives_a_restart() {
    let dir = TempDir::new("webhook-token");
    let state = dir.path().join("state");
    let token = dir.path().join("token");
    std::fs::write(&token, "tok-123\n").unwrap();
    let env = [("UPSOAK_WEBHOOK_TOKEN_FILE", token.to_str().unwrap())];
    let agent = Agent::start(&state, &env);
    let http = reqwest::Client::new();
    assert_eq!(
        agent.metric("upsoak_agent_webhook_auth_enabled").await,
        Some(1.0)
    );
    // Without, or with a wrong token: 401 with a challenge, nothing kept.
    for auth in [None, Some("Bearer tok-124"), Some("Bearer tok-12")] {
        let mut req = http.post(agent.webhook()).json(&payload("Forged"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"upsoak-agent\""
        );
    }
    assert!(inbox_names(&state).is_empty());
    assert_eq!(
        agent
            .metric("upsoak_agent_webhook_refused_total{reason=\"unauthenticated\"}")
            .await,
        Some(3.0)
    );
    // The right token: kept, and written to the state dir before the answer.
    let r = http
        .post(agent.webhook())
        .bearer_auth("tok-123")
        .json(&payload("AgonesAllocatorDown"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(inbox_names(&state), ["AgonesAllocatorDown"]);
    // Above 1 MiB: 413, declared or not (a chunked body has no Content-Length).
    let big = vec![b' '; upsoak_agent::webhook::MAX_BODY_BYTES + 1];
    let r = http
        .post(agent.webhook())
        .bearer_auth("tok-123")
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(chunked_post(&agent, &big).await, 413);
    // Not JSON (a browser's form post): 415.
    let r = http
        .post(agent.webhook())
        .bearer_auth("tok-123")
        .header("Content-Type", "text/plain")
        .body(payload("Forged").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(
        agent
            .metric("upsoak_agent_webhook_refused_total{reason=\"too_large\"}")
            .await,
        Some(2.0)
    );
    drop(agent);
    // A restart reads the inbox back.
    let again = Agent::start(&state, &env);
    assert_eq!(
        again.metric("upsoak_agent_webhook_inbox_alerts").await,
        Some(1.0)
    );
    assert_eq!(inbox_names(&state), ["AgonesAllocatorDown"]);
}

/// The status of a post of `body` in chunks, without a Content-Length (raw HTTP/1.1: the
/// agent may answer before it has read it all).
async fn chunked_post(agent: &Agent, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = agent.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer tok-123\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let _ = s.write_all(head.as_bytes()).await;
    for c in body.chunks(64 * 1024) {
        let chunk = [format!("{:x}\r\n", c.len()).as_bytes(), c, b"\r\n"].concat();
        if s.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_a_real_alertmanager_is_accepted_and_a_wrong_password_is_not() {
    let dir = TempDir::new("webhook-basic");
    let state = dir.path().join("state");
    let creds = dir.path().join("basic");
    std::fs::write(&creds, "alertmanager:pa:ss\n").unwrap();
    let password = dir.path().join("password");
    std::fs::write(&password, "pa:ss").unwrap();
    let agent = Agent::start(
        &state,
        &[("UPSOAK_WEBHOOK_BASIC_AUTH_FILE", creds.to_str().unwrap())],
    );
    let http = reqwest::Client::new();
    let r = http
        .post(agent.webhook())
        .basic_auth("alertmanager", Some("pa:sS"))
        .json(&payload("Forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"upsoak-agent\""
    );
    // Alertmanager sends what its http_config says: basic_auth with a password file.
    let am = common::alertmanager_with_http_config(
        dir.path(),
        Some(&agent.webhook()),
        &format!(
            "        http_config:\n          basic_auth:\n            username: alertmanager\n            password_file: '{}'\n",
            password.display()
        ),
    )
    .await;
    let r = http
        .post(format!("{}/api/v2/alerts", am.url()))
        .json(&serde_json::json!([{"labels": {"alertname": "AgonesAllocatorDown"}, "startsAt": jiff::Timestamp::now().to_string()}]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    common::eventually(30, "Alertmanager's post kept in the inbox", || async {
        inbox_names(&state)
            .contains(&"AgonesAllocatorDown".to_owned())
            .then_some(())
    })
    .await;
    assert_eq!(
        agent
            .metric("upsoak_agent_webhook_refused_total{reason=\"unauthenticated\"}")
            .await,
        Some(1.0),
        "Alertmanager's posts were all accepted"
    );
    assert!(!inbox_names(&state).contains(&"Forged".to_owned()));
}

#[test]
fn without_credentials_the_agent_warns_and_shows_it_and_bad_files_exit_2_naming_them() {
    use upsoak_agent::exit::BAD_INPUT;
    let dir = TempDir::new("webhook-files");
    let state = dir.path().join("state");
    // Open webhook: a loud warning line, and the gauge at 0.
    let mut child = command(&state, &[]).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let metrics = rt
        .block_on(async { reqwest::get(format!("{url}/metrics")).await?.text().await })
        .unwrap();
    assert!(
        metrics.contains("upsoak_agent_webhook_auth_enabled 0"),
        "{metrics}"
    );
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("WEBHOOK UNAUTHENTICATED: anyone who can reach"),
        "{log}"
    );

    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let placeholder = dir.path().join("placeholder");
    std::fs::write(&placeholder, upsoak_agent::webhook::auth::PLACEHOLDER).unwrap();
    let no_colon = dir.path().join("no-colon");
    std::fs::write(&no_colon, "justauser\n").unwrap();
    for (var, file, says) in [
        ("UPSOAK_WEBHOOK_TOKEN_FILE", empty.clone(), "is empty"),
        (
            "UPSOAK_WEBHOOK_TOKEN_FILE",
            placeholder.clone(),
            "still holds the placeholder",
        ),
        (
            "UPSOAK_WEBHOOK_TOKEN_FILE",
            dir.path().join("missing"),
            "cannot read",
        ),
        (
            "UPSOAK_WEBHOOK_BASIC_AUTH_FILE",
            no_colon.clone(),
            "is not `user:password`",
        ),
    ] {
        let (code, out) = run_to_end(&state, &[(var, file.to_str().unwrap())]);
        assert_eq!(code, Some(i32::from(BAD_INPUT)), "{out}");
        assert!(
            out.contains(&format!("`{}` {says}", file.display()))
                || out.contains(&format!("{says} --")),
            "{out}"
        );
        assert!(out.contains(&file.display().to_string()), "{out}");
    }
    // A corrupt inbox refuses to start, naming the file.
    std::fs::create_dir_all(&state).unwrap();
    let inbox = state.join("inbox.json");
    std::fs::write(&inbox, "{\"version\": 1, \"alerts\": [").unwrap();
    let (code, out) = run_to_end(&state, &[]);
    assert_eq!(code, Some(i32::from(BAD_INPUT)), "{out}");
    assert!(out.contains(&inbox.display().to_string()), "{out}");
}

#[test]
fn no_shipped_manifest_holds_the_placeholder_the_agent_refuses() {
    // The Secret is generated from a git-ignored token file (deploy/components/webhook-token),
    // so `kubectl apply -k` never writes a placeholder over a real token.
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, found);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                if text.contains(upsoak_agent::webhook::auth::PLACEHOLDER) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy")),
        &mut found,
    );
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_from_a_foreign_origin_or_under_a_foreign_host_is_refused() {
    let dir = TempDir::new("webhook-origin");
    let state = dir.path().join("state");
    let agent = Agent::start(&state, &[]);
    let http = reqwest::Client::new();
    // A web page's cross-site POST (text/plain needs no preflight), and DNS rebinding: 403.
    let forged = http
        .post(agent.webhook())
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/json")
        .body(payload("Csrf").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.text().await.unwrap().contains("evil.example"));
    let rebound = http
        .post(agent.webhook())
        .header("Host", "evil.example:9465")
        .json(&payload("Rebound"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status().as_u16(), 403);
    assert!(inbox_names(&state).is_empty());
    // Reading is not a write: the report still answers a foreign page's GET.
    let health = http
        .get(format!("{}/healthz", agent.url))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_ne!(health.status().as_u16(), 403);
    // Alertmanager and curl send no Origin: kept.
    let r = http
        .post(agent.webhook())
        .json(&payload("Real"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(inbox_names(&state), ["Real"]);
}
