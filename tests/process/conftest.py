from tests.support.postgres import postgres, postgres_url

__all__ = ["postgres", "postgres_url"]  # the fixtures, for the tests of this package
