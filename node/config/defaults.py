"""Tier 1 of the node configuration: the built-in defaults (``configs/local-4.toml`` repeats them)."""

from __future__ import annotations

DEFAULT_CHAIN_ID = "carecoin-local"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_BASE_PORT = 27100
DEFAULT_BASE_TIMEOUT_MS = 1000
DEFAULT_MAX_TIMEOUT_MS = 30_000
DEFAULT_BLOCK_INTERVAL_MS = 200
DEFAULT_EMPTY_BLOCK_INTERVAL_MS = 1000
DEFAULT_MAX_FUTURE_MS = 2000
DEFAULT_MEMPOOL_MAX_COUNT = 20_000
DEFAULT_MEMPOOL_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MEMPOOL_MAX_PER_SENDER = 256
DEFAULT_BLOCK_MAX_TXS = 2000
DEFAULT_BLOCK_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
DEFAULT_VERIFY_WORKERS = 0  # signature checks in the event loop; > 0: that many worker processes
MAX_VERIFY_WORKERS = 64
DEFAULT_STATE_HISTORY_BLOCKS = 256  # [storage]: sparse-Merkle trees of heights head-256..head kept (ledger.storage)
MIN_STATE_HISTORY_BLOCKS = 2
MAX_STATE_HISTORY_BLOCKS = 10_000_000
DEFAULT_LOG_FORMAT = "text"
DEFAULT_LOG_LEVEL = "info"

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
PEER_PATH = "/peer"
PRESET_LOCAL_4 = "local-4.toml"
