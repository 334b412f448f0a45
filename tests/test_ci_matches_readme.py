"""The CI script runs exactly the test command the README documents."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = "python -m pytest -q"
    assert f'python -m pip install -e ".[test]" && {command}' in readme
    assert 'pip install --quiet --disable-pip-version-check -e ".[test]"' in ci
    assert ci.strip().splitlines()[-1] == command
