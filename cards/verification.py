"""Cards of the verification of the person before a pass (issue 12): the technician's tracking card, updated in
place as the verification moves on, and the card that asks the manager (or a fallback approver) privately.

None of them ever holds a pass value: the pass does not exist until the verification is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from microsoft_teams.cards.core import CardElement, ExecuteAction

from bot.domain.verification import Verification, VerificationMethod, VerificationState
from cards import verbs
from cards.buttons import VerificationButton
from cards.formatting import format_minutes, local_and_utc
from cards.passes import CardJson, facts, heading, render, sentence
from cards.reasons import reason_block

METHOD_TITLES = {
    VerificationMethod.MANAGER: "Manager attestation in Teams",
    VerificationMethod.VERIFIED_ID: "Verified ID with Face Check",
}
STATE_HEADINGS = {
    VerificationState.PENDING: "Verifying the caller",
    VerificationState.CONFIRMED: "Caller verified",
    VerificationState.USED: "Caller verified",
    VerificationState.REFUSED: "Blocked: this is not them",
    VerificationState.FAILED: "Verification failed",
    VerificationState.EXPIRED: "Verification expired",
    VerificationState.CANCELLED: "Verification cancelled",
}


def _pass_line(verification: Verification, tz: tzinfo) -> str:
    parts = [format_minutes(verification.lifetime_minutes) if verification.lifetime_minutes else "policy default"]
    if verification.one_time:
        parts.append("one-time use")
    if verification.start_at is not None:
        parts.append("starting " + local_and_utc(verification.start_at, tz))
    return ", ".join(parts)


def _state_sentence(verification: Verification, tz: tzinfo) -> CardElement:
    who = verification.settled_by or "someone"
    state = verification.state
    if state is VerificationState.PENDING:
        if verification.method is VerificationMethod.MANAGER:
            text = (
                f"I asked {verification.attester_label} privately in Teams to confirm that the caller is "
                f"{verification.target_label}. The pass is created only once they confirm; keep the caller on the "
                "line or call them back."
            )
        else:
            text = "Give the caller the link or QR code below. The pass is created only once the check succeeds."
        if verification.progress == "scanned":
            text += " The caller has opened the request in their wallet."
        return sentence(text)
    if state in (VerificationState.CONFIRMED, VerificationState.USED):
        when = local_and_utc(verification.settled_at, tz) if verification.settled_at else ""
        score = f" (match {verification.score:g} %)" if verification.score is not None else ""
        return sentence(f"Confirmed by {who}{score}, {when}.", color="Good")
    if state is VerificationState.REFUSED:
        return sentence(
            f"{who} said the caller is NOT {verification.target_label}. The request is blocked, no pass was issued, "
            "and the security team was alerted. Do not give the caller any sign-in help.",
            color="Attention",
        )
    if state is VerificationState.FAILED:
        return sentence(f"The verification failed: {verification.detail}. No pass was issued.", color="Attention")
    if state is VerificationState.EXPIRED:
        if verification.settled_by_id:
            return sentence("The confirmation was not used in time, so no pass was issued. Start again if needed.")
        return sentence("Nobody confirmed in time, so no pass was issued. Start again if the caller still needs one.")
    return sentence("You cancelled this verification. No pass was issued.")


def tracking_card(
    verification: Verification,
    *,
    tz: tzinfo,
    outcome: str = "",
    extra: Sequence[CardElement] = (),
) -> CardJson:
    """The technician's one card for the verification: what is pending, with whom, until when, and Cancel while it
    is open. `extra` is what a method adds while pending (Verified ID: the link and the QR code)."""
    state = verification.state
    rows: list[tuple[str, str]] = [
        ("For", verification.target_label),
        ("Pass", _pass_line(verification, tz)),
        ("Method", METHOD_TITLES[verification.method]),
    ]
    if verification.method is VerificationMethod.MANAGER and verification.attester_label:
        rows.append(("Asked", verification.attester_label))
    if state is VerificationState.PENDING:
        rows.append(("Answer by", local_and_utc(verification.expires_at, tz)))
    body: list[CardElement] = [
        heading(f"{STATE_HEADINGS[state]}: {verification.target_label}"),
        facts(*rows),
        _state_sentence(verification, tz),
    ]
    if state is VerificationState.PENDING:
        body.extend(extra)
    if verification.reason:
        body.append(reason_block(verification.reason))
    if outcome:
        body.append(sentence(outcome, subtle=True))
    actions: list[ExecuteAction] = []
    if state is VerificationState.PENDING:
        actions.append(
            ExecuteAction(title="Cancel", verb=verbs.VERIFY_CANCEL, data=VerificationButton(verification.id).data())
        )
    return render(*body, actions=actions or None)


def attestation_card(verification: Verification, *, tz: tzinfo, now: datetime) -> CardJson:
    """Sent privately to the manager (or a fallback approver): is the caller really the user?"""
    technician = verification.requester.name or "An IT technician"
    data = VerificationButton(verification.id).data()
    return render(
        heading(f"Is this really {verification.target_label}?"),
        sentence(
            f"{technician} from IT is helping someone who says they are {verification.target_label} and needs a "
            "Temporary Access Pass: a code that signs in to their account without their usual second factor."
        ),
        facts(
            ("Technician", technician),
            ("User", verification.target_label),
            ("Asked", local_and_utc(verification.created_at, tz)),
            ("Answer by", local_and_utc(verification.expires_at, tz)),
        ),
        *([reason_block(verification.reason)] if verification.reason else []),
        sentence(
            "Confirm only if you know it is them: you are with them, or you called them back on a number you "
            "know. If in doubt, choose This is not them — a caller pretending to be a colleague is how many "
            "account takeovers start.",
            subtle=True,
        ),
        actions=[
            ExecuteAction(title="Confirm", verb=verbs.VERIFY_CONFIRM, data=data, style="positive"),
            ExecuteAction(title="This is not them", verb=verbs.VERIFY_NOT_THEM, data=data, style="destructive"),
        ],
    )


def attestation_settled_card(verification: Verification, *, tz: tzinfo, viewer_id: str | None = None) -> CardJson:
    """The asking card once answered, expired or cancelled: no buttons, who answered and when."""
    who = verification.settled_by or "someone"
    you = viewer_id is not None and (verification.settled_by_id or "").lower() == viewer_id.lower()
    state = verification.state
    if state in (VerificationState.CONFIRMED, VerificationState.USED):
        text = "You confirmed it is them." if you else f"{who} confirmed it is them."
        text += " The technician receives the pass now."
    elif state is VerificationState.REFUSED:
        text = "You said this is not them." if you else f"{who} said this is not them."
        text += " The request is blocked and the security team was alerted. Thank you."
    elif state is VerificationState.EXPIRED:
        text = "Nobody answered in time; the request was closed."
    elif state is VerificationState.CANCELLED:
        text = "The technician cancelled this request; nothing more to do."
    elif state is VerificationState.FAILED:
        text = "The request was closed: it could not be verified."
    else:
        text = "This request is still open."
    when = f" ({local_and_utc(verification.settled_at, tz)})" if verification.settled_at else ""
    return render(
        heading(f"Is this really {verification.target_label}?"),
        facts(("Technician", verification.requester.name or "IT"), ("User", verification.target_label)),
        sentence(text + when),
    )
