//! Reader attributes and reader control against the lab's vpcd readers (vsmartcard 3.3), which
//! answer no attribute and no control code of their own: what the library answers itself (the
//! ATR, the names) and how it reports the rest.
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::ptr;

use common::*;
use scardmanage::*;
use scardmanage_lab::{wait_card, DEFAULT_ATR};

fn attrib(manager: &Manager, attribute: u32) -> Result<Vec<u8>, scm_hresult> {
    let mut len = 0;
    // SAFETY: a NULL buffer asks for the size.
    let hr = unsafe { scm_get_attrib(manager.0, attribute, ptr::null_mut(), &mut len) };
    if hr != SCM_S_OK {
        return Err(hr);
    }
    let mut value = vec![0xEE; len];
    // SAFETY: the buffer holds `len` bytes.
    match unsafe { scm_get_attrib(manager.0, attribute, value.as_mut_ptr(), &mut len) } {
        SCM_S_OK => {
            assert_eq!(len, value.len(), "the size asked is the size written");
            Ok(value)
        }
        hr => Err(hr),
    }
}

fn control(manager: &Manager, code: u32, input: &[u8]) -> Result<Vec<u8>, scm_hresult> {
    let mut out = vec![0u8; 1024];
    let mut len = out.len();
    // SAFETY: both buffers hold the lengths given.
    match unsafe { scm_control(manager.0, code, input.as_ptr(), input.len(), out.as_mut_ptr(), &mut len) } {
        SCM_S_OK => {
            out.truncate(len);
            Ok(out)
        }
        hr => Err(hr),
    }
}

fn feature(manager: &Manager, tag: u32) -> Result<u32, scm_hresult> {
    let mut code = 0xEEEE;
    // SAFETY: a valid out-pointer.
    match unsafe { scm_get_feature(manager.0, tag, &mut code) } {
        SCM_S_OK => Ok(code),
        hr => {
            assert_eq!(code, 0xEEEE, "nothing written on failure");
            Err(hr)
        }
    }
}

fn with_nul(name: &str) -> Vec<u8> {
    name.bytes().chain([0]).collect()
}

#[test]
fn the_atr_is_answered_for_every_reader_with_a_card() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    // The driver does not answer it (SCARD_E_UNSUPPORTED_FEATURE): the library does.
    assert_eq!(attrib(&manager, SCM_ATTR_ATR_STRING), Ok(DEFAULT_ATR.to_vec()));
    assert_eq!(attrib(&manager, SCM_ATTR_ATR_STRING), Ok(manager.atr().unwrap()));
    // A reader attached empty, whose card came later and is not connected yet.
    let empty = scardmanage_lab::lease();
    let waiting = Manager::attached(empty.name());
    assert_eq!(attrib(&waiting, SCM_ATTR_ATR_STRING), Err(SCM_SCARD_E_NO_SMARTCARD));
    empty.insert();
    assert!(wait_card(empty.name(), true, WAIT));
    assert_eq!(attrib(&waiting, SCM_ATTR_ATR_STRING), Ok(DEFAULT_ATR.to_vec()));
    assert_eq!(waiting.status().map(|(state, _)| state), Ok(SCM_STATE_PRESENT), "still not connected");
}

#[test]
fn the_names_are_the_readers_in_utf8_with_their_nul() {
    let lease = lease_with_card();
    let empty = scardmanage_lab::lease();
    for (reader, manager) in
        [(lease.name(), Manager::attached(lease.name())), (empty.name(), Manager::attached(empty.name()))]
    {
        for attribute in [SCM_ATTR_DEVICE_FRIENDLY_NAME, SCM_ATTR_DEVICE_SYSTEM_NAME] {
            assert_eq!(attrib(&manager, attribute), Ok(with_nul(reader)), "{attribute:#x} of {reader}");
        }
        // The buffer rules: too small is INSUFFICIENT_BUFFER with the size needed, nothing written.
        let mut small = [0xEEu8; 4];
        let mut len = small.len();
        // SAFETY: the buffer holds `len` bytes.
        let hr =
            unsafe { scm_get_attrib(manager.0, SCM_ATTR_DEVICE_FRIENDLY_NAME, small.as_mut_ptr(), &mut len) };
        assert_eq!((hr, len, small), (SCM_SCARD_E_INSUFFICIENT_BUFFER, reader.len() + 1, [0xEE; 4]));
    }
}

#[test]
fn what_vpcd_does_not_answer_is_unsupported_feature_not_pcsclites_0x8010001f() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let unanswered = [
        SCM_ATTR_VENDOR_NAME,
        SCM_ATTR_VENDOR_IFD_TYPE,
        SCM_ATTR_VENDOR_IFD_VERSION,
        SCM_ATTR_VENDOR_IFD_SERIAL_NO,
        SCM_ATTR_CHANNEL_ID,
        SCM_ATTR_CURRENT_PROTOCOL_TYPE,
        SCM_ATTR_MAXINPUT,
        SCM_ATTR_ICC_PRESENCE,
        SCM_ATTR_ICC_INTERFACE_STATUS,
        SCM_ATTR_DEVICE_UNIT,
    ];
    let empty = scardmanage_lab::lease();
    let readerless = Manager::attached(empty.name());
    for manager in [&manager, &readerless] {
        for attribute in unanswered {
            assert_eq!(attrib(manager, attribute), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE), "{attribute:#010x}");
        }
    }
    // vpcd refuses every attribute it is given; pcsc-lite reports a driver's refusal so.
    let value = [1u8, 2, 3, 4];
    // SAFETY: the value holds 4 bytes.
    let hr = unsafe { scm_set_attrib(manager.0, SCM_ATTR_VENDOR_NAME, value.as_ptr(), value.len()) };
    assert_eq!(hr, SCM_SCARD_E_NOT_TRANSACTED, "{hr:#010x}: {}", message_of(hr));
    // SAFETY: NULL with a length is refused before anything is read.
    unsafe {
        assert_eq!(scm_set_attrib(manager.0, SCM_ATTR_VENDOR_NAME, ptr::null(), 4), SCM_E_POINTER);
        assert_eq!(
            scm_set_attrib(manager.0, SCM_ATTR_VENDOR_NAME, value.as_ptr(), SCM_MAX_APDU_SIZE + 1),
            SCM_E_INVALIDARG
        );
    }
    echo_ok(&manager, b"the card is unharmed");
}

