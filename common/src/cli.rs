//! How the binaries fail: a [`CliError`] carries the exit code it means, a headline, the error
//! that caused it and a hint; [`print_error`] writes it as cargo-nextest does:
//!
//! ```text
//! error: cannot listen on `127.0.0.1:80`
//!   caused by: Permission denied (os error 13)
//! hint: pick a port above 1024, or 0 for any free port
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::io::Write;

use crate::exit;
use crate::problems::Invalid;

/// The cause of a [`CliError`], any error that can cross threads.
pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// An error with the exit code it means.
#[derive(Debug)]
pub struct CliError {
    /// The process' exit code, one of [`crate::exit`].
    pub code: u8,
    /// The headline: what could not be done, with names in backticks. It may span lines (a
    /// list of problems).
    pub message: String,
    /// Why: its `source()` chain is printed as `caused by:` lines.
    pub source: Option<Cause>,
    /// What the user can do about it.
    pub hint: Option<String>,
}

impl CliError {
    /// An error with exit `code` and `message` as the headline.
    pub fn new(code: u8, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            source: None,
            hint: None,
        }
    }

    /// Bad input ([`exit::BAD_INPUT`]): an invalid file, flag or configuration.
    pub fn bad_input(message: impl Into<String>) -> CliError {
        CliError::new(exit::BAD_INPUT, message)
    }

    /// A runtime failure ([`exit::RUNTIME_FAILURE`]): the tool could not do its job.
    pub fn runtime(message: impl Into<String>) -> CliError {
        CliError::new(exit::RUNTIME_FAILURE, message)
    }

    /// The error this one was caused by.
    pub fn with_source(mut self, source: impl Into<Cause>) -> CliError {
        self.source = Some(source.into());
        self
    }

    /// What the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for CliError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// An input with problems is bad input; the problems are the headline.
impl From<Invalid> for CliError {
    fn from(e: Invalid) -> CliError {
        CliError::bad_input(e.to_string())
    }
}

/// The headline with its first letter lowercased, unless the first word is an acronym or a
/// name (`SLO`, `YAML`): the second letter tells.
fn lowercase_headline(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(first), second)
            if first.is_uppercase() && second.is_none_or(|c| !c.is_uppercase()) =>
        {
            first.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s.to_owned(),
    }
}

/// The text [`print_error`] writes: `error: <headline>`, a `  caused by: <error>` line for each
/// error of the `source()` chain, and `hint: <hint>` when there is one; ends with a newline.
///
/// A cause whose text the line above already ends with is skipped: errors that put their
/// source's message into their own would otherwise print it twice.
pub fn render(e: &CliError) -> String {
    let mut out = format!("error: {}\n", lowercase_headline(&e.message));
    let mut last = e.message.clone();
    let mut cause = StdError::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !last.ends_with(&text) {
            out.push_str(&format!("  caused by: {text}\n"));
        }
        last = text;
        cause = c.source();
    }
    if let Some(hint) = &e.hint {
        out.push_str(&format!("hint: {hint}\n"));
    }
    out
}

/// Writes `e` to stderr as [`render`] formats it, credentials in URLs hidden
/// ([`crate::redact::urls`]).
pub fn print_error(e: &CliError) {
    let text = crate::redact::urls(&render(e));
    // Nothing is left to tell the user if stderr itself is gone.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<std::io::Error>);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_ref().map(|e| e as &(dyn StdError + 'static))
        }
    }

    #[test]
    fn prints_headline_every_cause_and_the_hint() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = CliError::runtime("Cannot listen on `127.0.0.1:80`")
            .with_source(Wrapped("bind failed", Some(io)))
            .with_hint("pick a port above 1024, or 0 for any free port");
        assert_eq!(e.code, exit::RUNTIME_FAILURE);
        assert_eq!(
            render(&e),
            "error: cannot listen on `127.0.0.1:80`\n  \
             caused by: bind failed\n  \
             caused by: permission denied\n\
             hint: pick a port above 1024, or 0 for any free port\n"
        );
    }

    #[test]
    fn a_bare_error_is_one_line() {
        let e = CliError::bad_input("--step must be above zero");
        assert_eq!(e.code, exit::BAD_INPUT);
        assert_eq!(render(&e), "error: --step must be above zero\n");
    }

    #[test]
    fn acronyms_keep_their_case() {
        assert_eq!(lowercase_headline("SLO specs are bad"), "SLO specs are bad");
        assert_eq!(lowercase_headline("Cannot read"), "cannot read");
        assert_eq!(lowercase_headline("A"), "a");
        assert_eq!(lowercase_headline(""), "");
        assert_eq!(lowercase_headline("`x` is bad"), "`x` is bad");
    }

    #[test]
    fn a_cause_already_in_the_line_above_is_not_repeated() {
        let io = std::io::Error::other("disk full");
        let e = CliError::runtime("cannot write `journal`: disk full").with_source(io);
        assert_eq!(render(&e), "error: cannot write `journal`: disk full\n");
    }

    #[test]
    fn invalid_input_is_bad_input_with_every_problem() {
        let mut p = crate::problems::Problems::new();
        p.push("hops", "missing");
        let e = CliError::from(p.invalid("configuration space", "s.yaml"));
        assert_eq!(e.code, exit::BAD_INPUT);
        assert_eq!(
            render(&e),
            "error: invalid configuration space `s.yaml` (1 problem):\n  hops: missing\n"
        );
    }

    #[test]
    fn source_is_the_std_error_source() {
        let e = CliError::runtime("x").with_source(std::io::Error::other("y"));
        assert_eq!(
            StdError::source(&e).map(|s| s.to_string()),
            Some("y".into())
        );
    }
}
