//! `scm_transmit_ex` against the lab's ISO card through a real pcscd: GET RESPONSE and Le
//! correction on the T=0 card, chaining and extended length (counted at the card), the buffer
//! rules, and every hostile answer mode ending in its documented code within a time bound.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;
mod iso_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use iso_support::*;
use scardmanage::*;
use scardmanage_lab::iso::{self, Hostile, IsoOptions};

/// The Rust allocations of each thread, counted, to show the common path of `scm_transmit_ex`
/// allocates nothing once the manager's buffers exist.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// READ BINARY of EF_BIG by SFI at `offset` (< 256), asking for `ne` bytes (short or extended Le).
fn read_big(offset: u8, ne: usize) -> Vec<u8> {
    let header = [0x00, 0xB0, 0x80 | iso::SFI_BIG, offset];
    match ne {
        0..=255 => [&header[..], &[ne as u8]].concat(),
        256 => [&header[..], &[0]].concat(),
        _ => [&header[..], &[0], &((ne % 65536) as u16).to_be_bytes()].concat(),
    }
}

#[test]
fn t0_card_answers_are_collected_with_get_response_and_fixed_le() {
    let reader = IsoReader::new(IsoOptions::T0);
    let (mut state, mut protocol) = (0, 0);
    common::ok(unsafe { scm_status(reader.m(), &mut state, &mut protocol) });
    assert_eq!(protocol, SCM_PROTOCOL_T0);
    reader.select_application();
    // Case 2 with Le 00 on a 33-byte file: the T=0 card answers 6C 21, the library resends.
    let before = reader.card.commands_received();
    let small = reader.transmit_ex(SCM_ISO_ALL, &[0x00, 0xB0, 0x80 | iso::SFI_SMALL, 0, 0]).unwrap();
    assert_eq!(small, [iso::SMALL_CONTENT, &[0x90, 0x00]].concat());
    assert_eq!(reader.card.commands_received() - before, 2, "the command and its resend");
    // Without FIX_LE the 6Cxx comes back as it is.
    let raw = reader.transmit_ex(SCM_ISO_GET_RESPONSE, &[0x00, 0xB0, 0x80 | iso::SFI_SMALL, 0, 0]).unwrap();
    assert_eq!(raw, [0x6C, iso::SMALL_CONTENT.len() as u8]);
    // Case 4 (INTERNAL AUTHENTICATE): sent without Le, the answer comes through GET RESPONSE.
    let challenge = [0x11u8; 40];
    let command =
        [&[0x00, 0x88, 0x00, iso::AUTH_KEY_REF, challenge.len() as u8][..], &challenge, &[0]].concat();
    let before = reader.card.commands_received();
    let answer = reader.transmit_ex(SCM_ISO_ALL, &command).unwrap();
    assert_eq!(answer, [iso::auth_response(&challenge), vec![0x90, 0x00]].concat());
    assert_eq!(reader.card.commands_received() - before, 2, "the command and one GET RESPONSE");
    let raw = reader.transmit_ex(SCM_ISO_FIX_LE, &command[..command.len() - 1]).unwrap();
    assert_eq!(raw, [0x61, challenge.len() as u8], "no GET RESPONSE without the flag");
}

#[test]
fn the_whole_big_file_in_one_extended_command_or_in_short_pieces() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let content = iso::big_content();
    // Extended Le: one command gives up to 65533 bytes (vpcd's frame), the file is 40 000.
    let before = reader.card.commands_received();
    let answer = reader.transmit_ex(SCM_ISO_ALL, &read_big(0, 65536)).unwrap();
    assert_eq!(reader.card.commands_received() - before, 1);
    let (data, sw) = answer.split_at(answer.len() - 2);
    assert_eq!(sw, [0x90, 0x00]);
    assert!(data == &content[..], "{} bytes", data.len());
    // On the T=0 card each command is short: 256 bytes per READ BINARY, each 6C-free.
    let t0 = IsoReader::new(IsoOptions::T0);
    t0.select_application();
    let answer = t0.transmit_ex(SCM_ISO_ALL, &read_big(0, 256)).unwrap();
    assert_eq!(&answer[..256], &content[..256]);
    assert_eq!(&answer[256..], [0x90, 0x00]);
}

