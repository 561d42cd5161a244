#!/bin/bash
# Every harness service is real and reachable: sshd, MariaDB, WordPress over HTTP, SMTP.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress smtp
plan 7

out=$(ssh -i "$SSHD_KEY" -p "$SSHD_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile="$SSHD_KNOWN_HOSTS" "$SSHD_USER@127.0.0.1" 'echo "remote $((6 * 7))"' 2>&1)
is "$out" "remote 42" "ssh to the test sshd runs a command (host key verified)"

out=$(ssh -i "$SSHD_KEY" -p "$SSHD_PORT" -o BatchMode=yes -o StrictHostKeyChecking=yes \
  -o UserKnownHostsFile=/dev/null "$SSHD_USER@127.0.0.1" true 2>&1)
like "$out" "verification failed|No .* host key is known" "the test sshd is refused with an unknown host key"

out=$(wp_sql 'SELECT DATABASE(), 6*7' 2>&1)
is "$out" "$(printf 'wordpress\t42')" "mysql client reaches the test MariaDB as the app user over TCP"

out=$(wp_sql 'SELECT post_title FROM wp_posts WHERE post_status = "publish" AND post_type = "post" ORDER BY ID DESC LIMIT 1' 2>&1)
is "$out" "$WP_POST_TITLE" "WordPress is installed in the test MariaDB with the known post"

page=$(curl -fsS "$WP_URL/" 2>&1)
like "$page" "$WP_POST_TITLE" "HTTP GET of the WordPress front page shows the known post title"

subject="tend harness mail $RANDOM"
printf 'From: tend@example.test\r\nTo: ops@example.test\r\nSubject: %s\r\n\r\nhello\r\n' "$subject" > "$(harness_tmp)/mail.txt"
curl -fsS "smtp://127.0.0.1:$SMTP_PORT" --mail-from tend@example.test --mail-rcpt ops@example.test \
  -T "$(harness_tmp)/mail.txt" >/dev/null 2>&1
is "$?" "0" "the SMTP sink accepts a mail"
wait_for "mail in the maildir" 5 grep -rq "$subject" "$SMTP_MAILDIR/new"
got=$(grep -rl "$subject" "$SMTP_MAILDIR/new" | wc -l)
is "$got" "1" "the mail is delivered to the sink's maildir"
