"""scardmanage from Python: the Windows ISCardManage interface over PC/SC, through ctypes.

    import scardmanage

    with scardmanage.SCardManage() as mgr:
        mgr.attach_by_ifd(scardmanage.list_readers()[0])
        state, protocol = mgr.status()
        answer = mgr.transmit(bytes.fromhex("00A4040000"))

Failures raise SCardError, whose ``hresult`` is the library's code as an unsigned 32-bit value
(compare it with the constants here, e.g. ``SCARD_W_RESET_CARD``) and whose text is the
library's message. Every buffer is a Python object the library only borrows for the call.

The shared library is looked for, in order: the file named by the environment variable
SCARDMANAGE_LIBRARY; a copy next to this package; the system's loader path (LD_LIBRARY_PATH,
ldconfig's cache, the default directories: libscardmanage.so.0 on Linux).

status() and transmit() go through the small C extension scardmanage._fast when it was built at
install time (it needs a C compiler and Python's headers; without them the package installs as
pure Python), else through ctypes; SCARDMANAGE_NO_EXTENSION=1 forces ctypes. Both paths take the
same arguments, return the same values and raise the same errors.
"""

import ctypes
import ctypes.util
import importlib
import math
import operator
import os
import sys
from ctypes import POINTER, byref, c_char_p, c_int32, c_size_t, c_uint16, c_uint32, c_void_p

__all__ = [
    "SCardManage",
    "SCardError",
    "FileAccess",
    "CardFile",
    "ChvVerification",
    "CardAuth",
    "Monitor",
    "MonitorEvent",
    "list_readers",
    "error_message",
    "library_version",
    "library_path",
]

# Results (unsigned, as in the C header and Windows' headers).
S_OK = 0x00000000
E_NOTIMPL = 0x80004001
E_POINTER = 0x80004003
E_FAIL = 0x80004005
E_NOT_ATTACHED = 0x8000000E
E_UNEXPECTED = 0x8000FFFF
E_HANDLE = 0x80070006
E_OUTOFMEMORY = 0x8007000E
E_INVALIDARG = 0x80070057
SCARD_E_INSUFFICIENT_BUFFER = 0x80100008
SCARD_E_UNKNOWN_READER = 0x80100009
SCARD_E_SHARING_VIOLATION = 0x8010000B
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_E_NOT_TRANSACTED = 0x80100016
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_REMOVED_CARD = 0x80100069
SCARD_W_RESET_CARD = 0x80100068
SCARD_E_CANCELLED = 0x80100002
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_UNSUPPORTED_FEATURE = 0x80100022
SCARD_E_FILE_NOT_FOUND = 0x80100024
SCARD_E_NO_ACCESS = 0x80100027
SCARD_E_WRITE_TOO_MANY = 0x80100028
SCARD_E_BAD_SEEK = 0x80100029
SCARD_W_SECURITY_VIOLATION = 0x8010006A
SCARD_W_WRONG_CHV = 0x8010006B
SCARD_W_CHV_BLOCKED = 0x8010006C
SCARD_W_EOF = 0x8010006D


def card_status(sw):
    """The result for a status word the library has no SCARD_* code for: SCM_E_CARD_STATUS(sw)."""
    return 0xA0FF0000 | sw


SHARE_EXCLUSIVE, SHARE_SHARED, SHARE_DIRECT = 1, 2, 3
LEAVE_CARD, RESET_CARD, UNPOWER_CARD, EJECT_CARD = 0, 1, 2, 3
(
    STATE_UNKNOWN,
    STATE_ABSENT,
    STATE_PRESENT,
    STATE_SWALLOWED,
    STATE_POWERED,
    STATE_NEGOTIABLE,
    STATE_SPECIFIC,
) = range(7)
PROTOCOL_UNDEFINED, PROTOCOL_T0, PROTOCOL_T1, PROTOCOL_ANY, PROTOCOL_RAW = 0, 1, 2, 3, 0xFF
MAX_APDU_SIZE = 65548
# scm_transmit_ex's ISO 7816 help.
ISO_GET_RESPONSE, ISO_FIX_LE, ISO_CHAIN, ISO_ALL = 1, 2, 4, 7
# A wait with no end (scm_wait_for_change, scm_monitor_next): what timeout=None becomes.
WAIT_INFINITE = 0xFFFFFFFF
# Reader attributes (the SCARD_ATTR_* values; scardmanage.h has them all).
ATTR_VENDOR_NAME = 0x00010100
ATTR_ATR_STRING = 0x00090303
ATTR_DEVICE_FRIENDLY_NAME = 0x7FFF0003
ATTR_DEVICE_SYSTEM_NAME = 0x7FFF0004
FEATURE_VERIFY_PIN_DIRECT = 0x06

