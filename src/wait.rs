//! Waiting for the attached reader's card to change (`scm_wait_for_change`, `scm_cancel`).
//!
//! A wait blocks in `SCardGetStatusChange` on a PC/SC context of its own, never the manager's:
//! pcsc-lite holds a context's lock for the whole of that call, and pcscd serves a context from
//! one thread, so a wait on the manager's context would stall every other call on the manager.
//! Nor does it hold the manager's entry lock while it blocks: it takes what it needs (the reader,
//! the shared [`Waits`]) under that lock, then blocks outside it.
//!
//! "What the manager last saw" ([`Seen`]) is kept in [`Waits`], beside the waits in progress,
//! so that a wait records what it saw without taking the manager's entry lock again (which a
//! blocked `scm_lock` may hold for long).

use std::ffi::CString;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pcsc::ffi;

use crate::capi::SCM_WAIT_INFINITE;
use crate::handle_table::lock_ignoring_poison;
use crate::hresult::*;
use crate::manager::Manager;
use crate::objects;
use crate::scard::{self, Canceller, Context, ReaderEvent, Result};
use crate::spare_contexts;

/// How long a canceller waits for a wait to end before it cancels again: pcsc-lite ignores a
/// cancel that arrives before the wait has reached pcscd.
const CANCEL_RETRY: Duration = Duration::from_millis(5);

/// The environment variable that makes waits compare states at an interval instead of relying on
/// the reader's event counter (the way they always work on macOS).
pub const POLL_ENV: &str = "SCM_READER_POLL_MS";

/// macOS's interval when `SCM_READER_POLL_MS` is not set.
#[cfg(target_os = "macos")]
const MACOS_POLL: Duration = Duration::from_secs(1);

/// The interval at which waits compare the reader's state when the event counter is not relied
/// on: `SCM_READER_POLL_MS` (read once per process; 1 to 3,600,000 ms), else one second on
/// macOS, else `None` (the counter is used).
pub fn poll_interval() -> Option<Duration> {
    static INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        let set = std::env::var(POLL_ENV).ok().and_then(|value| parse_poll_ms(&value));
        #[cfg(target_os = "macos")]
        let set = set.or(Some(MACOS_POLL));
        set
    })
}

/// A valid `SCM_READER_POLL_MS` value; anything else is ignored.
fn parse_poll_ms(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().filter(|ms| (1..=3_600_000).contains(ms)).map(Duration::from_millis)
}

/// Where the reader's card is, as far as a wait cares: other changes PC/SC reports (another
/// program connecting, `INUSE`, `EXCLUSIVE`) are no change of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Empty,
    Present,
    /// A card that does not answer (`SCARD_STATE_MUTE`).
    Mute,
    Unavailable,
    /// No such reader (any more).
    Unknown,
}

/// One look at a reader: where its card is and, where PC/SC counts them, how many insertions
/// and removals the reader has seen (the upper 16 bits of `dwEventState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    presence: Presence,
    counter: Option<u16>,
}

impl Observation {
    /// What an event state says; the counter is kept only when `counted`.
    pub fn of(event_state: ffi::DWORD, counted: bool) -> Observation {
        let state = event_state & 0xFFFF;
        let presence = if state & ffi::SCARD_STATE_UNKNOWN != 0 {
            Presence::Unknown
        } else if state & ffi::SCARD_STATE_UNAVAILABLE != 0 {
            Presence::Unavailable
        } else if state & ffi::SCARD_STATE_EMPTY != 0 {
            Presence::Empty
        } else if state & ffi::SCARD_STATE_MUTE != 0 {
            Presence::Mute
        } else if state & ffi::SCARD_STATE_PRESENT != 0 {
            Presence::Present
        } else {
            Presence::Unavailable
        };
        let counter = counted.then_some((event_state >> 16) as u16);
        Observation { presence, counter }
    }

    /// What an event state says, the counter kept unless waits compare states at an interval
    /// ([`poll_interval`]).
    pub fn here(event_state: ffi::DWORD) -> Observation {
        Observation::of(event_state, poll_interval().is_none())
    }

    /// True when the card changed between `self` and `now`: it came, went, or, where counted,
    /// was replaced (a removal and an insertion in between leave the presence as it was and
    /// move the counter by two).
    pub fn changed_to(&self, now: &Observation) -> bool {
        self.presence != now.presence || matches!((self.counter, now.counter), (Some(a), Some(b)) if a != b)
    }
}

/// What the manager last saw of its reader's card, against which a wait decides whether the card
/// changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    /// Not attached.
    #[default]
    Nothing,
    /// The card of the manager's connection: unchanged for as long as that connection reports
    /// no removal or reset.
    Connection,
    /// The reader as it was looked at.
    Reader(Observation),
    /// The PC/SC service was lost during a wait: whatever the reader shows once the service is
    /// back is a change.
    Lost,
}

