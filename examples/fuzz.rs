//! Mutation fuzzer on stable Rust: every kind's parser, the quarantine path, the redaction
//! helpers, the JSON writer (against serde_json) and the checkpoint loader, each input under
//! `catch_unwind`. Deterministic for a given `--seed`.
//!
//!     cargo run --release --example fuzz -- --lines-per-kind 1000000 [--seed S] [--kind K]
//!
//! Exits 1 if anything panicked (the inputs are printed, escaped), 2 on bad usage.

use std::process::ExitCode;

use epost_shipper::kind::Kind;
use epost_shipper::parse::fuzz::{Config, Stats, run};

fn usage(msg: &str) -> ExitCode {
    eprintln!("{msg}\nusage: fuzz --lines-per-kind N [--seed S] [--kind K] [--show-panics N]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut cfg = Config {
        lines_per_kind: 10_000,
        seed: 1,
        kind: None,
        show_panics: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(v) = args.next() else {
            return usage(&format!("{a} needs a value"));
        };
        match a.as_str() {
            "--lines-per-kind" => match v.parse() {
                Ok(n) => cfg.lines_per_kind = n,
                Err(e) => return usage(&format!("--lines-per-kind {v}: {e}")),
            },
            "--seed" => match v.parse() {
                Ok(n) => cfg.seed = n,
                Err(e) => return usage(&format!("--seed {v}: {e}")),
            },
            "--show-panics" => match v.parse() {
                Ok(n) => cfg.show_panics = n,
                Err(e) => return usage(&format!("--show-panics {v}: {e}")),
            },
            "--kind" => match v.parse::<Kind>() {
                Ok(k) => cfg.kind = Some(k),
                Err(e) => return usage(&format!("--kind {v}: {e}")),
            },
            _ => return usage(&format!("unknown argument {a}")),
        }
    }
    println!(
        "fuzz: {} lines per kind, seed {}{}",
        cfg.lines_per_kind,
        cfg.seed,
        cfg.kind
            .map_or(String::new(), |k| format!(", kind {}", k.name()))
    );
    let start = std::time::Instant::now();
    let print = |s: &Stats| {
        println!(
            "{:<13} lines {:>10}  records {:>10}  panics {:>5}  {:>9.0} lines/s",
            s.name,
            s.lines,
            s.records,
            s.panics,
            s.lines_per_sec()
        );
    };
    let stats = run(&cfg, &mut { print });
    let panics: u64 = stats.iter().map(|s| s.panics).sum();
    let lines: u64 = stats.iter().map(|s| s.lines).sum();
    println!(
        "total         lines {lines:>10}  panics {panics}  in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if panics > 0 {
        eprintln!("{panics} inputs panicked");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
