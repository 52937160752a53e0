//! `scm_file_*`: file access (COM `ISCardFileAccess`) on an `scm_file_access` object.
//!
//! Rules shared by every function here, which the first one's doc comment states for the
//! header: how a file is named, what each call selects, the object's state, the codes.

use std::ffi::c_char;
use std::mem::MaybeUninit;

use libc::size_t;

use super::iso::{input, scm_file_access, with_child};
use super::{boundary, write_out};
use crate::buffers;
use crate::hresult::*;
use crate::iso::file::{FileAccess, ReadOutcome, Reference, MAX_OPEN_FILES};
use crate::manager::Manager;
use crate::objects;
use crate::scard::Result;

/// `scm_file_write` flag: on a record file, add the data as a new record after the last one
/// (APPEND RECORD) instead of replacing the record at the position.
pub const SCM_FILE_APPEND: u32 = 1;

/// How many files one `scm_file_access` object keeps open at once (`scm_file_open`).
pub const SCM_FILE_MAX_OPEN: u32 = 16;
const _: () = assert!(SCM_FILE_MAX_OPEN as usize == MAX_OPEN_FILES);

/// Runs `f` on the object and its manager, both locked for the whole call.
fn with_file_access<R>(
    f: *mut scm_file_access,
    body: impl FnOnce(&mut FileAccess, &mut Manager) -> Result<R>,
) -> Result<R> {
    non_null!(f);
    with_child(f as usize, objects::file_access, body)
}

/// The caller's reference type and NUL-terminated text.
///
/// # Safety
/// A non-NULL `name` must be readable up to its NUL or 1024 bytes.
unsafe fn reference(kind: u32, name: *const c_char) -> Result<Reference> {
    // SAFETY: forwarded from the caller.
    let text = unsafe { buffers::reader_name_utf8(name) }?;
    Reference::parse(kind, text.as_bytes())
}

/// No flags are defined for this call: any bit is `SCM_E_INVALIDARG`.
fn no_flags(flags: u32) -> Result<()> {
    match flags {
        0 => Ok(()),
        _ => Err(SCM_E_INVALIDARG),
    }
}

