"""The console's pages in a real Chromium against the local stack: submit by the file input and
watch the job finish, the job's before/after and 1:1 crop, the live and filtered table, retry
of a failed job, the overview, and previews that never reach the page whole."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyvips

from imagen.jobs.model import is_finished
from tests.console.conftest import SAMPLE, Running, upload, wait_until

DONE_TIMEOUT_MS = 120_000


def loaded(img: Any) -> bool:
    return bool(img.evaluate("i => i.complete && i.naturalWidth > 0"))


def finished(jobs_col: Any, jid: str) -> dict[str, Any] | None:
    snap = jobs_col.document(jid).get()
    doc = snap.to_dict() if snap.exists else None
    return doc if is_finished(doc) else None


def test_submit_watch_it_finish_and_compare(page: Any, console: Running, shot: Any, unique: str) -> None:
    page.goto(f"{console.base}/submit")
    page.select_option("select[name=model]", "style_aged")
    page.select_option("select[name=format]", "webp")
    page.fill("input[name=folder]", f"console-{unique}")
    page.wait_for_selector(".verdict.ok >> text=imagen-format=webp")
    page.set_input_files("#files", str(SAMPLE))
    item = page.locator("li.upload").first
    thumb = item.locator("img.thumb")
    thumb.wait_for(timeout=DONE_TIMEOUT_MS)
    wait_until(lambda: loaded(thumb), 30)
    assert item.locator(".status").inner_text() == "done"
    jid = item.get_attribute("data-job")
    assert jid and re.fullmatch(r"[0-9a-f]{32}", jid)
    shot(page, "submit")

    thumb.click()  # the job's page
    page.wait_for_url(f"**/jobs/{jid}")
    after = page.locator(".slider img[data-side=result]")
    before = page.locator(".slider img[data-side=source]")
    wait_until(lambda: loaded(after) and loaded(before), 30)
    assert page.locator("h1 .status").inner_text() == "done"
    page.locator("input[type=range]").fill("25")
    assert page.locator(".slider .before").evaluate("e => e.style.width") == "25%"
    page.locator(".slider").click(position={"x": 150, "y": 100})
    crops = page.locator(".crops img")
    crops.nth(1).wait_for()
    wait_until(lambda: crops.count() == 2 and loaded(crops.nth(0)) and loaded(crops.nth(1)), 30)
    for stage in ("download", "decode", "infer", "encode", "upload"):
        assert stage in page.inner_text(".legend")
    assert "imagen.job.v1.done" in page.inner_text("body")
    assert "imagen-format" in page.inner_text("body")
    href = page.locator("a[download]").first.get_attribute("href")
    assert href == f"/api/jobs/{jid}/source/download"
    status, headers, body = console.get(href)
    assert status == 200 and body == SAMPLE.read_bytes()
    assert "attachment" in headers["content-disposition"]


def test_a_cutout_over_a_checkerboard_and_a_colour(
    page: Any, console: Running, bucket: Any, jobs_col: Any, shot: Any, unique: str
) -> None:
    jid = upload(bucket, f"background_remove/console-{unique}/cat.jpg", SAMPLE.read_bytes())
    wait_until(lambda: finished(jobs_col, jid), 120)
    page.goto(f"{console.base}/jobs/{jid}")
    frame = page.locator(".slider")
    wait_until(lambda: loaded(frame.locator("img[data-side=result]")), 30)
    assert "checker" in (frame.get_attribute("class") or "")
    page.locator(".slider").click(position={"x": 300, "y": 200})
    crops = page.locator(".crops img")
    crops.nth(1).wait_for()
    wait_until(lambda: loaded(crops.nth(0)) and loaded(crops.nth(1)), 30)
    shot(page, "job")
    page.locator("input[type=color]").fill("#00ff00")
    assert "checker" not in (frame.get_attribute("class") or "")
    assert frame.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(0, 255, 0)"


def test_the_table_is_live_and_filters(
    page: Any, console: Running, bucket: Any, jobs_col: Any, shot: Any, unique: str
) -> None:
    page.goto(f"{console.base}/jobs")
    page.wait_for_selector("#live.on")
    jid = upload(bucket, f"style_comic/console-{unique}/live-{unique}.jpg", SAMPLE.read_bytes())
    row = page.locator(f"tr[data-job='{jid}']")
    row.wait_for(timeout=30_000)  # appeared without a reload
    page.wait_for_selector(f"tr[data-job='{jid}'][data-status=done]", timeout=DONE_TIMEOUT_MS)
    failed = upload(bucket, f"style_aged/console-{unique}/notes-{unique}.jpg", b"not a photo\n")
    page.wait_for_selector(f"tr[data-job='{failed}'][data-status=failed]", timeout=DONE_TIMEOUT_MS)
    assert "not an image" in page.locator(f"tr[data-job='{failed}'] .reason").inner_text()
    shot(page, "jobs")

    page.fill("input[name=name]", f"live-{unique}")
    page.wait_for_url(re.compile(rf"name=live-{unique}"))
    page.wait_for_function("n => document.querySelectorAll('tbody tr').length === n", arg=1)
    assert page.locator("tbody tr").first.get_attribute("data-job") == jid

    page.goto(f"{console.base}/jobs?status=failed")
    page.wait_for_selector(f"tr[data-job='{failed}']")
    statuses = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses and set(statuses) == {"failed"}
    page.select_option("select[name=model]", "style_comic")
    page.wait_for_url(re.compile(r"model=style_comic"))
    page.wait_for_function("() => !document.querySelector('tbody tr[data-status=done]')")
    assert page.locator(f"tr[data-job='{failed}']").count() == 0  # a style_aged job


def test_retry_a_failed_job(page: Any, console: Running, bucket: Any, jobs_col: Any, unique: str) -> None:
    """A text file uploaded as an image fails at once; Retry runs `imagen retry`'s path."""
    jid = upload(bucket, f"style_aged/console-{unique}/notes.jpg", b"meeting notes\nbring coffee\n")
    wait_until(lambda: finished(jobs_col, jid), 60)
    page.goto(f"{console.base}/jobs/{jid}")
    assert "not an image" in page.inner_text(".reason-box")
    page.click("button.retry")
    page.wait_for_selector("text=queued again")
    doc = wait_until(lambda: _failed_twice(jobs_col, jid), 60)
    assert any(h.get("retry") for h in doc["history"])
    page.wait_for_function(
        "() => document.querySelectorAll('ol.timeline li.s-failed').length === 2", timeout=30_000
    )
    assert "retry" in page.inner_text("ol.timeline")
    assert len(page.locator("text=imagen.job.v1.failed").all()) == 2


