"""``_util.quiet``: C/C++ and Python writes are kept off the terminal, and only a bounded tail is held."""

from __future__ import annotations

import os

from onnxbridge._util import KEPT_BYTES, quiet


def test_quiet_keeps_fd_and_python_writes_off_the_terminal_and_holds_only_their_tail(capfd):
    with quiet() as cap:
        os.write(1, b"x" * (4 * KEPT_BYTES) + b"LAST")  # a C++ IR dump of a large model, in miniature
        os.write(2, b"glog line\n")
        print("a python print")
    out, err = capfd.readouterr()
    assert out == err == ""
    assert len(cap.fd_text.encode()) == KEPT_BYTES and cap.fd_text.endswith("glog line\n")
    assert "LAST" in cap.fd_text and cap.python.getvalue() == "a python print\n"


def test_quiet_disabled_lets_everything_through(capfd):
    with quiet(enabled=False):
        os.write(1, b"shown\n")
    assert capfd.readouterr().out == "shown\n"
