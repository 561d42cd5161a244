#!/bin/bash
# The first hour of a new user (issue 20): each rough edge a newcomer met, as they met
# it. --json as scripts want it, export's and import's figures, host check of a login
# that runs no commands, help that names what it wants, schedule add checking the job,
# adopt's hint for an unknown host key, a missing --ssh-key file, did-you-mean, and
# `tend --help` listing the recipes.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
need sshd mariadb wordpress
fresh_home
T=$(harness_tmp)/firsthour
mkdir -p "$T/site/sub"
printf '<?php echo "hi";\n' > "$T/site/index.php"
printf 'a note\n' > "$T/site/sub/note.txt"
"$TEND" instance add site --app generic --path "$T/site" >/dev/null 2>&1 || bail "instance add failed"

# --json: empty lists are [], slashes are not escaped, times carry their zone, and the
# app and its version are apart.
json=$("$TEND" --json instance show site)
like "$json" '"relations":\[\]' "--json gives an empty list as [] (relations)"
like "$json" '"tags":\{\}' "... and an empty map as {} (tags)"
like "$json" "\"path\":\"$T/site\"" "... with slashes as they are"
"$TEND" --quiet backup site >/dev/null 2>&1 || bail "backup of site failed"
json=$("$TEND" --json snapshots site)
like "$json" '"time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"' "... snapshot times in UTC, saying so"
like "$json" '"app":"generic"' "... the app by its name alone"
unlike "$json" '"db":"-"' "... and no placeholder for a snapshot without a database"
like "$("$TEND" snapshots site)" "[0-9]{2}:[0-9]{2}:[0-9]{2} UTC" "the table says its times are UTC too"

# export counts the site's files, not the dump, manifest and meta.json beside them.
out=$("$TEND" export site latest "$T/site.tar.gz" 2>&1)
like "$out" "2 files \\($(cat "$T/site/index.php" "$T/site/sub/note.txt" | wc -c) bytes\\)" "export says the site's 2 files and their bytes"
is "$(tar -tzf "$T/site.tar.gz" | grep -c '^files/.*[^/]$')" 2 "... which are the archive's files under files/"

# import dates the snapshot when it was taken, not now.
taken=$(sqlite3 "$TEND_HOME/catalog.db" "SELECT started_at FROM snapshots WHERE id = 1")
python3 - "$T/site.tar.gz" "$T/old.tar.gz" <<'PY'
import io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as a, tarfile.open(dst, "w:gz") as b:
    for m in a.getmembers():
        data = a.extractfile(m).read() if m.isfile() else None
        if m.name == "meta.json":
            meta = json.loads(data)
            meta["taken_at"] = "2025-03-01T10:00:00Z"
            data = json.dumps(meta).encode()
            m.size = len(data)
        b.addfile(m, io.BytesIO(data) if data is not None else None)
PY
"$TEND" --quiet import site "$T/old.tar.gz" >/dev/null 2>&1 || bail "import failed"
is "$(sqlite3 "$TEND_HOME/catalog.db" "SELECT started_at FROM snapshots WHERE id = 2")" \
  "$(date -u -d 2025-03-01T10:00:00Z +%s)" "an imported export is dated when it was taken"
is "$("$TEND" --json snapshots site | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin)])')" \
  "[1, 2]" "... so the last backup stays the newest snapshot"
[ "$taken" -gt 0 ] || diag "no first snapshot"

# host check of a login whose shell runs no commands fails, saying so.
NOLOGIN=tend-test-nologin
id "$NOLOGIN" >/dev/null 2>&1 || useradd -M -d /tmp -s /usr/sbin/nologin "$NOLOGIN"
usermod -p '*' "$NOLOGIN" # not locked: sshd lets a key in, then the shell refuses
"$TEND" instance add locked --app generic --host "ssh://$NOLOGIN@127.0.0.1:$SSHD_PORT" --ssh-key "$SSHD_KEY" \
  --path /tmp >/dev/null 2>&1
"$TEND" host trust locked >/dev/null 2>&1
out=$("$TEND" host check locked 2>&1); rc=$?
like "$rc:$out" "^1:tend: ssh://$NOLOGIN@127.0.0.1:$SSHD_PORT: logged in, but the account runs no commands \\(This account is currently not available.\\)" \
  "host check of a nologin account fails (exit 1) and says why"
add_wordpress_over_ssh wp
like "$("$TEND" host check wp 2>&1; echo "rc=$?")" "logged in as: +$SSHD_USER.*rc=0" "... while a real login passes"

# help names what a recipe wants.
like "$("$TEND" help watch | head -1)" "^tend watch INSTANCE \\[PATHS\\]" "tend help watch names INSTANCE, not WORDS"
out=$("$TEND" watch 2>&1); rc=$?
is "$rc:$out" "2:tend: watch: missing INSTANCE (tend help watch)" "tend watch alone says what is missing"

# schedule add checks the job's arguments now; schedule list shows the command plainly.
out=$("$TEND" schedule add nightly --cron @daily -- backup nosuch 2>&1); rc=$?
like "$rc:$out" "^2:tend: no instance named \"nosuch\"" "schedule add of a job for an unknown instance is refused (exit 2)"
out=$("$TEND" schedule add nightly --cron @daily -- backup site --rehsh 2>&1); rc=$?
like "$rc:$out" "^2:.*unknown option --rehsh; did you mean --rehash\\?" "... and of an unknown option, with a suggestion"
"$TEND" schedule add nightly --cron @daily -- backup --all -j 2 >/dev/null 2>&1
like "$("$TEND" schedule list)" "nightly .* backup --all -j 2$" "schedule list shows the command as typed"
like "$("$TEND" --json schedule list)" '"argv":\["backup","--all","-j","2"\]' "... and --json gives its words"
"$TEND" schedule rm nightly >/dev/null 2>&1