def _failed_twice(jobs_col: Any, jid: str) -> dict[str, Any] | None:
    doc = finished(jobs_col, jid)
    ends = [h for h in (doc or {}).get("history", []) if h.get("status") == "failed"]
    return doc if len(ends) == 2 else None


def test_the_overview(page: Any, console: Running, shot: Any) -> None:
    page.goto(f"{console.base}/overview")
    page.wait_for_selector(".services")
    for service in ("firestore", "pubsub", "storage", "triton"):
        assert page.locator(f".service.up[data-service={service}]").count() == 1, service
    assert page.locator("section.model").count() == 5
    assert page.locator("section.model[data-model=style_aged] svg.plot").count() == 2
    shot(page, "overview")


def test_previews_never_reach_the_page_whole(
    console: Running, bucket: Any, tmp_path: Path, unique: str
) -> None:
    """A 24 MP source: its preview is at most 1600 px a side whatever is asked, a crop at most 512."""
    big = tmp_path / "big.jpg"
    x = pyvips.Image.xyz(6000, 4000)
    grey = ((x[0] ^ x[1]) & 255).cast("uchar")
    grey.bandjoin([grey, grey]).jpegsave(str(big), Q=70)
    jid = upload(bucket, f"style_aged/console-{unique}/big.jpg", big.read_bytes())
    status, _, _ = wait_until(lambda: _answered(console, f"/api/jobs/{jid}"), 30)
    status, headers, body = console.get(f"/api/jobs/{jid}/source/preview?max=100000")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    preview = pyvips.Image.new_from_buffer(body, "")
    assert (preview.width, preview.height) == (1600, 1067)
    assert (headers["x-image-width"], headers["x-image-height"]) == ("6000", "4000")
    status, headers, body = console.get(f"/api/jobs/{jid}/source/crop?x=5900&y=0&w=5000&h=5000")
    crop = pyvips.Image.new_from_buffer(body, "")
    assert (crop.width, crop.height) == (512, 512)
    assert headers["x-crop"] == "5488,0,512,512"  # clamped inside the image


def _answered(console: Running, path: str) -> tuple[int, dict[str, str], bytes] | None:
    answer = console.get(path)
    return answer if answer[0] == 200 else None
