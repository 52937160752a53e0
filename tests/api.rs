//! Every function of the ABI against a real pcscd with virtual readers and cards: success paths,
//! every documented error, the buffer rules, borrowed handles, and recovery by `scm_reconnect`
//! from a reset by another connection and from a card pulled and put back.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::ffi::{c_char, CStr};
use std::ptr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use pcsc::ffi;
use scardmanage::*;
use scardmanage_lab::{default_applet, lease, lease_with, wait_card, VirtualCard, DEFAULT_ATR};

#[test]
fn create_and_release() {
    assert_eq!(unsafe { scm_create(ptr::null_mut()) }, SCM_E_POINTER);
    let mut m = ptr::null_mut();
    ok(unsafe { scm_create(&mut m) });
    ok(unsafe { scm_release(m) });
    assert_eq!(unsafe { scm_release(m) }, SCM_E_HANDLE, "second release");
    assert_eq!(unsafe { scm_release(ptr::null_mut()) }, SCM_E_POINTER);
    // The slot is reused by the next manager; the old token must stay dead.
    let next = Manager::new();
    assert_eq!(unsafe { scm_reconnect(m) }, SCM_E_HANDLE);
    assert_eq!(next.reconnect(), SCM_E_NOT_ATTACHED);
}

#[test]
fn dead_and_forged_tokens_are_refused_by_every_function() {
    let released = {
        let mut m = ptr::null_mut();
        ok(unsafe { scm_create(&mut m) });
        ok(unsafe { scm_release(m) });
        m
    };
    // A generation and an index no manager of this process reaches, at the token's width.
    #[cfg(target_pointer_width = "64")]
    let forged = 0x1234_5678_9ABC_usize as *mut scm_manage;
    #[cfg(target_pointer_width = "32")]
    let forged = 0x5678_9ABC_usize as *mut scm_manage;
    for m in [released, forged] {
        let (mut state, mut protocol, mut len, mut handle) = (0, 0, 64usize, 0);
        let mut buf = [0u8; 64];
        let apdu = [0u8, 0xA4, 4, 0];
        let name = c"Lab";
        let wide = [0x41u16, 0];
        for hr in unsafe {
            [
                scm_attach_by_ifd(m, name.as_ptr()),
                scm_attach_by_ifd_w(m, wide.as_ptr()),
                scm_attach_by_ifd_ex(m, name.as_ptr(), SCM_SHARE_SHARED, SCM_PROTOCOL_ANY),
                scm_attach_by_handle(m, 1),
                scm_reconnect(m),
                scm_detach(m),
                scm_detach_ex(m, SCM_LEAVE_CARD),
                scm_lock(m),
                scm_unlock(m, SCM_LEAVE_CARD),
                scm_status(m, &mut state, &mut protocol),
                scm_transmit(m, apdu.as_ptr(), apdu.len(), buf.as_mut_ptr(), &mut len),
                scm_get_atr(m, buf.as_mut_ptr(), &mut len),
                scm_get_reader_name(m, buf.as_mut_ptr().cast(), &mut len),
                scm_get_handle(m, &mut handle),
                scm_release(m),
            ]
        } {
            assert_eq!(hr, SCM_E_HANDLE, "{hr:#x}");
        }
    }
}

#[test]
fn null_manager_is_a_pointer_error_everywhere() {
    let m = ptr::null_mut();
    let (mut state, mut protocol, mut len, mut handle) = (0, 0, 64usize, 0);
    let mut buf = [0u8; 64];
    let apdu = [0u8, 0xA4, 4, 0];
    for hr in unsafe {
        [
            scm_attach_by_ifd(m, c"x".as_ptr()),
            scm_attach_by_ifd_w(m, [0x41u16, 0].as_ptr()),
            scm_attach_by_handle(m, 1),
            scm_reconnect(m),
            scm_detach(m),
            scm_lock(m),
            scm_unlock(m, 0),
            scm_status(m, &mut state, &mut protocol),
            scm_transmit(m, apdu.as_ptr(), 4, buf.as_mut_ptr(), &mut len),
            scm_get_atr(m, buf.as_mut_ptr(), &mut len),
            scm_get_reader_name(m, buf.as_mut_ptr().cast(), &mut len),
            scm_get_handle(m, &mut handle),
        ]
    } {
        assert_eq!(hr, SCM_E_POINTER);
    }
}

