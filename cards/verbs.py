"""The Action.Execute verbs cards carry; the Teams edge routes each to its handler."""

HANDED_OVER = "tap.handedOver"
CONFIRM_REPLACE = "tap.confirmReplace"
KEEP_EXISTING = "tap.keepExisting"
APPROVE = "tap.approve"
DENY = "tap.deny"
BULK_CONFIRM = "tap.bulkConfirm"
BULK_CANCEL = "tap.bulkCancel"
BULK_RETRY = "tap.bulkRetry"
BULK_EXPORT = "tap.bulkExport"
BULK_RESUME = "tap.bulkResume"  # a job paused for its requester's sign-in (delegated writes) goes on
BULK_REPLACE_HELD = "tap.bulkReplaceHeld"  # a finished job's rows skipped for holding a pass, checked again to replace
SUBMIT_FORM = "tap.submitForm"
CHOOSE_PERSON = "tap.choosePerson"
VERIFY_CONFIRM = "tap.verifyConfirm"  # the manager: "Confirm" (it is them)
VERIFY_NOT_THEM = "tap.verifyNotThem"  # the manager: "This is not them"
VERIFY_CANCEL = "tap.verifyCancel"  # the technician cancels a pending verification

ALL = frozenset(
    {
        HANDED_OVER,
        CONFIRM_REPLACE,
        KEEP_EXISTING,
        APPROVE,
        DENY,
        BULK_CONFIRM,
        BULK_CANCEL,
        BULK_RETRY,
        BULK_EXPORT,
        BULK_RESUME,
        BULK_REPLACE_HELD,
        SUBMIT_FORM,
        CHOOSE_PERSON,
        VERIFY_CONFIRM,
        VERIFY_NOT_THEM,
        VERIFY_CANCEL,
    }
)
