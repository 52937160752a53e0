//! Status words (ISO/IEC 7816-4 5.6) as the `SCARD_*` codes PC/SC defined for the service
//! provider interfaces, as ABI.md's table gives them.

use crate::hresult::*;
use crate::scard::Result;

/// The status word of success.
pub(crate) const SW_OK: u16 = 0x9000;

/// Tries left when the card did not say (`63 00`, or a VERIFY answered `90 00`).
pub(crate) const TRIES_UNKNOWN: u32 = 0xFFFF_FFFF;

/// The code for a status word the table does not name: `0xA0FF0000 | sw`, a customer HRESULT
/// that keeps the status word.
pub const fn card_status(sw: u16) -> scm_hresult {
    (0xA0FF_0000 | sw as u32) as i32
}

/// What a status word means after a command that is not about reference data. `data_len` is the
/// number of bytes the answer carried: a warning (62xx) that comes with data is success; 6282
/// (end of file) and 6B00 (offset outside the file) with none are `SCM_SCARD_W_EOF`.
pub fn check(sw: u16, data_len: usize) -> Result<()> {
    match sw {
        SW_OK | 0x6100..=0x61FF => Ok(()),
        0x6200..=0x62FF if data_len > 0 => Ok(()),
        0x6282 | 0x6B00 => Err(SCM_SCARD_W_EOF),
        0x6A82 => Err(SCM_SCARD_E_FILE_NOT_FOUND),
        0x6A81 | 0x6D00 | 0x6E00 => Err(SCM_E_NOTIMPL),
        0x6982 => Err(SCM_SCARD_W_SECURITY_VIOLATION),
        0x6985 | 0x6986 => Err(SCM_SCARD_E_NO_ACCESS),
        0x6983 => Err(SCM_SCARD_W_CHV_BLOCKED),
        0x6A84 => Err(SCM_SCARD_E_WRITE_TOO_MANY),
        _ => Err(card_status(sw)),
    }
}

/// A failure about reference data (a PIN): the code, and the tries left to report with it
/// (`Some` for `SCM_SCARD_W_WRONG_CHV` and `SCM_SCARD_W_CHV_BLOCKED` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChvError {
    pub code: scm_hresult,
    pub tries: Option<u32>,
}

impl From<scm_hresult> for ChvError {
    fn from(code: scm_hresult) -> ChvError {
        ChvError { code, tries: None }
    }
}

/// What the card said of a reference datum after VERIFY, CHANGE REFERENCE DATA or RESET RETRY
/// COUNTER: `63Cx` is `SCM_SCARD_W_WRONG_CHV` with x tries left (`63 00`: `TRIES_UNKNOWN`),
/// `69 83` (authentication method blocked) and `69 84` (reference data not usable) are
/// `SCM_SCARD_W_CHV_BLOCKED` with 0; anything else as [`check`].
pub fn chv_check(sw: u16) -> std::result::Result<(), ChvError> {
    let failure = |code, tries| Err(ChvError { code, tries: Some(tries) });
    match sw {
        0x63C0..=0x63CF => failure(SCM_SCARD_W_WRONG_CHV, u32::from(sw & 0x0F)),
        0x6300 => failure(SCM_SCARD_W_WRONG_CHV, TRIES_UNKNOWN),
        0x6983 | 0x6984 => failure(SCM_SCARD_W_CHV_BLOCKED, 0),
        sw => Ok(check(sw, 0)?),
    }
}

/// The tries left from the answer to a VERIFY without data (ISO/IEC 7816-4 11.5.6): `63Cx` says
/// x, `63 00` and `90 00` (already verified) leave the count unsaid (`TRIES_UNKNOWN`), a blocked
/// reference is `SCM_SCARD_W_CHV_BLOCKED`.
pub fn tries_left(sw: u16) -> std::result::Result<u32, ChvError> {
    match sw {
        0x63C0..=0x63CF => Ok(u32::from(sw & 0x0F)),
        0x6300 => Ok(TRIES_UNKNOWN),
        sw => chv_check(sw).map(|()| TRIES_UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_abi_table() {
        assert_eq!(check(0x9000, 0), Ok(()));
        assert_eq!(check(0x6110, 0), Ok(()));
        assert_eq!(check(0x6281, 4), Ok(()));
        assert_eq!(check(0x6282, 4), Ok(()));
        assert_eq!(check(0x6282, 0), Err(SCM_SCARD_W_EOF));
        assert_eq!(check(0x6B00, 0), Err(SCM_SCARD_W_EOF));
        assert_eq!(check(0x6A82, 0), Err(SCM_SCARD_E_FILE_NOT_FOUND));
        for sw in [0x6A81, 0x6D00, 0x6E00] {
            assert_eq!(check(sw, 0), Err(SCM_E_NOTIMPL));
        }
        assert_eq!(check(0x6982, 0), Err(SCM_SCARD_W_SECURITY_VIOLATION));
        assert_eq!(check(0x6985, 0), Err(SCM_SCARD_E_NO_ACCESS));
        assert_eq!(check(0x6986, 0), Err(SCM_SCARD_E_NO_ACCESS));
        assert_eq!(check(0x6983, 0), Err(SCM_SCARD_W_CHV_BLOCKED));
        assert_eq!(check(0x6A84, 0), Err(SCM_SCARD_E_WRITE_TOO_MANY));
        assert_eq!(check(0x6283, 0), Err(0xA0FF_6283_u32 as i32));
        assert_eq!(check(0x63C2, 0), Err(0xA0FF_63C2_u32 as i32));
        assert_eq!(check(0x6F00, 0), Err(card_status(0x6F00)));
        assert_eq!(card_status(0x6A80) as u32, 0xA0FF_6A80);
    }

    #[test]
    fn reference_data_answers() {
        let failure = |code, tries| Err(ChvError { code, tries });
        assert_eq!(chv_check(0x9000), Ok(()));
        assert_eq!(chv_check(0x63C2), failure(SCM_SCARD_W_WRONG_CHV, Some(2)));
        assert_eq!(chv_check(0x63C0), failure(SCM_SCARD_W_WRONG_CHV, Some(0)));
        assert_eq!(chv_check(0x6300), failure(SCM_SCARD_W_WRONG_CHV, Some(TRIES_UNKNOWN)));
        assert_eq!(chv_check(0x6983), failure(SCM_SCARD_W_CHV_BLOCKED, Some(0)));
        assert_eq!(chv_check(0x6984), failure(SCM_SCARD_W_CHV_BLOCKED, Some(0)));
        assert_eq!(chv_check(0x6A88), failure(card_status(0x6A88), None));
        assert_eq!(tries_left(0x63C3), Ok(3));
        assert_eq!(tries_left(0x9000), Ok(TRIES_UNKNOWN));
        assert_eq!(tries_left(0x6300), Ok(TRIES_UNKNOWN));
        assert_eq!(tries_left(0x6983), Err(ChvError { code: SCM_SCARD_W_CHV_BLOCKED, tries: Some(0) }));
        assert_eq!(tries_left(0x6A86), Err(card_status(0x6A86).into()));
    }
}
