"""The <gateway-job> element on a page of its own (not the demo's): declarative use with a connection of its own,
styling through CSS variables and ::part(), a refused job id, and cleaning up when it leaves the page."""

from __future__ import annotations

import json
import time
import urllib.request

from playwright.sync_api import Page, expect

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<style>
  gateway-job {{ --gateway-job-bar: rgb(1, 2, 3); --gateway-job-done: rgb(0, 128, 0); --gateway-job-height: 21px; }}
  gateway-job::part(state) {{ color: rgb(200, 0, 100); }}
  gateway-job::part(Completed) {{ font-weight: 700; }}
</style></head><body>
<gateway-job id="job" job-id="{job}" transports="{transport}" cancellable></gateway-job>
<gateway-job id="nope" job-id="no-such-job"></gateway-job>
<script>
  window.seen = {{progress: [], done: [], errors: []}};
  document.addEventListener("progress", (e) => seen.progress.push(e.detail.seq));
  document.addEventListener("done", (e) => seen.done.push(e.detail.state));
  document.getElementById("nope").addEventListener("error", (e) => seen.errors.push(e.detail.message));
</script>
<script src="/hubs/jobs/client.js"></script>
<script src="/hubs/jobs/client.job.js"></script>
</body></html>"""


def finished_job(base: str, steps: int = 4) -> str:
    body = json.dumps({"steps": steps, "step_ms": 10}).encode()
    request = urllib.request.Request(f"{base}/jobs", body, {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        job = str(json.load(response)["id"])
    deadline = time.monotonic() + 15
    while True:
        with urllib.request.urlopen(f"{base}/jobs/{job}", timeout=5) as response:
            if json.load(response)["state"] == "Completed":
                return job
        assert time.monotonic() < deadline
        time.sleep(0.05)


def open_element_page(page: Page, gateway: str, job: str, transport: str = "LongPolling") -> None:
    html = PAGE.format(job=job, transport=transport)
    page.route(f"{gateway}/element-page", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(f"{gateway}/element-page")


def part_style(page: Page, element: str, part: str, prop: str) -> str:
    return str(page.evaluate(
        "([el, part, prop]) => getComputedStyle(document.getElementById(el).shadowRoot"
        ".querySelector(`[part~=${part}]`)).getPropertyValue(prop)", [element, part, prop]))


def test_a_declared_element_opens_its_own_connection_and_renders_the_job(page: Page, gateway: str) -> None:
    job = finished_job(gateway)
    open_element_page(page, gateway, job)
    expect(page.locator("#job [part=state]")).to_have_text("Completed")
    expect(page.locator("#job [part=percent]")).to_have_text("100%")
    lines = page.locator("#job [part=log] li").all_inner_texts()
    assert [line.split()[:2] for line in lines][0] == ["#1", "Pending"] and lines[-1].split()[1] == "Completed"
    assert page.evaluate("seen.progress") == list(range(1, len(lines) + 1))
    assert page.evaluate("seen.done") == ["Completed"]
    assert page.evaluate("document.getElementById('job').connection.transport") == "LongPolling"
    expect(page.locator("#job [part=cancel]")).to_be_hidden()  # cancellable, but the job is final
    assert page.evaluate("document.getElementById('job').getAttribute('state')") == "Completed"


def test_css_variables_and_parts_style_the_element(page: Page, gateway: str) -> None:
    open_element_page(page, gateway, finished_job(gateway))
    expect(page.locator("#job [part=state]")).to_have_text("Completed")
    assert part_style(page, "job", "bar", "background-color") == "rgb(0, 128, 0)"  # --gateway-job-done
    assert part_style(page, "job", "track", "height") == "21px"  # --gateway-job-height
    assert part_style(page, "job", "state", "color") == "rgb(200, 0, 100)"  # ::part(state)
    assert part_style(page, "job", "Completed", "font-weight") == "700"  # ::part(<the entry's state>)
    assert page.evaluate("document.getElementById('job').shadowRoot.querySelector('[part=bar]').style.width") == "100%"


def test_an_unknown_job_shows_the_hubs_refusal_and_fires_error(page: Page, gateway: str) -> None:
    open_element_page(page, gateway, finished_job(gateway))
    expect(page.locator("#nope [part=error]")).to_contain_text("unknown job")
    assert page.evaluate("seen.errors")[0].find("unknown job") >= 0
    assert page.evaluate("document.getElementById('nope').state") is None


def test_an_element_that_leaves_the_page_stops_its_own_connection(page: Page, gateway: str) -> None:
    open_element_page(page, gateway, finished_job(gateway))
    expect(page.locator("#job [part=state]")).to_have_text("Completed")
    page.evaluate("window.kept = document.getElementById('job').connection; document.getElementById('job').remove()")
    page.wait_for_function("kept.state === 'Disconnected'")


def test_a_changed_job_id_shows_the_new_job_only(page: Page, gateway: str) -> None:
    first, second = finished_job(gateway, 3), finished_job(gateway, 5)
    open_element_page(page, gateway, first, "WebSockets")
    expect(page.locator("#job [part=state]")).to_have_text("Completed")
    page.evaluate("(id) => { document.getElementById('job').jobId = id; }", second)
    with urllib.request.urlopen(f"{gateway}/jobs/{second}", timeout=5) as response:
        expected = len(json.load(response)["log"])
    page.wait_for_function("(n) => document.getElementById('job').log.length === n", arg=expected)
    logged = page.evaluate("document.getElementById('job').log.map((e) => e.jobId)")
    assert set(logged) == {second}
    assert page.locator("#job [part=log] li").count() == expected
