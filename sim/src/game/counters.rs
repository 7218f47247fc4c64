//! Counters and Lists (Agones' `CountsAndLists`): their state in a game and the commands that
//! read and change them, with the real server's replies (`COUNTER: 3`, `SUCCESS`, `FOUND: true`,
//! `VALUES: <none>`, …; `examples/simple-game-server/handlers.go`), sent without `ACK: `.

use std::collections::BTreeMap;

use super::{exact, len_i64, number};

/// Capacity of a counter the first time a command names it.
pub const DEFAULT_COUNTER_CAPACITY: i64 = 1000;
/// Capacity of a list the first time a command names it.
pub const DEFAULT_LIST_CAPACITY: i64 = 1000;
/// Largest list capacity; Agones refuses more than 1000 values in a list.
pub const MAX_LIST_CAPACITY: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    count: i64,
    capacity: i64,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            count: 0,
            capacity: DEFAULT_COUNTER_CAPACITY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct List {
    /// Distinct values in the order they were appended.
    values: Vec<String>,
    capacity: i64,
}

impl Default for List {
    fn default() -> Self {
        List {
            values: Vec::new(),
            capacity: DEFAULT_LIST_CAPACITY,
        }
    }
}

/// A game's counters and lists, by name.
#[derive(Debug, Clone, Default)]
pub(super) struct CountsAndLists {
    counters: BTreeMap<String, Counter>,
    lists: BTreeMap<String, List>,
}

