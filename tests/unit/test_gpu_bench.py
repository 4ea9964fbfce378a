"""bench.gpu on the CPU: the math (tiles per image, $ per 1,000), the backend choice, the DCR
rewrite onnx2torch needs, and one short run of the script's core with its table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from bench import gpu
from bench.memory import SIZES
from imagen.core.models import TRITON_MODELS
from imagen.image import timeplan

ROOT = Path(__file__).resolve().parents[2]
ALL = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


@pytest.mark.parametrize("model", gpu.MODELS)
def test_tiles_per_image_is_the_time_plans(model: str) -> None:
    spec = TRITON_MODELS[model]
    for w, h in SIZES.values():
        assert gpu.tiles_per_image(spec, w, h) == timeplan.tiles(spec, w, h)


def test_tiles_per_image_known_figures() -> None:
    at_12mp = {m: gpu.tiles_per_image(TRITON_MODELS[m], *SIZES[12]) for m in gpu.MODELS}
    # docs/models.md "Tiling" and docs/timeplan.md
    assert at_12mp == {
        "upscale": 1850,
        "upscale_fidelity": 1064,
        "enhance": 2552,
        "style_comic": 1850,
        "style_aged": 945,
        "background_remove": 1,
    }
    assert gpu.tiles_per_image(TRITON_MODELS["style_aged"], *SIZES[1]) == 80
    assert gpu.tiles_per_image(TRITON_MODELS["style_aged"], 100, 50) == 1  # smaller than a tile


def test_dollars_per_1000_images() -> None:
    assert gpu.usd_per_1000(1.0, 0.36) == pytest.approx(0.1)  # 1,000 s at $0.0001 a second
    assert gpu.usd_per_1000(10.0, gpu.T4_USD_PER_HOUR) == pytest.approx(0.35 / 36)
    assert gpu.T4_USD_PER_HOUR == 0.35  # terraform/README.md's monthly cost uses the same figure
    assert "T4 GPU, ~$0.35/h" in (ROOT / "terraform" / "README.md").read_text()
    assert [gpu._num(x) for x in (1234.5, 25.33, 0.04559, 7.88e-05)] == ["1,234", "25.3", "0.0456", "7.9e-05"]


def test_batches_stop_at_the_configs_max_batch_size() -> None:
    repo = gpu.REPOSITORY
    assert gpu.max_batch_size(repo / "upscale_fidelity" / "config.pbtxt") == 16
    assert gpu.max_batch_size(repo / "upscale" / "config.pbtxt") == 32
    assert gpu.batches_for(16, gpu.BATCHES) == [1, 2, 4, 8, 16]
    assert gpu.batches_for(32, [32, 1, 2, 64, 0]) == [1, 2, 32]


def test_inputs_are_the_served_shapes() -> None:
    feeds = gpu.make_feeds(TRITON_MODELS["enhance"], 3)
    assert {k: (v.shape, v.dtype) for k, v in feeds.items()} == {
        "IMAGE": ((3, 128, 128, 3), np.uint8),
        "LEVELS": ((3, 6), np.float32),
        "NOISE": ((3, 1), np.float32),
    }
    assert gpu.make_feeds(TRITON_MODELS["style_comic"], 1)["PALETTE"].shape == (1, 36)
    assert gpu.make_feeds(TRITON_MODELS["upscale_fidelity"], 2)["IMAGE"].shape == (2, 192, 192, 3)
    assert gpu.make_feeds(TRITON_MODELS["background_remove"], 1)["IMAGE"].shape == (1, 320, 320, 3)


@pytest.mark.parametrize(
    ("device", "probe", "backend"),
    [
        ("auto", gpu.Probe(ALL, True, None), gpu.TRT),
        ("auto", gpu.Probe(ALL[1:], True, None), gpu.CUDA),
        ("auto", gpu.Probe(ALL[2:], True, None), gpu.TORCH),  # the lent device: PyTorch, CPU onnxruntime
        ("auto", gpu.Probe(ALL[2:], True, "onnx2torch is not installed"), gpu.CPU),
        ("auto", gpu.Probe(ALL[2:], False, None), gpu.CPU),
        ("cpu", gpu.Probe(ALL, True, None), gpu.CPU),
        ("gpu", gpu.Probe(ALL[1:], False, None), gpu.CUDA),
    ],
)
def test_backend_choice(device: str, probe: gpu.Probe, backend: str) -> None:
    assert gpu.choose_backend(device, probe)[0] == backend


def test_no_gpu_backend_is_said() -> None:
    why = gpu.choose_backend("auto", gpu.Probe(ALL[2:], True, "onnx2torch is not installed"))[1]
    assert "onnx2torch is not installed" in why
    with pytest.raises(SystemExit, match="no GPU backend.*PyTorch with CUDA: none"):
        gpu.choose_backend("gpu", gpu.Probe(ALL[2:], False, None))


def test_dcr_depth_to_space_becomes_crd() -> None:
    nodes = [
        helper.make_node("DepthToSpace", ["X"], ["Y"], blocksize=2, mode="DCR"),
        helper.make_node("DepthToSpace", ["X"], ["Z"], blocksize=2, mode="CRD"),
    ]
    graph = helper.make_graph(
        nodes,
        "d2s",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 12, 3, 5])],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Z", TensorProto.FLOAT, None),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    rewritten = gpu.crd_depth_to_space(model)
    assert [n.op_type for n in rewritten.graph.node] == ["Gather", "DepthToSpace", "DepthToSpace"]
    assert all(
        helper.get_attribute_value(a) == b"CRD" for a in rewritten.graph.node[1].attribute if a.name == "mode"
    )
    x = {"X": np.random.default_rng(1).standard_normal((2, 12, 3, 5)).astype(np.float32)}
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
    after = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, x
    )
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def tiny_style_aged() -> onnx.ModelProto:
    """A graph with style_aged's served inputs and output: the image halved, plus POSITION's mean."""
    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("Cast", ["IMAGE"], ["x"], to=f),
        helper.make_node("Mul", ["x", "half"], ["y"]),
        helper.make_node("ReduceMean", ["POSITION"], ["p"], axes=[1], keepdims=1),
        helper.make_node("Reshape", ["p", "shape"], ["p4"]),
        helper.make_node("Add", ["y", "p4"], ["z"]),
        helper.make_node("Clip", ["z", "lo", "hi"], ["c"]),
        helper.make_node("Round", ["c"], ["r"]),
        helper.make_node("Cast", ["r"], ["OUTPUT"], to=TensorProto.UINT8),
    ]
    consts = [
        helper.make_tensor("half", f, [], [0.5]),
        helper.make_tensor("lo", f, [], [0.0]),
        helper.make_tensor("hi", f, [], [255.0]),
        helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_style_aged",
        [
            helper.make_tensor_value_info("IMAGE", TensorProto.UINT8, ["N", 128, 128, 3]),
            helper.make_tensor_value_info("POSITION", f, ["N", 4]),
        ],
        [helper.make_tensor_value_info("OUTPUT", TensorProto.UINT8, ["N", 128, 128, 3])],
        consts,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A model repository with style_aged as a tiny graph of its shape (the built graphs are
    `nox -s gpu`'s: the unit tier builds no model)."""
    (tmp_path / "style_aged" / "1").mkdir(parents=True)
    (tmp_path / "style_aged" / "1" / "model.onnx").write_bytes(tiny_style_aged().SerializeToString())
    (tmp_path / "style_aged" / "config.pbtxt").write_text('name: "style_aged"\nmax_batch_size: 32\n')
    return tmp_path


