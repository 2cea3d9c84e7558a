"""Node configuration: ``node.toml`` (``node_toml``), its field checks (``fields``), the built-in defaults
(``defaults``) and the network presets (``presets``). Import from here: every public name is re-exported."""

from node.config.defaults import (  # noqa: F401
    DEFAULT_BASE_PORT, DEFAULT_BASE_TIMEOUT_MS, DEFAULT_BLOCK_INTERVAL_MS, DEFAULT_BLOCK_MAX_BYTES,
    DEFAULT_BLOCK_MAX_TXS, DEFAULT_CHAIN_ID, DEFAULT_EMPTY_BLOCK_INTERVAL_MS, DEFAULT_HOST, DEFAULT_LOG_FORMAT,
    DEFAULT_LOG_LEVEL, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_FUTURE_MS, DEFAULT_MAX_TIMEOUT_MS,
    DEFAULT_MEMPOOL_MAX_BYTES, DEFAULT_MEMPOOL_MAX_COUNT, DEFAULT_MEMPOOL_MAX_PER_SENDER, LOG_FORMATS, LOG_LEVELS,
    PEER_PATH, PRESET_LOCAL_4,
)
from node.config.fields import (  # noqa: F401
    ListenAddress, PeerEntry, TlsFiles, compute_peer_url, is_local_or_any_host, is_valid_host, read_tls_files, read_toml,
)
from node.config.node_toml import (  # noqa: F401
    BlockConfig, ConsensusConfig, LogConfig, MempoolConfig, NodeConfig, config_from_dict, config_to_dict,
    load_config, verify_config_against_genesis,
)
from node.config.presets import Preset, get_preset_path, load_preset  # noqa: F401
