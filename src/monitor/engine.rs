//! What a monitor knows (its context, the readers and their last states, the events not yet
//! taken) and how one look at PC/SC turns into events.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcsc::ffi;

use super::Interrupt;
use crate::hresult::*;
use crate::scard::{self, Context, Result, Watched, PNP_NOTIFICATION};

/// The first pause before establishing a context again after the service was lost; each
/// failed attempt doubles it, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The most readers one `SCardGetStatusChange` takes on pcsc-lite
/// (`PCSCLITE_MAX_READERS_CONTEXTS`), which is also the most readers it serves.
const MAX_WATCHED: usize = 16;

/// What one event says happened; the values are the ABI's `SCM_EVENT_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    ReaderAdded = 1,
    ReaderRemoved = 2,
    CardInserted = 3,
    CardRemoved = 4,
}

/// How readers coming and going are learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Woken by the notification reader.
    Notify,
    /// The readers listed at this interval.
    Poll(Duration),
}

/// Events not yet taken. A run of card events on one reader is one entry: `repeat` events,
/// alternating between removal and insertion, starting with `event`.
struct Pending {
    event: Event,
    reader: Arc<CStr>,
    repeat: u32,
}

struct Reader {
    name: Arc<CStr>,
    /// The event state last seen, as PC/SC gave it (passed back to it as the current state).
    state: ffi::DWORD,
}

impl Reader {
    fn present(&self) -> bool {
        self.state & ffi::SCARD_STATE_PRESENT != 0
    }
}

pub struct Engine {
    mode: Mode,
    context: Option<Context>,
    readers: Vec<Reader>,
    /// The notification reader's state last seen (the reader count, on Windows).
    notification: ffi::DWORD,
    queue: VecDeque<Pending>,
    /// While there is no context: when to try again, and the pause before that attempt.
    retry: Option<(Instant, Duration)>,
    /// When to list the readers again: at once after a failed or incomplete listing, at the
    /// interval in polling mode, never otherwise.
    listing_due: Option<Instant>,
}

impl Engine {
    pub fn new(mode: Mode) -> Engine {
        Engine {
            mode,
            context: None,
            readers: Vec::new(),
            notification: ffi::SCARD_STATE_UNAWARE,
            queue: VecDeque::new(),
            retry: None,
            listing_due: None,
        }
    }

    /// Hands the first event to `deliver` (taken off the queue when it says so), looking at
    /// PC/SC until there is one, `deadline` passes or the call is interrupted.
    pub fn next(
        &mut self,
        deadline: Option<Instant>,
        interrupt: &Interrupt<'_>,
        deliver: impl FnOnce(Event, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        loop {
            if let Some(first) = self.queue.front_mut() {
                if deliver(first.event, first.reader.to_bytes_with_nul())? {
                    if first.repeat > 1 {
                        first.repeat -= 1;
                        first.event = match first.event {
                            Event::CardInserted => Event::CardRemoved,
                            _ => Event::CardInserted,
                        };
                    } else {
                        self.queue.pop_front();
                    }
                }
                return Ok(());
            }
            interrupt.check()?;
            self.look(deadline, interrupt)?;
            interrupt.check()?;
            if self.queue.is_empty() && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(SCM_SCARD_E_TIMEOUT);
            }
        }
    }

