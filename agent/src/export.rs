//! `upsoak-agent export`: a state directory's files as one POSIX (ustar) tar on stdout, so
//! `kubectl exec … -- upsoak-agent export --state-dir DIR > soak.tar` keeps a soak's results
//! from a distroless image that has no `tar` (and so no `kubectl cp`). Any directory works: the
//! agent's (history, baseline, webhook inbox) and the sidecar's (journal) alike.
//!
//! Every regular file below the directory is archived under its relative path, in name order;
//! the lock file and `*.tmp` temporaries (a write in progress, [`upsoak_common::state`]) are
//! skipped, and so is anything that is not a regular file (a symlink, a socket). Each file is
//! read whole before its header is written, so a file that grows meanwhile (an appended
//! journal) is archived as it was when read, never as a header that disagrees with its data.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use upsoak_common::state::LOCK_FILE;

use crate::{Error, Result};

/// Whether a file of this name is left out of an export: the lock, or a temporary.
pub fn skipped(name: &str) -> bool {
    name == LOCK_FILE || name.ends_with(".tmp")
}

/// The regular files below `dir` to export, relative to it, in name order.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(Error::NoDirectory(dir.display().to_string()));
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), &mut out)?;
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let here = root.join(rel);
    let read = |e| Error::Read(here.display().to_string(), e);
    let mut entries = std::fs::read_dir(&here)
        .map_err(read)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let path = rel.join(&name);
        // Not followed: a symlink could lead out of the directory, or in a circle.
        let kind = e
            .file_type()
            .map_err(|err| Error::Read(root.join(&path).display().to_string(), err))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() && !skipped(&name.to_string_lossy()) {
            out.push(path);
        }
    }
    Ok(())
}

/// Writes the files of `dir` ([`files`]) to `out` as a ustar archive; returns what it wrote.
/// A missing directory is [`Error::NoDirectory`]; a file that cannot be read is
/// [`Error::Read`]; `out` refusing bytes is [`Error::Write`] of `to`.
pub fn write_tar<W: Write>(dir: &Path, out: W, to: &str) -> Result<Vec<PathBuf>> {
    let files = files(dir)?;
    let write = |e| Error::Write(to.to_owned(), e);
    let mut tar = tar::Builder::new(out);
    for rel in &files {
        let path = dir.join(rel);
        let read = |e| Error::Read(path.display().to_string(), e);
        // A file renamed away since the listing (a history replaced atomically) is read again
        // under its name: the replacement.
        let data = std::fs::read(&path).map_err(read)?;
        let meta = std::fs::metadata(&path).map_err(read)?;
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(meta.mode() & 0o7777);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        tar.append_data(&mut header, rel, data.as_slice())
            .map_err(write)?;
    }
    tar.into_inner().map_err(write)?.flush().map_err(write)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_and_temporaries_are_skipped() {
        assert!(skipped(".lock"));
        assert!(skipped(".history.json.12.0.tmp"));
        assert!(!skipped("history.json"));
        assert!(!skipped("journal.jsonl"));
    }
}
