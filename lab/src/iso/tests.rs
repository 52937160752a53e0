//! The applet's logic, in process: no reader, no pcscd.

use super::*;

fn iso(options: IsoOptions) -> IsoControl {
    IsoControl::new(options)
}

/// Bytes from hex digits (spaces ignored).
fn x(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

/// Splits an answer into data and status word.
fn split(answer: &[u8]) -> (&[u8], u16) {
    let (data, status) = answer.split_at(answer.len() - 2);
    (data, u16::from_be_bytes([status[0], status[1]]))
}

fn sw_of(card: &IsoControl, apdu: &str) -> u16 {
    split(&card.transmit(&x(apdu))).1
}

fn ok_data(card: &IsoControl, apdu: &[u8]) -> Vec<u8> {
    let answer = card.transmit(apdu);
    let (data, status) = split(&answer);
    assert_eq!(status, 0x9000, "{apdu:02X?} -> {answer:02X?}");
    data.to_vec()
}

/// A case-2 or case-4 APDU with `data` and an Le of `ne` (extended when needed).
fn apdu(header: [u8; 4], data: &[u8], ne: Option<usize>) -> Vec<u8> {
    let extended = data.len() > 255 || ne.is_some_and(|n| n > 256);
    let mut out = header.to_vec();
    if !data.is_empty() {
        if extended {
            out.push(0);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        } else {
            out.push(data.len() as u8);
        }
        out.extend_from_slice(data);
    }
    if let Some(ne) = ne {
        if extended {
            if data.is_empty() {
                out.push(0);
            }
            out.extend_from_slice(&((ne & 0xFFFF) as u16).to_be_bytes());
        } else {
            out.push((ne & 0xFF) as u8);
        }
    }
    out
}

fn select_df(card: &IsoControl) {
    assert_eq!(split(&card.transmit(&apdu([0, 0xA4, 0x04, 0x0C], DF_NAME, None))).1, 0x9000);
}

#[test]
fn atr_announces_protocol_and_capabilities() {
    let t1 = atr(IsoOptions::default());
    assert_eq!(t1[..3], [0x3B, 0x87, 0x01]);
    assert_eq!(t1[1..].iter().fold(0, |a, b| a ^ b), 0, "TCK");
    assert_eq!(t1[3..10], [0x80, 0x31, 0x98, 0x73, 0xB6, 0x01, 0xE0]);
    assert_eq!(atr(IsoOptions::SHORT)[9], 0x80);
    let plain = atr(IsoOptions { extended: false, chaining: false, ..IsoOptions::default() });
    assert_eq!(plain[9], 0x00);
    let t0 = atr(IsoOptions::T0);
    assert_eq!(t0, [0x3B, 0x07, 0x80, 0x31, 0x98, 0x73, 0xB6, 0x01, 0x80]);
    // t0 overrides extended.
    assert_eq!(atr(IsoOptions { extended: true, ..IsoOptions::T0 }), t0);
}

#[test]
fn ef_atr_holds_capabilities_and_extended_length_information() {
    let card = iso(IsoOptions::default());
    assert_eq!(card.transparent(&[EF_ATR]).unwrap(), x("47 03 B6 01 E0 7F66 08 0202FFFF 0202FFFF"));
    assert_eq!(ok_data(&card, &x("00 A4 00 0C 02 2F01")), b"");
    assert_eq!(ok_data(&card, &x("00 B0 00 00 00")), card.transparent(&[EF_ATR]).unwrap());
    assert_eq!(iso(IsoOptions::T0).transparent(&[EF_ATR]).unwrap(), x("47 03 B6 01 80"));
}

#[test]
fn select_every_way() {
    let card = iso(IsoOptions::default());
    // By DF name, FCP.
    let fcp = ok_data(&card, &apdu([0, 0xA4, 0x04, 0x04], DF_NAME, Some(256)));
    assert_eq!(fcp, x("62 13 8201 38 8302 5000 8407 F053434D49534F 8A01 05"));
    // EF under the current DF, FCP.
    let fcp = ok_data(&card, &x("00 A4 02 04 02 5002 00"));
    assert_eq!(fcp, x("62 11 8201 01 8302 5002 8002 9C40 8801 10 8A01 05"));
    // FCI and FMD templates, no data.
    assert_eq!(ok_data(&card, &x("00 A4 02 00 02 5001 00"))[0], 0x6F);
    assert_eq!(ok_data(&card, &x("00 A4 02 08 02 5001 00")), x("64 00"));
    assert_eq!(ok_data(&card, &x("00 A4 02 0C 02 5001")), b"");
    // Child DF, then parent, then MF by id and by empty data.
    assert_eq!(ok_data(&card, &x("00 A4 01 0C 02 5100")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 02 0C 02 5101")), b"");
    assert_eq!(ok_data(&card, &x("00 B0 00 00 00")), SUB_CONTENT);
    assert_eq!(ok_data(&card, &x("00 A4 03 0C")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 03 0C")), b"", "from 5000 to the MF");
    assert_eq!(sw_of(&card, "00 A4 03 0C"), 0x6A82, "the MF has no parent");
    assert_eq!(ok_data(&card, &x("00 A4 00 0C 02 3F00")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 00 0C")), b"");
    // By id from the MF: a child; from a DF: its parent's other children.
    assert_eq!(ok_data(&card, &x("00 A4 00 0C 02 5000")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 00 0C 02 5100")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 00 0C 02 5001")), b"", "a sibling of the current DF");
    // Paths: from the MF (with or without 3F00) and from the current DF.
    assert_eq!(ok_data(&card, &x("00 A4 08 0C 06 5000 5100 5101")), b"");
    assert_eq!(ok_data(&card, &x("00 A4 08 0C 06 3F00 5000 5001")), b"");
    assert_eq!(ok_data(&card, &x("00 B0 00 00 00")), SMALL_CONTENT);
    assert_eq!(ok_data(&card, &x("00 A4 09 0C 04 5100 5101")), b"");
    // Failures.
    assert_eq!(sw_of(&card, "00 A4 08 0C 04 5000 5999"), 0x6A82);
    assert_eq!(sw_of(&card, "00 A4 08 0C 03 5000 50"), 0x6A87);
    assert_eq!(sw_of(&card, "00 A4 05 0C 02 5000"), 0x6A86);
    assert_eq!(sw_of(&card, "00 A4 04 1C 02 F053"), 0x6A86);
    assert_eq!(
        split(&card.transmit(&apdu([0, 0xA4, 0x04, 0x02], DF_NAME, None))).1,
        0x6A82,
        "no next occurrence"
    );
    assert_eq!(sw_of(&card, "00 A4 04 0C 02 F053"), 0x6A82, "no partial names");
    assert_eq!(sw_of(&card, "00 A4 01 0C 02 5001"), 0x6A82, "P1 01 selects DFs only");
    assert_eq!(sw_of(&card, "00 A4 00 0C 03 3F0000"), 0x6A87);
}

#[test]
fn read_binary_short_odd_sfi_and_end_of_file() {
    let card = iso(IsoOptions::default());
    assert_eq!(sw_of(&card, "00 B0 00 00 00"), 0x6986, "no current EF");
    select_df(&card);
    assert_eq!(ok_data(&card, &x("00 B0 81 00 00")), SMALL_CONTENT, "by SFI");
    assert_eq!(ok_data(&card, &x("00 B0 00 0C 04")), &SMALL_CONTENT[12..16], "current EF, offset");
    // 6282: an explicit Le past the end; none for Le 00.
    let answer = card.transmit(&x("00 B0 00 20 10"));
    assert_eq!(split(&answer), (&SMALL_CONTENT[32..], 0x6282));
    assert_eq!(ok_data(&card, &x("00 B0 00 20 00")), &SMALL_CONTENT[32..]);
    assert_eq!(sw_of(&card, &format!("00 B0 00 {:02X} 01", SMALL_CONTENT.len())), 0x6B00);
    assert_eq!(sw_of(&card, "00 B0 00 00"), 0x6700, "no Le");
    // The big EF: short reads at both ends, the odd form past 32 767, extended reads.
    let big = big_content();
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00")), &big[..256]);
    assert_eq!(ok_data(&card, &x("00 B0 7F 00 00")), &big[0x7F00..0x8000]);
    assert_eq!(ok_data(&card, &x("00 B0 80 10 04")), &big[0x10..0x14], "SFI 0: the current EF");
    let read_odd = |offset: usize, ne: usize| {
        let offset = (offset as u32).to_be_bytes();
        card.transmit(&apdu([0, 0xB1, 0, 0], &[&[0x54, 3][..], &offset[1..]].concat(), Some(ne)))
    };
    let answer = read_odd(39_000, 256);
    let (data, status) = split(&answer);
    assert_eq!(status, 0x9000);
    assert_eq!(data[..3], [0x53, 0x81, 253]);
    assert_eq!(&data[3..], &big[39_000..39_253]);
    let answer = read_odd(39_900, 200);
    assert_eq!(split(&answer), (&[&[0x53, 100][..], &big[39_900..]].concat()[..], 0x6282));
    assert_eq!(split(&read_odd(39_900, 256)).1, 0x9000, "Le 00: all there is, no warning");
    let answer = read_odd(0, 65_536);
    assert_eq!(split(&answer).0, [&[0x53, 0x82, 0x9C, 0x40][..], &big].concat());
    assert_eq!(split(&read_odd(40_000, 16)).1, 0x6B00);
    // B1 by SFI and by file id.
    assert_eq!(ok_data(&card, &x("00 B1 00 01 03 540100 00"))[2..], *SMALL_CONTENT);
    assert_eq!(ok_data(&card, &x("00 B1 50 01 03 540101 00"))[2..], SMALL_CONTENT[1..]);
    assert_eq!(sw_of(&card, "00 B1 00 00 02 5300 00"), 0x6A80, "no offset object");
    // An extended Le reads the whole big EF in one command.
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00 00 00")), big);
}

#[test]
fn update_binary_even_and_odd_forms_and_refusals() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 + 3) as u8).collect();
    for (at, chunk) in data.chunks(255).enumerate().map(|(i, c)| (i * 255, c)) {
        let answer = if at <= 0x7FFF {
            let [hi, lo] = (at as u16).to_be_bytes();
            card.transmit(&apdu([0, 0xD6, if at == 0 { 0x82 } else { hi }, lo], chunk, None))
        } else {
            let offset = (at as u32).to_be_bytes();
            let body = [&[0x54, 3][..], &offset[1..], &[0x53, 0x81, chunk.len() as u8], chunk].concat();
            card.transmit(&apdu([0, 0xD7, 0, 0], &body, None))
        };
        assert_eq!(answer, [0x90, 0], "at {at}");
    }
    assert_eq!(card.transparent(&[DF_ID, EF_BIG]).unwrap(), data);
    // One extended command writes everything again.
    let body = [&[0x54, 1, 0][..], &tlv_of(0x53, &big_content())].concat();
    assert_eq!(card.transmit(&apdu([0, 0xD7, 0x50, 0x02], &body, None)), [0x90, 0]);
    assert_eq!(card.transparent(&[DF_ID, EF_BIG]).unwrap(), big_content());
    assert_eq!(split(&card.transmit(&apdu([0, 0xD6, 0x81, 0x40], &[0; 2], None))).1, 0x6B00);
    let offset = (39_999u32).to_be_bytes();
    let body = [&[0x54, 3][..], &offset[1..], &[0x53, 2, 1, 2]].concat();
    assert_eq!(split(&card.transmit(&apdu([0, 0xD7, 0, SFI_BIG], &body, None))).1, 0x6A84);
    assert_eq!(sw_of(&card, "00 D7 00 00 03 540100"), 0x6A80, "no data object");
    assert_eq!(sw_of(&card, "00 D6 85 00 01 00"), 0x6985, "read-only");
    assert_eq!(ok_data(&card, &x("00 B0 00 00 00")), READ_ONLY_CONTENT);
    assert_eq!(sw_of(&card, "00 D6 83 00 01 00"), 0x6981, "a record EF");
}

fn tlv_of(tag: u16, value: &[u8]) -> Vec<u8> {
    apdu::tlv(tag, value)
}

#[test]
fn records_read_update_append() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    assert_eq!(ok_data(&card, &x("00 B2 02 1C 00")), initial_record(2));
    assert_eq!(sw_of(&card, "00 B2 04 1C 00"), 0x6A83);
    assert_eq!(sw_of(&card, "00 B2 00 1C 00"), 0x6A83);
    assert_eq!(sw_of(&card, "00 B2 01 1C 08"), 0x6C10, "Le shorter than the record");
    assert_eq!(sw_of(&card, "00 B2 01 18 00"), 0x6A86);
    assert_eq!(sw_of(&card, "00 B0 83 00 00"), 0x6981, "READ BINARY of a record EF");
    let record = [0xA5; RECORD_LEN];
    assert_eq!(card.transmit(&apdu([0, 0xDC, 1, 0x04], &record, None)), [0x90, 0], "current EF");
    assert_eq!(ok_data(&card, &x("00 B2 01 04 00")), record);
    assert_eq!(split(&card.transmit(&apdu([0, 0xDC, 1, 0x1C], &record[1..], None))).1, 0x6700);
    for n in RECORD_COUNT..RECORD_CAPACITY {
        assert_eq!(card.transmit(&apdu([0, 0xE2, 0, 0x18], &[n as u8; RECORD_LEN], None)), [0x90, 0]);
    }
    assert_eq!(split(&card.transmit(&apdu([0, 0xE2, 0, 0x18], &record, None))).1, 0x6A84);
    assert_eq!(ok_data(&card, &x("00 B2 08 1C 00")), [7; RECORD_LEN]);
    let fcp = ok_data(&card, &x("00 A4 02 04 02 5003 00"));
    assert_eq!(fcp[2..9], x("82 05 02 21 0010 08"));
}

#[test]
fn create_delete_deactivate_activate() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    let create = |fcp: &str| card.transmit(&apdu([0, 0xE0, 0, 0], &tlv_of(0x62, &x(fcp)), None));
    assert_eq!(create("8201 01 8302 5201 8002 1000 8801 30"), [0x90, 0]);
    assert_eq!(ok_data(&card, &x("00 B0 00 00 04")), [0; 4], "created and selected");
    assert_eq!(ok_data(&card, &x("00 B0 86 00 04")), [0; 4], "SFI 6");
    assert_eq!(split(&create("8201 01 8302 5201")).1, 0x6A89, "id exists");
    assert_eq!(split(&create("8201 01 8302 5202 8801 08")).1, 0x6A89, "SFI exists");
    assert_eq!(split(&create("8201 01 8302 5203 8003 020000")).1, 0x6A84, "past the card's memory");
    assert_eq!(split(&create("8206 02 21 FFFF FFFF 8302 5203")).1, 0x6A84, "65 535 records of 65 535 bytes");
    assert_eq!(split(&create("8201 38 8302 5300 8407 F053434D49534F")).1, 0x6A8A, "name exists");
    assert_eq!(split(&create("8302 5300")).1, 0x6A80, "no descriptor");
    assert_eq!(split(&card.transmit(&apdu([0, 0xE0, 0, 0], &x("62 05 8201"), None))).1, 0x6A80);
    assert_eq!(create("8205 02 21 0004 05 8302 5204"), [0x90, 0], "a record EF of 5 records");
    assert_eq!(card.transmit(&apdu([0, 0xE2, 0, 0], &[1, 2, 3, 4], None)), [0x90, 0]);
    assert_eq!(ok_data(&card, &x("00 B2 01 04 00")), [1, 2, 3, 4]);
    assert_eq!(create("8201 38 8302 5300 8403 A1A2A3"), [0x90, 0], "a DF, now current");
    assert_eq!(create("8201 01 8302 5301 8001 08"), [0x90, 0]);
    assert_eq!(ok_data(&card, &x("00 A4 04 0C 03 A1A2A3")), b"");
    // Deactivate and activate.
    assert_eq!(ok_data(&card, &x("00 04 00 00 02 5301")), b"");
    let answer = card.transmit(&x("00 A4 02 04 02 5301 00"));
    let (fcp, status) = split(&answer);
    assert_eq!((fcp.last(), status), (Some(&0x04), 0x6283));
    assert_eq!(sw_of(&card, "00 B0 00 00 00"), 0x6985);
    assert_eq!(sw_of(&card, "00 D6 00 00 01 00"), 0x6985);
    assert_eq!(ok_data(&card, &x("00 44 00 00")), b"", "the current EF");
    assert_eq!(ok_data(&card, &x("00 B0 00 00 00")), [0; 8]);
    // Delete the current DF from inside it: the current DF becomes its parent.
    assert_eq!(ok_data(&card, &x("00 E4 08 00 04 5000 5300")), b"");
    assert_eq!(sw_of(&card, "00 A4 02 0C 02 5301"), 0x6A82);
    assert_eq!(ok_data(&card, &x("00 A4 02 0C 02 5001")), b"", "back in 5000");
    assert_eq!(ok_data(&card, &x("00 E4 00 00")), b"", "the current EF");
    assert_eq!(sw_of(&card, "00 A4 02 0C 02 5001"), 0x6A82);
    assert_eq!(sw_of(&card, "00 E4 00 00 02 3F00"), 0x6985);
    card.reset();
    assert_eq!(card.transparent(&[DF_ID, EF_SMALL]).unwrap(), SMALL_CONTENT);
    assert_eq!(card.transparent(&[DF_ID, 0x5201]), None);
}

#[test]
fn pin_tries_blocking_puk_and_change() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    let verify = |code: &[u8]| split(&card.transmit(&apdu([0, 0x20, 0, PIN_REF], code, None))).1;
    assert_eq!(sw_of(&card, "00 B0 84 00 00"), 0x6982);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C3);
    assert_eq!(verify(b"9999"), 0x63C2);
    assert_eq!(verify(PIN), 0x9000);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x9000);
    assert_eq!(ok_data(&card, &x("00 B0 84 00 00")), SECRET_CONTENT);
    assert_eq!(card.transmit(&apdu([0, 0xD6, 0, 0], b"p", None)), [0x90, 0]);
    assert_eq!(sw_of(&card, "00 20 FF 81"), 0x9000, "reset the security status");
    assert_eq!(sw_of(&card, "00 B0 84 00 00"), 0x6982);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C3, "counter back to 3 after the right code");
    for left in (0..3).rev() {
        assert_eq!(verify(b"0000"), 0x63C0 | left);
    }
    assert_eq!(verify(PIN), 0x6983);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x6983);
    assert_eq!(split(&card.transmit(&apdu([0, 0x24, 0, PIN_REF], b"12345678", None))).1, 0x6983);
    // PUK: wrong, then right with a new PIN.
    assert_eq!(
        split(&card.transmit(&apdu([0, 0x2C, 0, PIN_REF], b"00000000", None))).1,
        0x6700,
        "no new PIN"
    );
    assert_eq!(split(&card.transmit(&apdu([0, 0x2C, 0, PIN_REF], b"876543215678", None))).1, 0x63C4);
    assert_eq!(card.transmit(&apdu([0, 0x2C, 0, PIN_REF], &[PUK, b"5678"].concat(), None)), [0x90, 0]);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C3);
    assert_eq!(verify(PIN), 0x63C2, "the old PIN is gone");
    assert_eq!(verify(b"5678"), 0x9000);
    assert_eq!(card.transmit(&apdu([0, 0x2C, 1, PIN_REF], PUK, None)), [0x90, 0], "counter only");
    assert_eq!(split(&card.transmit(&apdu([0, 0x2C, 0, PIN2_REF], PUK, None))).1, 0x6A88);
    // CHANGE REFERENCE DATA: old || new; new only once verified.
    assert_eq!(card.transmit(&apdu([0, 0x24, 0, PIN_REF], b"5678abcdef", None)), [0x90, 0]);
    assert_eq!(split(&card.transmit(&apdu([0, 0x24, 0, PIN_REF], b"xxxxxxabcd", None))).1, 0x63C2);
    assert_eq!(
        split(&card.transmit(&apdu([0, 0x24, 0, PIN_REF], b"abcdef12", None))).1,
        0x6A80,
        "new too short"
    );
    assert_eq!(sw_of(&card, "00 20 FF 81"), 0x9000);
    assert_eq!(split(&card.transmit(&apdu([0, 0x24, 1, PIN_REF], b"4321", None))).1, 0x6982);
    assert_eq!(verify(b"abcdef"), 0x9000);
    assert_eq!(card.transmit(&apdu([0, 0x24, 1, PIN_REF], b"4321", None)), [0x90, 0]);
    assert_eq!(verify(b"4321"), 0x9000);
    // The code without counter.
    assert_eq!(sw_of(&card, "00 20 00 82"), 0x6300);
    for _ in 0..5 {
        assert_eq!(split(&card.transmit(&apdu([0, 0x20, 0, PIN2_REF], b"9", None))).1, 0x6300);
    }
    assert_eq!(split(&card.transmit(&apdu([0, 0x20, 0, PIN2_REF], PIN2, None))).1, 0x9000);
    assert_eq!(sw_of(&card, "00 20 00 82"), 0x9000);
    assert_eq!(sw_of(&card, "00 20 00 83"), 0x6A88);
    assert_eq!(sw_of(&card, "00 20 01 81"), 0x6A86);
}

