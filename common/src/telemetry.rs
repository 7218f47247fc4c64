//! Tracing set-up shared by the binaries: lines on stderr, human-readable or one JSON object
//! each (`--log-format`), colours only when stderr is a terminal, `RUST_LOG` filters.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only on a terminal (and not with `NO_COLOR`).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, span context), for log
    /// collectors.
    Json,
}

/// The logging flags every binary takes (`#[command(flatten)]`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LogArgs {
    /// How log lines on stderr are written: `text` (coloured only on a terminal) or `json` (one
    /// object per line). `RUST_LOG` filters either.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "UPSOAK_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Whether text lines carry colour codes: only on a terminal, and never with `NO_COLOR` set
/// (<https://no-color.org>), so files, pipes and `kubectl logs` get plain text.
pub fn colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second call (tests starting several servers in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(colours(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("".into())));
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
    }
}