    /// One look at PC/SC, blocking at most until `deadline`; queues what it finds.
    fn look(&mut self, deadline: Option<Instant>, interrupt: &Interrupt<'_>) -> Result<()> {
        if self.context.is_none() {
            return self.establish(deadline, interrupt);
        }
        let now = Instant::now();
        let due = self.listing_due.is_some_and(|due| due <= now);
        if due {
            self.listing_due = match self.mode {
                Mode::Poll(interval) => Some(now + interval),
                Mode::Notify => None,
            };
        }
        // pcsc-lite 1.9.9 counts the readers when a wait starts and flags the notification
        // reader only for a change after that: a reader that came since the last listing (while
        // the caller took its time over that listing's events, say) would never be reported.
        // So the list is read again right before each wait.
        if due || self.mode == Mode::Notify {
            self.list()?;
        }
        let Some(context) = self.context.as_ref().filter(|_| self.queue.is_empty()) else {
            return Ok(());
        };
        let until = match self.listing_due {
            Some(due) => Some(deadline.map_or(due, |deadline| deadline.min(due))),
            None => deadline,
        };
        // pcsc-lite serves 16 readers and watches at most 16 in one call: with 16 readers no
        // other can come, and one that leaves says so in its own state.
        let notify = self.mode == Mode::Notify && self.readers.len() < MAX_WATCHED;
        let mut watched: Vec<Watched> = self
            .readers
            .iter()
            .map(|reader| Watched::new(reader.name.as_ref().into(), reader.state))
            .collect();
        if notify {
            watched.push(Watched::new(PNP_NOTIFICATION.into(), self.notification));
        }
        if watched.is_empty() {
            return interrupt.sleep(until.unwrap_or_else(|| now + Duration::from_secs(3600)));
        }
        interrupt.blocking_on(Some(context.canceller()));
        let changed = context.watch(&mut watched, milliseconds_until(until));
        interrupt.blocking_on(None);
        match changed {
            Ok(false) | Err(SCM_SCARD_E_CANCELLED) => Ok(()),
            Ok(true) => {
                let mut relist = false;
                if notify {
                    // The notification reader is last. pcsc-lite 1.9.9 flags a change of the
                    // reader list made during the call; WinSCard also keeps the reader count in
                    // the upper 16 bits.
                    let notification = watched.pop().expect("the notification reader is watched");
                    relist = notification.changed;
                    self.notification = notification.state;
                }
                let mut gone = Vec::new();
                for (index, seen) in watched.into_iter().enumerate() {
                    match seen.state & ffi::SCARD_STATE_UNKNOWN != 0 {
                        // No such reader any more: the listing removes it, its card first.
                        true => gone.push(seen),
                        false => self.card_events(index, seen.state),
                    }
                }
                if !relist && gone.is_empty() {
                    return Ok(());
                }
                self.list()?;
                // A reader PC/SC does not know but still lists (on its way out) is watched as
                // unknown from now on, so that the next look waits instead of returning at once
                // (pcsc-lite looks at nothing else for an unknown reader). Whether it held a card
                // is kept, for when it is reported removed.
                for seen in gone {
                    if let Some(reader) = self.readers.iter_mut().find(|reader| *reader.name == *seen.name) {
                        reader.state = seen.state | (reader.state & ffi::SCARD_STATE_PRESENT);
                    }
                }
                Ok(())
            }
            // A reader left between the listing and this look (WinSCard says so this way).
            Err(SCM_SCARD_E_UNKNOWN_READER) => self.list(),
            Err(code) if service_lost(context, code) => {
                self.lose_service();
                Ok(())
            }
            Err(code) => Err(code),
        }
    }

    /// Establishes a context when the retry time has come (else sleeps towards it), and lists
    /// the readers of the service found.
    fn establish(&mut self, deadline: Option<Instant>, interrupt: &Interrupt<'_>) -> Result<()> {
        if let Some((at, _)) = self.retry.filter(|&(at, _)| at > Instant::now()) {
            return interrupt.sleep(deadline.map_or(at, |deadline| deadline.min(at)));
        }
        match Context::establish() {
            Ok(context) => {
                self.context = Some(context);
                self.retry = None;
                if let Mode::Poll(interval) = self.mode {
                    self.listing_due = Some(Instant::now() + interval);
                }
                self.list()
            }
            Err(code) if scard::is_service_lost(code) => {
                let pause = match (self.mode, self.retry) {
                    (Mode::Poll(interval), _) => interval,
                    (Mode::Notify, Some((_, pause))) => (pause * 2).min(RETRY_MAX),
                    (Mode::Notify, None) => RETRY_FIRST,
                };
                self.retry = Some((Instant::now() + pause, pause));
                Ok(())
            }
            Err(code) => Err(code),
        }
    }

