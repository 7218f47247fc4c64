//! The webhook's credentials: a bearer token and/or a `user:password` pair, read from files, in
//! the forms Alertmanager's webhook `http_config` sends (`authorization: {credentials_file}`
//! gives `Authorization: Bearer <token>`, `basic_auth: {username, password_file}` gives
//! `Authorization: Basic <base64(user:password)>`). Compared in constant time.

use std::path::{Path, PathBuf};

use axum::http::HeaderValue;

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read {flag} `{path}`")]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} `{path}` is empty")]
    Empty { flag: &'static str, path: PathBuf },
    #[error(
        "{flag} `{path}` still holds the placeholder token; put a random one in Secret upsoak-agent-webhook (`openssl rand -hex 32 > deploy/components/webhook-token/webhook.token`, README's deploy checklist)"
    )]
    Placeholder { flag: &'static str, path: PathBuf },
    #[error(
        "{flag} `{path}` is not `user:password` (one line, a non-empty user and password around the first `:`)"
    )]
    NotUserPassword { flag: &'static str, path: PathBuf },
}

/// The `Authorization` header values the webhook accepts.
#[derive(Debug)]
pub struct WebhookAuth {
    accepted: Vec<(&'static str, Vec<u8>)>,
}

/// The token the shipped Secret holds until the user makes one: refused, never accepted.
pub const PLACEHOLDER: &str = "REPLACE-WITH-A-RANDOM-TOKEN";

const TOKEN_FLAG: &str = "--webhook-token-file";
const BASIC_FLAG: &str = "--webhook-basic-auth-file";

/// The file's text without its trailing newline (a Secret written by `echo` has one).
fn read(flag: &'static str, path: &Path) -> Result<String, AuthFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
        flag,
        path: path.to_owned(),
        source,
    })?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        return Err(AuthFileError::Empty {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(text)
}

impl WebhookAuth {
    /// The credentials of the files given; `None` when neither is (the webhook is open).
    pub fn from_files(
        token: Option<&Path>,
        basic: Option<&Path>,
    ) -> Result<Option<WebhookAuth>, AuthFileError> {
        let mut accepted = Vec::new();
        if let Some(p) = token {
            let t = read(TOKEN_FLAG, p)?;
            if t.trim() == PLACEHOLDER {
                return Err(AuthFileError::Placeholder {
                    flag: TOKEN_FLAG,
                    path: p.to_owned(),
                });
            }
            accepted.push(("Bearer", format!("Bearer {}", t.trim()).into_bytes()));
        }
        if let Some(p) = basic {
            let t = read(BASIC_FLAG, p)?;
            match t.split_once(':') {
                Some((u, pw)) if !u.is_empty() && !pw.is_empty() && !t.contains('\n') => accepted
                    .push((
                        "Basic",
                        format!("Basic {}", base64(t.as_bytes())).into_bytes(),
                    )),
                _ => {
                    return Err(AuthFileError::NotUserPassword {
                        flag: BASIC_FLAG,
                        path: p.to_owned(),
                    });
                }
            }
        }
        Ok((!accepted.is_empty()).then_some(WebhookAuth { accepted }))
    }

    /// True when `header` (the request's `Authorization`) is one of the accepted values. Every
    /// accepted value is compared in full, whatever matched, so the time does not tell which.
    pub fn allows(&self, header: Option<&HeaderValue>) -> bool {
        let got = header.map(HeaderValue::as_bytes).unwrap_or_default();
        self.accepted
            .iter()
            .fold(false, |ok, (_, want)| ok | constant_time_eq(got, want))
    }

    /// The `WWW-Authenticate` challenges of a 401: one per accepted scheme.
    pub fn challenges(&self) -> impl Iterator<Item = HeaderValue> + '_ {
        self.accepted.iter().map(|(scheme, _)| {
            HeaderValue::from_static(match *scheme {
                "Basic" => "Basic realm=\"upsoak-agent\"",
                _ => "Bearer realm=\"upsoak-agent\"",
            })
        })
    }
}

/// Equality whose time depends only on the lengths, never on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..n {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Standard base64 with padding (RFC 4648 §4), as Go's `SetBasicAuth` sends it.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