#[test]
fn unattached_manager_refuses_card_operations() {
    let manager = Manager::new();
    let m = manager.0;
    assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(manager.transmit(&[0, 0xA4, 4, 0]), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(manager.atr(), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(manager.reader_name(), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(manager.handle(), Err(SCM_E_NOT_ATTACHED));
    assert_eq!(manager.reconnect(), SCM_E_NOT_ATTACHED);
    assert_eq!(manager.lock(), SCM_E_NOT_ATTACHED);
    assert_eq!(manager.unlock(SCM_LEAVE_CARD), SCM_E_NOT_ATTACHED);
    assert_eq!(manager.detach(), SCM_E_NOT_ATTACHED);
    assert_eq!(unsafe { scm_detach_ex(m, SCM_RESET_CARD) }, SCM_E_NOT_ATTACHED);
}

#[test]
fn attach_by_name_and_use_the_card() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
    assert_eq!(manager.atr().unwrap(), DEFAULT_ATR);
    assert_eq!(manager.reader_name().unwrap(), lease.name());
    assert_ne!(manager.handle().unwrap(), 0);
    echo_ok(&manager, b"hello");
    // SELECT, and a 255-byte answer.
    assert_eq!(manager.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00]), Ok(vec![0x90, 0x00]));
    let read = manager.transmit(&[0x80, 0x20, 0x00, 0xFF, 0x00]).unwrap();
    assert_eq!(read.len(), 257);
    assert_eq!(&read[255..], &[0x90, 0x00]);
    assert!(read[..255].iter().enumerate().all(|(i, &b)| b == i as u8));
    let before = lease.card().counters().apdus;
    ok(manager.detach());
    assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));
    // Detached managers attach again, and the card was left alone.
    ok(manager.attach(lease.name()));
    echo_ok(&manager, b"again");
    assert_eq!(lease.card().counters().apdus, before + 1);
    assert_eq!(lease.card().counters().resets, 0, "LEAVE never resets the card");
}

#[test]
fn extended_length_response() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    // 65533 data bytes: the most vpcd frames (a 16-bit length) with the status word.
    let read = manager.transmit(&[0x80, 0x20, 0xFF, 0xFD, 0x00, 0x00, 0x00]).unwrap();
    assert_eq!(read.len(), 65533 + 2);
    assert_eq!(&read[65533..], &[0x90, 0x00]);
    assert_eq!(read[1000], (1000 % 256) as u8);
}

