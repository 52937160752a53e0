//! Every token the library hands out, whatever its C type, comes from one table: a token of one
//! kind passed where another kind is expected names an entry of the wrong variant and is refused
//! with `SCM_E_HANDLE`, deterministically, with no bits of the token spent on a type tag.

use crate::handle_table::HandleTable;
use crate::hresult::{SCM_E_HANDLE, SCM_E_OUTOFMEMORY};
use crate::iso::auth::Auth;
use crate::iso::chv::Chv;
use crate::iso::file::FileAccess;
use crate::manager::Manager;
use crate::monitor::Monitor;
use crate::scard::Result;

/// What a token can stand for. Each kind of object the C side sees is one variant.
pub enum Object {
    Manager(Manager),
    FileAccess(FileAccess),
    Chv(Chv),
    Auth(Auth),
    Monitor(Monitor),
}

/// The library's one table of live objects.
static OBJECTS: HandleTable<Object> = HandleTable::new();

/// Stores an object and returns its token; `SCM_E_OUTOFMEMORY` when no token is left.
pub fn insert(object: Object) -> Result<usize> {
    OBJECTS.insert(object).ok_or(SCM_E_OUTOFMEMORY)
}

/// Runs `f` on the object a token names when `pick` finds it of the expected kind, holding that
/// object's lock for the call; `SCM_E_HANDLE` for a token that is not live or of another kind.
pub fn with<T, R>(
    token: usize,
    pick: impl FnOnce(&mut Object) -> Option<&mut T>,
    f: impl FnOnce(&mut T) -> Result<R>,
) -> Result<R> {
    OBJECTS.with(token, |object| pick(object).ok_or(SCM_E_HANDLE).and_then(f)).map_err(|_| SCM_E_HANDLE)?
}

/// Takes the object a token names out of the table when `is_kind` accepts it; the token is dead
/// from here on. `SCM_E_HANDLE` for a token that is not live or of another kind.
pub fn remove(token: usize, is_kind: impl FnOnce(&Object) -> bool) -> Result<Object> {
    OBJECTS.remove_if(token, is_kind).map_err(|_| SCM_E_HANDLE)
}

/// The manager inside an object, when it is one.
pub fn manager(object: &mut Object) -> Option<&mut Manager> {
    match object {
        Object::Manager(manager) => Some(manager),
        _ => None,
    }
}

/// The file access object inside an object, when it is one.
pub fn file_access(object: &mut Object) -> Option<&mut FileAccess> {
    match object {
        Object::FileAccess(file_access) => Some(file_access),
        _ => None,
    }
}

/// The verification object inside an object, when it is one.
pub fn chv(object: &mut Object) -> Option<&mut Chv> {
    match object {
        Object::Chv(chv) => Some(chv),
        _ => None,
    }
}

/// The authentication object inside an object, when it is one.
pub fn auth(object: &mut Object) -> Option<&mut Auth> {
    match object {
        Object::Auth(auth) => Some(auth),
        _ => None,
    }
}

/// The monitor inside an object, when it is one.
pub fn monitor(object: &mut Object) -> Option<&mut Monitor> {
    match object {
        Object::Monitor(monitor) => Some(monitor),
        _ => None,
    }
}