/// Makes the directory `name` designates the object's current directory (COM ChangeDir).
///
/// **Naming files, for every `scm_file_*` function.** `reference` and `name` (NUL-terminated,
/// at most 1023 bytes): `SCM_REF_BY_NAME` with a DF name in hex digits, 1 to 16 bytes
/// ("A000000063"); `SCM_REF_BY_ID` with a file identifier or a path of them, four hex digits
/// each, `/` allowed between them ("3F00/5000/5002", "5002", "5000/5002"): a path starting with
/// `3F00` is absolute, any other is relative to the object's current directory; FFFF and 3FFF
/// (reserved) and 3F00 other than first are refused; at most 127 identifiers below the MF or
/// below a DF name; `SCM_REF_BY_SHORT_ID` with a short EF identifier in decimal, "1" to "30",
/// an EF in the current directory. Anything else is `SCM_E_INVALIDARG`.
///
/// **What each call sends.** The object keeps its current directory (initially the MF, 3F00)
/// and its open files as places the card can be brought back to from nothing: a path from the
/// MF, or a DF name and a path below it. Each call selects what it works on afresh: SELECT by
/// path from the MF (`00 A4 08 P2`, the path without 3F00; the MF itself `00 A4 00 P2 3F00`),
/// or SELECT by DF name (`00 A4 04 P2`) followed, for a path below it, by SELECT by path from
/// the current DF (`00 A4 09 P2`); a card that answers a path with 6A81 or 6A86 gets one
/// SELECT per identifier (`00 A4 00 P2`) instead. P2 is `04` (return the FCP) where the call
/// needs it, else `0C`. A SELECT answered with a warning (62xx, e.g. 6283: file deactivated)
/// has selected the file. So the card's own selection state does not matter: other objects,
/// `scm_transmit` and a card reset change it without disturbing this object, the object goes
/// on working after `scm_reconnect` (its current directory and open files are kept and
/// re-selected on the next call), and two objects on one manager can be used from two
/// threads. A call holds its manager for all its commands, so no other call through that
/// manager comes between them; to keep other programs out between calls, hold `scm_lock`.
/// Commands go through the ISO transport (`scm_transmit_ex` with `SCM_ISO_ALL`): GET RESPONSE
/// after 61xx, a resend after 6Cxx, extended length where the card's ATR announces it. Where
/// the ATR does not, or announces it with its limits in EF.ATR (third byte bit `20`), on T=1,
/// the first call after each attach or `scm_reconnect` reads EF.ATR first (SELECT `00 A4 00
/// 0C` of 3F00 and of 2F01, READ BINARY `00 B0 00 00 00`) and uses extended length when its
/// card capabilities (`47`, third byte bit `40`; or the ATR's) announce it, with APDUs no
/// longer than its extended length information (`7F66`) allows. An EF.ATR that is absent,
/// refused, malformed, names APDUs under 265 bytes or lacks the `7F66` that bit `20` (its own
/// or the ATR's) promises within the 256 bytes read leaves the card at its ATR's word: short
/// APDUs, or extended ones of up to 65 535 bytes.
///
/// **Codes, for every `scm_file_*` function.** `SCM_E_POINTER` (`f` or a required pointer
/// NULL), `SCM_E_HANDLE` (`f` not live, or its manager released), `SCM_E_INVALIDARG` (a
/// reference, flag or origin out of range), `SCM_E_NOT_ATTACHED` (the manager is unattached),
/// PC/SC codes (`SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`: call `scm_reconnect`),
/// and the card's status words: 6A82 `SCM_SCARD_E_FILE_NOT_FOUND`, 6982
/// `SCM_SCARD_W_SECURITY_VIOLATION`, 6985/6986 `SCM_SCARD_E_NO_ACCESS`, 6A84
/// `SCM_SCARD_E_WRITE_TOO_MANY`, 6A81/6D00/6E00 `SCM_E_NOTIMPL`, 6B00/6282 with no data
/// `SCM_SCARD_W_EOF`, any other `SCM_E_CARD_STATUS(sw)`. A card's answer that breaks the
/// exchange (more data than asked, an endless GET RESPONSE chain) is
/// `SCM_SCARD_E_COMM_DATA_LOST`; an FCP or data object that is not well-formed BER-TLV is
/// `SCM_SCARD_E_UNEXPECTED`. Nothing a card answers is trusted: such answers never crash, hang
/// or write past a buffer. Checks come in the order of the header's preamble.
///
/// This call: the SELECT with P2 `04`. A file whose FCP says it is an EF (its file
/// descriptor, tag 82) is `SCM_SCARD_E_NO_DIR` (a card that sends no FCP, or an FCP or FCI
/// without a file descriptor, is taken at its word that the file is a DF);
/// `SCM_REF_BY_SHORT_ID` always is (it names an EF). The current directory is unchanged on
/// failure.
#[no_mangle]
pub unsafe extern "C" fn scm_file_change_dir(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reference = unsafe { self::reference(reference, name) }?;
            access.change_dir(manager, &reference)
        })
    })
}

/// The object's current directory (COM GetCurrentDir), NUL-terminated, under the buffer rules:
/// "3F00" and the identifiers below it ("3F00/5000/5100"), or for a directory reached by DF
/// name the name's hex digits and the identifiers below it ("F0534D/5100"), upper-case, `/`
/// between each. Sends nothing.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_SCARD_E_INSUFFICIENT_BUFFER`
/// with `*path_len` set to the size needed.
#[no_mangle]
pub unsafe extern "C" fn scm_file_get_current_dir(
    f: *mut scm_file_access,
    path: *mut c_char,
    path_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            let path_len = out_ref!(path_len);
            let text = access.current_dir(manager)?;
            // SAFETY: the caller passes `*path_len` writable bytes.
            unsafe { write_out(&text, path.cast::<u8>(), path_len) }
        })
    })
}

