#!/bin/bash
# The restore drill: `tend verify NAME SNAP --restore-to DIR` restores a snapshot of the
# harness WordPress (over SSH, its uploads owned by www-data, a hard link, a symlink, a
# sparse file) into a scratch directory here, dump included, and compares the tree with
# the manifest. The comparison must catch what a bad restore would do (changed bytes,
# modes, broken links, missing and extra files); a damaged object fails the drill and
# leaves the directory empty; a directory that is not a drill's is refused untouched.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
walk() { /usr/bin/python3 tests/harness/tree-walk.py "$1"; }
cat_db() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }

up=$WP_PATH/wp-content/uploads/drill
mkdir -p "$up"
printf 'photo bytes' > "$up/photo.jpg"; ln "$up/photo.jpg" "$up/photo-copy.jpg"; ln -s photo.jpg "$up/latest.jpg"
head -c 4096 /dev/urandom > "$up/cache.bin"; truncate -s 30M "$up/cache.bin"
[ "$(id -u)" -eq 0 ] && chown -R 33:33 "$up"
add_wordpress_over_ssh wp || bail "could not add the WordPress instance"
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "backup failed"
snap=$(cat_db "SELECT max(id) FROM snapshots")

# 1. The drill, and the tree it leaves.
out=$("$TEND" verify wp "$snap" --restore-to "$T/drill" 2>&1); rc=$?
is "$rc" 0 "a restore drill of the WordPress snapshot succeeds"
like "$out" "restore drill of snapshot $snap into $T/drill: [0-9]+ files, database in $T/drill/db/database.sql; the tree matches the manifest" \
  "... and says the tree matches the manifest"
is "$(stat -c %a "$T/drill")" 700 "the drill directory is 0700 (the tree holds wp-config.php)"
is "$(stat -c %a "$T/drill/db/database.sql")" 600 "the dump is 0600"
like "$(head -c 100000 "$T/drill/db/database.sql")" "CREATE TABLE \`wp_posts\`" "... and holds the WordPress tables"
is "$(walk "$T/drill/files/wp-content/uploads/drill")" "$(walk "$up")" \
  "the uploads come back alike: owners, hard link, symlink, holes, mtimes"
is "$(cmp "$T/drill/files/wp-config.php" "$WP_PATH/wp-config.php" && echo same)" same "wp-config.php is there"

# 2. The comparison catches what a bad restore would do. The drill's tree is changed
#    behind its back, and the comparison run again from the REPL.
d=$T/drill/files
mt=$(stat -c %y "$d/index.php"); printf 'X' | dd of="$d/index.php" bs=1 seek=3 conv=notrunc status=none; touch -d "$mt" "$d/index.php"
chmod 600 "$d/wp-login.php"
rm "$d/wp-content/uploads/drill/photo-copy.jpg"
cp -p "$d/wp-content/uploads/drill/photo.jpg" "$d/wp-content/uploads/drill/photo-copy.jpg"
rm "$d/wp-cron.php"
echo extra > "$d/extra.php"
ln -sfn index.php "$d/wp-content/uploads/drill/latest.jpg"
diffs=$("$TEND" repl -e "print(table.concat(require('tend.drill').compare(wp:snapshots()[1], require('tend.snapshot').manifest(wp.ctx:catalog(), wp:snapshots()[1]), '$d'), '\n'))" 2>&1)
like "$diffs" "index\.php: content differs" "the comparison finds changed bytes behind an unchanged size and mtime"
like "$diffs" "wp-login\.php: mode 600, not 644" "... a changed mode"
like "$diffs" "wp-content/uploads/drill/photo(-copy)?\.jpg: not a hard link to \"wp-content/uploads/drill/photo(-copy)?\.jpg\"" "... a broken hard-link group"
like "$diffs" "wp-cron\.php: missing" "... a missing file"
like "$diffs" "extra\.php: not in the snapshot" "... a file the snapshot does not have"
like "$diffs" "latest\.jpg: links to \"index\.php\", not \"photo\.jpg\"" "... a changed link target"

# 3. The next drill into the same directory replaces the earlier one (a drill can be
#    scheduled); a directory that is not a drill's is refused and left as it was.
out=$("$TEND" --quiet verify wp latest --restore-to "$T/drill" 2>&1); rc=$?
is "$rc" 0 "a second drill into the earlier drill's directory replaces it"
ok "... the extra file is gone" test ! -e "$d/extra.php"
mkdir "$T/mine"; echo keep > "$T/mine/notes.txt"
out=$("$TEND" verify wp "$snap" --restore-to "$T/mine" 2>&1); rc=$?
like "$rc:$out" "^2:tend: .*mine is not empty and not an earlier drill's" "a directory with other files is refused (exit 2)"
is "$(ls -A "$T/mine")" notes.txt "... and left as it was"
out=$("$TEND" verify wp --restore-to "$T/new" 2>&1); rc=$?
like "$rc:$out" "^2:.*--restore-to needs a snapshot" "--restore-to without a snapshot is a usage error"
ok "... that made nothing" test ! -e "$T/new"

# 4. A damaged object fails the drill by name, and the directory is left empty.
obj=$(cat_db "SELECT sha256 FROM manifest_files WHERE path = 'wp-content/uploads/drill/photo.jpg' LIMIT 1")
flip_object "$obj"
out=$("$TEND" verify wp "$snap" --restore-to "$T/drill2" 2>&1); rc=$?
is "$rc" 1 "a drill over a damaged object fails"
like "$out" "damaged" "... saying an object is damaged"
is "$(ls -A "$T/drill2")" .tend-drill "... and leaves nothing half-restored in the directory"
flip_object "$obj"
out=$("$TEND" --quiet verify wp "$snap" --restore-to "$T/drill2" 2>&1); rc=$?
is "$rc" 0 "with the object mended, the drill passes again"
rm -rf "$up"
done_testing
