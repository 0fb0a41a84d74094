"""The paper's toy experiment: the published numbers with numpy's legacy draws, the same answer
from the fast Rust draws, no torch on this path, the figure, and clear errors."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import pytest

from tradeoff.app import cli


def toy(*args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["toy", "--json", *args]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def legacy():
    return toy("--rng", "numpy-legacy")


def test_numpy_legacy_reproduces_the_published_numbers(legacy):
    assert round(legacy["entropy_aligned"], 2) == 5.01
    assert round(legacy["entropy_prior"], 2) == 6.87
    assert round(legacy["string_spearman"], 2) == 0.43
    assert round(legacy["string_pearson"], 2) == 0.49
    assert legacy["corpus_spearman_binned"] == pytest.approx(-0.92, abs=0.02)
    assert legacy["corpus_pearson_binned"] == pytest.approx(-0.92, abs=0.02)
    assert legacy["n_corpora"] == 1000 and legacy["rng"] == "numpy-legacy"


def test_fast_draws_give_the_same_answer(legacy):
    fast = toy()
    for key in ("entropy_aligned", "entropy_prior", "string_spearman", "string_pearson"):
        assert fast[key] == legacy[key]  # the same world
    # About 21% of corpora are typical: a binomial count with sd ~ 13.
    assert abs(fast["n_typical"] - legacy["n_typical"]) < 60
    for key in ("corpus_spearman_typical", "corpus_pearson_typical"):
        assert fast[key] == pytest.approx(legacy[key], abs=0.08)
    for key in ("corpus_spearman_binned", "corpus_pearson_binned"):
        assert fast[key] == pytest.approx(-0.92, abs=0.03)
    assert fast["rng"] == "fast"


def test_toy_needs_no_torch_and_writes_the_figure(tmp_path):
    figure = tmp_path / "toy.png"
    code = (
        "import sys, json; from tradeoff import cli; "
        f"cli.main(['toy', '--json', '--n-corpora', '50', '--figure', {str(figure)!r}]); "
        "loaded = ['torch' in sys.modules, 'transformers' in sys.modules]; "
        "print(json.dumps(loaded), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stderr.strip().splitlines()[-1]) == [False, False]
    assert json.loads(done.stdout)["figure"] == str(figure)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_settings_are_named(capsys):
    assert cli.main(["toy", "--tolerance", "0"]) == 2
    assert "`tolerance` must be > 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["toy", "--rng", "mersenne"])
