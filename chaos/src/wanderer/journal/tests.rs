//! The journal's tests: append and replay, torn lines, compaction, the time formats.

use super::*;
use std::collections::BTreeMap;

fn install(v: &str) -> Install {
    Install {
        version: v.into(),
        ..Install::default()
    }
}

const T: &str = "2026-11-25T00:00:00.000Z";

fn sample() -> Vec<Entry> {
    vec![
        Entry::Start {
            seed: 7,
            strategy: "coverage".into(),
            space_hash: "abc".into(),
            at: T.into(),
        },
        Entry::Intent {
            step: 1,
            from: install("1.58.0"),
            to: install("1.59.0"),
            at: T.into(),
        },
        Entry::Outcome {
            step: 1,
            result: Outcome::Applied,
            observed: Some(install("1.59.0")),
            error: None,
            duration_s: 1.5,
            at: T.into(),
            started_unix_ms: Some(1_000),
            finished_unix_ms: Some(2_000),
            observed_unix_ms: Some(2_500),
        },
        Entry::Intent {
            step: 2,
            from: install("1.59.0"),
            to: install("1.60.0"),
            at: T.into(),
        },
    ]
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("upsoak-journal-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&d);
    d
}

#[test]
fn entries_survive_reopen_and_the_pending_intent_is_found() {
    let p = temp("reopen");
    let (mut j, r) = Journal::open(&p).unwrap();
    assert_eq!(r, Recovered::default());
    for e in sample() {
        j.append(&e).unwrap();
    }
    drop(j);
    let (_, r) = Journal::open(&p).unwrap();
    assert_eq!(r.entries, sample());
    assert_eq!(r.last_step(), Some(2));
    assert!(matches!(r.pending(), Some(Entry::Intent { step: 2, .. })));
    assert_eq!(
        r.last_phases(),
        Some((
            1,
            Phases {
                started: Some(1_000),
                finished: Some(2_000),
                observed: Some(2_500)
            }
        ))
    );
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_crash_at_any_byte_leaves_a_readable_prefix() {
    let p = temp("torn");
    let mut full = Vec::new();
    let mut ends = Vec::new();
    for e in sample() {
        full.extend(serde_json::to_vec(&e).unwrap());
        full.push(b'\n');
        ends.push(full.len());
    }
    for cut in 0..=full.len() {
        std::fs::write(&p, &full[..cut]).unwrap();
        let (mut j, r) = Journal::open(&p).unwrap();
        let whole = ends.iter().filter(|e| **e <= cut).count();
        assert_eq!(r.entries, sample()[..whole].to_vec(), "cut at {cut}");
        // The journal is usable after recovery: an append lands on a clean line.
        j.append(&sample()[0]).unwrap();
        drop(j);
        let (_, again) = Journal::open(&p).unwrap();
        assert_eq!(again.entries.len(), whole + 1, "cut at {cut}");
        assert_eq!(again.torn_bytes, 0);
    }
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_corrupt_complete_line_is_an_error_with_its_line() {
    let p = temp("corrupt");
    let good = serde_json::to_string(&sample()[0]).unwrap();
    std::fs::write(&p, format!("{good}\n{{\"type\":\"bogus\"}}\n{good}\n")).unwrap();
    let err = Journal::open(&p).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(":2: not a journal entry"), "{msg}");
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_step_past_the_largest_is_an_error_not_an_overflow() {
    // Audit L12: a hand-edited `"step": 18446744073709551615` wrapped `last_step + 1`.
    let p = temp("huge-step");
    let entry = Entry::Intent {
        step: u64::MAX,
        from: install("1.58.0"),
        to: install("1.59.0"),
        at: now(),
    };
    let line = serde_json::to_string(&entry).unwrap();
    std::fs::write(&p, format!("{line}\n")).unwrap();
    let msg = Journal::open(&p).unwrap_err().to_string();
    assert!(
        msg.contains(":1: not a journal entry: step 18446744073709551615 is past"),
        "{msg}"
    );
    let _ = std::fs::remove_file(&p);
}

#[test]
fn timestamps_are_rfc3339() {
    assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        format_rfc3339(1_795_590_582, 42),
        "2026-11-25T07:09:42.042Z"
    );
    assert_eq!(format_rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000Z");
    for ms in [0, 42, 951_782_400_000, 1_795_590_582_042, 4_102_444_800_999] {
        assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{ms}");
    }
    assert_eq!(parse_rfc3339("2026-11-25 07:09:42.042Z"), None);
    assert_eq!(parse_rfc3339("2026-13-25T07:09:42.042Z"), None);
}

#[test]
fn an_outcome_without_phases_still_loads() {
    let line = r#"{"type":"outcome","step":3,"result":"applied","duration_s":1.0,"at":"2026-11-25T00:00:00.000Z"}"#;
    let e: Entry = serde_json::from_str(line).unwrap();
    let r = Recovered {
        entries: vec![e],
        ..Recovered::default()
    };
    assert_eq!(r.last_phases(), Some((3, Phases::default())));
    // And none is written when absent, so an old reader sees the shape it knows.
    let back = serde_json::to_string(&r.entries[0]).unwrap();
    assert!(!back.contains("unix_ms"), "{back}");
}

#[test]
fn an_old_journal_without_scheduled_entries_loads_and_the_last_schedule_wins() {
    let p = temp("scheduled");
    let old: String = sample()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(&p, &old).unwrap();
    let (mut j, r) = Journal::open(&p).unwrap();
    assert_eq!(r.entries, sample());
    assert_eq!(r.scheduled(3), None);
    for due in [5_000, 4_000] {
        j.append(&Entry::Scheduled {
            step: 3,
            due_unix_ms: due,
            at: T.into(),
        })
        .unwrap();
    }
    drop(j);
    let (_, r) = Journal::open(&p).unwrap();
    assert_eq!(r.scheduled(3), Some(4_000));
    assert_eq!(r.scheduled(2), None);
    assert_eq!(r.last_step(), Some(2));
    let _ = std::fs::remove_file(&p);
}

/// An install with every gate of a realistic space set, so entries weigh what real ones do.
fn heavy(v: &str, flip: bool) -> Install {
    Install {
        version: v.into(),
        feature_gates: (0..12)
            .map(|i| (format!("FeatureGateNumber{i}"), (i % 2 == 0) ^ flip))
            .collect(),
        ..Install::default()
    }
}

/// A walk of `n` applied transitions (scheduled, intent, outcome each), then a pending one.
fn walk(j: &mut Journal, n: u64) {
    j.append(&sample()[0]).unwrap();
    for step in 1..=n {
        let (from, to) = (
            heavy("1.58.0", step % 3 == 0),
            heavy("1.59.0", step % 2 == 0),
        );
        j.append(&Entry::Scheduled {
            step,
            due_unix_ms: step * 1000,
            at: T.into(),
        })
        .unwrap();
        j.append(&Entry::Intent {
            step,
            from,
            to: to.clone(),
            at: T.into(),
        })
        .unwrap();
        j.append(&Entry::Outcome {
            step,
            result: if step % 5 == 0 {
                Outcome::Failed
            } else {
                Outcome::Applied
            },
            observed: Some(to),
            error: None,
            duration_s: 1.5,
            at: T.into(),
            started_unix_ms: Some(step * 1000),
            finished_unix_ms: Some(step * 1000 + 500),
            observed_unix_ms: Some(step * 1000 + 700),
        })
        .unwrap();
    }
    j.append(&Entry::Scheduled {
        step: n + 1,
        due_unix_ms: 9,
        at: T.into(),
    })
    .unwrap();
    j.append(&Entry::Intent {
        step: n + 1,
        from: heavy("1.59.0", false),
        to: heavy("1.60.0", true),
        at: T.into(),
    })
    .unwrap();
}

fn counted(r: &Recovered) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (f, t) in r.applied() {
        *m.entry(format!("{f:?}→{t:?}")).or_default() += 1;
    }
    m
}

#[test]
fn past_its_size_the_journal_is_compacted_into_a_snapshot_and_the_tail_losing_nothing() {
    let p = temp("compact");
    let (mut j, _) = Journal::open(&p).unwrap();
    walk(&mut j, 1500);
    drop(j);
    let size = std::fs::metadata(&p).unwrap().len() as usize;
    assert!(size > COMPACT_BYTES, "{size}");
    // What the journal says before, read without compacting.
    let bytes = std::fs::read(&p).unwrap();
    let before = Recovered {
        entries: bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect(),
        ..Recovered::default()
    };
    let (mut j, after) = Journal::open(&p).unwrap();
    let (was, now) = after.compacted.unwrap();
    assert_eq!(was, size);
    assert!(now < size / 10, "{now} of {size}");
    assert_eq!(now as u64, std::fs::metadata(&p).unwrap().len());
    assert!(matches!(after.entries[0], Entry::Start { .. }));
    assert!(matches!(after.entries[1], Entry::Snapshot { .. }));
    // Coverage, the pending intent, the last phases and the schedule are as they were.
    assert_eq!(counted(&after), counted(&before));
    assert_eq!(after.pending(), before.pending());
    assert_eq!(after.last_step(), Some(1501));
    assert_eq!(after.last_phases(), before.last_phases());
    assert_eq!(after.scheduled(1501), Some(9));
    // Appends go on after it; the next open has nothing to compact.
    j.append(&sample()[2]).unwrap();
    drop(j);
    let (_, again) = Journal::open(&p).unwrap();
    assert_eq!(again.compacted, None);
    assert_eq!(again.entries.len(), after.entries.len() + 1);
    assert!(!p.with_extension("compacting").exists());
    let _ = std::fs::remove_file(&p);
}

/// For BENCHMARKS.md (`make bench-history`): a week at the fast preset (336 transitions),
/// then twelve weeks, each opened as a restarted sidecar would: sizes and open times.
#[test]
#[ignore = "writes 12 weeks of transitions with an fsync each; see BENCHMARKS.md"]
fn journal_over_weeks() {
    for weeks in [1, 12] {
        let p = temp(&format!("weeks-{weeks}"));
        let (mut j, _) = Journal::open(&p).unwrap();
        walk(&mut j, 336 * weeks);
        drop(j);
        let written = std::fs::metadata(&p).unwrap().len();
        let t = std::time::Instant::now();
        let (_, r) = Journal::open(&p).unwrap();
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let after = std::fs::metadata(&p).unwrap().len();
        println!(
            "{weeks} week(s), {} transitions: journal {:.2} MB written, {:.2} MB after open ({open_ms:.0} ms, compacted: {}); {} applied transitions replayed",
            336 * weeks,
            written as f64 / 1e6,
            after as f64 / 1e6,
            r.compacted.is_some(),
            r.applied().len()
        );
        let _ = std::fs::remove_file(&p);
    }
}
