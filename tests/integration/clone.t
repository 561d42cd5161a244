#!/bin/bash
# Copies of an instance over SSH: a WordPress A cloned to a blank B (another directory,
# database and URL, served by a second PHP server) serves A's posts with B's URL in
# every row and serialized options intact, A untouched; a re-clone sends only the file
# that changed; B answers 503 while a clone runs; mirror picks by age; migrate-data
# brings data and leaves code; a Tiki-shaped app is cloned with its db/local.php
# rewritten and its .htaccess put back byte for byte after maintenance.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP blank needs MariaDB's root over its socket (run as root)"; exit 0; }
get() { curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' "$1"; }
serve() { # serve DIR PORT: PHP's server for a copy, stopped with the harness
  php -S "127.0.0.1:$2" -t "$1" > "$T/php-$2.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for "php on $2" 10 _port_open "$2"
}

# A: a WordPress of its own (the harness's files and database, copied), at the harness URL.
A=$T/a/site
mkdir -p "$T/a" && cp -a "$WP_PATH" "$A"
sql -e "CREATE DATABASE wp_a; GRANT ALL ON wp_a.* TO '$MARIADB_USER'@'127.0.0.1';"
mariadb-dump --no-defaults -S "$MARIADB_SOCKET" -u root "$MARIADB_DB" | sql wp_a
sed -i "s/'$MARIADB_DB'/'wp_a'/" "$A/wp-config.php"
# A serialized option holding A's URL, nested once more inside itself.
php -r '$u = $argv[1]; echo serialize(["home" => "$u/", "list" => ["$u/a", "x"], "inner" => serialize(["$u/b"])]);' "$WP_URL" > "$T/ser"
sql wp_a -e "INSERT INTO wp_options (option_name, option_value) VALUES ('tend_links', '$(sed "s/'/''/g" "$T/ser")')"
printf '%s' "$MARIADB_PASSWORD" | "$TEND" secret set wp-a-db >/dev/null 2>&1
"$TEND" instance add a --app wordpress --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$A" --url "$WP_URL" >/dev/null 2>&1
"$TEND" host trust a >/dev/null 2>&1
a_config=$(sha256sum < "$A/wp-config.php")

# B: registered, then made blank by tend: its folder, database and user.
PB=$(free_port)
B=$T/b/site
B_URL=http://127.0.0.1:$PB
"$TEND" instance add b --app wordpress --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$B" --url "$B_URL" \
  --db "mysql://wp_b_user@127.0.0.1:$MARIADB_PORT/wp_b" >/dev/null 2>&1
out=$("$TEND" blank b --admin "$MARIADB_ADMIN" 2>&1); rc=$?
is "$rc" 0 "blank makes B's folder, database and user"
[ "$rc" = 0 ] || diag "$out"
is "$(sql -e "SELECT count(*) FROM mysql.user WHERE user = 'wp_b_user'"):$(test -d "$B" && echo dir)" "1:dir" "... the user exists, and the folder"
like "$("$TEND" secret list)" "b.db-password" "... its password is in the vault"
mkdir -p "$B/x"
like "$("$TEND" blank b --admin "$MARIADB_ADMIN" 2>&1; echo "rc=$?")" "b: .*/b/site is not empty; blank makes new instances only.*rc=1" \
  "blank refuses a web root that is not empty"
rmdir "$B/x"

out=$("$TEND" --json clone a b 2>"$T/clone.err"); rc=$?
is "$rc" 0 "clone a b exits 0"
like "$out" '"sent_files":0[,}]' "... sending no file over the link: B's host has A's tree"
like "$out" '"copied_files":[1-9]' "... whose files it copied there, each checked against the snapshot"
like "$out" '"copied_hashed_files":0[,}]' "... none read again: A's files, untouched since the snapshot's listing (by ctime), vouch for their copies"
[ "$rc" = 0 ] || diag "$(tail -5 "$T/clone.err")"
# compare A with its fresh clone B: exactly the rows that held A's URL differ, and
# wp-config.php; B alone has tend's no-mail plugin.
out=$("$TEND" --json compare a b 2>"$T/cmp.err"); rc=$?
is "$rc" 3 "compare a b finds differences: exit 3"
[ "$rc" = 3 ] || diag "$(tail -3 "$T/cmp.err")"
printf '%s' "$out" > "$T/cmp.json"
py() { python3 -c "import json,sys; r = json.load(open('$T/cmp.json')); $1"; }
is "$(py 'print(" ".join(d["path"] for d in r["files"]["differ"]))')" "wp-config.php" "the files that differ: wp-config.php"
is "$(py 'print(" ".join(r["files"]["only_b"]))'):$(py 'print(len(r["files"]["only_a"]))')" \
  "wp-content/mu-plugins wp-content/mu-plugins/tend-no-mail.php:0" "... B alone has the no-mail plugin, A nothing of its own"
