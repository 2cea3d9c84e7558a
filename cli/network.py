"""`carecoin network ...`: create the files of a new network.

`carecoin network init --branches 4 --dir DIR` writes, per branch, a node key, client keys for the branch's
admin and staff (placed in that branch in genesis) and an issuer desk key (issuer is company-wide: one key per
branch keeps each branch's minting nonces apart), and a node.toml; plus the company-wide compliance, auditor
and treasury keys in DIR/company/, and one DIR/genesis.json shared by all. It prints who holds what (key
file, role, branch). ``init_network`` is the same thing as a function, for the demo, benchmarks and tests.

After genesis no single key changes roles or policy: the branch admins decide together (``propose-*`` and
``approve-proposal``, a quorum of distinct branches).

`carecoin network add-branch --dir DIR --name NAME` prepares a new branch of that network: its node key, admin
and staff keys, and a node.toml (the next free port pair on the network's host, peers = the branches of DIR),
then prints the exact governance commands that add it (propose, approvals by a quorum of branches), the
command that starts its node, and those that grant its admin and staff their roles once it exists. The
running nodes need no config change: they learn the new validator's address from the decision on chain.
``add_branch`` is the same as a function.

Every new network gets a fresh, unique chain id (``<preset chain_id>-<16 random hex digits>``) unless
``--chain-id`` names one: signatures include the chain id, so a tx signed for one network never replays on
another, even two made from the same preset.

TLS (``node.tls``, ``node.tls_certs``): every network gets a network CA (``company/tls-ca.key`` 0600 and
``company/tls-ca.pem``) pinned in genesis.json (``"tls": {"ca_pem", "ca_sha256"}``) and, per branch, a peer
certificate for mutual TLS on the validator links binding the branch's node key (``<branch>/tls/peer.pem`` +
``peer.key``); ``--tls`` also gives every branch an HTTPS certificate for its client API (``tls/api.pem`` +
``api.key``, SAN the listen host) and the URLs printed become ``https://``. ``add-branch`` issues the new
branch's certificates with the same CA. The CLI trusts the CA through ``--ca`` / ``CARECOIN_CA`` or finds it
itself next to the key it is given (``cli.client.find_network_ca``).
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import click
import tomli_w

from ledger.errors import LedgerError
from ledger.genesis import Genesis, Validator, load_genesis, save_genesis
from ledger.keys import KeyPair, load_key, save_key
from node.config import (
    ListenAddress,
    NodeConfig,
    PeerEntry,
    Preset,
    TlsFiles,
    compute_peer_url,
    config_to_dict,
    is_local_or_any_host,
    is_valid_host,
    load_config,
    load_preset,
)
from node.errors import ConfigError, NodeError
from node.tls_certs import compute_fingerprint, make_api_cert, make_ca, make_peer_cert, write_private, write_public

CLIENT_ROLES = ("admin", "issuer", "staff")
_GENESIS_ROLE = {"admin": "branch-admin", "issuer": "issuer", "staff": "staff"}
COMPANY_ROLES = ("compliance", "auditor", "treasury")  # company-wide: DIR/company/<role>.key
MAX_BRANCHES = 64


@dataclass(frozen=True, slots=True)
class BranchFiles:
    name: str
    node_key: bytes
    client_keys: dict[str, bytes]
    config_path: Path
    api: ListenAddress
    peer: ListenAddress
    api_url: str = ""
    peer_url: str = ""


@dataclass(frozen=True, slots=True)
class NetworkSummary:
    dir: Path
    chain_id: str
    genesis_path: Path
    branches: tuple[BranchFiles, ...]
    company_keys: dict[str, bytes] = None  # type: ignore[assignment]  # role -> public key (DIR/company/)
    ca_file: Path | None = None  # the network CA certificate (DIR/company/tls-ca.pem) when TLS is on

    def get_holders(self) -> list[tuple[str, str, str]]:
        """Who holds what: ``(key file relative to the dir, genesis role, branch or "(company-wide)")``."""
        rows = []
        for b in self.branches:
            for role in CLIENT_ROLES:
                branch = "(company-wide)" if role == "issuer" else b.name
                rows.append((f"{b.name}/keys/{role}.key", _GENESIS_ROLE[role], branch))
        rows += [(f"company/{role}.key", role, "(company-wide)") for role in (self.company_keys or {})]
        return rows

    def to_json(self) -> dict:
        return {
            "dir": str(self.dir),
            "chain_id": self.chain_id,
            "genesis": str(self.genesis_path),
            "branches": [{
                "name": b.name,
                "node_key": b.node_key.hex(),
                "client_keys": {r: k.hex() for r, k in b.client_keys.items()},
                "config": str(b.config_path),
                "api": b.api_url,
                "peer": b.peer_url,
            } for b in self.branches],
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "company_keys": {r: k.hex() for r, k in (self.company_keys or {}).items()},
            "holders": [{"key_file": f, "role": r, "branch": b} for f, r, b in self.get_holders()],
        }


def compute_branch_names(preset: Preset, count: int) -> list[str]:
    """The preset's names for the first ``count`` branches, then ``branch-<i>`` for the rest."""
    names = list(preset.branches[:count])
    i = len(names) + 1
    while len(names) < count:
        name = f"branch-{i}"
        if name not in names:
            names.append(name)
        i += 1
    return names


