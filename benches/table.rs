//! The handle table, with no PC/SC at all: what a call costs before it reaches the card, at
//! every table size and from two threads; creation and release rates; memory.
//!
//! `cargo bench --bench table [-- --rounds N]`

mod common;

use std::hint::black_box;
use std::ptr;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Instant;

use common::*;
use scardmanage::*;

/// Calls per timed batch: a call is tens of ns, so one `Instant` pair per call would be most of
/// what is measured.
const BATCH: usize = 1000;

fn create() -> *mut scm_manage {
    let mut m = ptr::null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { scm_create(&mut m) }, SCM_S_OK);
    m
}

fn release(m: *mut scm_manage) {
    // SAFETY: a live token (or a dead one, which is refused).
    assert_eq!(unsafe { scm_release(m) }, SCM_S_OK);
}

/// `scm_get_handle` on an unattached manager: argument checks, the token look-up, the entry's
/// lock and the manager's answer (`SCM_E_NOT_ATTACHED`), and no PC/SC.
#[inline(never)]
fn get_handle(m: *mut scm_manage) -> scm_hresult {
    let mut handle = 0;
    // SAFETY: a valid out-pointer.
    unsafe { scm_get_handle(black_box(m), &mut handle) }
}

/// The least any thread-safe look-up with a lock per entry costs: an uncontended mutex taken
/// and released around a call that cannot be inlined.
#[inline(never)]
fn mutex_floor(lock: &Mutex<u64>) -> u64 {
    let mut guard = lock.lock().unwrap();
    *guard += 1;
    black_box(*guard)
}

/// Tokens to visit, spread at random over the live ones, so a large table is not measured from
/// a warm cache only.
fn visiting_order(live: &[*mut scm_manage], len: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            live[(x % live.len() as u64) as usize] as usize
        })
        .collect()
}

/// Per-call time of `scm_get_handle` from one thread, interleaved with the mutex floor; and from
/// two threads at once, each on managers of its own.
/// Returns each column's median, labelled, and whether its calls visit so many managers at
/// random that they miss the cache (10^6 managers are about 80 MB of slots).
fn lookups(live: &[*mut scm_manage], rounds: usize) -> Vec<(String, f64, bool)> {
    let misses_cache = live.len() >= 1_000_000;
    let order = visiting_order(live, 1 << 16, 0x9E37_79B9_7F4A_7C15);
    let same = live[0];
    let floor = Mutex::new(0);
    let mut cursor = 0;
    let results = interleave(
        rounds,
        BATCH,
        &mut [
            &mut || {
                black_box(get_handle(same));
            },
            &mut || {
                cursor = (cursor + 1) & (order.len() - 1);
                black_box(get_handle(order[cursor] as *mut scm_manage));
            },
            &mut || {
                black_box(mutex_floor(&floor));
            },
        ],
    );
    let two = two_threads(live, rounds);
    let floor_ns = results[2].median();
    row(&[
        format!("{}", live.len()),
        human(results[0].median()),
        human(results[1].median()),
        human(two.median()),
        human(floor_ns),
        format!("{:.1}", results[1].median() / floor_ns),
    ]);
    let mut medians = vec![
        (format!("{} live, same manager", live.len()), results[0].median(), false),
        (format!("{} live, random manager", live.len()), results[1].median(), misses_cache),
    ];
    // With one live manager both threads share it, and its calls are serialized by design:
    // that is contention on one lock, not the look-up.
    if live.len() > 1 {
        medians.push((format!("{} live, 2 threads", live.len()), two.median(), misses_cache));
    }
    medians
}