impl Seen {
    /// The reader as one looks at it now through `context`; `Lost` when it cannot be looked at.
    pub fn of_reader(context: &Context, reader: &CString) -> Seen {
        match context.reader_event(reader) {
            Ok(event) => Seen::Reader(Observation::here(event.state)),
            Err(_) => Seen::Lost,
        }
    }
}

/// A wait in progress.
#[derive(Debug)]
struct Running {
    id: u64,
    canceller: Canceller,
    cancelled: bool,
}

#[derive(Debug, Default)]
struct State {
    running: Vec<Running>,
    next_id: u64,
    seen: Seen,
    /// Bumped at each attach, reconnect and detach, so that a wait that started before one
    /// does not record what it saw of the old attachment.
    links: u64,
    /// Set when the manager is released: waits in progress end with `SCM_E_HANDLE`.
    closed: bool,
}

/// A manager's waits and what it last saw, shared between the manager (under its entry lock)
/// and the threads waiting on it (outside that lock).
#[derive(Debug, Default)]
pub struct Waits {
    state: Mutex<State>,
    ended: Condvar,
}

impl Waits {
    /// Records what the manager has just seen of its reader through its attachment (status).
    pub fn looked(&self, seen: Seen) {
        lock_ignoring_poison(&self.state).seen = seen;
    }

    /// Records what the manager sees of its reader through a new attachment or connection
    /// (attach, reconnect, detach): what a wait that started before saw is of the old one, and
    /// is not recorded.
    pub fn relinked(&self, seen: Seen) {
        let mut state = lock_ignoring_poison(&self.state);
        state.seen = seen;
        state.links += 1;
    }

    /// Ends every wait in progress with `SCM_SCARD_E_CANCELLED`, returning once they have
    /// ended. A later wait is not affected.
    pub fn cancel(&self) {
        let mut state = lock_ignoring_poison(&self.state);
        let mut ids = Vec::new();
        for running in &mut state.running {
            running.cancelled = true;
            ids.push(running.id);
        }
        loop {
            let pending: Vec<Canceller> =
                state.running.iter().filter(|r| ids.contains(&r.id)).map(|r| r.canceller).collect();
            if pending.is_empty() {
                return;
            }
            // Never under the lock: the waits take it to end.
            drop(state);
            for canceller in pending {
                canceller.cancel();
            }
            state = lock_ignoring_poison(&self.state);
            // Usually ended by now (the cancel's reply comes after the wait's); if not, wait a
            // little for it before cancelling again.
            if state.running.iter().any(|r| ids.contains(&r.id)) {
                state = self.ended.wait_timeout(state, CANCEL_RETRY).unwrap_or_else(|e| e.into_inner()).0;
            }
        }
    }

    /// Ends the waits in progress before the manager goes: they return `SCM_E_HANDLE`.
    pub fn close(&self) {
        lock_ignoring_poison(&self.state).closed = true;
        self.cancel();
    }

    /// What the manager last saw, and the attachment it saw it through.
    fn seen(&self) -> (Seen, u64) {
        let state = lock_ignoring_poison(&self.state);
        (state.seen, state.links)
    }

    fn register(&self, canceller: Canceller) -> u64 {
        let mut state = lock_ignoring_poison(&self.state);
        let id = state.next_id;
        state.next_id += 1;
        state.running.push(Running { id, canceller, cancelled: false });
        id
    }

    /// Why a wait must stop now, if it must.
    fn stop_code(&self, id: u64) -> Option<scm_hresult> {
        let state = lock_ignoring_poison(&self.state);
        match state.running.iter().find(|r| r.id == id) {
            Some(Running { cancelled: true, .. }) if state.closed => Some(SCM_E_HANDLE),
            Some(Running { cancelled: true, .. }) => Some(SCM_SCARD_E_CANCELLED),
            _ => None,
        }
    }

    /// Ends a wait; records `seen` when the manager is still on the attachment the wait
    /// started on.
    fn finish(&self, id: u64, links: u64, seen: Option<Seen>) {
        let mut state = lock_ignoring_poison(&self.state);
        state.running.retain(|r| r.id != id);
        if let Some(seen) = seen.filter(|_| state.links == links) {
            state.seen = seen;
        }
        drop(state);
        self.ended.notify_all();
    }
}

/// What a wait takes from the manager under its entry lock.
struct Prepared {
    waits: Arc<Waits>,
    reader: CString,
    id: u64,
    links: u64,
    /// `None` when the card already changed since the manager last looked.
    baseline: Option<Observation>,
    /// The reader as the wait first looked at it.
    first: ReaderEvent,
}

