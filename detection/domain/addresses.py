"""Bitcoin address validation: base58check (P2PKH, P2SH) and bech32 / bech32m (BIP-173, BIP-350).

Written from the BIPs. Validation is structural only (checksum, version, lengths, network); it
says nothing about whether an address was ever used. Mainnet is the default; testnet/signet and
regtest are accepted only when the caller asks, so a testnet address in an operator's label file
is reported as "wrong network" instead of silently imported.

Checksums are verified before the network prefix is looked at, so a single mistyped character is
reported as "bad checksum" rather than as a confusing "unknown prefix".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class AddressKind(StrEnum):
    P2PKH = "p2pkh"
    P2SH = "p2sh"
    P2WPKH = "p2wpkh"
    P2WSH = "p2wsh"
    P2TR = "p2tr"
    WITNESS_UNKNOWN = "witness_unknown"


class Network(StrEnum):
    MAINNET = "mainnet"
    TESTNET = "testnet"  # also signet: they share every address prefix
    REGTEST = "regtest"


class AddressError(ValueError):
    """An address failed validation. `reason` is a short stable code, safe to show and to test."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# Stable reason codes (AddressError.reason).
EMPTY = "empty"
INVALID_CHARACTER = "invalid character"
MIXED_CASE = "mixed case"
BAD_LENGTH = "bad length"
BAD_CHECKSUM = "bad checksum"
WRONG_CHECKSUM_VARIANT = "wrong checksum variant"
WRONG_NETWORK = "wrong network"
UNKNOWN_PREFIX = "unknown prefix"
BAD_WITNESS_VERSION = "bad witness version"
BAD_PADDING = "bad padding"


@dataclass(frozen=True, slots=True)
class AddressInfo:
    address: str  # canonical form: bech32 lower-cased, base58 unchanged (it is case-sensitive)
    kind: AddressKind
    network: Network
    witness_version: int | None  # None for base58 addresses
    payload: bytes  # hash160 for base58, witness program for segwit


MAINNET_ONLY: frozenset[Network] = frozenset({Network.MAINNET})

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58_ALPHABET)}
# 25 bytes encode to at most 35 characters; anything much longer cannot be an address and would
# only cost big-integer work.
_BASE58_MAX_CHARS = 50

# version byte -> (kind, networks). Testnet, signet and regtest share 0x6f / 0xc4.
_BASE58_VERSIONS: dict[int, tuple[AddressKind, tuple[Network, ...]]] = {
    0x00: (AddressKind.P2PKH, (Network.MAINNET,)),
    0x05: (AddressKind.P2SH, (Network.MAINNET,)),
    0x6F: (AddressKind.P2PKH, (Network.TESTNET, Network.REGTEST)),
    0xC4: (AddressKind.P2SH, (Network.TESTNET, Network.REGTEST)),
}

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_BECH32_MAX_LENGTH = 90
_CHECKSUM_CHARS = 6

_SEGWIT_HRPS: dict[str, Network] = {
    "bc": Network.MAINNET,
    "tb": Network.TESTNET,
    "bcrt": Network.REGTEST,
}


def validate_address(address: str, networks: Iterable[Network | str] = MAINNET_ONLY) -> AddressInfo:
    """Validate `address` for one of `networks` and describe it; raise AddressError otherwise."""
    allowed = frozenset(Network(n) for n in networks)
    if not isinstance(address, str) or not address:
        raise AddressError(EMPTY)
    lowered = address.lower()
    # Nothing longer than _BASE58_MAX_CHARS can be base58, so a long string with an unknown
    # prefix gets the bech32 diagnosis ("unknown prefix") instead of a base58 length error.
    looks_segwit = any(lowered.startswith(hrp + "1") for hrp in _SEGWIT_HRPS)
    if looks_segwit or len(address) > _BASE58_MAX_CHARS:
        return _validate_segwit(address, allowed)
    return _validate_base58(address, allowed)


def address_kind(address: str, networks: Iterable[Network | str] = MAINNET_ONLY) -> AddressKind:
    return validate_address(address, networks).kind


def is_valid_address(address: str, networks: Iterable[Network | str] = MAINNET_ONLY) -> bool:
    try:
        validate_address(address, networks)
    except AddressError:
        return False
    return True


def canonical_address(address: str, networks: Iterable[Network | str] = MAINNET_ONLY) -> str:
    """The form sources use (Esplora writes bech32 in lower case), so label lookups match."""
    return validate_address(address, networks).address