LIBRARY_ENV = "SCARDMANAGE_LIBRARY"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """(where, how to load) in the documented order."""
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        yield LIBRARY_ENV, explicit
        return  # an explicit choice that fails must not silently fall back to another copy
    if sys.platform == "win32":
        names = ["scardmanage.dll"]
    elif sys.platform == "darwin":
        names = ["libscardmanage.0.dylib", "libscardmanage.dylib"]
    else:
        names = ["libscardmanage.so.0", "libscardmanage.so"]
    for name in names:
        path = os.path.join(_HERE, name)
        if os.path.exists(path):
            yield "next to the package", path
    for name in names:
        yield "the loader path", name
    found = ctypes.util.find_library("scardmanage")
    if found:
        yield "ctypes.util.find_library", found


def _load():
    tried = []
    for where, name in _candidates():
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            tried.append("%s (%s): %s" % (name, where, e))
    raise ImportError(
        "scardmanage: cannot load the shared library; set %s to its path, or install it "
        "(install.sh --prefix ...) where the loader finds it. Tried:\n  %s" % (LIBRARY_ENV, "\n  ".join(tried))
    )


_lib, library_path = _load()

_manage_p = c_void_p  # scm_manage *: an opaque token, never dereferenced
_hresult = c_int32
_size_p = POINTER(c_size_t)


