"""SFT stage: a thin wrapper that builds TRL's `SFTTrainer` from our config (TRL owns the loss and loop).

    python main_agent_lightning.py --algo sft [--config configs/tiny.yaml] [--max-steps 2]

What this module adds around TRL: the dataset (verified environment demonstrations mixed with local JSONL,
train/sft_data.py, with a held-out part for the eval loss), an SFTConfig mapped from `cfg.sft`, and the policy's
tool-call format (chat/tool_format.py), so the demonstrations are rendered exactly as the policy will see and
write them in GRPO. With `sft.assistant_only_loss` only assistant tokens carry loss: for tool episodes TRL renders
with a training template that has `{% generation %}` markers (ours for Mistral v0.3, TRL's qwen2_5_training for
ChatML), so prompts and tool results are masked; single-turn data goes in TRL's prompt/completion form, where TRL
masks the prompt with the policy's own template (then only the last assistant turn of a chat is trained).

Not covered here: evaluation (evaluate.py), chaining into GRPO (pipeline.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agent_lightning.config import Config
from agent_lightning.errors import UserError
from agent_lightning.train.trainer_args import common_args

log = logging.getLogger(__name__)


def sft_examples(cfg: Config, env_cls: type) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out) examples: the configured mixture of demonstrations and local sources."""
    from agent_lightning.envs import prompt_prefix
    from agent_lightning.train.sft_data import environment_demonstrations, load_jsonl, mix, split_held_out

    s = cfg.sft
    system = prompt_prefix(cfg, env_cls)
    sources: dict[str, tuple[list[dict[str, Any]], float]] = {}
    if s.demonstrations > 0 and s.env_weight > 0:
        from agent_lightning.memory.context import MemoryContext

        memory = MemoryContext.for_run(cfg.memory)  # with memory.inject, prompts carry what eval's will
        sources[cfg.env.name] = (environment_demonstrations(env_cls, "train", s.demonstrations, cfg.env.seed, system,
                                                            cfg.env.train_tiers, memory),
                                 s.env_weight)
    for i, source in enumerate(s.sources):
        if not source.path:
            raise UserError(f"sft.sources.{i}.path: give a JSONL file.")
        sources[f"{Path(source.path).stem}#{i}"] = (load_jsonl(source.path), source.weight)
    size = s.examples or sum(len(examples) for examples, _ in sources.values())
    examples = mix(sources, size, cfg.run.seed)
    return split_held_out(examples, s.held_out_fraction, cfg.run.seed)


def _dataset(examples: list[dict[str, Any]], with_tools: bool, tokenizer: Any, assistant_only_loss: bool) -> Any:
    """Tool episodes are tokenized here, with the template's generation markers giving the assistant-token mask
    (TRL takes `input_ids` + `assistant_masks` as they are): a `datasets` table would otherwise merge every tool
    call's `arguments` and every tool schema into one struct type, padding them with nulls (read_file would be
    rendered as read_file(path, content, src, dst) and trained with `"content": null`). Other examples use TRL's
    conversational `prompt`/`completion` format (TRL masks the prompt, whatever the template)."""
    from datasets import Dataset

    if with_tools:
        return Dataset.from_list([tokenize_episode(e, tokenizer, assistant_only_loss) for e in examples])
    return Dataset.from_list([{"prompt": e["messages"][:-1], "completion": e["messages"][-1:]} for e in examples])


def tokenize_episode(example: dict[str, Any], tokenizer: Any, assistant_only_loss: bool) -> dict[str, list[int]]:
    """A tool episode as SFT trains it: `input_ids`, and with `assistant_only_loss` the `assistant_masks` of the
    template's generation markers (GRPO's sft_replay tokenizes its demonstrations with this too)."""
    out = tokenizer.apply_chat_template(example["messages"], tools=example.get("tools"), tokenize=True,
                                        return_dict=True, return_assistant_tokens_mask=assistant_only_loss)
    row = {"input_ids": list(out["input_ids"])}
    if assistant_only_loss:
        if 1 not in out["assistant_masks"]:
            raise UserError(f"sft: example {example.get('task_id')} has no assistant tokens under the chat template "
                            "(its {% generation %} markers are missing); it cannot be trained on.")
        row["assistant_masks"] = list(out["assistant_masks"])
    return row


def sft_args(cfg: Config, run_dir: Path, has_eval: bool, with_tools: bool) -> Any:
    from trl import SFTConfig

    s = cfg.sft
    return SFTConfig(
        **common_args(cfg, run_dir),
        max_steps=s.max_steps,
        learning_rate=s.learning_rate,
        per_device_train_batch_size=s.per_device_batch_size,
        per_device_eval_batch_size=s.per_device_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        max_length=s.max_length,
        assistant_only_loss=False,  # tool episodes come tokenized with their assistant_masks (_dataset)
        completion_only_loss=None if with_tools else s.assistant_only_loss,
        gradient_checkpointing=s.gradient_checkpointing,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, s.max_steps // 20),
        logging_steps=s.logging_steps,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=cfg.grpo.save_total_limit,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=max(1, s.max_steps // 2),  # held-out loss at half time and at the end
    )


def build_sft_trainer(cfg: Config, run_dir: Path, model: Any, tokenizer: Any, env_cls: type,
                      callbacks: list[Any]) -> Any:
    """SFTTrainer on the configured mixture, in the policy's tool-call format."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import SFTTrainer

    train, held_out = sft_examples(cfg, env_cls)
    if not train:
        raise UserError("sft: no training examples (check sft.demonstrations, sft.sources and sft.held_out_fraction).")
    with_tools = any(e.get("tools") for e in train)
    if with_tools:
        from agent_lightning.chat.tool_format import prepare_for_tools

        log.info("tool format: %s", prepare_for_tools(tokenizer, cfg.policy.tool_prompt))
    log.info("SFT on %d examples (%d held out)", len(train), len(held_out))
    trainer = SFTTrainer(
        model=model,
        args=sft_args(cfg, run_dir, bool(held_out), with_tools),
        train_dataset=_dataset(train, with_tools, tokenizer, cfg.sft.assistant_only_loss),
        eval_dataset=_dataset(held_out, with_tools, tokenizer, cfg.sft.assistant_only_loss) if held_out else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return trainer
