"""The security channel in Teams: `/tap alerts here` registers it, and every security alert is posted there as a
card (cards/alerts.py). The alert's audit row and log event are written by the domain (`AlertService`) first, so a
channel that is missing or refuses the post loses nothing a SIEM reads."""

from __future__ import annotations

from bot.domain.alerts import AlertService, SecurityAlert, SecurityChannel
from bot.domain.commands import AlertsHereCommand
from bot.domain.errors import Refused
from bot.domain.service import TapService
from bot.teams.activity import ConversationKind
from bot.teams.delivery import PrivateChat, PrivateDelivery, card_message
from bot.teams.presentation import Presentation
from bot.teams.turn import Turn
from cards.alerts import alert_card

NOT_A_CHANNEL = (
    "Type /tap alerts here in a team channel: security alerts are posted to a channel the security team reads."
)
REGISTERED = (
    "This channel is now the security channel. I post an alert here when a verification of a person fails or a "
    "manager says 'This is not them', when one operator issues unusually many passes in an hour, when someone is "
    "refused a pass for a privileged or protected account, and when a large bulk run starts. Alerts never contain "
    "a pass."
)


class ChannelAlertPoster:
    """Posts an alert's card into the security channel (a shared conversation: never anything private)."""

    def __init__(self, *, delivery: PrivateDelivery, presentation: Presentation) -> None:
        self._delivery = delivery
        self._presentation = presentation

    async def post_alert(self, channel: SecurityChannel, alert: SecurityAlert) -> None:
        card = self._presentation.decorate(alert_card(alert, tz=self._presentation.default_timezone))
        await self._delivery.post(PrivateChat(channel.service_url, channel.conversation_id), card_message(card))


class SecurityChannelCommand:
    """The handler of `/tap alerts here` (one shape: `async (turn, command) -> None`)."""

    def __init__(self, *, alerts: AlertService, service: TapService) -> None:
        self._alerts = alerts
        self._service = service

    async def on_alerts_here(self, turn: Turn, _command: AlertsHereCommand) -> None:
        facts = turn.facts
        if facts.kind is not ConversationKind.CHANNEL:
            await turn.reply_here(NOT_A_CHANNEL)
            return
        try:
            await self._service.require_operator(facts.caller)
        except Refused as refusal:
            await self._alerts.registration_refused(facts.caller, refusal.rule)
            raise
        thread = facts.conversation_id.split(";messageid=")[0]  # the channel itself, not this one thread
        await self._alerts.register_channel(facts.caller, facts.service_url, thread)
        await turn.reply_here(REGISTERED)
