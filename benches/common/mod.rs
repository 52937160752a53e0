//! What both benchmark binaries share: interleaved timing, medians and the report's rows.
//!
//! The machine is shared and noisy, so a library call and its baseline are never timed in
//! separate phases: each round times one call (or one batch) of every contender in turn, the
//! order shuffled from round to round, and only medians are reported.
#![allow(dead_code)]

use std::time::Instant;

/// Per-call times in nanoseconds, one sample per round.
#[derive(Default, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let position = q * (sorted.len() - 1) as f64;
        let (low, high) = (position.floor() as usize, position.ceil() as usize);
        sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }
}

/// Times `rounds` rounds of every contender, each round calling each contender `batch` times in
/// a row, in an order shuffled every round (a fixed rotation would let one contender always
/// follow the same other one, and inherit its after-effects). Returns each contender's per-call
/// times.
pub fn interleave(rounds: usize, batch: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Samples> {
    let mut samples = vec![Samples::default(); contenders.len()];
    let mut order: Vec<usize> = (0..contenders.len()).collect();
    let mut random: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..rounds {
        for k in (1..order.len()).rev() {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            order.swap(k, (random % (k as u64 + 1)) as usize);
        }
        for &i in &order {
            let start = Instant::now();
            for _ in 0..batch {
                (contenders[i])();
            }
            samples[i].0.push(start.elapsed().as_nanos() as f64 / batch as f64);
        }
    }
    samples
}

/// Round by round differences `a - b`: with interleaved rounds, the median of these is the
/// steadiest estimate of what `a` adds to `b`.
pub fn paired_difference(a: &Samples, b: &Samples) -> Samples {
    Samples(a.0.iter().zip(&b.0).map(|(x, y)| x - y).collect())
}

/// A duration for the tables: ns below 10 µs, µs above.
pub fn human(ns: f64) -> String {
    if ns.abs() < 10_000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.1} µs", ns / 1000.0)
    }
}

/// Prints a Markdown table row.
pub fn row(cells: &[String]) {
    println!("| {} |", cells.join(" | "));
}

/// One row of a bench's goals table (`| goal | measured | bound | met? |`): `.ci/bench` fails
/// when a goal that BENCHMARKS.md marks as met says "no" here, or is not printed at all.
pub fn goal(id: &str, measured: String, bound: String, met: bool) {
    row(&[id.into(), measured, bound, if met { "yes" } else { "no" }.into()]);
}

pub fn header(cells: &[&str]) {
    println!("| {} |", cells.join(" | "));
    println!("|{}|", cells.iter().map(|_| "---").collect::<Vec<_>>().join("|"));
}

/// Resident set size of this process, in bytes.
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// A number from the command line (`--name value`), or the default.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
