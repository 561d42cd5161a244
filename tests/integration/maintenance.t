#!/bin/bash
# The maintenance page of an app that is not WordPress, seen over HTTP: under Debian's
# nginx + PHP-FPM (no .htaccess; .user.ini's auto_prepend_file) `maintenance on`
# answers 503 for every PHP script and `off` 200, the site's own .user.ini put back
# byte for byte; under PHP's built-in server (php -S) tend says it cannot show the page,
# takes back what it wrote, and clone and migrate-data stop before changing anything
# unless --without-maintenance-page says to go on; update stops the same way.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
fresh_home
T=$(harness_tmp)
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP nginx and PHP-FPM run as root here"; exit 0; }
get() { curl -s -o "$T/body" -D "$T/head" -w '%{http_code}' "$1"; }
add() { # add NAME PATH URL [OPTIONS...]
  local name=$1 path=$2 url=$3; shift 3
  "$TEND" instance add "$name" --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$path" --url "$url" "$@" >/dev/null 2>&1 &&
  "$TEND" host trust "$name" >/dev/null 2>&1
}
site() { # site DIR: a small PHP site with a page in a subfolder and a .user.ini of its own
  mkdir -p "$1/sub"
  echo '<?php echo "site up\n";' > "$1/index.php"
  echo '<?php echo "sub page\n";' > "$1/sub/page.php"
  printf 'upload_max_filesize = 8M\nmemory_limit = 96M\n' > "$1/.user.ini"
}

S=$T/fpm-site
site "$S"
PF=$(free_port)
nginx_fpm_serve "$S" "$PF" || bail "nginx + php-fpm would not start"
is "$(get "http://127.0.0.1:$PF/")" 200 "nginx + PHP-FPM serve the site"
add fpm "$S" "http://127.0.0.1:$PF"
ini=$(sha256sum < "$S/.user.ini"); ino=$(stat -c %i "$S/.user.ini")

out=$("$TEND" maintenance fpm on 2>&1); rc=$?
is "$rc" 0 "maintenance on under nginx + PHP-FPM exits 0"
like "$out" "maintenance page on: http://127.0.0.1:$PF answers 503" "... and says the page was seen"
is "$(get "http://127.0.0.1:$PF/")" 503 "the site answers 503"
like "$(cat "$T/head")" "Retry-After: 600" "... with Retry-After"
like "$(cat "$T/body")" "Down for maintenance" "... and the page"
is "$(get "http://127.0.0.1:$PF/sub/page.php")" 503 "... for a script in a subfolder too"
unlike "$(cat "$T/body")" "sub page" "... which does not run"

out=$("$TEND" maintenance fpm off 2>&1); rc=$?
is "$rc" 0 "maintenance off exits 0"
sleep 3 # PHP-FPM's user_ini.cache_ttl here: the page may be prepended until then
is "$(get "http://127.0.0.1:$PF/")" 200 "the site answers 200 again"
like "$(cat "$T/body")" "site up" "... its own page"
is "$(sha256sum < "$S/.user.ini"):$(stat -c %i "$S/.user.ini")" "$ini:$ino" "its own .user.ini is back, byte for byte, inode for inode"
is "$(get "http://127.0.0.1:$PF/sub/page.php")" 200 "a page prepended from a cached .user.ini finds tend gone and lets the site run"

# PHP's built-in server reads neither .htaccess nor .user.ini.
B=$T/cli-site
site "$B"
PB=$(free_port)
php -S "127.0.0.1:$PB" -t "$B" > "$T/php-$PB.log" 2>&1 &
HARNESS_PIDS="$HARNESS_PIDS $!"
wait_for "php -S" 10 _port_open "$PB"
add cli "$B" "http://127.0.0.1:$PB"
tree() { (cd "$B" && find . -printf '%p %s %T@\n' | sort | sha256sum); }
before=$(tree)
out=$("$TEND" maintenance cli on 2>&1); rc=$?
like "$rc:$out" "^2:tend: cli: cannot show a maintenance page: http://127.0.0.1:$PB is PHP's built-in server \(php -S\)" \
  "maintenance on under php -S is refused (exit 2), saying why"
unlike "$out" "maintenance page on" "... it never says the page is on"
is "$(tree)" "$before" "... and nothing of tend's is left in the web root"

out=$("$TEND" clone fpm cli 2>&1); rc=$?
like "$rc:$out" "^2:.*cannot show a maintenance page.*--without-maintenance-page" "clone onto it stops, naming the flag"
is "$(tree)" "$before" "... before changing anything"
out=$("$TEND" migrate-data fpm cli 2>&1); rc=$?
like "$rc:$out" "^2:.*cannot show a maintenance page" "migrate-data stops too"
is "$(tree)" "$before" "... before changing anything"

out=$("$TEND" clone fpm cli --without-maintenance-page 2>&1); rc=$?
is "$rc" 0 "with --without-maintenance-page the clone goes on"
like "$out" "warning: cli: the maintenance page is not seen: .*going on without it" "... and says what it could not do"
is "$(get "http://127.0.0.1:$PB/")" 200 "... the copy serves"
ok "... with no page of tend's left behind" test ! -e "$B/.htaccess"

# An update under php -S stops before the code moves, unless the flag says to go on.
R=$T/repo; mkdir -p "$R"
commit() { git -C "$R" add -A && git -C "$R" -c user.email=dev@example.test -c user.name=dev commit -qm "$1" && git -C "$R" tag "$1"; }
git -C "$R" init -q
echo '<?php echo "release 1.0\n";' > "$R/index.php"; echo 1.0 > "$R/VERSION"; commit 1.0
echo '<?php echo "release 1.1\n";' > "$R/index.php"; echo 1.1 > "$R/VERSION"; commit 1.1
U=$T/upd; git clone -q --branch 1.0 "$R" "$U" 2>/dev/null
PU=$(free_port)
php -S "127.0.0.1:$PU" -t "$U" > "$T/php-$PU.log" 2>&1 &
HARNESS_PIDS="$HARNESS_PIDS $!"
wait_for "php -S" 10 _port_open "$PU"
add upd "$U" "http://127.0.0.1:$PU"
out=$("$TEND" update upd 2>&1); rc=$?
like "$rc:$out" "^2:.*cannot show a maintenance page.*--without-maintenance-page" "update under php -S stops (exit 2), naming the flag"
is "$(git -C "$U" describe --tags):$(get "http://127.0.0.1:$PU/")" "1.0:200" "... the code still at 1.0, the site serving"
ok "... with nothing of tend's in the web root" test ! -e "$U/.htaccess" -a ! -e "$U/.user.ini"
out=$("$TEND" update upd --without-maintenance-page 2>&1); rc=$?
is "$rc:$(git -C "$U" describe --tags)" "0:1.1" "with --without-maintenance-page the update goes on to 1.1"
[ "$rc" = 0 ] || diag "$out"
like "$out" "warning: upd: the maintenance page is not seen" "... saying what it could not do"

done_testing