def compute_fresh_chain_id(prefix: str) -> str:
    """A chain id no other network has: ``prefix`` (cut to fit 64 chars) + "-" + 16 random hex digits."""
    return f"{prefix[:64 - 17]}-{secrets.token_hex(8)}"


def init_network(out_dir: str | Path, branches: int | None = None, *, base_port: int | None = None,
                 host: str | None = None, chain_id: str | None = None, force: bool = False,
                 preset_path: str | Path | None = None, now_ms: int | None = None, peer_tls: bool = True,
                 api_tls: bool = False, hosts: list[str] | tuple[str, ...] | None = None) -> NetworkSummary:
    """Write keys, genesis.json and one node.toml per branch into ``out_dir``; raise ``ConfigError``.

    ``hosts`` gives each branch its own host, in branch order (``network init --hosts``): its API and peer
    listeners bind there and the other branches dial it there; ports stay base + 2i / + 1.

    ``peer_tls=False`` writes a network with plain ws:// peer links (no CA in genesis): only for tests whose
    proxy must read the frames (``tests/faults``). ``api_tls`` is ``network init --tls``."""
    preset = load_preset(preset_path)
    count = branches if branches is not None else (len(preset.branches) or 4)
    if not 1 <= count <= MAX_BRANCHES:
        raise ConfigError(f"--branches must be 1..{MAX_BRANCHES}, got {count}")
    host = host if host is not None else preset.host
    if not is_local_or_any_host(host):
        raise ConfigError(f"--host must be a loopback address or 0.0.0.0/::, got {host!r}")
    branch_hosts = check_branch_hosts(hosts, count) if hosts is not None else [host] * count
    base = base_port if base_port is not None else preset.base_port
    if not 1 <= base or base + 2 * count - 1 > 65535:
        raise ConfigError(f"--base-port {base} with {count} branches needs ports up to "
                          f"{base + 2 * count - 1}; expected all within 1..65535")
    chain = chain_id if chain_id is not None else compute_fresh_chain_id(preset.chain_id or "carecoin")
    if not chain or len(chain) > 64:
        raise ConfigError(f"--chain-id must be 1..64 characters, got {chain!r}")
    out = Path(out_dir)
    names = compute_branch_names(preset, count)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} already holds files (a network?); refusing to overwrite without --force")
        # Only what init itself writes is removed (branch dirs holding a node.toml, genesis.json): never a
        # whole directory the user pointed at. Stale branch dirs of a bigger earlier network go too.
        for sub in out.iterdir():
            if sub.is_dir() and (sub.name in names or (sub / "node.toml").is_file()):
                shutil.rmtree(sub, ignore_errors=True)
        (out / "genesis.json").unlink(missing_ok=True)
        shutil.rmtree(out / "company", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()

    node_keys = [KeyPair.generate() for _ in names]
    clients = [{r: KeyPair.generate() for r in CLIENT_ROLES} for _ in names]
    apis = [ListenAddress(branch_hosts[i], base + 2 * i) for i in range(count)]
    peer_addrs = [ListenAddress(branch_hosts[i], base + 2 * i + 1) for i in range(count)]
    genesis_path = out / "genesis.json"
    company = {r: KeyPair.generate() for r in COMPANY_ROLES}
    if api_tls and not peer_tls:
        raise ConfigError("--tls (HTTPS client API) needs the network CA, which comes with peer TLS")
    ca = make_ca(chain) if peer_tls else None
    if ca is not None:
        write_private(out / "company" / "tls-ca.key", ca[0])
        write_public(out / "company" / "tls-ca.pem", ca[1])
    roles: dict[str, tuple[bytes, ...]] = {
        _GENESIS_ROLE[r]: tuple(c[r].public_key for c in clients) for r in CLIENT_ROLES}
    roles.update({r: (k.public_key,) for r, k in company.items()})
    # each branch's admin and staff are placed in that branch (issuer and the company roles carry none)
    placed = {c[r].public_key: name for name, c in zip(names, clients) for r in ("admin", "staff")}
    genesis = Genesis(
        chain_id=chain,
        genesis_time_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        validators=tuple(Validator(n, k.public_key) for n, k in zip(names, node_keys)),
        roles=roles,
        policy=dict(preset.policy),
        branches=placed,
        extra={"tls": {"ca_pem": ca[1].decode(), "ca_sha256": compute_fingerprint(ca[1])}} if ca else {},
    )
    save_genesis(genesis_path, genesis)
    for role, key in company.items():
        save_key(out / "company" / f"{role}.key", key, overwrite=True)

    files = []
    for i, name in enumerate(names):
        bdir = out / name
        save_key(bdir / "node.key", node_keys[i], overwrite=True)
        for role, key in clients[i].items():
            save_key(bdir / "keys" / f"{role}.key", key, overwrite=True)
        peer_files, api_files = write_branch_tls(bdir, name, node_keys[i].public_key, ca, apis[i].host, api_tls)
        cfg = NodeConfig(
            path=bdir / "node.toml", name=name, key_file=bdir / "node.key", genesis_file=genesis_path,
            data_dir=bdir / "data", api=apis[i], peer=peer_addrs[i], max_frame_bytes=preset.max_frame_bytes,
            peers=tuple(PeerEntry(names[j], node_keys[j].public_key,
                                  compute_peer_url(peer_addrs[j].host, peer_addrs[j].port, peer_tls))
                        for j in range(count) if j != i),
            consensus=preset.consensus, mempool=preset.mempool, block=preset.block, log=preset.log,
            peer_tls=peer_files, api_tls=api_files,
        )
        (bdir / "node.toml").write_text(
            f"# carecoin node config for {name} (written by `carecoin network init`)\n"
            + tomli_w.dumps(config_to_dict(cfg)))
        load_config(bdir / "node.toml")  # what we wrote must load: catches a drift between writer and reader
        files.append(BranchFiles(name, node_keys[i].public_key,
                                 {r: k.public_key for r, k in clients[i].items()},
                                 bdir / "node.toml", apis[i], peer_addrs[i], compute_api_url(apis[i], api_tls),
                                 compute_peer_url(peer_addrs[i].host, peer_addrs[i].port, peer_tls)))
    return NetworkSummary(out, chain, genesis_path, tuple(files), {r: k.public_key for r, k in company.items()},
                          out / "company" / "tls-ca.pem" if ca else None)


def check_branch_hosts(hosts: list[str] | tuple[str, ...], count: int) -> list[str]:
    """One host per branch: IP literals (or ``localhost``) other peers can dial, never the any-address (the
    others could not reach it there); raise ``ConfigError`` naming the first bad one."""
    hosts = [h.strip() for h in hosts]
    if len(hosts) != count:
        raise ConfigError(f"--hosts names {len(hosts)} hosts for {count} branches; expected one per branch")
    for i, h in enumerate(hosts):
        if not is_valid_host(h) or h in ("0.0.0.0", "::"):
            raise ConfigError(f"--hosts entry {i + 1} is {h!r}; expected an IP address the other branches can "
                              f"dial (names are not resolved; not 0.0.0.0/::)")
    return hosts


def compute_api_url(api: ListenAddress, tls: bool) -> str:
    """The client API's base URL (any-address listeners are reached on loopback)."""
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::") else api.host
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{api.port}"


def write_branch_tls(bdir: Path, name: str, node_key: bytes, ca: tuple[bytes, bytes] | None, api_host: str,
                     api_tls: bool) -> tuple[TlsFiles | None, TlsFiles | None]:
    """Issue a branch's peer certificate (and API certificate with ``api_tls``) with the network CA ``ca``
    (key PEM, certificate PEM) into ``bdir/tls/``; (None, None) without a CA."""
    if ca is None:
        return None, None
    out = []
    for kind, make in (("peer", lambda: make_peer_cert(*ca, name, node_key)),
                       ("api", lambda: make_api_cert(*ca, name, api_host))):
        if kind == "api" and not api_tls:
            out.append(None)
            continue
        key_pem, cert_pem = make()
        files = TlsFiles(bdir / "tls" / f"{kind}.pem", bdir / "tls" / f"{kind}.key")
        write_private(files.key_file, key_pem)
        write_public(files.cert_file, cert_pem)
        out.append(files)
    return out[0], out[1]


def _print_table(summary: NetworkSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"carecoin network {summary.chain_id} in {summary.dir}")
    for col in ("branch", "node key", "API", "peer", "config"):
        table.add_column(col)
    for b in summary.branches:
        table.add_row(b.name, b.node_key.hex()[:16] + "…", b.api_url, b.peer_url,
                      str(b.config_path.relative_to(summary.dir)))
    holders = Table(title="who holds what (roles in genesis.json)")
    for col in ("key file", "role", "branch"):
        holders.add_column(col)
    for row in summary.get_holders():
        holders.add_row(*row)
    console = Console(width=160)
    console.print(table)
    console.print(holders)
    console.print("after genesis, roles and policy change only by a quorum of branch admins: "
                  "carecoin tx propose-grant-role ... then approve-proposal")
    console.print(f"genesis: {summary.genesis_path}")
    if summary.ca_file is not None:
        console.print(f"network CA (pinned in genesis; peer links are mutual TLS): {summary.ca_file} — the CLI "
                      f"finds it next to a key of this directory, or give --ca / CARECOIN_CA")
    console.print(f"start a node: carecoin node start --config {summary.branches[0].config_path}")


@click.group("network")
def network() -> None:
    """Create and inspect carecoin networks."""


@network.command("init")
@click.option("--branches", type=int, default=None, help="Number of branches (default: the preset's, 4).")
@click.option("--dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the network into.")
@click.option("--base-port", type=int, default=None, help="API port of the first branch (peer = +1, next = +2).")
@click.option("--host", default=None, help="Listen host: a loopback address or 0.0.0.0 (default 127.0.0.1).")
@click.option("--hosts", "hosts_csv", default=None, metavar="IP,IP,...",
              help="One host per branch, in branch order: each node listens on its own address and the others "
                   "dial it there (instead of --host).")
@click.option("--chain-id", default=None,
              help="Chain id written into genesis.json (default: a fresh one, <preset chain id>-<random hex>).")
@click.option("--preset", "preset_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Preset TOML (default: configs/local-4.toml).")
@click.option("--force", is_flag=True, help="Replace the files of an existing network in --dir.")
@click.option("--tls", "api_tls", is_flag=True,
              help="Also serve every branch's client API over HTTPS (certificates from the network CA).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def init(branches: int | None, out_dir: Path, base_port: int | None, host: str | None, hosts_csv: str | None,
         chain_id: str | None, preset_path: Path | None, force: bool, api_tls: bool, as_json: bool) -> None:
    """Write node keys, client keys, genesis.json and one node.toml per branch.

    \b
    Example:
      carecoin network init --branches 4 --dir ./net --base-port 27100
      carecoin network init --branches 4 --dir ./net --tls     # HTTPS client API too
      carecoin network init --branches 4 --dir ./net --hosts 10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.14
    """
    if host is not None and hosts_csv is not None:
        raise click.UsageError("give either --host (every branch) or --hosts (one per branch), not both")
    hosts = hosts_csv.split(",") if hosts_csv is not None else None
    if hosts is not None and branches is None:
        branches = len(hosts)
    try:
        summary = init_network(out_dir, branches, base_port=base_port, host=host, chain_id=chain_id,
                               force=force, preset_path=preset_path, api_tls=api_tls, hosts=hosts)
    except (NodeError, LedgerError) as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(summary.to_json(), indent=2))
    else:
        _print_table(summary)