    /// Reads the reader list and queues the readers that left (their card first) and those
    /// that came (then their card, if one is in).
    fn list(&mut self) -> Result<()> {
        let Some(context) = &self.context else {
            return Ok(());
        };
        let listed = match context.list_readers() {
            Ok(names) => names,
            Err(SCM_SCARD_E_NO_READERS_AVAILABLE) => Vec::new(),
            Err(code) if service_lost(context, code) => {
                self.lose_service();
                return Ok(());
            }
            Err(code) => return Err(code),
        };
        let listed: Vec<&[u8]> = listed.split(|&byte| byte == 0).filter(|name| !name.is_empty()).collect();
        let mut arrived: Vec<Watched> = listed
            .iter()
            .filter(|name| !self.readers.iter().any(|reader| reader.name.to_bytes() == **name))
            .filter_map(|name| CString::new(*name).ok())
            .map(|name| Watched::new(name, ffi::SCARD_STATE_UNAWARE))
            .collect();
        let seen = match arrived.is_empty() {
            true => Ok(false),
            false => context.watch(&mut arrived, 0),
        };
        match seen {
            Ok(_) => {}
            // One of them left already: the next look lists them again.
            Err(SCM_SCARD_E_UNKNOWN_READER) => {
                arrived.clear();
                self.listing_due = Some(Instant::now());
            }
            Err(code) if service_lost(context, code) => {
                self.lose_service();
                return Ok(());
            }
            Err(code) => return Err(code),
        }
        for reader in std::mem::take(&mut self.readers) {
            match listed.contains(&reader.name.to_bytes()) {
                true => self.readers.push(reader),
                false => self.removed(&reader),
            }
        }
        for seen in arrived {
            if seen.state & ffi::SCARD_STATE_UNKNOWN != 0 || seen.state == ffi::SCARD_STATE_UNAWARE {
                self.listing_due = Some(Instant::now());
                continue;
            }
            let reader = Reader { name: Arc::from(seen.name), state: seen.state };
            self.push(Event::ReaderAdded, &reader.name, 1);
            if reader.present() {
                self.push(Event::CardInserted, &reader.name, 1);
            }
            self.readers.push(reader);
        }
        Ok(())
    }

    /// Queues the card events between a reader's last state and `state`: from the event
    /// counter where there is one (every insertion and removal steps it, so a card put in and
    /// pulled out between two looks is two steps with the presence unchanged), else (macOS)
    /// from the presence alone.
    fn card_events(&mut self, index: usize, state: ffi::DWORD) {
        let reader = &self.readers[index];
        // A counter that went back (a step of 2^15 or more: that many events between two looks
        // do not happen), or a reader PC/SC did not know at the last look, is another reader
        // under the same name: one unplugged and plugged in again between two looks, whose
        // counter started again from 0. Counted as it is, the step would be some 65530 events.
        let unknown = reader.state & ffi::SCARD_STATE_UNKNOWN != 0;
        if unknown || (!cfg!(target_os = "macos") && counter_step(reader.state, state) >= 0x8000) {
            let name = Arc::clone(&reader.name);
            let gone = std::mem::replace(&mut self.readers[index], Reader { name, state });
            self.removed(&gone);
            self.push(Event::ReaderAdded, &gone.name, 1);
            if self.readers[index].present() {
                self.push(Event::CardInserted, &gone.name, 1);
            }
            return;
        }
        let was_present = reader.present();
        let is_present = state & ffi::SCARD_STATE_PRESENT != 0;
        // PCSC.framework keeps no counter: the upper bits are not relied on there.
        let counted = match cfg!(target_os = "macos") {
            true => 0,
            false => counter_step(reader.state, state),
        };
        let steps = transitions(counted, was_present != is_present);
        let name = Arc::clone(&reader.name);
        self.readers[index].state = state;
        if steps > 0 {
            let first = if was_present { Event::CardRemoved } else { Event::CardInserted };
            self.push(first, &name, steps);
        }
    }

    /// A reader that left: its card is reported removed first.
    fn removed(&mut self, reader: &Reader) {
        if reader.present() {
            self.push(Event::CardRemoved, &reader.name, 1);
        }
        self.push(Event::ReaderRemoved, &reader.name, 1);
    }

    /// The service is gone: every card and reader is reported removed, the context released,
    /// and a new one will be tried after the first pause.
    fn lose_service(&mut self) {
        for reader in std::mem::take(&mut self.readers) {
            self.removed(&reader);
        }
        self.context = None;
        self.notification = ffi::SCARD_STATE_UNAWARE;
        self.listing_due = None;
        let pause = match self.mode {
            Mode::Poll(interval) => interval,
            Mode::Notify => RETRY_FIRST,
        };
        self.retry = Some((Instant::now() + pause, pause));
    }

    fn push(&mut self, event: Event, reader: &Arc<CStr>, repeat: u32) {
        self.queue.push_back(Pending { event, reader: Arc::clone(reader), repeat });
    }
}

/// Whether `code`, from a call on `context`, says the service is gone. pcsc-lite 1.9.9 ends a
/// call whose daemon died with SCARD_W_SECURITY_VIOLATION (measured: it reads the closed
/// connection as a refusal), not a service code, whichever call it is: any other failure is
/// checked with a call that says whether the service is still there.
fn service_lost(context: &Context, code: scm_hresult) -> bool {
    scard::is_service_lost(code) || context.list_readers().is_err_and(scard::is_service_lost)
}