def _pick_network(candidates: tuple[Network, ...], allowed: frozenset[Network]) -> Network:
    for network in candidates:
        if network in allowed:
            return network
    raise AddressError(WRONG_NETWORK, f"a {candidates[0].value} address")


# --- base58check -------------------------------------------------------------------------------


def _double_sha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _base58_decode(text: str) -> bytes:
    if len(text) > _BASE58_MAX_CHARS:
        raise AddressError(BAD_LENGTH, f"{len(text)} characters")
    number = 0
    for char in text:
        digit = _BASE58_INDEX.get(char)
        if digit is None:
            raise AddressError(INVALID_CHARACTER, repr(char))
        number = number * 58 + digit
    # Each leading '1' stands for one leading zero byte, which the integer cannot carry.
    leading_zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * leading_zeros + body


def _validate_base58(address: str, allowed: frozenset[Network]) -> AddressInfo:
    raw = _base58_decode(address)
    if len(raw) < 5:
        raise AddressError(BAD_LENGTH, f"{len(raw)} bytes decoded")
    payload, checksum = raw[:-4], raw[-4:]
    if _double_sha256(payload)[:4] != checksum:
        raise AddressError(BAD_CHECKSUM)
    if len(payload) != 21:
        raise AddressError(BAD_LENGTH, f"{len(payload) - 1}-byte hash, expected 20")
    version = payload[0]
    if version not in _BASE58_VERSIONS:
        raise AddressError(UNKNOWN_PREFIX, f"version byte 0x{version:02x}")
    kind, candidates = _BASE58_VERSIONS[version]
    network = _pick_network(candidates, allowed)
    return AddressInfo(address, kind, network, None, payload[1:])


# --- bech32 / bech32m --------------------------------------------------------------------------


def _build_polymod_table() -> tuple[int, ...]:
    generators = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    table = []
    for top in range(32):
        value = 0
        for bit, coefficient in enumerate(generators):
            if (top >> bit) & 1:
                value ^= coefficient
        table.append(value)
    return tuple(table)


# The five generator XORs of BIP-173's checksum, precomputed for each value of the top 5 bits:
# the synthetic source encodes an address for most outputs it makes.
_POLYMOD_TABLE = _build_polymod_table()


