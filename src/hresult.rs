//! Result codes: the fixed `SCM_*` values of the ABI, the PC/SC codes passed through with their
//! Windows values, and the static English text for each.

use std::ffi::CStr;

/// An HRESULT-compatible result: `>= 0` is success, negative is a failure code.
#[allow(non_camel_case_types)]
pub type scm_hresult = i32;

/// Success.
pub const SCM_S_OK: scm_hresult = 0;
/// The operation is not implemented (`E_NOTIMPL`).
pub const SCM_E_NOTIMPL: scm_hresult = 0x8000_4001_u32 as i32;
/// A required pointer argument is NULL (`E_POINTER`).
pub const SCM_E_POINTER: scm_hresult = 0x8000_4003_u32 as i32;
/// Unspecified failure (`E_FAIL`).
pub const SCM_E_FAIL: scm_hresult = 0x8000_4005_u32 as i32;
/// The call does not fit the manager's state: a card operation on an unattached manager, or an
/// attach on an attached one (`E_ILLEGAL_METHOD_CALL`).
pub const SCM_E_NOT_ATTACHED: scm_hresult = 0x8000_000E_u32 as i32;
/// An internal failure, such as a caught panic (`E_UNEXPECTED`).
pub const SCM_E_UNEXPECTED: scm_hresult = 0x8000_FFFF_u32 as i32;
/// The manager token is not live: released, stale or forged (`E_HANDLE`).
pub const SCM_E_HANDLE: scm_hresult = 0x8007_0006_u32 as i32;
/// Memory could not be allocated (`E_OUTOFMEMORY`).
pub const SCM_E_OUTOFMEMORY: scm_hresult = 0x8007_000E_u32 as i32;
/// An argument is out of range or malformed (`E_INVALIDARG`).
pub const SCM_E_INVALIDARG: scm_hresult = 0x8007_0057_u32 as i32;

