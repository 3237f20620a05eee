"""Pictures: heatmaps whose pixels are the similarities, token maps that are the PCA, files that decode."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import pytest
import torch

from hf_embed import HfEmbedConfig, HfEmbedModel
from hf_embed.cli import main
from hf_embed.position_embeddings import sinusoid_table
from hf_embed.visualize import (
    cosine_similarity_matrix,
    plot_position_similarity,
    position_similarity_figure,
    position_vectors,
    save_figure,
    token_map_figure,
    token_projection,
)

matplotlib = pytest.importorskip("matplotlib", reason="pictures need matplotlib (pip install 'hf-embed[plot]')")
Image = pytest.importorskip("PIL.Image", reason="decoding the PNGs needs Pillow (a matplotlib dependency)")

WIDTH, HEIGHT = 640, 540  # figsize (6.4, 5.4) at 100 dpi


def rendered(figure) -> torch.Tensor:
    """(H, W, 4) uint8 pixels of a figure drawn by Agg, as a PNG of it would hold them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return torch.frombuffer(bytearray(canvas.buffer_rgba()), dtype=torch.uint8).view(HEIGHT, WIDTH, 4)


@pytest.mark.slow
def test_heatmap_pixels_are_the_similarities():
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="sinusoidal"))
    figure, similarity = position_similarity_figure(model, name="tiny")
    torch.testing.assert_close(similarity, cosine_similarity_matrix(sinusoid_table(16, 32)).float(), rtol=0, atol=1e-6)
    pixels = rendered(figure)
    ax = figure.axes[0]
    image = ax.get_images()[0]
    n = similarity.shape[0]
    for i in range(n):
        for j in range(n):
            x, y = ax.transData.transform((j, i))  # the centre of cell (i, j), in display pixels from the bottom
            shown = pixels[HEIGHT - 1 - round(y), round(x), :3].float()
            expected = torch.tensor(image.cmap(image.norm(similarity[i, j].item()))[:3]) * 255
            assert (shown - expected).abs().max() <= 2, (i, j, shown, expected)
    title = ax.get_title()
    assert title.startswith("tiny: sinusoidal positions") and "cosine similarity" in title
    assert ax.get_xlabel() == ax.get_ylabel() == "position"
    ticks = [t for t in ax.get_xticks() if 0 <= t <= n - 1]
    assert ticks and all(float(t).is_integer() for t in ticks)  # position numbers
    assert figure.axes[1].get_ylabel().startswith("cosine similarity")  # the colour bar is labelled
    assert figure.axes[1].get_ylim() == (-1.0, 1.0)


@pytest.mark.parametrize("scheme", ["absolute", "sinusoidal", "rotary", "relative"])
def test_every_scheme_draws_with_numbered_axes(scheme):
    config = HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, max_relative_distance=3, head_dim=8)
    figure, similarity = position_similarity_figure(HfEmbedModel(config), name="m")
    ax = figure.axes[0]
    assert ax.get_title().startswith(f"m: {scheme} positions")
    if scheme == "relative":
        assert similarity.shape == (7, 7) and ax.get_xlabel().startswith("clipped distance")
        assert ax.get_images()[0].get_extent() == [-3.5, 3.5, 3.5, -3.5]  # distances -3..3 on the axes
    else:
        assert similarity.shape == (16, 16) and ax.get_xlabel() == "position"
    if scheme in ("rotary", "relative"):
        assert "head_dim 8" in ax.get_title()


@pytest.mark.slow
def test_files_decode_with_the_expected_size_and_format(tmp_path):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary"))
    for suffix in ("png", "svg", "pdf"):
        plot_position_similarity(model, tmp_path / f"p.{suffix}", name="tiny")
        plot_position_similarity(model, tmp_path / f"again.{suffix}", name="tiny")
        assert (tmp_path / f"p.{suffix}").read_bytes() == (tmp_path / f"again.{suffix}").read_bytes()  # no dates
    with Image.open(tmp_path / "p.png") as png:
        assert png.format == "PNG" and png.size == (WIDTH, HEIGHT)
        png.load()
    root = ET.parse(tmp_path / "p.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("460.8pt", "388.8pt")  # 6.4 x 5.4 inches
    pdf = (tmp_path / "p.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/MediaBox [ 0 0 460.8 388.8 ]" in pdf
    with pytest.raises(ValueError, match=r"x\.jpg: pictures are written as \.png, \.svg, \.pdf"):
        plot_position_similarity(model, tmp_path / "x.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}.{suffix}" for stem in ("p", "again") for suffix in ("png", "svg", "pdf")
    )


@pytest.mark.parametrize(("scheme", "n"), [("absolute", 16), ("sinusoidal", 16), ("rotary", 16), ("relative", 7)])
def test_position_vectors(scheme, n):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, max_relative_distance=3))
    vectors = position_vectors(model)
    assert vectors.shape[0] == n
    similarity = cosine_similarity_matrix(vectors)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(n), rtol=0, atol=1e-5)
    if scheme in ("sinusoidal", "rotary"):  # depends on the distance only: a Toeplitz matrix
        torch.testing.assert_close(similarity[1:, 1:], similarity[:-1, :-1], rtol=0, atol=1e-5)


