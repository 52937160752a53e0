//! How a transparent file's bytes are cut into READ BINARY and UPDATE BINARY commands.
//!
//! The even instructions (B0, D6) carry the offset in P1-P2: 15 bits, or with a short EF
//! identifier in P1 only 8. Past that the odd instructions (B1, D7) carry it in an offset data
//! object (tag 54) and the file's bytes in a discretionary data object (tag 53), ISO 7816-4
//! 11.3.3 and 11.3.5. A short EF identifier is named in the first command of a call only: that
//! command makes the file current, and the following ones address the current EF.

/// The largest offset the even instructions carry without a short EF identifier.
const EVEN_MAX_OFFSET: u64 = 0x7FFF;
/// ... and with one.
const EVEN_MAX_OFFSET_SHORT_ID: u64 = 0xFF;

/// One READ BINARY or UPDATE BINARY command, less the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// What the data field holds before the file's bytes: the offset data object, and for
    /// UPDATE BINARY the discretionary data object's tag and length. Empty for the even
    /// instructions.
    pub prefix: Vec<u8>,
    /// How many of the file's bytes the command reads or writes (at most).
    pub chunk: usize,
    /// For a read, the response length asked (Le): `chunk`, plus the odd instruction's
    /// wrapping.
    pub le: usize,
}

/// The tag and BER length of a data object holding `len` bytes.
pub fn object_header(tag: u8, len: usize) -> Vec<u8> {
    let mut header = vec![tag];
    match len {
        0..=0x7F => header.push(len as u8),
        0x80..=0xFF => header.extend([0x81, len as u8]),
        0x100..=0xFFFF => header.push(0x82),
        _ => header.push(0x83),
    }
    if len > 0xFF {
        let bytes = (len as u32).to_be_bytes();
        let skip = if len > 0xFFFF { 1 } else { 2 };
        header.extend_from_slice(&bytes[skip..]);
    }
    header
}

/// The offset data object (54) with the offset in as few bytes as it takes, at least one.
fn offset_object(offset: u64) -> Vec<u8> {
    let bytes = offset.to_be_bytes();
    let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len() - 1);
    let mut object = vec![0x54, (bytes.len() - first) as u8];
    object.extend_from_slice(&bytes[first..]);
    object
}

/// The largest chunk whose wrapping in a 53 data object plus `overhead` bytes fits in `room`.
fn wrapped_chunk(want: usize, room: usize, overhead: usize) -> usize {
    let mut chunk = want.min(room.saturating_sub(overhead + 2));
    while chunk > 0 && overhead + object_header(0x53, chunk).len() + chunk > room {
        chunk -= 1;
    }
    chunk
}

/// P1-P2 of an even instruction at `offset` (with the short EF identifier when given), or
/// `None` when the offset needs the odd instruction.
fn even_parameters(offset: u64, short_id: Option<u8>) -> Option<(u8, u8)> {
    match short_id {
        Some(sfi) if offset <= EVEN_MAX_OFFSET_SHORT_ID => Some((0x80 | sfi, offset as u8)),
        None if offset <= EVEN_MAX_OFFSET => Some(((offset >> 8) as u8, offset as u8)),
        _ => None,
    }
}

/// P1-P2 of an odd instruction: the short EF identifier in bits 5-1, or 0000 for the current
/// EF.
fn odd_parameters(short_id: Option<u8>) -> (u8, u8) {
    (0, short_id.unwrap_or(0))
}

/// The next READ BINARY for up to `want` bytes at `offset`, answered in at most
/// `max_response` bytes (the status word not counted). `want` and `max_response` are at least
/// one and sixteen.
pub fn read_step(offset: u64, want: usize, short_id: Option<u8>, max_response: usize) -> Step {
    if let Some((p1, p2)) = even_parameters(offset, short_id) {
        let chunk = want.min(max_response);
        return Step { ins: 0xB0, p1, p2, prefix: Vec::new(), chunk, le: chunk };
    }
    let (p1, p2) = odd_parameters(short_id);
    let chunk = wrapped_chunk(want, max_response, 0);
    let le = object_header(0x53, chunk).len() + chunk;
    Step { ins: 0xB1, p1, p2, prefix: offset_object(offset), chunk, le }
}

