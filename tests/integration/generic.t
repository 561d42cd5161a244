#!/bin/bash
# Copies of PHP + MySQL apps tend has no adapter for, their settings files declared with
# --config: a guestbook whose config/settings.inc.php is define() lines, and a link list
# whose app/config.php returns an array with a database URL. Each is cloned over SSH onto
# a blank target: the copy's config names the copy's database and URL (read back), a
# write through the copy (its own PHP server) lands in the copy's database and not the
# source's, a second clone keeps the copy's hand-edited config (the copies served by
# nginx + PHP-FPM, their maintenance page seen); a copy with no config
# declared, or with the source's own database, is refused before any change on either
# side; --dry-run shows each change and changes nothing.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb
fresh_home
T=$(harness_tmp)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP blank needs MariaDB's root over its socket (run as root)"; exit 0; }
DB="127.0.0.1:$MARIADB_PORT"
serve() { # serve DIR PORT: PHP's server for a site, stopped with the harness
  php -S "127.0.0.1:$2" -t "$1" > "$T/php-$2.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for "php on $2" 10 _port_open "$2"
}
snapshots_of() { "$TEND" --json snapshots "$1" 2>/dev/null | grep -o '"id":' | wc -l; }
add() { # add NAME PATH URL [OPTIONS...]: a generic instance over the harness sshd
  local name=$1 path=$2 url=$3; shift 3
  "$TEND" instance add "$name" --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$path" --url "$url" "$@" >/dev/null 2>&1 &&
  "$TEND" host trust "$name" >/dev/null 2>&1
}

# --- the guestbook: define() settings, written the way its authors ship them
GB=$T/guestbook
PG=$(free_port)
mkdir -p "$GB/config"
sql -e "CREATE DATABASE gb; CREATE USER 'gb'@'127.0.0.1' IDENTIFIED BY 'gb''s pass'; GRANT ALL ON gb.* TO 'gb'@'127.0.0.1';"
sql gb -e "CREATE TABLE gb_entries (id INT AUTO_INCREMENT PRIMARY KEY, message TEXT); INSERT INTO gb_entries (message) VALUES ('from production');"
cat > "$GB/config/settings.inc.php" <<PHP
<?php
/*
 * Guestbook settings. Copy settings.sample.php here and edit.
 */