#[test]
fn long_commands_are_chained_for_a_card_without_extended_length() {
    let options = IsoOptions { extended: false, ..IsoOptions::default() };
    let reader = IsoReader::new(options);
    reader.select_application();
    // UPDATE BINARY of 600 bytes written as an extended APDU: with CHAIN, sent as 3 chained
    // short commands, since the card's ATR does not announce extended length.
    let data: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    let update = [&[0x00, 0xD6, 0x80 | iso::SFI_BIG, 0x00, 0x00, 0x02, 0x58][..], &data].concat();
    let before = reader.card.commands_received();
    assert_eq!(reader.transmit_ex(SCM_ISO_ALL, &update).unwrap(), [0x90, 0x00]);
    assert_eq!(reader.card.commands_received() - before, 3);
    let file = reader.card.transparent(&[iso::DF_ID, iso::EF_BIG]).unwrap();
    assert_eq!(&file[..600], &data[..]);
    // Without CHAIN the extended form is sent as it came, and this card refuses it.
    assert_eq!(reader.transmit_ex(SCM_ISO_GET_RESPONSE, &update).unwrap(), [0x67, 0x00]);
    // The same command to a card with extended length goes in one piece.
    let extended = IsoReader::new(IsoOptions::default());
    extended.select_application();
    let before = extended.card.commands_received();
    assert_eq!(extended.transmit_ex(SCM_ISO_ALL, &update).unwrap(), [0x90, 0x00]);
    assert_eq!(extended.card.commands_received() - before, 1);
}

