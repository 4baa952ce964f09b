"""Cards about one pass: the private pass card, its redacted form, status, and the replace question."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from microsoft_teams.cards.core import (
    AdaptiveCard,
    CardElement,
    Container,
    ExecuteAction,
    Fact,
    FactSet,
    RichTextBlock,
    TextBlock,
    TextColor,
    TextRun,
    TextSize,
)

from bot.domain.model import DirectoryUser, Evidence, IssuedPass, PassInfo, UsabilityReason
from bot.domain.service import PassStatus, ReplaceNeeded
from cards import verbs
from cards.buttons import HandedOverButton, KeepButton, ReplaceButton
from cards.formatting import format_minutes, local_and_utc
from cards.reasons import reason_block

CardJson = dict[str, Any]

REDACTION_WORDING = {
    "handed_over": "Hidden after hand-over",
    "expired": "Hidden: the pass has expired",
    "revoked": "Hidden: the pass was revoked",
    "replaced": "Hidden: a newer pass replaced this one",
    "registered_own_method": "Deleted: the user registered their own sign-in method, so the pass was no longer needed",
}
SANDBOX_BANNER = "SANDBOX TENANT: demo users, not a real pass"


def render(*body: CardElement, actions: list[ExecuteAction] | None = None) -> CardJson:
    """Serializes a card as Teams expects it: a plain dict (a model object loses type/version on the wire)."""
    card = AdaptiveCard(
        version="1.5",
        body=list(body),
        actions=list(actions) if actions else None,
    )
    return card.model_dump(mode="json", exclude_none=True, by_alias=True)


def with_banner(card: CardJson, banner: str = SANDBOX_BANNER) -> CardJson:
    """The same card with a loud warning on top (the sandbox tenant marks everything it sends)."""
    notice = TextBlock(text=banner, weight="Bolder", color="Attention", wrap=True).model_dump(
        mode="json", exclude_none=True, by_alias=True
    )
    return {**card, "body": [notice, *card.get("body", [])]}


def literal_pass(value: str, *, size: TextSize = "Medium", element_id: str | None = "passValue") -> RichTextBlock:
    """A pass value shown character for character: a TextBlock would read '*ab*' as Markdown italics."""
    return RichTextBlock(
        id=element_id, inlines=[TextRun(text=value, font_type="Monospace", size=size, weight="Bolder")]
    )


def heading(text: str) -> TextBlock:
    return TextBlock(text=text, size="Large", weight="Bolder", wrap=True, style="heading")


def sentence(text: str, *, subtle: bool = False, color: TextColor | None = None) -> TextBlock:
    return TextBlock(text=text, wrap=True, is_subtle=subtle or None, color=color)


def facts(*pairs: tuple[str, str]) -> FactSet:
    return FactSet(facts=[Fact(title=title, value=value) for title, value in pairs])


def work_line(user: DirectoryUser) -> str:
    """'Marketing · Marketing Manager' (what the directory says of it): tells two people with one name apart."""
    return " · ".join(part for part in (user.department, user.job_title) if part)


def _work(user: DirectoryUser) -> list[CardElement]:
    work = work_line(user)
    return [TextBlock(text=work, is_subtle=True, wrap=True, spacing="None")] if work else []


def pass_card(issued: IssuedPass, *, card_id: str, tz: tzinfo, now: datetime) -> CardJson:
    """The only place a pass value is ever written: the requester's private card."""
    info = issued.info
    body: list[CardElement] = [
        heading(f"Temporary Access Pass for {issued.user.label}"),
        *_work(issued.user),
        Container(style="emphasis", items=[literal_pass(issued.secret.reveal(), size="ExtraLarge")]),
        facts(*_pass_facts(info, tz)),
    ]
    if issued.evidence is not None:
        body.append(evidence_facts(issued.evidence, tz))
    if issued.replaced is not None:
        body.append(
            sentence(
                f"This pass replaced the one created {local_and_utc(issued.replaced.created_at, tz)}, "
                "which no longer works.",
                color="Warning",
            )
        )
    if info.start_at <= now:
        body.append(sentence("It can take a minute before a brand-new pass works at sign-in.", subtle=True))
    body.append(
        sentence(
            "Read it to the user over a verified channel. This card hides the pass when you press the button "
            "below, and by itself when the pass expires.",
            subtle=True,
        )
    )
    return render(
        *body,
        actions=[
            ExecuteAction(title="I have handed it over", verb=verbs.HANDED_OVER, data=HandedOverButton(card_id).data())
        ],
    )


