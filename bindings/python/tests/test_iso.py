"""File access, card holder verification, card authentication and the ISO transport against the
lab's ISO 7816-4 card (scm-lab run --iso, and --iso-t0 for a T=0 one, -- python3 -m pytest
.../test_iso.py): MF 3F00, DF 5000
named F0 53 43 4D 49 53 4F with EF 5001 (33 bytes), 5002 (40 000 bytes, byte i = i % 251), 5004
(needs PIN 81), PIN 81 "1234" with 3 tries, its PUK "12345678", auth key "SCM-KEY!" (the card
answers INTERNAL AUTHENTICATE with the data XOR the key). Every test starts from a fresh card
(iso-reset through the lab's control channel)."""

import io
import os
import uuid

import pytest

import scardmanage
from scardmanage import SCardError, SCardManage

DF_NAME = "F053434D49534F"
SMALL = b"scardmanage ISO lab card: EF 5001"
BIG = bytes(i % 251 for i in range(40000))
PIN_REF = 0x81
KEY = b"SCM-KEY!"


def xor_key(data):
    return bytes(b ^ KEY[i % len(KEY)] for i, b in enumerate(data))


@pytest.fixture
def mgr(lab):
    lab("iso-reset 0")
    with SCardManage() as m:
        m.attach_by_ifd(os.environ["SCM_LAB_READER"])
        yield m


@pytest.fixture
def files(mgr):
    with mgr.create_file_access() as f:
        f.change_dir(scardmanage.REF_BY_NAME, DF_NAME)
        yield f


def raises(hresult, call, *args):
    with pytest.raises(SCardError) as info:
        call(*args)
    assert info.value.hresult == hresult, "0x%08X %s" % (info.value.hresult, info.value)
    return info.value


def test_read_a_small_and_a_40000_byte_file(files):
    with files.open(scardmanage.REF_BY_ID, "5001") as small:
        assert small.read() == SMALL
        assert small.read() == b""
    with files.open(scardmanage.REF_BY_ID, "5002") as big:
        assert big.read(100) == BIG[:100]
        assert big.tell() == 100
        assert big.read() == BIG[100:]
        assert big.tell() == 40000
        assert big.seek(-10, io.SEEK_END) == 39990
        assert big.read(1000) == BIG[-10:]
    # By short EF identifier the card gives no size: reading to the end works, seeking from it not.
    with files.open(scardmanage.REF_BY_SHORT_ID, "2") as big:
        assert big.read() == BIG
        raises(scardmanage.SCARD_E_BAD_SEEK, big.seek, -10, io.SEEK_END)


def test_a_file_dropped_without_close_gives_back_its_place(files):
    # The library keeps 16 files open per object (SCM_FILE_MAX_OPEN): a CardFile that is
    # garbage, as a Python file object, must not hold one of them until the FileAccess ends.
    for _ in range(20):
        assert files.open(scardmanage.REF_BY_ID, "5001").read() == SMALL
    dropped = files.open(scardmanage.REF_BY_ID, "5001")
    files.close()
    del dropped  # its FileAccess gone first: nothing to close, and nothing raised


def test_read_to_the_end_of_a_record_file_reads_every_record(files):
    # EF 5003: 3 records of 16 bytes, record n all n. read(n) takes one record, read() all.
    with files.open(scardmanage.REF_BY_ID, "5003") as records:
        assert records.read(16) == bytes([1]) * 16
        assert records.read() == bytes([2]) * 16 + bytes([3]) * 16
        assert records.tell() == 3
        assert records.read() == b""


def test_an_integer_is_no_data(mgr, files):
    # bytes(5) is five zero bytes: write(5) would overwrite the file's first bytes with them.
    with files.open(scardmanage.REF_BY_ID, "5001") as small:
        with pytest.raises(TypeError):
            small.write(5)
        assert small.read() == SMALL
    with pytest.raises(TypeError):
        files.create(scardmanage.REF_BY_ID, "5012", 16)
    with mgr.create_card_auth() as auth:
        for call in (auth.internal_authenticate, auth.external_authenticate):
            with pytest.raises(TypeError):
                call(8)
    for call in (mgr.set_attrib, mgr.control):
        with pytest.raises(TypeError):
            call(scardmanage.ATTR_VENDOR_NAME, 4)


def test_write_and_read_back_40000_bytes(files):
    data = bytes((i * 7 + 3) % 256 for i in range(40000))
    with files.open(scardmanage.REF_BY_ID, "5002") as big:
        assert big.write(data) == 40000
        assert big.seek(0) == 0
        assert big.read() == data
        big.seek(32760)
        big.write(b"across 32767")
        assert big.seek(-12, io.SEEK_CUR) == 32760
        assert big.read(12) == b"across 32767"


