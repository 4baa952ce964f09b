"""How long reading a 50,000-row bulk file takes, and how much memory it needs.

Builds a realistic CSV in memory (UPNs, a display name with a quoted comma, and lifetime, once and start on some
rows), parses it with `read_bulk_file`, and prints the time and the peak memory. It prints figures only.
With --xlsx it also measures the same rows as a workbook written by openpyxl, which stores every string inline;
Excel's own files keep strings in a shared table, which openpyxl reads about twice as fast.

Usage: python -m bench.parse_bulk_file [rows] [rounds] [--xlsx]
"""

from __future__ import annotations

import csv
import io
import random
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain.bulk_file import read_bulk_file

NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
TZ = ZoneInfo("Europe/Berlin")
FIRST = ("Megan", "Lee", "Adele", "Diego", "Alex", "Isaiah", "Lidia", "Nestor", "Patti", "Pradeep", "Joni", "Grady")
LAST = ("Bowen", "Gu", "Vance", "Siciliani", "Wilber", "Langer", "Holloway", "Wilke", "Fernandez", "Gupta", "Sherman")


def build_csv(rows: int, seed: int = 7) -> bytes:
    chance = random.Random(seed)
    lines = ["userPrincipalName,displayName,lifetime,once,start"]
    for index in range(rows):
        first, last = chance.choice(FIRST), chance.choice(LAST)
        upn = f"{first}.{last}{index}@contoso.onmicrosoft.com"
        lifetime = chance.choice(("", "", "8h", "90m", "1d", "480"))
        once = chance.choice(("", "", "yes", "no", "x"))
        start = chance.choice(("", "", "", "2026-12-01", "2026-12-01 09:30", f"2027-01-{chance.randint(10, 28)}"))
        lines.append(f'{upn},"{last}, {first}",{lifetime},{once},{start}')
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def build_xlsx(csv_data: bytes) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Users")
    for row in csv.reader(io.StringIO(csv_data.decode("utf-8-sig"), newline="")):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def measure(data: bytes, filename: str, rows: int, rounds: int) -> None:
    timings: list[float] = []
    read = 0
    for _ in range(rounds):
        started = time.perf_counter()
        result = read_bulk_file(data, filename, max_rows=rows, now=NOW, tz=TZ)
        timings.append(time.perf_counter() - started)
        read = len(result.rows)
    tracemalloc.start()
    read_bulk_file(data, filename, max_rows=rows, now=NOW, tz=TZ)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    timings.sort()
    print(f"{filename}: {rows} rows, {len(data) / 1e6:.1f} MB, {read} rows read")
    print(f"  parse: best {timings[0] * 1000:.0f} ms, median {timings[len(timings) // 2] * 1000:.0f} ms")
    print(f"  peak traced memory during one parse: {peak / 1e6:.1f} MB")


def main() -> None:
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    rows = int(arguments[0]) if arguments else 50_000
    rounds = int(arguments[1]) if len(arguments) > 1 else 5
    data = build_csv(rows)
    measure(data, "users.csv", rows, rounds)
    if "--xlsx" in sys.argv:
        measure(build_xlsx(data), "users.xlsx", rows, max(1, rounds // 2))
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"process max RSS: {maxrss_kib / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
