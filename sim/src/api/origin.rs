//! Host and Origin of a write (M9): loopback is no boundary against a browser. A page on any
//! site can send a write to `127.0.0.1` (cross-site request forgery), and through DNS rebinding
//! (its own name re-pointed at 127.0.0.1) even as a same-origin request. kubectl, kube-rs, the
//! Python client and curl send no `Origin`, and a loopback `Host` when they talk to a loopback
//! address, so they pass; a browser always names the page's origin on a cross-site write and
//! the name it resolved in `Host`.
//!
//! The API server has no such check (it needs credentials instead, which a browser does not
//! hold); the simulator has no authentication, so it checks where a write comes from.

use std::net::SocketAddr;

use axum::http::Method;

use crate::status::ApiError;

/// Whether `method` changes state: only these are checked.
pub fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Checks a write's `Host` and `Origin` headers (`None` when absent) against the address the
/// simulator listens on, by the rule every upsoak server follows
/// ([`upsoak_common::server::origin::refusal`]): on loopback, `Host` must name loopback
/// (`localhost`, `*.localhost`, `127.0.0.0/8`, `::1`), so a rebound name is refused; `Origin`,
/// when present, must be the origin the request was addressed to. The refusal is a Status.
pub fn check(listen: SocketAddr, host: Option<&str>, origin: Option<&str>) -> Result<(), ApiError> {
    match upsoak_common::server::origin::refusal(listen.ip().is_loopback(), host, origin) {
        Some(why) => Err(ApiError::forbidden(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn clients_without_origin_and_with_a_loopback_host_pass() {
        for host in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "sim.localhost:8080",
            "127.1.2.3:9",
            "[::1]:8080",
            "::1",
        ] {
            assert_eq!(check(lo(), Some(host), None), Ok(()), "{host}");
        }
        // A browser always names the host it dialled; a write without one is not taken.
        assert!(check(lo(), None, None).is_err());
        // Its own origin, as a page it served would send.
        assert_eq!(
            check(lo(), Some("127.0.0.1:8080"), Some("http://127.0.0.1:8080")),
            Ok(())
        );
    }

    #[test]
    fn a_foreign_origin_and_a_rebound_host_are_refused() {
        let e = check(lo(), Some("127.0.0.1:8080"), Some("http://evil.example")).unwrap_err();
        assert_eq!((e.code, e.reason), (403, "Forbidden"));
        assert!(
            e.message.contains("Origin `http://evil.example`"),
            "{}",
            e.message
        );
        assert!(check(lo(), Some("127.0.0.1:8080"), Some("null")).is_err());
        // Same host, other port: another origin.
        assert!(check(lo(), Some("127.0.0.1:8080"), Some("http://127.0.0.1:9090")).is_err());
        let e = check(lo(), Some("evil.example:8080"), None).unwrap_err();
        assert!(
            e.message.contains("Host `evil.example:8080`"),
            "{}",
            e.message
        );
        // A rebinding page is same-origin to itself, and still refused by its Host.
        assert!(
            check(
                lo(),
                Some("evil.example:8080"),
                Some("http://evil.example:8080")
            )
            .is_err()
        );
        assert!(check(lo(), Some("localhost.evil.example"), None).is_err());
        assert!(check(lo(), Some("10.0.0.1:8080"), None).is_err());
    }

    #[test]
    fn off_loopback_any_host_passes_but_origin_is_still_checked() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(check(any, Some("sim.default.svc:8080"), None), Ok(()));
        assert_eq!(
            check(any, Some("sim:8080"), Some("https://sim:8080")),
            Ok(())
        );
        assert!(check(any, Some("sim:8080"), Some("http://evil.example")).is_err());
    }
}
