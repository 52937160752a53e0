//! The C surface: every exported function, each one checking its arguments, looking its token
//! up, calling the manager and mapping the result. Doc comments here become the header's.
//!
//! Every function shares one safety contract (pointers valid for the sizes given, strings
//! NUL-terminated), written once at the top of the header rather than under each function.
#![allow(clippy::missing_safety_doc)]

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};

use libc::size_t;

use crate::buffers::{self, write_out};
use crate::handle_table::lock_ignoring_poison;
use crate::hresult::*;
use crate::manager::{protocols_from_abi, Disposition, Manager, ShareMode};
use crate::objects::{self, Object};
use crate::scard::{self, CardHandle, Context, Result};

/// An opaque manager: the C side only ever holds a `scm_manage *`, which is a token (an index and
/// a generation), never an address. Stale, released and forged tokens are refused with
/// `SCM_E_HANDLE`.
#[allow(non_camel_case_types)]
pub struct scm_manage {
    _opaque: [u8; 0],
}

/// The platform's `SCARDHANDLE` (`HSCARD` in the COM interface).
#[allow(non_camel_case_types)]
pub type scm_hscard = usize;

/// Share modes (`scm_attach_by_ifd_ex`).
pub const SCM_SHARE_EXCLUSIVE: u32 = 1;
pub const SCM_SHARE_SHARED: u32 = 2;
pub const SCM_SHARE_DIRECT: u32 = 3;

/// Dispositions: what happens to the card when a connection or a lock ends.
pub const SCM_LEAVE_CARD: u32 = 0;
pub const SCM_RESET_CARD: u32 = 1;
pub const SCM_UNPOWER_CARD: u32 = 2;
pub const SCM_EJECT_CARD: u32 = 3;

/// Card states (COM `SCARD_STATES`), the same values on every OS.
pub const SCM_STATE_UNKNOWN: u32 = 0;
pub const SCM_STATE_ABSENT: u32 = 1;
pub const SCM_STATE_PRESENT: u32 = 2;
pub const SCM_STATE_SWALLOWED: u32 = 3;
pub const SCM_STATE_POWERED: u32 = 4;
pub const SCM_STATE_NEGOTIABLE: u32 = 5;
pub const SCM_STATE_SPECIFIC: u32 = 6;

/// Protocols (COM `SCARD_PROTOCOLS`), the same values on every OS.
pub const SCM_PROTOCOL_UNDEFINED: u32 = 0;
pub const SCM_PROTOCOL_T0: u32 = 1;
pub const SCM_PROTOCOL_T1: u32 = 2;
pub const SCM_PROTOCOL_ANY: u32 = 3;
pub const SCM_PROTOCOL_RAW: u32 = 0xFF;

/// The largest command and response `scm_transmit` carries: an extended-length APDU (65536
/// data bytes, header, Lc, Le) with its status word. A response buffer of this size never
/// gets `SCARD_E_INSUFFICIENT_BUFFER`.
pub const SCM_MAX_APDU_SIZE: size_t = 65548;
const _: () = assert!(SCM_MAX_APDU_SIZE == scard::MAX_APDU);

/// Where a response lands when the caller's buffer could be too small for it: PC/SC drops an
/// answer that does not fit, and the ABI promises the size needed. Buffers of
/// `SCM_MAX_APDU_SIZE` bytes, shared by the process rather than one per thread: a thread-local
/// buffer is freed by a destructor registered on its first use, and a first use from a
/// `pthread` key destructor (which runs after the thread-local ones) registered one that never
/// ran, losing 64 KiB per such thread. The lock is held only to take or give back a buffer.
static SPARE_RESPONSES: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
/// Up to this many small-buffer transmits at once allocate nothing.
const SPARE_RESPONSES_KEPT: usize = 8;

thread_local! {
    /// Whether this thread is inside `boundary`. No destructor, so it stays readable while the
    /// thread exits.
    static IN_BOUNDARY: Cell<bool> = const { Cell::new(false) };
}

static QUIET_PANICS: Once = Once::new();

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the package version has no NUL"),
};