#[test]
fn challenge_and_authentication() {
    let card = iso(IsoOptions::default());
    let first = ok_data(&card, &x("00 84 00 00 08"));
    let second = ok_data(&card, &x("00 84 00 00 08"));
    assert_eq!(first.len(), 8);
    assert_ne!(first, second);
    assert_eq!(ok_data(&card, &x("00 84 00 00 00")).len(), 256);
    assert_eq!(ok_data(&card, &x("00 84 00 00 11")).len(), 17);
    assert_eq!(sw_of(&card, "00 84 00 00"), 0x6700);
    assert_eq!(sw_of(&card, "00 84 00 00 00 01 01"), 0x6700, "more than 256");
    assert_eq!(ok_data(&card, &x("00 88 00 01 03 000102 00")), auth_response(&[0, 1, 2]));
    assert_eq!(auth_response(&[0; 9]), b"SCM-KEY!S");
    assert_eq!(sw_of(&card, "00 88 00 02 01 00"), 0x6A88);
    // EXTERNAL AUTHENTICATE: the last challenge, once.
    let challenge = ok_data(&card, &x("00 84 00 00 08"));
    let answer = auth_response(&challenge);
    assert_eq!(card.transmit(&apdu([0, 0x82, 0, AUTH_KEY_REF], &answer, None)), [0x90, 0]);
    assert_eq!(split(&card.transmit(&apdu([0, 0x82, 0, AUTH_KEY_REF], &answer, None))).1, 0x6985);
    ok_data(&card, &x("00 84 00 00 08"));
    assert_eq!(split(&card.transmit(&apdu([0, 0x82, 0, 0], &answer, None))).1, 0x6300);
}

