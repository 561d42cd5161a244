#!/bin/bash
# tend check on real instances: the harness WordPress in MariaDB, a Tiki-shaped tree,
# a generic SQLite app; and the failures an operator meets.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need mariadb wordpress
fresh_home

"$TEND" instance add wp --app wordpress --path "$WP_PATH" --url "$WP_URL" >/dev/null 2>&1
out=$("$TEND" check wp 2>&1); rc=$?
is "$rc" 0 "check on the WordPress instance exits 0"
like "$out" "app: +wordpress 6\.1\.[0-9]+" "it reports app wordpress and its 6.1.x version"
like "$out" "database: +mysql:$MARIADB_USER@127\.0\.0\.1:$MARIADB_PORT/wordpress, [^,]*MariaDB[^,]*, [1-9][0-9]* tables: reachable" \
  "it finds the DB in wp-config.php and the database answers"

json=$("$TEND" --json check wp 2>/dev/null)
is "$(printf '%s' "$json" | lua5.4 -e 'local j = require("cjson").decode(io.read("a")); print(j.app, j.version, j.ok, j.database.tables > 10)')" \
  "$(printf 'wordpress\t%s\ttrue\ttrue' "$WP_VERSION")" "--json gives app, version, ok and the table count"
unlike "$json$out" "$(printf '%s' "$MARIADB_PASSWORD" | sed 's/[][\\.*^$(){}?+|]/\\&/g')" "the DB password never appears in the output"

# A password that does not work: one clear line, exit 1.
cp -a "$WP_PATH/wp-config.php" "$(harness_tmp)/wp-config.good"
sed -i "s/define( 'DB_PASSWORD', .*/define( 'DB_PASSWORD', 'wrong' );/" "$WP_PATH/wp-config.php"
err=$("$TEND" check wp 2>&1 >/dev/null); rc=$?
is "$rc" 1 "a wrong DB password fails the check with exit 1"
like "$err" "^tend: check: database: mysql:.*Access denied" "... saying what failed in one line"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... and only one line"
cp -a "$(harness_tmp)/wp-config.good" "$WP_PATH/wp-config.php"

# The same database through --db and a password from the vault.
printf '%s' "$MARIADB_PASSWORD" | "$TEND" secret set wp-db >/dev/null 2>&1
"$TEND" instance add wp2 --app generic --path "$WP_PATH" \
  --db "mysql://$MARIADB_USER@127.0.0.1:$MARIADB_PORT/$MARIADB_DB" --db-password-secret wp-db >/dev/null 2>&1
out=$("$TEND" check wp2 2>&1); rc=$?
is "$rc" 0 "check with --db and --db-password-secret from the vault exits 0"
like "$out" "database: +mysql:$MARIADB_USER@127\.0\.0\.1:$MARIADB_PORT/wordpress" "... and reaches the database"
like "$("$TEND" check wp2 2>&1 >/dev/null)" "registered as generic but looks like wordpress" "a mismatched --app is warned about"

# A missing web root.
"$TEND" instance add gone --app generic --path "$(harness_tmp)/nowhere" >/dev/null 2>&1
err=$("$TEND" check gone 2>&1 >/dev/null); rc=$?
is "$rc:$err" "1:tend: check: files: instance gone: $(harness_tmp)/nowhere not found on local" "a missing web root fails in one line"

# A Tiki-shaped tree: detected by tiki-setup.php and twversion, DB from db/local.php.
tiki=$(harness_tmp)/tiki
mkdir -p "$tiki/lib/setup" "$tiki/db"
echo '<?php // tiki' > "$tiki/tiki-setup.php"
printf '<?php\nclass TWVersion {\n  function __construct() {\n    $this->version = %s;\n  }\n}\n' "'26.1'" > "$tiki/lib/setup/twversion.class.php"
php -r 'echo "<?php\n\$db_tiki=\"mysqli\";\n\$host_tiki=", var_export($argv[1], true), ";\n\$user_tiki=", var_export($argv[2], true), ";\n\$pass_tiki=", var_export($argv[3], true), ";\n\$dbs_tiki=", var_export($argv[4], true), ";\n";' \
  "127.0.0.1:$MARIADB_PORT" "$MARIADB_USER" "$MARIADB_PASSWORD" "$MARIADB_DB" > "$tiki/db/local.php"
"$TEND" instance add tk --app tiki --path "$tiki" >/dev/null 2>&1
out=$("$TEND" check tk 2>&1); rc=$?
is "$rc" 0 "check on the Tiki-shaped tree exits 0"
like "$out" "app: +tiki 26\.1" "it is detected as tiki 26.1"
like "$out" "database: .*reachable" "its db/local.php settings reach the database"

# A generic app with a SQLite database.
gen=$(harness_tmp)/gen
mkdir -p "$gen"
sqlite3 "$gen/app.db" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); CREATE TABLE tags(name TEXT);"
"$TEND" instance add gen --app generic --path "$gen" --db "sqlite://$gen/app.db" >/dev/null 2>&1
out=$("$TEND" check gen 2>&1); rc=$?
is "$rc" 0 "check on a generic SQLite app exits 0"
like "$out" "database: +sqlite:$gen/app.db, SQLite 3\.[0-9.]+, 2 tables: reachable" "it counts the SQLite tables"
echo "not a database" > "$gen/app.db"
err=$("$TEND" check gen 2>&1 >/dev/null); rc=$?
like "$rc:$err" "^1:tend: check: database: sqlite .*not a database" "a damaged SQLite file fails the check"

done_testing
