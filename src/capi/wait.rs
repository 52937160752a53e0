//! The C surface of waits, reader attributes and reader control.

use libc::size_t;

use super::{boundary, scm_manage, with_manager};
use crate::buffers::write_out;
use crate::hresult::*;
use crate::scard::MAX_APDU;
use crate::wait;

/// `scm_wait_for_change`'s timeout for "no timeout" (PC/SC's `INFINITE`).
pub const SCM_WAIT_INFINITE: u32 = 0xFFFF_FFFF;

/// Reader attributes (`scm_get_attrib`, `scm_set_attrib`): the `SCARD_ATTR_*` values of
/// pcsc-lite's `reader.h` and Windows' `winsmcrd.h`, the same on every OS. Which ones a reader
/// answers is its driver's choice; the library itself answers `SCM_ATTR_ATR_STRING` for any
/// reader with a card and the two name attributes for any reader.
pub const SCM_ATTR_VENDOR_NAME: u32 = 0x0001_0100;
pub const SCM_ATTR_VENDOR_IFD_TYPE: u32 = 0x0001_0101;
/// A 32-bit value `0xMMmmbbbb` (major, minor, build), in the platform's byte order.
pub const SCM_ATTR_VENDOR_IFD_VERSION: u32 = 0x0001_0102;
pub const SCM_ATTR_VENDOR_IFD_SERIAL_NO: u32 = 0x0001_0103;
pub const SCM_ATTR_CHANNEL_ID: u32 = 0x0002_0110;
pub const SCM_ATTR_ASYNC_PROTOCOL_TYPES: u32 = 0x0003_0120;
pub const SCM_ATTR_DEFAULT_CLK: u32 = 0x0003_0121;
pub const SCM_ATTR_MAX_CLK: u32 = 0x0003_0122;
pub const SCM_ATTR_DEFAULT_DATA_RATE: u32 = 0x0003_0123;
pub const SCM_ATTR_MAX_DATA_RATE: u32 = 0x0003_0124;
pub const SCM_ATTR_MAX_IFSD: u32 = 0x0003_0125;
pub const SCM_ATTR_SYNC_PROTOCOL_TYPES: u32 = 0x0003_0126;
pub const SCM_ATTR_POWER_MGMT_SUPPORT: u32 = 0x0004_0131;
pub const SCM_ATTR_USER_TO_CARD_AUTH_DEVICE: u32 = 0x0005_0140;
pub const SCM_ATTR_USER_AUTH_INPUT_DEVICE: u32 = 0x0005_0142;
pub const SCM_ATTR_CHARACTERISTICS: u32 = 0x0006_0150;
pub const SCM_ATTR_CURRENT_PROTOCOL_TYPE: u32 = 0x0008_0201;
pub const SCM_ATTR_CURRENT_CLK: u32 = 0x0008_0202;
pub const SCM_ATTR_CURRENT_F: u32 = 0x0008_0203;
pub const SCM_ATTR_CURRENT_D: u32 = 0x0008_0204;
pub const SCM_ATTR_CURRENT_N: u32 = 0x0008_0205;
pub const SCM_ATTR_CURRENT_W: u32 = 0x0008_0206;
pub const SCM_ATTR_CURRENT_IFSC: u32 = 0x0008_0207;
pub const SCM_ATTR_CURRENT_IFSD: u32 = 0x0008_0208;
pub const SCM_ATTR_CURRENT_BWT: u32 = 0x0008_0209;
pub const SCM_ATTR_CURRENT_CWT: u32 = 0x0008_020A;
pub const SCM_ATTR_CURRENT_EBC_ENCODING: u32 = 0x0008_020B;
pub const SCM_ATTR_EXTENDED_BWT: u32 = 0x0008_020C;
pub const SCM_ATTR_ICC_PRESENCE: u32 = 0x0009_0300;
pub const SCM_ATTR_ICC_INTERFACE_STATUS: u32 = 0x0009_0301;
pub const SCM_ATTR_CURRENT_IO_STATE: u32 = 0x0009_0302;
/// The card's ATR; answered for every reader holding a card.
pub const SCM_ATTR_ATR_STRING: u32 = 0x0009_0303;
pub const SCM_ATTR_ICC_TYPE_PER_ATR: u32 = 0x0009_0304;
pub const SCM_ATTR_ESC_RESET: u32 = 0x0007_A000;
pub const SCM_ATTR_ESC_CANCEL: u32 = 0x0007_A003;
pub const SCM_ATTR_ESC_AUTHREQUEST: u32 = 0x0007_A005;
pub const SCM_ATTR_MAXINPUT: u32 = 0x0007_A007;
pub const SCM_ATTR_DEVICE_UNIT: u32 = 0x7FFF_0001;
pub const SCM_ATTR_DEVICE_IN_USE: u32 = 0x7FFF_0002;
/// The reader's display name (Windows' `SCARD_ATTR_DEVICE_FRIENDLY_NAME_A` value), in UTF-8.
pub const SCM_ATTR_DEVICE_FRIENDLY_NAME: u32 = 0x7FFF_0003;
/// The reader's system name (Windows' `SCARD_ATTR_DEVICE_SYSTEM_NAME_A` value), in UTF-8.
pub const SCM_ATTR_DEVICE_SYSTEM_NAME: u32 = 0x7FFF_0004;
pub const SCM_ATTR_SUPRESS_T1_IFS_REQUEST: u32 = 0x7FFF_0007;

