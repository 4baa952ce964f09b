"""A correct example of each command: shown with every parse error, in the help card and in the manifest."""

from __future__ import annotations

EXAMPLE_ISSUE = "/tap issue megan@contoso.com 8h one-time start tomorrow 08:00"
EXAMPLE_ISSUE_BY_NAME = '/tap issue Megan Bowen 2h reason "INC0012345 lost phone"'
EXAMPLE_REVOKE = "/tap revoke megan@contoso.com"
EXAMPLE_STATUS = "/tap status megan@contoso.com"
EXAMPLE_POLICY = "/tap policy"
EXAMPLE_HELP = "/tap help"
EXAMPLE_ONBOARD = "/tap onboard LeeG@contoso.com start 2027-01-11"
EXAMPLE_APPROVALS = "/tap approvals here"
EXAMPLE_ALERTS = "/tap alerts here"
EXAMPLE_REQUESTS = "/tap requests"
EXAMPLE_AUDIT = "/tap audit export 2026-05-01 2026-05-07"
EXAMPLE_REVOKE_JOB = "/tap revoke job 12"
EXAMPLE_SIGN_OUT = "/tap signout"