def _declare(name, restype, *argtypes):
    function = getattr(_lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


_declare("scm_create", _hresult, POINTER(_manage_p))
_declare("scm_release", _hresult, _manage_p)
_declare("scm_attach_by_handle", _hresult, _manage_p, c_size_t)
_declare("scm_attach_by_ifd", _hresult, _manage_p, c_char_p)
_declare("scm_attach_by_ifd_w", _hresult, _manage_p, POINTER(c_uint16))
_declare("scm_attach_by_ifd_ex", _hresult, _manage_p, c_char_p, c_uint32, c_uint32)
_declare("scm_reconnect", _hresult, _manage_p)
_declare("scm_detach", _hresult, _manage_p)
_declare("scm_detach_ex", _hresult, _manage_p, c_uint32)
_declare("scm_lock", _hresult, _manage_p)
_declare("scm_unlock", _hresult, _manage_p, c_uint32)
_declare("scm_status", _hresult, _manage_p, POINTER(c_uint32), POINTER(c_uint32))
_declare("scm_transmit", _hresult, _manage_p, c_char_p, c_size_t, c_char_p, _size_p)
_declare("scm_get_atr", _hresult, _manage_p, c_char_p, _size_p)
_declare("scm_get_reader_name", _hresult, _manage_p, c_char_p, _size_p)
_declare("scm_get_handle", _hresult, _manage_p, POINTER(c_size_t))
_declare("scm_list_readers", _hresult, c_char_p, _size_p)
_declare("scm_transmit_ex", _hresult, _manage_p, c_uint32, c_char_p, c_size_t, c_char_p, _size_p)
_declare("scm_wait_for_change", _hresult, _manage_p, c_uint32, POINTER(c_uint32))
_declare("scm_cancel", _hresult, _manage_p)
_declare("scm_get_attrib", _hresult, _manage_p, c_uint32, c_char_p, _size_p)
_declare("scm_set_attrib", _hresult, _manage_p, c_uint32, c_char_p, c_size_t)
_declare("scm_control", _hresult, _manage_p, c_uint32, c_char_p, c_size_t, c_char_p, _size_p)
_declare("scm_get_feature", _hresult, _manage_p, c_uint32, POINTER(c_uint32))
# Static strings: c_char_p copies them into bytes and never frees them, as the ABI requires.
_declare("scm_error_message", c_char_p, _hresult)
_declare("scm_version", c_char_p)


def _unchecked(name):
    """A second function object for a hot-path call, with no argtypes: ctypes then converts
    nothing and the caller passes ready-made ctypes objects (the token, byref()s, c_size_t)."""
    function = _lib._FuncPtr((name, _lib))
    function.restype = _hresult
    return function


_status_unchecked = _unchecked("scm_status")
_transmit_unchecked = _unchecked("scm_transmit")

NO_EXTENSION_ENV = "SCARDMANAGE_NO_EXTENSION"


def _load_extension():
    """A scardmanage._fast binding of this library's scm_status and scm_transmit (its methods
    status and transmit call them), or None if the extension was not built or
    SCARDMANAGE_NO_EXTENSION is set (to anything but "" or "0")."""
    if os.environ.get(NO_EXTENSION_ENV, "") not in ("", "0"):
        return None
    try:
        # By the module's name, not `from . import _fast`, which reads this package's attribute
        # _fast: under importlib.reload() that is the binding made before, which has no bind().
        extension = importlib.import_module(__name__ + "._fast")
    except ImportError:
        return None
    address = ctypes.cast(_lib.scm_status, c_void_p).value, ctypes.cast(_lib.scm_transmit, c_void_p).value
    # A binding of this package's library: a second import of the package with another
    # SCARDMANAGE_LIBRARY gets a binding of its own and leaves this one as it is.
    return extension.bind(address[0], address[1], MAX_APDU_SIZE)


_fast = _load_extension()

# Scratch space for status() and transmit(), reused across calls and managers: list.pop() and
# list.append() are atomic, so each call owns the scratch it popped and threads never share one.
# The pools hold as many entries as calls ever ran at the same time (one per thread, typically).
_status_scratch = []
_transmit_scratch = []


def _new_status_scratch():
    state, protocol = c_uint32(), c_uint32()
    return state, protocol, byref(state), byref(protocol)


def _new_transmit_scratch():
    response = (ctypes.c_char * MAX_APDU_SIZE)()
    size, length = c_size_t(), c_size_t()
    return response, size, byref(size), length


def error_message(hresult):
    """The library's text for a result (signed or unsigned form; anything else is a ValueError)."""
    hresult = operator.index(hresult)
    if not -(1 << 31) <= hresult < 1 << 32:
        raise ValueError("error_message: 0x%X is no 32-bit result" % hresult)
    return _lib.scm_error_message(_signed(hresult)).decode("utf-8")


def library_version():
    return _lib.scm_version().decode("utf-8")


def _signed(hresult):
    hresult &= 0xFFFFFFFF
    return hresult - (1 << 32) if hresult & 0x80000000 else hresult


class SCardError(Exception):
    """A failed call. ``hresult``: the code, unsigned (0x80100009...); ``message``: the library's
    text; ``tries_left``: after a wrong or blocked card holder code, how many tries the card still
    allows (0 when blocked; None when the card does not say, and for every other failure)."""

    def __init__(self, function, hresult, tries_left=None):
        # error_message first: it refuses what is no 32-bit result, which the mask would wrap.
        self.message = error_message(hresult)
        self.function = function
        self.hresult = hresult & 0xFFFFFFFF
        self.tries_left = tries_left
        super().__init__("%s: 0x%08X %s" % (function, self.hresult, self.message))

    def __reduce__(self):
        # Exception's own reduce would call __init__ with the one-string args: a TypeError on
        # unpickling, which broke a ProcessPoolExecutor whose worker raised this. The state
        # keeps what was added after (attributes, add_note()'s __notes__).
        return type(self), (self.function, self.hresult), self.__dict__


_SIZE_BITS = 8 * ctypes.sizeof(c_size_t)


def _unsigned(function, value, bits):
    """value, if it fits `bits` unsigned bits: ctypes would cut it silently to a valid value
    (2**32 + RESET_CARD to RESET_CARD). Out of range is the library's own answer to a value it
    cannot take, SCardError(E_INVALIDARG); a non-integer is a TypeError."""
    value = operator.index(value)
    if not 0 <= value < 1 << bits:
        raise SCardError(function, E_INVALIDARG)
    return value


def _check(function, hresult):
    if hresult < 0:
        raise SCardError(function, hresult)
    return hresult


def _timeout_ms(timeout):
    """A timeout in seconds (None: no end) as the library's milliseconds; a finite wait longer
    than the library's longest finite one (49.7 days) is that one, never WAIT_INFINITE."""
    if timeout is None:
        return WAIT_INFINITE
    if timeout < 0:
        raise ValueError("a timeout cannot be negative: %r" % (timeout,))
    return min(math.ceil(timeout * 1000), WAIT_INFINITE - 1)


def _fetch(function, *args):
    """The buffer rules: ask for the size, then fetch; retry if it grew in between."""
    size = c_size_t(0)
    _check(function.__name__, function(*args, None, byref(size)))
    while True:
        buffer = ctypes.create_string_buffer(size.value)
        hresult = function(*args, buffer, byref(size))
        if hresult & 0xFFFFFFFF != SCARD_E_INSUFFICIENT_BUFFER:
            _check(function.__name__, hresult)
            return buffer.raw[: size.value]


def _utf8z(name):
    if "\0" in name:
        raise ValueError("a name given to the library cannot contain NUL")
    # surrogatepass: a lone surrogate reaches the library, which refuses it (E_INVALIDARG).
    return name.encode("utf-8", "surrogatepass")


def _name(raw):
    # PC/SC and the library pass a driver's name on as bytes, UTF-8 or not (a Latin-1 one):
    # what is not UTF-8 becomes U+FFFD, so one such name neither raises nor hides the others.
    return raw.decode("utf-8", "replace")


def list_readers():
    """The names of the readers PC/SC knows (bytes that are not UTF-8 as U+FFFD). No reader:
    SCardError(SCARD_E_NO_READERS_AVAILABLE)."""
    multi = _fetch(_lib.scm_list_readers)
    return [_name(name) for name in multi.split(b"\0") if name]


# The hot paths, twice. Through ctypes: scratch from the pools above, the function objects
# without argtypes, nothing allocated but the result. Through the extension: one C call, which
# returns the result (an int) instead of the answer when the library failed.
def _status_ctypes(self):
    """(state, protocol): the STATE_* and PROTOCOL_* values."""
    try:
        scratch = _status_scratch.pop()
    except IndexError:
        scratch = _new_status_scratch()
    state, protocol, state_p, protocol_p = scratch
    hresult = _status_unchecked(self._token, state_p, protocol_p)
    result = state.value, protocol.value
    _status_scratch.append(scratch)
    if hresult < 0:
        raise SCardError("scm_status", hresult)
    return result


def _bytes(what, data):
    """bytes(data), but an integer is a TypeError: bytes(5) is five zero bytes, which would go to
    the card or the reader as data. The extension refuses what has __index__ alike."""
    if hasattr(type(data), "__index__"):
        raise TypeError("%s is bytes, not an integer (%s)" % (what, type(data).__name__))
    return bytes(data)


def _command(command):
    return _bytes("transmit: the command", command)


def _transmit_ctypes(self, command, iso=0):
    """Sends one APDU (bytes); returns the answer, status word included. iso: see _transmit_iso."""
    if iso:
        return _transmit_iso(self, command, iso)
    if type(command) is not bytes:
        command = _command(command)
    try:
        scratch = _transmit_scratch.pop()
    except IndexError:
        scratch = _new_transmit_scratch()
    response, size, size_p, length = scratch
    size.value = MAX_APDU_SIZE
    length.value = len(command)
    hresult = _transmit_unchecked(self._token, command, length, response, size_p)
    # Slicing the c_char array copies only the answer, into the bytes returned.
    answer = response[: size.value] if hresult >= 0 else None
    _transmit_scratch.append(scratch)
    if hresult < 0:
        raise SCardError("scm_transmit", hresult)
    return answer


if _fast is not None:
    _fast_status, _fast_transmit = _fast.status, _fast.transmit


def _status_extension(self):
    """(state, protocol): the STATE_* and PROTOCOL_* values."""
    result = _fast_status(self._address)
    if type(result) is int:
        raise SCardError("scm_status", result)
    return result


def _transmit_extension(self, command, iso=0):
    """Sends one APDU (bytes); returns the answer, status word included. iso: see _transmit_iso."""
    if iso:
        return _transmit_iso(self, command, iso)
    answer = _fast_transmit(self._address, command)
    if type(answer) is int:
        raise SCardError("scm_transmit", answer)
    return answer


def _transmit_iso(self, command, iso):
    """transmit(command, iso=...): scm_transmit_ex, the library's ISO 7816 help. ``iso`` is True
    (ISO_ALL) or ISO_* flags: the answer of 61xx collected with GET RESPONSE (ISO_GET_RESPONSE),
    a resend with the Le that 6Cxx names (ISO_FIX_LE), a long command sent with command chaining
    (ISO_CHAIN)."""
    flags = ISO_ALL if iso is True else _unsigned("scm_transmit_ex", iso, 32)
    if type(command) is not bytes:
        command = _command(command)
    response = ctypes.create_string_buffer(MAX_APDU_SIZE)
    size = c_size_t(MAX_APDU_SIZE)
    self._call("scm_transmit_ex", flags, command, len(command), response, byref(size))
    return response.raw[: size.value]


class _Owned:
    """A token the library handed out and the function that ends it (``_release``, its name).
    A context manager: leaving the block ends the object. After close() the released token still
    goes to the library, which refuses it: every call raises SCardError(E_HANDLE)."""

    _release = ""

    def _own(self, token):
        self._token = token
        self._closed = False

    def close(self):
        """Ends the object (COM Release). A second close() does nothing."""
        if not self._closed:
            self._closed = True
            _check(self._release, getattr(_lib, self._release)(self._token))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_closed", True) is False:
            self._closed = True
            getattr(_lib, self._release)(self._token)

    def _call(self, name, *args):
        return _check(name, getattr(_lib, name)(self._token, *args))


class SCardManage(_Owned):
    """One ISCardManage object. A context manager: leaving the block releases it (unlocking and
    detaching, leaving the card, ending a wait_for_change in progress). After close() every call
    raises SCardError(E_HANDLE), also those of the objects it created."""

    _release = "scm_release"

    def __init__(self):
        token = _manage_p()
        _check("scm_create", _lib.scm_create(byref(token)))
        self._own(token)
        self._address = token.value  # the token as an int, for the extension

    def attach_by_handle(self, hicc):
        """Attaches to a card handle (an SCARDHANDLE as int) this process connected; it is borrowed."""
        self._call("scm_attach_by_handle", _unsigned("scm_attach_by_handle", hicc, _SIZE_BITS))

    def attach_by_ifd(self, reader, share_mode=None, protocols=None):
        """Attaches to a reader by name (sent as UTF-8). Default share SHARED, protocols T0|T1."""
        if share_mode is None and protocols is None:
            self._call("scm_attach_by_ifd", _utf8z(reader))
        else:
            share = SHARE_SHARED if share_mode is None else _unsigned("scm_attach_by_ifd_ex", share_mode, 32)
            wanted = PROTOCOL_ANY if protocols is None else _unsigned("scm_attach_by_ifd_ex", protocols, 32)
            self._call("scm_attach_by_ifd_ex", _utf8z(reader), share, wanted)

    def attach_by_ifd_w(self, reader):
        """attach_by_ifd with the name sent as UTF-16 (as a BSTR would be)."""
        if "\0" in reader:
            raise ValueError("a reader name cannot contain NUL")
        encoded = reader.encode("utf-16-le", "surrogatepass") + b"\0\0"
        units = (c_uint16 * (len(encoded) // 2)).from_buffer_copy(encoded)
        self._call("scm_attach_by_ifd_w", units)

    def reconnect(self):
        self._call("scm_reconnect")

    def detach(self, disposition=LEAVE_CARD):
        self._call("scm_detach_ex", _unsigned("scm_detach_ex", disposition, 32))

    def lock(self):
        """Begins exclusive use (COM SCardLock); blocks while another holder has the card."""
        self._call("scm_lock")

    def unlock(self, disposition=LEAVE_CARD):
        self._call("scm_unlock", _unsigned("scm_unlock", disposition, 32))

    # The hot paths: through the extension when it is loaded, else through ctypes (above).
    status = _status_extension if _fast is not None else _status_ctypes
    transmit = _transmit_extension if _fast is not None else _transmit_ctypes

    def atr(self):
        return _fetch(_lib.scm_get_atr, self._token)

    def reader_name(self):
        return _name(_fetch(_lib.scm_get_reader_name, self._token)[:-1])

    def card_handle(self):
        """The SCARDHANDLE in use (int); it stays the manager's: do not disconnect it."""
        hicc = c_size_t()
        self._call("scm_get_handle", byref(hicc))
        return hicc.value


    def wait_for_change(self, timeout=None):
        """Blocks until the attached reader's card changes (inserted, removed, reset, swapped)
        since the manager last looked, or ``timeout`` seconds pass (None: no end). Returns the
        STATE_* now, or None when the time passed. A change between two calls is never lost.
        cancel() or close() from another thread ends it: SCardError(SCARD_E_CANCELLED). The
        interpreter runs on meanwhile (the call releases the GIL)."""
        state = c_uint32()
        hresult = _lib.scm_wait_for_change(self._token, _timeout_ms(timeout), byref(state))
        if hresult & 0xFFFFFFFF == SCARD_E_TIMEOUT:
            return None
        _check("scm_wait_for_change", hresult)
        return state.value

    def cancel(self):
        """Ends a wait_for_change() in progress on this manager, from any thread."""
        self._call("scm_cancel")

    def get_attrib(self, attribute):
        """A reader attribute (SCARD_ATTR_* value, e.g. ATTR_ATR_STRING) as bytes; text attributes
        are UTF-8 with their NUL. One the reader does not answer: SCARD_E_UNSUPPORTED_FEATURE."""
        return _fetch(_lib.scm_get_attrib, self._token, _unsigned("scm_get_attrib", attribute, 32))

    def set_attrib(self, attribute, value):
        value = _bytes("set_attrib: the value", value)
        self._call("scm_set_attrib", _unsigned("scm_set_attrib", attribute, 32), value, len(value))

    def control(self, code, data=b""):
        """SCardControl: ``code`` up to 0xFFFF is the portable function number of
        SCARD_CTL_CODE(code), a larger one the OS's own code. Returns the reader's answer."""
        data = _bytes("control: the data", data)
        response = ctypes.create_string_buffer(MAX_APDU_SIZE)
        size = c_size_t(MAX_APDU_SIZE)
        self._call("scm_control", _unsigned("scm_control", code, 32), data, len(data), response, byref(size))
        return response.raw[: size.value]

    def get_feature(self, tag):
        """The control code of the reader's PC/SC part 10 feature ``tag`` (FEATURE_*), for
        control(); a feature the reader lacks: SCardError(SCARD_E_UNSUPPORTED_FEATURE)."""
        code = c_uint32()
        self._call("scm_get_feature", _unsigned("scm_get_feature", tag, 32), byref(code))
        return code.value

    # The factories (COM Create*): objects that work on the attached card through ISO 7816-4
    # APDUs; they follow the manager through reconnects and keep it alive while they live.
    def create_file_access(self):
        return _objects.FileAccess._create(self, "scm_create_file_access")

    def create_chv_verification(self):
        return _objects.ChvVerification._create(self, "scm_create_chv_verification")

    def create_card_auth(self):
        return _objects.CardAuth._create(self, "scm_create_card_auth")

    def create_interface(self, interface):
        """COM CreateInterface: ``interface`` is an IID (a uuid.UUID, or its 16 bytes in GUID
        memory order, such as IID_ISCardVerify.bytes_le) or a name ("FileAccess",
        "CHVerification", "CardAuth"); returns the object create_file_access() and the others
        give. Any other, such as "CryptoProvider": SCardError(E_NOTIMPL)."""
        return _objects.create_interface(self, interface)


from . import _objects  # noqa: E402  (it builds on everything above)
from ._monitor import EVENT_CARD_INSERTED, EVENT_CARD_REMOVED, EVENT_READER_ADDED, EVENT_READER_REMOVED  # noqa: E402
from ._monitor import Monitor, MonitorEvent  # noqa: E402
from ._objects import (  # noqa: E402
    IID_ISCardAuth,
    IID_ISCardFileAccess,
    IID_ISCardVerify,
    REF_BY_ID,
    REF_BY_NAME,
    REF_BY_SHORT_ID,
    TRIES_UNKNOWN,
    CardAuth,
    CardFile,
    ChvVerification,
    FileAccess,
)
