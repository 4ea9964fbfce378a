"""The capacity model of docs/capacity.md: for a deployment and a mix of uploads, each
component's limit, what one upload uses of it, and the upload rate at which it binds.

Per-job figures are measured (docs/costs.json, `nox -s costs`: operations counted where the code
makes the calls) or planned (the worker's time plan on the production accelerator, one T4, with
the stated tile seconds of imagen.core.models). Limits are the services' published ones (sources
in LIMITS) and the Terraform settings. `python -m bench.capacity` rewrites the tables in
docs/capacity.md; tests/unit/test_capacity.py checks they are current.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagen.core import options
from imagen.core.config import Config
from imagen.core.errors import BadInput
from imagen.core.formats import FORMATS
from imagen.core.models import FIDELITY, GPU_TILE_SECONDS, PERCEPTUAL, spec_for
from imagen.flow import planning
from imagen.image import timeplan
from imagen.image.imaging import Header
from imagen.jobs.model import SHARDS
from tools import docgen

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "capacity.md"
COSTS = ROOT / "docs" / "costs.json"
PROD = Config.from_env({"GOOGLE_CLOUD_PROJECT": "p"})

# Published limits (their sources are named in docs/capacity.md's table).
SEQUENTIAL_INDEX_WRITES_S = 500  # Firestore: writes/s to a range of an index on a growing value
FIRESTORE_RAMP_START = 500  # Firestore's 500/50/5 rule: ops/s on a cold collection, +50 % / 5 min
STORAGE_WRITES_S = 1000  # Cloud Storage: a bucket's initial object writes/s (autoscaling beyond)
STORAGE_READS_S = 5000  # ... and object reads/s (lists and metadata included)
UPLOAD_FN = (20, 20)  # on_upload: max instances x concurrency (terraform/modules/functions)
UPLOAD_S = 0.1  # on_upload's wall time per event in the cloud: ~4 round trips of ~25 ms
IO_S = 0.5  # a job's own storage and Firestore round trips beside its time plan (download, upload)
# List prices, us-central1 on demand (terraform/README.md's figures for the GPU host).
PRICE = {
    "firestore_reads": 0.06 / 100_000,
    "firestore_writes": 0.18 / 100_000,
    "pubsub_publishes": 40 / 2**40 * 1024,  # $40 a TiB, a message billed at 1 KB at least
    "storage_class_a": 0.005 / 1000,
    "storage_class_b": 0.0004 / 1000,
    "cpu_s": 0.000024,  # Cloud Run functions, a vCPU-second (the instance's memory beside it: x1.4)
    "gpu_s": (0.35 + 0.19) / 3600,  # one T4 and its n1-standard-4 host
}


@dataclass(frozen=True)
class Upload:
    """One kind of upload in a mix: its model (and variant), size and share of the uploads."""

    model: str
    width: int
    height: int
    share: float
    variant: str | None = None

    @property
    def label(self) -> str:
        name = f"{self.model}{'/' + self.variant if self.variant else ''}"
        return f"{name} {self.width * self.height / 1e6:.2g} MP"


@dataclass(frozen=True)
class Deployment:
    name: str
    worker_instances: int = 10  # worker_max_instances, per model
    worker_concurrency: int = 4
    gpus: int = 1  # the VM's one T4; GKE: gke_max_nodes
    warm_minutes: int = 0  # minutes the collection and bucket have ramped


@dataclass
class Binding:
    component: str
    per_upload: str
    ceiling: float  # uploads a second at which it binds
    lift: str
    notes: list[str] = field(default_factory=list)


def plan(u: Upload) -> timeplan.TimePlan:
    spec = spec_for(u.model, u.variant)
    head = Header(u.width, u.height, "JPEG", "RGB", 1, 1)
    w, h = u.width * spec.scale, u.height * spec.scale
    return timeplan.plan(
        spec, head, (w, h, spec.scale), FORMATS["JPEG"], GPU_TILE_SECONDS, 1, 10**9, scale_flexible=False
    )


def base_ops(costs: dict[str, Any]) -> dict[str, float]:
    """A job's operations apart from its running time: those of the shortest measured job
    (docs/costs.json, the newest run; every model's short jobs count the same)."""
    run = costs[max(costs, key=lambda k: (k != "before", k))]
    return dict(min(run["jobs"], key=lambda j: j["seconds"] or 0.0))


def ops(costs: dict[str, Any], u: Upload) -> dict[str, float]:
    """One upload's operations in the cloud: its model's fixed ones, and one renewal (a read and
    a write) every lease/3 s and a progress write at each tenth (at most every lease/12 s) for
    as long as its plan says it runs on the T4."""
    out = {k: float(v) for k, v in base_ops(costs).items() if k in PRICE}
    seconds = plan(u).total_s + IO_S
    renewals = int(seconds // (PROD.lease_s / 3))
    out["firestore_reads"] += renewals
    out["firestore_writes"] += renewals + min(9, int(seconds // (PROD.lease_s / 12)))
    return out


def bindings(d: Deployment, mix: list[Upload], costs: dict[str, Any]) -> list[Binding]:
    total = sum(u.share for u in mix)
    shares = [(u, u.share / total) for u in mix]
    per = {k: sum(s * ops(costs, u)[k] for u, s in shares) for k in PRICE if k not in ("cpu_s", "gpu_s")}
    out = [
        Binding(
            "Eventarc → on_upload",
            f"{UPLOAD_S:g} s of one of {UPLOAD_FN[0]}×{UPLOAD_FN[1]} slots",
            UPLOAD_FN[0] * UPLOAD_FN[1] / UPLOAD_S,
            "on_upload's max_instance_count (functions module)",
        )
    ]
    for model in sorted({u.model for u, _ in shares}):
        share = sum(s for u, s in shares if u.model == model)
        seconds = sum(s * (plan(u).total_s + IO_S) for u, s in shares if u.model == model) / share
        slots = d.worker_instances * d.worker_concurrency
        out.append(
            Binding(
                f"on_job {model}",
                f"{seconds:.2f} s of {slots} slots × {share:.0%} of uploads",
                slots / seconds / share,
                "`worker_max_instances`, `worker_concurrency`",
            )
        )
    gpu_s = sum(s * plan(u).infer_s for u, s in shares)
    out.append(
        Binding(
            f"Triton, {d.gpus} T4",
            f"{gpu_s * 1000:.0f} GPU-ms",
            d.gpus / gpu_s,
            '`triton_mode = "gke"`, `gke_max_nodes` (HPA on queue time)',
        )
    )
    ramp = FIRESTORE_RAMP_START * 1.5 ** (d.warm_minutes // 5)
    firestore_ops = per["firestore_reads"] + per["firestore_writes"]
    out.append(
        Binding(
            f"Firestore ops, after {d.warm_minutes} min of ramp",
            f"{firestore_ops:.1f} reads + writes",
            ramp / firestore_ops,
            "time: +50 % every 5 min (500/50/5)",
        )
    )
    # created_at: one entry per job, in its shard's range of each listing index
    out.append(
        Binding(
            "Firestore index on created_at",
            f"1 write into 1 of {SHARDS} shard ranges",
            SEQUENTIAL_INDEX_WRITES_S * SHARDS,
            "`SHARDS` (imagen.jobs.model) and its indexes",
        )
    )
    doublings = 2 ** (d.warm_minutes // 20)  # a bucket's rate may double every 20 minutes
    out.append(
        Binding(
            f"Cloud Storage writes, after {d.warm_minutes} min",
            f"{1 + per['storage_class_a']:.1f} (the upload, the result)",
            STORAGE_WRITES_S * doublings / (1 + per["storage_class_a"]),
            "time: the bucket doubles its rate every 20 min of steady load",
        )
    )
    out.append(
        Binding(
            f"Cloud Storage reads, after {d.warm_minutes} min",
            f"{per['storage_class_b']:.1f}",
            STORAGE_READS_S * doublings / per["storage_class_b"],
            "time, as writes",
        )
    )
    return out


def cost_per_1000(mix: list[Upload], costs: dict[str, Any]) -> dict[str, float]:
    total = sum(u.share for u in mix)
    out: dict[str, float] = {}
    for u in mix:
        job = ops(costs, u)
        s = u.share / total
        for key in (
            "firestore_reads",
            "firestore_writes",
            "pubsub_publishes",
            "storage_class_a",
            "storage_class_b",
        ):
            out[key] = out.get(key, 0.0) + 1000 * s * job[key] * PRICE[key]
        cpu = plan(u).total_s - plan(u).infer_s + IO_S  # the worker's own work in the cloud, planned
        out["function CPU"] = out.get("function CPU", 0.0) + 1000 * s * cpu * PRICE["cpu_s"] * 1.4
        out["GPU (fully used)"] = (
            out.get("GPU (fully used)", 0.0) + 1000 * s * plan(u).infer_s * PRICE["gpu_s"]
        )
    return out


def table(d: Deployment, mix: list[Upload], costs: dict[str, Any]) -> str:
    rows = bindings(d, mix, costs)
    low = min(rows, key=lambda b: b.ceiling)
    lines = ["| component | one upload uses | binds at (uploads/s) | lifted by |", "|---|---|---|---|"]
    for b in sorted(rows, key=lambda b: b.ceiling):
        mark = " **← binds**" if b is low else ""
        lines.append(f"| {b.component} | {b.per_upload} | {b.ceiling:,.0f}{mark} | {b.lift} |")
    return "\n".join(lines)


def settings(d: Deployment) -> str:
    return (
        f"Sized for {d.name}: `worker_max_instances = {d.worker_instances}`, `worker_concurrency = "
        f"{d.worker_concurrency}`, {d.gpus} T4 (`gke_max_nodes`), traffic ramped for {d.warm_minutes} min."
    )


def longest(model: str, variant: str | None = None) -> str:
    """The largest 4:3 JPEG upload (0.3 bytes a pixel) the worker plans to run on a T4: its time
    plan inside JOB_TIME_LIMIT_S, its memory inside the job's budget, at most MAX_INPUT_PIXELS."""
    spec = spec_for(model, variant)
    opts = options.parse(model, {"imagen-upscale": variant} if variant else {})

    def fits(mp: float) -> bool:
        w = int(math.sqrt(mp * 1e6 * 4 / 3))
        head = Header(w, w * 3 // 4, "JPEG", "RGB", 1, 1)
        try:
            planning.plan_job(PROD, spec, head, int(0.3 * mp * 1e6), opts)
        except BadInput:
            return False
        return True

    top = PROD.max_input_pixels / 1e6
    if fits(top):
        return f"all, to the input limit ({top:.0f} MP)"
    lo, hi = 0.01, top
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return f"{lo:.1f} MP" if lo < 10 else f"{lo:.0f} MP"


SMALL_MIX = [
    *(Upload(m, 512, 512, 1) for m in ("style_aged", "style_comic", "enhance", "background_remove")),
    Upload("upscale", 512, 512, 1, PERCEPTUAL),
]
UPSCALE_12MP = [Upload("upscale", 4000, 3000, 1)]  # the default, fidelity
DEFAULT = Deployment("default")


def sized_for(rate: float, mix: list[Upload], costs: dict[str, Any]) -> Deployment:
    """The deployment that serves `rate` uploads a second of `mix` with a quarter to spare: GPUs,
    worker instances (at concurrency 8) and the minutes of ramp Firestore needs first."""
    total = sum(u.share for u in mix)
    gpus = math.ceil(1.25 * rate * sum(u.share / total * plan(u).infer_s for u in mix))
    busy = max(
        rate * sum(u.share / total * (plan(u).total_s + IO_S) for u in mix if u.model == m)
        for m in {u.model for u in mix}
    )
    per = sum(
        u.share / total * (ops(costs, u)["firestore_reads"] + ops(costs, u)["firestore_writes"]) for u in mix
    )
    firestore = 5 * max(0, math.ceil(math.log(rate * per / FIRESTORE_RAMP_START, 1.5)))
    writes = sum(u.share / total * (1 + ops(costs, u)["storage_class_a"]) for u in mix)
    storage = 20 * max(0, math.ceil(math.log2(1.25 * rate * writes / STORAGE_WRITES_S)))
    minutes = max(firestore, storage)
    return Deployment(f"{rate:g}/s", math.ceil(1.25 * busy / 8), 8, gpus, minutes)


def blocks(costs: dict[str, Any]) -> dict[str, str]:
    mix_costs = cost_per_1000(SMALL_MIX, costs)
    cost_lines = ["| item | $ per 1,000 uploads (0.26 MP, every model in equal shares) |", "|---|---|"]
    cost_lines += [f"| {k.replace('_', ' ')} | {v:.4f} |" for k, v in mix_costs.items()]
    cost_lines.append(f"| **total** | **{sum(mix_costs.values()):.3f}** |")
    limits = ["| model | the largest upload planned to run on a T4 (time and memory) |", "|---|---|"]
    for model, variant in (
        ("upscale", FIDELITY),
        ("upscale", PERCEPTUAL),
        ("enhance", None),
        ("background_remove", None),
        ("style_comic", None),
    ):
        limits.append(f"| {model}{'/' + variant if variant else ''} | {longest(model, variant)} |")
    scaled, upscales = sized_for(1000, SMALL_MIX, costs), sized_for(10, UPSCALE_12MP, costs)
    return {
        "capacity-default": table(DEFAULT, SMALL_MIX, costs),
        "capacity-scaled": settings(scaled) + "\n\n" + table(scaled, SMALL_MIX, costs),
        "capacity-upscale": settings(upscales) + "\n\n" + table(upscales, UPSCALE_12MP, costs),
        "capacity-cost": "\n".join(cost_lines),
        "capacity-longest": "\n".join(limits),
    }


def render(text: str, costs: dict[str, Any]) -> str:
    for name, content in blocks(costs).items():
        text = docgen.replace(text, name, content)
    return text


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    costs = json.loads(COSTS.read_text())
    fresh = render(DOC.read_text(), costs)
    DOC.write_text(fresh)
    for name, content in blocks(costs).items():
        print(f"\n{name}\n{content}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
