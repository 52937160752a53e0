//! The default applet: a few deterministic commands so tests and benchmarks need no card of
//! their own.

use crate::card::Reply;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// An ATR offering only T=1 (`T0 = 80`: one TD byte, no historical bytes; `TD1 = 01`: T=1;
/// `TCK = 81`).
///
/// Only T=1 is offered so that a connection asking for `T0 | T1` deterministically ends up
/// with T=1, which is what the extended-length paths of the library need.
pub const DEFAULT_ATR: &[u8] = &[0x3B, 0x80, 0x01, 0x81];

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];

/// The largest READ size: `vpcd` frames a response with a 16-bit length, and the response also
/// carries the two status bytes.
const MAX_READ: usize = 0xFFFF - 2;

/// A tiny applet for demos, tests and benchmarks.
///
/// | command | answer |
/// |---|---|
/// | `00 A4 04 xx Lc <AID>` SELECT | `90 00` |
/// | `80 10 00 00 Lc <data> [Le]` ECHO (short or extended Lc) | `<data> 90 00` |
/// | `80 20 P1 P2 [Le]` READ `N = (P1 << 8) \| P2` | bytes `i as u8` for `i in 0..N`, `90 00` |
/// | `00 84 00 00 08` GET CHALLENGE | 8 bytes that change on every call, `90 00` |
/// | anything else | `6D 00` |
///
/// READ answers `67 00` when N exceeds 65533: `vpcd` cannot frame a longer response.
pub fn default_applet(apdu: &[u8]) -> Reply {
    Reply::Respond(default_response(apdu))
}

/// The default applet's answer, for cards that answer its commands among their own.
pub(crate) fn default_response(apdu: &[u8]) -> Vec<u8> {
    if apdu.len() < 4 {
        return SW_INS_NOT_SUPPORTED.to_vec();
    }
    let body = command_data(apdu);
    match (apdu[0], apdu[1], apdu[2], apdu[3]) {
        (0x00, 0xA4, 0x04, _) => SW_OK.to_vec(),
        (0x80, 0x10, 0x00, 0x00) => match body {
            Some(data) => [data, &SW_OK].concat(),
            None => SW_WRONG_LENGTH.to_vec(),
        },
        (0x80, 0x20, p1, p2) => {
            let n = usize::from(u16::from_be_bytes([p1, p2]));
            if n > MAX_READ {
                SW_WRONG_LENGTH.to_vec()
            } else {
                // Truncation to u8 is the point: a recognisable 00 01 .. FF 00 01 .. pattern.
                let mut out: Vec<u8> = (0..n).map(|i| i as u8).collect();
                out.extend_from_slice(&SW_OK);
                out
            }
        }
        (0x00, 0x84, 0x00, 0x00) if apdu.len() == 5 && apdu[4] == 8 => {
            let mut out = challenge().to_be_bytes().to_vec();
            out.extend_from_slice(&SW_OK);
            out
        }
        _ => SW_INS_NOT_SUPPORTED.to_vec(),
    }
}

/// The command data of an ISO 7816-4 APDU (cases 1 to 4, short or extended), or `None` when
/// the lengths do not add up.
fn command_data(apdu: &[u8]) -> Option<&[u8]> {
    let rest = &apdu[4..];
    match rest.len() {
        0 | 1 => Some(&[]),
        _ if rest[0] != 0 => {
            let lc = usize::from(rest[0]);
            let data = rest.get(1..1 + lc)?;
            // Case 3S has nothing after the data, case 4S one Le byte.
            (rest.len() - 1 - lc <= 1).then_some(data)
        }
        3 => Some(&[]), // case 2E: 00 Le Le
        _ => {
            let lc = usize::from(u16::from_be_bytes([*rest.get(1)?, *rest.get(2)?]));
            let data = rest.get(3..3 + lc)?;
            // Case 3E has nothing after the data, case 4E two Le bytes.
            matches!(rest.len() - 3 - lc, 0 | 2).then_some(data)
        }
    }
}

/// Eight bytes that differ on every call in this process and between runs (a counter mixed
/// with the clock through splitmix64), which is all a test of GET CHALLENGE needs.
pub(crate) fn challenge() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(apdu: &[u8]) -> Vec<u8> {
        match default_applet(apdu) {
            Reply::Respond(r) => r,
            Reply::Vanish => panic!("the default applet never vanishes"),
        }
    }

    #[test]
    fn select_echo_read_challenge() {
        assert_eq!(respond(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00]), SW_OK);
        assert_eq!(respond(&[0x80, 0x10, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0x00]), [0xAB, 0xCD, 0x90, 0x00]);
        assert_eq!(respond(&[0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x42]), [0x42, 0x90, 0x00]);
        assert_eq!(respond(&[0x80, 0x10, 0x00, 0x00, 0x05, 0x01]), SW_WRONG_LENGTH);
        let read = respond(&[0x80, 0x20, 0x01, 0x02, 0x00]);
        assert_eq!(read.len(), 0x102 + 2);
        assert_eq!(read[0x101], 0x01);
        assert_eq!(respond(&[0x80, 0x20, 0xFF, 0xFF]), SW_WRONG_LENGTH);
        let a = respond(&[0x00, 0x84, 0x00, 0x00, 0x08]);
        let b = respond(&[0x00, 0x84, 0x00, 0x00, 0x08]);
        assert_eq!(a.len(), 10);
        assert_ne!(a, b);
        assert_eq!(respond(&[0x00, 0xB0, 0x00, 0x00]), SW_INS_NOT_SUPPORTED);
        assert_eq!(respond(&[0x00]), SW_INS_NOT_SUPPORTED);
    }
}
