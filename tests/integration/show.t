#!/bin/bash
# The show host: throwaway instances of the fixture app (tests/fixtures/app, a git
# repository) over SSH, in ROOT/N, served by one Apache configuration by host name
# (VirtualDocumentRoot ROOT/%1; N.show.localhost reaches loopback without DNS). Two
# versions answer on their own names; limits refuse before anything is made; one made
# from a commit gets production's data; its admin password is in the vault and mailed;
# expire with a test clock removes the expired one whole and keeps the others; export
# gives a dump a developer can load; a create that fails leaves nothing.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP Apache for the fixture needs root"; exit 0; }
need sshd smtp
fresh_home
T=$(harness_tmp)
REPO=$T/repo
tests/fixtures/app/make-repo "$REPO" && tests/fixtures/app/make-repo --dev "$REPO"
q() { sqlite3 "$TEND_HOME/catalog.db" "$1"; }
"$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from show@example.org >/dev/null

out=$("$TEND" show create --version 1.0 2>&1); rc=$?
like "$rc:$out" "^2:.*no show host yet: tend show config" "show create before show config: exit 2, saying how"

# production: the fixture at 2.0 with a note of its own, on the same host (trusted there)
PROD=$T/prod/site
mkdir -p "$T/prod" && git clone -q --branch 2.0 "$REPO" "$PROD" 2>/dev/null && (cd "$PROD" && php migrate.php >/dev/null)
sqlite3 "$PROD/data/app.db" "UPDATE notes SET body = 'the note in production' WHERE id = 1"
"$TEND" instance add prod --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$PROD" \
  --db "sqlite://$PROD/data/app.db" --migrate "php migrate.php" >/dev/null 2>&1
"$TEND" host trust prod >/dev/null 2>&1

ROOT=$T/show
mkdir -p "$ROOT"
PS=$(free_port); apache_serve "$ROOT" "$PS" --vhosts || bail "apache would not start"
out=$("$TEND" show config --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --root "$ROOT" --url "http://{n}.show.localhost:$PS" \
  --app generic --repo "$REPO" --db 'sqlite://{root}/data/app.db' --migrate "php migrate.php" \
  --password-cmd "php password.php" --max-per-owner 2 --expires 14d 2>&1); rc=$?
like "$rc:$out" "^0:show host: ssh://.*:$ROOT, instances at http://\\{n\\}.show.localhost:$PS \\(at most 100, 2 per owner, 14d each\\)" \
  "show config keeps the show host's settings"
is "$("$TEND" show list 2>&1)" "no show instances" "show list: none yet"

page() { curl -s "http://$1.show.localhost:$PS/"; }
out=$("$TEND" show create --version 1.0 --for alice@example.org 2>"$T/err"); rc=$?
is "$rc:$out" "0:http://1.show.localhost:$PS" "show create --version 1.0 makes show-1 and prints its URL"
[ "$rc" = 0 ] || diag "$(tail -3 "$T/err")"
out=$("$TEND" show create --version 1.1 --for alice@example.org --expires 30d 2>"$T/err"); rc=$?
is "$rc:$out" "0:http://2.show.localhost:$PS" "... and 1.1 as show-2"
is "$(page 1 | head -1):$(page 2 | head -1)" "version=1.0:version=1.1" "each answers on its own host name with its version"

# limits: refused before anything is made
before=$(q "SELECT count(*) FROM instances"):$(ls "$ROOT" | tr '\n' ' ')
out=$("$TEND" show create --version 2.0 --for alice@example.org 2>&1); rc=$?
like "$rc:$out" "^2:.*alice@example.org has 2 show instances, the limit per owner" "a third for the same owner is refused (exit 2)"
is "$(q "SELECT count(*) FROM instances"):$(ls "$ROOT" | tr '\n' ' ')" "$before" "... and nothing was made"

# from a commit of dev (change 6), with production's data
c6=$(git -C "$REPO" rev-parse dev~4)
out=$("$TEND" show create --version "$c6" --from prod --for bob@example.org 2>"$T/err"); rc=$?
is "$rc:$out" "0:http://3.show.localhost:$PS" "show create from a commit, with --from prod"
[ "$rc" = 0 ] || diag "$(tail -3 "$T/err")"
is "$(page 3 | sed -n '1p;3p' | tr '\n' ' ')" "version=2.0 note=the note in production " "... its code that commit's, its data production's"
is "$(cd "$PROD" && git status --porcelain):$(sqlite3 "$PROD/data/app.db" "SELECT body FROM notes WHERE id = 1")" \
  ":the note in production" "... production untouched"