def test_token_projection_is_the_pca():
    torch.manual_seed(0)
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    ids = [3, 10, 11, 40, 41, 42, 77]
    coordinates, explained = token_projection(model, ids)
    rows = model.embeddings.wte.weight[ids].detach()
    centred = rows - rows.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)  # the reference: PCA by a full SVD
    reference = centred @ vh[:2].T  # (7, 2)
    signs = torch.sign((coordinates * reference).sum(0))  # each axis is the reference's, up to its sign
    torch.testing.assert_close(coordinates, reference * signs, rtol=0, atol=1e-4)
    torch.testing.assert_close(explained, s[:2] ** 2 / (s**2).sum(), rtol=0, atol=1e-5)
    again, _ = token_projection(model, ids)
    assert torch.equal(again, coordinates)  # the random start is seeded: the same picture every time
    farthest = coordinates.abs().argmax(0)
    assert (coordinates[farthest, torch.arange(2)] > 0).all()  # oriented: the farthest token on the positive side
    with pytest.raises(ValueError, match="at least 3 distinct tokens"):
        token_projection(model, [1, 2, 2])
    with pytest.raises(ValueError, match=r"token id 99 at position 2 is outside the vocabulary \(size 99\)"):
        token_projection(model, [1, 2, 99])


def test_token_map_separates_planted_groups(tmp_path):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny"))
    with torch.no_grad():
        table = model.embeddings.wte.weight
        table[:] = torch.randn(99, 32, generator=torch.Generator().manual_seed(1)) * 0.01
        table[[1, 2, 3]] += 1.0  # one group far from the other along every axis
    figure, coordinates = token_map_figure(model, [1, 2, 3, 4, 5, 6], list("abcdef"), name="planted")
    first = coordinates[:, 0]
    assert (first[:3] > 0).all() == (first[3:] < 0).all() and first[:3].sign().unique().numel() == 1
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.texts] == list("abcdef")
    assert ax.get_title() == "planted: token embeddings (wte) of 6 tokens, PCA to 2-D"
    assert ax.get_xlabel().startswith("first principal component (") and "% of the variance" in ax.get_xlabel()
    save_figure(figure, tmp_path / "tokens.png")
    with Image.open(tmp_path / "tokens.png") as png:
        assert png.size == (WIDTH, HEIGHT)


@pytest.mark.slow
def test_cli_plot_positions(tmp_path, capsys):
    model_dir = tmp_path / "model"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary")).save_pretrained(model_dir)
    out = tmp_path / "rotary.png"
    assert main(["plot-positions", "--model", str(model_dir), "--positions", "8", "--output", str(out)]) == 0
    assert capsys.readouterr().out == f"rotary: 8 x 8 cosine similarities of positions -> {out}\n"
    with Image.open(out) as png:
        assert png.size == (WIDTH, HEIGHT)
    svg = tmp_path / "relative.svg"
    args = ["--preset", "tiny", "--position-embedding-type", "relative", "--output", str(svg)]
    assert main(["plot-positions", *args]) == 0
    assert ET.parse(svg).getroot().tag.endswith("svg")
    capsys.readouterr()
    assert main(["plot-positions", "--preset", "tiny", "--position-embedding-type", "none"]) == 1
    assert "encodes no positions" in capsys.readouterr().err
    assert main(["plot-positions", "--preset", "tiny", "--positions", "99", "--output", str(out)]) == 1
    assert "99 positions exceed max_position_embeddings (16)" in capsys.readouterr().err


