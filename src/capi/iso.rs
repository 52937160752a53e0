//! The ISO/IEC 7816-4 part of the C surface: `scm_transmit_ex`, the four factories of
//! `ISCardManage` (`Create*`), and the card holder verification and card authentication
//! objects. File access (`scm_file_*`) is in `file.rs`.

use std::ffi::{c_char, c_void};

use libc::size_t;

use super::{boundary, scm_transmit, with_manager, SCM_MAX_APDU_SIZE};
use crate::buffers::{self, write_out};
use crate::hresult::*;
use crate::iso::apdu::MAX_EXTENDED_DATA;
use crate::iso::auth::Auth;
use crate::iso::chv::{self, Chv, ChvResult};
use crate::iso::file::FileAccess;
use crate::iso::{sw, transport, Child};
use crate::manager::Manager;
use crate::objects::{self, Object};
use crate::scard::Result;

pub use crate::iso::sw::card_status as scm_card_status;

/// A file access object (COM ISCardFileAccess), made by `scm_create_file_access`: a token, never
/// an address, ended by `scm_file_access_release`.
#[allow(non_camel_case_types)]
pub struct scm_file_access {
    _opaque: [u8; 0],
}

/// A card holder verification object (COM ISCardVerify), made by
/// `scm_create_chv_verification`: a token, ended by `scm_chv_release`.
#[allow(non_camel_case_types)]
pub struct scm_chv {
    _opaque: [u8; 0],
}

/// A card authentication object (COM ISCardAuth), made by `scm_create_card_auth`: a token,
/// ended by `scm_auth_release`.
#[allow(non_camel_case_types)]
pub struct scm_auth {
    _opaque: [u8; 0],
}

/// `scm_transmit_ex` flags: collect an answer announced by `61xx` with GET RESPONSE.
pub const SCM_ISO_GET_RESPONSE: u32 = 1;
/// `scm_transmit_ex` flags: resend with the Le that `6Cxx` names.
pub const SCM_ISO_FIX_LE: u32 = 2;
/// `scm_transmit_ex` flags: send a command whose data does not fit a short APDU as chained short
/// commands when the card does not take extended length.
pub const SCM_ISO_CHAIN: u32 = 4;
/// `scm_transmit_ex` flags: all of the above.
pub const SCM_ISO_ALL: u32 = 7;

/// Tries left when the card does not say (`scm_chv_*`).
pub const SCM_TRIES_UNKNOWN: u32 = 0xFFFF_FFFF;
/// `scm_chv_*` flags: pad each code with `FF` bytes to 8 bytes; a longer code is
/// `SCM_E_INVALIDARG`.
pub const SCM_CHV_PAD_FF: u32 = 1;

// The library's own values, which cbindgen cannot follow across modules, are these.
const _: () = assert!(
    SCM_ISO_GET_RESPONSE == transport::GET_RESPONSE
        && SCM_ISO_FIX_LE == transport::FIX_LE
        && SCM_ISO_CHAIN == transport::CHAIN
        && SCM_ISO_ALL == transport::ALL
        && SCM_TRIES_UNKNOWN == sw::TRIES_UNKNOWN
        && SCM_CHV_PAD_FF == chv::PAD_FF
);

/// File references (`scm_file_*`): a DF name, in hex digits (SELECT by name).
pub const SCM_REF_BY_NAME: u32 = 0;
/// File references: a file identifier or a path of them, in hex digits, `/` allowed between
/// identifiers; a path starting with `3F00` is absolute, any other relative to the current DF.
pub const SCM_REF_BY_ID: u32 = 1;
/// File references: a short EF identifier, 1 to 30.
pub const SCM_REF_BY_SHORT_ID: u32 = 2;

/// `scm_file_seek` origins.
pub const SCM_SEEK_FROM_BEGINNING: u32 = 0;
pub const SCM_SEEK_FROM_END: u32 = 1;
pub const SCM_SEEK_RELATIVE: u32 = 2;

