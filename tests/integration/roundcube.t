#!/bin/bash
# The worked adapter of docs/apps.md against the real app: Roundcube webmail from Debian's
# roundcube-core, laid out as its release tarball is (its own config/, temp/, logs/; the
# program's INSTALL_PATH from its own folder, where Debian's package fixes it at
# /var/lib/roundcube), its schema from the package's own SQL. The adapter is taken from
# the docs as they stand into ~/.config/tend/apps/roundcube.lua, and used by check,
# backup, clone --dry-run and clone over SSH onto a blank target: the copy's
# config/config.inc.php names the copy's database (read back), and a write through
# Roundcube's own database layer (bin/moduserprefs.sh) in the copy lands in the copy's
# database, not the source's.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
RC_SRC=/usr/share/roundcube
[ -f "$RC_SRC/program/include/iniset.php" ] || { echo "1..0 # SKIP Debian's roundcube-core is not installed (sh vendor/install)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP blank needs MariaDB's root over its socket (run as root)"; exit 0; }
need sshd mariadb
fresh_home
T=$(harness_tmp)
DB="127.0.0.1:$MARIADB_PORT"
add() { # add NAME PATH URL [OPTIONS...]: a Roundcube instance over the harness sshd
  local name=$1 path=$2 url=$3; shift 3
  "$TEND" instance add "$name" --app roundcube --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$path" --url "$url" "$@" >/dev/null 2>&1 &&
  "$TEND" host trust "$name" >/dev/null 2>&1
}

# --- production: the program, a config of its own, the package's schema, one user
MAIL=$T/mail
cp -a "$RC_SRC/." "$MAIL/" || bail "could not copy $RC_SRC"
mkdir -p "$MAIL/config" "$MAIL/temp" "$MAIL/logs"
cp /etc/roundcube/defaults.inc.php /etc/roundcube/mimetypes.php "$MAIL/config/"
sed -i "s|define('INSTALL_PATH', '/var/lib/roundcube/');|define('INSTALL_PATH', dirname(\$_SERVER['SCRIPT_FILENAME']).'/');|" \
  "$MAIL/program/include/iniset.php"
sed -i "s|define('INSTALL_PATH', '/var/lib/roundcube/');|define('INSTALL_PATH', realpath(__DIR__ . '/..') . '/');|" "$MAIL"/bin/*.sh
cat > "$MAIL/config/config.inc.php" <<PHP
<?php

/* Local configuration for Roundcube Webmail */

// Database connection string (DSN) for read+write operations
\$config['db_dsnw'] = 'mysql://roundcube:rc-pass-7@$DB/roundcubemail';

\$config['imap_host'] = 'localhost:143';
\$config['smtp_host'] = 'localhost:587';
\$config['support_url'] = '';
\$config['des_key'] = 'rcmail-!24ByteDESkey*Str';
\$config['product_name'] = 'Example Webmail';
\$config['plugins'] = [];
\$config['skin'] = 'elastic';
PHP
echo "an upload in progress" > "$MAIL/temp/upload-1"
echo "[01-Dec-2026 10:00:00 +0000]: login" > "$MAIL/logs/userlogins.log"
sql -e "CREATE DATABASE roundcubemail; CREATE USER 'roundcube'@'127.0.0.1' IDENTIFIED BY 'rc-pass-7';
  GRANT ALL ON roundcubemail.* TO 'roundcube'@'127.0.0.1';"
sql roundcubemail < /usr/share/dbconfig-common/data/roundcube/install/mysql || bail "Roundcube's schema would not load"
sql roundcubemail -e "INSERT INTO users (username, mail_host, created, language, preferences)
  VALUES ('alice@example.org', 'localhost', NOW(), 'en_US', 'a:0:{}');"
prefs() { sql "$1" -e "SELECT preferences FROM users WHERE username = 'alice@example.org'"; }
(cd "$MAIL" && php bin/moduserprefs.sh --user=1 timezone Europe/Berlin) > "$T/prefs.log" 2>&1
like "$(prefs roundcubemail)" "Europe/Berlin" "Roundcube's own bin/moduserprefs.sh writes through its config to its database"