/// How far a reader's event counter (the upper 16 bits of its event state) moved from `old`
/// to `new`: it is 16 bits wide, so the step is taken modulo 2^16.
fn counter_step(old: ffi::DWORD, new: ffi::DWORD) -> u32 {
    u32::from((new >> 16).wrapping_sub(old >> 16) as u16)
}

/// How many card events a counter step of `counted` (mod 2^16) and a change of presence (or
/// not) stand for. Each event flips the presence, so the count's parity must match; a counter
/// that moved for something else, or did not move at all (no counter on this platform), is
/// corrected by one towards what the presence proves.
fn transitions(counted: u32, presence_changed: bool) -> u32 {
    match (counted % 2 == 1) == presence_changed {
        true => counted,
        false if counted == 0 => 1,
        false => counted - 1,
    }
}

/// A PC/SC timeout in milliseconds for a deadline (rounded up, so that a wait never ends
/// before it), or INFINITE.
fn milliseconds_until(deadline: Option<Instant>) -> u32 {
    const INFINITE: u32 = 0xFFFF_FFFF;
    match deadline {
        None => INFINITE,
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_micros().div_ceil(1000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_steps_and_presence_make_the_event_count() {
        assert_eq!(transitions(0, false), 0);
        assert_eq!(transitions(1, true), 1);
        assert_eq!(transitions(2, false), 2, "in and out between two looks");
        assert_eq!(transitions(200, false), 200);
        assert_eq!(transitions(0, true), 1, "no counter: presence alone");
        assert_eq!(transitions(1, false), 0);
        assert_eq!(transitions(4, true), 3);
    }

    #[test]
    fn a_run_comes_out_one_event_at_a_time_and_only_when_taken() {
        let monitor = super::super::Monitor::new();
        let shared = monitor.shared();
        let interrupt = Interrupt { shared: &shared, entered: 0 };
        let mut engine = Engine::new(Mode::Notify);
        let reader: Arc<CStr> = Arc::from(c"Lab A 00 00");
        engine.push(Event::CardRemoved, &reader, 3);
        let mut next = |taken: Result<bool>| {
            let mut seen = None;
            let result = engine.next(None, &interrupt, |event, name| {
                assert_eq!(name, b"Lab A 00 00\0");
                seen = Some(event);
                taken
            });
            (result, seen)
        };
        assert_eq!(next(Ok(false)), (Ok(()), Some(Event::CardRemoved)), "a peek");
        let short = Err(SCM_SCARD_E_INSUFFICIENT_BUFFER);
        assert_eq!(next(short), (short.map(|_| ()), Some(Event::CardRemoved)), "kept");
        assert_eq!(next(Ok(true)), (Ok(()), Some(Event::CardRemoved)));
        assert_eq!(next(Ok(true)), (Ok(()), Some(Event::CardInserted)));
        assert_eq!(next(Ok(true)), (Ok(()), Some(Event::CardRemoved)));
        assert!(engine.queue.is_empty());
    }

    /// Unplugged and plugged in again between two looks, a reader comes back under the same
    /// name with its event counter started again from 0.
    #[test]
    fn a_reader_back_under_the_same_name_is_removed_and_added() {
        let name: Arc<CStr> = Arc::from(c"Lab A 00 00");
        let was = ffi::SCARD_STATE_PRESENT | 0x0005_0000;
        let events = |now: ffi::DWORD| {
            let mut engine = Engine::new(Mode::Notify);
            engine.readers.push(Reader { name: Arc::clone(&name), state: was });
            engine.card_events(0, now);
            assert_eq!(engine.readers[0].state, now);
            engine.queue.iter().map(|pending| (pending.event, pending.repeat)).collect::<Vec<_>>()
        };
        let back = [(Event::CardRemoved, 1), (Event::ReaderRemoved, 1), (Event::ReaderAdded, 1)];
        assert_eq!(events(ffi::SCARD_STATE_EMPTY), back, "counter 5 to 0");
        let with_card = ffi::SCARD_STATE_PRESENT | 0x0001_0000;
        assert_eq!(events(with_card), [&back[..], &[(Event::CardInserted, 1)]].concat(), "5 to 1");
        assert_eq!(events(ffi::SCARD_STATE_PRESENT | 0x0007_0000), [(Event::CardRemoved, 2)], "5 to 7");
        // Unknown at the last look (its card kept), known again now.
        let mut engine = Engine::new(Mode::Notify);
        let unknown = ffi::SCARD_STATE_UNKNOWN | ffi::SCARD_STATE_UNAVAILABLE | ffi::SCARD_STATE_PRESENT;
        engine.readers.push(Reader { name: Arc::clone(&name), state: unknown });
        engine.card_events(0, ffi::SCARD_STATE_EMPTY | 0x0002_0000);
        let events: Vec<_> = engine.queue.iter().map(|pending| (pending.event, pending.repeat)).collect();
        assert_eq!(events, back, "unknown, then known");
    }

    #[test]
    fn a_counter_step_across_the_wrap_counts() {
        assert_eq!(counter_step(0x0003_0020, 0x0005_0022), 2);
        assert_eq!(counter_step(0xFFFF_0020, 0x0001_0020), 2, "across the wrap");
        assert_eq!(counter_step(0xFFFE_0022, 0xFFFF_0020), 1);
        assert_eq!(counter_step(0x0007_0020, 0x0007_0120), 0, "other state bits are no step");
    }

    #[test]
    fn timeouts_round_up_and_never_mean_infinite() {
        assert_eq!(milliseconds_until(None), 0xFFFF_FFFF);
        assert_eq!(milliseconds_until(Some(Instant::now())), 0);
        let soon = milliseconds_until(Some(Instant::now() + Duration::from_micros(1500)));
        assert!((1..=2).contains(&soon), "{soon}");
        // Rounded up to 2^32 - 1 ms, the deadline would read as INFINITE.
        let far = Instant::now() + Duration::from_millis(0xFFFF_FFFF);
        assert_eq!(milliseconds_until(Some(far)), 0xFFFF_FFFE);
        assert_eq!(milliseconds_until(Some(far + Duration::from_secs(1))), 0xFFFF_FFFE);
    }
}

/// The engine in the mode a test cannot pick through the C surface (it is read from the
/// environment once per process), against the shared lab's 16 readers.
#[cfg(all(test, target_os = "linux"))]
mod lab {
    use super::*;
    use crate::monitor::Monitor;

    /// The CPU time the calling thread has used so far (user and system).
    fn thread_cpu_time() -> Duration {
        let mut used = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut used) }, 0);
        Duration::new(used.tv_sec as u64, used.tv_nsec as u32)
    }

    /// The next event `engine` gives by `deadline`, as an (event, reader) pair.
    fn next_event(
        engine: &mut Engine,
        interrupt: &Interrupt<'_>,
        deadline: Instant,
    ) -> Option<(Event, String)> {
        let mut taken = None;
        let given = engine.next(Some(deadline), interrupt, |event, name| {
            let name = CStr::from_bytes_with_nul(name).expect("a C string").to_string_lossy();
            taken = Some((event, name.into_owned()));
            Ok(true)
        });
        if let Err(code) = given {
            assert_eq!(code, SCM_SCARD_E_TIMEOUT);
        }
        taken
    }

    /// The events `engine` gives until `deadline`, as (event, reader) pairs.
    fn events_until(
        engine: &mut Engine,
        interrupt: &Interrupt<'_>,
        deadline: Instant,
    ) -> Vec<(Event, String)> {
        std::iter::from_fn(|| next_event(engine, interrupt, deadline)).collect()
    }

    /// Runs `test` on an engine in `mode` against the shared lab, once the engine's first look
    /// has reported each of the lab's readers.
    fn with_engine(mode: Mode, test: impl FnOnce(&mut Engine, &Interrupt<'_>)) {
        let lab = scardmanage_lab::shared();
        let monitor = Monitor::new();
        let shared = monitor.shared();
        let interrupt = Interrupt { shared: &shared, entered: 0 };
        let mut engine = Engine::new(mode);
        assert_eq!(events_until(&mut engine, &interrupt, Instant::now()).len(), lab.readers().len());
        test(&mut engine, &interrupt);
    }

    /// Where the engine keeps the reader named `name`.
    fn position_of(engine: &Engine, name: &str) -> usize {
        engine
            .readers
            .iter()
            .position(|reader| reader.name.to_bytes() == name.as_bytes())
            .expect("a known reader")
    }

    /// Asserts that the events `engine` gives for the reader `name` are `expected`, all before a
    /// deadline 10 s away (some take a second look, which a loaded machine may delay), and that
    /// a look made at once then adds none. The deadline's own look is not counted: it lists the
    /// readers, and so would find a reader that a wait never reported.
    #[track_caller]
    fn assert_events_of(engine: &mut Engine, interrupt: &Interrupt<'_>, name: &str, expected: &[Event]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while events.len() < expected.len() && expected.starts_with(&events) {
            let Some((event, reader)) = next_event(engine, interrupt, deadline) else { break };
            if reader == name {
                events.push(event);
            }
        }
        assert_eq!(events, expected, "the events of {name} before the deadline");
        let more: Vec<Event> = events_until(engine, interrupt, Instant::now())
            .into_iter()
            .filter(|(_, reader)| reader == name)
            .map(|(event, _)| event)
            .collect();
        assert_eq!(more, [], "events of {name} after the expected ones");
    }

    /// The lab cannot plug a reader into its running pcscd, nor unplug one (its readers come
    /// and go with a restart, which the monitor sees as a new service). So the engine is made
    /// to have missed a reader that is there ("plugged in since the last look"), and to know
    /// one PC/SC does not ("unplugged"): the next look must report them.
    #[test]
    fn readers_that_came_and_went_since_the_last_look_are_reported() {
        let came = scardmanage_lab::shared().readers()[0].name.clone();

        // Notified of reader changes: the readers are listed before each wait.
        with_engine(Mode::Notify, |engine, interrupt| {
            engine.readers.remove(position_of(engine, &came));
            assert_events_of(engine, interrupt, &came, &[Event::ReaderAdded]);
        });

        // Listing every 10 s: a watched reader that left ends the wait at once (pcsc-lite 1.9.9
        // refuses the wait with SCARD_E_UNKNOWN_READER), and the listing made then reports it
        // gone (its card first) and finds the one that came.
        with_engine(Mode::Poll(Duration::from_secs(10)), |engine, interrupt| {
            let at = position_of(engine, &came);
            let gone = Arc::from(c"Gone 00 00");
            engine.readers[at] = Reader { name: gone, state: ffi::SCARD_STATE_PRESENT | 0x0003_0000 };
            let events = events_until(engine, interrupt, Instant::now() + Duration::from_secs(2));
            let ours: Vec<_> =
                events.into_iter().filter(|(_, name)| *name == came || name == "Gone 00 00").collect();
            let gone = || "Gone 00 00".to_string();
            let expected = [
                (Event::CardRemoved, gone()),
                (Event::ReaderRemoved, gone()),
                (Event::ReaderAdded, came.clone()),
            ];
            assert_eq!(ours, expected, "listing");
        });
    }

    /// While the service runs, a failure is not taken for its loss (which the monitor reports
    /// as every reader removed), even the one pcsc-lite gives a call whose daemon died.
    #[test]
    fn a_failure_is_a_lost_service_only_when_the_service_is_gone() {
        scardmanage_lab::shared();
        let context = Context::establish().expect("a context");
        assert!(!service_lost(&context, SCM_SCARD_E_INVALID_VALUE));
        assert!(!service_lost(&context, SCM_SCARD_W_SECURITY_VIOLATION));
        assert!(service_lost(&context, SCM_SCARD_E_NO_SERVICE));
    }

    /// A PC/SC failure other than a lost service, in any call the engine makes, is the
    /// caller's error: not every reader reported removed, as a lost service would be. The lab's
    /// pcscd never fails so while it runs: the failures are scripted (pcsc-lite gives
    /// SCARD_E_NO_MEMORY when it cannot allocate, the daemon's answers included).
    #[test]
    fn a_failure_other_than_a_lost_service_is_returned() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        let lab = scardmanage_lab::shared();
        let monitor = Monitor::new();
        let shared = monitor.shared();
        let interrupt = Interrupt { shared: &shared, entered: 0 };
        let failed = Err(SCM_SCARD_E_NO_MEMORY);
        let soon = || Some(Instant::now() + Duration::from_secs(1));
        let mut engine = Engine::new(Mode::Notify);
        script(Call::Establish, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(engine.next(soon(), &interrupt, |_, _| Ok(true)), failed, "establishing");
        assert_eq!(events_until(&mut engine, &interrupt, Instant::now()).len(), lab.readers().len());
        script(Call::ListReaders, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(engine.next(soon(), &interrupt, |_, _| Ok(true)), failed, "listing");
        script(Call::Watch, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(engine.next(soon(), &interrupt, |_, _| Ok(true)), failed, "waiting");
        engine.readers.pop();
        script(Call::Watch, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(engine.next(soon(), &interrupt, |_, _| Ok(true)), failed, "the arrivals' first look");
        assert_eq!(scripted_left(), []);
    }

    /// The service stopped between a listing and the first look at the readers that came: every
    /// reader known is reported removed (the service stopped is scripted: the lab's pcscd stops
    /// only with its readers, for every test of the process).
    #[test]
    fn a_service_lost_before_the_arrivals_first_look_reports_every_reader_removed() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        with_engine(Mode::Notify, |engine, interrupt| {
            engine.readers.pop();
            script(Call::Watch, Answer::Fail(SCM_SCARD_E_NO_SERVICE));
            let events = events_until(engine, interrupt, Instant::now());
            let removed = events.iter().filter(|(event, _)| *event == Event::ReaderRemoved).count();
            assert_eq!(removed, scardmanage_lab::shared().readers().len() - 1, "{events:?}");
            assert!(!events.iter().any(|(event, _)| *event == Event::ReaderAdded), "{events:?}");
            assert_eq!(scripted_left(), []);
        });
    }

    /// A reader that left between the listing and its first look (WinSCard reports it UNKNOWN,
    /// scripted here) is not added then: it is added once, when a listing finds it known.
    #[test]
    fn a_reader_gone_before_its_first_look_is_added_once() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        let lease = scardmanage_lab::lease();
        let came = lease.name();
        with_engine(Mode::Notify, |engine, interrupt| {
            engine.readers.remove(position_of(engine, came));
            script(Call::Watch, Answer::Unknown(0));
            assert_events_of(engine, interrupt, came, &[Event::ReaderAdded]);
            assert_eq!(scripted_left(), [], "the arrival's first look took the scripted answer");
        });
    }

    /// A watched reader PC/SC reports UNKNOWN during a wait while still listing it (WinSCard,
    /// for a reader being unplugged, with IGNORE; scripted here) is reported removed, then added
    /// again once PC/SC knows it; with no card in, no card event comes. (A card is not inserted: the other
    /// tests of the lab's engine count on empty readers.)
    #[test]
    fn a_reader_unknown_during_a_wait_is_removed_and_added_again() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        let lease = scardmanage_lab::lease();
        let name = lease.name();
        with_engine(Mode::Notify, |engine, interrupt| {
            script(Call::Watch, Answer::Unknown(position_of(engine, name)));
            assert_events_of(engine, interrupt, name, &[Event::ReaderRemoved, Event::ReaderAdded]);
            assert_eq!(scripted_left(), []);
        });
    }

    /// Notified of reader changes, with fewer than 16 readers: a reader plugged in after the
    /// listing made before a wait (scripted: the lab cannot plug one in) ends that wait, through
    /// the notification reader, and is reported then, not at the deadline.
    #[test]
    fn a_reader_plugged_in_during_a_wait_is_reported() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        with_engine(Mode::Notify, |engine, interrupt| {
            let came = engine.readers.pop().expect("the lab's readers").name.to_string_lossy().into_owned();
            script(Call::ListReaders, Answer::LastLeftOut);
            script(Call::Watch, Answer::Plugged);
            assert_events_of(engine, interrupt, &came, &[Event::ReaderAdded]);
            assert_eq!(scripted_left(), []);
        });
    }

    /// The scripted answers the tests above rely on are what they claim to be, against the
    /// lab's real answers: a listing without its last reader and nothing else changed (the next
    /// listing's answer left for it), and a wait whose named reader alone is reported unknown
    /// (without WinSCard's `SCARD_STATE_IGNORE`, which passed back would have it skipped), or
    /// whose notification reader alone is flagged, the others as PC/SC reports them to that
    /// caller (unflagged for one that has seen them already).
    #[test]
    fn the_scripted_answers_change_only_what_they_say() {
        use crate::test_hooks::{script, scripted_left, Answer, Call};
        let lab = scardmanage_lab::shared();
        let context = Context::establish().expect("a context");
        let all = context.list_readers().expect("the lab's readers");
        // The next listing's answer stays for the next listing.
        script(Call::ListReaders, Answer::LastLeftOut);
        script(Call::ListReaders, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        let fewer = context.list_readers().expect("the scripted listing");
        assert_eq!(context.list_readers(), Err(SCM_SCARD_E_NO_MEMORY), "the next listing");
        let names: Vec<&[u8]> = all.split(|&byte| byte == 0).filter(|name| !name.is_empty()).collect();
        assert_eq!(names.len(), lab.readers().len());
        let mut expected: Vec<u8> =
            names[..names.len() - 1].iter().flat_map(|name| [name, &[0][..]].concat()).collect();
        expected.push(0);
        assert_eq!(fewer, expected, "the listing without its last reader");

        // Two readers of this test's own, where no other test puts a card.
        let leases = [scardmanage_lab::lease(), scardmanage_lab::lease()];
        let watched = |notification: bool| {
            let mut readers: Vec<Watched> = leases
                .iter()
                .map(|lease| Watched::new(CString::new(lease.name()).unwrap(), ffi::SCARD_STATE_UNAWARE))
                .collect();
            if notification {
                readers.push(Watched::new(PNP_NOTIFICATION.into(), ffi::SCARD_STATE_UNAWARE));
            }
            readers
        };
        // The readers as a caller that has seen them passes them back.
        let again = |readers: &[Watched]| -> Vec<Watched> {
            readers.iter().map(|seen| Watched::new(seen.name.clone(), seen.state)).collect()
        };
        let looked =
            |readers: &[Watched]| -> Vec<_> { readers.iter().map(|r| (r.state, r.changed)).collect() };
        let mut real = watched(false);
        assert_eq!(context.watch(&mut real, 0), Ok(true));
        script(Call::Watch, Answer::Unknown(1));
        let mut unknown = watched(false);
        assert_eq!(context.watch(&mut unknown, 0), Ok(true));
        assert_eq!(looked(&unknown), [looked(&real)[0], (ffi::SCARD_STATE_UNKNOWN, true)], "first look");
        // Seen, and flagged by that last look: nothing changed since, so no flag is left but the
        // answer's own.
        let mut unknown = watched(false);
        assert_eq!(context.watch(&mut unknown, 0), Ok(true));
        script(Call::Watch, Answer::Unknown(1));
        assert_eq!(context.watch(&mut unknown, 0), Ok(true));
        assert_eq!(looked(&unknown), [(real[0].state, false), (ffi::SCARD_STATE_UNKNOWN, true)], "seen");

        script(Call::Watch, Answer::Plugged);
        let mut plugged = watched(true);
        assert_eq!(context.watch(&mut plugged, 0), Ok(true));
        assert_eq!(looked(&plugged[..2]), looked(&real), "first look");
        assert!(plugged[2].changed, "the notification reader flagged");
        script(Call::Watch, Answer::Plugged);
        let mut replugged = again(&plugged);
        assert_eq!(context.watch(&mut replugged, 0), Ok(true));
        let flagged: Vec<_> =
            plugged.iter().map(|seen| (seen.state, *seen.name == *PNP_NOTIFICATION)).collect();
        assert_eq!(looked(&replugged), flagged, "seen: the notification reader alone flagged");
        // Without the notification reader, a plug-in wakes nobody: the real call as asked.
        script(Call::Watch, Answer::Plugged);
        assert_eq!(context.watch(&mut again(&real), 0), Ok(false), "nothing changed since the last look");
        script(Call::Watch, Answer::Fail(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(context.watch(&mut watched(false), 0), Err(SCM_SCARD_E_NO_MEMORY));
        assert_eq!(scripted_left(), []);
    }

    /// A script that names a reader the watch does not have fails its test, saying so (not
    /// with an index out of bounds, nor by a call of PC/SC on what it was given).
    #[test]
    #[should_panic(expected = "Unknown(2) scripted for a watch of 2 readers")]
    fn an_unknown_reader_past_the_watched_ones_panics() {
        use crate::test_hooks::{script, Answer, Call};
        scardmanage_lab::shared();
        let context = Context::establish().expect("a context");
        let mut readers = [c"Nowhere 00 00", c"Nowhere 01 00"]
            .map(|name| Watched::new(name.into(), ffi::SCARD_STATE_UNAWARE));
        script(Call::Watch, Answer::Unknown(2));
        let _ = context.watch(&mut readers, 0);
    }

    /// Listing the readers at an interval, a monitor with nothing to report sleeps between its
    /// looks (one listing and one wait per interval): a quiet 2 s wait costs milliseconds of
    /// CPU, not a spinning core.
    #[test]
    fn listing_at_an_interval_sleeps_between_looks() {
        let readers = scardmanage_lab::shared().readers().len();
        let monitor = Monitor::new();
        let shared = monitor.shared();
        let interrupt = Interrupt { shared: &shared, entered: 0 };
        let mut engine = Engine::new(Mode::Poll(Duration::from_millis(100)));
        assert_eq!(events_until(&mut engine, &interrupt, Instant::now()).len(), readers, "the initial state");
        let (started, cpu) = (Instant::now(), thread_cpu_time());
        let quiet = engine.next(Some(started + Duration::from_secs(2)), &interrupt, |_, _| Ok(true));
        let (took, used) = (started.elapsed(), thread_cpu_time() - cpu);
        eprintln!("a quiet 2 s wait, listing every 100 ms: {took:?}, {used:?} of CPU");
        assert_eq!(quiet, Err(SCM_SCARD_E_TIMEOUT));
        assert!(took >= Duration::from_secs(2));
        assert!(used < took / 20, "{used:?} of CPU in {took:?}");
    }
}
