//! Running an external command (helm) in a process group of its own, under a deadline: past
//! it, the whole group gets SIGTERM, then SIGKILL after a grace, so nothing it started keeps
//! running after the Wanderer gave up on it. A run dropped before it finished (its caller timed
//! out) stops the group the same way.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::io::AsyncReadExt;

use super::ApplyError;

/// How a command ended within its deadline.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: std::process::ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// A process group stopped when dropped armed: TERM now, KILL after `grace` from a thread.
struct Group {
    pgid: Option<Pid>,
    grace: Duration,
}

impl Group {
    fn exists(&self) -> bool {
        self.pgid
            .is_some_and(|p| test_kill_process_group(p).is_ok())
    }
    fn signal(&self, sig: Signal) {
        if let Some(p) = self.pgid {
            // ESRCH: the group is already gone, which is what was wanted.
            let _ = kill_process_group(p, sig);
        }
    }
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.exists() {
            return;
        }
        self.signal(Signal::TERM);
        let (pgid, grace) = (self.pgid, self.grace);
        std::thread::spawn(move || {
            std::thread::sleep(grace);
            if let Some(p) = pgid
                && live_members(p)
            {
                let _ = kill_process_group(p, Signal::KILL);
            }
        });
    }
}

/// Whether group `pgid` has a member that is not a zombie: from `/proc` (field 5 of
/// `/proc/PID/stat` is the group, field 3 the state); where `/proc` cannot be read, whether
/// `kill(-pgid, 0)` finds any member.
pub fn live_members(pgid: Pid) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return test_kill_process_group(pgid).is_ok();
    };
    let want = pgid.as_raw_nonzero().get().to_string();
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // After the command name, which may hold spaces: `) STATE PPID PGRP …`.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1);
        state != Some("Z") && pgrp == Some(want.as_str())
    })
}

/// Runs `program args` in a new process group. Past `deadline` the group gets SIGTERM; a
/// group still alive `grace` later gets SIGKILL; then [`ApplyError::Killed`]. `what` names the
/// command in errors.
pub async fn run(
    program: &Path,
    args: &[String],
    what: &str,
    deadline: Duration,
    grace: Duration,
) -> Result<Finished, ApplyError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, led by the child: one signal reaches everything it starts.
        .process_group(0)
        .spawn()
        .map_err(|e| ApplyError::Spawn(program.display().to_string(), e))?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let mut group = Group { pgid: pid, grace };
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read_out = tokio::spawn(async move {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s).await;
        }
        s
    });
    let read_err = tokio::spawn(async move {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s).await;
        }
        s
    });
    let status = match tokio::time::timeout(deadline, child.wait()).await {
        Ok(status) => status.map_err(|e| ApplyError::Spawn(what.to_owned(), e))?,
        Err(_) => {
            group.signal(Signal::TERM);
            let mut last = "TERM";
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                group.signal(Signal::KILL);
                last = "KILL";
                let _ = child.wait().await;
            }
            // The leader is gone; members that outlived TERM (it may have ignored it and left
            // them) get KILL too once the grace is over.
            if group.exists() {
                tokio::time::sleep(grace).await;
                if group.exists() {
                    group.signal(Signal::KILL);
                    last = "KILL";
                }
            }
            let pgid = child.id().unwrap_or_default();
            group.disarm();
            read_out.abort();
            read_err.abort();
            return Err(ApplyError::Killed {
                command: what.to_owned(),
                after: deadline,
                pgid: pid.map_or(pgid, |p| p.as_raw_nonzero().get().unsigned_abs()),
                signal: last,
            });
        }
    };
    group.disarm();
    // A member that outlives the leader may hold the pipes open: read what came within the grace.
    let stdout = tokio::time::timeout(grace, read_out)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let stderr = tokio::time::timeout(grace, read_err)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(Finished {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> (std::path::PathBuf, Vec<String>) {
        ("/bin/sh".into(), vec!["-c".into(), script.into()])
    }

    #[tokio::test]
    async fn a_command_within_its_deadline_returns_its_output() {
        let (p, a) = sh("echo out; echo err >&2; exit 3");
        let f = run(
            &p,
            &a,
            "sh",
            Duration::from_secs(10),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(f.status.code(), Some(3));
        assert_eq!((f.stdout.as_str(), f.stderr.as_str()), ("out\n", "err\n"));
    }

    #[tokio::test]
    async fn past_its_deadline_the_group_gets_term_then_kill() {
        // Ignores TERM, and starts a child that would outlive it.
        let (p, a) = sh("trap '' TERM; sleep 600 & wait");
        let e = run(
            &p,
            &a,
            "sh",
            Duration::from_millis(300),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        let ApplyError::Killed { signal, pgid, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(signal, "KILL");
        let group = Pid::from_raw(i32::try_from(pgid).unwrap()).unwrap();
        assert!(!live_members(group), "the group is gone");
        // One that stops on TERM needs no KILL.
        let (p, a) = sh("sleep 600");
        let e = run(
            &p,
            &a,
            "sh",
            Duration::from_millis(200),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, ApplyError::Killed { signal: "TERM", .. }),
            "{e}"
        );
    }
}
