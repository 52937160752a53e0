"""The objects of the four factories (COM CreateFileAccess, CreateCHVerification,
CreateCardAuth, CreateInterface): file access, card holder verification and card authentication
for any card that follows ISO/IEC 7816-4. Each is ended by close() (or its with-block) and keeps
its manager alive; it follows the manager through reconnect() and re-attachment, raises
SCardError(E_NOT_ATTACHED) while the manager is detached and SCardError(E_HANDLE) once the
manager is closed.

Card holder codes (PINs) are passed to the library without a copy that outlives the call where
Python allows it: bytes go as they are (the library reads the object's own buffer), a bytearray
or another writable buffer too (it stays the caller's, to wipe when done), and a str is encoded
into a bytearray of this module's that is overwritten with zeros as soon as the call returns.
What Python does not let a program control: a str or bytes is immutable, so the caller's code
object itself stays in memory until the interpreter frees it, and freed memory is not wiped; a
str's characters are encoded one at a time (for ASCII, CPython hands back its shared one-byte
objects, so no new copy is made; other characters leave short-lived fragments). Pass a bytearray,
and wipe it, for the best Python can do.
"""

import ctypes
import io
import operator
import uuid
from contextlib import ExitStack, contextmanager
from ctypes import POINTER, byref, c_char_p, c_int64, c_size_t, c_uint32, c_uint64, c_void_p

from . import (
    E_INVALIDARG,
    MAX_APDU_SIZE,
    SCARD_E_BAD_SEEK,
    SCARD_W_CHV_BLOCKED,
    SCARD_W_EOF,
    SCARD_W_WRONG_CHV,
    SCardError,
    _bytes,
    _check,
    _declare,
    _fetch,
    _hresult,
    _lib,
    _manage_p,
    _name,
    _Owned,
    _size_p,
    _unsigned,
    _utf8z,
)

REF_BY_NAME, REF_BY_ID, REF_BY_SHORT_ID = 0, 1, 2
# scm_file_seek's origins; CardFile.seek takes Python's whence and turns it into these.
_SEEK_ORIGIN = {io.SEEK_SET: 0, io.SEEK_END: 1, io.SEEK_CUR: 2}
TRIES_UNKNOWN = 0xFFFFFFFF

IID_ISCardFileAccess = uuid.UUID("4029DD8A-5902-11D0-B84C-00C04FD424B9")
IID_ISCardVerify = uuid.UUID("4029DD85-5902-11D0-B84C-00C04FD424B9")
IID_ISCardAuth = uuid.UUID("7B063D61-6E40-11D0-B858-00C04FD424B9")

_object_p = c_void_p
_u32 = c_uint32


def _arg(function, value):
    """An enum-like or flags argument: refused as the library refuses one it cannot take."""
    return _unsigned(function, value, 32)


for _kind in ("file_access", "chv_verification", "card_auth"):
    _declare("scm_create_" + _kind, _hresult, _manage_p, POINTER(_object_p))
_declare("scm_create_interface", _hresult, _manage_p, c_char_p, c_char_p, POINTER(_object_p))
for _release in ("scm_file_access_release", "scm_chv_release", "scm_auth_release"):
    _declare(_release, _hresult, _object_p)

_declare("scm_file_change_dir", _hresult, _object_p, _u32, c_char_p)
_declare("scm_file_get_current_dir", _hresult, _object_p, c_char_p, _size_p)
_declare("scm_file_open", _hresult, _object_p, _u32, c_char_p, POINTER(_u32))
_declare("scm_file_read", _hresult, _object_p, _u32, c_char_p, _size_p, _u32)
_declare("scm_file_write", _hresult, _object_p, _u32, c_char_p, c_size_t, _u32)
_declare("scm_file_seek", _hresult, _object_p, _u32, _u32, c_int64, POINTER(c_uint64))
_declare("scm_file_close", _hresult, _object_p, _u32)
_declare("scm_file_get_properties", _hresult, _object_p, _u32, c_char_p, _u32, c_char_p, _size_p)
_declare("scm_file_create", _hresult, _object_p, _u32, c_char_p, c_char_p, c_size_t, _u32)
for _operation in ("delete", "invalidate", "rehabilitate"):
    _declare("scm_file_" + _operation, _hresult, _object_p, _u32, c_char_p, _u32)

