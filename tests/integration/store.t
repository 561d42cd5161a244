#!/bin/bash
# The store's upkeep on a local SQLite site: verify (intact and damaged), forget by a
# retention policy (dry run and real), gc of what no snapshot needs (and not while a
# backup runs), and a restore of a kept snapshot after all that.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
T=$(harness_tmp)
site=$T/site
mkdir -p "$site/data"
echo '<?php echo "v1";' > "$site/index.php"
sqlite3 "$site/data/app.db" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('one');"
"$TEND" instance add s --app generic --path "$site" --db "sqlite://$site/data/app.db" >/dev/null 2>&1
for v in 1 2 3; do
  echo "<?php echo \"v$v\";" > "$site/index.php"
  head -c 20000 /dev/urandom > "$site/data/blob-$v.bin"
  sqlite3 "$site/data/app.db" "INSERT INTO notes(body) VALUES ('note $v')"
  "$TEND" --quiet backup s >/dev/null 2>&1 || bail "backup $v failed"
done
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")" 3 "three snapshots of a local SQLite site"

out=$("$TEND" verify s 2>&1); rc=$?
like "$rc:$out" "^0:3 snapshots, [0-9]+ objects read back: all intact" "verify reads every object back"
like "$("$TEND" store verify 2>&1)" "^[0-9]+ objects: all intact" "store verify too"

hex=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT sha256 FROM snapshot_files WHERE snapshot_id = 1 AND path = 'data/blob-1.bin'")
flip_object "$hex"
out=$("$TEND" verify s 1 2>&1); rc=$?
like "$rc:$out" "^1:.*1 damaged:
  snapshot 1 data/blob-1.bin: store: object ${hex:0:12} is damaged" "a damaged object is named with its snapshot and path, exit 1"
flip_object "$hex" # mended

out=$("$TEND" forget s --keep-last 1 --dry-run 2>&1)
like "$out" "keep +3 .*\(last\).*would drop +2.*would drop +1" "forget --dry-run says what would go"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")" 3 "... and changes nothing"
out=$("$TEND" forget s 2>&1); rc=$?
like "$rc:$out" "^2:.*say what to keep" "forget without a policy refuses (bad usage, exit 2)"

objects() { sqlite3 "$TEND_HOME/store/index.db" "SELECT count(*) FROM packed" | awk -v loose="$(find "$TEND_HOME/store/objects" -type f | wc -l)" '{ print $1 + loose }'; }
before=$(objects)
"$TEND" forget s --keep-last 1 >/dev/null 2>&1
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT group_concat(id) FROM snapshots")" 3 "forget --keep-last 1 keeps the newest"
is "$(objects)" "$before" "forget alone removes no object"

flock -s "$TEND_HOME/store/lock" sleep 3 &
holder=$!
sleep 0.3
out=$("$TEND" store gc 2>&1); rc=$?
like "$rc:$out" "^4:tend: the store is in use by a backup" "gc refuses while a backup holds the store (exit 4)"
wait "$holder"

out=$("$TEND" store gc --dry-run 2>&1)
like "$out" "^would remove [1-9][0-9]* unreferenced objects" "gc --dry-run counts what would go"
is "$(objects)" "$before" "... and removes nothing"
out=$("$TEND" store gc 2>&1)
removed=$(printf '%s' "$out" | sed -n 's/^removed \([0-9]*\) .*/\1/p')
is "$(objects)" "$((before - removed))" "gc removes exactly the objects it reports"
v1=$(printf '<?php echo "v1";\n' | sha256sum | cut -d' ' -f1)
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshot_files WHERE sha256 = '$v1'"):$("$TEND" store cat "$v1" >/dev/null 2>&1; echo $?)" \
  "0:1" "index.php as it was in the forgotten snapshot 1 is gone from the store"
is "$("$TEND" store cat "$hex" > "$T/blob1"; echo $?):$(wc -c < "$T/blob1")" 0:20000 "blob-1, still in the kept snapshot, stays (store cat exits 0 with all its bytes)"
like "$("$TEND" verify s 2>&1)" "all intact" "the kept snapshot still verifies"

rm -rf "$site"/*
"$TEND" --quiet restore s >/dev/null 2>&1
is "$(cat "$site/index.php"):$(sqlite3 "$site/data/app.db" 'SELECT count(*) FROM notes')" '<?php echo "v3";:4' \
  "the kept snapshot restores, files and SQLite database"

done_testing