#[test]
fn t0_answers_through_get_response_and_6cxx() {
    let card = iso(IsoOptions::T0);
    // Case 4: 61xx, then GET RESPONSE.
    let fcp = apdu([0, 0xA4, 0x04, 0x04], DF_NAME, Some(256));
    assert_eq!(card.transmit(&fcp), [0x61, 0x15]);
    assert_eq!(card.transmit(&x("00 C0 00 00 20")), [0x6C, 0x15], "Le past what remains");
    let answer = card.transmit(&x("00 C0 00 00 10"));
    assert_eq!(split(&answer), (&x("62 13 8201 38 8302 5000 8407 F053434D49")[..], 0x6105));
    assert_eq!(split(&card.transmit(&x("00 C0 00 00 05"))), (&x("534F 8A01 05")[..], 0x9000));
    assert_eq!(sw_of(&card, "00 C0 00 00 05"), 0x6985, "nothing left");
    // Case 2: the exact Le, or 6Cxx.
    assert_eq!(ok_data(&card, &x("00 B0 81 00 21")), SMALL_CONTENT);
    assert_eq!(sw_of(&card, "00 B0 00 00 00"), 0x6C21);
    assert_eq!(sw_of(&card, "00 B0 00 00 40"), 0x6C21);
    assert_eq!(ok_data(&card, &x("00 B0 00 00 10")), &SMALL_CONTENT[..16]);
    assert_eq!(sw_of(&card, "00 B2 01 1C 00"), 0x6C10);
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00")), &big_content()[..256], "256 bytes with Le 00");
    // Case 4 INTERNAL AUTHENTICATE, and a pending answer dropped by another command.
    assert_eq!(card.transmit(&x("00 88 00 00 02 0102 00")), [0x61, 0x02]);
    assert_eq!(split(&card.transmit(&x("00 C0 00 00 02"))), (&auth_response(&[1, 2])[..], 0x9000));
    assert_eq!(card.transmit(&x("00 88 00 00 02 0102")), [0x61, 0x02], "case 3 too");
    assert_eq!(sw_of(&card, "00 A4 00 0C"), 0x9000);
    assert_eq!(sw_of(&card, "00 C0 00 00 02"), 0x6985);
    // Extended APDUs are refused.
    assert_eq!(sw_of(&card, "00 B0 00 00 00 00 10"), 0x6700);
}

