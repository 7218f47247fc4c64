//! Every problem of an input with its path: what validation collects instead of stopping at the
//! first error (`groups[1].slos[3].expr: …`), and the error a loader returns for a whole file.
//!
//! - [`Problem`]: one path and one message, shown as `path: message` (just the message when the
//!   path is empty, e.g. `cannot read: …`).
//! - [`Problems`]: the list, shown one per line; validation functions return it and callers
//!   fold it in under their own path with [`Problems::extend_under`].
//! - [`Invalid`]: a file's problems under a headline, `invalid <what> `<source>` (N problems):`
//!   with each problem on its own indented line.

use std::fmt;

/// One problem, at a path such as `groups[1].slos[3].expr` (or a file position `f.yaml:3:7`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where; empty when the problem is about the input as a whole.
    pub path: String,
    /// What is wrong, starting lowercase.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Joins a path prefix and a path below it: `a` + `b` is `a.b`, `a` + `[0]` is `a[0]`; an empty
/// side (or serde_path_to_error's `.` for "here") leaves the other.
pub fn join_path(prefix: &str, path: &str) -> String {
    match (prefix, path) {
        ("", p) => p.to_owned(),
        (pre, "" | ".") => pre.to_owned(),
        (pre, p) if p.starts_with('[') => format!("{pre}{p}"),
        (pre, p) => format!("{pre}.{p}"),
    }
}

/// Every problem found, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// No problems yet.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records a problem about the input as a whole (no path).
    pub fn push_message(&mut self, message: impl Into<String>) {
        self.push(String::new(), message);
    }

    /// Takes every problem of `other`, each path put below `prefix` (see [`join_path`]).
    pub fn extend_under(&mut self, prefix: &str, other: Problems) {
        self.0.extend(other.0.into_iter().map(|p| Problem {
            path: join_path(prefix, &p.path),
            message: p.message,
        }));
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems in the order found.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// True when some problem's path is `path` or lies below it (`hops` covers `hops.max_up`
    /// and `hops[0]`), so a check can avoid repeating what a parse already reported.
    pub fn any_under(&self, path: &str) -> bool {
        self.0.iter().any(|p| {
            p.path
                .strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// `Ok(value)` when there are no problems, the problems otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// These problems as a file's error: `invalid <what> `<source>` (N problems):`.
    pub fn invalid(self, what: impl Into<String>, source: impl Into<String>) -> Invalid {
        Invalid {
            what: what.into(),
            source_name: source.into(),
            problems: self,
        }
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(v: Vec<Problem>) -> Problems {
        Problems(v)
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Problems {
        Problems(vec![p])
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl FromIterator<Problem> for Problems {
    fn from_iter<I: IntoIterator<Item = Problem>>(iter: I) -> Problems {
        Problems(iter.into_iter().collect())
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One problem per line, no trailing newline.
impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A whole input's problems, as a loader returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What the input is: `configuration`, `configuration space`, `SLO specs`.
    pub what: String,
    /// Which input: a path or a name such as `<built-in default>`.
    pub source_name: String,
    pub problems: Problems,
}

impl Invalid {
    /// An input that could not be used for one reason without a path (e.g. `cannot read: …`).
    pub fn single(
        what: impl Into<String>,
        source: impl Into<String>,
        message: impl Into<String>,
    ) -> Invalid {
        let mut p = Problems::new();
        p.push_message(message);
        p.invalid(what, source)
    }
}

/// `invalid <what> `<source>` (N problem[s]):`, then each problem on a line indented by two
/// spaces; no trailing newline.
impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid {} `{}` ({n} problem{}):",
            self.what,
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_shows_its_path_unless_it_has_none() {
        let mut p = Problems::new();
        p.push("versions[0].version", "`x` is not MAJOR.MINOR.PATCH");
        p.push_message("cannot read: No such file or directory (os error 2)");
        assert_eq!(
            p.to_string(),
            "versions[0].version: `x` is not MAJOR.MINOR.PATCH\n\
             cannot read: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn paths_join_as_the_loaders_write_them() {
        assert_eq!(join_path("initial", "version"), "initial.version");
        assert_eq!(
            join_path("initial", "featureGates.X"),
            "initial.featureGates.X"
        );
        assert_eq!(join_path("versions", "[2]"), "versions[2]");
        assert_eq!(join_path("hops", "."), "hops");
        assert_eq!(join_path("hops", ""), "hops");
        assert_eq!(join_path("", "a.b"), "a.b");
    }

    #[test]
    fn extend_under_prefixes_every_path() {
        let mut install = Problems::new();
        install.push("version", "unknown version `9.9.9` (known: 1.60.0)");
        install.push("tunables.t", "unknown tunable");
        let mut all = Problems::new();
        all.push("namespace", "`X` is not a DNS label");
        all.extend_under("initial", install);
        let paths: Vec<&str> = all.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["namespace", "initial.version", "initial.tunables.t"]
        );
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn any_under_matches_whole_segments_only() {
        let mut p = Problems::new();
        p.push("hops.max_up", "invalid type");
        assert!(p.any_under("hops"));
        assert!(p.any_under("hops.max_up"));
        assert!(!p.any_under("hop"));
        assert!(!p.any_under("versions"));
    }

    #[test]
    fn into_result_is_ok_only_without_problems() {
        assert_eq!(Problems::new().into_result(7), Ok(7));
        let mut p = Problems::new();
        p.push("a", "b");
        assert_eq!(p.clone().into_result(7), Err(p));
    }

    // The three headlines the loaders print today, word for word.
    #[test]
    fn invalid_keeps_the_loaders_headlines() {
        let mut p = Problems::new();
        p.push("lifecycle.tick", "must be above zero");
        assert_eq!(
            p.clone().invalid("configuration", "sim.yaml").to_string(),
            "invalid configuration `sim.yaml` (1 problem):\n  lifecycle.tick: must be above zero"
        );
        p.push("hops", "missing (`{max_up, max_down, allow_downgrade}`)");
        assert_eq!(
            p.clone()
                .invalid("configuration space", "space.yaml")
                .to_string(),
            "invalid configuration space `space.yaml` (2 problems):\n  \
             lifecycle.tick: must be above zero\n  \
             hops: missing (`{max_up, max_down, allow_downgrade}`)"
        );
        let read = Invalid::single("SLO specs", "slos.yaml", "cannot read: gone");
        assert_eq!(
            read.to_string(),
            "invalid SLO specs `slos.yaml` (1 problem):\n  cannot read: gone"
        );
        let e: &dyn std::error::Error = &read;
        assert!(e.source().is_none());
    }
}
