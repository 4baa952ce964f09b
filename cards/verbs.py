"""The Action.Execute verbs cards carry; the Teams edge routes each to its handler."""

HANDED_OVER = "tap.handedOver"
CONFIRM_REPLACE = "tap.confirmReplace"
KEEP_EXISTING = "tap.keepExisting"
APPROVE = "tap.approve"
DENY = "tap.deny"
