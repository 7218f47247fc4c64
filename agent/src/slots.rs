//! Fixed evaluation slots, one series per SLO group, as Prometheus schedules rule groups: a
//! group with interval `i` is evaluated at the multiples of `i` since the epoch, so restarts and
//! several agents agree on when a group runs. A slot that passes while the agent is busy (or
//! suspended) is skipped and counted, never run late in a burst.

use crate::spec::Specs;

/// The next slot of one group.
#[derive(Clone, Debug, PartialEq)]
struct Slot {
    group: String,
    every_ms: i64,
    next_ms: i64,
}

/// A group whose slot has come, with the slots it skipped since its last evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    pub group: String,
    pub missed: u64,
}

/// The slots of every group of the current specs.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    slots: Vec<Slot>,
}

fn first_at_or_after(now_ms: i64, every_ms: i64) -> i64 {
    now_ms.div_euclid(every_ms) * every_ms
        + if now_ms.rem_euclid(every_ms) == 0 {
            0
        } else {
            every_ms
        }
}

impl Slots {
    /// Slots for `specs`' groups, the first of each at or after `now_ms`.
    pub fn new(specs: &Specs, now_ms: i64) -> Slots {
        let mut s = Slots::default();
        s.reconcile(specs, now_ms);
        s
    }

    /// After a reload: groups kept with the same interval keep their schedule; new or changed
    /// ones start at their next slot; removed ones are dropped.
    pub fn reconcile(&mut self, specs: &Specs, now_ms: i64) {
        let old = std::mem::take(&mut self.slots);
        for g in &specs.file.groups {
            let every_ms = (g.interval.as_millis() as i64).max(1);
            let kept = old
                .iter()
                .find(|s| s.group == g.name && s.every_ms == every_ms);
            self.slots.push(kept.cloned().unwrap_or(Slot {
                group: g.name.clone(),
                every_ms,
                next_ms: first_at_or_after(now_ms, every_ms),
            }));
        }
    }

    /// When the earliest slot comes (unix milliseconds); `None` without groups.
    pub fn next_ms(&self) -> Option<i64> {
        self.slots.iter().map(|s| s.next_ms).min()
    }

    /// The groups whose slot has come by `now_ms`, each moved on to its next slot after
    /// `now_ms`; the slots jumped over are reported as missed.
    pub fn due(&mut self, now_ms: i64) -> Vec<Due> {
        let mut out = Vec::new();
        for s in &mut self.slots {
            if s.next_ms > now_ms {
                continue;
            }
            let missed = ((now_ms - s.next_ms) / s.every_ms) as u64;
            s.next_ms += (missed as i64 + 1) * s.every_ms;
            out.push(Due {
                group: s.group.clone(),
                missed,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(groups: &[(&str, &str)]) -> Specs {
        let mut y = String::from("groups:\n");
        for (name, interval) in groups {
            y.push_str(&format!(
                "  - name: {name}\n    interval: {interval}\n    slos: [ {{ name: s, expr: up, objective: \">= 1\" }} ]\n"
            ));
        }
        Specs::parse(&y, "test").unwrap()
    }

    #[test]
    fn groups_run_on_multiples_of_their_own_interval() {
        let mut s = Slots::new(&specs(&[("fast", "1s"), ("slow", "5s")]), 12_300);
        assert_eq!(s.next_ms(), Some(13_000));
        let mut runs: Vec<(i64, String)> = Vec::new();
        let mut now = 12_300;
        while now <= 20_000 {
            for d in s.due(now) {
                assert_eq!(d.missed, 0, "nothing is missed when woken on time");
                runs.push((now, d.group));
            }
            now = s.next_ms().unwrap();
        }
        let slow: Vec<i64> = runs
            .iter()
            .filter(|(_, g)| g == "slow")
            .map(|(t, _)| *t)
            .collect();
        let fast = runs.iter().filter(|(_, g)| g == "fast").count();
        assert_eq!(slow, vec![15_000, 20_000]);
        assert_eq!(fast, 8, "13..=20 s, once a second");
    }

    #[test]
    fn a_late_wake_skips_and_counts_the_passed_slots_without_a_burst() {
        let mut s = Slots::new(&specs(&[("g", "2s")]), 10_000);
        assert_eq!(
            s.due(10_000),
            vec![Due {
                group: "g".into(),
                missed: 0
            }]
        );
        // Asleep from 10 s to 17.5 s: the slots at 12, 14 and 16 s passed; one evaluation runs
        // now in place of the one at 16 s, the other two are missed.
        assert_eq!(
            s.due(17_500),
            vec![Due {
                group: "g".into(),
                missed: 2
            }]
        );
        assert_eq!(s.next_ms(), Some(18_000), "back on the fixed grid");
        assert!(s.due(17_900).is_empty());
    }

    #[test]
    fn a_reload_keeps_unchanged_groups_on_their_schedule() {
        let mut s = Slots::new(&specs(&[("a", "10s"), ("b", "10s")]), 1_000);
        s.due(10_000);
        s.reconcile(&specs(&[("a", "10s"), ("b", "3s"), ("c", "4s")]), 10_500);
        let mut names: Vec<(String, i64)> = s
            .slots
            .iter()
            .map(|x| (x.group.clone(), x.next_ms))
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("a".into(), 20_000),
                ("b".into(), 12_000),
                ("c".into(), 12_000)
            ]
        );
    }
}
