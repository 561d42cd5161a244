#!/bin/bash
# Alert mail: configured in the catalog, sent through a real SMTP server (the harness
# sink); a server that does not answer, or no configuration, is one clear line.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need smtp
fresh_home
mails() { grep -l "$1" "$SMTP_MAILDIR"/new/* 2>/dev/null | wc -l; }

like "$("$TEND" mail test ops@example.org 2>&1; echo "rc=$?")" "mail is not set up.*rc=2" "without settings, mail test says how to set mail up"
like "$("$TEND" mail config --url http://x 2>&1; echo "rc=$?")" "must be smtp://.*rc=2" "a URL that is not smtp:// is refused"
like "$("$TEND" mail config --from 'not an address' 2>&1; echo "rc=$?")" "bad e-mail address.*rc=2" "so is a bad From address"
out=$("$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from tend@example.org --tls try 2>&1); rc=$?
like "$rc:$out" "^0:url: +smtp://127.0.0.1:$SMTP_PORT" "mail config stores the settings and shows them"

out=$("$TEND" mail test ops@example.org 2>&1); rc=$?
is "$rc:$out" "0:sent a test message to ops@example.org" "mail test sends, exits 0"
wait_for "the message at the sink" 10 has_mail 'Subject: tend: test message'
msg=$(grep -l 'Subject: tend: test message' "$SMTP_MAILDIR"/new/* | head -1)
like "$(cat "$msg")" "To: ops@example.org" "the sink got it, addressed to the recipient"
like "$(cat "$msg")" "From: tend@example.org" "... from the configured sender"
like "$(cat "$msg")" "Alerts about failed jobs" "... with its body"

"$TEND" mail config --url "smtp://127.0.0.1:1" >/dev/null 2>&1
out=$("$TEND" mail test ops@example.org 2>&1); rc=$?
like "$rc:$out" "^1:tend: mail via smtp://127.0.0.1:1: .*" "a server that does not answer fails in one line naming it"
is "$(printf '%s\n' "$out" | wc -l)" 1 "... one line"
"$TEND" mail config --url '' >/dev/null 2>&1
like "$("$TEND" mail config 2>&1)" "url: +-" "--url '' clears the setting"
done_testing
