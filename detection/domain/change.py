"""Estimate which outputs of a whale are change, and so how much value really moved.

A whale is detected on the sum of its outputs (nothing is missed), but that sum includes the
sender's change: a 0.05 BTC withdrawal from a hot wallet holding 500 BTC moves 500 BTC of
outputs. `estimate(tx)` names the outputs that are probably change, from well-known heuristics,
and returns `moved` = total less that change, with a confidence in `moved` (0..1).

Heuristics, strongest first
---------------------------
address_reuse   An output paying an input address is change (certain up to address sharing).
                Real: 72 of the 212 txs of block 277647 do it, e.g. d7372730… (11 inputs, 22.86 BTC
                paid, 12.35 BTC back to an input address).
script_type     When every input has one script type and exactly one of the remaining outputs has
                that type while the others differ, that output is change: wallets send change to
                their own kind of script. (Needs input addresses, i.e. prevouts.) Real:
                13f00724… (mempool test data) spends v0_p2wpkh and pays 344,697 sats to p2pkh,
                265,396 sats back to v0_p2wpkh.
round_amount    When exactly one remaining output is a non-round amount (not a multiple of
                ROUND_UNIT sats) and every other one is round, the non-round one is change:
                people pay round amounts, change is what is left. Real: 712db987… in block 277647
                pays 0.693 BTC and returns 132.61498472 BTC.
batch_largest   A batch payout (server flag bit 34, or <= 3 inputs and >= 5 outputs) where no
                other heuristic decided and the largest output is larger than all the others
                together: that output is the sender's change (an exchange paying out many small
                withdrawals from a big hot-wallet coin). Weak, so low confidence.

An output with the same amount as another output is never picked as change by script_type or
round_amount: equal amounts are payments. When two heuristics name the same output the confidence rises; when they name different outputs
neither is trusted and nothing is removed. At least one output always stays "moved".

CoinJoin (server flag bit 32, or `flow.is_coinjoin_like`): the outputs belong to many people, so
the only honest single figure is the largest amount one participant can be shown to receive:
`moved` = the largest single output, with low confidence, and `coinjoin` is set.

Consolidations (server flag bit 33: inputs / outputs >= 5) are not treated here: their outputs are
not change but the same owner's money; the flow classifier keeps them out of "outflow".

The server's `flags` bits are mempool.space's `TransactionFlags` (protocol.md A.6).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..txshape import TxOutput, WhaleTx
from .addresses import script_type_of_address
from .flow import FLAG_BATCH_PAYOUT, FLAG_COINJOIN, is_coinjoin_like

# 0.001 BTC: amounts people type ("0.693", "100") are multiples; change almost never is.
ROUND_UNIT = 100_000

ADDRESS_REUSE = "address_reuse"
SCRIPT_TYPE = "script_type"
ROUND_AMOUNT = "round_amount"
BATCH_LARGEST = "batch_largest"
COINJOIN = "coinjoin"

CONFIDENCE = {
    ADDRESS_REUSE: 0.95,
    SCRIPT_TYPE: 0.7,
    ROUND_AMOUNT: 0.6,
    BATCH_LARGEST: 0.4,
}
COINJOIN_CONFIDENCE = 0.3
# One recipient and no change found: the figure is the transfer, short of a self-send.
SINGLE_RECIPIENT_CONFIDENCE = 0.9
# Several recipients and no change found: unseen change may still be in the figure.
UNRESOLVED_CONFIDENCE = 0.3

BATCH_MAX_INPUTS = 3
BATCH_MIN_OUTPUTS = 5


@dataclass(frozen=True, slots=True)
class ChangeEstimate:
    moved: int  # sats: total output value less the outputs judged change
    change: tuple[int, ...]  # output indexes judged change, ascending
    confidence: float  # in `moved`, 0..1
    methods: tuple[str, ...]  # heuristics that decided, strongest first
    coinjoin: bool = False


def _output_type(output: TxOutput) -> str:
    return output.script_type or script_type_of_address(output.address)


def is_round(value: int) -> bool:
    return value > 0 and value % ROUND_UNIT == 0


def estimate(tx: WhaleTx, *, coinjoin: bool | None = None) -> ChangeEstimate:
    """Change and moved value of `tx`. `coinjoin` overrides the detection (the classifier's
    shape tag); by default the server's flag decides, else `flow.is_coinjoin_like`."""
    total = tx.value
    if coinjoin is None:
        coinjoin = bool(tx.flags & FLAG_COINJOIN) or is_coinjoin_like(tx)
    if coinjoin and tx.outputs:
        largest = max(range(len(tx.outputs)), key=lambda i: (tx.outputs[i].value, -i))
        rest = tuple(i for i in range(len(tx.outputs)) if i != largest)
        return ChangeEstimate(
            moved=tx.outputs[largest].value,
            change=rest,
            confidence=COINJOIN_CONFIDENCE,
            methods=(COINJOIN,),
            coinjoin=True,
        )

    own = tx.input_addresses
    change: set[int] = {i for i, o in enumerate(tx.outputs) if o.address and o.address in own}
    methods: list[str] = [ADDRESS_REUSE] if change else []
    confidence = CONFIDENCE[ADDRESS_REUSE] if change else 0.0
    # Outputs that carry value and are not already change compete to be the payment.
    remaining = [i for i, o in enumerate(tx.outputs) if i not in change and o.value > 0]
    if not remaining and change:
        # Everything goes back to the inputs: the sender pays itself; nothing is change then.
        return ChangeEstimate(total, (), CONFIDENCE[ADDRESS_REUSE], (ADDRESS_REUSE,))

    picks: dict[str, int] = {}
    if len(remaining) >= 2:
        by_type = _script_type_pick(tx, remaining)
        if by_type is not None:
            picks[SCRIPT_TYPE] = by_type
        by_round = _round_pick(tx, remaining)
        if by_round is not None:
            picks[ROUND_AMOUNT] = by_round
        if not picks:
            by_batch = _batch_pick(tx, remaining)
            if by_batch is not None:
                picks[BATCH_LARGEST] = by_batch

    if picks and len(set(picks.values())) == 1:
        (index,) = set(picks.values())
        change.add(index)
        remaining.remove(index)
        doubt = 1.0
        for method in picks:
            methods.append(method)
            doubt *= 1.0 - CONFIDENCE[method]
        found = 1.0 - doubt
        confidence = min(confidence, found) if confidence else found
    elif not change:
        confidence = SINGLE_RECIPIENT_CONFIDENCE if len(remaining) <= 1 else UNRESOLVED_CONFIDENCE
    elif len(remaining) > 1 and not picks:
        # Change to an input address found, but other outputs may hide more change.
        confidence = min(confidence, 0.6)
    elif picks:
        # The heuristics disagree: keep what is certain, trust the figure less.
        confidence = min(confidence, UNRESOLVED_CONFIDENCE)

    moved = sum(o.value for i, o in enumerate(tx.outputs) if i not in change)
    return ChangeEstimate(
        moved=moved,
        change=tuple(sorted(change)),
        confidence=round(confidence, 3),
        methods=tuple(methods),
    )