def test_a_seek_offset_beyond_64_bits_is_refused_not_wrapped(files):
    # ctypes cuts an int to the argument's 64 bits: 2**64 would arrive as 0, -2**64 - 1 as -1.
    with files.open(scardmanage.REF_BY_ID, "5002") as big:
        assert big.seek(100) == 100
        raises(scardmanage.SCARD_E_BAD_SEEK, big.seek, 2**64)
        raises(scardmanage.SCARD_E_BAD_SEEK, big.seek, 2**64 + 5, io.SEEK_CUR)
        raises(scardmanage.SCARD_E_BAD_SEEK, big.seek, -(2**64) + 10, io.SEEK_END)
        assert big.tell() == 100


def test_directories_properties_and_missing_files(files):
    assert files.current_dir() == DF_NAME
    fcp = files.properties(scardmanage.REF_BY_ID, "5002")
    assert fcp[0] == 0x62 and bytes.fromhex("80029C40") in fcp, fcp.hex()
    raises(scardmanage.SCARD_E_FILE_NOT_FOUND, files.open, scardmanage.REF_BY_ID, "5999")
    files.change_dir(scardmanage.REF_BY_ID, "3F00/5000/5100")
    assert files.current_dir() == "3F00/5000/5100"
    with files.open(scardmanage.REF_BY_ID, "5101") as sub:
        assert sub.read() == b"nested"


def test_invalidate_and_rehabilitate(files):
    files.invalidate(scardmanage.REF_BY_ID, "5001")
    with pytest.raises(SCardError):
        with files.open(scardmanage.REF_BY_ID, "5001") as small:
            small.read()
    files.rehabilitate(scardmanage.REF_BY_ID, "5001")
    with files.open(scardmanage.REF_BY_ID, "5001") as small:
        assert small.read() == SMALL


def test_create_and_delete_a_file(files):
    files.create(scardmanage.REF_BY_ID, "5010", bytes.fromhex("620B8201018302501080020010"))
    with files.open(scardmanage.REF_BY_ID, "5010") as new:
        assert new.read() == bytes(16)
        new.seek(0)
        new.write(b"0123456789abcdef")
        new.seek(0)
        assert new.read() == b"0123456789abcdef"
    files.delete(scardmanage.REF_BY_ID, "5010")
    raises(scardmanage.SCARD_E_FILE_NOT_FOUND, files.open, scardmanage.REF_BY_ID, "5010")


def test_a_write_longer_than_one_call_takes(files):
    # 70 000 bytes: more than one scm_file_write carries (65 535), in a file created for them.
    files.create(scardmanage.REF_BY_ID, "5011", bytes.fromhex("620C820101830250118003011170"))
    data = bytes((i * 31 + 7) % 256 for i in range(70000))
    with files.open(scardmanage.REF_BY_ID, "5011") as large:
        assert large.write(data) == 70000
        assert large.tell() == 70000
        large.seek(0)
        assert large.read() == data


def test_wrong_pin_down_to_blocked_then_unblocked_with_the_puk(mgr):
    with mgr.create_chv_verification() as chv:
        assert chv.tries_left(PIN_REF) == 3
        for left in (2, 1, 0):
            error = raises(scardmanage.SCARD_W_WRONG_CHV, chv.verify, PIN_REF, b"9999")
            assert error.tries_left == left
            assert "9999" not in str(error)
        error = raises(scardmanage.SCARD_W_CHV_BLOCKED, chv.verify, PIN_REF, "1234")
        assert error.tries_left == 0
        assert chv.tries_left(PIN_REF) == 0
        error = raises(scardmanage.SCARD_W_WRONG_CHV, chv.unblock, PIN_REF, b"87654321", "4321")
        assert error.tries_left == 4, "the PUK's own counter"
        chv.unblock(PIN_REF, bytearray(b"12345678"), "4321")
        assert chv.tries_left(PIN_REF) == 3
        chv.verify(PIN_REF, "4321")
        # PIN 82 has no retry counter: the card does not say how many tries are left.
        error = raises(scardmanage.SCARD_W_WRONG_CHV, chv.verify, 0x82, b"1111")
        assert error.tries_left is None
        assert chv.tries_left(0x82) is None