#[test]
fn get_response_hands_out_long_answers_in_parts() {
    let card = iso(IsoOptions::T0);
    select_df(&card);
    // An odd READ BINARY is case 4: a 256-byte answer in one GET RESPONSE, a longer one in parts.
    assert_eq!(card.transmit(&x("00 B1 00 02 03 540100 00")), [0x61, 0x00]);
    let answer = card.transmit(&x("00 C0 00 00 00"));
    assert_eq!(split(&answer).1, 0x9000);
    assert_eq!(split(&answer).0[3..], big_content()[..253]);
    // Without its Le, as a T=0 transport sends a case-4 command: Ne is taken as 256.
    assert_eq!(card.transmit(&x("00 B1 00 02 05 5403 009B00")), [0x61, 0x00]);
    let answer = card.transmit(&x("00 C0 00 00 00"));
    assert_eq!(split(&answer).0[..3], [0x53, 0x81, 0xFD]);
    assert_eq!(split(&answer).0[3..], big_content()[0x9B00..0x9B00 + 253]);
    assert_eq!(card.transmit(&x("00 B1 00 02 05 5403 009C3F")), [0x61, 0x03]);
    assert_eq!(split(&card.transmit(&x("00 C0 00 00 03"))), (&[0x53, 1, big_content()[39_999]][..], 0x9000));
    assert_eq!(card.transmit(&x("00 B1 00 02 03 540100 10")), [0x61, 0x10]);
    assert_eq!(split(&card.transmit(&x("00 C0 00 00 08"))).1, 0x6108);
    assert_eq!(split(&card.transmit(&x("00 C0 00 00 08"))).1, 0x9000);
}

