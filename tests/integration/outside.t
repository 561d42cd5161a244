#!/bin/bash
# Data outside the web root: a Tiki-shaped site whose file gallery preference points at a
# folder beside its web root (as Tiki recommends) and a generic app with a declared
# absolute --data-dir. Backups hold those folders; a restore after a gallery file was
# deleted brings it back (a kill at the swap is rolled back by the next run); a clone
# gets folders of its own (its preferences rewritten to them), never the source's;
# migrate-data moves them; a Tiki Manager archive's data folders are imported and restored.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb
fresh_home
T=$(harness_tmp)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP blank needs MariaDB's root over its socket (run as root)"; exit 0; }
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
tree_sum() { (cd "$1" && find . -printf '%y %m %s %P\n' | LC_ALL=C sort && find . -type f -exec sha256sum {} + | LC_ALL=C sort) | sha256sum | cut -c1-16; }
pref() { sql "$1" -e "SELECT value FROM tiki_preferences WHERE name = '$2'"; }

# tiki-a: the fixture, its gallery in $T/ta/files (absolute), its wiki attachments in
# ../ta-att/ (relative to the web root, as an admin may type it).
TA=$T/www/tiki-a; GA=$T/ta/files; WA=$T/www/ta-att
mkdir -p "$T/www" "$T/ta" && cp -a tests/fixtures/tiki "$TA" && mkdir -p "$TA/db" "$GA/2026" "$WA"
sql -e "CREATE DATABASE otiki_a; CREATE USER 'otiki_a'@'127.0.0.1' IDENTIFIED BY 'ta pw'; GRANT ALL ON otiki_a.* TO 'otiki_a'@'127.0.0.1';"
sql otiki_a < tests/fixtures/tiki/schema.sql
sql otiki_a -e "INSERT INTO tiki_preferences VALUES ('tikiIndex_url', 'http://tiki-a.test/tiki-index.php'),
  ('fgal_use_db', 'n'), ('fgal_use_dir', '$GA/'), ('w_use_db', 'n'), ('w_use_dir', '../ta-att/');
  INSERT INTO tiki_pages (pageName, data) VALUES ('HomePage', 'hello');"
printf '<?php\n$db_tiki = "mysqli";\n$host_tiki = "127.0.0.1:%s";\n$user_tiki = "otiki_a";\n$pass_tiki = "ta pw";\n$dbs_tiki = "otiki_a";\n' \
  "$MARIADB_PORT" > "$TA/db/local.php"
head -c 300000 /dev/urandom > "$GA/2026/file1a2b3c"
echo 'second file' > "$GA/2026/file4d5e6f"
ln "$GA/2026/file4d5e6f" "$GA/2026/same-file"
printf 'bytes' > "$GA/$(printf 'caf\351.bin')" # a name that is not UTF-8
ln -s 2026/file1a2b3c "$GA/latest"
echo 'an attachment' > "$WA/att1"
chmod 750 "$GA"; touch -d '2025-06-01 12:00' "$GA"
"$TEND" instance add tiki-a --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TA" --url http://tiki-a.test >/dev/null 2>&1
"$TEND" host trust tiki-a >/dev/null 2>&1

# 1. The backup holds both folders, under their own paths.
out=$("$TEND" backup tiki-a 2>&1); rc=$?
is "$rc" 0 "backup tiki-a exits 0"
[ "$rc" = 0 ] || diag "$out"
snap=$(q "SELECT max(id) FROM snapshots")
is "$(q "SELECT count(*) FROM snapshot_files WHERE snapshot_id = $snap AND path LIKE '$GA/%' AND type = 'file'")" 4 \
  "the snapshot holds the gallery's four files (one a hard link, one not UTF-8)"
is "$(q "SELECT type || ' ' || printf('%o', mode) FROM snapshot_files WHERE snapshot_id = $snap AND path = '$GA'")" "dir 750" \
  "... and the gallery folder itself, with its mode"
is "$(q "SELECT count(*) FROM snapshot_files WHERE snapshot_id = $snap AND path = '$WA/att1'")" 1 \
  "the wiki attachments named from the web root with ../ are in it too"