# ---- add-branch ------------------------------------------------------------------------------------------

MAX_PORT_TRIES = 200


@dataclass(frozen=True, slots=True)
class NewBranch:
    """What ``add_branch`` wrote and the commands that add the branch to the running network."""

    name: str
    node_key: bytes
    client_keys: dict[str, bytes]
    config_path: Path
    api: ListenAddress
    peer: ListenAddress
    peer_url: str
    commands: tuple[str, ...]
    tls: bool = False  # HTTPS client API

    def to_json(self) -> dict:
        return {"name": self.name, "node_key": self.node_key.hex(),
                "client_keys": {r: k.hex() for r, k in self.client_keys.items()},
                "config": str(self.config_path), "api": compute_api_url(self.api, self.tls),
                "peer": self.peer_url, "commands": list(self.commands)}


def is_port_free(host: str, port: int) -> bool:
    """True when nothing listens on (``host``, ``port``) now (a bind test, like the OS would answer)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def load_branch_configs(net_dir: Path) -> list[NodeConfig]:
    """The node.toml of every branch directory of a network directory, in the order init wrote them."""
    configs = [load_config(sub / "node.toml") for sub in net_dir.iterdir() if (sub / "node.toml").is_file()]
    return sorted(configs, key=lambda c: (c.api.port, c.name))


def choose_ports(host: str, configs: list[NodeConfig]) -> tuple[int, int]:
    """(API port, peer port) like init: base + 2i and + 1 after the last branch, skipping taken ones."""
    used = {p for c in configs for p in (c.api.port, c.peer.port)}
    port = max(used) + 1 if used else 27100
    port += port % 2 != min(used, default=port) % 2  # keep init's parity: API ports share the base's parity
    for _ in range(MAX_PORT_TRIES):
        if port + 1 > 65535:
            break
        if not used & {port, port + 1} and is_port_free(host, port) and is_port_free(host, port + 1):
            return port, port + 1
        port += 2
    raise ConfigError(f"no free pair of ports on {host} above {max(used, default=27100)}")


def add_branch(net_dir: str | Path, name: str, *, host: str | None = None,
               proposal_id: str | None = None) -> NewBranch:
    """Write the new branch's keys and node.toml into ``net_dir``/``name``; return them with the commands."""
    out = Path(net_dir).resolve()
    genesis_path = out / "genesis.json"
    if not genesis_path.is_file():
        raise ConfigError(f"{out} holds no genesis.json; expected a directory written by `carecoin network init`")
    genesis = load_genesis(genesis_path)
    configs = load_branch_configs(out)
    if not configs:
        raise ConfigError(f"{out} holds no branch directory with a node.toml")
    if not name or name != name.strip() or "/" in name or name in (".", "..", "company"):
        raise ConfigError(f"branch name {name!r} is not usable as a directory and branch name")
    if (out / name).exists() or any(c.name == name for c in configs):
        raise ConfigError(f"{out / name} exists already: branch {name!r} is taken")
    first = configs[0]
    host = host if host is not None else first.api.host
    if not is_valid_host(host):
        raise ConfigError(f"--host must be an IP address (or 0.0.0.0/:: to listen on all), got {host!r}")
    api_port, peer_port = choose_ports(host, configs)
    tls_on = "tls" in genesis.extra
    ca = read_ca(out) if tls_on else None
    node_key = KeyPair.generate()
    clients = {role: KeyPair.generate() for role in ("admin", "staff")}
    bdir = out / name
    save_key(bdir / "node.key", node_key)
    for role, key in clients.items():
        save_key(bdir / "keys" / f"{role}.key", key)
    peer_files, api_files = write_branch_tls(bdir, name, node_key.public_key, ca, host, first.api_tls is not None)
    peers = tuple(PeerEntry(c.name, load_key(c.key_file).public_key,
                            compute_peer_url(c.peer.host, c.peer.port, tls_on)) for c in configs)
    cfg = NodeConfig(path=bdir / "node.toml", name=name, key_file=bdir / "node.key", genesis_file=genesis_path,
                     data_dir=bdir / "data", api=ListenAddress(host, api_port), peer=ListenAddress(host, peer_port),
                     max_frame_bytes=first.max_frame_bytes, peers=peers, consensus=first.consensus,
                     mempool=first.mempool, block=first.block, log=first.log, peer_tls=peer_files,
                     api_tls=api_files)
    (bdir / "node.toml").write_text(f"# carecoin node config for {name} (written by `carecoin network add-branch`; "
                                    f"a validator once governance adds it)\n" + tomli_w.dumps(config_to_dict(cfg)))
    load_config(bdir / "node.toml")
    peer_url = compute_peer_url(host, peer_port, tls_on)
    commands = compute_add_commands(out, genesis, configs, name, node_key.public_key, peer_url,
                                    {r: k.public_key for r, k in clients.items()}, proposal_id or f"add-{name}")
    return NewBranch(name, node_key.public_key, {r: k.public_key for r, k in clients.items()}, bdir / "node.toml",
                     cfg.api, cfg.peer, peer_url, commands, api_files is not None)


