"""`carecoin node start`: run one validator node until SIGTERM/SIGINT.

    carecoin node start --config net/branch-1/node.toml
    python -m cli.node start --config net/branch-1/node.toml
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from typing import Callable

import click
from aiohttp import web

from cli.errors import CliError, cli_errors
from cli.logs import JsonFormatter, setup_logging  # noqa: F401  (JsonFormatter: the name callers know)
from node.config import NodeConfig, load_config
from ledger.errors import LedgerError
from node.errors import NodeError

STOP_POLL_S = 0.5


async def run_node(cfg: NodeConfig, ready: Callable[[], None] | None = None) -> int:
    """Run ``node.app.create_app(cfg)`` on the API address until a stop signal (or a local fault: exit 2)."""
    from node.app import HandshakeBoundSite, create_app
    from node.app_keys import CONN_BUDGET_KEY, NODE_KEY
    from node.conn_budget import API_KEEPALIVE_S

    log = logging.getLogger("carecoin.node")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(cfg)
    # an idle client socket is closed after API_KEEPALIVE_S (aiohttp's default is an hour)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, keepalive_timeout=API_KEEPALIVE_S)
    code = 0
    try:
        await runner.setup()  # runs every resource's cleanup context: store, node, consensus, peers, ...
        from node.tls import build_api_context
        api_ssl = build_api_context(cfg.api_tls.cert_file, cfg.api_tls.key_file) if cfg.api_tls else None
        try:
            # open sockets capped from RLIMIT_NOFILE (shared with the peer listener), TLS handshakes bounded
            await HandshakeBoundSite(runner, cfg.api.host, cfg.api.port, ssl_context=api_ssl,
                                     handshake_timeout_s=API_KEEPALIVE_S, budget=app[CONN_BUDGET_KEY]).start()
        except OSError as exc:
            raise CliError(f"cannot listen on {cfg.api.host}:{cfg.api.port}: {exc.strerror or exc}") from None
        node = app[NODE_KEY]
        log.info("node %s ready: api %s://%s:%d, peers %s:%d%s, height %d", cfg.name, "https" if api_ssl else "http",
                 cfg.api.host, cfg.api.port, cfg.peer.host, cfg.peer.port,
                 " (mutual TLS)" if node.peers.tls is not None else "", node.store.head().height)
        if ready is not None:
            ready()
        while not stop.is_set():
            if node.fatal is not None:
                log.critical("stopping after a local fault: %s", node.fatal)
                code = 2
                break
            try:
                await asyncio.wait_for(stop.wait(), STOP_POLL_S)
            except asyncio.TimeoutError:
                pass
        log.info("node %s stopping", cfg.name)
    finally:
        t0 = time.monotonic()
        await runner.cleanup()
        log.info("node %s stopped in %.2f s", cfg.name, time.monotonic() - t0)
    return code


@click.group("node")
def node() -> None:
    """Run a validator node."""


@node.command("start")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The branch's node.toml (written by `carecoin network init`).")
@cli_errors
def start(config_path: str) -> None:
    """Run the node of CONFIG until SIGTERM or SIGINT, then stop cleanly (peers, tasks, LevelDB).

    \b
    Example:
      carecoin node start --config net/branch-1/node.toml
    """
    try:
        cfg = load_config(config_path)
    except NodeError as exc:
        raise CliError(exc.message) from None
    setup_logging(cfg)
    try:
        code = asyncio.run(run_node(cfg))
    except (NodeError, LedgerError, CliError) as exc:
        message = exc.message
        logging.getLogger("carecoin.node").error("node %s did not start: %s", cfg.name, message)
        if cfg.log.format == "json":
            sys.exit(1)  # said once, as a JSON line: nothing else on stderr
        raise CliError(message) from None
    if code:
        sys.exit(code)


from cli.backup import backup, restore  # noqa: E402  (their own module: `carecoin node backup/restore`)

node.add_command(backup)
node.add_command(restore)


if __name__ == "__main__":
    node()
