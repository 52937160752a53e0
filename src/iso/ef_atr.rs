//! EF.ATR/INFO (ISO/IEC 7816-4 12.2.2: file 2F01 under the MF), read by file access objects when
//! the ATR does not announce extended length: a card may announce it there instead, with the
//! largest APDUs it takes (extended length information, `7F66`).
//!
//! The file is the card's word and is parsed as untrusted: anything malformed and the whole
//! file is ignored, so the card is taken at its ATR's word (short APDUs).

use super::tlv::Reader;

/// The file identifier of EF.ATR/INFO, under the MF.
pub(crate) const FILE_ID: u16 = 0x2F01;

/// The smallest APDU limits worth extended length: room for a short command's 255 data bytes
/// and a short answer's 256 with every header. A card naming less is not believed.
const MIN_APDU: usize = 4 + 3 + 256 + 2;

/// Extended length as EF.ATR announces it: the largest command and response APDUs the card
/// takes, header, length fields and status word included (`7F66`; 65 535 when the file neither
/// says nor promises to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extended {
    pub command_apdu: usize,
    pub response_apdu: usize,
}

/// What EF.ATR's content announces: `Some` when its card capabilities (`47`, third byte, bit
/// 0x40) say extended Lc and Le fields; `None` when they do not, or when anything in the file is
/// malformed (a data object that runs past the file, a `7F66` without its two INTEGERs of 1 to 4
/// bytes, limits below [`MIN_APDU`], or no `7F66` where the capabilities (bit 0x20) say the
/// file has one: it may lie past what was read, and 65 535 would be a guess). With
/// `atr_promises` (the ATR announced extended length and its information in EF.ATR), the file
/// need not repeat the card capabilities: its `7F66` alone is enough.
pub fn parse(content: &[u8], atr_promises: bool) -> Option<Extended> {
    let mut capabilities = if atr_promises { 0x60 } else { 0 };
    let mut limits = None;
    for object in Reader::new(content) {
        let object = object.ok()?;
        match object.tag {
            0x47 => capabilities |= *object.value.get(2)?,
            0x7F66 => limits = Some(extended_length_information(object.value)?),
            _ => {}
        }
    }
    match (capabilities & 0x40 != 0, capabilities & 0x20 != 0, limits) {
        (false, _, _) | (true, true, None) => None,
        (true, _, Some(limits)) => Some(limits),
        (true, false, None) => Some(Extended { command_apdu: 0xFFFF, response_apdu: 0xFFFF }),
    }
}

/// The two INTEGERs (`02`) of `7F66`: the largest command APDU, then the largest response APDU.
fn extended_length_information(value: &[u8]) -> Option<Extended> {
    let mut integers = Reader::new(value).map(|object| {
        let object = object.ok().filter(|object| object.tag == 0x02)?;
        let bytes = object.value;
        if bytes.is_empty() || bytes.len() > 4 {
            return None;
        }
        let size = bytes.iter().fold(0usize, |size, &byte| size << 8 | usize::from(byte));
        // Beyond 16 bits no frame carries it anyway: taken as the most one frame holds.
        (size >= MIN_APDU).then_some(size.min(0xFFFF))
    });
    let command_apdu = integers.next()??;
    let response_apdu = integers.next()??;
    Some(Extended { command_apdu, response_apdu })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_limits_are_read() {
        let lab = [0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 8, 2, 2, 0x10, 0, 2, 2, 0x10, 0];
        assert_eq!(parse(&lab, false), Some(Extended { command_apdu: 4096, response_apdu: 4096 }));
        let no_information = [0x47, 3, 0xB6, 1, 0xC0];
        assert_eq!(
            parse(&no_information, false),
            Some(Extended { command_apdu: 0xFFFF, response_apdu: 0xFFFF })
        );
        assert_eq!(parse(&[0x47, 3, 0xB6, 1, 0x80], false), None, "no extended Lc/Le");
        assert_eq!(parse(&[], false), None);
        let big = [0x47, 3, 0, 0, 0x40, 0x7F, 0x66, 10, 2, 4, 1, 0, 0, 0, 2, 2, 0x01, 0x09];
        assert_eq!(parse(&big, false), Some(Extended { command_apdu: 0xFFFF, response_apdu: 0x109 }));
    }

    #[test]
    fn limits_below_a_full_short_exchange_are_not_believed() {
        // 265 bytes: a short command with 255 data bytes and Le, or 256 data bytes and SW.
        let limits = |command: u16| {
            let [high, low] = command.to_be_bytes();
            [0x47, 3, 0, 0, 0x40, 0x7F, 0x66, 8, 2, 2, high, low, 2, 2, 0x01, 0x09]
        };
        assert_eq!(parse(&limits(265), false), Some(Extended { command_apdu: 265, response_apdu: 265 }));
        assert_eq!(parse(&limits(264), false), None);
    }

    #[test]
    fn after_an_atr_that_promises_it_extended_length_information_alone_is_enough() {
        let alone = [0x7F, 0x66, 8, 2, 2, 0x10, 0, 2, 2, 0x10, 0];
        assert_eq!(parse(&alone, true), Some(Extended { command_apdu: 4096, response_apdu: 4096 }));
        assert_eq!(parse(&alone, false), None, "a silent ATR: the file must announce extended length");
        assert_eq!(parse(&[], true), None, "the promised 7F66 missing");
    }

    #[test]
    fn anything_malformed_is_ignored() {
        for malformed in [
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 0x84, 0xFF, 0xFF, 0xFF, 0xFF][..],
            &[0x47, 2, 0xB6, 0x40],
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 4, 2, 2, 0x10, 0],
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 6, 2, 0, 2, 2, 0x10, 0],
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 8, 2, 2, 0, 16, 2, 2, 0x10, 0],
            // An INTEGER of five bytes (4096 with a leading zero byte too many).
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F, 0x66, 12, 2, 3, 0, 0x10, 0, 2, 5, 0, 0, 0, 0x10, 0],
            &[0x47, 3, 0xB6, 1, 0xE0, 0x7F],
            // 0x20 promises a 7F66 that is not there (past the bytes read, say).
            &[0x47, 3, 0xB6, 1, 0xE0],
            &[0x47, 3, 0xB6, 1, 0xE0, 0x5F, 0x52, 2, 0x90, 0x00],
        ] {
            assert_eq!(parse(malformed, false), None, "{malformed:02X?}");
            assert_eq!(parse(malformed, true), None, "{malformed:02X?}");
        }
    }
}
