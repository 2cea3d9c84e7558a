"""`carecoin node backup` / `restore` on a one-branch network run in process: what an operator sees when the
copy is good, when the node still runs, and when the backup or the target is not what restore expects."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from aiohttp import web
from click.testing import CliRunner

from cli.backup import MANIFEST
from cli.ports import free_port_base
from cli.main import main
from cli.network import init_network
from node.app import create_app
from node.app_keys import STORE_KEY
from node.config import load_config


@pytest.fixture
def net(tmp_path):
    summary = init_network(tmp_path / "net", 2, base_port=free_port_base(4))
    return summary


async def _run_until(config, height: int) -> int:
    """Run the node of ``config`` in process until its head reaches ``height``; return the head."""
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    try:
        store = runner.app[STORE_KEY]
        for _ in range(500):
            if store.head().height >= height:
                break
            await asyncio.sleep(0.02)
        return store.head().height
    finally:
        await runner.cleanup()


def _invoke(*args: str):
    return CliRunner().invoke(main, ["node", *args])


@pytest.fixture(scope="module")
def built_branch(tmp_path_factory):
    """One branch run to height 3 and stopped, built once per module (node.toml's paths are relative)."""
    root = tmp_path_factory.mktemp("backup-net") / "net"
    summary = init_network(root, 1, base_port=free_port_base(2))
    head = asyncio.run(_run_until(load_config(summary.branches[0].config_path), 3))
    return root, summary.branches[0].config_path.relative_to(root), head


@pytest.fixture
def one_branch(built_branch, tmp_path):
    """A fresh copy of that stopped branch for each test."""
    root, config_path, head = built_branch
    shutil.copytree(root, tmp_path / "net")
    return load_config(tmp_path / "net" / config_path), head


def test_a_stopped_node_is_backed_up_with_checksums_and_restored_at_the_same_head(one_branch, tmp_path):
    cfg, head = one_branch
    res = _invoke("backup", "--config", str(cfg.path), "--out", str(tmp_path / "b1"), "--json")
    assert res.exit_code == 0, res.output
    manifest = json.loads(res.output)
    paths = {f["path"] for f in manifest["files"]}
    assert "consensus.wal" in paths and "CURRENT" in paths and "vault/master.key" in paths
    assert "vault/seen-requests" in paths and "LOCK" not in paths
    assert manifest["head"]["height"] == head and (tmp_path / "b1" / MANIFEST).is_file()

    shutil.rmtree(cfg.data_dir)  # the disk is lost
    res = _invoke("restore", "--from", str(tmp_path / "b1"), "--config", str(cfg.path))
    assert res.exit_code == 0, res.output
    assert f"restored node {cfg.name} at height {head}" in res.output
    assert asyncio.run(_run_until(cfg, head + 2)) >= head + 2  # it starts from there and goes on


def test_a_running_node_is_not_backed_up(one_branch, tmp_path):
    cfg, _ = one_branch

    async def backup_while_running():
        runner = web.AppRunner(create_app(cfg))
        await runner.setup()
        try:
            return _invoke("backup", "--config", str(cfg.path), "--out", str(tmp_path / "b"))
        finally:
            await runner.cleanup()

    res = asyncio.run(backup_while_running())
    assert res.exit_code != 0 and "in use by a running node; stop it first" in res.output
    assert not (tmp_path / "b" / MANIFEST).exists()


def test_restore_refuses_a_non_empty_data_dir_and_writes_nothing(one_branch, tmp_path):
    cfg, _ = one_branch
    assert _invoke("backup", "--config", str(cfg.path), "--out", str(tmp_path / "b")).exit_code == 0
    before = sorted(p.name for p in cfg.data_dir.iterdir())
    res = _invoke("restore", "--from", str(tmp_path / "b"), "--config", str(cfg.path))
    assert res.exit_code != 0 and "is not empty" in res.output
    assert sorted(p.name for p in cfg.data_dir.iterdir()) == before


def test_restore_names_the_file_whose_checksum_differs_and_leaves_the_data_dir_absent(one_branch, tmp_path):
    cfg, _ = one_branch
    assert _invoke("backup", "--config", str(cfg.path), "--out", str(tmp_path / "b")).exit_code == 0
    wal = tmp_path / "b" / "data" / "consensus.wal"
    raw = bytearray(wal.read_bytes())
    raw[-1] ^= 1
    wal.write_bytes(bytes(raw))
    shutil.rmtree(cfg.data_dir)
    res = _invoke("restore", "--from", str(tmp_path / "b"), "--config", str(cfg.path))
    assert res.exit_code != 0 and "consensus.wal has SHA-256" in res.output and "the manifest says" in res.output
    assert not cfg.data_dir.exists()


def test_restore_refuses_a_file_the_manifest_does_not_list(one_branch, tmp_path):
    cfg, _ = one_branch
    assert _invoke("backup", "--config", str(cfg.path), "--out", str(tmp_path / "b")).exit_code == 0
    (tmp_path / "b" / "data" / "vault" / "planted").write_text("x")
    shutil.rmtree(cfg.data_dir)
    res = _invoke("restore", "--from", str(tmp_path / "b"), "--config", str(cfg.path))
    assert res.exit_code != 0 and "planted is not in the manifest" in res.output


def test_restore_refuses_another_nodes_backup(net, tmp_path):
    cfg1, cfg2 = (load_config(b.config_path) for b in net.branches)
    asyncio.run(_run_until(cfg1, 0))
    assert _invoke("backup", "--config", str(cfg1.path), "--out", str(tmp_path / "b")).exit_code == 0
    res = _invoke("restore", "--from", str(tmp_path / "b"), "--config", str(cfg2.path))
    assert res.exit_code != 0 and f"the backup is of node '{cfg1.name}'" in res.output
    assert not cfg2.data_dir.exists() or not any(cfg2.data_dir.iterdir())


def test_a_directory_without_a_manifest_is_not_a_backup(one_branch, tmp_path):
    cfg, _ = one_branch
    (tmp_path / "half").mkdir()
    res = _invoke("restore", "--from", str(tmp_path / "half"), "--config", str(cfg.path))
    assert res.exit_code != 0 and "holds no manifest.json" in res.output
