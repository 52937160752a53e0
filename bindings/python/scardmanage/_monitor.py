"""scardmanage.Monitor: every reader of the system and the cards in them, as events.

    with scardmanage.Monitor() as monitor:
        for event in monitor:                  # ends when another thread calls cancel()
            print(event.kind, event.reader)

or, on a background thread:

    monitor = scardmanage.Monitor()
    monitor.start(on_event, on_error=None)     # on_event(event) runs on the monitor's thread
    ...
    monitor.stop()                              # ends and joins the thread

The first events report the readers and cards already there (READER_ADDED, then CARD_INSERTED),
so a monitor started late misses nothing; a restart of the PC/SC service is reported as its
readers removed and added again, not as an error.

The thread never dies silently. An error from the library or an exception raised by on_event
goes to on_error(exception) on the thread, when given: if on_error returns, the thread goes on
(the library's monitor stays usable after an error; the next wait comes after a pause of
ERROR_PAUSE seconds), if it raises, the thread ends with that exception. Without on_error the
first error ends the thread. The exception that ended the thread goes at once to
threading.excepthook (printed to stderr, as any thread's uncaught exception), and is kept and
raised again by the next join() or stop() in the thread that calls them. SCardError(E_HANDLE), the monitor
released under the thread, always ends it (after on_error).
"""

import collections
import ctypes
import threading
import time
from ctypes import POINTER, byref, c_char_p, c_size_t, c_uint32, c_void_p

from . import (
    E_HANDLE,
    SCARD_E_CANCELLED,
    SCARD_E_INSUFFICIENT_BUFFER,
    SCARD_E_TIMEOUT,
    SCardError,
    _check,
    _declare,
    _hresult,
    _lib,
    _name,
    _Owned,
    _size_p,
    _timeout_ms,
)

EVENT_READER_ADDED, EVENT_READER_REMOVED, EVENT_CARD_INSERTED, EVENT_CARD_REMOVED = 1, 2, 3, 4

_monitor_p = c_void_p
_declare("scm_monitor_create", _hresult, POINTER(_monitor_p))
_declare("scm_monitor_next", _hresult, _monitor_p, c_uint32, POINTER(c_uint32), c_char_p, _size_p)
_declare("scm_monitor_cancel", _hresult, _monitor_p)
_declare("scm_monitor_release", _hresult, _monitor_p)

MonitorEvent = collections.namedtuple("MonitorEvent", "kind reader")
MonitorEvent.__doc__ = "kind: EVENT_*; reader: the reader's name (bytes that are not UTF-8 as U+FFFD)."

# PC/SC's longest reader name is far shorter; a longer one is fetched again at its size.
_READER_CAPACITY = 512
# Seconds the thread rests after an error on_error let it go on from, so that an error that
# comes back at once does not spin.
ERROR_PAUSE = 0.1


class Monitor(_Owned):
    """scm_monitor_*: readers added and removed, cards inserted and removed, on every reader."""

    _release = "scm_monitor_release"

    def __init__(self):
        token = _monitor_p()
        _check("scm_monitor_create", _lib.scm_monitor_create(byref(token)))
        self._own(token)
        self._thread = None
        self._stopping = False
        self._error = None

    def next(self, timeout=None):
        """The next event, waiting up to ``timeout`` seconds (None: no end); None when the time
        passed. cancel() from another thread ends the wait: SCardError(SCARD_E_CANCELLED)."""
        kind = c_uint32()
        capacity = _READER_CAPACITY
        while True:
            reader = ctypes.create_string_buffer(capacity)
            size = c_size_t(capacity)
            hresult = _lib.scm_monitor_next(self._token, _timeout_ms(timeout), byref(kind), reader, byref(size))
            if hresult & 0xFFFFFFFF != SCARD_E_INSUFFICIENT_BUFFER:
                break
            capacity = size.value
        if hresult & 0xFFFFFFFF == SCARD_E_TIMEOUT:
            return None
        _check("scm_monitor_next", hresult)
        return MonitorEvent(kind.value, _name(reader.raw[: size.value - 1]))

    def __iter__(self):
        return self

    def __next__(self):
        """The next event, however long it takes; the iteration ends when cancel() ends the wait."""
        try:
            return self.next()
        except Exception as e:
            if getattr(e, "hresult", None) == SCARD_E_CANCELLED:
                raise StopIteration from None
            raise

    def cancel(self):
        """Ends a next() in progress (from any thread)."""
        self._call("scm_monitor_cancel")

    def start(self, on_event, on_error=None):
        """Runs on_event(event) for every event on a background thread (a daemon thread) until
        stop(); see the module's text for what becomes of an error."""
        if self._thread is not None:
            raise RuntimeError("the monitor's thread was started already")
        self._stopping = False
        self._thread = threading.Thread(target=self._run, args=(on_event, on_error), name="scardmanage.Monitor",
                                        daemon=True)
        self._thread.start()

    def _run(self, on_event, on_error):
        while not self._stopping:
            try:
                try:
                    event = self.next()
                except SCardError as e:
                    # A cancel that is not stop()'s (the program's own cancel()) ends one wait only.
                    if e.hresult == SCARD_E_CANCELLED:
                        continue
                    raise
                on_event(event)
            except BaseException as e:  # reported, not swallowed: see the module's text
                if not self._report(e, on_error):
                    if self._error is not None:
                        # Uncaught, for threading.excepthook to print now: a program that lives
                        # on its callbacks and never calls stop() would not learn otherwise
                        # that its events ended. stop() and join() still raise it.
                        raise self._error
                    return
                time.sleep(ERROR_PAUSE)

    def _report(self, error, on_error):
        """Gives an error to on_error; whether the thread goes on."""
        if on_error is None:
            self._error = error
            return False
        try:
            on_error(error)
        except BaseException as raised:
            self._error = raised
            return False
        return getattr(error, "hresult", None) != E_HANDLE

    def join(self, timeout=None):
        """Waits up to ``timeout`` seconds for the thread to end; raises what ended it, if that
        was an error no on_error took (once). Returns whether the thread has ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error
        return True

    def stop(self):
        """Ends the thread and waits for it; raises the error that ended it first, if any.
        From on_event itself (the monitor's own thread) it only asks the thread to end."""
        self._stopping = True
        # Read once: a stop() or join() in another thread sets _thread to None when it sees the
        # thread ended.
        thread = self._thread
        if thread is threading.current_thread():
            return
        # A cancel that comes before the thread is in its wait ends nothing: sent again until
        # the thread has seen _stopping.
        while thread is not None and thread.is_alive():
            # A monitor released under the thread has no wait to cancel: E_HANDLE ends the thread.
            hresult = _lib.scm_monitor_cancel(self._token)
            if hresult < 0 and hresult & 0xFFFFFFFF != E_HANDLE:
                _check("scm_monitor_cancel", hresult)
            thread.join(0.05)
        self.join()

    def close(self):
        """stop(), then releases the monitor; a second close() does nothing."""
        try:
            if not self._closed:
                self.stop()
        finally:
            super().close()