/// The IIDs `scm_create_interface` knows, in GUID memory order (Data1, Data2 and Data3 little
/// endian, then Data4's eight bytes).
const IID_ISCARD_FILE_ACCESS: [u8; 16] =
    [0x8A, 0xDD, 0x29, 0x40, 0x02, 0x59, 0xD0, 0x11, 0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9];
const IID_ISCARD_VERIFY: [u8; 16] =
    [0x85, 0xDD, 0x29, 0x40, 0x02, 0x59, 0xD0, 0x11, 0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9];
const IID_ISCARD_AUTH: [u8; 16] =
    [0x61, 0x3D, 0x06, 0x7B, 0x40, 0x6E, 0xD0, 0x11, 0xB8, 0x58, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9];

/// A caller's input bytes: NULL is allowed with a length of 0 only; more than an extended APDU
/// carries (65535 bytes) is `SCM_E_INVALIDARG`.
///
/// # Safety
/// A non-NULL `data` must be readable for `len` bytes.
pub(super) unsafe fn input<'a>(data: *const u8, len: size_t) -> Result<&'a [u8]> {
    match (data.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(SCM_E_POINTER),
        (false, len) if len > MAX_EXTENDED_DATA => Err(SCM_E_INVALIDARG),
        // SAFETY: the caller passes `len` readable bytes.
        (false, len) => Ok(unsafe { std::slice::from_raw_parts(data, len) }),
    }
}

/// Runs `f` on a live object of the kind `pick` accepts and on its live manager, both locked
/// (the object first: the order `objects` prescribes). `SCM_E_HANDLE` when either is not live.
pub(super) fn with_child<T: Child, R>(
    token: usize,
    pick: impl FnOnce(&mut Object) -> Option<&mut T>,
    f: impl FnOnce(&mut T, &mut Manager) -> Result<R>,
) -> Result<R> {
    objects::with(token, pick, |child| {
        let manager = child.manager();
        objects::with(manager, objects::manager, |manager| f(child, manager))
    })
}

/// Makes an object of the manager's and writes its token to `*out`, once the manager is known
/// to be live and `out` non-NULL. A manager released meanwhile leaves an object whose every call
/// is `SCM_E_HANDLE`.
fn create_into<T>(m: *mut scm_manage, out: *mut *mut T, make: fn(usize) -> Object) -> Result<()> {
    with_manager(m, |_| Ok(()))?;
    let out = out_ref!(out);
    *out = objects::insert(make(m as usize))? as *mut T;
    Ok(())
}

use super::scm_manage;