#[test]
fn control_codes_reach_the_driver_and_features_are_reported_absent() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let empty = scardmanage_lab::lease();
    let readerless = Manager::attached(empty.name());
    for manager in [&manager, &readerless] {
        // vpcd implements no control code: the portable and the native form of
        // CM_IOCTL_GET_FEATURE_REQUEST both reach it, and both come back unsupported, on a
        // reader with a card and (through a direct connection) on an empty one.
        assert_eq!(control(manager, 3400, &[]), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE));
        assert_eq!(control(manager, 0x4200_0D48, &[]), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE));
        assert_eq!(control(manager, 1, &[0x00, 0x01]), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE));
        for tag in
            [SCM_FEATURE_VERIFY_PIN_DIRECT, SCM_FEATURE_MODIFY_PIN_DIRECT, SCM_FEATURE_IFD_PIN_PROPERTIES]
        {
            assert_eq!(feature(manager, tag), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE));
        }
        assert_eq!(feature(manager, 0), Err(SCM_E_INVALIDARG));
        assert_eq!(feature(manager, 0x100), Err(SCM_E_INVALIDARG));
    }
    assert_eq!(
        readerless.status().map(|(state, _)| state),
        Ok(SCM_STATE_ABSENT),
        "the direct connection is gone"
    );
    let mut len = 16;
    // SAFETY: NULL pointers are refused before anything is read or written.
    unsafe {
        assert_eq!(scm_control(manager.0, 3400, ptr::null(), 1, ptr::null_mut(), &mut len), SCM_E_POINTER);
        assert_eq!(
            scm_control(manager.0, 3400, ptr::null(), 0, ptr::null_mut(), ptr::null_mut()),
            SCM_E_POINTER
        );
        assert_eq!(scm_get_feature(manager.0, 6, ptr::null_mut()), SCM_E_POINTER);
    }
    echo_ok(&manager, b"the card is unharmed");
}

#[test]
fn unattached_released_and_null_managers() {
    let manager = Manager::new();
    let mut len = 64;
    let mut buf = [0u8; 64];
    let mut code = 0;
    // SAFETY: valid buffers; the tokens are live, released or NULL as each case says.
    unsafe {
        assert_eq!(
            scm_get_attrib(manager.0, SCM_ATTR_ATR_STRING, buf.as_mut_ptr(), &mut len),
            SCM_E_NOT_ATTACHED
        );
        assert_eq!(scm_set_attrib(manager.0, SCM_ATTR_ATR_STRING, buf.as_ptr(), 1), SCM_E_NOT_ATTACHED);
        assert_eq!(
            scm_control(manager.0, 3400, ptr::null(), 0, buf.as_mut_ptr(), &mut len),
            SCM_E_NOT_ATTACHED
        );
        assert_eq!(scm_get_feature(manager.0, 6, &mut code), SCM_E_NOT_ATTACHED);
        assert_eq!(
            scm_get_attrib(ptr::null_mut(), SCM_ATTR_ATR_STRING, buf.as_mut_ptr(), &mut len),
            SCM_E_POINTER
        );
        assert_eq!(scm_get_feature(ptr::null_mut(), 6, &mut code), SCM_E_POINTER);
        ok(scm_release(manager.0));
        assert_eq!(scm_get_attrib(manager.0, SCM_ATTR_ATR_STRING, buf.as_mut_ptr(), &mut len), SCM_E_HANDLE);
        assert_eq!(scm_control(manager.0, 3400, ptr::null(), 0, buf.as_mut_ptr(), &mut len), SCM_E_HANDLE);
    }
}

/// pcsc-lite's `TAG_IFD_SLOTS_NUMBER`, which vpcd answers with its number of slots in one byte.
const TAG_IFD_SLOTS_NUMBER: u32 = 0x0FAE;

#[test]
fn an_attribute_the_driver_answers_comes_back_as_it_wrote_it() {
    let lease = lease_with_card();
    let empty = scardmanage_lab::lease();
    for manager in [Manager::attached(lease.name()), Manager::attached(empty.name())] {
        // A number, not text: no NUL is added to it.
        let slots = attrib(&manager, TAG_IFD_SLOTS_NUMBER).expect("vpcd answers it");
        assert_eq!(slots.len(), 1, "{slots:02X?}");
        assert!(slots[0] >= 1, "{slots:02X?}");
    }
}

#[test]
fn a_control_command_of_the_largest_size_reaches_the_driver() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let largest = vec![0x5A; SCM_MAX_APDU_SIZE];
    // vpcd refuses the code: the refusal shows that the command went through.
    assert_eq!(control(&manager, 1, &largest), Err(SCM_SCARD_E_UNSUPPORTED_FEATURE));
    let over = vec![0x5A; SCM_MAX_APDU_SIZE + 1];
    assert_eq!(control(&manager, 1, &over), Err(SCM_E_INVALIDARG));
    echo_ok(&manager, b"the card is unharmed");
}