/// Runs a function body: its `Err` becomes the code, a panic becomes `SCM_E_UNEXPECTED`.
fn boundary(body: impl FnOnce() -> Result<()>) -> scm_hresult {
    // `set_hook` must not run while this thread unwinds (a call from a destructor during a
    // panic): the hook then waits for a later call. Built to abort on panic (a Rust host's
    // `panic = "abort"` profile), nothing is caught, and the hook's message is the only word
    // of why the process ends: it is left alone.
    if cfg!(panic = "unwind") && !QUIET_PANICS.is_completed() && !std::thread::panicking() {
        QUIET_PANICS.call_once(quiet_panics_inside_the_boundary);
    }
    let outer = IN_BOUNDARY.replace(true);
    let result = catch_unwind(AssertUnwindSafe(body));
    IN_BOUNDARY.set(outer);
    match result {
        Ok(Ok(())) => SCM_S_OK,
        Ok(Err(code)) => code,
        Err(_) => SCM_E_UNEXPECTED,
    }
}

/// A panic the boundary catches is reported as `SCM_E_UNEXPECTED` and nowhere else: Rust's
/// panic hook would otherwise print it, with a backtrace, on the host program's stderr. The
/// hook in place at the library's first call (Rust's default, or a Rust host's own) is kept and
/// still gets every panic outside the boundary. In the C library the hook belongs to the
/// library's own copy of Rust's runtime, so no host sees it; a Rust host that sets its hook
/// later replaces this one, and the library's panics are then its hook's to report. Only
/// panics that unwind are caught, so only a library built with `panic = "unwind"` installs it.
fn quiet_panics_inside_the_boundary() {
    let outer_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_BOUNDARY.get() {
            outer_hook(info);
        }
    }));
}

/// A required pointer argument, or `SCM_E_POINTER`.
macro_rules! non_null {
    ($pointer:expr) => {
        if $pointer.is_null() {
            return Err(SCM_E_POINTER);
        }
    };
}

/// A required out-parameter as a reference, or `SCM_E_POINTER`.
macro_rules! out_ref {
    ($pointer:expr) => {{
        non_null!($pointer);
        // SAFETY: the caller passes a valid, aligned out-parameter.
        unsafe { &mut *$pointer }
    }};
}

/// Runs `f` on the live manager behind a token, serialized with other calls on it.
fn with_manager<R>(m: *mut scm_manage, f: impl FnOnce(&mut Manager) -> Result<R>) -> Result<R> {
    non_null!(m);
    objects::with(m as usize, objects::manager, |manager| {
        #[cfg(feature = "test-hooks")]
        crate::test_hooks::panic_if_armed();
        f(manager)
    })
}

/// Creates an unattached manager (COM object creation). No PC/SC call is made.
///
/// Errors: `SCM_E_POINTER` (`out` is NULL), `SCM_E_OUTOFMEMORY` (no token left: every token is
/// in use, about 4·10^9 live managers on 64-bit systems and 65535 on 32-bit ones, or, on 32-bit
/// systems only, the process has used its tokens up: a token is never reused with a generation
/// that could let an old one come back to life, so each of the 65535 slots serves at most 65534
/// managers, 4,294,770,690 in the process's lifetime (somewhat fewer when managers stay alive
/// throughout: a live manager's slot serves no other); the limit on 64-bit systems, about
/// 1.8·10^19, is out of reach). A failing memory allocation aborts the process, as Rust's allocations do. `*out` is
/// written only on success; end the manager with `scm_release`.
#[no_mangle]
pub unsafe extern "C" fn scm_create(out: *mut *mut scm_manage) -> scm_hresult {
    boundary(|| {
        let out = out_ref!(out);
        let token = objects::insert(Object::Manager(Manager::default()))?;
        *out = token as *mut scm_manage;
        Ok(())
    })
}

/// Ends a manager (COM Release): ends a lock (LEAVE) and detaches (LEAVE) if needed; the token
/// is dead afterwards. Calls in progress on the manager in other threads finish first; every
/// later call with the token gets `SCM_E_HANDLE`. A release waits for a `scm_lock` that is
/// blocked on the same manager (it cannot be cancelled): unlock the card's other holder first.
///
/// Errors: `SCM_E_POINTER` (NULL), `SCM_E_HANDLE` (not live, e.g. released twice).
#[no_mangle]
pub unsafe extern "C" fn scm_release(m: *mut scm_manage) -> scm_hresult {
    boundary(|| {
        non_null!(m);
        let manager = objects::remove(m as usize, |object| matches!(object, Object::Manager(_)))?;
        // Dropping it ends the lock and the attachment.
        drop(manager);
        Ok(())
    })
}

