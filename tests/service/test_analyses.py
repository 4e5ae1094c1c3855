"""Analyses over real HTTP: the routes, the Python client and `logitsearch analyse` against a running service."""

import io

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from service.cli import build_parser
from service.cli.analysing import analyse_index
from service.client import Client, LogitSearchError
from service.config import Settings
from tests.servers import serving


def test_analyses_over_http_agree_with_the_stored_items(settings: Settings) -> None:
    with serving(settings) as url, Client(url) as client:
        stored = list(client.iter_items(filter={"split": "test"}))
        logits = np.array([item.logits for item in stored], dtype=np.float32)
        labels = np.array([item.metadata["label"] for item in stored])
        confusion = client.analyse("confusion", filter={"split": "test"}, limit=1000)
        assert confusion.read == len(stored)
        assert confusion.summary["matrix"] == confusion_matrix(labels, logits.argmax(axis=1), labels=range(10)).tolist()
        uncertain = client.analyse("uncertain", filter={"split": "test"}, by="confidence", limit=5, temperature=2.0)
        z = logits.astype(np.float64) / 2.0
        confidence = np.exp(z.max(axis=1) - np.log(np.exp(z).sum(axis=1)))
        assert [row["id"] for row in uncertain.rows] == [
            stored[i].id for i in np.argsort(confidence, kind="stable")[:5]
        ]
        with pytest.raises(LogitSearchError, match="no analysis 'mystery'"):
            client.analyse("mystery")
        with pytest.raises(LogitSearchError, match="reads at most 10"):
            client.analyse("uncertain", max_items=10)

        out = io.StringIO()
        args = build_parser("analyse").parse_args(["analyse", "calibration", "--url", url, "--queries", "20"])
        assert analyse_index(args, out) == 0
        table = out.getvalue()
        assert "overlap@10 with the exact CE top-10 on 20 items" in table and "l2_centered" in table
        shown = client.get_index("default").calibration  # the last calibration of the whole index
        assert shown is not None and set(shown["temperature_reaching_target"]) == {
            "l2",
            "l2_centered",
            "cosine",
            "js",
            "tri",
        }


def test_a_described_search_and_an_agreement_sweep_carry_what_the_page_shows(settings: Settings) -> None:
    from tests.helpers import brute_force

    with serving(settings) as url, Client(url) as client:
        import httpx

        query = {"queries": [{"id": "digits-7"}], "k": 5, "metric": "js", "describe": True}
        hits = httpx.post(f"{url}/v1/search", json=query).json()["results"][0]
        for hit in hits:
            assert hit["predicted"] == int(np.argmax(client.get_item(hit["id"]).logits)) and hit["thumbnail"] is True
        body = {"query": {"id": "digits-7"}, "k": 5, "metric": "l2", "reference": "kl", "temperatures": [0.5, 4.0]}
        answer = httpx.post(f"{url}/v1/search/agreement", json=body).json()
        for point in answer["sweep"]:
            alone = httpx.post(f"{url}/v1/search/agreement", json=body | {"temperature": point["temperature"]}).json()
            assert (point["overlap"], point["spearman"]) == (alone["overlap"], alone["spearman"])
        query_logits = np.array([client.get_item("digits-7").logits])
        items = np.array([client.get_item(i).logits for i in answer["compared_ids"]])
        np.testing.assert_allclose(answer["metric_values"], brute_force("l2", query_logits, items)[0], rtol=1e-6)
        np.testing.assert_allclose(answer["reference_values"], brute_force("kl", query_logits, items)[0], atol=1e-9)
        too_many = httpx.post(f"{url}/v1/search", json=query | {"k": 1001})
        assert too_many.status_code == 422