impl CountsAndLists {
    /// The ACK text of a counter or list command, or its ERROR text; `Ok(None)` when `cmd` is
    /// neither (the protocol then echoes it).
    pub(super) fn command(&mut self, cmd: &str, args: &[&str]) -> Result<Option<String>, String> {
        match cmd {
            // Counters and lists: the real server's replies (`handleGetCounterCount` …
            // `handleDeleteListValue`), which carry no `ACK: `.
            "GET_COUNTER_COUNT" => {
                let [name] = exact(cmd, args)?;
                Ok(Some(format!("COUNTER: {}", self.counter(name).count)))
            }
            "GET_COUNTER_CAPACITY" => {
                let [name] = exact(cmd, args)?;
                Ok(Some(format!("CAPACITY: {}", self.counter(name).capacity)))
            }
            "INCREMENT_COUNTER" | "DECREMENT_COUNTER" => {
                let [name, amount] = exact(cmd, args)?;
                let amount = number(cmd, "amount", amount)?;
                if amount < 0 {
                    return Err(format!("{cmd}: amount must not be negative, got {amount}"));
                }
                let current = self.counter(name);
                let count = if cmd == "INCREMENT_COUNTER" {
                    current.count.checked_add(amount)
                } else {
                    current.count.checked_sub(amount)
                };
                let count = count
                    .filter(|c| (0..=current.capacity).contains(c))
                    .ok_or_else(|| {
                        format!(
                            "{cmd}: counter `{name}` at {} of capacity {} cannot change by {amount}",
                            current.count, current.capacity
                        )
                    })?;
                self.counters
                    .insert(name.to_owned(), Counter { count, ..current });
                Ok(Some("SUCCESS".to_owned()))
            }
            "SET_COUNTER_COUNT" => {
                let [name, count] = exact(cmd, args)?;
                let count = number(cmd, "count", count)?;
                let current = self.counter(name);
                if !(0..=current.capacity).contains(&count) {
                    return Err(format!(
                        "SET_COUNTER_COUNT: count {count} of counter `{name}` is outside 0..={}",
                        current.capacity
                    ));
                }
                self.counters
                    .insert(name.to_owned(), Counter { count, ..current });
                Ok(Some("SUCCESS".to_owned()))
            }
            "SET_COUNTER_CAPACITY" => {
                let [name, capacity] = exact(cmd, args)?;
                let capacity = number(cmd, "capacity", capacity)?;
                if capacity < 0 {
                    return Err(format!(
                        "SET_COUNTER_CAPACITY: capacity must not be negative, got {capacity}"
                    ));
                }
                let current = self.counter(name);
                // A count above the new capacity is cut down to it, keeping count <= capacity.
                let counter = Counter {
                    count: current.count.min(capacity),
                    capacity,
                };
                self.counters.insert(name.to_owned(), counter);
                Ok(Some("SUCCESS".to_owned()))
            }
            "GET_LIST_CAPACITY" => {
                let [name] = exact(cmd, args)?;
                Ok(Some(format!("CAPACITY: {}", self.list(name).capacity)))
            }
            "SET_LIST_CAPACITY" => {
                let [name, capacity] = exact(cmd, args)?;
                let capacity = number(cmd, "capacity", capacity)?;
                if !(0..=MAX_LIST_CAPACITY).contains(&capacity) {
                    return Err(format!(
                        "SET_LIST_CAPACITY: capacity {capacity} is outside 0..={MAX_LIST_CAPACITY}"
                    ));
                }
                let list = self.lists.entry(name.to_owned()).or_default();
                list.capacity = capacity;
                // Values beyond the new capacity are dropped from the end, as Agones does.
                list.values
                    .truncate(usize::try_from(capacity).unwrap_or(usize::MAX));
                Ok(Some("SUCCESS".to_owned()))
            }
            "LIST_CONTAINS" => {
                let [name, value] = exact(cmd, args)?;
                let contains = self
                    .lists
                    .get(name)
                    .is_some_and(|l| l.values.iter().any(|v| v == value));
                Ok(Some(format!("FOUND: {contains}")))
            }
            "GET_LIST_LENGTH" => {
                let [name] = exact(cmd, args)?;
                Ok(Some(format!("LENGTH: {}", self.list(name).values.len())))
            }
            "GET_LIST_VALUES" => {
                let [name] = exact(cmd, args)?;
                let list = self.list(name);
                if list.values.is_empty() {
                    Ok(Some("VALUES: <none>".to_owned()))
                } else {
                    Ok(Some(format!("VALUES: {}", list.values.join(","))))
                }
            }
            "APPEND_LIST_VALUE" => {
                let [name, value] = exact(cmd, args)?;
                let list = self.list(name);
                if list.values.iter().any(|v| v == value) {
                    return Err(format!(
                        "APPEND_LIST_VALUE: `{value}` is already in list `{name}`"
                    ));
                }
                if len_i64(list.values.len()) >= list.capacity {
                    return Err(format!(
                        "APPEND_LIST_VALUE: list `{name}` is at capacity ({})",
                        list.capacity
                    ));
                }
                self.lists
                    .entry(name.to_owned())
                    .or_default()
                    .values
                    .push(value.to_owned());
                Ok(Some("SUCCESS".to_owned()))
            }
            "DELETE_LIST_VALUE" => {
                let [name, value] = exact(cmd, args)?;
                let Some(list) = self
                    .lists
                    .get_mut(name)
                    .filter(|l| l.values.iter().any(|v| v == value))
                else {
                    return Err(format!(
                        "DELETE_LIST_VALUE: `{value}` is not in list `{name}`"
                    ));
                };
                list.values.retain(|v| v != value);
                Ok(Some("SUCCESS".to_owned()))
            }
            _ => Ok(None),
        }
    }

    /// A counter as it is, or as it would be when first named.
    fn counter(&self, name: &str) -> Counter {
        self.counters.get(name).copied().unwrap_or_default()
    }

