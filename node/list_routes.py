"""The list routes ``GET /v1/tickets`` and ``GET /v1/orders``: their queries, read rules and handlers.

Both are lines of the one route table (``node.routes.ROUTES``); the lists come from the node-local
``node.list_index.ListIndex`` (``LISTS_KEY``). Read rules, in the words of ``node.read_access`` (the same
helpers decide who the signer is, on chain at each request):

- **tickets** ``?branch=B``: staff (``staff``, ``branch-admin``) of branch B, auditors, compliance;
  ``?customer=C``: the customer C, staff of C's branch, auditors, compliance; neither: auditors and compliance
  (every ticket). ``branch`` and ``customer`` together are refused (400): one scope per list.
- **orders** ``?customer=C`` (required): the customer C, staff of C's branch, auditors, compliance.

A refusal names who may read and who the signer is (403 ``wrong_branch`` for staff of another branch,
``not_entitled`` otherwise) and reads the same whether the branch or customer has any record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import web

from ledger.tickets import ACTIVE, STATES
from node.app_keys import LISTS_KEY, NODE_KEY
from node.errors import NodeError
from node.http import BadRequest, parse_hex32, parse_int, parse_text, query_param, show
from node.list_index import (
    REQUEST_BUILD, REQUEST_CATCH_UP, BadCursor, Key, ListIndex, Page, decode_cursor, order_lists, ticket_lists,
)
from node.read_access import (
    NotEntitled, ReadRule, WrongBranch, describe_signer, get_account_branch, get_staff_branch, is_read_all,
)
from node.reads import get_order_view, get_ticket_view

MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 50
MAX_BRANCH_CHARS = 64
STATE_ALIASES = {"active": ACTIVE}  # ?state=active: every state a ticket is still worked on in


class IndexNotReady(NodeError):
    """The list index is still being built from state after a start (answer again shortly)."""

    code = "index_building"
    http_status = 503


class ListsOff(NodeError):
    """This application runs without the list index."""

    code = "lists_off"
    http_status = 503


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list query: the scope (a branch, a customer, or neither), ticket states, page size, cursor."""

    branch: str | None
    customer: bytes | None
    states: tuple[str, ...]
    limit: int
    cursor: Key | None


def parse_states(text: str | None) -> tuple[str, ...]:
    """``state=open,assigned`` or ``state=active`` (none: every state) as distinct states in ``STATES`` order."""
    if text is None:
        return ()
    wanted: set[str] = set()
    for part in text.split(","):
        if part in STATE_ALIASES:
            wanted.update(STATE_ALIASES[part])
        elif part in STATES:
            wanted.add(part)
        else:
            raise BadRequest(f"state {show(text)}: expected a comma-separated list of {', '.join(STATES)} or "
                             f"{', '.join(STATE_ALIASES)}")
    return tuple(s for s in STATES if s in wanted)


def parse_list_query(query: Mapping[str, str], *, orders: bool = False) -> ListQuery:
    """The query of ``GET /v1/tickets`` (or, ``orders``, of ``GET /v1/orders``) or ``BadRequest``."""
    branch = None if orders else parse_text(query.get("branch"), "branch", MAX_BRANCH_CHARS)
    customer = query.get("customer")
    if customer is None and orders:
        raise BadRequest("customer=<64 hex digits> is required: the orders of one customer")
    if branch is not None and customer is not None:
        raise BadRequest("branch and customer given together; expected one of them (one list per request)")
    cursor = None
    if query.get("cursor") is not None:
        try:
            cursor = decode_cursor(query["cursor"])
        except BadCursor as exc:
            raise BadRequest(f"cursor {show(query['cursor'])}: {exc}; expected the next_cursor of a page") from None
    return ListQuery(branch, None if customer is None else parse_hex32(customer, "customer"),
                     () if orders else parse_states(query.get("state")),
                     parse_int(query.get("limit"), "limit", 1, MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT), cursor)


# ---- read rules -------------------------------------------------------------------------------------------

def _refuse(store: Any, what: str, readers: str, signer: bytes) -> NotEntitled:
    error = WrongBranch if get_staff_branch(store, signer) else NotEntitled
    return error(f"{what} is readable by {readers}; the signer is {describe_signer(store, signer)}")


def _may_read_customer(store: Any, signer: bytes, customer: bytes) -> bool:
    if signer == customer:
        return True
    branch = get_staff_branch(store, signer)
    return bool(branch) and get_account_branch(store, customer) == branch


