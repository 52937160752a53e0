//! The one layer that calls PC/SC (pcsc-lite, PCSC.framework or WinSCard through `pcsc::ffi`),
//! and the translations between the platform's values and the COM values of the ABI.
//!
//! The `pcsc` crate's safe `Card` is not used: it cannot adopt a handle the caller connected,
//! and it disconnects with RESET when dropped, which would break both borrowed handles and
//! "leave the card as it is".

use std::ffi::CStr;
use std::ptr;

use pcsc::ffi;

use self::names::{SCardConnect, SCardListReaders, SCardStatus};
use crate::handle_table::lock_ignoring_poison;
use crate::hresult::*;

mod names;
mod reader_calls;
mod watch;

pub use self::reader_calls::ReaderEvent;
pub use self::watch::{Canceller, Watched, PNP_NOTIFICATION};

pub type Result<T> = std::result::Result<T, scm_hresult>;

/// The largest command or response PC/SC carries: an extended-length APDU with its status word.
pub const MAX_APDU: usize = ffi::MAX_BUFFER_SIZE_EXTENDED;

/// Serializes the PC/SC calls that add or remove pcsc-lite's client-side records of contexts and
/// card handles without waiting for anyone: establishing and releasing a context, and
/// disconnecting a card.
///
/// pcsc-lite's client library (1.9.9, and the code after it) looks a handle up by walking the
/// list of every context of the process; `SCardDisconnect` does that walk to forget the handle
/// without the library's own lock, so a context established or released meanwhile in another
/// thread can free a record under it (a crash seen here under 16 threads, in `SCardDisconnect`).
///
/// It is never held across a call that can wait for another party: a disconnect under it first
/// holds the card's own lock (see [`CardHandle::disconnect`]), so pcscd has nobody to wait for.
/// `SCardConnect` also adds a record, but it waits while another connection holds the card's
/// lock (measured: 2 s, as long as the other lock was held), so it is left out; RELIABILITY.md
/// says what the stress test of that race found. The transmit, status and lock paths never
/// take this.
static CLIENT_RECORDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock_client_records() -> std::sync::MutexGuard<'static, ()> {
    lock_ignoring_poison(&CLIENT_RECORDS)
}

/// Room for any ATR on any platform (33 bytes by ISO 7816-3; Windows reserves 36).
const ATR_ROOM: usize = 36;

/// A PC/SC return value as the ABI reports it: the low 32 bits, never sign-extended.
/// pcsc-lite's `LONG` is 64 bits wide on LP64 systems, and pcsc-lite writes its codes as positive
/// values of it, so the truncation is what keeps 0x8010xxxx intact.
pub fn code_from_native(rv: ffi::LONG) -> scm_hresult {
    match rv as u32 {
        // WinSCard passes some Win32 errors through unchanged, and as HRESULTs those would read
        // as success. A stale handle or context is what PC/SC calls INVALID_HANDLE (keeping
        // E_HANDLE for dead manager tokens); any other becomes HRESULT_FROM_WIN32.
        6 => SCM_SCARD_E_INVALID_HANDLE,
        win32 @ 1..=0xFFFF => (0x8007_0000 | win32) as i32,
        code => code as i32,
    }
}

fn check(rv: ffi::LONG) -> Result<()> {
    match code_from_native(rv) {
        SCM_S_OK => Ok(()),
        code => Err(code),
    }
}

/// True for the codes that say the PC/SC service this context talked to is gone (stopped,
/// crashed or restarted): only a new context recovers from them.
pub fn is_service_lost(code: scm_hresult) -> bool {
    matches!(
        code,
        SCM_SCARD_E_NO_SERVICE
            | SCM_SCARD_E_SERVICE_STOPPED
            | SCM_SCARD_F_COMM_ERROR
            | SCM_SCARD_E_INVALID_HANDLE
    )
}

/// True for the codes that say a reader is there but holds no card that can be connected.
pub fn is_card_absent(code: scm_hresult) -> bool {
    matches!(code, SCM_SCARD_E_NO_SMARTCARD | SCM_SCARD_W_REMOVED_CARD)
}

