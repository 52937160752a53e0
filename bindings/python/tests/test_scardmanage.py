"""The Python bindings against the lab: a real pcscd with virtual readers, a default-applet card
in the reader SCM_LAB_READER names, the second pair of readers named with Latin-1 bytes
(scm-lab run --pairs 2 --friendly 1=$'Lab \\xE9' -- python3 -m pytest ...)."""

import concurrent.futures
import ctypes
import importlib.util
import multiprocessing
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading

import pytest

import scardmanage
from scardmanage import SCardError, SCardManage

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ECHO = bytes.fromhex("8010000003") + b"abc"


@pytest.fixture(scope="session")
def reader():
    name = os.environ.get("SCM_LAB_READER")
    assert name, "run under the lab: scm-lab run --pairs 2 -- python3 -m pytest ..."
    return name


@pytest.fixture(params=["extension", "ctypes"])
def call_path(request, monkeypatch):
    """Runs a test with status() and transmit() going through the C extension, then through
    ctypes. Where the extension was not built the first is skipped, unless
    SCARDMANAGE_REQUIRE_EXTENSION is set (.ci/test-bindings sets it): then it fails."""
    if request.param == "extension":
        if scardmanage._fast is None:
            if os.environ.get("SCARDMANAGE_REQUIRE_EXTENSION"):
                pytest.fail("scardmanage._fast was not built or not loaded")
            pytest.skip("scardmanage._fast was not built")
        monkeypatch.setattr(SCardManage, "status", scardmanage._status_extension)
        monkeypatch.setattr(SCardManage, "transmit", scardmanage._transmit_extension)
    else:
        monkeypatch.setattr(SCardManage, "status", scardmanage._status_ctypes)
        monkeypatch.setattr(SCardManage, "transmit", scardmanage._transmit_ctypes)
    return request.param


@pytest.fixture
def mgr(reader, call_path):
    with SCardManage() as m:
        m.attach_by_ifd(reader)
        yield m


def raises(hresult, call, *args):
    with pytest.raises(SCardError) as info:
        call(*args)
    assert info.value.hresult == hresult, "0x%08X" % info.value.hresult
    assert info.value.message == scardmanage.error_message(hresult)
    assert str(info.value).endswith("0x%08X %s" % (hresult, info.value.message))
    return info.value


def loaded_library_file():
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libscardmanage" in line}
    assert len(paths) == 1, paths
    return paths.pop()


def test_version_is_the_crates():
    with open(os.path.join(REPO, "Cargo.toml")) as cargo:
        version = re.search(r'^version = "(.+)"$', cargo.read(), re.M).group(1)
    assert scardmanage.library_version() == version


def test_list_readers_has_the_lab_readers(reader):
    readers = scardmanage.list_readers()
    assert len(readers) == 4
    assert readers[0] == reader


LATIN1_READER = b"Lab \xe9 00 00"


def test_a_reader_name_that_is_not_utf8_hides_no_reader(reader):
    # PC/SC passes the driver's bytes on; the library does too (see scm_list_readers).
    raw = scardmanage._fetch(scardmanage._lib.scm_list_readers)
    assert LATIN1_READER + b"\0" in raw, "run under scm-lab run --pairs 2 --friendly 1=$'Lab \\xE9'"
    readers = scardmanage.list_readers()
    assert readers == [reader, "Lab A 00 01", "Lab \ufffd 00 00", "Lab \ufffd 00 01"]
    with SCardManage() as m:
        # The replaced name is valid UTF-8 but names no reader.
        raises(scardmanage.SCARD_E_UNKNOWN_READER, m.attach_by_ifd, readers[2])


def test_a_reader_whose_name_is_not_utf8_is_reached_by_handle():
    # As the header says: PC/SC code of this process connects by the name's bytes, the manager
    # borrows the handle, and reader_name() gives the name with U+FFFD.
    pcsc = ctypes.CDLL("libpcsclite.so.1")
    context, card, protocol = ctypes.c_long(), ctypes.c_long(), ctypes.c_ulong()
    scope_system, share_direct = 2, 3
    assert pcsc.SCardEstablishContext(scope_system, None, None, ctypes.byref(context)) == 0
    try:
        rv = pcsc.SCardConnect(context, LATIN1_READER, share_direct, 0, ctypes.byref(card), ctypes.byref(protocol))
        assert rv == 0, "SCardConnect: 0x%08X" % (rv & 0xFFFFFFFF)
        with SCardManage() as m:
            m.attach_by_handle(card.value)
            assert m.reader_name() == "Lab \ufffd 00 00"
            assert m.status() == (scardmanage.STATE_ABSENT, scardmanage.PROTOCOL_UNDEFINED)
        pcsc.SCardDisconnect(card, 0)
    finally:
        pcsc.SCardReleaseContext(context)


