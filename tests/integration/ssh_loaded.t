#!/bin/bash
# The engine's SSH tests (build/asan/tests/test_ssh) on a busy machine: two busy loops
# per core, at the test's own priority, as on a loaded CI runner or a server in a cron
# storm. Nothing may depend on how fast anything answers.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
loops=()
for _ in $(seq 1 $((2 * $(nproc)))); do sh -c 'while :; do :; done' & loops+=($!); done
trap 'kill "${loops[@]}" 2>/dev/null; _harness_cleanup' EXIT
build/asan/tests/test_ssh
