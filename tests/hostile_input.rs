//! Hostile input at every exported function: NULL in each pointer, released and random
//! tokens, out-of-range enums, lengths 0 and SIZE_MAX, over-long APDUs, invalid UTF-8 and
//! UTF-16, and a panic forced inside a call. Always the documented code, never a crash.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::ffi::{c_char, CStr};
use std::ptr;

use common::*;
use scardmanage::*;

/// Calls every function that takes a manager, with valid other arguments; returns each result.
fn call_every_manager_function(m: *mut scm_manage) -> Vec<(&'static str, scm_hresult)> {
    let (mut state, mut protocol, mut handle) = (0, 0, 0);
    let mut buf = [0u8; 300];
    let apdu = echo_apdu(b"x");
    let len = |n: usize| -> usize { n };
    let (mut l1, mut l2, mut l3) = (len(300), len(300), len(300));
    unsafe {
        vec![
            ("attach_by_ifd", scm_attach_by_ifd(m, c"No Reader".as_ptr())),
            ("attach_by_ifd_w", scm_attach_by_ifd_w(m, [0x41u16, 0].as_ptr())),
            ("attach_by_ifd_ex", scm_attach_by_ifd_ex(m, c"No Reader".as_ptr(), 2, 3)),
            ("attach_by_handle", scm_attach_by_handle(m, 1)),
            ("reconnect", scm_reconnect(m)),
            ("lock", scm_lock(m)),
            ("unlock", scm_unlock(m, SCM_LEAVE_CARD)),
            ("status", scm_status(m, &mut state, &mut protocol)),
            ("transmit", scm_transmit(m, apdu.as_ptr(), apdu.len(), buf.as_mut_ptr(), &mut l1)),
            ("get_atr", scm_get_atr(m, buf.as_mut_ptr(), &mut l2)),
            ("get_reader_name", scm_get_reader_name(m, buf.as_mut_ptr().cast(), &mut l3)),
            ("get_handle", scm_get_handle(m, &mut handle)),
            ("detach", scm_detach(m)),
            ("detach_ex", scm_detach_ex(m, SCM_LEAVE_CARD)),
            ("release", scm_release(m)),
        ]
    }
}

#[test]
fn null_in_each_pointer_is_a_pointer_error_and_changes_nothing() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let m = manager.0;
    let mut buf = [0u8; 300];
    let (mut state, mut protocol, mut len) = (0u32, 0u32, 300usize);
    let apdu = echo_apdu(b"x");
    let cases: Vec<(&str, scm_hresult)> = unsafe {
        vec![
            ("create(out)", scm_create(ptr::null_mut())),
            ("attach_by_ifd(reader)", scm_attach_by_ifd(m, ptr::null())),
            ("attach_by_ifd_w(reader)", scm_attach_by_ifd_w(m, ptr::null())),
            ("attach_by_ifd_ex(reader)", scm_attach_by_ifd_ex(m, ptr::null(), 2, 3)),
            ("status(state)", scm_status(m, ptr::null_mut(), &mut protocol)),
            ("status(protocol)", scm_status(m, &mut state, ptr::null_mut())),
            ("transmit(command)", scm_transmit(m, ptr::null(), 5, buf.as_mut_ptr(), &mut len)),
            (
                "transmit(response_len)",
                scm_transmit(m, apdu.as_ptr(), apdu.len(), buf.as_mut_ptr(), ptr::null_mut()),
            ),
            ("get_atr(atr_len)", scm_get_atr(m, buf.as_mut_ptr(), ptr::null_mut())),
            ("get_reader_name(name_len)", scm_get_reader_name(m, buf.as_mut_ptr().cast(), ptr::null_mut())),
            ("get_handle(out)", scm_get_handle(m, ptr::null_mut())),
            ("list_readers(readers_len)", scm_list_readers(buf.as_mut_ptr().cast(), ptr::null_mut())),
        ]
    };
    for (what, hr) in cases {
        assert_eq!(hr, SCM_E_POINTER, "{what}: {hr:#x}");
    }
    // NULL manager: every function that takes one.
    for (what, hr) in call_every_manager_function(ptr::null_mut()) {
        assert_eq!(hr, SCM_E_POINTER, "{what}(NULL): {hr:#x}");
    }
    // None of it disturbed the live manager.
    echo_ok(&manager, b"still attached");
    assert_eq!(lease.card().counters().resets, 0);
}

/// The slot a token names: its low half (src/handle_table.rs). A released token and the
/// manager that reuses its slot share it and differ in the generation, the high half.
const SLOT_BITS: usize = (1 << (usize::BITS / 2)) - 1;

