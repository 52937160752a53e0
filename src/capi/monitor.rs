//! The monitor's C functions (`scm_monitor_*`).

use std::ffi::c_char;
use std::time::Duration;

use libc::size_t;

use super::{boundary, write_out};
use crate::hresult::*;
use crate::monitor::{Event, Monitor};
use crate::objects::{self, Object};
use crate::scard::Result;

/// An opaque monitor of every reader and card of the system: the C side only ever holds a
/// `scm_monitor *`, a token of the same table as `scm_manage *` (a token of one kind passed as
/// the other is `SCM_E_HANDLE`).
#[allow(non_camel_case_types)]
pub struct scm_monitor {
    _opaque: [u8; 0],
}

// SCM_WAIT_INFINITE, the timeout that never ends, is the wait branch's (capi/wait.rs).
use super::SCM_WAIT_INFINITE;

/// Monitor events (`scm_monitor_next`).
pub const SCM_EVENT_READER_ADDED: u32 = 1;
pub const SCM_EVENT_READER_REMOVED: u32 = 2;
pub const SCM_EVENT_CARD_INSERTED: u32 = 3;
pub const SCM_EVENT_CARD_REMOVED: u32 = 4;
const _: () = assert!(
    Event::ReaderAdded as u32 == SCM_EVENT_READER_ADDED
        && Event::ReaderRemoved as u32 == SCM_EVENT_READER_REMOVED
        && Event::CardInserted as u32 == SCM_EVENT_CARD_INSERTED
        && Event::CardRemoved as u32 == SCM_EVENT_CARD_REMOVED
);

/// Runs `f` on the shared part of a live monitor; the table's lock on the entry is released
/// before `f` runs, so that a `scm_monitor_next` blocked in PC/SC holds up no other call.
fn with_monitor<R>(mon: *mut scm_monitor, f: impl FnOnce(&crate::monitor::Shared) -> Result<R>) -> Result<R> {
    non_null!(mon);
    let shared = objects::with(mon as usize, objects::monitor, |monitor| Ok(monitor.shared()))?;
    f(&shared)
}

/// Creates a monitor of every reader of the system and every card in them. No PC/SC call is
/// made here: the first `scm_monitor_next` establishes the monitor's own PC/SC context.
///
/// The monitor learns of readers coming and going through PC/SC's notification reader
/// (`\\?PnP?\Notification`) on Linux and Windows. On macOS, which has none, and on any OS when the
/// environment variable `SCM_READER_POLL_MS` holds a number of milliseconds (1 or more) when the
/// monitor is created, it lists the readers at that interval instead (every 1000 ms on macOS by
/// default), and a reader that comes or goes is reported within one interval. What listing
/// cannot see: a reader unplugged and plugged in again within one interval. On macOS,
/// PCSC.framework also keeps no per-reader event counter, so a card put in and taken out again
/// (or out and in) between two looks at its reader is not reported there; elsewhere the
/// counter is used in both modes, and such a card is reported as both events.
///
/// Errors: `SCM_E_POINTER` (`out` is NULL), `SCM_E_OUTOFMEMORY` (no token left, as
/// `scm_create` says). `*out` is written only on success; end the monitor with
/// `scm_monitor_release`.
#[no_mangle]
pub unsafe extern "C" fn scm_monitor_create(out: *mut *mut scm_monitor) -> scm_hresult {
    boundary(|| {
        let out = out_ref!(out);
        let token = objects::insert(Object::Monitor(Monitor::new()))?;
        *out = token as *mut scm_monitor;
        Ok(())
    })
}

