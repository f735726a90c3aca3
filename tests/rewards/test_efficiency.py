"""efficiency: 1 for a success within the reference's call count, (r+1)/(u+1) above it, 0 for a failure."""

import json

LOOK = {"name": "list_dir", "arguments": {"path": "."}}


def test_against_the_reference_solver(episodes):
    efficiency = episodes.reward("efficiency")
    task = episodes.task("filesystem", "fs-test-00001")  # copy_file: the reference makes 2 calls
    assert len(json.loads(task["solution"])["calls"]) == 2
    runs = [
        episodes.solved("filesystem", task),                                 # 2 calls
        episodes.solved("filesystem", task, extra_calls=(LOOK,)),            # 3 calls: 3/4
        episodes.solved("filesystem", task, extra_calls=(LOOK, LOOK, LOOK)),  # 5 calls: 3/6
        episodes.run("filesystem", task, [episodes.chatml(LOOK), "Done."]),  # failed
    ]
    assert [env.outcome.tool_calls for _, env in runs] == [2, 3, 5, 1]
    completions, envs = [m for m, _ in runs], [e for _, e in runs]
    solution = [task["solution"]] * 4
    assert efficiency(completions=completions, environments=envs, solution=solution) == [1.0, 0.75, 0.5, 0.0]


def test_fewer_calls_than_the_reference_is_full_score(episodes):
    task = episodes.task("filesystem", "fs-test-00001")
    solution = json.loads(task["solution"])
    write = solution["calls"][-1]  # the content is in the prompt's source file; writing it blind also succeeds
    messages, env = episodes.run("filesystem", task, [episodes.chatml(write), solution["final"]])
    assert env.outcome.success and env.outcome.tool_calls == 1
    assert episodes.reward("efficiency")(completions=[messages], environments=[env],
                                         solution=[task["solution"]]) == [1.0]


def test_no_solution_column_or_a_bad_one_is_not_applicable(episodes):
    efficiency = episodes.reward("efficiency")
    task = episodes.task("filesystem", "fs-test-00001")
    messages, env = episodes.solved("filesystem", task)
    assert efficiency(completions=[messages], environments=[env]) == [None]
    assert efficiency(completions=[messages] * 3, environments=[env] * 3,
                      solution=["not json", '{"final": "x"}', {"calls": [1, 2]}]) == [None, None, 1.0]
    arithmetic = episodes.env_cls("arithmetic").tasks("test", 1, 0)[0]
    completion, single = episodes.single_turn("arithmetic", arithmetic, arithmetic["answer"])
    assert efficiency(completions=[completion], environments=[single]) == [None]