def read_ca(net_dir: Path) -> tuple[bytes, bytes]:
    """The network CA (key PEM, certificate PEM) from ``net_dir/company``; it must be the one genesis pins."""
    try:
        key, cert = ((net_dir / "company" / f"tls-ca.{ext}").read_bytes() for ext in ("key", "pem"))
    except OSError as exc:
        raise ConfigError(f"genesis pins a TLS CA but {net_dir / 'company'} lacks tls-ca.key/tls-ca.pem "
                          f"({exc.strerror}); the new branch's certificate must be signed by that CA") from None
    pinned = load_genesis(net_dir / "genesis.json").extra["tls"].get("ca_pem", "")
    if compute_fingerprint(cert) != compute_fingerprint(pinned):
        raise ConfigError(f"{net_dir / 'company' / 'tls-ca.pem'} is not the CA genesis.json pins")
    return key, cert


def compute_add_commands(out: Path, genesis: Genesis, configs: list[NodeConfig], name: str, node_key: bytes,
                         peer_url: str, clients: dict[str, bytes], proposal_id: str) -> tuple[str, ...]:
    """The governance commands, in order: propose by the first branch's admin, approvals of admins of more
    branches up to the default quorum ceil(2b/3), start the node, then grant the new admin and staff."""
    need = math.ceil(2 * len(configs) / 3)
    voters = configs[:need]

    def tx(cfg: NodeConfig, kind: str, *args: str) -> str:
        return (f"carecoin tx {kind} --node {compute_api_url(cfg.api, cfg.api_tls is not None)} "
                f"--key {out / cfg.name / 'keys' / 'admin.key'} {' '.join(args)} --wait")

    cmds = [tx(voters[0], "propose-add-validator", f"--proposal-id {proposal_id}", f"--branch-name {name}",
               f"--node-public-key {node_key.hex()}", f"--peer-address {peer_url}")]
    cmds += [tx(c, "approve-proposal", f"--proposal-id {proposal_id}") for c in voters[1:]]
    cmds.append(f"carecoin node start --config {out / name / 'node.toml'}")
    for role, genesis_role in (("admin", "branch-admin"), ("staff", "staff")):
        pid = f"{proposal_id}-{role}"
        cmds.append(tx(voters[0], "propose-grant-role", f"--proposal-id {pid}", f"--account {clients[role].hex()}",
                       f"--role {genesis_role}", f"--branch {name}"))
        cmds += [tx(c, "approve-proposal", f"--proposal-id {pid}") for c in voters[1:]]
    return tuple(cmds)