/// `scm_transmit` with ISO/IEC 7816 help (ISO/IEC 7816-3 12.2, 7816-4 5.1 and 5.3): `flags` is
/// `SCM_ISO_GET_RESPONSE` (an answer announced by `61xx` is collected with GET RESPONSE, `00 C0
/// 00 00 xx` in the command's logical channel, and the pieces joined), `SCM_ISO_FIX_LE` (after
/// `6Cxx` the command is sent again with Le = xx), `SCM_ISO_CHAIN` (a command whose data does
/// not fit a short APDU is sent as extended APDU when the card's ATR announces extended length,
/// as short commands chained with CLA bit `10` otherwise; a command that needs no extended form
/// is sent short; without this flag the command keeps the form it came in), any of them or
/// `SCM_ISO_ALL`. With flags 0 this is `scm_transmit` exactly.
///
/// The command is decoded (cases 1 to 4, short or extended): lengths that do not match its size
/// are `SCM_E_INVALIDARG`. On a T=0 connection with `SCM_ISO_GET_RESPONSE`, a case 4 command is
/// sent without its Le (ISO/IEC 7816-3 12.2.4: the card answers `61xx`), and extended length is
/// never used. A short command asks for at most 256 bytes; the rest comes through GET RESPONSE.
/// The card's capabilities are read from its ATR at the first call after each attach or
/// `scm_reconnect`, and from its ATR only: a card that announces extended length in EF.ATR
/// alone gets short (chained) commands here, since reading EF.ATR takes SELECTs that would
/// change the card's current file, and with it the application or file the caller selected
/// (file access objects, which select what they work on at every call, do read it). The response is the answer's data, every piece, then the final status word.
///
/// The buffer rules are `scm_transmit`'s: `*response_len` is the capacity in, the bytes written
/// out; a NULL `response` asks for the size and a too small one gets
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER` with the size needed, both **after** the command and its
/// GET RESPONSE were sent: that answer is lost (send the command again with a buffer of the size
/// returned, or of `SCM_MAX_APDU_SIZE` bytes, which always fits). `response` is written only on
/// success. `command` and `response` may be the same buffer. Reuses the manager's buffers: no
/// allocation per call after the first, except that an answer longer than any before grows the
/// manager's answer buffer once. The library's copy of the command (its encoding) is
/// overwritten before the call returns, so a VERIFY sent this way leaves no code in the
/// manager.
///
/// A card that breaks the exchange gets `SCM_SCARD_E_COMM_DATA_LOST` and its answer is dropped:
/// an answer shorter than a status word, more data than the Le of the command that got it, a
/// GET RESPONSE chain past 65536 bytes or past 1024 rounds, or a third `6Cxx` for one command.
/// A chained piece answered with anything but `90 00` ends the command: with that status word
/// when it is a refusal (`64xx` to `6Fxx`, no data), with `SCM_SCARD_E_COMM_DATA_LOST` when it
/// is not (data, `61xx`, a warning: the caller would take it for the whole command's answer).
///
/// Errors: `SCM_E_POINTER` (`m`, `command` or `response_len` NULL), `SCM_E_HANDLE`,
/// `SCM_E_INVALIDARG` (unknown flag bits, `command_len` 0 or over `SCM_MAX_APDU_SIZE`, a command
/// that does not decode, data over 255 bytes in short form without `SCM_ISO_CHAIN`),
/// `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_NO_SMARTCARD`, `SCM_SCARD_E_INSUFFICIENT_BUFFER`,
/// `SCM_SCARD_E_COMM_DATA_LOST`, `SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`, other
/// PC/SC codes. Status words are returned in the response, not as codes.
#[no_mangle]
pub unsafe extern "C" fn scm_transmit_ex(
    m: *mut scm_manage,
    flags: u32,
    command: *const u8,
    command_len: size_t,
    response: *mut u8,
    response_len: *mut size_t,
) -> scm_hresult {
    if flags == 0 {
        // SAFETY: forwarded from the caller.
        return unsafe { scm_transmit(m, command, command_len, response, response_len) };
    }
    boundary(|| {
        with_manager(m, |manager| {
            non_null!(command);
            let response_len = out_ref!(response_len);
            if flags & !SCM_ISO_ALL != 0 || command_len == 0 || command_len > SCM_MAX_APDU_SIZE {
                return Err(SCM_E_INVALIDARG);
            }
            // SAFETY: the caller passes `command_len` readable bytes. The slice is not used
            // after `iso_transmit` returns, before the response (maybe the same buffer) is written.
            let raw = unsafe { std::slice::from_raw_parts(command, command_len) };
            let answer = manager.iso_transmit(flags, raw)?;
            // SAFETY: the caller passes `*response_len` writable bytes.
            let written = unsafe { write_out(&answer, response, response_len) };
            manager.iso_reuse(answer);
            written
        })
    })
}

/// Creates a file access object on the manager (COM CreateFileAccess): `scm_file_*` work on the
/// card the manager is attached to, whatever card that is at the time of each call. The object
/// follows the manager through `scm_reconnect`, detach and re-attach; its calls return
/// `SCM_E_NOT_ATTACHED` while the manager is unattached and `SCM_E_HANDLE` once the manager is
/// released. A manager that is not attached may create objects. No APDU is sent. End the
/// object with `scm_file_access_release` (releasing the manager does not end it). Calls on one
/// object are serialized, and so are the calls of all the objects of one manager with the
/// manager's own (each runs under the manager's lock, as `scm_transmit` does); objects of
/// different managers never wait for each other.
///
/// Errors: `SCM_E_POINTER` (`m` or `out` NULL), `SCM_E_HANDLE` (`m` not live),
/// `SCM_E_OUTOFMEMORY` (no token left). `*out` is written only on success.
#[no_mangle]
pub unsafe extern "C" fn scm_create_file_access(
    m: *mut scm_manage,
    out: *mut *mut scm_file_access,
) -> scm_hresult {
    boundary(|| create_into(m, out, |m| Object::FileAccess(FileAccess::new(m))))
}

/// Creates a card holder verification object on the manager (COM CreateCHVerification), with
/// the lifetime rules of `scm_create_file_access`. No APDU is sent. End it with
/// `scm_chv_release`.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_OUTOFMEMORY`.
#[no_mangle]
pub unsafe extern "C" fn scm_create_chv_verification(
    m: *mut scm_manage,
    out: *mut *mut scm_chv,
) -> scm_hresult {
    boundary(|| create_into(m, out, |m| Object::Chv(Chv::new(m))))
}