def _script_type_pick(tx: WhaleTx, remaining: list[int]) -> int | None:
    input_types = {script_type_of_address(i.address) for i in tx.inputs}
    if len(input_types) != 1 or "" in input_types:
        return None
    (input_type,) = input_types
    matching = [i for i in remaining if _output_type(tx.outputs[i]) == input_type]
    if len(matching) == 1 and len(remaining) > 1 and not _has_twin(tx, matching[0]):
        return matching[0]
    return None


def _has_twin(tx: WhaleTx, index: int) -> bool:
    """Another output of the same amount: two equal payments, not a payment and its change."""
    value = tx.outputs[index].value
    return any(o.value == value for i, o in enumerate(tx.outputs) if i != index)


def _round_pick(tx: WhaleTx, remaining: list[int]) -> int | None:
    not_round = [i for i in remaining if not is_round(tx.outputs[i].value)]
    if len(not_round) == 1 and not _has_twin(tx, not_round[0]):
        return not_round[0]
    return None


def _batch_pick(tx: WhaleTx, remaining: list[int]) -> int | None:
    batch = bool(tx.flags & FLAG_BATCH_PAYOUT) or (
        len(tx.inputs) <= BATCH_MAX_INPUTS and len(tx.outputs) >= BATCH_MIN_OUTPUTS
    )
    if not batch or len(remaining) < BATCH_MIN_OUTPUTS - 1:
        return None
    largest = max(remaining, key=lambda i: (tx.outputs[i].value, -i))
    others = sum(tx.outputs[i].value for i in remaining if i != largest)
    return largest if tx.outputs[largest].value > others else None
