"""Ed25519 keys: generate, sign, verify, and key files.

A key file is JSON ``{"type": "ed25519", "public_key": hex, "secret_key": hex-seed}`` written with mode
0600; loading refuses a file that group or others can read, like ssh does, because a leaked branch key
can sign anything that branch may sign.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError, ValueError as NaclValueError
from nacl.signing import SigningKey, VerifyKey

from ledger.errors import KeyFileError, SignatureError

PUBLIC_KEY_LEN = 32
SIGNATURE_LEN = 64


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An Ed25519 signing key with its 32-byte public key (the account id)."""

    seed: bytes
    public_key: bytes

    @classmethod
    def generate(cls) -> "KeyPair":
        sk = SigningKey.generate()
        return cls(bytes(sk), bytes(sk.verify_key))

    @classmethod
    def from_seed(cls, seed: bytes) -> "KeyPair":
        if len(seed) != 32:
            raise KeyFileError(f"secret key seed is {len(seed)} bytes; expected 32")
        sk = SigningKey(seed)
        return cls(bytes(sk), bytes(sk.verify_key))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of ``message``."""
        return _signing_key(self.seed).sign(message).signature

    @property
    def hex(self) -> str:
        return self.public_key.hex()

    def __repr__(self) -> str:  # never print the seed
        return f"KeyPair(public_key={self.public_key.hex()})"


_SK_CACHE: dict[bytes, SigningKey] = {}


def _signing_key(seed: bytes) -> SigningKey:
    sk = _SK_CACHE.get(seed)
    if sk is None:
        if len(_SK_CACHE) > 1024:
            _SK_CACHE.clear()
        sk = _SK_CACHE[seed] = SigningKey(seed)
    return sk


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Return True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    try:
        VerifyKey(public_key).verify(message, signature)
        return True
    except (BadSignatureError, NaclValueError, ValueError, TypeError):
        return False


def verify_or_raise(public_key: bytes, message: bytes, signature: bytes, what: str) -> None:
    """Raise ``SignatureError`` naming ``what`` unless the signature verifies."""
    if not verify(public_key, message, signature):
        raise SignatureError(f"{what}: signature by {public_key.hex()[:16]}… does not verify")


def save_key(path: str | Path, key: KeyPair, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600; never through a symlink (even a dangling one).

    Without ``overwrite`` any existing path (file, directory or symlink) is refused: the file is created with
    O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted at ``path`` cannot redirect the secret elsewhere. With
    ``overwrite`` the key goes to a new file beside it that then replaces ``path`` itself (a symlink there is
    replaced, its target never written).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"type": "ed25519", "public_key": key.public_key.hex(), "secret_key": key.seed.hex()}
    data = (json.dumps(doc, indent=2) + "\n").encode()
    if not overwrite:
        _write_new(path, data)
        return
    if path.is_dir() and not path.is_symlink():
        raise KeyFileError(f"{path} is a directory; expected a key file path")
    temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    _write_new(temp, data)
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (refusing any existing entry, symlinks included) with mode 0600 and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        if path.is_symlink():
            raise KeyFileError(f"{path} is a symlink; refusing to write a key through it") from None
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have narrowed the mode; never widened, but be exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    os.close(fd)


def load_key(path: str | Path) -> KeyPair:
    """Load a key file; raise ``KeyFileError`` naming the problem (missing, mode, format, mismatch)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if st.st_mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {oct(st.st_mode & 0o777)}; expected 0600 (chmod 600 {path})"
        )
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyFileError(f"key file {path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "ed25519":
        raise KeyFileError(f"key file {path}: expected an object with type 'ed25519'")
    try:
        seed = bytes.fromhex(doc["secret_key"])
        public = bytes.fromhex(doc["public_key"])
    except (KeyError, TypeError, ValueError):
        raise KeyFileError(f"key file {path}: secret_key and public_key must be hex strings") from None
    key = KeyPair.from_seed(seed)
    if key.public_key != public:
        raise KeyFileError(f"key file {path}: public_key does not match the secret key")
    return key


def parse_public_key(text: str, what: str = "public key") -> bytes:
    """Parse a 64-hex-digit public key (an account id) or raise with what was seen."""
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise KeyFileError(f"{what} {text!r} is not hex; expected 64 hex digits") from None
    if len(raw) != PUBLIC_KEY_LEN:
        raise KeyFileError(f"{what} is {len(raw)} bytes; expected {PUBLIC_KEY_LEN} (64 hex digits)")
    return raw
