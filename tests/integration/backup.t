#!/bin/bash
# Backups of the harness WordPress over SSH: a full snapshot, an unchanged one that sends
# no file contents and stores nothing, one changed file that crosses alone, the dump in
# the store, and failures that leave no snapshot.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
add_wordpress_over_ssh wp
field() { # field SNAPSHOT_ID COLUMN
  sqlite3 "$TEND_HOME/catalog.db" "SELECT $2 FROM snapshots WHERE id = $1"
}
store_bytes() { du -sb "$TEND_HOME/store/objects" | cut -f1; }

out=$("$TEND" --json backup wp 2>/dev/null); rc=$?
is "$rc" 0 "a full backup over SSH exits 0"
files=$(find "$WP_PATH" -type f | wc -l)
bytes=$(find "$WP_PATH" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
is "$(field 1 files):$(field 1 bytes)" "$files:$bytes" "the snapshot holds every file and byte of the tree"
is "$(field 1 sent_bytes)" "$bytes" "the first backup reads every file once"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshot_files WHERE snapshot_id = 1")" \
  "$(cd "$WP_PATH" && find . -mindepth 1 | wc -l)" "the manifest has a row for every path"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT mode || ' ' || size || ' ' || sha256 FROM snapshot_files WHERE snapshot_id = 1 AND path = 'wp-includes/version.php'")" \
  "$(stat -c '%a %s' "$WP_PATH/wp-includes/version.php" | awk '{ printf "%d %s", strtonum("0" $1), $2 }') $(sha256sum < "$WP_PATH/wp-includes/version.php" | cut -d' ' -f1)" \
  "a manifest row has the file's mode, size and sha256"
obj=$(field 1 db_object)
dump=$("$TEND" store cat "$obj")
like "$dump" "$(re_escape "$WP_POST_TITLE")" "the database dump in the store holds the known post"
like "$dump" "-- Dump completed" "... and ended cleanly"
ok "the dump is not a temp file on the host any more" test -z "$(find /tmp -maxdepth 1 -name 'tmp.*' -newer "$TEND_HOME/catalog.db" -user "$(id -u)" 2>/dev/null | head -1)"

before=$(store_bytes)
out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 0 "a second backup exits 0"
is "$(field 2 sent_bytes):$(field 2 stored_bytes)" "0:0" "an unchanged instance sends no file contents and stores no file"
grow=$(( $(store_bytes) - before ))
ok "the store grows by ~0 (${grow} bytes: at most the dump's object)" test "$grow" -le 65536
like "$out" "no file changed since snapshot 1.*0 bytes sent" "the summary says so"
is "$(field 2 manifest_id)" "$(field 1 manifest_id)" "... and the two snapshots share one manifest"
is "$(field 2 db_object)" "$(field 1 db_object)" "an unchanged database: the same dump object"
like "$out" "database unchanged: its dump hashes to the last snapshot's" "... recognised on the host, the dump not sent"
ok "... and the server's description of its tables is kept for the next look" test -n "$(field 2 db_signal)"
err=$("$TEND" --debug --quiet backup wp 2>&1 >/dev/null)
like "$err" "debug: .* s ssh://[^ ]+: sh -c exec 6>&1; .*zstd -1 " "the listing crosses compressed by the host's zstd"

# What decides is the dump's own SHA-256, not the cheap look: a last snapshot whose look
# matches but whose dump is another (here: snapshot 1's object put under snapshot 2's
# look, after a row changed) gets the database as it is now.
probe() { mariadb --no-defaults -S "$MARIADB_SOCKET" -u root "$MARIADB_DB" -e "$1"; }
trap 'probe "DROP TABLE IF EXISTS tend_probe"; _harness_cleanup' EXIT
probe "CREATE TABLE tend_probe (id INT PRIMARY KEY, note TEXT); INSERT INTO tend_probe VALUES (1, 'first note')"
"$TEND" backup wp >/dev/null 2>&1
n=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
ok "a changed database: a new dump object" test "$(field "$n" db_object)" != "$(field 1 db_object)"
like "$("$TEND" store cat "$(field "$n" db_object)")" "first note" "... holding the change"
sqlite3 "$TEND_HOME/catalog.db" "UPDATE snapshots SET db_object = '$(field 1 db_object)' WHERE id = $n"
out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 0 "a backup after a stale last dump exits 0"
unlike "$out" "database unchanged" "... and does not take the last dump again"
like "$("$TEND" store cat "$(field $((n + 1)) db_object)")" "first note" "... its dump is the database as it is"
probe "DROP TABLE tend_probe"

# The harness WordPress is shared: what this test changes goes back at exit.
keep=$(harness_tmp)/keep; mkdir -p "$keep"
cp -a "$WP_PATH/readme.html" "$WP_PATH/wp-content/plugins/index.php" "$WP_PATH/wp-links-opml.php" "$keep/"
trap 'cp -a "$keep/readme.html" "$keep/wp-links-opml.php" "$WP_PATH/"; cp -a "$keep/index.php" "$WP_PATH/wp-content/plugins/"; probe "DROP TABLE IF EXISTS tend_probe"; _harness_cleanup' EXIT
echo "<!-- changed by the test -->" >> "$WP_PATH/readme.html"
"$TEND" backup wp >/dev/null 2>&1
m=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
is "$(field "$m" sent_bytes)" "$(stat -c %s "$WP_PATH/readme.html")" "after one file changed, only that file crosses"
rm "$WP_PATH/wp-content/plugins/index.php"
"$TEND" backup wp >/dev/null 2>&1
is "$(field $((m + 1)) files)" "$((files - 1))" "a deleted file is gone from the next snapshot"
is "$(field $((m + 1)) sent_bytes)" 0 "... and nothing crossed for it"
# A file swapped for one of the same size, its mtime put back: its ctime gives it away.
f=$WP_PATH/wp-links-opml.php
sleep 1 # past the second in which the last listing began
sed -i 's/<?php/<?PHP/' "$f" && touch -r "$keep/wp-links-opml.php" "$f"
is "$(stat -c '%s %Y' "$f")" "$(stat -c '%s %Y' "$keep/wp-links-opml.php")" "(same size and mtime as before)"
"$TEND" backup wp >/dev/null 2>&1
is "$(field $((m + 2)) sent_bytes)" "$(stat -c %s "$f")" "a file changed under its old size and mtime is read again"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT sha256 FROM snapshot_files WHERE snapshot_id = $((m + 2)) AND path = 'wp-links-opml.php'")" \
  "$(sha256sum < "$f" | cut -d' ' -f1)" "... and the snapshot holds what it is now"

out=$("$TEND" snapshots wp 2>&1)
like "$out" "^ID +TIME +APP.*
$((m + 2)) +[0-9-]+ [0-9:]+ UTC +wordpress 6\.1\.[0-9]+ +$((files - 1)) " "snapshots lists them, newest first"

# Failures leave no snapshot.
count() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots"; }
n=$(count)
cp "$WP_PATH/wp-config.php" "$(harness_tmp)/wp-config.good"
sed -i "s/define( 'DB_PASSWORD', .*/define( 'DB_PASSWORD', 'wrong' );/" "$WP_PATH/wp-config.php"
err=$("$TEND" backup wp 2>&1 >/dev/null); rc=$?
cp "$(harness_tmp)/wp-config.good" "$WP_PATH/wp-config.php"
like "$rc:$err" "^1:.*tend: backup: wp: database: mysql:.*Access denied" "a dump that fails fails the backup, in one line"
is "$(count)" "$n" "... and records no snapshot"
"$TEND" instance add gone --app generic --host "$SSHD_URL" \
  --ssh-key "$SSHD_KEY" --path "$(harness_tmp)/nowhere" >/dev/null 2>&1
err=$("$TEND" backup gone 2>&1 >/dev/null); rc=$?
like "$rc:$(grep -c '^tend:' <<<"$err"):$(tail -n1 <<<"$err")" "^1:1:tend: backup: gone: prepare: .*nowhere not found" \
  "a missing web root fails in one line, after the steps' progress"

# --all: every instance, a failure named in the summary.
err=$("$TEND" backup --all 2>&1 >/dev/null); rc=$?
like "$rc:$err" "tend: warning: backup gone: .*
.*1 of 2 backups failed: gone" "--all backs up each instance and names the failures"
is "$(count)" "$((n + 1))" "... the good one got its snapshot"
err=$("$TEND" backup --all -j 2 2>&1 >/dev/null); rc=$?
like "$rc:$err" "^1:.*tend: warning: backup gone: .*nowhere not found
.*1 of 2 backups failed: gone" "--all -j 2: the same, two at a time"
is "$(count)" "$((n + 2))" "... the good one got its snapshot"
like "$err" "backup gone: prepare: .*nowhere not found" "... the failure names its step, and the instance once"

# Each child hands back its own exit code and message: a restore of "busy" is running
# (its journal there, its lock held), so its backup stops with exit 4.
"$TEND" instance add busy --app generic --host "$SSHD_URL" \
  --ssh-key "$SSHD_KEY" --path "$(harness_tmp)/nowhere" >/dev/null 2>&1
busy=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT id FROM instances WHERE name = 'busy'")
mkdir -p "$TEND_HOME/journal" "$TEND_HOME/locks"
echo '{}' > "$TEND_HOME/journal/restore-$busy-files.json"
flock "$TEND_HOME/locks/restore-$busy.lock" sleep 120 & holder=$!
wait_for "busy's restore lock" 10 sh -c "! flock -n '$TEND_HOME/locks/restore-$busy.lock' true" || bail "could not hold busy's restore lock"
for j in 1 3; do
  out=$("$TEND" --json backup --all -j $j 2>/dev/null); rc=$?
  got=$(printf '%s' "$out" | python3 -c 'import json,sys
for e in json.load(sys.stdin): print(e["instance"], e.get("code", 0), e.get("error") or "snapshot %d" % e["snapshot"])')
  like "$rc:$got" "^1:busy 4 a restore of it is running; try again when it ends
gone 1 prepare: .*nowhere not found on ssh:[^ ]*
wp 0 snapshot [0-9]+$" "--all -j $j --json: an entry per instance, each failure with its own exit code and message"
done
kill $holder 2>/dev/null; wait $holder 2>/dev/null
rm -f "$TEND_HOME/journal/restore-$busy-files.json"
"$TEND" instance rm busy >/dev/null 2>&1
"$TEND" instance rm gone >/dev/null 2>&1

# Exclusions: this run's --exclude, then the instance's own list.
last() { sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots"; }
paths() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshot_files WHERE snapshot_id = $(last) AND ($1)"; }
"$TEND" backup wp --exclude 'wp-content/plugins/*' --exclude '*.txt' >/dev/null 2>&1
is "$(paths "path LIKE 'wp-content/plugins/%' OR path LIKE '%.txt'")" 0 \
  "--exclude leaves out a path from the web root (with a slash) and a name anywhere (without)"
is "$(paths "path = 'wp-content/plugins' OR path = 'wp-includes/version.php'")" 2 "... and keeps the rest"
"$TEND" instance edit wp --exclude wp-content/themes >/dev/null 2>&1
like "$("$TEND" instance show wp)" "exclude: +wp-content/themes" "instance edit --exclude sets the instance's own list"
"$TEND" backup wp >/dev/null 2>&1
is "$(paths "path LIKE 'wp-content/themes%'"):$(paths "path LIKE '%.txt'")" "0:$(cd "$WP_PATH" && find . -path ./wp-content/themes -prune -o -name '*.txt' -print | wc -l)" \
  "... which every backup of it follows (and this run's --exclude is gone)"
"$TEND" instance edit wp --exclude '' >/dev/null 2>&1
"$TEND" backup wp >/dev/null 2>&1
is "$(paths "path = 'wp-content/themes'")" 1 "--exclude '' clears the list"
err=$("$TEND" backup wp --exclude '../etc' 2>&1); rc=$?
like "$rc:$err" "^2:tend: .*bad exclude pattern" "a pattern that climbs out of the web root is refused"

# A host whose find has no -printf (BSD, busybox): the whole tree comes through tar, and
# the manifest is the same as the listing's.
mkdir -p "$(harness_tmp)/bsdfind"
cat > "$(harness_tmp)/bsdfind/find" <<'SH'
#!/bin/sh
for a in "$@"; do [ "$a" = -printf ] && { echo "find: -printf: unknown primary or operator" >&2; exit 1; }; done
exec /usr/bin/find "$@"
SH
chmod +x "$(harness_tmp)/bsdfind/find"
"$TEND" instance add here --app wordpress --path "$WP_PATH" >/dev/null 2>&1
"$TEND" --quiet backup here >/dev/null 2>&1
listed=$(last)
out=$(PATH="$(harness_tmp)/bsdfind:$PATH" "$TEND" backup here 2>&1); rc=$?
like "$rc:$out" "^0:.*unknown primary or operator: the host's find cannot list the tree; reading all of it" \
  "without find -printf, a backup reads the whole tree instead, and says so"
rows() { sqlite3 "$TEND_HOME/catalog.db" "SELECT path, type, mode, size, sha256, link FROM snapshot_files WHERE snapshot_id = $1 ORDER BY path" | sha256sum; }
is "$(rows "$(last)")" "$(rows "$listed")" "... with the same manifest (path, type, mode, size, sha256, link)"

done_testing
