#!/bin/bash
# tend destroy: a copy that has served goes whole (web root, data folder outside it,
# MariaDB database and user, its secret, catalog rows), after its archive is written
# and read back; the archive brings it back with tend import. A dry run, a production
# instance and an unconfirmed run change nothing; a secret another instance uses stays.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb
fresh_home
T=$(harness_tmp)/destroy
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP blank and destroy need MariaDB's root over its socket (run as root)"; exit 0; }
mkdir -p "$T"
DB="127.0.0.1:$MARIADB_PORT"
add() { # add NAME PATH [OPTIONS...]: a generic instance over the harness sshd
  local name=$1 path=$2; shift 2
  "$TEND" instance add "$name" --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$path" "$@" >/dev/null 2>&1 &&
  "$TEND" host trust "$name" >/dev/null 2>&1
}
users() { sql -e "SELECT count(*) FROM mysql.user WHERE user = '$1'"; }
dbs() { sql -e "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '$1'"; }
state() { sqlite3 "$TEND_HOME/catalog.db" .dump; find "$T" -printf '%p %s\n' | sort; sql -e "SELECT user FROM mysql.user ORDER BY 1; SHOW DATABASES"; }

add old "$T/old/site" --db "mysql://old_u@$DB/old_db" --data-dir "$T/old/files"
ok "blank old: a database, its user and a password in the vault" "$TEND" blank old --admin "$MARIADB_ADMIN"
pw=$("$TEND" secret get old.db-password)
mkdir -p "$T/old/files"
printf '<?php echo "old";\n' > "$T/old/site/index.php"
printf 'an upload\n' > "$T/old/files/upload.txt"
mariadb --no-defaults -h 127.0.0.1 -P "$MARIADB_PORT" -u old_u -p"$pw" old_db \
  -e "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'kept in the archive')"
"$TEND" --quiet backup old >/dev/null 2>&1 || bail "backup of old failed"
add other "$T/other" --db "mysql://old_u@$DB/old_db" --db-password-secret old.db-password
mkdir -p "$T/other"

# 1. refusals and a dry run change nothing.
"$TEND" instance edit old --tag env=retired >/dev/null 2>&1
before=$(state)
out=$("$TEND" --quiet destroy old --dry-run --admin "$MARIADB_ADMIN" 2>&1); rc=$?
is "$rc" 0 "destroy --dry-run exits 0"
out=$("$TEND" destroy old --dry-run --admin "$MARIADB_ADMIN" 2>&1)
like "$out" "old: files: +$T/old/site .*old: files: +$T/old/files .*old: database: mysql:old_u@.*/old_db, and its user 'old_u'@'127.0.0.1'.*old: catalog:" \
  "... and lists the web root, the data folder, the database and its user, the catalog"
unlike "$out" "secret: +old.db-password" "... not the secret another instance uses"
out=$("$TEND" --quiet destroy old --admin "$MARIADB_ADMIN" 2>&1 < /dev/null); rc=$?
is "$rc:$out" "2:tend: destroy old: not confirmed (run it at a terminal, or add the global --yes); nothing was changed" \
  "without a terminal or --yes it is refused (exit 2)"
"$TEND" instance edit old --tag env=production >/dev/null 2>&1
out=$("$TEND" --quiet --yes destroy old --admin "$MARIADB_ADMIN" 2>&1); rc=$?
like "$rc:$out" "^2:tend: old is tagged production: tend destroys no production instance" "a production instance is never destroyed"
"$TEND" instance edit old --tag env=retired >/dev/null 2>&1
is "$(state)" "$before" "none of these changed the catalog, the files or the database server"
out=$("$TEND" --quiet --yes destroy old --admin "mysql://root@localhost/mysql?socket=$T/no-such.sock" 2>&1); rc=$?
like "$rc:$out" "^1:.*cannot log in to drop old's database: .*nothing was changed" \
  "a destroy whose database cannot be dropped fails first (exit 1)"
ok "... before any archive is made" sh -c "! ls '$TEND_HOME'/destroyed/old-*.tar.zst >/dev/null 2>&1"
is "$(ls "$T/old/site" | wc -l):$(dbs old_db):$(users old_u)" "1:1:1" "... the files, database and user still there"

