"""Waiting for cards, the monitor, attributes and control, against the lab of the main run
(scm-lab run --pairs 2 ...): a default-applet card in the first reader, the second ("... 00 01",
index 1) empty. A test that inserts a card there removes it again."""

import subprocess
import sys
import threading
import time

import pytest

import scardmanage
from scardmanage import Monitor, MonitorEvent, SCardError, SCardManage

ECHO = bytes.fromhex("8010000003") + b"abc"
ADDED, REMOVED = scardmanage.EVENT_READER_ADDED, scardmanage.EVENT_READER_REMOVED
INSERTED, CARD_REMOVED = scardmanage.EVENT_CARD_INSERTED, scardmanage.EVENT_CARD_REMOVED


@pytest.fixture
def readers():
    return scardmanage.list_readers()


@pytest.fixture
def empty_reader(readers, lab):
    """The second reader, empty, with a manager attached to it; emptied again after the test."""
    with SCardManage() as m:
        m.attach_by_ifd(readers[1])
        assert m.status()[0] == scardmanage.STATE_ABSENT
        yield m
    lab("remove 1")


def raises(hresult, call, *args):
    with pytest.raises(SCardError) as info:
        call(*args)
    assert info.value.hresult == hresult, "0x%08X" % info.value.hresult
    return info.value


def test_wait_for_change_sees_the_card_the_lab_inserts_and_removes(empty_reader, lab):
    assert empty_reader.wait_for_change(0.3) is None, "no change yet"
    inserting = lab.later(0.2, "insert 1")
    state = empty_reader.wait_for_change(30)
    inserting.join()
    assert state == scardmanage.STATE_PRESENT, "a card, not connected yet: %r" % state
    empty_reader.reconnect()
    assert empty_reader.status() == (scardmanage.STATE_SPECIFIC, scardmanage.PROTOCOL_T1)
    assert empty_reader.transmit(ECHO) == b"abc\x90\x00"
    removing = lab.later(0.2, "remove 1")
    assert empty_reader.wait_for_change(30) == scardmanage.STATE_ABSENT
    removing.join()


def test_a_card_swapped_between_two_waits_is_reported(empty_reader, lab):
    lab("insert 1")
    assert empty_reader.wait_for_change(30) == scardmanage.STATE_PRESENT
    # Out and in again while nobody waits: the next wait reports it at once.
    lab("insert 1")
    assert empty_reader.wait_for_change(0) == scardmanage.STATE_PRESENT


def test_a_cancel_from_another_thread_ends_the_wait(empty_reader):
    threading.Timer(0.3, empty_reader.cancel).start()
    started = time.monotonic()
    raises(scardmanage.SCARD_E_CANCELLED, empty_reader.wait_for_change)
    assert 0.2 < time.monotonic() - started < 10


def test_closing_the_manager_ends_a_wait_in_progress(readers):
    m = SCardManage()
    m.attach_by_ifd(readers[1])
    threading.Timer(0.3, m.close).start()
    started = time.monotonic()
    raises(scardmanage.E_HANDLE, m.wait_for_change)
    assert time.monotonic() - started < 10
    raises(scardmanage.E_HANDLE, m.wait_for_change, 0)


def test_attributes_and_control_of_the_lab_readers(readers):
    with SCardManage() as m, SCardManage() as empty:
        m.attach_by_ifd(readers[0])
        empty.attach_by_ifd(readers[1])
        assert m.get_attrib(scardmanage.ATTR_ATR_STRING) == bytes.fromhex("3B800181")
        raises(scardmanage.SCARD_E_NO_SMARTCARD, empty.get_attrib, scardmanage.ATTR_ATR_STRING)
        for attribute in (scardmanage.ATTR_DEVICE_FRIENDLY_NAME, scardmanage.ATTR_DEVICE_SYSTEM_NAME):
            assert m.get_attrib(attribute) == readers[0].encode() + b"\0"
            assert empty.get_attrib(attribute) == readers[1].encode() + b"\0"
        # vpcd answers no vendor attribute, refuses every one it is given, and knows no control
        # code and no PC/SC part 10 feature.
        raises(scardmanage.SCARD_E_UNSUPPORTED_FEATURE, m.get_attrib, scardmanage.ATTR_VENDOR_NAME)
        raises(scardmanage.SCARD_E_NOT_TRANSACTED, m.set_attrib, scardmanage.ATTR_VENDOR_NAME, b"\1\2\3\4")
        raises(scardmanage.SCARD_E_UNSUPPORTED_FEATURE, m.control, 3400)
        raises(scardmanage.SCARD_E_UNSUPPORTED_FEATURE, empty.control, 1, b"\0\1")
        raises(scardmanage.SCARD_E_UNSUPPORTED_FEATURE, m.get_feature, scardmanage.FEATURE_VERIFY_PIN_DIRECT)
        raises(scardmanage.E_INVALIDARG, m.get_feature, 0x100)
        raises(scardmanage.E_INVALIDARG, m.get_attrib, 2**32 + scardmanage.ATTR_ATR_STRING)


