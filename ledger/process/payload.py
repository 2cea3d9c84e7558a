"""One declaration per transaction kind: typed payload dataclasses, their one generic parser, and ``KindSpec``.

A kind's payload is a frozen, slotted dataclass whose fields ARE the wire format: field order = payload
array order, and each field's type names its shape check (the table ``SCALARS``):

=============  =====================================================  ===================================
type           accepted on the wire (else ``bad_payload``)             CLI input (``carecoin tx <kind>``)
=============  =====================================================  ===================================
``Account``    32 bytes (an Ed25519 public key)                        64 hex digits
``Bytes32``    32 bytes (a key, a commitment)                          64 hex digits
``ContentHash`` 32 bytes, a salted commitment to a text kept off       ``--<name>`` TEXT (committed, kept
               chain (``ledger.commitments``)                          in the vault) or ``--<name>-hash`` HEX
``Amount``     an int, ``-MAX_AMOUNT..MAX_AMOUNT`` (coins, fiat)       an int
``Int``        an int, ``-MAX_INT..MAX_INT`` (levels, times, counts)   an int
``Id``/``Text`` a str of at most ``MAX_PAYLOAD_STR`` characters        text
``Code``       a str of lowercase ASCII letters, digits and ``_.:-``   text
               only (e.g. ``fraud_check``): never free text, which
               would stay on chain un-erasable (names, a sentence)
``PolicyValue`` an int or a str                                        text, an int for int parameters
=============  =====================================================  ===================================

Signs, id syntax, short texts and enumerations are RULES (a broken rule commits as a failed result with
its reason, which is itself a signed proof of the decision), so they stay in the kind's step; the bounds
here only keep every later sum inside 64-bit arithmetic and every string small. ``MAX_AMOUNT`` = 10**15
is the default mint cap: no single payload amount can exceed what may ever exist.

A ``KindSpec`` (``declare_kind``) adds who may send the kind, a one-line help, and per field (``arg``) a
help text, the CLI default and, rarely, an option name; the CLI generates ``carecoin tx <kind>`` from it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields
from typing import Any, Callable, NewType

from ledger import reasons
from ledger.events import Event
from ledger.reasons import invalid_tx
from ledger.types import AccountId, Amount

Account = AccountId  # 32-byte Ed25519 public key
Bytes32 = NewType("Bytes32", bytes)
ContentHash = NewType("ContentHash", bytes)
Int = NewType("Int", int)
Id = NewType("Id", str)
Text = NewType("Text", str)
Code = NewType("Code", str)  # a reason code: never free text (a name or a sentence would stay on chain forever)
PolicyValue = NewType("PolicyValue", object)  # int | str

MAX_AMOUNT = 10**15
MAX_INT = 2**53 - 1  # also exact in every JSON reader
MAX_PAYLOAD_STR = 1024
REQUIRED: Any = object()  # ``arg(default=REQUIRED)``: the CLI option must be given


def _fail(kind: str, name: str, seen: str, expected: str) -> None:
    raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind}.{name} is {seen}; expected {expected}")


def _check_32(expected: str) -> Callable[[str, str, Any], bytes]:
    def check(kind: str, name: str, value: Any) -> bytes:
        if type(value) is not bytes or len(value) != 32:
            _fail(kind, name, f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__, expected)
        return value
    return check


def _check_int(bound: int) -> Callable[[str, str, Any], int]:
    def check(kind: str, name: str, value: Any) -> int:
        if type(value) is not int:
            _fail(kind, name, type(value).__name__, "an int")
        if not -bound <= value <= bound:
            _fail(kind, name, str(value), f"an int of at most {bound} in size")
        return value
    return check


def _check_str(kind: str, name: str, value: Any) -> str:
    if type(value) is not str:
        _fail(kind, name, type(value).__name__, "a str")
    if len(value) > MAX_PAYLOAD_STR:
        _fail(kind, name, f"{len(value)} characters", f"a str of at most {MAX_PAYLOAD_STR}")
    return value


_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.:-")


def _check_code(kind: str, name: str, value: Any) -> str:
    """A str of code characters only; the value is not echoed (it may be the very free text refused)."""
    value = _check_str(kind, name, value)
    if not _CODE_CHARS.issuperset(value):
        _fail(kind, name, f"a str of {len(value)} characters that is not a code",
              "lowercase ASCII letters, digits, _ . : - only (e.g. fraud_check): free text never goes on chain")
    return value


def _check_policy_value(kind: str, name: str, value: Any) -> int | str:
    if type(value) is str:
        return _check_str(kind, name, value)
    if type(value) is not int:
        _fail(kind, name, type(value).__name__, "an int or str")
    return value


@dataclass(frozen=True, slots=True)
class Scalar:
    """How one field type is checked on the wire, named in messages, and entered on the command line."""

    wire: str  # in the "[name: wire, ...]" signature of bad_payload messages
    check: Callable[[str, str, Any], Any]
    cli: str  # "account" | "bytes32" | "hash" | "int" | "text" | "policy"


SCALARS: dict[Any, Scalar] = {
    Account: Scalar("bin32", _check_32("a 32-byte account id"), "account"),
    Bytes32: Scalar("bin32", _check_32("32 bytes"), "bytes32"),
    ContentHash: Scalar("bin32", _check_32("a 32-byte hash"), "hash"),
    Amount: Scalar("int", _check_int(MAX_AMOUNT), "int"),
    Int: Scalar("int", _check_int(MAX_INT), "int"),
    Id: Scalar("str", _check_str, "text"),
    Text: Scalar("str", _check_str, "text"),
    Code: Scalar("str", _check_code, "text"),
    PolicyValue: Scalar("int | str", _check_policy_value, "policy"),
}


def arg(help: str, default: Any = REQUIRED, *, option: str | None = None, cli_min: int | None = None) -> Any:
    """A payload field's declaration: its help, its CLI default, and an option name if not ``--<name>``."""
    return field(metadata={"help": help, "default": default, "option": option, "cli_min": cli_min})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One payload field: name, type (a key of ``SCALARS``), CLI help, default, option name and minimum."""

    name: str
    type: Any
    scalar: Scalar
    help: str
    default: Any  # REQUIRED: no default
    option: str
    cli_min: int | None


def compute_fields(payload_class: type) -> tuple[FieldSpec, ...]:
    """The fields of a payload dataclass in wire order; raise ``TypeError`` for a type without a check."""
    hints = typing.get_type_hints(payload_class)
    out = []
    for f in fields(payload_class):
        scalar = SCALARS.get(hints[f.name])
        if scalar is None:
            raise TypeError(f"{payload_class.__name__}.{f.name}: type {hints[f.name]!r} has no payload check; "
                            f"expected one of {', '.join(getattr(t, '__name__', str(t)) for t in SCALARS)}")
        meta = f.metadata
        out.append(FieldSpec(f.name, hints[f.name], scalar, meta.get("help", ""), meta.get("default", REQUIRED),
                             meta.get("option") or "--" + f.name.replace("_", "-"), meta.get("cli_min")))
    return tuple(out)


def make_parser(kind: str, payload_class: type) -> Callable[[Any], Any]:
    """The shape check of ``kind``: payload array -> ``payload_class`` instance, else ``bad_payload``."""
    specs = compute_fields(payload_class)
    checks = tuple((f.name, f.scalar.check) for f in specs)
    count = len(specs)
    signature = "[" + ", ".join(f"{f.name}: {f.scalar.wire}" for f in specs) + "]"

    def parse(payload: Any) -> Any:
        if type(payload) not in (list, tuple) or len(payload) != count:
            seen = len(payload) if isinstance(payload, (list, tuple)) else type(payload).__name__
            raise invalid_tx(reasons.BAD_PAYLOAD, f"{kind} payload has {seen} fields; expected {count}: {signature}")
        return payload_class(*[check(kind, name, value) for (name, check), value in zip(checks, payload)])

    parse.__doc__ = f"Check a {kind} payload {signature} and return a ``{payload_class.__name__}``."
    return parse


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One transaction kind: name, shape check, step, and what the CLI and docs say about it.

    Built with ``declare_kind``; ``payload`` is None only for ad-hoc kinds (tests) that bring their own check.
    """

    name: str
    compute_payload: Callable[[Any], Any]  # shape check: payload -> typed tx, raises InvalidTransaction
    step: Callable[[Any, Any], list[Event]]  # rules and writes: raises TxFailure
    payload: type | None = None
    senders: str = ""  # who may send it, for help and docs (the step checks it)
    help: str = ""

    def process(self, ctx: Any, tx: Any) -> list[list]:
        """Run the step; return its events as the committed arrays (``Event.to_wire``)."""
        # (an ad-hoc kind of a test may return committed arrays directly)
        return [event.to_wire() if isinstance(event, Event) else event for event in self.step(ctx, tx)]

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return () if self.payload is None else compute_fields(self.payload)


def declare_kind(name: str, payload: type, step: Callable[[Any, Any], list[Event]], *, senders: str,
                 help: str) -> KindSpec:
    """The spec of kind ``name``: its shape check is derived from ``payload``'s field types."""
    return KindSpec(name, make_parser(name, payload), step, payload, senders, help)