/// Attaches to a card handle the caller got from `SCardConnect` in this process (COM
/// AttachByHandle). The handle is borrowed: the library never disconnects it, and it stays
/// usable by its owner after `scm_detach`. `scm_reconnect` reconnects it leaving the card, in
/// the share mode it was connected with, and with T0|T1 (RAW for a raw connection); the
/// protocol used for `scm_transmit` is the one the handle had when attached or after
/// `scm_reconnect`. PC/SC cannot report a handle's share mode: it is EXCLUSIVE when PC/SC reports
/// the reader held exclusively, SHARED when it reports it not so, asked at attach time and again
/// by each `scm_reconnect` (the owner may have reconnected the handle in another mode since). It
/// is unknown when PC/SC cannot say (the handle has a reset or removal to report, which hides its
/// reader): `scm_reconnect` then uses the mode last learnt, and else reads it off all the
/// readers: none held
/// exclusively means SHARED, every reader in use held exclusively means EXCLUSIVE. PC/SC reports
/// a reader in use only while it holds a card, so a SHARED handle whose card is out looks
/// EXCLUSIVE when another reader is held exclusively; the reconnect then fails
/// (`SCM_SCARD_E_NO_SMARTCARD`, measured with pcsc-lite) and changes nothing, unless the card
/// goes back in between the look and the reconnect. A DIRECT handle cannot be told from a SHARED
/// one: `scm_reconnect` reconnects it SHARED. When it still
/// cannot tell, it leaves the handle as it is and returns the code PC/SC gives for the handle
/// (`SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`): reconnect the handle yourself
/// (`SCardReconnect` with its share mode), then `scm_reconnect` works. The share mode is never
/// guessed, so an exclusive handle never loses its exclusivity. The handle's calls go through
/// its owner's PC/SC context: two managers borrowing handles of one context wait for each
/// other, and a service restart cannot be recovered here (the owner needs a new context).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED` (already attached: detach
/// first), `SCM_E_INVALIDARG` (PC/SC does not know the handle, or the value cannot be one),
/// `SCM_SCARD_E_NO_SERVICE`, `SCM_SCARD_E_SERVICE_STOPPED`, `SCM_SCARD_F_COMM_ERROR`.
#[no_mangle]
pub unsafe extern "C" fn scm_attach_by_handle(m: *mut scm_manage, hicc: scm_hscard) -> scm_hresult {
    boundary(|| with_manager(m, |manager| manager.attach_handle(CardHandle::from_abi(hicc)?)))
}

/// Attaches to the reader of that exact name, share mode SHARED, protocols T0|T1 (COM
/// AttachByIFD). The link is to the reader: a reader with no card attaches fine
/// (`scm_status` then says `SCM_STATE_ABSENT`), and `scm_reconnect` connects the card once it is
/// there; until then card operations return `SCM_SCARD_E_NO_SMARTCARD`. Each attached
/// manager has a PC/SC context of its own; the contexts of detached managers are reused by
/// later attachments (the process keeps at most four spare ones).
///
/// `reader`: UTF-8, NUL-terminated, at most 1023 bytes.
///
/// Errors: `SCM_E_POINTER` (`m` or `reader` NULL), `SCM_E_INVALIDARG` (empty, too long or
/// invalid UTF-8), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED` (already attached),
/// `SCM_SCARD_E_UNKNOWN_READER`, `SCM_SCARD_E_SHARING_VIOLATION`, `SCM_SCARD_E_NO_SERVICE`
/// and other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_attach_by_ifd(m: *mut scm_manage, reader: *const c_char) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe { scm_attach_by_ifd_ex(m, reader, SCM_SHARE_SHARED, SCM_PROTOCOL_ANY) }
}