def collect(monitor, count, timeout=30):
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        event = monitor.next(max(0.0, deadline - time.monotonic()))
        assert event is not None, "only %r" % events
        events.append(event)
    return events


def initial_events(readers):
    return [MonitorEvent(ADDED, r) for r in readers] + [MonitorEvent(INSERTED, readers[0])]


def test_a_monitor_reports_what_is_there_first(readers):
    with Monitor() as monitor:
        events = collect(monitor, len(readers) + 1)
        assert sorted(events) == sorted(initial_events(readers))
        assert events.index(MonitorEvent(ADDED, readers[0])) < events.index(MonitorEvent(INSERTED, readers[0]))
        assert monitor.next(0.5) is None, "nothing more happened"


def test_a_name_longer_than_the_buffer_is_fetched_again_whole(readers, monkeypatch):
    # The library keeps the event when the name does not fit and gives the size it needs; no
    # lab reader's name is longer than the binding's 512 bytes, so the buffer is made smaller.
    from scardmanage import _monitor

    monkeypatch.setattr(_monitor, "_READER_CAPACITY", 4)
    with Monitor() as monitor:
        assert sorted(collect(monitor, len(readers) + 1)) == sorted(initial_events(readers))


def test_a_monitor_sees_the_lab_insert_and_remove(readers, lab):
    with Monitor() as monitor:
        collect(monitor, len(readers) + 1)
        lab("insert 1")
        lab("remove 1")
        assert collect(monitor, 2) == [MonitorEvent(INSERTED, readers[1]), MonitorEvent(CARD_REMOVED, readers[1])]


def test_iterating_a_monitor_ends_when_another_thread_cancels(readers):
    with Monitor() as monitor:
        seen = []
        threading.Timer(1.0, monitor.cancel).start()
        for event in monitor:
            seen.append(event)
        assert sorted(seen) == sorted(initial_events(readers))


def test_the_callback_thread_reports_events_and_stops_cleanly(readers, lab):
    events, arrived = [], threading.Condition()

    def on_event(event):
        with arrived:
            events.append(event)
            arrived.notify_all()

    def wait_for(count):
        with arrived:
            assert arrived.wait_for(lambda: len(events) >= count, 30), events

    with Monitor() as monitor:
        monitor.start(on_event)
        wait_for(len(readers) + 1)
        lab("insert 1")
        lab("remove 1")
        wait_for(len(readers) + 3)
        thread = monitor._thread
        monitor.stop()
        assert not thread.is_alive()
    assert events[len(readers) + 1 :] == [MonitorEvent(INSERTED, readers[1]), MonitorEvent(CARD_REMOVED, readers[1])]


def test_the_callback_thread_survives_a_restart_of_the_service(readers, lab):
    events, arrived, errors = [], threading.Condition(), []

    def on_event(event):
        with arrived:
            events.append(event)
            arrived.notify_all()

    with Monitor() as monitor:
        monitor.start(on_event, errors.append)
        with arrived:
            assert arrived.wait_for(lambda: len(events) >= len(readers) + 1, 30), events
        lab("restart")
        with arrived:
            # What was there, everything gone, everything back (readers, then the card).
            assert arrived.wait_for(lambda: len(events) >= 3 * (len(readers) + 1), 60), events
        monitor.stop()
    gone = events[len(readers) + 1 :]
    assert sorted(gone[: len(readers) + 1]) == sorted([MonitorEvent(REMOVED, r) for r in readers]
                                                      + [MonitorEvent(CARD_REMOVED, readers[0])])
    assert sorted(gone[len(readers) + 1 :]) == sorted(initial_events(readers))


