"""Data-parallel calibration on torch.distributed: two processes on loopback (gloo), each
on its share of the calibration batches, give the weights (GPTQ), the static input
qparams (W8A8, min / max observers merged in rank order) and AWQ's folded scales that one
process computes from all of them, bit for bit, in one pass and block by block. The
Hessians and AWQ's input magnitudes are exact fixed-point sums (quantkit.torch.exact_sum),
so neither the order of the batches after the first nor how they are split changes a
bit of GPTQ's result."""

import json
import socket
import subprocess
import sys

import pytest
import quantkit.torch as qkt
import torch
from quantkit.torch.exact_sum import ExactSum
from quantkit.torch.gptq import _hessians
from tiny_llama import save_tiny_llama
from transformers import AutoModelForCausalLM

RANK = r"""
import json, sys, torch
import torch.distributed as dist
import quantkit.torch as qkt
from transformers import AutoModelForCausalLM
folder, port, rank, world, shard, sequential, out, method = sys.argv[1:9]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=int(rank),
                        world_size=int(world))
g = torch.Generator().manual_seed(1)
batches = [torch.randint(0, 256, (2, 48), generator=g) for _ in range(6)]
mine = [batches[i] for i in json.loads(shard)]
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
if method == "w8a8":
    qkt.prepare(model, qkt.recipes.W8A8("minmax"))
    qkt.calibrate(model, mine, distributed=True)
    qkt.convert(model)
    torch.save(model.state_dict(), out)
    dist.destroy_process_group()
    sys.exit(0)
if method == "awq":
    qkt.awq(model, mine, qkt.recipes.W4A16(32), sequential=sequential == "1", distributed=True)
    torch.save(model.state_dict(), out)
    dist.destroy_process_group()
    sys.exit(0)
qkt.prepare(model, qkt.recipes.W4A16(32))
from quantkit.torch.gptq import _hessians
layers = {n: m for n, m in model.named_modules() if isinstance(m, qkt.QATLinear)}
hessians = _hessians(model, layers, mine, None, distributed=True)
torch.save({n: h for n, (h, _) in hessians.items()}, out + ".hessians")
qkt.gptq(model, mine, sequential=sequential == "1", distributed=True)
qkt.convert(model)
torch.save(model.state_dict(), out)
dist.destroy_process_group()
"""


def batches():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (2, 48), generator=g) for _ in range(6)]


def single_process(folder, order, sequential, method="gptq"):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    everything = [batches()[i] for i in order]
    if method == "w8a8":
        qkt.prepare(model, qkt.recipes.W8A8("minmax"))
        qkt.calibrate(model, everything)
    elif method == "awq":  # the float model with the scales folded in
        qkt.awq(model, everything, qkt.recipes.W4A16(32), sequential=sequential)
        return model.state_dict()
    else:
        qkt.prepare(model, qkt.recipes.W4A16(32))
        qkt.gptq(model, everything, sequential=sequential)
    qkt.convert(model)
    return model.state_dict()


