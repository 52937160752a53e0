//! BER-TLV as ISO/IEC 7816-4 (clause 6.3) uses it, read from a card's untrusted answer, and the
//! file control parameters (FCP, tag `62`) that SELECT returns.
//!
//! Every step checks what it reads against what is left: a length that runs past the data, an
//! indefinite or over-long length, a tag of more than four bytes and nesting deeper than
//! [`MAX_DEPTH`] are [`MALFORMED_DATA`], never a panic or a read past the slice.

use super::MALFORMED_DATA;
use crate::scard::Result;

/// How deep constructed objects may nest in data the library checks ([`well_formed`]).
pub(crate) const MAX_DEPTH: usize = 8;
/// The longest tag read: four bytes (a first byte and three more).
const MAX_TAG_BYTES: usize = 4;

/// One data object: its tag (the tag's bytes as a big-endian number, so `5F2D` is `0x5F2D`) and
/// its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
    constructed: bool,
}

impl Tlv<'_> {
    /// Whether the value is itself made of data objects (bit 6 of the tag's first byte).
    pub fn is_constructed(&self) -> bool {
        self.constructed
    }
}

/// The first `n` bytes and the rest, or [`MALFORMED_DATA`] when fewer are left.
fn take(data: &[u8], n: usize) -> Result<(&[u8], &[u8])> {
    match n <= data.len() {
        true => Ok(data.split_at(n)),
        false => Err(MALFORMED_DATA),
    }
}

/// The data objects of one level, in order. After the first malformed one it yields that error
/// and ends. `00` and `FF` bytes between objects are padding (ISO/IEC 7816-4 6.3).
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { rest: data }
    }

    fn read(&mut self) -> Result<Tlv<'a>> {
        let (&first, mut rest) = self.rest.split_first().ok_or(MALFORMED_DATA)?;
        let mut tag = u32::from(first);
        if first & 0x1F == 0x1F {
            // Subsequent tag bytes: bit 8 set on every one but the last.
            let mut bytes = 1;
            loop {
                let (&next, after) = rest.split_first().ok_or(MALFORMED_DATA)?;
                rest = after;
                bytes += 1;
                if bytes > MAX_TAG_BYTES {
                    return Err(MALFORMED_DATA);
                }
                tag = tag << 8 | u32::from(next);
                if next & 0x80 == 0 {
                    break;
                }
            }
        }
        let (&length_byte, after) = rest.split_first().ok_or(MALFORMED_DATA)?;
        rest = after;
        let length = match length_byte {
            0x00..=0x7F => usize::from(length_byte),
            0x81..=0x84 => {
                let (bytes, after) = take(rest, usize::from(length_byte & 0x0F))?;
                rest = after;
                let length = bytes.iter().fold(0u64, |length, &byte| length << 8 | u64::from(byte));
                usize::try_from(length).map_err(|_| MALFORMED_DATA)?
            }
            // 80 is the indefinite form, which ISO/IEC 7816-4 does not use; 85 and above are
            // longer than anything a card can send.
            _ => return Err(MALFORMED_DATA),
        };
        let (value, after) = take(rest, length)?;
        self.rest = after;
        Ok(Tlv { tag, value, constructed: first & 0x20 != 0 })
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Tlv<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.rest.iter().position(|&byte| byte != 0x00 && byte != 0xFF)?;
        self.rest = &self.rest[start..];
        let object = self.read();
        if object.is_err() {
            self.rest = &[];
        }
        Some(object)
    }
}

/// Checks that `data` is a sequence of well-formed data objects, constructed ones included, down
/// to [`MAX_DEPTH`] levels.
pub fn well_formed(data: &[u8]) -> Result<()> {
    fn check(data: &[u8], depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(MALFORMED_DATA);
        }
        for object in Reader::new(data) {
            let object = object?;
            if object.is_constructed() {
                check(object.value, depth + 1)?;
            }
        }
        Ok(())
    }
    check(data, 1)
}

