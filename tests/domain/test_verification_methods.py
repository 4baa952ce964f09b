"""VerificationService.requirement and bulk_refusal given the user's methods already read by the caller (the bulk
run's one read under the row's lock, the single issue's target batch): same sentence, no second Graph read."""

from dataclasses import dataclass, field

from bot.domain.model import DirectoryUser
from bot.domain.verification import VerificationMethod, VerificationRules, VerificationService
from tests.fakes import FakeDirectory, FixedClock, MemoryAudit

PHONE = "#microsoft.graph.phoneAuthenticationMethod"
PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"
USER = DirectoryUser("e0000000-0000-0000-0000-000000000001", "megan@contoso.test", "Megan Bowen")


@dataclass
class CountingDirectory(FakeDirectory):
    method_reads: list[str] = field(default_factory=list)

    async def sign_in_methods(self, user_id: str) -> tuple[str, ...]:
        self.method_reads.append(user_id)
        return await super().sign_in_methods(user_id)


class NoStore:
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the requirement must not touch the store ({name})")


class NoAlerts:
    async def raise_alert(self, alert: object) -> None:
        raise AssertionError("no alert expected")


def service(directory: CountingDirectory) -> VerificationService:
    return VerificationService(
        rules=VerificationRules(methods=(VerificationMethod.MANAGER,)),
        store=NoStore(),  # type: ignore[arg-type]
        directory=directory,
        alerts=NoAlerts(),  # type: ignore[arg-type]
        audit=MemoryAudit(),
        clock=FixedClock(),
    )


async def test_methods_given_are_used_without_a_graph_read() -> None:
    directory = CountingDirectory()
    directory.add(USER)
    directory.methods[USER.object_id] = (PASSWORD,)  # what Graph would say: no recovery
    verification = service(directory)

    why = await verification.requirement(USER, methods=(PASSWORD, PHONE))

    assert why is not None and "already has" in why and "recovery pass" in why
    assert directory.method_reads == []
    assert await verification.requirement(USER, methods=(PASSWORD,)) is None
    assert directory.method_reads == []


async def test_without_methods_graph_is_read_as_before() -> None:
    directory = CountingDirectory()
    directory.add(USER)
    directory.methods[USER.object_id] = (PASSWORD, PHONE)
    verification = service(directory)

    why = await verification.requirement(USER)

    assert why is not None and "recovery pass" in why
    assert directory.method_reads == [USER.object_id]


async def test_bulk_refusal_uses_the_methods_given() -> None:
    directory = CountingDirectory()
    directory.add(USER)
    verification = service(directory)

    refused = await verification.bulk_refusal(USER, methods=(PASSWORD, PHONE))
    assert refused is not None and "issue this one on its own" in refused.user_message
    assert await verification.bulk_refusal(USER, methods=(PASSWORD,)) is None
    assert directory.method_reads == []
