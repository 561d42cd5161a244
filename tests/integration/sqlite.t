#!/bin/bash
# A SQLite site over SSH, written the way a small PHP notes app is: its database file
# in data/ inside the web root, owned by the web server, 0640. Restore puts the file
# back whole (a temp file beside it, checked against the snapshot's SHA-256 before it
# replaces the live one); a copy gets its own URL rewritten into the data, and a copy
# of files that would name production's database is refused; a restore killed while
# the database file is in flight leaves the live database whole, no temp file on the
# host, and the next run puts the files back.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
command -v sqlite3 >/dev/null || bail "sqlite3 is needed"
fresh_home
T=$(harness_tmp)
host="$SSHD_URL"
site=$T/notes
mkdir -p "$site/data"
cat > "$site/index.php" <<'PHP'
<?php
$db = new PDO('sqlite:' . __DIR__ . '/data/notes.sqlite');
foreach ($db->query('SELECT body FROM notes ORDER BY id') as $row) echo htmlspecialchars($row['body']), "\n";
PHP
db=$site/data/notes.sqlite
sqlite3 "$db" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
  INSERT INTO notes(body) VALUES ('first note'), ('see http://notes.example/about'), ('third');"
[ "$(id -u)" -eq 0 ] && chown 33:33 "$db" "$site/data"
chmod 640 "$db"
rows() { sqlite3 "$1" "SELECT group_concat(id || '=' || body, '|') FROM notes"; }
temps() { find "$T" -name '.tend-sqlite-*' | wc -l; }
one_temp() { [ "$(temps)" -eq 1 ]; }
no_temp() { [ "$(temps)" -eq 0 ]; }
"$TEND" instance add notes --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$site" \
  --url http://notes.example --db "sqlite://$db" >/dev/null 2>&1 || bail "instance add failed"
"$TEND" host trust notes >/dev/null 2>&1
out=$("$TEND" --quiet backup notes 2>&1); rc=$?
is "$rc" 0 "a SQLite site backs up"
[ "$rc" = 0 ] || diag "$out"
good=$(rows "$db")
owner=$(stat -c '%a %u:%g' "$db")

# 1. In place: the database goes back as the snapshot had it, mode and owner kept.
sqlite3 "$db" "DELETE FROM notes WHERE id = 1; INSERT INTO notes(body) VALUES ('written after the backup');"
out=$("$TEND" --quiet restore notes 2>&1); rc=$?
is "$rc" 0 "an in-place restore of the SQLite site"
[ "$rc" = 0 ] || diag "$out"
is "$(rows "$db")" "$good" "... puts the database back as it was"
is "$(stat -c '%a %u:%g' "$db")" "$owner" "... with the live file's mode and owner"
is "$(sqlite3 "$db" 'PRAGMA integrity_check')" ok "... and the file is sound"
is "$(temps)" 0 "no temp file is left beside it"

# 2. A copy (its database file at the same place in its web root, so the app's files name
#    it alike): its own URL in the data, production untouched. A copy whose database
#    lies elsewhere would still name production's file: refused, and --db-only goes.
"$TEND" instance add notes3 --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$T/notes3" \
  --url http://notes3.example --db "sqlite://$T/notes3-data/notes.sqlite" >/dev/null 2>&1
out=$("$TEND" --quiet restore notes --to notes3 2>&1); rc=$?
like "$rc:$out" "^2:.*notes3: prepare: a copy of notes's files would still name notes's database .*--config FILE" \
  "a copy of the files whose database lies elsewhere is refused"
ok "... touching nothing" test ! -e "$T/notes3"
mkdir -p "$T/notes3-data"
out=$("$TEND" --quiet restore notes --to notes3 --db-only 2>&1); rc=$?
is "$rc:$(rows "$T/notes3-data/notes.sqlite")" "0:${good//notes.example/notes3.example}" "... and --db-only copies the database alone"
"$TEND" instance add notes2 --app generic --host "$host" --ssh-key "$SSHD_KEY" --path "$T/notes2" \
  --url http://notes2.example --db "sqlite://$T/notes2/data/notes.sqlite" >/dev/null 2>&1
out=$("$TEND" --quiet restore notes --to notes2 2>&1); rc=$?
is "$rc" 0 "a restore into a copy"
[ "$rc" = 0 ] || diag "$out"
is "$(rows "$T/notes2/data/notes.sqlite")" "${good//notes.example/notes2.example}" "... whose database says the copy's URL"
is "$(rows "$db")" "$good" "... and production's database is untouched"
is "$(temps):$(ls "$TEND_HOME/tmp" 2>/dev/null | wc -l)" 0:0 "no temp file is left, there or here"

# 3. Killed with the whole database file sent but not yet in place (twice: in place, and
#    into the copy): the live database is whole, the temp file goes with the session,
#    the next run rolls the files back and removes the copy's database built here.
sqlite3 "$db" "INSERT INTO notes(body) VALUES ('after the first restore');"
now=$(rows "$db"); copy_now=$(rows "$T/notes2/data/notes.sqlite")
for run in "notes:notes" "notes --to notes2:notes2"; do
  args=${run%:*} target=${run##*:}
  TEND_PAUSE=restore.sqlite-sent "$TEND" --quiet restore $args > "$T/out" 2>&1 &
  tend=$!
  wait_for "the restore to send the database file" 60 test -e "$TEND_HOME/paused-restore.sqlite-sent"
  wait_for "the temp file on the host" 20 one_temp
  ok "$target: a temp file is beside the database while it is in flight" test "$(temps)" -eq 1
  live=$([ "$target" = notes ] && echo "$db" || echo "$T/notes2/data/notes.sqlite")
  inode=$(stat -c %i "$live")
  kill -KILL "$tend"; wait "$tend" 2>/dev/null
  rm -f "$TEND_HOME/paused-restore.sqlite-sent"
  wait_for "the host to drop the temp file" 20 no_temp
  is "$(temps)" 0 "$target: killed, the temp file went with the session"
  is "$(stat -c %i "$live")" "$inode" "$target: ... and did not replace the database though it had arrived whole"
  out=$("$TEND" --quiet check "$target" 2>&1); rc=$?
  like "$out" "a restore was interrupted" "$target: the next run rolls the killed restore back"
  is "$(ls "$TEND_HOME/tmp" 2>/dev/null | wc -l)" 0 "$target: ... and removes the killed run's temp files here"
  is "$(rows "$db"):$(rows "$T/notes2/data/notes.sqlite")" "$now:$copy_now" "$target: both databases are as they were before the killed restore"
  is "$(sqlite3 "$db" 'PRAGMA integrity_check')" ok "$target: ... and sound"
  is "$(find "$T" -maxdepth 1 -name '.tend-*' | wc -l)" 0 "$target: no staging tree is left"
done
done_testing