#[test]
fn attach_argument_errors() {
    let lease = lease_with_card();
    let manager = Manager::new();
    let m = manager.0;
    unsafe {
        assert_eq!(scm_attach_by_ifd(m, ptr::null()), SCM_E_POINTER);
        assert_eq!(scm_attach_by_ifd(m, c"".as_ptr()), SCM_E_INVALIDARG);
        assert_eq!(scm_attach_by_ifd(m, c"Lab \xFF\xFE".as_ptr()), SCM_E_INVALIDARG);
        assert_eq!(scm_attach_by_ifd(m, c"No Such Reader 00 00".as_ptr()), SCM_SCARD_E_UNKNOWN_READER);
        assert_eq!(scm_attach_by_ifd_w(m, ptr::null()), SCM_E_POINTER);
        assert_eq!(scm_attach_by_ifd_w(m, [0u16].as_ptr()), SCM_E_INVALIDARG);
        assert_eq!(scm_attach_by_ifd_w(m, [0x4C, 0xD800, 0x61, 0].as_ptr()), SCM_E_INVALIDARG);
        let name = std::ffi::CString::new(lease.name()).unwrap();
        for share in [0, 4, u32::MAX] {
            assert_eq!(scm_attach_by_ifd_ex(m, name.as_ptr(), share, SCM_PROTOCOL_ANY), SCM_E_INVALIDARG);
        }
        for protocols in [0, 4, 0x10000, u32::MAX] {
            assert_eq!(scm_attach_by_ifd_ex(m, name.as_ptr(), SCM_SHARE_SHARED, protocols), SCM_E_INVALIDARG);
        }
        // None of that attached it.
        assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED));

        let wide: Vec<u16> = lease.name().encode_utf16().chain([0]).collect();
        ok(scm_attach_by_ifd_w(m, wide.as_ptr()));
        assert_eq!(manager.reader_name().unwrap(), lease.name());
        assert_eq!(scm_attach_by_ifd(m, name.as_ptr()), SCM_E_NOT_ATTACHED, "attached twice");
        assert_eq!(scm_attach_by_handle(m, 1), SCM_E_NOT_ATTACHED);
        assert_eq!(scm_detach_ex(m, 4), SCM_E_INVALIDARG);
        ok(scm_detach_ex(m, SCM_LEAVE_CARD));

        ok(scm_attach_by_ifd_ex(m, name.as_ptr(), SCM_SHARE_EXCLUSIVE, SCM_PROTOCOL_T1));
        assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
        // Exclusive means exclusive: nobody else gets in.
        assert_eq!(
            RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).err(),
            Some(SCM_SCARD_E_SHARING_VIOLATION)
        );
        ok(scm_detach(m));
        ok(scm_attach_by_ifd_ex(m, name.as_ptr(), SCM_SHARE_DIRECT, SCM_PROTOCOL_UNDEFINED));
        ok(scm_detach(m));
    }
}

#[test]
fn a_reader_without_a_card_attaches_and_reconnect_connects_the_card_later() {
    let lease = lease();
    let manager = Manager::attached(lease.name());
    assert_eq!(manager.status(), Ok((SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED)));
    assert_eq!(manager.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_E_NO_SMARTCARD));
    assert_eq!(manager.atr(), Err(SCM_SCARD_E_NO_SMARTCARD));
    assert_eq!(manager.handle(), Err(SCM_SCARD_E_NO_SMARTCARD));
    assert_eq!(manager.lock(), SCM_SCARD_E_NO_SMARTCARD);
    assert_eq!(manager.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED);
    assert_eq!(manager.reconnect(), SCM_SCARD_E_NO_SMARTCARD);
    assert_eq!(manager.reader_name().unwrap(), lease.name(), "still attached to the reader");

    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT));
    assert_eq!(manager.status(), Ok((SCM_STATE_PRESENT, SCM_PROTOCOL_UNDEFINED)));
    ok(manager.reconnect());
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
    echo_ok(&manager, b"late card");
}

