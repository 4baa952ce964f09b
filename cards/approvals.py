"""Cards of the approval flow: the request in the approvals channel, its decided form, and request lists."""

from __future__ import annotations

from datetime import datetime, tzinfo

from microsoft_teams.cards.core import CardElement, ExecuteAction, TextInput

from bot.domain.approvals import ApprovalKind, ApprovalRequest, ApprovalStatus
from cards import verbs
from cards.buttons import DecisionButton
from cards.formatting import format_minutes, local_and_utc
from cards.passes import CardJson, facts, heading, render, sentence
from cards.reasons import reason_block

KIND_TITLES = {
    ApprovalKind.ONBOARDING: "Onboarding pass request",
    ApprovalKind.LONG_LIFETIME: "Long pass request",
    ApprovalKind.BULK: "Bulk run request",
    ApprovalKind.VELOCITY: "Pass request above the hourly limit",
}
STATUS_WORDS = {
    ApprovalStatus.PENDING: "Waiting for an operator",
    ApprovalStatus.APPROVED: "Approved",
    ApprovalStatus.DENIED: "Denied",
    ApprovalStatus.EXPIRED: "Expired: nobody decided in time",
}


def _request_facts(request: ApprovalRequest, tz: tzinfo) -> list[CardElement]:
    start = local_and_utc(request.start_at, tz) if request.start_at else "When it is issued"
    return [
        facts(
            ("Requested by", request.requester.name or request.requester.object_id),
            ("For", request.target_label),
            ("Needs approval", request.reason),
            ("Starts", start),
            ("Lifetime", format_minutes(request.lifetime_minutes)),
            ("One-time use", "Yes" if request.one_time else "No"),
            ("Decide by", local_and_utc(request.expires_at, tz)),
        ),
        # What the requester wrote (a ticket number): plain text, never read as Markdown.
        reason_block(request.request_reason, label="Requester's reason"),
    ]


def approval_request_card(request: ApprovalRequest, *, tz: tzinfo) -> CardJson:
    """Posted in the approvals channel; only operators other than the requester can decide."""
    data = DecisionButton(request.id).data()
    return render(
        heading(KIND_TITLES[request.kind]),
        *_request_facts(request, tz),
        TextInput(id="note", label="Note (sent to the requester)", placeholder="Optional", max_length=500),
        sentence(
            "Only an operator other than the requester can decide. The pass goes to the requester privately.",
            subtle=True,
        ),
        actions=[
            ExecuteAction(title="Approve", verb=verbs.APPROVE, data=data, style="positive"),
            ExecuteAction(title="Deny", verb=verbs.DENY, data=data, style="destructive"),
        ],
    )


def decided_request_card(request: ApprovalRequest, *, tz: tzinfo, outcome: str = "") -> CardJson:
    """The request card once decided or expired: no buttons, who decided and when."""
    lines: list[CardElement] = [
        heading(f"{KIND_TITLES[request.kind]}: {STATUS_WORDS[request.status]}"),
        *_request_facts(request, tz),
    ]
    if request.decided_at and request.status in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED):
        who = request.decided_by_name or request.decided_by_id or "an operator"
        lines.append(sentence(f"{STATUS_WORDS[request.status]} by {who}, {local_and_utc(request.decided_at, tz)}."))
    if request.decision_note:
        lines.append(sentence(f"Note: {request.decision_note}", subtle=True))
    if outcome:
        lines.append(sentence(outcome, subtle=True))
    return render(*lines)


def requests_card(requests: list[ApprovalRequest], *, tz: tzinfo, operator: bool, now: datetime) -> CardJson:
    title = "Pending requests" if operator else "Your requests"
    if not requests:
        empty = "No request is waiting for a decision." if operator else "You have no requests in the last 30 days."
        return render(heading(title), sentence(empty))
    body: list[CardElement] = [heading(title)]
    for request in requests[:20]:
        left = request.expires_at - now
        state = STATUS_WORDS[request.status]
        if request.status is ApprovalStatus.PENDING:
            state += f" (closes in {format_minutes(max(1, int(left.total_seconds() // 60)))})"
        body.append(
            facts(
                (KIND_TITLES[request.kind], request.target_label),
                ("Requested by", request.requester.name or request.requester.object_id),
                ("Requested", local_and_utc(request.created_at, tz)),
                ("State", state),
            )
        )
        if request.request_reason:
            body.append(reason_block(request.request_reason))
    if len(requests) > 20:
        body.append(sentence(f"… and {len(requests) - 20} more.", subtle=True))
    return render(*body)
