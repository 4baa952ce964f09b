"""Cards that explain: the tenant's pass policy and the command help."""

from __future__ import annotations

from microsoft_teams.cards.core import CardElement

from bot.domain.commands import EXAMPLES
from bot.domain.model import ALL_USERS, TapPolicy, TargetType
from cards.formatting import format_minutes
from cards.passes import CardJson, facts, heading, render, sentence


def policy_card(policy: TapPolicy, *, group_names: dict[str, str] | None = None) -> CardJson:
    return render(
        heading("Temporary Access Pass policy"),
        facts(
            ("State", "Enabled" if policy.enabled else "Disabled"),
            ("Default lifetime", format_minutes(policy.default_lifetime_minutes)),
            (
                "Allowed lifetime",
                f"{format_minutes(policy.minimum_lifetime_minutes)} to "
                f"{format_minutes(policy.maximum_lifetime_minutes)}",
            ),
            ("One-time use", "Always (forced by policy)" if policy.one_time_forced else "Optional"),
            ("Pass length", f"{policy.default_length} characters"),
            ("Applies to", _targets(policy.include_targets, everyone="All users", names=group_names or {})),
            ("Excluded", _targets(policy.exclude_targets, everyone="All users", names=group_names or {}) or "Nobody"),
        ),
        sentence("The policy is managed in the Entra admin center; the bot only reads it.", subtle=True),
    )


def _targets(targets: tuple, *, everyone: str, names: dict[str, str]) -> str:
    shown = []
    for target in targets:
        if target.target_id == ALL_USERS:
            shown.append(everyone)
        elif target.target_id in names:
            shown.append(f"group {names[target.target_id]}")
        else:
            kind = "group" if target.target_type is TargetType.GROUP else "user"
            shown.append(f"{kind} {target.target_id}")
    return ", ".join(shown)


HELP_LINES = (
    (
        "/tap issue USER [LIFETIME] [one-time] [start WHEN] [replace]",
        "Issue a pass. USER: name@domain or object id. LIFETIME: minutes or 90m, 8h, 2d. "
        "WHEN: now, +2h, 08:00, tomorrow 08:00, 2026-12-01T08:00 (your time zone). "
        "'replace' confirms replacing a pass the user already holds.",
    ),
    ("/tap revoke USER", "Delete the user's pass."),
    (
        "/tap status USER",
        "Show whether the user holds a pass, when it starts and expires (never its value).",
    ),
    ("/tap policy", "Show the tenant's pass policy: allowed lifetimes, one-time rule, who is in scope."),
    (
        "/tap onboard USER [start WHEN] [LIFETIME]",
        "Managers: a first-day pass for your own new hire, from the hire date; an operator may have to approve.",
    ),
    ("/tap approvals here", "Operators, in a channel: post approval requests to this channel."),
    ("/tap requests", "Operators: the pending requests. Everyone else: your own requests."),
    (
        "/tap audit export [FIRST DAY] [LAST DAY]",
        "Operators: the audit log as a CSV file, sent privately. Days as YYYY-MM-DD in your time zone; "
        "default the last 7 days.",
    ),
    ("/tap help", "This list."),
)


def help_card(*, unknown_word: str | None = None) -> CardJson:
    body: list[CardElement] = [heading("tapbot: Temporary Access Passes, privately")]
    if unknown_word:
        body.append(
            sentence(
                f"I don't know the command '{unknown_word[:60]}'. These are the ones I know:",
                color="Attention",
            )
        )
    body.append(facts(*HELP_LINES))
    body.append(
        sentence(
            "A user is a user principal name (name@domain) or an object id. Passes are only ever sent to you "
            "in your personal chat with me; in a channel or group chat, @mention me and I answer there that "
            "the card went to you privately.",
            subtle=True,
        )
    )
    body.append(sentence(f"Example: {EXAMPLES['issue']}", subtle=True))
    return render(*body)