/// Creates a card authentication object on the manager (COM CreateCardAuth), with the lifetime
/// rules of `scm_create_file_access`. No APDU is sent. End it with `scm_auth_release`.
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_OUTOFMEMORY`.
#[no_mangle]
pub unsafe extern "C" fn scm_create_card_auth(m: *mut scm_manage, out: *mut *mut scm_auth) -> scm_hresult {
    boundary(|| create_into(m, out, |m| Object::Auth(Auth::new(m))))
}

/// Creates one of the objects above by interface (COM CreateInterface). `iid`: 16 bytes, the
/// IID in GUID memory order (Data1, Data2, Data3 little endian, then Data4):
/// ISCardFileAccess {4029DD8A-5902-11D0-B84C-00C04FD424B9} = `8A DD 29 40 02 59 D0 11 B8 4C 00
/// C0 4F D4 24 B9` gives an `scm_file_access *`, ISCardVerify {4029DD85-5902-11D0-B84C-
/// 00C04FD424B9} = `85 DD 29 40 ...` (the same from the fifth byte) an `scm_chv *`, ISCardAuth
/// {7B063D61-6E40-11D0-B858-00C04FD424B9} = `61 3D 06 7B 40 6E D0 11 B8 58 00 C0 4F D4 24 B9`
/// an `scm_auth *`. With `iid` NULL, `name` (UTF-8, NUL-terminated) chooses: "FileAccess",
/// "CHVerification", "CardAuth" (exact case). When both are given `iid` decides and `name` is not
/// read. Any other IID or name, such as "CryptoProvider", is `SCM_E_NOTIMPL`. The object is
/// ended by the release function of its type.
///
/// Errors: `SCM_E_POINTER` (`m` or `out` NULL, or `iid` and `name` both NULL), `SCM_E_HANDLE`,
/// `SCM_E_INVALIDARG` (`name` empty, over 1023 bytes or not UTF-8), `SCM_E_NOTIMPL`,
/// `SCM_E_OUTOFMEMORY`. `*out` is written only on success.
#[no_mangle]
pub unsafe extern "C" fn scm_create_interface(
    m: *mut scm_manage,
    iid: *const u8,
    name: *const c_char,
    out: *mut *mut c_void,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |_| Ok(()))?;
        non_null!(out);
        let make: fn(usize) -> Object = if !iid.is_null() {
            // SAFETY: the caller passes 16 readable bytes.
            match unsafe { iid.cast::<[u8; 16]>().read_unaligned() } {
                IID_ISCARD_FILE_ACCESS => |m| Object::FileAccess(FileAccess::new(m)),
                IID_ISCARD_VERIFY => |m| Object::Chv(Chv::new(m)),
                IID_ISCARD_AUTH => |m| Object::Auth(Auth::new(m)),
                _ => return Err(SCM_E_NOTIMPL),
            }
        } else {
            non_null!(name);
            // SAFETY: the caller passes a NUL-terminated string. Read with the bounds and
            // checks of a reader name.
            match unsafe { buffers::reader_name_utf8(name) }?.as_bytes() {
                b"FileAccess" => |m| Object::FileAccess(FileAccess::new(m)),
                b"CHVerification" => |m| Object::Chv(Chv::new(m)),
                b"CardAuth" => |m| Object::Auth(Auth::new(m)),
                _ => return Err(SCM_E_NOTIMPL),
            }
        };
        create_into(m, out, make)
    })
}