/// PC/SC part 10 features (`scm_get_feature`): the tags of the reader's feature list.
pub const SCM_FEATURE_VERIFY_PIN_START: u32 = 0x01;
pub const SCM_FEATURE_VERIFY_PIN_FINISH: u32 = 0x02;
pub const SCM_FEATURE_MODIFY_PIN_START: u32 = 0x03;
pub const SCM_FEATURE_MODIFY_PIN_FINISH: u32 = 0x04;
pub const SCM_FEATURE_GET_KEY_PRESSED: u32 = 0x05;
pub const SCM_FEATURE_VERIFY_PIN_DIRECT: u32 = 0x06;
pub const SCM_FEATURE_MODIFY_PIN_DIRECT: u32 = 0x07;
pub const SCM_FEATURE_MCT_READER_DIRECT: u32 = 0x08;
pub const SCM_FEATURE_MCT_UNIVERSAL: u32 = 0x09;
pub const SCM_FEATURE_IFD_PIN_PROPERTIES: u32 = 0x0A;
pub const SCM_FEATURE_ABORT: u32 = 0x0B;
pub const SCM_FEATURE_SET_SPE_MESSAGE: u32 = 0x0C;
pub const SCM_FEATURE_VERIFY_PIN_DIRECT_APP_ID: u32 = 0x0D;
pub const SCM_FEATURE_MODIFY_PIN_DIRECT_APP_ID: u32 = 0x0E;
pub const SCM_FEATURE_WRITE_DISPLAY: u32 = 0x0F;
pub const SCM_FEATURE_GET_KEY: u32 = 0x10;
pub const SCM_FEATURE_IFD_DISPLAY_PROPERTIES: u32 = 0x11;
pub const SCM_FEATURE_GET_TLV_PROPERTIES: u32 = 0x12;
pub const SCM_FEATURE_CCID_ESC_COMMAND: u32 = 0x13;
pub const SCM_FEATURE_EXECUTE_PACE: u32 = 0x20;