# adopt over SSH of a host whose key is unknown: the hint works as given.
home2=$(mktemp -d "$(harness_tmp)/tend-home.XXXXXX")
out=$(TEND_HOME=$home2 "$TEND" adopt blog2 --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$WP_PATH" 2>&1); rc=$?
like "$rc:$out" "^1:.*unknown host key .*run: tend host trust $(re_escape "$SSHD_URL"), then adopt again" \
  "adopt with an unknown host key names the host to trust"
ok "... and that command works" env TEND_HOME="$home2" "$TEND" host trust "$SSHD_URL"
out=$(TEND_HOME=$home2 "$TEND" adopt blog2 --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$WP_PATH" 2>&1); rc=$?
is "$rc" 0 "... after which adopt goes through"

# a missing --ssh-key file is named as such.
"$TEND" instance add nokey --app generic --host "$SSHD_URL" --ssh-key "$T/no-such-key" --path /tmp >/dev/null 2>&1
"$TEND" host trust nokey >/dev/null 2>&1
out=$("$TEND" check nokey 2>&1); rc=$?
like "$rc:$out" "^1:.*the key file $(re_escape "$T/no-such-key") \\(--ssh-key\\) cannot be read" \
  "a missing --ssh-key file is named, not 'Unable to extract public key'"

# check's failure does not say "database" twice.
"$TEND" instance add wpbad --app wordpress --host "$SSHD_URL" --ssh-key "$SSHD_KEY" --path "$WP_PATH" \
  --db "mysql://nobody@127.0.0.1:$MARIADB_PORT/nodb" >/dev/null 2>&1
"$TEND" host trust wpbad >/dev/null 2>&1
out=$("$TEND" check wpbad 2>&1)
like "$out" "database: +FAILED: mysql:nobody@" "check's database line names the database once"
unlike "$out" "database: database" "... never 'database: database'"

# did you mean, for instances, recipes and options.
is "$("$TEND" snapshots sit 2>&1)" 'tend: no instance named "sit"; did you mean site? (tend instance list)' \
  "a mistyped instance gets a suggestion"
like "$("$TEND" bakup site 2>&1)" 'unknown command or recipe "bakup"; did you mean backup\?' "... a mistyped recipe too"
like "$("$TEND" instance add x --ap generic 2>&1)" "unknown option --ap; did you mean --app\\?" "... and a built-in's option"

# tend --help lists the recipes found, with their summaries.
help=$("$TEND" --help)
like "$help" "  backup +Snapshot files and database" "tend --help lists backup with its summary"
like "$help" "  clone +Copy SRC onto DST" "... clone, and the rest of the recipes"
mkdir -p "$HOME/.config/tend/recipes"
printf 'return { name = "hello", summary = "A recipe of my own", run = function() end }\n' \
  > "$HOME/.config/tend/recipes/hello.lua"
like "$("$TEND" --help)" "  hello +A recipe of my own" "... and a user's own recipe"
like "$("$TEND" --version)" "^tend [0-9]+\\.[0-9]+ \\(" "--version gives the release, then the commit"

# bash completion: commands and recipes, instances, snapshots, options, as tend lists them.
complete_words() { "$TEND" __complete "$@" | tr '\n' ' '; }
is "$(complete_words 1 tend ba)" "backup " "completion: a recipe's name"
is "$(complete_words 2 tend backup si)" "site " "... an instance"
is "$(complete_words 3 tend restore site '')" "1 2 latest " "... a snapshot of that instance"
is "$(complete_words 2 tend backup --re)" "--rehash " "... an option of the recipe"
is "$(complete_words 2 tend instance sh)" "show " "... a built-in's subcommand"
is "$(complete_words 1 tend --js)" "--json " "... and a global flag"
is "$(complete_words 2 tend bisect '')" "bad good reset skip start " "... the words a recipe's parameter may be"
is "$(complete_words 3 tend bisect start s)" "site " "... and after one, an instance"
out=$(bash -c ". tools/tend.bash-completion; COMP_WORDS=('$TEND' snapshots s); COMP_CWORD=2; _tend; echo \"\${COMPREPLY[*]}\"")
is "$out" "site" "tools/tend.bash-completion fills COMPREPLY from it"

# docs/tiki-manager.md: one row per Tiki Manager command, and every tend command it names
# is one tend has (a recipe or a built-in).
is "$(grep -c '^| `[a-z-]*:[a-z:-]*` |' docs/tiki-manager.md)" 63 "docs/tiki-manager.md maps Tiki Manager's 63 commands"
known=$("$TEND" recipes 2>/dev/null | awk '{print $1}'; printf '%s\n' instance secret host exec store schedule status log mail repl)
missing=""
for w in $( (grep -o '`tend [^`]*`' docs/tiki-manager.md; grep -E '^ *tend ' docs/tiki-manager.md) |
    sed -E 's/^[ `]*tend ((--[a-z]+ )*)//' | awk '{print $1}' | tr -d '`' | sort -u); do
  case $w in --version) continue ;; esac
  printf '%s\n' "$known" | grep -qx -- "$w" || missing="$missing $w"
done
is "$missing" "" "... and every tend command it names exists"

done_testing
