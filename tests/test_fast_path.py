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
from hf_embed.modeling_hf_embed import _is_stock_embedding, _stock_position_table
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
