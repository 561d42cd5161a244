#!/bin/bash
# The store's off-site copy in S3-compatible storage (a real S3-speaking server that
# checks every request's signature): set up, kept in step by backups, read back whole,
# a sync killed at three points, forget + gc, and a manager rebuilt from the bucket and
# the vault key alone, whose restore gives the site back byte for byte.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need mariadb wordpress s3
T=$(harness_tmp)
sums() { (cd "$WP_PATH" && find . -type f -exec sha256sum {} + | sort | sha256sum | cut -c1-16); }
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
bucket_files() { find "$S3_DIR/$S3_BUCKET" -type f -name '*._S3rver_object' | wc -l; }
requests() { wc -l < "$S3_DIR/../requests.log"; }
remote() { printf '%s' "${SECRET:-$S3_SECRET}" | "$TEND" store remote "$@" --endpoint "$S3_ENDPOINT" --key-id "$S3_KEY_ID"; }
recover() { printf '%s' "$S3_SECRET" | "$TEND" store recover "$@" --endpoint "$S3_ENDPOINT" --key-id "$S3_KEY_ID"; }
# The canary: random bytes, which zstd keeps as they are, so a plain copy would show them.
head -c 4096 /dev/urandom > "$WP_PATH/canary.bin"
# canary_in DIR: whether the canary's bytes are in any file under DIR, as they are.
canary_in() { bytes_in "$1" "$WP_PATH/canary.bin"; }
rows() { wp_sql "SELECT ID, post_title, post_content, post_status FROM wp_posts ORDER BY ID" | sha256sum | cut -c1-16; }
tables() { wp_sql "SHOW TABLES" | tr '\n' ' '; }
# probe: a manager recovered from the bucket into a scratch TEND_HOME; its snapshot ids
probe() {
  local h key=$TEND_HOME/vault.key; h=$(mktemp -d "$T/probe.XXXXXX")
  printf '%s' "$S3_SECRET" | TEND_HOME=$h TEND_VAULT_KEY_FILE=$key "$TEND" --quiet store recover "$URL" \
    --endpoint "$S3_ENDPOINT" --key-id "$S3_KEY_ID" > "$h.out" 2>&1 || { echo "recover failed: $(tail -1 "$h.out")"; return; }
  sqlite3 "$h/catalog.db" "SELECT group_concat(id, ' ') FROM (SELECT id FROM snapshots ORDER BY id)"
  rm -rf "$h"
}

fresh_home
"$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1 || bail "instance add failed"
URL="s3://$S3_BUCKET/managers/one"

# --- Refused: nothing kept --------------------------------------------------------
out=$(remote "$URL" 2>&1); rc=$?
like "$rc:$out" "^2:.*not encrypted.*tend store encrypt" "a plain store gets no off-site copy (usage error)"
"$TEND" store encrypt >/dev/null 2>&1 || bail "store encrypt failed"
out=$(SECRET=wrong remote "$URL" 2>&1); rc=$?
is "$rc" 1 "wrong credentials: exit 1"
is "$(printf '%s\n' "$out" | wc -l)" 1 "wrong credentials: one line"
like "$out" "403 SignatureDoesNotMatch" "wrong credentials: the server's own words"
like "$("$TEND" store remote 2>&1)" "has no off-site copy" "wrong credentials: nothing was kept"
out=$(printf x | "$TEND" store remote "$URL" --key-id K 2>&1; echo "rc=$?")
like "$out" "usage: tend store remote.*rc=2" "no endpoint: usage"
like "$(printf x | "$TEND" store remote s3://x --endpoint "$S3_ENDPOINT" --key-id K 2>&1; echo "rc=$?")" "s3://BUCKET.*rc=2" "a bad bucket name: usage"

