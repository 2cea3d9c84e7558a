"""Who may read what: the read rule of every client-API route that shows a customer's data.

Theory of operation
-------------------
A route of ``node.routes.ROUTES`` that shows a customer's data carries a ``ReadRule``: the request must be
signed (the vault's request signature, ``ledger.request_signing.compute_request_digest``, headers ``X-Carecoin-Staff`` =
the signer's key, ``X-Carecoin-Time``, ``X-Carecoin-Signature``) and the signer must be entitled to the object
the path names. The guard (``StaffGuard.entitled``) checks, in this order:

1. the signature and its time (401 ``unsigned_request`` / ``bad_signature`` / ``stale_request`` /
   ``replayed_request``);
2. the rule's ``check(request, signer)`` (403 ``not_entitled`` naming who may read and what the signer is);
3. only then remembers the request in the replay guard, so a key refused at 2 never fills it.

Entitled readers (decided on chain at each request, never cached):

- **account** (``/v1/accounts/{id}``, ``/coin``, ``/proof``, ``/history``, ``/v1/customers/{id}``): the account
  itself; staff (``staff`` or ``branch-admin``) of the account's branch (a customer's registration branch, a
  staff account's own branch); auditors and compliance. The owner and the company-wide roles are decided from
  the path alone, and a signer holding no role is refused before anything is looked up.
- **ticket / order**: its customer; staff of its branch or of its customer's branch; auditors and compliance.
- **tx status / receipt**: the parties of the tx — its sender, every account its payload names, every account
  its events name (committed), the customer of the ticket or order its payload names (``ticket_id``,
  ``order_id``, a feedback's target: staff's work on a customer's ticket is hers to prove) —; staff of any
  party's branch; auditors and compliance.
- **blocks** (client API): auditors, compliance and the validators of the current set (a block holds every
  tx). The peer listener's copy of the route (catch-up) is not guarded here: the peer listener is for
  validators only (``node.peers``).
- **report**: any role holder (the report aggregates; it names no customer).

No existence leak: a refusal of a ticket, order or tx reads the same whether the object exists or not (only
auditors and compliance, who may read every one, are told 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from aiohttp import web

from ledger.customers import get_branch_of, get_customer
from ledger.events import decode_event
from ledger.genesis import BRANCH_ROLES, ROLES
from ledger.orders import get_order
from ledger.process import compute_payload
from ledger.errors import InvalidTransaction
from ledger.state import has_role
from ledger.tickets import get_ticket
from ledger.tx import decode_tx
from ledger.validator_sets import get_validators_at
from node.app_keys import NODE_KEY, STAFF_GUARD_KEY
from node.errors import NodeError
from node.http import BadRequest, parse_hex32, show
from node.reads import is_id

READ_ALL_ROLES = ("auditor", "compliance")


class NotEntitled(NodeError):
    """A well signed read by a key that may not read this object."""

    code = "not_entitled"
    http_status = 403


class WrongBranch(NotEntitled):
    """Staff asked for an object of another branch (as the vault says for personal data)."""

    code = "wrong_branch"


Check = Callable[[web.Request, bytes], None]


@dataclass(frozen=True, slots=True)
class ReadRule:
    """A route's read rule: its ``name`` (``x-carecoin-access`` in /openapi.json), who may read in words, and
    ``check(request, signer)`` raising ``NotEntitled``."""

    name: str
    readers: str
    check: Check

    async def guard(self, request: web.Request) -> None:
        """The guard ``node.http.mount`` runs before the handler (see the module docstring)."""
        await request.app[STAFF_GUARD_KEY].entitled(request, lambda signer: self.check(request, signer))


# ---- who the signer is ------------------------------------------------------------------------------------

def is_read_all(store: Any, signer: bytes) -> bool:
    """True iff ``signer`` is an auditor or compliance officer (reads every customer's data)."""
    return any(has_role(store, role, signer) for role in READ_ALL_ROLES)


def get_staff_branch(store: Any, signer: bytes) -> str:
    """The branch ``signer`` works for as staff or branch admin ("" when they hold no branch role)."""
    if not any(has_role(store, role, signer) for role in BRANCH_ROLES):
        return ""
    return get_branch_of(store, signer)


def get_account_branch(store: Any, account: bytes) -> str:
    """The branch an account belongs to: a customer's registration branch, else a staff account's branch."""
    customer = get_customer(store, account)
    return customer.branch if customer is not None else get_branch_of(store, account)


def describe_signer(store: Any, signer: bytes) -> str:
    """What the signer is, for a refusal: "ab12cd34… (staff of branch 'branch-2')"."""
    branch = get_staff_branch(store, signer)
    roles = [r for r in ROLES if has_role(store, r, signer)]
    what = f"staff of branch {branch!r}" if branch else (f"holder of {', '.join(roles)}" if roles else "no role")
    return f"{signer.hex()[:16]}… ({what})"


def _refuse(store: Any, what: str, readers: str, signer: bytes, tail: str = "") -> NotEntitled:
    """403 naming what was asked, who may read it and who the signer is: ``wrong_branch`` for staff (of another
    branch), ``not_entitled`` for anyone else."""
    error = WrongBranch if get_staff_branch(store, signer) else NotEntitled
    return error(f"{what} is readable by {readers}; the signer is {describe_signer(store, signer)}{tail}")


# ---- the rules --------------------------------------------------------------------------------------------

def _store(request: web.Request) -> Any:
    return request.app[NODE_KEY].store


def check_account(request: web.Request, signer: bytes) -> None:
    """The account in the path (``{id}``): the account itself, staff of its branch, auditors, compliance."""
    store, account = _store(request), parse_hex32(request.match_info["id"], "account id")
    if signer == account or is_read_all(store, signer):
        return
    branch = get_staff_branch(store, signer)
    if branch and get_account_branch(store, account) == branch:
        return
    raise _refuse(store, f"account {account.hex()[:16]}…'s data",
                  "the account itself, staff of its branch, auditors and compliance", signer,
                  ", not of the account's branch" if branch else "")


def _check_record(kind: str, get: Callable[[Any, str], Any]) -> Check:
    def check(request: web.Request, signer: bytes) -> None:
        store, object_id = _store(request), request.match_info["id"]
        if not is_id(object_id):
            raise BadRequest(f"{kind} id {show(object_id)}: expected 1..64 bytes of printable text without "
                             "surrounding spaces")
        if is_read_all(store, signer):
            return
        record = get(store, object_id)
        branch = get_staff_branch(store, signer)
        if record is not None and (record.customer == signer or branch and branch in (
                record.branch, get_account_branch(store, record.customer))):
            return
        raise _refuse(store, f"{kind} {object_id[:64]!r}",
                      f"its customer, staff of its branch or of its customer's branch, auditors and compliance",
                      signer, f" (a {kind} that does not exist is refused alike)")
    return check


def compute_tx_parties(node: Any, tx_hash: bytes) -> set[bytes]:
    """The accounts a tx is about: sender, accounts its payload names and (committed) its events name; empty
    when the tx is neither committed nor pending here."""
    store = node.store
    loc = store.get_tx_location(tx_hash)
    if loc is not None:
        tx = decode_tx(store.get_block(loc[0]).txs[loc[1]])
        events = store.get_result(*loc).events
        parties = {a for e in events for a in decode_event(e).accounts()}
    else:
        tx = node.mempool.get(tx_hash)
        if tx is None:
            return set()
        parties = set()
    return (parties | {tx.body.sender} | set(_accounts_in(tx.body.payload))
            | _record_customers(store, tx.body.kind, tx.body.payload))


def _record_customers(store: Any, kind: str, payload: Any) -> set[bytes]:
    """The customers of the ticket and the order a payload names by field (``ticket_id``, ``order_id``, a
    feedback's ``target_kind``/``target_id``); by field, so an id in another field (a coupon, a code) that
    happens to equal someone's ticket id names nobody."""
    try:
        typed = compute_payload(kind, payload)
    except InvalidTransaction:
        return set()  # a system tx, or a payload refused at admission (its sender is still a party)
    named = [("ticket", getattr(typed, "ticket_id", "")), ("order", getattr(typed, "order_id", ""))]
    if getattr(typed, "target_kind", None) in ("ticket", "order"):
        named.append((typed.target_kind, typed.target_id))
    customers = set()
    for what, object_id in named:
        record = (get_ticket if what == "ticket" else get_order)(store, object_id) if object_id else None
        if record is not None:
            customers.add(record.customer)
    return customers


def _accounts_in(value: Any) -> Iterable[bytes]:
    """Every 32-byte value in a payload (account ids; a commitment there matches no key)."""
    if isinstance(value, bytes) and len(value) == 32:
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _accounts_in(item)


def check_tx(request: web.Request, signer: bytes) -> None:
    """The tx in the path (``{hash}``): its parties, staff of a party's branch, auditors, compliance."""
    node = request.app[NODE_KEY]
    store, tx_hash = node.store, parse_hex32(request.match_info["hash"], "tx hash")
    if is_read_all(store, signer):
        return
    parties = compute_tx_parties(node, tx_hash)
    branch = get_staff_branch(store, signer)
    if signer in parties or branch and any(get_account_branch(store, a) == branch for a in parties):
        return
    raise _refuse(store, f"tx {tx_hash.hex()[:16]}…",
                  "its sender and the accounts it names, staff of their branches, auditors and compliance", signer,
                  " (a tx not known here is refused alike)")


def check_chain_reader(request: web.Request, signer: bytes) -> None:
    """Whole blocks: auditors, compliance and the current validators."""
    store = _store(request)
    if is_read_all(store, signer) or signer in get_validators_at(store, store.head().height + 1):
        return
    raise _refuse(store, "a whole block (every tx in it)", "auditors, compliance and the validators", signer)


def check_role_holder(request: web.Request, signer: bytes) -> None:
    """Company analytics: any holder of a role."""
    store = _store(request)
    if any(has_role(store, role, signer) for role in ROLES):
        return
    raise _refuse(store, "the analytics report", f"holders of a role ({', '.join(ROLES)})", signer)


ACCOUNT = ReadRule("owner-or-branch", "the account itself, staff of its branch, auditors, compliance",
                   check_account)
TICKET = ReadRule("customer-or-branch", "the ticket's customer, staff of its branch or of the customer's branch, "
                  "auditors, compliance", _check_record("ticket", get_ticket))
ORDER = ReadRule("customer-or-branch", "the order's customer, staff of its branch or of the customer's branch, "
                 "auditors, compliance", _check_record("order", get_order))
TX = ReadRule("tx-parties", "the tx's sender and the accounts its payload or events name, staff of their "
              "branches, auditors, compliance", check_tx)
CHAIN = ReadRule("chain-readers", "auditors, compliance and validators", check_chain_reader)
ROLE_HOLDERS = ReadRule("role-holders", "any holder of a role", check_role_holder)