is "$(q "SELECT count(*) FROM snapshot_files WHERE snapshot_id = $snap AND path = 'tiki-setup.php'")" 1 "the web root as ever"
out=$("$TEND" verify tiki-a "$snap" --restore-to "$T/drill" 2>&1); rc=$?
is "$rc" 0 "a restore drill of the snapshot reads back whole, the folders outside the web root included"
[ "$rc" = 0 ] || diag "$out"
is "$(cmp "$T/drill/outside$GA/2026/file1a2b3c" "$GA/2026/file1a2b3c" && echo same)" same "... the gallery under outside/ at its own path"
manifest() { # the rows of a snapshot's manifest, and how many (an empty one never passes)
  local rows; rows=$(q "SELECT path, type, mode, size, sha256, link, hardlink FROM manifest_files
    WHERE manifest_id = (SELECT manifest_id FROM snapshots WHERE id = $1) ORDER BY path")
  printf '%s %s\n' "$(printf '%s' "$rows" | grep -c .)" "$(printf '%s' "$rows" | sha256sum | cut -c1-16)"
}
ok "export the snapshot" "$TEND" export tiki-a "$snap" "$T/ta.tar.zst"
ok "... its gallery under outside/ in the archive" sh -c "tar -tf '$T/ta.tar.zst' | grep -q '^outside$GA/2026/file1a2b3c$'"
"$TEND" instance add ta-imported --app tiki --path "$T/ta-imported" >/dev/null 2>&1
ok "import it into another instance" "$TEND" import ta-imported "$T/ta.tar.zst"
is "$(manifest "$(q "SELECT max(id) FROM snapshots")")" "$(manifest "$snap")" "... the same manifest, the folders outside the web root included"
like "$(manifest "$snap")" "^[1-9][0-9]+ " "... (which has rows)"
out=$("$TEND" backup tiki-a 2>&1)
like "$out" "no file changed since snapshot $snap" "an unchanged second backup reads nothing, the gallery included"

# 2. A gallery file deleted and another changed: restore puts both back, the folder
#    whole (mode, mtime, links), the web root too.
ga_good=$(tree_sum "$GA"); wa_good=$(tree_sum "$WA")
rm "$GA/2026/file1a2b3c"; echo 'changed' > "$GA/2026/file4d5e6f"; echo stray > "$GA/stray"
out=$("$TEND" restore tiki-a "$snap" 2>&1); rc=$?
is "$rc" 0 "restore tiki-a exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(tree_sum "$GA")" "$ga_good" "the gallery is the snapshot's again: the deleted file back, the changed one and the stray gone"
is "$(stat -c '%i' "$GA/2026/file4d5e6f")" "$(stat -c '%i' "$GA/2026/same-file")" "... its hard links one file"
is "$(stat -c '%a %Y' "$GA")" "750 $(date -d '2025-06-01 12:00' +%s)" "... the folder's own mode and mtime"
is "$(tree_sum "$WA")" "$wa_good" "the attachments folder as it was"

# 3. A restore killed at the gallery's swap (the web root swapped already, the gallery
#    not yet) and once everything is swapped (the database loaded too): each time the
#    next run puts the web root, the gallery and the database back as they were.
rm "$GA/2026/file1a2b3c"; echo 'edited before the kill' > "$TA/index.php.local"
otiki_rows() { sql otiki_a -e "SELECT name, value FROM tiki_preferences ORDER BY name" | sha256sum | cut -c1-16; }
sql otiki_a -e "INSERT INTO tiki_preferences VALUES ('edited', 'before the kill')"
ga_before=$(tree_sum "$GA"); ta_before=$(tree_sum "$TA"); rows_before=$(otiki_rows)
for point in restore.outside-swap restore.swapped; do
  TEND_PAUSE=$point "$TEND" --quiet restore tiki-a "$snap" > "$T/out" 2>&1 &
  tend=$!
  wait_for "the restore to reach $point" 60 test -e "$TEND_HOME/paused-$point"
  kill -KILL "$tend"; wait "$tend" 2>/dev/null
  rm -f "$TEND_HOME/paused-$point"
  out=$("$TEND" --quiet backup tiki-a 2>&1); rc=$?
  like "$rc:$out" "^0:.*a restore was interrupted" "$point: the next run rolls the killed restore back, then backs up"
  is "$(tree_sum "$GA"):$(tree_sum "$TA"):$(otiki_rows)" "$ga_before:$ta_before:$rows_before" \
    "$point: the gallery, the web root and the database are as they were before the kill"
  wait_for "the old trees to go" 30 sh -c "! ls -a '$T/ta' '$T/www' | grep -q '^\.tend-'"
  is "$(ls -a "$T/ta" "$T/www" | grep -c '^\.tend-'):$(ls "$TEND_HOME/journal" | wc -l)" "0:0" \
    "$point: no staging or old folder is left beside either, and no journal"
done
sql otiki_a -e "DELETE FROM tiki_preferences WHERE name = 'edited'"
"$TEND" --quiet restore tiki-a "$snap" >/dev/null 2>&1

# 4. A restore of a snapshot whose folder the instance no longer keeps data in is refused.
sql otiki_a -e "UPDATE tiki_preferences SET value = '' WHERE name = 'fgal_use_dir'"
out=$("$TEND" restore tiki-a "$snap" 2>&1); rc=$?
like "$rc:$out" "^2:.*holds $(re_escape "$GA") outside the web root, which is not where tiki-a keeps data.*--data-dir" \
  "in place, a folder the instance does not name is refused (exit 2), saying how to declare it"
is "$(tree_sum "$GA")" "$ga_good" "... and nothing was touched"
sql otiki_a -e "UPDATE tiki_preferences SET value = '$GA/' WHERE name = 'fgal_use_dir'"

# 5. A clone onto a blank tiki-b that declares its own gallery folder: the copy's files
#    land there, its preferences name it, tiki-a's folder is untouched.
TB=$T/www/tiki-b; GB=$T/tb/files
"$TEND" instance add tiki-b --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TB" --url http://tiki-b.test \
  --db "mysql://otiki_b@127.0.0.1:$MARIADB_PORT/otiki_b" --data-dir "$GB" >/dev/null 2>&1
ok "blank tiki-b" "$TEND" blank tiki-b --admin "$MARIADB_ADMIN"
out=$("$TEND" clone tiki-a tiki-b --without-maintenance-page 2>&1); rc=$?
is "$rc" 0 "clone tiki-a tiki-b exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(tree_sum "$GB")" "$ga_good" "tiki-b's own gallery folder holds tiki-a's gallery"
is "$(pref otiki_b fgal_use_dir)" "$GB/" "tiki-b's file gallery preference names its own folder"
is "$(tree_sum "$GA")" "$ga_good" "tiki-a's gallery is untouched"
is "$(cat "$T/www/tiki-b-data/ta-att/att1" 2>&1)" "an attachment" \
  "the attachments folder, declared nowhere on tiki-b, is copied beside its web root"
is "$(pref otiki_b w_use_dir)" "$T/www/tiki-b-data/ta-att/" "... and its preference names that folder"
like "$("$TEND" instance show tiki-b 2>&1)" "data outside: +$(re_escape "$GB $T/www/tiki-b-data/ta-att")" \
  "... which tiki-b now declares (instance show)"
out=$("$TEND" compare tiki-a tiki-b --files 2>&1)
unlike "$out" "$(re_escape "$T")/t[ab]/files|ta-att" "compare: tiki-b's data folders hold what tiki-a's do (each in its own place)"
echo 'changed on b' > "$GB/2026/file4d5e6f"
out=$("$TEND" compare tiki-a tiki-b --files 2>&1)
like "$out" "differ +$(re_escape "$GA")/2026/file4d5e6f" "... and a file changed in tiki-b's folder is named as tiki-a's"
echo 'added on a' > "$GA/2026/new1"
out=$("$TEND" clone tiki-a tiki-b --without-maintenance-page 2>&1); rc=$?
is "$rc:$(cat "$GB/2026/new1" 2>&1)" "0:added on a" "a second clone brings the new gallery file into tiki-b's folder"
ok "... still not into tiki-a's attachments" test ! -e "$WA/new1"

# 6. A copy whose declared folder is its source's own is refused before any change.
TC=$T/www/tiki-c
"$TEND" instance add tiki-c --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TC" \
  --db "mysql://otiki_c@127.0.0.1:$MARIADB_PORT/otiki_c" --data-dir "$GA" --data-dir "$WA" >/dev/null 2>&1
ok "blank tiki-c" "$TEND" blank tiki-c --admin "$MARIADB_ADMIN"
snaps=$(q "SELECT count(*) FROM snapshots"); ga_now=$(tree_sum "$GA")
out=$("$TEND" clone tiki-a tiki-c --without-maintenance-page 2>&1); rc=$?
like "$rc:$out" "^2:.*which is tiki-a's own.*nothing was changed" "a copy into the source's own data folder is refused (exit 2)"
is "$(q "SELECT count(*) FROM snapshots"):$(tree_sum "$GA")" "$snaps:$ga_now" "... before any change: no backup of tiki-a, its gallery as it was"
ok "tiki-c's web root was not made" test ! -e "$TC/tiki-setup.php"

# 7. migrate-data: the database and the data folders, the code left alone.
echo 'migrated' > "$GA/2026/new2"
echo '<?php // tiki-b local code' > "$TB/local-code.php"
"$TEND" backup tiki-a >/dev/null 2>&1
out=$("$TEND" migrate-data tiki-a tiki-b --without-maintenance-page 2>&1); rc=$?
is "$rc" 0 "migrate-data tiki-a tiki-b exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(cat "$GB/2026/new2" 2>&1)" "migrated" "the gallery's new file is in tiki-b's folder"
is "$(pref otiki_b fgal_use_dir)" "$GB/" "tiki-b's preference still names its own folder"
is "$(cat "$TB/local-code.php")" "<?php // tiki-b local code" "tiki-b's code is untouched"

# 8. A generic app with a declared absolute --data-dir: in its backups and restores.
GE=$T/www/notes; GD=$T/notes-uploads
mkdir -p "$GE" "$GD/u"; echo '<?php echo "notes";' > "$GE/index.php"; echo 'upload' > "$GD/u/one.txt"
"$TEND" instance add notes --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$GE" --data-dir "$GD/" >/dev/null 2>&1
like "$("$TEND" instance show notes 2>&1)" "data outside: +$(re_escape "$GD")" "an absolute --data-dir is kept as given, trailing slash dropped"
out=$("$TEND" instance edit notes --data-dir /srv/../etc 2>&1); rc=$?
like "$rc:$out" "^2:.*--data-dir" "a --data-dir with .. is refused"
"$TEND" backup notes >/dev/null 2>&1
rm -r "$GD/u"
out=$("$TEND" restore notes 2>&1); rc=$?
is "$rc" 0 "restore notes exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(cat "$GD/u/one.txt" 2>&1)" "upload" "the declared folder's file is back"
mv "$GD" "$GD.away"
out=$("$TEND" backup notes 2>&1); rc=$?
like "$rc:$out" "^0:.*warning: notes: its data folder $(re_escape "$GD") does not exist" "a missing data folder is said, not skipped silently"
mv "$GD.away" "$GD"

# A config folder that is a symlink out of the tree (Debian's Roundcube links config/ to
# /etc/roundcube): a copy's config would be written into its source's. Refused first.
RC=$T/www/rc; mkdir -p "$RC" "$T/etc-rc"
echo '<?php $config["db_dsnw"] = "mysql://rc:rcpw@127.0.0.1/roundcube";' > "$T/etc-rc/config.inc.php"
ln -s "$T/etc-rc" "$RC/config"; echo '<?php // rc' > "$RC/index.php"
"$TEND" instance add rc --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$RC" --config config/config.inc.php >/dev/null 2>&1
"$TEND" instance add rc-copy --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$T/www/rc-copy" \
  --db "mysql://rc_copy@127.0.0.1:$MARIADB_PORT/rc_copy" --config config/config.inc.php >/dev/null 2>&1
etc_before=$(sha256sum < "$T/etc-rc/config.inc.php"); snaps=$(q "SELECT count(*) FROM snapshots")
out=$("$TEND" clone rc rc-copy 2>&1); rc=$?
like "$rc:$out" "^2:.*config/config\.inc\.php lies under config, a symlink in rc's tree.*nothing was changed" \
  "a clone whose config would be written through a symlink out of the tree is refused (exit 2)"
is "$(sha256sum < "$T/etc-rc/config.inc.php"):$(q "SELECT count(*) FROM snapshots")" "$etc_before:$snaps" \
  "... the shared config untouched, rc not even backed up"
ok "... and rc-copy not made" test ! -e "$T/www/rc-copy/index.php"

# 9. A Tiki Manager archive with a data folder outside the web root: imported into the
#    snapshot at its own path, restored where the instance declares it.
tm=$T/tm; root=/var/www/tiki; ext=$T/tm-extra
a=$(printf '%s' "$root" | md5sum | cut -d' ' -f1); o=$(printf '%s' "$ext" | md5sum | cut -d' ' -f1)
mkdir -p "$tm/3-mytiki/$a/lib/setup" "$tm/3-mytiki/$o/sub"
echo '<?php // tiki' > "$tm/3-mytiki/$a/tiki-setup.php"
echo '<?php class TWVersion { function __construct() { $this->version = "24.2"; } }' > "$tm/3-mytiki/$a/lib/setup/twversion.class.php"
echo 'kept outside' > "$tm/3-mytiki/$o/sub/doc.txt"
printf '%s    app    %s    full\n%s    data    %s    partial\n' "$a" "$root" "$o" "$ext" > "$tm/3-mytiki/manifest.txt"
tar -cjf "$T/3-mytiki.tar.bz2" -C "$tm" 3-mytiki
"$TEND" instance add tm --app tiki --path "$T/tm-root" >/dev/null 2>&1
out=$("$TEND" import tm "$T/3-mytiki.tar.bz2" 2>&1); rc=$?
like "$rc:$out" "^0:.*data outside the web root: $(re_escape "$ext")" "the archive's data folder is imported, and said"
out=$("$TEND" restore tm --files-only 2>&1); rc=$?
like "$rc:$out" "^2:.*not where tm keeps data" "restoring it needs the folder declared"
ok "... nothing was written there" test ! -e "$ext"
"$TEND" instance edit tm --data-dir "$ext" >/dev/null 2>&1
out=$("$TEND" restore tm --files-only 2>&1); rc=$?
is "$rc:$(cat "$ext/sub/doc.txt" 2>&1)" "0:kept outside" "once declared, the folder is restored from the archive"

done_testing