# 2. destroy: archive first, then everything goes.
"$TEND" secret set lonely.secret <<<"x" >/dev/null 2>&1
"$TEND" instance edit old --ssh-password-secret lonely.secret >/dev/null 2>&1
out=$("$TEND" --yes destroy old --admin "$MARIADB_ADMIN" --archive "$T/old.tar.zst" 2>&1); rc=$?
is "$rc" 0 "destroy old exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
ok "its web root is gone" test ! -e "$T/old/site"
ok "... its data folder outside it too" test ! -e "$T/old/files"
is "$(dbs old_db):$(users old_u)" "0:0" "... its database and its database user are dropped"
ok "... its own secret is out of the vault" sh -c "! '$TEND' secret get lonely.secret >/dev/null 2>&1"
ok "... the secret 'other' uses stays" "$TEND" secret get old.db-password
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM instances WHERE name = 'old'")" 0 "... and it is out of the catalog"
is "$(stat -c %a "$T/old.tar.zst")" 600 "the archive is 0600 (it holds the database)"
like "$(tar -xOf "$T/old.tar.zst" db/old_db.sql)" "kept in the archive" "... and holds the database's rows"
is "$(tar -xOf "$T/old.tar.zst" outside"$T"/old/files/upload.txt)" "an upload" "... and the data folder's files"

# 3. the archive brings it back.
add back "$T/back" --db "mysql://back_u@$DB/back_db" --data-dir "$T/old/files"
"$TEND" blank back --admin "$MARIADB_ADMIN" >/dev/null 2>&1
ok "tend import takes the archive in" "$TEND" --quiet import back "$T/old.tar.zst"
ok "... and restore puts it on a new instance" "$TEND" --quiet restore back
is "$(cat "$T/back/index.php"):$(cat "$T/old/files/upload.txt")" '<?php echo "old";:an upload' "... files and data folder back"

# 4. a destroy killed midway is finished by the next run, with the same archive.
for point in destroy.dropped destroy.removed; do
  n=k${point#destroy.}
  add "$n" "$T/$n/site" --db "mysql://${n}_u@$DB/${n}_db" --data-dir "$T/$n/files"
  "$TEND" blank "$n" --admin "$MARIADB_ADMIN" >/dev/null 2>&1
  mkdir -p "$T/$n/files" && echo "$n" > "$T/$n/site/index.php" && echo up > "$T/$n/files/u"
  TEND_PAUSE=$point "$TEND" --yes destroy "$n" --admin "$MARIADB_ADMIN" --archive "$T/$n.tar.zst" >"$T/$n.out" 2>&1 &
  pid=$!
  wait_for "destroy to reach $point" 120 test -e "$TEND_HOME/paused-$point"
  kill -9 "$pid"; wait "$pid" 2>/dev/null; rm -f "$TEND_HOME/paused-$point"
  is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM instances WHERE name = '$n'")" 1 "killed at $point: $n is still in the catalog"
  archived=$(stat -c %Y "$T/$n.tar.zst")
  out=$("$TEND" --yes destroy "$n" --admin "$MARIADB_ADMIN" 2>&1); rc=$?
  like "$rc:$out" "^0:.*a destroy was stopped after its archive $T/$n.tar.zst was read back: finishing it" \
    "... the next run finishes it (exit 0)"
  unlike "$out" "$n: backup" "... without a new backup of what is half gone"
  is "$(test -e "$T/$n" && find "$T/$n" -type f | wc -l || echo 0):$(dbs ${n}_db):$(users ${n}_u):$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM instances WHERE name = '$n'")" \
    "0:0:0:0" "... files, database, user and catalog rows gone"
  is "$(stat -c %Y "$T/$n.tar.zst"):$(tar -xOf "$T/$n.tar.zst" files/index.php)" "$archived:$n" "... and the first run's archive is the way back"
done
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM meta WHERE key LIKE 'destroy.%'")" 0 "no destroy journal is left"
done_testing