@pytest.mark.slow
def test_scaled_rope_is_what_is_plotted(tmp_path, capsys):
    """The rotary picture is the scheme's own (cos, sin): a scaling rule changes it; the CLI takes rope_parameters."""
    default = HfEmbedModel(
        HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary", max_position_embeddings=64)
    )
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
    scaled = HfEmbedModel(
        HfEmbedConfig.from_preset(
            "tiny", position_embedding_type="rotary", max_position_embeddings=64, rope_parameters=yarn
        )
    )
    cos, sin = scaled.embeddings.wpe(torch.arange(64).unsqueeze(0))
    assert torch.equal(position_vectors(scaled), torch.cat((cos[0], sin[0]), dim=-1))
    assert not torch.allclose(position_vectors(scaled), position_vectors(default))

    out = tmp_path / "yarn.png"
    rope = '{"rope_type": "linear", "factor": 4.0}'
    assert main(["plot-positions", "--preset", "tiny", "--rope-parameters", rope, "--output", str(out)]) == 0
    assert "rotary (linear): 16 x 16 cosine similarities of positions" in capsys.readouterr().out
    assert main(["plot-positions", "--preset", "llama-3.1-8b", "--output", str(out)]) == 0  # no 2 GB token table
    assert "rotary (llama3): 1024 x 1024" in capsys.readouterr().out  # at most 1024 positions by default
    with pytest.raises(SystemExit) as exit_info:
        main(["plot-positions", "--preset", "tiny", "--rope-parameters", "[1, 2]"])
    assert exit_info.value.code == 2
    assert main(["plot-positions", "--preset", "llama-3.1-8b", "--positions", "9000", "--output", str(out)]) == 1
    assert "9000 positions would make a 9000 x 9000 picture; at most 8192" in capsys.readouterr().err


def test_cli_refuses_a_bad_picture_before_any_work(tmp_path, capsys, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(HfEmbedModel, "from_pretrained", no_loading)
    jpg = tmp_path / "x.jpg"
    with pytest.raises(SystemExit) as exit_info:  # a usage error, while the arguments are parsed
        main(["plot-positions", "--model", str(tmp_path), "--output", str(jpg)])
    assert exit_info.value.code == 2
    assert f"argument --output: '{jpg}' must end in .png or .svg or .pdf" in capsys.readouterr().err
    assert main(["plot-tokens", str(tmp_path / "nope"), "--ids", "1", "2", "3"]) == 1
    assert capsys.readouterr().err == f"hf-embed plot-tokens: error: {tmp_path / 'nope'}: no such folder\n"
    assert main(["plot-positions", "--model", str(tmp_path), "--output", str(tmp_path / "p.png")]) == 1
    assert f"--model {tmp_path}: no config.json, so it is not a saved model folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_says_how_to_install_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what Python does for a module that cannot be imported
    model_dir = tmp_path / "model"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny")).save_pretrained(model_dir)
    for argv in (
        ["plot-positions", "--preset", "tiny", "--output", str(tmp_path / "p.png")],
        ["plot-tokens", str(model_dir), "--ids", "1", "2", "3", "--output", str(tmp_path / "t.png")],
    ):
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            f"hf-embed {argv[0]}: error: pictures need matplotlib, which is not installed: "
            "pip install 'hf-embed[plot]' (or pip install matplotlib)\n"
        )
    with pytest.raises(ImportError, match=r"pip install 'hf-embed\[plot\]'"):  # the library says the same
        position_similarity_figure(HfEmbedModel(HfEmbedConfig.from_preset("tiny")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.slow
def test_cli_plot_tokens(tmp_path, capsys):
    from hf_embed import gpt2_tokenizer

    folder = tmp_path / "model"
    assert main(["init", "--preset", "tiny", "--output", str(folder)]) == 0
    capsys.readouterr()
    out = tmp_path / "tokens.pdf"
    tokens = [" king", " queen", " man", " woman", "\n"]
    assert main(["plot-tokens", str(folder), "--tokens", *tokens, "--output", str(out)]) == 0
    assert capsys.readouterr().out == f"5 tokens of {folder}, PCA to 2-D -> {out}\n"
    assert out.read_bytes().startswith(b"%PDF-")
    assert main(["plot-tokens", str(folder), "--tokens", " king", "unbelievably", "--output", str(out)]) == 1
    assert "--tokens 'unbelievably' is 4 tokens ['un', 'bel', 'iev', 'ably']" in capsys.readouterr().err
    ids = gpt2_tokenizer()(" king queen")["input_ids"] + [0]
    assert main(["plot-tokens", str(folder), "--ids", *map(str, ids), "--output", str(tmp_path / "i.png")]) == 0
