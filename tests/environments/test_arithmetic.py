import pytest

from agent_lightning.registry import ENVIRONMENTS, discover
from agent_lightning.errors import UserError


@pytest.fixture(scope="module")
def env_cls():
    discover()
    return ENVIRONMENTS.get("arithmetic").obj


def test_splits_are_seeded_sized_and_disjoint(env_cls):
    train, test = env_cls.tasks("train", 500, 0), env_cls.tasks("test", 100, 0)
    assert len(train) == 500 and len(test) == 100
    assert not {t["prompt"] for t in train} & {t["prompt"] for t in test}
    assert env_cls.tasks("train", 500, 0) == train
    assert env_cls.tasks("train", 50, 1) != train[:50]
    assert {t["tier"] for t in test} == {1, 2, 3}
    assert len({t["task_id"] for t in train}) == 500


def test_unknown_split(env_cls):
    with pytest.raises(UserError, match="split 'dev'"):
        env_cls.tasks("dev", 1, 0)


@pytest.mark.parametrize("answer, reply, ok", [
    ("12", "12", True),
    ("12", "7 + 5 = 12.", True),
    ("12", "The answer is 13", False),
    ("12", "", False),
    ("TIGER", "Answer: TIGER", True),
    ("TIGER", "tiger.", True),
    ("regit", "The word backwards is:\n'regit'", True),
    ("regit", "regti", False),
])
def test_verifier(env_cls, answer, reply, ok):
    env = env_cls()
    assert env.reset(task_id="t", prompt="q", answer=answer, tier=1) is None
    outcome = env._finish(reply)
    assert outcome.success is ok and outcome.verified and outcome.expected == answer
    assert outcome.progress == float(ok)