#[test]
fn ef_atr_alone_can_announce_extended_length_up_to_its_limit() {
    assert_eq!(atr(IsoOptions::EF_ATR_ONLY)[9], 0x80, "the ATR keeps it out");
    let card = iso(IsoOptions::EF_ATR_ONLY);
    assert_eq!(card.transparent(&[EF_ATR]).unwrap(), x("47 03 B6 01 E0 7F66 08 02021000 02021000"));
    select_df(&card);
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00 0F FE")).len(), EF_ATR_MAX_APDU - 2);
    assert_eq!(sw_of(&card, "00 B0 82 00 00 0F FF"), 0x6700, "an answer past the limit");
    let data = vec![7; EF_ATR_MAX_APDU - 7];
    assert_eq!(card.transmit(&apdu([0, 0xD6, 0x82, 0], &data, None)), [0x90, 0]);
    let data = vec![7; EF_ATR_MAX_APDU - 6];
    assert_eq!(split(&card.transmit(&apdu([0, 0xD6, 0x82, 0], &data, None))).1, 0x6700);
    let hostile = iso(IsoOptions { ef_atr: EfAtr::Malformed, ..IsoOptions::EF_ATR_ONLY });
    assert_eq!(atr(IsoOptions { ef_atr: EfAtr::Malformed, ..IsoOptions::EF_ATR_ONLY })[9], 0x80);
    assert_eq!(hostile.transparent(&[EF_ATR]).unwrap(), x("47 03 B6 01 E0 7F66 84FFFFFFFF 02021000"));
    // Every preset of before is unchanged.
    assert_eq!(IsoOptions::default().apdu_limit(), None);
    assert_eq!(IsoOptions { ef_atr: EfAtr::Only, ..IsoOptions::SHORT }.apdu_limit(), None);
}

