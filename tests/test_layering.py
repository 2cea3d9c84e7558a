"""Imports point downward only (cli -> {carecoin, node} -> {consensus, ledger}); the pure cores stay pure."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ledger", "consensus", "node", "cli", "carecoin")
IO_MODULES = {"asyncio", "aiohttp", "time", "random", "socket", "plyvel", "threading", "os", "subprocess"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", modules("ledger"), ids=str)
def test_ledger_imports_nothing_above_it(path):
    bad = {n for n in imports_of(path) if top(n) in {"consensus", "node", "cli", "aiohttp", "asyncio"}}
    assert not bad, f"{path} imports {bad}"


def test_only_the_storage_module_imports_plyvel():
    users = [p.name for p in modules("ledger") + modules("consensus") + modules("node") + modules("cli") + modules("carecoin")
             if any(top(n) == "plyvel" for n in imports_of(p))]
    assert users in ([], ["storage.py"]), users


@pytest.mark.parametrize("path", [p for p in modules("consensus") if "sim" not in p.parts], ids=str)
def test_consensus_core_does_no_io_and_never_imports_the_simulator(path):
    names = imports_of(path)
    bad = {n for n in names if top(n) in IO_MODULES | {"node", "cli"} or n.startswith("consensus.sim")}
    assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("path", modules("node"), ids=str)
def test_node_never_imports_the_cli(path):
    assert not {n for n in imports_of(path) if top(n) in {"cli", "carecoin"}}


@pytest.mark.parametrize("path", modules("carecoin"), ids=str)
def test_client_library_needs_only_the_ledger_core(path):
    """A program using the client library pulls in no node, consensus or CLI code."""
    bad = {n for n in imports_of(path) if top(n) in {"node", "consensus", "cli", "click", "plyvel"}}
    assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("path", [p for p in modules("cli") if p.name != "node.py"], ids=str)
def test_the_cli_speaks_http_only_through_the_client_library(path):
    bad = {n for n in imports_of(path) if n in {"urllib.request", "urllib.error", "aiohttp", "http.client"}}
    assert not bad, f"{path} imports {bad}"


def test_receipt_verifier_needs_only_the_pure_core():
    """A customer's verifier (JSON and compact files) needs ledger's pure core, pynacl and msgpack — nothing
    else from the project."""
    path = ROOT / "ledger" / "receipt.py"
    if not path.exists():
        pytest.skip("ledger/receipt.py not written yet")
    seen, todo = set(), ["ledger.receipt", "ledger.receipt_compact"]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        file = ROOT / (mod.replace(".", "/") + ".py")
        if not file.exists():
            file = ROOT / mod.replace(".", "/") / "__init__.py"
        for name in imports_of(file):
            if top(name) in PACKAGES:
                todo.append(name)
    assert all(top(m) == "ledger" for m in seen), seen
    assert "ledger.storage" not in seen
