#!/usr/bin/env bash
# Install the browser the browser tests (tests/browser) drive: Debian's `chromium` package, /usr/bin/chromium.
#
#   bash tools/install-browser.sh
#
# Idempotent: does nothing when /usr/bin/chromium is already there. Otherwise, as root, runs `apt-get update` once
# and `apt-get install chromium`. Never downloads a browser build of its own (no `playwright install`): Playwright
# from PyPI drives this Debian Chromium through `executable_path="/usr/bin/chromium"`.
# Exits non-zero with a sentence saying why when it cannot install it.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

say() { echo "install-browser: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
  say "$("$CHROMIUM" --version 2>/dev/null || echo chromium) is already installed at $CHROMIUM."
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "$CHROMIUM is missing and this is not root, so it cannot be installed here."
  say "Ask an administrator to run: apt-get update && apt-get install -y chromium"
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "$CHROMIUM is missing and there is no apt-get (not a Debian/Ubuntu machine); install Chromium so that"
  say "$CHROMIUM exists, or run the browser tests elsewhere."
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "installing Debian's chromium package (apt-get update, then apt-get install chromium) ..."
if ! apt-get update -qq; then
  say "apt-get update failed: the Debian package mirrors cannot be reached; $CHROMIUM was not installed."
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  say "apt-get install chromium failed (see above); $CHROMIUM was not installed."
  exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
  say "the chromium package installed, but $CHROMIUM is still missing."
  exit 1
fi
say "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM."
