#!/bin/bash
# Tiki's chores over SSH on the Tiki-shaped fixture (tests/fixtures/tiki: its setup.sh
# and console.php take Tiki's commands and options) with its database in MariaDB:
# permissions fixed by setup.sh, the scheduler's cron line put in the SSH user's crontab
# once (the other lines kept) and taken out, a temporary user made; a WordPress is no Tiki.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)
command -v crontab >/dev/null || { echo "1..0 # SKIP no crontab command"; exit 0; }
saved=$(crontab -l 2>/dev/null); had=$?
restore_crontab() { if [ "$had" = 0 ]; then printf '%s\n' "$saved" | crontab -; else crontab -r 2>/dev/null; fi; }
trap 'restore_crontab; _harness_cleanup' EXIT

TK=$T/www/tiki
mkdir -p "$T/www" && cp -a tests/fixtures/tiki "$TK" && mkdir -p "$TK/db"
sql -e "CREATE DATABASE ctiki; CREATE USER 'ctiki'@'127.0.0.1' IDENTIFIED BY 'ck pw'; GRANT ALL ON ctiki.* TO 'ctiki'@'127.0.0.1';"
sql ctiki < tests/fixtures/tiki/schema.sql
printf '<?php\n$db_tiki = "mysqli";\n$host_tiki = "127.0.0.1:%s";\n$user_tiki = "ctiki";\n$pass_tiki = "ck pw";\n$dbs_tiki = "ctiki";\n' \
  "$MARIADB_PORT" > "$TK/db/local.php"
"$TEND" instance add tk --app tiki --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$TK" >/dev/null 2>&1
"$TEND" host trust tk >/dev/null 2>&1

# permissions
chmod 700 "$TK/lib"; rm -rf "$TK/temp"
out=$("$TEND" tiki permissions tk 2>&1); rc=$?
like "$rc:$out" "^0:.*Fix special dirs \\.\\.\\. done\\." "tiki permissions runs Tiki's setup.sh fix and says what it said"
is "$(stat -c %a "$TK/lib"):$(stat -c %a "$TK/temp")" "755:775" "... the modes are Tiki's"

# the scheduler's cron line, in the SSH user's crontab (here: ours)
printf '# a line of the operator\n17 3 * * * /usr/local/bin/nightly\n' | crontab -
out=$("$TEND" tiki scheduler tk 2>&1); rc=$?
like "$rc:$out" "^0:.*tk: scheduler cron line in" "tiki scheduler adds the cron line"
line=$(crontab -l | grep -F "console.php scheduler:run")
like "$line" "^\\* \\* \\* \\* \\* cd $TK && php -q console.php scheduler:run" "... every minute, in the web root"
"$TEND" tiki scheduler tk >/dev/null 2>&1
is "$(crontab -l | grep -c "scheduler:run")" 1 "... once, however often it is asked"
like "$(crontab -l)" "17 3 \\* \\* \\* /usr/local/bin/nightly" "... the operator's own line kept"
(cd / && sh -c "${line#\* \* \* \* \* }")
is "$(sql ctiki -e "SELECT count(*) FROM tiki_scheduler_run")" 1 "the line as written runs Tiki's scheduler"
out=$("$TEND" tiki scheduler tk --off 2>&1); rc=$?
like "$rc:$out" "^0:.*scheduler cron line out of" "--off takes it out"
is "$(crontab -l)" "# a line of the operator
17 3 * * * /usr/local/bin/nightly" "... and the crontab is as the operator left it"

# a temporary user
out=$("$TEND" tiki temporary-user tk 2>&1); rc=$?
like "$rc:$out" "^2:.*needs --email" "temporary-user without --email or a contact: exit 2"
out=$("$TEND" tiki temporary-user tk --email dev@example.org --expires 2h 2>&1); rc=$?
like "$rc:$out" "^0:.*Temporary user tend_[0-9a-f]+ created in Admins; its login link was sent to dev@example.org" \
  "temporary-user has Tiki make one and mail its link"
is "$(sql ctiki -e "SELECT concat(u.login, ' ', t.email, ' ', t.\`groups\`, ' ', t.timeout) FROM users_users u JOIN tiki_auth_tokens t ON t.email = u.email")" \
  "$(printf '%s' "$out" | grep -o 'tend_[0-9a-f]*') dev@example.org Admins 7200" "... in Admins, for two hours"

# not a Tiki
"$TEND" instance add wp --app wordpress --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$WP_PATH" >/dev/null 2>&1
out=$("$TEND" tiki permissions wp 2>&1); rc=$?
like "$rc:$out" "^2:.*wp is a wordpress instance, and tend knows no fix permissions for wordpress" "a WordPress is refused (exit 2)"

done_testing