/// A new manager in the slot a released token named, and the managers created on the way
/// (the table may hand out other free slots first, and parallel tests take slots too).
fn manager_in_slot_of(released: usize) -> (Manager, Vec<Manager>) {
    let mut on_the_way = Vec::new();
    loop {
        let manager = Manager::new();
        if manager.0 as usize & SLOT_BITS == released & SLOT_BITS {
            assert_ne!(manager.0 as usize, released, "a reused slot gets a new generation");
            return (manager, on_the_way);
        }
        assert!(on_the_way.len() < 1 << 20, "the slot of {released:#x} is never reused");
        on_the_way.push(manager);
    }
}

#[test]
fn released_tokens_are_refused_by_every_function() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let released = manager.0;
    ok(unsafe { scm_release(released) });
    for (what, hr) in call_every_manager_function(released) {
        assert_eq!(hr, SCM_E_HANDLE, "{what}: {hr:#x}");
    }
    // A new manager takes the slot: the old token stays dead, and touches nothing of it.
    let (reused, _on_the_way) = manager_in_slot_of(released as usize);
    ok(reused.attach(lease.name()));
    ok(reused.lock());
    for (what, hr) in call_every_manager_function(released) {
        assert_eq!(hr, SCM_E_HANDLE, "{what} after the slot was reused: {hr:#x}");
    }
    echo_ok(&reused, b"still attached and locked");
    ok(reused.unlock(SCM_LEAVE_CARD));
}

/// The race the second generation check (under the slot's lock) closes: a call passes the
/// first check, and before it takes the lock another thread releases the manager and a new one
/// takes the slot. The test hook plays that other thread's part inside the window.
#[test]
fn a_token_released_between_its_check_and_the_lock_is_refused() {
    let lease = lease_with_card();
    let old = Manager::new();
    let token = old.0 as usize;
    std::mem::forget(old);
    let successor = std::rc::Rc::new(std::cell::Cell::new(None));
    let interleaved = std::rc::Rc::clone(&successor);
    let reader = lease.name().to_string();
    scardmanage::test_hooks::in_next_lookup_window(move || {
        ok(unsafe { scm_release(token as *mut scm_manage) });
        let (manager, on_the_way) = manager_in_slot_of(token);
        ok(manager.attach(&reader));
        interleaved.set(Some((manager, on_the_way)));
    });
    let hr = unsafe { scm_detach(token as *mut scm_manage) };
    let (successor, _on_the_way) = successor.take().expect("the look-up window ran");
    assert_eq!(hr, SCM_E_HANDLE, "the released token's call reached the slot's new manager");
    echo_ok(&successor, b"still attached");
}

#[test]
fn random_tokens_are_refused() {
    let tokens = count("SCM_RANDOM_TOKENS", 100_000, 1_000_000);
    let _lab = scardmanage_lab::shared();
    let live: Vec<Manager> = (0..8).map(|_| Manager::new()).collect();
    let mut rng = Xorshift::from_env("random tokens");
    // Half the tokens wholly random (nearly all name no slot at all), half naming a live
    // manager's slot with a random generation: those pass the slot look-up and are refused by
    // the generation check alone.
    let random_token = |rng: &mut Xorshift| loop {
        let token = match rng.chance(50) {
            true => rng.next() as usize,
            false => {
                (rng.next() as usize & !SLOT_BITS) | (live[rng.below(live.len())].0 as usize & SLOT_BITS)
            }
        };
        if token != 0 && live.iter().all(|m| m.0 as usize != token) {
            return token;
        }
    };
    let (mut refused, mut in_live_slots) = (0usize, 0usize);
    for _ in 0..tokens {
        let token = random_token(&mut rng);
        in_live_slots += usize::from(live.iter().any(|m| m.0 as usize & SLOT_BITS == token & SLOT_BITS));
        let m = token as *mut scm_manage;
        let (mut state, mut protocol) = (0, 0);
        let hr = match rng.below(4) {
            0 => unsafe { scm_status(m, &mut state, &mut protocol) },
            1 => unsafe { scm_lock(m) },
            2 => unsafe { scm_reconnect(m) },
            _ => unsafe { scm_release(m) },
        };
        assert_eq!(hr, SCM_E_HANDLE, "token {token:#x}");
        refused += 1;
    }
    // Every function once more over a smaller sample.
    for _ in 0..tokens / 100 {
        for (what, hr) in call_every_manager_function(random_token(&mut rng) as *mut scm_manage) {
            assert_eq!(hr, SCM_E_HANDLE, "{what}");
        }
    }
    eprintln!(
        "random tokens: {refused} ({in_live_slots} naming a live manager's slot) + {} x 15 calls refused \
         with SCM_E_HANDLE",
        tokens / 100
    );
    assert!(in_live_slots > refused / 3, "the generation check was reached");
    for manager in &live {
        assert_eq!(manager.reconnect(), SCM_E_NOT_ATTACHED, "the live managers are still there");
    }
}

