"""Kernel transactions, version 5 (hash signatures): encode, decode, hash and sign.

Layout (big-endian): magic 7777, 00 05, asset(32), inputs, outputs, references, extra
(u32 length), then the signature maps. The transaction hash is blake3 of the encoding
without signatures (one empty map count), and every input is signed over that hash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

import blake3

from mixmaker.errors import MixmakerError
from mixmaker.mixin import curve

MAGIC = b"\x77\x77"
VERSION = 5
OUTPUT_SCRIPT = 0x00
OUTPUT_WITHDRAWAL_SUBMIT = 0xA1
SLICE_LIMIT = 256  # inputs, outputs and references per transaction
EXTRA_LIMIT = 256  # bytes in a general transaction's extra (memo)
NULL_KEY = bytes(32)


def threshold_script(threshold: int) -> bytes:
    """`fffe` + one threshold byte: spendable by `threshold` of the output's keys."""
    if not 1 <= threshold <= 255:
        raise ValueError(f"threshold must be 1..255, got {threshold}")
    return b"\xff\xfe" + bytes([threshold])


class KernelDecodeError(MixmakerError, ValueError):
    pass


@dataclass(frozen=True)
class Input:
    hash: bytes
    index: int


@dataclass(frozen=True)
class Withdrawal:
    address: str
    tag: str = ""


@dataclass(frozen=True)
class Output:
    type: int
    amount: int  # units of 1e-8
    keys: tuple[bytes, ...] = ()
    mask: bytes = NULL_KEY
    script: bytes = b""
    withdrawal: Withdrawal | None = None


@dataclass(frozen=True)
class Transaction:
    asset: bytes
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    references: tuple[bytes, ...] = ()
    extra: bytes = b""
    # one map per input: signer index -> 64-byte signature
    signatures: tuple[dict[int, bytes], ...] = field(default=())
    version: int = VERSION

    def unsigned(self) -> Transaction:
        return replace(self, signatures=())

    def hash(self) -> bytes:
        return blake3.blake3(encode(self.unsigned())).digest()


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def raw(self, b: bytes) -> None:
        self.buf += b

    def u16(self, n: int) -> None:
        if not 0 <= n <= 0xFFFF:
            raise ValueError(f"{n} does not fit the kernel's 16-bit field")
        self.buf += struct.pack(">H", n)

    def bytes16(self, b: bytes) -> None:
        self.u16(len(b))
        self.buf += b

    def integer(self, n: int) -> None:
        if n < 0:
            raise ValueError("kernel amounts are never negative")
        self.bytes16(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def encode(tx: Transaction) -> bytes:
    if tx.version != VERSION:
        raise ValueError(f"only kernel transaction version {VERSION} is supported")
    if len(tx.inputs) > SLICE_LIMIT or len(tx.outputs) > SLICE_LIMIT or len(tx.references) > SLICE_LIMIT:
        raise ValueError(f"at most {SLICE_LIMIT} inputs, outputs and references per transaction")
    w = _Writer()
    w.raw(MAGIC)
    w.raw(bytes([0, tx.version]))
    w.raw(_fixed(tx.asset, 32, "asset"))
    w.u16(len(tx.inputs))
    for i in tx.inputs:
        w.raw(_fixed(i.hash, 32, "input hash"))
        w.u16(i.index)
        w.u16(0)  # genesis
        w.raw(b"\x00\x00")  # no deposit
        w.raw(b"\x00\x00")  # no mint
    w.u16(len(tx.outputs))
    for o in tx.outputs:
        w.raw(bytes([0, o.type]))
        w.integer(o.amount)
        w.u16(len(o.keys))
        for k in o.keys:
            w.raw(_fixed(k, 32, "output key"))
        w.raw(_fixed(o.mask, 32, "mask"))
        w.bytes16(o.script)
        if o.withdrawal is None:
            w.raw(b"\x00\x00")
        else:
            w.raw(MAGIC)
            w.bytes16(o.withdrawal.address.encode())
            w.bytes16(o.withdrawal.tag.encode())
    w.u16(len(tx.references))
    for r in tx.references:
        w.raw(_fixed(r, 32, "reference"))
    w.raw(struct.pack(">I", len(tx.extra)))
    w.raw(tx.extra)
    w.u16(len(tx.signatures))
    for sm in tx.signatures:
        w.u16(len(sm))
        for idx in sorted(sm):
            w.u16(idx)
            w.raw(_fixed(sm[idx], 64, "signature"))
    return bytes(w.buf)


def _fixed(b: bytes, n: int, what: str) -> bytes:
    if len(b) != n:
        raise ValueError(f"{what} must be {n} bytes, got {len(b)}")
    return b


class _Reader:
    def __init__(self, b: bytes) -> None:
        self.b, self.pos = b, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.b):
            raise KernelDecodeError(f"transaction truncated at byte {self.pos} (needs {n} more)")
        out = self.b[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def bytes16(self) -> bytes:
        return self.take(self.u16())


def decode(raw: bytes) -> Transaction:
    r = _Reader(raw)
    if r.take(2) != MAGIC:
        raise KernelDecodeError("not a kernel transaction (bad magic)")
    ver = r.take(2)
    if ver != bytes([0, VERSION]):
        raise KernelDecodeError(f"unsupported transaction version {ver.hex()}")
    asset = r.take(32)
    inputs = []
    for _ in range(r.u16()):
        h, idx = r.take(32), r.u16()
        if r.bytes16() or r.take(2) != b"\x00\x00" or r.take(2) != b"\x00\x00":
            raise KernelDecodeError("genesis, deposit and mint inputs are not accepted here")
        inputs.append(Input(h, idx))
    outputs = []
    for _ in range(r.u16()):
        t = r.take(2)
        amount = int.from_bytes(r.bytes16(), "big")
        keys = tuple(r.take(32) for _ in range(r.u16()))
        mask, script = r.take(32), r.bytes16()
        marker = r.take(2)
        wd = None
        if marker == MAGIC:
            wd = Withdrawal(r.bytes16().decode(), r.bytes16().decode())
        elif marker != b"\x00\x00":
            raise KernelDecodeError("bad withdrawal marker")
        outputs.append(Output(t[1], amount, keys, mask, script, wd))
    refs = tuple(r.take(32) for _ in range(r.u16()))
    extra = r.take(struct.unpack(">I", r.take(4))[0])
    sigs = []
    count = r.u16()
    if count == 0xFFFF:
        raise KernelDecodeError("aggregated signatures are not accepted here")
    for _ in range(count):
        sm = {}
        for _ in range(r.u16()):
            idx = r.u16()
            sm[idx] = r.take(64)
        sigs.append(sm)
    if r.pos != len(raw):
        raise KernelDecodeError(f"{len(raw) - r.pos} trailing bytes after the transaction")
    return Transaction(asset, tuple(inputs), tuple(outputs), refs, extra, tuple(sigs))


def sign(tx: Transaction, views: list[bytes], spend_seed: bytes) -> Transaction:
    """Signs input i with views[i] + the spend scalar (one signer: the bot's 1/1 outputs)."""
    if len(views) != len(tx.inputs):
        raise ValueError(f"{len(tx.inputs)} inputs but {len(views)} view keys")
    msg = tx.hash()
    y = curve.spend_scalar(spend_seed)
    sigs = tuple({0: curve.sign_with_scalar(curve.scalar_add(curve.canonical_scalar(v), y), msg)} for v in views)
    return replace(tx, signatures=sigs)