/// Ends a file access object (COM Release); its open files are closed (nothing is sent to the
/// card). Calls in progress on it finish first; the token is dead afterwards.
///
/// Errors: `SCM_E_POINTER` (NULL), `SCM_E_HANDLE` (not live, or not a file access object).
#[no_mangle]
pub unsafe extern "C" fn scm_file_access_release(f: *mut scm_file_access) -> scm_hresult {
    boundary(|| {
        non_null!(f);
        objects::remove(f as usize, |object| matches!(object, Object::FileAccess(_))).map(drop)
    })
}

/// Ends a verification object (COM Release). The card's security state is left as it is (see
/// `scm_chv_reset_security_state`).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE` (not live, or not a verification object).
#[no_mangle]
pub unsafe extern "C" fn scm_chv_release(v: *mut scm_chv) -> scm_hresult {
    boundary(|| {
        non_null!(v);
        objects::remove(v as usize, |object| matches!(object, Object::Chv(_))).map(drop)
    })
}

/// Ends an authentication object (COM Release).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE` (not live, or not an authentication object).
#[no_mangle]
pub unsafe extern "C" fn scm_auth_release(a: *mut scm_auth) -> scm_hresult {
    boundary(|| {
        non_null!(a);
        objects::remove(a as usize, |object| matches!(object, Object::Auth(_))).map(drop)
    })
}

/// The code of a reference-data result, with the tries left written where the result has them.
///
/// # Safety
/// A non-NULL `tries_left` must be a valid, aligned out-parameter.
unsafe fn report_chv(result: ChvResult<()>, tries_left: *mut u32) -> Result<()> {
    result.map_err(|failure| {
        if let (Some(tries), false) = (failure.tries, tries_left.is_null()) {
            // SAFETY: the caller passes a valid out-parameter.
            unsafe { tries_left.write(tries) };
        }
        failure.code
    })
}

/// Verifies a code (COM ISCardVerify::Verify): VERIFY `00 20 00 P2` with the code as data, P2 =
/// `reference` (0 to 255: ISO/IEC 7816-4 puts the reference number in b5-b1 and "specific to the
/// DF" in b8). `flags`: 0 (the code is sent as given) or `SCM_CHV_PAD_FF` (padded with `FF` to 8
/// bytes). The library's copies of the code (the padded data, the encoded command) are
/// overwritten before the call returns, and the code never appears in any message or log; the
/// copies PC/SC makes on the way to the card (its client library, the service) are beyond reach.
///
/// `tries_left` may be NULL; it is written only with `SCM_SCARD_W_WRONG_CHV` (x of the card's
/// `63Cx`, or `SCM_TRIES_UNKNOWN` after `63 00`) and with `SCM_SCARD_W_CHV_BLOCKED` (0).
///
/// Errors: `SCM_E_POINTER` (`v` NULL, `code` NULL with `len` > 0), `SCM_E_HANDLE` (`v` or its
/// manager not live), `SCM_E_INVALIDARG` (`len` 0 or over 65535, `reference` over 255, unknown
/// flag bits, a code over 8 bytes with `SCM_CHV_PAD_FF`), `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_W_WRONG_CHV`, `SCM_SCARD_W_CHV_BLOCKED` (`69 83` or `69 84`), the other codes of
/// the status-word table at the top of this header (e.g. `SCM_E_CARD_STATUS(0x6A88)`: reference
/// not found), `SCM_SCARD_E_COMM_DATA_LOST`, PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_chv_verify(
    v: *mut scm_chv,
    reference: u32,
    code: *const u8,
    len: size_t,
    flags: u32,
    tries_left: *mut u32,
) -> scm_hresult {
    boundary(|| {
        non_null!(v);
        with_child(v as usize, objects::chv, |chv, manager| {
            // SAFETY: the caller passes `len` readable bytes.
            let code = unsafe { input(code, len) }?;
            // SAFETY: the caller passes a valid out-parameter or NULL.
            unsafe { report_chv(chv.verify(manager, reference, code, flags), tries_left) }
        })
    })
}

