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

/// The status of a command whose success must carry data.
fn with_data(sw: u16, out: &[u8]) -> Result<()> {
    sw::check(sw, out.len())?;
    match out.is_empty() {
        true => Err(BROKEN_EXCHANGE),
        false => Ok(()),
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
        with_data(sw, out)
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
        with_data(sw, out)
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
