"""Key material that never prints: repr, str and format all show a mask, not the bytes."""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """Bytes of a private key. Read them with `reveal()`, only where a key is used."""

    __slots__ = ("_value", "_label")

    def __init__(self, value: bytes, label: str = "secret") -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError(f"{label} must be bytes")
        self._value = bytes(value)
        self._label = label

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret({self._label}, ***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self._value == other._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> NoReturn:  # pickling would copy the key somewhere we cannot see
        raise TypeError("a Secret cannot be pickled")
