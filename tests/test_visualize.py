"""The position heatmap: a valid PNG whose pixels are the cosine similarities."""

from __future__ import annotations

import struct
import zlib

import pytest
import torch

from hf_embed import HfEmbedConfig, HfEmbedModel
from hf_embed.cli import main
from hf_embed.position_embeddings import sinusoid_table
from hf_embed.visualize import cosine_similarity_matrix, plot_position_similarity, position_vectors


def read_png(path) -> torch.Tensor:
    """Decode an 8-bit RGB, filter-0 PNG (what `write_png` writes) into (H, W, 3) uint8."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, color) == (8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * (3 * width + 1) : (r + 1) * (3 * width + 1)] for r in range(height)]
    assert all(row[0] == 0 for row in rows)
    return torch.tensor([list(row[1:]) for row in rows], dtype=torch.uint8).view(height, width, 3)


def test_heatmap_pixels_are_the_similarities(tmp_path):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="sinusoidal"))
    similarity = plot_position_similarity(model, tmp_path / "p.png", size=64)
    expected = cosine_similarity_matrix(sinusoid_table(16, 32))
    torch.testing.assert_close(similarity, expected.float(), rtol=0, atol=1e-6)
    image = read_png(tmp_path / "p.png")
    assert image.shape == (64, 64, 3)  # 16 positions, 4 pixels each
    assert image[0, 0].tolist() == [178, 23, 43]  # similarity 1: the red end
    red = 255 - image[::4, ::4, 1].float()  # green falls from 255 (white, 0) to 23 (red, +1)
    torch.testing.assert_close(red / (255 - 23), similarity.clamp(min=0), rtol=0, atol=0.01)


@pytest.mark.parametrize(("scheme", "n"), [("absolute", 16), ("sinusoidal", 16), ("rotary", 16), ("relative", 7)])
def test_position_vectors(scheme, n):
    model = HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type=scheme, max_relative_distance=3))
    vectors = position_vectors(model)
    assert vectors.shape[0] == n
    similarity = cosine_similarity_matrix(vectors)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(n), rtol=0, atol=1e-5)
    if scheme in ("sinusoidal", "rotary"):  # depends on the distance only: a Toeplitz matrix
        torch.testing.assert_close(similarity[1:, 1:], similarity[:-1, :-1], rtol=0, atol=1e-5)


def test_cli_plot_positions(tmp_path, capsys):
    model_dir = tmp_path / "model"
    HfEmbedModel(HfEmbedConfig.from_preset("tiny", position_embedding_type="rotary")).save_pretrained(model_dir)
    out = tmp_path / "rotary.png"
    assert main(["plot-positions", "--model", str(model_dir), "--positions", "8", "--output", str(out)]) == 0
    assert "rotary: 8 x 8 cosine similarities of positions" in capsys.readouterr().out
    assert read_png(out).shape[0] == 512
    assert main(["plot-positions", "--preset", "tiny", "--position-embedding-type", "none"]) == 1
    assert "encodes no positions" in capsys.readouterr().err
    assert main(["plot-positions", "--preset", "tiny", "--positions", "99", "--output", str(out)]) == 1
    assert "99 positions exceed max_position_embeddings (16)" in capsys.readouterr().err


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
