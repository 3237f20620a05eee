"""The forward's fast path (`token_embeddings`, `_add_position_rows`) against the reference it must equal.

The reference is GPT-2's stage written out: two `F.embedding` gathers and an out-of-place add. The fast path
gathers with `torch.embedding` directly when `wte` is a stock `nn.Embedding`, slices contiguous positions out
of a stock `wpe` table and adds in place; every other `wte` or `wpe` (hooked, wrapped, `forward` replaced) must
go through its module call and give what the module gives.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hf_embed import HfEmbedConfig, HfEmbedModel
from hf_embed.embeddings import _is_stock_embedding, _stock_position_table
from hf_embed.position_embeddings import LearnedPositionEmbedding, SinusoidalPositionEmbedding


def reference(model, ids, position_ids=None, past_length=0):
    emb = model.embeddings
    if position_ids is None:
        position_ids = torch.arange(past_length, past_length + ids.shape[1]).unsqueeze(0)
    return F.embedding(ids.long(), emb.wte.weight) + F.embedding(position_ids, emb.wpe.weight)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return HfEmbedModel(HfEmbedConfig.from_preset("tiny")).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(1, 1), (1, 16), (3, 5), (4, 0)])
def test_fast_path_is_bit_identical_to_reference(model, dtype, shape):
    model = model.to(dtype)
    ids = torch.randint(0, 99, shape)
    assert torch.equal(model(ids).last_hidden_state, reference(model, ids))
    assert torch.equal(model(ids.int()).last_hidden_state, reference(model, ids))
    assert torch.equal(
        model(ids[:, :2], past_key_values_length=3).last_hidden_state, reference(model, ids[:, :2], None, 3)
    )
    positions = torch.randint(0, 16, shape)
    assert torch.equal(model(ids, position_ids=positions).last_hidden_state, reference(model, ids, positions))


def test_fast_path_gradients_equal_reference(model):
    ids = torch.randint(0, 99, (3, 7))
    weight = torch.randn(3, 7, 32)
    (model(ids).last_hidden_state * weight).sum().backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    (reference(model, ids) * weight).sum().backward()
    for mine, theirs in zip(ours, [p.grad for p in model.parameters()], strict=True):
        assert torch.equal(mine, theirs)


def test_stock_embedding_detection():
    table = nn.Embedding(10, 4)
    assert _is_stock_embedding(table)
    assert not _is_stock_embedding(nn.Embedding(10, 4, max_norm=1.0))
    assert not _is_stock_embedding(type("Sub", (nn.Embedding,), {})(10, 4))
    handle = table.register_forward_hook(lambda *args: None)
    assert not _is_stock_embedding(table)
    handle.remove()
    handle = nn.modules.module.register_module_forward_pre_hook(lambda *args: None)
    try:
        assert not _is_stock_embedding(table)
    finally:
        handle.remove()
    handle = table.register_full_backward_hook(lambda *args: None)
    assert not _is_stock_embedding(table)
    handle.remove()
    table.forward = lambda ids: ids  # what tensor parallel and accelerate's offloading do
    assert not _is_stock_embedding(table)


def test_stock_position_table_detection():
    learned, sinusoidal = LearnedPositionEmbedding(16, 4), SinusoidalPositionEmbedding(16, 4)
    assert _stock_position_table(learned) is learned.weight
    assert _stock_position_table(sinusoidal) is sinusoidal.table
    assert _stock_position_table(nn.Embedding(16, 4)) is None  # not a position scheme
    assert _stock_position_table(LearnedPositionEmbedding(16, 4, max_norm=1.0)) is None
    assert _stock_position_table(type("Sub", (SinusoidalPositionEmbedding,), {})(16, 4)) is None
    for module in (learned, sinusoidal):
        for register in (module.register_forward_hook, module.register_forward_pre_hook):
            handle = register(lambda *args: None)
            assert _stock_position_table(module) is None
            handle.remove()
        module.forward = lambda position_ids: position_ids
        assert _stock_position_table(module) is None
        del module.forward
        assert _stock_position_table(module) is not None


@pytest.mark.parametrize("hook_on", ["wte", "wpe"])
def test_hooked_tables_run_their_module_calls_and_equal_the_reference(model, hook_on):
    """A hook that changes nothing changes nothing: the module-call path is the same arithmetic."""
    seen = []
    getattr(model.embeddings, hook_on).register_forward_hook(lambda module, args, out: seen.append(out))
    ids = torch.randint(0, 99, (3, 5))
    positions = torch.randint(0, 16, (3, 5))
    assert torch.equal(model(ids).last_hidden_state, reference(model, ids))
    assert torch.equal(model(ids, position_ids=positions).last_hidden_state, reference(model, ids, positions))
    assert torch.equal(
        model(ids[:, :2], past_key_values_length=3).last_hidden_state, reference(model, ids[:, :2], None, 3)
    )
    assert len(seen) == 3
    if hook_on == "wte":  # what a hook kept is the module's output, never modified in place afterwards
        assert torch.equal(seen[0], F.embedding(ids, model.embeddings.wte.weight))
    else:
        assert torch.equal(seen[0], model.embeddings.wpe.weight[:5].unsqueeze(0))


def test_hooked_or_replaced_token_table_runs_its_module_call(model):
    ids = torch.randint(0, 99, (2, 5))
    seen = []
    model.embeddings.wte.register_forward_hook(lambda module, args, out: seen.append(out.shape) or out * 2)
    expected = 2 * F.embedding(ids, model.embeddings.wte.weight) + model.embeddings.wpe.weight[:5]
    assert torch.equal(model(ids).last_hidden_state, expected)
    assert seen == [(2, 5, 32)]


def test_replaced_forward_and_max_norm_are_honoured(model):
    ids = torch.tensor([[1, 2]])
    wte = model.embeddings.wte
    wte.forward = lambda input_ids: torch.zeros(*input_ids.shape, 32)
    assert torch.equal(model(ids).last_hidden_state, model.embeddings.wpe.weight[:2].expand(1, 2, 32))
    del wte.forward

    renorm = nn.Embedding(99, 32, max_norm=0.5)
    model.set_input_embeddings(renorm)
    with torch.no_grad():
        model(ids)
    assert renorm.weight[1].norm() <= 0.5 + 1e-6  # the module renormalized the rows it looked up


def test_padding_idx_and_scale_grad_by_freq_reach_the_kernel(model):
    ids = torch.tensor([[1, 1, 3, 0]])
    for kwargs in ({"padding_idx": 1}, {"scale_grad_by_freq": True}):
        table = nn.Embedding(99, 32, **kwargs)
        model.set_input_embeddings(table)
        assert _is_stock_embedding(table)
        model(ids).last_hidden_state.sum().backward()
        fast = table.weight.grad.clone()
        table.weight.grad = None
        F.embedding(ids, table.weight, **kwargs).sum().backward()
        assert torch.equal(fast, table.weight.grad)


@pytest.mark.parametrize("hooked", [False, True])
def test_bad_ids_name_value_and_index_on_both_paths(model, hooked):
    if hooked:
        model.embeddings.wte.register_forward_pre_hook(lambda *args: None)
    for bad, value in (([[3, 99]], 99), ([[3, -1]], -1)):
        with pytest.raises(ValueError, match=rf"token id {value} at \[0, 1\] is outside the vocabulary \(size 99\)"):
            model(torch.tensor(bad))


@pytest.mark.slow
@pytest.mark.slow
def test_torch_compile_fullgraph_equals_eager_and_checks_ids(model):
    """torch.compile is the fused path (one kernel for gather + add): no graph break, same numbers, ids checked."""
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=True)
    with torch.no_grad():
        for shape in ((3, 7), (1, 16)):
            ids = torch.randint(0, 99, shape)
            assert torch.equal(compiled(ids).last_hidden_state, reference(model, ids))
        ids = torch.randint(0, 99, (2, 4))
        assert torch.equal(compiled(ids, past_key_values_length=5).last_hidden_state, reference(model, ids, None, 5))
        with pytest.raises(RuntimeError, match=r"a token id is outside the vocabulary \(size 99\)"):
            compiled(torch.tensor([[1, 99]]))
        mask = torch.ones(3, 7, dtype=torch.long)
        mask[0, :2] = 0  # left padding: positions from the mask, its 0/1 check a device assert
        ids = torch.randint(0, 99, (3, 7))
        for kwargs in ({"attention_mask": mask}, {"token_type_ids": ids.flip(-1)}):
            assert torch.equal(compiled(ids, **kwargs).last_hidden_state, model(ids, **kwargs).last_hidden_state)
        mask[1, 3] = 2
        with pytest.raises(RuntimeError, match=r"`attention_mask` holds a value other than 0 and 1"):
            compiled(ids, attention_mask=mask)


# --------------------------------------------------------------------------- the cache-blocked path


@pytest.fixture
def blocked_calls(monkeypatch):
    """Make tiny inputs take the blocked path (`gather_add_rows`) in several blocks, and record its calls."""
    from hf_embed import embeddings, gather_add

    calls = []

    def spy(*args):
        calls.append(args[1].shape)
        return gather_add.gather_add_rows(*args)

    monkeypatch.setattr(embeddings, "MIN_BLOCKED_ELEMENTS", 1)
    monkeypatch.setattr(embeddings, "gather_add_rows", spy)
    monkeypatch.setattr(gather_add, "BLOCK_BYTES_PER_THREAD", 3 * 32 * 4)  # 3 float32 rows per thread
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(13, 7), (2, 16), (1, 1)])
def test_blocked_path_is_bit_identical_to_reference(model, blocked_calls, dtype, shape):
    model = model.to(dtype)
    ids = torch.randint(0, 99, shape)
    with torch.no_grad():
        assert torch.equal(model(ids).last_hidden_state, reference(model, ids))
        assert torch.equal(model(ids.int()).last_hidden_state, reference(model, ids))
        short = ids[:, : max(1, shape[1] // 2)]
        assert torch.equal(model(short, past_key_values_length=3).last_hidden_state, reference(model, short, None, 3))
    with torch.inference_mode():
        assert torch.equal(model(ids).last_hidden_state, reference(model, ids))
    assert blocked_calls == [shape, shape, short.shape, shape]


def test_blocked_path_for_the_sinusoidal_table(blocked_calls):
    torch.manual_seed(0)
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="sinusoidal")).eval()
    ids = torch.randint(0, 99, (5, 16))
    with torch.no_grad():
        out = model(ids).last_hidden_state
    assert blocked_calls == [(5, 16)]
    assert torch.equal(out, F.embedding(ids, model.embeddings.wte.weight) + model.embeddings.wpe.table)


def test_blocked_path_only_where_nothing_needs_its_module_calls_or_a_gradient(model, blocked_calls):
    """Gradients, hooks, given or mask-derived positions, a multiplier, a dtype whose add is compute bound: the two
    steps, with the same numbers."""
    ids = torch.randint(0, 99, (4, 9))
    with torch.no_grad():
        for dtype in (torch.bfloat16, torch.float16):
            assert torch.equal(model.to(dtype)(ids).last_hidden_state, reference(model, ids))
    model.float()
    out = model(ids).last_hidden_state  # grad mode and tables that require grad: autograd must see the ops
    assert out.requires_grad and not blocked_calls
    assert torch.equal(out, reference(model, ids))
    with torch.no_grad():
        model(ids, position_ids=torch.arange(9).flip(0))
        mask = torch.ones(4, 9, dtype=torch.long)
        mask[0, :3] = 0
        model(ids, attention_mask=mask)
        handle = model.embeddings.wpe.register_forward_hook(lambda *args: None)
        model(ids)
        handle.remove()
        assert not blocked_calls
        model.embeddings.wte.weight.requires_grad_(False)
        model.embeddings.wpe.weight.requires_grad_(False)
    model(ids)  # grad mode, but nothing requires a gradient
    assert blocked_calls == [(4, 9)]

    torch.manual_seed(0)
    scaled = HfEmbedModel(HfEmbedConfig.from_preset("tiny", embedding_multiplier=2.0)).eval()
    with torch.no_grad():
        out = scaled(ids).last_hidden_state
    assert blocked_calls == [(4, 9)]
    assert torch.equal(out, 2.0 * F.embedding(ids, scaled.embeddings.wte.weight) + scaled.embeddings.wpe.weight[:9])


def test_blocked_path_names_bad_ids(model, blocked_calls):
    for bad, value in (([[3, 99]], 99), ([[3, -1]], -1)):
        with torch.no_grad(), pytest.raises(ValueError, match=rf"token id {value} at \[0, 1\] is outside"):
            model(torch.tensor(bad))
    assert len(blocked_calls) == 2


def test_blocked_path_under_functional_call(model, blocked_calls):
    """torch.func.functional_call swaps in other tables: the blocked path reads the tables it was given."""
    params = {name: torch.randn_like(p) for name, p in model.named_parameters()}
    ids = torch.randint(0, 99, (3, 5))
    with torch.no_grad():
        out = torch.func.functional_call(model, params, (ids,)).last_hidden_state
    expected = F.embedding(ids, params["embeddings.wte.weight"]) + params["embeddings.wpe.weight"][:5]
    assert torch.equal(out, expected) and blocked_calls == [(3, 5)]


# --------------------------------------------------------------------------- CUDA (run by scripts/gpu_check.sh)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
SCHEMES = ["absolute", "sinusoidal", "rotary", "relative", "none"]


def tiny_model(scheme: str, dtype: torch.dtype = torch.float32) -> HfEmbedModel:
    torch.manual_seed(0)
    config = HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, head_dim=8, max_relative_distance=3)
    return HfEmbedModel(config).eval().to(dtype)


def forward_inputs(device) -> list[dict]:
    """Every way positions reach the forward: default, past length, given ids, a left-padding mask, token types."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 99, (13, 7), generator=generator)
    mask = torch.ones(13, 7, dtype=torch.long)
    mask[0, :3] = 0
    calls = [
        {"input_ids": ids},
        {"input_ids": ids[:, :4], "past_key_values_length": 5},
        {"input_ids": ids, "position_ids": torch.randint(0, 16, (13, 7), generator=generator)},
        {"input_ids": ids, "attention_mask": mask},
        {"input_ids": ids, "token_type_ids": ids.flip(-1)},
        {"input_ids": ids.to(torch.int32)},
    ]
    return [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in call.items()} for call in calls]


