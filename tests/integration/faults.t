#!/bin/bash
# Faults: the SSH connection killed mid-backup, TEND_HOME on a tmpfs that fills up, a
# restore killed midway. Each leaves no snapshot (or the target as it was), a store
# that verifies, and one clear line.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
big=$T/big
mkdir -p "$big"
for i in 1 2 3 4 5 6; do head -c 50000000 /dev/urandom > "$big/part$i.bin"; done
echo '<?php echo "big";' > "$big/index.php"
for i in $(seq 1 20); do echo "small $i" > "$big/0-small-$i.txt"; done # packed before the big ones
"$TEND" instance add big --app generic --host "$SSHD_URL" \
  --ssh-key "$SSHD_KEY" --path "$big" >/dev/null 2>&1
"$TEND" host trust big >/dev/null 2>&1
snapshots() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots" 2>/dev/null || echo 0; }

# 1. The connection dies while files stream in.
"$TEND" --quiet backup big > "$T/out" 2> "$T/err" &
tend=$!
wait_for "an object being written" 20 sh -c "ls '$TEND_HOME/store/tmp' 2>/dev/null | grep -q ."
pkill -KILL -P "$(cat "$SSHD_PIDFILE")"   # the listener's children: one sshd per connection
wait "$tend"; rc=$?
is "$rc" 1 "a backup whose SSH connection is killed exits 1"
diag "said: $(cat "$T/err")"
like "$(cat "$T/err")" "^tend: backup: big: files: tar: ssh 127\.0\.0\.1:$SSHD_PORT: connection lost \(.*\)$" "... with one line naming the instance, the host and what happened"
is "$(wc -l < "$T/err")" 1 "... only one line"
is "$(snapshots)" 0 "... and records no snapshot"
is "$(ls "$TEND_HOME/store/tmp" | wc -l)" 0 "no half-written object is left in the store"
like "$("$TEND" store verify 2>&1)" "objects: all intact" "every object in the store verifies"
"$TEND" --quiet backup big >/dev/null 2>&1
is "$(snapshots)" 1 "the next backup works"

# 2. TEND_HOME on a tmpfs too small for the store: "disk full", named as such.
if [ "$(id -u)" -eq 0 ]; then
  small=$T/small
  mkdir -p "$small"
  mount -t tmpfs -o size=20m tmpfs "$small"
  trap 'umount "$small" 2>/dev/null; _harness_cleanup' EXIT
  TEND_HOME=$small "$TEND" instance add big --app generic --host "$SSHD_URL" \
    --ssh-key "$SSHD_KEY" --path "$big" >/dev/null 2>&1
  cp "$TEND_HOME/known_hosts" "$small/"
  err=$(TEND_HOME=$small "$TEND" --quiet backup big 2>&1 >/dev/null); rc=$?
  diag "said: $err"
  is "$rc" 1 "a backup into a full disk exits 1"
  like "$err" "^tend: backup: big: .*disk full$" "... saying \"disk full\""
  is "$(sqlite3 "$small/catalog.db" 'SELECT count(*) FROM snapshots')" 0 "... with no snapshot"
  is "$(ls "$small/store/tmp" | wc -l)" 0 "... and no half-written object"
  is "$(ls "$small/store/packs" | wc -l)" 0 "... and no pack of objects it never indexed"
  is "$(find "$small/store/objects" -type f | wc -l)" 0 "... and none of the objects it stored before the disk filled"
  is "$(ls "$small/store/runs" | wc -l)" 0 "... and no note of them"
  umount "$small"
else
  for _ in 1 2 3 4 5 6; do _tap_result 0 "# SKIP the tmpfs needs root"; done
fi