define('GB_DB_HOST', '127.0.0.1');
define('GB_DB_PORT', $MARIADB_PORT);
define('GB_DB_NAME', 'gb');
define('GB_DB_USER', 'gb');
define('GB_DB_PASSWORD', 'gb\\'s pass');
define('GB_BASE_URL', 'http://127.0.0.1:$PG');
define('GB_PAGE_SIZE', 20);
PHP
cat > "$GB/index.php" <<'PHP'
<?php
require __DIR__ . '/config/settings.inc.php';
$db = new mysqli(GB_DB_HOST, GB_DB_USER, GB_DB_PASSWORD, GB_DB_NAME, GB_DB_PORT);
if (isset($_POST['message'])) {
    $st = $db->prepare('INSERT INTO gb_entries (message) VALUES (?)');
    $st->bind_param('s', $_POST['message']);
    $st->execute();
    header('Location: ' . GB_BASE_URL . '/');
    exit;
}
echo '<base href="', htmlspecialchars(GB_BASE_URL), '/">', "\n";
foreach ($db->query('SELECT message FROM gb_entries ORDER BY id') as $row) {
    echo '<p>', htmlspecialchars($row['message']), "</p>\n";
}
PHP
serve "$GB" "$PG"
like "$(curl -s "http://127.0.0.1:$PG/")" "<p>from production</p>" "the guestbook serves its entries"
add gb "$GB" "http://127.0.0.1:$PG" --config config/settings.inc.php
like "$("$TEND" instance show gb 2>&1)" "config files: +config/settings.inc.php" "instance show lists the declared config file"
like "$("$TEND" check gb 2>&1)" "gb@127.0.0.1:$MARIADB_PORT/gb" "check reads the database from the declared file"

printf 'Guestbook 2.3.1 (2026-10-01)\n\n* entries can be longer\n' > "$GB/CHANGELOG"
ok "--version-file names where the version is written" "$TEND" instance edit gb --version-file CHANGELOG
like "$("$TEND" check gb 2>&1)" "app: +generic 2\.3\.1" "check reads the version from it: the first dotted number"
"$TEND" instance edit gb --version-pattern 'Guestbook ([%d.]+) %(' >/dev/null 2>&1
like "$("$TEND" check gb 2>&1)" "app: +generic 2\.3\.1" "... or what a Lua pattern captures"
like "$("$TEND" instance edit gb --version-pattern 'no capture' 2>&1; echo "rc=$?")" "a Lua pattern with one capture.*rc=2" \
  "a pattern without a capture is refused"

PG2=$(free_port)
add gb2 "$T/gb2" "http://127.0.0.1:$PG2" --db "mysql://gb2@$DB/gb2" --config config/settings.inc.php
ok "blank gb2" "$TEND" blank gb2 --admin "$MARIADB_ADMIN"
src_config=$(sha256sum < "$GB/config/settings.inc.php")

out=$("$TEND" clone gb gb2 --dry-run 2>&1); rc=$?
is "$rc" 0 "clone --dry-run exits 0"
like "$out" "config/settings.inc.php:7 GB_DB_NAME: gb -> gb2" "... it shows the database name's change"
like "$out" "GB_BASE_URL: http://127.0.0.1:$PG -> http://127.0.0.1:$PG2" "... and the URL's"
like "$out" "GB_DB_PASSWORD: \*\*\*\*\*\*\*\* -> \*\*\*\*\*\*\*\*" "... and a password's, never its value"
unlike "$out" "gb's pass" "... the source's password is not shown"
is "$(ls -A "$T/gb2" | wc -l):$(snapshots_of gb)" "0:0" "... and nothing was made: no file in gb2, no snapshot of gb"

out=$("$TEND" clone gb gb2 2>&1); rc=$?
is "$rc" 0 "clone gb gb2 exits 0"
[ "$rc" = 0 ] || diag "$out"
C=$T/gb2/config/settings.inc.php
like "$(cat "$C")" "define\('GB_DB_NAME', 'gb2'\);" "the copy's config names its own database"
like "$(cat "$C")" "define\('GB_DB_USER', 'gb2'\);" "... its own user"
like "$(cat "$C")" "define\('GB_BASE_URL', 'http://127.0.0.1:$PG2'\);" "... its own URL"
pw=$("$TEND" secret get gb2.db-password 2>/dev/null)
grep -qF "define('GB_DB_PASSWORD', '$pw');" "$C"; is "$?" 0 "... and the password blank made for it"
like "$(cat "$C")" "Copy settings.sample.php here.*define\('GB_PAGE_SIZE', 20\);" "... the rest of it as it was"
is "$(sha256sum < "$GB/config/settings.inc.php")" "$src_config" "the source's config is untouched"
is "$(stat -c %a "$C")" "$(stat -c %a "$GB/config/settings.inc.php")" "... the copy's has the source's mode"

nginx_fpm_serve "$T/gb2" "$PG2" || bail "nginx + php-fpm would not start" # the copy, as sites are served: its maintenance page is seen
like "$(curl -s "http://127.0.0.1:$PG2/")" "<base href=\"http://127.0.0.1:$PG2/\">.*<p>from production</p>" "the copy serves the source's entries with its own URL"
curl -s -o /dev/null --data-urlencode "message=written through the copy" "http://127.0.0.1:$PG2/"
is "$(sql gb2 -e "SELECT count(*) FROM gb_entries WHERE message = 'written through the copy'")" 1 "a write through the copy lands in the copy's database"
is "$(sql gb -e "SELECT count(*) FROM gb_entries WHERE message = 'written through the copy'")" 0 "... and not in the source's"

# The copy's config is its own: hand-tuned, it survives the next clone.
sed -i "s/define('GB_PAGE_SIZE', 20);/define('GB_PAGE_SIZE', 50); \/\/ tuned on the copy/" "$C"
out=$("$TEND" clone gb gb2 2>&1); rc=$?
is "$rc" 0 "a second clone exits 0"
like "$(cat "$C")" "GB_PAGE_SIZE', 50\); // tuned on the copy" "... and keeps the copy's own config"
like "$(cat "$C")" "GB_DB_NAME', 'gb2'" "... which still names the copy's database"
is "$(sql gb2 -e "SELECT count(*) FROM gb_entries WHERE message = 'written through the copy'")" 0 "... the copy's database is the source's again"

# Refused before any change: a target with no config declared (tend would copy the
# source's settings as they are), and one whose database is the source's own.
add gb3 "$T/gb3" "http://127.0.0.1:1" --db "mysql://gb3@$DB/gb3"
mkdir -p "$T/gb3"
before=$(snapshots_of gb)
out=$("$TEND" --quiet clone gb gb3 2>&1); rc=$?
like "$rc:$out" "^2:tend: gb3: check: a copy of gb's files would still name gb's database .*--config FILE.*nothing was changed" \
  "a copy with no config declared is refused (exit 2), saying what to declare"
is "$(ls -A "$T/gb3" | wc -l):$(snapshots_of gb)" "0:$before" "... nothing was made in gb3, and gb was not backed up"
add gbx "$T/gbx" "http://127.0.0.1:2" --db "mysql://gb@$DB/gb" --config config/settings.inc.php
out=$("$TEND" --quiet clone gb gbx 2>&1); rc=$?
like "$rc:$out" "^2:tend: gbx: check: its database is gb's own \(mysql:gb@127.0.0.1:$MARIADB_PORT/gb\)" "a copy onto the source's own database is refused"
out=$("$TEND" --quiet migrate-data gb gbx 2>&1); rc=$?
like "$rc:$out" "^2:tend: gbx: check: its database is gb's own" "... and so is migrate-data"
is "$(sql gb -e "SELECT count(*) FROM gb_entries"):$(test -e "$T/gbx" && echo made)" "1:" "... gb's database and gbx's folder untouched"

# --- the link list: one database URL in a returned array
LK=$T/links
PL=$(free_port)
mkdir -p "$LK/app"
sql -e "CREATE DATABASE links; CREATE USER 'links'@'127.0.0.1' IDENTIFIED BY 'l:nk@s/1'; GRANT ALL ON links.* TO 'links'@'127.0.0.1';"
sql links -e "CREATE TABLE link (id INT AUTO_INCREMENT PRIMARY KEY, href TEXT); INSERT INTO link (href) VALUES ('https://debian.org/');"
cat > "$LK/app/config.php" <<PHP
<?php
// Links configuration
return [
    'site' => [
        'title' => 'Links',
        'url'   => "http://127.0.0.1:$PL",
    ],
    'database' => 'mysql://links:l%3Ank%40s%2F1@127.0.0.1:$MARIADB_PORT/links?charset=utf8mb4',
];
PHP
cat > "$LK/index.php" <<'PHP'
<?php
$config = require __DIR__ . '/app/config.php';
$u = parse_url($config['database']);
$db = new mysqli($u['host'], urldecode($u['user']), urldecode($u['pass']), ltrim($u['path'], '/'), $u['port']);
if (isset($_POST['href'])) {
    $st = $db->prepare('INSERT INTO link (href) VALUES (?)');
    $st->bind_param('s', $_POST['href']);
    $st->execute();
}
echo '<h1><a href="', htmlspecialchars($config['site']['url']), '">', htmlspecialchars($config['site']['title']), "</a></h1>\n";
foreach ($db->query('SELECT href FROM link ORDER BY id') as $row) {
    echo '<li>', htmlspecialchars($row['href']), "</li>\n";
}
PHP
add links "$LK" "http://127.0.0.1:$PL" --config app/config.php
PL2=$(free_port)
add links2 "$T/links2" "http://127.0.0.1:$PL2" --db "mysql://links2@$DB/links2" --config app/config.php
ok "blank links2" "$TEND" blank links2 --admin "$MARIADB_ADMIN"
out=$("$TEND" clone links links2 2>&1); rc=$?
is "$rc" 0 "clone links links2 exits 0"
[ "$rc" = 0 ] || diag "$out"
L=$T/links2/app/config.php
pw=$("$TEND" secret get links2.db-password 2>/dev/null)
like "$(cat "$L")" "'database' => 'mysql://links2:[^@]+@127.0.0.1:$MARIADB_PORT/links2\?charset=utf8mb4'" "the copy's database URL names its own database and user"
grep -qF "mysql://links2:$pw@" "$L"; is "$?" 0 "... with its own password"
like "$(cat "$L")" "'url'   => \"http://127.0.0.1:$PL2\"" "... and its own URL"
nginx_fpm_serve "$T/links2" "$PL2" || bail "nginx + php-fpm would not start"
curl -s -o /dev/null --data-urlencode "href=https://copy.example/" "http://127.0.0.1:$PL2/"
is "$(sql links2 -e "SELECT count(*) FROM link"):$(sql links -e "SELECT count(*) FROM link")" "2:1" \
  "a write through the copy lands in the copy's database, not the source's"
like "$(curl -s "http://127.0.0.1:$PL2/")" "href=\"http://127.0.0.1:$PL2\".*debian.org.*copy.example" "the copy serves with its own URL"
out=$("$TEND" clone links links2 2>&1); rc=$?
is "$rc:$(sql links2 -e "SELECT count(*) FROM link")" "0:1" "a second clone exits 0 and brings the source's data again"
grep -qF "mysql://links2:$pw@" "$L"; is "$?" 0 "... the copy's config still its own"

# A URL that no config holds (written in the code): the copy, looked at behind its
# page, still names its source, so the clone says so and leaves it behind the page.
cp "$LK/index.php" "$T/links-index.php"
echo 'echo "<footer>Canonical: http://127.0.0.1:'"$PL"'/</footer>\n";' >> "$LK/index.php"
out=$("$TEND" clone links links2 2>&1); rc=$?
like "$rc:$out" "^1:.*links2: copy: the copy answers as links: http://127.0.0.1:$PL2's page names links's URL http://127.0.0.1:$PL; it stays behind its maintenance page" \
  "a copy that still names its source's URL fails (exit 1), saying so"
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PL2/")" 503 "... and stays behind its maintenance page"
ok "... until the operator lifts it" "$TEND" maintenance links2 off
cp "$T/links-index.php" "$LK/index.php"

# --- an adapter of the operator's own, in ~/.config/tend/apps: the guestbook known by
# its files (version from lib/version.php, settings from config/settings.inc.php, a
# cache that a copy starts without), used by check, backup and clone.
mkdir -p "$HOME/.config/tend/apps" "$GB/lib" "$GB/cache" "$GB/tmp"
echo "a session" > "$GB/tmp/sess_1"
echo "<?php define('GB_VERSION', '2.3.1');" > "$GB/lib/version.php"
echo "rendered page of production" > "$GB/cache/page-1.html"
cat > "$HOME/.config/tend/apps/guestbook.lua" <<'LUA'
-- The Guestbook app: lib/version.php says its version, config/settings.inc.php holds
-- its database; tmp/ holds sessions, cache/ pages of this site (a copy starts without).
local php = require "tend.php"
return {
  name = "guestbook",
  detect = function(t, path)
    local src = t:read(path .. "/lib/version.php")
    if not src or not t:stat(path .. "/config/settings.inc.php") then return false end
    return php.defines(src).GB_VERSION or true
  end,
  config = "config/settings.inc.php",
  parse_config = function(text, file)
    local d = php.defines(text)
    if not d.GB_DB_NAME then return nil end
    return { driver = "mysql", name = d.GB_DB_NAME, user = d.GB_DB_USER, password = d.GB_DB_PASSWORD,
      host = d.GB_DB_HOST, port = tonumber(d.GB_DB_PORT), source = file }
  end,
  ignore = { "tmp/*" },
  caches = { "cache" },
}
LUA
add book "$GB" "http://127.0.0.1:$PG"
"$TEND" instance edit book --app guestbook >/dev/null 2>&1
out=$("$TEND" check book 2>&1); rc=$?
like "$rc:$out" "^0:.*guestbook 2\.3\.1.*gb@127\.0\.0\.1:$MARIADB_PORT/gb" "check uses the user's adapter: its app, version and database"
out=$("$TEND" --json backup book 2>&1); rc=$?
is "$rc" 0 "backup of an instance of the user's adapter"
listing=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT path FROM manifest_files WHERE manifest_id = (SELECT s.manifest_id
  FROM snapshots s JOIN instances i ON i.id = s.instance_id WHERE i.name = 'book' ORDER BY s.id DESC LIMIT 1)")
like "$listing" "lib/version.php" "... its snapshot holds the app's files"
like "$listing" "cache/page-1.html" "... its cache too"
unlike "$listing" "tmp/sess_1" "... and not what the adapter leaves out (ignore)"
PB2=$(free_port)
add book2 "$T/book2" "http://127.0.0.1:$PB2" --db "mysql://gb2@$DB/gb2" --db-password-secret gb2.db-password
"$TEND" instance edit book2 --app guestbook >/dev/null 2>&1
mkdir -p "$T/gb2/cache" && echo "a page of the old copy" > "$T/gb2/cache/old.html"
mv "$T/gb2" "$T/book2" # gb2's tree and database, now known as book2
nginx_fpm_serve "$T/book2" "$PB2" || bail "nginx + php-fpm would not start"
out=$("$TEND" clone book book2 2>&1); rc=$?
is "$rc" 0 "clone of an instance of the user's adapter"
[ "$rc" = 0 ] || diag "$out"
like "$(cat "$T/book2/config/settings.inc.php")" "GB_DB_NAME', 'gb2'.*GB_PAGE_SIZE', 50" "... its config, its own, kept: it names the copy's database"
is "$(ls -A "$T/book2/cache" | wc -l)" 0 "... and its cache starts empty"
like "$("$TEND" instance add bad --app nosuch --path /x 2>&1; echo "rc=$?")" "unknown app \"nosuch\" \(known: guestbook, wordpress, tiki, generic; an adapter of your own goes in .*/tend/apps/nosuch.lua\).*rc=2" \
  "an unknown app names the adapters there are, and where one goes"

done_testing