def outputs(model, calls) -> list:
    results = []
    for call in calls:
        out = model(**call)
        results.append((out.last_hidden_state, out.position_embeddings))
    return results


def assert_equal_on_cpu(gpu_results, cpu_results):
    for (hidden, positions), (expected_hidden, expected_positions) in zip(gpu_results, cpu_results, strict=True):
        assert torch.equal(hidden.cpu(), expected_hidden)
        if isinstance(expected_positions, tuple):  # rotary (cos, sin): computed in float32 on each device
            for got, expected in zip(positions, expected_positions, strict=True):
                torch.testing.assert_close(got.cpu(), expected)
        elif expected_positions is not None:
            assert torch.equal(positions.cpu(), expected_positions)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_cuda_forward_equals_cpu_without_a_host_sync(scheme, dtype):
    """The forward on CUDA gives the CPU's numbers and never waits for the GPU (ids, masks and positions are
    checked by device asserts): `torch.cuda.set_sync_debug_mode("error")` turns any synchronization into an error."""
    model = tiny_model(scheme, dtype)
    with torch.no_grad():
        expected = outputs(model, forward_inputs("cpu"))
    model.cuda()
    calls = forward_inputs("cuda")
    with torch.no_grad():
        outputs(model, calls)  # the first call on a device may fill per-device caches (rotary's inv_freq)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.no_grad():
            results = outputs(model, calls)
        results_with_grad = outputs(model, calls[:1])  # the path autograd records
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert_equal_on_cpu(results, expected)
    assert_equal_on_cpu(results_with_grad, expected[:1])


