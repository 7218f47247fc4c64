//! A mutation fuzzer without coverage feedback, for machines where cargo-fuzz cannot build in
//! time (`make fuzz FUZZ_ENGINE=random`): each target's saved inputs and a dictionary of the
//! grammars' tokens, mutated (flips, inserts, splices, repeats, truncations) by a seeded
//! xorshift generator and handed to the same target functions as libFuzzer's. A panic is a
//! crash: its input is written to `fuzz/artifacts/<target>/` and counted.

use std::path::Path;
use std::time::{Duration, Instant};

/// Tokens of the parsers' grammars, spliced into inputs.
const DICTIONARY: &[&[u8]] = &[
    b"(",
    b")",
    b" AND ",
    b" OR ",
    b"NOT ",
    b"IF ",
    b" THEN ",
    b"gate:A",
    b"version >= 1.59",
    b"tunable:t > 5",
    b"&a ",
    b"*a",
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b":",
    b",",
    b"\n",
    b"- ",
    b"  ",
    b"-1",
    b"0",
    b"18446744073709551615",
    b"1e999",
    b"null",
    b"true",
    b"~",
    b"!",
    b"=",
    b"!=",
    b" in (",
    b" notin (",
    b"\"op\":\"copy\"",
    b"\"from\":\"\"",
    b"\"path\":\"/a\"",
    b"\"type\":\"intent\"",
    b"\"step\":",
    b"versions:",
    b"constraints:",
    b"groups:",
    b"expr:",
    b"sum(rate(x[5m]))",
    b"\"alerts\":[",
    b"\"startsAt\":\"2000-01-01T00:00:00Z\"",
    b"\xff",
];

/// A seeded xorshift64* generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One to four mutations of `input`, splicing from `others`.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = DICTIONARY[rng.below(DICTIONARY.len())];
                v.splice(at..at, t.iter().copied());
            }
            2 if !v.is_empty() => {
                let end = (at + rng.below(16) + 1).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !others.is_empty() => {
                let o = &others[rng.below(others.len())];
                let from = rng.below(o.len() + 1);
                let end = (from + rng.below(64)).min(o.len());
                v.splice(at..at, o[from..end].iter().copied());
            }
            4 if !v.is_empty() => {
                // Repeat a short range (nesting, long chains).
                let from = rng.below(v.len());
                let end = (from + rng.below(8) + 1).min(v.len());
                let chunk = v[from..end].to_vec();
                for _ in 0..rng.below(64) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            5 => v.truncate(at),
            _ => v.insert(at, rng.next() as u8),
        }
    }
    v.truncate(1 << 16);
    v
}

/// What a run found.
pub struct Run {
    pub executions: u64,
    pub crashes: u64,
}

/// Runs `target` for `time` on mutations of the inputs saved in `seeds` (a directory).
pub fn run(name: &str, target: fn(&[u8]), seeds: &Path, artifacts: &Path, time: Duration) -> Run {
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(seeds)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter(|d| d.len() <= 1 << 16)
        .collect();
    corpus.push(Vec::new());
    let mut rng = Rng::new(0x5eed ^ name.len() as u64);
    let (mut executions, mut crashes) = (0, 0);
    let start = Instant::now();
    // Panics are counted and their inputs saved; the default hook would print each one.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < time {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus);
        executions += 1;
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            crashes += 1;
            let _ = std::fs::create_dir_all(artifacts);
            let _ = std::fs::write(artifacts.join(format!("crash-{executions}")), &input);
        }
        // Keep a few mutants as bases for more (no coverage: a small random share).
        if rng.below(64) == 0 && corpus.len() < 4096 {
            corpus.push(input);
        }
    }
    std::panic::set_hook(hook);
    Run {
        executions,
        crashes,
    }
}
