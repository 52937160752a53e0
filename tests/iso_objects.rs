//! The four factories of `ISCardManage` and their objects' tokens: each kind is its own type, a
//! token of one kind passed as another is `SCM_E_HANDLE`, an object refuses calls while its
//! manager is unattached (`SCM_E_NOT_ATTACHED`) and once it is released (`SCM_E_HANDLE`).
#![cfg(target_os = "linux")] // The lab (a private pcscd) runs on Linux only.

mod common;

use std::ffi::c_void;
use std::ptr;

use common::*;
use scardmanage::*;

/// A GUID as C declares it (`Data1` to `Data4`): its bytes in memory are what a C caller
/// passing `&IID_ISCardAuth` hands over, whatever the library believes their order to be.
#[repr(C)]
struct Guid {
    data1: u32,
    data2: u16,
    data3: u16,
    data4: [u8; 8],
}

const fn iid(guid: Guid) -> [u8; 16] {
    // SAFETY: `Guid` is 16 bytes without padding.
    unsafe { std::mem::transmute::<Guid, [u8; 16]>(guid) }
}

// {4029DD8A-5902-11D0-B84C-00C04FD424B9}, {4029DD85-...}, {7B063D61-6E40-11D0-B858-00C04FD424B9}.
const IID_FILE_ACCESS: [u8; 16] = iid(Guid {
    data1: 0x4029DD8A,
    data2: 0x5902,
    data3: 0x11D0,
    data4: [0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9],
});
const IID_VERIFY: [u8; 16] = iid(Guid {
    data1: 0x4029DD85,
    data2: 0x5902,
    data3: 0x11D0,
    data4: [0xB8, 0x4C, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9],
});
const IID_AUTH: [u8; 16] = iid(Guid {
    data1: 0x7B063D61,
    data2: 0x6E40,
    data3: 0x11D0,
    data4: [0xB8, 0x58, 0x00, 0xC0, 0x4F, 0xD4, 0x24, 0xB9],
});

/// The three objects of one manager, as raw tokens.
struct Objects {
    file: *mut scm_file_access,
    chv: *mut scm_chv,
    auth: *mut scm_auth,
}

fn create_all(m: *mut scm_manage) -> Objects {
    let mut objects = Objects { file: ptr::null_mut(), chv: ptr::null_mut(), auth: ptr::null_mut() };
    unsafe {
        ok(scm_create_file_access(m, &mut objects.file));
        ok(scm_create_chv_verification(m, &mut objects.chv));
        ok(scm_create_card_auth(m, &mut objects.auth));
    }
    objects
}

/// One call of each CHV and auth function with valid arguments, every result.
fn chv_and_auth_calls(chv: *mut scm_chv, auth: *mut scm_auth) -> Vec<(&'static str, scm_hresult)> {
    let (mut tries, mut buf, mut len) = (0u32, [0u8; 16], 8usize);
    unsafe {
        vec![
            ("verify", scm_chv_verify(chv, 0x81, b"1234".as_ptr(), 4, 0, &mut tries)),
            (
                "change_code",
                scm_chv_change_code(chv, 0x81, b"1234".as_ptr(), 4, b"4321".as_ptr(), 4, 0, &mut tries),
            ),
            (
                "unblock",
                scm_chv_unblock(chv, 0x81, b"12345678".as_ptr(), 8, b"1234".as_ptr(), 4, 0, &mut tries),
            ),
            ("reset_security_state", scm_chv_reset_security_state(chv)),
            ("get_tries_left", scm_chv_get_tries_left(chv, 0x81, &mut tries)),
            ("get_challenge", scm_auth_get_challenge(auth, buf.as_mut_ptr(), &mut len)),
            ("icc_auth", {
                len = buf.len();
                scm_auth_icc_auth(auth, 0, 0, b"abcd".as_ptr(), 4, buf.as_mut_ptr(), &mut len)
            }),
            ("app_auth", scm_auth_app_auth(auth, 0, 0, b"abcd".as_ptr(), 4)),
            ("user_auth", scm_auth_user_auth(auth, 0x81, b"1234".as_ptr(), 4, &mut tries)),
        ]
    }
}