/// The next UPDATE BINARY for up to `remaining` bytes at `offset`, with at most `max_command`
/// data bytes in the command. `remaining` and `max_command` are at least one and sixteen.
pub fn write_step(offset: u64, remaining: usize, short_id: Option<u8>, max_command: usize) -> Step {
    if let Some((p1, p2)) = even_parameters(offset, short_id) {
        let chunk = remaining.min(max_command);
        return Step { ins: 0xD6, p1, p2, prefix: Vec::new(), chunk, le: 0 };
    }
    let (p1, p2) = odd_parameters(short_id);
    let mut prefix = offset_object(offset);
    let chunk = wrapped_chunk(remaining, max_command, prefix.len());
    prefix.extend(object_header(0x53, chunk));
    Step { ins: 0xD7, p1, p2, prefix, chunk, le: 0 }
}

/// The file's bytes in an odd READ BINARY's answer: one discretionary data object (53) taking
/// up the whole answer, of at most `asked` bytes; an empty answer is no bytes. `None` for
/// anything else (a card that answers more than asked, or malformed wrapping).
pub fn unwrap_odd_answer(answer: &[u8], asked: usize) -> Option<&[u8]> {
    let (&tag, rest) = match answer.split_first() {
        None => return Some(answer),
        Some(split) => split,
    };
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7F => (usize::from(first), rest),
        0x81..=0x83 => {
            let count = usize::from(first - 0x80);
            let bytes = rest.get(..count)?;
            (bytes.iter().fold(0, |len, &byte| len << 8 | usize::from(byte)), &rest[count..])
        }
        _ => return None,
    };
    (tag == 0x53 && rest.len() == len && len <= asked).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reads_take_256_bytes_per_even_command() {
        let step = read_step(0, 40_000, None, 256);
        assert_eq!((step.ins, step.p1, step.p2, step.chunk, step.le), (0xB0, 0, 0, 256, 256));
        let step = read_step(0x7FFF, 10, None, 256);
        assert_eq!((step.ins, step.p1, step.p2, step.chunk), (0xB0, 0x7F, 0xFF, 10));
        let step = read_step(0x1234, 40_000, None, 65_536);
        assert_eq!((step.p1, step.p2, step.chunk), (0x12, 0x34, 40_000));
    }

    #[test]
    fn offsets_past_32767_use_the_odd_instruction() {
        let step = read_step(0x8000, 40_000, None, 256);
        assert_eq!((step.ins, step.p1, step.p2), (0xB1, 0, 0));
        assert_eq!(step.prefix, [0x54, 2, 0x80, 0x00]);
        // 53 81 FD and 253 bytes: 256.
        assert_eq!((step.chunk, step.le), (253, 256));
        let step = read_step(0x0001_0000, 7, None, 256);
        assert_eq!(step.prefix, [0x54, 3, 1, 0, 0]);
        assert_eq!((step.chunk, step.le), (7, 9));
        let step = read_step(40_000, 65_536, None, 65_536);
        assert_eq!((step.chunk, step.le), (65_532, 65_536), "53 82 FF FC: four header bytes");
        let step = read_step(u32::MAX as u64, 1, None, 256);
        assert_eq!(step.prefix, [0x54, 4, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn a_short_identifier_goes_in_p1_up_to_offset_255_then_in_p2_of_the_odd_instruction() {
        let step = read_step(255, 10, Some(3), 256);
        assert_eq!((step.ins, step.p1, step.p2), (0xB0, 0x83, 0xFF));
        let step = read_step(256, 10, Some(3), 256);
        assert_eq!((step.ins, step.p1, step.p2), (0xB1, 0, 3));
        assert_eq!(step.prefix, [0x54, 2, 1, 0]);
        let step = write_step(0, 10, Some(30), 255);
        assert_eq!((step.ins, step.p1, step.p2, step.chunk), (0xD6, 0x9E, 0, 10));
    }

    #[test]
    fn writes_fit_the_command() {
        let step = write_step(100, 40_000, None, 255);
        assert_eq!((step.ins, step.p1, step.p2, step.chunk), (0xD6, 0, 100, 255));
        assert!(step.prefix.is_empty());
        let step = write_step(0x8000, 40_000, None, 255);
        assert_eq!(step.ins, 0xD7);
        // 54 02 80 00, 53 81 F8, then 248 bytes: 255.
        assert_eq!(step.prefix, [0x54, 2, 0x80, 0, 0x53, 0x81, 248]);
        assert_eq!(step.prefix.len() + step.chunk, 255);
        let step = write_step(0x8000, 5, None, 255);
        assert_eq!(step.prefix, [0x54, 2, 0x80, 0, 0x53, 5]);
        let step = write_step(0x8000, 65_535, None, 65_535);
        assert_eq!(step.prefix.len() + step.chunk, 65_535);
        assert_eq!(&step.prefix[4..], [0x53, 0x82, 0xFF, 0xF7]);
    }

    #[test]
    fn object_lengths_take_the_shortest_ber_form_at_every_boundary() {
        // One byte up to 127, 81 up to 255, 82 up to 65,535, 83 past it: a card reads the
        // length exactly as written, so a byte too many shifts the whole data field.
        assert_eq!(object_header(0x53, 0x7F), [0x53, 0x7F]);
        assert_eq!(object_header(0x53, 0x80), [0x53, 0x81, 0x80]);
        assert_eq!(object_header(0x53, 0xFF), [0x53, 0x81, 0xFF]);
        assert_eq!(object_header(0x53, 0x100), [0x53, 0x82, 0x01, 0x00]);
        assert_eq!(object_header(0x62, 0xFFFF), [0x62, 0x82, 0xFF, 0xFF]);
        assert_eq!(object_header(0x62, 0x1_0000), [0x62, 0x83, 0x01, 0x00, 0x00]);
        // 255 bytes read past offset 32767 on an extended card: 53 81 FF and the bytes.
        let step = read_step(0x8000, 255, None, 65_536);
        assert_eq!((step.chunk, step.le), (255, 258));
    }

    #[test]
    fn odd_answers_are_checked() {
        assert_eq!(unwrap_odd_answer(&[], 10), Some(&[][..]));
        assert_eq!(unwrap_odd_answer(&[0x53, 2, 7, 8], 10), Some(&[7, 8][..]));
        assert_eq!(unwrap_odd_answer(&[0x53, 2, 7, 8], 1), None, "more than asked");
        assert_eq!(unwrap_odd_answer(&[0x53, 3, 7, 8], 10), None, "length past the end");
        assert_eq!(unwrap_odd_answer(&[0x53, 1, 7, 8], 10), None, "bytes after the object");
        assert_eq!(unwrap_odd_answer(&[0x54, 1, 7], 10), None, "another tag");
        assert_eq!(unwrap_odd_answer(&[0x53], 10), None);
        assert_eq!(unwrap_odd_answer(&[0x53, 0x84, 0, 0, 0, 1, 9], 10), None);
        assert_eq!(unwrap_odd_answer(&[0x53, 0x82, 0], 10), None);
        assert_eq!(unwrap_odd_answer(&[0x53, 0x81, 1, 9], 10), Some(&[9][..]));
        let mut big = vec![0x53, 0x82, 0x01, 0x00];
        big.extend([0xAB; 256]);
        assert_eq!(unwrap_odd_answer(&big, 256).map(<[u8]>::len), Some(256));
    }

    #[test]
    fn every_plan_fits_its_bounds() {
        for offset in [0, 1, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x1_0000, u32::MAX as u64] {
            for room in [16, 127, 128, 255, 256, 257, 65_535, 65_536] {
                for want in [1, 2, 100, 253, 254, 255, 256, 40_000, 70_000] {
                    for short_id in [None, Some(1)] {
                        let read = read_step(offset, want, short_id, room);
                        assert!(read.chunk >= 1 && read.chunk <= want, "{offset} {room} {want}");
                        assert!(read.le <= room);
                        let write = write_step(offset, want, short_id, room);
                        assert!(write.chunk >= 1 && write.chunk <= want);
                        assert!(write.prefix.len() + write.chunk <= room);
                    }
                }
            }
        }
    }
}
