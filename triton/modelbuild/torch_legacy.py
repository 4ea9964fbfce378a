"""Tensors out of a PyTorch state dict saved in the legacy (pre-1.6, non-zip) format, without
PyTorch: the pickle names its storages by key, and their bytes follow the pickle in key order.

Only what a state dict of float tensors needs: OrderedDict, FloatStorage/HalfStorage and
torch._utils._rebuild_tensor_v2. Anything else in the pickle is refused (no arbitrary code).
Bounded by the file: a storage holds exactly the bytes that follow the pickle for it, every
tensor is a view inside its storage with positive strides, and all tensors together hold no more
elements than all storages (so what the reader returns is at most twice the file's size).
"""

from __future__ import annotations

import io
import math
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


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list) or not all(type(v) is int for v in value):
        raise ValueError(f"{what} is not a tuple of integers: {value!r}")
    return tuple(value)


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    def check(self) -> None:
        """A view inside its storage (as its pickle claims it): sizes and offset not negative,
        strides of at least 1, the last element and the element count within the storage."""
        if len(self.size) != len(self.stride):
            raise ValueError(f"size {self.size} and stride {self.stride} differ in length")
        if any(n < 0 for n in self.size) or self.offset < 0:
            raise ValueError(f"negative size {self.size} or offset {self.offset}")
        if any(t < 1 for t in self.stride):
            raise ValueError(f"stride {self.stride}: zero or negative strides are refused")
        if self.numel == 0:
            return
        last = self.offset + sum((n - 1) * t for n, t in zip(self.size, self.stride, strict=True))
        room = self.storage.numel - self.offset
        if last >= self.storage.numel or self.numel > room:
            raise ValueError(
                f"a tensor of {self.size} (stride {self.stride}, offset {self.offset}) reaches past "
                f"its storage {self.storage.key} of {self.storage.numel} items"
            )

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} has no data")
        if len(data) != self.storage.numel:  # read() guarantees it; the bounds above rely on it
            raise ValueError(f"storage {self.storage.key} holds {len(data)} items, not {self.storage.numel}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.size, tuple(s * item for s in self.stride), writeable=False
        )
        return np.array(view, dtype=np.float32)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _Tensor:
    if not isinstance(storage, _Storage) or type(offset) is not int:
        raise ValueError("malformed tensor: not a storage and an integer offset")
    tensor = _Tensor(storage, offset, _ints(size, "size"), _ints(stride, "stride"))
    tensor.check()
    return tensor


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
        if not isinstance(pid, tuple) or len(pid) != 6 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _kind, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError(f"malformed storage {pid!r}")
        if type(numel) is not int or numel < 0:
            raise ValueError(f"storage {key}: {numel!r} items")
        if view is not None:
            raise ValueError(f"storage {key} is a view of another storage (not supported)")
        storage = self.storages.setdefault(key, _Storage(key, _DTYPES[storage_type.name], numel))
        if storage.numel != numel or storage.dtype is not _DTYPES[storage_type.name]:
            raise ValueError(f"storage {key} is named twice with different types or sizes")
        return storage


def load(data: bytes) -> dict[str, np.ndarray]:
    """name → float32 array of every tensor in the state dict."""
    f = io.BytesIO(data)
    if _Plain(f).load() != MAGIC:
        raise ValueError("not a legacy PyTorch file")
    _Plain(f).load()  # protocol version
    _Plain(f).load()  # system info (endianness, type sizes)
    unpickler = _Unpickler(f)
    state = unpickler.load()
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, _Tensor) for k, v in state.items()
    ):
        raise ValueError("not a state dict of tensors")
    keys = _Plain(f).load()  # the storages' keys, in the order their bytes follow
    if (
        not isinstance(keys, list)
        or not all(isinstance(k, str) for k in keys)
        or sorted(keys) != sorted(unpickler.storages)
    ):
        raise ValueError("the storages listed after the pickle are not the ones it names")
    for key in keys:
        storage = unpickler.storages[key]
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"storage {key}: the file ends before its size")
        (numel,) = struct.unpack("<q", head)
        size = storage.numel * np.dtype(storage.dtype).itemsize
        left = len(data) - f.tell()
        if numel != storage.numel or size > left:
            raise ValueError(
                f"storage {key}: {numel} items here, {storage.numel} in the pickle, "
                f"{size} bytes wanted, {left} left in the file"
            )
        storage.data = np.frombuffer(f.read(size), dtype=storage.dtype)
    held = sum(s.numel for s in unpickler.storages.values())
    wanted = sum(t.numel for t in state.values())
    if wanted > held:
        raise ValueError(f"tensors of {wanted} items in all out of storages of {held}: views overlap")
    return {name: tensor.array() for name, tensor in state.items()}
