"""Pictures of what a model's tables hold, drawn with matplotlib (the optional extra `hf-embed[plot]`).

- `position_similarity_figure`: cosine similarity between the vectors of every pair of positions (of every
  pair of clipped distances for the relative scheme): a heatmap with position numbers on the axes and a
  labelled colour bar.
- `token_map_figure`: chosen tokens' embeddings projected to 2-D with PCA (`torch.pca_lowrank`), labelled.
- `save_figure`: writes a figure as PNG, SVG or PDF (from the suffix), published whole by `atomic_write`.

The figures are `matplotlib.figure.Figure` objects made without pyplot, so nothing here touches pyplot's
global state or needs a display.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from .atomic_write import write_file_atomically
from .modeling_hf_embed import HfEmbedModel
from .position_embeddings import (
    LearnedPositionEmbedding,
    RelativePositionEmbedding,
    RotaryPositionEmbedding,
    SinusoidalPositionEmbedding,
)
from .validation import check_range

DEFAULT_PLOT_POSITIONS = 1024  # without `num_positions`: max_position_embeddings up to this (Llama 3.1: 131072)
MAX_PLOT_POSITIONS = 8192  # an (N, N) float32 similarity matrix of 256 MiB
FIGURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL_HINT = "pip install 'hf-embed[plot]' (or pip install matplotlib)"
# Dates and tool versions left out of the files, so that the same figure gives the same bytes.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}, "pdf": {"CreationDate": None}}


def require_matplotlib() -> None:
    """Check that matplotlib can be imported.

    Raises:
        ImportError: it is missing, with the install command.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"pictures need matplotlib, which is not installed: {INSTALL_HINT}") from None


def figure_format(path: str | Path) -> str:
    """The picture format `path`'s suffix asks for.

    Args:
        path: the picture's path.

    Returns:
        "png", "svg" or "pdf".

    Raises:
        ValueError: any other suffix, naming the path and the formats.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise ValueError(
            f"{path}: pictures are written as {', '.join(FIGURE_FORMATS)} (chosen by the suffix), got "
            f"{suffix or 'no suffix'!r}"
        )
    return FIGURE_FORMATS[suffix]


@torch.no_grad()
def position_vectors(model: HfEmbedModel, num_positions: int | None = None) -> torch.Tensor:
    """(N, d) one vector per position (per clipped distance -k..k for the relative scheme), float32.

    absolute / sinusoidal: the table's rows; rotary: `[cos, sin]` at each position, as the scheme computes them
    (scaled by its `rope_parameters`; their dot product depends only on the distance between positions); relative:
    the 2k + 1 distance embeddings.

    Args:
        model: the model.
        num_positions: how many positions (default max_position_embeddings, at most 1024).

    Returns:
        (N, d) float32.

    Raises:
        ValueError: more positions than the model has or a picture can show, a scheme that encodes no positions.
    """
    wpe = model.embeddings.wpe
    n = num_positions or min(model.config.max_position_embeddings, DEFAULT_PLOT_POSITIONS)
    if n > model.config.max_position_embeddings:
        raise ValueError(f"{n} positions exceed max_position_embeddings ({model.config.max_position_embeddings})")
    if n > MAX_PLOT_POSITIONS:
        raise ValueError(f"{n} positions would make a {n} x {n} picture; at most {MAX_PLOT_POSITIONS}")
    if isinstance(wpe, LearnedPositionEmbedding):
        return wpe.weight[:n].detach().float()
    if isinstance(wpe, SinusoidalPositionEmbedding):
        return wpe.table[:n].float()
    if isinstance(wpe, RotaryPositionEmbedding):
        cos, sin = wpe(torch.arange(n).unsqueeze(0))  # (1, N, d) each, float32
        return torch.cat((cos[0], sin[0]), dim=-1)
    if isinstance(wpe, RelativePositionEmbedding):
        return wpe.weight.detach().float()
    raise ValueError(f"position_embedding_type={model.config.position_embedding_type!r} encodes no positions")


def cosine_similarity_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarities between every pair of vectors.

    Args:
        vectors: (N, d).

    Returns:
        (N, N) float32.
    """
    unit = F.normalize(vectors.float(), dim=-1)
    return unit @ unit.T


POSITION_VECTORS = {
    "absolute": "learned position rows (wpe)",
    "sinusoidal": "fixed sinusoidal rows",
    "rotary": "[cos, sin] of each position",
    "relative": "learned embeddings of clipped distances",
}


