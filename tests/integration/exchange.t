#!/bin/bash
# Export and import: archives that GNU tar and bsdtar list and extract, imported back
# identical; a Tiki Manager backup (built here in its documented layout) imported as a
# snapshot; a hostile archive refused with nothing written.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need mariadb wordpress
fresh_home
T=$(harness_tmp)
"$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "backup failed"
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
manifest() { q "SELECT path, type, mode, size, sha256, link FROM snapshot_files WHERE snapshot_id = $1 ORDER BY path" | sha256sum | cut -c1-16; }

for ext in tar.zst tar.bz2 tar.gz; do
  out=$("$TEND" export wp 1 "$T/wp.$ext" 2>&1); rc=$?
  is "$rc" 0 "export to .$ext exits 0"
  mkdir -p "$T/gnu-$ext" "$T/bsd-$ext"
  ok "GNU tar lists the .$ext" sh -c "tar -tf '$T/wp.$ext' | grep -qx 'files/wp-config.php'"
  ok "bsdtar lists the .$ext" sh -c "bsdtar -tf '$T/wp.$ext' | grep -qx 'files/wp-config.php'"
  tar -xf "$T/wp.$ext" -C "$T/gnu-$ext" && bsdtar -xf "$T/wp.$ext" -C "$T/bsd-$ext"
  ok "GNU tar extracts files/ identical to the site (.$ext)" diff -r --no-dereference "$WP_PATH" "$T/gnu-$ext/files"
  ok "bsdtar extracts the same (.$ext)" diff -r --no-dereference "$T/gnu-$ext" "$T/bsd-$ext"
done
like "$(cat "$T/gnu-tar.zst/db/wordpress.sql")" "$(re_escape "$WP_POST_TITLE")" "db/wordpress.sql holds the database with the known post"
like "$(cat "$T/gnu-tar.zst/meta.json")" '"format":"tend-export"' "meta.json says what it is"
is "$(wc -l < "$T/gnu-tar.zst/manifest")" "$(q 'SELECT count(*) FROM snapshot_files WHERE snapshot_id = 1')" "manifest has a line per path"
like "$("$TEND" export wp 1 "$T/wp.zip" 2>&1; echo "rc=$?")" "say the format by its name.*rc=2" "an unknown format is a usage error"

# Our export back in: the same manifest and the same database object.
"$TEND" instance add copy --app wordpress --path "$T/copy" >/dev/null 2>&1
out=$("$TEND" import copy "$T/wp.tar.bz2" 2>&1); rc=$?
like "$rc:$out" "^0:.*copy: snapshot 2 from .*\(tend export\)" "import of our export exits 0 and says what it read"
is "$(manifest 2)" "$(manifest 1)" "the imported snapshot has the same manifest (path, type, mode, size, sha256, link)"
is "$(q 'SELECT db_object FROM snapshots WHERE id = 2')" "$(q 'SELECT db_object FROM snapshots WHERE id = 1')" "... and the same database dump"

# A Tiki Manager backup, built as it lays them out.
tm=$T/tm; root=/var/www/tiki; outside=$T/tiki-extra
a=$(printf '%s' "$root" | md5sum | cut -d' ' -f1)
f=$(printf '%s' "$root/files" | md5sum | cut -d' ' -f1)
o=$(printf '%s' "$outside" | md5sum | cut -d' ' -f1)
mkdir -p "$tm/3-mytiki/$a/lib/setup" "$tm/3-mytiki/$a/db" "$tm/3-mytiki/$f/gallery" "$tm/3-mytiki/$o"
echo '<?php // tiki' > "$tm/3-mytiki/$a/tiki-setup.php"
echo '<?php class TWVersion { function __construct() { $this->version = "24.2"; } }' > "$tm/3-mytiki/$a/lib/setup/twversion.class.php"
echo '<?php $dbs_tiki="tiki";' > "$tm/3-mytiki/$a/db/local.php"
echo 'a picture' > "$tm/3-mytiki/$f/gallery/p1.jpg"
echo 'elsewhere' > "$tm/3-mytiki/$o/extra.txt"
printf '%s    app    %s    full\n%s    data    %s    full\n%s    data    %s    partial\n' \
  "$a" "$root" "$f" "$root/files" "$o" "$outside" > "$tm/3-mytiki/manifest.txt"
echo 'CREATE TABLE tiki_pages (page_id INT); -- the tiki dump' > "$tm/3-mytiki/database_dump.sql"
tar -cjf "$T/3-mytiki.tar.bz2" -C "$tm" 3-mytiki
"$TEND" instance add tk --app tiki --path "$T/tk" >/dev/null 2>&1
out=$("$TEND" import tk "$T/3-mytiki.tar.bz2" 2>&1); rc=$?
like "$rc:$out" "^0:.*tk: snapshot 3 from .*\(Tiki Manager backup\): 5 files.*data outside the web root: $(re_escape "$outside")" \
  "a Tiki Manager backup imports; its folder outside the web root is in the snapshot, and said"
is "$(q "SELECT group_concat(path, ' ') FROM (SELECT path FROM snapshot_files WHERE snapshot_id = 3 AND type = 'file' ORDER BY path)")" \
  "$outside/extra.txt db/local.php files/gallery/p1.jpg lib/setup/twversion.class.php tiki-setup.php" \
  "its app folder is the web root, its data folder in it lands at files/, the one outside at its own path"