/// The structure of a file, from its descriptor byte (ISO/IEC 7816-4 table 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// A dedicated file (a directory).
    Df,
    Transparent,
    LinearFixed,
    LinearVariable,
    Cyclic,
    /// A structure this library does not tell apart (the descriptor byte's low three bits).
    Other(u8),
}

/// The file control parameters the library uses (ISO/IEC 7816-4 table 10); every field is
/// `None` when the card left it out. Sizes are as the card states them: a caller bounds them
/// before relying on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fcp<'a> {
    /// `80`: the number of data bytes in the file, structure excluded.
    pub size: Option<u64>,
    /// `81`: the number of bytes in the file, structure included.
    pub total_size: Option<u64>,
    /// `82`, first byte: the file descriptor byte.
    pub descriptor: Option<u8>,
    /// `82`, second byte: the data coding byte.
    pub data_coding: Option<u8>,
    /// `82`, bytes 3 and 4: the maximum record size (one byte or two).
    pub record_length: Option<u16>,
    /// `82`, bytes 5 and 6: the number of records (one byte or two).
    pub record_count: Option<u16>,
    /// `83`: the file identifier.
    pub file_id: Option<u16>,
    /// `84`: the DF name (1 to 16 bytes).
    pub df_name: Option<&'a [u8]>,
    /// `88`: the short EF identifier (1 to 30); `None` also when `88` is empty (no SFI).
    pub short_id: Option<u8>,
    /// `8A`: the life cycle status byte.
    pub life_cycle: Option<u8>,
}

fn unsigned(value: &[u8], max_bytes: usize) -> Result<u64> {
    if value.is_empty() || value.len() > max_bytes {
        return Err(MALFORMED_DATA);
    }
    Ok(value.iter().fold(0u64, |number, &byte| number << 8 | u64::from(byte)))
}

