"""The typed keys of a node's aiohttp application: each resource a ``cleanup_ctx`` entry puts on the app."""

from __future__ import annotations

from aiohttp import web

from ledger.storage import Store
from node.analytics import ReportIndex
from node.config import NodeConfig
from node.conn_budget import ConnectionBudget
from node.erasure import ErasureFollower
from node.list_index import ListIndex
from node.service import NodeService
from node.staff_auth import StaffGuard
from node.vault import Vault

CONFIG_KEY: web.AppKey[NodeConfig] = web.AppKey("config", NodeConfig)
STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)
NODE_KEY: web.AppKey[NodeService] = web.AppKey("node", NodeService)
VAULT_KEY: web.AppKey[Vault] = web.AppKey("vault", Vault)
STAFF_GUARD_KEY: web.AppKey[StaffGuard] = web.AppKey("staff_guard", StaffGuard)
ERASURE_KEY: web.AppKey[ErasureFollower] = web.AppKey("erasure", ErasureFollower)
REPORT_KEY: web.AppKey[ReportIndex] = web.AppKey("report_index", ReportIndex)
LISTS_KEY: web.AppKey[ListIndex] = web.AppKey("list_index", ListIndex)
# True (every real node, ``create_app``): the vault's personal-data reads wait until the node is in sync
# (``node.health.read_personal_data_gate``). ``create_node_app`` (one node in a test) leaves it off unless asked.
PERSONAL_DATA_GATE_KEY: web.AppKey[bool] = web.AppKey("personal_data_gate", bool)
# ``create_node_app``'s stand-in for node.toml's ``[webhooks] allow`` (node.webhook_targets).
WEBHOOK_ALLOW_KEY: web.AppKey[tuple] = web.AppKey("webhook_allow", tuple)
# The open-socket cap the API and the peer listener share (``node.conn_budget``).
CONN_BUDGET_KEY: web.AppKey[ConnectionBudget] = web.AppKey("conn_budget", ConnectionBudget)