# the admin password: in the vault, set in the app, mailed to the owner with the URL
pw=$("$TEND" secret get show-1.admin-password 2>/dev/null)
is "${#pw}" 16 "show-1's admin password is in the vault"
is "$(php -r 'echo password_verify($argv[1], file_get_contents($argv[2])) ? "yes" : "no";' "$pw" "$ROOT/1/data/admin.pw")" yes \
  "... and is the app's admin password (set through --password-cmd, on stdin)"
msg=$(grep -l "http://1.show.localhost:$PS" "$SMTP_MAILDIR"/new/* 2>/dev/null | head -1)
like "$(cat "$msg" 2>/dev/null)" "To: alice@example.org.*password $pw" "... mailed to alice with the URL"
argv_ok=yes; grep -rqs -- "$pw" "$TEND_HOME"/*.log "$T/err" && argv_ok=no
is "$argv_ok" yes "... and written in no log"

out=$("$TEND" show list 2>&1)
like "$out" "show-1 +1\\.0 +alice@example.org +http://1.show.localhost:$PS" "show list: version, owner, URL"
like "$out" "show-3 +$c6 +bob@example.org" "... of each"
like "$("$TEND" show list --for bob@example.org 2>&1)" "^NAME[^\\n]*
show-3 [^\\n]*$" "show list --for: only theirs"

# extend, then expire 20 days ahead: show-3 (14d) goes, show-1 (extended) and show-2 (30d) stay
out=$("$TEND" show extend 1 --expires 60d 2>&1); rc=$?
like "$rc:$out" "^0:.*show-1: until " "show extend moves its expiry"
out=$("$TEND" show expire --now +20d 2>&1); rc=$?
like "$rc:$out" "^0:.*1 expired show instances removed" "show expire --now +20d removes the one past its time"
is "$(ls "$ROOT" | tr '\n' ' ')" "1 2 " "... its folder is gone, the others' kept"
is "$(q "SELECT count(*) FROM instances WHERE name = 'show-3'"):$(q "SELECT count(*) FROM instance_tags t JOIN instances i ON i.id = t.instance_id WHERE i.name = 'show-3'")" \
  "0:0" "... its catalog rows too"
is "$("$TEND" secret list 2>/dev/null | grep -c '^show-3')" 0 "... and its secrets"
is "$(page 1 | head -1):$(page 2 | head -1)" "version=1.0:version=1.1" "the others still answer"

# export: a dump a developer can load
out=$("$TEND" show export 2 --to "$T/show-2.tar.gz" 2>&1); rc=$?
is "$rc" 0 "show export 2 exits 0"
[ "$rc" = 0 ] || diag "$(printf '%s' "$out" | tail -3)"
mkdir -p "$T/x" && tar -xzf "$T/show-2.tar.gz" -C "$T/x"
dump=$(ls "$T"/x/db/*.sql 2>/dev/null | head -1)
cp "$dump" "$T/dev.db" # a SQLite site's dump is a copy of its database (sqlite3 .backup)
is "$(sqlite3 "$T/dev.db" "SELECT body FROM notes WHERE id = 1")" "the first note" \
  "... whose database a developer can open"
is "$(cat "$T/x/files/VERSION")" "1.1" "... with its files"

# destroy; a create that fails leaves nothing
out=$("$TEND" show destroy 1 2>&1); rc=$?
like "$rc:$out" "^0:.*show-1: removed" "show destroy removes one"
is "$(ls "$ROOT" | tr '\n' ' ')" "2 " "... its folder gone"
before=$(q "SELECT count(*) FROM instances"):$(ls "$ROOT" | tr '\n' ' '):$("$TEND" secret list 2>/dev/null | wc -l)
out=$("$TEND" show create --version 9.9 2>&1); rc=$?
like "$rc:$out" "^1:.*git checkout 9.9" "a create of a version that does not exist fails (exit 1)"
is "$(q "SELECT count(*) FROM instances"):$(ls "$ROOT" | tr '\n' ' '):$("$TEND" secret list 2>/dev/null | wc -l)" "$before" \
  "... and leaves nothing: no folder, no catalog row, no secret"
is "$(( $("$TEND" show create --version 1.0 2>/dev/null | grep -o '//[0-9]*' | tr -d /) ))" 5 "numbers are never given twice"

# a mail that cannot go out is no reason to take the instance away
"$TEND" mail config --url "smtp://127.0.0.1:$(free_port)" >/dev/null 2>&1
out=$("$TEND" show create --version 1.1 --for carol@example.org 2>&1); rc=$?
like "$rc:$out" "^0:.*show-6: could not mail carol@example.org" "a create whose mail fails warns and exits 0"
is "$(page 6 | head -1)" "version=1.1" "... and the instance is there"

done_testing
