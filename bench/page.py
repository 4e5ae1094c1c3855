"""The page's map at scale: time from asking for the projection of N items to the last point drawn, in Chromium.

Serves a data directory with an index of N seeded class-like logits (C = 10), opens the page's Map view in Debian's
headless Chromium (Playwright) and prints the time the page measured: the projection request (PCA computed by the
service, N ids and coordinates as JSON) plus drawing every point on the canvas, and the drawing alone.

    python bench/page.py [N]        # default 70000
"""

import base64
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from playwright.sync_api import sync_playwright

from service.config import Settings
from tests.conftest import CPU
from tests.servers import serving

logger = logging.getLogger("bench.page")


def main(n: int) -> None:
    from models import TrainConfig, train_classifier

    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        train_classifier(TrainConfig(epochs=3), data / "models", device=CPU, progress=False)
        settings = Settings(data_dir=data, device="cpu", faiss_gpu="false", max_batch=100_000)
        with serving(settings) as url, sync_playwright() as playwright, httpx.Client(base_url=url, timeout=120) as http:
            http.post("/v1/indexes", json={"name": "map", "model": "digits-cnn"}).raise_for_status()
            rng = np.random.default_rng(0)
            classes = rng.integers(0, 10, n)
            logits = rng.standard_normal((n, 10)).astype(np.float32)
            logits[np.arange(n), classes] += 3.0
            for start in range(0, n, 10_000):
                block = np.ascontiguousarray(logits[start : start + 10_000])
                body = {
                    "ids": [f"p{i}" for i in range(start, start + len(block))],
                    "logits_b64": base64.b64encode(block.astype("<f4").tobytes()).decode(),
                    "shape": list(block.shape),
                    "metadata": [{"label": int(c)} for c in classes[start : start + len(block)]],
                }
                http.post("/v1/indexes/map/items", json=body).raise_for_status()
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(120_000)
            for attempt in range(3):
                page.goto(f"{url}/?view=map&index=map")
                page.wait_for_selector(f"#map[data-points='{n}']")
                total = float(page.get_attribute("#map", "data-paint-ms") or "nan")
                drawn = page.evaluate(
                    """async () => {
                        const { map } = await import("/ui/charts.js");
                        const canvas = document.getElementById("map");
                        const n = Number(canvas.dataset.points);
                        const xs = Array.from({ length: n }, (_, i) => Math.sin(i)), ys = xs.map((x, i) => Math.cos(i));
                        const colours = xs.map((_, i) => ["#2f6fde", "#e4572e"][i % 2]);
                        const start = performance.now();
                        map(canvas, xs, ys, colours);
                        return performance.now() - start;
                    }"""
                )
                logger.info(
                    "run %d: %d points: request + projection + drawing %.0f ms, drawing alone %.0f ms",
                    attempt + 1, n, total, drawn,
                )  # fmt: skip
            browser.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 70_000)