/// Blocks until the card in the attached reader changes from what the manager last saw, or
/// `timeout_ms` milliseconds pass (`SCM_WAIT_INFINITE`: no limit), and writes the reader's COM
/// state then (`SCM_STATE_ABSENT`, `SCM_STATE_PRESENT`, or `SCM_STATE_UNKNOWN`).
///
/// A change is a card inserted, removed, or replaced. What the manager last saw is what it saw
/// at the last of: the attachment (`scm_attach_*`), a successful `scm_reconnect`, a successful
/// `scm_status`, and the return of the last `scm_wait_for_change` that reported a change. So no
/// change is lost between two calls: a card pulled and put back (or swapped) while nobody
/// waited makes the next wait return at once, as does any change since the attachment. When the
/// manager last looked through its card connection (attach, `scm_reconnect` or `scm_status` with
/// a card connected), the next wait also reports a reset of the card by another program, which
/// that connection reports (once: the wait is then what the manager last saw); PC/SC signals
/// resets to no waiter, so a reset during a wait shows only on the next card call
/// (`SCM_SCARD_W_RESET_CARD`). Another program connecting to or disconnecting from the card is
/// no change.
///
/// How a swap is seen: pcsc-lite and Windows count each reader's insertions and removals (the
/// upper 16 bits of `dwEventState`), and a wait compares that count with the one last seen. On
/// macOS, which has no such count, and on any OS when the environment variable
/// `SCM_READER_POLL_MS=<ms>` (1 to 3600000, read once per process) is set, the count is not used:
/// the wait compares the reader's state (card present or not) with the last one seen, looking
/// again at least every second (macOS) or every `<ms>`. It then sees a card come and go, but a
/// card pulled and put back (or swapped) between two looks, or between two waits, is not seen.
///
/// Threads: the wait blocks on a PC/SC context of its own, never the manager's, and holds the
/// manager's lock only while it starts (a few PC/SC calls that do not block). So while a wait
/// blocks, every other call on the manager (status, transmit, lock, attach, detach, ...) goes
/// on at once; it waits for no call but one that holds the manager's lock when it starts (e.g.
/// a `scm_lock` blocked on another holder). Several threads may wait on one manager; each
/// returns on its own. A wait in progress keeps watching the reader it started on: detaching or
/// attaching the manager meanwhile does not end it, and what it saw is then not recorded.
/// `scm_cancel` from any thread ends it with `SCM_SCARD_E_CANCELLED`; `scm_release` ends it
/// (`SCM_E_HANDLE`) before the manager goes.
///
/// PC/SC calls: `SCardGetStatusChange` on the attached reader (on a spare context or a new one),
/// and `SCardStatus` on the manager's card connection before and after the first look when the
/// manager last saw that connection. Outputs are written only on success.
///
/// Errors: `SCM_E_POINTER` (`m` or `state` NULL), `SCM_E_HANDLE` (not live, or released during
/// the wait), `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_TIMEOUT`, `SCM_SCARD_E_CANCELLED`,
/// `SCM_SCARD_E_READER_UNAVAILABLE` (the reader is gone: unplugged, or unknown to the service
/// after a restart), `SCM_SCARD_E_NO_SERVICE` (the PC/SC service stopped or restarted: the
/// wait after it, once the service is back, returns at once with the reader's state, since the
/// card connection was lost; while the service is down every wait returns this at once, so
/// pause before waiting again); for a borrowed handle whose card was reset or removed, which
/// then cannot name its reader, that code (`SCM_SCARD_W_RESET_CARD`, `SCM_SCARD_W_REMOVED_CARD`:
/// call `scm_reconnect`); other PC/SC codes.
#[no_mangle]
pub unsafe extern "C" fn scm_wait_for_change(
    m: *mut scm_manage,
    timeout_ms: u32,
    state: *mut u32,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |_| Ok(()))?;
        let state = out_ref!(state);
        *state = wait::wait_for_change(m as usize, timeout_ms)?;
        Ok(())
    })
}

