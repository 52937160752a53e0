//! Card holder verification and card authentication against the lab's ISO card through a real
//! pcscd: wrong PIN down to blocked with the tries counted, unblock with the PUK, change of code,
//! the security state reset; challenges, INTERNAL AUTHENTICATE checked against the card's key,
//! EXTERNAL AUTHENTICATE accepted and refused.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;
mod iso_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

use common::ok;
use iso_support::*;
use scardmanage::*;
use scardmanage_lab::iso::{self, Hostile, IsoOptions};

/// The global allocator: on a thread watching for a code, each block freed is searched for it,
/// as a look at freed memory would find it. Only the test's own thread watches, and only
/// around its library calls: the lab's card answers on other threads and keeps its copies.
struct Watching;

thread_local! {
    static WATCHED: Cell<Option<&'static [u8]>> = const { Cell::new(None) };
    static FREED_WITH_CODE: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator, blocks handed out zeroed so that every
// byte the search reads is initialized (the bytes past a vector's length were never written
// through it); a block is only read, and before it is freed. (The default `realloc` allocates
// through `alloc` and frees through `dealloc`: a moved block is searched too.)
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded (zeroed: see above).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if let Some(code) = WATCHED.try_with(Cell::get).ok().flatten() {
            // Volatile reads: the compiler may not assume what a freed block holds.
            let holds = |at: usize| {
                // SAFETY: `at + i` is within the block, still allocated.
                code.iter().enumerate().all(|(i, &byte)| unsafe { block.add(at + i).read_volatile() } == byte)
            };
            if layout.size() >= code.len() && (0..=layout.size() - code.len()).any(holds) {
                FREED_WITH_CODE.with(|count| count.set(count.get() + 1));
            }
        }
        // SAFETY: forwarded.
        unsafe { System.dealloc(block, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// The blocks freed on this thread during `call` that still held `code`.
fn freed_with(code: &'static [u8], call: impl FnOnce()) -> usize {
    FREED_WITH_CODE.with(|count| count.set(0));
    WATCHED.with(|watched| watched.set(Some(code)));
    call();
    WATCHED.with(|watched| watched.set(None));
    FREED_WITH_CODE.with(Cell::get)
}

/// READ BINARY of the PIN-protected EF by SFI: its status word.
fn read_secret(reader: &IsoReader) -> Vec<u8> {
    let answer = reader.transmit_ex(SCM_ISO_ALL, &[0x00, 0xB0, 0x80 | iso::SFI_SECRET, 0, 0]).unwrap();
    answer[answer.len() - 2..].to_vec()
}

#[test]
fn wrong_pin_down_to_blocked_then_unblocked_with_the_puk() {
    for options in [IsoOptions::default(), IsoOptions::T0] {
        let reader = IsoReader::new(options);
        reader.select_application();
        let chv = reader.chv();
        let pin = u32::from(iso::PIN_REF);
        assert_eq!(chv.tries_left(pin), Ok(iso::PIN_TRIES as u32));
        for left in (0..iso::PIN_TRIES as u32).rev() {
            assert_eq!(chv.verify(pin, b"9999"), (SCM_SCARD_W_WRONG_CHV, Some(left)));
            if left > 0 {
                assert_eq!(chv.tries_left(pin), Ok(left));
            }
        }
        assert_eq!(chv.verify(pin, iso::PIN), (SCM_SCARD_W_CHV_BLOCKED, Some(0)), "even the right PIN");
        assert_eq!(chv.tries_left(pin), Err((SCM_SCARD_W_CHV_BLOCKED, 0)));
        assert_eq!(read_secret(&reader), [0x69, 0x82]);
        // A wrong PUK counts down the PUK's tries.
        let mut tries = 0;
        let new_pin = b"4321";
        let hr = unsafe {
            scm_chv_unblock(chv.0, pin, b"00000000".as_ptr(), 8, new_pin.as_ptr(), 4, 0, &mut tries)
        };
        assert_eq!((hr, tries), (SCM_SCARD_W_WRONG_CHV, iso::PUK_TRIES as u32 - 1));
        ok(unsafe {
            scm_chv_unblock(chv.0, pin, iso::PUK.as_ptr(), iso::PUK.len(), new_pin.as_ptr(), 4, 0, &mut tries)
        });
        assert_eq!(chv.tries_left(pin), Ok(iso::PIN_TRIES as u32));
        assert_eq!(
            chv.verify(pin, iso::PIN),
            (SCM_SCARD_W_WRONG_CHV, Some(iso::PIN_TRIES as u32 - 1)),
            "the old PIN is gone"
        );
        assert_eq!(chv.verify(pin, new_pin), (SCM_S_OK, None));
        assert_eq!(chv.tries_left(pin), Ok(SCM_TRIES_UNKNOWN), "verified: 90 00 says no count");
        assert_eq!(read_secret(&reader), [0x90, 0x00]);
    }
}

#[test]
fn change_code_reset_security_state_and_user_auth() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let chv = reader.chv();
    let pin = u32::from(iso::PIN_REF);
    let mut tries = 0xEE;
    unsafe {
        // Wrong old code: counted like VERIFY.
        let hr = scm_chv_change_code(chv.0, pin, b"0000".as_ptr(), 4, b"5678".as_ptr(), 4, 0, &mut tries);
        assert_eq!((hr, tries), (SCM_SCARD_W_WRONG_CHV, 2));
        ok(scm_chv_change_code(chv.0, pin, iso::PIN.as_ptr(), 4, b"5678".as_ptr(), 4, 0, ptr::null_mut()));
        // New code only (P1 01) needs the reference verified first.
        assert_eq!(
            scm_chv_change_code(chv.0, pin, ptr::null(), 0, b"8765".as_ptr(), 4, 0, ptr::null_mut()),
            SCM_SCARD_W_SECURITY_VIOLATION
        );
        assert_eq!(chv.verify(pin, b"5678"), (SCM_S_OK, None));
        ok(scm_chv_change_code(chv.0, pin, ptr::null(), 0, b"8765".as_ptr(), 4, 0, ptr::null_mut()));
        assert_eq!(read_secret(&reader), [0x90, 0x00]);
        // The reset forgets the verification.
        ok(scm_chv_reset_security_state(chv.0));
        assert_eq!(read_secret(&reader), [0x69, 0x82]);
        ok(scm_chv_reset_security_state(chv.0)); // nothing left to reset
                                                 // User authentication is VERIFY.
        let auth = reader.auth();
        assert_eq!(scm_auth_user_auth(auth.0, pin, b"8765".as_ptr(), 4, &mut tries), SCM_S_OK);
        assert_eq!(read_secret(&reader), [0x90, 0x00]);
        tries = 0xEE;
        assert_eq!(scm_auth_user_auth(auth.0, pin, b"1111".as_ptr(), 4, &mut tries), SCM_SCARD_W_WRONG_CHV);
        assert_eq!(tries, 2);
        // The PIN without a counter: 63 00, tries unknown.
        assert_eq!(
            chv.verify(u32::from(iso::PIN2_REF), b"1111"),
            (SCM_SCARD_W_WRONG_CHV, Some(SCM_TRIES_UNKNOWN))
        );
        assert_eq!(chv.verify(u32::from(iso::PIN2_REF), iso::PIN2), (SCM_S_OK, None));
        // An unknown reference is the card's status, kept in the code.
        assert_eq!(chv.verify(0x85, b"1234").0, scm_card_status(0x6A88));
        assert_eq!(chv.verify(0x85, b"1234").0, SCM_E_CARD_STATUS_6A88);
    }
}

/// `SCM_E_CARD_STATUS(0x6A88)` as the header's macro computes it.
const SCM_E_CARD_STATUS_6A88: scm_hresult = 0xA0FF_6A88_u32 as i32;

#[test]
fn chv_arguments_are_checked_before_anything_is_sent() {
    let reader = IsoReader::new(IsoOptions::default());
    let chv = reader.chv();
    let before = reader.card.commands_received();
    let mut tries = 0;
    unsafe {
        assert_eq!(scm_chv_verify(chv.0, 0x81, ptr::null(), 4, 0, &mut tries), SCM_E_POINTER);
        assert_eq!(scm_chv_verify(chv.0, 0x81, b"1234".as_ptr(), 0, 0, &mut tries), SCM_E_INVALIDARG);
        assert_eq!(scm_chv_verify(chv.0, 0x100, b"1234".as_ptr(), 4, 0, &mut tries), SCM_E_INVALIDARG);
        assert_eq!(scm_chv_verify(chv.0, 0x81, b"1234".as_ptr(), 4, 2, &mut tries), SCM_E_INVALIDARG);
        assert_eq!(
            scm_chv_verify(chv.0, 0x81, b"123456789".as_ptr(), 9, SCM_CHV_PAD_FF, &mut tries),
            SCM_E_INVALIDARG
        );
        assert_eq!(scm_chv_verify(chv.0, 0x81, b"1234".as_ptr(), 70_000, 0, &mut tries), SCM_E_INVALIDARG);
        assert_eq!(
            scm_chv_change_code(chv.0, 0x81, b"1234".as_ptr(), 4, ptr::null(), 0, 0, &mut tries),
            SCM_E_INVALIDARG
        );
        assert_eq!(scm_chv_get_tries_left(chv.0, 0x81, ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_chv_get_tries_left(chv.0, 0x1_0081, &mut tries), SCM_E_INVALIDARG);
    }
    assert_eq!(reader.card.commands_received(), before);
    // Padding: the lab's PIN is 4 bytes, so "1234" padded to 8 is a wrong code, and counted.
    reader.select_application();
    let hr = unsafe { scm_chv_verify(chv.0, 0x81, iso::PIN.as_ptr(), 4, SCM_CHV_PAD_FF, &mut tries) };
    assert_eq!((hr, tries), (SCM_SCARD_W_WRONG_CHV, 2));
}

#[test]
fn codes_leave_no_copy_in_memory_the_library_frees() {
    const CODE: &[u8] = b"Zq8#Lw2!";
    assert_eq!(freed_with(CODE, || drop(std::hint::black_box(CODE.to_vec()))), 1, "the watch sees a copy");
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let chv = reader.chv();
    let pin = u32::from(iso::PIN_REF);
    let verify = || assert_eq!(chv.verify(pin, CODE), (SCM_SCARD_W_WRONG_CHV, Some(2)));
    assert_eq!(freed_with(CODE, verify), 0, "VERIFY");
    let padded = || {
        let hr = unsafe { scm_chv_verify(chv.0, pin, CODE.as_ptr(), 5, SCM_CHV_PAD_FF, ptr::null_mut()) };
        assert_eq!(hr, SCM_SCARD_W_WRONG_CHV);
    };
    assert_eq!(freed_with(&CODE[..5], padded), 0, "VERIFY of a padded code");
    let change = || {
        let hr = unsafe {
            scm_chv_change_code(chv.0, pin, iso::PIN.as_ptr(), 4, CODE.as_ptr(), 8, 0, ptr::null_mut())
        };
        assert_eq!(hr, SCM_S_OK);
    };
    assert_eq!(freed_with(CODE, change), 0, "CHANGE REFERENCE DATA");
    assert_eq!(chv.verify(pin, CODE), (SCM_S_OK, None), "the new code took");
}

#[test]
fn a_lying_tries_counter_is_reported_as_the_card_says() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    reader.card.set_hostile(Hostile::LyingTriesLeft);
    let chv = reader.chv();
    assert_eq!(chv.verify(0x81, b"9999"), (SCM_SCARD_W_WRONG_CHV, Some(4)));
    assert_eq!(chv.verify(0x81, b"9999"), (SCM_SCARD_W_WRONG_CHV, Some(5)));
}

#[test]
fn challenges_and_authentication() {
    for options in [IsoOptions::default(), IsoOptions::T0] {
        let reader = IsoReader::new(options);
        reader.select_application();
        let auth = reader.auth();
        let key = u32::from(iso::AUTH_KEY_REF);
        for len in [1, 8, 255, 256] {
            let challenge = auth.challenge(len).unwrap();
            assert_eq!(challenge.len(), len);
        }
        let (a, b) = (auth.challenge(16).unwrap(), auth.challenge(16).unwrap());
        assert_ne!(a, b, "challenges differ");
        assert_eq!(auth.challenge(0), Err(SCM_E_INVALIDARG));
        if options.t0 {
            assert_eq!(auth.challenge(257), Err(SCM_E_INVALIDARG), "one short answer carries 256");
        }
        // INTERNAL AUTHENTICATE: the card's answer is its key applied to the data.
        let data: Vec<u8> = (0..200).collect();
        assert_eq!(auth.icc_auth(key, &data).unwrap(), iso::auth_response(&data));
        // EXTERNAL AUTHENTICATE: right over the last challenge, wrong, and without a challenge.
        let challenge = auth.challenge(8).unwrap();
        assert_eq!(auth.app_auth(key, &iso::auth_response(&challenge)), SCM_S_OK);
        assert_eq!(auth.app_auth(key, &iso::auth_response(&challenge)), SCM_SCARD_E_NO_ACCESS, "used once");
        let challenge = auth.challenge(8).unwrap();
        assert_eq!(auth.app_auth(key, &challenge), SCM_SCARD_W_SECURITY_VIOLATION);
        assert_eq!(auth.app_auth(0x100, &challenge), SCM_E_INVALIDARG);
    }
    let extended = IsoReader::new(IsoOptions::default());
    extended.select_application();
    let auth = extended.auth();
    // The card takes at most 256 in one challenge: a longer Le is its "wrong length".
    assert_eq!(auth.challenge(300), Err(scm_card_status(0x6700)));
    // The longest Le of an extended command is still the card's to refuse; one byte more the
    // library refuses before anything is sent.
    assert_eq!(auth.challenge(65_536), Err(scm_card_status(0x6700)));
    let before = extended.card.commands_received();
    assert_eq!(auth.challenge(65_537), Err(SCM_E_INVALIDARG));
    assert_eq!(extended.card.commands_received(), before);
}

#[test]
fn auth_buffers_and_empty_successes() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let auth = reader.auth();
    let data = [7u8; 32];
    let (mut small, mut len) = ([0u8; 8], 8usize);
    unsafe {
        assert_eq!(
            scm_auth_icc_auth(auth.0, 0, 1, data.as_ptr(), 32, small.as_mut_ptr(), &mut len),
            SCM_SCARD_E_INSUFFICIENT_BUFFER
        );
        assert_eq!(len, 32);
        len = 0;
        ok(scm_auth_icc_auth(auth.0, 0, 1, data.as_ptr(), 32, ptr::null_mut(), &mut len));
        assert_eq!(len, 32);
        assert_eq!(scm_auth_get_challenge(auth.0, ptr::null_mut(), &mut len), SCM_E_POINTER);
        assert_eq!(scm_auth_get_challenge(auth.0, small.as_mut_ptr(), ptr::null_mut()), SCM_E_POINTER);
    }
    reader.card.set_hostile(Hostile::EmptySuccess);
    assert_eq!(auth.challenge(8), Err(SCM_SCARD_E_COMM_DATA_LOST));
    assert_eq!(auth.icc_auth(1, &data), Err(SCM_SCARD_E_COMM_DATA_LOST));
}