def test_a_protected_file_needs_the_pin_and_forgets_it_on_reset(mgr, files):
    with mgr.create_chv_verification() as chv:
        with files.open(scardmanage.REF_BY_ID, "5004") as secret:
            raises(scardmanage.SCARD_W_SECURITY_VIOLATION, secret.read)
            chv.verify(PIN_REF, bytearray(b"1234"))
            assert secret.read() == b"PIN-protected"
            chv.reset_security_state()
            secret.seek(0)
            raises(scardmanage.SCARD_W_SECURITY_VIOLATION, secret.read)
        chv.change_code(PIN_REF, "1234", b"5678")
        raises(scardmanage.SCARD_W_WRONG_CHV, chv.verify, PIN_REF, "1234")
        chv.verify(PIN_REF, memoryview(b"5678"))


def test_a_str_code_is_wiped_after_the_call():
    from scardmanage import _objects

    with _objects._secret("1234") as (argument, length):
        assert bytes(argument)[:length] == b"1234"
    assert bytes(argument) == bytes(len(argument)), "the binding's copy of the code is zeros"
    mine = bytearray(b"5678")
    with _objects._secret(mine) as (argument, length):
        assert (bytes(argument), length) == (b"5678", 4)
    assert mine == b"5678", "the caller's own buffer is the caller's"


def test_challenge_and_authentication(mgr):
    with mgr.create_card_auth() as auth:
        one, two = auth.challenge(8), auth.challenge(8)
        assert len(one) == len(two) == 8 and one != two
        assert auth.internal_authenticate(b"hello card", key=1) == xor_key(b"hello card")
        auth.external_authenticate(xor_key(auth.challenge(8)), key=1)
        challenge = auth.challenge(8)
        raises(scardmanage.SCARD_W_SECURITY_VIOLATION, auth.external_authenticate, challenge, 0, 1)
        auth.user_authenticate(PIN_REF, "1234")
        error = raises(scardmanage.SCARD_W_WRONG_CHV, auth.user_authenticate, PIN_REF, b"0000")
        assert error.tries_left == 2


def test_create_interface_by_iid_and_name(mgr):
    kinds = [
        (scardmanage.IID_ISCardFileAccess, "FileAccess", scardmanage.FileAccess),
        (scardmanage.IID_ISCardVerify, "CHVerification", scardmanage.ChvVerification),
        (scardmanage.IID_ISCardAuth, "CardAuth", scardmanage.CardAuth),
    ]
    for iid, name, kind in kinds:
        for key in (iid, iid.bytes_le, name):
            with mgr.create_interface(key) as made:
                assert type(made) is kind
    with mgr.create_interface("CHVerification") as chv:
        assert chv.tries_left(PIN_REF) == 3
    raises(scardmanage.E_NOTIMPL, mgr.create_interface, "CryptoProvider")
    raises(scardmanage.E_NOTIMPL, mgr.create_interface, uuid.UUID(int=1))


def test_objects_follow_their_manager(mgr):
    auth = mgr.create_card_auth()
    mgr.reconnect()
    assert len(auth.challenge(4)) == 4
    mgr.detach()
    raises(scardmanage.E_NOT_ATTACHED, auth.challenge, 4)
    mgr.close()
    raises(scardmanage.E_HANDLE, auth.challenge, 4)
    auth.close()
    raises(scardmanage.E_HANDLE, auth.challenge, 4)


def test_transmit_with_iso_help(mgr):
    # INTERNAL AUTHENTICATE is a case 4 command: a T=0 card answers 61xx and keeps the data for
    # GET RESPONSE, which iso=True sends.
    command = bytes.fromhex("0088000104") + b"abcd" + b"\x00"
    if mgr.status()[1] == scardmanage.PROTOCOL_T0:
        assert mgr.transmit(command) == b"\x61\x04"
    assert mgr.transmit(command, iso=True) == xor_key(b"abcd") + b"\x90\x00"
    answer = mgr.transmit(bytes.fromhex("0084000008"), iso=True)
    assert len(answer) == 10 and answer[-2:] == b"\x90\x00"
    assert mgr.transmit(bytes.fromhex("00A4040C07") + bytes.fromhex(DF_NAME), iso=scardmanage.ISO_GET_RESPONSE) == b"\x90\x00"
    # 300 bytes at offset 0 of EF 5002 (short EF 2): more than a short APDU carries.
    data = bytes(range(256)) + bytes(44)
    assert mgr.transmit(bytes.fromhex("00D68200") + bytes([0, 1, 44]) + data, iso=True) == b"\x90\x00"
    raises(scardmanage.E_INVALIDARG, mgr.transmit, bytes.fromhex("0084000008"), 2**32 + 1)
