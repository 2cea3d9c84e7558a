"""`carecoin node backup` / `carecoin node restore`: a node's data dir, copied with a manifest and checksums.

**The node must be stopped** for a backup. The copy is taken while holding the data dir's LevelDB lock, so no
node can start on it meanwhile, and a running node is refused ("in use by another node: stop it first"). A
copy of a live LevelDB is not consistent (compaction deletes files while they are read, the newest ``.log`` is
being appended), and the consensus WAL, the vault, its replay log and the audit trail must be taken at the
same instant as the blocks, which only a stopped node guarantees. With four or more branches one node may be
stopped for a backup: the others keep a quorum, and the node catches up when it starts again.

A backup directory holds ``data/`` (every file of the data dir: LevelDB, ``consensus.wal``, ``vault/`` with
its ``seen-requests`` replay log, ``audit/``; the ``LOCK`` file excepted) and ``manifest.json``, written last
(no manifest = an unfinished backup): format and version, node name and key, chain id, the genesis block
hash, the head (height, block hash), where the vault master key lives, and per file its path, size, mode and
SHA-256. A vault master key outside the data dir (``vault_master_key_file`` or ``CARECOIN_VAULT_MASTER_KEY``)
is **not** copied: keep it apart, the restored vault opens only with it.

``restore`` refuses a data dir that is not empty, a backup of another chain or another node key, and any file
whose size or checksum differs, or that is missing or not listed; it copies into a temporary sibling of the data
dir, fsyncs, renames it into place, then opens the store and checks the head the manifest names. The restored
node starts at the backup's height and catches up from its peers.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import click

from ledger.chain import genesis_block
from ledger.errors import LedgerError, StorageError
from ledger.genesis import load_genesis
from ledger.keys import load_key
from ledger.storage import Store
from node.config import NodeConfig, load_config
from node.vault import fsync_dir
from node.errors import NodeError

FORMAT = "carecoin-node-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATA = "data"
SKIP = {"LOCK"}  # LevelDB's lock file: recreated on open
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore refused, with what was seen and what was expected."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the data dir, "/"-separated
    size: int
    mode: int
    sha256: str


def compute_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(src, dst)
    os.chmod(dst, stat.S_IMODE(src.stat().st_mode))
    with dst.open("rb") as fh:
        os.fsync(fh.fileno())


def list_files(root: Path) -> list[Path]:
    """Every regular file under ``root`` but the lock, sorted; a symlink or special file is refused."""
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BackupError(f"{path} is a symlink or special file; expected only files and directories")
        if path.is_file() and path.relative_to(root).as_posix() not in SKIP:
            out.append(path)
    return out


def _node_identity(cfg: NodeConfig) -> tuple[str, str, str]:
    """(chain id, genesis block hash hex, node key hex) of a node.toml."""
    genesis = load_genesis(cfg.genesis_file)
    return genesis.chain_id, genesis_block(genesis)[0].hash.hex(), load_key(cfg.key_file).public_key.hex()


@contextlib.contextmanager
def hold_lock(data_dir: Path):
    """Hold LevelDB's own lock on ``data_dir`` (``LOCK``, fcntl): a node starting meanwhile is refused."""
    fd = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BackupError(f"data dir {data_dir} is in use by a running node; stop it first") from None
        yield
    finally:
        os.close(fd)


def _open_stopped(data_dir: Path) -> Store:
    try:
        return Store.open(str(data_dir), create=False)
    except StorageError as exc:
        if "in use" in str(exc):
            raise BackupError(f"data dir {data_dir} is in use by a running node; stop it first (a live copy of "
                              f"LevelDB is not consistent)") from None
        raise BackupError(f"data dir {data_dir} does not open as a node store: {exc}") from None