/// Ends every `scm_wait_for_change` in progress on the manager, in any thread, with
/// `SCM_SCARD_E_CANCELLED`, and returns once they have ended (within milliseconds: PC/SC's
/// `SCardCancel` on each wait's context). With no wait in progress it does nothing; a wait
/// started later is not affected. It takes the manager's lock for a moment, so it waits for a
/// call holding it (e.g. a `scm_lock` blocked on another holder).
///
/// Errors: `SCM_E_POINTER`, `SCM_E_HANDLE`.
#[no_mangle]
pub unsafe extern "C" fn scm_cancel(m: *mut scm_manage) -> scm_hresult {
    boundary(|| {
        non_null!(m);
        wait::cancel(m as usize)
    })
}

/// A reader attribute (`SCM_ATTR_*`), under the buffer rules. Text attributes
/// (`SCM_ATTR_DEVICE_FRIENDLY_NAME`, `_DEVICE_SYSTEM_NAME`, `_VENDOR_NAME`, `_VENDOR_IFD_TYPE`,
/// `_VENDOR_IFD_SERIAL_NO`) are NUL-terminated (the NUL counted, nothing after it) and UTF-8 on
/// every OS: the names are the reader's PC/SC name (on Windows WinSCard's wide forms, converted;
/// elsewhere answered by the library, as pcsc-lite's own answer fails with some drivers), the
/// vendor strings as the driver gives them up to their first NUL, any byte that is not UTF-8
/// (a driver writing Latin-1, say) replaced by U+FFFD. Other attributes are the driver's bytes, unchanged (a
/// 32-bit value in the platform's byte order). `SCM_ATTR_ATR_STRING` is answered for every
/// reader holding a card: when the driver does not answer it, from the card connection or the
/// reader's state.
///
/// PC/SC calls: `SCardGetAttrib` on the manager's card connection, or, when no card is
/// connected (a reader attached empty), on a `SCARD_SHARE_DIRECT` connection made for the call
/// and closed after it (leaving the card).
///
/// Errors: `SCM_E_POINTER` (`m` or `len` NULL), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_UNSUPPORTED_FEATURE` (the driver does not answer that attribute: pcsc-lite's
/// 0x8010001F is reported so, and so is a Windows driver's Win32 `ERROR_NOT_SUPPORTED` or
/// `ERROR_INVALID_FUNCTION`, here and in `scm_set_attrib`, `scm_control` and
/// `scm_get_feature`), `SCM_SCARD_E_NO_SMARTCARD` (ATR of an empty
/// reader), `SCM_SCARD_E_INSUFFICIENT_BUFFER`, `SCM_SCARD_W_RESET_CARD`,
/// `SCM_SCARD_W_REMOVED_CARD` (call `scm_reconnect`), `SCM_SCARD_E_NO_SERVICE`, other PC/SC
/// codes (pcsc-lite reports a driver's failure as `SCM_SCARD_E_NOT_TRANSACTED`).
#[no_mangle]
pub unsafe extern "C" fn scm_get_attrib(
    m: *mut scm_manage,
    attribute: u32,
    buf: *mut u8,
    len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let len = out_ref!(len);
            let value = manager.get_attrib(attribute)?;
            // SAFETY: the caller passes `*len` writable bytes.
            unsafe { write_out(&value, buf, len) }
        })
    })
}

/// Sets a reader attribute to the `len` bytes at `value` (passed to the driver unchanged), on
/// the same connection as `scm_get_attrib` (`SCardSetAttrib`).
///
/// Errors: `SCM_E_POINTER` (`m` NULL, or `value` NULL with `len` > 0), `SCM_E_INVALIDARG` (`len`
/// over `SCM_MAX_APDU_SIZE`), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`,
/// `SCM_SCARD_E_UNSUPPORTED_FEATURE`, `SCM_SCARD_E_NOT_TRANSACTED` (pcsc-lite: the driver
/// refused), `SCM_SCARD_E_INSUFFICIENT_BUFFER` (pcsc-lite: over 264 bytes), the other codes of
/// `scm_get_attrib`.
#[no_mangle]
pub unsafe extern "C" fn scm_set_attrib(
    m: *mut scm_manage,
    attribute: u32,
    value: *const u8,
    len: size_t,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let value = input(value, len)?;
            manager.set_attrib(attribute, value)
        })
    })
}

