//! The objects ISCardManage's Create* methods (and CreateInterface) make: ISCardFileAccess,
//! ISCardVerify, ISCardAuth. OWNER: com-objects, who replaces each body with the creation of
//! its object (`scm_create_file_access(manager, ..)` and so on, wrapped in the COM object, which
//! may keep `this` — a counted reference to the manager — so the manager outlives it).
//!
//! Until then each returns E_NOTIMPL. The returned object must answer QueryInterface for the
//! interface's IID (manage.rs: IID_ISCARD_*), and IDispatch (it is dual).

use windows::core::IUnknown;
use windows::Win32::Foundation::E_NOTIMPL;

use crate::dispatch::Result;
use crate::manage::ISCardManage;
use scardmanage::scm_manage;

pub(crate) fn create_file_access(_manager: *mut scm_manage, _this: &ISCardManage) -> Result<IUnknown> {
    Err(E_NOTIMPL.into())
}

pub(crate) fn create_chv_verification(_manager: *mut scm_manage, _this: &ISCardManage) -> Result<IUnknown> {
    Err(E_NOTIMPL.into())
}

pub(crate) fn create_card_auth(_manager: *mut scm_manage, _this: &ISCardManage) -> Result<IUnknown> {
    Err(E_NOTIMPL.into())
}