# --- Set up, and kept in step by a backup -----------------------------------------
out=$(remote "$URL" 2>&1); rc=$?
like "$rc:$out" "^0:.*in step" "store remote: set and brought in step at once"
like "$("$TEND" secret list 2>&1)" "tend.offsite.secret" "the secret access key is in the vault"
grep -rqF "$S3_SECRET" "$TEND_HOME"; is "$?" 1 "the secret access key is nowhere in TEND_HOME as it is"
out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 0 "backup with an off-site copy exits 0"
like "$out" "off-site: .*in step" "the backup says the copy is in step"
ok "the bucket holds the catalog" test -f "$S3_DIR/$S3_BUCKET/managers/one/catalog._S3rver_object"
ok "the bucket holds the first snapshot's manifest" test -f "$S3_DIR/$S3_BUCKET/managers/one/manifests/$(q "SELECT manifest_id FROM snapshots WHERE id = 1")._S3rver_object"
mkdir -p "$T/control" && cp "$WP_PATH/canary.bin" "$T/control/"
ok "control: the canary is found where it is" canary_in "$T/control"
canary_in "$S3_DIR"; is "$?" 1 "a file's bytes are nowhere in the bucket (sealed)"
grep -rqF "$WP_POST_TITLE" "$S3_DIR" 2>/dev/null; is "$?" 1 "the database's text is nowhere in the bucket"
before=$(requests)
ok "an unchanged backup exits 0" "$TEND" backup wp
puts=$(tail -n +"$((before + 1))" "$S3_DIR/../requests.log" | grep -c '^PUT')
like "$puts" "^[1-3]$" "an unchanged backup sends at most 3 files (the catalog; a new dump's pack and index) ($puts)"
is "$(tail -n +"$((before + 1))" "$S3_DIR/../requests.log" | grep -c '^PUT .*/\(vault\|encryption\) ')" 0 \
  "an unchanged backup sends the vault record and the key check only once"

