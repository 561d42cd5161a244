#!/bin/bash
# A site reached as the harness's slow-shell user (its ~/.bashrc sleeps 0.3 s at every
# command, as real servers' rc files do): check, backup, a change, restore. The jobs
# must come out the same as on a fast shell; nothing here is timed.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd
[ -n "${SSHD_SLOW_USER:-}" ] || { echo "1..0 # SKIP the slow-shell user needs root"; exit 0; }
fresh_home
T=$(harness_tmp)
site=$T/slow/site # the restore builds beside the web root: its parent is the user's too
mkdir -p "$site/data" "$site/lib"
echo '<?php echo "slow";' > "$site/index.php"
for i in $(seq 1 50); do echo "file $i" > "$site/lib/f$i.php"; done
sqlite3 "$site/data/app.db" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('kept');"
chown -R "$SSHD_SLOW_USER" "$T/slow"
starts() { cat "$(getent passwd "$SSHD_SLOW_USER" | cut -d: -f6)/rc-starts" 2>/dev/null | wc -l; }
before=$(starts)
"$TEND" instance add slow --app generic --host "ssh://$SSHD_SLOW_USER@127.0.0.1:$SSHD_PORT" \
  --ssh-key "$SSHD_KEY" --path "$site" --db "sqlite://$site/data/app.db" >/dev/null 2>&1
"$TEND" host trust slow >/dev/null 2>&1
like "$("$TEND" check slow 2>&1)" "database: +sqlite:.*1 tables: reachable" "check works through a slow login shell"
ok "the rc file really ran for those commands" test "$(starts)" -gt "$before"
sums() { (cd "$site" && find . -type f ! -name '*.db' -exec sha256sum {} + | sort | sha256sum | cut -c1-16); }
s0=$(sums)
out=$("$TEND" --quiet backup slow 2>&1); rc=$?
is "$rc" 0 "backup through a slow login shell"
[ "$rc" = 0 ] || diag "$out"
# tend --debug says how often it started the login shell; the rc file keeps its own count
b=$(starts)
out=$("$TEND" --debug --quiet backup slow 2>&1)
n=$(printf '%s\n' "$out" | sed -n 's/^tend: debug: .*: \([0-9]*\) login-shell start-ups$/\1/p')
diag "an unchanged backup of a SQLite site: $n login-shell start-ups"
# an unused spare channel's shell may still be in its rc file as tend exits: it counts
counted() { [ "$(( $(starts) - b ))" -ge "${n:-1}" ]; }
wait_for "the rc file to count $n starts" 10 counted
is "$n" "$(( $(starts) - b ))" "tend --debug counts a backup's login-shell start-ups (its database helper's too) as the rc file does"
b=$(starts)
out=$("$TEND" --debug check slow 2>&1)
is "$(printf '%s\n' "$out" | sed -n 's/^tend: debug: .*: \([0-9]*\) login-shell start-ups$/\1/p'):$(( $(starts) - b ))" "1:1" \
  "a check starts the login shell once, whatever it asks (one remote shell runs every command)"
like "$out" "tend: debug: +[0-9]+\.[0-9]{3} s ssh://[^ ]+: sh -c " "--debug shows each remote command with the seconds it took"
echo changed > "$site/lib/f7.php"; rm "$site/lib/f9.php"
sqlite3 "$site/data/app.db" "DELETE FROM notes"
out=$("$TEND" --quiet restore slow 2>&1); rc=$?
is "$rc" 0 "restore through a slow login shell"
[ "$rc" = 0 ] || diag "$out"
is "$(sums)" "$s0" "... the files are the snapshot's"
is "$(sqlite3 "$site/data/app.db" 'SELECT body FROM notes')" "kept" "... and so is the database"
is "$(stat -c %U "$site/lib/f7.php")" "$SSHD_SLOW_USER" "... owned by the login user as before"
done_testing
