"""docs/capacity.md's tables are the capacity model's, computed from docs/costs.json and the plan."""

from __future__ import annotations

import json

from bench import capacity


def test_the_tables_in_the_doc_are_current() -> None:
    costs = json.loads(capacity.COSTS.read_text())
    text = capacity.DOC.read_text()
    assert capacity.render(text, costs) == text, "docs/capacity.md is stale: run `python -m bench.capacity`"


def test_a_long_job_adds_its_renewals_and_nine_progress_writes() -> None:
    costs = json.loads(capacity.COSTS.read_text())
    small = capacity.ops(costs, capacity.Upload("style_aged", 512, 512, 1))
    large = capacity.ops(costs, capacity.Upload("upscale", 4000, 3000, 1))
    seconds = capacity.plan(capacity.Upload("upscale", 4000, 3000, 1)).total_s + capacity.IO_S
    renewals = int(seconds // 40)
    assert large["firestore_reads"] - small["firestore_reads"] == renewals
    assert large["firestore_writes"] - small["firestore_writes"] == renewals + 9


def test_the_sized_deployment_serves_its_rate() -> None:
    costs = json.loads(capacity.COSTS.read_text())
    sized = capacity.sized_for(1000, capacity.SMALL_MIX, costs)
    ceilings = {b.component: b.ceiling for b in capacity.bindings(sized, capacity.SMALL_MIX, costs)}
    assert all(c >= 1000 for name, c in ceilings.items()), ceilings