/// The code a wait returns for a PC/SC failure: one code for a lost service, one for a reader
/// that is gone.
fn wait_code(code: scm_hresult) -> scm_hresult {
    match code {
        code if scard::is_service_lost(code) => SCM_SCARD_E_NO_SERVICE,
        SCM_SCARD_E_UNKNOWN_READER => SCM_SCARD_E_READER_UNAVAILABLE,
        code => code,
    }
}

/// A context for a wait and the reader as seen through it now. A spare context that outlived
/// its service is replaced by a new one, so the first wait after a restart works.
fn look_at_reader(reader: &CString) -> Result<(Context, ReaderEvent)> {
    let mut context = spare_contexts::take().map_err(wait_code)?;
    let mut look = context.reader_event(reader);
    if look.as_ref().is_err_and(|code| scard::is_service_lost(*code)) {
        context = Context::establish().map_err(wait_code)?;
        look = context.reader_event(reader);
    }
    match look {
        Ok(event) => Ok((context, event)),
        Err(code) => {
            if !scard::is_service_lost(code) {
                spare_contexts::keep(context);
            }
            Err(wait_code(code))
        }
    }
}

impl Manager {
    /// The first part of a wait, under the manager's entry lock: the reader, a context for the
    /// wait, and what the manager last saw, turned into a state to compare with.
    fn prepare_wait(&mut self) -> Result<(Prepared, Context)> {
        let reader = CString::new(self.reader_name()?).map_err(|_| SCM_E_UNEXPECTED)?;
        let waits = Arc::clone(self.waits());
        let (seen, links) = waits.seen();
        // The connection's card is still in for as long as its handle reports no removal or
        // reset: a look at the reader between two such answers is a look at that card.
        // A connection that is gone (a failed reconnect dropped it) is a change too.
        let handle = match seen {
            Seen::Connection => self.card_handle().ok(),
            _ => None,
        };
        let in_before = handle.is_some_and(|handle| handle.status().is_ok());
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::run_window(crate::test_hooks::Window::WaitLook);
        let (context, first) = look_at_reader(&reader)?;
        let baseline = match seen {
            Seen::Reader(observation) => Some(observation),
            Seen::Connection if in_before && handle.is_some_and(|handle| handle.status().is_ok()) => {
                Some(Observation::here(first.state))
            }
            Seen::Connection | Seen::Nothing | Seen::Lost => None,
        };
        let id = waits.register(context.canceller());
        Ok((Prepared { waits, reader, id, links, baseline, first }, context))
    }
}

/// `scm_wait_for_change`: blocks until the card of the manager's reader changes from what the
/// manager last saw, and returns the COM state of the reader then.
pub fn wait_for_change(token: usize, timeout_ms: u32) -> Result<u32> {
    let (prepared, context) = objects::with(token, objects::manager, Manager::prepare_wait)?;
    let mut running = Finish { prepared, context: Some(context), seen: None };
    let result = block(&running.prepared, running.context.as_ref().expect("set above"), timeout_ms);
    running.seen = match &result {
        Ok(event) => Some(Seen::Reader(Observation::here(event.state))),
        Err(SCM_SCARD_E_NO_SERVICE) => Some(Seen::Lost),
        Err(_) => None,
    };
    drop(running);
    result.map(|event| scard::reader_state_to_com(event.state))
}

/// Ends a wait however `block` ends (a panic included, which a canceller would otherwise wait
/// on for ever): unregistered, what it saw recorded, its context kept unless its service is
/// gone.
struct Finish {
    prepared: Prepared,
    context: Option<Context>,
    seen: Option<Seen>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let Prepared { waits, id, links, .. } = &self.prepared;
        waits.finish(*id, *links, self.seen);
        if let (Some(context), false) = (self.context.take(), self.seen == Some(Seen::Lost)) {
            spare_contexts::keep(context);
        }
    }
}

/// The blocking part of a wait, outside the manager's entry lock: the reader's state once
/// its card differs from the baseline.
fn block(prepared: &Prepared, context: &Context, timeout_ms: u32) -> Result<ReaderEvent> {
    let counted = poll_interval().is_none();
    let deadline =
        (timeout_ms != SCM_WAIT_INFINITE).then(|| Instant::now() + Duration::from_millis(timeout_ms.into()));
    let mut event = prepared.first;
    loop {
        let now = Observation::of(event.state, counted);
        if now.presence == Presence::Unknown {
            return Err(SCM_SCARD_E_READER_UNAVAILABLE);
        }
        if prepared.baseline.map_or(true, |baseline| baseline.changed_to(&now)) {
            return Ok(event);
        }
        if let Some(code) = prepared.waits.stop_code(prepared.id) {
            return Err(code);
        }
        let left = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(SCM_SCARD_E_TIMEOUT),
            },
        };
        let slice = match (left, poll_interval()) {
            (Some(left), Some(poll)) => Some(left.min(poll)),
            (left, poll) => left.or(poll),
        };
        // Rounded up, so that a wait never ends before its timeout.
        let slice_ms = slice.map_or(SCM_WAIT_INFINITE, |slice| {
            slice.as_micros().div_ceil(1000).clamp(1, u128::from(SCM_WAIT_INFINITE - 1)) as u32
        });
        // The state as last seen, without the "changed" flag, is what PC/SC waits to differ.
        // It never holds SCARD_STATE_IGNORE, which has PC/SC skip the reader: WinSCard sets it
        // only with SCARD_STATE_UNKNOWN, which ended the wait above.
        let current = event.state & !ffi::SCARD_STATE_CHANGED;
        match context.status_change(&prepared.reader, current, slice_ms) {
            Ok(next) => event = next,
            // The slice ended, or a cancel came that was meant for a wait that has ended or had
            // not reached pcscd yet: the loop decides.
            Err(SCM_SCARD_E_TIMEOUT | SCM_SCARD_E_CANCELLED) => {}
            Err(code) => return Err(wait_code(code)),
        }
    }
}

