#!/bin/bash
# The show server's web page (tend show serve), driven in Debian's headless Chromium
# through chromedriver: log in, ask for an instance of a version from the form, watch the
# job, get its URL and admin password, see it listed, destroy it. Without a session
# nothing is served; a forged form (no token, a wrong one, another origin) and someone
# else's instance are refused. Screenshots go to $TEND_SCREENSHOTS when it is set.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
. tests/harness/webdriver.sh
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP Apache for the fixture needs root"; exit 0; }
command -v chromedriver >/dev/null || { echo "1..0 # SKIP no chromedriver (vendor/install test)"; exit 0; }
need sshd smtp
fresh_home
T=$(harness_tmp)
SHOTS=${TEND_SCREENSHOTS:-$T/shots}; mkdir -p "$SHOTS"
REPO=$T/repo
tests/fixtures/app/make-repo "$REPO"
ROOT=$T/show; mkdir -p "$ROOT"
PS=$(free_port); apache_serve "$ROOT" "$PS" --vhosts || bail "apache would not start"
"$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from show@example.org >/dev/null
# the show host's key, trusted through an instance on it
"$TEND" instance add hostkey --app generic --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$T" >/dev/null 2>&1
"$TEND" host trust hostkey >/dev/null 2>&1
"$TEND" show config --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --root "$ROOT" --url "http://{n}.show.localhost:$PS" \
  --app generic --repo "$REPO" --db 'sqlite://{root}/data/app.db' --migrate "php migrate.php" \
  --password-cmd "php password.php" >/dev/null 2>&1
printf 'alice-pass-123\n' | "$TEND" show user alice@example.org >/dev/null 2>&1
printf 'bob-pass-4567\n' | "$TEND" show user bob@example.org >/dev/null 2>&1
like "$(printf 'short\n' | "$TEND" show user carol@example.org 2>&1; echo "rc=$?")" "at least 8 characters.*rc=2" "a short password is refused"

PW=$(free_port)
"$TEND" show serve --listen "127.0.0.1:$PW" >"$T/serve.log" 2>&1 &
HARNESS_PIDS="$HARNESS_PIDS $!"
wait_for "the show server" 20 _port_open "$PW" || bail "tend show serve did not start: $(cat "$T/serve.log")"
W=http://127.0.0.1:$PW

# nothing without a session
is "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$W/")" "303 $W/login" "without a session / sends to the login page"
is "$(curl -s -o /dev/null -w '%{http_code}' -d 'version=1.0' "$W/create")" 403 "... and a form is refused"
is "$(curl -s -o /dev/null -w '%{http_code}' "$W/job/0123abcd")" 303 "... and a job page too"
like "$(curl -s -d 'email=alice@example.org&password=wrong' "$W/login")" "Wrong e-mail or password" "a wrong password is refused"

# the browser
wd_start || bail "chromium would not start: $(tail -5 "$T/chromedriver.log")"
wd_go "$W/"
like "$(wd_url)" "/login$" "the browser lands on the login page"
wd_type 'input[name=email]' alice@example.org
wd_type 'input[name=password]' alice-pass-123
wd_shot "$SHOTS/1-login.png"
wd_click 'button[type=submit]'
is "$(wd_url)" "$W/" "logging in leads to the list"
like "$(wd_text body)" "Logged in as alice@example.org" "... which says who is logged in"
is "$(wd_count 'select[name=version] option')" 4 "the form offers the repository's tags and branches"
wd_select 'select[name=version]' 1.1
wd_shot "$SHOTS/2-form.png"
wd_click 'form[action="/create"] button[type=submit]'
like "$(wd_url)" "/job/[0-9a-f]+$" "asking for one shows its job"
got_url() { [ -n "$(wd_text '#url')" ]; }
wait_for "the instance to be ready" 180 got_url
url=$(wd_text '#url'); pw=$(wd_text '#password')
is "$url" "http://1.show.localhost:$PS" "the job page gives its URL"
is "$(php -r 'echo password_verify($argv[1], file_get_contents($argv[2])) ? "yes" : "no";' "$pw" "$ROOT/1/data/admin.pw")" yes \
  "... and its admin password"
wd_shot "$SHOTS/3-ready.png"
is "$(curl -s "$url/" | head -1)" "version=1.1" "the instance answers with the version asked for"
wd_go "$W/"
like "$(wd_text '#instances')" "show-1 1.1 alice@example.org http://1.show.localhost:$PS" "the list shows it with its URL"
wd_shot "$SHOTS/4-list.png"

# forged forms, with alice's own session cookie
cookie=$(_wd GET "/session/$WD_SESSION/cookie/tend_show" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
post() { curl -s -o /dev/null -w '%{http_code}' -b "tend_show=$cookie" "$@"; }
is "$(post -d 'name=show-1' "$W/destroy")" 403 "a form without the session's token is refused"
is "$(post -d 'name=show-1&csrf=0000' "$W/destroy")" 403 "... and one with a wrong token"
csrf=$(curl -s -b "tend_show=$cookie" "$W/" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{20,\}')
is "$(post -H "Origin: http://evil.example" -d "name=show-1&csrf=$csrf" "$W/destroy")" 403 "... and one from another origin"
is "$(ls "$ROOT")" 1 "... show-1 is still there"
# bob's own session cannot touch alice's instance
bobc=$(curl -s -o /dev/null -D - -d 'email=bob@example.org&password=bob-pass-4567' "$W/login" | grep -o 'tend_show=[0-9a-f]*' | cut -d= -f2)
bcsrf=$(curl -s -b "tend_show=$bobc" "$W/" | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{20,\}')
is "$(curl -s -o /dev/null -w '%{http_code}' -b "tend_show=$bobc" -d "name=show-1&csrf=$bcsrf" "$W/destroy")" 403 \
  "someone else's instance cannot be destroyed"
is "$(curl -s -b "tend_show=$bobc" "$W/" | grep -c 'action="/destroy"')" 0 "... nor does their page offer it"

# alice destroys hers in the browser
wd_click 'form[action="/destroy"] button'
is "$(wd_url)" "$W/" "destroy leads back to the list"
like "$(wd_text '#instances')" "none" "... which is empty now"
is "$(ls "$ROOT" | wc -l):$("$TEND" show list 2>&1)" "0:no show instances" "... and the instance is gone whole"
wd_shot "$SHOTS/5-destroyed.png"
wd_click 'form[action="/logout"] button'
like "$(wd_url)" "/login$" "log out"
wd_stop

done_testing