# 3. A restore killed midway (while the new tree is being built): the target unchanged.
echo 'changed after the backup' > "$big/index.php"
before=$( (cd "$big" && find . -type f -exec sha256sum {} + | sort) | sha256sum)
"$TEND" --quiet restore big > "$T/out" 2>&1 &
tend=$!
wait_for "the staging tree" 20 sh -c "ls -a '$T' | grep -q '^\.tend-restore-big'"
sleep 0.2
kill -KILL "$tend"; wait "$tend" 2>/dev/null
after=$( (cd "$big" && find . -type f -exec sha256sum {} + | sort) | sha256sum)
is "$after" "$before" "a restore killed while building leaves the target as it was"
ok "the half-built staging tree is beside it, not in it" test -z "$(ls -a "$big" | grep tend-restore)"
"$TEND" --quiet restore big >/dev/null 2>&1
is "$(cat "$big/index.php")" '<?php echo "big";' "a restore after that works"

# 4. A restore killed while its helper loads the database (tables dropped, the new tree
#    built beside the site), then one killed at the worst moment (files swapped, the
#    database loaded, nothing cleared yet). Each time the next run (a backup) puts
#    files and database back from the journals and the safety dump.
add_wordpress_over_ssh wpk
"$TEND" --quiet backup wpk >/dev/null 2>&1 || bail "backup of wpk failed"
wsnap=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
wsums() { (cd "$WP_PATH" && find . -type f -exec sha256sum {} + | sort) | sha256sum | cut -c1-16; }
wrows() { wp_sql "SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID" | sha256sum | cut -c1-16; }
no_tables() { [ "$(wp_sql "SHOW TABLES" | wc -l)" -eq 0 ]; }
good_files=$(wsums); good_rows=$(wrows)
wp_sql "UPDATE wp_posts SET post_title = 'EDITED BEFORE THE KILL' WHERE post_type = 'post'"
cp -a "$WP_PATH/index.php" "$T/index.php.good"
echo "// edited before the kill" >> "$WP_PATH/index.php"
files_before=$(wsums); rows_before=$(wrows); tables_before=$(wp_sql "SHOW TABLES" | wc -l)
for point in restore.db-emptied restore.swapped; do
  TEND_PAUSE=$point "$TEND" --quiet restore wpk "$wsnap" > "$T/out" 2>&1 &
  tend=$!
  wait_for "the restore to reach $point" 60 test -e "$TEND_HOME/paused-$point"
  if [ "$point" = restore.db-emptied ]; then
    wait_for "the client to run the drops it was sent" 20 no_tables
    is "$(wp_sql "SHOW TABLES" | wc -l)" 0 "at $point the database is empty"
    ok "the database half runs in a helper process" pgrep -f -- 'helper restore-db [w]pk [0-9]+'
  else
    is "$(wsums):$(wrows)" "$good_files:$good_rows" "at $point the files and the database are the snapshot's (the worst moment)"
  fi
  kill -KILL "$tend"; wait "$tend" 2>/dev/null
  sleep 0.5
  ok "$point: the helper died with the restore" sh -c "! pgrep -f -- 'helper restore-db [w]pk [0-9]+'"
  rm -f "$TEND_HOME/paused-$point"
  ok "$point: a journal is left for the next run" test -n "$(ls "$TEND_HOME/journal" 2>/dev/null)"
  out=$("$TEND" --quiet backup wpk 2>&1); rc=$?
  like "$out" "tend: warning: wpk: a restore was interrupted .*putting the instance back as it was" "$point: the next run says it is rolling the killed restore back"
  is "$rc" 0 "$point: ... and then does its own job"
  is "$(wsums)" "$files_before" "$point: the files are as they were before the killed restore"
  is "$(wrows):$(wp_sql "SHOW TABLES" | wc -l)" "$rows_before:$tables_before" "$point: the database rows and tables are as they were"
  wait_for "the old tree to go" 30 sh -c "! ls -a '$(dirname "$WP_PATH")' | grep -q '^\.tend-'"
  is "$(ls "$TEND_HOME/journal" | wc -l):$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-')" "0:0" "$point: no journal, staging or old tree is left"
