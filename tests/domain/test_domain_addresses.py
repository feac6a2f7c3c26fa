"""Address validation against the BIP-173 / BIP-350 vectors, real addresses and random input."""

from __future__ import annotations

import contextlib
import hashlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detection.domain.addresses import (
    BAD_CHECKSUM,
    BAD_LENGTH,
    BAD_PADDING,
    BAD_WITNESS_VERSION,
    INVALID_CHARACTER,
    MIXED_CASE,
    UNKNOWN_PREFIX,
    WRONG_CHECKSUM_VARIANT,
    WRONG_NETWORK,
    AddressError,
    AddressKind,
    Network,
    address_kind,
    bech32_decode,
    canonical_address,
    is_valid_address,
    validate_address,
)
from detection.domain.labels_csv import DEFAULT_POOLS_V2_PATH

from .conftest import BLOCKS_DIR

ALL_NETWORKS = (Network.MAINNET, Network.TESTNET, Network.REGTEST)

# BIP-173 "valid bech32" and BIP-350 "valid bech32m" checksum vectors (not addresses).
VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11" + "q" * 82 + "c8247j",
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11" + "l" * 83 + "udsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
INVALID_BECH32 = [
    ("\x201nwldj5", INVALID_CHARACTER),
    ("\x7f1axkwrx", INVALID_CHARACTER),
    ("\x801eym55h", INVALID_CHARACTER),
    (
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
        BAD_LENGTH,
    ),
    ("pzry9x0s0muk", UNKNOWN_PREFIX),  # no separator
    ("1pzry9x0s0muk", UNKNOWN_PREFIX),  # empty human-readable part
    ("x1b4n0q5v", INVALID_CHARACTER),
    ("li1dgmt3", BAD_LENGTH),  # checksum too short
    ("de1lg7wt\xff", INVALID_CHARACTER),
    ("A1G7SGD8", BAD_CHECKSUM),  # checksum computed over the upper-case hrp
    ("10a06t8", UNKNOWN_PREFIX),
    ("1qzzfhee", UNKNOWN_PREFIX),
]

# BIP-173 / BIP-350 valid segwit addresses: (address, network, kind, scriptPubKey hex).
VALID_SEGWIT = [
    (
        "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4",
        Network.MAINNET,
        AddressKind.P2WPKH,
        "0014751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        Network.TESTNET,
        AddressKind.P2WSH,
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        Network.MAINNET,
        AddressKind.WITNESS_UNKNOWN,
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", Network.MAINNET, AddressKind.WITNESS_UNKNOWN, "6002751e"),
    (
        "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs",
        Network.MAINNET,
        AddressKind.WITNESS_UNKNOWN,
        "5210751e76e8199196d454941c45d1b3a323",
    ),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        Network.TESTNET,
        AddressKind.P2WSH,
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        Network.TESTNET,
        AddressKind.P2TR,
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        Network.MAINNET,
        AddressKind.P2TR,
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

# BIP-350 invalid segwit addresses with the reason each must fail for.
INVALID_SEGWIT = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", UNKNOWN_PREFIX),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", WRONG_CHECKSUM_VARIANT),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", WRONG_CHECKSUM_VARIANT),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", WRONG_CHECKSUM_VARIANT),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", WRONG_CHECKSUM_VARIANT),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", WRONG_CHECKSUM_VARIANT),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", INVALID_CHARACTER),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", BAD_WITNESS_VERSION),
    ("bc1pw5dgrnzv", BAD_LENGTH),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
        BAD_LENGTH,
    ),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", BAD_LENGTH),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", MIXED_CASE),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", BAD_PADDING),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", BAD_PADDING),
    ("bc1gmk9yu", BAD_LENGTH),
]


def _script_pubkey(info) -> str:
    version_opcode = 0 if info.witness_version == 0 else 0x50 + info.witness_version
    return bytes([version_opcode, len(info.payload)]).hex() + info.payload.hex()


def _fixture_addresses() -> list[str]:
    found: set[str] = set()
    for name in (
        "whales_block_277647.esplora_txs.json",
        "whales_block_702861.esplora_txs_no_prevouts.json",
    ):
        for tx in json.loads((BLOCKS_DIR / name).read_text()):
            for vout in tx["vout"]:
                if vout.get("scriptpubkey_address"):
                    found.add(vout["scriptpubkey_address"])
            for vin in tx["vin"]:
                if vin.get("prevout") and vin["prevout"].get("scriptpubkey_address"):
                    found.add(vin["prevout"]["scriptpubkey_address"])
    return sorted(found)


def _pools_mainnet_addresses() -> list[str]:
    pools = json.loads(DEFAULT_POOLS_V2_PATH.read_text())
    return sorted(a for p in pools for a in p["addresses"] if a.startswith(("1", "3", "bc1")))


REAL_ADDRESSES = _fixture_addresses() + _pools_mainnet_addresses()


@pytest.mark.parametrize("text", VALID_BECH32)
def test_bip173_valid_checksums(text):
    assert bech32_decode(text)[2] == "bech32"


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_bip350_valid_checksums(text):
    assert bech32_decode(text)[2] == "bech32m"


@pytest.mark.parametrize(("text", "reason"), INVALID_BECH32)
def test_bip173_invalid_strings(text, reason):
    with pytest.raises(AddressError) as caught:
        bech32_decode(text)
    assert caught.value.reason == reason


