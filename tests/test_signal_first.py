"""Signal-first sampling (rollout/signal_first.py) in a real GRPO run: flat groups are replaced by groups that
carry signal, tasks seen flat are skipped, and with it off the run trains on what TRL's sampler drew.

A plugin tool environment has three kinds of training task: `pass-*` always succeeds, `fail-*` always fails (both
give groups whose rewards are all equal: zero advantage), `mixed-*` alternates success and failure from one
verification to the next, so its groups always carry signal. The tiny random Mistral plays it through our cached
rollout loop and TRL's GRPOTrainer.
"""

import json
import textwrap

import pytest

from agent_lightning.rollout.signal_first import RoundStats, SignalFirst
from conftest import run_cli

ENVIRONMENT = textwrap.dedent('''
    from agent_lightning import environment
    from agent_lightning.envs import Environment, Outcome


    @environment("three_kinds")
    class ThreeKinds(Environment):
        """One tool; pass-* tasks always succeed, fail-* never, mixed-* every other verification."""

        verifications = 0

        @classmethod
        def tasks(cls, split, size, seed):
            kinds = ["pass", "fail", "mixed", "mixed", "mixed"]
            return [{"task_id": f"{kinds[i % 5]}-{split}-{i}", "kind": kinds[i % 5], "prompt": f"Note thing {i}."}
                    for i in range(size)]

        def note(self, text: str) -> str:
            """Write a note.

            Args:
                text: The note.
            """
            return "noted"

        def _finish(self, final_text):
            kind = self.task["task_id"].split("-")[0]
            if kind == "mixed":
                type(self).verifications += 1
                return Outcome(success=type(self).verifications % 2 == 0)
            return Outcome(success=kind == "pass")
''')


