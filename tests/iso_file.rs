//! File access (`scm_file_*`) against the lab's ISO 7816-4 card through a real pcscd: every
//! function's success path and documented errors, the 40 000-byte file written and read back
//! bit-exact through short APDUs, extended ones and a T=0 card (61xx, 6Cxx), records, paths of
//! every kind, create/delete/deactivate/activate, hostile cards, reconnection and two objects on
//! one manager from two threads.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;
mod iso_support;

use std::ffi::{c_char, CString};
use std::ptr;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use iso_support::IsoReader;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::iso::{self, EfAtr, Hostile, IsoOptions};

/// A file access object released on drop.
struct Files(*mut scm_file_access);

// SAFETY: objects are tokens; the library serializes calls on one.
unsafe impl Send for Files {}
unsafe impl Sync for Files {}

fn text(name: &str) -> CString {
    CString::new(name).unwrap()
}

impl Files {
    fn new(manager: &Manager) -> Files {
        let mut f = ptr::null_mut();
        ok(unsafe { scm_create_file_access(manager.0, &mut f) });
        Files(f)
    }

    fn cd(&self, reference: u32, name: &str) -> scm_hresult {
        unsafe { scm_file_change_dir(self.0, reference, text(name).as_ptr()) }
    }

    fn cwd(&self) -> Result<String, scm_hresult> {
        let mut buf = [0u8; 256];
        let mut len = buf.len();
        match unsafe { scm_file_get_current_dir(self.0, buf.as_mut_ptr().cast(), &mut len) } {
            SCM_S_OK => {
                let bytes = &buf[..len];
                assert_eq!(bytes.last(), Some(&0), "NUL-terminated, counted");
                Ok(String::from_utf8(bytes[..len - 1].to_vec()).unwrap())
            }
            hr => Err(hr),
        }
    }

    fn open(&self, reference: u32, name: &str) -> Result<u32, scm_hresult> {
        let mut file = 0xEEEE_EEEE;
        match unsafe { scm_file_open(self.0, reference, text(name).as_ptr(), &mut file) } {
            SCM_S_OK => {
                assert_ne!(file, 0);
                Ok(file)
            }
            hr => {
                assert_eq!(file, 0xEEEE_EEEE, "written on failure");
                Err(hr)
            }
        }
    }

    /// Reads up to `n` bytes; on failure the code and what `*len` became.
    fn read(&self, file: u32, n: usize) -> Result<Vec<u8>, (scm_hresult, usize)> {
        let mut buf = vec![0u8; n];
        let mut len = n;
        match unsafe { scm_file_read(self.0, file, buf.as_mut_ptr(), &mut len, 0) } {
            SCM_S_OK => {
                buf.truncate(len);
                Ok(buf)
            }
            hr => Err((hr, len)),
        }
    }

    fn write(&self, file: u32, data: &[u8]) -> scm_hresult {
        unsafe { scm_file_write(self.0, file, data.as_ptr(), data.len(), 0) }
    }

    fn append(&self, file: u32, data: &[u8]) -> scm_hresult {
        unsafe { scm_file_write(self.0, file, data.as_ptr(), data.len(), SCM_FILE_APPEND) }
    }

    fn seek(&self, file: u32, origin: u32, offset: i64) -> Result<u64, scm_hresult> {
        let mut position = 0xEEEE;
        match unsafe { scm_file_seek(self.0, file, origin, offset, &mut position) } {
            SCM_S_OK => Ok(position),
            hr => {
                assert_eq!(position, 0xEEEE, "written on failure");
                Err(hr)
            }
        }
    }

    fn close(&self, file: u32) -> scm_hresult {
        unsafe { scm_file_close(self.0, file) }
    }

    fn properties(&self, reference: u32, name: &str) -> Result<Vec<u8>, scm_hresult> {
        let mut buf = vec![0u8; 512];
        let mut len = buf.len();
        match unsafe {
            scm_file_get_properties(self.0, reference, text(name).as_ptr(), 0, buf.as_mut_ptr(), &mut len)
        } {
            SCM_S_OK => {
                buf.truncate(len);
                Ok(buf)
            }
            hr => Err(hr),
        }
    }

    fn create(&self, reference: u32, name: &str, fcp: &[u8]) -> scm_hresult {
        unsafe { scm_file_create(self.0, reference, text(name).as_ptr(), fcp.as_ptr(), fcp.len(), 0) }
    }

    fn delete(&self, reference: u32, name: &str) -> scm_hresult {
        unsafe { scm_file_delete(self.0, reference, text(name).as_ptr(), 0) }
    }

    fn invalidate(&self, reference: u32, name: &str) -> scm_hresult {
        unsafe { scm_file_invalidate(self.0, reference, text(name).as_ptr(), 0) }
    }

    fn rehabilitate(&self, reference: u32, name: &str) -> scm_hresult {
        unsafe { scm_file_rehabilitate(self.0, reference, text(name).as_ptr(), 0) }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        unsafe { scm_file_access_release(self.0) };
    }
}

/// The path of a file of the lab's DF, from the MF.
fn in_df(ef: u16) -> String {
    format!("3F00/{:04X}/{ef:04X}", iso::DF_ID)
}

/// 40 000 bytes unlike the card's initial content (which is `i % 251`).
fn pattern(seed: u8) -> Vec<u8> {
    (0..iso::BIG_SIZE).map(|i| ((i * 7 + i / 256) as u8) ^ seed).collect()
}

/// Byte strings compared without printing 40 000 bytes: the lengths and the first difference.
#[track_caller]
fn same(got: &[u8], expected: &[u8], what: &str) {
    if got != expected {
        let at = got.iter().zip(expected).position(|(a, b)| a != b);
        panic!("{what}: {} bytes against {} expected, first difference at {at:?}", got.len(), expected.len());
    }
}

/// Writes the 40 000-byte file from a pattern, reads it back through the library and checks it
/// bit-exact against what the card holds; returns the commands each took.
fn big_file_round_trip(lab: &IsoReader, seed: u8) -> (u64, u64) {
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    let initial = files.read(file, iso::BIG_SIZE).unwrap();
    same(&initial, &iso::big_content(), "the card's initial content");

    let data = pattern(seed);
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    let before = lab.card.commands_received();
    ok(files.write(file, &data));
    let write_commands = lab.card.commands_received() - before;
    assert_eq!(
        files.seek(file, SCM_SEEK_RELATIVE, 0),
        Ok(iso::BIG_SIZE as u64),
        "the position moved by the length"
    );
    same(
        &lab.card.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap(),
        &data,
        "the card holds what was written",
    );

    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    let before = lab.card.commands_received();
    let back = files.read(file, iso::BIG_SIZE + 100).unwrap();
    let read_commands = lab.card.commands_received() - before;
    same(&back, &data, "read back (fewer than asked: the file ends)");
    assert_eq!(files.read(file, 10), Err((SCM_SCARD_W_EOF, 0)), "a read at the end reads nothing");
    (write_commands, read_commands)
}