/// Changes a code (COM ISCardVerify::ChangeCode): CHANGE REFERENCE DATA `00 24 P1 P2`, P2 =
/// `reference`; P1 `00` with the old code then the new one as data, or P1 `01` with the new code
/// only when `old_len` is 0 (the card then wants the reference verified first). `flags` and the
/// wiping of the codes as `scm_chv_verify` (the padding applies to each code).
///
/// Errors: those of `scm_chv_verify` (`tries_left` is the old code's); `new_len` 0 is
/// `SCM_E_INVALIDARG`.
#[no_mangle]
pub unsafe extern "C" fn scm_chv_change_code(
    v: *mut scm_chv,
    reference: u32,
    old: *const u8,
    old_len: size_t,
    new: *const u8,
    new_len: size_t,
    flags: u32,
    tries_left: *mut u32,
) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_two_codes(v, reference, [(old, old_len), (new, new_len)], flags, tries_left, Chv::change_code)
    }
}

/// Unblocks a code (COM ISCardVerify::Unblock): RESET RETRY COUNTER `00 2C P1 P2`, P2 =
/// `reference`; P1 `00` with the unblocking code (PUK) then the new code as data, `01` with the
/// unblocking code only (the counter is reset, the code kept), `02` with the new code only, `03`
/// with neither (a length of 0 leaves a part out). `flags` and the wiping of the codes as
/// `scm_chv_verify`.
///
/// Errors: those of `scm_chv_verify`, where `SCM_SCARD_W_WRONG_CHV` and
/// `SCM_SCARD_W_CHV_BLOCKED` (with `tries_left`) are about the unblocking code.
#[no_mangle]
pub unsafe extern "C" fn scm_chv_unblock(
    v: *mut scm_chv,
    reference: u32,
    unblock_code: *const u8,
    unblock_len: size_t,
    new: *const u8,
    new_len: size_t,
    flags: u32,
    tries_left: *mut u32,
) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe {
        with_two_codes(
            v,
            reference,
            [(unblock_code, unblock_len), (new, new_len)],
            flags,
            tries_left,
            Chv::unblock,
        )
    }
}

/// A CHV operation on two codes: CHANGE REFERENCE DATA or RESET RETRY COUNTER.
type TwoCodes = fn(&mut Chv, &mut Manager, u32, &[u8], &[u8], u32) -> ChvResult<()>;

/// Runs a two-code operation with the arguments checked and the tries reported.
///
/// # Safety
/// Each code pointer must be readable for its length (or NULL with 0); a non-NULL `tries_left`
/// must be a valid out-parameter.
unsafe fn with_two_codes(
    v: *mut scm_chv,
    reference: u32,
    codes: [(*const u8, size_t); 2],
    flags: u32,
    tries_left: *mut u32,
    operation: TwoCodes,
) -> scm_hresult {
    boundary(|| {
        non_null!(v);
        with_child(v as usize, objects::chv, |chv, manager| {
            let [(first, first_len), (second, second_len)] = codes;
            // SAFETY: the caller passes readable codes.
            let (first, second) = unsafe { (input(first, first_len)?, input(second, second_len)?) };
            // SAFETY: the caller passes a valid out-parameter or NULL.
            unsafe { report_chv(operation(chv, manager, reference, first, second, flags), tries_left) }
        })
    })
}