#[test]
fn flags_and_buffers_follow_the_rules_of_scm_transmit() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let m = reader.m();
    let command = read_big(0, 16);
    let (mut len, mut buf) = (64usize, [0u8; 64]);
    unsafe {
        assert_eq!(
            scm_transmit_ex(m, 8, command.as_ptr(), command.len(), buf.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        assert_eq!(
            scm_transmit_ex(m, 0x8000_0001, command.as_ptr(), command.len(), buf.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        assert_eq!(
            scm_transmit_ex(m, SCM_ISO_ALL, std::ptr::null(), 5, buf.as_mut_ptr(), &mut len),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_transmit_ex(
                m,
                SCM_ISO_ALL,
                command.as_ptr(),
                command.len(),
                buf.as_mut_ptr(),
                std::ptr::null_mut()
            ),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_transmit_ex(m, SCM_ISO_ALL, command.as_ptr(), 0, buf.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        // Lengths that do not match the command.
        let bad = [0x00, 0xB0, 0x00, 0x00, 0x05, 0x01];
        assert_eq!(
            scm_transmit_ex(m, SCM_ISO_ALL, bad.as_ptr(), bad.len(), buf.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        assert_eq!(
            scm_transmit_ex(
                std::ptr::null_mut(),
                SCM_ISO_ALL,
                command.as_ptr(),
                command.len(),
                buf.as_mut_ptr(),
                &mut len
            ),
            SCM_E_POINTER
        );
        // NULL response: the size of the answer (sent, then lost).
        let before = reader.card.commands_received();
        len = 0;
        common::ok(scm_transmit_ex(
            m,
            SCM_ISO_ALL,
            command.as_ptr(),
            command.len(),
            std::ptr::null_mut(),
            &mut len,
        ));
        assert_eq!(len, 18);
        assert_eq!(reader.card.commands_received() - before, 1, "the command was sent");
        // Too small: the size needed, nothing written.
        len = 10;
        assert_eq!(
            scm_transmit_ex(m, SCM_ISO_ALL, command.as_ptr(), command.len(), buf.as_mut_ptr(), &mut len),
            SCM_SCARD_E_INSUFFICIENT_BUFFER
        );
        assert_eq!((len, buf[0]), (18, 0));
        // Exactly the size: written. The command and response may share a buffer.
        let mut shared = [0u8; 18];
        shared[..5].copy_from_slice(&command);
        len = shared.len();
        common::ok(scm_transmit_ex(m, SCM_ISO_ALL, shared.as_ptr(), 5, shared.as_mut_ptr(), &mut len));
        assert_eq!(len, 18);
        assert_eq!(&shared[..16], &iso::big_content()[..16]);
        assert_eq!(&shared[16..], [0x90, 0x00]);
    }
    // Flags 0 is scm_transmit: the card's 6Cxx-free answer as it is.
    assert_eq!(reader.transmit_ex(0, &command).unwrap().len(), 18);
}

#[test]
fn hostile_cards_get_their_documented_codes_in_bounded_time() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let read = read_big(0, 256);
    // The commands each mode may take: 64 KiB in 256-byte pieces is the command and 257 GET
    // RESPONSE (the last piece is one too many); a Le corrected twice is 3; a broken answer ends
    // at once.
    let cases = [
        (Hostile::EndlessGetResponse, SCM_SCARD_E_COMM_DATA_LOST, 258),
        (Hostile::LongChain, SCM_SCARD_E_COMM_DATA_LOST, 258),
        (Hostile::EndlessWrongLe, SCM_SCARD_E_COMM_DATA_LOST, 3),
        (Hostile::OneByteAnswer, SCM_SCARD_E_COMM_DATA_LOST, 1),
        (Hostile::OverlongRead, SCM_SCARD_E_COMM_DATA_LOST, 1),
    ];
    for (mode, code, expected) in cases {
        reader.card.set_hostile(mode);
        let before = reader.card.commands_received();
        let start = Instant::now();
        assert_eq!(reader.transmit_ex(SCM_ISO_ALL, &read), Err(code), "{}", mode.name());
        let (took, commands) = (start.elapsed(), reader.card.commands_received() - before);
        // Under load a round trip through pcscd is well under 20 ms.
        assert!(took < Duration::from_secs(10), "{}: {took:?}", mode.name());
        assert_eq!(commands, expected, "{}: commands", mode.name());
        eprintln!("{}: {commands} commands in {took:?}", mode.name());
    }
    reader.card.set_hostile(Hostile::None);
    // The card and the manager are fine afterwards.
    reader.select_application();
    assert_eq!(reader.transmit_ex(SCM_ISO_ALL, &read_big(0, 4)).unwrap(), [0, 1, 2, 3, 0x90, 0x00]);
}

#[test]
fn the_common_path_allocates_nothing() {
    for options in [IsoOptions::default(), IsoOptions::T0] {
        let reader = IsoReader::new(options);
        reader.select_application();
        let m = reader.m();
        // A read collected with GET RESPONSE (T=0, case 4 INTERNAL AUTHENTICATE) or answered in
        // one piece (T=1), and a chained write of 600 bytes (the T=0 card has no extended length).
        let challenge = [0x11u8; 40];
        let auth =
            [&[0x00, 0x88, 0x00, iso::AUTH_KEY_REF, challenge.len() as u8][..], &challenge, &[0]].concat();
        let data = [0x5Au8; 600];
        let update = [&[0x00, 0xD6, 0x80 | iso::SFI_BIG, 0x00, 0x00, 0x02, 0x58][..], &data].concat();
        let mut response = vec![0u8; 1024];
        let mut send = |command: &[u8]| {
            let mut len = response.len();
            let hr = unsafe {
                scm_transmit_ex(
                    m,
                    SCM_ISO_ALL,
                    command.as_ptr(),
                    command.len(),
                    response.as_mut_ptr(),
                    &mut len,
                )
            };
            assert_eq!((hr, &response[len - 2..len]), (SCM_S_OK, &[0x90, 0x00][..]));
        };
        send(&auth);
        send(&update);
        let before = ALLOCATIONS.with(Cell::get);
        for _ in 0..50 {
            send(&auth);
            send(&update);
        }
        assert_eq!(ALLOCATIONS.with(Cell::get) - before, 0, "t0: {}", options.t0);
    }
}
