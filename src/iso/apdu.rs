//! Command APDUs (ISO/IEC 7816-4 clause 5.1): the four cases in short and extended form, the
//! split into chained commands, and the decoding of a caller's raw command.

use crate::hresult::*;
use crate::scard::Result;

/// The most data a short command carries.
pub(crate) const MAX_SHORT_DATA: usize = 255;
/// The most data a short command can ask for (Le `00`).
pub(crate) const MAX_SHORT_NE: usize = 256;
/// The most data an extended command carries.
pub(crate) const MAX_EXTENDED_DATA: usize = 65535;
/// The most data any command can ask for (extended Le `00 00`).
pub(crate) const MAX_NE: usize = 65536;
/// The command-chaining bit of the class byte (ISO/IEC 7816-4 5.4.1, b5).
pub(crate) const CLA_CHAINING: u8 = 0x10;

/// One command: header, data field and Ne, the number of bytes expected in the answer (0: none;
/// 256 is Le `00` in short form, 65536 is `00 00` in extended form).
///
/// No `Debug`: the data of a VERIFY is a secret code, and must never reach a log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: &'a [u8],
    pub ne: usize,
}

impl<'a> Command<'a> {
    /// A case 1 command (no data, nothing expected); add data and Ne with the fields.
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command<'static> {
        Command { cla, ins, p1, p2, data: &[], ne: 0 }
    }

    /// Whether the command fits the short form.
    pub fn fits_short(&self) -> bool {
        self.data.len() <= MAX_SHORT_DATA && self.ne <= MAX_SHORT_NE
    }

    /// Appends the encoding to `out`, in extended form when `extended` is set (a case 1 command
    /// has one form only). `SCM_E_INVALIDARG` when the command does not fit the form.
    pub fn encode(&self, extended: bool, out: &mut Vec<u8>) -> Result<()> {
        let (nc, ne) = (self.data.len(), self.ne);
        if nc > MAX_EXTENDED_DATA || ne > MAX_NE || (!extended && !self.fits_short()) {
            return Err(SCM_E_INVALIDARG);
        }
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        // Ne of 256 (short) or 65536 (extended) is encoded as zero: the truncation is the rule.
        if extended {
            if nc > 0 {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(self.data);
            }
            if ne > 0 {
                if nc == 0 {
                    out.push(0);
                }
                out.extend_from_slice(&(ne as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(self.data);
            }
            if ne > 0 {
                out.push(ne as u8);
            }
        }
        Ok(())
    }

    /// The command as chained short commands of at most 255 data bytes each: every piece but
    /// the last has the chaining bit and no Le; the last has the command's class and Ne.
    /// A command with no data is one piece.
    pub fn chained(&self) -> impl Iterator<Item = Command<'a>> + 'a {
        let whole = *self;
        let pieces = whole.data.len().div_ceil(MAX_SHORT_DATA).max(1);
        let chunks = whole.data.chunks(MAX_SHORT_DATA).chain((whole.data.is_empty()).then_some(&[][..]));
        chunks.enumerate().map(move |(i, data)| match i + 1 == pieces {
            true => Command { data, ..whole },
            false => Command { cla: whole.cla | CLA_CHAINING, data, ne: 0, ..whole },
        })
    }

    /// Decodes a raw command (ISO/IEC 7816-3 12.1.3: cases 1, 2S, 3S, 4S, 2E, 3E, 4E); the flag
    /// says whether it was in extended form. `SCM_E_INVALIDARG` when the length fields do not
    /// match the command's length.
    pub fn parse(bytes: &'a [u8]) -> Result<(Command<'a>, bool)> {
        let (&[cla, ins, p1, p2], body) = bytes.split_first_chunk::<4>().ok_or(SCM_E_INVALIDARG)?;
        let header = Command { cla, ins, p1, p2, data: &[], ne: 0 };
        let short_ne = |le: u8| if le == 0 { MAX_SHORT_NE } else { usize::from(le) };
        let extended_ne = |le: [u8; 2]| match u16::from_be_bytes(le) {
            0 => MAX_NE,
            le => usize::from(le),
        };
        match body {
            [] => Ok((header, false)),
            [le] => Ok((Command { ne: short_ne(*le), ..header }, false)),
            [0, le @ ..] if le.len() == 2 => {
                Ok((Command { ne: extended_ne([le[0], le[1]]), ..header }, true))
            }
            [0, lc_high, lc_low, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*lc_high, *lc_low]));
                match (nc, rest.len().checked_sub(nc)) {
                    (1.., Some(0)) => Ok((Command { data: rest, ..header }, true)),
                    (1.., Some(2)) => {
                        let (data, le) = rest.split_at(nc);
                        Ok((Command { data, ne: extended_ne([le[0], le[1]]), ..header }, true))
                    }
                    _ => Err(SCM_E_INVALIDARG),
                }
            }
            [lc, rest @ ..] => {
                let nc = usize::from(*lc);
                match (nc, rest.len().checked_sub(nc)) {
                    (1.., Some(0)) => Ok((Command { data: rest, ..header }, false)),
                    (1.., Some(1)) => {
                        Ok((Command { data: &rest[..nc], ne: short_ne(rest[nc]), ..header }, false))
                    }
                    _ => Err(SCM_E_INVALIDARG),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(command: &Command, extended: bool) -> Vec<u8> {
        let mut out = Vec::new();
        command.encode(extended, &mut out).unwrap();
        out
    }

    #[test]
    fn the_four_cases_short_and_extended() {
        let case1 = Command::new(0x00, 0xA4, 0x00, 0x0C);
        assert_eq!(encoded(&case1, false), [0x00, 0xA4, 0x00, 0x0C]);
        assert_eq!(encoded(&case1, true), [0x00, 0xA4, 0x00, 0x0C]);
        let case2 = Command { ne: 256, ..Command::new(0x00, 0xB0, 0x00, 0x00) };
        assert_eq!(encoded(&case2, false), [0x00, 0xB0, 0x00, 0x00, 0x00]);
        assert_eq!(encoded(&case2, true), [0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x00]);
        let case2e = Command { ne: 65536, ..case2 };
        assert_eq!(encoded(&case2e, true), [0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(case2e.encode(false, &mut Vec::new()), Err(SCM_E_INVALIDARG));
        let case3 = Command { data: &[1, 2], ..Command::new(0x00, 0xD6, 0x00, 0x00) };
        assert_eq!(encoded(&case3, false), [0x00, 0xD6, 0x00, 0x00, 0x02, 1, 2]);
        assert_eq!(encoded(&case3, true), [0x00, 0xD6, 0x00, 0x00, 0x00, 0x00, 0x02, 1, 2]);
        let case4 = Command { data: &[7], ne: 0x10, ..Command::new(0x00, 0x88, 0x00, 0x00) };
        assert_eq!(encoded(&case4, false), [0x00, 0x88, 0x00, 0x00, 0x01, 7, 0x10]);
        assert_eq!(encoded(&case4, true), [0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x01, 7, 0x00, 0x10]);
        let too_long = [0u8; 65536];
        let refused = Command { data: &too_long, ..case3 };
        assert_eq!(refused.encode(true, &mut Vec::new()), Err(SCM_E_INVALIDARG));
        assert_eq!(Command { ne: 65537, ..case2 }.encode(true, &mut Vec::new()), Err(SCM_E_INVALIDARG));
    }

    #[test]
    fn the_longest_extended_command_is_sent() {
        let data = vec![0xA5; MAX_EXTENDED_DATA];
        let longest = Command { data: &data, ne: MAX_NE, ..Command::new(0x00, 0xD6, 0x00, 0x00) };
        let out = encoded(&longest, true);
        assert_eq!(out[4..7], [0x00, 0xFF, 0xFF], "extended Lc 65535");
        assert_eq!(out.len(), 4 + 3 + MAX_EXTENDED_DATA + 2);
        assert!(Command::parse(&out).unwrap() == (longest, true));
    }

    #[test]
    fn encoding_and_parsing_agree() {
        let data: Vec<u8> = (0..300).map(|i| i as u8).collect();
        for nc in [0, 1, 255, 256, 300] {
            for ne in [0, 1, 255, 256, 257, 65536] {
                let command = Command { data: &data[..nc], ne, ..Command::new(0x80, 0x10, 1, 2) };
                for extended in [false, true] {
                    let mut out = Vec::new();
                    if command.encode(extended, &mut out).is_err() {
                        assert!(!extended && !command.fits_short());
                        continue;
                    }
                    let (parsed, was_extended) = Command::parse(&out).unwrap();
                    assert!(parsed == command, "nc {nc} ne {ne} extended {extended}");
                    assert_eq!(was_extended, extended && (nc > 0 || ne > 0));
                }
            }
        }
    }

    #[test]
    fn lengths_that_do_not_match_are_refused() {
        for bad in [
            &[0x00, 0xA4, 0x00][..],
            &[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F],
            &[0x00, 0xA4, 0x00, 0x00, 0x01, 0x3F, 0x00, 0x00],
            &[0x00, 0xA4, 0x00, 0x00, 0x00, 0x01],
            &[0x00, 0xA4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            &[0x00, 0xA4, 0x00, 0x00, 0x00, 0x00, 0x02, 0x3F],
        ] {
            assert!(Command::parse(bad).is_err(), "{bad:02X?}");
        }
    }

    #[test]
    fn chaining_splits_into_short_pieces() {
        let data = [0x5Au8; 600];
        let command = Command { data: &data, ne: 256, ..Command::new(0x00, 0xDA, 0x01, 0x02) };
        let pieces: Vec<_> = command.chained().collect();
        assert_eq!(pieces.len(), 3);
        assert_eq!((pieces[0].cla, pieces[0].data.len(), pieces[0].ne), (0x10, 255, 0));
        assert_eq!((pieces[1].cla, pieces[1].data.len(), pieces[1].ne), (0x10, 255, 0));
        assert_eq!((pieces[2].cla, pieces[2].data.len(), pieces[2].ne), (0x00, 90, 256));
        assert!(pieces.iter().all(Command::fits_short));
        // A class that already says "chained" (a caller chaining a longer sequence itself):
        // every piece still says it, the last one too.
        let chaining = Command { cla: 0x10 | 0x01, ..command };
        assert!(chaining.chained().all(|piece| piece.cla == 0x11));
        let empty = Command::new(0x00, 0x84, 0, 0);
        assert_eq!(empty.chained().count(), 1);
        let exact = Command { data: &data[..255], ..empty };
        assert_eq!(exact.chained().count(), 1);
    }
}