#[test]
fn the_40000_byte_file_through_short_apdus() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let (writes, reads) = big_file_round_trip(&lab, 0x5A);
    // SELECT, then 128 READ BINARY B0 of 256 bytes up to offset 32767 and 29 B1 of 253 past it.
    assert_eq!(reads, 1 + 128 + 29);
    // SELECT, then 129 D6 of 255 bytes up to offset 32767 (the last at 32640 carries 255), and
    // D7 of 248 (offset object of 4 bytes, 53 81 F8) for the rest.
    let d6 = 32_768usize.div_ceil(255);
    let d7 = (iso::BIG_SIZE - d6 * 255).div_ceil(248);
    assert_eq!(writes, 1 + d6 as u64 + d7 as u64);
}

#[test]
fn the_40000_byte_file_through_extended_apdus() {
    let lab = IsoReader::new(IsoOptions::default());
    let (writes, reads) = big_file_round_trip(&lab, 0xA5);
    assert_eq!(reads, 2, "SELECT and one extended READ BINARY");
    assert_eq!(writes, 2, "SELECT and one extended UPDATE BINARY");
}

#[test]
fn the_40000_byte_file_through_extended_apdus_that_only_ef_atr_announces() {
    // The ATR says short APDUs only; EF.ATR says extended ones of at most 4 096 bytes, and the
    // card answers 67 00 to anything longer: the round trip only succeeds within that size.
    let lab = IsoReader::new(IsoOptions::EF_ATR_ONLY);
    let (writes, reads) = big_file_round_trip(&lab, 0x69);
    // 4 094 bytes per answer (9 B0 up to offset 32 767, then one B1 for the rest), and
    // 4 089 per UPDATE (4 096 less header and extended Lc), against 158 and 161 short ones.
    assert_eq!(reads, 1 + 10, "SELECT and ten READ BINARY");
    assert!((1 + 10..=1 + 11).contains(&writes), "SELECT and ten or eleven UPDATE BINARY: {writes}");
}

#[test]
fn the_40000_byte_file_within_the_limits_ef_atr_gives_a_card_whose_atr_announces_extended_length() {
    // The ATR announces extended length and says (0x20) that EF.ATR holds the limits: 4 096
    // bytes, past which the card answers 67 00. Taking the ATR alone, 65 535-byte APDUs fail.
    let lab = IsoReader::new(IsoOptions { ef_atr: EfAtr::Limits, ..IsoOptions::default() });
    let (writes, reads) = big_file_round_trip(&lab, 0x5A);
    assert_eq!(reads, 1 + 10, "SELECT and ten READ BINARY of at most 4 094 bytes");
    assert!((1 + 10..=1 + 11).contains(&writes), "SELECT and ten or eleven UPDATE BINARY: {writes}");
}

#[test]
fn scm_transmit_ex_takes_a_card_at_its_atr_word_and_selects_nothing_of_its_own() {
    let lab = IsoReader::new(IsoOptions::EF_ATR_ONLY);
    lab.select_application();
    let select_big = [&[0x00, 0xA4, 0x02, 0x0C, 2][..], &iso::EF_BIG.to_be_bytes()].concat();
    assert_eq!(lab.transmit_ex(SCM_ISO_ALL, &select_big).unwrap(), [0x90, 0x00]);
    // 600 bytes in extended form: the library picks the form from the ATR, which announces no
    // extended length, so the card sees three chained short commands and nothing else (reading
    // EF.ATR would take a SELECT of the MF and of 2F01 first).
    let data: Vec<u8> = (0..600).map(|i| (i * 13) as u8).collect();
    let update = [&[0x00, 0xD6, 0x00, 0x00, 0x00, 0x02, 0x58][..], &data].concat();
    let before = lab.card.commands_received();
    assert_eq!(lab.transmit_ex(SCM_ISO_ALL, &update).unwrap(), [0x90, 0x00]);
    assert_eq!(lab.card.commands_received() - before, 3, "255 + 255 + 90 bytes, chained");
    // The caller's file is still the current one.
    let read = lab.transmit_ex(SCM_ISO_ALL, &[0x00, 0xB0, 0x00, 0x00, 0x10]).unwrap();
    assert_eq!(read, [&data[..16], &[0x90, 0x00]].concat());
    // A file access object on the same manager does use EF.ATR's extended length: one READ.
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    let before = lab.card.commands_received();
    same(&files.read(file, 4000).unwrap()[..600], &data, "what scm_transmit_ex wrote");
    assert_eq!(lab.card.commands_received() - before, 2, "SELECT and one extended READ BINARY");
}

#[test]
fn ef_atr_is_read_once_per_connection_and_may_be_absent() {
    let lab = IsoReader::new(IsoOptions::EF_ATR_ONLY);
    let files = Files::new(&lab.manager);
    let small = in_df(iso::EF_SMALL);
    let count = |what: &dyn Fn()| {
        let before = lab.card.commands_received();
        what();
        lab.card.commands_received() - before
    };
    let open = || {
        let file = files.open(SCM_REF_BY_ID, &small).unwrap();
        ok(files.close(file));
    };
    assert_eq!(count(&open), 3 + 1, "SELECT MF, SELECT 2F01, READ BINARY, then the file's SELECT");
    assert_eq!(count(&open), 1, "EF.ATR kept");
    ok(lab.manager.reconnect());
    assert_eq!(count(&open), 3 + 1, "read again after scm_reconnect: the card may be another");

    // Without EF.ATR (its SELECT answers 6A82) the card is taken at its ATR's word: short APDUs.
    ok(files.delete(SCM_REF_BY_ID, "3F00/2F01"));
    ok(lab.manager.reconnect());
    assert_eq!(count(&open), 2 + 1, "SELECT MF, SELECT 2F01 (not found), the file's SELECT");
    let big = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    let read = || same(&files.read(big, iso::BIG_SIZE).unwrap(), &iso::big_content(), "the file");
    assert_eq!(count(&read), 1 + 128 + 29, "as on a short-APDU card");
}

#[test]
fn ef_atr_read_with_a_warning_is_believed_and_with_an_error_is_not() {
    // 62 82 (the file ended before the 256 bytes asked) still hands over the whole content, so
    // the 4 096-byte extended APDUs it announces are used; content under 65 81 (memory
    // failure) is not believed, and the card is taken at its ATR's word: short APDUs.
    for (mode, reads) in [(Hostile::EfAtrWarning, 1 + 10), (Hostile::EfAtrFailure, 1 + 128 + 29)] {
        let lab = IsoReader::new(IsoOptions::EF_ATR_ONLY);
        lab.card.set_hostile(mode);
        let files = Files::new(&lab.manager);
        let big = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
        let before = lab.card.commands_received();
        same(&files.read(big, iso::BIG_SIZE).unwrap(), &iso::big_content(), mode.name());
        assert_eq!(lab.card.commands_received() - before, reads, "{}: SELECT and READ BINARY", mode.name());
    }
}

