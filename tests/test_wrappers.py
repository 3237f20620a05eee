"""The embedding stage inside the wrappers and engines people train with: hooks, accelerate's offloading, PEFT.

Every position scheme does its work in its module's `forward`, so whatever wraps or hooks `wte` and `wpe` sees
it. Each test compares with the plain model, exactly where the arithmetic is the same.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from helpers import SCHEMES, assert_same_positions, model_for
from hf_embed import HfEmbedModel
from hf_embed.position_embeddings import LearnedPositionEmbedding, PositionEmbedding

ADDED = ("absolute", "sinusoidal")  # schemes whose rows are added to the token rows


def calls(model, ids):
    """The calls each test compares: default, explicit and left-padded positions, an incremental step."""
    mask = torch.ones_like(ids)
    mask[:4, :2] = 0
    return [
        model(ids),
        model(ids, position_ids=torch.randint(0, 16, ids.shape, generator=torch.Generator().manual_seed(3))),
        model(ids, attention_mask=mask),
        model(ids[:, :2], past_key_values_length=5),
    ]


def assert_same_outputs(outputs, expected):
    for out, ref in zip(outputs, expected, strict=True):
        assert torch.equal(out.last_hidden_state, ref.last_hidden_state)
        assert_same_positions(out.position_embeddings, ref.position_embeddings)


# --------------------------------------------------------------------------- hooks


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_is_a_position_embedding_module(scheme):
    wpe = model_for(scheme).embeddings.wpe
    assert isinstance(wpe, PositionEmbedding)
    if scheme in ("absolute", "relative"):
        assert isinstance(wpe, torch.nn.Embedding) and type(wpe).forward is torch.nn.Embedding.forward


@pytest.mark.parametrize("scheme", SCHEMES)
def test_hooks_on_wpe_fire(scheme, tiny_ids):
    model = model_for(scheme)
    seen = []
    wpe = model.embeddings.wpe
    handles = [
        wpe.register_forward_pre_hook(lambda module, args: seen.append("pre")),
        wpe.register_forward_hook(lambda module, args, out: seen.append("post")),
    ]
    expected = calls(model_for(scheme), tiny_ids)
    assert_same_outputs(calls(model, tiny_ids), expected)  # hooks that change nothing change nothing
    assert seen == ["pre", "post"] * 4
    for handle in handles:
        handle.remove()
    seen.clear()
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: seen.append(type(module).__name__)
    )
    try:
        model(tiny_ids)
    finally:
        handle.remove()
    assert type(wpe).__name__ in seen


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_hook_that_changes_the_output_is_honoured(scheme, tiny_ids):
    model = model_for(scheme)
    plain = model(tiny_ids)
    rows = model.embeddings.wpe(torch.arange(7).unsqueeze(0)) if scheme in ADDED else None  # (1, T, D), unhooked

    def double(module, args, out):
        if scheme == "none":
            return torch.ones(1)
        return tuple(2 * x for x in out) if isinstance(out, tuple) else 2 * out

    model.embeddings.wpe.register_forward_hook(double)
    hooked = model(tiny_ids)
    wte_rows = model.embeddings.wte(tiny_ids)
    if scheme in ADDED:
        assert torch.equal(hooked.last_hidden_state, wte_rows + 2 * rows)
    elif scheme == "rotary":
        assert_same_positions(hooked.position_embeddings, tuple(2 * x for x in plain.position_embeddings))
    elif scheme == "relative":
        assert torch.equal(hooked.position_embeddings, 2 * plain.position_embeddings)
    else:
        assert torch.equal(hooked.position_embeddings, torch.ones(1))


def test_a_pre_hook_that_changes_the_positions_is_honoured(tiny_ids):
    model = model_for("absolute")
    model.embeddings.wpe.register_forward_pre_hook(lambda module, args: (torch.zeros_like(args[0]),))
    table = model.embeddings.wpe.weight
    assert torch.equal(model(tiny_ids).last_hidden_state, F.embedding(tiny_ids, model.embeddings.wte.weight) + table[0])


def test_backward_hooks_on_wpe_fire(tiny_ids):
    model = model_for("absolute")
    grads = []
    model.embeddings.wpe.register_full_backward_hook(lambda module, grad_in, grad_out: grads.append(grad_out[0]))
    weight = torch.randn(13, 7, 32)
    (model(tiny_ids).last_hidden_state * weight).sum().backward()
    assert len(grads) == 1 and torch.equal(grads[0], weight.sum(0, keepdim=True))  # d loss / d rows (1, T, D)


# --------------------------------------------------------------------------- accelerate


OFFLOAD_MAPS = {
    "cpu": {"embeddings": "cpu"},
    "disk": {"embeddings": "disk"},
    "wpe-on-disk": {"embeddings.wte": "cpu", "embeddings.wpe": "disk", "embeddings.drop": "cpu"},
}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("where", list(OFFLOAD_MAPS))
def test_device_map_offload_equals_the_plain_model(scheme, where, tmp_path, tiny_ids):
    pytest.importorskip("accelerate")
    model = model_for(scheme)
    model.save_pretrained(tmp_path / "model")
    loaded = HfEmbedModel.from_pretrained(
        tmp_path / "model", device_map=OFFLOAD_MAPS[where], offload_folder=tmp_path / "offload"
    ).eval()
    if where != "cpu":  # really offloaded: the weights wait on disk, behind accelerate's hooks
        assert loaded.embeddings.wte.weight.is_meta == (where == "disk")
        if scheme in ("absolute", "relative"):
            assert loaded.embeddings.wpe.weight.is_meta
    with torch.no_grad():
        assert_same_outputs(calls(loaded, tiny_ids), calls(model, tiny_ids))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_cpu_offload_equals_the_plain_model(scheme, tiny_ids):
    accelerate = pytest.importorskip("accelerate")
    model = model_for(scheme)
    offloaded = copy.deepcopy(model)
    accelerate.cpu_offload(offloaded, execution_device="cpu")
    assert offloaded.embeddings.wte.weight.is_meta
    with torch.no_grad():
        assert_same_outputs(calls(offloaded, tiny_ids), calls(model, tiny_ids))


# --------------------------------------------------------------------------- PEFT


@pytest.mark.parametrize("targets", [["wte"], ["wpe"], ["wte", "wpe"]])
def test_lora_trains_saves_reloads_and_merges(targets, tmp_path, tiny_ids):
    peft = pytest.importorskip("peft")
    model = peft.get_peft_model(model_for("absolute"), peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets))
    for name in targets:
        assert type(getattr(model.base_model.model.embeddings, name)).__module__.startswith("peft.")
    # A target the adapters can reach: the same tables with a rank-2 change to each targeted one.
    target_model = model_for("absolute")
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name in targets:
            table = getattr(target_model.embeddings, name).weight
            low_rank = torch.randn(table.shape[0], 2, generator=generator) @ torch.randn(2, 32, generator=generator)
            table += 0.05 * low_rank
        target = target_model(tiny_ids).last_hidden_state

    adapters = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    assert adapters and all("lora" in name for name in adapters)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.1)
    losses = []
    for _ in range(60):
        loss = F.mse_loss(model(tiny_ids).last_hidden_state, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses[::10]
    for name, before in adapters.items():
        if "lora_embedding_B" in name or "lora_embedding_A" in name:
            assert not torch.equal(dict(model.named_parameters())[name], before), name
    with torch.no_grad():
        adapted = model(tiny_ids).last_hidden_state

    model.save_pretrained(tmp_path / "adapter")
    reloaded = peft.PeftModel.from_pretrained(model_for("absolute"), tmp_path / "adapter").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(tiny_ids).last_hidden_state, adapted)
        merged = reloaded.merge_and_unload()
        assert type(merged.embeddings.wpe) is LearnedPositionEmbedding  # a stock table again: the fast path
        assert type(merged.embeddings.wte) is torch.nn.Embedding
        torch.testing.assert_close(merged(tiny_ids).last_hidden_state, adapted, rtol=1e-6, atol=1e-6)
