#!/bin/bash
# Fan-out over many instances on few hosts: `check --all -j N` and `exec --all -j N` run
# N child tends at a time, each over its share of the instances, so that the instances
# on one host share a connection and one login shell per child. Each instance's answer
# and output stay its own; a failure is named at the end and fails the run.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb
fresh_home
T=$(harness_tmp)
chmod 755 "$T"
# two logins (two "hosts" as far as connections go): the slow-shell user where the
# harness has one (root), and the harness's own user
A=${SSHD_SLOW_USER:-$SSHD_USER}
printf '%s' "$MARIADB_PASSWORD" | "$TEND" secret set fleet-db >/dev/null 2>&1
add() { # add NAME USER: a generic app of its own, its database the harness's
  local d=$T/sites/$1
  mkdir -p "$d/lib" && echo "<?php echo '$1';" > "$d/index.php" && echo "<?php // $1" > "$d/lib/a.php"
  chown -R "$2" "$d" 2>/dev/null
  "$TEND" instance add "$1" --app generic --host "ssh://$2@127.0.0.1:$SSHD_PORT" --ssh-key "$SSHD_KEY" --path "$d" \
    --db "mysql://$MARIADB_USER@127.0.0.1:$MARIADB_PORT/$MARIADB_DB" --db-password-secret fleet-db --tag fleet=yes >/dev/null 2>&1
}
mkdir -p "$T/sites" && chmod 755 "$T/sites"
for i in 01 02 03 04 05 06 07 08 09; do add "a$i" "$A"; done
for i in 1 2 3; do add "b$i" "$SSHD_USER"; done
"$TEND" host trust a01 >/dev/null 2>&1

out=$("$TEND" --debug check --all -j 4 2>"$T/err"); rc=$?
is "$rc" 0 "check --all -j 4 over 12 instances on two logins exits 0"
is "$(grep -c ': generic .*database .* tables: ok$' "$T/err")" 12 "... with a line for each instance"
for n in a01 a05 a09 b1 b3; do
  like "$(cat "$T/err")" "(^|
)$n: generic " "... $n among them"
done
shells=$(sed -n 's/^tend: debug: .* \([0-9][0-9]*\) login-shell start-ups.*/\1/p' "$T/err" | tail -1)
diag "counts: $(grep '^tend: debug:' "$T/err" | tail -1)"
is "$shells" 4 "... starting 4 login shells: 3 children for the 9 on one login, 1 for the 3 on the other (not 12)"

"$TEND" --debug check b1 >/dev/null 2>"$T/err"
like "$(cat "$T/err")" "debug: 2 remote commands" \
  "one check is two round trips: what detection reads (every adapter's files at once), and the database"
echo 9.9.1 > "$T/sites/b1/VERSION"
like "$("$TEND" check b1 2>&1)" "app: +generic 9\.9\.1" "... and what it read is the file's (a VERSION file's version)"
rm "$T/sites/b1/VERSION"

json=$("$TEND" --json check --all -j 4 2>/dev/null)
is "$(printf '%s' "$json" | jq -r 'length')" 12 "--json gives the list of 12 reports"
is "$(printf '%s' "$json" | jq -r '[.[].instance] | join(" ")')" "a01 a02 a03 a04 a05 a06 a07 a08 a09 b1 b2 b3" \
  "... in the order of the instances"
is "$(printf '%s' "$json" | jq -r '[.[] | select(.ok and .database.tables >= 0)] | length')" 12 "... each one's own, ok, with its database"

mv "$T/sites/a04" "$T/sites/a04.gone"
out=$("$TEND" check --all -j 4 2>"$T/err"); rc=$?
is "$rc" 1 "with one instance's files gone, check --all -j 4 exits 1"
like "$(cat "$T/err")" "1 of 12 checks failed: a04" "... naming it at the end"
like "$(cat "$T/err")" "check a04: files" "... with what failed"
is "$(grep -c ': tables: ok$\|tables: ok$' "$T/err")" 11 "... and the 11 others checked"
mv "$T/sites/a04.gone" "$T/sites/a04"

out=$("$TEND" exec --tag fleet=yes -j 4 -- sh -c 'pwd; echo to-stderr >&2' 2>"$T/err"); rc=$?
is "$rc" 0 "exec --tag -j 4 over the 12 exits 0"
bad=0
for n in a01 a02 a03 a04 a05 a06 a07 a08 a09 b1 b2 b3; do
  [ "$(printf '%s\n' "$out" | grep "^$n: ")" = "$n: $T/sites/$n" ] || bad=$((bad + 1))
  grep -qx "$n: to-stderr" "$T/err" || bad=$((bad + 1))
done
is "$bad" 0 "each instance's output is its own: its web root on stdout, its line on stderr, prefixed by its name"
like "$(tail -1 "$T/err")" "^12 ok, 0 failed$" "... and the summary says all 12 ran"

out=$("$TEND" exec --all -j 4 -- sh -c 'case "$PWD" in */a07|*/b2) exit 3;; esac' 2>"$T/err"); rc=$?
is "$rc" 1 "exec --all -j 4 where two commands fail exits 1"
like "$(tail -1 "$T/err")" "^10 ok, 2 failed: a07, b2$" "... naming them"
json=$("$TEND" --json exec --all -j 4 -- sh -c 'case "$PWD" in */a07) exit 3;; esac' 2>/dev/null)
is "$(printf '%s' "$json" | jq -r '[.[] | select(.ok | not) | "\(.instance)=\(.code)"] | join(" ")')" "a07=3" \
  "--json says which failed and with what code"

done_testing
