//! Watching readers with `SCardGetStatusChange`, for the monitor: many readers at once, the
//! event state kept between calls, and `SCardCancel` from another thread.

use std::ffi::CString;
use std::ptr;

use pcsc::ffi;

use super::names::{self, SCardGetStatusChange, SCARD_READERSTATE};
use super::{code_from_native, Context, Result};
use crate::hresult::*;

/// The reader PC/SC reports reader arrivals and departures through (pcsc-lite and Windows; not
/// macOS's PCSC.framework).
pub const PNP_NOTIFICATION: &std::ffi::CStr = c"\\\\?PnP?\\Notification";

/// One reader to watch: its name and the event state last seen (`SCARD_STATE_*` bits, with the
/// event counter in the upper 16 bits where PC/SC keeps one); `SCARD_STATE_UNAWARE` at first.
pub struct Watched {
    pub name: CString,
    pub state: ffi::DWORD,
    /// Whether PC/SC said this reader changed (`SCARD_STATE_CHANGED`) in the last watch.
    pub changed: bool,
}

impl Watched {
    pub fn new(name: CString, state: ffi::DWORD) -> Watched {
        Watched { name, state, changed: false }
    }

    /// Takes the event state PC/SC gave as the state to pass back: `SCARD_STATE_CHANGED` moved
    /// to `changed`, and `SCARD_STATE_IGNORE` dropped, which WinSCard sets with
    /// `SCARD_STATE_UNKNOWN` and which, passed back, has the reader skipped by every later call.
    fn seen(&mut self, event_state: ffi::DWORD) {
        self.changed = event_state & ffi::SCARD_STATE_CHANGED != 0;
        self.state = event_state & !(ffi::SCARD_STATE_CHANGED | ffi::SCARD_STATE_IGNORE);
    }
}

impl Context {
    /// `SCardGetStatusChange` on `readers`: blocks up to `timeout_ms` until one of them differs
    /// from the state given, then writes every reader's new event state into `readers`
    /// (as [`Watched::seen`] keeps it, so that it can be passed back as it is). Returns
    /// whether anything changed (`false` on a timeout).
    pub fn watch(&self, readers: &mut [Watched], timeout_ms: u32) -> Result<bool> {
        #[cfg(feature = "test-hooks")]
        match crate::test_hooks::scripted(crate::test_hooks::Call::Watch) {
            Some(crate::test_hooks::Answer::Fail(code)) => return Err(code),
            Some(crate::test_hooks::Answer::Unknown(index)) => {
                let count = readers.len();
                assert!(
                    index < count,
                    "scardmanage test hook: Unknown({index}) scripted for a watch of {count} readers"
                );
                self.look_now(readers)?;
                // The bits WinSCard documents for a reader it does not know.
                readers[index]
                    .seen(ffi::SCARD_STATE_UNKNOWN | ffi::SCARD_STATE_IGNORE | ffi::SCARD_STATE_CHANGED);
                return Ok(true);
            }
            Some(crate::test_hooks::Answer::Plugged) => {
                if let Some(at) = readers.iter().position(|reader| *reader.name == *PNP_NOTIFICATION) {
                    self.look_now(readers)?;
                    readers[at].changed = true;
                    return Ok(true);
                }
            }
            _ => {}
        }
        self.get_status_change(readers, timeout_ms)
    }

    /// For a scripted answer that ends the wait: the real call without waiting, on the states
    /// the caller passed, each reader flagged changed where PC/SC flags it. A timeout writes
    /// nothing, so the flags a caller's last watch left are cleared: the scripted answer then
    /// flags its own reader alone.
    #[cfg(feature = "test-hooks")]
    fn look_now(&self, readers: &mut [Watched]) -> Result<()> {
        if !self.get_status_change(readers, 0)? {
            readers.iter_mut().for_each(|reader| reader.changed = false);
        }
        Ok(())
    }

    fn get_status_change(&self, readers: &mut [Watched], timeout_ms: u32) -> Result<bool> {
        let native: Vec<_> = readers.iter().map(|reader| names::to_native(&reader.name).to_owned()).collect();
        let mut states: Vec<SCARD_READERSTATE> = readers
            .iter()
            .zip(&native)
            .map(|(reader, name)| SCARD_READERSTATE {
                szReader: name.as_ptr(),
                pvUserData: ptr::null_mut(),
                dwCurrentState: reader.state,
                dwEventState: 0,
                cbAtr: 0,
                rgbAtr: [0; ffi::ATR_BUFFER_SIZE],
            })
            .collect();
        // SAFETY: every state's name outlives the call (`native`), and the array holds
        // `states.len()` entries.
        let rv = unsafe {
            SCardGetStatusChange(
                self.0,
                timeout_ms as ffi::DWORD,
                states.as_mut_ptr(),
                states.len() as ffi::DWORD,
            )
        };
        match code_from_native(rv) {
            SCM_S_OK => {
                for (reader, state) in readers.iter_mut().zip(&states) {
                    reader.seen(state.dwEventState);
                }
                Ok(true)
            }
            SCM_SCARD_E_TIMEOUT => Ok(false),
            code => Err(code),
        }
    }

    /// What [`Canceller::cancel`] needs to end a [`watch`](Self::watch) in progress on this
    /// context from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.0)
    }
}

/// A context's value, to cancel its blocking calls from another thread. The owner must make
/// sure no cancel runs after the context is released (a released value may name a newer
/// context).
#[derive(Clone, Copy, Debug)]
pub struct Canceller(ffi::SCARDCONTEXT);

impl Canceller {
    /// `SCardCancel`: a `SCardGetStatusChange` blocked on the context returns
    /// `SCARD_E_CANCELLED`. A context with no call in progress is left as it is.
    pub fn cancel(self) {
        // SAFETY: a plain value; PC/SC checks it. Nothing is to be done when it fails: the
        // context is gone, and with it any call to cancel.
        unsafe { ffi::SCardCancel(self.0) };
    }
}
