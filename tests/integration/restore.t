#!/bin/bash
# Restore over SSH: files byte-identical to the snapshot, database rows identical, the
# site serving the original post; --files-only / --db-only; a load that fails midway
# leaves files and database as they were.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
add_wordpress_over_ssh wp
q() { wp_sql "$1"; }
tree() { (cd "$WP_PATH" && find . -printf '%p %m %s %l\n' | sort | sha256sum | cut -c1-16); }
sums() { (cd "$WP_PATH" && find . -type f -exec sha256sum {} + | sort | sha256sum | cut -c1-16); }
rows() { q "SELECT ID, post_title, post_content, post_status FROM wp_posts ORDER BY ID" | sha256sum | cut -c1-16; }
tables() { q "SHOW TABLES" | tr '\n' ' '; }

"$TEND" --quiet backup wp >/dev/null 2>&1
snap=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
t0=$(tree); s0=$(sums); r0=$(rows); tb0=$(tables)

# Damage: edit a post, add a table, change, delete and add files, add a folder, put a
# folder where a file was (the new tree is made from the live one linked whole, then
# pruned of all of this).
q "UPDATE wp_posts SET post_title = 'EDITED' WHERE post_type = 'post'; CREATE TABLE extra_plugin (x INT);"
echo tampered >> "$WP_PATH/index.php"; rm "$WP_PATH/wp-login.php"; echo new > "$WP_PATH/added.txt"
mkdir -p "$WP_PATH/added-dir/sub" && echo x > "$WP_PATH/added-dir/sub/f"
rm "$WP_PATH/wp-cron.php" && mkdir "$WP_PATH/wp-cron.php" && echo y > "$WP_PATH/wp-cron.php/f" || bail "the damage did not take"
t1=$(tree); s1=$(sums); r1=$(rows)

out=$("$TEND" restore wp "$snap" 2>&1); rc=$?
is "$rc" 0 "restore exits 0"
is "$(tree)" "$t0" "every path, mode, size and link target is as in the snapshot"
is "$(sums)" "$s0" "every file is byte-identical to the snapshot"
is "$(rows)" "$r0" "the database rows are identical to the snapshot"
is "$(tables)" "$tb0" "a table added since is gone"
like "$(curl -fsS "$WP_URL/")" "$(re_escape "$WP_POST_TITLE")" "the site serves the original post"
ok "no journal is left" test -z "$(ls "$TEND_HOME/journal" 2>/dev/null)"
# The old tree is deleted in the background once the restore has succeeded.
wait_for "the old tree to go" 30 sh -c "! ls -a '$(dirname "$WP_PATH")' | grep -q '^\.tend-'"
is "$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-')" 0 "no staging or old tree is left beside the web root"

# --files-only and --db-only touch only their half.
q "UPDATE wp_posts SET post_title = 'EDITED' WHERE post_type = 'post'"
echo tampered >> "$WP_PATH/index.php"
"$TEND" restore wp --files-only >/dev/null 2>&1
is "$(sums):$(rows)" "$s0:$r1" "--files-only restores the files and leaves the database"
echo tampered >> "$WP_PATH/index.php"
sf=$(sums)
"$TEND" restore wp --db-only >/dev/null 2>&1
is "$(sums):$(rows)" "$sf:$r0" "--db-only restores the database and leaves the files"
"$TEND" restore wp --files-only >/dev/null 2>&1

# A load that fails midway (a snapshot whose dump is whole but stops with an SQL error
# after its tables were made): the safety dump goes back in, the files stay as they were.
q "UPDATE wp_posts SET post_title = 'EDITED' WHERE post_type = 'post'"
echo tampered >> "$WP_PATH/index.php"
t2=$(tree); s2=$(sums); r2=$(rows); tb2=$(tables)
"$TEND" --quiet export wp "$snap" "$T/wp.tar" >/dev/null 2>&1 || bail "export failed"
mkdir -p "$T/bad" && tar -xf "$T/wp.tar" -C "$T/bad" || bail "could not unpack the export"
printf 'INSERT INTO no_such_table VALUES (1);\n' >> "$T"/bad/db/*.sql
tar -cf "$T/bad.tar" -C "$T/bad" . && "$TEND" --quiet import wp "$T/bad.tar" >/dev/null 2>&1 || bail "import failed"
bad=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
err=$("$TEND" --quiet restore wp "$bad" 2>&1 >/dev/null); rc=$?
like "$rc:$err" "^1:tend: restore: wp: database: mysql:.*Table '.*no_such_table' doesn't exist \(the instance is as it was\)$" "a load that fails midway fails the restore, in one line"
is "$(tree):$(sums)" "$t2:$s2" "... the files are as they were"
is "$(rows)" "$r2" "... the database rows are as they were (the safety dump went back in)"
is "$(tables)" "$tb2" "... and so are its tables"
is "$(ls -a "$(dirname "$WP_PATH")" | grep -c '^\.tend-')" 0 "... with nothing left beside the web root"

# The snapshot's dump damaged: refused before anything is touched.
obj=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT db_object FROM snapshots WHERE id = $snap")
flip_object "$obj"
err=$("$TEND" --quiet restore wp "$snap" 2>&1 >/dev/null); rc=$?
like "$rc:$err" "^1:tend: restore: wp: prepare: snapshot $snap: its database dump does not read back \(store: object [0-9a-f]{12} is damaged\) \(the instance is as it was\)$" "a damaged dump fails the restore before it starts, in one line"
is "$(tree):$(sums):$(rows):$(tables)" "$t2:$s2:$r2:$tb2" "... files and database as they were"
flip_object "$obj" # mended

# After a failed restore a good one works, and leaves the shared site as we found it.
"$TEND" --quiet restore wp "$snap" >/dev/null 2>&1
is "$(tree):$(sums):$(rows):$(tables)" "$t0:$s0:$r0:$tb0" "after a failed restore, a good one brings the snapshot back"

err=$("$TEND" restore wp 999 2>&1); rc=$?
like "$rc:$err" "^2:.*wp has no snapshot 999" "an unknown snapshot is a usage error"

done_testing