def test_status_atr_and_reader_name(mgr, reader):
    assert mgr.status() == (scardmanage.STATE_SPECIFIC, scardmanage.PROTOCOL_T1)
    assert mgr.atr() == bytes.fromhex("3B800181")
    assert mgr.reader_name() == reader
    assert mgr.card_handle() != 0


def test_transmit_echo_read_and_challenge(mgr):
    assert mgr.transmit(bytes.fromhex("00A4040005A000000001")) == b"\x90\x00"
    assert mgr.transmit(ECHO) == b"abc\x90\x00"
    assert mgr.transmit(bytearray.fromhex("8020012C00")) == bytes(i % 256 for i in range(300)) + b"\x90\x00"
    one, two = mgr.transmit(bytes.fromhex("0084000008")), mgr.transmit(bytes.fromhex("0084000008"))
    assert len(one) == len(two) == 10 and one[8:] == two[8:] == b"\x90\x00" and one != two


def test_transmit_takes_what_bytes_takes(mgr):
    assert mgr.transmit(memoryview(ECHO)) == b"abc\x90\x00"
    assert mgr.transmit(list(ECHO)) == b"abc\x90\x00"
    raises(scardmanage.E_INVALIDARG, mgr.transmit, b"")
    raises(scardmanage.E_INVALIDARG, mgr.transmit, bytes(scardmanage.MAX_APDU_SIZE + 1))
    with pytest.raises(TypeError):
        mgr.transmit("8010000003")
    with pytest.raises(TypeError):
        mgr.transmit(None)