/// `scm_attach_by_ifd` with a UTF-16, NUL-terminated name (a BSTR's characters), at most 1023
/// units.
///
/// Errors: as `scm_attach_by_ifd`; unpaired surrogates are `SCM_E_INVALIDARG`.
#[no_mangle]
pub unsafe extern "C" fn scm_attach_by_ifd_w(m: *mut scm_manage, reader: *const u16) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reader = unsafe { buffers::reader_name_utf16(reader) }?;
            manager.attach_reader(reader, ShareMode::Shared, SCM_PROTOCOL_ANY)
        })
    })
}

/// `scm_attach_by_ifd` with a share mode (`SCM_SHARE_*`) and preferred protocols
/// (`SCM_PROTOCOL_T0`, `_T1`, `_ANY`, `_RAW`, or `_UNDEFINED` with `SCM_SHARE_DIRECT` only).
/// With `SCM_SHARE_DIRECT` the reader is connected even when it holds no card.
///
/// Errors: as `scm_attach_by_ifd`; a share mode or protocols value out of range is
/// `SCM_E_INVALIDARG`.
#[no_mangle]
pub unsafe extern "C" fn scm_attach_by_ifd_ex(
    m: *mut scm_manage,
    reader: *const c_char,
    share_mode: u32,
    protocols: u32,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reader = unsafe { buffers::reader_name_utf8(reader) }?;
            let share_mode = ShareMode::from_abi(share_mode)?;
            let protocols = protocols_from_abi(protocols, share_mode)?;
            manager.attach_reader(reader, share_mode, protocols)
        })
    })
}

/// Re-establishes the link with the same reader, share mode and protocols, leaving the card as
/// it is (COM Reconnect). It recovers every recoverable state: the card was reset by another
/// program (`SCM_SCARD_W_RESET_CARD`), the card was removed and put back, the PC/SC service
/// was restarted (a new context is established). A reader attached without a card gets its card
/// connected. A lock held through this manager ends. For a borrowed handle it reconnects that
/// handle leaving the card, keeping its share mode and a RAW protocol, as `scm_attach_by_handle`
/// says (when its share mode cannot be learnt, it returns the handle's warning and leaves it as
/// it is); a service restart cannot be recovered for a borrowed handle.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_NO_SMARTCARD`
/// (no card in the reader: the manager stays attached to the reader), `SCM_SCARD_E_NO_SERVICE`
/// (the service is still down), `SCM_SCARD_E_UNKNOWN_READER` (the reader is not back yet),
/// `SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD` or `SCM_SCARD_W_UNPOWERED_CARD` for a
/// borrowed handle whose share mode cannot be learnt (reconnect it yourself), and other PC/SC
/// codes.
#[no_mangle]
pub unsafe extern "C" fn scm_reconnect(m: *mut scm_manage) -> scm_hresult {
    boundary(|| with_manager(m, Manager::reconnect))
}

/// Ends the attachment, leaving the card (COM Detach); the manager can attach again.
/// Same as `scm_detach_ex(m, SCM_LEAVE_CARD)`.
#[no_mangle]
pub unsafe extern "C" fn scm_detach(m: *mut scm_manage) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe { scm_detach_ex(m, SCM_LEAVE_CARD) }
}

/// Ends the attachment with a disposition (`SCM_LEAVE_CARD`, `_RESET_CARD`, `_UNPOWER_CARD`,
/// `_EJECT_CARD`). A lock held through the manager ends first (LEAVE). The card connection the
/// library made is closed; a borrowed handle is not, and allows `SCM_LEAVE_CARD` only.
/// The manager is unattached afterwards whatever PC/SC answered; a PC/SC failure to release the
/// card as asked (e.g. the service is gone) is still reported. A RESET, UNPOWER or EJECT
/// disposition waits while another connection holds the card's lock; only this call waits
/// (the card's lock is taken first, then the connection ends with the disposition). A reset
/// or power-down reported on the connection (`SCM_SCARD_W_RESET_CARD`,
/// `SCM_SCARD_W_UNPOWERED_CARD`) is cleared first, accepting whatever protocol the card runs by
/// then (another program may have connected it T=0 or RAW; RAW is asked for last, and only when
/// the card runs neither T=0 nor T=1, so that the other programs' connections keep their
/// protocol); when the card's lock cannot be taken (card removed, reader or service gone) the
/// connection ends leaving the card and that code is returned. A lock only this thread would end (another manager's, locked from
/// this thread, or a transaction of your own) makes the call wait forever: end it first.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_E_INVALIDARG`
/// (disposition out of range, or not LEAVE on a borrowed handle), PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_detach_ex(m: *mut scm_manage, disposition: u32) -> scm_hresult {
    boundary(|| with_manager(m, |manager| manager.detach(Disposition::from_abi(disposition)?)))
}