#[test]
fn extended_length_is_refused_when_off() {
    let card = iso(IsoOptions { extended: false, ..IsoOptions::default() });
    select_df(&card);
    assert_eq!(sw_of(&card, "00 B0 82 00 00 01 00"), 0x6700);
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00")).len(), 256);
    // The odd form still reaches past 32 767 with a short Le.
    assert_eq!(ok_data(&card, &x("00 B1 00 00 04 54029C3F 00")), [0x53, 1, big_content()[39_999]]);
}

#[test]
fn chaining_accumulates_data() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    let data: Vec<u8> = (0..600u32).map(|i| (i / 3) as u8).collect();
    let parts: Vec<&[u8]> = data.chunks(250).collect();
    for part in &parts[..parts.len() - 1] {
        assert_eq!(card.transmit(&apdu([0x10, 0xD6, 0x82, 0], part, None)), [0x90, 0]);
    }
    assert_eq!(card.transmit(&apdu([0x00, 0xD6, 0x82, 0], parts[parts.len() - 1], None)), [0x90, 0]);
    assert_eq!(card.transparent(&[DF_ID, EF_BIG]).unwrap()[..600], data);
    // A different command in the middle of a chain.
    assert_eq!(card.transmit(&apdu([0x10, 0xD6, 0x82, 0], &[1], None)), [0x90, 0]);
    assert_eq!(sw_of(&card, "00 B0 82 00 01"), 0x6883);
    assert_eq!(sw_of(&card, "00 B0 82 00 01"), 0x9000, "the chain was dropped");
    let plain = iso(IsoOptions { chaining: false, ..IsoOptions::default() });
    assert_eq!(sw_of(&plain, "10 D6 00 00 01 00"), 0x6884);
}