done
# ... and one killed once it has committed (files swapped, database loaded, one journal
#    saying so in place of both): it is done; the next run keeps it and deletes the old tree.
TEND_PAUSE=restore.committed "$TEND" --quiet restore wpk "$wsnap" > "$T/out" 2>&1 &
tend=$!
wait_for "the restore to reach restore.committed" 60 test -e "$TEND_HOME/paused-restore.committed"
kill -KILL "$tend"; wait "$tend" 2>/dev/null
rm -f "$TEND_HOME/paused-restore.committed"
ok "restore.committed: killed there, the old tree is left" sh -c "ls -a '$(dirname "$WP_PATH")' | grep -q '^\.tend-old'"
out=$("$TEND" --quiet backup wpk 2>&1); rc=$?
is "$rc:$out" "0:" "restore.committed: the next run rolls nothing back (and says nothing) and does its own job"
is "$(wsums):$(wrows)" "$good_files:$good_rows" "restore.committed: the site is the snapshot's"
is "$(ls "$TEND_HOME/journal" | wc -l):$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-')" "0:0" \
  "restore.committed: the old tree is deleted, and the journal"

# ... and one killed while the host's client still has the dump to load (the server held
#    by a global read lock here, as a slow disk would): that client goes on after the kill;
#    the next run waits for it to end before it puts the database back, never in between.
edit_kept() {
  wp_sql "UPDATE wp_posts SET post_title = 'EDITED BEFORE THE KILL' WHERE post_type = 'post'"
  cp "$T/index.php.good" "$WP_PATH/index.php"; echo "// edited before the kill" >> "$WP_PATH/index.php"
}
edit_kept
wp_sql "DROP TABLE wp_links" # a table the snapshot has and the site has not: the killed client makes it
tables_kept=$(wp_sql "SHOW TABLES" | wc -l)
waiting_for_lock() { mariadb_root "SELECT count(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for%lock%'" | tail -1; }
TEND_PAUSE=restore.db-emptied "$TEND" --quiet restore wpk "$wsnap" > "$T/out" 2>&1 &
tend=$!
wait_for "the restore to reach restore.db-emptied" 60 test -e "$TEND_HOME/paused-restore.db-emptied"
mariadb_root "FLUSH TABLES WITH READ LOCK; SELECT SLEEP(600)" >/dev/null 2>&1 & # until killed below
held=$!
read_locked() { mariadb_root "SHOW PROCESSLIST" | grep -q 'SLEEP(600)'; }
wait_for "the global read lock" 20 read_locked
rm -f "$TEND_HOME/paused-restore.db-emptied"
load_waits() { [ "$(waiting_for_lock)" -gt 0 ]; }
wait_for "the load to wait for the server" 20 load_waits
kill -KILL "$tend"; wait "$tend" 2>/dev/null
sleep 0.5
ok "killed, its client on the host still waits to load the dump" load_waits
"$TEND" --quiet check wpk > "$T/out" 2>&1 &
next_run=$!
sleep 1 # (the next run meanwhile waits for the killed client; no assertion rests on this)
mariadb_root "KILL $(mariadb_root "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(600)%'" | tail -1)"
wait "$next_run"
out=$(cat "$T/out")
like "$out" "a restore was interrupted" "the next run rolls the killed restore back"
is "$(waiting_for_lock)" 0 "... once the killed run's client has ended"
is "$(wsums):$(wrows):$(wp_sql "SHOW TABLES" | wc -l)" "$files_before:$rows_before:$tables_kept" \
  "... and the files, rows and tables are as they were, not the killed client's"
wait "$held"
edit_kept