def test_cpu_run_prints_the_table_and_writes_json(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpu.json"
    args = ["--models", "style_aged", "--batches", "1", "2", "--precisions", "fp32", "--device", "cpu"]
    args += ["--warmup", "1", "--repeats", "3", "--max-seconds", "5", "--repo", str(repo), "--json", str(out)]
    assert gpu.main(args) == 0
    printed = capsys.readouterr().out
    assert "CPU figures, not GPU figures" in printed
    assert "| model | backend | precision | batch | ms/batch | tiles/s |" in printed
    for batch in (1, 2):
        assert f"| style_aged | ort-cpu | fp32 | {batch} | " in printed

    data = json.loads(out.read_text())
    assert (data["backend"], data["gpu"], data["usd_per_hour"]) == ("ort-cpu", False, 0.35)
    assert [(r["batch"], r["precision"], r["status"]) for r in data["rows"]] == [
        (1, "fp32", "ok"),
        (2, "fp32", "ok"),
    ]
    for r in data["rows"]:
        assert r["runs"] >= 1 and r["provider"] == "CPUExecutionProvider"
        assert r["tiles_per_s"] == pytest.approx(r["batch"] / (r["ms_per_batch"] / 1e3))
    [s] = data["summary"]
    best = max(r["tiles_per_s"] for r in data["rows"])
    assert (s["model"], s["precision"], s["tiles_per_s"]) == ("style_aged", "fp32", best)
    assert s["tiles_per_image"] == {"1": 80, "12": 945, "48": 3763}
    for mp, tiles in s["tiles_per_image"].items():
        assert s["images_per_s"][mp] == pytest.approx(best / tiles)
        assert s["usd_per_1000"][mp] == pytest.approx(0.35 / 3600 * 1000 * tiles / best)


def test_fp16_is_compared_with_fp32(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_style_aged().SerializeToString())
    spec = TRITON_MODELS["style_aged"]
    rows, first = gpu.bench_model("style_aged", spec, path, gpu.CPU, [1], ["fp32", "fp16"], 0, 1, 10.0)
    assert [(r.precision, r.fp16_via, r.status) for r in rows] == [
        ("fp32", "", "ok"),
        ("fp16", "graph", "ok"),
    ]
    summary = gpu.summarise(rows, {"style_aged": first}, {"style_aged": spec}, {1: (1152, 864)}, 0.35)
    fp16 = next(s for s in summary if s.precision == "fp16")
    assert fp16.max_diff_vs_fp32 is not None and fp16.max_diff_vs_fp32 <= 1
    assert fp16.gain_vs_fp32 == pytest.approx(fp16.tiles_per_s / summary[0].tiles_per_s)
    assert "| style_aged | ort-cpu | fp16 (graph) | 1 | " in capsys.readouterr().out


def test_a_case_past_the_budget_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(tiny_style_aged().SerializeToString())
    rows, _ = gpu.bench_model(
        "style_aged", TRITON_MODELS["style_aged"], path, gpu.CPU, [1, 2], ["fp32"], 0, 1, 0.0, lambda _: None
    )
    assert [r.status for r in rows] == ["skipped: over --max-seconds"] * 2