#[test]
fn buffer_rules() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let m = manager.0;
    unsafe {
        // ATR: size query, too small, exact.
        let mut len = 0;
        ok(scm_get_atr(m, ptr::null_mut(), &mut len));
        assert_eq!(len, DEFAULT_ATR.len());
        let mut atr = [0xAAu8; 8];
        len = DEFAULT_ATR.len() - 1;
        assert_eq!(scm_get_atr(m, atr.as_mut_ptr(), &mut len), SCM_SCARD_E_INSUFFICIENT_BUFFER);
        assert_eq!(len, DEFAULT_ATR.len());
        assert_eq!(atr, [0xAA; 8], "nothing written to a short buffer");
        ok(scm_get_atr(m, atr.as_mut_ptr(), &mut len));
        assert_eq!(&atr[..len], DEFAULT_ATR);
        assert_eq!(scm_get_atr(m, atr.as_mut_ptr(), ptr::null_mut()), SCM_E_POINTER);

        // Reader name, NUL counted.
        let mut len = 0;
        ok(scm_get_reader_name(m, ptr::null_mut(), &mut len));
        assert_eq!(len, lease.name().len() + 1);
        let mut name = vec![0 as c_char; len];
        let mut short = len - 1;
        assert_eq!(scm_get_reader_name(m, name.as_mut_ptr(), &mut short), SCM_SCARD_E_INSUFFICIENT_BUFFER);
        assert_eq!(short, len);
        ok(scm_get_reader_name(m, name.as_mut_ptr(), &mut len));
        assert_eq!(CStr::from_ptr(name.as_ptr()).to_str().unwrap(), lease.name());
        assert_eq!(scm_get_reader_name(m, name.as_mut_ptr(), ptr::null_mut()), SCM_E_POINTER);

        // Transmit: a size query and a short buffer still send the command.
        let apdu = echo_apdu(b"0123456789");
        let sent = lease.card().counters().apdus;
        let mut len = 0;
        ok(scm_transmit(m, apdu.as_ptr(), apdu.len(), ptr::null_mut(), &mut len));
        assert_eq!(len, 12);
        let mut response = [0u8; 12];
        let mut short = 11;
        assert_eq!(
            scm_transmit(m, apdu.as_ptr(), apdu.len(), response.as_mut_ptr(), &mut short),
            SCM_SCARD_E_INSUFFICIENT_BUFFER
        );
        assert_eq!(short, 12);
        ok(scm_transmit(m, apdu.as_ptr(), apdu.len(), response.as_mut_ptr(), &mut len));
        assert_eq!(&response, b"0123456789\x90\x00");
        assert_eq!(lease.card().counters().apdus, sent + 3, "every call sent the command");

        // Transmit arguments.
        let mut len = response.len();
        assert_eq!(scm_transmit(m, ptr::null(), 4, response.as_mut_ptr(), &mut len), SCM_E_POINTER);
        assert_eq!(
            scm_transmit(m, apdu.as_ptr(), apdu.len(), response.as_mut_ptr(), ptr::null_mut()),
            SCM_E_POINTER
        );
        assert_eq!(scm_transmit(m, apdu.as_ptr(), 0, response.as_mut_ptr(), &mut len), SCM_E_INVALIDARG);
        assert_eq!(
            scm_transmit(m, apdu.as_ptr(), SCM_MAX_APDU_SIZE + 1, response.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        assert_eq!(
            scm_transmit(m, apdu.as_ptr(), usize::MAX, response.as_mut_ptr(), &mut len),
            SCM_E_INVALIDARG
        );
        assert_eq!(lease.card().counters().apdus, sent + 3, "refused commands are not sent");

        // Handle and status out-parameters.
        assert_eq!(scm_get_handle(m, ptr::null_mut()), SCM_E_POINTER);
        let mut state = 0;
        assert_eq!(scm_status(m, &mut state, ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_status(m, ptr::null_mut(), &mut state), SCM_E_POINTER);
    }
}

#[test]
fn list_readers_follows_the_buffer_rules() {
    let names = list_readers().unwrap();
    let lab: Vec<String> = scardmanage_lab::shared().readers().iter().map(|r| r.name.clone()).collect();
    assert_eq!(names, lab);
    unsafe {
        assert_eq!(scm_list_readers(ptr::null_mut(), ptr::null_mut()), SCM_E_POINTER);
        let mut len = 0;
        ok(scm_list_readers(ptr::null_mut(), &mut len));
        let mut buf = vec![0x55 as c_char; len];
        let mut short = len - 1;
        assert_eq!(scm_list_readers(buf.as_mut_ptr(), &mut short), SCM_SCARD_E_INSUFFICIENT_BUFFER);
        assert_eq!(short, len);
        assert!(buf.iter().all(|&c| c == 0x55));
    }
}

#[test]
fn messages_and_version() {
    for hr in [SCM_S_OK, SCM_E_POINTER, SCM_E_HANDLE, SCM_SCARD_W_RESET_CARD, 0x1234_5678, -1, i32::MIN] {
        let text = message_of(hr);
        assert!(!text.is_empty(), "{hr:#x}");
    }
    assert_eq!(message_of(SCM_SCARD_E_NO_READERS_AVAILABLE), "PC/SC: no smart card reader is available");
    let version = unsafe { CStr::from_ptr(scm_version()) }.to_str().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn attach_by_handle_borrows_and_never_disconnects() {
    let lease = lease_with_card();
    let raw = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    let manager = Manager::new();
    let m = manager.0;
    unsafe {
        assert_eq!(scm_attach_by_handle(m, 0), SCM_E_INVALIDARG);
        assert_eq!(scm_attach_by_handle(m, 0x7FFF_FFF1), SCM_E_INVALIDARG);
        ok(scm_attach_by_handle(m, raw.handle as scm_hscard));
    }
    assert_eq!(manager.handle(), Ok(raw.handle as scm_hscard));
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
    assert_eq!(manager.reader_name().unwrap(), lease.name());
    assert_eq!(manager.atr().unwrap(), DEFAULT_ATR);
    echo_ok(&manager, b"borrowed");
    ok(manager.reconnect());
    echo_ok(&manager, b"reconnected");
    ok(manager.lock());
    ok(manager.unlock(SCM_LEAVE_CARD));
    for disposition in [SCM_RESET_CARD, SCM_UNPOWER_CARD, SCM_EJECT_CARD] {
        assert_eq!(unsafe { scm_detach_ex(m, disposition) }, SCM_E_INVALIDARG);
    }
    ok(manager.detach());
    // Still the owner's: it works after detach and after release.
    assert_eq!(raw.transmit(&echo_apdu(b"mine")).unwrap(), b"mine\x90\x00");
    ok(unsafe { scm_attach_by_handle(m, raw.handle as scm_hscard) });
    drop(manager);
    assert_eq!(raw.transmit(&echo_apdu(b"still")).unwrap(), b"still\x90\x00");
    assert_eq!(lease.card().counters().resets, 0);
}

#[test]
fn reset_by_another_connection_is_recovered_by_reconnect() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    echo_ok(&manager, b"before");
    let other = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    let before = lease.card().counters();
    other.reset_card().unwrap();
    let after = lease.card().counters();
    assert!(after.resets + after.power_off > before.resets + before.power_off, "{before:?} -> {after:?}");
    assert_eq!(manager.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
    ok(manager.reconnect());
    assert_eq!(manager.status(), Ok((SCM_STATE_SPECIFIC, SCM_PROTOCOL_T1)));
    echo_ok(&manager, b"after");
    let last = lease.card().counters();
    assert_eq!(
        (last.resets, last.power_off),
        (after.resets, after.power_off),
        "reconnect left the card alone"
    );
}

#[test]
fn card_removed_and_reinserted_is_recovered_by_reconnect() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    echo_ok(&manager, b"before");
    lease.card().remove();
    assert!(wait_card(lease.name(), false, WAIT));
    let failure = manager.transmit(&echo_apdu(b"x")).unwrap_err();
    assert!(
        [SCM_SCARD_W_REMOVED_CARD, SCM_SCARD_E_NO_SMARTCARD].contains(&failure),
        "{failure:#x}: {}",
        message_of(failure)
    );
    assert_eq!(manager.reconnect(), SCM_SCARD_E_NO_SMARTCARD, "nothing to connect yet");
    assert_eq!(manager.status(), Ok((SCM_STATE_ABSENT, SCM_PROTOCOL_UNDEFINED)));
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT));
    ok(manager.reconnect());
    echo_ok(&manager, b"after");
}

