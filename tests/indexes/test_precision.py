"""`/v1/divergence` math against an arbitrary-precision oracle (mpmath, 340 digits) at the numerical edges.

Guarantee (docs/metrics.md): relative error ≤ 1e-9 where the true value is ≥ 1e-12 and ≤ 1e-6 where it
is ≥ 1e-300, for T in [0.01, 1000], C ≤ 1000, |z| ≤ 1e4; exactly 0 where the true value is 0.
"""

from collections.abc import Callable

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from indexes.divergences import compute_divergences
from tests.helpers import precise_divergences, precise_softmax

MEASURES = ("ce", "kl", "kl_reverse", "js", "tri")


def assert_precise(got: float, true: mpmath.mpf, what: str) -> None:
    if true == 0:
        assert got == 0, f"{what}: {got!r} where the true value is 0"
        return
    tolerance = 1e-9 if true >= 1e-12 else 1e-6 if true >= 1e-300 else None
    if tolerance is None:
        assert 0 <= got <= 1e-299, f"{what}: {got!r} where the true value is {mpmath.nstr(true, 5)}"
        return
    error = abs((mpmath.mpf(got) - true) / true)
    assert error <= tolerance, f"{what}: {got!r} vs {mpmath.nstr(true, 17)} (relative error {mpmath.nstr(error, 3)})"