#[test]
fn class_and_instruction_checks_and_the_default_applet() {
    let card = iso(IsoOptions::default());
    assert_eq!(sw_of(&card, "01 A4 00 0C"), 0x6881);
    assert_eq!(sw_of(&card, "04 A4 00 0C"), 0x6882);
    assert_eq!(sw_of(&card, "20 A4 00 0C"), 0x6E00);
    assert_eq!(sw_of(&card, "FF A4 00 0C"), 0x6E00);
    assert_eq!(sw_of(&card, "00 12 00 00"), 0x6D00);
    assert_eq!(card.transmit(&x("00 A4")), [0x67, 0x00]);
    assert_eq!(card.transmit(&x("80 10 00 00 02 ABCD 00")), x("ABCD 9000"), "ECHO");
    assert_eq!(card.transmit(&x("80 20 00 03")), x("000102 9000"), "READ");
    assert_eq!(card.commands_received(), 8);
}

#[test]
fn power_clears_volatile_state_and_reset_restores_the_factory() {
    let card = iso(IsoOptions::default());
    select_df(&card);
    assert_eq!(card.transmit(&apdu([0, 0x20, 0, PIN_REF], PIN, None)), [0x90, 0]);
    assert_eq!(card.transmit(&apdu([0, 0x20, 0, PIN_REF], b"bad!", None)), [0x63, 0xC2]);
    assert_eq!(card.transmit(&x("00 D6 81 00 01 58")), [0x90, 0]);
    card.power();
    assert_eq!(sw_of(&card, "00 B0 00 00 01"), 0x6986, "no current EF after power-on");
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C2, "the counter survives");
    assert_eq!(card.transparent(&[DF_ID, EF_SMALL]).unwrap()[0], b'X', "and the files");
    card.set_hostile(Hostile::OneByteAnswer);
    card.reset();
    assert_eq!(card.hostile(), Hostile::None);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C3);
    assert_eq!(card.transparent(&[DF_ID, EF_SMALL]).unwrap(), SMALL_CONTENT);
}

#[test]
fn hostile_modes_misbehave_as_documented() {
    let card = iso(IsoOptions::default());
    let set = |mode| {
        card.reset();
        select_df(&card);
        card.set_hostile(mode);
    };
    set(Hostile::EndlessGetResponse);
    assert_eq!(card.transmit(&x("00 B0 81 00 00")), [0x61, 0x00]);
    for _ in 0..1000 {
        let answer = card.transmit(&x("00 C0 00 00 00"));
        assert_eq!(answer.len(), 258);
        assert_eq!(answer[256..], [0x61, 0x00]);
    }
    set(Hostile::LongChain);
    assert_eq!(card.transmit(&x("00 B0 81 00 00")), [0x61, 0x00]);
    let mut total = 0;
    loop {
        let answer = card.transmit(&x("00 C0 00 00 00"));
        total += answer.len() - 2;
        if answer[answer.len() - 2..] == [0x90, 0x00] {
            break;
        }
        assert_eq!(answer[answer.len() - 2..], [0x61, 0x00]);
    }
    assert_eq!(total, LONG_CHAIN_BYTES);
    set(Hostile::EndlessWrongLe);
    assert_eq!(card.transmit(&x("00 B0 81 00 10")), [0x6C, 0x11]);
    assert_eq!(card.transmit(&x("00 B0 81 00 11")), [0x6C, 0x12]);
    assert_eq!(card.transmit(&x("00 B0 81 00 FF")), [0x6C, 0x00]);
    assert_eq!(card.transmit(&x("00 A4 00 0C")), [0x6C, 0x01]);
    set(Hostile::FcpLengthLies);
    let fcp = ok_data(&card, &x("00 A4 02 04 02 5001 00"));
    assert_eq!(usize::from(fcp[1]), fcp.len() - 2 + 16);
    assert_eq!(ok_data(&card, &x("00 A4 02 0C 02 5001")), b"", "no FCP asked, none given");
    set(Hostile::FcpTruncated);
    assert_eq!(ok_data(&card, &x("00 A4 02 00 02 5001 00")), x("62 08 82 01 01 83 02 50 01 9F"));
    set(Hostile::FcpLongLengthForm);
    assert_eq!(ok_data(&card, &x("00 A4 02 04 02 5001 00")), x("62 84 00000009 8201 01 80 84 FFFFFFFF"));
    set(Hostile::OneByteAnswer);
    assert_eq!(card.transmit(&x("00 A4 00 0C")), [0x90]);
    set(Hostile::OverlongRead);
    assert_eq!(ok_data(&card, &x("00 B0 81 00 04")), [&SMALL_CONTENT[..4], &[0xEE; 16]].concat());
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00")).len(), 272);
    assert_eq!(ok_data(&card, &x("00 B0 82 00 00 00 00")).len(), MAX_RESPONSE_DATA);
    set(Hostile::LyingTriesLeft);
    for lie in 4..=15u16 {
        assert_eq!(split(&card.transmit(&apdu([0, 0x20, 0, PIN_REF], b"bad!", None))).1, 0x63C0 | lie);
    }
    assert_eq!(split(&card.transmit(&apdu([0, 0x20, 0, PIN_REF], b"bad!", None))).1, 0x63CF);
    card.set_hostile(Hostile::None);
    assert_eq!(sw_of(&card, "00 20 00 81"), 0x63C3, "the real counter never moved");
    set(Hostile::EmptySuccess);
    assert_eq!(card.transmit(&x("00 B0 81 00 00")), [0x90, 0x00]);
    assert_eq!(card.transmit(&x("00 84 00 00 08")), [0x90, 0x00]);
    assert_eq!(card.transmit(&x("00 A4 00 0C")), [0x90, 0x00], "no Le: behaves");
    for (mode, status) in [(Hostile::EfAtrWarning, 0x6282), (Hostile::EfAtrFailure, 0x6581)] {
        set(mode);
        assert_eq!(ok_data(&card, &x("00 B0 81 00 00")), SMALL_CONTENT, "another EF behaves");
        assert_eq!(sw_of(&card, "00 A4 00 0C 02 2F01"), 0x9000);
        let answer = card.transmit(&x("00 B0 00 00 00"));
        let (content, sw) = split(&answer);
        assert_eq!((&content[..2], sw), (&[0x47, 0x03][..], status), "{}", mode.name());
    }
    set(Hostile::Plain);
    assert_eq!(sw_of(&card, "00 A4 08 0C 04 5000 5001"), 0x6A86);
    assert_eq!(sw_of(&card, "00 A4 09 0C 02 5001"), 0x6A86);
    assert_eq!(sw_of(&card, "00 A4 00 0C 02 5001"), 0x9000, "by file identifier");
    assert_eq!(sw_of(&card, "00 B1 00 00 03 540100 00"), 0x6D00);
    assert_eq!(sw_of(&card, "00 D7 00 00 06 540100 530178"), 0x6D00);
    assert_eq!(ok_data(&card, &x("00 B0 00 00 04")), &SMALL_CONTENT[..4], "even READ BINARY");
    for mode in Hostile::ALL {
        assert_eq!(Hostile::from_name(mode.name()), Some(mode));
    }
    assert_eq!(Hostile::from_name("nope"), None);
}