def backup_node(cfg: NodeConfig, out: Path, *, now: datetime.datetime | None = None) -> dict:
    """Copy the stopped node's data dir into ``out`` (absent or empty) with a manifest; return the manifest."""
    chain_id, genesis_hash, node_key = _node_identity(cfg)
    if not cfg.data_dir.is_dir():
        raise BackupError(f"data dir {cfg.data_dir} does not exist; nothing to back up")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} exists and is not an empty directory; expected a new backup directory")
    if out.resolve().is_relative_to(cfg.data_dir.resolve()):
        raise BackupError(f"{out} is inside the data dir {cfg.data_dir}; expected a directory outside it")
    store = _open_stopped(cfg.data_dir)  # a running node is refused here; LevelDB recovers its log on open
    try:
        head = store.head()
        genesis_ok = head is not None and store.get_block(0).hash.hex() == genesis_hash
    finally:
        store.close()  # closed: no background compaction moves files while they are copied
    if not genesis_ok:
        raise BackupError(f"data dir {cfg.data_dir} holds no chain of {cfg.genesis_file.name} "
                          f"(genesis block {genesis_hash[:16]}…)")
    with hold_lock(cfg.data_dir):  # no node starts on the data dir while we copy
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        entries = []
        for src in list_files(cfg.data_dir):
            rel = src.relative_to(cfg.data_dir).as_posix()
            dst = out / DATA / rel
            _copy_file(src, dst)
            entries.append(FileEntry(rel, dst.stat().st_size, stat.S_IMODE(src.stat().st_mode),
                                     compute_sha256(dst)))
        manifest = {
            "format": FORMAT, "version": VERSION,
            "created_at": (now or datetime.datetime.now(datetime.timezone.utc)).isoformat(timespec="seconds"),
            "node": cfg.name, "node_public_key": node_key, "chain_id": chain_id, "genesis_block_hash": genesis_hash,
            "head": {"height": head.height, "block_hash": head.block_hash.hex()},
            "vault_master_key": "external (not in this backup)" if cfg.vault_master_key_file is not None
            or os.environ.get("CARECOIN_VAULT_MASTER_KEY") else "in the data dir (vault/master.key)",
            "files": [{"path": e.path, "size": e.size, "mode": f"{e.mode:04o}", "sha256": e.sha256}
                      for e in entries],
        }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.rename(out / MANIFEST)
    fsync_dir(out)
    return manifest


def read_manifest(src: Path) -> dict:
    """The backup's manifest, its shape checked; raise ``BackupError``."""
    path = src / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BackupError(f"{src} holds no {MANIFEST}; expected a finished `carecoin node backup`") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} does not read as JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise BackupError(f"{path}: format {doc.get('format') if isinstance(doc, dict) else doc!r} version "
                          f"{doc.get('version') if isinstance(doc, dict) else None!r}; expected {FORMAT} "
                          f"version {VERSION}")
    files = doc.get("files")
    if not isinstance(files, list) or not all(
            isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("size"), int)
            and isinstance(f.get("sha256"), str) for f in files):
        raise BackupError(f"{path}: files must be a list of {{path, size, sha256}}")
    for f in files:
        rel = Path(f["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise BackupError(f"{path}: file path {f['path']!r} leaves the data dir")
    return doc


def verify_backup(src: Path, manifest: dict) -> None:
    """Every listed file present with its size and checksum, and nothing unlisted; raise ``BackupError``."""
    data = src / DATA
    listed = {f["path"]: f for f in manifest["files"]}
    present = {p.relative_to(data).as_posix() for p in list_files(data)} if data.is_dir() else set()
    for rel in sorted(present - set(listed)):
        raise BackupError(f"{data / rel} is not in the manifest; expected only the files it lists")
    for rel, f in listed.items():
        path = data / rel
        if rel not in present:
            raise BackupError(f"{path} is missing; the manifest lists it ({f['size']} bytes)")
        size = path.stat().st_size
        if size != f["size"]:
            raise BackupError(f"{path} is {size} bytes; the manifest says {f['size']}")
        digest = compute_sha256(path)
        if digest != f["sha256"]:
            raise BackupError(f"{path} has SHA-256 {digest[:16]}…; the manifest says {f['sha256'][:16]}…")


def restore_node(cfg: NodeConfig, src: Path) -> dict:
    """Restore the backup ``src`` into ``cfg``'s (absent or empty) data dir; return the manifest."""
    manifest = read_manifest(src)
    chain_id, genesis_hash, node_key = _node_identity(cfg)
    if (manifest.get("chain_id"), manifest.get("genesis_block_hash")) != (chain_id, genesis_hash):
        raise BackupError(f"the backup is of chain {manifest.get('chain_id')!r} (genesis block "
                          f"{str(manifest.get('genesis_block_hash'))[:16]}…); {cfg.path.name} runs {chain_id!r} "
                          f"({genesis_hash[:16]}…)")
    if manifest.get("node_public_key") != node_key:
        raise BackupError(f"the backup is of node {manifest.get('node')!r} (key "
                          f"{str(manifest.get('node_public_key'))[:16]}…); {cfg.path.name}'s key is "
                          f"{node_key[:16]}…: restore a node's own backup (its consensus record is its own)")
    data_dir = cfg.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"data dir {data_dir} is not empty; expected an empty or absent one (move it aside "
                          f"first: restore never overwrites)")
    verify_backup(src, manifest)
    tmp = data_dir.with_name(data_dir.name + ".restoring")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True, mode=0o700)
    for f in manifest["files"]:
        _copy_file(src / DATA / f["path"], tmp / f["path"])
    for d in sorted({p.parent for p in tmp.rglob("*")}, key=lambda p: -len(p.parts)):
        fsync_dir(d)
    if data_dir.exists():
        data_dir.rmdir()
    tmp.rename(data_dir)
    fsync_dir(data_dir.parent)
    store = _open_stopped(data_dir)
    try:
        head = store.head()
        want = manifest["head"]
        if head is None or (head.height, head.block_hash.hex()) != (want["height"], want["block_hash"]):
            raise BackupError(f"the restored store's head is {None if head is None else head.height}; the "
                              f"manifest says {want['height']}")
    finally:
        store.close()
    return manifest