/// Takes exclusive use of the card: begins a PC/SC transaction (COM SCardLock). Blocks while
/// another connection holds it; other managers are not stalled meanwhile, but other calls on
/// this manager wait. Locking a manager that holds the lock does nothing: one `scm_unlock` ends
/// it.
///
/// Reset while locked (measured with pcsc-lite 1.9.9, see RELIABILITY.md): while the lock is
/// held, another connection's reset and new connections wait for it to end; the card is not
/// reset under the lock and calls through this manager keep working. After `scm_unlock` the
/// reset goes through; every call on this manager then returns `SCM_SCARD_W_RESET_CARD`,
/// `scm_lock` included (it takes no lock, so `scm_unlock` says `SCM_SCARD_E_NOT_TRANSACTED`),
/// until `scm_reconnect`.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_NO_SMARTCARD`
/// (no card connected), `SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`,
/// `SCM_SCARD_E_NO_SERVICE`, other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_lock(m: *mut scm_manage) -> scm_hresult {
    boundary(|| with_manager(m, Manager::lock))
}

/// Ends the lock with a disposition (COM SCardUnlock).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_E_INVALIDARG`
/// (disposition out of range), `SCM_SCARD_E_NOT_TRANSACTED` (no lock held through this
/// manager), `SCM_SCARD_E_NO_SMARTCARD`, PC/SC codes. When the card was removed or the service
/// lost, the lock is gone and the code says why; after `SCM_SCARD_W_RESET_CARD`, `scm_reconnect`
/// ends it. With `SCM_RESET_CARD` the lock ends and the card is reset; every manager on the
/// card, this one included, then gets `SCM_SCARD_W_RESET_CARD` until `scm_reconnect`. When
/// PC/SC cannot carry out the disposition (pcsc-lite cannot eject: `SCM_SCARD_E_UNEXPECTED`),
/// the lock ends all the same and the code says what failed.
#[no_mangle]
pub unsafe extern "C" fn scm_unlock(m: *mut scm_manage, disposition: u32) -> scm_hresult {
    boundary(|| with_manager(m, |manager| manager.unlock(Disposition::from_abi(disposition)?)))
}

/// The card's state (`SCM_STATE_*`) and protocol (`SCM_PROTOCOL_*`), COM values on every OS
/// (COM Status). A reader attached without a connected card reports `SCM_STATE_ABSENT`, or
/// `SCM_STATE_PRESENT` once a card is in (call `scm_reconnect` to connect it), or
/// `SCM_STATE_UNKNOWN` when PC/SC reports the reader neither empty nor holding a card (e.g.
/// unavailable), with `SCM_PROTOCOL_UNDEFINED`. A connected card's state is `SCM_STATE_UNKNOWN`
/// likewise when PC/SC reports none of the states.
///
/// `state` and `protocol` may point to one variable: both are written, state first, so it ends
/// holding the protocol.
///
/// Errors: `SCM_E_POINTER` (any argument NULL), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_W_RESET_CARD` and `SCM_SCARD_W_REMOVED_CARD` (call `scm_reconnect`),
/// `SCM_SCARD_E_NO_SERVICE`, other PC/SC codes. Outputs are written only on success.
#[no_mangle]
pub unsafe extern "C" fn scm_status(m: *mut scm_manage, state: *mut u32, protocol: *mut u32) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            non_null!(state);
            non_null!(protocol);
            let (card_state, card_protocol) = manager.status()?;
            // SAFETY: both are valid, aligned out-parameters. They may be one variable, so they
            // are written one after the other through the raw pointers, never as references.
            unsafe {
                state.write(card_state);
                protocol.write(card_protocol);
            }
            Ok(())
        })
    })
}

