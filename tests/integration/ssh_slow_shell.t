#!/bin/bash
# The engine's SSH tests (build/asan/tests/test_ssh) again, logged in as the harness's
# slow-shell user: its ~/.bashrc sleeps 0.3 s at every command, as real servers' rc
# files do. Nothing may depend on how fast a shell starts.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
[ -n "${SSHD_SLOW_USER:-}" ] || { echo "1..0 # SKIP the slow-shell user needs root"; exit 0; }
SSHD_USER=$SSHD_SLOW_USER exec build/asan/tests/test_ssh
