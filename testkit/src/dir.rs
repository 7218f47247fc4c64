//! Scratch directories for tests, removed when dropped.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Set to keep every test's directory (its path is printed on drop), e.g. to read an
/// end-to-end run's logs after a failure.
pub const KEEP_ENV: &str = "KEEP_E2E_DIRS";

/// A fresh directory under the system's temporary directory, removed with its contents on
/// drop (unless [`KEEP_ENV`] is set). Derefs to its [`Path`].
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// `upsoak-<tag>-<pid>-<n>-<nanos>`: unique within the process and across runs.
    ///
    /// Panics when the directory cannot be created: the test cannot run without it.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let p = std::env::temp_dir().join(format!(
            "upsoak-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) = std::fs::create_dir_all(&p) {
            panic!("cannot create {}: {e}", p.display());
        }
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    ///
    /// Panics when the file cannot be written.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Err(e) = std::fs::write(&p, text) {
            panic!("cannot write {}: {e}", p.display());
        }
        p
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("kept {}", self.0.display());
        } else {
            // Best effort: a directory left behind in /tmp is not a test failure.
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_fresh_unique_and_removed_on_drop() {
        let a = TempDir::new("kit");
        let b = TempDir::new("kit");
        assert_ne!(a.path(), b.path());
        let f = a.write("x.txt", "hello");
        assert_eq!(std::fs::read_to_string(&f).ok().as_deref(), Some("hello"));
        assert_eq!(f, a.join("x.txt"));
        let p = a.path().to_owned();
        drop(a);
        if std::env::var_os(KEEP_ENV).is_none() {
            assert!(!p.exists(), "{} still exists", p.display());
        }
    }
}