impl<'a> Fcp<'a> {
    /// Parses the template SELECT returns: `62` (FCP), or `6F` (FCI) holding a `62` or the same
    /// fields directly. Anything but padding after the template, a malformed object anywhere in
    /// it, or a field of the wrong size is [`MALFORMED_DATA`]; unknown fields are skipped.
    pub fn parse(data: &'a [u8]) -> Result<Fcp<'a>> {
        well_formed(data)?;
        let mut top = Reader::new(data);
        let template = top.next().ok_or(MALFORMED_DATA)??;
        if top.next().is_some() {
            return Err(MALFORMED_DATA);
        }
        let fields = match template.tag {
            0x62 => template.value,
            0x6F => match Reader::new(template.value)
                .find(|object| matches!(object, Ok(tlv) if tlv.tag == 0x62))
            {
                Some(fcp) => fcp?.value,
                None => template.value,
            },
            _ => return Err(MALFORMED_DATA),
        };
        let mut fcp = Fcp::default();
        for field in Reader::new(fields) {
            let Tlv { tag, value, .. } = field?;
            match tag {
                0x80 => fcp.size = Some(unsigned(value, 8)?),
                0x81 => fcp.total_size = Some(unsigned(value, 8)?),
                0x82 => fcp.read_descriptor(value)?,
                0x83 => fcp.file_id = Some(u16::from_be_bytes(value.try_into().map_err(|_| MALFORMED_DATA)?)),
                0x84 if (1..=16).contains(&value.len()) => fcp.df_name = Some(value),
                0x84 => return Err(MALFORMED_DATA),
                0x88 => fcp.short_id = short_id(value)?,
                0x8A => fcp.life_cycle = Some(unsigned(value, 1)? as u8),
                _ => {}
            }
        }
        Ok(fcp)
    }

    fn read_descriptor(&mut self, value: &[u8]) -> Result<()> {
        let pair = |bytes: &[u8]| unsigned(bytes, 2).map(|n| n as u16);
        let (record_length, record_count) = match value.len() {
            1 | 2 => (None, None),
            3 => (Some(pair(&value[2..3])?), None),
            4 => (Some(pair(&value[2..4])?), None),
            5 | 6 => (Some(pair(&value[2..4])?), Some(pair(&value[4..])?)),
            _ => return Err(MALFORMED_DATA),
        };
        self.descriptor = Some(value[0]);
        self.data_coding = value.get(1).copied();
        self.record_length = record_length;
        self.record_count = record_count;
        Ok(())
    }

    /// The file's structure, from the descriptor byte.
    pub fn structure(&self) -> Option<Structure> {
        let descriptor = self.descriptor?;
        Some(match (descriptor & 0x38, descriptor & 0x07) {
            (0x38, _) => Structure::Df,
            (_, 1) => Structure::Transparent,
            (_, 2 | 3) => Structure::LinearFixed,
            (_, 4 | 5) => Structure::LinearVariable,
            (_, 6 | 7) => Structure::Cyclic,
            (_, other) => Structure::Other(other),
        })
    }
}

/// `88`: empty is "no SFI"; one byte holds the SFI in bits 8 to 4 (ISO/IEC 7816-4 table 10).
fn short_id(value: &[u8]) -> Result<Option<u8>> {
    match value {
        [] => Ok(None),
        [byte] if byte & 0x07 == 0 && (1..=30).contains(&(byte >> 3)) => Ok(Some(byte >> 3)),
        _ => Err(MALFORMED_DATA),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_lengths() {
        let data = [0x5F, 0x2D, 0x02, b'e', b'n', 0x9F, 0x81, 0x01, 0x81, 0x01, 0xAA];
        let objects: Vec<_> = Reader::new(&data).collect::<Result<_>>().unwrap();
        assert_eq!(objects[0].tag, 0x5F2D);
        assert_eq!(objects[0].value, b"en");
        assert_eq!(objects[1].tag, 0x9F8101);
        assert_eq!(objects[1].value, [0xAA]);
        // The longest tag taken: four bytes.
        let four = [0xDF, 0x81, 0x82, 0x03, 0x01, 0xAA];
        assert_eq!(
            Reader::new(&four).next(),
            Some(Ok(Tlv { tag: 0xDF81_8203, value: &[0xAA], constructed: false }))
        );
        let long = [&[0x53, 0x82, 0x01, 0x00][..], &[0x11; 256]].concat();
        assert_eq!(Reader::new(&long).next().unwrap().unwrap().value.len(), 256);
        let padded = [0x00, 0xFF, 0x80, 0x00, 0x00];
        assert_eq!(Reader::new(&padded).count(), 1);
    }

    #[test]
    fn lying_lengths_and_bad_forms_are_refused() {
        for bad in [
            &[0x53, 0x03, 0x01][..],
            &[0x53, 0x80, 0x01, 0x00, 0x00],
            &[0x53, 0x85, 0, 0, 0, 0, 1, 0],
            &[0x53, 0x84, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
            &[0x53, 0x82, 0x01],
            &[0x5F],
            &[0x5F, 0x81, 0x81, 0x81, 0x01, 0x00],
            &[0x53],
        ] {
            let mut reader = Reader::new(bad);
            assert_eq!(reader.next(), Some(Err(MALFORMED_DATA)), "{bad:02X?}");
            assert_eq!(reader.next(), None);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let mut nested = vec![0x80, 0x00];
        for _ in 0..MAX_DEPTH - 1 {
            nested = [&[0xA5, nested.len() as u8][..], &nested].concat();
        }
        assert_eq!(well_formed(&nested), Ok(()));
        let deeper = [&[0xA5, nested.len() as u8][..], &nested].concat();
        assert_eq!(well_formed(&deeper), Err(MALFORMED_DATA));
    }

    #[test]
    fn fcp_of_a_record_file_and_of_a_df() {
        let ef = [
            0x62, 0x17, 0x80, 0x02, 0x9C, 0x40, 0x82, 0x05, 0x02, 0x41, 0x00, 0x20, 0x0A, 0x83, 0x02, 0x2F,
            0x01, 0x88, 0x01, 0x08, 0x8A, 0x01, 0x05, 0xA5, 0x00,
        ];
        let fcp = Fcp::parse(&ef).unwrap();
        assert_eq!(fcp.size, Some(40_000));
        assert_eq!(fcp.structure(), Some(Structure::LinearFixed));
        assert_eq!((fcp.record_length, fcp.record_count), (Some(0x20), Some(10)));
        assert_eq!(fcp.file_id, Some(0x2F01));
        assert_eq!(fcp.short_id, Some(1));
        assert_eq!(fcp.life_cycle, Some(5));
        let with_structure = [0x62, 0x08, 0x80, 0x02, 0x01, 0x00, 0x81, 0x02, 0x01, 0x20];
        let fcp = Fcp::parse(&with_structure).unwrap();
        assert_eq!((fcp.size, fcp.total_size), (Some(256), Some(288)));
        // An empty 88: the file has no short identifier.
        let no_sfi = [0x62, 0x06, 0x83, 0x02, 0x2F, 0x02, 0x88, 0x00];
        assert_eq!(Fcp::parse(&no_sfi).map(|fcp| (fcp.file_id, fcp.short_id)), Ok((Some(0x2F02), None)));
        let df = [0x6F, 0x0C, 0x82, 0x01, 0x38, 0x83, 0x02, 0x3F, 0x00, 0x84, 0x03, 0xA0, 0x00, 0x01];
        let fcp = Fcp::parse(&df).unwrap();
        assert_eq!(fcp.structure(), Some(Structure::Df));
        assert_eq!(fcp.df_name, Some(&[0xA0, 0x00, 0x01][..]));
        assert_eq!(fcp.size, None);
    }

    #[test]
    fn malformed_fcps_are_refused() {
        for bad in [
            &[0x63, 0x00][..],
            &[0x62, 0x02, 0x83, 0x01],
            &[0x62, 0x03, 0x83, 0x01, 0x3F],
            &[0x62, 0x02, 0x80, 0x00],
            &[0x62, 0x0B, 0x80, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x62, 0x02, 0x81, 0x00],
            &[0x62, 0x0B, 0x81, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            &[0x62, 0x02, 0x82, 0x00],
            &[0x62, 0x09, 0x82, 0x07, 1, 2, 3, 4, 5, 6, 7],
            &[0x62, 0x00, 0x62, 0x00],
            &[0x62, 0x02, 0x84, 0x00],
            &[0x62, 0x03, 0x88, 0x01, 0x09],
            &[0x62, 0x03, 0x88, 0x01, 0xF8],
            &[],
        ] {
            assert_eq!(Fcp::parse(bad), Err(MALFORMED_DATA), "{bad:02X?}");
        }
        assert_eq!(Fcp::parse(&[0x62, 0x00, 0x00, 0xFF]), Ok(Fcp::default()));
    }
}

/// The lab card's hostile FCP answers, straight from its applet (no PC/SC needed).
#[cfg(all(test, target_os = "linux"))]
mod lab_answers {
    use super::*;
    use scardmanage_lab::iso::{self, Hostile, IsoOptions};

    #[test]
    fn the_lab_cards_lying_fcps_are_malformed_data() {
        let (_card, control) = iso::card(IsoOptions::default());
        let select =
            [&[0x00, 0xA4, 0x04, 0x04, iso::DF_NAME.len() as u8][..], iso::DF_NAME, &[0x00]].concat();
        let answer = control.transmit(&select);
        let (fcp, sw) = answer.split_at(answer.len() - 2);
        assert_eq!(sw, [0x90, 0x00]);
        assert_eq!(Fcp::parse(fcp).unwrap().structure(), Some(Structure::Df));
        for mode in [Hostile::FcpLengthLies, Hostile::FcpTruncated, Hostile::FcpLongLengthForm] {
            control.set_hostile(mode);
            let answer = control.transmit(&select);
            assert_eq!(Fcp::parse(&answer[..answer.len() - 2]), Err(MALFORMED_DATA), "{}", mode.name());
        }
    }
}