def _polymod(values: Iterable[int]) -> int:
    table = _POLYMOD_TABLE
    checksum = 1
    for value in values:
        checksum = ((checksum & 0x1FFFFFF) << 5) ^ value ^ table[checksum >> 25]
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def encode_segwit_address(version: int, program: bytes, hrp: str = "bc") -> str:
    """BIP-173/350 encoding of a witness program (bech32 for v0, bech32m for v1+)."""
    data = [version]
    accumulator = bits = 0
    for byte in program:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            data.append((accumulator >> bits) & 31)
    if bits:
        data.append((accumulator << (5 - bits)) & 31)
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * _CHECKSUM_CHARS) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(_CHECKSUM_CHARS)]
    return hrp + "1" + "".join(_BECH32_CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, list[int], str]:
    """Split and checksum-verify a bech32/bech32m string: (hrp, 5-bit data, "bech32"|"bech32m").

    The data excludes the checksum. Only the generic BIP-173 rules apply here; segwit rules
    (witness version, program length, variant per version) are in `validate_address`.
    """
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise AddressError(INVALID_CHARACTER, "outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise AddressError(MIXED_CASE)
    if len(text) > _BECH32_MAX_LENGTH:
        raise AddressError(BAD_LENGTH, f"{len(text)} characters, at most {_BECH32_MAX_LENGTH}")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1:
        raise AddressError(UNKNOWN_PREFIX, "no human-readable part")
    if len(text) - separator - 1 < _CHECKSUM_CHARS:
        raise AddressError(BAD_LENGTH, "data part shorter than the checksum")
    hrp, data_part = text[:separator], text[separator + 1 :]
    data: list[int] = []
    for char in data_part:
        value = _BECH32_INDEX.get(char)
        if value is None:
            raise AddressError(INVALID_CHARACTER, repr(char))
        data.append(value)
    residue = _polymod(_hrp_expand(hrp) + data)
    if residue == _BECH32_CONST:
        variant = "bech32"
    elif residue == _BECH32M_CONST:
        variant = "bech32m"
    else:
        raise AddressError(BAD_CHECKSUM)
    return hrp, data[:-_CHECKSUM_CHARS], variant


def _five_to_eight_bits(data: list[int]) -> bytes:
    accumulator = 0
    bits = 0
    out = bytearray()
    for value in data:
        accumulator = (accumulator << 5) | value
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    # BIP-173: at most 4 bits of padding, and they must be zero.
    if bits >= 5:
        raise AddressError(BAD_PADDING, "more than 4 padding bits")
    if accumulator & ((1 << bits) - 1):
        raise AddressError(BAD_PADDING, "non-zero padding bits")
    return bytes(out)


def _validate_segwit(address: str, allowed: frozenset[Network]) -> AddressInfo:
    hrp, data, variant = bech32_decode(address)
    if hrp not in _SEGWIT_HRPS:
        raise AddressError(UNKNOWN_PREFIX, f"human-readable part {hrp!r}")
    if not data:
        raise AddressError(BAD_LENGTH, "no witness version")
    version = data[0]
    if version > 16:
        raise AddressError(BAD_WITNESS_VERSION, str(version))
    expected_variant = "bech32" if version == 0 else "bech32m"
    if variant != expected_variant:
        raise AddressError(
            WRONG_CHECKSUM_VARIANT, f"witness v{version} needs {expected_variant}, got {variant}"
        )
    program = _five_to_eight_bits(data[1:])
    if not 2 <= len(program) <= 40:
        raise AddressError(BAD_LENGTH, f"{len(program)}-byte witness program")
    if version == 0 and len(program) not in (20, 32):
        raise AddressError(BAD_LENGTH, f"{len(program)}-byte v0 program, expected 20 or 32")
    network = _pick_network((_SEGWIT_HRPS[hrp],), allowed)
    if version == 0:
        kind = AddressKind.P2WPKH if len(program) == 20 else AddressKind.P2WSH
    elif version == 1 and len(program) == 32:
        kind = AddressKind.P2TR
    else:
        kind = AddressKind.WITNESS_UNKNOWN
    return AddressInfo(address.lower(), kind, network, version, program)


# --- output scripts -> addresses (block scans) -------------------------------------------------


def encode_base58check(payload: bytes) -> str:
    """Base58check of a version byte + hash (P2PKH / P2SH addresses)."""
    raw = payload + _double_sha256(payload)[:4]
    number = int.from_bytes(raw, "big")
    chars = []
    while number:
        number, digit = divmod(number, 58)
        chars.append(_BASE58_ALPHABET[digit])
    leading_zeros = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(chars))


def script_address(script: bytes) -> tuple[str, str | None]:
    """(Esplora ``scriptpubkey_type``, mainnet address or None) of an output script.

    Only the standard templates have an address; bare multisig, P2PK, OP_RETURN and anything
    else get a type and no address (Esplora does the same), never a guessed one.
    """
    size = len(script)
    if size == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return "p2pkh", encode_base58check(b"\x00" + script[3:23])
    if size == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return "p2sh", encode_base58check(b"\x05" + script[2:22])
    if size == 22 and script[:2] == b"\x00\x14":
        return "v0_p2wpkh", encode_segwit_address(0, script[2:])
    if size == 34 and script[:2] == b"\x00\x20":
        return "v0_p2wsh", encode_segwit_address(0, script[2:])
    if size == 34 and script[:2] == b"\x51\x20":
        return "v1_p2tr", encode_segwit_address(1, script[2:])
    if size and script[0] == 0x6A:
        return "op_return", None
    if size in (35, 67) and script[0] == size - 2 and script[-1] == 0xAC:
        return "p2pk", None
    if size and script[-1] == 0xAE:
        return "multisig", None
    return "unknown", None


def script_type_of_address(address: str | None) -> str:
    """The Esplora `scriptpubkey_type` an address implies ("" when it cannot be told).

    By prefix and length only, for addresses a source already gave with a transaction (inputs
    carry an address but no script type); it validates nothing.
    """
    if not address:
        return ""
    lowered = address.lower()
    for hrp in ("bc1", "tb1", "bcrt1"):
        if lowered.startswith(hrp):
            program = lowered[len(hrp) :]
            if program.startswith("q"):
                return "v0_p2wpkh" if len(address) == len(hrp) + 39 else "v0_p2wsh"
            if program.startswith("p"):
                return "v1_p2tr"
            return ""
    if address[0] in "1mn":
        return "p2pkh"
    if address[0] in "32":
        return "p2sh"
    return ""
