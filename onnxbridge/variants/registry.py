"""The variant kinds ``variant --to`` and ``convert --variant`` know: one registration line per kind."""

from __future__ import annotations

from .kind import VariantKinds
from .kinds import bf16, fp16, int4, int8, int8_static, ort

__all__ = ["KINDS"]

KINDS = VariantKinds()
KINDS.register(fp16.KIND)
KINDS.register(bf16.KIND)
KINDS.register(int8.KIND)
KINDS.register(int8_static.KIND)
KINDS.register(int4.KIND)
KINDS.register(ort.KIND)