/// Sends one command APDU and returns the card's answer, status word included.
///
/// `command`: 1 to `SCM_MAX_APDU_SIZE` bytes. `response`, `*response_len`: the buffer rules
/// (capacity in, bytes written out; NULL `response` asks for the size). For this function a
/// size query or a too small buffer comes **after** the command was sent: the answer is lost and
/// only its size is returned. A buffer of `SCM_MAX_APDU_SIZE` bytes always fits.
/// `*response_len` must not claim more than the buffer really holds. `command` and `response`
/// may be the same buffer.
///
/// An exception to "outputs are written only on success": with `*response_len` of at least
/// `SCM_MAX_APDU_SIZE`, PC/SC writes the answer straight into `response` (no copy), so on a
/// failure the buffer's contents are unspecified: part of an answer may be there (e.g. when the
/// service is lost while it passes the answer on). `*response_len` is written only on success,
/// or with `SCM_SCARD_E_INSUFFICIENT_BUFFER`. A smaller buffer is written only on success.
///
/// Errors: `SCM_E_POINTER` (`m`, `command` or `response_len` NULL), `SCM_E_INVALIDARG`
/// (`command_len` 0 or over `SCM_MAX_APDU_SIZE`), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_NO_SMARTCARD`, `SCM_SCARD_E_INSUFFICIENT_BUFFER` (`*response_len` set to the
/// size needed), `SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`, other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_transmit(
    m: *mut scm_manage,
    command: *const u8,
    command_len: size_t,
    response: *mut u8,
    response_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            non_null!(command);
            let response_len = out_ref!(response_len);
            if command_len == 0 || command_len > SCM_MAX_APDU_SIZE {
                return Err(SCM_E_INVALIDARG);
            }
            let (card, protocol) = manager.transmit_target()?;
            if !response.is_null() && *response_len >= SCM_MAX_APDU_SIZE {
                // Room for any answer: PC/SC writes straight into the caller's buffer (only the
                // first SCM_MAX_APDU_SIZE bytes of a larger claimed capacity are ever used).
                // SAFETY: the caller passes `command_len` readable and `*response_len` writable
                // bytes; they may overlap.
                *response_len =
                    unsafe { card.transmit(protocol, command, command_len, response, SCM_MAX_APDU_SIZE) }?;
                return Ok(());
            }
            let spare = lock_ignoring_poison(&SPARE_RESPONSES).pop();
            let mut scratch = spare.unwrap_or_else(|| vec![0; SCM_MAX_APDU_SIZE].into_boxed_slice());
            // SAFETY: the caller passes `command_len` readable bytes; the scratch is ours.
            let result =
                unsafe { card.transmit(protocol, command, command_len, scratch.as_mut_ptr(), scratch.len()) }
                    // SAFETY: the caller passes `*response_len` writable bytes.
                    .and_then(|len| unsafe { write_out(&scratch[..len], response, response_len) });
            let mut spare = lock_ignoring_poison(&SPARE_RESPONSES);
            if spare.len() < SPARE_RESPONSES_KEPT {
                spare.push(scratch);
            }
            result
        })
    })
}

/// The card's ATR (at most 33 bytes; 36 on Windows), under the buffer rules.
///
/// Errors: `SCM_E_POINTER` (`m` or `atr_len` NULL), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_NO_SMARTCARD`, `SCM_SCARD_E_INSUFFICIENT_BUFFER`, `SCM_SCARD_W_RESET_CARD`,
/// `SCM_SCARD_W_REMOVED_CARD`, other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_get_atr(m: *mut scm_manage, atr: *mut u8, atr_len: *mut size_t) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let atr_len = out_ref!(atr_len);
            let (bytes, len) = manager.atr()?;
            // SAFETY: the caller passes `*atr_len` writable bytes.
            unsafe { write_out(&bytes[..len], atr, atr_len) }
        })
    })
}