/// Opens an EF (COM Open) and writes a file number for the other calls to `*file`, with its
/// position at 0. An object keeps up to `SCM_FILE_MAX_OPEN` (16) files open; one more is
/// `SCM_E_OUTOFMEMORY` (close one). Numbers are never 0 and not reused while open.
///
/// By name or identifier: a SELECT with P2 `04`; the FCP gives the structure (descriptor byte,
/// tag 82: transparent, or linear/cyclic: a record file) and the size (tag 80) or the number of
/// records (tag 82), kept for reads and seeks. A DF is `SCM_SCARD_E_NO_FILE`. An FCP that lies
/// about the size is trusted only as far as the card then goes: reads stop where the card says
/// the file ends. By short EF identifier (ISO 7816-4 has no SELECT for it): the current
/// directory is selected and one READ BINARY of one byte at offset 0 naming the identifier
/// (`00 B0 80|sfi 00 01`) tells a transparent file from a record file (6981); the size is
/// then unknown, so `SCM_SEEK_FROM_END` is `SCM_SCARD_E_BAD_SEEK` on it.
///
/// Errors: as `scm_file_change_dir` says for every function.
#[no_mangle]
pub unsafe extern "C" fn scm_file_open(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    file: *mut u32,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reference = unsafe { self::reference(reference, name) }?;
            let file = out_ref!(file);
            *file = access.open(manager, &reference)?;
            Ok(())
        })
    })
}

/// Reads from an open file (COM Read); `flags` must be 0.
///
/// Transparent file: reads up to `*len` bytes from the position into `buf` and sets `*len` to
/// the count read, fewer than asked where the file ends; the position moves by that count. It
/// sends the file's SELECT (P2 `0C`; for a short EF identifier, its directory's), then READ
/// BINARY commands of as many bytes as one answer holds (256, or with extended length 65533, so
/// that an answer with its status word fits the 16-bit frames of some readers' drivers, or
/// fewer where EF.ATR's `7F66` names a smaller response APDU):
/// `00 B0` with the offset in P1-P2 up to 32767 (the first command of a file opened by short EF
/// identifier names it in P1, up to offset 255), past that the odd instruction `00 B1` with an
/// offset data object (`54`) and the bytes in a `53` object (the first command of a call on a
/// file opened by short EF identifier, past offset 255, is B1 naming it in P2). A card that
/// refuses B1 (`SCM_E_NOTIMPL`) cannot be read past offset 32767: the bytes before it are
/// returned, and a read starting past it is `SCM_E_NOTIMPL`, as is, on a file opened by short
/// EF identifier, a read starting past offset 255. A read that starts at the end (the FCP's
/// size, 4294967296 where reading the byte at the last position leaves it, or 6B00/6282 or an
/// empty answer from the card) reads nothing and returns `SCM_SCARD_W_EOF` with
/// `*len` set to 0 (the one output written on failure). The file ends where the card says:
/// a short answer, 6282 or 6B00. When a command fails after some bytes were read, the call
/// succeeds with those bytes; the next call meets the failure.
///
/// Record file (linear fixed, variable or cyclic): the position is a record index, 0 for
/// record 1. Reads the one record at the position, whole, with READ RECORD (`00 B2 n 04`, or
/// `00 B2 n sfi<<3|04`), sets `*len` to its length and moves the position to the next record.
/// A buffer too small for the record is `SCM_SCARD_E_INSUFFICIENT_BUFFER` with `*len` set to
/// its length (the position does not move). Past the last record (6A83, the FCP's record
/// count, or record 254) is `SCM_SCARD_W_EOF`, `*len` set to 0.
///
/// `buf` may be NULL only with `*len` 0. Errors: as `scm_file_change_dir` says for every
/// function; `SCM_E_HANDLE` for a file number not open on this object.
#[no_mangle]
pub unsafe extern "C" fn scm_file_read(
    f: *mut scm_file_access,
    file: u32,
    buf: *mut u8,
    len: *mut size_t,
    flags: u32,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            let len = out_ref!(len);
            if buf.is_null() && *len > 0 {
                return Err(SCM_E_POINTER);
            }
            no_flags(flags)?;
            let room = match *len {
                0 => &mut [][..],
                capacity if capacity > isize::MAX as usize => return Err(SCM_E_INVALIDARG),
                // SAFETY: the caller passes `*len` writable bytes; they are only written, so
                // they may be uninitialised.
                capacity => unsafe {
                    std::slice::from_raw_parts_mut(buf.cast::<MaybeUninit<u8>>(), capacity)
                },
            };
            match access.read(manager, file, room) {
                Ok(ReadOutcome::Read(count)) => {
                    *len = count;
                    Ok(())
                }
                Ok(ReadOutcome::TooSmall(needed)) => {
                    *len = needed;
                    Err(SCM_SCARD_E_INSUFFICIENT_BUFFER)
                }
                Err(SCM_SCARD_W_EOF) => {
                    *len = 0;
                    Err(SCM_SCARD_W_EOF)
                }
                Err(code) => Err(code),
            }
        })
    })
}

