//! The PC/SC calls of the waits, the reader attributes and reader control: a reader's state
//! (waiting for it to change), cancelling that wait from another thread, `SCardGetAttrib`,
//! `SCardSetAttrib` and `SCardControl`. None of these has an A or W form on Windows except
//! `SCardGetStatusChange`, which goes through `names` like every call taking a reader name.

use std::ffi::CStr;
use std::ptr;

use pcsc::ffi;

use super::names::{self, SCardGetStatusChange, SCARD_READERSTATE};
use super::{check, code_from_native, CardHandle, Context, Result, ATR_ROOM};
use crate::hresult::*;

/// A 32-bit value of the ABI as the platform's `DWORD` (32 bits on Windows and macOS, 64 on
/// pcsc-lite's LP64 systems).
#[allow(clippy::useless_conversion)] // Only where DWORD is u32.
fn dword(value: u32) -> ffi::DWORD {
    ffi::DWORD::from(value)
}

/// What `SCardGetStatusChange` says of one reader: its event state (`SCARD_STATE_*` bits, with
/// the reader's event counter in the upper 16 bits on pcsc-lite and Windows) and the ATR of its
/// card, if any.
#[derive(Debug, Clone, Copy)]
pub struct ReaderEvent {
    pub state: ffi::DWORD,
    atr: [u8; ATR_ROOM],
    atr_len: usize,
}

impl ReaderEvent {
    pub fn atr(&self) -> &[u8] {
        &self.atr[..self.atr_len]
    }
}

impl Context {
    /// `SCardGetStatusChange` on one reader: returns when its state differs from `current`
    /// (`SCARD_STATE_*` bits and event counter) or after `timeout_ms` (`INFINITE` waits for
    /// ever), with `SCM_SCARD_E_TIMEOUT`.
    pub fn status_change(&self, reader: &CStr, current: ffi::DWORD, timeout_ms: u32) -> Result<ReaderEvent> {
        match self.status_change_call(reader, current, timeout_ms) {
            (SCM_S_OK, event) => Ok(event),
            (code, _) => Err(code),
        }
    }

    /// The reader's state now, without waiting.
    pub fn reader_event(&self, reader: &CStr) -> Result<ReaderEvent> {
        match self.status_change_call(reader, ffi::SCARD_STATE_UNAWARE, 0) {
            // A zero timeout reports "timeout" when nothing changed from UNAWARE: the state is
            // set all the same.
            (SCM_S_OK | SCM_SCARD_E_TIMEOUT, event) => Ok(event),
            (code, _) => Err(code),
        }
    }

    fn status_change_call(
        &self,
        reader: &CStr,
        current: ffi::DWORD,
        timeout_ms: u32,
    ) -> (scm_hresult, ReaderEvent) {
        let reader = names::to_native(reader);
        let mut state = SCARD_READERSTATE {
            szReader: reader.as_ptr(),
            pvUserData: ptr::null_mut(),
            dwCurrentState: current,
            dwEventState: 0,
            cbAtr: 0,
            rgbAtr: [0; ffi::ATR_BUFFER_SIZE],
        };
        // SAFETY: one valid reader state whose name outlives the call.
        let code =
            code_from_native(unsafe { SCardGetStatusChange(self.0, dword(timeout_ms), &mut state, 1) });
        let mut atr = [0; ATR_ROOM];
        let atr_len = (state.cbAtr as usize).min(ffi::ATR_BUFFER_SIZE);
        atr[..atr_len].copy_from_slice(&state.rgbAtr[..atr_len]);
        (code, ReaderEvent { state: state.dwEventState, atr, atr_len })
    }

    /// What another thread needs to end a `status_change` in progress on this context.
    pub fn canceller(&self) -> Canceller {
        Canceller(self.0)
    }
}

/// A context's value, for `SCardCancel` from another thread. PC/SC looks contexts up by value,
/// so a context released meanwhile only makes the call fail.
#[derive(Debug, Clone, Copy)]
pub struct Canceller(ffi::SCARDCONTEXT);

impl Canceller {
    /// `SCardCancel`: ends the blocking call in progress on the context, if any (pcsc-lite
    /// ignores it when none is, so the caller repeats it until the wait has ended).
    pub fn cancel(self) {
        // SAFETY: plain value argument; a stale context is refused by PC/SC.
        unsafe { ffi::SCardCancel(self.0) };
    }
}

impl CardHandle {
    /// `SCardGetAttrib` into `value`; the length written. Codes as PC/SC gives them (see
    /// `reader_io` for the translation of pcsc-lite's 0x8010001F).
    pub fn get_attrib(self, attribute: u32, value: &mut [u8]) -> Result<usize> {
        let mut len = value.len() as ffi::DWORD;
        // SAFETY: the buffer holds `len` bytes.
        check(unsafe { ffi::SCardGetAttrib(self.0, dword(attribute), value.as_mut_ptr(), &mut len) })?;
        Ok((len as usize).min(value.len()))
    }

    pub fn set_attrib(self, attribute: u32, value: &[u8]) -> Result<()> {
        // SAFETY: the value holds the length given.
        check(unsafe {
            ffi::SCardSetAttrib(self.0, dword(attribute), value.as_ptr(), value.len() as ffi::DWORD)
        })
    }

    /// `SCardControl` with a native code; the length of the answer written into `output`.
    pub fn control(self, code: u32, input: &[u8], output: &mut [u8]) -> Result<usize> {
        let mut returned: ffi::DWORD = 0;
        // SAFETY: both buffers hold the lengths given; PC/SC writes at most `output.len()`.
        check(unsafe {
            ffi::SCardControl(
                self.0,
                dword(code),
                input.as_ptr().cast(),
                input.len() as ffi::DWORD,
                output.as_mut_ptr().cast(),
                output.len() as ffi::DWORD,
                &mut returned,
            )
        })?;
        Ok((returned as usize).min(output.len()))
    }
}