@pytest.mark.parametrize(("address", "network", "kind", "script"), VALID_SEGWIT)
def test_bip_valid_segwit_addresses(address, network, kind, script):
    info = validate_address(address, ALL_NETWORKS)
    assert (info.network, info.kind) == (network, kind)
    assert _script_pubkey(info) == script
    assert info.address == address.lower()


@pytest.mark.parametrize(("address", "reason"), INVALID_SEGWIT)
def test_bip350_invalid_segwit_addresses(address, reason):
    with pytest.raises(AddressError) as caught:
        validate_address(address, ALL_NETWORKS)
    assert caught.value.reason == reason


def test_testnet_addresses_are_wrong_network_by_default():
    with pytest.raises(AddressError) as caught:
        validate_address("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7")
    assert caught.value.reason == WRONG_NETWORK
    # A real testnet P2PKH address from pools-v2.json.
    testnet_p2pkh = next(
        a
        for p in json.loads(DEFAULT_POOLS_V2_PATH.read_text())
        for a in p["addresses"]
        if a.startswith("m")
    )
    with pytest.raises(AddressError) as caught:
        validate_address(testnet_p2pkh)
    assert caught.value.reason == WRONG_NETWORK
    assert validate_address(testnet_p2pkh, ["testnet"]).kind == AddressKind.P2PKH
    assert validate_address(testnet_p2pkh, ["regtest"]).network == Network.REGTEST


def test_regtest_hrp():
    # Same program as the BIP-173 P2WPKH vector, encoded for regtest (hrp "bcrt").
    regtest = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    assert validate_address(regtest, ["regtest"]).kind == AddressKind.P2WPKH
    with pytest.raises(AddressError) as caught:
        validate_address(regtest)
    assert caught.value.reason == WRONG_NETWORK


def test_real_mainnet_addresses_from_fixtures():
    kinds = {address_kind(a) for a in REAL_ADDRESSES}
    assert {AddressKind.P2PKH, AddressKind.P2SH, AddressKind.P2WPKH, AddressKind.P2TR} <= kinds
    assert address_kind("11zro2wX8v6mkd99VuQShMrisZNLxYFNm") == AddressKind.P2PKH
    assert address_kind("39X1VyGXCjcZuah1uaLp1AFCKbew8zpu9B") == AddressKind.P2SH
    assert address_kind("bc1qjk29nnnpxz9c3ukkqra6shq9rkczrzg9jv262w") == AddressKind.P2WPKH
    # The genesis coinbase address and the canonical P2SH example.
    assert address_kind("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == AddressKind.P2PKH
    assert address_kind("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy") == AddressKind.P2SH


def test_base58_errors_are_specific():
    cases = {
        "": "empty",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0": INVALID_CHARACTER,  # '0' is not base58
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb": BAD_CHECKSUM,
        "1111": BAD_LENGTH,  # four zero bytes: not even room for a checksum
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa ": INVALID_CHARACTER,  # callers strip, not us
    }
    for address, reason in cases.items():
        with pytest.raises(AddressError) as caught:
            validate_address(address)
        assert caught.value.reason == reason, address
    checksummed = {
        _base58check(b"\x01" + bytes(20)): UNKNOWN_PREFIX,  # unknown version byte
        _base58check(b"\x00" + bytes(19)): BAD_LENGTH,  # 19-byte hash
        _base58check(b"\x00" + bytes(21)): BAD_LENGTH,
    }
    for address, reason in checksummed.items():
        with pytest.raises(AddressError) as caught:
            validate_address(address)
        assert caught.value.reason == reason, address


def _base58check(payload: bytes) -> str:
    """Test-only encoder, to build addresses with a valid checksum and a wrong body."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    encoded = ""
    while number:
        number, digit = divmod(number, 58)
        encoded = BASE58[digit] + encoded
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + encoded


def test_base58check_encoder_round_trips_a_real_address():
    info = validate_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    assert _base58check(b"\x00" + info.payload) == "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_canonical_form_lowercases_bech32_only():
    assert canonical_address("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4") == (
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    )
    assert canonical_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa") == (
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    )


def test_error_message_names_the_reason():
    with pytest.raises(AddressError, match="bad checksum"):
        validate_address("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
def test_random_text_never_crashes(text):
    with contextlib.suppress(AddressError):  # the only exception allowed
        validate_address(text, ALL_NETWORKS)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="qpzry9x8gf2tvdw0s3jn54khce6mua7l", min_size=6, max_size=80))
def test_random_bech32_shaped_strings_never_crash(data):
    for prefix in ("bc1", "BC1", "tb1", "bcrt1"):
        with contextlib.suppress(AddressError):
            validate_address(prefix + data, ALL_NETWORKS)


BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _mutate(data, address: str, first: int, alphabet: str) -> str:
    index = data.draw(st.integers(min_value=first, max_value=len(address) - 1))
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != address[index]]))
    return address[:index] + replacement + address[index + 1 :]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_ADDRESSES), st.data())
def test_single_character_mutation_fails(address, data):
    if address.startswith("bc1"):
        # Mutate the data part: bech32 detects every single-character substitution there.
        mutated = _mutate(data, address, address.rfind("1") + 1, BECH32)
        expected = {BAD_CHECKSUM}
    else:
        mutated = _mutate(data, address, 0, BASE58)
        # Changing a leading '1' changes the decoded length as well as the checksum.
        expected = {BAD_CHECKSUM, BAD_LENGTH}
    with pytest.raises(AddressError) as caught:
        validate_address(mutated)
    assert caught.value.reason in expected
    assert not is_valid_address(mutated)