#[test]
fn card_swapped_while_attached_is_recovered_by_reconnect() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    lease.card().remove();
    assert!(wait_card(lease.name(), false, WAIT));
    // Another card, told apart by its ATR (T=1 only, one historical byte).
    let other_atr = vec![0x3B, 0x81, 0x01, 0x55, 0xD5];
    let other = VirtualCard::new(other_atr.clone(), default_applet);
    other.insert(lease.port());
    assert!(wait_card(lease.name(), true, WAIT));
    assert_eq!(
        manager.transmit(&echo_apdu(b"x")),
        Err(SCM_SCARD_W_REMOVED_CARD),
        "the old connection is gone"
    );
    ok(manager.reconnect());
    assert_eq!(manager.atr(), Ok(other_atr));
    echo_ok(&manager, b"new card");
    other.remove();
}

#[test]
fn a_borrowed_exclusive_handle_stays_exclusive_after_reconnect() {
    let lease = lease_with_card();
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_EXCLUSIVE).unwrap();
    let manager = Manager::borrowing(&owner);
    ok(manager.reconnect());
    echo_ok(&manager, b"still mine");
    // Anyone else is still refused at once: the reconnect kept the owner's share mode.
    let name = lease.name().to_owned();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(RawConnection::connect(&name, ffi::SCARD_SHARE_SHARED).err()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(Some(SCM_SCARD_E_SHARING_VIOLATION)));
    ok(manager.detach());
    assert_eq!(owner.transmit(&echo_apdu(b"owner")).unwrap(), b"owner\x90\x00");
}