/// Two threads calling `scm_get_handle` at the same time, each on its own half of the managers
/// (a single manager is shared, as calls on one manager must be serialized).
fn two_threads(live: &[*mut scm_manage], rounds: usize) -> Samples {
    let barrier = Barrier::new(2);
    let halves: Vec<Vec<usize>> = if live.len() == 1 {
        vec![vec![live[0] as usize]; 2]
    } else {
        let (a, b) = live.split_at(live.len() / 2);
        vec![visiting_order(a, 1 << 16, 1), visiting_order(b, 1 << 16, 2)]
    };
    let per_thread: Vec<Samples> = thread::scope(|scope| {
        let workers: Vec<_> = halves
            .iter()
            .map(|tokens| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut samples = Samples::default();
                    let mut cursor = 0;
                    for _ in 0..rounds {
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..BATCH {
                            cursor = (cursor + 1) % tokens.len();
                            black_box(get_handle(tokens[cursor] as *mut scm_manage));
                        }
                        samples.0.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
                    }
                    samples
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    Samples(per_thread.into_iter().flat_map(|s| s.0).collect())
}

/// `scm_create` + `scm_release` pairs per second, from 1 and from 2 threads.
fn create_release_rate(threads: usize, pairs_per_thread: usize) -> f64 {
    let start = Instant::now();
    thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..pairs_per_thread {
                    release(create());
                }
            });
        }
    });
    (threads * pairs_per_thread) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rounds = arg("--rounds", 300);
    // Every token's place is written before any measurement, so the token list itself never
    // shows up in the resident memory measured for the managers.
    let mut tokens = vec![usize::MAX as *mut scm_manage; 1_000_000];
    tokens[0] = create();

    println!("\n### Handle look-up: `scm_get_handle` on an unattached manager (no PC/SC)\n");
    println!("{rounds} rounds of {BATCH} calls; per-call medians. \"floor\" is an uncontended std Mutex lock+unlock.\n");
    header(&[
        "live managers",
        "1 thread, same manager",
        "1 thread, random manager",
        "2 threads, random managers",
        "floor (mutex)",
        "random / floor",
    ]);
    let mut medians = lookups(&tokens[..1], rounds);
    for token in &mut tokens[1..1_000] {
        *token = create();
    }
    medians.extend(lookups(&tokens[..1_000], rounds));
    let before = resident_bytes();
    for token in &mut tokens[1_000..] {
        *token = create();
    }
    let after = resident_bytes();
    medians.extend(lookups(&tokens, rounds));
    // Random visits among 10^6 managers miss the cache: those columns measure the memory as
    // much as the table, so they are a goal of their own.
    let (missing, cached): (Vec<_>, Vec<_>) = medians.into_iter().partition(|(_, _, misses)| *misses);
    println!("\n### Goals checked in this run (handle table)\n");
    header(&["goal", "measured", "bound", "met?"]);
    for (id, medians, cases) in [
        ("lookup-tens-of-ns", cached, "same manager at 1, 10^3, 10^6 live; random among 10^3"),
        ("lookup-random-among-1e6", missing, "random among 10^6 live, 1 and 2 threads"),
    ] {
        let (slowest, worst, _) = medians.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
        goal(
            id,
            format!("slowest median {} ({slowest})", human(*worst)),
            format!("< 100 ns: {cases}"),
            *worst < 100.0,
        );
    }

    println!("\n### Memory\n");
    let per_100k = (after - before) as f64 / 9.99;
    println!("- resident memory per 10^5 live managers: {:.2} MiB", per_100k / (1 << 20) as f64);
    for &m in &tokens[1..] {
        release(m);
    }
    // Warm up the steady state (the free list at its largest), then cycle.
    for _ in 0..100_000 {
        release(create());
    }
    let start_rss = resident_bytes();
    let cycles = 1_000_000;
    for _ in 0..cycles {
        release(create());
    }
    let end_rss = resident_bytes();
    println!(
        "- resident memory over {cycles} create/release cycles: {:.2} MiB before, {:.2} MiB after ({:+} KiB)",
        start_rss as f64 / (1 << 20) as f64,
        end_rss as f64 / (1 << 20) as f64,
        (end_rss as i64 - start_rss as i64) / 1024,
    );

    println!("\n### Create and release\n");
    header(&["threads", "scm_create + scm_release per second (median of 5)"]);
    for threads in [1, 2] {
        let rates = Samples((0..5).map(|_| create_release_rate(threads, 200_000)).collect());
        row(&[threads.to_string(), format!("{:.2} M/s", rates.median() / 1e6)]);
    }
    release(tokens[0]);
}
