"""Offline stand-ins for models that cannot be downloaded here: a tiny, randomly initialised cross-encoder.

    from agent_lightning.memory.tiny_models import build_tiny_cross_encoder
    path = build_tiny_cross_encoder(tmp_dir)        # a folder `CrossEncoder(path)` loads

No PyPI package carries a cross-encoder and the hub is unreachable, so the reranking path (loading a CrossEncoder
folder, scoring query/chunk pairs, reordering) is exercised with a 2-layer BERT built from a config, using the
word-piece tokenizer of the packaged MiniLM embedder. Its scores are random: it tests the mechanism, never the
quality of reranking. Tests and benchmarks/retrieval.py use it; nothing in training does.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_cross_encoder(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a tiny BERT sequence classifier (1 label) with MiniLM's tokenizer to `out_dir`; return the folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from agent_lightning.memory.embedder import resolve_model

    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(None))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_cross_encoder_from_embedder(out_dir: str | Path) -> Path:
    """A cross-encoder with the architecture and size of ms-marco-MiniLM-L-6-v2 (6 layers, 384 wide): MiniLM's
    encoder from the packaged embedder under a random 1-label head. For timing reranking only: its scores mean
    nothing."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from agent_lightning.memory.embedder import resolve_model

    out = Path(out_dir)
    if (out / "config.json").exists():
        return out
    source = resolve_model(None)
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out
