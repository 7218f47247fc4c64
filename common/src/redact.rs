//! Credentials out of what is logged: a URL may carry a user and password
//! (`http://user:pass@alertmanager:9093`, the only way to authenticate to Alertmanager) or a
//! token in its query, and reqwest's errors print the whole URL (`reqwest` `error.rs`,
//! `impl Display for Error`, which writes ` for url ({url})`). [`urls`] rewrites every URL inside
//! a text (a URL alone, or an error chain that quotes one) so the secret parts read `***`.

/// Query parameters whose value is a secret (compared without case).
const SECRET_PARAMS: [&str; 7] = [
    "token",
    "access_token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
];

/// What is written instead of a secret.
const HIDDEN: &str = "***";

/// `text` with the userinfo (`user:pass@`) of every URL in it, and the values of its secret
/// query parameters ([`SECRET_PARAMS`]), replaced by `***`. Everything else is kept as is.
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The URL runs to the first character no URL has unescaped.
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        out.push_str(&one(url));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// One URL after its `scheme://`.
fn one(url: &str) -> String {
    let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
    let (authority, path) = url.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(HIDDEN);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let Some(q) = path.find('?') else {
        out.push_str(path);
        return out;
    };
    out.push_str(&path[..=q]);
    let query = &path[q + 1..];
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                out.push_str(k);
                out.push('=');
                out.push_str(HIDDEN);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::urls;

    #[test]
    fn the_user_and_password_of_a_url_are_hidden() {
        assert_eq!(
            urls("http://user:pass@alertmanager:9093/api/v2/alerts"),
            "http://***@alertmanager:9093/api/v2/alerts"
        );
        assert_eq!(urls("https://tok@h"), "https://***@h");
        // An `@` in the path is not a user.
        assert_eq!(urls("http://h:1/a@b"), "http://h:1/a@b");
    }

    #[test]
    fn secret_query_values_are_hidden_and_others_kept() {
        assert_eq!(
            urls("http://h/api?Token=abc&x=1&password=p#frag"),
            "http://h/api?Token=***&x=1&password=***#frag"
        );
        assert_eq!(urls("http://h/api?query=up"), "http://h/api?query=up");
    }

    #[test]
    fn every_url_in_an_error_chain_is_rewritten_and_the_text_kept() {
        let e = "alertmanager unreachable: error sending request for url \
                 (http://u:p@am:9093/api/v2/alerts): connection refused; \
                 then `https://a:b@c/x?token=t`";
        assert_eq!(
            urls(e),
            "alertmanager unreachable: error sending request for url \
             (http://***@am:9093/api/v2/alerts): connection refused; \
             then `https://***@c/x?token=***`"
        );
        assert_eq!(urls("no url here"), "no url here");
        assert_eq!(urls("ends with ://"), "ends with ://");
    }
}
