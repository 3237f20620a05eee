"""Publishing: a model card and one-call pushes of model + tokenizer to the Hugging Face Hub."""

from __future__ import annotations

import tempfile
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData

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
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("{{ repo_id }}", trust_remote_code=True)  # or `import hf_embed` first
tokenizer = AutoTokenizer.from_pretrained("{{ repo_id }}")
embeddings = model(**tokenizer("Hello world", return_tensors="pt")).last_hidden_state
```

## How it was made

{{ how_made }}
"""

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
    """A model card for an hf-embed model: metadata for the Hub, sizes, a usage snippet, provenance."""
    config = model.config
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag="feature-extraction",
        license=license,
        tags=["hf-embed", "embeddings", "gpt2", f"positions-{config.position_embedding_type}", *(tags or [])],
    )
    tokenizer_note = f", tokenizer included ({type(tokenizer).__name__})" if tokenizer is not None else ""
    return ModelCard.from_template(
        data,
        template_str=CARD_TEMPLATE,
        model_name=repo_id.split("/")[-1],
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
    Returns `huggingface_hub.CommitInfo`.
    """
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        model_card(model, repo_id, tokenizer, license=license, how_made=how_made).save(Path(folder) / "README.md")
        return api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message=commit_message, revision=revision)


__all__ = ["model_card", "push"]
