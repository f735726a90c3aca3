"""APO: optimize what the policy is told (instructions + few-shot demonstrations) by verified success on dev tasks.

    python main_agent_lightning.py --algo apo --config arithmetic          # RUN_DIR/prompt.yaml, no weight update
    python main_agent_lightning.py --algo sft+apo                          # the prompt for the SFT adapter
    python main_agent_lightning.py eval --set policy.prompt=RUN_DIR/prompt.yaml

How it searches (beam search with successive halving, in the spirit of ProTeGi / agent-lightning's APO and DSPy's
bootstrapped few-shot):
  1. A pool of verified demonstrations from training tasks: the reference solutions (`apo.pool`) and the policy's
     own verified successes on other training tasks (`apo.bootstrap`, DSPy's bootstrapping).
  2. Round 0 scores the starting prompt (`policy.prompt`, else the environment's own) beside `apo.candidates`
     proposals: instructions from the shipped library (data/apo_instructions.yaml, `apo.instructions`) and the
     starting instructions with demonstrations drawn from the pool.
  3. Each later round proposes `apo.candidates` new prompts from the beam: another instruction, a demonstration
     added, swapped or dropped, the instructions of one beam prompt with the demonstrations of another, and with a
     critic (`apo.critic`, train/apo_critic.py) instructions rewritten from a textual gradient on failed dev traces.
  4. Scoring is successive halving on the dev split (`env.dev_source`; never the test split):
     every candidate plays the first `apo.minibatch` dev tasks greedily, the better half doubles the tasks, and so on
     up to `apo.dev_tasks`; each (prompt, task) outcome is played once and cached. The `apo.beam` best survive.
  5. The best prompt on all `apo.dev_tasks` is written to RUN_DIR/prompt.yaml; RUN_DIR/candidates.jsonl holds every
     candidate with its dev score, RUN_DIR/apo.png the best dev score per round. With `eval.at_end`, the starting
     and the optimized prompt are evaluated on the same test tasks and their paired difference printed.

A round's state is saved to RUN_DIR/checkpoint-<round>/trainer_state.json, so `--resume` continues the search.
Not covered: updating weights (chain it: apo+grpo, sft+apo), the tool schemas (the environment's), memory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_lightning.chat.prompt import Prompt, demonstration_problem
from agent_lightning.errors import UserError
from agent_lightning.train import rundir
from agent_lightning.train.algorithm import Stage

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 2


@dataclass
class Candidate:
    """One prompt tried by the search, with its cached dev outcomes (task id -> verified success)."""

    prompt: Prompt
    origin: str
    round: int
    parent: str | None = None
    results: dict[str, bool] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.prompt.fingerprint

    def score(self, task_ids: list[str] | None = None) -> float:
        ids = task_ids if task_ids is not None else list(self.results)
        scored = [self.results[t] for t in ids if t in self.results]
        return sum(scored) / len(scored) if scored else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "round": self.round, "origin": self.origin, "parent": self.parent,
                "prompt": self.prompt.to_dict(), "results": self.results}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Candidate:
        return cls(Prompt.from_dict(row["prompt"]), row["origin"], row["round"], row.get("parent"),
                   dict(row.get("results") or {}))


class PromptSearch:
    """The search of the module docstring for one stage; `run()` writes prompt.yaml and the report."""

    def __init__(self, stage: Stage):
        from agent_lightning.envs import system_prompt

        self.stage, self.cfg, self.env_cls, self.run_dir = stage, stage.cfg, stage.env_cls, stage.run_dir
        self.settings = self.cfg.apo
        self.settings.validate()
        self.start_prompt = Prompt.load(self.cfg.policy.prompt) if self.cfg.policy.prompt else Prompt()
        self.default_instructions = system_prompt(self.cfg, self.env_cls)
        self.rng = random.Random(self.cfg.run.seed)
        self.candidates: dict[str, Candidate] = {}
        self.beam: list[str] = []
        self.pool: list[list[dict[str, Any]]] = []
        self.best_by_round: list[float] = []
        self.failures: dict[str, list[dict[str, Any]]] = {}  # candidate id -> a few failed dev episodes (critic)
        self.model = self.tokenizer = self.memory = None
        self.episodes_played = 0

    # ------------------------------------------------------------------------------------------------ driver
    def run(self) -> dict[str, Any]:
        from agent_lightning.evaluate import BatchProgress, split_tasks

        started = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dev = split_tasks(self.env_cls, self.cfg, "dev")[: self.settings.dev_tasks]
        if not self.dev:
            raise UserError(f"apo: env '{self.cfg.env.name}' has no dev tasks (env.dev_size {self.cfg.env.dev_size}).")
        self.dev_ids = [t["task_id"] for t in self.dev]
        self._load_policy()
        from agent_lightning.train.apo_critic import make_critic

        self.critic = make_critic(self.settings)
        first_round = self._restore() if self.stage.checkpoint is not None else 0
        if first_round == 0:
            self.pool = self._demonstration_pool()
        progress = BatchProgress("APO", self.settings.rounds + 1, "rounds", started)
        for rnd in range(first_round, self.settings.rounds + 1):
            proposals = self._initial_candidates() if rnd == 0 else self._propose(rnd)
            for candidate in proposals:
                self.candidates.setdefault(candidate.id, candidate)
            contenders = list(dict.fromkeys([*self.beam, *(c.id for c in proposals)]))
            self.beam = self._successive_halving(contenders)
            best = self.candidates[self.beam[0]]
            seen = self._scored_ids(best)
            self.best_by_round.append(best.score(seen))
            self._checkpoint(rnd)
            progress.update(rnd + 1, f"best dev {best.score(seen):.0%} on {len(seen)} tasks ({best.origin}), "
                                     f"{self.episodes_played} episodes")
            self.stage.stopped(rnd)
        progress.stop()
        self._score(self.beam, len(self.dev_ids))  # the beam on every dev task: the final ranking
        ranked = sorted(self.beam, key=lambda c: (-self.candidates[c].score(self.dev_ids),
                                                  len(self.candidates[c].prompt.demonstrations)))
        best = self.candidates[ranked[0]]
        start = self.candidates[self._start_candidate().id]
        self._score([start.id], len(self.dev_ids))
        prompt_path = self._write_outputs(best, start)
        summary = self._summary(best, start, prompt_path, started)
        rundir.write_json(self.run_dir / "summary.json", summary)
        if self.cfg.eval.at_end:
            summary.update(self._evaluate(prompt_path))
            rundir.write_json(self.run_dir / "summary.json", summary)
        return {}

    # --------------------------------------------------------------------------------------------- policy
    def _load_policy(self) -> None:
        from agent_lightning.evaluate import load_for_eval

        from agent_lightning.memory.context import MemoryContext

        self.model, self.tokenizer = load_for_eval(self.cfg, self.cfg.policy.init_adapter)
        self.memory = MemoryContext.for_run(self.cfg.memory)  # the same retrieved context as eval and training
        if self.env_cls.tool_names():
            from agent_lightning.chat.tool_format import prepare_for_tools

            prepare_for_tools(self.tokenizer, self.cfg.policy.tool_prompt)

    def _play(self, tasks: list[dict[str, Any]], prefixes: list[list[dict[str, Any]]]) -> list[Any]:
        """Greedy episodes of `tasks`, each after its own prompt prefix, verified (env.outcome)."""
        from agent_lightning.rollout.episodes import generation_weights, play_episodes

        cfg, out = self.cfg, []
        with generation_weights(self.model):
            for at in range(0, len(tasks), self.settings.batch_size):
                chunk, heads = tasks[at:at + self.settings.batch_size], prefixes[at:at + self.settings.batch_size]
                episodes = play_episodes(self.model, self.tokenizer, self.env_cls, chunk, None,
                                         max_new_tokens=cfg.eval.max_new_tokens or cfg.grpo.max_completion_length,
                                         max_turns=cfg.env.max_turns, max_failed_turns=cfg.eval.max_failed_turns,
                                         memory=self.memory, prefixes=heads)
                for episode in episodes:
                    episode.env._finish_episode(episode.messages)
                out += episodes
        self.episodes_played += len(tasks)
        return out

    # ------------------------------------------------------------------------------------------- proposals
    def _start_candidate(self) -> Candidate:
        return Candidate(Prompt(self.start_prompt.instructions, list(self.start_prompt.demonstrations)), "start", 0)

    def _instruction_library(self) -> list[str]:
        import yaml
        from importlib.resources import files

        library = yaml.safe_load(files("agent_lightning.data").joinpath("apo_instructions.yaml").read_text())
        kind = "tools" if self.env_cls.tool_names() else "text"
        found = [*self.settings.instructions, *library.get(kind, []), *library.get("any", [])]
        base = self.start_prompt.instructions or self.default_instructions or ""
        found += [f"{base} {suffix}".strip() for suffix in library.get("suffixes", [])]
        return list(dict.fromkeys(text for text in found if text and text != base))

    def _demonstration_pool(self) -> list[list[dict[str, Any]]]:
        """Verified demonstrations (user task first, assistant answer last) from training tasks only."""
        from agent_lightning.evaluate import BatchProgress, split_tasks
        from agent_lightning.train.sft_data import demonstration

        train = list(split_tasks(self.env_cls, self.cfg, "train"))
        random.Random(self.cfg.run.seed).shuffle(train)
        references, own = train[: self.settings.pool], train[self.settings.pool:][: self.settings.bootstrap]
        pool = []
        for task in references:
            demo = demonstration(self.env_cls, task, None)
            if demo:
                pool.append([m for m in demo["messages"] if m.get("role") != "system"])
        if own:
            progress = BatchProgress("APO BOOTSTRAP", len(own), "episodes")
            start = self._start_candidate().prompt.messages(self.default_instructions)
            episodes = self._play(own, [start] * len(own))
            kept = 0
            for episode in episodes:
                demo = [m for m in episode.prompt if m.get("role") == "user"][-1:] + list(episode.messages)
                if episode.env.outcome.success and demonstration_problem(demo) is None:
                    pool.append(demo)
                    kept += 1
            progress.update(len(own), f"{kept} verified successes kept")
            progress.stop()
        if not pool:
            raise UserError(f"apo: no verified demonstration for env '{self.cfg.env.name}' (reference solutions did "
                            "not verify and the policy solved none of the bootstrap tasks); set apo.pool/bootstrap.")
        log.info("apo: %d demonstrations in the pool (%d reference, %d the policy's own)", len(pool),
                 len(pool) - (kept if own else 0), kept if own else 0)
        return pool

    def _demos(self, k: int) -> list[list[dict[str, Any]]]:
        return self.rng.sample(self.pool, min(k, len(self.pool)))

    def _initial_candidates(self) -> list[Candidate]:
        start = self._start_candidate()
        library = self._instruction_library()
        n, k_max = self.settings.candidates, self.settings.max_demonstrations
        proposals = []
        for i in range(n):
            if i % 2 == 0 and library:  # alternate: a library instruction, or demonstrations (and sometimes both)
                text = library[(i // 2) % len(library)]
                demos = self._demos(self.rng.randint(1, k_max)) if k_max and self.rng.random() < 0.5 else []
                proposals.append(Candidate(Prompt(text, demos), "library instruction", 0, start.id))
            elif k_max:
                k = 1 + (i // 2) % k_max
                proposals.append(Candidate(Prompt(start.prompt.instructions, self._demos(k)),
                                           f"{k} demonstrations", 0, start.id))
        return [start, *self._unique(proposals)]

    def _propose(self, rnd: int) -> list[Candidate]:
        proposals: list[Candidate] = []
        if self.critic is not None:
            for parent in self.beam[: max(1, len(self.beam) // 2)]:
                rewritten = self._critic_rewrite(self.candidates[parent], rnd)
                if rewritten is not None:
                    proposals.append(rewritten)
        library = self._instruction_library()
        tries = 0
        while len(self._unique(proposals)) < self.settings.candidates and tries < 20 * self.settings.candidates:
            tries += 1
            parent = self.candidates[self.beam[min(int(self.rng.expovariate(1.0)), len(self.beam) - 1)]]
            proposals.append(self._mutate(parent, library, rnd))
        return self._unique(proposals)[: self.settings.candidates]

    def _mutate(self, parent: Candidate, library: list[str], rnd: int) -> Candidate:
        instructions, demos = parent.prompt.instructions, list(parent.prompt.demonstrations)
        moves = ["instruction"] * bool(library) + ["swap"] * bool(demos and self.pool) + ["drop"] * bool(demos)
        moves += ["add"] * (len(demos) < self.settings.max_demonstrations) + ["crossover"] * (len(self.beam) > 1)
        move = self.rng.choice(moves)
        if move == "instruction":
            instructions = self.rng.choice(library)
        elif move == "swap":
            demos[self.rng.randrange(len(demos))] = self.rng.choice(self.pool)
        elif move == "drop":
            demos.pop(self.rng.randrange(len(demos)))
        elif move == "add":
            demos.insert(self.rng.randrange(len(demos) + 1), self.rng.choice(self.pool))
        else:
            other = self.candidates[self.rng.choice([c for c in self.beam if c != parent.id])]
            instructions = other.prompt.instructions
        return Candidate(Prompt(instructions, demos), move, rnd, parent.id)

    def _critic_rewrite(self, parent: Candidate, rnd: int) -> Candidate | None:
        from agent_lightning.train.apo_critic import rewrite_instructions

        failed = self.failures.get(parent.id, [])
        if not failed:
            return None
        current = parent.prompt.instructions or self.default_instructions or ""
        try:
            text = rewrite_instructions(self.critic, current, failed[:4], self.settings.critic_max_tokens)
        except Exception as exc:  # noqa: BLE001 - a critic that fails costs its proposal, not the search
            log.warning("apo: the critic failed (%s: %s); this round proposes mutations only",
                        type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
            return None
        if not text or text == current:
            return None
        return Candidate(Prompt(text, list(parent.prompt.demonstrations)), "critic rewrite", rnd, parent.id)

    def _unique(self, proposals: list[Candidate]) -> list[Candidate]:
        seen, out = set(self.candidates), []
        for candidate in proposals:
            if candidate.id not in seen:
                seen.add(candidate.id)
                out.append(candidate)
        return out

    # ------------------------------------------------------------------------------------------- scoring
    def _scored_ids(self, candidate: Candidate) -> list[str]:
        return [t for t in self.dev_ids if t in candidate.results]

    def _score(self, ids: list[str], n_tasks: int) -> None:
        """Play every (candidate, task) of the first `n_tasks` dev tasks not played yet, all in shared batches."""
        tasks, prefixes, owners = [], [], []
        for cid in ids:
            candidate = self.candidates[cid]
            messages = candidate.prompt.messages(self.default_instructions)
            for task in self.dev[:n_tasks]:
                if task["task_id"] not in candidate.results:
                    tasks.append(task)
                    prefixes.append(messages)
                    owners.append(cid)
        if not tasks:
            return
        for cid, task, episode in zip(owners, tasks, self._play(tasks, prefixes)):
            outcome = episode.env.outcome
            self.candidates[cid].results[task["task_id"]] = bool(outcome.success)
            if not outcome.success and len(self.failures.setdefault(cid, [])) < 6:
                self.failures[cid].append({"task": task["prompt"], "messages": episode.messages,
                                           "expected": getattr(outcome, "expected", None),
                                           "detail": getattr(outcome, "detail", None)})

    def _successive_halving(self, contenders: list[str]) -> list[str]:
        """Score `contenders` on growing dev prefixes, halving them at each rung; the `apo.beam` best, best first."""
        n, alive = min(self.settings.minibatch, len(self.dev_ids)), list(contenders)
        while True:
            self._score(alive, n)
            ids = self.dev_ids[:n]
            alive.sort(key=lambda c: (-self.candidates[c].score(ids), len(self.candidates[c].prompt.demonstrations)))
            if n >= len(self.dev_ids) or len(alive) <= self.settings.beam:
                break
            alive = alive[: max(self.settings.beam, math.ceil(len(alive) / 2))]
            n = min(2 * n, len(self.dev_ids))
        # rank by the most dev tasks seen, then by the score on them
        return sorted(alive, key=lambda c: (-len(self._scored_ids(self.candidates[c])),
                                            -self.candidates[c].score(self._scored_ids(self.candidates[c]))))[
            : self.settings.beam]

    # --------------------------------------------------------------------------------------- checkpoints
    def _checkpoint(self, rnd: int) -> None:
        state = {"global_step": rnd, "algorithm": "apo", "beam": self.beam, "best_by_round": self.best_by_round,
                 "pool": self.pool, "rng": _rng_state(self.rng), "episodes_played": self.episodes_played,
                 "candidates": [c.to_dict() for c in self.candidates.values()], "failures": self.failures}
        folder = self.run_dir / f"checkpoint-{rnd}"
        folder.mkdir(parents=True, exist_ok=True)
        rundir.write_json(folder / "trainer_state.json", state)  # written whole or not at all (resume checks it)
        found = sorted((int(p.name.split("-")[1]), p) for p in self.run_dir.glob("checkpoint-*")
                       if p.name.split("-")[1].isdigit())
        for _, old in found[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)

    def _restore(self) -> int:
        path = self.stage.checkpoint / "trainer_state.json"
        state = json.loads(path.read_text())
        if state.get("algorithm") != "apo":
            raise UserError(f"--resume: {path} is not an APO checkpoint; pick the APO run's folder.")
        self.candidates = {row["id"]: Candidate.from_dict(row) for row in state["candidates"]}
        self.beam, self.best_by_round, self.pool = state["beam"], state["best_by_round"], state["pool"]
        self.failures, self.episodes_played = state.get("failures", {}), state.get("episodes_played", 0)
        self.rng.setstate(_rng_from_json(state["rng"]))
        log.info("apo: resuming after round %d (%d candidates scored)", state["global_step"], len(self.candidates))
        return state["global_step"] + 1

    # ------------------------------------------------------------------------------------------- outputs
    def _write_outputs(self, best: Candidate, start: Candidate) -> Path:
        meta = {"env": self.cfg.env.name, "policy": self.cfg.policy.source, "adapter": self.cfg.policy.init_adapter,
                "algorithm": "apo", "dev_score": round(best.score(self.dev_ids), 4), "dev_tasks": len(self.dev_ids),
                "start_dev_score": round(start.score(self.dev_ids), 4), "origin": best.origin}
        prompt = Prompt(best.prompt.instructions, best.prompt.demonstrations, meta)
        path = prompt.save(self.run_dir / "prompt.yaml")
        with open(self.run_dir / "candidates.jsonl", "w") as fh:
            for c in sorted(self.candidates.values(), key=lambda c: (c.round, -c.score())):
                ids = self._scored_ids(c)
                fh.write(json.dumps({"id": c.id, "round": c.round, "origin": c.origin, "parent": c.parent,
                                     "dev_score": round(c.score(ids), 4), "dev_tasks": len(ids),
                                     "instructions": c.prompt.instructions,
                                     "demonstrations": len(c.prompt.demonstrations)}) + "\n")
        self._plot(start)
        return path

    def _plot(self, start: Candidate) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(range(len(self.best_by_round)), [100 * s for s in self.best_by_round], marker="o", label="best prompt")
        ax.axhline(100 * start.score(self.dev_ids), color="gray", linestyle="--", label="starting prompt")
        ax.set_xlabel("round")
        ax.set_ylabel("dev success (%)")
        ax.set_title(f"APO on {self.cfg.env.name} ({len(self.dev_ids)} dev tasks)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.run_dir / "apo.png", dpi=120)
        plt.close(fig)

    def _summary(self, best: Candidate, start: Candidate, prompt_path: Path, started: float) -> dict[str, Any]:
        return {"algo": "apo", "run_dir": str(self.run_dir), "policy": self.cfg.policy.source,
                "env": self.cfg.env.name, "steps": len(self.best_by_round), "prompt": str(prompt_path),
                "prompt_fingerprint": best.id, "dev_tasks": len(self.dev_ids),
                "dev_score": best.score(self.dev_ids), "start_dev_score": start.score(self.dev_ids),
                "candidates": len(self.candidates), "episodes_played": self.episodes_played,
                "best_by_round": self.best_by_round, "demonstrations": len(best.prompt.demonstrations),
                "pool": len(self.pool), "critic": self.critic.name if self.critic is not None else None,
                "wall_seconds": round(time.time() - started, 1), "plot": str(self.run_dir / "apo.png"),
                "adapter": self.cfg.policy.init_adapter}

    def _evaluate(self, prompt_path: Path) -> dict[str, Any]:
        """Test-split reports of the optimized prompt and of the starting one (reused from the previous stage in a
        chain), with their paired difference."""
        import dataclasses

        from agent_lightning.evaluate import evaluate, format_report, task_successes
        from agent_lightning.stats import format_difference, paired_difference

        limit = self.cfg.eval.limit or None
        cfg = dataclasses.replace(self.cfg, policy=dataclasses.replace(self.cfg.policy, prompt=str(prompt_path)))
        after = evaluate(cfg, "test", limit=limit, model=self.model, tokenizer=self.tokenizer,
                         adapter=self.cfg.policy.init_adapter)
        before = None
        previous = self.stage.previous / "summary.json" if self.stage.previous else None
        if previous is not None and previous.is_file():
            before = json.loads(previous.read_text()).get("eval")
        if before is None:
            before = evaluate(self.cfg, "test", limit=limit, model=self.model, tokenizer=self.tokenizer,
                              adapter=self.cfg.policy.init_adapter)
        log.info("%s", format_report(after))
        diff = paired_difference(task_successes(before), task_successes(after))
        print(f"APO on {self.cfg.env.name}: starting prompt {before['success_rate']:.1%}, optimized prompt "
              f"{after['success_rate']:.1%} on the same test tasks; {format_difference(diff)}", flush=True)
        return {"eval": after, "eval_start": before, "paired": diff}


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_from_json(state: list[Any]) -> tuple[Any, ...]:
    return state[0], tuple(state[1]), state[2]
