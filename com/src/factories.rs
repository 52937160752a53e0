//! The objects ISCardManage's Create* methods (and CreateInterface) make: ISCardFileAccess,
//! ISCardVerify, ISCardAuth (file_access.rs, verify.rs, auth.rs). Each holds its own token of
//! the library and a counted reference to the ISCardManage that made it, so the manager outlives
//! it whatever order the caller releases them in.

use windows::core::{IUnknown, Interface};

use crate::auth::Auth;
use crate::dispatch::Result;
use crate::file_access::FileAccess;
use crate::manage::ISCardManage;
use crate::verify::Verify;
use scardmanage::scm_manage;

pub(crate) fn create_file_access(manager: *mut scm_manage, this: &ISCardManage) -> Result<IUnknown> {
    Ok(FileAccess::create(manager, this)?.cast()?)
}

pub(crate) fn create_chv_verification(manager: *mut scm_manage, this: &ISCardManage) -> Result<IUnknown> {
    Ok(Verify::create(manager, this)?.cast()?)
}

pub(crate) fn create_card_auth(manager: *mut scm_manage, this: &ISCardManage) -> Result<IUnknown> {
    Ok(Auth::create(manager, this)?.cast()?)
}