def evidence_facts(evidence: Evidence, tz: tzinfo) -> FactSet:
    """How the person was verified before this pass (issue 12): method, who or what confirmed it, when, score."""
    method = EVIDENCE_METHODS.get(evidence.method, evidence.method)
    pairs = [("Verified by", f"{method}: {evidence.confirmed_by_label}"), ("Verified", local_and_utc(evidence.at, tz))]
    if evidence.score is not None:
        pairs.append(("Face Check match", f"{evidence.score:g} %"))
    return facts(*pairs)


EVIDENCE_METHODS = {"manager": "Manager attestation", "verified_id": "Verified ID with Face Check"}


def redacted_pass_card(
    *,
    target_label: str,
    start_at: datetime,
    expires_at: datetime,
    one_time: bool,
    reason: str,
    redacted_at: datetime,
    tz: tzinfo,
) -> CardJson:
    return render(
        heading(f"Temporary Access Pass for {target_label}"),
        Container(
            style="accent",
            items=[TextBlock(text="••••••••", font_type="Monospace", size="ExtraLarge", weight="Bolder")],
        ),
        facts(
            ("Valid from", local_and_utc(start_at, tz)),
            ("Expires", local_and_utc(expires_at, tz)),
            ("One-time use", "Yes" if one_time else "No"),
        ),
        sentence(f"{REDACTION_WORDING.get(reason, 'Hidden')} at {local_and_utc(redacted_at, tz)}.", subtle=True),
    )


def status_card(status: PassStatus, *, tz: tzinfo) -> CardJson:
    current = status.current
    if current is None:
        return render(
            heading(f"Pass status for {status.user.label}"),
            *_work(status.user),
            sentence("This user holds no Temporary Access Pass."),
        )
    return render(
        heading(f"Pass status for {status.user.label}"),
        *_work(status.user),
        TextBlock(text=_state_sentence(current, status.now), wrap=True, weight="Bolder"),
        facts(("Created", local_and_utc(current.created_at, tz)), *_pass_facts(current, tz)),
        reason_block(_issue_reason(status.reason)),
        sentence("The pass value is never shown again after it was issued.", subtle=True),
    )


def _issue_reason(reason: str | None) -> str:
    """The reason the pass was issued with, as the audit log has it."""
    if reason is None:
        return "Not recorded (the pass was not issued through tapbot)"
    return reason or "None given"


def replace_question_card(question: ReplaceNeeded, *, tz: tzinfo) -> CardJson:
    existing = question.existing
    request = question.request
    replace = ReplaceButton(
        target=question.user.object_id,
        label=question.user.label,
        lifetime_minutes=question.lifetime_minutes,
        one_time=question.one_time,
        replace_method_id=existing.method_id,
        start_at=request.start_at,
        reason=request.reason,
        verification_id=request.verification_id,
    )
    return render(
        heading(f"{question.user.label} already holds a pass"),
        *_work(question.user),
        sentence(
            "Creating a new pass replaces the existing one at once: if a colleague has just handed it over, "
            "it will stop working."
        ),
        facts(("Created", local_and_utc(existing.created_at, tz)), *_pass_facts(existing, tz)),
        sentence(
            f"New pass: {format_minutes(question.lifetime_minutes)}"
            f"{', one-time use' if question.one_time else ''}"
            f"{', starting ' + local_and_utc(request.start_at, tz) if request.start_at else ''}.",
            subtle=True,
        ),
        *([reason_block(request.reason)] if request.reason else []),
        actions=[
            ExecuteAction(title="Replace it", verb=verbs.CONFIRM_REPLACE, data=replace.data(), style="destructive"),
            ExecuteAction(
                title="Keep the existing pass", verb=verbs.KEEP_EXISTING, data=KeepButton(question.user.label).data()
            ),
        ],
    )


def replace_settled_card(target_label: str, outcome: str) -> CardJson:
    """What the replace question turns into once answered, so it cannot be pressed twice."""
    return render(heading(f"Existing pass for {target_label}"), sentence(outcome))


def _pass_facts(info: PassInfo, tz: tzinfo) -> list[tuple[str, str]]:
    return [
        ("Valid from", local_and_utc(info.start_at, tz)),
        ("Expires", local_and_utc(info.expires_at, tz)),
        ("Lifetime", format_minutes(info.lifetime_minutes)),
        ("One-time use", "Yes" if info.one_time else "No"),
    ]


def _state_sentence(info: PassInfo, now: datetime) -> str:
    if info.usability_reason is UsabilityReason.NOT_YET_VALID or (info.start_at > now and info.is_live(now)):
        return "A pass is waiting for its start time."
    if info.usability_reason is UsabilityReason.ONE_TIME_USED:
        return "The pass has been used (it was one-time)."
    if info.usability_reason is UsabilityReason.EXPIRED or not info.is_live(now):
        return "The pass has expired."
    if info.usability_reason is UsabilityReason.DISABLED_BY_POLICY:
        return "A pass exists but the tenant policy disables it."
    return "A usable pass is active."