def test_stop_from_several_threads_at_once():
    # The first stopper to see the thread ended clears it; the others must not trip over that.
    for _ in range(20):
        with Monitor() as monitor:
            monitor.start(lambda event: None)
            failures = []

            def stopper():
                try:
                    monitor.stop()
                except BaseException as e:
                    failures.append(e)

            stoppers = [threading.Thread(target=stopper) for _ in range(3)]
            for thread in stoppers:
                thread.start()
            for thread in stoppers:
                thread.join(30)
            assert failures == []
            assert monitor.join(0) is True


def test_stop_from_the_callback_ends_the_thread():
    with Monitor() as monitor:
        seen = []
        monitor.start(lambda event: (seen.append(event), monitor.stop()))
        assert monitor.join(30) is True, "the thread ended"
        assert len(seen) == 1


def test_an_exception_in_the_callback_is_raised_by_stop(monkeypatch):
    printed = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    monitor = Monitor()
    monitor.start(lambda event: 1 / 0)
    thread = monitor._thread
    thread.join(30)
    assert not thread.is_alive(), "the first event ends the thread"
    assert [type(args.exc_value) for args in printed] == [ZeroDivisionError], "reported when it happened"
    with pytest.raises(ZeroDivisionError):
        monitor.stop()
    assert monitor.join() is True, "the error is raised once"
    monitor.close()


def test_an_error_of_the_library_reaches_on_error(readers):
    errors, failed = [], threading.Event()
    monitor = Monitor()
    first = threading.Event()
    monitor.start(lambda event: first.set(), lambda error: (errors.append(error), failed.set()))
    assert first.wait(30)
    # The monitor released under its thread, as a program's bug would: the thread must not end
    # without a word.
    assert scardmanage._lib.scm_monitor_release(monitor._token) == 0
    assert failed.wait(30), "the thread ended silently or goes on"
    assert [type(e) for e in errors] == [SCardError] and errors[0].hresult == scardmanage.E_HANDLE
    assert errors[0].function == "scm_monitor_next"
    monitor.stop()
    raises(scardmanage.E_HANDLE, monitor.close)


def test_the_thread_goes_on_when_on_error_returns(readers, lab):
    events, errors, arrived = [], [], threading.Condition()

    def on_event(event):
        with arrived:
            events.append(event)
            arrived.notify_all()
        if len(events) == 1:
            raise ValueError("the program's callback failed once")

    with Monitor() as monitor:
        monitor.start(on_event, errors.append)
        lab("insert 1")
        lab("remove 1")
        with arrived:
            assert arrived.wait_for(lambda: len(events) >= len(readers) + 3, 30), events
        monitor.stop()
    assert [str(e) for e in errors] == ["the program's callback failed once"]
    assert events[len(readers) + 1 :] == [MonitorEvent(INSERTED, readers[1]), MonitorEvent(CARD_REMOVED, readers[1])]


def test_a_failing_on_error_is_raised_by_stop(monkeypatch):
    printed = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    monitor = Monitor()

    def on_error(error):
        raise RuntimeError("on_error failed") from error

    monitor.start(lambda event: 1 / 0, on_error)
    with pytest.raises(RuntimeError) as info:
        monitor.join(30)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    monitor.close()
    assert [args.exc_value for args in printed] == [info.value]


def test_a_thread_ended_by_an_error_says_so_even_if_stop_never_comes():
    # A program that lives on its callbacks may never call stop(): the error that ended the thread
    # must not wait for it. As any thread's uncaught exception, it goes to stderr at once.
    program = "import scardmanage, time; m = scardmanage.Monitor(); m.start(lambda e: 1 / 0); time.sleep(2)"
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "ZeroDivisionError" in run.stderr and "scardmanage.Monitor" in run.stderr, run.stderr
