#!/bin/bash
# An encrypted store: no plaintext of the site or its database on disk, backup and
# restore round trip, objects from before encryption still read, a wrong or missing
# key named as such, damage found by verify.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need mariadb wordpress
T=$(harness_tmp)
sums() { (cd "$WP_PATH" && find . -type f -exec sha256sum {} + | sort | sha256sum | cut -c1-16); }
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
# head8 HEX: the first 8 bytes of a stored object as they are on disk (loose or packed).
head8() {
  local f="$TEND_HOME/store/objects/${1:0:2}/${1:2}"
  if [ -f "$f" ]; then head -c 8 "$f"; return; fi
  set -- $(sqlite3 -separator ' ' "$TEND_HOME/store/index.db" "SELECT pack, offset FROM packed WHERE hex = '$1'")
  [ -n "$1" ] && dd if="$TEND_HOME/store/packs/$1.pack" bs=1 skip="$2" count=8 2>/dev/null
}
# A file of random bytes: zstd stores those as they are, so a plain store shows them.
head -c 4096 /dev/urandom > "$WP_PATH/canary.bin"
# canary_in_store: whether the canary's bytes are in any file of the store, as on disk.
canary_in_store() { bytes_in "$TEND_HOME/store" "$WP_PATH/canary.bin"; }

# The control: a plain store shows the site's text, so the checks below can fail.
fresh_home
"$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1
"$TEND" --quiet backup wp >/dev/null 2>&1 || bail "backup into a plain store failed"
ok "control: a plain store holds a file's bytes as they are" canary_in_store
is "$(head8 "$(q "SELECT db_object FROM snapshots WHERE id = 1")" | head -c 4 | od -An -tx1 | tr -d ' ')" "28b52ffd" \
  "control: a plain store's dump object is a plain zstd frame"
plain_home=$TEND_HOME

fresh_home
"$TEND" instance add wp --app wordpress --path "$WP_PATH" >/dev/null 2>&1
out=$("$TEND" store encrypt 2>&1); rc=$?
like "$rc:$out" "^0:the store is encrypted from now on" "store encrypt exits 0 and says so"
like "$("$TEND" store encrypt 2>&1; echo "rc=$?")" "encrypted already.*rc=2" "encrypting twice is a usage error"
like "$("$TEND" secret list 2>&1)" "tend.store.key" "the store key is in the vault"
like "$("$TEND" secret rm tend.store.key 2>&1; echo "rc=$?")" "store's key.*rc=2" "the store key cannot be removed by accident"

out=$("$TEND" backup wp 2>&1); rc=$?
is "$rc" 0 "backup into the encrypted store exits 0"
canary_in_store; is "$?" 1 "the file's bytes are nowhere in the store"
dbobj=$(q "SELECT db_object FROM snapshots WHERE id = 1")
is "$(head8 "$dbobj")" "tendenc1" "the database dump object is sealed"
like "$("$TEND" store cat "$dbobj" | head -c 100000)" "$(re_escape "$WP_POST_TITLE")" "store cat reads the dump back with the key"
out=$("$TEND" store verify 2>&1); rc=$?
like "$rc:$out" "^0:[0-9]+ objects: all intact$" "store verify reads every sealed object back"

# Round trip: damage the site, restore from the encrypted store.
s0=$(sums)
echo tampered >> "$WP_PATH/index.php"; rm "$WP_PATH/wp-links-opml.php"
"$TEND" restore wp 1 >/dev/null 2>&1; rc=$?
is "$rc" 0 "restore from the encrypted store exits 0"
is "$(sums)" "$s0" "every file is byte-identical to the snapshot"

# Damage in a sealed object is found.
some=$(q "SELECT sha256 FROM snapshot_files WHERE snapshot_id = 1 AND path = 'index.php'")
flip_object "$some"
like "$("$TEND" store verify 2>&1; echo "rc=$?")" "1 damaged.*${some:0:12} is damaged.*rc=1" "verify names the damaged sealed object"
flip_object "$some"

# The key: missing, or another one.
cp "$TEND_HOME/catalog.db" "$T/catalog.keep"
q "DELETE FROM secrets WHERE name = 'tend.store.key'"
like "$("$TEND" backup wp 2>&1; echo "rc=$?")" "no secret named tend.store.key.*rc=1" "without its key, a backup fails and names the key"
printf 'another key of 32 bytes, wrong!!' | "$TEND" secret set tend.store.key >/dev/null 2>&1
like "$("$TEND" backup wp 2>&1; echo "rc=$?")" "wrong store key.*rc=1" "with another key, a backup fails: wrong store key"
is "$(q 'SELECT count(*) FROM snapshots')" 1 "neither failed run recorded a snapshot"
cp "$T/catalog.keep" "$TEND_HOME/catalog.db"

# Turning encryption on for a store that has objects: they stay readable.
export TEND_HOME=$plain_home
out=$("$TEND" store encrypt 2>&1); rc=$?
like "$rc:$out" "^0:.*the [0-9]+ objects stored before stay unencrypted" "encrypting a used store says its objects stay as they were"
echo changed > "$WP_PATH/added-later.txt"
"$TEND" --quiet backup wp >/dev/null 2>&1; rc=$?
is "$rc" 0 "a backup after encrypt exits 0"
new=$(q "SELECT sha256 FROM snapshot_files WHERE snapshot_id = 2 AND path = 'added-later.txt'")
is "$(head8 "$new")" "tendenc1" "a file added after encrypt is stored sealed"
old=$(q "SELECT sha256 FROM snapshot_files WHERE snapshot_id = 1 AND path = 'index.php'")
is "$(head8 "$old" | head -c 4 | od -An -tx1 | tr -d ' ')" "28b52ffd" "one stored before stays a plain zstd frame" 
like "$("$TEND" --json store verify 2>&1)" '"unencrypted":[1-9][0-9]*' "verify counts the objects from before encryption"
rm "$WP_PATH/added-later.txt"; echo tampered >> "$WP_PATH/index.php"
"$TEND" restore wp 1 --files-only >/dev/null 2>&1; rc=$?
is "$rc:$(sums)" "0:$s0" "a snapshot from before encryption restores byte-identical"
rm -f "$WP_PATH/canary.bin" # the shared site as we found it
done_testing
