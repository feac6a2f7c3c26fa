"""Classify a whale by exchange flow, tag its shape, and propose common-input cluster labels.

Sides
-----
* **Input side.** Known only when at least one input carries an address (prevouts present). When
  no input has an address (a bitcoind-backed source sends no prevouts) the sender is unknown:
  `from_entity` is None, the flow is `unknown`, and nothing is guessed. When inputs are labelled,
  the sender is the labelled entity holding the most input value (input count when values are
  missing). In a coinjoin-like tx the inputs belong to many owners, so no sender is named.
* **Output side.** Change (outputs paying back to an input address) is left out. Each remaining
  recipient competes by value: a labelled entity with the sum of its outputs, every unlabelled
  address on its own (two unlabelled addresses are not known to be one owner). The recipient
  with the largest value is `to_entity` when it is labelled; on a tie the labelled entity wins.
  So 999 BTC to a fresh address plus 1 BTC to an exchange is not an inflow, while an exchange
  withdrawal batch (many small unlabelled outputs) still is an outflow. `to_share` is the winning
  recipient's share of the transfer. A tx whose every output is change pays its own sender.

Flows (only exchange labels decide a flow; other kinds are reported as entities)
-----
exchange_internal  exchange X → exchange X
inter_exchange     exchange X → exchange Y
exchange_outflow   exchange X → not an exchange (unlabelled, miner, custodian, ...), except:
exchange_internal  also an exchange X consolidation (shape tag below, or the server's flag bit 33)
                   whose whole transfer goes to ONE unlabelled output: gathering coins into a new
                   (cold) address is the exchange moving its own money, not an outflow. A
                   consolidation that pays two recipients (d3852055… in block 277647: 23 inputs,
                   100 BTC to one address, 3.03 BTC to another) is still judged as a payment.
exchange_inflow    attributable sender that is not an exchange → exchange
unknown            everything else, including any tx whose input side is unknown or
                   coinjoin-like (its recipient entity is still reported in to_entity)

Shape tags (thresholds below)
-----
consolidation   >= 5 inputs and <= 2 outputs
batch_payout    <= 3 inputs and >= 5 outputs
rbf_signalled   any input sequence < 0xfffffffe (BIP-125)
coinjoin_like   >= 5 inputs and >= 5 outputs of one identical non-dust value, with at least as
                many inputs as those equal outputs (each participant brings an input)

Common-input clustering
-----
Spending inputs together needs every key, so in an ordinary (non-coinjoin) tx the inputs share an
owner. When the inputs carry an exchange label that is not itself derived, and all labelled
inputs name that one entity, every unlabelled input address is proposed for that entity with
confidence min(seed × 0.6, 0.5) and source "cluster". Never for coinjoin-like txs, never when
input labels disagree, and derived ("cluster") labels never seed further clustering, so an error
cannot snowball along a chain of transactions.

Nor for two-party collaborative transactions (payjoin, dual-funded channel opens and splices),
whose inputs have two owners: `is_collaborative_like` is true when the inputs mix script types
(one wallet spends one kind of script), or when exactly two distinct input addresses fund a
v0_p2wsh / v1_p2tr output (a possible 2-of-2 channel or shared output). This is conservative: it
costs some true candidates, never adds a false one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ..txshape import WhaleTx
from .addresses import script_type_of_address
from .labels import CLUSTER_SOURCE, EXCHANGE, Label, LabelLookup

LabelOf = Callable[[str | None], Label | None]

EXCHANGE_INFLOW = "exchange_inflow"
EXCHANGE_OUTFLOW = "exchange_outflow"
INTER_EXCHANGE = "inter_exchange"
EXCHANGE_INTERNAL = "exchange_internal"
UNKNOWN = "unknown"
FLOWS: tuple[str, ...] = (
    EXCHANGE_INFLOW,
    EXCHANGE_OUTFLOW,
    INTER_EXCHANGE,
    EXCHANGE_INTERNAL,
    UNKNOWN,
)

CONSOLIDATION = "consolidation"
BATCH_PAYOUT = "batch_payout"
RBF_SIGNALLED = "rbf_signalled"
COINJOIN_LIKE = "coinjoin_like"
SHAPE_TAGS: tuple[str, ...] = (CONSOLIDATION, BATCH_PAYOUT, RBF_SIGNALLED, COINJOIN_LIKE)

CONSOLIDATION_MIN_INPUTS = 5
CONSOLIDATION_MAX_OUTPUTS = 2
BATCH_MAX_INPUTS = 3
BATCH_MIN_OUTPUTS = 5
COINJOIN_MIN_INPUTS = 5
COINJOIN_MIN_EQUAL_OUTPUTS = 5
# Equal dust or zero-value outputs (OP_RETURN, anchors) say nothing about mixing.
COINJOIN_MIN_DENOMINATION = 10_000

# mempool.space TransactionFlags (protocol.md A.6)
FLAG_COINJOIN = 1 << 32
FLAG_CONSOLIDATION = 1 << 33
FLAG_BATCH_PAYOUT = 1 << 34

# Output types a two-party shared output (channel, splice) uses.
SHARED_OUTPUT_TYPES = frozenset({"v0_p2wsh", "v1_p2tr"})

CLUSTER_CONFIDENCE_FACTOR = 0.6
CLUSTER_CONFIDENCE_CAP = 0.5


@dataclass(frozen=True, slots=True)
class ClusterCandidate:
    address: str
    label: Label  # label.source == "cluster", always
    evidence_txid: str


@dataclass(frozen=True, slots=True)
class Classification:
    flow: str
    from_entity: str | None
    to_entity: str | None
    shape_tags: tuple[str, ...]  # in SHAPE_TAGS order
    cluster_candidates: tuple[ClusterCandidate, ...]
    from_kind: str | None = None
    to_kind: str | None = None
    input_side_known: bool = False
    to_share: float | None = None  # the winning recipient's share of the transfer


def shape_tags(tx: WhaleTx) -> tuple[str, ...]:
    n_in, n_out = len(tx.inputs), len(tx.outputs)
    tags: list[str] = []
    if (
        n_in >= CONSOLIDATION_MIN_INPUTS and n_out <= CONSOLIDATION_MAX_OUTPUTS
    ) or tx.flags & FLAG_CONSOLIDATION:
        tags.append(CONSOLIDATION)
    if n_in <= BATCH_MAX_INPUTS and n_out >= BATCH_MIN_OUTPUTS:
        tags.append(BATCH_PAYOUT)
    if tx.rbf_signalled:
        tags.append(RBF_SIGNALLED)
    if is_coinjoin_like(tx) or tx.flags & FLAG_COINJOIN:
        tags.append(COINJOIN_LIKE)
    return tuple(tags)


def is_collaborative_like(tx: WhaleTx) -> bool:
    """Inputs that may belong to two parties (see "Common-input clustering" above)."""
    input_types = {script_type_of_address(i.address) for i in tx.inputs if i.address}
    if len(input_types) > 1:
        return True
    input_addresses = {i.address for i in tx.inputs if i.address}
    return len(input_addresses) == 2 and any(
        (o.script_type or script_type_of_address(o.address)) in SHARED_OUTPUT_TYPES
        for o in tx.outputs
    )


def is_coinjoin_like(tx: WhaleTx) -> bool:
    if len(tx.inputs) < COINJOIN_MIN_INPUTS:
        return False
    values = Counter(o.value for o in tx.outputs if o.value >= COINJOIN_MIN_DENOMINATION)
    if not values:
        return False
    equal_outputs = max(values.values())
    return equal_outputs >= COINJOIN_MIN_EQUAL_OUTPUTS and len(tx.inputs) >= equal_outputs


def classify(tx: WhaleTx, labels: LabelLookup, *, min_confidence: float = 0.0) -> Classification:
    """Flow, entities, shape tags and cluster candidates of one transaction.

    `labels` maps address → Label (any Mapping; only `.get` is used). Labels below
    `min_confidence` are treated as absent.
    """

    def label_of(address: str | None) -> Label | None:
        if address is None:
            return None
        label = labels.get(address)
        if label is None or label.confidence < min_confidence:
            return None
        return label

    tags = shape_tags(tx)
    input_side_known = any(i.address for i in tx.inputs)
    # A coinjoin's inputs have many owners: the sender side is seen but cannot be attributed.
    sender_attributable = input_side_known and COINJOIN_LIKE not in tags

    sender = _dominant_input_label(tx, label_of) if sender_attributable else None
    recipient, to_share = _winning_recipient(tx, label_of, sender)

    candidates: tuple[ClusterCandidate, ...] = ()
    if sender_attributable and not is_collaborative_like(tx):
        candidates = _cluster_candidates(tx, labels, label_of)

    flow = _flow(sender_attributable, sender, recipient)
    if (
        flow == EXCHANGE_OUTFLOW
        and CONSOLIDATION in tags
        and _single_unlabelled_recipient(tx, label_of)
    ):
        flow = EXCHANGE_INTERNAL
        recipient = None
    return Classification(
        flow=flow,
        from_entity=sender.entity if sender else None,
        to_entity=recipient.entity if recipient else None,
        shape_tags=tags,
        cluster_candidates=candidates,
        from_kind=sender.kind if sender else None,
        to_kind=recipient.kind if recipient else None,
        input_side_known=input_side_known,
        to_share=to_share,
    )


def _flow(sender_attributable: bool, sender: Label | None, recipient: Label | None) -> str:
    recipient_is_exchange = recipient is not None and recipient.kind == EXCHANGE
    if sender is not None and sender.kind == EXCHANGE:
        if recipient is not None and recipient_is_exchange:
            if sender.entity_key == recipient.entity_key:
                return EXCHANGE_INTERNAL
            return INTER_EXCHANGE
        return EXCHANGE_OUTFLOW
    # "Not an exchange" must be known, not assumed: no inflow without an attributable sender.
    if recipient_is_exchange and sender_attributable:
        return EXCHANGE_INFLOW
    return UNKNOWN


def _single_unlabelled_recipient(tx: WhaleTx, label_of: LabelOf) -> bool:
    own = tx.input_addresses
    recipients = {
        o.address or f"#{index}"
        for index, o in enumerate(tx.outputs)
        if o.value > 0 and (o.address is None or o.address not in own)
    }
    if len(recipients) != 1:
        return False
    (address,) = recipients
    return label_of(address) is None


def _dominant_input_label(tx: WhaleTx, label_of: LabelOf) -> Label | None:
    weight_by_entity: dict[str, int] = defaultdict(int)
    count_by_entity: dict[str, int] = defaultdict(int)
    label_by_entity: dict[str, Label] = {}
    for address in {i.address for i in tx.inputs if i.address}:
        label = label_of(address)
        if label is None:
            continue
        key = label.entity_key
        # Keep the most trusted label of the entity as its representative.
        if key not in label_by_entity or label.confidence > label_by_entity[key].confidence:
            label_by_entity[key] = label
    if not label_by_entity:
        return None
    for tx_input in tx.inputs:
        label = label_of(tx_input.address)
        if label is None:
            continue
        weight_by_entity[label.entity_key] += tx_input.value or 0
        count_by_entity[label.entity_key] += 1
    # Value decides; input count breaks ties (and decides alone when values are unknown);
    # the key makes the choice deterministic.
    best = max(label_by_entity, key=lambda k: (weight_by_entity[k], count_by_entity[k], k))
    return label_by_entity[best]


def _winning_recipient(
    tx: WhaleTx, label_of: LabelOf, sender: Label | None
) -> tuple[Label | None, float | None]:
    own = tx.input_addresses
    transfer_outputs = [o for o in tx.outputs if o.address is None or o.address not in own]
    if not transfer_outputs:
        # Everything returns to the inputs: the sender pays itself.
        return sender, (1.0 if sender else None)
    transfer = sum(o.value for o in transfer_outputs)

    labelled_value: dict[str, int] = defaultdict(int)
    labelled: dict[str, Label] = {}
    unlabelled_value: dict[str, int] = defaultdict(int)
    for index, output in enumerate(transfer_outputs):
        label = label_of(output.address)
        if label is None:
            # An output without an address (OP_RETURN, bare script) is its own recipient.
            unlabelled_value[output.address or f"#{index}"] += output.value
            continue
        key = label.entity_key
        labelled_value[key] += output.value
        if key not in labelled or label.confidence > labelled[key].confidence:
            labelled[key] = label
    if not labelled:
        return None, None
    best_key = max(labelled_value, key=lambda k: (labelled_value[k], k))
    best_unlabelled = max(unlabelled_value.values(), default=0)
    if labelled_value[best_key] < best_unlabelled:
        return None, None
    share = labelled_value[best_key] / transfer if transfer > 0 else None
    return labelled[best_key], share


def _cluster_candidates(
    tx: WhaleTx, labels: LabelLookup, label_of: LabelOf
) -> tuple[ClusterCandidate, ...]:
    input_addresses = sorted({i.address for i in tx.inputs if i.address})
    # Seeds must pass min_confidence; a candidate must carry no label at all, whatever its
    # confidence, so a weak existing label is never overwritten by a derived one.
    labelled = {a: label_of(a) for a in input_addresses}
    seeds = [lab for lab in labelled.values() if lab is not None]
    if not seeds or len({lab.entity_key for lab in seeds}) != 1:
        return ()
    trusted_seeds = [lab for lab in seeds if lab.kind == EXCHANGE and not lab.is_derived]
    if not trusted_seeds:
        return ()
    seed = max(trusted_seeds, key=lambda lab: lab.confidence)
    confidence = min(seed.confidence * CLUSTER_CONFIDENCE_FACTOR, CLUSTER_CONFIDENCE_CAP)
    derived = Label(seed.entity, seed.kind, CLUSTER_SOURCE, confidence)
    return tuple(
        ClusterCandidate(address, derived, tx.txid)
        for address in input_addresses
        if labels.get(address) is None
    )
