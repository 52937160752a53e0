//! The DLL's five entry points, the only symbols it exports (`.ci/build-com` checks that).

use std::ffi::c_void;
use windows::core::{BOOL, GUID, HRESULT, PCWSTR};
use windows::Win32::Foundation::{CLASS_E_CLASSNOTAVAILABLE, E_NOTIMPL, S_OK};

#[no_mangle]
extern "system" fn DllGetClassObject(
    _clsid: *const GUID,
    _iid: *const GUID,
    _out: *mut *mut c_void,
) -> HRESULT {
    CLASS_E_CLASSNOTAVAILABLE
}

#[no_mangle]
extern "system" fn DllCanUnloadNow() -> HRESULT {
    S_OK
}

#[no_mangle]
extern "system" fn DllRegisterServer() -> HRESULT {
    E_NOTIMPL
}

#[no_mangle]
extern "system" fn DllUnregisterServer() -> HRESULT {
    E_NOTIMPL
}

#[no_mangle]
extern "system" fn DllInstall(_install: BOOL, _command: PCWSTR) -> HRESULT {
    E_NOTIMPL
}
