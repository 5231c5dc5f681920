#!/bin/sh
# `make test` runs this first: the browser tests (tests/e2e) drive Debian's Chromium. Install it when
# missing and we can (root with apt-get: a fresh container, CI); otherwise say in one line what to run.
set -eu
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"  # where tests/e2e/conftest.py looks; overridden only by tests
if [ -x "$CHROMIUM" ] && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium and chromium-driver for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium chromium-driver
  exit 0
fi
echo "make test needs Chromium for the browser tests: run  sudo apt-get install chromium chromium-driver" >&2
exit 1