#[test]
fn a_malformed_ef_atr_is_ignored() {
    // The card takes extended APDUs (up to 4 096 bytes) but its EF.ATR is malformed TLV: the
    // library believes none of it and reads and writes as through short APDUs.
    let lab = IsoReader::new(IsoOptions { ef_atr: EfAtr::Malformed, ..IsoOptions::EF_ATR_ONLY });
    let (writes, reads) = big_file_round_trip(&lab, 0x96);
    assert_eq!(reads, 1 + 128 + 29, "as on a short-APDU card");
    let d6 = 32_768usize.div_ceil(255);
    let d7 = (iso::BIG_SIZE - d6 * 255).div_ceil(248);
    assert_eq!(writes, 1 + d6 as u64 + d7 as u64);
}

#[test]
fn the_40000_byte_file_through_a_t0_card_answering_61xx_and_6cxx() {
    let lab = IsoReader::new(IsoOptions::T0);
    let (_, protocol) = lab.manager.status().unwrap();
    assert_eq!(protocol, SCM_PROTOCOL_T0);
    // T=0 carries short APDUs only, whatever EF.ATR says: the first file access of the
    // connection reads no EF.ATR (which would take SELECT MF, SELECT 2F01 and a READ BINARY).
    let files = Files::new(&lab.manager);
    let before = lab.card.commands_received();
    ok(files.close(files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap()));
    assert_eq!(lab.card.commands_received() - before, 2, "the file's SELECT (FCP) and GET RESPONSE only");
    big_file_round_trip(&lab, 0x3C);
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, -100), Ok(39_900));
    let before = lab.card.commands_received();
    let tail = files.read(file, 1000).unwrap();
    same(&tail, &lab.card.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap()[39_900..], "the tail");
    // The odd READ BINARY has data, so T=0 sends it without Le; its answer comes by 61xx.
    assert_eq!(lab.card.commands_received() - before, 3, "SELECT, B1, GET RESPONSE");
    // READ RECORD asks for 256 bytes (Le 00) of a 16-byte record: the card's 6C10 makes the
    // library ask again with Le 10.
    let records = files.open(SCM_REF_BY_ID, &in_df(iso::EF_RECORDS)).unwrap();
    let before = lab.card.commands_received();
    assert_eq!(files.read(records, 64).unwrap(), iso::initial_record(1));
    assert_eq!(lab.card.commands_received() - before, 3, "SELECT, READ RECORD, READ RECORD again");
    // A read whose B0 ends at offset 32767 goes on with B1, which T=0 sends without Le: the card
    // answers as much as a short answer holds, and only what the caller's buffer takes is kept.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 32_512), Ok(32_512));
    let across = files.read(file, 400).unwrap();
    same(&across, &lab.card.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap()[32_512..32_912], "across 32767");
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, 0), Ok(32_912));
    // The FCP comes through GET RESPONSE.
    let fcp = files.properties(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap();
    assert_eq!(fcp[0], 0x62);
}

#[test]
fn reads_and_seeks_inside_the_file() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let content = iso::big_content();
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    assert_eq!(files.read(file, 10).unwrap(), content[..10]);
    assert_eq!(files.read(file, 10).unwrap(), content[10..20], "the position moved");
    // Across the 32767 boundary: B0 then B1.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 32_760), Ok(32_760));
    assert_eq!(files.read(file, 20).unwrap(), content[32_760..32_780]);
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, -30), Ok(32_750));
    assert_eq!(files.read(file, 1).unwrap(), content[32_750..32_751]);
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, -1), Ok(39_999));
    assert_eq!(files.read(file, 5).unwrap(), [content[39_999]]);
    assert_eq!(files.read(file, 5), Err((SCM_SCARD_W_EOF, 0)));
    // Past the end: EOF, with no command sent.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, 5), Ok(40_005));
    let before = lab.card.commands_received();
    assert_eq!(files.read(file, 5), Err((SCM_SCARD_W_EOF, 0)));
    assert_eq!(lab.card.commands_received(), before);
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, -40_006), Err(SCM_SCARD_E_BAD_SEEK));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, -1), Err(SCM_SCARD_E_BAD_SEEK));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 1 << 32), Err(SCM_SCARD_E_BAD_SEEK));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, (1 << 32) - 1), Ok(u32::MAX as u64));
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, i64::MAX), Err(SCM_SCARD_E_BAD_SEEK));
    assert_eq!(files.seek(file, 3, 0), Err(SCM_E_INVALIDARG));
    // A NULL position is allowed.
    ok(unsafe { scm_file_seek(files.0, file, SCM_SEEK_FROM_BEGINNING, 7, ptr::null_mut()) });
    assert_eq!(files.read(file, 1).unwrap(), [content[7]]);
    // A zero-length read sends nothing.
    let before = lab.card.commands_received();
    let mut len = 0;
    ok(unsafe { scm_file_read(files.0, file, ptr::null_mut(), &mut len, 0) });
    assert_eq!((len, lab.card.commands_received()), (0, before));
    ok(files.close(file));
    assert_eq!(files.read(file, 1), Err((SCM_E_HANDLE, 1)), "closed");
    assert_eq!(files.close(file), SCM_E_HANDLE);
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Err(SCM_E_HANDLE));
}

#[test]
fn writes_past_the_known_size_are_refused_before_anything_is_sent() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap();
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, -3), Ok(iso::SMALL_CONTENT.len() as u64 - 3));
    let before = lab.card.commands_received();
    assert_eq!(files.write(file, b"four"), SCM_SCARD_E_WRITE_TOO_MANY);
    assert_eq!(lab.card.commands_received(), before);
    ok(files.write(file, b"END"));
    ok(files.write(file, b""));
    let content = lab.card.transparent(&[iso::DF_ID, iso::EF_SMALL]).unwrap();
    assert!(content.ends_with(b"END"));
    assert_eq!(files.append(file, b"x"), SCM_E_INVALIDARG, "append is for record files");
    assert_eq!(unsafe { scm_file_write(files.0, file, ptr::null(), 1, 0) }, SCM_E_POINTER);
    assert_eq!(unsafe { scm_file_write(files.0, file, b"x".as_ptr(), 1, 2) }, SCM_E_INVALIDARG);
}

#[test]
fn records_are_read_and_written_one_by_one() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_RECORDS)).unwrap();
    for n in 1..=iso::RECORD_COUNT {
        assert_eq!(files.read(file, 64).unwrap(), iso::initial_record(n as u8), "record {n}");
    }
    assert_eq!(files.read(file, 64), Err((SCM_SCARD_W_EOF, 0)), "past the last record");
    // Positions count records.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, 0), Ok(iso::RECORD_COUNT as u64));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 1), Ok(1));
    assert_eq!(files.read(file, 4), Err((SCM_SCARD_E_INSUFFICIENT_BUFFER, iso::RECORD_LEN)));
    assert_eq!(
        files.seek(file, SCM_SEEK_RELATIVE, 0),
        Ok(1),
        "a record too long for the buffer is not consumed"
    );
    let new = [0xA7; 16];
    ok(files.write(file, &new));
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, -1), Ok(1));
    assert_eq!(files.read(file, 64).unwrap(), new);
    assert_eq!(files.write(file, &[1; 15]), scm_card_status(0x6700), "the card takes 16-byte records");
    // Appending adds a record after the last and leaves the position.
    let appended = [0x42; 16];
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    ok(files.append(file, &appended));
    assert_eq!(files.seek(file, SCM_SEEK_RELATIVE, 0), Ok(0));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_END, -1), Ok(iso::RECORD_COUNT as u64));
    assert_eq!(files.read(file, 64).unwrap(), appended);
    assert_eq!(files.append(file, &[]), SCM_E_INVALIDARG, "an empty record");
    // Past the records that exist: EOF.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 6), Ok(6));
    assert_eq!(files.write(file, &new), SCM_SCARD_W_EOF);
}

