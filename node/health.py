"""Health endpoints for orchestrators and operators: ``GET /livez`` and ``GET /readyz``.

``/livez`` answers 200 while the process serves HTTP (it says nothing about consensus: a node that hit a local
safety fault exits on its own). ``/readyz`` answers 200 when the node can do its job, else 503 naming every
reason it is not ready:

- consensus stopped after a local fault (``fatal``), or the replica waits for catch-up to a held WAL record;
- fewer peer links than quorum - 1 of the validator set in force for the next height (a member needs that many
  others to make a quorum with itself; a follower, which links with nobody, needs none);
- the head is more than ``MAX_LAG_BLOCKS`` behind the best known height: the highest height at least f+1
  validators were seen working on (``Replica.get_best_known_height``), so f byzantine signers cannot make a
  healthy node look behind.

``read_personal_data_gate`` is stricter, for the vault's reads of personal data and texts (``node.vault_routes``):
on top of readiness, this node must have heard, since it started, from a quorum of the validator set (with
itself), and none of them may be working on a height more than one past this node's next: a node that came
back after a customer's erasure and has not caught up (or cannot reach its peers) would still hold the key and
serve the erased data. It fails closed: a byzantine validator claiming a huge height only makes this node refuse
personal-data reads (503, read them at another branch), never serve what it should not.

Both are open routes (no account data) and are also served on the peer listener, where ``carecoin doctor``
reads the node's clock (``time_ms``) over the validators' mutual TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ledger.block import quorum
from ledger.validator_sets import get_validators_at
from node import clock
from node.app_keys import NODE_KEY

MAX_LAG_BLOCKS = 5


@dataclass(frozen=True, slots=True)
class Readiness:
    """What ``/readyz`` decided and the figures it decided on."""

    ready: bool
    reasons: tuple[str, ...]
    height: int
    best_known_height: int
    peers: int
    peers_needed: int

    def to_json(self) -> dict[str, Any]:
        return {"ready": self.ready, "reasons": list(self.reasons), "height": self.height,
                "best_known_height": self.best_known_height, "peers": self.peers,
                "peers_needed": self.peers_needed, "max_lag_blocks": MAX_LAG_BLOCKS}


def compute_readiness(*, head: int, best_working_height: int, peers: int, validators: int, member: bool,
                      fatal: BaseException | None, held_height: int | None) -> Readiness:
    """Decide readiness from plain figures (``best_working_height`` is a consensus height: head + 1 when level)."""
    reasons = []
    if fatal is not None:
        reasons.append(f"consensus stopped after a local fault: {fatal}")
    if held_height is not None:
        reasons.append(f"waiting for catch-up to height {held_height - 1} before restoring the consensus "
                       f"record (head {head})")
    needed = quorum(validators) - 1 if member else 0
    if peers < needed:
        reasons.append(f"{peers} peer links up; expected at least {needed} (quorum {quorum(validators)} of "
                       f"{validators} validators, less this node)")
    best = max(best_working_height - 1, head)
    if best - head > MAX_LAG_BLOCKS:
        reasons.append(f"head {head} is {best - head} blocks behind the best known height {best}; expected at "
                       f"most {MAX_LAG_BLOCKS} behind (catching up)")
    return Readiness(not reasons, tuple(reasons), head, best, peers, needed)


def read_readiness(node) -> Readiness:
    """The readiness of a running ``NodeService``."""
    loop = node.consensus
    head = node.store.head().height
    held = loop.held.height if loop.held is not None else None
    validators = get_validators_at(node.store, head + 1)
    return compute_readiness(
        head=head, best_working_height=loop.replica.get_best_known_height() if held is None else held,
        peers=len(node.get_connected_peers()), validators=len(validators),
        member=node.key.public_key in validators, fatal=node.fatal, held_height=held)


def compute_personal_data_gate(*, reasons: tuple[str, ...], head: int, seen_heights: list[int], needed: int,
                               ) -> tuple[str, ...]:
    """Why personal data may not be served (empty: it may): the readiness ``reasons``, too few validators heard
    from since start (``seen_heights``: the height each was last seen working on), or one working past head+2."""
    out = list(reasons)
    if len(seen_heights) < needed:
        out.append(f"heard from {len(seen_heights)} validators since start; expected at least {needed} before "
                   "serving personal data (this node may have missed an erasure)")
    if seen_heights and max(seen_heights) > head + 2:
        out.append(f"a validator works on height {max(seen_heights)} and this node's head is {head}: an erasure "
                   "in between would not be applied here yet")
    return tuple(out)


def read_personal_data_gate(node) -> tuple[str, ...]:
    """Why this running node may not serve personal data now (empty: it may); see the module docstring."""
    readiness = read_readiness(node)
    validators = get_validators_at(node.store, readiness.height + 1)
    me = node.key.public_key
    heights = node.consensus.replica.get_peer_heights()
    return compute_personal_data_gate(
        reasons=readiness.reasons, head=readiness.height,
        seen_heights=[heights[v] for v in validators if v != me and v in heights],
        needed=quorum(len(validators)) - (1 if me in validators else 0))


async def get_livez(request: web.Request) -> web.Response:
    """GET /livez: 200 while the process serves requests; the node's name and wall clock (ms)."""
    node = request.app[NODE_KEY]
    return web.json_response({"status": "alive", "node": node.options.name, "time_ms": clock.now_ms()})


async def get_readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when ready, else 503 with the reasons (see the module docstring)."""
    node = request.app[NODE_KEY]
    readiness = read_readiness(node)
    doc = {"status": "ready" if readiness.ready else "not_ready", "node": node.options.name,
           "time_ms": clock.now_ms(), **readiness.to_json()}
    if not readiness.ready:
        doc["error"] = {"code": "not_ready", "message": "; ".join(readiness.reasons)}
    return web.json_response(doc, status=200 if readiness.ready else 503)