def _run(verb: str, config_path: str, action, as_json: bool) -> tuple[NodeConfig, dict] | None:
    """Load the node.toml, run ``action(cfg)`` and either print its manifest as JSON (then None) or return
    (config, manifest) for the command's own summary; a refusal names the verb and the reason."""
    try:
        cfg = load_config(config_path)
    except NodeError as exc:
        raise click.ClickException(exc.message) from None
    try:
        manifest = action(cfg)
    except (BackupError, LedgerError, NodeError, OSError) as exc:
        raise click.ClickException(f"{verb} refused: {exc}") from None
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return None
    return cfg, manifest


@click.command("backup")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The node's node.toml (the node must be stopped).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New backup directory (absent or empty).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def backup(config_path: str, out_dir: Path, as_json: bool) -> None:
    """Copy a STOPPED node's data dir (LevelDB, consensus WAL, vault, replay log, audit) with a manifest of
    SHA-256 checksums. A running node is refused: stop it, back up, start it again (it catches up).

    \b
    Example:
      carecoin node backup --config net/branch-1/node.toml --out /backups/branch-1-2024-06-01
    """
    done = _run("backup", config_path, lambda cfg: backup_node(cfg, out_dir), as_json)
    if done is None:
        return
    _, manifest = done
    total = sum(f["size"] for f in manifest["files"])
    click.echo(f"backed up node {manifest['node']} at height {manifest['head']['height']}: "
               f"{len(manifest['files'])} files, {total / 1e6:.1f} MB, into {out_dir}")
    click.echo(f"vault master key: {manifest['vault_master_key']}")


@click.command("restore")
@click.option("--from", "src", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A backup directory (what `carecoin node backup` wrote).")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The node.toml of the node to restore (its data dir must be empty or absent).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def restore(src: Path, config_path: str, as_json: bool) -> None:
    """Restore a node's backup into its empty data dir after checking every checksum; then start the node
    and it catches up from its peers.

    \b
    Example:
      carecoin node restore --from /backups/branch-1-2024-06-01 --config net/branch-1/node.toml
    """
    done = _run("restore", config_path, lambda cfg: restore_node(cfg, src), as_json)
    if done is None:
        return
    cfg, manifest = done
    click.echo(f"restored node {manifest['node']} at height {manifest['head']['height']} "
               f"({len(manifest['files'])} files verified) into {cfg.data_dir}")
    click.echo(f"start it: carecoin node start --config {cfg.path}  (it catches up from its peers)")