    /// A list as it is, or as it would be when first named.
    fn list(&self, name: &str) -> List {
        self.lists.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::CountsAndLists;

    /// The reply to one command line, which must be a counter or list command.
    fn run(c: &mut CountsAndLists, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = c.command(words[0], &words[1..]);
        reply.map(|r| r.unwrap_or_else(|| panic!("{line:?} is not a counter or list command")))
    }

    fn ack(c: &mut CountsAndLists, line: &str) -> String {
        run(c, line).unwrap_or_else(|e| panic!("{line:?}: ERROR: {e}"))
    }

    fn err(c: &mut CountsAndLists, line: &str) -> String {
        run(c, line).expect_err(line)
    }

    #[test]
    fn counters_stay_within_zero_and_capacity() {
        let mut g = CountsAndLists::default();
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 0");
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY rooms"), "CAPACITY: 1000");
        assert_eq!(ack(&mut g, "INCREMENT_COUNTER rooms 3"), "SUCCESS");
        assert_eq!(ack(&mut g, "DECREMENT_COUNTER rooms 1"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 2");
        assert_eq!(
            err(&mut g, "DECREMENT_COUNTER rooms 3"),
            "DECREMENT_COUNTER: counter `rooms` at 2 of capacity 1000 cannot change by 3"
        );
        assert_eq!(
            err(&mut g, "INCREMENT_COUNTER rooms 999"),
            "INCREMENT_COUNTER: counter `rooms` at 2 of capacity 1000 cannot change by 999"
        );
        assert!(err(&mut g, "INCREMENT_COUNTER rooms 9223372036854775807").contains("cannot"));
        assert_eq!(
            err(&mut g, "INCREMENT_COUNTER rooms -1"),
            "INCREMENT_COUNTER: amount must not be negative, got -1"
        );
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 2");

        assert_eq!(ack(&mut g, "SET_COUNTER_COUNT rooms 1000"), "SUCCESS");
        assert_eq!(
            err(&mut g, "SET_COUNTER_COUNT rooms 1001"),
            "SET_COUNTER_COUNT: count 1001 of counter `rooms` is outside 0..=1000"
        );
        assert!(err(&mut g, "SET_COUNTER_COUNT rooms -1").contains("outside 0..=1000"));
        // A smaller capacity cuts the count down to it.
        assert_eq!(ack(&mut g, "SET_COUNTER_CAPACITY rooms 5"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY rooms"), "CAPACITY: 5");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 5");
        assert!(err(&mut g, "INCREMENT_COUNTER rooms 1").contains("at 5 of capacity 5"));
        assert_eq!(
            err(&mut g, "SET_COUNTER_CAPACITY rooms -1"),
            "SET_COUNTER_CAPACITY: capacity must not be negative, got -1"
        );
        assert_eq!(ack(&mut g, "SET_COUNTER_CAPACITY rooms 0"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_COUNTER_COUNT rooms"), "COUNTER: 0");
        // Counters are independent.
        assert_eq!(ack(&mut g, "GET_COUNTER_CAPACITY other"), "CAPACITY: 1000");
    }

    #[test]
    fn lists_hold_distinct_values_up_to_capacity() {
        let mut g = CountsAndLists::default();
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY maps"), "CAPACITY: 1000");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 0");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "VALUES: <none>");
        assert_eq!(ack(&mut g, "LIST_CONTAINS maps dust"), "FOUND: false");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps dust"), "SUCCESS");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps inferno"), "SUCCESS");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps nuke"), "SUCCESS");
        assert_eq!(
            err(&mut g, "APPEND_LIST_VALUE maps dust"),
            "APPEND_LIST_VALUE: `dust` is already in list `maps`"
        );
        assert_eq!(ack(&mut g, "LIST_CONTAINS maps inferno"), "FOUND: true");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 3");
        assert_eq!(
            ack(&mut g, "GET_LIST_VALUES maps"),
            "VALUES: dust,inferno,nuke"
        );

        assert_eq!(
            err(&mut g, "SET_LIST_CAPACITY maps 1001"),
            "SET_LIST_CAPACITY: capacity 1001 is outside 0..=1000"
        );
        assert!(err(&mut g, "SET_LIST_CAPACITY maps -1").contains("outside 0..=1000"));
        assert_eq!(ack(&mut g, "SET_LIST_CAPACITY maps 1000"), "SUCCESS");
        // A smaller capacity drops values from the end.
        assert_eq!(ack(&mut g, "SET_LIST_CAPACITY maps 2"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY maps"), "CAPACITY: 2");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "VALUES: dust,inferno");
        assert_eq!(
            err(&mut g, "APPEND_LIST_VALUE maps nuke"),
            "APPEND_LIST_VALUE: list `maps` is at capacity (2)"
        );

        assert_eq!(
            err(&mut g, "DELETE_LIST_VALUE maps nuke"),
            "DELETE_LIST_VALUE: `nuke` is not in list `maps`"
        );
        assert!(err(&mut g, "DELETE_LIST_VALUE nowhere x").contains("not in list `nowhere`"));
        assert_eq!(ack(&mut g, "DELETE_LIST_VALUE maps dust"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_LIST_VALUES maps"), "VALUES: inferno");
        assert_eq!(ack(&mut g, "APPEND_LIST_VALUE maps nuke"), "SUCCESS");
        assert_eq!(ack(&mut g, "GET_LIST_LENGTH maps"), "LENGTH: 2");
        // Lists are independent.
        assert_eq!(ack(&mut g, "GET_LIST_CAPACITY other"), "CAPACITY: 1000");
    }
}