/// Writes to an open file (COM Write); `flags` is 0 or `SCM_FILE_APPEND`.
///
/// Transparent file: writes the `len` bytes at the position with UPDATE BINARY commands of as
/// many bytes as one command carries (255, or with extended length 65528: the whole APDU within
/// 65535 bytes, or within the command APDU EF.ATR's `7F66` names), `00 D6` up to offset 32767 and `00 D7` (offset `54`, data `53`) past it,
/// after the file's SELECT (for a file opened by short EF identifier, its directory's SELECT,
/// and the first command names the file: D6 in P1 up to offset 255, D7 in P2 past it), and
/// moves the position by `len`. More than the FCP's size leaves room for is
/// `SCM_SCARD_E_WRITE_TOO_MANY` before anything is sent. `len` 0 sends nothing.
/// `SCM_FILE_APPEND` on a transparent file is `SCM_E_INVALIDARG` (seek to the end instead).
///
/// Record file: replaces the record at the position with the `len` bytes (UPDATE RECORD, `00
/// DC n 04`) and moves to the next record; past the last record is `SCM_SCARD_W_EOF`. With
/// `SCM_FILE_APPEND`, adds them as a new record after the last (APPEND RECORD, `00 E2 00 00`)
/// and leaves the position. A record is 1 byte to one command's data (255, or 65528 with
/// extended length); else `SCM_E_INVALIDARG`.
///
/// When a command fails after others succeeded, the bytes they carried are written and the
/// position does not move. `data` may be NULL only with `len` 0; `len` over 65535 is
/// `SCM_E_INVALIDARG` (write in several calls). Errors: as `scm_file_change_dir` says for every
/// function; `SCM_E_HANDLE` for a file number not open on this object.
#[no_mangle]
pub unsafe extern "C" fn scm_file_write(
    f: *mut scm_file_access,
    file: u32,
    data: *const u8,
    len: size_t,
    flags: u32,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes `len` readable bytes.
            let data = unsafe { input(data, len) }?;
            let append = match flags {
                0 => false,
                SCM_FILE_APPEND => true,
                _ => return Err(SCM_E_INVALIDARG),
            };
            access.write(manager, file, data, append)
        })
    })
}