/// Resets the card's verification status of every reference this object verified (COM
/// ISCardVerify::ResetSecurityState): VERIFY `00 20 FF P2` without data for each (ISO/IEC
/// 7816-4 11.5.6), most recent first; none verified, nothing sent. Other objects' and programs'
/// verifications are not touched (a card reset clears them all: `scm_detach_ex` with
/// `SCM_RESET_CARD`).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, the status-word table's codes
/// (a card that does not know P1 `FF` answers e.g. `6A 86`: `SCM_E_CARD_STATUS(0x6A86)`; the
/// references not reset yet stay listed), `SCM_SCARD_E_COMM_DATA_LOST`, PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_chv_reset_security_state(v: *mut scm_chv) -> scm_hresult {
    boundary(|| {
        non_null!(v);
        with_child(v as usize, objects::chv, |chv, manager| {
            chv.reset_security_state(manager).map_err(|failure| failure.code)
        })
    })
}

/// The tries left for a reference: VERIFY `00 20 00 P2` without data (ISO/IEC 7816-4 11.5.6),
/// which counts no try. `63Cx` gives x; `90 00` (already verified) and `63 00` give
/// `SCM_TRIES_UNKNOWN`.
///
/// Errors: `SCM_E_POINTER` (`v` or `tries_left` NULL), `SCM_E_HANDLE`, `SCM_E_INVALIDARG`
/// (`reference` over 255), `SCM_E_NOT_ATTACHED`, `SCM_SCARD_W_CHV_BLOCKED` (`*tries_left` set to
/// 0), the status-word table's codes, `SCM_SCARD_E_COMM_DATA_LOST`, PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_chv_get_tries_left(
    v: *mut scm_chv,
    reference: u32,
    tries_left: *mut u32,
) -> scm_hresult {
    boundary(|| {
        non_null!(v);
        with_child(v as usize, objects::chv, |chv, manager| {
            non_null!(tries_left);
            let tries = chv.tries_left(manager, reference);
            // SAFETY: `tries_left` is a valid out-parameter.
            unsafe { report_chv(tries.map(|tries| tries_left.write(tries)), tries_left) }
        })
    })
}

/// Asks the card for a challenge (COM ISCardAuth::GetChallenge): GET CHALLENGE `00 84 00 00` with
/// Le = `*len`, 1 to 256, or to 65536 when the card takes extended length. On success `*len` is
/// the number of bytes the card gave (it may give fewer than asked) and `out` holds them.
///
/// Errors: `SCM_E_POINTER` (`a`, `out` or `len` NULL), `SCM_E_HANDLE`, `SCM_E_INVALIDARG` (`*len`
/// 0 or over what the card can send), `SCM_E_NOT_ATTACHED`, the status-word table's codes,
/// `SCM_SCARD_E_COMM_DATA_LOST` (the card sent more than asked, or success with nothing), PC/SC
/// codes.
#[no_mangle]
pub unsafe extern "C" fn scm_auth_get_challenge(
    a: *mut scm_auth,
    out: *mut u8,
    len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        non_null!(a);
        with_child(a as usize, objects::auth, |auth, manager| {
            non_null!(out);
            let len = out_ref!(len);
            let mut challenge = Vec::new();
            auth.get_challenge(manager, *len, &mut challenge)?;
            // SAFETY: the caller passes `*len` writable bytes, and the card sent no more.
            unsafe { write_out(&challenge, out, len) }
        })
    })
}

