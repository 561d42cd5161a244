#!/bin/bash
# A restore never loses the database: not when its snapshots are forgotten and the store
# collected while it runs or after it was killed, not when the snapshot's dump is
# damaged, not when the safety dump would be the same damaged object. And a damaged
# object is healed by the next backup that reads a good copy.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
cat_db() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
wrows() { wp_sql "SELECT ID, post_title, post_content FROM wp_posts ORDER BY ID" | sha256sum | cut -c1-16; }
tables() { wp_sql "SHOW TABLES" | wc -l; }
no_tables() { [ "$(tables)" -eq 0 ]; }
add_wordpress_over_ssh wp || bail "could not add the WordPress instance"
add_wordpress_over_ssh keep || bail "could not add the keeper instance" # its snapshot outlives wp's forgets
"$TEND" --quiet backup keep >/dev/null 2>&1 || bail "backup of keep failed"
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "backup failed"
first=$(cat_db "SELECT max(id) FROM snapshots")
good_rows=$(wrows); good_tables=$(tables)

# 1. Paused after the drops (TEND_PAUSE=restore.db-emptied in its helper), forget every
#    other snapshot and run gc: gc is refused while the restore holds the store, and the
#    restore then finishes with the snapshot's rows.
wp_sql "UPDATE wp_posts SET post_title = 'EDITED' WHERE post_type = 'post'"
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "second backup failed"
edited_rows=$(wrows)
TEND_PAUSE=restore.db-emptied "$TEND" --quiet restore wp "$first" > "$T/out" 2>&1 &
tend=$!
wait_for "the restore to reach restore.db-emptied" 60 test -e "$TEND_HOME/paused-restore.db-emptied"
wait_for "the drops to run" 20 no_tables
out=$("$TEND" --quiet forget wp --keep-last 1 2>&1); rc=$?
like "$rc:$out" "^4:tend: wp: a restore of it is running; try again when it ends" "forget of a snapshot while a restore of the instance runs is refused (exit 4)"
"$TEND" --quiet forget keep --keep-last 1 >/dev/null 2>&1
out=$("$TEND" store gc 2>&1); rc=$?
like "$rc:$out" "^4:tend: the store is in use by a backup, restore or import" "gc during a restore is refused (exit 4)"
rm -f "$TEND_HOME/paused-restore.db-emptied"
wait "$tend"; rc=$?
is "$rc" 0 "the paused restore goes on and succeeds"; [ "$rc" = 0 ] || diag "$(cat "$T/out")"
is "$(wrows):$(tables)" "$good_rows:$good_tables" "... with the snapshot's rows and every table"

# 2. Killed after the drops, then forget and gc: gc keeps the safety dump the journal
#    names, and the next run puts the database back from it.
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "third backup failed"
target=$(cat_db "SELECT max(id) FROM snapshots")
wp_sql "UPDATE wp_posts SET post_title = 'EDITED AGAIN' WHERE post_type = 'post'"
before_rows=$(wrows)
for round in 1 2; do
  TEND_PAUSE=restore.db-emptied "$TEND" --quiet restore wp "$target" > "$T/out" 2>&1 &
  tend=$!
  wait_for "the restore to reach restore.db-emptied ($round)" 60 test -e "$TEND_HOME/paused-restore.db-emptied"
  wait_for "the drops to run ($round)" 20 no_tables
  kill -KILL "$tend"; wait "$tend" 2>/dev/null
  wait_for "the helper to die ($round)" 10 sh -c "! pgrep -f -- 'helper restore-db [w]p [0-9]+'"
  rm -f "$TEND_HOME/paused-restore.db-emptied"
  safety=$(cat "$TEND_HOME"/journal/*-db.json 2>/dev/null | sed -n 's/.*"safety":"\([0-9a-f]*\)".*/\1/p')
  ok "killed after the drops ($round): the journal names the safety dump" test -n "$safety"
  "$TEND" --quiet store gc >/dev/null 2>&1
  ok "gc keeps the safety dump the journal names ($round)" "$TEND" store cat "$safety"
  out=$("$TEND" --quiet forget wp --keep-last 1 2>&1); rc=$?
  like "$rc:$out" "^0:tend: warning: wp: a restore was interrupted" "the next job on wp (forget) rolls the killed restore back first ($round)"
  is "$(wrows):$(tables)" "$before_rows:$good_tables" "the database is whole again, as before the restore ($round)"
  is "$(ls "$TEND_HOME"/journal/*.json 2>/dev/null | wc -l)" 0 "no journal is left ($round)"
  "$TEND" --quiet store gc >/dev/null 2>&1
  ok "the safety dump goes with the next gc ($round)" sh -c "! '$TEND' store cat '$safety' >/dev/null 2>&1"
done

# 3. The snapshot's dump damaged, the database unchanged since (so a safety dump would
#    be that very object): restore refuses before the first DROP, full or --db-only.
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "backup for the damage test failed"
snap=$(cat_db "SELECT max(id) FROM snapshots")
dump=$(cat_db "SELECT db_object FROM snapshots WHERE id = $snap")
flip_object "$dump"
before_rows=$(wrows)
out=$("$TEND" --quiet restore wp "$snap" --db-only 2>&1); rc=$?
is "$rc" 1 "a restore from a damaged dump fails"
like "$out" "^tend: restore: wp: prepare: snapshot $snap: its database dump does not read back \(store: object ${dump:0:12} is damaged\) \(the instance is as it was\)$" "... saying the dump is damaged"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "... in one line"
is "$(wrows):$(tables)" "$before_rows:$good_tables" "... and the database is untouched"
out=$("$TEND" restore wp "$snap" 2>&1); rc=$?
is "$rc:$(wrows):$(tables)" "1:$before_rows:$good_tables" "a full restore from it fails too, the database untouched"
is "$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-')" 0 "... and no staging tree is left"
out=$("$TEND" verify wp "$snap" 2>&1); rc=$?
like "$rc:$out" "^1:.*snapshot $snap database: store: object ${dump:0:12} is damaged" "verify names the damaged dump"

# 4. The next backup dumps the same bytes: the damaged object is replaced, and the old
#    snapshot is whole again.
out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 0 "a backup of the unchanged database succeeds"
is "$(cat_db "SELECT db_object FROM snapshots WHERE id = (SELECT max(id) FROM snapshots)")" "$dump" "... with the same dump"
like "$out" "healed 1 damaged object" "... and says it healed the damaged one"
out=$("$TEND" verify wp "$snap" 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact" "the damaged snapshot verifies again"
wp_sql "UPDATE wp_posts SET post_title = 'EDITED' WHERE post_type = 'post'"
"$TEND" --quiet restore wp "$snap" --db-only >/dev/null 2>&1; rc=$?
is "$rc:$(wrows)" "0:$before_rows" "and restores"

# Leave the shared WordPress as we found it.
"$TEND" --quiet restore keep >/dev/null 2>&1
is "$(wrows):$(tables)" "$good_rows:$good_tables" "the keeper's snapshot brings the shared site back"
done_testing
