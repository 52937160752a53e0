//! The monitor: every reader of the system and every card in them, as a queue of events.
//!
//! No thread of its own: all the watching happens inside `next`, on the caller's thread. What
//! happens between two calls is not lost, because PC/SC is asked how each reader differs from
//! what the monitor last saw, not what happened while it looked: pcsc-lite and WinSCard count a
//! reader's card insertions and removals in the upper 16 bits of its event state, so a card put
//! in and pulled out between two looks is a counter step of 2 with the presence unchanged, and
//! is reported as both events.
//!
//! Two ways to learn of readers coming and going:
//! - the notification reader (`\\?PnP?\Notification`), watched with the readers, wakes the
//!   monitor when the reader list changes; the list is then read again;
//! - listing the readers at an interval, where that reader does not exist (macOS) or when
//!   `SCM_READER_POLL_MS` asks for it.
//!
//! macOS has no event counter either: there only a change of presence between two looks is
//! seen.
//!
//! A service that stops is reported as every card and every reader removed; the monitor then
//! establishes a new context at intervals and reports the readers of the new service as added.

mod engine;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::handle_table::lock_ignoring_poison;
use crate::hresult::*;
use crate::scard::{Canceller, Result};

pub use self::engine::Event;
use self::engine::{Engine, Mode};

/// The environment variable that makes the monitor list the readers every that many
/// milliseconds instead of relying on the notification reader.
const POLL_ENV: &str = "SCM_READER_POLL_MS";
/// The listing interval where PC/SC has no notification reader.
#[cfg(target_os = "macos")]
const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// The object behind a `scm_monitor *`. Dropping it ends every `next` in progress first.
pub struct Monitor {
    shared: Arc<Shared>,
}

/// What the calls on one monitor share. The table's entry lock is held only to clone this, so
/// that a `next` blocked in PC/SC holds up neither `cancel` nor `release`.
pub struct Shared {
    /// Held by a `next` for its whole length: calls to `next` on one monitor take turns.
    engine: Mutex<Engine>,
    control: Mutex<Control>,
    /// Wakes a `next` sleeping between retries, and a `cancel` waiting for `next` to return.
    wake: Condvar,
}

#[derive(Default)]
struct Control {
    /// Bumped by every cancel: a `next` that entered before it returns `SCARD_E_CANCELLED`.
    cancels: u64,
    closed: bool,
    /// The value `cancels` had when each `next` in progress started.
    entered: Vec<u64>,
    /// The context a `next` may be blocked on, while it is live.
    blocking: Option<Canceller>,
}

/// Why a `next` stops before it has an event, checked between its blocking steps.
pub struct Interrupt<'a> {
    shared: &'a Shared,
    entered: u64,
}

impl Monitor {
    /// A monitor that has seen nothing yet: its first events are the readers and cards already
    /// there. The mode is chosen here, from `SCM_READER_POLL_MS`.
    pub fn new() -> Monitor {
        let mode = match poll_interval_from_env() {
            Some(interval) => Mode::Poll(interval),
            #[cfg(target_os = "macos")]
            None => Mode::Poll(DEFAULT_POLL),
            #[cfg(not(target_os = "macos"))]
            None => Mode::Notify,
        };
        Monitor {
            shared: Arc::new(Shared {
                engine: Mutex::new(Engine::new(mode)),
                control: Mutex::default(),
                wake: Condvar::new(),
            }),
        }
    }

    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// The interval `SCM_READER_POLL_MS` asks for: a whole number of milliseconds from 1 up; any
/// other value is ignored.
fn poll_interval_from_env() -> Option<Duration> {
    let value = std::env::var(POLL_ENV).ok()?;
    value.trim().parse::<u32>().ok().filter(|&ms| ms > 0).map(|ms| Duration::from_millis(ms.into()))
}

impl Shared {
    /// Waits up to `timeout` (`None`: for ever) for the next event and hands it to `deliver`;
    /// the event leaves the queue only when `deliver` succeeds and says it was taken.
    pub fn next(
        &self,
        timeout: Option<Duration>,
        deliver: impl FnOnce(Event, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let entered = {
            let mut control = self.control();
            if control.closed {
                return Err(SCM_E_HANDLE);
            }
            let entered = control.cancels;
            control.entered.push(entered);
            entered
        };
        // Declared before the interrupt, so dropped after it (also by a panic): this call's
        // bookkeeping, the blocking context included, is undone before the next call's turn
        // begins; undone after, it would unset the context that call is blocked on, out of a
        // cancel's reach.
        let mut engine;
        let interrupt = Interrupt { shared: self, entered };
        engine = lock_ignoring_poison(&self.engine);
        // Checked once it is this call's turn: a cancel may have come while another ran.
        interrupt.check()?;
        engine.next(deadline, &interrupt, deliver)
    }

    /// Ends every `next` in progress with `SCARD_E_CANCELLED`, and returns once they have
    /// returned. A `next` that starts afterwards is not affected.
    pub fn cancel(&self) {
        let mut control = self.control();
        control.cancels += 1;
        self.interrupt_until_idle(control);
    }

    /// No `next` runs on this monitor after this returns; those in progress end first.
    fn close(&self) {
        let mut control = self.control();
        control.closed = true;
        control.cancels += 1;
        self.interrupt_until_idle(control);
    }

    /// Interrupts the `next` calls that entered before the latest cancel until they are gone.
    /// The interruption is repeated: a `SCardCancel` that lands just before a `next` enters
    /// PC/SC would otherwise be lost.
    fn interrupt_until_idle(&self, mut control: MutexGuard<'_, Control>) {
        let cancels = control.cancels;
        while control.entered.iter().any(|&entered| entered < cancels) {
            if let Some(blocking) = control.blocking {
                blocking.cancel();
            }
            self.wake.notify_all();
            control = wait(&self.wake, control, Duration::from_millis(10));
        }
    }

    fn control(&self) -> MutexGuard<'_, Control> {
        lock_ignoring_poison(&self.control)
    }
}

/// Leaving a `next`, even by a panic: a cancel no longer waits for it, and its context is no
/// longer a target.
impl Drop for Interrupt<'_> {
    fn drop(&mut self) {
        let mut control = self.shared.control();
        control.blocking = None;
        if let Some(at) = control.entered.iter().position(|&entered| entered == self.entered) {
            control.entered.swap_remove(at);
        }
        drop(control);
        self.shared.wake.notify_all();
    }
}

impl Interrupt<'_> {
    /// `SCARD_E_CANCELLED` once cancelled, `SCM_E_HANDLE` once released.
    pub fn check(&self) -> Result<()> {
        let control = self.shared.control();
        match control.cancels == self.entered {
            true => Ok(()),
            false if control.closed => Err(SCM_E_HANDLE),
            false => Err(SCM_SCARD_E_CANCELLED),
        }
    }

    /// Makes a blocking call on `context` interruptible by a cancel while it runs.
    pub fn blocking_on(&self, context: Option<Canceller>) {
        self.shared.control().blocking = context;
    }

    /// Sleeps until `until`, or less when cancelled.
    pub fn sleep(&self, until: Instant) -> Result<()> {
        let mut control = self.shared.control();
        while control.cancels == self.entered {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            control = wait(&self.shared.wake, control, left);
        }
        drop(control);
        self.check()
    }
}

/// Waits on a condition variable for up to `time`, through a poisoned lock as well.
fn wait<'a>(wake: &Condvar, control: MutexGuard<'a, Control>, time: Duration) -> MutexGuard<'a, Control> {
    wake.wait_timeout(control, time).map_or_else(|poisoned| poisoned.into_inner().0, |(control, _)| control)
}
