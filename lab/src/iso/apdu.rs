//! Command APDUs as ISO/IEC 7816-3/4 frame them, the status words the card answers, and the
//! BER-TLV coding its FCPs and odd-instruction data use.

/// Status words, named as ISO/IEC 7816-4 describes them.
pub(super) mod sw {
    pub const OK: u16 = 0x9000;
    pub const AUTH_FAILED: u16 = 0x6300;
    pub const END_REACHED: u16 = 0x6282;
    pub const DEACTIVATED: u16 = 0x6283;
    pub const MEMORY_FAILURE: u16 = 0x6581;
    pub const WRONG_LENGTH: u16 = 0x6700;
    pub const NO_CHANNEL: u16 = 0x6881;
    pub const NO_SECURE_MESSAGING: u16 = 0x6882;
    pub const LAST_OF_CHAIN_EXPECTED: u16 = 0x6883;
    pub const NO_CHAINING: u16 = 0x6884;
    pub const WRONG_STRUCTURE: u16 = 0x6981;
    pub const SECURITY: u16 = 0x6982;
    pub const BLOCKED: u16 = 0x6983;
    pub const CONDITIONS: u16 = 0x6985;
    pub const NO_CURRENT_EF: u16 = 0x6986;
    pub const WRONG_DATA: u16 = 0x6A80;
    pub const NOT_FOUND: u16 = 0x6A82;
    pub const RECORD_NOT_FOUND: u16 = 0x6A83;
    pub const NO_MEMORY: u16 = 0x6A84;
    pub const WRONG_P1P2: u16 = 0x6A86;
    pub const DATA_INCONSISTENT: u16 = 0x6A87;
    pub const NO_REFERENCE: u16 = 0x6A88;
    pub const FILE_EXISTS: u16 = 0x6A89;
    pub const NAME_EXISTS: u16 = 0x6A8A;
    pub const WRONG_OFFSET: u16 = 0x6B00;
    pub const NO_INS: u16 = 0x6D00;
    pub const NO_CLA: u16 = 0x6E00;

    /// `61 xx`: `len` more bytes wait for GET RESPONSE (xx = 00 for 256 or more).
    pub fn more(len: usize) -> u16 {
        0x6100 | (len.min(256) & 0xFF) as u16
    }

    /// `6C xx`: the Le should have been `len` (xx = 00 for 256).
    pub fn exact_le(len: usize) -> u16 {
        0x6C00 | (len & 0xFF) as u16
    }

    /// `63 Cx`: `tries` left (at most 15 can be said).
    pub fn tries(tries: u8) -> u16 {
        0x63C0 | u16::from(tries.min(15))
    }
}

/// The largest short Ne.
pub(super) const SHORT_MAX: usize = 256;
/// The largest command data field, and the largest command chain in total.
pub(super) const MAX_DATA: usize = 65_535;

/// A parsed command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Ne, the maximum number of response bytes (Le 00 = 256, 0000 = 65 536); `None` without Le.
    pub ne: Option<usize>,
    /// Lc or Le was in the extended form.
    pub extended: bool,
}

impl Command {
    /// Cases 1 to 4, short or extended; `None` when the lengths do not add up.
    pub fn parse(apdu: &[u8]) -> Option<Command> {
        let (header, rest) = (apdu.get(..4)?, &apdu[4..]);
        let short_ne = |b: u8| if b == 0 { SHORT_MAX } else { usize::from(b) };
        let extended_ne = |b: &[u8]| match u16::from_be_bytes([b[0], b[1]]) {
            0 => 65_536,
            n => usize::from(n),
        };
        let (data, ne, extended) = match rest {
            [] => (&[][..], None, false),
            [le] => (&[][..], Some(short_ne(*le)), false),
            [0, le @ ..] if le.len() == 2 => (&[][..], Some(extended_ne(le)), true),
            [0, lc1, lc2, body @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*lc1, *lc2]));
                match body.len().checked_sub(lc)? {
                    _ if lc == 0 => return None,
                    0 => (body, None, true),
                    2 => (&body[..lc], Some(extended_ne(&body[lc..])), true),
                    _ => return None,
                }
            }
            [lc, body @ ..] if *lc != 0 => {
                let lc = usize::from(*lc);
                match body.len().checked_sub(lc)? {
                    0 => (body, None, false),
                    1 => (&body[..lc], Some(short_ne(body[lc])), false),
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(Command {
            cla: header[0],
            ins: header[1],
            p1: header[2],
            p2: header[3],
            data: data.to_vec(),
            ne,
            extended,
        })
    }

    pub fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }

    /// The Le was all zeros: "everything available, up to the maximum", which ends short of Ne
    /// without a warning.
    pub fn wants_all(&self) -> bool {
        self.ne == Some(if self.extended { 65_536 } else { SHORT_MAX })
    }
}

