"""Screenshots of the MLflow UI after `make repro`, taken by a real browser, and a check of what it shows.

    python bench/mlflow_ui_screenshots.py [--project .] [--out docs] [--port 5055]

Starts `mlflow server` on 127.0.0.1 over the project's store (mlruns/mlflow.db), then drives
headless Chromium (Debian's `chromium` package, through Playwright's driver: `pip install
playwright`; no browser is downloaded) over three pages:

* the experiment's runs table with the pipeline's parent run expanded: every stage's run,
  its duration and its datasets (docs/mlflow_runs.png);
* a comparison of two runs, the evaluations of SFT and SFT+DPO on dev (docs/mlflow_compare.png);
* the registered model with its aliases (docs/mlflow_model.png);
* with two pipeline executions in the store (a baseline and its ablation, e.g. after
  `dvc exp run -S eval.feedback_detail=basic`): the runs page's chart view of the two
  parent runs, whose charts are `compare`'s table (docs/mlflow_ablation.png), and the two
  executions' SFT+DPO dev evaluations side by side (docs/mlflow_ablation_compare.png).

It fails (exit 1) unless the rendered pages name every stage's run and the registered
model's `champion` alias (and, with two executions, both parents in the chart view). It needs a browser, so it is not part of `make test`;
tests/test_pipeline.py checks the same facts through MLflow's REST API.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def wait_for(url: str, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"mlflow server did not answer {url} within {seconds:.0f} s")


def api(base: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("no Chromium found: apt-get install chromium (Debian's package)")


def open_page(page, url: str, ready: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"text={ready}", timeout=90_000)
    page.wait_for_timeout(1500)  # the tables fill in after the first paint
    close = page.locator("button[aria-label='Close']")  # the assistant side panel, if open
    if close.count():
        close.first.click()
        page.wait_for_timeout(500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="the folder that holds mlruns/ (default: .)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go (default: docs)")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--model", default="text2sql-sft-dpo", help="registered model name (default: %(default)s)")
    args = parser.parse_args()
    store = (args.project / "mlruns" / "mlflow.db").resolve()
    if not store.is_file():
        raise SystemExit(f"{store} not found: run `make repro` first")
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"port {args.port} is in use; pass --port")
    chrome = browser()
    args.out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
                               "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"],
                              cwd=args.project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.time()
    try:
        wait_for(f"{base}/health")
        experiments = api(base, "experiments/search", {"max_results": 50})["experiments"]
        experiment = next(e for e in experiments if e["name"] != "Default")
        runs = api(base, "runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 500})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        stages = sorted({t["stage"] for t in tags if "stage" in t})
        by_stage = {t["stage"]: r["info"]["run_id"] for r, t in zip(runs, tags) if "stage" in t}
        parents = sorted(((r["info"]["start_time"], r["info"]["run_name"], r["info"]["run_id"])
                          for r, t in zip(runs, tags) if t.get("pipeline_parent") == "true"))[-2:]
        ablation = [r["info"]["run_id"] for p in parents for r, t in zip(runs, tags)
                    if t.get("stage") == "eval_sft_dpo_dev" and t.get("mlflow.parentRunId") == p[2]]
        champion = api(base, f"registered-models/alias?name={urllib.parse.quote(args.model)}&alias=champion")["model_version"]

        from playwright.sync_api import sync_playwright

        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=chrome, args=["--no-sandbox"])
            page = chromium.new_page(viewport={"width": 1600, "height": 1000})
            # A fresh browser's sidebar shows MLflow's GenAI view; workflowType picks the model-training one.
            open_page(page, f"{base}/#/experiments/{experiment['experiment_id']}/runs?workflowType=machine_learning", "matching runs")
            # Expand the execution that ran every stage (an ablation's parent holds only the stages it re-ran).
            full = max(parents, key=lambda p: sum(t.get("mlflow.parentRunId") == p[2] for t in tags)) if parents else None
            row = page.locator("[role='row']", has_text=full[1]) if full else page.locator("[role='row']").nth(1)
            row.locator("[role='gridcell'] button").first.click()
            page.wait_for_timeout(1500)
            runs_dom = page.content()
            page.screenshot(path=str(args.out / "mlflow_runs.png"))
            pair = [by_stage[name] for name in ("eval_sft_dev", "eval_sft_dpo_dev") if name in by_stage]
            page.set_viewport_size({"width": 1600, "height": 1300})
            open_page(page, f"{base}/#/compare-runs?runs={urllib.parse.quote(json.dumps(pair))}"
                            f"&experiments={urllib.parse.quote(json.dumps([experiment['experiment_id']]))}", "Run details")
            page.screenshot(path=str(args.out / "mlflow_compare.png"))
            page.set_viewport_size({"width": 1600, "height": 800})
            open_page(page, f"{base}/#/models/{urllib.parse.quote(args.model)}", "Versions")
            model_dom = page.content()
            page.screenshot(path=str(args.out / "mlflow_model.png"))
            chart_dom = ""
            if len(parents) == 2:
                page.set_viewport_size({"width": 1600, "height": 1100})
                only_parents = urllib.parse.quote("tags.pipeline_parent = 'true'")
                open_page(page, f"{base}/#/experiments/{experiment['experiment_id']}/runs"
                                f"?workflowType=machine_learning&compareRunsMode=CHART&searchFilter={only_parents}",
                          parents[-1][1])
                page.fill("input[placeholder='Search metric charts']", "dev.SFT_DPO")  # compare's SFT+DPO rows on dev
                page.wait_for_timeout(3000)  # the charts draw after the run list
                chart_dom = page.content()
                page.screenshot(path=str(args.out / "mlflow_ablation.png"))
                if len(ablation) == 2:
                    open_page(page, f"{base}/#/compare-runs?runs={urllib.parse.quote(json.dumps(ablation))}"
                                    f"&experiments={urllib.parse.quote(json.dumps([experiment['experiment_id']]))}",
                              "Run details")
                    page.screenshot(path=str(args.out / "mlflow_ablation_compare.png"))
            chromium.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The runs table lists runs by name (the stage); nested runs show under the expanded parent.
    shown = [stage for stage in stages if f">{stage}<" in runs_dom]
    problems = []
    if len(shown) < len(stages):
        problems.append(f"the runs page names {len(shown)} of {len(stages)} stages: missing {sorted(set(stages) - set(shown))}")
    if "champion" not in model_dom:
        problems.append("the registered model page does not show the champion alias")
    if len(parents) == 2 and not all(name in chart_dom for _, name, _ in parents):
        problems.append(f"the chart view does not name both executions: {[name for _, name, _ in parents]}")
    print(json.dumps({"experiment": experiment["name"], "stages": len(stages), "stages_shown": len(shown),
                      "champion_version": champion["version"],
                      "executions": [name for _, name, _ in parents], "screenshots": sorted(str(p) for p in args.out.glob("mlflow_*.png")),
                      "wall_s": round(time.time() - started, 1), "problems": problems}, indent=2))
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