def run_ranks(tmp_path, sequential, method):
    """Two gloo processes, uneven shares; rank 0 holds the first batch."""
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    port = free_port()
    shards = [[0, 1, 2, 3], [4, 5]]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "model"),
                str(port),
                str(rank),
                "2",
                json.dumps(shard),
                "1" if sequential else "0",
                str(tmp_path / f"rank{rank}.pt"),
                method,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for rank, shard in enumerate(shards)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same_state(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        if isinstance(a[name], torch.Tensor):
            assert torch.equal(a[name], b[name]), name
        else:  # quantizer state (spec keys, flags)
            assert a[name] == b[name], name


@pytest.mark.parametrize("sequential", [False, True])
def test_two_ranks_equal_one_process_bit_for_bit(tmp_path, sequential):
    save_tiny_llama(tmp_path / "model", dtype=torch.float32)
    run_ranks(tmp_path, sequential, "gptq")
    expected = single_process(tmp_path / "model", range(6), sequential)
    for rank in range(2):
        assert_same_state(torch.load(tmp_path / f"rank{rank}.pt"), expected)
    # The float64 Hessians themselves (the float model's, before GPTQ) are identical.
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model", dtype=torch.float32).eval()
    qkt.prepare(model, qkt.recipes.W4A16(32))
    layers = {n: m for n, m in model.named_modules() if isinstance(m, qkt.QATLinear)}
    single = {n: h for n, (h, _) in _hessians(model, layers, batches(), None).items()}
    for rank in range(2):
        assert_same_state(torch.load(tmp_path / f"rank{rank}.pt.hessians"), single)


def test_static_activation_calibration_merges_across_ranks(tmp_path):
    save_tiny_llama(tmp_path / "model", dtype=torch.float32)
    run_ranks(tmp_path, False, "w8a8")
    expected = single_process(tmp_path / "model", range(6), False, "w8a8")
    for rank in range(2):
        assert_same_state(torch.load(tmp_path / f"rank{rank}.pt"), expected)


@pytest.mark.parametrize("sequential", [False, True])
def test_awq_statistics_merge_across_ranks(tmp_path, sequential):
    save_tiny_llama(tmp_path / "model", dtype=torch.float32)
    run_ranks(tmp_path, sequential, "awq")
    expected = single_process(tmp_path / "model", range(6), sequential, "awq")
    for rank in range(2):
        assert_same_state(torch.load(tmp_path / f"rank{rank}.pt"), expected)


def test_batch_order_after_the_first_does_not_change_a_bit(tmp_path):
    save_tiny_llama(tmp_path / "model", dtype=torch.float32)
    assert_same_state(
        single_process(tmp_path / "model", [0, 5, 3, 1, 4, 2], False),
        single_process(tmp_path / "model", range(6), False),
    )


def test_exact_sum_is_order_free_and_accurate():
    g = torch.Generator().manual_seed(0)
    terms = [torch.randn(16, 16, generator=g) * 10.0**k for k in (0, 3, -4, 2, -2, 5)]
    totals = []
    for order in ([0, 1, 2, 3, 4, 5], [0, 5, 4, 3, 2, 1], [0, 2, 4, 1, 3, 5]):
        s = ExactSum("test")
        for i in order:
            s.add(terms[i])
        totals.append(s.value())
    assert torch.equal(totals[0], totals[1]) and torch.equal(totals[0], totals[2])
    # A float64 running sum of the same terms depends on the order: what this fixes.
    running = [sum((terms[i].double() for i in order), torch.zeros(16, 16, dtype=torch.float64))
               for order in ([0, 1, 2, 3, 4, 5], [0, 5, 4, 3, 2, 1])]  # fmt: skip
    assert not torch.equal(running[0], running[1])
    # Split in two halves summed separately and added as integers: the same value.
    a, b = ExactSum("a"), ExactSum("b")
    a.add(terms[0]), a.add(terms[1]), a.add(terms[2])
    b.shift = a.shift
    for t in terms[3:]:
        b.add(t)
    a.hi, a.lo = a.hi + b.hi, a.lo + b.lo
    assert torch.equal(a.value(), totals[0])
    # Within the fixed point's resolution of the float64 sum (2^-40 of the first term).
    reference = sum(t.double() for t in terms)
    resolution = terms[0].abs().max().double() * 2.0**-39 * len(terms)
    assert (totals[0] - reference).abs().max() <= resolution


def test_exact_sum_refusals_name_the_rule():
    s = ExactSum("gptq: the Hessian of layer 'x'")
    with pytest.raises(ValueError, match="first calibration batch gives all zeros"):
        s.add(torch.zeros(2, 2))
    s = ExactSum("gptq: the Hessian of layer 'x'")
    s.add(torch.ones(2, 2))
    with pytest.raises(ValueError, match="batch 1 has values over 2\\^21 times"):
        s.add(torch.full((2, 2), 2.0**30))
    with pytest.raises(ValueError, match="distributed=True needs torch.distributed"):
        model = torch.nn.Sequential(torch.nn.Linear(32, 32))
        qkt.prepare(model, qkt.recipes.W4A16(32))
        qkt.gptq(model, [torch.randn(4, 32)], distributed=True)
