//! Writes only from the origin they are addressed to: a web page the operator opens can make
//! the browser POST to a loopback port (a form or `fetch` with `text/plain` needs no CORS
//! preflight), and through DNS rebinding name it by a foreign host. A request that changes
//! something (any method but GET, HEAD and OPTIONS) is refused 403 when it carries an `Origin`
//! that is not its own `Host`, and, on a loopback listener, when its `Host` is not a loopback
//! name. Alertmanager, curl and Prometheus send no `Origin` and name the host they dial.

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// `app` with its writes guarded; `loopback`: the listener is on a loopback address.
pub fn guard_writes(app: Router, loopback: bool) -> Router {
    app.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| check(loopback, req, next),
    ))
}

async fn check(loopback: bool, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    match refusal(
        loopback,
        header_str(&req, header::HOST),
        header_str(&req, header::ORIGIN),
    ) {
        Some(why) => (StatusCode::FORBIDDEN, format!("{why}\n")).into_response(),
        None => next.run(req).await,
    }
}

fn header_str(req: &Request, name: header::HeaderName) -> Option<&str> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// Why a write with these `Host` and `Origin` headers is refused, if it is.
pub fn refusal(loopback: bool, host: Option<&str>, origin: Option<&str>) -> Option<String> {
    if loopback && !host.is_some_and(is_loopback_host) {
        return Some(format!(
            "Host `{}` is not a loopback name: this server listens on loopback and takes writes \
             addressed to localhost or a loopback address only (a DNS-rebound name is refused)",
            host.unwrap_or("")
        ));
    }
    let origin = origin?;
    let origin_host = origin.split_once("://").map(|(_, h)| h);
    if origin_host.is_none_or(|h| Some(h) != host) {
        return Some(format!(
            "Origin `{origin}` is not this server's own (`http://{}`): writes from a web page of \
             another site are refused; clients that send no Origin (kubectl, kube-rs, curl, \
             Alertmanager) are not affected",
            host.unwrap_or("")
        ));
    }
    None
}

/// `localhost`, a `*.localhost` name, or a loopback address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    // A bare IPv6 address (`::1`) has colons but no port.
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or(v6, |(a, _)| a),
        None => match host.rsplit_once(':') {
            Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
            _ => host,
        },
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_origin_or_a_foreign_host_on_loopback_is_refused() {
        // curl and Alertmanager: no Origin.
        assert_eq!(refusal(true, Some("127.0.0.1:9465"), None), None);
        assert_eq!(refusal(true, Some("localhost:9465"), None), None);
        assert_eq!(refusal(true, Some("[::1]:9465"), None), None);
        assert_eq!(refusal(false, Some("upsoak-agent.upsoak:9465"), None), None);
        // A page of the same origin.
        assert_eq!(
            refusal(true, Some("127.0.0.1:9465"), Some("http://127.0.0.1:9465")),
            None
        );
        // DNS rebinding: a foreign name resolved to loopback.
        let e = refusal(true, Some("evil.example:9465"), None).unwrap();
        assert!(e.contains("`evil.example:9465`"), "{e}");
        assert!(refusal(true, None, None).is_some());
        // CSRF: another page's origin, or an opaque one.
        let e = refusal(false, Some("agent:9465"), Some("https://evil.example")).unwrap();
        assert!(e.contains("Origin `https://evil.example`"), "{e}");
        assert!(refusal(true, Some("127.0.0.1:9465"), Some("null")).is_some());
        assert!(refusal(true, Some("127.0.0.1:9465"), Some("http://127.0.0.1:1")).is_some());
    }
}