/// The attached reader's name, NUL-terminated, under the buffer rules (the NUL is counted): the
/// UTF-8 name it was attached by, or for a borrowed handle the name as PC/SC gives it, byte for
/// byte, which is not UTF-8 if the driver named the reader otherwise (see `scm_list_readers`).
///
/// Errors: `SCM_E_POINTER` (`m` or `name_len` NULL), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER`; for a borrowed handle the name comes from PC/SC, so PC/SC
/// codes too.
#[no_mangle]
pub unsafe extern "C" fn scm_get_reader_name(
    m: *mut scm_manage,
    name: *mut c_char,
    name_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let name_len = out_ref!(name_len);
            let mut bytes = manager.reader_name()?;
            bytes.push(0);
            // SAFETY: the caller passes `*name_len` writable bytes.
            unsafe { write_out(&bytes, name.cast::<u8>(), name_len) }
        })
    })
}

/// The card handle in use (COM ISCard get_CardHandle), to pass to other PC/SC code of this
/// process. It stays owned by the manager (or by its owner, when borrowed): do not disconnect
/// it.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_NO_SMARTCARD`
/// (attached to a reader with no card connected).
#[no_mangle]
pub unsafe extern "C" fn scm_get_handle(m: *mut scm_manage, out: *mut scm_hscard) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let out = out_ref!(out);
            *out = manager.card_handle()?.to_abi();
            Ok(())
        })
    })
}

/// The names of the readers as a PC/SC multi-string (each name NUL-terminated, one more NUL at
/// the end), under the buffer rules. Uses a context of its own for each call, so it works at
/// once after the PC/SC service restarts.
///
/// Names are passed on as PC/SC gives them, byte for byte: neither PC/SC nor this library
/// checks them, so a driver's name that is not UTF-8 (Latin-1 bytes, say) is listed as it is.
/// `scm_attach_by_ifd` takes UTF-8 only and refuses such a name (`SCM_E_INVALIDARG`); attach to
/// that reader with `scm_attach_by_handle`. The bindings decode names with U+FFFD for what is
/// not UTF-8, so one such name never hides the others. On Windows, whose PC/SC names readers
/// in UTF-16, the names are converted to UTF-8; an unpaired surrogate, which UTF-8 cannot carry,
/// becomes the three bytes UTF-8 would give a code point of its value (not UTF-8 either). The
/// same holds for `scm_get_reader_name`.
///
/// Errors: `SCM_E_POINTER` (`readers_len` NULL), `SCM_SCARD_E_NO_READERS_AVAILABLE`,
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER`, `SCM_SCARD_E_NO_SERVICE`, other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_list_readers(readers: *mut c_char, readers_len: *mut size_t) -> scm_hresult {
    boundary(|| {
        let readers_len = out_ref!(readers_len);
        let names = Context::establish()?.list_readers()?;
        // SAFETY: the caller passes `*readers_len` writable bytes.
        unsafe { write_out(&names, readers.cast::<u8>(), readers_len) }
    })
}

/// A static English text for any value (known codes, success and unknown values alike). Never
/// NULL; never to be freed.
#[no_mangle]
pub extern "C" fn scm_error_message(hr: scm_hresult) -> *const c_char {
    message(hr).as_ptr()
}

/// The library's version ("major.minor.patch"), static.
#[no_mangle]
pub extern "C" fn scm_version() -> *const c_char {
    VERSION.as_ptr()
}

mod wait;
pub use wait::*;
mod monitor;
pub use monitor::*;
mod iso;
pub use iso::*;
mod file;
pub use file::*;

/// The panic boundary, run wherever the unit tests run (under Wine for Windows too): the
/// integration tests that force a panic need the lab, which runs on Linux only.
#[cfg(all(test, feature = "test-hooks"))]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_a_call_is_e_unexpected_and_the_manager_lives_on() {
        let mut m = std::ptr::null_mut();
        // SAFETY: valid out-pointer; the token is used only while live.
        unsafe {
            assert_eq!(scm_create(&mut m), SCM_S_OK);
            crate::test_hooks::panic_in_next_manager_call();
            assert_eq!(scm_detach(m), SCM_E_UNEXPECTED);
            // The hook fired once, and the manager's lock was not left poisoned for good.
            assert_eq!(scm_detach(m), SCM_E_NOT_ATTACHED);
            assert_eq!(scm_release(m), SCM_S_OK);
            assert_eq!(scm_release(m), SCM_E_HANDLE);
        }
    }
}