/// `SCardControl`: sends a control command to the reader and returns its answer, under the
/// buffer rules. A `code` up to 0xFFFF is the portable function number `n` of
/// `SCARD_CTL_CODE(n)`, turned into the platform's code (pcsc-lite and macOS `0x42000000 + n`,
/// Windows `0x00310000 | n << 2`); a larger one is a native control code, passed as it is (so
/// the codes `scm_get_feature` gives). `in` may be NULL when `in_len` is 0. As with
/// `scm_transmit`, a size query or a too small buffer comes after the command was sent. Runs
/// on the same connection as `scm_get_attrib` (a direct connection when no card is connected,
/// so a reader can be controlled before any card is in).
///
/// Errors: `SCM_E_POINTER` (`m` or `out_len` NULL, `in` NULL with `in_len` > 0),
/// `SCM_E_INVALIDARG` (`in_len` over `SCM_MAX_APDU_SIZE`), `SCM_E_HANDLE`,
/// `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_UNSUPPORTED_FEATURE` (the driver knows no such code),
/// `SCM_SCARD_E_INSUFFICIENT_BUFFER`, `SCM_SCARD_E_NOT_TRANSACTED` (pcsc-lite: the driver
/// failed), the other codes of `scm_get_attrib`.
#[no_mangle]
pub unsafe extern "C" fn scm_control(
    m: *mut scm_manage,
    code: u32,
    r#in: *const u8,
    in_len: size_t,
    out: *mut u8,
    out_len: *mut size_t,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let command = input(r#in, in_len)?;
            let out_len = out_ref!(out_len);
            let answer = manager.control(code, command)?;
            // SAFETY: the caller passes `*out_len` writable bytes.
            unsafe { write_out(&answer, out, out_len) }
        })
    })
}

/// The native control code of the reader's PC/SC part 10 feature `tag` (`SCM_FEATURE_*`, 1 to
/// 0xFF), to pass to `scm_control`: asks the reader's feature list with
/// `CM_IOCTL_GET_FEATURE_REQUEST` (`scm_control` code 3400). The list comes from the driver
/// and is checked before use: entries of a 1-byte tag, a length of 4 and a big-endian code.
///
/// Errors: `SCM_E_POINTER` (`m` or `control_code` NULL), `SCM_E_INVALIDARG` (`tag` 0 or over
/// 0xFF), `SCM_E_HANDLE`, `SCM_E_NOT_ATTACHED`, `SCM_SCARD_E_UNSUPPORTED_FEATURE` (the reader
/// does not list the feature, or answers no feature request at all),
/// `SCM_SCARD_E_READER_UNSUPPORTED` (a malformed feature list, or one giving the feature a code
/// up to 0xFFFF, which `scm_control` would take for a portable function number), the codes of
/// `scm_control`.
#[no_mangle]
pub unsafe extern "C" fn scm_get_feature(
    m: *mut scm_manage,
    tag: u32,
    control_code: *mut u32,
) -> scm_hresult {
    boundary(|| {
        with_manager(m, |manager| {
            let control_code = out_ref!(control_code);
            let tag = u8::try_from(tag).ok().filter(|&tag| tag != 0).ok_or(SCM_E_INVALIDARG)?;
            *control_code = manager.feature(tag)?;
            Ok(())
        })
    })
}

/// A caller's input bytes: NULL only when empty, at most `SCM_MAX_APDU_SIZE`.
fn input<'a>(data: *const u8, len: size_t) -> crate::scard::Result<&'a [u8]> {
    match (data.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(SCM_E_POINTER),
        (false, len) if len > MAX_APDU => Err(SCM_E_INVALIDARG),
        // SAFETY: the caller passes `len` readable bytes.
        (false, len) => Ok(unsafe { std::slice::from_raw_parts(data, len) }),
    }
}