#[test]
fn random_card_handles_are_invalid_arguments() {
    let lease = lease_with_card();
    let manager = Manager::new();
    let mut rng = Xorshift::from_env("random card handles");
    let owned = Manager::attached(lease.name());
    let real = owned.handle().unwrap();
    for _ in 0..count("SCM_RANDOM_HANDLES", 2_000, 50_000) {
        let hicc = rng.next() as usize;
        if hicc == real {
            continue;
        }
        let hr = unsafe { scm_attach_by_handle(manager.0, hicc) };
        assert_eq!(hr, SCM_E_INVALIDARG, "handle {hicc:#x}");
    }
    assert_eq!(manager.reconnect(), SCM_E_NOT_ATTACHED);
}

#[test]
fn out_of_range_enums_are_invalid_arguments() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let unattached = Manager::new();
    let name = std::ffi::CString::new(lease.name()).unwrap();
    let mut bad_shares = vec![0, 4, 5, 0x100, u32::MAX];
    bad_shares.extend((0..32).map(|bit| 1u32 << bit).filter(|v| !(1..=3).contains(v)));
    for share in bad_shares {
        let hr = unsafe { scm_attach_by_ifd_ex(unattached.0, name.as_ptr(), share, SCM_PROTOCOL_ANY) };
        assert_eq!(hr, SCM_E_INVALIDARG, "share mode {share:#x}");
    }
    let bad_protocols: Vec<u32> = (4..0xFF).chain([0x100, 0x10000, u32::MAX]).collect();
    for protocols in bad_protocols {
        for share in [SCM_SHARE_EXCLUSIVE, SCM_SHARE_SHARED, SCM_SHARE_DIRECT] {
            let hr = unsafe { scm_attach_by_ifd_ex(unattached.0, name.as_ptr(), share, protocols) };
            assert_eq!(hr, SCM_E_INVALIDARG, "protocols {protocols:#x}");
        }
    }
    for share in [SCM_SHARE_EXCLUSIVE, SCM_SHARE_SHARED] {
        let hr = unsafe { scm_attach_by_ifd_ex(unattached.0, name.as_ptr(), share, SCM_PROTOCOL_UNDEFINED) };
        assert_eq!(hr, SCM_E_INVALIDARG, "no protocol outside DIRECT");
    }
    assert_eq!(unattached.reconnect(), SCM_E_NOT_ATTACHED, "no refused attach attached it");
    ok(manager.lock());
    for disposition in [4, 5, 0xFF, 0x8000_0000, u32::MAX] {
        assert_eq!(manager.unlock(disposition), SCM_E_INVALIDARG);
        assert_eq!(unsafe { scm_detach_ex(manager.0, disposition) }, SCM_E_INVALIDARG);
    }
    // Nothing was ended by the refused calls: still attached and locked.
    echo_ok(&manager, b"still locked");
    ok(manager.unlock(SCM_LEAVE_CARD));
    assert_eq!(lease.card().counters().resets, 0);
}