def _pairs(rng: np.random.Generator, num_classes: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Seeded random, near-identical, one-hot-like, extreme and tied rows."""
    x = rng.standard_normal(num_classes) * 5
    one_hot = np.full(num_classes, -1e4)
    one_hot[0] = 1e4
    tied = np.zeros(num_classes)
    tied[: max(1, num_classes // 2)] = 3.0
    return [
        ("random", x, rng.standard_normal(num_classes) * 5),
        ("near-identical 1e-9", x, x + 1e-9 * rng.standard_normal(num_classes)),
        ("near-identical 1 ulp", x, np.nextafter(x, np.inf)),
        ("identical", x, x.copy()),
        ("one-hot-like", one_hot, one_hot + rng.standard_normal(num_classes)),
        ("one-hot vs other", one_hot, np.roll(one_hot, 1)),
        ("extreme", rng.uniform(-1e4, 1e4, num_classes), rng.uniform(-1e4, 1e4, num_classes)),
        ("tied maxima", tied, tied + 1e-6 * rng.standard_normal(num_classes)),
        ("issue's minimal case", np.resize([0.0, -1.0], num_classes), np.resize([0.0, -0.5], num_classes)),
    ]


def _check(num_classes: int, temperatures: tuple[float, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name, x, y in _pairs(rng, num_classes):
        for t in temperatures:
            rows = compute_divergences(x, y, measures=list(MEASURES), temperature=t)
            pairwise = compute_divergences(
                np.stack([x, y]), np.stack([y, x]), measures=list(MEASURES), temperature=t, pairwise=True
            )
            true = precise_divergences(x, y, t)
            for measure in MEASURES:
                where = f"{measure}, {name}, C={num_classes}, T={t}"
                assert_precise(float(rows[measure][0]), true[measure], f"{where}, row-wise")
                assert_precise(float(pairwise[measure][0, 0]), true[measure], f"{where}, pairwise")


@pytest.mark.parametrize(("num_classes", "seed"), [(2, 0), (10, 1), (100, 2)])
def test_divergences_match_the_oracle(num_classes: int, seed: int) -> None:
    _check(num_classes, (0.01, 0.1, 1.0, 10.0, 1000.0), seed)


@pytest.mark.slow
@pytest.mark.parametrize(("num_classes", "seed"), [(2, 10), (3, 11), (10, 12), (100, 13), (1000, 14)])
def test_divergences_match_the_oracle_sweep(num_classes: int, seed: int) -> None:
    _check(num_classes, (0.01, 0.03, 0.1, 0.5, 1.0, 3.0, 10.0, 100.0, 1000.0), seed)


@pytest.mark.parametrize("base", ["e", "2"])
def test_probability_input_matches_the_oracle(base: str) -> None:
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(10))
    cases: list[tuple[str, np.ndarray]] = [
        ("random", rng.dirichlet(np.ones(10))),
        ("near-identical", p * (1 + 1e-10 * rng.standard_normal(10))),
        ("identical", p.copy()),
    ]
    scale = 1.0 if base == "e" else 1 / float(mpmath.log(2))
    for name, q in cases:
        q = q / q.sum()
        got = compute_divergences(p, q, measures=list(MEASURES), input="probabilities", base=base)  # type: ignore[arg-type]
        true = precise_divergences(p, q, 1.0, kind="probabilities")
        for measure in MEASURES:
            factor = scale if measure != "tri" else 1.0
            assert_precise(float(got[measure][0]), true[measure] * factor, f"{measure}, {name}, base {base}")


rows_strategy = arrays(np.float64, st.integers(2, 12), elements=st.floats(-1e4, 1e4))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows_strategy, st.sampled_from([0.01, 0.05, 0.1, 0.3]), st.floats(-1e-6, 1e-6))
def test_identities_hold_at_low_temperature(x: np.ndarray, t: float, nudge: float) -> None:
    y = x + nudge
    values: dict[str, np.ndarray] = compute_divergences(
        np.stack([x, y]), np.stack([x, y]), temperature=t, pairwise=True
    )
    ce, kl, js, tri = values["ce"], values["kl"], values["js"], values["tri"]
    entropy: Callable[[int], float] = lambda i: float(ce[i, i])  # noqa: E731
    for i in range(2):
        assert kl[i, i] == 0 and js[i, i] == 0 and tri[i, i] == 0
        assert entropy(i) >= 0
    assert js[0, 1] == js[1, 0]
    assert 0.25 * tri[0, 1] <= js[0, 1] * (1 + 1e-12) and js[0, 1] <= np.log(2) / 2 * tri[0, 1] * (1 + 1e-12)
    row = compute_divergences(x, y, measures=["ce", "kl"], temperature=t)
    h = compute_divergences(x, x, measures=["ce"], temperature=t)["ce"][0]
    assert row["ce"][0] == pytest.approx(h + row["kl"][0], rel=1e-12, abs=1e-300)


def _precise_cosine(x: np.ndarray, y: np.ndarray) -> mpmath.mpf:
    """`1 − cos(x, y)` in 340-digit arithmetic from the float64 rows as given."""
    a, b = [mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(v)) for v in y]
    dot = mpmath.fsum(u * v for u, v in zip(a, b, strict=True))
    norm_a, norm_b = mpmath.sqrt(mpmath.fsum(u * u for u in a)), mpmath.sqrt(mpmath.fsum(v * v for v in b))
    return 1 - dot / (norm_a * norm_b)


@pytest.mark.parametrize("num_classes", [10, 1000])
@pytest.mark.parametrize("distance", [1e-11, 1e-12, 1e-13, 1e-14])
def test_tiny_cosine_distances_match_the_oracle(num_classes: int, distance: float) -> None:
    """Rows at a chosen angle (large norms, C up to 1000) come back within 1e-6 relative, row-wise and pairwise:
    `1 − x̂ · ŷ` read 8e-5 off at 1e-11 and up to 34× off below 1e-12."""
    rng = np.random.default_rng(int(-np.log10(distance)) + num_classes)
    x = rng.standard_normal((3, num_classes)) * 1e3
    direction = rng.standard_normal((3, num_classes))
    direction -= (np.einsum("ic,ic->i", direction, x) / np.einsum("ic,ic->i", x, x))[:, None] * x  # ⊥ x
    # 1 − cos θ ≈ θ²/2: an orthogonal step of θ‖x‖ turns x by about θ.
    step = np.sqrt(2 * distance) * np.linalg.norm(x, axis=1) / np.linalg.norm(direction, axis=1)
    y = x + step[:, None] * direction
    rowwise = compute_divergences(x, y, measures=["cosine"])["cosine"]
    pairwise = compute_divergences(x, y, measures=["cosine"], pairwise=True)["cosine"]
    for i in range(3):
        true = _precise_cosine(x[i], y[i])
        assert 0.5 * distance < true < 2 * distance  # the construction did what it says
        for got, how in ((rowwise[i], "row-wise"), (pairwise[i, i], "pairwise")):
            error = abs((mpmath.mpf(float(got)) - true) / true)
            assert error <= 1e-6, f"{how} cosine {got!r} vs {mpmath.nstr(true, 17)} (error {mpmath.nstr(error, 3)})"


def _disjoint_tail_pairs() -> list[tuple[str, np.ndarray, np.ndarray, str]]:
    """Pairs where JS = (ln 2 / 2)·tri exactly (mass differing only on disjoint supports), at every magnitude."""
    rng = np.random.default_rng(33)
    pairs: list[tuple[str, np.ndarray, np.ndarray, str]] = []
    for scale in (1.0, 0.3, 1e-3, 1e-9, 1e-30, 1e-100, 1e-250):  # the differing share of the mass
        for _ in range(3):
            head = rng.dirichlet(np.ones(3)) * (1 - scale) if scale < 1 else np.array([])
            p, q = np.concatenate([head, [scale, 0.0]]), np.concatenate([head, [0.0, scale]])
            pairs.append((f"disjoint share {scale:g}", p, q, "probabilities"))
    for t in (0.01, 0.02, 0.05):  # saturated logits: supports disjoint up to float64
        x = rng.standard_normal((4, 10)) * 5
        pairs += [(f"logits T={t}, row {i}", x[i], x[(i + 1) % 4], f"logits {t}") for i in range(4)]
    return pairs


def _precise_js_tri(x: np.ndarray, y: np.ndarray, t: float, kind: str) -> dict[str, mpmath.mpf]:
    """JS and tri in 340-digit arithmetic (`precise_divergences` would divide by the zeros of these rows)."""
    if kind == "logits":
        p, q = precise_softmax(x, t), precise_softmax(y, t)
    else:
        p, q = ([mpmath.mpf(float(v)) / mpmath.fsum(map(float, row)) for v in row] for row in (x, y))
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def kl(u: list[mpmath.mpf]) -> mpmath.mpf:
        return mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(u, m, strict=True) if a > 0)

    tri = mpmath.fsum((a - b) ** 2 / (a + b) for a, b in zip(p, q, strict=True) if a + b > 0)
    return {"js": (kl(p) + kl(q)) / 2, "tri": tri}


@pytest.mark.parametrize(("name", "x", "y", "kind"), _disjoint_tail_pairs())
def test_js_never_exceeds_its_triangular_bound_at_the_tight_edge(
    name: str, x: np.ndarray, y: np.ndarray, kind: str
) -> None:
    """JS ≤ (ln 2 / 2)·tri in float64, row-wise, pairwise and measure by measure, where the bound is tight (the
    oracle: mpmath shows JS/tri is ln 2 / 2 there), and both stay within the precision guarantee."""
    input_kind, t = ("probabilities", 1.0) if kind == "probabilities" else ("logits", float(kind.split()[1]))
    true = _precise_js_tri(x, y, t, input_kind)
    assert true["tri"] == 0 or true["js"] <= mpmath.log(2) / 2 * true["tri"] * (1 + mpmath.mpf(10) ** -300)
    rows = np.stack([x, y])
    pairwise = compute_divergences(rows, rows, measures=["js", "tri"], input=input_kind, temperature=t, pairwise=True)
    row_wise = compute_divergences(x, y, measures=["js", "tri"], input=input_kind, temperature=t)
    alone = {m: compute_divergences(x, y, measures=[m], input=input_kind, temperature=t)[m] for m in ("js", "tri")}
    for js, tri in ((pairwise["js"][0, 1], pairwise["tri"][0, 1]), (row_wise["js"][0], row_wise["tri"][0])):
        assert js <= np.log(2) / 2 * tri, f"{name}: js {js!r} > (ln 2 / 2)·tri {np.log(2) / 2 * tri!r}"
    assert alone["js"][0] <= np.log(2) / 2 * alone["tri"][0], name
    assert_precise(float(row_wise["js"][0]), true["js"], f"js, {name}")
    assert_precise(float(row_wise["tri"][0]), true["tri"], f"tri, {name}")


@pytest.mark.parametrize(
    ("exponent", "second"),
    [(e, "complement") for e in (-1, -5, -20, -100, -200, -297, -300, -307)]
    + [(e, "one") for e in (-20, -100, -200, -290, -297, -300, -307)],
)
def test_ce_of_a_row_with_itself_is_its_entropy_down_to_tiny_probabilities(exponent: int, second: str) -> None:
    """ce(a, a) = H(p) within 1e-6 relative for probability rows (ε, 1 − ε) with C = 2, including 1 − ε == 1.0 in
    float64, where the renormalisation carries the ε·1 share of the entropy (oracle: mpmath, 340 digits)."""
    epsilon = 10.0**exponent
    row = np.array([epsilon, 1.0 - epsilon if second == "complement" else 1.0])
    true = precise_divergences(row, row, 1.0, "probabilities")["ce"]
    got = compute_divergences(row, row, measures=["ce", "kl"], input="probabilities")
    assert got["kl"][0] == 0.0
    assert_precise(float(got["ce"][0]), true, f"ce(a, a) with ε = 1e{exponent}, second entry {second}")