#[test]
fn a_borrowed_handle_recovers_from_a_reset_by_another_connection() {
    let lease = lease_with_card();
    let owner = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    let manager = Manager::borrowing(&owner);
    let other = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
    other.reset_card().unwrap();
    assert_eq!(manager.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
    ok(manager.reconnect());
    echo_ok(&manager, b"recovered");
    assert_eq!(owner.transmit(&echo_apdu(b"owner too")).unwrap(), b"owner too\x90\x00");
}

#[test]
fn transmit_in_place() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    // One buffer for the command and the answer, large (PC/SC writes into it) and small (the
    // answer is copied in).
    for size in [SCM_MAX_APDU_SIZE, 64] {
        let mut buf = vec![0u8; size];
        let command = echo_apdu(b"in place");
        buf[..command.len()].copy_from_slice(&command);
        let mut len = buf.len();
        let hr = unsafe { scm_transmit(manager.0, buf.as_ptr(), command.len(), buf.as_mut_ptr(), &mut len) };
        ok(hr);
        assert_eq!(&buf[..len], b"in place\x90\x00", "buffer of {size}");
    }
}

#[test]
fn checks_come_in_the_documented_order() {
    let released = {
        let manager = Manager::new();
        let m = manager.0;
        drop(manager);
        m
    };
    let unattached = Manager::new();
    let apdu = [0u8, 0xA4, 4, 0];
    let mut len = 0usize;
    unsafe {
        // A NULL manager first, whatever else is wrong.
        assert_eq!(
            scm_transmit(ptr::null_mut(), ptr::null(), 0, ptr::null_mut(), ptr::null_mut()),
            SCM_E_POINTER
        );
        assert_eq!(scm_detach_ex(ptr::null_mut(), 9), SCM_E_POINTER);
        // Then a dead token, whatever else is wrong.
        assert_eq!(scm_transmit(released, apdu.as_ptr(), 0, ptr::null_mut(), &mut len), SCM_E_HANDLE);
        assert_eq!(scm_detach_ex(released, 9), SCM_E_HANDLE);
        assert_eq!(scm_unlock(released, 9), SCM_E_HANDLE);
        assert_eq!(scm_attach_by_ifd_ex(released, c"".as_ptr(), 0, 0), SCM_E_HANDLE);
        assert_eq!(scm_status(released, ptr::null_mut(), ptr::null_mut()), SCM_E_HANDLE);
        // Then the arguments, before the manager's state.
        let m = unattached.0;
        assert_eq!(scm_detach_ex(m, 9), SCM_E_INVALIDARG);
        assert_eq!(scm_unlock(m, 9), SCM_E_INVALIDARG);
        assert_eq!(scm_transmit(m, apdu.as_ptr(), 0, ptr::null_mut(), &mut len), SCM_E_INVALIDARG);
        assert_eq!(scm_status(m, ptr::null_mut(), ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_detach_ex(m, SCM_LEAVE_CARD), SCM_E_NOT_ATTACHED);
    }
}

#[test]
fn lock_blocks_a_second_manager_until_unlock() {
    let lease = lease_with_card();
    let first = Manager::attached(lease.name());
    let second = Manager::attached(lease.name());
    assert_eq!(first.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED, "unlock without lock");
    ok(first.lock());
    ok(first.lock());
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let started = Instant::now();
        let hr = second.lock();
        done_tx.send((hr, started.elapsed())).unwrap();
        echo_ok(&second, b"second");
        ok(second.unlock(SCM_LEAVE_CARD));
    });
    assert!(done_rx.recv_timeout(Duration::from_millis(500)).is_err(), "the second lock waits");
    echo_ok(&first, b"first, locked");
    assert_eq!(first.unlock(7), SCM_E_INVALIDARG);
    ok(first.unlock(SCM_LEAVE_CARD));
    let (hr, waited) = done_rx.recv_timeout(WAIT).expect("the second lock gets through after unlock");
    ok(hr);
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    waiter.join().unwrap();
    assert_eq!(first.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED);
}

