"""Extended public keys against the published BIP32 / BIP84 test vectors."""

import pytest
from embit import base58

from detection.domain.xpub import CHANGE, RECEIVE, XpubError, XpubKind, parse_extended_key

# BIP84, "Test vectors": account 0 of the mnemonic "abandon ... about".
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGD"
    "tKsAYz2oz2AGutZYs"
)
BIP84_ZPRV = (
    "zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYSJA9iefm1yYN"
    "ZKEm7z6qUWCroSQnE"
)
# BIP32, test vector 1, chain m.
BIP32_XPUB = (
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7"
    "usUDFdp6W1EGMcet8"
)
BIP32_XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtR"
    "BeJgk33yuGBxrMPHi"
)


def test_bip84_zpub_expands_to_the_published_addresses():
    key = parse_extended_key(BIP84_ZPUB)
    assert key.kind is XpubKind.ZPUB
    assert key.address(RECEIVE, 0) == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert key.address(RECEIVE, 1) == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    assert key.address(CHANGE, 0) == "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    window = key.addresses(RECEIVE, 0, 50)
    assert [i for i, _ in window] == list(range(50))
    assert window[1][1] == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    assert len({a for _, a in window}) == 50


def test_bip32_vector_1_xpub_derives_p2pkh_addresses():
    key = parse_extended_key(BIP32_XPUB)
    assert key.kind is XpubKind.XPUB
    # m/0/0 of BIP32 test vector 1 (non-hardened), P2PKH
    assert key.address(RECEIVE, 0).startswith("1")


@pytest.mark.parametrize("private", [BIP84_ZPRV, BIP32_XPRV])
def test_private_keys_are_refused_without_echoing_them(private):
    with pytest.raises(XpubError, match="private key") as info:
        parse_extended_key(private)
    assert private not in str(info.value)


def _with_version(key: str, version_hex: str) -> str:
    raw = base58.decode_check(key)
    return base58.encode_check(bytes.fromhex(version_hex) + raw[4:])


def test_testnet_keys_are_refused():
    tpub = _with_version(BIP32_XPUB, "043587cf")
    assert tpub.startswith("tpub")
    with pytest.raises(XpubError, match="testnet"):
        parse_extended_key(tpub)
    vprv = _with_version(BIP84_ZPRV, "045f18bc")
    with pytest.raises(XpubError, match="private key"):
        parse_extended_key(vprv)


@pytest.mark.parametrize("text", ["", "xpub123", BIP84_ZPUB[:-1] + "t", "bc1qxyz"])
def test_garbage_is_refused(text):
    with pytest.raises(XpubError):
        parse_extended_key(text)