out=$("$TEND" store verify --remote 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact; every object the snapshots need is there" "verify --remote reads every object back"

# --- A sync killed at three points: the bucket's catalog names only what is whole --
for point in batch-sent files-sent catalog-sent; do
  echo "$point $RANDOM" > "$WP_PATH/killed-$point.txt"
  last=$(probe)
  TEND_PAUSE=offsite.$point "$TEND" --quiet backup wp >/dev/null 2>&1 &
  pid=$!
  wait_for "pause at $point" 60 test -f "$TEND_HOME/paused-offsite.$point" || bail "no pause at $point"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null
  rm -f "$TEND_HOME/paused-offsite.$point"
  new=$(q "SELECT max(id) FROM snapshots")
  if [ "$point" = catalog-sent ]; then
    is "$(probe)" "$last $new" "killed at $point: the bucket's catalog names the new snapshot, whole"
  else
    is "$(probe)" "$last" "killed at $point: the bucket's catalog is the one before (no half snapshot)"
  fi
  out=$("$TEND" backup wp 2>&1); rc=$?
  like "$rc:$out" "^0:.*off-site: .*in step" "killed at $point: the next backup completes"
  after=$(q "SELECT max(id) FROM snapshots")
  is "$(probe)" "$last $new $after" "killed at $point: the bucket then names every snapshot"
done
out=$("$TEND" store verify --remote 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact; every object the snapshots need is there" "after the kills, the copy reads back whole"
# nothing in the bucket that the copy does not account for
held=$(q "SELECT count(*) FROM offsite_files")
is "$(bucket_files)" "$((held + 1))" "every file in the bucket is accounted for (and the catalog)"

# --- A manifest missing from the bucket: recover leaves its snapshots out and says so --
m=$(q "SELECT manifest_id FROM snapshots ORDER BY id LIMIT 1")
lost=$(q "SELECT group_concat(id, ' ') FROM (SELECT id FROM snapshots WHERE manifest_id = $m ORDER BY id)")
kept=$(q "SELECT group_concat(id, ' ') FROM (SELECT id FROM snapshots WHERE manifest_id <> $m ORDER BY id)")
mkdir -p "$T/aside" && mv "$S3_DIR/$S3_BUCKET/managers/one/manifests/$m._S3rver_"* "$T/aside/"
h=$(mktemp -d "$T/probe.XXXXXX") key=$TEND_HOME/vault.key
out=$(printf '%s' "$S3_SECRET" | TEND_HOME=$h TEND_VAULT_KEY_FILE=$key "$TEND" store recover "$URL" \
  --endpoint "$S3_ENDPOINT" --key-id "$S3_KEY_ID" 2>&1); rc=$?
like "$rc:$out" "^0:.*wp: snapshot ${lost%% *} left out: its manifest is not in $URL" "a manifest missing: recover says which snapshot it leaves out"
is "$(sqlite3 "$h/catalog.db" "SELECT group_concat(id, ' ') FROM (SELECT id FROM snapshots ORDER BY id)")" "$kept" \
  "a manifest missing: the other snapshots are recovered"
rm -rf "$h"; mv "$T/aside/"* "$S3_DIR/$S3_BUCKET/managers/one/manifests/"

# --- The storage out of reach: the snapshot is kept here, the next sync catches up --
kill "$S3_PID"; wait "$S3_PID" 2>/dev/null
echo "offline $RANDOM" > "$WP_PATH/offline.txt"
n0=$(q "SELECT count(*) FROM snapshots")
out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 1 "storage unreachable: the backup exits 1"
like "$(printf '%s\n' "$out" | tail -1)" "off-site copy was not brought in step: s3 .*(the snapshot is kept here; tend store sync tries again)" \
  "storage unreachable: one line says what and that the snapshot is safe"
is "$(q "SELECT count(*) FROM snapshots")" "$((n0 + 1))" "the snapshot was recorded here"
offline=$(q "SELECT max(id) FROM snapshots")
start_s3 again || bail "the S3 server did not come back"
out=$("$TEND" store sync 2>&1); rc=$?
like "$rc:$out" "^0:.*in step" "storage back: store sync brings the copy in step"
like "$(probe)" " $offline$" "the bucket's catalog names the snapshot taken while it was away"
rm -f "$WP_PATH/offline.txt"

# --- Damage in the bucket is found ------------------------------------------------
pack=$(find "$S3_DIR/$S3_BUCKET/managers/one/packs" -name '*.pack._S3rver_object' | head -1)
cp "$pack" "$T/pack.bak"
/usr/bin/python3 - "$pack" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0xFF; open(p, "wb").write(b)
PY
out=$("$TEND" store verify --remote 2>&1); rc=$?
like "$rc:$out" "^1:.*[1-9][0-9]* damaged" "a damaged pack in the bucket: verify --remote says so, exit 1"
cp "$T/pack.bak" "$pack"

# --- forget + gc: the bucket lets go too -------------------------------------------
# First two syncs killed after sending their files: the first snapshot's files (a file
# and a dump no other snapshot has) are sent by both and noted by neither; forgotten
# and collected below, they are strays in the bucket that the next sync must find.
# kill_backup_at POINT: a backup held at POINT of its sync and killed there
kill_backup_at() {
  TEND_PAUSE=offsite.$1 "$TEND" --quiet backup wp >/dev/null 2>&1 &
  local pid=$!
  wait_for "pause at $1" 60 test -f "$TEND_HOME/paused-offsite.$1" || bail "no pause at $1"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null; rm -f "$TEND_HOME/paused-offsite.$1"
}
echo "stray $RANDOM" > "$WP_PATH/stray.txt"
kill_backup_at batch-sent
rm -f "$WP_PATH"/killed-*.txt "$WP_PATH/stray.txt"
wp_sql "UPDATE wp_options SET option_value = 'changed $RANDOM' WHERE option_name = 'blogdescription'"
kill_backup_at batch-sent
files_before=$(bucket_files)
"$TEND" --quiet forget wp --keep-last 1 >/dev/null 2>&1 || bail "forget failed"
"$TEND" --quiet store gc >/dev/null 2>&1 || bail "gc failed"
out=$("$TEND" store sync 2>&1); rc=$?
like "$rc:$out" "^0:.*in step.* [1-9][0-9]* removed" "after forget and gc, sync removes what the store let go of"
files_after=$(bucket_files)
ok "the bucket holds fewer files ($files_before -> $files_after)" test "$files_after" -lt "$files_before"
is "$(probe)" "$(q "SELECT id FROM snapshots")" "the bucket's catalog names only the kept snapshot"
is "$(bucket_files)" "$(($(q "SELECT count(*) FROM offsite_files") + 1))" "no stray left in the bucket (the killed sync's file is gone too)"
out=$("$TEND" store verify --remote 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact; every object the snapshots need is there" "after gc, the copy still holds all the kept snapshot needs"

# --- The manager lost: rebuilt from the bucket and the vault key -------------------
snap=$(q "SELECT max(id) FROM snapshots")
s0=$(sums); r0=$(rows); tb0=$(tables)
cp "$TEND_HOME/vault.key" "$T/vault.key"
old_home=$TEND_HOME
fresh_home
out=$(recover "$URL" 2>&1); rc=$?
like "$rc:$out" "^2:.*vault key" "recover without the vault key: usage error"
ok "a refused recover leaves TEND_HOME empty" test -z "$(ls -A "$TEND_HOME")"
printf x | TEND_HOME=$T/other "$TEND" secret set x >/dev/null 2>&1 # another manager's vault key
out=$(TEND_VAULT_KEY_FILE=$T/other/vault.key recover "$URL" 2>&1); rc=$?
like "$rc:$out" "^1:.*wrong vault key" "recover with another vault key: named as such"
ok "no catalog is left behind" test ! -e "$TEND_HOME/catalog.db"
rm -rf "$old_home"
# a recover killed after fetching the store, before the manifests: the next one starts over
for point in recover-fetched; do
  TEND_PAUSE=offsite.$point TEND_VAULT_KEY_FILE=$T/vault.key recover "$URL" >/dev/null 2>&1 &
  pid=$!
  wait_for "pause at $point" 60 test -f "$TEND_HOME/paused-offsite.$point" || bail "no pause at $point"
  kill -KILL "$pid"; wait "$pid" 2>/dev/null; rm -f "$TEND_HOME/paused-offsite.$point"
  ok "killed at $point: the half-made TEND_HOME says so" test -f "$TEND_HOME/recovering"
done
out=$(TEND_VAULT_KEY_FILE=$T/vault.key recover "$URL" 2>&1); rc=$?
like "$rc:$out" "^0:recovered from $URL: 1 instances" "recover from the bucket and the vault key: exit 0"
like "$out" "wp +1 snapshots" "it lists the instance and its snapshots"
ok "a finished recover leaves no mark" test ! -e "$TEND_HOME/recovering"
(cd "$TEND_HOME" && find . -path "./tmp/*" -o -path "./store/tmp/*") > "$T/left.txt"; is "$(wc -l < "$T/left.txt")" 0 "nor anything in its temp folders ($(head -3 "$T/left.txt" | tr "\n" " "))"
cp "$T/vault.key" "$TEND_HOME/vault.key"
out=$("$TEND" store verify 2>&1); rc=$?
like "$rc:$out" "^0:.*all intact" "the recovered store reads back whole"
like "$("$TEND" store remote 2>&1)" "$URL at $S3_ENDPOINT" "the recovered manager keeps the same off-site copy"
out=$(printf x | TEND_VAULT_KEY_FILE=$T/vault.key "$TEND" store recover "$URL" --endpoint "$S3_ENDPOINT" --key-id "$S3_KEY_ID" 2>&1; echo "rc=$?")
like "$out" "already has a catalog.*rc=2" "recover into a TEND_HOME in use: refused"

# the site damaged, then restored from what the bucket gave back
echo tampered >> "$WP_PATH/index.php"; rm -f "$WP_PATH/canary.bin"
wp_sql "UPDATE wp_posts SET post_title = 'EDITED'; CREATE TABLE extra_plugin (x INT);"
out=$("$TEND" restore wp "$snap" 2>&1); rc=$?
is "$rc" 0 "restore of the recovered snapshot exits 0"
is "$(sums)" "$s0" "the files are byte-identical to the snapshot"
is "$(rows):$(tables)" "$r0:$tb0" "the database is as it was (rows and tables)"
out=$("$TEND" backup wp 2>&1); rc=$?
like "$rc:$out" "^0:.*off-site: .*in step" "the recovered manager's next backup keeps the copy in step"
rm -f "$WP_PATH/canary.bin"
done_testing
