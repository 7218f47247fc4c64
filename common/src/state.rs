//! State directories: one writer per directory ([`StateLock`], an exclusive `flock` on
//! `DIR/.lock` holding the owner's pid) and crash-safe file replacement ([`write_atomic`]: a
//! temporary file unique to the process, fsynced, renamed over the target, then the directory
//! fsynced so the rename itself survives a power loss). A process killed during a write leaves
//! its temporary file behind; the next one to lock the directory removes the temporaries of
//! processes that are gone ([`StateLock::stale_removed`]).

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
    stale: Vec<PathBuf>,
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
        // Holding the lock, no other writer of this directory runs: a temporary of a process
        // that is gone is what a kill during a write left, and nothing will ever rename it.
        let stale = remove_stale_temporaries(dir);
        Ok(StateLock {
            _file: file,
            path,
            stale,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary files of dead processes removed when the lock was taken (for a log line).
    pub fn stale_removed(&self) -> &[PathBuf] {
        &self.stale
    }
}

/// The pid in the name of a temporary file [`write_atomic`] makes (`.NAME.PID.SEQ.tmp`).
fn temporary_pid(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = rest.rsplitn(3, '.');
    let _seq: u64 = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next().filter(|name| !name.is_empty())?;
    Some(pid)
}

/// True while a process with this pid runs (Linux: `/proc/PID` exists). Elsewhere every
/// other pid counts as running, so nothing is removed that could still be written.
fn is_running(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the temporary files of [`write_atomic`] in `dir` left by processes that no longer run;
/// returns those removed. Best effort: an entry that cannot be read or removed is left alone.
fn remove_stale_temporaries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temporary_pid(&name.to_string_lossy()) else {
            continue;
        };
        if pid == me || is_running(pid) {
            continue;
        }
        let path = entry.path();
        if std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        let _ = sync_dir(dir);
    }
    removed
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
    fn the_temporaries_of_dead_processes_are_removed_when_the_lock_is_taken() {
        let d = dir("stale");
        // A pid above Linux's pid_max (4194304) never runs.
        let dead = d.join(".history.json.4294967295.0.tmp");
        let live = d.join(format!(".history.json.{}.7.tmp", std::process::id()));
        let other = d.join(".history.json.notapid.0.tmp");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        let lock = StateLock::acquire(&d).unwrap();
        assert_eq!(lock.stale_removed(), std::slice::from_ref(&dead));
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        drop(lock);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_names_the_atomic_writer_makes_are_temporaries() {
        assert_eq!(temporary_pid(".history.json.6482.0.tmp"), Some(6482));
        assert_eq!(temporary_pid(".inbox.json.12.345.tmp"), Some(12));
        assert_eq!(temporary_pid("history.json.6482.0.tmp"), None);
        assert_eq!(temporary_pid(".6482.0.tmp"), None);
        assert_eq!(temporary_pid(".x.6482.tmp"), None);
        assert_eq!(temporary_pid(".x.a.0.tmp"), None);
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