/// pcsc-lite cannot eject: `scm_unlock(SCM_EJECT_CARD)` fails, yet PC/SC has released the
/// transaction. The manager must not go on believing it holds the lock: its next `scm_lock`
/// takes a real one, which another manager then waits for. (Found by tests/model.rs.)
#[test]
fn an_unlock_whose_disposition_fails_still_ends_the_lock() {
    let lease = lease_with_card();
    let first = Manager::attached(lease.name());
    let second = Manager::attached(lease.name());
    ok(first.lock());
    let hr = first.unlock(SCM_EJECT_CARD);
    assert!(hr == SCM_S_OK || hr == SCM_SCARD_E_UNEXPECTED, "{hr:#x}: {}", message_of(hr));
    assert_eq!(first.unlock(SCM_LEAVE_CARD), SCM_SCARD_E_NOT_TRANSACTED, "the lock ended");
    ok(first.lock());
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        done_tx.send(second.lock()).unwrap();
        ok(second.unlock(SCM_LEAVE_CARD));
    });
    assert!(done_rx.recv_timeout(Duration::from_millis(500)).is_err(), "the lock after it is real");
    ok(first.unlock(SCM_LEAVE_CARD));
    assert_eq!(done_rx.recv_timeout(WAIT), Ok(SCM_S_OK));
    waiter.join().unwrap();
}

#[test]
fn release_ends_the_lock_and_the_connection() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    ok(manager.lock());
    drop(manager);
    // Another connection can lock at once: the lock ended with the release.
    let other = Manager::attached(lease.name());
    let (tx, rx) = mpsc::channel();
    let locker = thread::spawn(move || tx.send(other.lock()).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(3)), Ok(SCM_S_OK));
    locker.join().unwrap();
}

#[test]
fn detach_with_reset_resets_the_card() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let before = lease.card().counters();
    ok(unsafe { scm_detach_ex(manager.0, SCM_RESET_CARD) });
    let after = lease.card().counters();
    assert!(after.resets + after.power_off > before.resets + before.power_off, "{before:?} -> {after:?}");
}

/// Whether pcscd runs the card in `reader` RAW: a T=0|T=1 connect is then refused. Asked of
/// pcscd itself, not through `SCardStatus`: libpcsclite 1.9.9 reads its protocol from one
/// process-wide copy of the readers' states, which every thread's status or wait call
/// overwrites with the snapshot it received, so a call of the harness's other test threads can
/// leave an older one there (a clean-clone run saw T=1 reported for a card pcscd ran RAW).
fn runs_raw(reader: &str) -> bool {
    match RawConnection::connect(reader, ffi::SCARD_SHARE_SHARED) {
        Ok(_) => false,
        Err(code) => {
            assert_eq!(code, SCM_SCARD_E_PROTO_MISMATCH, "{}", message_of(code));
            true
        }
    }
}

