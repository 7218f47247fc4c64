//! Validation of names and objects as Kubernetes and Agones check them: Fleets (CRD schema
//! and webhook) and DNS names. Gate names and release versions are `upsoak_agones::release`'s.

use upsoak_agones::Fleet;

use crate::status::{ApiError, Cause};

/// Checks a Fleet the way its CRD schema and Agones' webhook would; 422 with every cause.
pub fn validate_fleet(f: &Fleet, name: &str) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let mut bad = |field: &str, message: String| {
        causes.push(Cause {
            field: field.to_owned(),
            message,
        })
    };
    if !is_dns_subdomain(name) {
        bad(
            "metadata.name",
            format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            ),
        );
    }
    if f.spec.replicas < 0 {
        bad(
            "spec.replicas",
            format!(
                "Invalid value: {}: spec.replicas in body should be greater than or equal to 0",
                f.spec.replicas
            ),
        );
    }
    if let Some(s) = &f.spec.scheduling
        && !matches!(s.as_str(), "Packed" | "Distributed")
    {
        bad(
            "spec.scheduling",
            format!("Unsupported value: \"{s}\": supported values: \"Packed\", \"Distributed\""),
        );
    }
    if let Some(t) = f
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.get("type"))
        .and_then(|t| t.as_str())
        && !matches!(t, "RollingUpdate" | "Recreate")
    {
        bad(
            "spec.strategy.type",
            format!(
                "Unsupported value: \"{t}\": supported values: \"RollingUpdate\", \"Recreate\""
            ),
        );
    }
    let spec = &f.spec.template.spec;
    if let Some(c) = &spec.container
        && !is_dns_label(c)
    {
        bad(
            "spec.template.spec.container",
            format!("Invalid value: \"{c}\": must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        );
    }
    for (i, p) in spec.ports.iter().enumerate() {
        let at = format!("spec.template.spec.ports[{i}]");
        if let Some(pp) = &p.port_policy
            && !matches!(pp.as_str(), "Dynamic" | "Static" | "Passthrough" | "None")
        {
            bad(
                &format!("{at}.portPolicy"),
                format!(
                    "Unsupported value: \"{pp}\": supported values: \"Dynamic\", \"Static\", \"Passthrough\", \"None\""
                ),
            );
        }
        if let Some(pr) = &p.protocol
            && !matches!(pr.as_str(), "UDP" | "TCP" | "TCPUDP")
        {
            bad(
                &format!("{at}.protocol"),
                format!(
                    "Unsupported value: \"{pr}\": supported values: \"UDP\", \"TCP\", \"TCPUDP\""
                ),
            );
        }
        for (field, v) in [
            ("containerPort", p.container_port),
            ("hostPort", p.host_port),
        ] {
            if let Some(v) = v
                && !(1..=65535).contains(&v)
            {
                bad(
                    &format!("{at}.{field}"),
                    format!("Invalid value: {v}: must be between 1 and 65535, inclusive"),
                );
            }
        }
        if p.port_policy.as_deref() == Some("Static") && p.host_port.is_none() {
            bad(
                &format!("{at}.hostPort"),
                "Required value: hostPort is required with portPolicy Static".to_owned(),
            );
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("fleets", name, causes))
    }
}

/// RFC 1123 subdomain: what Kubernetes accepts as an object name.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// RFC 1123 label: what Kubernetes accepts as a namespace or a Fleet name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