/// Waits up to `timeout_ms` milliseconds (`SCM_WAIT_INFINITE`: no limit; 0: only what is known
/// at once) for the next event and returns it: `*event` is one of `SCM_EVENT_READER_ADDED`,
/// `SCM_EVENT_READER_REMOVED`, `SCM_EVENT_CARD_INSERTED`, `SCM_EVENT_CARD_REMOVED`, and
/// `reader` receives the reader's name, NUL-terminated, under the buffer rules (as PC/SC gives
/// it, see `scm_list_readers`).
///
/// The first calls report what is already there: each reader (`READER_ADDED`), followed by
/// its card if one is in (`CARD_INSERTED`), so a monitor started late misses nothing. After
/// that, every change, in the order seen per reader: a reader plugged in (then its card, if
/// any), a card inserted or removed, a reader unplugged (its card reported removed first).
///
/// Nothing is lost between two calls, however long the caller takes: the monitor has no
/// thread of its own and looks at PC/SC only inside this call, when it has nothing left to
/// report, asking how each reader differs from what it last saw. PC/SC's per-reader event
/// counter (pcsc-lite, WinSCard; not macOS) is used, so a card inserted and removed between two
/// looks is both events, in order. A reader unplugged and plugged in again between two looks
/// comes back under the same name with its counter started again: a counter that went back (a
/// step of 32768 or more) is reported as the reader (and its card) removed, then added (with
/// its card). The events not yet returned are at most four entries per reader at any time (a
/// run of card events on one reader is kept as one entry with its count, then its card and the
/// reader itself when it leaves; or a reader's card, itself, itself again and its card when it
/// comes back), so a consumer that never calls costs no memory and no PC/SC traffic.
///
/// Buffer rules for the name: `*reader_len` is the capacity in bytes; on success it is the
/// length written, NUL included. `reader` NULL asks for the size: `SCM_S_OK` with `*event` and
/// `*reader_len` set and the event kept for the next call (a peek). Too small:
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER` with `*reader_len` set to the size needed and the event
/// kept for the next call: nothing is lost. `reader_len` NULL (with `reader` NULL): the name is
/// not wanted, and the event is taken.
///
/// A restart of the PC/SC service needs nothing from the caller: every card and every reader
/// is reported removed (each card before its reader), then the monitor establishes a new
/// context, 100 ms after the loss and then at doubling intervals up to every 1 s (at the
/// listing interval when listing), and reports the readers of the new service as added, with
/// their cards. A PC/SC failure the monitor cannot recover from by itself is returned (never a
/// silent stop); the monitor stays usable, and the next call tries again.
///
/// Threads: calls to `scm_monitor_next` on one monitor take turns; the monitor's other calls
/// are never held up by a `scm_monitor_next` in progress. `scm_monitor_cancel` from another
/// thread ends it with `SCM_SCARD_E_CANCELLED`; `scm_monitor_release` from another thread ends
/// it with `SCM_E_HANDLE`, before the release returns.
///
/// PC/SC calls: `SCardEstablishContext` (once, and again after a service loss),
/// `SCardListReaders` (before each wait for the notification reader, which on pcsc-lite 1.9
/// reports only changes made during a wait, or at the interval when listing) and
/// `SCardGetStatusChange` on every reader and the notification reader (the blocking wait).
///
/// Errors: `SCM_E_POINTER` (`mon` or `event` NULL, or `reader` given without `reader_len`),
/// `SCM_E_HANDLE` (not a live monitor, or released during the call), `SCM_SCARD_E_TIMEOUT`
/// (no event within `timeout_ms`), `SCM_SCARD_E_CANCELLED` (`scm_monitor_cancel`),
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER`, other PC/SC codes as described above. Outputs are written
/// only on success (and `*reader_len` with `SCM_SCARD_E_INSUFFICIENT_BUFFER`).
#[no_mangle]
pub unsafe extern "C" fn scm_monitor_next(
    mon: *mut scm_monitor,
    timeout_ms: u32,
    event: *mut u32,
    reader: *mut c_char,
    reader_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_monitor(mon, |monitor| {
            let event = out_ref!(event);
            if !reader.is_null() {
                non_null!(reader_len);
            }
            let timeout = (timeout_ms != SCM_WAIT_INFINITE).then(|| Duration::from_millis(timeout_ms.into()));
            monitor.next(timeout, |next, name| {
                if !reader_len.is_null() {
                    // SAFETY: a valid, aligned out-parameter (the caller's promise); `reader`,
                    // when not NULL, holds `*reader_len` writable bytes.
                    unsafe { write_out(name, reader.cast::<u8>(), &mut *reader_len) }?;
                }
                *event = next as u32;
                Ok(reader_len.is_null() || !reader.is_null())
            })
        })
    })
}

/// Ends a `scm_monitor_next` in progress on the monitor, from any thread, with
/// `SCM_SCARD_E_CANCELLED`; returns once it has returned (at once, within a few
/// milliseconds). A `scm_monitor_next` that starts later is not affected, and no event is
/// lost: the events it would have returned are returned by the next call. Makes
/// `SCardCancel` on the monitor's context.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn scm_monitor_cancel(mon: *mut scm_monitor) -> scm_hresult {
    boundary(|| {
        with_monitor(mon, |monitor| {
            monitor.cancel();
            Ok(())
        })
    })
}

/// Ends a monitor: a `scm_monitor_next` in progress in another thread returns first (with
/// `SCM_E_HANDLE`), the monitor's PC/SC context is released, and the token is dead: every later
/// call with it gets `SCM_E_HANDLE`.
///
/// Errors: `SCM_E_POINTER` (NULL), `SCM_E_HANDLE` (not a live monitor, e.g. released twice).
#[no_mangle]
pub unsafe extern "C" fn scm_monitor_release(mon: *mut scm_monitor) -> scm_hresult {
    boundary(|| {
        non_null!(mon);
        let monitor = objects::remove(mon as usize, |object| matches!(object, Object::Monitor(_)))?;
        // Dropping it ends the calls in progress, then releases the context.
        drop(monitor);
        Ok(())
    })
}