mariadb-dump --no-defaults -S "$MARIADB_SOCKET" -u root --skip-extended-insert --skip-triggers wp_a \
  | grep -F -- "$WP_URL" | sed -E 's/^INSERT INTO `([^`]+)`.*/\1/' | sort | uniq -c | awk '{ print $2 "=" $1 }' > "$T/expected"
is "$(py 'print("\n".join("%s=%d" % (t["name"], t["differ"]) for t in r["db"]["tables"] if t["differ"]))')" "$(cat "$T/expected")" \
  "the rows that differ are exactly those that held A's URL, table by table"
is "$(py 'print(sum(t["only_a"] + t["only_b"] for t in r["db"]["tables"]))')" 0 "... and no row is only on one side"
sql wp_b -e "UPDATE wp_terms SET name = 'Changed in B' WHERE term_id = 1"
out=$("$TEND" compare a b --db --show wp_terms 2>&1)
like "$out" "wp_terms: 1 row differs \(1\)" "after editing one row of B, exactly that row more"
like "$out" "\+ b \(1,'Changed in B'," "--show TABLE prints the differing rows"
sql wp_b -e "INSERT INTO wp_posts (post_author, post_content, post_title, post_excerpt, to_ping, pinged, post_content_filtered)
  VALUES (1, 'only in B', 'A post of B', '', '', '', '')"
new_id=$(sql wp_b -e "SELECT max(ID) FROM wp_posts")
like "$("$TEND" compare a b --db 2>&1)" "wp_posts: 4 rows differ \(1 2 3 4\), 1 only in b \($new_id\)" \
  "a post added in B is exactly one row more, only in B"
like "$("$TEND" compare a b --files --show wp-config.php 2>&1)" "\-\-\- a:wp-config.php.*\+\+\+ b:wp-config.php.*wp_b" \
  "--show PATH prints a unified diff"

serve "$B" "$PB"
code=$(get "$B_URL/")
like "$code:$(cat "$T/body")" "^200:.*$(re_escape "$WP_POST_TITLE")" "B serves A's post"
like "$(cat "$T/body")" "$(re_escape "$B_URL")" "... with B's URL in its links"
unlike "$(cat "$T/body")" "$(re_escape "$WP_URL")" "... and never A's"
is "$(mariadb-dump --no-defaults -S "$MARIADB_SOCKET" -u root wp_b | grep -c -- "$WP_URL")" 0 "no row of B's database holds A's URL"
is "$(sql wp_b -e "SELECT option_value FROM wp_options WHERE option_name IN ('siteurl', 'home')" | sort -u)" "$B_URL" "siteurl and home are B's"
val=$(sql wp_b -e "SELECT HEX(option_value) FROM wp_options WHERE option_name = 'tend_links'")
is "$(php -r '$v = unserialize(hex2bin($argv[1])); echo $v === false ? "BROKEN" : $v["home"] . " " . $v["list"][0] . " " . unserialize($v["inner"])[0];' "$val")" \
  "$B_URL/ $B_URL/a $B_URL/b" "a serialized option, nested too, unserializes with B's URL"
like "$(grep DB_NAME "$B/wp-config.php")" "'wp_b'" "B's wp-config.php names B's database"
unlike "$(cat "$B/wp-config.php")" "$(re_escape "$MARIADB_PASSWORD")" "... and not A's password"
ok "B sends no mail (tend's must-use plugin)" test -f "$B/wp-content/mu-plugins/tend-no-mail.php"
is "$(sha256sum < "$A/wp-config.php")" "$a_config" "A's files are untouched"
is "$(sql wp_a -e "SELECT option_value FROM wp_options WHERE option_name = 'siteurl'")" "$WP_URL" "... and so is A's database"
ok "no maintenance page is left on B" test ! -e "$B/.maintenance"