#[test]
fn detach_with_a_disposition_after_a_reset_and_a_raw_connection_still_carries_it_out() {
    // Another program resets the card, then a third connects it RAW: pcscd now runs the card
    // RAW, and a reconnect asking T=0 or T=1 is refused with PROTO_MISMATCH. The reset warning
    // must still be cleared so that the disposition asked for is carried out.
    for disposition in [SCM_RESET_CARD, SCM_UNPOWER_CARD, SCM_EJECT_CARD] {
        // A card of its own each time: pcscd keeps a card RAW until it is reset, powered off or
        // removed, and it cannot eject.
        let lease = lease_with_card();
        let manager = Manager::attached(lease.name());
        let other = RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
        other.reset_card().unwrap();
        let raw = Manager::new();
        let name = std::ffi::CString::new(lease.name()).unwrap();
        ok(unsafe { scm_attach_by_ifd_ex(raw.0, name.as_ptr(), SCM_SHARE_SHARED, SCM_PROTOCOL_RAW) });
        assert!(runs_raw(lease.name()), "the card runs RAW");
        let before = lease.card().counters();
        ok(unsafe { scm_detach_ex(manager.0, disposition) });
        assert_eq!(manager.status(), Err(SCM_E_NOT_ATTACHED), "disposition {disposition}");
        if disposition == SCM_EJECT_CARD {
            // pcscd ends an EJECT disconnect leaving the card: RAW still, and nobody warned.
            assert!(runs_raw(lease.name()), "EJECT left the card RAW");
            assert_eq!(other.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_E_PROTO_MISMATCH));
            continue;
        }
        // The other connections are told of the reset or power-down (a detach that ended
        // leaving the card would tell them nothing: the first's T=1 transmit would meet the
        // RAW card's PROTO_MISMATCH), and the card saw it: pcscd sends the power-down without
        // waiting for an answer, so the card may count it a moment after the detach returned.
        assert_eq!(other.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
        assert_eq!(raw.transmit(&echo_apdu(b"x")), Err(SCM_SCARD_W_RESET_CARD));
        let deadline = Instant::now() + WAIT;
        let seen = |c: scardmanage_lab::Counters| c.resets + c.power_off;
        while seen(lease.card().counters()) == seen(before) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(seen(lease.card().counters()) > seen(before), "{before:?} -> {:?}", lease.card().counters());
        // The disposition ended RAW: T=0|T=1 connects again.
        assert!(!runs_raw(lease.name()), "disposition {disposition} ended RAW");
        ok(manager.attach(lease.name()));
    }
}

#[test]
fn detach_clearing_a_reset_never_switches_another_connection_to_raw() {
    // A card offering T=0 and T=1 (ATR 3B 80 80 01 01). After a reset, another program connects
    // it T=0; the manager asked T=1 only, so its own protocols are refused, and T=0 or T=1 clears
    // the reset: the T=0 connection keeps running T=0. Asking RAW there would switch it to RAW.
    let lease = lease_with(VirtualCard::new(vec![0x3B, 0x80, 0x80, 0x01, 0x01], default_applet));
    lease.insert();
    assert!(wait_card(lease.name(), true, WAIT), "card seen in {}", lease.name());
    let attach = |protocols| {
        let manager = Manager::new();
        let name = std::ffi::CString::new(lease.name()).unwrap();
        ok(unsafe { scm_attach_by_ifd_ex(manager.0, name.as_ptr(), SCM_SHARE_SHARED, protocols) });
        manager
    };
    for own in [SCM_PROTOCOL_T1, SCM_PROTOCOL_RAW] {
        // The other program connects (ANY) before a RAW attach, which would refuse it, and after
        // a T=1 one, which it then matches; then it resets the card asking T=0: the card runs T=0.
        let connect = || RawConnection::connect(lease.name(), ffi::SCARD_SHARE_SHARED).unwrap();
        let (manager, other) = if own == SCM_PROTOCOL_RAW {
            let other = connect();
            (attach(own), other)
        } else {
            (attach(own), connect())
        };
        let mut active = 0;
        let rv = unsafe {
            ffi::SCardReconnect(
                other.handle,
                ffi::SCARD_SHARE_SHARED,
                ffi::SCARD_PROTOCOL_T0,
                ffi::SCARD_RESET_CARD,
                &mut active,
            )
        };
        assert_eq!((rv, active), (0, ffi::SCARD_PROTOCOL_T0));
        ok(unsafe { scm_detach_ex(manager.0, SCM_EJECT_CARD) });
        assert!(!runs_raw(lease.name()), "a manager attached {own:#x} switched the card to RAW");
        drop(other);
    }
}