_declare("scm_chv_verify", _hresult, _object_p, _u32, c_char_p, c_size_t, _u32, POINTER(_u32))
for _two_codes in ("scm_chv_change_code", "scm_chv_unblock"):
    _declare(_two_codes, _hresult, _object_p, _u32, c_char_p, c_size_t, c_char_p, c_size_t, _u32, POINTER(_u32))
_declare("scm_chv_reset_security_state", _hresult, _object_p)
_declare("scm_chv_get_tries_left", _hresult, _object_p, _u32, POINTER(_u32))

_declare("scm_auth_get_challenge", _hresult, _object_p, c_char_p, _size_p)
_declare("scm_auth_icc_auth", _hresult, _object_p, _u32, _u32, c_char_p, c_size_t, c_char_p, _size_p)
_declare("scm_auth_app_auth", _hresult, _object_p, _u32, _u32, c_char_p, c_size_t)
_declare("scm_auth_user_auth", _hresult, _object_p, _u32, c_char_p, c_size_t, POINTER(_u32))


class _CardObject(_Owned):
    """An object a factory made: its token, and the manager it keeps alive."""

    @classmethod
    def _create(cls, manager, factory):
        token = _object_p()
        manager._call(factory, byref(token))
        return cls._wrap(manager, token)

    @classmethod
    def _wrap(cls, manager, token):
        made = cls.__new__(cls)
        made._own(token)
        made._manager = manager
        return made


class FileAccess(_CardObject):
    """ISCardFileAccess. A file is designated by a reference type and a name: REF_BY_NAME (a DF
    name, hex digits), REF_BY_ID (a file identifier or a path of them, hex digits with optional
    '/'; "3F00..." is absolute, anything else relative to the current directory), REF_BY_SHORT_ID
    (a short EF identifier, "1" to "30")."""

    _release = "scm_file_access_release"

    def _by_ref(self, function, ref, name, *rest):
        return self._call(function, _arg(function, ref), _utf8z(name), *rest)

    def change_dir(self, ref, name):
        self._by_ref("scm_file_change_dir", ref, name)

    def current_dir(self):
        """The current directory's path, as the library tracks it (e.g. "3F00/5000")."""
        return _name(_fetch(_lib.scm_file_get_current_dir, self._token)[:-1])

    def open(self, ref, name):
        """Opens a file (SELECT); returns a CardFile at position 0."""
        number = _u32()
        self._by_ref("scm_file_open", ref, name, byref(number))
        return CardFile(self, number.value)

    def properties(self, ref, name, flags=0):
        """The file's control parameters as the card returns them (the FCP template, tag 62 first)."""
        function = _lib.scm_file_get_properties
        return _fetch(function, self._token, _arg("scm_file_get_properties", ref), _utf8z(name),
                      _arg("scm_file_get_properties", flags))

    def create(self, ref, name, fcp, flags=0):
        """CREATE FILE with the FCP given (bytes, tag 62 first)."""
        fcp = _bytes("create: the FCP", fcp)
        self._by_ref("scm_file_create", ref, name, fcp, len(fcp), _arg("scm_file_create", flags))

    def delete(self, ref, name, flags=0):
        self._by_ref("scm_file_delete", ref, name, _arg("scm_file_delete", flags))

    def invalidate(self, ref, name, flags=0):
        """DEACTIVATE FILE."""
        self._by_ref("scm_file_invalidate", ref, name, _arg("scm_file_invalidate", flags))

    def rehabilitate(self, ref, name, flags=0):
        """ACTIVATE FILE."""
        self._by_ref("scm_file_rehabilitate", ref, name, _arg("scm_file_rehabilitate", flags))


