#!/bin/bash
# watch over SSH, on a WordPress copy of its own: the first run sets the baseline; a file
# edited with its mtime put back, one added in the uploads and one removed are all
# caught (exit 3) and mailed in one message; so are a mode change and a file outside
# the web root; ignored paths are not; accept makes the next run clean; a check that
# cannot run exits 1 and mails that.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd wordpress smtp
fresh_home
T=$(harness_tmp)
W=$T/w/site
mkdir -p "$T/w" "$T/etc" && cp -a "$WP_PATH" "$W"
echo "listen = 9000" > "$T/etc/pool.conf"
mkdir -p "$W/wp-content/cache" && echo one > "$W/wp-content/cache/page.html"
"$TEND" mail config --url "smtp://127.0.0.1:$SMTP_PORT" --from tend@example.org >/dev/null
"$TEND" instance add w --app wordpress --host "$SSHD_URL" --ssh-key "$SSHD_KEY" \
  --path "$W" --contact ops@example.org --watch-path "$T/etc/pool.conf" --watch-ignore 'wp-content/cache' >/dev/null 2>&1
"$TEND" host trust w >/dev/null 2>&1
mails() { grep -l -- "$1" "$SMTP_MAILDIR"/new/* 2>/dev/null | wc -l; }

out=$("$TEND" watch w 2>&1); rc=$?
like "$rc:$out" "^0:.*w: baseline set: [0-9]+ entries" "the first watch sets the baseline"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT count(*) FROM watch_files WHERE path = '$T/etc/pool.conf'")" 1 \
  "... including the watch path outside the web root"
out=$("$TEND" watch w 2>&1); rc=$?
is "$rc:$out" "0:w: no file differs from the baseline of $(date +%Y-%m-%d) $(sqlite3 "$TEND_HOME/catalog.db" "SELECT strftime('%H:%M', value, 'unixepoch', 'localtime') FROM meta WHERE key LIKE 'watch.accepted.%'")" \
  "an unchanged instance is clean: exit 0"

# Behind tend's back: an edit with the mtime put back, a file added, one removed.
f=$W/wp-includes/version.php
cp -p "$f" "$T/ref" && sed -i 's/wp_version = /wp_version  = /' "$f" && touch -r "$T/ref" "$f"
is "$(stat -c %Y "$f")" "$(stat -c %Y "$T/ref")" "(the edited file keeps its mtime)"
echo '<?php system($_GET["c"]);' > "$W/wp-content/uploads/shell.php"
rm "$W/wp-activate.php"
chmod 666 "$W/wp-login.php"
n=5; owner=$(stat -c %u:%g "$W/wp-cron.php")
if [ "$(id -u)" = 0 ]; then chown 1:1 "$W/wp-cron.php"; n=6; fi
echo "listen = 9001" > "$T/etc/pool.conf"
echo two > "$W/wp-content/cache/page.html"
out=$("$TEND" watch w 2>&1); rc=$?
is "$rc" 3 "differences: exit 3"
like "$out" "changed  wp-includes/version.php \\(content\\)" "the edit with its mtime put back is caught"
like "$out" "added    wp-content/uploads/shell.php" "the file added in the uploads"
like "$out" "removed  wp-activate.php" "the file removed"
like "$out" "changed  wp-login.php \\(mode 644 -> 666\\)" "a mode change"
if [ "$n" = 6 ]; then like "$out" "changed  wp-cron.php \\(owner $owner -> 1:1\\)" "an owner change"
else _tap_result 0 "# SKIP an owner change needs root"; fi
like "$out" "changed  $(re_escape "$T/etc/pool.conf") \\(content\\)" "a file outside the web root"
unlike "$out" "cache/page.html" "an ignored path is not reported"
like "$out" "w: $n differences from the baseline" "... all of them, and nothing else"
wait_for "the alert" 10 has_mail "Subject: tend: watch w: $n files differ"
is "$(mails "Subject: tend: watch w: $n files differ")" 1 "one e-mail goes to the contact"
alert=$(grep -l "Subject: tend: watch w: $n files differ" "$SMTP_MAILDIR"/new/* | head -1)
like "$(cat "$alert")" "To: ops@example.org" "... addressed to the instance's contact"
like "$(cat "$alert")" "wp-includes/version.php.*shell.php.*wp-activate.php" "... listing the three files"
like "$(cat "$alert")" "tend watch accept w" "... and how to accept them"

out=$("$TEND" --json watch w 2>/dev/null); rc=$?
like "$rc:$out" "^3:.*\"differences\":$n" "--json says the same"

# Accepting a part moves only that part; accepting all makes the next run clean.
"$TEND" watch accept w wp-content/uploads >/dev/null 2>&1
out=$("$TEND" watch w 2>&1); rc=$?
like "$rc:$out" "^3:.*$((n - 1)) differences" "accept PATH accepts only that path"
unlike "$out" "shell.php" "... so the upload is no longer reported"
ok "watch accept w" "$TEND" watch accept w
out=$("$TEND" watch w 2>&1); rc=$?
like "$rc:$out" "^0:w: no file differs" "after accept, the next run is clean"

# A host without sha256sum: its files come over in a tar stream and are hashed here.
bin=$T/bin-without-sha256sum
mkdir -p "$bin"
for tool in sh find xargs nproc stdbuf tar cat rm mktemp; do ln -sf "$(command -v "$tool")" "$bin/$tool"; done
L=$T/local-site
mkdir -p "$L/sub" && echo one > "$L/a.txt" && echo two > "$L/sub/b.txt"
"$TEND" instance add nosum --app generic --path "$L" >/dev/null 2>&1
PATH=$bin "$TEND" watch nosum >/dev/null 2>&1
cp -p "$L/a.txt" "$T/a.ref" && echo ONE > "$L/a.txt" && touch -r "$T/a.ref" "$L/a.txt"
out=$(PATH=$bin "$TEND" watch nosum 2>&1); rc=$?
like "$rc:$out" "^3:.*changed  a.txt \\(content\\)" "without sha256sum on the host, the files are hashed here: the edit is caught"
unlike "$out" "sub/b.txt" "... and only the edit"

# A check that cannot run: exit 1, and a mail that says so.
port=$(free_port)
"$TEND" instance edit w --host "ssh://$SSHD_USER@127.0.0.1:$port" >/dev/null 2>&1
out=$("$TEND" watch w 2>&1); rc=$?
like "$rc:$out" "^1:tend: watch: .*127.0.0.1:$port" "a watch that cannot reach its host exits 1, naming it"
wait_for "the failure mail" 10 has_mail "Subject: tend: watch w FAILED"
ok "... and mails that the check failed" has_mail "Subject: tend: watch w FAILED"

done_testing
