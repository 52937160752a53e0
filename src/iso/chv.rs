//! Card holder verification (`scm_chv_*`, ISCardVerify): VERIFY, CHANGE REFERENCE DATA and
//! RESET RETRY COUNTER of ISO/IEC 7816-4 (11.5.6 to 11.5.10).
//!
//! Codes are secrets: they are never formatted (no type here or in the APDU layer implements
//! `Debug` over them), and every buffer of the library's that held one is overwritten with
//! volatile writes before it is let go ([`Secret`]), the encoded command included. What PC/SC's
//! own client library copies on its way to the card is out of reach.

use std::sync::atomic::{compiler_fence, Ordering};

use super::apdu::Command;
use super::sw::{self, ChvError};
use super::transport::longest_encoding;
use crate::hresult::*;
use crate::manager::Manager;

/// `scm_chv_*` flags: pad the code with `FF` bytes to 8 bytes (the format of PIV and of many
/// ISO cards). A longer code is refused.
pub(crate) const PAD_FF: u32 = 1;
/// The padded length.
const PADDED_LEN: usize = 8;

pub type ChvResult<T> = std::result::Result<T, ChvError>;

/// Overwrites `bytes` with zeros in a way the compiler may not drop as a dead store.
pub fn wipe(bytes: &mut [u8]) {
    for byte in bytes.iter_mut() {
        // SAFETY: `byte` is a valid, exclusive reference.
        unsafe { std::ptr::write_volatile(byte, 0) };
    }
    compiler_fence(Ordering::SeqCst);
}

/// A buffer of the library's that holds a secret: wiped, its whole capacity, when dropped (on
/// unwinding too). Made with the room it will need, so that it never grows: a growing vector
/// would free its earlier allocation unwiped.
pub struct Secret(pub Vec<u8>);

impl Secret {
    pub fn with_capacity(capacity: usize) -> Secret {
        Secret(Vec::with_capacity(capacity))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe_all(&mut self.0);
    }
}

/// Wipes a vector's whole allocation: bytes past its length may hold an earlier content.
fn wipe_all(buffer: &mut Vec<u8>) {
    buffer.resize(buffer.capacity(), 0);
    wipe(buffer);
}

/// The P2 of a reference: ISO/IEC 7816-4 gives it one byte (b8: specific to the current DF).
pub fn reference_p2(reference: u32) -> Result<u8, scm_hresult> {
    u8::try_from(reference).map_err(|_| SCM_E_INVALIDARG)
}

/// The data field of a command carrying `codes` in order, each left out when empty, in the
/// format `flags` ask (none, or `PAD_FF`); other flags, or a code too long to pad, are
/// `SCM_E_INVALIDARG`.
fn codes_data(codes: &[&[u8]], flags: u32) -> Result<Secret, scm_hresult> {
    if flags & !PAD_FF != 0 {
        return Err(SCM_E_INVALIDARG);
    }
    let mut data = Secret::with_capacity(codes.iter().map(|code| code.len().max(PADDED_LEN)).sum());
    for code in codes.iter().filter(|code| !code.is_empty()) {
        data.0.extend_from_slice(code);
        if flags == PAD_FF {
            let padding = PADDED_LEN.checked_sub(code.len()).ok_or(SCM_E_INVALIDARG)?;
            data.0.extend(std::iter::repeat(0xFF).take(padding));
        }
    }
    Ok(data)
}

/// Sends a command whose data is a secret, encoding it in a wiped buffer, and reads the answer
/// as reference-data status.
fn send_secret(manager: &mut Manager, command: &Command) -> ChvResult<()> {
    let mut encoded = Secret::with_capacity(longest_encoding(command.data.len()));
    let mut response = Vec::new();
    let sw = manager.iso_command_in(command, &mut encoded.0, &mut response)?;
    sw::chv_check(sw)
}

/// VERIFY (`00 20 00 P2`, the code as data): shared by `scm_chv_verify` and `scm_auth_user_auth`.
pub fn verify(manager: &mut Manager, reference: u32, code: &[u8], flags: u32) -> ChvResult<()> {
    let p2 = reference_p2(reference)?;
    if code.is_empty() {
        return Err(SCM_E_INVALIDARG.into());
    }
    let data = codes_data(&[code], flags)?;
    send_secret(manager, &Command { data: &data.0, ..Command::new(0x00, 0x20, 0x00, p2) })
}

/// The verification object: the references it verified, so that `reset_security_state` can
/// reset them.
pub struct Chv {
    pub manager: usize,
    verified: Vec<u8>,
}