# --- the adapter, as docs/apps.md gives it
mkdir -p "$HOME/.config/tend/apps"
awk '/^## A worked adapter: Roundcube/ { on = 1 } on && /^```lua/ { code = 1; next }
     code && /^```/ { exit } code { print }' docs/apps.md > "$HOME/.config/tend/apps/roundcube.lua"
like "$(cat "$HOME/.config/tend/apps/roundcube.lua")" "name = \"roundcube\"" "the adapter is taken from docs/apps.md"

PM=$(free_port)
add mail "$MAIL" "http://127.0.0.1:$PM"
out=$("$TEND" check mail 2>&1); rc=$?
like "$rc:$out" "^0:.*roundcube 1\.6\.5" "check: the adapter detects Roundcube and reads its version"
like "$out" "mysql:roundcube@$(re_escape "$DB")/roundcubemail" "... and the database from db_dsnw"
unlike "$out" "rc-pass-7" "... never showing its password"
out=$("$TEND" --json backup mail 2>&1); rc=$?
is "$rc" 0 "backup of the Roundcube instance"
[ "$rc" = 0 ] || diag "$out"
listing=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT path FROM manifest_files WHERE manifest_id = (SELECT s.manifest_id
  FROM snapshots s JOIN instances i ON i.id = s.instance_id WHERE i.name = 'mail' ORDER BY s.id DESC LIMIT 1)")
like "$listing" "program/include/iniset.php" "... its snapshot holds the program"
like "$listing" "config/config.inc.php" "... and its config"
unlike "$listing" "temp/upload-1" "... not temp/ (the adapter's ignore)"
unlike "$listing" "logs/userlogins.log" "... nor logs/"

# --- the copy: a blank instance with a database of its own
PT=$(free_port)
add mail-test "$T/mail-test" "http://127.0.0.1:$PT" --db "mysql://rc_test@$DB/rc_test" --db-password-secret rc_test.db-password
# The password is the operator's, kept in the vault under the declared key; blank uses
# it. In the URL it is percent-encoded, as Roundcube's parse_dsn decodes it.
RCPW='rc test/pw@1'
printf '%s' "$RCPW" | "$TEND" secret set rc_test.db-password
ok "blank mail-test" "$TEND" blank mail-test --admin "$MARIADB_ADMIN"
is "$("$TEND" secret get rc_test.db-password 2>&1)" "$RCPW" "... using the password the operator keeps under the declared key"
out=$("$TEND" clone mail mail-test --dry-run 2>&1); rc=$?
like "$rc:$out" "^0:.*config/config\.inc\.php:[0-9]+ db_dsnw: .*roundcubemail -> mysql://rc_test:\*+@$(re_escape "$DB")/rc_test" \
  "clone --dry-run shows the copy's db_dsnw, the password hidden"
unlike "$out" "rc-pass-7" "... never the source's password"
is "$(sql rc_test -e 'SHOW TABLES' | wc -l)" 0 "... and changes nothing: the copy's database is still empty"
[ -e "$T/mail-test/index.php" ]; is "$?" 1 "... nor its tree"
out=$("$TEND" clone mail mail-test 2>&1); rc=$?
is "$rc" 0 "clone mail mail-test"
[ "$rc" = 0 ] || diag "$out"
C=$T/mail-test/config/config.inc.php
like "$(cat "$C")" "\\\$config\\['db_dsnw'\\] = 'mysql://rc_test:rc%20test%2Fpw%401@$(re_escape "$DB")/rc_test';" \
  "the copy's db_dsnw names its own database, user and password"
unlike "$(cat "$C")" "roundcubemail|rc-pass-7" "... and nothing of the source's"
like "$(cat "$C")" "des_key'\] = 'rcmail-!24ByteDESkey\*Str'.*product_name'\] = 'Example Webmail'" "... the rest of the config as it was"
like "$(prefs rc_test)" "Europe/Berlin" "the copy's database holds production's users"
[ -e "$T/mail-test/temp/upload-1" ]; is "$?" 1 "the copy starts with an empty temp/ (caches)"
(cd "$T/mail-test" && php bin/moduserprefs.sh --user=1 timezone Pacific/Auckland) >> "$T/prefs.log" 2>&1
like "$(prefs rc_test)" "Pacific/Auckland" "a write through the copy's Roundcube lands in the copy's database"
unlike "$(prefs roundcubemail)" "Auckland" "... and not in production's"
like "$(prefs roundcubemail)" "Europe/Berlin" "production's user is as it was"

done_testing