@pytest.mark.cuda
@needs_cuda
def test_cuda_gradients_equal_cpu():
    """Within float32 rounding: CUDA's embedding backward and batch sums add in another order than the CPU's."""
    model = tiny_model("absolute")
    ids = torch.randint(0, 99, (13, 7), generator=torch.Generator().manual_seed(1))
    weight = torch.randn(13, 7, 32, generator=torch.Generator().manual_seed(2))
    (model(ids).last_hidden_state * weight).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    model.cuda()
    (model(ids.cuda()).last_hidden_state * weight.cuda()).sum().backward()
    for got, want in zip((p.grad for p in model.parameters()), expected, strict=True):
        torch.testing.assert_close(got.cpu(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.slow
@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_compiled_equals_eager_without_a_host_sync(dtype):
    """torch.compile on CUDA (one fused Triton kernel for gather + add): the eager numbers, and once compiled,
    no synchronization per call."""
    torch._dynamo.reset()
    model = tiny_model("absolute", dtype).cuda()
    compiled = torch.compile(model, fullgraph=True)
    calls = forward_inputs("cuda")[:2]
    with torch.no_grad():
        expected = [model(**call).last_hidden_state for call in calls]
        for call in calls:
            compiled(**call)  # compiles (and may synchronize while it tunes)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            got = [compiled(**call).last_hidden_state for call in calls]
        finally:
            torch.cuda.set_sync_debug_mode("default")
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


BAD_ID_ON_CUDA = """
import torch
from hf_embed import HfEmbedConfig, HfEmbedModel
model = HfEmbedModel(HfEmbedConfig.from_preset("tiny")).cuda()
model(torch.tensor([[1, 99]], device="cuda"))
torch.cuda.synchronize()
"""


@pytest.mark.cuda
@pytest.mark.slow
@needs_cuda
def test_cuda_bad_id_is_a_device_assert_naming_the_limit():
    """On CUDA the id check is an asynchronous device assert (it fails the process's CUDA context, so it runs in a
    subprocess): the error names the vocabulary size."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", BAD_ID_ON_CUDA], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode != 0
    # CUDA prints a failed device assert with its message (`Assertion `...` failed`), then torch raises.
    assert "a token id is outside the vocabulary (size 99)" in result.stdout + result.stderr