impl Chv {
    pub fn new(manager: usize) -> Chv {
        Chv { manager, verified: Vec::new() }
    }

    pub fn verify(
        &mut self,
        manager: &mut Manager,
        reference: u32,
        code: &[u8],
        flags: u32,
    ) -> ChvResult<()> {
        verify(manager, reference, code, flags)?;
        let p2 = reference as u8;
        if !self.verified.contains(&p2) {
            self.verified.push(p2);
        }
        Ok(())
    }

    /// CHANGE REFERENCE DATA (`00 24 P1 P2`): P1 `00` with the old code then the new one as
    /// data, P1 `01` with the new one only when `old` is empty.
    pub fn change_code(
        &mut self,
        manager: &mut Manager,
        reference: u32,
        old: &[u8],
        new: &[u8],
        flags: u32,
    ) -> ChvResult<()> {
        let p2 = reference_p2(reference)?;
        if new.is_empty() {
            return Err(SCM_E_INVALIDARG.into());
        }
        let data = codes_data(&[old, new], flags)?;
        let p1 = u8::from(old.is_empty());
        send_secret(manager, &Command { data: &data.0, ..Command::new(0x00, 0x24, p1, p2) })
    }

    /// RESET RETRY COUNTER (`00 2C P1 P2`): P1 `00` with the unblocking code then the new code,
    /// `01` with the unblocking code only, `02` with the new code only, `03` with neither.
    pub fn unblock(
        &mut self,
        manager: &mut Manager,
        reference: u32,
        unblock_code: &[u8],
        new: &[u8],
        flags: u32,
    ) -> ChvResult<()> {
        let p2 = reference_p2(reference)?;
        let data = codes_data(&[unblock_code, new], flags)?;
        let p1 = match (unblock_code.is_empty(), new.is_empty()) {
            (false, false) => 0x00,
            (false, true) => 0x01,
            (true, false) => 0x02,
            (true, true) => 0x03,
        };
        send_secret(manager, &Command { data: &data.0, ..Command::new(0x00, 0x2C, p1, p2) })
    }

    /// VERIFY with P1 `FF` and no data (ISO/IEC 7816-4 11.5.6: the verification status is reset)
    /// for every reference this object verified, most recent first; each one the card resets is
    /// forgotten, and the first refusal ends the call with its code.
    pub fn reset_security_state(&mut self, manager: &mut Manager) -> ChvResult<()> {
        // With nothing to reset, the manager's state is still the answer's.
        manager.card_handle()?;
        while let Some(&p2) = self.verified.last() {
            let sw = manager.iso_command(&Command::new(0x00, 0x20, 0xFF, p2), &mut Vec::new())?;
            sw::check(sw, 0)?;
            self.verified.pop();
        }
        Ok(())
    }

    /// VERIFY with no data (`00 20 00 P2`): the card answers with the tries left.
    pub fn tries_left(&mut self, manager: &mut Manager, reference: u32) -> ChvResult<u32> {
        let p2 = reference_p2(reference)?;
        let sw = manager.iso_command(&Command::new(0x00, 0x20, 0x00, p2), &mut Vec::new())?;
        sw::tries_left(sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_padded_only_as_asked() {
        let data = codes_data(&[b"1234", b"", b"12"], PAD_FF).unwrap();
        assert_eq!(data.0, b"1234\xFF\xFF\xFF\xFF12\xFF\xFF\xFF\xFF\xFF\xFF");
        assert_eq!(data.0.capacity(), 24, "made with its room, never grown (so never moved)");
        assert_eq!(codes_data(&[b"1234", b"5678"], 0).unwrap().0, b"12345678");
        assert_eq!(codes_data(&[b"123456789"], PAD_FF).err(), Some(SCM_E_INVALIDARG));
        assert_eq!(codes_data(&[b"1234"], 2).err(), Some(SCM_E_INVALIDARG));
        assert_eq!(codes_data(&[], 2).err(), Some(SCM_E_INVALIDARG));
        assert_eq!(reference_p2(0x81), Ok(0x81));
        assert_eq!(reference_p2(0x100), Err(SCM_E_INVALIDARG));
    }

    #[test]
    fn a_secret_buffer_is_wiped_to_its_capacity() {
        let mut buffer = Vec::with_capacity(16);
        buffer.extend_from_slice(b"1234567812345678");
        buffer.truncate(4);
        wipe_all(&mut buffer);
        assert_eq!(buffer.len(), 16);
        assert!(buffer.iter().all(|&byte| byte == 0));
    }
}
