#!/bin/bash
# Code history on an instance, over SSH, on the fixture app (tests/fixtures/app) served by
# Apache: its branch dev has ten commits, one a day from 20 to 11 days ago, and the
# seventh breaks index.php. update --lag 15d moves a checkout of dev only to the sixth;
# patches (a fix for the seventh's bug, and one that stops applying) follow updates and
# clones, and one that no longer applies fails the update, which puts everything back;
# bisect --test finds the seventh by itself, bisect good/bad by hand, reset goes back.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP Apache for the fixture needs root"; exit 0; }
need sshd
fresh_home
T=$(harness_tmp)
REPO=$T/repo
tests/fixtures/app/make-repo "$REPO" && tests/fixtures/app/make-repo --dev "$REPO"
subject() { git -C "$1" log -1 --format=%s; }
checkout() { # checkout DIR REV: a checkout of branch dev, reset to REV, migrated
  mkdir -p "$(dirname "$1")" && git clone -q --branch dev "$REPO" "$1" 2>/dev/null &&
    git -C "$1" reset -q --hard "$2" && (cd "$1" && php migrate.php >/dev/null)
}
add() { # add NAME DIR URL
  "$TEND" instance add "$1" --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$2" --url "$3" \
    --db "sqlite://$2/data/app.db" --migrate "php migrate.php" >/dev/null 2>&1
}
APP=$T/app/site
checkout "$APP" dev~9
PA=$(free_port); apache_serve "$APP" "$PA" || bail "apache would not start"
URL=http://127.0.0.1:$PA
add app "$APP" "$URL"
"$TEND" host trust app >/dev/null 2>&1
page() { curl -s -o "$T/body" -w '%{http_code}' "$1/"; }
page_is() { test "$(page "$1")" = "$2"; }

# update --lag: the newest commit of dev at least 15 days old, not the newest.
out=$("$TEND" update app --lag 15d 2>&1); rc=$?
is "$rc" 0 "update --lag 15d exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
is "$(subject "$APP")" "change 6" "... dev moved to its newest commit at least 15 days old (change 6), not its head"
is "$(git -C "$APP" symbolic-ref --short HEAD)" dev "... still on the branch"
is "$(page "$URL")" 200 "... the site answers"
out=$("$TEND" update app --lag 15d 2>&1); rc=$?
like "$rc:$out" "^0:.*already at [0-9a-f]+, the newest of branch dev at least 15d old" "a second --lag 15d has nothing to do"

# patches
cat > "$T/motd.diff" <<'DIFF'
diff --git a/index.php b/index.php
--- a/index.php
+++ b/index.php
@@ -1,4 +1,5 @@
 <?php
+function motd() { return "patched"; }
 $db = new SQLite3(__DIR__ . '/data/app.db', SQLITE3_OPEN_READONLY);
 echo "version=" . trim(file_get_contents(__DIR__ . '/VERSION')) . "\n";
 echo "schema=" . $db->querySingle('SELECT count(*) FROM schema_migrations') . "\n";
DIFF
(cd "$APP" && sed -i 's/^change 6$/change 6, reworded/' CHANGES && git diff > "$T/changes.diff" && git checkout -q CHANGES)
printf 'no diff here\n' > "$T/not-a-patch"
cp "$T/changes.diff" "$T/stale.diff" && sed -i 's/^ change 5$/ change five/' "$T/stale.diff"
before=$(git -C "$APP" diff | sha256sum)
out=$("$TEND" patch app add "$T/stale.diff" 2>&1); rc=$?
like "$rc:$out" "^1:.*stale.diff does not apply to $APP: error: " "a patch that does not apply is refused with git's reason (exit 1)"
out=$("$TEND" patch app add "$T/not-a-patch" 2>&1); rc=$?
like "$rc:$out" "^2:.*not-a-patch is no patch" "a file that is no diff: exit 2"
is "$(git -C "$APP" diff | sha256sum):$("$TEND" patch app list 2>&1)" "$before:app has no patches" "... neither changed the code or the list"
out=$("$TEND" patch app add "$T/motd.diff" 2>&1); rc=$?
like "$rc:$out" "^0:.*patch 1 \\(motd.diff\\) applied" "patch add applies a diff"
out=$("$TEND" patch app add "$T/changes.diff" 2>&1); rc=$?
like "$rc:$out" "^0:.*patch 2 \\(changes.diff\\) applied" "... and a second"
like "$("$TEND" patch app list 2>&1)" "^1  [0-9-]{10}  motd.diff  $T/motd.diff
2  [0-9-]{10}  changes.diff  $T/changes.diff$" "patch list shows both, oldest first"
is "$(git -C "$APP" diff --stat | tail -1)" " 2 files changed, 2 insertions(+), 1 deletion(-)" "... both are in the code"
out=$("$TEND" patch app add "$T/motd.diff" 2>&1); rc=$?
like "$rc:$out" "^2:.*app: add: that diff is patch 1 \\(motd.diff\\) already" "the same diff twice is refused"
printf 'diff --git a/NOTES b/NOTES\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES\n@@ -0,0 +1 @@\n+a hot fix\n' > "$T/notes.diff"
git -C "$APP" apply "$T/notes.diff"
out=$("$TEND" patch app add "$T/notes.diff" 2>&1); rc=$?
like "$rc:$out" "^0:.*patch 3 \\(notes.diff\\) recorded: its code has it already" "a diff applied by hand is recorded as it is"
out=$("$TEND" patch app rm 3 2>&1); rc=$?
is "$rc:$(test -e "$APP/NOTES" && echo there):$(git -C "$APP" diff --stat | tail -1)" \
  "0:: 2 files changed, 2 insertions(+), 1 deletion(-)" "patch rm takes it out of the code; the other two stay"