obj=$(q 'SELECT db_object FROM snapshots WHERE id = 3')
like "$("$TEND" store cat "$obj")" "the tiki dump" "database_dump.sql is the snapshot's database"
"$TEND" instance edit tk --data-dir "$outside" >/dev/null 2>&1
"$TEND" --quiet restore tk --files-only >/dev/null 2>&1
is "$(cat "$T/tk/files/gallery/p1.jpg" 2>&1)" "a picture" "the imported snapshot restores into place"
is "$(cat "$outside/extra.txt" 2>&1)" "elsewhere" "... and its folder outside the web root where the instance declares it"
like "$("$TEND" check tk 2>&1)" "app: +tiki 24\.2" "and is detected as the Tiki it was"

# A hostile archive: refused whole, nothing outside written.
/usr/bin/python3 - "$T/evil.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz") as t:
    for name in ("meta.json", "files/ok.txt", "files/../../escaped.txt"):
        info = tarfile.TarInfo(name); data = b"{}" if name == "meta.json" else b"x"
        info.size = len(data); t.addfile(info, io.BytesIO(data))
PY
out=$("$TEND" import copy "$T/evil.tar.gz" 2>&1); rc=$?
like "$rc:$out" "^1:.*unsafe path" "an archive with ../ is refused"
ok "nothing was written outside" test ! -e "$T/escaped.txt" -a ! -e "$TEND_HOME/escaped.txt"
is "$(q 'SELECT count(*) FROM snapshots')" 3 "and no snapshot was recorded"
/usr/bin/python3 - "$T/abs.tar" "$T/link.tar" "$T/outside" <<'PY'
import io, sys, tarfile
def entry(t, name, data=b"x", link=None):
    info = tarfile.TarInfo(name)
    if link:
        info.type, info.linkname = tarfile.SYMTYPE, link
        t.addfile(info)
    else:
        info.size = len(data); t.addfile(info, io.BytesIO(data))
with tarfile.open(sys.argv[1], "w") as t:
    entry(t, "meta.json", b"{}"); entry(t, "/tmp/absolute.txt")
with tarfile.open(sys.argv[2], "w") as t:
    entry(t, "meta.json", b"{}"); entry(t, "files/up", link=sys.argv[3]); entry(t, "files/up/planted.txt")
PY
mkdir -p "$T/outside"
out=$("$TEND" import copy "$T/abs.tar" 2>&1); rc=$?
like "$rc:$out" "^1:.*unsafe path" "an archive with an absolute path is refused"
out=$("$TEND" import copy "$T/link.tar" 2>&1); rc=$?
like "$rc:$out" "^1:.*unsafe path \"up/planted.txt\" \(it lies under a symlink" "an archive that writes through its own symlink is refused"
ok "nothing was written outside, through the link or otherwise" test -z "$(ls -A "$T/outside")" -a ! -e /tmp/absolute.txt
is "$(q 'SELECT count(*) FROM snapshots')" 3 "and neither recorded a snapshot"
like "$("$TEND" import copy "$T/nothing.tar" 2>&1; echo "rc=$?")" "no such file.*rc=2" "a missing archive is a usage error"

# A Tiki Manager backup whose manifest climbs out of the web root with "..".
tm2=$T/tm2; up="$root/../../x"
u=$(printf '%s' "$up" | md5sum | cut -d' ' -f1)
mkdir -p "$tm2/4-evil/$a" "$tm2/4-evil/$u"
echo '<?php // tiki' > "$tm2/4-evil/$a/tiki-setup.php"
echo 'planted' > "$tm2/4-evil/$u/planted.txt"
printf '%s    app    %s    full\n%s    data    %s    full\n' "$a" "$root" "$u" "$up" > "$tm2/4-evil/manifest.txt"
tar -cjf "$T/4-evil.tar.bz2" -C "$tm2" 4-evil
out=$("$TEND" import tk "$T/4-evil.tar.bz2" 2>&1); rc=$?
like "$rc:$out" '^1:.*unsafe path "\.\./\.\./x" \(a "\.\." component\); nothing imported' "a Tiki Manager manifest path with .. is refused, by name"
is "$(q 'SELECT count(*) FROM snapshots')" 3 "... and records no snapshot"

# A damaged export (what the fuzzer found): meta.json that is not JSON, or not a file.
bad=$T/bad-export; mkdir -p "$bad/files"; echo '<?php' > "$bad/files/index.php"; printf '{"app": "word' > "$bad/meta.json"
tar -cf "$T/bad-meta.tar" -C "$bad" files meta.json
out=$("$TEND" import copy "$T/bad-meta.tar" 2>&1); rc=$?
is "$rc:$out" "1:tend: import: $T/bad-meta.tar: its meta.json is not a JSON object; nothing imported" "an export whose meta.json is cut short is refused in one line"
rm "$bad/meta.json"; mkdir "$bad/meta.json"; tar -cf "$T/dir-meta.tar" -C "$bad" files meta.json
out=$("$TEND" import copy "$T/dir-meta.tar" 2>&1); rc=$?
is "$rc:$out" "1:tend: import: $T/dir-meta.tar: meta.json is not a file; nothing imported" "... and one whose meta.json is a folder"
is "$(q 'SELECT count(*) FROM snapshots')" 3 "... recording no snapshot"

# Exports hold secrets (the config file, the users table): 0600 whatever the umask; so
# is every state file tend creates.
(umask 022; "$TEND" --quiet export copy latest "$T/secret.tar.zst" >/dev/null 2>&1)
is "$(stat -c %a "$T/secret.tar.zst")" 600 "an export is written 0600 under umask 022"
loose=$(find "$TEND_HOME" -type f -perm /077 ! -path '*/store/objects/*' ! -path '*/store/packs/*' | sed "s|$TEND_HOME/||" | sort | tr '\n' ' ')
is "$loose" "" "no state file in TEND_HOME is readable by others"

done_testing
