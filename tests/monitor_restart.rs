//! The monitor while pcscd is killed and restarted, and while readers come and go (the lab
//! restarts the daemon with more readers, then fewer): every card and reader reported removed,
//! then the readers of the new daemon added, with nothing asked of the caller. A test binary
//! of its own, with a daemon of its own: killing it would disturb every other test.
//! Run a second time with `SCM_READER_POLL_MS` set: each change must then be reported within
//! one interval plus 100 ms.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod monitor_support;

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use monitor_support::*;
use scardmanage::*;
use scardmanage_lab::{wait_card, Lab, VirtualCard, SOCKET_ENV};

const WAIT: Duration = Duration::from_secs(10);

/// The bound on seeing a change. Polling: one interval plus 100 ms (the promise). Otherwise
/// a removal comes at once (the blocked wait fails with the daemon) and the readers of a new
/// daemon within the longest pause between context attempts (1 s), plus a margin for a loaded
/// machine.
fn bound() -> Duration {
    poll_interval().map_or(Duration::from_millis(2000), |interval| interval + Duration::from_millis(100))
}

/// A monitor whose events a thread of its own takes as they come (blocked in
/// `scm_monitor_next` the rest of the time), each with the instant it was returned.
struct Running {
    events: mpsc::Receiver<(Event, Instant)>,
    monitor: Arc<Monitor>,
    consumer: Option<thread::JoinHandle<scm_hresult>>,
}

impl Running {
    fn start(monitor: Arc<Monitor>) -> Running {
        let (send, events) = mpsc::channel();
        let consumer = {
            let monitor = Arc::clone(&monitor);
            thread::spawn(move || loop {
                match monitor.next(SCM_WAIT_INFINITE) {
                    Ok(event) => send.send((event, Instant::now())).expect("the test takes the events"),
                    Err(hr) => return hr,
                }
            })
        };
        Running { events, monitor, consumer: Some(consumer) }
    }

    /// Events until every one of `wanted` has come; returns them all (in order) and how long
    /// after `since` the last wanted one was returned.
    fn expect(&mut self, since: Instant, wanted: &[Event]) -> (Vec<Event>, Duration) {
        let mut seen = Vec::new();
        let mut last = Duration::ZERO;
        while !wanted.iter().all(|event| seen.contains(event)) {
            match self.events.recv_timeout(WAIT) {
                Ok((event, at)) => {
                    if wanted.contains(&event) {
                        last = at.saturating_duration_since(since);
                    }
                    seen.push(event);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("waiting for {wanted:?}: nothing after {seen:?}")
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let ended = self.consumer.take().map(|consumer| consumer.join().unwrap());
                    panic!("waiting for {wanted:?}: next failed with {ended:#010x?} after {seen:?}")
                }
            }
        }
        (seen, last)
    }

    /// `events` followed by what comes until `wanted` has come too (it may be there already).
    fn also(&mut self, mut events: Vec<Event>, wanted: &Event) -> Vec<Event> {
        if !events.contains(wanted) {
            events.extend(self.expect(Instant::now(), std::slice::from_ref(wanted)).0);
        }
        events
    }

    /// Cancels the consumer's wait; returns what it ended with, and the monitor. A cancel ends
    /// only the calls already in progress: one that lands while the consumer is between two
    /// calls (it has just returned an event) ends nothing, so it is repeated until the consumer
    /// is gone.
    fn stop(mut self) -> (scm_hresult, Arc<Monitor>) {
        let consumer = self.consumer.take().unwrap();
        let deadline = Instant::now() + WAIT;
        while !consumer.is_finished() {
            assert!(Instant::now() < deadline, "the consumer outlived every cancel");
            assert_eq!(self.monitor.cancel(), SCM_S_OK);
            thread::sleep(Duration::from_millis(20));
        }
        (consumer.join().unwrap(), self.monitor)
    }
}

fn names(lab: &Lab) -> Vec<String> {
    lab.readers().iter().map(|reader| reader.name.clone()).collect()
}

/// Releases `monitor` while another thread is blocked in `scm_monitor_next` on it. This lab is
/// quiet (no other test uses it), so no event can end that call: the release must, with
/// `SCM_E_HANDLE`, and promptly.
fn release_ends_a_blocked_next(mut monitor: Monitor) {
    let token = monitor.0 as usize;
    let (send, ended) = mpsc::channel();
    thread::spawn(move || {
        send.send(next_on_token(token, SCM_WAIT_INFINITE)).expect("the test waits for the call")
    });
    thread::sleep(Duration::from_millis(300));
    let released = Instant::now();
    assert_eq!(monitor.release(), SCM_S_OK);
    let took = released.elapsed();
    assert!(took < PROMPT, "the release took {took:?}");
    assert_eq!(
        ended.recv_timeout(PROMPT),
        Ok(SCM_E_HANDLE),
        "the blocked next, after {:?}",
        released.elapsed()
    );
}

/// Asserts that a reader's card was reported removed before the reader.
fn card_before_reader(events: &[Event], reader: &str) {
    let card = events.iter().position(|event| *event == pulled(reader));
    let gone = events.iter().position(|event| *event == removed(reader));
    assert!(card < gone, "{reader}: card removed first: {events:?}");
}