#[test]
fn the_header_declares_every_iso_function() {
    let header = include_str!("../include/scardmanage.h");
    for function in [
        "scm_transmit_ex",
        "scm_create_file_access",
        "scm_create_chv_verification",
        "scm_create_card_auth",
        "scm_create_interface",
        "scm_file_access_release",
        "scm_chv_release",
        "scm_auth_release",
        "scm_chv_verify",
        "scm_chv_change_code",
        "scm_chv_unblock",
        "scm_chv_reset_security_state",
        "scm_chv_get_tries_left",
        "scm_auth_get_challenge",
        "scm_auth_icc_auth",
        "scm_auth_app_auth",
        "scm_auth_user_auth",
    ] {
        assert!(header.contains(&format!("scm_hresult {function}(")), "{function} is declared");
    }
    for name in ["scm_file_access", "scm_chv", "scm_auth"] {
        assert!(header.contains(&format!("typedef struct {name} {name};")), "{name} is opaque");
    }
    assert!(header.contains("#define SCM_E_CARD_STATUS(sw) ((int32_t)(0xA0FF0000u | (uint16_t)(sw)))"));
}

#[test]
fn factories_check_their_arguments() {
    let manager = Manager::new();
    let mut file: *mut scm_file_access = ptr::null_mut();
    unsafe {
        assert_eq!(scm_create_file_access(ptr::null_mut(), &mut file), SCM_E_POINTER);
        assert_eq!(scm_create_file_access(manager.0, ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_create_chv_verification(manager.0, ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_create_card_auth(manager.0, ptr::null_mut()), SCM_E_POINTER);
        let mut any: *mut c_void = ptr::null_mut();
        assert_eq!(scm_create_interface(manager.0, ptr::null(), ptr::null(), &mut any), SCM_E_POINTER);
        assert_eq!(
            scm_create_interface(manager.0, IID_AUTH.as_ptr(), ptr::null(), ptr::null_mut()),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_create_interface(ptr::null_mut(), IID_AUTH.as_ptr(), ptr::null(), &mut any),
            SCM_E_POINTER
        );
        assert_eq!(
            scm_create_interface(manager.0, ptr::null(), c"CryptoProvider".as_ptr(), &mut any),
            SCM_E_NOTIMPL
        );
        assert_eq!(
            scm_create_interface(manager.0, ptr::null(), c"fileaccess".as_ptr(), &mut any),
            SCM_E_NOTIMPL
        );
        assert_eq!(scm_create_interface(manager.0, ptr::null(), c"".as_ptr(), &mut any), SCM_E_INVALIDARG);
        let mut other = IID_AUTH;
        other[15] ^= 1;
        assert_eq!(
            scm_create_interface(manager.0, other.as_ptr(), c"CardAuth".as_ptr(), &mut any),
            SCM_E_NOTIMPL
        );
        assert!(any.is_null() && file.is_null(), "nothing written on failure");
    }
    let released = Manager::new();
    let dead = released.0;
    drop(released);
    assert_eq!(unsafe { scm_create_file_access(dead, &mut file) }, SCM_E_HANDLE);
    assert!(file.is_null());
}

#[test]
fn create_interface_gives_each_kind_by_iid_and_by_name() {
    let manager = Manager::new();
    let m = manager.0;
    unsafe {
        for (iid, name, kind) in [
            (IID_FILE_ACCESS, c"FileAccess", 0),
            (IID_VERIFY, c"CHVerification", 1),
            (IID_AUTH, c"CardAuth", 2),
        ] {
            let (mut by_iid, mut by_name, mut both): (*mut c_void, *mut c_void, *mut c_void) =
                (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            ok(scm_create_interface(m, iid.as_ptr(), ptr::null(), &mut by_iid));
            ok(scm_create_interface(m, ptr::null(), name.as_ptr(), &mut by_name));
            // Both given: the IID decides, the name is not even read.
            ok(scm_create_interface(m, iid.as_ptr(), c"CryptoProvider".as_ptr(), &mut both));
            for token in [by_iid, by_name, both] {
                // Each token is of its kind: its own release takes it, the others refuse it.
                let releases = [
                    scm_file_access_release(token.cast()),
                    scm_chv_release(token.cast()),
                    scm_auth_release(token.cast()),
                ];
                for (i, hr) in releases.into_iter().enumerate() {
                    assert_eq!(
                        hr,
                        if i == kind { SCM_S_OK } else { SCM_E_HANDLE },
                        "kind {kind}, release {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_token_of_one_kind_is_refused_as_any_other() {
    let manager = Manager::new();
    let objects = create_all(manager.0);
    let m = manager.0;
    unsafe {
        // Each object's token as every other kind: manager functions, the other objects'.
        for token in [objects.file as usize, objects.chv as usize, objects.auth as usize] {
            let (mut state, mut protocol) = (0, 0);
            assert_eq!(scm_status(token as *mut scm_manage, &mut state, &mut protocol), SCM_E_HANDLE);
            assert_eq!(scm_reconnect(token as *mut scm_manage), SCM_E_HANDLE);
            let mut nested = ptr::null_mut();
            assert_eq!(scm_create_card_auth(token as *mut scm_manage, &mut nested), SCM_E_HANDLE);
            assert_eq!(scm_release(token as *mut scm_manage), SCM_E_HANDLE);
        }
        let chv_as_auth = objects.chv as *mut scm_auth;
        let auth_as_chv = objects.auth as *mut scm_chv;
        let file_as_chv = objects.file as *mut scm_chv;
        let file_as_auth = objects.file as *mut scm_auth;
        let manager_as_chv = m as *mut scm_chv;
        let manager_as_auth = m as *mut scm_auth;
        for (chv, auth) in
            [(auth_as_chv, chv_as_auth), (file_as_chv, file_as_auth), (manager_as_chv, manager_as_auth)]
        {
            for (name, hr) in chv_and_auth_calls(chv, auth) {
                assert_eq!(hr, SCM_E_HANDLE, "{name}");
            }
        }
        assert_eq!(scm_file_access_release(m as *mut scm_file_access), SCM_E_HANDLE);
        assert_eq!(scm_chv_release(m as *mut scm_chv), SCM_E_HANDLE);
        assert_eq!(scm_auth_release(m as *mut scm_auth), SCM_E_HANDLE);
        // All still alive after the refusals.
        ok(scm_file_access_release(objects.file));
        ok(scm_chv_release(objects.chv));
        ok(scm_auth_release(objects.auth));
        assert_eq!(scm_chv_release(objects.chv), SCM_E_HANDLE, "second release");
        assert_eq!(scm_chv_release(ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_auth_release(ptr::null_mut()), SCM_E_POINTER);
        assert_eq!(scm_file_access_release(ptr::null_mut()), SCM_E_POINTER);
    }
}

/// The current directory of a file access object, or the call's failure.
fn current_dir(f: *mut scm_file_access) -> Result<String, scm_hresult> {
    let (mut path, mut len) = ([0u8; 64], 64);
    match unsafe { scm_file_get_current_dir(f, path.as_mut_ptr().cast(), &mut len) } {
        SCM_S_OK => Ok(String::from_utf8(path[..len - 1].to_vec()).unwrap()),
        hr => Err(hr),
    }
}

/// The kinds `a_token_of_one_kind_is_refused_as_any_other` leaves out: a monitor's token is one
/// of the same table, refused wherever another kind is expected, and every other kind is
/// refused by the monitor's calls and as a file access object. Each is still itself after all
/// that: the monitor's first look reports a reader (the leased one at least), the file access
/// object names its directory, the manager echoes.
#[test]
fn monitors_and_file_objects_are_told_apart_from_the_other_kinds() {
    let lease = lease_with_card();
    let manager = Manager::attached(lease.name());
    let objects = create_all(manager.0);
    let mut mon = ptr::null_mut();
    unsafe {
        ok(scm_monitor_create(&mut mon));
        let (mut state, mut protocol) = (0, 0);
        assert_eq!(scm_status(mon as *mut scm_manage, &mut state, &mut protocol), SCM_E_HANDLE);
        assert_eq!(scm_release(mon as *mut scm_manage), SCM_E_HANDLE);
        for (name, hr) in chv_and_auth_calls(mon as *mut scm_chv, mon as *mut scm_auth) {
            assert_eq!(hr, SCM_E_HANDLE, "{name} on a monitor");
        }
        assert_eq!(scm_file_access_release(mon as *mut scm_file_access), SCM_E_HANDLE);
        assert_eq!(scm_chv_release(mon as *mut scm_chv), SCM_E_HANDLE);
        let mut event = 0;
        for token in [manager.0 as usize, objects.file as usize, objects.chv as usize, objects.auth as usize]
        {
            let other = token as *mut scm_monitor;
            assert_eq!(
                scm_monitor_next(other, 0, &mut event, ptr::null_mut(), ptr::null_mut()),
                SCM_E_HANDLE
            );
            assert_eq!(scm_monitor_cancel(other), SCM_E_HANDLE);
            assert_eq!(scm_monitor_release(other), SCM_E_HANDLE);
        }
        for token in [manager.0 as usize, mon as usize, objects.chv as usize, objects.auth as usize] {
            assert_eq!(current_dir(token as *mut scm_file_access), Err(SCM_E_HANDLE));
        }
        assert_eq!(current_dir(objects.file).as_deref(), Ok("3F00"));
        ok(scm_monitor_cancel(mon));
        ok(scm_monitor_next(mon, 0, &mut event, ptr::null_mut(), ptr::null_mut()));
        assert_eq!(event, SCM_EVENT_READER_ADDED);
        ok(scm_monitor_release(mon));
        assert_eq!(scm_monitor_cancel(mon), SCM_E_HANDLE, "released");
        ok(scm_file_access_release(objects.file));
        ok(scm_chv_release(objects.chv));
        ok(scm_auth_release(objects.auth));
    }
    echo_ok(&manager, b"the manager outlived the refusals");
}

#[test]
fn objects_refuse_while_unattached_and_after_the_manager_is_released() {
    let manager = Manager::new();
    let objects = create_all(manager.0);
    for (name, hr) in chv_and_auth_calls(objects.chv, objects.auth) {
        assert_eq!(hr, SCM_E_NOT_ATTACHED, "{name} on an unattached manager");
    }
    drop(manager);
    for (name, hr) in chv_and_auth_calls(objects.chv, objects.auth) {
        assert_eq!(hr, SCM_E_HANDLE, "{name} after the manager's release");
    }
    unsafe {
        // Released managers do not take their objects with them: each is ended on its own.
        ok(scm_file_access_release(objects.file));
        ok(scm_chv_release(objects.chv));
        ok(scm_auth_release(objects.auth));
    }
}

#[test]
fn null_objects_are_pointer_errors() {
    for (name, hr) in chv_and_auth_calls(ptr::null_mut(), ptr::null_mut()) {
        assert_eq!(hr, SCM_E_POINTER, "{name}");
    }
}

mod iso_support;

use iso_support::*;
use scardmanage_lab::iso::{self, IsoOptions};

#[test]
fn objects_follow_their_manager_through_reconnect_detach_and_a_new_card() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let chv = reader.chv();
    let auth = reader.auth();
    assert_eq!(chv.tries_left(u32::from(iso::PIN_REF)), Ok(3));
    ok(reader.manager.reconnect());
    assert_eq!(chv.tries_left(u32::from(iso::PIN_REF)), Ok(3), "after scm_reconnect");
    assert_eq!(auth.challenge(8).map(|c| c.len()), Ok(8));
    ok(reader.manager.detach());
    assert_eq!(chv.tries_left(u32::from(iso::PIN_REF)), Err((SCM_E_NOT_ATTACHED, 0xEEEE_EEEE)));
    assert_eq!(auth.challenge(8), Err(SCM_E_NOT_ATTACHED));
    // Re-attached to another reader with a T=0 card: the same objects work there, and the
    // transport has learnt the new card (no extended APDU, case 4 through GET RESPONSE).
    let t0 = IsoReader::new(IsoOptions::T0);
    ok(reader.manager.attach(t0.lease.name()));
    let before = t0.card.commands_received();
    let data = [0x33u8; 100];
    assert_eq!(auth.icc_auth(u32::from(iso::AUTH_KEY_REF), &data), Ok(iso::auth_response(&data)));
    assert_eq!(t0.card.commands_received() - before, 2, "INTERNAL AUTHENTICATE and GET RESPONSE");
    assert_eq!(auth.challenge(300), Err(SCM_E_INVALIDARG), "short APDUs only now");
    // Once the manager is released the objects refuse, though still live tokens.
    ok(unsafe { scm_release(reader.m()) });
    assert_eq!(auth.challenge(8), Err(SCM_E_HANDLE));
    assert_eq!(chv.tries_left(0x81), Err((SCM_E_HANDLE, 0xEEEE_EEEE)));
}

#[test]
fn two_objects_on_one_manager_from_two_threads() {
    let reader = IsoReader::new(IsoOptions::default());
    reader.select_application();
    let chv = reader.chv();
    let auth = reader.auth();
    const ROUNDS: usize = 200;
    std::thread::scope(|scope| {
        let verifier = scope.spawn(|| {
            for _ in 0..ROUNDS {
                assert_eq!(chv.verify(u32::from(iso::PIN_REF), iso::PIN), (SCM_S_OK, None));
                assert_eq!(chv.tries_left(u32::from(iso::PIN_REF)), Ok(SCM_TRIES_UNKNOWN));
            }
        });
        let authenticator = scope.spawn(|| {
            for i in 0..ROUNDS {
                let data = [i as u8; 24];
                assert_eq!(auth.icc_auth(u32::from(iso::AUTH_KEY_REF), &data), Ok(iso::auth_response(&data)));
            }
        });
        verifier.join().unwrap();
        authenticator.join().unwrap();
    });
    assert!(reader.card.commands_received() >= 3 * ROUNDS as u64);
}