/// A CREATE FILE template: a transparent EF `id` of 16 bytes, padded with a proprietary object
/// (85) to `len` bytes in all.
fn template_of_length(id: u16, len: usize) -> Vec<u8> {
    let [high, low] = id.to_be_bytes();
    let mut fcp = vec![0x62, 0x81, (len - 3) as u8, 0x82, 0x01, 0x01, 0x83, 0x02, high, low];
    fcp.extend([0x80, 0x02, 0x00, 0x10, 0x85, 0x81, (len - 17) as u8]);
    fcp.resize(len, 0xA5);
    fcp
}

#[test]
fn records_and_templates_longer_than_one_command_are_refused_unsent() {
    // On a short-APDU card one command carries 255 bytes: a record or a CREATE FILE template of
    // 255 goes to the card, which judges it; one of 256 is the caller's error.
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let records = files.open(SCM_REF_BY_ID, &in_df(iso::EF_RECORDS)).unwrap();
    let sent = |call: &dyn Fn() -> scm_hresult| {
        let before = lab.card.commands_received();
        let hr = call();
        (hr, lab.card.commands_received() - before)
    };
    // The lab's records are 16 bytes: it refuses 255 with 67 00, after the file's SELECT.
    assert_eq!(sent(&|| files.write(records, &[7; 255])), (scm_card_status(0x6700), 2));
    assert_eq!(sent(&|| files.append(records, &[7; 255])), (scm_card_status(0x6700), 2));
    assert_eq!(sent(&|| files.write(records, &[7; 256])), (SCM_E_INVALIDARG, 0));
    assert_eq!(sent(&|| files.append(records, &[7; 256])), (SCM_E_INVALIDARG, 0));
    ok(files.cd(SCM_REF_BY_ID, "3F00/5000"));
    let fits = template_of_length(0x5020, 255);
    assert_eq!(sent(&|| files.create(SCM_REF_BY_ID, "5020", &fits)), (SCM_S_OK, 2), "SELECT, CREATE FILE");
    assert!(files.open(SCM_REF_BY_ID, "5020").is_ok());
    let too_long = template_of_length(0x5021, 256);
    assert_eq!(sent(&|| files.create(SCM_REF_BY_ID, "5021", &too_long)), (SCM_E_INVALIDARG, 0));
    assert_eq!(files.open(SCM_REF_BY_ID, "5021"), Err(SCM_SCARD_E_FILE_NOT_FOUND));
}

#[test]
fn a_record_of_256_bytes_comes_whole_in_one_short_answer() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    ok(files.cd(SCM_REF_BY_ID, "3F00/5000"));
    // Records of 256 bytes (82 04 02 21 01 00), two of them, short EF identifier 8.
    let fcp = [0x62, 0x0D, 0x82, 0x04, 0x02, 0x21, 0x01, 0x00, 0x80, 0x02, 0x02, 0x00, 0x88, 0x01, 8 << 3];
    ok(files.create(SCM_REF_BY_ID, "5030", &fcp));
    // One command carries 255 bytes: the record goes in by scm_transmit_ex, chained.
    let record: Vec<u8> = (0..256).map(|i| i as u8 ^ 0x5C).collect();
    let append = [&[0x00, 0xE2, 0x00, 8 << 3, 0x00, 0x01, 0x00][..], &record].concat();
    assert_eq!(lab.transmit_ex(SCM_ISO_ALL, &append).unwrap(), [0x90, 0x00]);
    let file = files.open(SCM_REF_BY_ID, "5030").unwrap();
    assert_eq!(files.read(file, 300).unwrap(), record, "Le 00: all 256 bytes");
    assert_eq!(files.read(file, 300), Err((SCM_SCARD_W_EOF, 0)));
}

#[test]
fn files_by_short_identifier() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    ok(files.cd(SCM_REF_BY_ID, "3F00/5000"));
    let big = files.open(SCM_REF_BY_SHORT_ID, &iso::SFI_BIG.to_string()).unwrap();
    let content = iso::big_content();
    // Offsets up to 255 name the file in READ BINARY's P1, past that in B1's P2.
    assert_eq!(files.read(big, 300).unwrap(), content[..300]);
    let before = lab.card.commands_received();
    same(&files.read(big, iso::BIG_SIZE).unwrap(), &content[300..], "up to the end, which the card says");
    // The directory's SELECT, B1 to offset 553, 126 B0 of 256 bytes to 32 809, then 29 B1 of 253
    // bytes: the last one's short answer ends the file, with no READ BINARY past it.
    assert_eq!(lab.card.commands_received() - before, 1 + 1 + 126 + 29);
    assert_eq!(files.read(big, 1), Err((SCM_SCARD_W_EOF, 0)));
    assert_eq!(files.seek(big, SCM_SEEK_FROM_END, 0), Err(SCM_SCARD_E_BAD_SEEK), "no FCP, no size");
    assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, 1000), Ok(1000));
    assert_eq!(files.read(big, 10).unwrap(), content[1000..1010], "a first command past offset 255 is B1");
    // With no size known, a write may run up to the last position, 4294967295, and no further:
    // the card then says where its file ends (6B00, offset past it).
    assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, u32::MAX.into()), Ok(u32::MAX.into()));
    let before = lab.card.commands_received();
    assert_eq!(files.write(big, b"xy"), SCM_SCARD_E_WRITE_TOO_MANY);
    assert_eq!(lab.card.commands_received(), before, "refused unsent");
    assert_eq!(files.write(big, b"x"), SCM_SCARD_W_EOF);
    assert_eq!(lab.card.commands_received() - before, 2, "the directory's SELECT and D7");
    let records = files.open(SCM_REF_BY_SHORT_ID, &iso::SFI_RECORDS.to_string()).unwrap();
    assert_eq!(files.read(records, 64).unwrap(), iso::initial_record(1));
    ok(files.write(records, &[9; 16]));
    assert_eq!(files.read(records, 64).unwrap(), iso::initial_record(3), "record 2 was written, 3 read");
    // Another directory: the identifier names another file, or none.
    ok(files.cd(SCM_REF_BY_ID, "3F00"));
    assert_eq!(files.open(SCM_REF_BY_SHORT_ID, "2"), Err(SCM_SCARD_E_FILE_NOT_FOUND));
    // Short identifiers take no SELECT.
    assert_eq!(files.cd(SCM_REF_BY_SHORT_ID, "2"), SCM_SCARD_E_NO_DIR);
    assert_eq!(files.properties(SCM_REF_BY_SHORT_ID, "2"), Err(SCM_E_NOTIMPL));
    assert_eq!(files.delete(SCM_REF_BY_SHORT_ID, "2"), SCM_E_NOTIMPL);
    for bad in ["0", "31", "1E", "", "02"] {
        assert_eq!(files.open(SCM_REF_BY_SHORT_ID, bad), Err(SCM_E_INVALIDARG), "{bad:?}");
    }
}

