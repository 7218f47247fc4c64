//! The loop's own runtime: a wall clock set back does not stall it, and a history that cannot
//! be written is kept, counted, shown on `/healthz` and written once it can be.

use super::*;

#[tokio::test]
async fn a_clock_set_back_replans_the_slots_instead_of_waiting_the_step_out() {
    let dir = StateDir::new("clock-back");
    let stop = CancellationToken::new();
    // At 10 s the wall clock is set back by an hour.
    let clock = ScriptClock::new(20, &stop).at(10_000, Step::SetBackTo(T0 - 3_600_000));
    let q = FakePrometheus::on(&clock)
        .with("up_a", -4_000, 1.0)
        .with("up_b", -4_000, 1.0)
        .wanderer(-4_000, 1, "1.58.0");
    let cfg = config(TWO_GROUPS, &dir.0);
    let metrics = AgentMetrics::default();
    let ready = Health::new();
    let outputs = Outputs {
        metrics: &metrics,
        ready: &ready,
    };
    // The script ends 20 s after the start: an hour and 10 s of slots after the step.
    let _ = tokio::time::timeout(
        Duration::from_secs(60),
        run(cfg, &q, &clock, outputs, &stop),
    )
    .await
    .expect("the loop ended");
    let shown = crate::events::encoded(|r| metrics.register(r));
    assert_eq!(
        sample(&shown, "upsoak_agent_clock_steps_back_total"),
        Some(1.0),
        "{shown}"
    );
    // Never a wait longer than the fast group's interval: without re-planning the loop would
    // wait an hour for the slot it had planned before the step.
    assert!(
        clock.longest_wait.get() <= 1_000,
        "waited {} ms at once",
        clock.longest_wait.get()
    );
    let fast = sample(&shown, "upsoak_agent_evaluations_total{group=\"fast\"}").unwrap();
    assert!(fast > 3_600.0, "fast evaluated {fast} times");
}

#[tokio::test]
async fn a_history_that_cannot_be_written_is_kept_shown_and_written_once_it_can() {
    let dir = StateDir::new("full-disk");
    let stop = CancellationToken::new();
    let ready = Health::new();
    let (during, after) = (ready.clone(), ready.clone());
    let blocker = dir.0.join("history.json");
    let (block, unblock) = (blocker.clone(), blocker.clone());
    // From 1 s the history file's name is taken by a non-empty directory, so every write
    // (rename over it) fails as on a full or read-only disk; at 30 s it is free again.
    let clock = ScriptClock::new(60, &stop)
        .at(
            1_000,
            Step::Do(Box::new(move || {
                let _ = std::fs::remove_file(&block);
                std::fs::create_dir_all(block.join("in-the-way")).unwrap();
            })),
        )
        .at(
            25_000,
            Step::Do(Box::new(move || {
                let shown = during.warnings().join("\n");
                assert!(
                    shown.contains("cannot write") && shown.contains("history.json"),
                    "{shown}"
                );
                assert!(during.is_live(), "a failed write is a warning, not a death");
            })),
        )
        .at(
            30_000,
            Step::Do(Box::new(move || {
                std::fs::remove_dir_all(&unblock).unwrap();
            })),
        )
        .at(
            59_000,
            Step::Do(Box::new(move || {
                assert!(after.warnings().is_empty(), "{:?}", after.warnings());
            })),
        );
    let q = FakePrometheus::on(&clock)
        .wanderer(0, 1, "1.58.0")
        .wanderer(5, 2, "1.59.0")
        .with("lat", 0, 0.1);
    let cfg = config(LATENCY, &dir.0);
    let metrics = AgentMetrics::default();
    let outputs = Outputs {
        metrics: &metrics,
        ready: &ready,
    };
    let h = run(cfg, &q, &clock, outputs, &stop).await.unwrap();
    let shown = crate::events::encoded(|r| metrics.register(r));
    let failures = sample(
        &shown,
        "upsoak_agent_state_write_failures_total{file=\"history.json\"}",
    )
    .unwrap();
    assert!(failures >= 2.0, "{shown}");
    assert_eq!(
        sample(&shown, "upsoak_agent_state_unsaved{file=\"history.json\"}"),
        Some(0.0)
    );
    // Judging went on meanwhile, and what was judged reached the disk.
    assert!(h.transitions[0].judged.is_some());
    let saved = History::load(&dir.0).unwrap();
    assert_eq!(saved.transitions.len(), 1);
    assert!(saved.transitions[0].judged.is_some());
}