#[test]
fn the_monitor_survives_restarts_and_sees_readers_come_and_go() {
    let mut lab = Lab::start(1).expect("a private lab");
    // Before any PC/SC call of this process: libpcsclite reads it once.
    std::env::set_var(SOCKET_ENV, lab.socket_path());
    let readers = names(&lab);
    let (with_card, empty) = (readers[0].as_str(), readers[1].as_str());
    let card = VirtualCard::with_default_applet();
    card.insert(lab.readers()[0].port);
    assert!(wait_card(with_card, true, WAIT));

    let monitor = Monitor::new();
    assert_eq!(monitor.drain(), [added(with_card), inserted(with_card), added(empty)], "the initial state");
    let other = Monitor::new();
    assert_eq!(other.drain().len(), 3, "the initial state");
    release_ends_a_blocked_next(other);
    // While the daemon is down, a wait times out as asked (checked below); now the monitor
    // runs, blocked in `scm_monitor_next` between events.
    let mut running = Running::start(Arc::new(monitor));

    // Killed: everything removed, the card before its reader.
    let killed = Instant::now();
    lab.kill();
    let (events, took) = running.expect(killed, &[pulled(with_card), removed(with_card), removed(empty)]);
    eprintln!("pcscd killed: {events:?} after {took:?}");
    card_before_reader(&events, with_card);
    assert_eq!(events.len(), 3, "nothing else: {events:?}");
    assert!(took <= bound(), "removals reported after {took:?}");
    // While the daemon is down, a wait times out as asked, asleep between the attempts to
    // establish a context: a monitor spinning there would burn a core while the service is away.
    let (ended, monitor) = running.stop();
    assert_eq!(ended, SCM_SCARD_E_CANCELLED);
    let (started, cpu) = (Instant::now(), thread_cpu_time());
    assert_eq!(monitor.next(2000).unwrap_err(), SCM_SCARD_E_TIMEOUT);
    let (took, used) = (started.elapsed(), thread_cpu_time() - cpu);
    eprintln!("a 2 s wait with pcscd down: {took:?}, {used:?} of CPU");
    assert!(took >= Duration::from_millis(2000));
    // Measured: under a millisecond; spinning, a tenth of the wait or more even on a loaded machine.
    assert!(used < took / 50, "{used:?} of CPU in {took:?}");
    // And a release ends a wait there too.
    let other = Monitor::new();
    assert_eq!(other.next(0), Err(SCM_SCARD_E_TIMEOUT));
    release_ends_a_blocked_next(other);
    let mut running = Running::start(monitor);

    // Back: the readers again, and the card that stayed in.
    lab.restart().expect("the daemon restarts");
    let back = Instant::now();
    let (events, took) = running.expect(back, &[added(with_card), added(empty)]);
    eprintln!("pcscd back: readers after {took:?}");
    assert!(took <= bound(), "readers reported after {took:?}");
    let events = running.also(events, &inserted(with_card));
    let added_at = events.iter().position(|event| *event == added(with_card));
    let inserted_at = events.iter().position(|event| *event == inserted(with_card));
    assert!(added_at < inserted_at, "{events:?}");
    assert_eq!(events.len(), 3, "nothing else: {events:?}");

    // Two more readers: the daemon restarts with another pair.
    lab.restart_with_pairs(2).expect("the daemon restarts with 4 readers");
    let grown = Instant::now();
    let readers = names(&lab);
    assert_eq!(readers.len(), 4);
    let wanted: Vec<Event> = [pulled(with_card), removed(with_card), removed(empty)]
        .into_iter()
        .chain(readers.iter().map(|reader| added(reader)))
        .collect();
    let (events, took) = running.expect(grown, &wanted);
    eprintln!("4 readers: {events:?}, the last after {took:?}");
    card_before_reader(&events, with_card);
    assert!(took <= bound(), "new readers reported after {took:?}");
    let events = running.also(events, &inserted(with_card));
    assert_eq!(events.len(), wanted.len() + 1, "nothing else: {events:?}");

    // And back to two: the new pair goes and does not come back.
    lab.restart_with_pairs(1).expect("the daemon restarts with 2 readers");
    let shrunk = Instant::now();
    let wanted: Vec<Event> = [pulled(with_card)]
        .into_iter()
        .chain(readers.iter().map(|reader| removed(reader)))
        .chain([added(with_card), added(empty)])
        .collect();
    let (events, took) = running.expect(shrunk, &wanted);
    eprintln!("2 readers: {events:?}, the last after {took:?}");
    assert!(took <= bound(), "reported after {took:?}");
    for gone in &readers[2..] {
        let last = events.iter().rposition(|event| event.reader == *gone);
        assert_eq!(last.map(|at| &events[at]), Some(&removed(gone)), "{gone} stays removed");
    }
    let events = running.also(events, &inserted(with_card));
    assert_eq!(events.len(), wanted.len() + 1, "nothing else: {events:?}");
    assert_eq!(running.stop().0, SCM_SCARD_E_CANCELLED);
}