#[test]
fn paths_absolute_relative_and_by_df_name() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    assert_eq!(files.cwd().unwrap(), "3F00");
    let small = iso::SMALL_CONTENT;
    for path in ["3F00/5000/5001", "3F0050005001", "3f00/50005001", "5000/5001"] {
        let file = files.open(SCM_REF_BY_ID, path).unwrap();
        assert_eq!(files.read(file, 100).unwrap(), small, "{path}");
        ok(files.close(file));
    }
    ok(files.cd(SCM_REF_BY_ID, "5000"));
    assert_eq!(files.cwd().unwrap(), "3F00/5000");
    let file = files.open(SCM_REF_BY_ID, "5001").unwrap();
    assert_eq!(files.read(file, 100).unwrap(), small);
    ok(files.cd(SCM_REF_BY_ID, "5100"));
    assert_eq!(files.cwd().unwrap(), "3F00/5000/5100");
    let nested = files.open(SCM_REF_BY_ID, "5101").unwrap();
    assert_eq!(files.read(nested, 100).unwrap(), iso::SUB_CONTENT);
    // Open files keep their place when the directory changes.
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    assert_eq!(files.read(file, 100).unwrap(), small);

    let name: String = iso::DF_NAME.iter().map(|b| format!("{b:02X}")).collect();
    ok(files.cd(SCM_REF_BY_NAME, &name.to_lowercase()));
    assert_eq!(files.cwd().unwrap(), name);
    let file = files.open(SCM_REF_BY_ID, "5001").unwrap();
    assert_eq!(files.read(file, 100).unwrap(), small);
    ok(files.cd(SCM_REF_BY_ID, "5100"));
    assert_eq!(files.cwd().unwrap(), format!("{name}/5100"));
    let file = files.open(SCM_REF_BY_ID, "5101").unwrap();
    assert_eq!(files.read(file, 100).unwrap(), iso::SUB_CONTENT);
    ok(files.cd(SCM_REF_BY_ID, "3F00"));
    assert_eq!(files.cwd().unwrap(), "3F00");

    // Errors.
    assert_eq!(files.cd(SCM_REF_BY_ID, "3F00/5000/5001"), SCM_SCARD_E_NO_DIR, "an EF");
    assert_eq!(files.cwd().unwrap(), "3F00", "unchanged");
    assert_eq!(files.open(SCM_REF_BY_ID, "3F00/5000"), Err(SCM_SCARD_E_NO_FILE), "a DF");
    assert_eq!(files.open(SCM_REF_BY_ID, "3F00/5000/5999"), Err(SCM_SCARD_E_FILE_NOT_FOUND));
    assert_eq!(files.cd(SCM_REF_BY_NAME, "A0000000000000"), SCM_SCARD_E_FILE_NOT_FOUND);
    for (reference, bad) in [
        (SCM_REF_BY_ID, ""),
        (SCM_REF_BY_ID, "500"),
        (SCM_REF_BY_ID, "5000//5001"),
        (SCM_REF_BY_ID, "/5000"),
        (SCM_REF_BY_ID, "5000/3F00"),
        (SCM_REF_BY_ID, "FFFF"),
        (SCM_REF_BY_ID, "50 0"),
        (SCM_REF_BY_NAME, "F05"),
        (SCM_REF_BY_NAME, &"00".repeat(17)),
        (3, "5000"),
        (u32::MAX, "5000"),
    ] {
        assert_eq!(files.cd(reference, bad), SCM_E_INVALIDARG, "{reference} {bad:?}");
        assert_eq!(files.open(reference, bad), Err(SCM_E_INVALIDARG), "{reference} {bad:?}");
    }
    assert_eq!(unsafe { scm_file_change_dir(files.0, SCM_REF_BY_ID, ptr::null()) }, SCM_E_POINTER);
    let deep = vec!["1000"; 128].join("/");
    assert_eq!(files.cd(SCM_REF_BY_ID, &deep), SCM_E_INVALIDARG, "deeper than one SELECT carries");

    // The buffer rules of scm_file_get_current_dir.
    ok(files.cd(SCM_REF_BY_ID, "5000"));
    let mut len = 0;
    ok(unsafe { scm_file_get_current_dir(files.0, ptr::null_mut(), &mut len) });
    assert_eq!(len, "3F00/5000".len() + 1);
    let mut small_buf = [0 as c_char; 4];
    let mut len = small_buf.len();
    assert_eq!(
        unsafe { scm_file_get_current_dir(files.0, small_buf.as_mut_ptr(), &mut len) },
        SCM_SCARD_E_INSUFFICIENT_BUFFER
    );
    assert_eq!(len, 10);
    assert_eq!(
        unsafe { scm_file_get_current_dir(files.0, small_buf.as_mut_ptr(), ptr::null_mut()) },
        SCM_E_POINTER
    );
}

#[test]
fn properties_are_the_fcp_as_the_card_sends_it() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let fcp = files.properties(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    assert_eq!(fcp[0], 0x62);
    assert_eq!(usize::from(fcp[1]) + 2, fcp.len());
    // The size, 40 000 = 9C40, as the card puts it.
    assert!(fcp.windows(4).any(|w| w == [0x80, 0x02, 0x9C, 0x40]), "{fcp:02X?}");
    let dir = files.properties(SCM_REF_BY_ID, "3F00/5000").unwrap();
    assert!(dir.windows(3).any(|w| w == [0x82, 0x01, 0x38]), "a DF: {dir:02X?}");
    // Buffer rules: the size, then too small.
    let mut len = 0;
    let name = text(&in_df(iso::EF_BIG));
    ok(unsafe {
        scm_file_get_properties(files.0, SCM_REF_BY_ID, name.as_ptr(), 0, ptr::null_mut(), &mut len)
    });
    assert_eq!(len, fcp.len());
    let mut small = [0u8; 4];
    let mut len = small.len();
    assert_eq!(
        unsafe {
            scm_file_get_properties(files.0, SCM_REF_BY_ID, name.as_ptr(), 0, small.as_mut_ptr(), &mut len)
        },
        SCM_SCARD_E_INSUFFICIENT_BUFFER
    );
    assert_eq!((len, small), (fcp.len(), [0; 4]));
    assert_eq!(
        unsafe {
            scm_file_get_properties(files.0, SCM_REF_BY_ID, name.as_ptr(), 1, small.as_mut_ptr(), &mut len)
        },
        SCM_E_INVALIDARG
    );
    assert_eq!(files.properties(SCM_REF_BY_ID, "3F00/5999"), Err(SCM_SCARD_E_FILE_NOT_FOUND));
}

