//! Card authentication (`scm_auth_*`, ISCardAuth): GET CHALLENGE, INTERNAL AUTHENTICATE and
//! EXTERNAL AUTHENTICATE of ISO/IEC 7816-4 (11.5.2 to 11.5.5).

use super::apdu::{Command, MAX_NE};
use super::{sw, BROKEN_EXCHANGE};
use crate::hresult::*;
use crate::manager::Manager;
use crate::scard::Result;

/// The authentication object.
pub struct Auth {
    pub manager: usize,
}

/// P1 and P2 from the caller's algorithm and key references, one byte each.
fn references(algorithm: u32, key: u32) -> Result<(u8, u8)> {
    let byte = |value: u32| u8::try_from(value).map_err(|_| SCM_E_INVALIDARG);
    Ok((byte(algorithm)?, byte(key)?))
}

/// The status of a command whose success must carry data, at most `most` bytes of it.
fn with_data(sw: u16, out: &[u8], most: usize) -> Result<()> {
    sw::check(sw, out.len())?;
    match out.len() {
        0 => Err(BROKEN_EXCHANGE),
        // One answer is bounded by the Le, but a 61xx chain of GET RESPONSE is not.
        len if len > most => Err(BROKEN_EXCHANGE),
        _ => Ok(()),
    }
}

impl Auth {
    pub fn new(manager: usize) -> Auth {
        Auth { manager }
    }

    /// GET CHALLENGE (`00 84 00 00`, Le = `len`, at most what one answer of the card carries):
    /// the challenge is appended to `out`. Success with no challenge is [`BROKEN_EXCHANGE`].
    pub fn get_challenge(&self, manager: &mut Manager, len: usize, out: &mut Vec<u8>) -> Result<()> {
        if len == 0 || len > MAX_NE || len > manager.iso_capabilities()?.max_response_data() {
            return Err(SCM_E_INVALIDARG);
        }
        let sw = manager.iso_command(&Command { ne: len, ..Command::new(0x00, 0x84, 0x00, 0x00) }, out)?;
        with_data(sw, out, len)
    }

    /// INTERNAL AUTHENTICATE (`00 88 P1 P2`, P1 the algorithm, P2 the key, the data, Le for the
    /// longest answer the card can give): the answer is appended to `out`. Success with no
    /// answer is [`BROKEN_EXCHANGE`].
    pub fn icc_auth(
        &self,
        manager: &mut Manager,
        algorithm: u32,
        key: u32,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let (p1, p2) = references(algorithm, key)?;
        let ne = manager.iso_capabilities()?.max_response_data();
        let sw = manager.iso_command(&Command { data, ne, ..Command::new(0x00, 0x88, p1, p2) }, out)?;
        with_data(sw, out, MAX_NE)
    }

    /// EXTERNAL AUTHENTICATE (`00 82 P1 P2`, the data): a refusal (`63xx`) is
    /// `SCM_SCARD_W_SECURITY_VIOLATION`.
    pub fn app_auth(&self, manager: &mut Manager, algorithm: u32, key: u32, data: &[u8]) -> Result<()> {
        let (p1, p2) = references(algorithm, key)?;
        let sw =
            manager.iso_command(&Command { data, ..Command::new(0x00, 0x82, p1, p2) }, &mut Vec::new())?;
        match sw {
            0x6300..=0x63FF => Err(SCM_SCARD_W_SECURITY_VIOLATION),
            sw => sw::check(sw, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_must_carry_data_within_what_was_asked() {
        assert_eq!(with_data(0x9000, &[1; 8], 8), Ok(()));
        assert_eq!(with_data(0x9000, &[1; 4], 8), Ok(()), "fewer than asked");
        assert_eq!(with_data(0x9000, &[], 8), Err(BROKEN_EXCHANGE));
        // A GET CHALLENGE of 8 answered 61 10, then 16 bytes through GET RESPONSE.
        assert_eq!(with_data(0x9000, &[1; 16], 8), Err(BROKEN_EXCHANGE));
        assert_eq!(with_data(0x6A86, &[], 8), Err(sw::card_status(0x6A86)));
    }
}
