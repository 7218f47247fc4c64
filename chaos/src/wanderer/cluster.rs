//! The cluster's Kubernetes version (`GET /version`), as the sidecar checks it against each
//! release's supported range: at start, before each transition, and in `preflight`.

/// The cluster's `(major, minor)` from `/version`, or why it cannot be read. GKE and EKS report
/// minors like `34+`: the digits count.
pub async fn kubernetes_version(client: &kube::Client) -> Result<(u32, u32), String> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| format!("GET /version: {e}"))?;
    parse(&info.major, &info.minor)
}

/// `major` and `minor` as `/version` reports them, as numbers.
pub fn parse(major: &str, minor: &str) -> Result<(u32, u32), String> {
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    match (major.parse::<u32>(), digits.parse::<u32>()) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(format!("unexpected /version {major}.{minor}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_clusters_minor_suffixes_are_read() {
        assert_eq!(parse("1", "34"), Ok((1, 34)));
        assert_eq!(parse("1", "35+"), Ok((1, 35)));
        assert_eq!(parse("1", "x"), Err("unexpected /version 1.x".to_owned()));
    }
}
