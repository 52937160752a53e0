//! How long after a card goes in `scm_wait_for_change` returns, against a raw
//! `SCardGetStatusChange` waiting on the same reader at the same time: both wait for the same
//! insertion in every round, which one starts waiting first alternating, so each round's
//! difference is what the library adds, free of pcscd's polling phase.
//!
//! `cargo bench --bench wait [-- --rounds N]`.
// The lab (a private pcscd) runs on Linux only: elsewhere the benchmark is empty, so that
// `cargo clippy --all-targets` passes there (the binary has nothing to run, hence no `main`).
#![cfg_attr(not(target_os = "linux"), no_main)]
#![cfg(target_os = "linux")]

mod common;

use std::ffi::CString;
use std::ptr;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use pcsc::{Context, ReaderState, Scope, State};
use scardmanage::*;
use scardmanage_lab::{wait_card, Lab, VirtualCard, SOCKET_ENV};

/// pcsc-lite 1.9.9's `PCSCLITE_STATUS_POLL_RATE`: how often pcscd asks a driver without
/// card-event notification (vpcd) whether a card is in.
const PCSCD_POLL_MS: f64 = 400.0;
/// How long a removed card's reader rests before the next insertion: pcscd's poller must see it
/// empty first.
const SETTLE: Duration = Duration::from_millis(600);
/// Both waiters are in pcscd before the card goes in.
const WAITERS_READY: Duration = Duration::from_millis(50);
/// Each insertion lands at a random point of pcscd's polling cycle (up to this much later), so
/// that the raw wait's spread over the rounds shows the polling period.
const JITTER_MS: u64 = 450;
const SEEN_MS: u32 = 10_000;

/// A raw waiter on a context of its own: the reader's state once it differs from `current`
/// (`SCARD_STATE_UNAWARE`: at once).
fn raw_wait(context: &Context, reader: &CString, current: State) -> State {
    let mut states = [ReaderState::new(reader.clone(), current)];
    context
        .get_status_change(Duration::from_millis(SEEN_MS.into()), &mut states)
        .expect("raw SCardGetStatusChange");
    states[0].event_state()
}

fn main() {
    let rounds = arg("--rounds", 30);
    let lab = Lab::start(1).expect("starting the PC/SC lab (needs root and the lab's packages)");
    // Before this process's first PC/SC call: libpcsclite reads it once.
    std::env::set_var(SOCKET_ENV, lab.socket_path());
    let reader = &lab.readers()[0];
    let name = CString::new(reader.name.clone()).unwrap();
    let card = VirtualCard::with_default_applet();
    assert!(wait_card(&reader.name, false, Duration::from_secs(10)));

    let mut m = ptr::null_mut();
    // SAFETY: valid out-pointers and a NUL-terminated name; released at the end.
    unsafe {
        assert_eq!(scm_create(&mut m), SCM_S_OK);
        assert_eq!(scm_attach_by_ifd(m, name.as_ptr()), SCM_S_OK);
    }
    let context = Context::establish(Scope::User).expect("a raw PC/SC context");
    let token = m as usize;

    let (mut library, mut raw) = (Samples::default(), Samples::default());
    let mut random: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..rounds {
        // The raw waiter's starting point: the empty reader as it is now, counter included.
        let empty = raw_wait(&context, &name, State::UNAWARE) - State::CHANGED;
        let ready = Barrier::new(3);
        let (library_at, raw_at, inserted_at) = thread::scope(|scope| {
            let library_first = round % 2 == 0;
            let (ready, name, card, context) = (&ready, &name, &card, &context);
            let library_waiter = scope.spawn(move || {
                ready.wait();
                if !library_first {
                    thread::sleep(Duration::from_millis(5));
                }
                let mut state = 0;
                // SAFETY: a live token and a valid out-pointer.
                let hr = unsafe { scm_wait_for_change(token as *mut scm_manage, SEEN_MS, &mut state) };
                let at = Instant::now();
                assert_eq!((hr, state), (SCM_S_OK, SCM_STATE_PRESENT), "library wait: {hr:#x}");
                at
            });
            let raw_waiter = scope.spawn(move || {
                ready.wait();
                if library_first {
                    thread::sleep(Duration::from_millis(5));
                }
                let state = raw_wait(context, name, empty);
                let at = Instant::now();
                assert!(state.contains(State::PRESENT), "raw wait: {state:?}");
                at
            });
            ready.wait();
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            thread::sleep(WAITERS_READY + Duration::from_millis(random % JITTER_MS));
            let inserted_at = Instant::now();
            card.insert(reader.port);
            (library_waiter.join().unwrap(), raw_waiter.join().unwrap(), inserted_at)
        });
        library.0.push((library_at - inserted_at).as_nanos() as f64);
        raw.0.push((raw_at - inserted_at).as_nanos() as f64);
        card.remove();
        assert!(wait_card(&reader.name, false, Duration::from_secs(10)));
        let (mut state, mut protocol) = (0, 0);
        // SAFETY: valid out-pointers. The manager looks at the empty reader again, so that the
        // next round's wait waits for the next insertion.
        assert_eq!(unsafe { scm_status(m, &mut state, &mut protocol) }, SCM_S_OK);
        assert_eq!(state, SCM_STATE_ABSENT);
        thread::sleep(SETTLE);
    }

    let ms = |ns: f64| format!("{:.1} ms", ns / 1e6);
    let added = paired_difference(&library, &raw);
    let ratio = library.median() / raw.median();
    let spread = raw.quantile(1.0) - raw.quantile(0.0);
    let jitter = format!("inserted at a random point of a {JITTER_MS} ms window");
    println!(
        "\n### A card goes in: scm_wait_for_change against a raw SCardGetStatusChange ({rounds} rounds)\n"
    );
    println!(
        "Both wait for the same insertion on the same reader (each on its own PC/SC context), which \
         one starts first alternating; times from the card's connection to the reader until each \
         returns; each card {jitter}.\n"
    );
    header(&["waiter", "median", "min", "max"]);
    for (who, samples) in [("scm_wait_for_change", &library), ("raw SCardGetStatusChange", &raw)] {
        row(&[who.into(), ms(samples.median()), ms(samples.quantile(0.0)), ms(samples.quantile(1.0))]);
    }
    println!(
        "\nLibrary minus raw, round by round: median {} (IQR {} … {}). pcscd's polling period is the \
         floor: the raw wait's spread over the rounds (max − min) is {}, for pcsc-lite's \
         PCSCLITE_STATUS_POLL_RATE of {PCSCD_POLL_MS:.0} ms.",
        human(added.median()),
        human(added.quantile(0.25)),
        human(added.quantile(0.75)),
        ms(spread),
    );
    println!("\n### Goals checked in this run (wait)\n");
    header(&["goal", "measured", "bound", "met?"]);
    goal(
        "wait-latency",
        format!(
            "ratio {ratio:.4} of the medians, {} added (median of the differences)",
            human(added.median())
        ),
        "ratio ≤ 1.02, or under 1 ms added".into(),
        ratio <= 1.02 || added.median() < 1e6,
    );

    // SAFETY: our token, released once.
    unsafe { scm_release(m) };
}
