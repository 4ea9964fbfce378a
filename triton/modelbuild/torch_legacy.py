"""Tensors out of a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without
PyTorch: the pickle names its storages by key, and their bytes follow the pickle in key order.

Only what a state dict of float tensors needs: OrderedDict, FloatStorage/HalfStorage and
torch._utils._rebuild_tensor_v2. Anything else in the pickle is refused (no arbitrary code).
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64}


@dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} has no data")
        if (
            len(self.size) != len(self.stride)
            or any(n < 0 for n in self.size)
            or any(t < 0 for t in self.stride)
        ):
            raise ValueError("malformed tensor shape")
        last = self.offset + sum((n - 1) * t for n, t in zip(self.size, self.stride, strict=True) if n)
        if self.offset < 0 or (all(self.size) and last >= len(data)):
            raise ValueError(f"a tensor reaches past its storage ({last} >= {len(data)})")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, tuple(s * item for s in self.stride)
        )
        return np.array(view, dtype=np.float32)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _Tensor:
    return _Tensor(storage, offset, tuple(size), tuple(stride))


class _Plain(pickle.Unpickler):
    """Numbers, strings, lists and dicts only: the header and trailer pickles."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed here")


class _Unpickler(pickle.Unpickler):
    def __init__(self, f: io.BytesIO) -> None:
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, _DTYPES[storage_type.name], int(numel))
        return self.storages[key]


def load(data: bytes) -> dict[str, np.ndarray]:
    """name → float32 array of every tensor in the state dict."""
    f = io.BytesIO(data)
    if _Plain(f).load() != MAGIC:
        raise ValueError("not a legacy PyTorch file")
    _Plain(f).load()  # protocol version
    _Plain(f).load()  # system info (endianness, type sizes)
    unpickler = _Unpickler(f)
    state = unpickler.load()
    if not isinstance(state, dict):
        raise ValueError("not a state dict")
    keys = _Plain(f).load()  # the storages' keys, in the order their bytes follow
    for key in keys:
        storage = unpickler.storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        size = numel * np.dtype(storage.dtype).itemsize
        raw = f.read(size)
        if numel != storage.numel or len(raw) != size:
            raise ValueError(f"storage {key}: {len(raw)} bytes of {size}, {numel} items of {storage.numel}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return {name: tensor.array() for name, tensor in state.items()}
