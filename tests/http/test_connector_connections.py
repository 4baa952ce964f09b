"""The bot's messages to the Bot Connector share kept-alive connections instead of one new connection (in production a
TLS handshake) per turn and per private send, which the SDK's own client factory makes (issue 13 item 4)."""

from __future__ import annotations

from bot.server import COMPONENTS
from tests.harness.bot import ADELE, MEGAN, RunningBot


async def test_many_turns_and_private_sends_reuse_a_few_connections(bot: RunningBot) -> None:
    for _ in range(4):
        assert (await bot.say(ADELE, f"/tap issue {MEGAN.upn} 2h replace")).status in (200, 202)
        assert (await bot.say(ADELE, f"/tap revoke {MEGAN.upn}")).status in (200, 202)
    sends = len(bot.connector.sent)
    assert sends >= 8  # every turn answered (and every pass sent privately)

    # One connection per message before; now the messages of one turn at a time ride on the same one or two.
    assert len(bot.connector.peers) <= 3, (len(bot.connector.peers), sends)


async def test_the_shared_connections_close_with_the_app(bot: RunningBot) -> None:
    await bot.say(ADELE, "/tap help")
    pool = bot.app[COMPONENTS].runtime.client_factory._pool  # pyright: ignore[reportPrivateUsage]
    assert pool is not None and not pool.closed
    await bot.runner.cleanup()
    assert pool.closed