#[test]
fn lengths_zero_and_size_max_with_small_buffers() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let m = manager.0;
    let apdu = echo_apdu(b"len");
    let mut small = [0u8; 64];
    // Command lengths: 0, one over the limit, SIZE_MAX: refused before anything is read.
    for command_len in [0, SCM_MAX_APDU_SIZE + 1, usize::MAX] {
        let mut len = small.len();
        let hr = unsafe { scm_transmit(m, apdu.as_ptr(), command_len, small.as_mut_ptr(), &mut len) };
        assert_eq!(hr, SCM_E_INVALIDARG, "command_len {command_len}");
        assert_eq!(len, small.len(), "length untouched on a refused call");
    }
    // Capacity 0 with a buffer: too small, the size needed is reported.
    let mut len = 0;
    let hr = unsafe { scm_transmit(m, apdu.as_ptr(), apdu.len(), small.as_mut_ptr(), &mut len) };
    assert_eq!((hr, len), (SCM_SCARD_E_INSUFFICIENT_BUFFER, 5));
    let mut len = 0;
    assert_eq!(unsafe { scm_get_atr(m, small.as_mut_ptr(), &mut len) }, SCM_SCARD_E_INSUFFICIENT_BUFFER);
    assert_eq!(len, scardmanage_lab::DEFAULT_ATR.len());
    let mut len = 0;
    assert_eq!(
        unsafe { scm_get_reader_name(m, small.as_mut_ptr().cast(), &mut len) },
        SCM_SCARD_E_INSUFFICIENT_BUFFER
    );
    assert_eq!(len, lease.name().len() + 1);
    let mut len = 0;
    assert_eq!(
        unsafe { scm_list_readers(small.as_mut_ptr().cast(), &mut len) },
        SCM_SCARD_E_INSUFFICIENT_BUFFER
    );
    assert!(len > lease.name().len());
    // SIZE_MAX as the capacity (the header asks for the truth, but a claim larger than any answer
    // must not matter): only the real answer is written, nothing past it.
    let mut big = vec![0xA5u8; SCM_MAX_APDU_SIZE];
    let mut len = usize::MAX;
    ok(unsafe { scm_transmit(m, apdu.as_ptr(), apdu.len(), big.as_mut_ptr(), &mut len) });
    assert_eq!(&big[..len], b"len\x90\x00");
    assert!(big[len..].iter().all(|&b| b == 0xA5), "nothing written past the answer");
    let mut len = usize::MAX;
    ok(unsafe { scm_get_atr(m, small.as_mut_ptr(), &mut len) });
    assert_eq!(&small[..len], scardmanage_lab::DEFAULT_ATR);
    let mut name = [0u8; 256];
    let mut len = usize::MAX;
    ok(unsafe { scm_get_reader_name(m, name.as_mut_ptr().cast(), &mut len) });
    assert_eq!(&name[..len - 1], lease.name().as_bytes());
    let mut len = usize::MAX;
    ok(unsafe { scm_list_readers(ptr::null_mut(), &mut len) });
    let mut readers = vec![0 as c_char; len];
    let mut capacity_claimed = usize::MAX;
    let _ = &mut len;
    ok(unsafe { scm_list_readers(readers.as_mut_ptr(), &mut capacity_claimed) });
    assert_eq!(capacity_claimed, readers.len());
    echo_ok(&manager, b"after");
}

/// How long a command the card link cannot carry may take to fail: RELIABILITY.md states this
/// bound (measured: a few ms at most), with room for a loaded 2-core machine.
const REFUSAL_BOUND: std::time::Duration = std::time::Duration::from_millis(250);

#[test]
fn apdus_up_to_the_largest_pcsc_carries() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    // From the shortest command header to the largest length the ABI takes: each reaches
    // PC/SC. Up to 65,535 bytes the card answers; beyond, the lab's vpcd link (16-bit
    // framing) cannot carry the command and PC/SC says NOT_TRANSACTED, at once. (Commands of
    // 1 to 3 bytes reach the driver too, but the lab's vpcd protocol reads them as power
    // messages and never answers: that would test the lab, not the library.)
    for size in [4, 5, 261, 262, 4096, 65_535, 65_536, SCM_MAX_APDU_SIZE] {
        let token = manager.0 as usize;
        let started = std::time::Instant::now();
        let result = within(std::time::Duration::from_secs(20), "an over-long APDU", move || {
            let manager = std::mem::ManuallyDrop::new(Manager(token as *mut scm_manage));
            manager.transmit(&vec![0x80u8; size])
        });
        let took = started.elapsed();
        eprintln!(
            "{size}-byte command: {:?} in {took:?}",
            result.as_ref().map(Vec::len).map_err(|e| format!("{e:#x}"))
        );
        if size <= 65_535 {
            assert_eq!(result, Ok(vec![0x6D, 0x00]), "{size}: the applet's unknown-INS answer");
        } else {
            assert_eq!(result, Err(SCM_SCARD_E_NOT_TRANSACTED), "{size}: more than vpcd carries");
            assert!(took < bound(REFUSAL_BOUND), "{size}: NOT_TRANSACTED took {took:?}");
        }
    }
    // vpcd frames messages with a 16-bit length, so a longer command leaves the lab's card
    // link out of step: put the card back (a lab artifact), then the manager recovers as
    // after any removal.
    lease.card().remove();
    assert!(scardmanage_lab::wait_card(lease.name(), false, WAIT));
    std::thread::sleep(std::time::Duration::from_millis(500));
    lease.insert();
    assert!(scardmanage_lab::wait_card(lease.name(), true, WAIT));
    ok(manager.reconnect());
    echo_ok(&manager, b"still works");
}

