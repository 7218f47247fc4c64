//! State directories: one writer per directory ([`StateLock`], an exclusive `flock` on
//! `DIR/.lock` holding the owner's pid) and crash-safe file replacement ([`write_atomic`]: a
//! temporary file unique to the process, fsynced, renamed over the target, then the directory
//! fsynced so the rename itself survives a power loss).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Name of the lock file inside a state directory.
pub const LOCK_FILE: &str = ".lock";

/// Why a state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "the state directory `{dir}` is in use by {holder} (lock file `{lock}`): run one process per state directory"
    )]
    Held {
        dir: PathBuf,
        lock: PathBuf,
        /// `pid N`, or `another process` when the file does not say.
        holder: String,
    },
    /// The lock file cannot be opened, locked or written.
    #[error("cannot lock the state directory with `{0}`")]
    Io(PathBuf, #[source] std::io::Error),
}

/// An exclusive lock on a state directory, held until dropped (or the process ends: the kernel
/// releases it, so a crash never leaves a stale lock).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Locks `dir` (which must exist) for this process, writing its pid in the lock file.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |e| LockError::Io(path.clone(), e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "another process".to_owned(),
                };
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_data().map_err(io)?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Fsyncs the directory `dir`, so the entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically and durably: written to a temporary file unique to
/// this process and call (two writers never share one), fsynced, renamed over `path`, and the
/// directory fsynced. On failure the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent_of(path).join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("upsoak-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let d = dir("lock");
        let held = StateLock::acquire(&d).unwrap();
        // flock locks belong to the open file: a second open in this process is refused too.
        let e = StateLock::acquire(&d).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains(&format!("in use by pid {}", std::process::id()))
                && shown.contains(".lock"),
            "{shown}"
        );
        drop(held);
        assert!(StateLock::acquire(&d).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
        let d = dir("atomic");
        let p = d.join("history.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["history.json".to_owned()]);
        // A write that cannot happen leaves the old file whole.
        assert!(write_atomic(&d.join("missing").join("x"), b"three").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
