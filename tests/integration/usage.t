#!/bin/bash
# Bad invocations, recipes and built-in commands alike: each exits 2 with one line on
# stderr that says what is wrong (with --quiet: no progress line of the steps before it), prints nothing on stdout, and changes nothing in
# TEND_HOME (the catalog row for row) or on the instance.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
T=$(harness_tmp)
mkdir -p "$T/a" "$T/b" && echo "<?php echo 'a';" > "$T/a/index.php"
"$TEND" instance add a --app generic --path "$T/a" >/dev/null 2>&1
"$TEND" instance add b --app generic --path "$T/b" >/dev/null 2>&1
state() { sqlite3 "$TEND_HOME/catalog.db" .dump; (cd "$T" && find a b -printf '%p %s %T@\n' | sort); }
before=$(state)

# what stderr says (an extended regex) | the invocation ($T expands)
while IFS='|' read -r want argv; do
  [ -z "$argv" ] && continue
  eval "set -- $argv"
  "$TEND" --quiet "$@" > "$T/out" 2> "$T/err" < /dev/null; rc=$?
  err=$(cat "$T/err")
  is "$rc" 2 "tend $argv: exit 2"
  like "$(wc -l < "$T/err"):$err" "^1:tend: .*$want" "... one line: $want"
  is "$(cat "$T/out")" "" "... nothing on stdout"
done <<'CASES'
say which instance \(or --all\)|backup
give an instance or --all, not both|backup a --all
--jobs: "x" is not a whole number|backup --all -j x
--files-only and --db-only exclude each other|clone a b --files-only --db-only
missing DST|clone a
cannot copy a onto itself|clone a a
a has no snapshots|restore a
instance a has no snapshot x|restore a --snapshot x
--files-only and --db-only exclude each other|restore a --snapshot 1 --files-only --db-only
a has no snapshots|verify a
instance a has no snapshot latest|export a latest $T/never.tar
say what to keep|forget a
say on or off, not "sideways"|maintenance a sideways
missing --to|upgrade a
no instance named "nosuch"|check nosuch
only watch accept takes paths|watch a extra
say where the code comes from|create x --version 1.0 --path /tmp/never-made
b has no --db|blank b
unknown app "nosuch"|instance add x --app nosuch --path /x
unknown option --since|log --since soon
unknown option --nosuch|--nosuch
unknown command or recipe "nosuchcmd"|nosuchcmd
no recipe named "nosuch"|help nosuch
usage: tend secret get KEY|secret get
--json: "maybe" is not true or false|--json=maybe instance list
CASES

is "$(state)" "$before" "none of them changed the catalog or the instances' files"
ok "... and export wrote no file" test ! -e "$T/never.tar"
unlike "$("$TEND" --json=false instance list)" '^\[' "--json=false means no JSON"
like "$("$TEND" --json=true instance list)" '^\[\{"' "--json=true means JSON"
done_testing