/// PC/SC: an internal consistency check failed.
pub const SCM_SCARD_F_INTERNAL_ERROR: scm_hresult = 0x8010_0001_u32 as i32;
/// PC/SC: the action was cancelled by an SCardCancel request.
pub const SCM_SCARD_E_CANCELLED: scm_hresult = 0x8010_0002_u32 as i32;
/// PC/SC: the supplied handle was invalid.
pub const SCM_SCARD_E_INVALID_HANDLE: scm_hresult = 0x8010_0003_u32 as i32;
/// PC/SC: one or more of the supplied parameters could not be properly interpreted.
pub const SCM_SCARD_E_INVALID_PARAMETER: scm_hresult = 0x8010_0004_u32 as i32;
/// PC/SC: registry startup information is missing or invalid.
pub const SCM_SCARD_E_INVALID_TARGET: scm_hresult = 0x8010_0005_u32 as i32;
/// PC/SC: not enough memory available to complete this command.
pub const SCM_SCARD_E_NO_MEMORY: scm_hresult = 0x8010_0006_u32 as i32;
/// PC/SC: an internal consistency timer has expired.
pub const SCM_SCARD_F_WAITED_TOO_LONG: scm_hresult = 0x8010_0007_u32 as i32;
/// PC/SC: the buffer is too small; the length out-parameter holds the size needed.
pub const SCM_SCARD_E_INSUFFICIENT_BUFFER: scm_hresult = 0x8010_0008_u32 as i32;
/// PC/SC: the specified reader name is not recognized.
pub const SCM_SCARD_E_UNKNOWN_READER: scm_hresult = 0x8010_0009_u32 as i32;
/// PC/SC: the user-specified timeout value has expired.
pub const SCM_SCARD_E_TIMEOUT: scm_hresult = 0x8010_000A_u32 as i32;
/// PC/SC: the card cannot be accessed because of other connections outstanding.
pub const SCM_SCARD_E_SHARING_VIOLATION: scm_hresult = 0x8010_000B_u32 as i32;
/// PC/SC: the operation requires a card, but no card is in (or connected through) the reader.
pub const SCM_SCARD_E_NO_SMARTCARD: scm_hresult = 0x8010_000C_u32 as i32;
/// PC/SC: the specified smart card name is not recognized.
pub const SCM_SCARD_E_UNKNOWN_CARD: scm_hresult = 0x8010_000D_u32 as i32;
/// PC/SC: the system could not dispose of the media in the requested manner.
pub const SCM_SCARD_E_CANT_DISPOSE: scm_hresult = 0x8010_000E_u32 as i32;
/// PC/SC: the requested protocols are incompatible with the protocol in use with the card.
pub const SCM_SCARD_E_PROTO_MISMATCH: scm_hresult = 0x8010_000F_u32 as i32;
/// PC/SC: the reader or card is not ready to accept commands.
pub const SCM_SCARD_E_NOT_READY: scm_hresult = 0x8010_0010_u32 as i32;
/// PC/SC: one or more of the supplied parameter values could not be properly interpreted.
pub const SCM_SCARD_E_INVALID_VALUE: scm_hresult = 0x8010_0011_u32 as i32;
/// PC/SC: the action was cancelled by the system.
pub const SCM_SCARD_E_SYSTEM_CANCELLED: scm_hresult = 0x8010_0012_u32 as i32;
/// PC/SC: an internal communications error has been detected.
pub const SCM_SCARD_F_COMM_ERROR: scm_hresult = 0x8010_0013_u32 as i32;
/// PC/SC: an internal error has been detected, but the source is unknown.
pub const SCM_SCARD_F_UNKNOWN_ERROR: scm_hresult = 0x8010_0014_u32 as i32;
/// PC/SC: an ATR obtained from the registry is not a valid ATR string.
pub const SCM_SCARD_E_INVALID_ATR: scm_hresult = 0x8010_0015_u32 as i32;
/// PC/SC: an attempt was made to end a non-existent transaction (unlock without lock).
pub const SCM_SCARD_E_NOT_TRANSACTED: scm_hresult = 0x8010_0016_u32 as i32;
/// PC/SC: the specified reader is not currently available for use.
pub const SCM_SCARD_E_READER_UNAVAILABLE: scm_hresult = 0x8010_0017_u32 as i32;
/// PC/SC: the operation has been aborted to allow the server application to exit.
pub const SCM_SCARD_P_SHUTDOWN: scm_hresult = 0x8010_0018_u32 as i32;
/// PC/SC: the PCI receive buffer was too small.
pub const SCM_SCARD_E_PCI_TOO_SMALL: scm_hresult = 0x8010_0019_u32 as i32;
/// PC/SC: the reader driver does not meet minimal requirements for support.
pub const SCM_SCARD_E_READER_UNSUPPORTED: scm_hresult = 0x8010_001A_u32 as i32;
/// PC/SC: the reader driver did not produce a unique reader name.
pub const SCM_SCARD_E_DUPLICATE_READER: scm_hresult = 0x8010_001B_u32 as i32;
/// PC/SC: the card does not meet minimal requirements for support.
pub const SCM_SCARD_E_CARD_UNSUPPORTED: scm_hresult = 0x8010_001C_u32 as i32;
/// PC/SC: the smart card resource manager is not running.
pub const SCM_SCARD_E_NO_SERVICE: scm_hresult = 0x8010_001D_u32 as i32;
/// PC/SC: the smart card resource manager has shut down.
pub const SCM_SCARD_E_SERVICE_STOPPED: scm_hresult = 0x8010_001E_u32 as i32;
/// PC/SC: an unexpected card error has occurred. pcsc-lite also reports an unsupported feature
/// with this value.
pub const SCM_SCARD_E_UNEXPECTED: scm_hresult = 0x8010_001F_u32 as i32;
/// PC/SC: no primary provider can be found for the card.
pub const SCM_SCARD_E_ICC_INSTALLATION: scm_hresult = 0x8010_0020_u32 as i32;
/// PC/SC: the requested order of object creation is not supported.
pub const SCM_SCARD_E_ICC_CREATEORDER: scm_hresult = 0x8010_0021_u32 as i32;
/// PC/SC: the card does not support the requested feature (Windows value).
pub const SCM_SCARD_E_UNSUPPORTED_FEATURE: scm_hresult = 0x8010_0022_u32 as i32;
/// PC/SC: the identified directory does not exist in the card.
pub const SCM_SCARD_E_DIR_NOT_FOUND: scm_hresult = 0x8010_0023_u32 as i32;
/// PC/SC: the identified file does not exist in the card.
pub const SCM_SCARD_E_FILE_NOT_FOUND: scm_hresult = 0x8010_0024_u32 as i32;
/// PC/SC: the supplied path does not represent a card directory.
pub const SCM_SCARD_E_NO_DIR: scm_hresult = 0x8010_0025_u32 as i32;
/// PC/SC: the supplied path does not represent a card file.
pub const SCM_SCARD_E_NO_FILE: scm_hresult = 0x8010_0026_u32 as i32;
/// PC/SC: access is denied to this file.
pub const SCM_SCARD_E_NO_ACCESS: scm_hresult = 0x8010_0027_u32 as i32;
/// PC/SC: the card does not have enough memory to store the information.
pub const SCM_SCARD_E_WRITE_TOO_MANY: scm_hresult = 0x8010_0028_u32 as i32;
/// PC/SC: there was an error trying to set the card file object pointer.
pub const SCM_SCARD_E_BAD_SEEK: scm_hresult = 0x8010_0029_u32 as i32;
/// PC/SC: the supplied PIN is incorrect.
pub const SCM_SCARD_E_INVALID_CHV: scm_hresult = 0x8010_002A_u32 as i32;
/// PC/SC: an unrecognized error code was returned from a layered component.
pub const SCM_SCARD_E_UNKNOWN_RES_MNG: scm_hresult = 0x8010_002B_u32 as i32;
/// PC/SC: the requested certificate does not exist.
pub const SCM_SCARD_E_NO_SUCH_CERTIFICATE: scm_hresult = 0x8010_002C_u32 as i32;
/// PC/SC: the requested certificate could not be obtained.
pub const SCM_SCARD_E_CERTIFICATE_UNAVAILABLE: scm_hresult = 0x8010_002D_u32 as i32;
/// PC/SC: cannot find a smart card reader.
pub const SCM_SCARD_E_NO_READERS_AVAILABLE: scm_hresult = 0x8010_002E_u32 as i32;
/// PC/SC: a communications error with the card has been detected; retry the operation.
pub const SCM_SCARD_E_COMM_DATA_LOST: scm_hresult = 0x8010_002F_u32 as i32;
/// PC/SC: the requested key container does not exist on the card.
pub const SCM_SCARD_E_NO_KEY_CONTAINER: scm_hresult = 0x8010_0030_u32 as i32;
/// PC/SC: the resource manager is too busy to complete this operation.
pub const SCM_SCARD_E_SERVER_TOO_BUSY: scm_hresult = 0x8010_0031_u32 as i32;
/// PC/SC: the reader cannot communicate with the card, due to ATR configuration conflicts.
pub const SCM_SCARD_W_UNSUPPORTED_CARD: scm_hresult = 0x8010_0065_u32 as i32;
/// PC/SC: the card is not responding to a reset.
pub const SCM_SCARD_W_UNRESPONSIVE_CARD: scm_hresult = 0x8010_0066_u32 as i32;
/// PC/SC: power has been removed from the card.
pub const SCM_SCARD_W_UNPOWERED_CARD: scm_hresult = 0x8010_0067_u32 as i32;
/// PC/SC: the card has been reset, so any shared state information is invalid.
/// `scm_reconnect` recovers.
pub const SCM_SCARD_W_RESET_CARD: scm_hresult = 0x8010_0068_u32 as i32;
/// PC/SC: the card has been removed. `scm_reconnect` recovers once a card is back.
pub const SCM_SCARD_W_REMOVED_CARD: scm_hresult = 0x8010_0069_u32 as i32;
/// PC/SC: access was denied because of a security violation.
pub const SCM_SCARD_W_SECURITY_VIOLATION: scm_hresult = 0x8010_006A_u32 as i32;
/// PC/SC: the card cannot be accessed because the wrong PIN was presented.
pub const SCM_SCARD_W_WRONG_CHV: scm_hresult = 0x8010_006B_u32 as i32;
/// PC/SC: the maximum number of PIN entry attempts has been reached.
pub const SCM_SCARD_W_CHV_BLOCKED: scm_hresult = 0x8010_006C_u32 as i32;
/// PC/SC: the end of the card file has been reached.
pub const SCM_SCARD_W_EOF: scm_hresult = 0x8010_006D_u32 as i32;
/// PC/SC: the user pressed "Cancel" on a card selection dialog.
pub const SCM_SCARD_W_CANCELLED_BY_USER: scm_hresult = 0x8010_006E_u32 as i32;
/// PC/SC: no PIN was presented to the card.
pub const SCM_SCARD_W_CARD_NOT_AUTHENTICATED: scm_hresult = 0x8010_006F_u32 as i32;