# Again, after one file of A changed: only that one crosses. B answers 503 meanwhile.
a_readme0=$(sha256sum < "$A/readme.html")
echo "a change $RANDOM" >> "$A/readme.html"
TEND_PAUSE=restore.swapped "$TEND" --json clone a b > "$T/reclone.json" 2>"$T/reclone.err" &
pid=$!
wait_for "the re-clone to reach the swap" 120 test -e "$TEND_HOME/paused-restore.swapped"
code=$(get "$B_URL/")
is "$code" 503 "B answers 503 while it is being cloned"
like "$(cat "$T/head")" "Retry-After: 600" "... with Retry-After"
rm -f "$TEND_HOME/paused-restore.swapped"
wait "$pid"; rc=$?
is "$rc" 0 "the re-clone exits 0"
like "$(cat "$T/reclone.json")" '"sent_files":0,.*"copied_files":1[,}]|"copied_files":1,.*"sent_files":0[,}]' \
  "... and copied only the changed file, on the host"
like "$(cat "$T/reclone.json")" '"hashed_files":0[,}]' "... reading none of B's files: the last clone's record vouches for them"
like "$(cat "$T/reclone.json")" '"known_files":[1-9]' "... (known unread as tend wrote them)"
is "$(get "$B_URL/")" 200 "B is back after the clone"
ok "... its maintenance file gone" test ! -e "$B/.maintenance"
is "$(tail -c 100 "$B/readme.html")" "$(tail -c 100 "$A/readme.html")" "... with A's change"

# A against one of its own snapshots: read from the store, the server asked only for A.
out=$("$TEND" compare a a@1 2>&1); rc=$?
like "$rc:$out" "^3:.*files: 1 difference.*differ   readme.html \(content\).*database: the same" \
  "compare a a@1: the file changed since, and the same database"
is "$("$TEND" compare a@1 a@1 >/dev/null 2>&1; echo $?)" 0 "a snapshot compared with itself: exit 0"

# Files of B changed behind tend's back, size and mtime put back, one rewritten in place
# (its inode kept: only its ctime gives it away) and one replaced: both are sent again.
f=$B/wp-includes/version.php g=$B/wp-includes/load.php
cp -p "$f" "$T/version.php" && sed -i '1s/<?php/<?PHP/' "$f" && touch -r "$T/version.php" "$f"
cp -p "$g" "$T/load.php" && inode=$(stat -c %i "$g")
printf '<?PHP' | dd of="$g" conv=notrunc status=none && touch -r "$T/load.php" "$g"
is "$(stat -c %i:%s:%Y "$g")" "$inode:$(stat -c %s:%Y "$T/load.php")" "(load.php rewritten in place, inode, size and mtime as before)"
last=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT max(id) FROM snapshots")
out=$("$TEND" --json clone a b --snapshot "$last" 2>&1); rc=$?
like "$rc:$out" '^0:.*"copied_files":2[,}]' "a re-clone replaces the files tampered with under their old size and mtime"
like "$out" '"hashed_files":2[,}]' "... having read just those two on B's host"
is "$(sha256sum < "$f")" "$(sha256sum < "$A/wp-includes/version.php")" "... and B has A's content again"
is "$(sha256sum < "$g")" "$(sha256sum < "$A/wp-includes/load.php")" "... in both"
# An older snapshot: A's readme.html has moved on since, so its copy on the host does not
# match the snapshot and is sent instead.
first=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT min(s.id) FROM snapshots s JOIN instances i ON i.id = s.instance_id WHERE i.name = 'a'")
out=$("$TEND" --json clone a b --snapshot "$first" 2>&1); rc=$?
like "$rc:$out" '^0:.*"sent_files":1[,}]' "a clone of an older snapshot sends the one file A has changed since"
is "$(sha256sum < "$B/readme.html")" "$a_readme0" "... and B has the snapshot's readme.html, not A's newer one"
"$TEND" --quiet clone a b --snapshot "$last" >/dev/null 2>&1 || bail "clone back to the newest snapshot failed"

