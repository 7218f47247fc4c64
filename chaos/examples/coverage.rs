//! Steps each strategy needs to cover every reachable pair of a space, over several seeds:
//! `cargo run --release -p upsoak-chaos --example coverage -- chaos/spaces/agones.yaml 10`.

use std::path::PathBuf;
use std::process::ExitCode;

use upsoak_chaos::wanderer::space::Space;
use upsoak_chaos::wanderer::walk::{Strategy, Walk};

fn steps_to_full(space: &Space, seed: u64, strategy: Strategy, limit: u64) -> u64 {
    let mut walk = Walk::new(space.clone(), seed, strategy);
    let Some(mut cur) = space.start() else {
        return limit;
    };
    for step in 1..=limit {
        let Some(next) = walk.choose(step, &cur) else {
            return limit;
        };
        walk.record_states(&cur, &next);
        cur = next;
        if walk.coverage().complete() {
            return step;
        }
    }
    limit
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(
        args.get(1)
            .map_or("chaos/spaces/agones.yaml", String::as_str),
    );
    let seeds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let space = match Space::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let limit = 20_000;
    for strategy in [Strategy::Coverage, Strategy::Random] {
        let mut v: Vec<u64> = (1..=seeds)
            .map(|s| steps_to_full(&space, s, strategy, limit))
            .collect();
        v.sort_unstable();
        let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
        println!(
            "{:<8} steps to full pairwise coverage over {seeds} seeds: min {} median {} max {} mean {mean:.0}",
            strategy.as_str(),
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
    ExitCode::SUCCESS
}