/// `scm_cancel`: ends the waits in progress on the manager.
pub fn cancel(token: usize) -> Result<()> {
    let waits = objects::with(token, objects::manager, |manager| Ok(Arc::clone(manager.waits())))?;
    waits.cancel();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESENT: ffi::DWORD = ffi::SCARD_STATE_PRESENT;
    const EMPTY: ffi::DWORD = ffi::SCARD_STATE_EMPTY;

    fn seen(state: ffi::DWORD, counted: bool) -> Observation {
        Observation::of(state, counted)
    }

    #[test]
    fn presence_comes_from_the_state_bits() {
        assert_eq!(seen(EMPTY, true).presence, Presence::Empty);
        assert_eq!(seen(PRESENT | ffi::SCARD_STATE_INUSE, true).presence, Presence::Present);
        assert_eq!(seen(PRESENT | ffi::SCARD_STATE_MUTE, true).presence, Presence::Mute);
        assert_eq!(
            seen(ffi::SCARD_STATE_UNKNOWN | ffi::SCARD_STATE_UNAVAILABLE, true).presence,
            Presence::Unknown
        );
        assert_eq!(seen(ffi::SCARD_STATE_UNAVAILABLE, true).presence, Presence::Unavailable);
        assert_eq!(
            seen(0x0005_0000, true),
            Observation { presence: Presence::Unavailable, counter: Some(5) }
        );
    }

    #[test]
    fn a_swap_moves_the_counter_and_is_a_change_where_counted() {
        let before = 0x0003_0000 | PRESENT;
        let swapped = 0x0005_0000 | PRESENT;
        assert!(seen(before, true).changed_to(&seen(swapped, true)));
        // Polling (macOS, SCM_READER_POLL_MS): no counter, so a swap between two looks is lost.
        assert!(!seen(before, false).changed_to(&seen(swapped, false)));
        // Another program connecting is no change of the card.
        assert!(!seen(before, true)
            .changed_to(&seen(before | ffi::SCARD_STATE_INUSE | ffi::SCARD_STATE_CHANGED, true)));
        assert!(seen(before, false).changed_to(&seen(0x0004_0000 | EMPTY, false)));
        // The counter wraps at 16 bits, as pcsc-lite's does.
        assert!(seen(0xFFFF_0000 | PRESENT, true).changed_to(&seen(PRESENT, true)));
    }

    #[test]
    fn a_lost_service_and_a_gone_reader_each_have_one_code() {
        for lost in [
            SCM_SCARD_E_NO_SERVICE,
            SCM_SCARD_E_SERVICE_STOPPED,
            SCM_SCARD_F_COMM_ERROR,
            SCM_SCARD_E_INVALID_HANDLE,
        ] {
            assert_eq!(wait_code(lost), SCM_SCARD_E_NO_SERVICE);
        }
        assert_eq!(wait_code(SCM_SCARD_E_UNKNOWN_READER), SCM_SCARD_E_READER_UNAVAILABLE);
        assert_eq!(wait_code(SCM_SCARD_E_TIMEOUT), SCM_SCARD_E_TIMEOUT);
        // What pcsc-lite reports for a reader that left during a wait.
        assert_eq!(
            seen(ffi::SCARD_STATE_UNKNOWN | ffi::SCARD_STATE_UNAVAILABLE | ffi::SCARD_STATE_CHANGED, true)
                .presence,
            Presence::Unknown
        );
    }

    #[test]
    fn the_poll_interval_is_validated() {
        assert_eq!(parse_poll_ms("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_poll_ms(" 1000\n"), Some(Duration::from_secs(1)));
        for invalid in ["", "0", "-5", "abc", "3600001", "1e3"] {
            assert_eq!(parse_poll_ms(invalid), None, "{invalid:?}");
        }
    }
}
