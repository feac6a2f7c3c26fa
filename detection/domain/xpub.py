"""Extended public keys (xpub / ypub / zpub) for watchlists: parse, refuse what must not be
stored, and derive the receive and change addresses a wallet uses.

The BIP32 arithmetic is embit's (a maintained library, pinned in pyproject.toml). This module
only decides which keys are acceptable and which address type each prefix stands for (SLIP-132):

- ``xpub`` -> P2PKH (BIP44), ``ypub`` -> P2SH-P2WPKH (BIP49), ``zpub`` -> P2WPKH (BIP84);
- a private key (xprv/yprv/zprv...) is refused before anything is derived: a watchlist never
  holds spending keys, and the error says so without echoing the key;
- testnet keys (tpub/upub/vpub and their private forms) are refused: the portal watches mainnet.

Addresses are derived on the two BIP44 branches (0 = receive, 1 = change), indexes 0..gap-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from embit import base58, bip32, script
from embit.networks import NETWORKS

DEFAULT_GAP_LIMIT = 50
RECEIVE, CHANGE = 0, 1


class XpubError(ValueError):
    """An extended key that cannot be watched; the message is safe to show (no key material)."""


class XpubKind(StrEnum):
    XPUB = "xpub"  # P2PKH
    YPUB = "ypub"  # P2SH-P2WPKH
    ZPUB = "zpub"  # P2WPKH


# SLIP-132 version bytes.
_PUBLIC = {
    bytes.fromhex("0488b21e"): XpubKind.XPUB,
    bytes.fromhex("049d7cb2"): XpubKind.YPUB,
    bytes.fromhex("04b24746"): XpubKind.ZPUB,
}
_PRIVATE_MAINNET = {bytes.fromhex(v) for v in ("0488ade4", "049d7878", "04b2430c")}
_TESTNET_PUBLIC = {bytes.fromhex(v) for v in ("043587cf", "044a5262", "045f1cf6")}
_TESTNET_PRIVATE = {bytes.fromhex(v) for v in ("04358394", "044a4e28", "045f18bc")}
_MAINNET = NETWORKS["main"]


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    text: str  # as given (stripped)
    kind: XpubKind
    key: bip32.HDKey

    def address(self, branch: int, index: int) -> str:
        return self.addresses(branch, index, index + 1)[0][1]

    def addresses(self, branch: int, start: int, stop: int) -> list[tuple[int, str]]:
        """(index, address) for start <= index < stop on one branch."""
        if branch not in (RECEIVE, CHANGE) or not 0 <= start <= stop <= 2**31:
            raise XpubError("branch must be 0 or 1 and indexes below 2^31")
        parent = self.key.derive([branch])
        out = []
        for index in range(start, stop):
            child = parent.derive([index]).key
            if self.kind is XpubKind.XPUB:
                address = script.p2pkh(child).address(_MAINNET)
            elif self.kind is XpubKind.YPUB:
                address = script.p2sh(script.p2wpkh(child)).address(_MAINNET)
            else:
                address = script.p2wpkh(child).address(_MAINNET)
            out.append((index, address))
        return out


def looks_like_extended_key(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) > 100 and stripped[1:4] in ("pub", "prv")


def parse_extended_key(text: str) -> ExtendedKey:
    """Parse a mainnet xpub/ypub/zpub; raise XpubError for anything else."""
    stripped = (text or "").strip()
    if not stripped:
        raise XpubError("empty extended key")
    try:
        raw = base58.decode_check(stripped)
    except Exception:  # noqa: BLE001 - embit raises plain ValueError/Exception on bad input
        raise XpubError("not an extended key (bad base58 or checksum)") from None
    if len(raw) != 78:
        raise XpubError(f"not an extended key ({len(raw)} bytes, expected 78)")
    version = raw[:4]
    if version in _PRIVATE_MAINNET or version in _TESTNET_PRIVATE:
        raise XpubError(
            "this is a private key (xprv/yprv/zprv): never share it; give the matching public "
            "key (xpub/ypub/zpub) instead"
        )
    if version in _TESTNET_PUBLIC:
        raise XpubError("testnet extended key (tpub/upub/vpub): only mainnet keys can be watched")
    kind = _PUBLIC.get(version)
    if kind is None:
        raise XpubError("unknown extended key version (expected xpub, ypub or zpub)")
    try:
        key = bip32.HDKey.parse(raw)
    except Exception:  # noqa: BLE001
        raise XpubError("extended key does not hold a valid public key") from None
    if key.is_private:
        raise XpubError("this is a private key: give the matching public key instead")
    return ExtendedKey(text=stripped, kind=kind, key=key)


def window_after_use(used_index: int, current_stop: int, gap_limit: int) -> int:
    """The new end of a branch's window once `used_index` has been used: gap_limit past it."""
    return max(current_stop, used_index + 1 + gap_limit)