/// The text for any value, success and unknown codes included.
pub fn message(hr: scm_hresult) -> &'static CStr {
    match hr {
        SCM_S_OK => c"success",
        SCM_E_NOTIMPL => c"not implemented",
        SCM_E_POINTER => c"a required pointer argument is NULL",
        SCM_E_FAIL => c"unspecified failure",
        SCM_E_NOT_ATTACHED => {
            c"the manager is not in the right state: attach before a card operation, detach before attaching again"
        }
        SCM_E_UNEXPECTED => c"unexpected internal failure",
        SCM_E_HANDLE => c"the manager handle is not live (released, stale or forged)",
        SCM_E_OUTOFMEMORY => c"out of memory",
        SCM_E_INVALIDARG => c"an argument is out of range or malformed",
        SCM_SCARD_F_INTERNAL_ERROR => c"PC/SC: an internal consistency check failed",
        SCM_SCARD_E_CANCELLED => c"PC/SC: the action was cancelled",
        SCM_SCARD_E_INVALID_HANDLE => c"PC/SC: the supplied handle was invalid",
        SCM_SCARD_E_INVALID_PARAMETER => c"PC/SC: a parameter could not be interpreted",
        SCM_SCARD_E_INVALID_TARGET => c"PC/SC: registry startup information is missing or invalid",
        SCM_SCARD_E_NO_MEMORY => c"PC/SC: not enough memory available",
        SCM_SCARD_F_WAITED_TOO_LONG => c"PC/SC: an internal consistency timer has expired",
        SCM_SCARD_E_INSUFFICIENT_BUFFER => c"PC/SC: the buffer is too small for the data",
        SCM_SCARD_E_UNKNOWN_READER => c"PC/SC: the reader name is not recognized",
        SCM_SCARD_E_TIMEOUT => c"PC/SC: the timeout has expired",
        SCM_SCARD_E_SHARING_VIOLATION => {
            c"PC/SC: the card cannot be accessed because of other connections outstanding"
        }
        SCM_SCARD_E_NO_SMARTCARD => c"PC/SC: no smart card is in the reader (or connected)",
        SCM_SCARD_E_UNKNOWN_CARD => c"PC/SC: the smart card name is not recognized",
        SCM_SCARD_E_CANT_DISPOSE => c"PC/SC: the card could not be disposed of as requested",
        SCM_SCARD_E_PROTO_MISMATCH => c"PC/SC: the requested protocols are incompatible with the card",
        SCM_SCARD_E_NOT_READY => c"PC/SC: the reader or card is not ready",
        SCM_SCARD_E_INVALID_VALUE => c"PC/SC: a parameter value could not be interpreted",
        SCM_SCARD_E_SYSTEM_CANCELLED => c"PC/SC: the action was cancelled by the system",
        SCM_SCARD_F_COMM_ERROR => c"PC/SC: an internal communications error was detected",
        SCM_SCARD_F_UNKNOWN_ERROR => c"PC/SC: an internal error of unknown source was detected",
        SCM_SCARD_E_INVALID_ATR => c"PC/SC: an ATR is not valid",
        SCM_SCARD_E_NOT_TRANSACTED => c"PC/SC: there is no transaction (lock) to end",
        SCM_SCARD_E_READER_UNAVAILABLE => c"PC/SC: the reader is not currently available",
        SCM_SCARD_P_SHUTDOWN => c"PC/SC: the operation was aborted for the service to exit",
        SCM_SCARD_E_PCI_TOO_SMALL => c"PC/SC: the PCI receive buffer was too small",
        SCM_SCARD_E_READER_UNSUPPORTED => c"PC/SC: the reader driver is not supported",
        SCM_SCARD_E_DUPLICATE_READER => c"PC/SC: the reader driver did not produce a unique name",
        SCM_SCARD_E_CARD_UNSUPPORTED => c"PC/SC: the card is not supported",
        SCM_SCARD_E_NO_SERVICE => {
            c"PC/SC: the smart card service is not running (scm_reconnect re-establishes it once back)"
        }
        SCM_SCARD_E_SERVICE_STOPPED => c"PC/SC: the smart card service has shut down",
        SCM_SCARD_E_UNEXPECTED => {
            c"PC/SC: an unexpected card error occurred, or (pcsc-lite) the feature is not supported"
        }
        SCM_SCARD_E_ICC_INSTALLATION => c"PC/SC: no primary provider can be found for the card",
        SCM_SCARD_E_ICC_CREATEORDER => c"PC/SC: the order of object creation is not supported",
        SCM_SCARD_E_UNSUPPORTED_FEATURE => c"PC/SC: the card does not support the feature",
        SCM_SCARD_E_DIR_NOT_FOUND => c"PC/SC: the directory does not exist on the card",
        SCM_SCARD_E_FILE_NOT_FOUND => c"PC/SC: the file does not exist on the card",
        SCM_SCARD_E_NO_DIR => c"PC/SC: the path is not a card directory",
        SCM_SCARD_E_NO_FILE => c"PC/SC: the path is not a card file",
        SCM_SCARD_E_NO_ACCESS => c"PC/SC: access to this file is denied",
        SCM_SCARD_E_WRITE_TOO_MANY => c"PC/SC: the card does not have enough memory",
        SCM_SCARD_E_BAD_SEEK => c"PC/SC: the card file pointer could not be set",
        SCM_SCARD_E_INVALID_CHV => c"PC/SC: the PIN is incorrect",
        SCM_SCARD_E_UNKNOWN_RES_MNG => c"PC/SC: a layered component returned an unknown code",
        SCM_SCARD_E_NO_SUCH_CERTIFICATE => c"PC/SC: the certificate does not exist",
        SCM_SCARD_E_CERTIFICATE_UNAVAILABLE => c"PC/SC: the certificate could not be obtained",
        SCM_SCARD_E_NO_READERS_AVAILABLE => c"PC/SC: no smart card reader is available",
        SCM_SCARD_E_COMM_DATA_LOST => c"PC/SC: communication with the card failed; retry",
        SCM_SCARD_E_NO_KEY_CONTAINER => c"PC/SC: the key container does not exist on the card",
        SCM_SCARD_E_SERVER_TOO_BUSY => c"PC/SC: the smart card service is too busy",
        SCM_SCARD_W_UNSUPPORTED_CARD => c"PC/SC: the reader cannot communicate with the card (ATR)",
        SCM_SCARD_W_UNRESPONSIVE_CARD => c"PC/SC: the card is not responding to a reset",
        SCM_SCARD_W_UNPOWERED_CARD => c"PC/SC: power has been removed from the card",
        SCM_SCARD_W_RESET_CARD => c"PC/SC: the card has been reset (scm_reconnect recovers)",
        SCM_SCARD_W_REMOVED_CARD => c"PC/SC: the card has been removed (scm_reconnect recovers once it is back)",
        SCM_SCARD_W_SECURITY_VIOLATION => c"PC/SC: access denied by a security violation",
        SCM_SCARD_W_WRONG_CHV => c"PC/SC: the wrong PIN was presented",
        SCM_SCARD_W_CHV_BLOCKED => c"PC/SC: the PIN is blocked",
        SCM_SCARD_W_EOF => c"PC/SC: the end of the card file has been reached",
        SCM_SCARD_W_CANCELLED_BY_USER => c"PC/SC: the user cancelled",
        SCM_SCARD_W_CARD_NOT_AUTHENTICATED => c"PC/SC: no PIN was presented to the card",
        hr if hr as u32 & 0xFFFF_0000 == 0xA0FF_0000 => {
            c"the card answered with a status word the library does not map (SCM_E_CARD_STATUS: the low 16 bits)"
        }
        hr if hr >= 0 => c"success (unknown success code)",
        _ => c"unknown error code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_values_are_the_windows_ones() {
        assert_eq!(SCM_E_NOTIMPL as u32, 0x8000_4001);
        assert_eq!(SCM_E_POINTER as u32, 0x8000_4003);
        assert_eq!(SCM_E_FAIL as u32, 0x8000_4005);
        assert_eq!(SCM_E_NOT_ATTACHED as u32, 0x8000_000E);
        assert_eq!(SCM_E_UNEXPECTED as u32, 0x8000_FFFF);
        assert_eq!(SCM_E_HANDLE as u32, 0x8007_0006);
        assert_eq!(SCM_E_OUTOFMEMORY as u32, 0x8007_000E);
        assert_eq!(SCM_E_INVALIDARG as u32, 0x8007_0057);
        assert_eq!(SCM_SCARD_W_RESET_CARD as u32, 0x8010_0068);
        assert_eq!(SCM_SCARD_E_NO_SERVICE as u32, 0x8010_001D);
    }

    #[test]
    fn every_value_has_a_text() {
        assert_eq!(message(SCM_S_OK).to_str().unwrap(), "success");
        assert!(message(SCM_SCARD_W_RESET_CARD).to_str().unwrap().contains("reset"));
        assert_eq!(message(-1).to_str().unwrap(), "unknown error code");
        assert_eq!(message(i32::MIN).to_str().unwrap(), "unknown error code");
        assert!(message(7).to_str().unwrap().starts_with("success"));
        assert!(message(0xA0FF_6A88_u32 as i32).to_str().unwrap().contains("status word"));
        // Every PC/SC code in the range pcsc-lite and Windows define has its own text.
        for code in (0x8010_0001_u32..=0x8010_0031).chain(0x8010_0065..=0x8010_006F) {
            assert_ne!(message(code as i32).to_str().unwrap(), "unknown error code", "{code:#x}");
        }
    }
}