def check_ticket_list(request: web.Request, signer: bytes) -> None:
    """A branch's tickets: its staff; a customer's: the customer and staff of their branch; all: neither.
    Auditors and compliance read every list."""
    store, q = request.app[NODE_KEY].store, parse_list_query(request.query)
    if is_read_all(store, signer):
        return
    if q.customer is not None:
        if _may_read_customer(store, signer, q.customer):
            return
        raise _refuse(store, f"the ticket list of customer {q.customer.hex()[:16]}…",
                      "the customer, staff of the customer's branch, auditors and compliance", signer)
    if q.branch is not None:
        if get_staff_branch(store, signer) == q.branch:
            return
        raise _refuse(store, f"the ticket list of branch {q.branch!r}",
                      "staff of that branch, auditors and compliance", signer)
    raise _refuse(store, "the list of every ticket", "auditors and compliance (others give branch= or customer=)",
                  signer)


def check_order_list(request: web.Request, signer: bytes) -> None:
    """A customer's orders: the customer, staff of their branch, auditors, compliance."""
    store, q = request.app[NODE_KEY].store, parse_list_query(request.query, orders=True)
    if is_read_all(store, signer) or _may_read_customer(store, signer, q.customer):  # type: ignore[arg-type]
        return
    raise _refuse(store, f"the order list of customer {q.customer.hex()[:16]}…",  # type: ignore[union-attr]
                  "the customer, staff of the customer's branch, auditors and compliance", signer)


TICKET_LIST = ReadRule("list-scope", "branch=: staff of that branch; customer=: the customer and staff of their "
                       "branch; neither: auditors, compliance (who read every list)", check_ticket_list)
ORDER_LIST = ReadRule("customer-or-branch", "the customer, staff of the customer's branch, auditors, compliance",
                      check_order_list)


# ---- handlers ---------------------------------------------------------------------------------------------

def _ready_index(request: web.Request) -> ListIndex:
    index = request.app.get(LISTS_KEY)
    if index is None:
        raise ListsOff("this node runs without the list index; /v1/tickets and /v1/orders are not served here")
    if not index.build(REQUEST_BUILD):
        raise IndexNotReady("the list index is still being built from state after the node started; retry in a "
                            "second")
    index.catch_up(REQUEST_CATCH_UP)
    return index


def _answer(index: ListIndex, page: Page, items: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"items": items, "count": len(items), "total": page.total,
                              "next_cursor": page.next_cursor, "indexed_height": index.height})


async def get_tickets(request: web.Request) -> web.Response:
    """GET /v1/tickets?branch=|customer=&state=&limit=&cursor=: tickets newest first (by opening time)."""
    q = parse_list_query(request.query)
    index = _ready_index(request)
    page = index.page(ticket_lists(q.branch, q.customer, q.states), q.limit, q.cursor)
    store = request.app[NODE_KEY].store
    items = [get_ticket_view(store, ticket_id) for ticket_id in page.ids]
    return _answer(index, page, items)


async def get_orders(request: web.Request) -> web.Response:
    """GET /v1/orders?customer=&limit=&cursor=: a customer's orders newest first (by creation time)."""
    q = parse_list_query(request.query, orders=True)
    index = _ready_index(request)
    page = index.page(order_lists(q.customer), q.limit, q.cursor)  # type: ignore[arg-type]
    store = request.app[NODE_KEY].store
    return _answer(index, page, [get_order_view(store, order_id) for order_id in page.ids])


_PAGING = (
    query_param("limit", f"items per page, 1..{MAX_LIST_LIMIT} (default {DEFAULT_LIST_LIMIT})", "integer",
                minimum=1, maximum=MAX_LIST_LIMIT),
    query_param("cursor", "the next_cursor of the previous page (absent: the newest)"),
)
_CUSTOMER = query_param("customer", "a customer's account id, 64 hex digits", pattern="^[0-9a-fA-F]{64}$")
TICKET_LIST_PARAMS = (
    query_param("branch", "a branch's tickets (not with customer)", minLength=1, maxLength=MAX_BRANCH_CHARS),
    _CUSTOMER,
    query_param("state", f"comma-separated ticket states ({', '.join(STATES)}) or 'active' (default: every state)"),
) + _PAGING
ORDER_LIST_PARAMS = ({**_CUSTOMER, "required": True},) + _PAGING
LIST_SUMMARY = ("Newest first; a page holds at most `limit` items and `next_cursor` (null at the end) continues "
                "it: paging never skips or repeats a record. `total` counts the whole list, `indexed_height` is "
                "the block the node-local list index reached.")
