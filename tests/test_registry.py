import textwrap

import pytest

from agent_lightning import registry
from agent_lightning.errors import UserError
from agent_lightning.registry import ENVIRONMENTS, REWARDS, Registry, discover, import_plugin_file
from conftest import run_cli


def test_builtin_plugins_are_discovered():
    discover()
    assert "exact_answer" in REWARDS
    assert "arithmetic" in ENVIRONMENTS
    plugin = REWARDS.get("exact_answer")
    assert plugin.source.endswith("rewards/exact_answer.py")
    assert plugin.summary.startswith("1 if the environment's verified outcome")


def test_unknown_name_suggests_and_says_where():
    with pytest.raises(UserError) as info:
        REWARDS.get("exact_anwser")
    msg = str(info.value)
    assert "Did you mean 'exact_answer'?" in msg and "Looked in:" in msg and "rewards" in msg


def test_file_and_dotted_paths(tmp_path, monkeypatch):
    plugin_file = tmp_path / "my_rewards.py"
    plugin_file.write_text(textwrap.dedent('''
        from agent_lightning import reward

        @reward("length_bonus_test")
        def length_bonus(completions, **kwargs):
            """Longer is better (test)."""
            return [float(len(c)) for c in completions]

        def plain(completions):
            return [0.0 for _ in completions]
    '''))
    assert REWARDS.get(f"{plugin_file}:length_bonus").name == "length_bonus_test"
    assert REWARDS.get(str(plugin_file)).name == "length_bonus_test"
    assert REWARDS.get(f"{plugin_file}:plain").obj([1, 2]) == [0.0, 0.0]
    monkeypatch.syspath_prepend(str(tmp_path))
    assert REWARDS.get("my_rewards:plain").name == "plain"


def test_duplicate_names_name_both_files(tmp_path):
    reg = Registry("reward", "nowhere", "none")
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    for f in (a, b):
        f.write_text("def r(completions):\n    return []\n")
    mod_a, mod_b = import_plugin_file(a), import_plugin_file(b)
    reg.add("same", mod_a.r)
    with pytest.raises(UserError) as info:
        reg.add("same", mod_b.r)
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_broken_plugin_file_names_file_and_line(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("x = 1\nraise RuntimeError('boom')\n")
    with pytest.raises(UserError) as info:
        import_plugin_file(bad)
    assert f"{bad}:2: cannot import plugin: RuntimeError: boom" in str(info.value)
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def f(:\n")
    with pytest.raises(UserError, match=r"syntax.py:1: cannot import plugin: SyntaxError"):
        import_plugin_file(syntax)


def test_plugin_dir_via_cli_and_env(tmp_path):
    (tmp_path / "shout.py").write_text(textwrap.dedent('''
        from agent_lightning import reward

        @reward("shout_test", weight=0.5)
        def shout(completions):
            """Rewards capital letters."""
            return [1.0 for _ in completions]
    '''))
    for args, env in ((["--plugin-dir", str(tmp_path)], None), ([], {registry.ENV_PLUGIN_DIRS: str(tmp_path)})):
        result = run_cli("rewards", "list", "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        assert '"name": "shout_test"' in result.stdout and '"weight": 0.5' in result.stdout
    (tmp_path / "zz_broken.py").write_text("import not_a_module_anywhere\n")
    result = run_cli("rewards", "list", "--plugin-dir", str(tmp_path))
    assert result.returncode == 2
    assert "zz_broken.py:1: cannot import plugin: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_public_decorators_are_not_shadowed_by_submodules():
    import importlib
    import inspect
    import pkgutil

    import agent_lightning

    for info in pkgutil.walk_packages(agent_lightning.__path__, "agent_lightning."):
        if not info.name.endswith(".__main__"):  # `python -m agent_lightning` runs the CLI on import
            importlib.import_module(info.name)
    assert inspect.isfunction(agent_lightning.environment) and inspect.isfunction(agent_lightning.reward)