#[test]
fn access_conditions_become_their_codes() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let secret = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SECRET)).unwrap();
    assert_eq!(files.read(secret, 10), Err((SCM_SCARD_W_SECURITY_VIOLATION, 10)));
    let read_only = files.open(SCM_REF_BY_ID, &in_df(iso::EF_READ_ONLY)).unwrap();
    assert_eq!(files.read(read_only, 100).unwrap(), iso::READ_ONLY_CONTENT);
    assert_eq!(files.seek(read_only, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    assert_eq!(files.write(read_only, b"x"), SCM_SCARD_E_NO_ACCESS);
}

#[test]
fn create_delete_deactivate_activate() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    ok(files.cd(SCM_REF_BY_ID, "3F00/5000"));
    // A transparent EF of 600 bytes; its identifier (83) is added from the reference.
    let fcp = [0x62, 0x07, 0x82, 0x01, 0x01, 0x80, 0x02, 0x02, 0x58];
    ok(files.create(SCM_REF_BY_ID, "5010", &fcp));
    assert_eq!(files.create(SCM_REF_BY_ID, "5010", &fcp), scm_card_status(0x6A89), "exists");
    let props = files.properties(SCM_REF_BY_ID, "5010").unwrap();
    assert!(props.windows(4).any(|w| w == [0x83, 0x02, 0x50, 0x10]), "{props:02X?}");
    let file = files.open(SCM_REF_BY_ID, "5010").unwrap();
    let data: Vec<u8> = (0..600).map(|i| (i * 3) as u8).collect();
    ok(files.write(file, &data));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    assert_eq!(files.read(file, 1000).unwrap(), data);

    // Deactivated: still selectable (6283), no longer readable.
    ok(files.invalidate(SCM_REF_BY_ID, "5010"));
    assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
    assert_eq!(files.read(file, 10), Err((SCM_SCARD_E_NO_ACCESS, 10)));
    assert!(files.properties(SCM_REF_BY_ID, "5010").is_ok());
    ok(files.rehabilitate(SCM_REF_BY_ID, "5010"));
    assert_eq!(files.read(file, 10).unwrap(), data[..10]);

    ok(files.delete(SCM_REF_BY_ID, "3F00/5000/5010"));
    assert_eq!(files.read(file, 10), Err((SCM_SCARD_E_FILE_NOT_FOUND, 10)));
    assert_eq!(files.open(SCM_REF_BY_ID, "5010"), Err(SCM_SCARD_E_FILE_NOT_FOUND));

    // A record EF and a named DF with an identifier in its FCP that agrees.
    let records =
        [0x62, 0x0E, 0x82, 0x04, 0x02, 0x21, 0x00, 0x10, 0x83, 0x02, 0x50, 0x11, 0x80, 0x02, 0x00, 0x40];
    ok(files.create(SCM_REF_BY_ID, "5011", &records));
    let file = files.open(SCM_REF_BY_ID, "5011").unwrap();
    ok(files.append(file, &[1; 16]));
    assert_eq!(files.read(file, 16).unwrap(), [1; 16]);
    let df = [0x62, 0x07, 0x82, 0x01, 0x38, 0x83, 0x02, 0x52, 0x00];
    ok(files.create(SCM_REF_BY_NAME, "A0000001", &df));
    ok(files.cd(SCM_REF_BY_NAME, "A0000001"));
    ok(files.create(SCM_REF_BY_ID, "0001", &fcp));
    assert!(files.open(SCM_REF_BY_ID, "0001").is_ok());

    // The caller's FCP: one well-formed 62 template whose identity agrees.
    assert_eq!(files.create(SCM_REF_BY_ID, "0002", &records), SCM_E_INVALIDARG, "83 says 5011");
    for bad in [
        &[][..],
        &[0x6F, 0x03, 0x82, 0x01, 0x01],
        &[0x62, 0x05, 0x82, 0x01],
        &[0x62, 0x03, 0x82, 0x01, 0x01, 0x00, 0x01],
    ] {
        assert_eq!(files.create(SCM_REF_BY_ID, "0002", bad), SCM_E_INVALIDARG, "{bad:02X?}");
    }
    assert_eq!(files.create(SCM_REF_BY_ID, "3F00", &fcp), SCM_E_INVALIDARG, "the MF");
    assert_eq!(files.create(SCM_REF_BY_SHORT_ID, "9", &fcp), SCM_E_NOTIMPL);
    assert_eq!(
        unsafe { scm_file_delete(files.0, SCM_REF_BY_ID, text("0001").as_ptr(), 1) },
        SCM_E_INVALIDARG
    );
    assert_eq!(files.delete(SCM_REF_BY_ID, "3F00"), SCM_SCARD_E_NO_ACCESS, "the MF stays");
}

#[test]
fn the_open_file_table_is_bounded() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let open: Vec<u32> =
        (0..SCM_FILE_MAX_OPEN).map(|_| files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap()).collect();
    assert_eq!(files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)), Err(SCM_E_OUTOFMEMORY));
    ok(files.close(open[5]));
    let again = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap();
    assert!(!open.contains(&again), "a number is not reused at once");
    // Another object has a table of its own.
    let other = Files::new(&lab.manager);
    assert!(other.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).is_ok());
    assert_eq!(other.read(open[1], 1), Err((SCM_E_HANDLE, 1)), "file numbers are per object");
}

