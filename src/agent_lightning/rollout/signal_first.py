"""Signal-first sampling: fill a GRPO round with groups whose rollouts scored differently.

    sampler = SignalFirst(pool=train_rows, group_size=8, passes=2, history=2, explore=0.1, seed=42, family="template")
    rows = sampler.before_round(rows)               # tasks predicted flat swapped for others (GRESO-style)
    ... play rows, score them, sampler.observe(group's first row, flat?) for each group ...
    flat = sampler.flat_groups(scores)              # groups whose rewards are all equal: zero advantage
    fresh = sampler.draw_groups(rows, len(flat))    # new training tasks' groups for them (DAPO-style)

A GRPO group whose rollouts all scored alike (all solved, or all failed) has advantage 0: the stage pays for its
rollouts and learns nothing from them. Three levers, all on training tasks only (the pool is the train split):

  - prediction: each task's recent groups are remembered (`history` of them); a task whose last `history` groups
    were all flat is predicted flat and swapped for another task before any rollout is played, except with
    probability `explore` (the policy changes, and a prediction must be able to change with it). As GRESO
    (arXiv 2506.02177) skips prompts with all-equal reward history.
  - families: a task is seldom played twice in a short run (the pool holds thousands), so its own history is
    mostly empty. Tasks of one family (the row's `family` column, e.g. the filesystem environment's `template`)
    are alike, so each family's recent groups are remembered too (the last `FAMILY_WINDOW`): a family whose last
    `history` groups were all flat is predicted flat like a task, and replacements are drawn with weight
    (groups with signal + 1/2) / (groups + 1) of their family, so a round learns within itself which families teach.
  - spread (off unless `spread` names a column, e.g. `template`): a round's groups are drawn from distinct
    values of that column while the pool has values not yet in the round. TRL's sampler draws tasks uniformly, so
    8 groups from 11 templates cover about 6 of them and a round can train twice on one kind of task and not at
    all on another; with spread, a group whose value is already in the round is swapped (before playing) for a
    task of a value not in it, and replacements are drawn from values not in the round the same way (any value
    when none is left). Unlike families it predicts nothing: it only widens what each round covers.
  - replacement: after a round is played and scored, each flat group is replaced by a fresh task's group, played
    in one batch, up to `passes` extra passes; a replacement that is flat too leaves the old group in place for
    the next pass. As DAPO's dynamic sampling (arXiv 2503.14476), with a cap instead of sampling without end.
    Every pass plays at least `pass_groups` groups in one batch (the first: the round's groups and spares drawn
    as replacements are): on a CPU a decode step for 64 rows costs about 1.5x one for 32 and 2.6x one for 8,
    so a wide pass finds groups with signal for several flat slots at once instead of one narrow pass each. Spare
    groups with signal that no slot needs are dropped (counted in `groups_sampled`).

What the round finally trains on may still hold flat groups (when the cap is reached); their micro-batches cost
little (train/zero_advantage.py). Counts per round (`stats`): groups sampled, groups in the round with signal,
groups replaced, tasks skipped as predicted flat, groups swapped for spread, rollouts played.

The history and the random stream are saved with each checkpoint (`state_dict`, train/grpo.py writes them as
checkpoint-N/signal_first.json) and restored on --resume, so a resumed run samples as the uninterrupted one would.
Not covered: several processes (each would swap its own share of the groups, which TRL's group layout across
processes does not allow; the trainer turns this off there).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FAMILY_WINDOW = 8  # a family's groups remembered for its draw weight (the most recent)


@dataclass
class RoundStats:
    groups_sampled: int = 0
    groups_with_signal: int = 0
    groups_replaced: int = 0
    skipped_predicted_flat: int = 0
    swapped_for_spread: int = 0
    rollouts: int = 0


@dataclass
class SignalFirst:
    pool: list[dict[str, Any]]  # training task rows (dataset rows: the columns TRL and env.reset read)
    group_size: int
    passes: int = 2
    history: int = 2
    explore: float = 0.1
    seed: int = 0
    pass_groups: int = 0  # each pass plays at least this many groups (spares included); 0: only those needed
    family: str | None = None  # the row column that groups alike tasks (None: tasks only)
    spread: str | None = None  # the row column whose values a round's groups should not repeat (None: no spread)
    _seen: dict[str, list[bool]] = field(default_factory=dict)  # task id -> flat?, most recent last
    _families: dict[str, list[bool]] = field(default_factory=dict)  # family -> flat?, most recent last
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the history and the random stream (JSON-able)."""
        version, internal, gauss = self._rng.getstate()
        return {"seen": self._seen, "families": self._families, "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._seen = {k: list(v) for k, v in state["seen"].items()}
        self._families = {k: list(v) for k, v in state.get("families", {}).items()}  # absent before families
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))

    # -- what is known about a task ---------------------------------------------------------------------------
    def family_of(self, row: dict[str, Any]) -> str | None:
        return _column(row, self.family)

    def observe(self, row: dict[str, Any], flat: bool) -> None:
        """Remember that a group of `row`'s task (and family) scored all alike (`flat`) or not."""
        for memory, key, keep in ((self._seen, str(row["task_id"]), self.history),
                                  (self._families, self.family_of(row), FAMILY_WINDOW)):
            if key is not None:
                seen = memory.setdefault(key, [])
                seen.append(flat)
                del seen[: max(len(seen) - max(keep, 1), 0)]

    def predicted_flat(self, row: dict[str, Any]) -> bool:
        """Whether the last `history` groups of `row`'s task, or of its family, were all flat."""
        if self.history <= 0:
            return False
        return any(len(seen) >= self.history and all(seen[-self.history:])
                   for seen in (self._seen.get(str(row["task_id"]), []), self._family_history(row)))

    def family_weight(self, row: dict[str, Any]) -> float:
        """Estimated chance that a group of `row`'s family carries signal: (with signal + 1/2) / (groups + 1) over
        its last FAMILY_WINDOW groups (the mean under a Jeffreys prior: one flat group makes a family half as
        likely to be drawn as an unseen one); 1/2 for a family not yet seen (and for rows without one)."""
        seen = self._family_history(row)
        return (len(seen) - sum(seen) + 0.5) / (len(seen) + 1)

    def _family_history(self, row: dict[str, Any]) -> list[bool]:
        """Flat? of the last groups of `row`'s family, most recent last ([] without a family)."""
        family = self.family_of(row)
        return self._families.get(family, []) if family is not None else []

    # -- a round ----------------------------------------------------------------------------------------------
    def groups(self, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        if len(rows) % self.group_size:
            raise ValueError(f"{len(rows)} rows are not whole groups of {self.group_size}")
        return [rows[i:i + self.group_size] for i in range(0, len(rows), self.group_size)]

    def spread_of(self, row: dict[str, Any]) -> str | None:
        return _column(row, self.spread)

    def before_round(self, rows: list[dict[str, Any]], stats: RoundStats) -> list[dict[str, Any]]:
        """`rows` with each group of a task predicted flat swapped for a group of another task, and with `spread`,
        each group whose value a group before it already has swapped for one of a value not in the round (see
        module doc)."""
        groups = self.groups(rows)
        used = {str(g[0]["task_id"]) for g in groups}
        kept: set[str | None] = set()  # spread values of the groups placed so far
        out = []
        for k, group in enumerate(groups):
            fresh = None
            if self.predicted_flat(group[0]) and self._rng.random() >= self.explore:
                fresh = self._draw(used, avoid=self._values(groups[k + 1:]) | kept)
                stats.skipped_predicted_flat += fresh is not None
            elif self.spread and self.spread_of(group[0]) in kept:
                fresh = self._draw(used, avoid=self._values(groups[k + 1:]) | kept, strict=True)
                stats.swapped_for_spread += fresh is not None
            if fresh is not None:
                used.add(str(fresh["task_id"]))
                group = [dict(fresh) for _ in range(self.group_size)]
            if self.spread:
                kept.add(self.spread_of(group[0]))
            out.extend(group)
        return out

    def _values(self, groups: list[list[dict[str, Any]]]) -> set[str | None]:
        """The spread values of `groups` (empty without spread)."""
        return {self.spread_of(g[0]) for g in groups} if self.spread else set()

    def flat_groups(self, scores: list[float], tolerance: float = 1e-9) -> list[int]:
        """Indices of the groups whose scores are all equal (within `tolerance`)."""
        return [i // self.group_size for i in range(0, len(scores), self.group_size)
                if max(scores[i:i + self.group_size]) - min(scores[i:i + self.group_size]) <= tolerance]

    def draw_groups(self, rows: list[dict[str, Any]], count: int,
                    exclude: set[str] | None = None) -> list[list[dict[str, Any]]]:
        """Up to `count` groups of fresh tasks (none of `rows`' tasks nor those in `exclude`), drawn as `_draw`
        does, with spread from values not in `rows` nor drawn before them while there are such; fewer when the pool
        runs out."""
        used = {str(r["task_id"]) for r in rows} | set(exclude or ())
        avoid = {self.spread_of(r) for r in rows} if self.spread else set()
        out = []
        for _ in range(count):
            fresh = self._draw(used, avoid)
            if fresh is None:
                break
            used.add(str(fresh["task_id"]))
            if self.spread:
                avoid.add(self.spread_of(fresh))
            out.append([dict(fresh) for _ in range(self.group_size)])
        return out

    def _draw(self, used: set[str], avoid: set[str | None] = frozenset(),
              strict: bool = False) -> dict[str, Any] | None:
        """A pool task not in `used` and not predicted flat, drawn with its family's weight, from a spread value not
        in `avoid` while there is one (when there is none: from any value, or None if `strict`); None when the pool
        has none left."""
        candidates = [r for r in self.pool if str(r["task_id"]) not in used and not self.predicted_flat(r)]
        if avoid:
            spread = [r for r in candidates if self.spread_of(r) not in avoid]
            candidates = spread if spread or strict else candidates
        if not candidates:
            return None
        return self._rng.choices(candidates, weights=[self.family_weight(r) for r in candidates])[0]


def _column(row: dict[str, Any], column: str | None) -> str | None:
    """`row[column]` as text; None without a column or a value."""
    value = row.get(column) if column else None
    return None if value is None else str(value)
