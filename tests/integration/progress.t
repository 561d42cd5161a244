#!/bin/bash
# Progress on a terminal for long transfers (files, bytes, rate, ETA); nothing when
# stderr is not a terminal, or with --quiet.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
T=$(harness_tmp)
tests/bench/gen-site "$T/site" 3000 120
"$TEND" instance add p --app generic --path "$T/site" >/dev/null 2>&1

script -qfc "'$TEND' backup p" /dev/null > "$T/tty.out" 2>&1
lines=$(tr '\r' '\n' < "$T/tty.out" | grep -E '^p: [0-9]+/3001 files, [0-9.]+ MB/[0-9.]+ MB, [0-9.]+ MB/s, ETA (([0-9]+m)?[0-9]+s|--)')
ok "on a terminal, the backup shows files, bytes, rate and ETA as it goes" test -n "$lines"
like "$(printf '%s\n' "$lines" | tail -1)" "^p: 3001/3001 files" "the last update counts every file"

rm -rf "$TEND_HOME/store" && sqlite3 "$TEND_HOME/catalog.db" "PRAGMA foreign_keys = ON; DELETE FROM snapshots"
"$TEND" backup p > "$T/out" 2> "$T/err"
is "$(grep -c 'ETA' "$T/err")" 0 "with stderr not a terminal, no progress line"
script -qfc "'$TEND' --quiet backup p --rehash" /dev/null > "$T/quiet.out" 2>&1
is "$(grep -c 'ETA' "$T/quiet.out")" 0 "--quiet silences it on a terminal too"

rm -rf "$T/site" # so that every file crosses (a restore sends only what the tree lacks)
script -qfc "'$TEND' restore p" /dev/null > "$T/restore.out" 2>&1
lines=$(tr '\r' '\n' < "$T/restore.out" | grep -E '^p: [0-9]+/3001 files, [0-9.]+ MB/[0-9.]+ MB, [0-9.]+ MB/s, ETA (([0-9]+m)?[0-9]+s|--)')
like "$(printf '%s\n' "$lines" | tail -1)" "^p: 3001/3001 files" "a restore shows its progress too, to the last file"
done_testing