# A file of A changed in place since the snapshot, size and mtime put back: its copy on
# the host cannot be vouched for by A (its ctime moved), is read, found wrong and sent.
v=$A/wp-includes/version.php
cp -p "$v" "$T/a-version.php" && printf '<?PHP' | dd of="$v" conv=notrunc status=none && touch -r "$T/a-version.php" "$v"
rm "$B/wp-includes/version.php"
out=$("$TEND" --json clone a b --snapshot "$last" 2>&1); rc=$?
like "$rc:$out" '^0:.*"sent_files":1[,}]' "a clone whose source changed a file in place since the snapshot sends that file"
like "$out" '"copied_hashed_files":1[,}]' "... having read its copy on the host (A's ctime gave the change away)"
is "$(sha256sum < "$B/wp-includes/version.php")" "$(sha256sum < "$T/a-version.php")" "... and B has the snapshot's content, not A's"
cp -p "$T/a-version.php" "$v"

# mirror: the newest snapshot at least the lag old, by a test clock.
"$TEND" instance link b --mirror-of a --lag 1d >/dev/null 2>&1
now=$(date +%s)
ids=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT id FROM snapshots WHERE instance_id = (SELECT id FROM instances WHERE name = 'a') ORDER BY id")
first=$(echo "$ids" | head -1); second=$(echo "$ids" | sed -n 2p)
sqlite3 "$TEND_HOME/catalog.db" "UPDATE snapshots SET started_at = $((now - 3 * 86400)) WHERE id = $first;
  UPDATE snapshots SET started_at = $((now - 36 * 3600)) WHERE id = $second"
like "$("$TEND" --json mirror b --dry-run 2>/dev/null)" "\"snapshot\":$second[,}]" "mirror with lag 1d picks the snapshot 36 h old, not the newest"
like "$("$TEND" --json mirror b --dry-run --now $((now - 2 * 86400)) 2>/dev/null)" "\"snapshot\":$first[,}]" \
  "... and, two days ago, the one 3 days old"
like "$("$TEND" mirror b --now $((now - 5 * 86400)) 2>&1; echo "rc=$?")" "no snapshot of a is 1d old yet: the oldest is from .*rc=1" \
  "... and says so when none is old enough"
out=$("$TEND" --json mirror b --now $((now - 2 * 86400)) 2>/dev/null); rc=$?
like "$rc:$out" "^0:.*\"changed\":true" "mirror syncs B to the snapshot it picked"
like "$("$TEND" mirror b --now $((now - 2 * 86400)) 2>&1)" "already at snapshot $first of a" "... and a second run has nothing to do"

# migrate-data: A's posts and uploads into B; B's code stays B's.
wp_a() { sql wp_a -e "$1"; }
wp_a "UPDATE wp_posts SET post_title = 'Migrated title $$' WHERE ID = 1"
mkdir -p "$A/wp-content/uploads/2026" && echo upload > "$A/wp-content/uploads/2026/new.txt"
echo "<?php // B's own code" > "$B/wp-content/b-marker.php"
marker=$(sha256sum < "$B/wp-content/b-marker.php")
out=$("$TEND" --json migrate-data a b 2>"$T/mig.err"); rc=$?
is "$rc" 0 "migrate-data a b exits 0"
[ "$rc" = 0 ] || diag "$(tail -3 "$T/mig.err")"
is "$(sql wp_b -e "SELECT post_title FROM wp_posts WHERE ID = 1")" "Migrated title $$" "B has A's posts now"
is "$(cat "$B/wp-content/uploads/2026/new.txt" 2>&1)" "upload" "... and A's uploads"
is "$(sha256sum < "$B/wp-content/b-marker.php" 2>&1)" "$marker" "... and B's code is untouched"
is "$(sql wp_b -e "SELECT option_value FROM wp_options WHERE option_name = 'home'")" "$B_URL" "... its URL still B's"