/// xorshift64*: a fixed seed, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random APDUs biased towards the card's own classes, instructions and length fields: no
/// panic, and an answer of at least two bytes whenever no hostile mode says otherwise.
#[test]
fn random_apdus_never_panic() {
    const APDUS: usize = 200_000;
    const INS: [u8; 20] = [
        0xA4, 0xB0, 0xB1, 0xD6, 0xD7, 0xB2, 0xDC, 0xE2, 0xE0, 0xE4, 0x04, 0x44, 0x20, 0x24, 0x2C, 0x84, 0x88,
        0x82, 0xC0, 0x10,
    ];
    let mut rng = Rng(0x5EED_1507_8164_0001);
    let options = [
        IsoOptions::default(),
        IsoOptions::T0,
        IsoOptions { extended: false, chaining: false, ..IsoOptions::default() },
    ];
    for (round, options) in options.into_iter().enumerate() {
        let card = iso(options);
        for i in 0..APDUS / 3 {
            if i % 5000 == 0 {
                let modes: Vec<Hostile> =
                    Hostile::ALL.into_iter().filter(|h| *h != Hostile::OneByteAnswer).collect();
                card.set_hostile(if i % 20_000 == 0 { modes[rng.below(modes.len())] } else { Hostile::None });
            }
            let mut apdu = vec![
                [0x00, 0x10, 0x80, rng.next() as u8][rng.below(4)],
                if rng.below(8) == 0 { rng.next() as u8 } else { INS[rng.below(INS.len())] },
                [0x00, 0x04, 0x08, 0x80 | rng.below(8) as u8, rng.next() as u8][rng.below(5)],
                [0x00, 0x04, 0x0C, 0x1C, rng.next() as u8][rng.below(5)],
            ];
            // Long bodies are rare: they cost the most and find the least.
            let long = if rng.below(16) == 0 { rng.below(70_000) } else { rng.below(300) };
            let body_len = [0, 1, 2, 3, 5, 7, rng.below(300), long][rng.below(8)];
            let mut body: Vec<u8> =
                std::iter::repeat_with(|| rng.next().to_le_bytes()).flatten().take(body_len).collect();
            match rng.below(4) {
                // A well-formed short Lc (and maybe Le).
                0 if (1..=255).contains(&body_len) => {
                    body.insert(0, body_len as u8);
                    if rng.below(2) == 0 {
                        body.push(rng.next() as u8);
                    }
                }
                // A well-formed extended Lc.
                1 if (1..=65_535).contains(&body_len) => {
                    body.splice(0..0, [0, (body_len >> 8) as u8, body_len as u8]);
                }
                // TLV-looking data.
                2 if body_len >= 4 => {
                    body[1] = [0x54, 0x53, 0x62][rng.below(3)];
                    body[0] = (body_len - 1).min(255) as u8;
                }
                _ => {}
            }
            apdu.extend(body);
            let answer = card.transmit(&apdu);
            assert!(answer.len() >= 2, "round {round} APDU {i}: {apdu:02X?} -> {answer:02X?}");
            assert!(answer.len() <= 65_535, "vpcd cannot frame {} bytes", answer.len());
            if i % 997 == 0 {
                card.power();
            }
        }
    }
}