/// A BER-TLV data object: a one- or two-byte tag (`0x62`, `0x7F66`) and the value's length in
/// the shortest definite form.
pub(super) fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    let len = value.len();
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.push(0x82),
        _ => out.push(0x83),
    }
    if len > 0xFF {
        let bytes = (len as u32).to_be_bytes();
        out.extend_from_slice(&bytes[if len > 0xFFFF { 1 } else { 2 }..]);
    }
    out.extend_from_slice(value);
    out
}

/// The size of the header [`tlv`] puts before `len` bytes with a one-byte tag.
pub(super) fn tlv_header_len(len: usize) -> usize {
    match len {
        0..=0x7F => 2,
        0x80..=0xFF => 3,
        0x100..=0xFFFF => 4,
        _ => 5,
    }
}

/// The data objects of `data` in order (tags of one or two bytes, lengths in the 1- to
/// 3-byte definite forms); `None` when anything is malformed or runs past the end.
pub(super) fn parse_tlvs(mut data: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while let Some((&first, rest)) = data.split_first() {
        let (tag, rest) = if first & 0x1F == 0x1F {
            let (&second, rest) = rest.split_first()?;
            // A tag of three bytes or more is never used by this card.
            if second & 0x80 != 0 {
                return None;
            }
            (u16::from_be_bytes([first, second]), rest)
        } else {
            (u16::from(first), rest)
        };
        let (&len0, rest) = rest.split_first()?;
        let (len, rest) = match len0 {
            0..=0x7F => (usize::from(len0), rest),
            0x81..=0x83 => {
                let n = usize::from(len0 & 0x7F);
                let bytes = rest.get(..n)?;
                (bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)), &rest[n..])
            }
            _ => return None,
        };
        let value = rest.get(..len)?;
        out.push((tag, value));
        data = &rest[len..];
    }
    Some(out)
}

/// The value of the first `tag` object in `objects`.
pub(super) fn find<'a>(objects: &[(u16, &'a [u8])], tag: u16) -> Option<&'a [u8]> {
    objects.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// A big-endian unsigned number of 1 to 4 bytes.
pub(super) fn number(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || bytes.len() > 4 {
        return None;
    }
    usize::try_from(bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(apdu: &[u8]) -> Option<(Vec<u8>, Option<usize>, bool)> {
        Command::parse(apdu).map(|c| (c.data, c.ne, c.extended))
    }

    #[test]
    fn the_four_cases_short_and_extended() {
        assert_eq!(parse(&[0, 0xB0, 0, 0]), Some((vec![], None, false)));
        assert_eq!(parse(&[0, 0xB0, 0, 0, 0]), Some((vec![], Some(256), false)));
        assert_eq!(parse(&[0, 0xB0, 0, 0, 0x10]), Some((vec![], Some(16), false)));
        assert_eq!(parse(&[0, 0xD6, 0, 0, 2, 1, 2]), Some((vec![1, 2], None, false)));
        assert_eq!(parse(&[0, 0xA4, 0, 0, 2, 1, 2, 0]), Some((vec![1, 2], Some(256), false)));
        assert_eq!(parse(&[0, 0xB0, 0, 0, 0, 0, 0]), Some((vec![], Some(65_536), true)));
        assert_eq!(parse(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]), Some((vec![], Some(256), true)));
        assert_eq!(parse(&[0, 0xD6, 0, 0, 0, 0, 1, 9]), Some((vec![9], None, true)));
        assert_eq!(parse(&[0, 0xD6, 0, 0, 0, 0, 1, 9, 0, 0]), Some((vec![9], Some(65_536), true)));
        for bad in
            [&[0u8, 0xB0, 0][..], &[0, 0xD6, 0, 0, 2, 1], &[0, 0xD6, 0, 0, 1, 1, 2, 3], &[0, 0, 0, 0, 0, 1]]
        {
            assert_eq!(parse(bad), None, "{bad:02X?}");
        }
        assert_eq!(parse(&[0, 0xD6, 0, 0, 0, 0, 0, 1]), None, "extended Lc 0");
        assert_eq!(parse(&[0, 0xD6, 0, 0, 0, 0, 1, 9, 0]), None, "one byte of extended Le");
    }

    #[test]
    fn tlv_round_trip_and_malformed_input() {
        for len in [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000] {
            let value = vec![7u8; len];
            let encoded = tlv(0x53, &value);
            assert_eq!(encoded.len(), tlv_header_len(len) + len);
            assert_eq!(parse_tlvs(&encoded), Some(vec![(0x53, &value[..])]));
        }
        assert_eq!(parse_tlvs(&tlv(0x7F66, &[1])), Some(vec![(0x7F66, &[1u8][..])]));
        for bad in [
            &[0x62u8][..],
            &[0x62, 0x81],
            &[0x62, 0x02, 0],
            &[0x9F],
            &[0x62, 0x84, 0, 0, 0, 0],
            &[0x62, 0x80],
        ] {
            assert_eq!(parse_tlvs(bad), None, "{bad:02X?}");
        }
        assert_eq!(number(&[0x9C, 0x40]), Some(40_000));
        assert_eq!(number(&[]), None);
        assert_eq!(number(&[1, 2, 3, 4, 5]), None);
    }
}
