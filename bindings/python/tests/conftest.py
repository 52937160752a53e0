"""What the tests share: the lab's control channel (SCM_LAB_CONTROL, see lab/src/control.rs),
through which a test inserts and removes cards and restarts the daemon as a user's hand would."""

import os
import socket
import threading

import pytest


class LabControl:
    """One connection to the lab's control channel: lab("insert 1") sends a request and returns
    the text after "ok", failing the test on anything else."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self._socket = socket.create_connection((host, int(port)), timeout=120)
        self._replies = self._socket.makefile("r", encoding="utf-8", newline="\n")

    def __call__(self, request):
        self._socket.sendall(request.encode("utf-8") + b"\n")
        reply = self._replies.readline().rstrip("\n")
        assert reply == "ok" or reply.startswith("ok "), "lab %r: %r" % (request, reply)
        return reply[3:]

    def later(self, seconds, request):
        """Sends the request from another thread after `seconds`; returns the thread (join it)."""
        timer = threading.Timer(seconds, self, (request,))
        timer.start()
        return timer

    def close(self):
        self._replies.close()
        self._socket.close()


@pytest.fixture
def lab():
    address = os.environ.get("SCM_LAB_CONTROL")
    assert address, "run under the lab: scm-lab run ... -- python3 -m pytest ..."
    control = LabControl(address)
    yield control
    control.close()
