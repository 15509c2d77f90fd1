"""Which source lines count as torch's own: a folder, not a name prefix (torchvision is not torch)."""

from __future__ import annotations

import os

from onnxbridge.converters import torch_random
from onnxbridge.converters.torch_random import _user_frame
from onnxbridge.converters.torch_utils import inside, torch_dir

HERE = os.path.abspath(__file__)
OURS = os.path.dirname(os.path.abspath(torch_random.__file__))  # random_ops skips its own frames too


def test_a_package_beside_torch_is_not_inside_torch():
    assert inside(os.path.join(torch_dir(), "nn", "functional.py"), torch_dir())
    assert not inside(os.path.join(torch_dir() + "vision", "ops", "boxes.py"), torch_dir())


def test_user_frame_skips_folders_not_name_prefixes():
    prefix = os.path.dirname(HERE)[:-3]  # a name prefix of this test's folder, not a folder above it
    frame = _user_frame((prefix, OURS))
    assert frame is not None and os.path.abspath(frame.filename) == HERE
    assert os.path.abspath(_user_frame((os.path.dirname(HERE), OURS)).filename) != HERE
