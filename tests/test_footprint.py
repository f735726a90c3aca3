"""The 7B memory estimate's exact components, checked by counting bytes on a scaled-down Mistral in 4-bit on CPU.

    pytest tests/test_footprint.py        (~15 s)

A Mistral with the 7B's shape ratios (grouped-query attention 4:1, intermediate 3.5 x hidden, the real 32768
vocabulary) but 2 layers of width 256, loaded through the project's own QLoRA path (policy.load_policy, nf4 +
double quantization + prepare_model_for_kbit_training + LoRA on all linear layers): its NF4 weights and
constants, fp32 leftovers, LoRA weights, gradients, AdamW states and KV cache must equal footprint.py's formulas
byte for byte. The 7B numbers in docs/scaling.md come from the same formulas. Not covered: activation sizes
(an estimate; they depend on kernels and the attention implementation).
"""

import shutil

import pytest
import torch

from agent_lightning.train import footprint

SMALL = footprint.Arch(layers=2, hidden=256, heads=8, kv_heads=2, intermediate=896, vocab=32768)


@pytest.fixture(scope="module")
def small_qlora(tmp_path_factory):
    from transformers import MistralConfig, MistralForCausalLM

    from agent_lightning.config import LoraSection, PolicySection
    from agent_lightning.policy import load_policy, resolve_source

    folder = tmp_path_factory.mktemp("small-mistral")
    tiny = resolve_source(PolicySection(source="tiny-mistral"))
    for name in ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny / name).exists():
            shutil.copy(tiny / name, folder / name)
    config = MistralConfig(vocab_size=SMALL.vocab, hidden_size=SMALL.hidden, num_hidden_layers=SMALL.layers,
                           num_attention_heads=SMALL.heads, num_key_value_heads=SMALL.kv_heads,
                           intermediate_size=SMALL.intermediate, tie_word_embeddings=False)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        MistralForCausalLM(config).save_pretrained(folder)
    policy = PolicySection(source=str(folder), quantization="nf4", dtype="bfloat16",
                           lora=LoraSection(r=16, alpha=32, dropout=0.0, targets="auto"))
    model, _ = load_policy(policy)
    assert footprint.Arch.from_config(model.config) == SMALL
    return model


def test_weights_match_the_formula_exactly(small_qlora):
    measured, expected = footprint.measure(small_qlora), footprint.weights(SMALL)
    assert measured["nf4_weights"] == expected["nf4_weights"]
    assert measured["nf4_constants"] == expected["nf4_constants"]
    assert measured["unquantized_fp32"] == expected["unquantized_fp32"]  # embeddings, lm_head, norms upcast
    assert measured["other"] == 0


def test_lora_and_optimizer_state_match_the_formula_exactly(small_qlora):
    expected = footprint.lora(SMALL, r=16)
    measured = footprint.measure(small_qlora)
    assert measured["lora_params"] == expected["lora_params"] and measured["lora_weights"] == expected["lora_weights"]
    trainable = [p for p in small_qlora.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == expected["lora_params"]
    small_qlora.train()
    ids = torch.randint(5, 1000, (2, 12))
    small_qlora(input_ids=ids, labels=ids).loss.backward()
    assert sum(p.grad.numel() * p.grad.element_size() for p in trainable) == expected["lora_grads"]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    optimizer.step()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for k, t in s.items() if k != "step")
    assert state == expected["adamw_states"]
    optimizer.zero_grad(set_to_none=True)


def test_kv_cache_matches_the_formula_exactly(small_qlora):
    sequences, tokens = 3, 17
    small_qlora.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        cache = small_qlora(input_ids=torch.randint(5, 1000, (sequences, tokens)), use_cache=True).past_key_values
    small_qlora.train()
    size = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert size == footprint.kv_cache(SMALL, sequences, tokens)  # fp32, even under bf16 autocast


def test_seven_b_parameter_count_is_mistral_7b_v03():
    w = footprint.weights(footprint.MISTRAL_7B_V03)
    assert w["params_total"] == 7_248_023_552  # Mistral-7B-v0.3's published parameter count
    assert footprint.lora(footprint.MISTRAL_7B_V03, r=16)["lora_params"] == 41_943_040