# 5. A backup killed while its helper dumps the database: the helper dies with it, and
#    no snapshot is recorded.
snaps=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")
wp_sql "UPDATE wp_posts SET post_title = 'A BACKUP OF THIS IS KILLED' WHERE post_type = 'post'" # a new dump
TEND_PAUSE=backup.db-dumped "$TEND" --quiet backup wpk > "$T/out" 2>&1 &
tend=$!
wait_for "the dump helper to reach its pause" 60 test -e "$TEND_HOME/paused-backup.db-dumped"
ok "the database is dumped by a helper process" pgrep -f -- 'helper dump-db [w]pk'
kill -KILL "$tend"; wait "$tend" 2>/dev/null
sleep 0.5
ok "the helper died with the backup" sh -c "! pgrep -f -- 'helper dump-db [w]pk'"
rm -f "$TEND_HOME/paused-backup.db-dumped"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")" "$snaps" "no snapshot is recorded"
added=$(cat "$TEND_HOME"/store/runs/*.run 2>/dev/null | sort -u)
ok "the objects the killed backup and its helper added are noted by name" test -n "$added"
still() { n=0; for h in $added; do "$TEND" store cat "$h" >/dev/null 2>&1 && n=$((n + 1)); done; echo "$n"; }
ok "... and are in the store" test "$(still)" -gt 0
"$TEND" --quiet backup big >/dev/null 2>&1 || diag "the backup of big failed"
is "$(still):$(ls "$TEND_HOME/store/runs" | wc -l)" "0:0" "the next backup (of another instance) removes them, and the notes"

# 6. Kills at many points of a backup and of a restore, and a lost connection: no file
#    on the host holds the DB password at any time after, no staging tree survives the
#    next run, and every site is either as it was or as the snapshot has it.
mark=$T/mark; touch "$mark"; sleep 1
secret_files() { find /tmp -maxdepth 1 -type f -newer "$mark" -exec grep -l 'password=' {} + 2>/dev/null | wc -l; }
restored_files=$good_files; restored_rows=$good_rows # what a restore of $wsnap that finished leaves
edit() { # the same edit from either state
  wp_sql "UPDATE wp_posts SET post_title = 'BEFORE THE KILLS' WHERE post_type = 'post'"
  cp "$T/index.php.good" "$WP_PATH/index.php"; echo "// before the kills" >> "$WP_PATH/index.php"
}
edit
kept_files=$(wsums); kept_rows=$(wrows)
half=0
for delay in 0.3 0.8 1.3 2 3 4.5; do
  "$TEND" --quiet backup wpk >/dev/null 2>&1 &
  tend=$!; sleep "$delay"; kill -KILL "$tend" 2>/dev/null; wait "$tend" 2>/dev/null
  "$TEND" --quiet restore wpk "$wsnap" >/dev/null 2>&1 &
  tend=$!; sleep "$delay"; kill -KILL "$tend" 2>/dev/null; wait "$tend" 2>/dev/null
  sleep 0.3
  "$TEND" --quiet check wpk >/dev/null 2>&1 # rolls a killed restore back
  now="$(wsums):$(wrows)"
  case $now in
    "$kept_files:$kept_rows") ;;
    "$restored_files:$restored_rows") edit ;; # the restore had finished: start again from the edit
    *) half=$((half + 1)); diag "after kills at ${delay}s: $now (as it was: $kept_files:$kept_rows, the snapshot: $restored_files:$restored_rows)" ;;
  esac
done
is "$half" 0 "after kills of backups and restores at 6 points, every site was as it was or as the snapshot"
"$TEND" --quiet restore wpk "$wsnap" >/dev/null 2>&1 &
tend=$!
wait_for "the restore's helper" 30 pgrep -f -- 'helper restore-db [w]pk [0-9]+'
pkill -KILL -P "$(cat "$SSHD_PIDFILE")"   # every SSH connection lost
wait "$tend"
"$TEND" --quiet check wpk >/dev/null 2>&1
case "$(wsums):$(wrows)" in
  "$kept_files:$kept_rows"|"$restored_files:$restored_rows") _tap_result 0 "a restore whose connections were cut leaves the site whole" ;;
  *) _tap_result 1 "a restore whose connections were cut leaves the site whole" ;;
esac
sleep 1
is "$(secret_files)" 0 "no file in the host's /tmp holds the DB password after all those kills"
is "$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-restore')" 0 "no staging tree is left after the next runs"
is "$(ls "$TEND_HOME/journal" 2>/dev/null | wc -l)" 0 "no journal is left"

# Leave the shared WordPress as we found it.
"$TEND" --quiet restore wpk 1 >/dev/null 2>&1 || "$TEND" --quiet restore wpk >/dev/null 2>&1
snap_first=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT min(id) FROM snapshots WHERE instance_id = (SELECT id FROM instances WHERE name = 'wpk')")
"$TEND" --quiet restore wpk "$snap_first" >/dev/null 2>&1
is "$(wsums):$(wrows)" "$good_files:$good_rows" "a restore of the first snapshot brings the shared site back"

done_testing