#[test]
fn invalid_utf8_and_utf16_names_are_invalid_arguments() {
    let _lab = scardmanage_lab::shared();
    let manager = Manager::new();
    let m = manager.0;
    let bad_utf8: &[&[u8]] = &[
        b"\xFF\0",
        b"Lab\xC0\x80\0",      // overlong NUL
        b"\x80Lab\0",          // lone continuation byte
        b"Lab \xE2\x82\0",     // truncated sequence
        b"\xED\xA0\x80\0",     // an encoded surrogate
        b"\xF4\x90\x80\x80\0", // beyond U+10FFFF
        b"\0",                 // empty
    ];
    for name in bad_utf8 {
        let hr = unsafe { scm_attach_by_ifd(m, name.as_ptr().cast()) };
        assert_eq!(hr, SCM_E_INVALIDARG, "{name:x?}");
    }
    // No NUL within the bound: refused without reading past it.
    let long = vec![b'a'; 4096];
    assert_eq!(unsafe { scm_attach_by_ifd(m, long.as_ptr().cast()) }, SCM_E_INVALIDARG);
    let bad_utf16: &[&[u16]] =
        &[&[0xD800, 0], &[0xDC00, 0x41, 0], &[0x41, 0xD83D, 0], &[0xD83D, 0xD83D, 0xDE00, 0xDE00, 0], &[0]];
    for name in bad_utf16 {
        let hr = unsafe { scm_attach_by_ifd_w(m, name.as_ptr()) };
        assert_eq!(hr, SCM_E_INVALIDARG, "{name:x?}");
    }
    let long = vec![0x41u16; 4096];
    assert_eq!(unsafe { scm_attach_by_ifd_w(m, long.as_ptr()) }, SCM_E_INVALIDARG);
    // Random byte strings: refused as invalid or as an unknown reader, nothing else.
    let mut rng = Xorshift::from_env("random reader names");
    let (mut invalid, mut unknown) = (0, 0);
    for _ in 0..count("SCM_RANDOM_NAMES", 3_000, 100_000) {
        let len = rng.below(40);
        let name: Vec<u8> = (0..len).map(|_| rng.next() as u8 | 1).chain([0]).collect();
        let wide: Vec<u16> = name
            .chunks(2)
            .map(|c| u16::from(c[0]) << 8 | u16::from(*c.get(1).unwrap_or(&0)))
            .chain([0])
            .collect();
        for hr in
            unsafe { [scm_attach_by_ifd(m, name.as_ptr().cast()), scm_attach_by_ifd_w(m, wide.as_ptr())] }
        {
            match hr {
                SCM_E_INVALIDARG => invalid += 1,
                SCM_SCARD_E_UNKNOWN_READER => unknown += 1,
                other => panic!("{name:x?}: {other:#x}"),
            }
        }
    }
    eprintln!("random names: {invalid} invalid, {unknown} unknown readers");
    assert!(invalid > 0 && unknown > 0);
    assert_eq!(manager.reconnect(), SCM_E_NOT_ATTACHED);
}

#[test]
fn error_message_takes_any_value() {
    let mut rng = Xorshift::from_env("error messages");
    for _ in 0..100_000 {
        let text = unsafe { CStr::from_ptr(scm_error_message(rng.next() as i32)) };
        assert!(!text.to_bytes().is_empty());
    }
    for hr in [i32::MIN, i32::MAX, -1, 0, 1] {
        assert!(!unsafe { CStr::from_ptr(scm_error_message(hr)) }.to_bytes().is_empty());
    }
}

#[test]
fn a_panic_inside_a_call_is_unexpected_and_the_library_keeps_working() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let other = Manager::attached(lease.name());
    for round in 0..count("SCM_PANICS", 50, 1_000) {
        scardmanage::test_hooks::panic_in_next_manager_call();
        let hr = match round % 3 {
            0 => manager.status().unwrap_err(),
            1 => manager.transmit(&echo_apdu(b"p")).unwrap_err(),
            _ => manager.lock(),
        };
        assert_eq!(hr, SCM_E_UNEXPECTED, "round {round}");
        // The same manager (whose lock the panic poisoned) and the others still work.
        echo_ok(&manager, b"after a panic");
        echo_ok(&other, b"other");
    }
    ok(manager.lock());
    ok(manager.unlock(SCM_LEAVE_CARD));
    let released = manager.0;
    drop(manager);
    assert_eq!(unsafe { scm_status(released, &mut 0, &mut 0) }, SCM_E_HANDLE);
}
