"""What the daemon tells systemd when systemd's end of NOTIFY_SOCKET stops
reading: nothing waits, and the READY=1 a full queue dropped is sent again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ecr_helper.daemon.liveness import Liveness
from ecr_helper.daemon.systemd import SystemdReporter
from tests.helpers import CENTRAL_HOST
from tests.test_notify import Receiver, fill


@pytest.mark.timeout(10)  # a blocking send would wait for ever
def test_a_ready_dropped_on_a_full_queue_is_sent_again(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bound:
        bound.bind(path)
        receiver = Receiver(bound, path)
        reporter = SystemdReporter({"NOTIFY_SOCKET": path}, Liveness(), list)
        reporter.track([CENTRAL_HOST])
        reporter.refreshed(CENTRAL_HOST, True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
            assert fill(other, path) > 0
        reporter.tick()  # READY=1 does not fit: dropped, not waited on
        assert not reporter.ready
        assert all("READY" not in fields for fields in receiver.messages())  # systemd reads
        reporter.tick()
        assert reporter.ready
        assert [fields.get("READY") for fields in receiver.messages()] == ["1"]
        reporter.tick()  # once only
        assert receiver.messages(timeout=0.2) == []