@network.command("add-branch")
@click.option("--dir", "net_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True,
              help="The network directory (what `carecoin network init` wrote).")
@click.option("--name", required=True, help="The new branch's name (also its validator's name).")
@click.option("--host", default=None, help="Listen host of the new node (default: the network's).")
@click.option("--proposal-id", default=None, help="Id of the add-validator proposal (default: add-<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add_branch_command(net_dir: Path, name: str, host: str | None, proposal_id: str | None, as_json: bool) -> None:
    """Prepare a new branch's keys and node.toml; print the commands that add it by governance.

    \b
    Example:
      carecoin network add-branch --dir ./net --name branch-5
    """
    try:
        new = add_branch(net_dir, name, host=host, proposal_id=proposal_id)
    except (NodeError, LedgerError) as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(new.to_json(), indent=2))
        return
    click.echo(f"branch {new.name}: node key {new.node_key.hex()}, API {compute_api_url(new.api, new.tls)}, "
               f"peer {new.peer_url}")
    click.echo(f"config {new.config_path}; keys in {new.config_path.parent / 'keys'} (admin, staff)")
    click.echo("add it by governance (admins of a quorum of branches; the running nodes learn its address on "
               "chain), start it, then grant its roles:")
    for cmd in new.commands:
        click.echo(f"  {cmd}")