/// Has the card authenticate itself (COM ISCardAuth::ICCAuth): INTERNAL AUTHENTICATE `00 88 P1
/// P2` with P1 = `algorithm` (the algorithm reference, 0 for "known before"), P2 = `key` (the
/// secret's reference), `data` (the challenge, up to 65535 bytes, chained or extended as the
/// card takes it) and Le asking for all the card has (256, or 65536 with extended length). The
/// answer (the authentication data) goes to `out` under the buffer rules; a NULL `out` or a too
/// small one comes **after** the command was sent (the answer is lost; a card's challenge
/// counter may have moved).
///
/// Errors: `SCM_E_POINTER` (`a` or `out_len` NULL, `data` NULL with `len` > 0), `SCM_E_HANDLE`,
/// `SCM_E_INVALIDARG` (`algorithm` or `key` over 255, `len` over 65535), `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER`, the status-word table's codes,
/// `SCM_SCARD_E_COMM_DATA_LOST` (also for success with no answer), PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_auth_icc_auth(
    a: *mut scm_auth,
    algorithm: u32,
    key: u32,
    data: *const u8,
    len: size_t,
    out: *mut u8,
    out_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        non_null!(a);
        with_child(a as usize, objects::auth, |auth, manager| {
            // SAFETY: the caller passes `len` readable bytes.
            let data = unsafe { input(data, len) }?;
            let out_len = out_ref!(out_len);
            let mut answer = Vec::new();
            auth.icc_auth(manager, algorithm, key, data, &mut answer)?;
            // SAFETY: the caller passes `*out_len` writable bytes.
            unsafe { write_out(&answer, out, out_len) }
        })
    })
}

/// Authenticates the application to the card (COM ISCardAuth::AppAuth): EXTERNAL AUTHENTICATE
/// `00 82 P1 P2` with P1 = `algorithm`, P2 = `key` and `data` (the authentication data computed
/// over the card's last challenge). A refusal (`63xx`) is `SCM_SCARD_W_SECURITY_VIOLATION`.
///
/// Errors: `SCM_E_POINTER` (`a` NULL, `data` NULL with `len` > 0), `SCM_E_HANDLE`,
/// `SCM_E_INVALIDARG` (`algorithm` or `key` over 255, `len` over 65535), `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_W_SECURITY_VIOLATION`, the status-word table's codes (`69 85`, no challenge asked
/// first: `SCM_SCARD_E_NO_ACCESS`), `SCM_SCARD_E_COMM_DATA_LOST`, PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_auth_app_auth(
    a: *mut scm_auth,
    algorithm: u32,
    key: u32,
    data: *const u8,
    len: size_t,
) -> scm_hresult {
    boundary(|| {
        non_null!(a);
        with_child(a as usize, objects::auth, |auth, manager| {
            // SAFETY: the caller passes `len` readable bytes.
            let data = unsafe { input(data, len) }?;
            auth.app_auth(manager, algorithm, key, data)
        })
    })
}

/// Authenticates the user to the card (COM ISCardAuth::UserAuth). ISO/IEC 7816-4 authenticates
/// a user by VERIFY with the user's reference data, so this is `scm_chv_verify` with flags 0:
/// VERIFY `00 20 00 P2`, P2 = `reference`, the code as data, wiped after use.
///
/// Errors: those of `scm_chv_verify`; `tries_left` (may be NULL) likewise.
#[no_mangle]
pub unsafe extern "C" fn scm_auth_user_auth(
    a: *mut scm_auth,
    reference: u32,
    code: *const u8,
    len: size_t,
    tries_left: *mut u32,
) -> scm_hresult {
    boundary(|| {
        non_null!(a);
        with_child(a as usize, objects::auth, |_, manager| {
            // SAFETY: the caller passes `len` readable bytes.
            let code = unsafe { input(code, len) }?;
            // SAFETY: the caller passes a valid out-parameter or NULL.
            unsafe { report_chv(chv::verify(manager, reference, code, 0), tries_left) }
        })
    })
}