def position_similarity_figure(model: HfEmbedModel, num_positions: int | None = None, *, name: str = "model"):
    """A heatmap of position-to-position cosine similarity.

    Args:
        model: the model whose position scheme to draw.
        num_positions: how many positions (default: `max_position_embeddings`); the relative scheme always
            shows its 2k + 1 distances.
        name: what the title calls the model (a folder name, a preset).

    Returns:
        `(figure, similarity)`: the `matplotlib.figure.Figure` and the (N, N) matrix it shows.

    Raises:
        ImportError: matplotlib is missing (with the install command).
        ValueError: a scheme without positions (`none`), or more positions than the model has.
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    config = model.config
    scheme = config.position_embedding_type
    similarity = cosine_similarity_matrix(position_vectors(model, num_positions))  # (N, N)
    n = similarity.shape[0]
    figure = Figure(figsize=(6.4, 5.4), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    if scheme == "relative":
        k = (n - 1) // 2
        extent, what = (-k - 0.5, k + 0.5, k + 0.5, -k - 0.5), "clipped distance (key - query)"
    else:
        extent, what = (-0.5, n - 0.5, n - 0.5, -0.5), "position"
    image = ax.imshow(
        similarity.numpy(), cmap="RdBu_r", vmin=-1, vmax=1, extent=extent, interpolation="nearest", aspect="equal"
    )
    ax.set_xlabel(what)
    ax.set_ylabel(what)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 4, 5, 8, 10], integer=True))
    head = f", head_dim {config.position_dim}" if scheme in ("rotary", "relative") else ""
    ax.set_title(f"{name}: {scheme} positions{head}\ncosine similarity of the {POSITION_VECTORS[scheme]}", fontsize=11)
    bar = figure.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label("cosine similarity")
    return figure, similarity


@torch.no_grad()
def token_projection(model: HfEmbedModel, token_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows of `token_ids` in the token table, projected onto their first two principal components.

    PCA by `torch.pca_lowrank` (centered, with as many components as the rows allow, so the projection is
    exact, and a fixed seed for its random start: the same call gives the same picture). Each axis is
    oriented so that the token farthest along it lies on its positive side.

    Args:
        model: the model whose token table is projected.
        token_ids: the tokens.

    Returns:
        `(coordinates, explained)`: (N, 2) float32 coordinates, and the fraction of the total variance each of
        the two axes holds.

    Raises:
        ValueError: fewer than 3 distinct ids, or an id outside the table.
    """
    vocab = model.config.vocab_size
    if len(set(token_ids)) != len(token_ids) or len(token_ids) < 3:
        raise ValueError(f"give at least 3 distinct tokens to project (got ids {token_ids})")
    ids = torch.tensor(token_ids)  # (N,)
    check_range(ids, vocab, "token id", f"the vocabulary (size {vocab})")
    rows = model.get_input_embeddings()(ids).float()  # (N, D)
    q = min(rows.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, s, v = torch.pca_lowrank(rows, q=q, center=True, niter=4)  # v: (D, q)
    coordinates = (rows - rows.mean(0)) @ v[:, :2]  # (N, 2)
    farthest = coordinates.abs().argmax(0)  # (2,)
    coordinates *= torch.where(coordinates[farthest, torch.arange(2)] < 0, -1.0, 1.0)  # (2,) signs
    total = (rows - rows.mean(0)).pow(2).sum()
    explained = s[:2].pow(2) / total if total > 0 else torch.zeros(2)
    return coordinates, explained


def token_map_figure(
    model: HfEmbedModel, token_ids: list[int], labels: list[str], *, name: str = "model", caption: str | None = None
):
    """Chosen tokens' embeddings (`wte` rows) in 2-D by PCA, each point labelled; `caption` goes under the plot.

    Args:
        model: the model whose token table is shown.
        token_ids: the tokens (at least 3 distinct).
        labels: one label per token.
        name: the model's name in the title.
        caption: a line under the plot.

    Returns:
        `(figure, coordinates)`: the `matplotlib.figure.Figure` and the (N, 2) coordinates it shows.

    Raises:
        ValueError: as `token_projection`. ImportError: matplotlib is missing.
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    coordinates, explained = token_projection(model, token_ids)
    figure = Figure(figsize=(6.4, 5.4), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    x, y = coordinates[:, 0].tolist(), coordinates[:, 1].tolist()
    ax.scatter(x, y, s=18, color="tab:blue")
    for xi, yi, label in zip(x, y, labels, strict=True):
        ax.annotate(label, (xi, yi), xytext=(4, 3), textcoords="offset points", fontsize=9)
    ax.margins(0.12)
    ax.axhline(0, color="0.85", linewidth=0.8, zorder=0)
    ax.axvline(0, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlabel(f"first principal component ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"second principal component ({explained[1]:.0%})")
    ax.set_title(f"{name}: token embeddings (wte) of {len(token_ids)} tokens, PCA to 2-D", fontsize=11)
    if caption:
        figure.supxlabel(caption, fontsize=8, color="0.35")  # constrained layout makes room for it
    return figure, coordinates


def save_figure(figure, path: str | Path) -> None:
    """Write `figure` as PNG, SVG or PDF, as the suffix of `path` says; never half a file (`write_file_atomically`).

    Args:
        figure: a `matplotlib.figure.Figure`.
        path: where to write it.

    Raises:
        ValueError: an unknown suffix. OutputLockedError: another writer holds the path.
    """
    kind = figure_format(path)

    import matplotlib

    def write(temporary: str) -> None:
        # a fixed salt for the SVG's element ids (random otherwise): the same figure, the same bytes
        with open(temporary, "wb") as f, matplotlib.rc_context({"svg.hashsalt": "hf-embed"}):
            figure.savefig(f, format=kind, metadata=_METADATA[kind])

    write_file_atomically(path, write)


def plot_position_similarity(
    model: HfEmbedModel, path: str | Path, num_positions: int | None = None, *, name: str = "model"
) -> torch.Tensor:
    """Write the position-similarity heatmap of `model` to `path` (PNG, SVG or PDF).

    Args:
        model: the model whose position scheme is shown.
        path: the picture's path; its suffix chooses the format.
        num_positions: how many positions (default max_position_embeddings, at most 1024).
        name: the model's name in the title.

    Returns:
        The (N, N) cosine-similarity matrix the picture shows.

    Raises:
        ValueError: an unknown suffix, too many positions, a scheme that encodes no positions.
        ImportError: matplotlib is missing.
    """
    figure_format(path)
    figure, similarity = position_similarity_figure(model, num_positions, name=name)
    save_figure(figure, path)
    return similarity


__all__ = [
    "FIGURE_FORMATS",
    "cosine_similarity_matrix",
    "figure_format",
    "plot_position_similarity",
    "position_similarity_figure",
    "position_vectors",
    "require_matplotlib",
    "save_figure",
    "token_map_figure",
    "token_projection",
]