# An update whose patch no longer applies: everything back.
sqlite3 "$APP/data/app.db" .dump > "$T/rows.before"
before=$(git -C "$APP" diff | sha256sum)
out=$("$TEND" update app 2>&1); rc=$?
like "$rc:$out" "^1:.*patches on: patch 2 \\(changes.diff\\) no longer applies: error: .*restore of snapshot" \
  "update to dev's head fails naming the patch that no longer applies, and says it restored the backup"
is "$(subject "$APP"):$(git -C "$APP" diff | sha256sum)" "change 6:$before" "... the code is back at change 6 with both patches in it"
is "$(sqlite3 "$APP/data/app.db" .dump)" "$(cat "$T/rows.before")" "... the database as it was"
is "$(page "$URL")" 200 "... the site answers"

# Without it, the update reaches dev's head (whose index.php calls motd()) with the fix on.
out=$("$TEND" patch app rm 2 2>&1); rc=$?
like "$rc:$out" "^0:.*patch 2 \\(changes.diff\\) taken out of its code" "patch rm takes a patch out"
is "$(git -C "$APP" diff --name-only)" "index.php" "... only the fix is left in the code"
out=$("$TEND" update app 2>&1); rc=$?
is "$rc" 0 "update to dev's head exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
like "$out" "1 patches taken off.*1 patches applied" "... the patch taken off before the code moved and applied after"
is "$(subject "$APP")" "change 10" "... the checkout at dev's head"
is "$(page "$URL"):$(tail -1 "$T/body")" "200:motd=patched" "... the page that needs the fix answers with it"

# A clone carries the patches.
out=$("$TEND" instance add copy --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$T/copy/site" \
  --db "sqlite://$T/copy/site/data/app.db" --migrate "php migrate.php" 2>&1 && "$TEND" clone app copy 2>&1); rc=$?
is "$rc" 0 "clone app copy exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
like "$("$TEND" patch copy list 2>&1)" "^[0-9]+  [0-9-]{10}  motd.diff  [^[:space:]]*$" "... the copy has app's patch"
is "$(cd "$T/copy/site" && php index.php | tail -1)" "motd=patched" "... and its code has the fix"

# bisect --test on a checkout of dev's head, which is broken: the seventh commit found.
B=$T/b/site
checkout "$B" dev
PB=$(free_port); apache_serve "$B" "$PB" || bail "apache would not start"
add bis "$B" "http://127.0.0.1:$PB"
is "$(page "http://127.0.0.1:$PB")" 500 "dev's head is broken (HTTP 500)"
"$TEND" instance edit bis --tag env=production >/dev/null 2>&1
out=$("$TEND" bisect start bis --good 2.0 2>&1); rc=$?
like "$rc:$out" "^2:.*bis is tagged production: bisect a copy of it" "bisect refuses an instance tagged production"
"$TEND" instance edit bis --tag env=dev >/dev/null 2>&1
out=$("$TEND" bisect good bis 2>&1); rc=$?
like "$rc:$out" "^2:.*bis: good: no bisect under way" "bisect good with none under way: exit 2"
out=$("$TEND" bisect start bis --good 2.0 --test "curl -fsS -o /dev/null http://127.0.0.1:$PB/" 2>&1); rc=$?
is "$rc" 0 "bisect start --test exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
seventh=$(git -C "$REPO" rev-parse --short dev~3)
like "$out" "bis: the first bad commit is $seventh \\(call motd\\(\\)\\); the instance is at it now" "... it names the seventh commit in one line"
is "$(git -C "$B" rev-parse --short HEAD)" "$seventh" "... the instance is at it"
wait_for "its page to show the first bad commit (PHP's opcache rechecks every 2 s)" 10 \
  page_is "http://127.0.0.1:$PB" 500
is "$(page "http://127.0.0.1:$PB")" 500 "... which is broken"
out=$("$TEND" bisect start bis --good 2.0 2>&1); rc=$?
like "$rc:$out" "^2:.*a bisect is under way" "a second start is refused"
out=$("$TEND" bisect reset bis 2>&1); rc=$?
like "$rc:$out" "^0:.*back where it was before the bisect \\(its database as it was then: snapshot [0-9]+\\)" "bisect reset goes back"
is "$(git -C "$B" symbolic-ref --short HEAD):$(subject "$B"):$(git -C "$B" status --porcelain --untracked-files=no)" \
  "dev:change 10:" "... the checkout on dev at its head, clean"

# by hand: git's midpoint, then good and bad said by the operator.
out=$("$TEND" bisect start bis --good 2.0 2>&1); rc=$?
like "$rc:$out" "^0:.*bis: at [0-9a-f]+ \\(change 5\\), 4 left: try it, then tend bisect good\\|bad bis" "bisect start by hand stops at the midpoint"
is "$(subject "$B")" "change 5" "... the instance is there"
# the operator says bad for the seventh commit and after it, good before it
steps=0
while [ "$rc" = 0 ] && ! printf '%s' "$out" | grep -q "first bad commit" && [ $steps -lt 10 ]; do
  if git -C "$B" merge-base --is-ancestor "$seventh" HEAD; then verdict=bad; else verdict=good; fi
  out=$("$TEND" bisect $verdict bis 2>&1); rc=$?
  steps=$((steps + 1))
done
like "$rc:$out" "^0:.*the first bad commit is $seventh" "bisect good/bad by hand ends at the first bad commit"
ok "... in at most 3 answers after the start (ten commits; it took $steps)" test "$steps" -le 3
"$TEND" bisect reset bis >/dev/null 2>&1
is "$(subject "$B")" "change 10" "reset after a bisect by hand"

done_testing
