#!/bin/sh
# The Debian packages some tests need: PostgreSQL (a throwaway server for the tests of workers
# sharing a study) and Chromium (opening the HTML reports headless). Installs what is missing
# when it can (root with apt-get); otherwise says what to install, and those tests say why they
# are skipped.
set -u
missing=""
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
    || missing="$missing postgresql"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
else
    echo "tests that need these Debian packages will be skipped:$missing (apt-get install$missing)"
fi
exit 0