class CardFile:
    """An open file of a FileAccess, with a position: read(), write(), seek(), tell(), close();
    a context manager, closed also when it is garbage. Closed, every call raises the library's
    error for an unknown file."""

    # As much as one read asks the library for, when read() reads to the end.
    CHUNK = 0x10000
    # The most one scm_file_write takes.
    WRITE_CHUNK = 0xFFFF

    def __init__(self, access, number):
        self._access = access
        self.number = number
        self.closed = False

    def _call(self, function, *args):
        return self._access._call(function, self.number, *args)

    def read(self, n=-1, flags=0):
        """Up to n bytes from the position (all to the end when n is negative or None); b""
        at the end of the file. The library sends as many READ BINARY commands as it takes.
        On a record file read(n) reads the one record at the position (n at least its length),
        read() every record to the end, one after another."""
        if n is not None and n >= 0:
            return self._read(n, flags)
        chunks = []
        # Until the library says EOF, not until a short chunk: a record file gives one record a
        # call, and a command that fails after some bytes were read gives those bytes, the
        # failure coming with the next call; a short chunk ended both as if the file did.
        while True:
            chunk = self._read(self.CHUNK, flags)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _read(self, n, flags):
        buffer = ctypes.create_string_buffer(n)
        size = c_size_t(n)
        hresult = _lib.scm_file_read(self._access._token, self.number, buffer, byref(size),
                                     _arg("scm_file_read", flags))
        if hresult & 0xFFFFFFFF == SCARD_W_EOF:
            return b""
        _check("scm_file_read", hresult)
        return buffer.raw[: size.value]

    def write(self, data, flags=0):
        """Writes data at the position (UPDATE BINARY, as many as it takes); returns its length.
        Over 65 535 bytes it takes several calls of the library, each moving the position (a
        record file takes one record per call: write records one at a time)."""
        data = memoryview(_bytes("write: the data", data))
        flags = _arg("scm_file_write", flags)
        for start in range(0, max(len(data), 1), self.WRITE_CHUNK):
            chunk = data[start : start + self.WRITE_CHUNK].tobytes()
            self._call("scm_file_write", chunk, len(chunk), flags)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        """Moves the position as a Python file does (io.SEEK_SET, SEEK_CUR, SEEK_END); returns it."""
        if whence not in _SEEK_ORIGIN:
            raise ValueError("seek: whence is io.SEEK_SET, SEEK_CUR or SEEK_END, not %r" % (whence,))
        offset = operator.index(offset)
        if not -(1 << 63) <= offset < 1 << 63:
            # ctypes would cut it to 64 bits (2**64 to 0, a seek to the start); from any origin
            # it lands before 0 or past 4294967295, the library's SCARD_E_BAD_SEEK.
            raise SCardError("scm_file_seek", SCARD_E_BAD_SEEK)
        position = c_uint64()
        self._call("scm_file_seek", _SEEK_ORIGIN[whence], offset, byref(position))
        return position.value

    def tell(self):
        return self.seek(0, io.SEEK_CUR)

    def close(self):
        """Closes the file; a second close() does nothing."""
        if not self.closed:
            self.closed = True
            self._call("scm_file_close")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # As a Python file object: garbage closes it. The library keeps SCM_FILE_MAX_OPEN (16)
        # files open per object, and forgotten ones would hold those places until the
        # FileAccess ends. What the library answers is ignored: nothing may raise here.
        if getattr(self, "closed", True) is False and not self._access._closed:
            self.closed = True
            _lib.scm_file_close(self._access._token, self.number)


@contextmanager
def _secret(code):
    """(argument, length) for a card holder code, with no copy that outlives the call (see the
    module's text for what Python allows)."""
    if isinstance(code, bytes):
        yield code, len(code)
        return
    if isinstance(code, str):
        owned = bytearray(4 * len(code))
        length = 0
        for character in code:
            encoded = character.encode("utf-8", "surrogatepass")
            owned[length : length + len(encoded)] = encoded
            length += len(encoded)
    else:
        view = memoryview(code).cast("B")
        if not view.readonly:
            yield (ctypes.c_char * len(view)).from_buffer(view), len(view)
            return
        owned, length = bytearray(view), len(view)
    try:
        yield (ctypes.c_char * len(owned)).from_buffer(owned), length
    finally:
        owned[:] = bytes(len(owned))


def _code_call(function, token, reference, codes, *rest):
    """Calls a function that takes card holder codes (after the reference) and reports the tries
    left: SCardError with ``tries_left`` when the card refused the code (the library writes it
    only then: 0 when blocked, TRIES_UNKNOWN when the card does not say, which is None here)."""
    tries = _u32(TRIES_UNKNOWN)
    with ExitStack() as stack:
        arguments = [part for code in codes for part in stack.enter_context(_secret(code))]
        hresult = getattr(_lib, function)(token, _arg(function, reference), *arguments, *rest, byref(tries))
    if hresult < 0:
        known = (hresult & 0xFFFFFFFF) in (SCARD_W_WRONG_CHV, SCARD_W_CHV_BLOCKED) and tries.value != TRIES_UNKNOWN
        raise SCardError(function, hresult, tries.value if known else None)


