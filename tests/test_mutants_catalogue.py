"""The behaviour-mutation catalogue stays runnable: every mutant's line is still in its
file exactly once and its tests exist, so moved code is noticed by the fast suite
long before the mutation suite would call the mutant stale."""

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutants

CATALOGUE = mutants.load()


def test_the_catalogue_covers_its_promises_once_each() -> None:
    assert len(CATALOGUE) >= 20
    assert len({m.promise for m in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: m.name)
def test_each_mutant_applies_once_and_names_tests_that_exist(mutant: mutants.Mutant) -> None:
    source = (ROOT / mutant.file).read_text()
    broken = mutants.mutate(source, mutant.code, mutant.mutant)
    assert broken is not None, f"{mutant.name} is stale: rewrite it where the code now lives"
    assert broken != source
    if mutant.file.endswith(".py"):
        ast.parse(broken)  # a mutant breaks behaviour, not syntax
    for test in mutant.tests:
        path, _, name = test.partition("::")
        tree = ast.parse((ROOT / path).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.AsyncFunctionDef)}
        defined |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name.split("[")[0] in defined, f"{mutant.name}: no test {test}"


def test_mutate_keeps_the_indentation_and_refuses_a_missing_or_repeated_line() -> None:
    source = "def f():\n    x = 1\n    return x\n"
    assert mutants.mutate(source, "x = 1", "x = 2") == "def f():\n    x = 2\n    return x\n"
    assert mutants.mutate(source, "x = 3", "x = 2") is None
    assert mutants.mutate(source + "    x = 1\n", "x = 1", "x = 2") is None


def test_a_malformed_catalogue_entry_is_named(tmp_path: Path) -> None:
    catalogue = tmp_path / "mutants.toml"
    catalogue.write_text('[[mutant]]\nname = "x"\nfile = "csf/a.py"\ntests = []\n')
    with pytest.raises(mutants.CatalogueError, match=r"mutant 1 \(x\).*promise"):
        mutants.load(catalogue)
