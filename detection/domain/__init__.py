"""Pure domain logic of Whale Watch: addresses, labels, flow classification, urgency, accuracy.

No Django here (DESIGN §2): the models and tasks call into these modules, never the reverse.
Import from the submodules, e.g. `from detection.domain.flow import classify`.
"""
