"""`service.schemas` is the wire: a leaf the client imports without torch, whose names agree with the libraries."""

import base64
import dataclasses
import re

import numpy as np
import pytest

from evaluation.evaluator import RankingRow as EvaluatorRankingRow
from evaluation.measures import RANKING_METRICS
from evaluation.options import DEFAULT_TEMPERATURES, MAX_K, MAX_TEMPERATURES
from indexes.divergences import EXTRA_MEASURES, MEASURES
from indexes.metrics import SEARCH_METRICS
from indexes.pages import ORDER_FIELDS
from indexes.validation import MAX_ID_LENGTH
from service import schemas
from service.config import INDEX_NAME_PATTERN
from tests.helpers import ROOT, modules_after

HEAVY = ("torch", "numba", "faiss", "sklearn", "scipy", "matplotlib", "indexes", "evaluation", "models")
_PROBE = "import service.client\nassert Path(service.client.__file__).is_relative_to(ROOT)  # this tree's client"


def _packages_after(code: str) -> set[str]:
    return {
        name.partition(".")[0]
        for name in modules_after(f"from pathlib import Path\nROOT = Path({str(ROOT)!r})\n{code}")
    }


def test_client_import_loads_no_heavy_package() -> None:
    loaded = _packages_after(_PROBE)
    assert loaded.isdisjoint(HEAVY), f"import service.client loaded {sorted(loaded & set(HEAVY))}"
    assert {"httpx", "pydantic", "numpy"} <= loaded


def test_client_import_probe_sees_heavy_packages() -> None:
    # The check above can fail: the same probe run after importing a library module reports it.
    assert "indexes" in _packages_after("import indexes.metrics\n" + _PROBE)


def test_schemas_names_and_limits_agree_with_the_libraries() -> None:
    assert schemas.SEARCH_METRICS == SEARCH_METRICS
    assert (schemas.MEASURES, schemas.EXTRA_MEASURES) == (MEASURES, EXTRA_MEASURES)
    assert schemas.MAX_ID_LENGTH == MAX_ID_LENGTH
    assert schemas.RANKING_METRICS == RANKING_METRICS
    assert schemas.DEFAULT_TEMPERATURES == DEFAULT_TEMPERATURES
    assert (schemas.MAX_TEMPERATURES, schemas.MAX_EVAL_K) == (MAX_TEMPERATURES, MAX_K)
    assert (schemas.ORDER_FIELDS, schemas.INDEX_NAME_PATTERN) == (ORDER_FIELDS, INDEX_NAME_PATTERN)


def test_schemas_ranking_row_has_the_evaluators_fields() -> None:
    fields = {field.name: field.type for field in dataclasses.fields(EvaluatorRankingRow)}
    wire = {name: field.annotation for name, field in schemas.RankingRow.model_fields.items()}
    assert wire == fields


def test_schemas_vectors_round_trip_as_little_endian_float32(rng: np.random.Generator) -> None:
    vectors = rng.normal(size=(3, 5)).astype(np.float32)
    text = schemas.encode_vectors(vectors)
    assert text == base64.b64encode(vectors.astype("<f4").tobytes()).decode()
    np.testing.assert_array_equal(schemas.decode_vectors(text[:8] + "\n" + text[8:], (3, 5), "logits_b64"), vectors)


@pytest.mark.parametrize(
    ("text", "message"), [("not base64!", "not valid base64"), ("AAAA", "holds 3 bytes, but shape [1, 2] needs 8")]
)
def test_schemas_decode_vectors_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        schemas.decode_vectors(text, (1, 2), "logits_b64")
