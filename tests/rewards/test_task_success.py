"""task_success: 1 for a verified success, 0 otherwise, None without an environment; same verdict as exact_answer."""


def test_filesystem_reference_solution_succeeds_and_a_no_op_fails(episodes):
    task_success = episodes.reward("task_success")
    task = episodes.task("filesystem", "fs-test-00001")  # copy_file: read, then write
    good, good_env = episodes.solved("filesystem", task)
    noop, noop_env = episodes.run("filesystem", task, ["I am done."])
    completions, envs = [good, noop], [good_env, noop_env]
    assert task_success(completions=completions, environments=envs) == [1.0, 0.0]
    assert episodes.reward("exact_answer")(environments=envs) == [1.0, 0.0]


def test_single_turn_answers(episodes):
    task_success = episodes.reward("task_success")
    task = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    right = episodes.single_turn("arithmetic", task, f"The answer is {task['answer']}")
    wrong = episodes.single_turn("arithmetic", task, "I do not know")
    assert task_success(completions=[right[0], wrong[0]], environments=[right[1], wrong[1]]) == [1.0, 0.0]


def test_without_environments_it_is_not_applicable(episodes):
    task_success = episodes.reward("task_success")
    assert task_success(completions=["a", "b"], environments=None) == [None, None]
    assert task_success(completions=["a"]) == [None]


def test_an_unverified_environment_is_verified_on_first_read(episodes):
    """Passed straight to TRL, nobody has called _finish_episode: the reward does it, once."""
    task = episodes.task("filesystem", "fs-test-00000")
    messages, env = episodes.solved("filesystem", task, finish=False)
    assert not env.outcome.verified
    assert episodes.reward("task_success")(completions=[messages], environments=[env]) == [1.0]
    assert env.outcome.verified and env.outcome.tool_calls == 1 and env.outcome.turns == 2