/// Moves an open file's position (COM Seek) and writes the new one to `*position` (which may be
/// NULL). `origin`: `SCM_SEEK_FROM_BEGINNING`, `SCM_SEEK_FROM_END` (from the FCP's size, or
/// record count for a record file) or `SCM_SEEK_RELATIVE`. A record file's positions count
/// records. Positions run from 0 to 4294967295 and may pass the end (a read there is
/// `SCM_SCARD_W_EOF`). Sends nothing.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_E_HANDLE` for a file number
/// not open on this object; `SCM_SCARD_E_BAD_SEEK` (before 0, past 4294967295, or from the
/// end of a file whose size the card did not give), the position unchanged.
#[no_mangle]
pub unsafe extern "C" fn scm_file_seek(
    f: *mut scm_file_access,
    file: u32,
    origin: u32,
    offset: i64,
    position: *mut u64,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            let new = access.seek(manager, file, origin, offset)?;
            if !position.is_null() {
                // SAFETY: a non-NULL `position` is a valid out-parameter.
                unsafe { position.write(new) };
            }
            Ok(())
        })
    })
}

/// Closes an open file (COM Close); its number is no longer valid. Sends nothing.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_E_HANDLE` for a file number
/// not open on this object.
#[no_mangle]
pub unsafe extern "C" fn scm_file_close(f: *mut scm_file_access, file: u32) -> scm_hresult {
    boundary(|| with_file_access(f, |access, manager| access.close(manager, file)))
}

/// A file's control parameters (COM GetProperties): the FCP template exactly as the card
/// returns it to SELECT with P2 `04`, tag `62` first, under the buffer rules (the SELECT is
/// sent for a size query too). `flags` must be 0.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_SCARD_E_UNEXPECTED` when the
/// answer is not one well-formed `62` template (nothing is copied); `SCM_E_NOTIMPL` for
/// `SCM_REF_BY_SHORT_ID` (no SELECT takes one); `SCM_SCARD_E_INSUFFICIENT_BUFFER` with
/// `*fcp_len` set to the size needed.
#[no_mangle]
pub unsafe extern "C" fn scm_file_get_properties(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
    fcp: *mut u8,
    fcp_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reference = unsafe { self::reference(reference, name) }?;
            no_flags(flags)?;
            let fcp_len = out_ref!(fcp_len);
            let template = access.properties(manager, &reference)?;
            // SAFETY: the caller passes `*fcp_len` writable bytes.
            unsafe { write_out(&template, fcp, fcp_len) }
        })
    })
}

/// Creates a file (COM Create) with CREATE FILE (`00 E0 00 00`, ISO 7816-9) and the caller's
/// FCP template (`62 L ...`: at least the file descriptor `82`; see the card's manual), after
/// selecting the directory it goes in (P2 `0C`). `flags` must be 0.
///
/// `SCM_REF_BY_ID`: the last identifier is the new file's, made in the directory the others
/// lead to (the current one for a single identifier). `SCM_REF_BY_NAME`: a DF of that name, in
/// the current directory. The FCP's file identifier (`83`) or DF name (`84`) must then agree;
/// when it has none, the library adds it at the front of the template. An FCP that is not one
/// well-formed `62` template, or longer than one command carries, is `SCM_E_INVALIDARG`;
/// `SCM_REF_BY_SHORT_ID` is `SCM_E_NOTIMPL`. The card answers 6A89 (`SCM_E_CARD_STATUS(0x6A89)`)
/// when the identifier exists, 6A84 (`SCM_SCARD_E_WRITE_TOO_MANY`) when memory is short.
///
/// Errors: as `scm_file_change_dir` says for every function.
#[no_mangle]
pub unsafe extern "C" fn scm_file_create(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    fcp: *const u8,
    fcp_len: size_t,
    flags: u32,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reference = unsafe { self::reference(reference, name) }?;
            // SAFETY: the caller passes `fcp_len` readable bytes.
            let fcp = unsafe { input(fcp, fcp_len) }?;
            no_flags(flags)?;
            access.create(manager, &reference, fcp)
        })
    })
}

/// The three functions that select a file and send one command about it with no data.
///
/// # Safety
/// As the C functions: `name` NUL-terminated.
unsafe fn manage(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
    ins: u8,
) -> scm_hresult {
    boundary(|| {
        with_file_access(f, |access, manager| {
            // SAFETY: the caller passes a NUL-terminated string.
            let reference = unsafe { self::reference(reference, name) }?;
            no_flags(flags)?;
            access.manage(manager, &reference, ins)
        })
    })
}