def grpo(plugins, run_dir, signal_first: bool, *extra: str):
    result = run_cli(*extra, "--algo", "grpo", "--config", "tiny", "--plugin-dir", str(plugins),
                     "--set", "env.name=three_kinds", "--set", "env.train_size=20", "--set", "env.max_turns=1",
                     "--set", "rewards=[{name: task_success}]", "--set", "grpo.num_generations=4",
                     "--set", "grpo.per_device_batch_size=4", "--set", "grpo.gradient_accumulation_steps=3",
                     "--set", "grpo.max_completion_length=6", "--set", "grpo.max_steps=3",
                     "--set", f"grpo.signal_first={str(signal_first).lower()}", "--set", "grpo.signal_passes=3",
                     "--set", "grpo.signal_pass_groups=8",
                     "--set", "grpo.signal_history=1", "--set", "grpo.signal_explore=0",
                     "--set", "eval.at_end=false", "--output-dir", str(run_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = sorted((run_dir / "traces").glob("step-*.jsonl"))
    traces = [[json.loads(line) for line in path.read_text().splitlines()] for path in steps]
    return metrics, traces


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "three_kinds.py").write_text(ENVIRONMENT)
    root = tmp_path_factory.mktemp("runs")
    return grpo(plugins, root / "on", True, "--set", "grpo.signal_spread=kind"), grpo(plugins, root / "off", False)


def _groups(records):
    return [records[i:i + 4] for i in range(0, len(records), 4)]


@pytest.mark.slow
def test_flat_groups_are_replaced_by_groups_with_signal(runs):
    (metrics, traces), _ = runs
    assert len(traces) == 3
    for step in traces:
        for group in _groups(step):
            assert len({r["task_id"] for r in group}) == 1
            assert group[0]["task_id"].startswith("mixed-"), group[0]["task_id"]  # every trained group teaches
            assert len({r["reward"] for r in group}) > 1
    sampling = [m for m in metrics if "sampling/groups_sampled" in m]
    assert len(sampling) == 3
    assert all(m["sampling/groups_with_signal"] == 3 for m in sampling)
    assert sum(m["sampling/groups_replaced"] for m in sampling) >= 1  # the first round drew flat tasks
    assert all(m["sampling/rollouts"] == 4 * m["sampling/groups_sampled"] for m in sampling)
    assert sampling[0]["sampling/groups_sampled"] >= 8  # grpo.signal_pass_groups: the round's 3 and 5 spares
    assert all(m["sampling/signal_rollouts_per_minute"] > 0 for m in sampling)
    assert sum(m["sampling/swapped_for_spread"] for m in sampling) >= 1  # grpo.signal_spread=kind reached the sampler


@pytest.mark.slow
def test_a_spread_column_the_tasks_lack_is_a_one_line_error(tmp_path):
    result = run_cli("--algo", "grpo", "--config", "tiny", "--set", "env.name=filesystem",
                     "--set", "grpo.signal_first=true", "--set", "grpo.signal_spread=colour",
                     "--set", "grpo.max_steps=1", "--output-dir", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "grpo.signal_spread=colour" in result.stderr and "no such column" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_with_it_off_the_run_trains_on_what_the_sampler_drew(runs):
    _, (metrics, traces) = runs
    assert not any(key.startswith("sampling/") for m in metrics for key in m)
    drawn = [group[0]["task_id"] for step in traces for group in _groups(step)]
    assert any(not task.startswith("mixed-") for task in drawn)  # flat groups were trained on
    flat = [g for step in traces for g in _groups(step) if len({r["reward"] for r in g}) == 1]
    assert flat and all(not g[0]["task_id"].startswith("mixed-") for g in flat)


def test_a_task_seen_flat_is_skipped_before_it_is_played():
    pool = [{"task_id": f"t{i}"} for i in range(6)]
    sampler = SignalFirst(pool=pool, group_size=2, passes=1, history=2, explore=0.0, seed=0)
    rows = [dict(pool[0]), dict(pool[0]), dict(pool[1]), dict(pool[1])]
    sampler.observe(pool[0], True)
    stats = RoundStats()
    assert sampler.before_round(rows, stats) == rows and stats.skipped_predicted_flat == 0  # once is not a pattern
    sampler.observe(pool[0], True)
    swapped = sampler.before_round(rows, stats)
    assert stats.skipped_predicted_flat == 1 and swapped[2:] == rows[2:]
    assert swapped[0]["task_id"] == swapped[1]["task_id"] not in ("t0", "t1")
    sampler.observe(pool[0], False)  # the policy changed: it is played again
    assert not sampler.predicted_flat(pool[0])


def test_flat_groups_and_their_replacements():
    pool = [{"task_id": f"t{i}"} for i in range(3)]
    sampler = SignalFirst(pool=pool, group_size=2, seed=1)
    assert sampler.flat_groups([1.0, 1.0, 0.0, 1.0, 0.5, 0.5]) == [0, 2]
    rows = [dict(pool[0])] * 2 + [dict(pool[1])] * 2
    fresh = sampler.draw_groups(rows, 2)
    assert [[r["task_id"] for r in g] for g in fresh] == [["t2", "t2"]]  # the pool ran out after one
    with pytest.raises(ValueError, match="whole groups"):
        sampler.groups(rows[:3])


def test_the_sampler_state_survives_a_checkpoint():
    pool = [{"task_id": f"t{i}"} for i in range(20)]
    a = SignalFirst(pool=pool, group_size=2, seed=3, family="template")
    a.observe({"task_id": "t1", "template": "x"}, True)
    a.draw_groups([dict(pool[0])] * 2, 1)
    b = SignalFirst(pool=pool, group_size=2, seed=99, family="template")
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.state_dict() == a.state_dict()
    assert [g[0]["task_id"] for g in b.draw_groups([dict(pool[0])] * 2, 3)] == \
        [g[0]["task_id"] for g in a.draw_groups([dict(pool[0])] * 2, 3)]


def test_a_family_seen_flat_is_predicted_flat_for_its_other_tasks():
    pool = [{"task_id": f"{kind}{i}", "template": kind} for kind in ("easy", "hard", "mixed") for i in range(20)]
    sampler = SignalFirst(pool=pool, group_size=2, history=2, explore=0.0, seed=0, family="template")
    for i in range(2):
        sampler.observe(pool[i], True)  # two easy tasks, each played once, both flat
    assert sampler.predicted_flat(pool[5]) and not sampler.predicted_flat(pool[25])  # an easy task never played
    rows = [dict(pool[7]), dict(pool[7])]
    stats = RoundStats()
    swapped = sampler.before_round(rows, stats)
    assert stats.skipped_predicted_flat == 1 and swapped[0]["template"] != "easy"
    by_task_only = SignalFirst(pool=pool, group_size=2, history=2, explore=0.0, seed=0)  # no family column named
    by_task_only.observe(pool[0], True), by_task_only.observe(pool[1], True)
    assert not by_task_only.predicted_flat(pool[5])


def test_replacements_favour_families_whose_groups_carried_signal():
    pool = [{"task_id": f"{kind}{i}", "template": kind} for kind in ("teaches", "flat", "new") for i in range(50)]
    sampler = SignalFirst(pool=pool, group_size=2, history=3, seed=0, family="template")
    for i in range(3):
        sampler.observe(pool[i], False)  # teaches: 3 of 3 groups with signal -> weight 7/8
    for i in range(2):
        sampler.observe(pool[50 + i], True)  # flat: 2 of 2 flat (history 3: not yet predicted flat) -> 1/6
    assert sampler.family_weight(pool[10]) == 7 / 8 and sampler.family_weight(pool[60]) == 1 / 6
    assert sampler.family_weight(pool[120]) == 1 / 2  # never seen
    drawn = [group[0]["template"] for group in sampler.draw_groups([], 60)]
    counts = {kind: drawn.count(kind) for kind in ("teaches", "flat", "new")}
    assert counts["teaches"] > counts["new"] > counts["flat"] > 0, counts


def test_a_wide_pass_fills_flat_slots_with_its_groups_that_carry_signal():
    from agent_lightning.config import load_config
    from agent_lightning.rollout.trl_rollout import CachedRollouts

    rollouts = CachedRollouts(load_config("tiny", []), env_cls=None, system=None,
                              signal_first=SignalFirst(pool=[], group_size=2))
    rows = [{"task_id": t} for t in "aabbcc"]
    episodes, scores = list("AABBCC"), [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]  # a and c flat
    played = [[{"task_id": t}] * 2 for t in "xyzw"]
    played_scores = [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.5, 0.0]  # x, z and w carry signal, y is flat
    stats = RoundStats()
    rollouts._fill(rows, episodes, scores, played, list("XXYYZZWW"), played_scores, stats)
    assert [r["task_id"] for r in rows] == list("xxbbzz") and episodes == list("XXBBZZ")
    assert scores == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0] and stats.groups_replaced == 2  # w: a spare no slot needed


def test_spread_swaps_a_repeated_template_for_one_not_in_the_round():
    pool = [{"task_id": f"{kind}{i}", "template": kind} for kind in "abc" for i in range(20)]
    rows = [dict(pool[i]) for i in (0, 0, 1, 1, 2, 2, 40, 40)]  # a, a, a, c
    stats = RoundStats()
    spread = SignalFirst(pool=pool, group_size=2, seed=0, spread="template").before_round(rows, stats)
    templates = [spread[i]["template"] for i in range(0, 8, 2)]
    assert templates[0] == "a" and templates[3] == "c" and "b" in templates  # the one value missing came in
    assert stats.swapped_for_spread == 1 and spread[0] == rows[0] and spread[6:] == rows[6:]
    assert sorted(templates) == ["a", "a", "b", "c"]  # a second swap had no value left: the group stays
    assert all(spread[i]["task_id"] == spread[i + 1]["task_id"] for i in range(0, 8, 2))  # whole groups
    unspread = SignalFirst(pool=pool, group_size=2, seed=0).before_round(rows, RoundStats())
    assert unspread == rows


def test_spread_replacements_come_from_templates_not_in_the_round_first():
    pool = [{"task_id": f"{kind}{i}", "template": kind} for kind in "abcd" for i in range(20)]
    sampler = SignalFirst(pool=pool, group_size=2, seed=0, spread="template")
    rows = [dict(pool[0])] * 2 + [dict(pool[20])] * 2  # a, b
    drawn = [group[0]["template"] for group in sampler.draw_groups(rows, 4)]
    assert sorted(drawn[:2]) == ["c", "d"] and len(drawn) == 4  # then any template: none left unused
