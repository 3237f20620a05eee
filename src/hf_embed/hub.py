"""Publishing: a model card and one-call pushes of model + tokenizer to the Hugging Face Hub."""

from __future__ import annotations

import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HfHubHTTPError

from .modeling_hf_embed import HfEmbedPreTrainedModel

CARD_TEMPLATE = """\
---
{{ card_data }}
---

# {{ model_name }}

The embedding stage of a GPT-style language model, made with hf-embed: token embeddings
(`wte`){{ position_sentence }}
-> `(batch, seq_len, {{ hidden_size }})`.

| | |
| --- | --- |
| vocabulary | {{ vocab_size }} tokens{{ tokenizer_note }} |
| hidden size | {{ hidden_size }} |
| positions | `{{ position_embedding_type }}`, up to {{ max_position_embeddings }} |
| parameters | {{ num_parameters }} |
| dtype | {{ dtype }} |

## Usage

```python
{{ usage }}
```

`trust_remote_code=True` runs the model code stored in this repository (`modeling_hf_embed.py` and the files it
imports); with hf-embed installed and `import hf_embed` first, the installed package's code is used instead.

## How it was made

{{ how_made }}
"""

HOW_TO_GIVE_A_TOKEN = "with `--token` (`token=` in Python), the HF_TOKEN environment variable, or `hf auth login`"

# The card's usage lines, run as written by tests/test_hub.py in a process where hf_embed cannot be imported.
# The tokenizer needs trust_remote_code too: AutoTokenizer reads config.json, whose auto_map names remote code.
USAGE_WITH_TOKENIZER = """\
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained("{repo_id}", trust_remote_code=True)
inputs = tokenizer(["Hello world", "An embedding per token"], padding=True, truncation=True, return_tensors="pt")
embeddings = model(**inputs).last_hidden_state  # (batch, seq_len, {hidden_size})
print(embeddings.shape)"""

USAGE_WITHOUT_TOKENIZER = """\
import torch
from transformers import AutoModel

model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)
input_ids = torch.tensor([[0, 1, 2]])  # ids of your tokenizer (none is stored with this model)
embeddings = model(input_ids).last_hidden_state  # (batch, seq_len, {hidden_size})
print(embeddings.shape)"""

POSITION_SENTENCES = {
    "absolute": " plus GPT-2's learned absolute position embeddings (`wpe`)",
    "sinusoidal": " plus fixed sinusoidal position embeddings (Vaswani et al. 2017)",
    "rotary": "; rotary position embeddings (`cos`, `sin`) are returned for attention layers",
    "relative": "; clipped relative position embeddings are returned for attention layers",
    "none": ", without position information",
}


def model_card(
    model: HfEmbedPreTrainedModel,
    repo_id: str,
    tokenizer=None,
    *,
    license: str = "apache-2.0",
    how_made: str | None = None,
    tags: list[str] | None = None,
) -> ModelCard:
    """A model card for an hf-embed model: metadata for the Hub, sizes, a usage snippet, provenance.

    Args:
        model: the model the card describes.
        repo_id: the Hub repository (`user/name`) the usage snippet loads.
        tokenizer: the tokenizer pushed with it, if any (the snippet then tokenizes text).
        license: the card's licence.
        how_made: a sentence on how the weights were made.
        tags: Hub tags besides hf-embed's own.

    Returns:
        The `huggingface_hub.ModelCard`.
    """
    config = model.config
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="feature-extraction",
        license=license,
        tags=["hf-embed", "embeddings", "gpt2", f"positions-{config.position_embedding_type}", *(tags or [])],
    )
    tokenizer_note = f", tokenizer included ({type(tokenizer).__name__})" if tokenizer is not None else ""
    usage = USAGE_WITH_TOKENIZER if tokenizer is not None else USAGE_WITHOUT_TOKENIZER
    return ModelCard.from_template(
        data,
        template_str=CARD_TEMPLATE,
        model_name=repo_id.split("/")[-1],
        usage=usage.format(repo_id=repo_id, hidden_size=config.hidden_size),
        repo_id=repo_id,
        position_sentence=POSITION_SENTENCES[config.position_embedding_type],
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        position_embedding_type=config.position_embedding_type,
        max_position_embeddings=config.max_position_embeddings,
        num_parameters=f"{model.num_parameters():,}",
        dtype=str(model.dtype).removeprefix("torch."),
        tokenizer_note=tokenizer_note,
        how_made=how_made or "Initialized with hf-embed; see the config for its settings.",
    )


def _save_tokenizer(tokenizer, folder: str, limit: int) -> None:
    """Save `tokenizer` claiming no more than the model's context as `model_max_length` (a tokenizer that claims
    1024 beside a 4-position model makes `truncation=True` cut too late); the caller's object is left as it was."""
    claimed = getattr(tokenizer, "model_max_length", None)
    if claimed is None or claimed <= limit:
        tokenizer.save_pretrained(folder)
        return
    tokenizer.model_max_length = limit
    try:
        tokenizer.save_pretrained(folder)
    finally:
        tokenizer.model_max_length = claimed


def push(
    model: HfEmbedPreTrainedModel,
    tokenizer,
    repo_id: str,
    *,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str = "Upload hf-embed model",
    license: str = "apache-2.0",
    how_made: str | None = None,
    revision: str | None = None,
):
    """Upload config, safetensors weights, the model code (`auto_map`), tokenizer files and a model card.

    Creates the repository when needed. An upload identical to the repository's head makes no commit.

    Args:
        model: the model to upload.
        tokenizer: its tokenizer (saved beside it with `model_max_length` at most the model's context, and named
            on the card), or None.
        repo_id: `user/name` or `org/name`.
        token: a Hub token; None takes `HF_TOKEN` or the token saved by `hf auth login`; False sends none.
        private, commit_message, license, how_made, revision: as their names say.

    Returns:
        `huggingface_hub.CommitInfo` of the upload (of the head when nothing changed).

    Raises:
        PermissionError: no token could be found, or the Hub refused the one given (401).
    """
    if token is None and get_token() is None:
        raise PermissionError(f"no Hugging Face token to push {repo_id}: give one {HOW_TO_GIVE_A_TOKEN}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as folder:
            model.save_pretrained(folder)
            if tokenizer is not None:
                _save_tokenizer(tokenizer, folder, model.config.max_position_embeddings)
            card = model_card(model, repo_id, tokenizer, license=license, how_made=how_made)
            card.save(Path(folder) / "README.md")
            return api.upload_folder(
                folder_path=folder, repo_id=repo_id, commit_message=commit_message, revision=revision
            )
    except HfHubHTTPError as error:
        if error.response is None or error.response.status_code != 401:
            raise
        said = (error.server_message or "").strip()
        raise PermissionError(
            f"the Hub at {api.endpoint} refused the token (401 Unauthorized{': ' + said if said else ''}): "
            f"give a valid one {HOW_TO_GIVE_A_TOKEN}"
        ) from error


__all__ = ["HOW_TO_GIVE_A_TOKEN", "model_card", "push"]
