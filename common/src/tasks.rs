//! Supervised tasks: a long-lived task that ends before shutdown (it returned, or it panicked)
//! is never silently absent. [`supervise`] reports it through the caller's event (logged and
//! counted there), fails the process' health with the reason and cancels the shutdown token, so
//! the binary stops and exits with the runtime-failure code.

use std::future::Future;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ops::Health;

/// How a supervised task ended.
pub type Ended = Result<(), String>;

/// Spawns `task` as `name`. When it ends before `shutdown` is cancelled, `died(name, reason)`
/// is called, `health` fails and `shutdown` is cancelled; the handle then yields `Err(reason)`.
/// Ending after shutdown is `Ok` (a panic is an `Err` whenever it happens).
pub fn supervise<F>(
    name: &'static str,
    task: F,
    health: Health,
    shutdown: CancellationToken,
    died: impl FnOnce(&str, &str) + Send + 'static,
) -> JoinHandle<Ended>
where
    F: Future<Output = ()> + Send + 'static,
{
    let inner = tokio::spawn(task);
    tokio::spawn(async move {
        let reason = match inner.await {
            Ok(()) if shutdown.is_cancelled() => return Ok(()),
            Ok(()) => "it stopped before the process did".to_owned(),
            Err(e) if e.is_panic() => format!("it panicked: {}", panic_text(e)),
            Err(e) => format!("it was cancelled: {e}"),
        };
        died(name, &reason);
        health.fail(format!("the {name} task died: {reason}"));
        shutdown.cancel();
        Err(reason)
    })
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn a_task_that_panics_or_returns_early_fails_the_process() {
        let health = Health::new();
        let shutdown = CancellationToken::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let ended = supervise(
            "probe",
            async { panic!("boom") },
            health.clone(),
            shutdown.clone(),
            move |n, r| s.lock().unwrap().push(format!("{n}: {r}")),
        )
        .await
        .unwrap();
        assert_eq!(ended, Err("it panicked: boom".to_owned()));
        assert_eq!(*seen.lock().unwrap(), vec!["probe: it panicked: boom"]);
        assert!(shutdown.is_cancelled());
        assert_eq!(
            health.failure().as_deref(),
            Some("the probe task died: it panicked: boom")
        );
    }

    #[tokio::test]
    async fn a_task_that_ends_on_shutdown_is_fine() {
        let health = Health::new();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let h = supervise(
            "reloader",
            async move { stop.cancelled().await },
            health.clone(),
            shutdown.clone(),
            |_, _| panic!("not a death"),
        );
        shutdown.cancel();
        assert_eq!(h.await.unwrap(), Ok(()));
        assert!(health.is_live());
    }
}