class ChvVerification(_CardObject):
    """ISCardVerify: card holder verification (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER).
    ``reference`` is the card's reference data number (P2, e.g. 0x81); codes are bytes, a
    bytearray or str (see the module's text), sent as given unless ``flags`` asks for padding.
    A wrong code raises SCardError(SCARD_W_WRONG_CHV) with ``tries_left``; a blocked one
    SCardError(SCARD_W_CHV_BLOCKED) with tries_left 0."""

    _release = "scm_chv_release"

    def verify(self, reference, code, flags=0):
        _code_call("scm_chv_verify", self._token, reference, [code], _arg("scm_chv_verify", flags))

    def change_code(self, reference, old, new, flags=0):
        """CHANGE REFERENCE DATA; an empty ``old`` changes a code verified before."""
        _code_call("scm_chv_change_code", self._token, reference, [old, new], _arg("scm_chv_change_code", flags))

    def unblock(self, reference, unblock_code, new, flags=0):
        """RESET RETRY COUNTER with the unblocking code (the PUK) and a new code (b"": the
        counter reset only)."""
        _code_call("scm_chv_unblock", self._token, reference, [unblock_code, new], _arg("scm_chv_unblock", flags))

    def tries_left(self, reference):
        """How many tries the code has left (0: blocked), or None when the card does not say."""
        tries = _u32()
        hresult = _lib.scm_chv_get_tries_left(self._token, _arg("scm_chv_get_tries_left", reference), byref(tries))
        if hresult & 0xFFFFFFFF == SCARD_W_CHV_BLOCKED:
            return 0
        _check("scm_chv_get_tries_left", hresult)
        return None if tries.value == TRIES_UNKNOWN else tries.value

    def reset_security_state(self):
        """Forgets every code verified (the card's security state back to its reset state)."""
        self._call("scm_chv_reset_security_state")


class CardAuth(_CardObject):
    """ISCardAuth: GET CHALLENGE, INTERNAL AUTHENTICATE, EXTERNAL AUTHENTICATE. ``algorithm`` and
    ``key`` are the card's reference numbers (P1, P2) as ISO 7816-4 defines them."""

    _release = "scm_auth_release"

    def challenge(self, n=8):
        """n bytes of challenge from the card."""
        buffer = ctypes.create_string_buffer(n)
        size = c_size_t(n)
        self._call("scm_auth_get_challenge", buffer, byref(size))
        return buffer.raw[: size.value]

    def internal_authenticate(self, data, algorithm=0, key=0):
        """The card's answer to INTERNAL AUTHENTICATE with data (its proof of a key)."""
        data = _bytes("internal_authenticate: the data", data)
        response = ctypes.create_string_buffer(MAX_APDU_SIZE)
        size = c_size_t(MAX_APDU_SIZE)
        self._call("scm_auth_icc_auth", _arg("scm_auth_icc_auth", algorithm), _arg("scm_auth_icc_auth", key),
                   data, len(data), response, byref(size))
        return response.raw[: size.value]

    def user_authenticate(self, reference, code):
        """COM UserAuth: VERIFY with the user's code, as ChvVerification.verify()."""
        _code_call("scm_auth_user_auth", self._token, reference, [code])

    def external_authenticate(self, data, algorithm=0, key=0):
        """EXTERNAL AUTHENTICATE: proves to the card that this side has the key; a wrong answer
        is SCardError(SCARD_W_SECURITY_VIOLATION)."""
        data = _bytes("external_authenticate: the data", data)
        self._call("scm_auth_app_auth", _arg("scm_auth_app_auth", algorithm), _arg("scm_auth_app_auth", key),
                   data, len(data))


# What CreateInterface makes for each IID and name (ABI.md).
_INTERFACES = {
    IID_ISCardFileAccess.bytes_le: FileAccess,
    IID_ISCardVerify.bytes_le: ChvVerification,
    IID_ISCardAuth.bytes_le: CardAuth,
    "FileAccess": FileAccess,
    "CHVerification": ChvVerification,
    "CardAuth": CardAuth,
}


def create_interface(manager, interface):
    if isinstance(interface, str):
        iid, name, key = None, _utf8z(interface), interface
    else:
        iid = interface.bytes_le if isinstance(interface, uuid.UUID) else bytes(interface)
        if len(iid) != 16:
            raise SCardError("scm_create_interface", E_INVALIDARG)
        name, key = None, iid
    token = _object_p()
    manager._call("scm_create_interface", iid, name, byref(token))
    return _INTERFACES[key]._wrap(manager, token)
