#!/bin/bash
# Updates over SSH of a small versioned PHP app (tests/fixtures/app: a git repository with
# tags 1.0, 1.1, a broken 1.2 and 2.0, SQLite migrations) served by Apache: update
# 1.0 -> 1.1 behind a 503 page; an update whose migration fails puts files and database
# back, lifts the page, exits 1, and mails when scheduled; upgrade to 2.0; create from the
# repository; adopt of the harness WordPress; a profile applied twice; pre-dogfood.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP Apache for the fixture needs root"; exit 0; }
need sshd mariadb wordpress smtp
fresh_home
T=$(harness_tmp)
REPO=$T/repo
tests/fixtures/app/make-repo "$REPO"
APP=$T/app/site
mkdir -p "$T/app" && git clone -q --branch 1.0 "$REPO" "$APP" 2>/dev/null && (cd "$APP" && php migrate.php >/dev/null)
PA=$(free_port); apache_serve "$APP" "$PA" || bail "apache would not start"
URL=http://127.0.0.1:$PA
"$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from tend@example.org >/dev/null
"$TEND" instance add app --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$APP" --url "$URL" \
  --db "sqlite://$APP/data/app.db" --migrate "php migrate.php" >/dev/null 2>&1
"$TEND" host trust app >/dev/null 2>&1
get() { curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' "$1"; }
tree_sum() { (cd "$APP" && find . -path ./.git -prune -o -path ./data -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
rows() { sqlite3 "$APP/data/app.db" .dump; }

like "$("$TEND" check app 2>&1)" "app: +generic 1.0" "the fixture runs 1.0"
is "$(get "$URL/"):$(cat "$T/body")" "200:version=1.0
schema=1
note=the first note" "... served by Apache"

# update 1.0 -> 1.1, the page up while the code moves.
TEND_PAUSE=update.code "$TEND" update app > "$T/up.out" 2>&1 &
pid=$!
wait_for "the update to reach its code step" 120 test -e "$TEND_HOME/paused-update.code"
is "$(get "$URL/")" 503 "during the update the site answers 503"
like "$(cat "$T/head")" "Retry-After: 600" "... with Retry-After"
rm -f "$TEND_HOME/paused-update.code"
wait "$pid"; rc=$?
is "$rc" 0 "update app exits 0"
[ "$rc" = 0 ] || diag "$(tail -3 "$T/up.out")"
like "$(cat "$T/up.out")" "updated 1.0 -> 1.1 \\(backup: snapshot [0-9]+\\)" "it says from and to, and the backup"
is "$(get "$URL/"):$(head -2 "$T/body")" "200:version=1.1
schema=2" "afterwards the new version, its migration applied"

# An update whose migration fails: everything back as it was.
tests/fixtures/app/make-repo --broken "$REPO" # 1.2: the newest of 1.x, its migration fails
before_files=$(tree_sum); before_rows=$(rows); before_head=$(git -C "$APP" rev-parse HEAD)
out=$("$TEND" update app 2>&1); rc=$?
like "$rc:$out" "^1:.*tend: update: app: migration: the migration \\(php migrate.php\\) failed: migration 003-broken.sql failed: .*; undone: restore of snapshot [0-9]+ \\(files and database\\), maintenance page off" \
  "a failing migration: exit 1, one line naming the step that failed and what was undone"
is "$(tree_sum)" "$before_files" "the files are as before (by hash)"
is "$(git -C "$APP" rev-parse HEAD)" "$before_head" "... the checkout at the same commit"
is "$(rows)" "$before_rows" "the database is as before (row for row)"
is "$(get "$URL/"):$(head -1 "$T/body")" "200:version=1.1" "the maintenance page is gone, the site serves 1.1"
ok "... no maintenance files left" test ! -e "$APP/tend-maintenance.php"

# The same, unattended: the failure is mailed.
"$TEND" schedule add nightly-update --cron @daily --mail-to ops@example.org -- update app >/dev/null 2>&1
out=$("$TEND" schedule run nightly-update 2>&1); rc=$?
is "$rc" 1 "scheduled, the failing update exits 1"
wait_for "the alert" 20 has_mail "Subject: tend: job nightly-update FAILED (app)"
alert=$(grep -l "Subject: tend: job nightly-update FAILED (app)" "$SMTP_MAILDIR"/new/* | head -1)
like "$(cat "$alert" 2>/dev/null)" "Cause: +.*migration 003-broken.sql failed.*undone: restore of snapshot" "... and mailed with its cause"

# The operator's own update: the bundled recipe copied into the config dir, a smoke test
# added after the migration. 1.3 migrates fine but rewords the first note; the smoke test
# wants it as it was, fails, and the update is undone like any other failed step.
tests/fixtures/app/make-repo --mended "$REPO"
mkdir -p "$HOME/.config/tend/recipes"
awk '{ print }
  /ctx:step\("migration", inst.migrate_db, inst\)/ {
    print "    ctx:step(\"smoke test\", function()        -- our own: the front page still shows the first note"
    print "      local r = assert(inst:exec({ \"sh\", \"-c\", [[php index.php | grep -qx \"note=the first note\"]] }))"
    print "      if r.code ~= 0 then error(\"the front page lost its first note\", 0) end"
    print "    end)"
  }' recipes/update.lua > "$HOME/.config/tend/recipes/update.lua"
like "$(cat "$HOME/.config/tend/recipes/update.lua")" "ctx:step\(\"migration\".*ctx:step\(\"smoke test\".*ctx:step\(\"maintenance page off\"" \
  "the copy has the smoke test between the migration and the page off"
like "$("$TEND" recipes)" "update +Update an instance" "tend recipes lists the copy"
before_files=$(tree_sum); before_rows=$(rows); before_head=$(git -C "$APP" rev-parse HEAD)
out=$("$TEND" update app 2>&1); rc=$?
like "$rc:$out" "app: migration.*smoke test" "the copy runs: the migration step, then the smoke test"
like "$rc:$out" "^1:.*tend: update: smoke test: the front page lost its first note; undone: restore of snapshot [0-9]+ \\(files and database\\), maintenance page off" \
  "the smoke test fails: exit 1, one line naming the step and what was undone"
is "$(printf '%s\n' "$out" | grep -c '^tend: ')" 1 "... one line of error"
is "$(tree_sum)" "$before_files" "the files are as before (by hash)"
is "$(git -C "$APP" rev-parse HEAD)" "$before_head" "... the checkout at 1.1's commit"
is "$(rows)" "$before_rows" "the database is as before, the note as it was (row for row)"
is "$(get "$URL/"):$(head -1 "$T/body")" "200:version=1.1" "the maintenance page is gone, the site serves 1.1"
ok "... no maintenance files left" test ! -e "$APP/tend-maintenance.php"
rm "$HOME/.config/tend/recipes/update.lua"

# upgrade to 2.0; production is refused unless meant.
"$TEND" instance edit app --tag env=production >/dev/null 2>&1
like "$("$TEND" upgrade app --to 2.0 2>&1; echo "rc=$?")" "app is tagged production: upgrade a copy first, or add --yes-production.*rc=2" \
  "upgrade refuses an instance tagged production"
out=$("$TEND" upgrade app --to 2.0 --yes-production 2>&1); rc=$?
is "$rc" 0 "upgrade app --to 2.0 --yes-production exits 0"
[ "$rc" = 0 ] || diag "$out"
is "$(get "$URL/"):$(head -2 "$T/body")" "200:version=2.0
schema=3" "the site runs 2.0, its migration applied"
like "$("$TEND" update app 2>&1; echo "rc=$?")" "already at 2.0, the newest of version 2.x.*rc=0" \
  "an update with nothing newer of its major: exit 0, and says so"
like "$("$TEND" upgrade app --to 9.9 --yes-production 2>&1; echo "rc=$?")" "no version 9.9 in the repository.*rc=2" \
  "a version the repository lacks is refused"
out=$("$TEND" versions app 2>/dev/null); rc=$?
is "$rc:$out" "0:app is at 2.0; versions (git tags):
  1.0
  1.1
  1.2
  1.3
* 2.0" "tend versions lists the repository's tags, oldest first, marking the instance's own"

# revert: local changes to the code dropped after a backup; untracked files stay.
snaps() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots s JOIN instances i ON i.id = s.instance_id WHERE i.name = '$1'"; }
echo "// a hot fix by hand" >> "$APP/index.php"
rm "$APP/migrate.php"
echo "an upload" > "$APP/upload-by-a-user.txt"
is "$("$TEND" --json revert app --dry-run 2>/dev/null | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["changed"]))')" \
  "['index.php', 'migrate.php']" "revert --dry-run lists the changed and deleted tracked files"
n=$(snaps app)
out=$("$TEND" --quiet revert app 2>&1); rc=$?
like "$rc:$out" "^2:tend: app is tagged production: add --yes-overwrite-production" "revert of a production instance needs the flag"
out=$("$TEND" revert app --yes-overwrite-production 2>&1); rc=$?
like "$rc:$out" "^0:.*app: 2 changed files put back \(the changes are in snapshot [0-9]+\)" "revert puts the changed files back"
is "$(git -C "$APP" status --porcelain --untracked-files=no)" "" "... the checkout is clean"
is "$(cat "$APP/upload-by-a-user.txt")" "an upload" "... an untracked file is left alone"
is "$(snaps app)" "$((n + 1))" "... after a backup that holds the changes"
like "$("$TEND" revert app 2>&1; echo "rc=$?")" "app: its code has no local changes.*rc=0" "a clean checkout: nothing to do, exit 0"
is "$(snaps app)" "$((n + 1))" "... and no backup"
rm -f "$APP/upload-by-a-user.txt"

# Release tarballs, for a web root that is no checkout: downloaded, checked, unpacked.
REL=$T/releases
mkdir -p "$REL"
for v in 1.0 1.1 2.0; do git -C "$REPO" archive --prefix="app-$v/" "$v" | gzip -n > "$REL/app-$v.tar.gz"; done
(cd "$REL" && sha256sum app-*.tar.gz > SHA256SUMS)
PR=$(free_port)
/usr/bin/python3 -m http.server "$PR" --bind 127.0.0.1 --directory "$REL" > "$T/http.log" 2>&1 &
HARNESS_PIDS="$HARNESS_PIDS $!"
wait_for "the release server" 10 _port_open "$PR"
TAR=$T/tar/site
mkdir -p "$TAR" && tar -xzf "$REL/app-1.0.tar.gz" --strip-components=1 -C "$TAR" && (cd "$TAR" && php migrate.php >/dev/null)
"$TEND" instance add rel --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TAR" \
  --db "sqlite://$TAR/data/app.db" --migrate "php migrate.php" --releases "http://127.0.0.1:$PR/" >/dev/null 2>&1
out=$("$TEND" update rel 2>&1); rc=$?
like "$rc:$out" "^0:.*rel: updated 1.0 -> 1.1" "update from release tarballs: 1.0 -> 1.1, the newest of 1.x"
is "$(cd "$TAR" && php index.php | head -2)" "version=1.1
schema=2" "... unpacked over the web root and migrated"
echo "not the release" >> "$REL/app-2.0.tar.gz" # SHA256SUMS no longer fits it
out=$("$TEND" upgrade rel --to 2.0 2>&1); rc=$?
like "$rc:$out" "^1:.*app-2.0.tar.gz: checksum mismatch \(SHA256SUMS says [0-9a-f]+, the download is [0-9a-f]+\); nothing unpacked.*undone: restore of snapshot" \
  "a tarball whose checksum does not match is refused, and nothing changes"
is "$(cd "$TAR" && php index.php | head -1)" "version=1.1" "... the instance still runs 1.1"
is "$("$TEND" --json versions rel 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["current"], d["versions"])')" \
  "1.1 ['1.0', '1.1', '2.0']" "... and for an instance from --releases, the versions its SHA256SUMS lists"

out=$("$TEND" create fromrel --releases "http://127.0.0.1:$PR" --version 1.1 --host "$SSHD_URL" --ssh-key "$SSHD_KEY" \
  --path "$T/fromrel/site" --db "sqlite://$T/fromrel/site/data/app.db" --migrate "php migrate.php" 2>&1); rc=$?
is "$rc:$(cd "$T/fromrel/site" 2>/dev/null && php index.php | head -2)" "0:version=1.1
schema=2" "create installs a release tarball, checked, and builds its database"

# A Subversion working copy: svn update to the repository's newest revision.
SVNR=$T/svnrepo
svnadmin create "$SVNR"
mkdir -p "$T/src10" "$T/svn" && git -C "$REPO" archive 1.0 | tar -x -C "$T/src10"
svn import -q -m "1.0" "$T/src10" "file://$SVNR/trunk"
SV=$T/svn/site
svn checkout -q "file://$SVNR/trunk" "$SV" && (cd "$SV" && php migrate.php >/dev/null)
svn checkout -q "file://$SVNR/trunk" "$T/svnwork"
git -C "$REPO" archive 1.1 | tar -x -C "$T/svnwork"
(cd "$T/svnwork" && svn add -q --force . && svn commit -q -m "1.1")
"$TEND" instance add svnapp --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$SV" \
  --db "sqlite://$SV/data/app.db" --migrate "php migrate.php" >/dev/null 2>&1
out=$("$TEND" update svnapp --lag 1d 2>&1); rc=$?
like "$rc:$out" "^0:.*already at r1, the newest of revision at least 1d old" "update --lag 1d leaves it: r2 is minutes old"
out=$("$TEND" update svnapp 2>&1); rc=$?
like "$rc:$out" "^0:.*svnapp: updated r1 -> r2" "an svn working copy is updated to the newest revision"
is "$(cd "$SV" && php index.php | head -2)" "version=1.1
schema=2" "... its code and its migration"
like "$("$TEND" update svnapp 2>&1; echo "rc=$?")" "already at r2, the newest of revision.*rc=0" "... and once there, nothing more to do"

# create: 1.0 from the repository, its database built, registered.
NEW=$T/new/site
out=$("$TEND" create fresh --repo "$REPO" --version 1.0 --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$NEW" \
  --db "sqlite://$NEW/data/app.db" --migrate "php migrate.php" 2>&1); rc=$?
is "$rc" 0 "create installs 1.0 from the repository"
[ "$rc" = 0 ] || diag "$out"
is "$(cd "$NEW" && php index.php | head -2)" "version=1.0
schema=1" "... with its database built"
like "$("$TEND" check fresh 2>&1)" "app: +generic 1.0.*database: sqlite:.*reachable" "... and registered: tend check finds it"
like "$("$TEND" create fresh --repo "$REPO" --version 1.0 --path "$T/x" 2>&1; echo "rc=$?")" "instance fresh already exists.*rc=2" \
  "create refuses a name in use"

# A copy of a SQLite site gets its URLs rewritten too (its .dump through the rewriter).
"$TEND" instance edit fresh --url http://fresh.example.test >/dev/null 2>&1
u=http://fresh.example.test/abc; v=http://copy.example.test/abc
sqlite3 "$NEW/data/app.db" "INSERT INTO notes (body) VALUES ('see http://fresh.example.test/about'), ('a:1:{i:0;s:${#u}:\"$u\";}')"
mkdir -p "$T/fcopy"
"$TEND" instance add fcopy --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$T/fcopy/site" \
  --url http://copy.example.test --db "sqlite://$T/fcopy/site/data/app.db" >/dev/null 2>&1
out=$("$TEND" clone fresh fcopy 2>&1); rc=$?
is "$rc" 0 "clone of a SQLite site"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
is "$(sqlite3 "$T/fcopy/site/data/app.db" "SELECT body FROM notes WHERE body LIKE 'see %' OR body LIKE 'a:%' ORDER BY id")" \
  "see http://copy.example.test/about
a:1:{i:0;s:${#v}:\"$v\";}" "... its database names the copy's URL, serialized lengths fixed"
is "$(sqlite3 "$NEW/data/app.db" "SELECT count(*) FROM notes WHERE body LIKE '%fresh.example.test%'")" 2 "... and the source is untouched"

# adopt: the harness WordPress, its database found in wp-config.php.
out=$("$TEND" adopt blog --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$WP_PATH" --url "$WP_URL" 2>&1); rc=$?
like "$rc:$out" "^0:.*blog: adopted wordpress $(re_escape "$WP_VERSION") at .*database mysql:$MARIADB_USER@127.0.0.1:$MARIADB_PORT/$MARIADB_DB" \
  "adopt registers the WordPress with its version and database"
like "$("$TEND" instance show blog)" "app: +wordpress" "... as a wordpress instance"
like "$("$TEND" adopt nothing --path /no/such/dir 2>&1; echo "rc=$?")" "not found.*rc=1" "adopt of a missing web root fails"
mkdir -p "$T/plain" && echo '<?php echo "hi";' > "$T/plain/index.php"
out=$("$TEND" adopt plain --path "$T/plain" 2>&1); rc=$?
like "$rc:$out" "^0:.*plain: adopted generic \(version unknown\)" "adopt of an app tend does not know registers it as generic"
like "$out" "plain: no database declared .*tend instance edit plain --db mysql://USER@HOST/DB" "... saying how to declare its database"
like "$out" "plain: version unknown; tend reads it from the first line of a VERSION file" "... and where its version would come from"
is "$("$TEND" instance list | grep -c '^nothing ')" 0 "... and registers nothing"

# A profile (SQL, files, a Lua step) applied twice is the same as once.
P=$T/profile
mkdir -p "$P/files/assets"
echo "INSERT OR REPLACE INTO notes (id, body) VALUES (100, 'from the profile');" > "$P/profile.sql"
echo "logo" > "$P/files/assets/logo.txt"
cat > "$P/profile.lua" <<'EOF'
-- run(ctx, inst): the profile's own step, here: a setting kept in a file, made idempotently
return function(ctx, inst)
  assert(inst:exec({ "sh", "-c", "grep -qx demo=on settings.ini 2>/dev/null || echo demo=on >> settings.ini" }))
end
EOF
ok "profile applies" "$TEND" profile fresh "$P"
once=$(cd "$NEW" && sqlite3 data/app.db "SELECT * FROM notes ORDER BY id"; cat settings.ini assets/logo.txt)
ok "profile applies again" "$TEND" profile fresh "$P"
is "$(cd "$NEW" && sqlite3 data/app.db "SELECT * FROM notes ORDER BY id"; cat settings.ini assets/logo.txt)" "$once" \
  "twice gives the same as once"
like "$once" "100\\|from the profile.*demo=on.*logo" "... and once did what the profile says"

# pre-dogfood: production's data, then the newest code (2.0 from a copy at 1.0).
"$TEND" instance add next --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$T/next/site" \
  --db "sqlite://$T/next/site/data/app.db" --migrate "php migrate.php" >/dev/null 2>&1
mkdir -p "$T/next"
"$TEND" instance link next --pre-dogfood-of fresh >/dev/null 2>&1
sqlite3 "$NEW/data/app.db" "UPDATE notes SET body = 'today in production' WHERE id = 1"
out=$("$TEND" pre-dogfood next 2>&1); rc=$?
is "$rc" 0 "pre-dogfood next exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
is "$(cd "$T/next/site" && php index.php)" "version=2.0
schema=3
note=today in production" "next runs the newest tag on production's data"
is "$(cd "$NEW" && php index.php | head -1)" "version=1.0" "production is untouched"

done_testing