# Production is not overwritten unless asked by name, and a refusal touches nothing on
# either side: no backup of A, no maintenance page on B (B's own .maintenance kept).
"$TEND" instance edit b --tag env=production >/dev/null 2>&1
echo '<?php $upgrading = 0; // the operator'"'"'s own' > "$B/.maintenance"
bstate() { (cd "$B" && find . -printf '%p %m %s %T@ %l\n' | sort; find . -type f -exec sha256sum {} + | sort) | sha256sum | cut -c1-16; }
brows() { sql wp_b -e "SELECT * FROM wp_posts ORDER BY ID" | sha256sum | cut -c1-16; }
snaps() { sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots"; }
"$TEND" --quiet backup b >/dev/null 2>&1 || bail "backup of b failed"
b0=$(bstate); r0=$(brows); n0=$(snaps)
for argv in "clone a b" "clone a b --snapshot $second" "migrate-data a b" "restore a --to b"; do
  like "$("$TEND" $argv 2>&1; echo "rc=$?")" "b is tagged production: add --yes-overwrite-production.*rc=2" \
    "$argv onto an instance tagged production is refused (exit 2)"
done
is "$(bstate):$(brows):$(snaps)" "$b0:$r0:$n0" "... and B's files (its own .maintenance too) and rows are byte-identical, no snapshot was made"
out=$("$TEND" restore b </dev/null 2>&1); rc=$?
like "$rc:$out" "^2:.*b is tagged production: add --yes-overwrite-production to restore over it" "an in-place restore of production without a terminal needs the flag (exit 2)"
out=$(printf 'nope\n' | script -qec "'$TEND' restore b" /dev/null 2>&1); rc=$?
like "$out" "Type b to go on: .*not confirmed; nothing restored" "at a terminal it asks, and a wrong answer restores nothing"
is "$(bstate):$(brows)" "$b0:$r0" "... B untouched"
rm -f "$B/.maintenance"
ok "... and goes with --yes-overwrite-production" "$TEND" clone a b --snapshot "$second" --yes-overwrite-production

# A Tiki-shaped app: detected as tiki, cloned with db/local.php rewritten for the copy.
TA=$T/tiki-a; TB=$T/tiki-b
cp -a tests/fixtures/tiki "$TA" && mkdir -p "$TA/db"
sql -e "CREATE DATABASE tiki_a; CREATE USER 'tiki_a'@'127.0.0.1' IDENTIFIED BY 'ta pw'; GRANT ALL ON tiki_a.* TO 'tiki_a'@'127.0.0.1';"
sql tiki_a < tests/fixtures/tiki/schema.sql
TA_URL=http://tiki-a.example.test; TB_URL=http://tiki-b.example.test
links=$(php -r 'echo serialize(["links" => [$argv[1] . "/tiki-index.php", $argv[1] . "/about"]]);' "$TA_URL")
sql tiki_a -e "INSERT INTO tiki_preferences VALUES ('tikiIndex_url', '$TA_URL/tiki-index.php'), ('tend_links', '$links');
  INSERT INTO tiki_pages (pageName, data) VALUES ('HomePage', 'See $TA_URL/about');"
printf '<?php\n$db_tiki = "mysqli";\n$host_tiki = "127.0.0.1:%s";\n$user_tiki = "tiki_a";\n$pass_tiki = "ta pw";\n$dbs_tiki = "tiki_a";\n$client_charset = "utf8mb4";\n' \
  "$MARIADB_PORT" > "$TA/db/local.php"
"$TEND" instance add tiki-a --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TA" --url "$TA_URL" >/dev/null 2>&1
"$TEND" instance add tiki-b --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TB" --url "$TB_URL" \
  --db "mysql://tiki_b@127.0.0.1:$MARIADB_PORT/tiki_b" >/dev/null 2>&1
like "$("$TEND" check tiki-a 2>&1)" "app: +tiki 27.1" "the fixture is detected as Tiki 27.1"
ok "blank tiki-b" "$TEND" blank tiki-b --admin "$MARIADB_ADMIN"
out=$("$TEND" clone tiki-a tiki-b 2>&1); rc=$?
is "$rc" 0 "clone tiki-a tiki-b exits 0"
[ "$rc" = 0 ] || diag "$out"
like "$(cat "$TB/db/local.php")" "\\\$dbs_tiki = 'tiki_b';" "tiki-b's db/local.php names its own database"
like "$(cat "$TB/db/local.php")" "\\\$user_tiki = 'tiki_b';" "... and user"
unlike "$(cat "$TB/db/local.php")" "ta pw" "... and not tiki-a's password"
is "$(cd "$TB" && php index.php)" "url=$TB_URL/tiki-index.php
page=HomePage
links=$TB_URL/tiki-index.php,$TB_URL/about" "tiki-b's code reads tiki-b's database: its URL, serialized links intact"
is "$(cd "$TA" && php index.php | head -1)" "url=$TA_URL/tiki-index.php" "tiki-a is untouched"

# Maintenance for Tiki: a 503 page and a rewrite rule; the site's .htaccess back byte for byte.
# From here tiki-b is served by Apache, at the URL tend checks the page at.
PT=$(free_port); apache_serve "$TB" "$PT" || bail "apache would not start"
"$TEND" instance edit tiki-b --url "http://127.0.0.1:$PT" >/dev/null 2>&1
before=$(stat -c '%i %s %Y' "$TB/.htaccess"; sha256sum < "$TB/.htaccess")
out=$("$TEND" maintenance tiki-b on 2>&1); rc=$?
like "$rc:$out" "^0:.*maintenance page on: http://127.0.0.1:$PT answers 503" "maintenance on, seen by tend over HTTP"
like "$(head -1 "$TB/.htaccess")" "^# tend maintenance" "the .htaccess sends every request to the maintenance page"
is "$(get "http://127.0.0.1:$PT/tiki-index.php?page=HomePage")" 503 "Apache sends every request to the maintenance page: 503"
like "$(cat "$T/head")" "Retry-After: 600" "... with Retry-After"
like "$(cat "$T/body")" "Down for maintenance" "... and the page"
ok "maintenance off" "$TEND" maintenance tiki-b off
is "$(get "http://127.0.0.1:$PT/")" 200 "after off, Apache serves the site again"
like "$(cat "$T/body")" "url=$(re_escape "$TB_URL")" "... from tiki-b's database"
is "$(stat -c '%i %s %Y' "$TB/.htaccess"; sha256sum < "$TB/.htaccess")" "$before" ".htaccess is back, byte for byte (same inode)"
ok "the page is gone" test ! -e "$TB/tend-maintenance.php"

# Tiki profiles are applied by Tiki's own console.php; twice is the same as once.
ok "a Tiki profile is applied through console.php" "$TEND" profile tiki-b Demo_Profile
ok "... and again" "$TEND" profile tiki-b Demo_Profile
is "$(sql tiki_b -e "SELECT name, value FROM tiki_preferences WHERE name LIKE 'profile_%'")" \
  "profile_Demo_Profile	profiles.tiki.org" "... one profile row, from the default repository"
like "$("$TEND" profile tiki-b "" 2>&1; echo "rc=$?")" "Tiki profile : Not enough arguments.*rc=1" "a Tiki error is shown in one line"

# A generic app on a database server: tend knows no config file of it, so a copy of its
# files would still name the source's database. Every copy of files is refused before
# anything is done on either side (no backup of the source, nothing made for the target).
gsrc=$T/shop-src; mkdir -p "$gsrc"
printf '<?php\ndefine("SHOP_DSN", "mysql://shop:secret@127.0.0.1/shop");\n' > "$gsrc/settings.php"
"$TEND" instance add gsrc --app generic --path "$gsrc" --db "mysql://shop@127.0.0.1:$MARIADB_PORT/shop" >/dev/null 2>&1
"$TEND" instance add gdst --app generic --path "$T/shop-dst" --db "mysql://shop_copy@127.0.0.1:$MARIADB_PORT/shop_copy" >/dev/null 2>&1
gsnaps=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")
for argv in "clone gsrc gdst" "clone gsrc gdst --files-only"; do
  out=$("$TEND" --quiet $argv 2>&1); rc=$?
  like "$rc:$out" "^2:tend: gdst: check: a copy of gsrc's files would still name gsrc's database .*--config FILE.*nothing was changed" "$argv is refused (exit 2), saying why"
done
ok "... and the target was not touched" test ! -e "$T/shop-dst"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM snapshots")" "$gsnaps" "... nor the source backed up"

# migrate-data of a generic app moves its declared data folders (--data-dir) and its
# database; its code and config stay the target's.
mksite() { mkdir -p "$1/data" "$1/uploads"; echo "<?php echo '$2';" > "$1/index.php"; echo "name=$2" > "$1/settings.ini"; }
mksite "$T/gn-src" source; mksite "$T/gn-dst" target
echo 'a photo' > "$T/gn-src/uploads/photo.txt"; mkdir -p "$T/gn-src/uploads/2026"; echo 'deep' > "$T/gn-src/uploads/2026/x.txt"
sqlite3 "$T/gn-src/data/app.db" "CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('from production');"
sqlite3 "$T/gn-dst/data/app.db" "CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('old dev data');"
"$TEND" instance add gn-src --app generic --path "$T/gn-src" --db "sqlite://$T/gn-src/data/app.db" --data-dir uploads/ >/dev/null 2>&1
"$TEND" instance add gn-dst --app generic --path "$T/gn-dst" --db "sqlite://$T/gn-dst/data/app.db" --data-dir uploads >/dev/null 2>&1
like "$("$TEND" instance show gn-src)" "data dirs: +uploads" "a declared data folder shows"
like "$("$TEND" instance add bad --app generic --path /x --data-dir ../up 2>&1; echo "rc=$?")" "--data-dir \"\.\./up\": a folder inside the web root.*rc=2" \
  "a relative data folder that climbs out of the web root is refused (an absolute one says where it is)"
out=$("$TEND" --quiet migrate-data gn-src gn-dst 2>&1); rc=$?
is "$rc" 0 "migrate-data of a generic app"
[ "$rc" = 0 ] || diag "$out"
is "$(cat "$T/gn-dst/uploads/photo.txt" "$T/gn-dst/uploads/2026/x.txt")" "a photo
deep" "... moves its declared data folder"
is "$(sqlite3 "$T/gn-dst/data/app.db" "SELECT body FROM notes")" "from production" "... and its database"
is "$(cat "$T/gn-dst/index.php" "$T/gn-dst/settings.ini")" "<?php echo 'target';
name=target" "... and leaves the target's code and config alone"

# pre-dogfood: production's data, then the update step (a command, until tend's update lands).
"$TEND" instance link tiki-b --pre-dogfood-of tiki-a >/dev/null 2>&1
sql tiki_a -e "UPDATE tiki_pages SET pageName = 'FreshPage' WHERE page_id = 1"
out=$("$TEND" pre-dogfood tiki-b --update "sed -i s/27.1/28.0/ lib/setup/twversion.class.php" 2>&1); rc=$?
is "$rc" 0 "pre-dogfood tiki-b exits 0"
[ "$rc" = 0 ] || diag "$out"
like "$("$TEND" check tiki-b 2>&1)" "app: +tiki 28.0" "tiki-b runs the updated code"
is "$(cd "$TB" && php index.php | sed -n 2p)" "page=FreshPage" "... on production's data of today"
ok "... and its maintenance page is lifted" test ! -e "$TB/tend-maintenance.php"
n_before=$("$TEND" --json snapshots tiki-b 2>/dev/null | grep -o '"id":' | wc -l)
out=$("$TEND" --quiet pre-dogfood tiki-b --update "sed -i s/27.1/29.0/ lib/setup/twversion.class.php; exit 3" 2>&1); rc=$?
like "$rc:$out" "^1:tend: pre-dogfood: tiki-b: update: exit 3; undone: restore of snapshot [0-9]+ \(files and database\), maintenance page off$" \
  "a failing --update exits 1, names its step and says what was undone"
is "$(( $("$TEND" --json snapshots tiki-b 2>/dev/null | grep -o '"id":' | wc -l) - n_before ))" 1 \
  "... the copy was backed up before the command ran"
like "$("$TEND" check tiki-b 2>&1)" "app: +tiki 27.1" "... and is back as it was copied (the command's change undone)"
ok "... its maintenance page lifted" test ! -e "$TB/tend-maintenance.php"

# pre-dogfood of a source tend could not update: refused before anything is cloned.
n_before=$("$TEND" --json snapshots tiki-a 2>/dev/null | grep -o '"id":' | wc -l)
out=$("$TEND" --quiet pre-dogfood tiki-b 2>&1); rc=$?
like "$rc:$out" "^2:tend: tiki-b: update check: .* is no git or Subversion checkout .*nothing was changed" \
  "pre-dogfood without --update of a source that is no checkout is refused (exit 2)"
is "$("$TEND" --json snapshots tiki-a 2>/dev/null | grep -o '"id":' | wc -l)" "$n_before" "... before the source's backup"

done_testing