/// The COM `SCARD_STATES` value of what `SCardStatus` reports for a card handle.
pub fn card_state_to_com(native_state: ffi::DWORD, native_protocol: ffi::DWORD) -> u32 {
    #[cfg(target_os = "windows")]
    let com = if native_state <= 6 { native_state } else { 0 };
    #[cfg(not(target_os = "windows"))]
    let com = {
        // pcsc-lite and PCSC.framework report a bit set (with an event counter in the upper 16
        // bits on pcsc-lite); the most advanced state reached is the COM value.
        const ORDER: [(ffi::DWORD, u32); 6] = [
            (ffi::SCARD_SPECIFIC, 6),
            (ffi::SCARD_NEGOTIABLE, 5),
            (ffi::SCARD_POWERED, 4),
            (ffi::SCARD_SWALLOWED, 3),
            (ffi::SCARD_PRESENT, 2),
            (ffi::SCARD_ABSENT, 1),
        ];
        let bits = native_state & 0xFFFF;
        ORDER.iter().find(|(flag, _)| bits & flag != 0).map_or(0, |(_, com)| *com)
    };
    // pcsc-lite keeps saying NEGOTIABLE (0x34) after it has set a protocol; a powered card with
    // an active protocol is what COM calls SPECIFIC, and what WinSCard reports.
    if com >= 4 && native_protocol != ffi::SCARD_PROTOCOL_UNDEFINED {
        6
    } else {
        com
    }
}

/// The COM state of a reader with no card connected, from `SCardGetStatusChange`'s event state.
pub fn reader_state_to_com(event_state: ffi::DWORD) -> u32 {
    if event_state & ffi::SCARD_STATE_EMPTY != 0 {
        1
    } else if event_state & ffi::SCARD_STATE_PRESENT != 0 {
        2
    } else {
        0
    }
}

/// The COM `SCARD_PROTOCOLS` value of an active protocol.
pub fn protocol_to_com(native: ffi::DWORD) -> u32 {
    match native {
        ffi::SCARD_PROTOCOL_T0 => 1,
        ffi::SCARD_PROTOCOL_T1 => 2,
        ffi::SCARD_PROTOCOL_RAW => 0xFF,
        _ => 0,
    }
}

/// The platform's preferred-protocols mask for a validated COM value (0, 1, 2, 3 or 0xFF).
pub fn protocols_to_native(com: u32) -> ffi::DWORD {
    match com {
        0xFF => ffi::SCARD_PROTOCOL_RAW,
        mask => ffi::DWORD::from(mask & 3),
    }
}

/// A PC/SC resource-manager context, released when dropped.
#[derive(Debug)]
pub struct Context(ffi::SCARDCONTEXT);

/// A card handle. Not released on drop: whether it is disconnected, and how, is the owner's
/// decision (a borrowed handle never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardHandle(pub ffi::SCARDHANDLE);

impl Context {
    pub fn establish() -> Result<Context> {
        #[cfg(feature = "test-hooks")]
        if let Some(crate::test_hooks::Answer::Fail(code)) =
            crate::test_hooks::scripted(crate::test_hooks::Call::Establish)
        {
            return Err(code);
        }
        let mut context: ffi::SCARDCONTEXT = 0;
        let _records = lock_client_records();
        // SAFETY: the out-pointer is valid for the call; the reserved pointers must be NULL.
        check(unsafe {
            ffi::SCardEstablishContext(ffi::SCARD_SCOPE_USER, ptr::null(), ptr::null(), &mut context)
        })?;
        Ok(Context(context))
    }

    /// `SCardConnect`: the handle and the active protocol.
    pub fn connect(
        &self,
        reader: &CStr,
        share_mode: ffi::DWORD,
        protocols: ffi::DWORD,
    ) -> Result<(CardHandle, ffi::DWORD)> {
        let mut handle: ffi::SCARDHANDLE = 0;
        let mut active: ffi::DWORD = 0;
        let reader = names::to_native(reader);
        // SAFETY: the reader name is NUL-terminated and the out-pointers are valid for the call.
        check(unsafe {
            SCardConnect(self.0, reader.as_ptr(), share_mode, protocols, &mut handle, &mut active)
        })?;
        Ok((CardHandle(handle), active))
    }

    /// The reader's event state (`SCARD_STATE_*` bits), without waiting.
    pub fn reader_state(&self, reader: &CStr) -> Result<ffi::DWORD> {
        Ok(self.reader_event(reader)?.state)
    }