/// Deletes a file (COM Delete): its SELECT (P2 `0C`), then DELETE FILE on the current file (`00
/// E4 00 00`, ISO 7816-9). `flags` must be 0. Open files and a current directory inside it stay
/// as they are and meet `SCM_SCARD_E_FILE_NOT_FOUND` on their next use.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_E_NOTIMPL` for
/// `SCM_REF_BY_SHORT_ID`.
#[no_mangle]
pub unsafe extern "C" fn scm_file_delete(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe { manage(f, reference, name, flags, 0xE4) }
}

/// Deactivates a file (COM Invalidate): its SELECT (P2 `0C`), then DEACTIVATE FILE on the
/// current file (`00 04 00 00`). The card then refuses to read or write it (typically 6985,
/// `SCM_SCARD_E_NO_ACCESS`) until `scm_file_rehabilitate`. `flags` must be 0.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_E_NOTIMPL` for
/// `SCM_REF_BY_SHORT_ID`.
#[no_mangle]
pub unsafe extern "C" fn scm_file_invalidate(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe { manage(f, reference, name, flags, 0x04) }
}

/// Activates a deactivated file again (COM Rehabilitate): its SELECT (P2 `0C`, which a
/// deactivated file answers with 6283), then ACTIVATE FILE on the current file (`00 44 00 00`).
/// `flags` must be 0.
///
/// Errors: as `scm_file_change_dir` says for every function; `SCM_E_NOTIMPL` for
/// `SCM_REF_BY_SHORT_ID`.
#[no_mangle]
pub unsafe extern "C" fn scm_file_rehabilitate(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
) -> scm_hresult {
    // SAFETY: forwarded from the caller.
    unsafe { manage(f, reference, name, flags, 0x44) }
}

/// What ISO 7816-4 has no command for: COM `ISCardFileAccess`'s Directory,
/// GetFileCapabilities and SetProperties. After checking the object and its manager, always
/// `SCM_E_NOTIMPL`; nothing is sent.
fn not_in_iso_7816_4(f: *mut scm_file_access) -> scm_hresult {
    boundary(|| with_file_access(f, |_, _| Err(SCM_E_NOTIMPL)))
}

/// COM Directory (list a directory's files): ISO 7816-4 has no command for it, so
/// `SCM_E_NOTIMPL` for a live object (`SCM_E_POINTER`, `SCM_E_HANDLE` first). Nothing is sent
/// and nothing written. Open the files you know by identifier instead.
#[no_mangle]
pub unsafe extern "C" fn scm_file_directory(
    f: *mut scm_file_access,
    flags: u32,
    names: *mut c_char,
    names_len: *mut size_t,
) -> scm_hresult {
    let _ = (flags, names, names_len);
    not_in_iso_7816_4(f)
}

/// COM GetFileCapabilities: ISO 7816-4 has no command for it, so `SCM_E_NOTIMPL` for a live
/// object (`SCM_E_POINTER`, `SCM_E_HANDLE` first). Nothing is sent and `*capabilities` is not
/// written.
#[no_mangle]
pub unsafe extern "C" fn scm_file_get_file_capabilities(
    f: *mut scm_file_access,
    capabilities: *mut u32,
) -> scm_hresult {
    let _ = capabilities;
    not_in_iso_7816_4(f)
}

/// COM SetProperties (change a file's control parameters): ISO 7816-4 has no command for it,
/// so `SCM_E_NOTIMPL` for a live object (`SCM_E_POINTER`, `SCM_E_HANDLE` first). Nothing is sent.
#[no_mangle]
pub unsafe extern "C" fn scm_file_set_properties(
    f: *mut scm_file_access,
    reference: u32,
    name: *const c_char,
    flags: u32,
    fcp: *const u8,
    fcp_len: size_t,
) -> scm_hresult {
    let _ = (reference, name, flags, fcp, fcp_len);
    not_in_iso_7816_4(f)
}