/// Hostile cards: each answer is a documented code, quickly, and the object works again once
/// the card behaves. Reads start at offset 0 (READ BINARY B0) and past 32767 (B1, the offset and
/// the bytes in data objects), on each kind of card the lab has.
fn hostile_cards_get_documented_codes(options: IsoOptions) {
    let lab = IsoReader::new(options);
    let files = Files::new(&lab.manager);
    let big = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
    let content = iso::big_content();
    const LOST: scm_hresult = SCM_SCARD_E_COMM_DATA_LOST;
    const MALFORMED: scm_hresult = SCM_SCARD_E_UNEXPECTED;
    const ODD: usize = 33_000;
    // B1's answer, overlong: over T=1 more than its Le asked; over T=0, which sends no Le with
    // a command that has data, bytes after the 53 object.
    let overlong_odd = if options.t0 { Err(MALFORMED) } else { Err(LOST) };
    // Mode, then what a read of the big file from 0 and from ODD, an open and a properties call
    // of the small one give.
    let cases = [
        (Hostile::OverlongRead, Err(LOST), overlong_odd, Ok(()), Ok(())),
        (Hostile::FcpLengthLies, Ok(()), Ok(()), Err(MALFORMED), Err(MALFORMED)),
        (Hostile::FcpTruncated, Ok(()), Ok(()), Err(MALFORMED), Err(MALFORMED)),
        (Hostile::FcpLongLengthForm, Ok(()), Ok(()), Err(MALFORMED), Err(MALFORMED)),
        // No FCP at all: opened as a transparent file of unknown size; no template to give.
        (Hostile::EmptySuccess, Err(SCM_SCARD_W_EOF), Err(SCM_SCARD_W_EOF), Ok(()), Err(MALFORMED)),
        (Hostile::OneByteAnswer, Err(LOST), Err(LOST), Err(LOST), Err(LOST)),
        (Hostile::EndlessGetResponse, Err(LOST), Err(LOST), Err(LOST), Err(LOST)),
        (Hostile::LongChain, Err(LOST), Err(LOST), Err(LOST), Err(LOST)),
        (Hostile::EndlessWrongLe, Err(LOST), Err(LOST), Err(LOST), Err(LOST)),
    ];
    for (mode, read, read_odd, open, properties) in cases {
        lab.card.set_hostile(mode);
        let start = Instant::now();
        for (at, expected) in [(0, read), (ODD, read_odd)] {
            assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, at as i64), Ok(at as u64));
            // Where the card's FCPs lie, its READ BINARY does not: the file's bytes, exactly.
            let got = files.read(big, iso::BIG_SIZE).map(|data| same(&data, &content[at..], "read"));
            assert_eq!(got.map_err(|(hr, _)| hr), expected, "{mode:?}: read at {at}");
        }
        let opened = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).map(|file| ok(files.close(file)));
        assert_eq!(opened, open, "{mode:?}: open");
        let got = files.properties(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).map(|fcp| assert_eq!(fcp[0], 0x62));
        assert_eq!(got, properties, "{mode:?}: properties");
        assert!(start.elapsed() < Duration::from_secs(20), "{mode:?} took {:?}", start.elapsed());
        lab.card.set_hostile(Hostile::None);
        assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
        assert_eq!(files.read(big, 100).unwrap(), content[..100], "{mode:?}: works again");
    }
}

#[test]
fn hostile_short_apdu_cards_get_documented_codes() {
    hostile_cards_get_documented_codes(IsoOptions::SHORT);
}

#[test]
fn hostile_extended_length_cards_get_documented_codes() {
    hostile_cards_get_documented_codes(IsoOptions::default());
}

#[test]
fn hostile_t0_cards_get_documented_codes() {
    hostile_cards_get_documented_codes(IsoOptions::T0);
}

#[test]
fn a_card_without_path_selection_or_odd_instructions() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    lab.card.set_hostile(Hostile::Plain);
    let files = Files::new(&lab.manager);
    ok(files.cd(SCM_REF_BY_ID, "3F00"));
    let count = |call: &dyn Fn()| {
        let before = lab.card.commands_received();
        call();
        lab.card.commands_received() - before
    };
    // SELECT by path answers 6A 86: the path is walked one identifier at a time, from the MF or
    // from the DF name, and the last SELECT brings the FCP (the size a seek from the end needs).
    let big = std::cell::Cell::new(0);
    assert_eq!(count(&|| big.set(files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap())), 1 + 3);
    let big = big.get();
    assert_eq!(files.seek(big, SCM_SEEK_FROM_END, -40), Ok(iso::BIG_SIZE as u64 - 40));
    assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, 100), Ok(100));
    let content = iso::big_content();
    assert_eq!(count(&|| assert_eq!(files.read(big, 100).unwrap(), content[100..200])), 1 + 3 + 1);
    let name: String = iso::DF_NAME.iter().map(|b| format!("{b:02X}")).collect();
    ok(files.cd(SCM_REF_BY_NAME, &name));
    let nested = files.open(SCM_REF_BY_ID, "5100/5101").unwrap();
    assert_eq!(files.read(nested, 100).unwrap(), iso::SUB_CONTENT);
    // No B1: a read that reaches offset 32768 returns the bytes before it; one that starts
    // there, and a write there, are SCM_E_NOTIMPL.
    assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, 32_512), Ok(32_512));
    assert_eq!(files.read(big, 400).unwrap(), content[32_512..32_768]);
    assert_eq!(files.read(big, 400), Err((SCM_E_NOTIMPL, 400)));
    assert_eq!(files.write(big, b"x"), SCM_E_NOTIMPL);
    assert_eq!(files.seek(big, SCM_SEEK_RELATIVE, 0), Ok(32_768), "the position stays");
}