    /// The reader names as a PC/SC multi-string in UTF-8, final NUL included.
    pub fn list_readers(&self) -> Result<Vec<u8>> {
        #[cfg(feature = "test-hooks")]
        match crate::test_hooks::scripted(crate::test_hooks::Call::ListReaders) {
            Some(crate::test_hooks::Answer::Fail(code)) => return Err(code),
            Some(crate::test_hooks::Answer::LastLeftOut) => {
                // "A\0B\0\0" becomes "A\0\0": the list's final NUL and the last name's go, then
                // the last name.
                let mut names = self.listed_readers()?;
                names.truncate(names.len().saturating_sub(2));
                names.truncate(names.iter().rposition(|&unit| unit == 0).map_or(0, |nul| nul + 1));
                names.push(0);
                return Ok(names);
            }
            _ => {}
        }
        self.listed_readers()
    }

    /// `SCardListReaders` itself, past the script: a scripted listing is made of it without
    /// taking an answer scripted for the next listing.
    fn listed_readers(&self) -> Result<Vec<u8>> {
        loop {
            let mut len: ffi::DWORD = 0;
            // SAFETY: a NULL buffer asks for the length only.
            check(unsafe { SCardListReaders(self.0, ptr::null(), ptr::null_mut(), &mut len) })?;
            let mut names: Vec<names::Unit> = vec![0; len as usize];
            // SAFETY: the buffer holds `len` units.
            let rv = unsafe { SCardListReaders(self.0, ptr::null(), names.as_mut_ptr().cast(), &mut len) };
            match check(rv) {
                Ok(()) => {
                    names.truncate(len as usize);
                    return Ok(names::to_utf8(names));
                }
                // A reader was plugged in between the two calls: ask again.
                Err(SCM_SCARD_E_INSUFFICIENT_BUFFER) => continue,
                Err(code) => return Err(code),
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _records = lock_client_records();
        // SAFETY: the context is ours and released once; after a service loss the call fails
        // harmlessly, still freeing the client side's records of it.
        unsafe { ffi::SCardReleaseContext(self.0) };
    }
}

/// A native `SCARDHANDLE` as the ABI's `uintptr_t` carries it: its bits, zero-extended. A 32-bit
/// handle with bit 31 set (PCSC.framework's `int32_t`, pcsc-lite's `long` on 32-bit systems) is
/// then neither sign-extended on the way out nor refused on the way back: every handle survives
/// `scm_get_handle` followed by `scm_attach_by_handle`. Implemented for each type
/// `SCARDHANDLE` is somewhere, so that every one is tested on every OS.
trait HandleBits: Copy + Sized {
    fn to_abi(self) -> usize;
    fn from_abi(value: usize) -> Option<Self>;
}

impl HandleBits for i32 {
    fn to_abi(self) -> usize {
        self as u32 as usize
    }
    fn from_abi(value: usize) -> Option<i32> {
        u32::try_from(value).ok().map(|bits| bits as i32)
    }
}

/// pcsc-lite on LP64 systems: its protocol carries a handle as 32 bits, which its `long` holds
/// as they are or sign-extended. Every such value round-trips; a negative value outside the
/// 32-bit range is no pcsc-lite handle, and is refused as one.
#[cfg(target_pointer_width = "64")]
impl HandleBits for i64 {
    fn to_abi(self) -> usize {
        self as usize
    }
    fn from_abi(value: usize) -> Option<i64> {
        let handle = value as i64;
        (handle >= i64::from(i32::MIN)).then_some(handle)
    }
}

impl HandleBits for usize {
    fn to_abi(self) -> usize {
        self
    }
    fn from_abi(value: usize) -> Option<usize> {
        Some(value)
    }
}

/// What `SCardStatus` says of a card handle, in the platform's values.
pub struct CardStatus {
    pub state: ffi::DWORD,
    pub protocol: ffi::DWORD,
}

impl CardHandle {
    /// The handle value as the ABI carries it (`uintptr_t`).
    pub fn to_abi(self) -> usize {
        self.0.to_abi()
    }

    /// A handle value from C; one the platform's `SCARDHANDLE` cannot hold (on macOS it is
    /// 32 bits wide) is no handle at all.
    pub fn from_abi(value: usize) -> Result<CardHandle> {
        HandleBits::from_abi(value).map(CardHandle).ok_or(SCM_E_INVALIDARG)
    }

    /// `SCardStatus`, filling the name and ATR buffers given (an empty one is passed as NULL,
    /// which asks PC/SC for that length only). Returns the status and both lengths.
    fn status_into(self, name: &mut [names::Unit], atr: &mut [u8]) -> Result<(CardStatus, usize, usize)> {
        fn buffer<T>(units: &mut [T]) -> (*mut T, ffi::DWORD) {
            match units.is_empty() {
                true => (ptr::null_mut(), 0),
                false => (units.as_mut_ptr(), units.len() as ffi::DWORD),
            }
        }
        let ((name_ptr, mut name_len), (atr_ptr, mut atr_len)) = (buffer(name), buffer(atr));
        let (mut state, mut protocol): (ffi::DWORD, ffi::DWORD) = (0, 0);
        // SAFETY: each buffer is NULL or holds the length passed with it; the rest are valid
        // out-pointers for the call.
        check(unsafe {
            SCardStatus(
                self.0,
                name_ptr.cast(),
                &mut name_len,
                &mut state,
                &mut protocol,
                atr_ptr,
                &mut atr_len,
            )
        })?;
        Ok((CardStatus { state, protocol }, name_len as usize, atr_len as usize))
    }

    pub fn status(self) -> Result<CardStatus> {
        Ok(self.status_into(&mut [], &mut [])?.0)
    }

    /// The card's ATR.
    pub fn atr(self) -> Result<([u8; ATR_ROOM], usize)> {
        let mut atr = [0u8; ATR_ROOM];
        let (_, _, atr_len) = self.status_into(&mut [], &mut atr)?;
        Ok((atr, atr_len.min(ATR_ROOM)))
    }

    /// The name of the reader the handle is connected through, in UTF-8, without its NUL.
    pub fn reader_name(self) -> Result<Vec<u8>> {
        loop {
            let (_, len, _) = self.status_into(&mut [], &mut [])?;
            let mut name: Vec<names::Unit> = vec![0; len];
            match self.status_into(&mut name, &mut []) {
                Ok(_) => {
                    let end = name.iter().position(|&unit| unit == 0).unwrap_or(name.len());
                    name.truncate(end);
                    return Ok(names::to_utf8(name));
                }
                // The name grew between the two calls (another reader took its place): ask again.
                Err(SCM_SCARD_E_INSUFFICIENT_BUFFER) => continue,
                Err(code) => return Err(code),
            }
        }
    }

    /// Sends a command and has PC/SC write the answer; returns the answer's length.
    ///
    /// Raw pointers, not slices: the buffers are the C caller's, possibly uninitialized and
    /// possibly one and the same (PC/SC sends the command before the answer arrives).
    ///
    /// # Safety
    /// `command` must be readable for `command_len` bytes, `response` writable for
    /// `response_capacity` bytes.
    pub unsafe fn transmit(
        self,
        protocol: ffi::DWORD,
        command: *const u8,
        command_len: usize,
        response: *mut u8,
        response_capacity: usize,
    ) -> Result<usize> {
        // SAFETY: the PCI structures are constants exported by the PC/SC library.
        let pci: *const ffi::SCARD_IO_REQUEST = unsafe {
            match protocol {
                ffi::SCARD_PROTOCOL_T0 => &ffi::g_rgSCardT0Pci,
                ffi::SCARD_PROTOCOL_RAW => &ffi::g_rgSCardRawPci,
                _ => &ffi::g_rgSCardT1Pci,
            }
        };
        let capacity = response_capacity.min(MAX_APDU);
        let mut len = capacity as ffi::DWORD;
        // SAFETY: both buffers are valid for the lengths given (the caller's promise); the
        // receive PCI may be NULL.
        check(unsafe {
            ffi::SCardTransmit(
                self.0,
                pci,
                command,
                command_len as ffi::DWORD,
                ptr::null_mut(),
                response,
                &mut len,
            )
        })?;
        Ok((len as usize).min(capacity))
    }

    /// `SCardReconnect`: the new active protocol.
    pub fn reconnect(
        self,
        share_mode: ffi::DWORD,
        protocols: ffi::DWORD,
        initialization: ffi::DWORD,
    ) -> Result<ffi::DWORD> {
        let mut active: ffi::DWORD = 0;
        // SAFETY: the out-pointer is valid for the call.
        check(unsafe { ffi::SCardReconnect(self.0, share_mode, protocols, initialization, &mut active) })?;
        Ok(active)
    }

    pub fn begin_transaction(self) -> Result<()> {
        // SAFETY: plain value arguments.
        check(unsafe { ffi::SCardBeginTransaction(self.0) })
    }

    pub fn end_transaction(self, disposition: ffi::DWORD) -> Result<()> {
        #[cfg(feature = "test-hooks")]
        if let Some(crate::test_hooks::Answer::Fail(code)) =
            crate::test_hooks::scripted(crate::test_hooks::Call::EndTransaction)
        {
            return Err(code);
        }
        // SAFETY: plain value arguments.
        check(unsafe { ffi::SCardEndTransaction(self.0, disposition) })
    }

    /// `SCardDisconnect`, never waiting for another connection while the process-wide records
    /// lock is held. pcscd makes a RESET, UNPOWER or EJECT disconnect wait while another
    /// connection holds the card's lock; so the card's lock is taken first, outside the records
    /// lock (that is where the wait happens, stalling only this thread), and the disconnect then
    /// ends it. A pending reset or power-down event is cleared first with a reconnect, since the
    /// lock cannot be taken past it (`share_mode` and `protocols` are the connection's: where
    /// [`Self::clear_card_event`] starts). When the card cannot be locked (removed, reader or
    /// service gone), the handle is disconnected leaving the card, and the code that prevented
    /// the disposition is returned.
    pub fn disconnect(
        self,
        disposition: ffi::DWORD,
        share_mode: ffi::DWORD,
        protocols: ffi::DWORD,
    ) -> Result<()> {
        if disposition == ffi::SCARD_LEAVE_CARD {
            return self.disconnect_now(ffi::SCARD_LEAVE_CARD);
        }
        let locked = match self.begin_transaction() {
            Err(SCM_SCARD_W_RESET_CARD | SCM_SCARD_W_UNPOWERED_CARD) => {
                self.clear_card_event(share_mode, protocols).and_then(|()| self.begin_transaction())
            }
            locked => locked,
        };
        match locked {
            Ok(()) => self.disconnect_now(disposition),
            Err(code) => {
                // Best effort: the record is freed; the code that matters is why the card was
                // not released as asked.
                let _ = self.disconnect_now(ffi::SCARD_LEAVE_CARD);
                Err(code)
            }
        }
    }

    /// Clears a pending reset or power-down event on a connection about to end, with a reconnect
    /// leaving the card. pcscd refuses a protocol other than the card's (`SCARD_E_PROTO_MISMATCH`)
    /// once another connection has set it since the reset: one made RAW, or T=0 where this one
    /// asked T=1. The connection is ending, so the protocol the card runs is accepted: the
    /// connection's own first, then T=0 or T=1, then RAW only when neither matches. A RAW request
    /// switches the card to RAW whatever it ran, under every other connection; so it is never
    /// asked first, not even for a connection made RAW, and it comes only after pcscd has said
    /// the card runs neither T=0 nor T=1. Another program resetting the card or connecting it in
    /// the instant between those two requests could still see it switched to RAW; no PC/SC call
    /// closes that window (a status on this handle answers the pending reset too), and a RESET or
    /// UNPOWER disposition ends RAW again at once.
    fn clear_card_event(self, share_mode: ffi::DWORD, protocols: ffi::DWORD) -> Result<()> {
        let any = ffi::SCARD_PROTOCOL_T0 | ffi::SCARD_PROTOCOL_T1;
        let first = match protocols & !ffi::SCARD_PROTOCOL_RAW {
            // RAW alone: T=0 or T=1 first all the same. UNDEFINED (a DIRECT connection) stays.
            0 if protocols != 0 => any,
            own => own,
        };
        let mut cleared = self.reconnect(share_mode, first, ffi::SCARD_LEAVE_CARD);
        for fallback in [any, ffi::SCARD_PROTOCOL_RAW] {
            if cleared != Err(SCM_SCARD_E_PROTO_MISMATCH) {
                break;
            }
            if first & fallback != fallback {
                cleared = self.reconnect(share_mode, fallback, ffi::SCARD_LEAVE_CARD);
            }
        }
        cleared.map(drop)
    }

    /// The disconnect itself, under the records lock. Callers make sure pcscd cannot make it
    /// wait: LEAVE, or the card's lock held by this very handle.
    fn disconnect_now(self, disposition: ffi::DWORD) -> Result<()> {
        let _records = lock_client_records();
        // SAFETY: plain value arguments.
        check(unsafe { ffi::SCardDisconnect(self.0, disposition) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_truncated_not_sign_extended() {
        assert_eq!(code_from_native(0), SCM_S_OK);
        // Win32 codes (WinSCard) are failures, never success.
        assert_eq!(code_from_native(6), SCM_SCARD_E_INVALID_HANDLE);
        assert_eq!(code_from_native(5) as u32, 0x8007_0005);
        assert_eq!(code_from_native(0xFFFF) as u32, 0x8007_FFFF);
        assert_eq!(code_from_native(0x8010_0068_u32 as ffi::LONG) as u32, 0x8010_0068);
        #[cfg(all(target_pointer_width = "64", not(target_os = "windows")))]
        assert_eq!(code_from_native(0x0000_0000_8010_001D_i64 as ffi::LONG), SCM_SCARD_E_NO_SERVICE);
    }

    #[cfg(not(target_os = "windows"))]
    #[test]
    fn pcsclite_state_bits_become_com_states() {
        let none = ffi::SCARD_PROTOCOL_UNDEFINED;
        let t1 = ffi::SCARD_PROTOCOL_T1;
        // What pcsc-lite 1.9.9 reports for a connected T=1 card: PRESENT|POWERED|NEGOTIABLE,
        // event counter 1.
        assert_eq!(card_state_to_com(0x0001_0034, t1), 6);
        assert_eq!(card_state_to_com(0x0001_0034, none), 5);
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT | ffi::SCARD_POWERED | ffi::SCARD_SPECIFIC, t1), 6);
        assert_eq!(card_state_to_com(ffi::SCARD_ABSENT, none), 1);
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT, none), 2);
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT | ffi::SCARD_SWALLOWED, none), 3);
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT | ffi::SCARD_POWERED, none), 4);
        assert_eq!(card_state_to_com(ffi::SCARD_UNKNOWN, none), 0);
        assert_eq!(card_state_to_com(0x0005_0000, none), 0, "a counter alone is no state");
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT, t1), 2, "not powered: no protocol runs");
    }

    #[test]
    fn protocols_translate_both_ways() {
        assert_eq!(protocol_to_com(ffi::SCARD_PROTOCOL_T0), 1);
        assert_eq!(protocol_to_com(ffi::SCARD_PROTOCOL_T1), 2);
        assert_eq!(protocol_to_com(ffi::SCARD_PROTOCOL_RAW), 0xFF);
        assert_eq!(protocol_to_com(ffi::SCARD_PROTOCOL_UNDEFINED), 0);
        assert_eq!(protocols_to_native(3), ffi::SCARD_PROTOCOL_T0 | ffi::SCARD_PROTOCOL_T1);
        assert_eq!(protocols_to_native(0xFF), ffi::SCARD_PROTOCOL_RAW);
        assert_eq!(protocols_to_native(0), 0);
    }

    fn round_trips<H: HandleBits + PartialEq + std::fmt::Debug>(values: &[H]) {
        for &value in values {
            assert_eq!(H::from_abi(value.to_abi()), Some(value), "{value:?}");
        }
    }

    #[test]
    fn every_handle_value_survives_the_abi_and_back() {
        // PCSC.framework's and 32-bit pcsc-lite's handles: bit 31 set is zero-extended.
        round_trips(&[0i32, 1, -1, i32::MIN, i32::MAX, 0x8000_0000u32 as i32, 0x1234_5678]);
        assert_eq!((-1i32).to_abi(), 0xFFFF_FFFF);
        assert_eq!(i32::MIN.to_abi(), 0x8000_0000);
        // A value wider than 32 bits is no 32-bit handle.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(i32::from_abi(usize::MAX), None);
        #[cfg(target_pointer_width = "64")]
        {
            let sign_extended = i64::from(i32::MIN);
            round_trips(&[0i64, -1, sign_extended, i64::MAX, 0x8000_0000, 0xFFFF_FFFF]);
            assert_eq!(i64::from_abi((sign_extended - 1) as usize), None, "no 32-bit value");
        }
        round_trips(&[0usize, 1, usize::MAX, 0x8000_0000]);
        // And the platform's own type, through the functions the ABI uses.
        let bit_31 =
            [0x8000_0000u32 as ffi::SCARDHANDLE, i32::MIN as ffi::SCARDHANDLE, -1i32 as ffi::SCARDHANDLE];
        for value in [0, 1, ffi::SCARDHANDLE::MAX].into_iter().chain(bit_31) {
            let handle = CardHandle(value);
            assert_eq!(CardHandle::from_abi(handle.to_abi()), Ok(handle), "{value:?}");
        }
    }

    #[test]
    fn reader_states_become_com_states() {
        assert_eq!(reader_state_to_com(ffi::SCARD_STATE_EMPTY), 1);
        assert_eq!(reader_state_to_com(ffi::SCARD_STATE_PRESENT | ffi::SCARD_STATE_INUSE), 2);
        assert_eq!(reader_state_to_com(ffi::SCARD_STATE_UNAVAILABLE), 0);
    }

    #[cfg(target_os = "windows")]
    #[test]
    fn winscard_ordinal_states_are_com_states() {
        let none = ffi::SCARD_PROTOCOL_UNDEFINED;
        let t0 = ffi::SCARD_PROTOCOL_T0;
        for state in 0..=6 {
            assert_eq!(card_state_to_com(state, none), state);
        }
        assert_eq!(card_state_to_com(ffi::SCARD_SPECIFIC, t0), 6);
        assert_eq!(card_state_to_com(ffi::SCARD_NEGOTIABLE, t0), 6, "a protocol runs: SPECIFIC");
        assert_eq!(card_state_to_com(ffi::SCARD_PRESENT, t0), 2, "not powered: no protocol runs");
        assert_eq!(card_state_to_com(7, none), 0, "no such state");
        // What pcsc-lite's bits would say (PRESENT|POWERED|NEGOTIABLE) is no WinSCard state.
        assert_eq!(card_state_to_com(0x34, t0), 0);
    }

    #[cfg(target_os = "windows")]
    #[test]
    fn winscard_raw_is_0x10000() {
        assert_eq!(ffi::SCARD_PROTOCOL_RAW, 0x1_0000);
        assert_eq!(protocol_to_com(0x1_0000), 0xFF);
        assert_eq!(protocols_to_native(0xFF), 0x1_0000);
        assert_eq!(protocol_to_com(4), 0, "pcsc-lite's RAW is no protocol on Windows");
    }

    #[cfg(target_os = "windows")]
    #[test]
    fn winscard_codes_are_negative_32_bit_values() {
        assert_eq!(ffi::SCARD_W_RESET_CARD, 0x8010_0068_u32 as i32);
        assert_eq!(code_from_native(ffi::SCARD_W_RESET_CARD), SCM_SCARD_W_RESET_CARD);
        assert_eq!(code_from_native(ffi::SCARD_E_NO_SERVICE), SCM_SCARD_E_NO_SERVICE);
        // Where WinSCard and pcsc-lite disagree: 0x8010001F is UNEXPECTED on Windows.
        assert_eq!(code_from_native(ffi::SCARD_E_UNSUPPORTED_FEATURE), SCM_SCARD_E_UNSUPPORTED_FEATURE);
        assert_eq!(code_from_native(ffi::SCARD_E_UNEXPECTED), SCM_SCARD_E_UNEXPECTED);
        // Win32 errors WinSCard passes through: ERROR_INVALID_HANDLE, ERROR_BROKEN_PIPE.
        assert_eq!(code_from_native(6), SCM_SCARD_E_INVALID_HANDLE);
        assert_eq!(code_from_native(109) as u32, 0x8007_006D);
    }

    #[cfg(target_os = "windows")]
    #[test]
    fn winscard_widths() {
        use std::mem::size_of;
        assert_eq!(size_of::<ffi::DWORD>(), 4);
        assert_eq!(size_of::<ffi::LONG>(), 4);
        // Handles are ULONG_PTR: as wide as a pointer, on x86_64 and on i686, and every value
        // crosses the ABI unchanged.
        assert_eq!(size_of::<ffi::SCARDHANDLE>(), size_of::<usize>());
        assert_eq!(size_of::<ffi::SCARDCONTEXT>(), size_of::<usize>());
        assert_eq!(size_of::<ffi::SCARD_IO_REQUEST>(), 8);
        assert_eq!(ffi::ATR_BUFFER_SIZE, ATR_ROOM);
        for value in [1, 0x8000_0000, usize::MAX] {
            assert_eq!(CardHandle::from_abi(value).map(CardHandle::to_abi), Ok(value), "{value:#x}");
        }
    }
}