def test_one_manager_shared_by_threads(mgr):
    # status() and transmit() reuse scratch buffers: no thread may see another's answer.
    wrong = []

    def loop(tag):
        command = bytes.fromhex("80100000") + bytes([len(tag)]) + tag
        for _ in range(200):
            if mgr.transmit(command) != tag + b"\x90\x00" or mgr.status()[0] != scardmanage.STATE_SPECIFIC:
                wrong.append(tag)

    threads = [threading.Thread(target=loop, args=(bytes([65 + i]) * (i + 1),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not wrong


def test_lock_unlock_and_unlock_without_lock(mgr):
    mgr.lock()
    assert mgr.transmit(ECHO) == b"abc\x90\x00"
    mgr.unlock()
    raises(scardmanage.SCARD_E_NOT_TRANSACTED, mgr.unlock)


def test_a_lock_blocks_another_manager_and_not_the_interpreter(mgr, reader):
    with SCardManage() as other:
        other.attach_by_ifd(reader)
        mgr.lock()
        got_it = threading.Event()
        waiter = threading.Thread(target=lambda: (other.lock(), got_it.set(), other.unlock()))
        waiter.start()
        assert not got_it.wait(0.5), "the second lock did not wait"
        mgr.unlock()
        waiter.join(10)
        assert got_it.is_set()


def test_reconnect_and_detach(mgr):
    mgr.reconnect()
    assert mgr.status()[0] == scardmanage.STATE_SPECIFIC
    mgr.detach()
    raises(scardmanage.E_NOT_ATTACHED, mgr.status)
    raises(scardmanage.E_NOT_ATTACHED, mgr.detach)


def test_utf16_attach(reader, call_path):
    with SCardManage() as m:
        m.attach_by_ifd_w(reader)
        assert m.transmit(ECHO) == b"abc\x90\x00"


def test_attach_with_share_mode(reader):
    with SCardManage() as m:
        m.attach_by_ifd(reader, scardmanage.SHARE_EXCLUSIVE, scardmanage.PROTOCOL_T1)
        with SCardManage() as second:
            raises(scardmanage.SCARD_E_SHARING_VIOLATION, second.attach_by_ifd, reader)


def test_borrowed_handle_stays_usable_by_its_owner(mgr):
    with SCardManage() as borrower:
        borrower.attach_by_handle(mgr.card_handle())
        assert borrower.transmit(ECHO) == b"abc\x90\x00"
        raises(scardmanage.E_INVALIDARG, borrower.detach, scardmanage.RESET_CARD)
        borrower.detach()
    assert mgr.transmit(ECHO) == b"abc\x90\x00"


def test_reader_without_card(call_path):
    empty = scardmanage.list_readers()[1]
    with SCardManage() as m:
        m.attach_by_ifd(empty)
        assert m.status() == (scardmanage.STATE_ABSENT, scardmanage.PROTOCOL_UNDEFINED)
        raises(scardmanage.SCARD_E_NO_SMARTCARD, m.transmit, ECHO)
        raises(scardmanage.SCARD_E_NO_SMARTCARD, m.reconnect)


def test_errors_carry_the_code_and_the_message(call_path):
    with SCardManage() as m:
        err = raises(scardmanage.SCARD_E_UNKNOWN_READER, m.attach_by_ifd, "No Such Reader")
        assert err.function == "scm_attach_by_ifd"
        assert "reader" in err.message
        raises(scardmanage.E_INVALIDARG, m.attach_by_ifd, "")
        raises(scardmanage.E_INVALIDARG, m.attach_by_ifd, "\ud800")
        raises(scardmanage.E_INVALIDARG, m.attach_by_ifd_w, "\ud800 lone surrogate")
        raises(scardmanage.E_INVALIDARG, m.attach_by_ifd, "x", 9, scardmanage.PROTOCOL_ANY)
        raises(scardmanage.E_NOT_ATTACHED, m.transmit, ECHO)
        with pytest.raises(ValueError):
            m.attach_by_ifd("Lab\0Reader")


def test_a_closed_manager_raises_E_HANDLE(reader, call_path):
    with SCardManage() as m:
        m.attach_by_ifd(reader)
    raises(scardmanage.E_HANDLE, m.status)
    raises(scardmanage.E_HANDLE, m.attach_by_ifd, reader)
    m.close()  # a second close is harmless


def test_error_message_takes_either_form():
    assert scardmanage.error_message(0x80100068) == scardmanage.error_message(-2146434968)
    assert scardmanage.error_message(0) != ""
    for wrong in (2**32 + 0x80100068, -(2**31) - 1):
        with pytest.raises(ValueError):
            scardmanage.error_message(wrong)


def test_out_of_range_integers_never_reach_the_library_wrapped(mgr, reader):
    # Each of these, cut to 32 bits (or to size_t), would be a valid value: RESET, LEAVE,
    # EXCLUSIVE. They must fail as the library fails for any value it cannot take.
    mgr.lock()
    raises(scardmanage.E_INVALIDARG, mgr.unlock, (1 << 32) | scardmanage.RESET_CARD)
    raises(scardmanage.E_INVALIDARG, mgr.unlock, -1)
    mgr.unlock()
    raises(scardmanage.E_INVALIDARG, mgr.detach, -(2**32))
    raises(scardmanage.E_INVALIDARG, mgr.detach, 2**64 + scardmanage.RESET_CARD)
    # Not reset, still attached: the card answers at once, with no SCARD_W_RESET_CARD.
    assert mgr.status() == (scardmanage.STATE_SPECIFIC, scardmanage.PROTOCOL_T1)
    assert mgr.transmit(ECHO) == b"abc\x90\x00"
    with SCardManage() as other:
        raises(scardmanage.E_INVALIDARG, other.attach_by_ifd, reader, 2**32 + scardmanage.SHARE_EXCLUSIVE,
               scardmanage.PROTOCOL_T1)
        raises(scardmanage.E_INVALIDARG, other.attach_by_ifd, reader, scardmanage.SHARE_SHARED,
               2**32 + scardmanage.PROTOCOL_T1)
        raises(scardmanage.E_INVALIDARG, other.attach_by_handle, 2**64 + mgr.card_handle())
        raises(scardmanage.E_INVALIDARG, other.attach_by_handle, -1)
        raises(scardmanage.E_NOT_ATTACHED, other.status)
        with pytest.raises(TypeError):
            other.detach(1.0)
    # Nobody holds the card exclusively: a third manager shares it.
    with SCardManage() as third:
        third.attach_by_ifd(reader)
        assert third.transmit(ECHO) == b"abc\x90\x00"


def _status_of_a_new_manager():
    """Run in a worker process: fails with SCardError(E_NOT_ATTACHED)."""
    with SCardManage() as m:
        return m.status()


def test_scard_error_pickles_and_crosses_a_process_pool():
    err = SCardError("scm_status", scardmanage.SCARD_W_RESET_CARD)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is SCardError
    assert (copy.function, copy.hresult, copy.message, str(copy)) == (err.function, err.hresult, err.message, str(err))
    # spawn: the worker imports everything afresh and the error comes back pickled.
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(SCardError) as info:
            pool.submit(_status_of_a_new_manager).result(60)
        assert pool.submit(scardmanage.error_message, 0).result(60) == scardmanage.error_message(0)
    assert info.value.hresult == scardmanage.E_NOT_ATTACHED
    assert info.value.function == "scm_status"
    assert info.value.message == scardmanage.error_message(scardmanage.E_NOT_ATTACHED)


def test_a_second_import_with_another_library_leaves_the_first_bound(reader, tmp_path):
    # Two copies of the library in one process, each with its own token table (tokens repeat).
    # The first package's managers must go on calling the first copy, also through _fast.
    other = tmp_path / "libscardmanage-other.so"
    shutil.copy(loaded_library_file(), other)
    code = """
import os, sys
import scardmanage as first
a = first.SCardManage()
a.attach_by_ifd(os.environ["SCM_LAB_READER"])
for name in [n for n in sys.modules if n == "scardmanage" or n.startswith("scardmanage.")]:
    del sys.modules[name]
os.environ["SCARDMANAGE_LIBRARY"] = sys.argv[1]
import scardmanage as second
assert second is not first and second.library_path == sys.argv[1]
b = second.SCardManage()
b.attach_by_ifd(sys.argv[2])  # a reader with no card
print(first._fast is not None, a._token.value == b._token.value, a.status(), b.status())
"""
    env = dict(os.environ)
    env.pop(scardmanage.NO_EXTENSION_ENV, None)
    run = subprocess.run([sys.executable, "-c", code, str(other), reader[:-2] + "01"], env=env, capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    built = importlib.util.find_spec("scardmanage._fast") is not None
    assert run.stdout.split(" ", 2)[:2] == [str(built), "True"], run.stdout
    # The first manager's card, and the second's empty reader.
    assert run.stdout.split(" ", 2)[2].strip() == "(6, 2) (1, 0)", run.stdout


def _import_in_subprocess(env, path_entry):
    code = "import scardmanage, sys; print(scardmanage.library_path)"
    env = dict(env, PYTHONPATH=path_entry)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/")


def _package_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(scardmanage.__file__)))


def test_explicit_library_path_wins(tmp_path):
    real = loaded_library_file()
    env = dict(os.environ, SCARDMANAGE_LIBRARY=real, LD_LIBRARY_PATH="")
    run = _import_in_subprocess(env, _package_dir())
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == real

    env["SCARDMANAGE_LIBRARY"] = str(tmp_path / "missing.so")
    run = _import_in_subprocess(env, _package_dir())
    assert run.returncode != 0
    assert "SCARDMANAGE_LIBRARY" in run.stderr and "missing.so" in run.stderr


def test_library_next_to_the_package_is_found(tmp_path):
    copy = tmp_path / "scardmanage"
    shutil.copytree(os.path.dirname(scardmanage.__file__), copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(loaded_library_file(), copy / "libscardmanage.so.0")
    env = {k: v for k, v in os.environ.items() if k not in ("SCARDMANAGE_LIBRARY", "LD_LIBRARY_PATH")}
    run = _import_in_subprocess(env, str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(copy / "libscardmanage.so.0")


def test_loader_path_is_used_last():
    assert scardmanage.library_path == "libscardmanage.so.0", "this run loads it through LD_LIBRARY_PATH"
    assert re.search(r"/lib/libscardmanage\.so\.0\.\d+\.\d+$", loaded_library_file()), loaded_library_file()


def test_the_package_is_the_pip_installed_one():
    assert not os.path.abspath(scardmanage.__file__).startswith(REPO + os.sep), scardmanage.__file__


def test_the_package_is_tested_in_a_virtual_environment():
    # .ci/test-bindings installs into a venv: the interpreter the machine has stays unchanged.
    assert sys.prefix != sys.base_prefix, "not in a virtual environment: %s" % sys.prefix
    assert os.path.abspath(scardmanage.__file__).startswith(os.path.abspath(sys.prefix) + os.sep), scardmanage.__file__


def _which_path_in_subprocess(no_extension):
    code = (
        "import scardmanage as s; "
        "print(s._fast is not None, s.SCardManage.status is s._status_extension, "
        "s.SCardManage.transmit is s._transmit_extension)"
    )
    env = dict(os.environ)
    env.pop(scardmanage.NO_EXTENSION_ENV, None)
    if no_extension is not None:
        env[scardmanage.NO_EXTENSION_ENV] = no_extension
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    return run.stdout.split()


def test_the_call_path_is_chosen_at_import():
    built = str(importlib.util.find_spec("scardmanage._fast") is not None)
    assert _which_path_in_subprocess(None) == [built] * 3
    assert _which_path_in_subprocess("0") == [built] * 3
    assert _which_path_in_subprocess("1") == ["False"] * 3


def test_the_extension_is_built_where_required():
    if not os.environ.get("SCARDMANAGE_REQUIRE_EXTENSION"):
        pytest.skip("SCARDMANAGE_REQUIRE_EXTENSION is not set")
    assert scardmanage._fast is not None
    assert SCardManage.status is scardmanage._status_extension
    assert SCardManage.transmit is scardmanage._transmit_extension