#[test]
fn the_object_follows_its_manager_through_a_reset_and_reconnect() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    ok(files.cd(SCM_REF_BY_ID, "3F00/5000"));
    let big = files.open(SCM_REF_BY_ID, "5002").unwrap();
    let content = iso::big_content();
    assert_eq!(files.read(big, 100).unwrap(), content[..100]);
    // Another program resets the card: its selection is back at the MF.
    let other = RawConnection::connect(lab.lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    other.reset_card().unwrap();
    assert_eq!(files.read(big, 100), Err((SCM_SCARD_W_RESET_CARD, 100)));
    ok(lab.manager.reconnect());
    assert_eq!(
        files.read(big, 100).unwrap(),
        content[100..200],
        "position and place kept, file selected again"
    );
    assert_eq!(files.cwd().unwrap(), "3F00/5000");
    let small = files.open(SCM_REF_BY_ID, "5001").unwrap();
    assert_eq!(files.read(small, 100).unwrap(), iso::SMALL_CONTENT, "relative to the kept directory");

    // Detached: every call is NOT_ATTACHED, even those that send nothing; attached again, it
    // works on.
    let records = files.open(SCM_REF_BY_ID, &format!("{:04X}", iso::EF_RECORDS)).unwrap();
    ok(lab.manager.detach());
    assert_eq!(files.read(big, 1), Err((SCM_E_NOT_ATTACHED, 1)));
    assert_eq!(files.cwd(), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(files.seek(big, SCM_SEEK_FROM_BEGINNING, 0), Err(SCM_E_NOT_ATTACHED));
    // Arguments are checked before the manager's state, as the header's preamble orders.
    assert_eq!(files.seek(big, 3, 0), Err(SCM_E_INVALIDARG), "origin out of range");
    assert_eq!(files.write(records, &[]), SCM_E_INVALIDARG, "an empty record");
    assert_eq!(files.append(records, &[]), SCM_E_INVALIDARG, "an empty record");
    assert_eq!(files.append(big, b"x"), SCM_E_INVALIDARG, "append to a transparent file");
    ok(lab.manager.attach(lab.lease.name()));
    assert_eq!(files.read(big, 100).unwrap(), content[200..300]);
}

#[test]
fn calls_after_the_managers_release_are_refused() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let manager = Manager::attached(lab.lease.name());
    let files = Files::new(&manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap();
    drop(manager);
    assert_eq!(files.read(file, 1), Err((SCM_E_HANDLE, 1)));
    assert_eq!(files.cd(SCM_REF_BY_ID, "3F00"), SCM_E_HANDLE);
    assert_eq!(files.cwd(), Err(SCM_E_HANDLE));
    assert_eq!(files.close(file), SCM_E_HANDLE);
    // NULL, released and wrong-kind tokens.
    let mut len = 1;
    let mut byte = 0u8;
    assert_eq!(unsafe { scm_file_read(ptr::null_mut(), file, &mut byte, &mut len, 0) }, SCM_E_POINTER);
    let as_file_access = lab.manager.0.cast::<scm_file_access>();
    assert_eq!(unsafe { scm_file_read(as_file_access, file, &mut byte, &mut len, 0) }, SCM_E_HANDLE);
    // What ISO 7816-4 has no command for, on a live object.
    let live = Files::new(&lab.manager);
    let mut names_len = 0;
    assert_eq!(unsafe { scm_file_directory(live.0, 0, ptr::null_mut(), &mut names_len) }, SCM_E_NOTIMPL);
    let mut capabilities = 0;
    assert_eq!(unsafe { scm_file_get_file_capabilities(live.0, &mut capabilities) }, SCM_E_NOTIMPL);
    let name = text("5001");
    assert_eq!(
        unsafe { scm_file_set_properties(live.0, SCM_REF_BY_ID, name.as_ptr(), 0, ptr::null(), 0) },
        SCM_E_NOTIMPL
    );
    assert_eq!(
        unsafe { scm_file_get_file_capabilities(files.0, &mut capabilities) },
        SCM_E_HANDLE,
        "manager released"
    );
    assert_eq!(
        unsafe { scm_file_directory(ptr::null_mut(), 0, ptr::null_mut(), &mut names_len) },
        SCM_E_POINTER
    );
    let released = Files::new(&lab.manager);
    let token = released.0;
    drop(released);
    assert_eq!(unsafe { scm_file_close(token, 1) }, SCM_E_HANDLE);
}

#[test]
fn read_argument_errors() {
    let lab = IsoReader::new(IsoOptions::SHORT);
    let files = Files::new(&lab.manager);
    let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_SMALL)).unwrap();
    let mut buf = [0u8; 8];
    let mut len = buf.len();
    assert_eq!(unsafe { scm_file_read(files.0, file, buf.as_mut_ptr(), ptr::null_mut(), 0) }, SCM_E_POINTER);
    assert_eq!(unsafe { scm_file_read(files.0, file, ptr::null_mut(), &mut len, 0) }, SCM_E_POINTER);
    assert_eq!(unsafe { scm_file_read(files.0, file, buf.as_mut_ptr(), &mut len, 1) }, SCM_E_INVALIDARG);
    assert_eq!(len, 8, "unchanged on failure");
    ok(unsafe { scm_file_read(files.0, file, buf.as_mut_ptr(), &mut len, 0) });
    assert_eq!(&buf[..len], &iso::SMALL_CONTENT[..8]);
    // A capacity no slice can have is refused before the buffer is touched.
    let mut len = usize::MAX;
    assert_eq!(unsafe { scm_file_read(files.0, file, buf.as_mut_ptr(), &mut len, 0) }, SCM_E_INVALIDARG);
    assert_eq!(len, usize::MAX);
    // More than one extended APDU carries, for a write and for CREATE FILE's template.
    let long = vec![0u8; 65_536];
    assert_eq!(unsafe { scm_file_write(files.0, file, long.as_ptr(), long.len(), 0) }, SCM_E_INVALIDARG);
    let name = text("5010");
    assert_eq!(
        unsafe { scm_file_create(files.0, SCM_REF_BY_ID, name.as_ptr(), long.as_ptr(), long.len(), 0) },
        SCM_E_INVALIDARG
    );
    // Names that are not UTF-8, or have no NUL within 1024 bytes, are refused.
    let not_utf8 = b"3F00/50\xFF0\0";
    assert_eq!(
        unsafe { scm_file_change_dir(files.0, SCM_REF_BY_ID, not_utf8.as_ptr().cast()) },
        SCM_E_INVALIDARG
    );
    let unterminated = [b'5'; 2048];
    assert_eq!(
        unsafe { scm_file_change_dir(files.0, SCM_REF_BY_ID, unterminated.as_ptr().cast()) },
        SCM_E_INVALIDARG
    );
    assert_eq!(files.cwd().unwrap(), "3F00", "unchanged");
}

/// Two objects on one manager, each in its own thread, each selecting its own file before
/// every read: the manager keeps each call's SELECT and READs together.
#[test]
fn two_objects_on_one_manager_from_two_threads() {
    let lab = IsoReader::new(IsoOptions::default());
    let rounds = count("SCM_FILE_THREAD_ROUNDS", 100, 2000);
    thread::scope(|scope| {
        let big = scope.spawn(|| {
            let files = Files::new(&lab.manager);
            let file = files.open(SCM_REF_BY_ID, &in_df(iso::EF_BIG)).unwrap();
            let content = iso::big_content();
            for round in 0..rounds {
                let at = (round * 397) % (iso::BIG_SIZE - 1000);
                assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, at as i64), Ok(at as u64));
                assert_eq!(files.read(file, 1000).unwrap(), content[at..at + 1000], "round {round}");
            }
        });
        let small = scope.spawn(|| {
            let files = Files::new(&lab.manager);
            ok(files.cd(SCM_REF_BY_ID, "3F00/5000/5100"));
            let file = files.open(SCM_REF_BY_ID, "5101").unwrap();
            for round in 0..rounds {
                assert_eq!(files.seek(file, SCM_SEEK_FROM_BEGINNING, 0), Ok(0));
                assert_eq!(files.read(file, 100).unwrap(), iso::SUB_CONTENT, "round {round}");
            }
        });
        big.join().unwrap();
        small.join().unwrap();
    });
}

#[test]
fn the_header_declares_every_file_function() {
    let header = include_str!("../include/scardmanage.h");
    for function in [
        "scm_file_change_dir",
        "scm_file_get_current_dir",
        "scm_file_open",
        "scm_file_read",
        "scm_file_write",
        "scm_file_seek",
        "scm_file_close",
        "scm_file_get_properties",
        "scm_file_create",
        "scm_file_delete",
        "scm_file_invalidate",
        "scm_file_rehabilitate",
        "scm_file_directory",
        "scm_file_get_file_capabilities",
        "scm_file_set_properties",
    ] {
        assert!(
            header.contains(&format!("scm_hresult {function}(scm_file_access *f,")),
            "{function} is declared"
        );
    }
    for constant in ["#define SCM_FILE_APPEND 1", "#define SCM_FILE_MAX_OPEN 16"] {
        assert!(header.contains(constant), "{constant}");
    }
    // The library's internal constants stay out of the C namespace (a `MF` or `MAX_DEPTH`
    // macro would break any program that uses the name): every macro is SCM_'s.
    let foreign: Vec<&str> = header
        .lines()
        .filter_map(|line| line.strip_prefix("#define "))
        .filter(|macro_| !macro_.starts_with("SCM_") && !macro_.starts_with("SCARDMANAGE_H"))
        .collect();
    assert!(foreign.is_empty(), "macros outside SCM_: {foreign:?}");
}
