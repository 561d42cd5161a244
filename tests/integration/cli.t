#!/bin/bash
# The CLI contract: version, help, recipes, exit codes, instance management.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
site=$(harness_tmp)/site
mkdir -p "$site"

# run CMD...: sets OUT (stdout), ERR (stderr) and RC.
run() { OUT=$("$TEND" "$@" 2>"$(harness_tmp)/err"); RC=$?; ERR=$(cat "$(harness_tmp)/err"); }

run --version
is "$RC" 0 "--version exits 0"
like "$OUT" "^tend [0-9a-g]" "--version prints tend and a version"

run --help
is "$RC" 0 "--help exits 0"
like "$OUT" "instance add NAME --app" "--help shows the instance commands"
like "$OUT" "Exit codes: 0 success, 1 the job failed, 2 bad usage" "--help documents the exit codes"

run
is "$RC" 2 "no command is a usage error"

run recipes
is "$RC" 0 "recipes exits 0"
like "$OUT" "check +Reach an instance" "recipes lists check with its summary"

run help check
is "$RC" 0 "help check exits 0"
like "$OUT" "tend check \\[INSTANCE\\] \\[--all\\]" "help check shows the synopsis"
like "$OUT" "INSTANCE +instance +the instance to check" "help check lists the parameter"

run frobnicate
is "$RC" 2 "an unknown recipe exits 2"
is "$(printf '%s\n' "$ERR" | wc -l)" 1 "... with one line"
like "$ERR" 'unknown command or recipe "frobnicate"' "... naming it"

run check nosuch
is "$RC" 2 "check on a missing instance exits 2"
is "$ERR" 'tend: no instance named "nosuch" (tend instance list)' "... with one clear line"

run check a b
is "$RC" 2 "an extra argument exits 2"
like "$ERR" 'unexpected argument "b"' "... naming the argument"

run check --bogus x
is "$RC" 2 "an unknown option exits 2"

run --frob
is "$RC" 2 "an unknown global option exits 2"

run instance add demo --app generic --path "$site" --db "sqlite://$site/app.db" --tag env=test --tag team=ops
is "$RC" 0 "instance add exits 0"
run --json instance show demo
like "$OUT" '"app":"generic"' "instance show --json has the app"
like "$OUT" '"env":"test"' "instance show --json has the tags"
run instance edit demo --tag team=
run --json instance show demo
like "$RC:$OUT" '^0:.*"tags":\{"env":"test"\}' "instance edit --tag KEY= takes a tag off"

run instance add demo --app generic --path "$site"
is "$RC" 2 "adding an existing name exits 2"
run instance add two --app nope --path "$site"
like "$RC:$ERR" '^2:.*unknown app "nope"' "an unknown app exits 2 and names it"
run instance add two --app generic --path relative/dir
like "$RC:$ERR" '^2:.*--path must be absolute' "a relative path exits 2"
run instance add two --app generic --path "$site" --host ftp://x
like "$RC:$ERR" '^2:.*bad host' "a bad host exits 2"
run instance add two --app generic --path "$site" --db postgres://x
like "$RC:$ERR" '^2:.*bad database URL' "a bad database URL exits 2"
run instance add 'bad name' --app generic --path "$site"
is "$RC" 2 "a bad instance name exits 2"

run instance add prod --app wordpress --path /srv/www --host ssh://deploy@web1.invalid:2222 --url https://example.test/
is "$RC" 0 "an ssh:// host is accepted and stored"
run --json instance show prod
like "$OUT" '"host":"ssh://deploy@web1.invalid:2222"' "... and shown"
run check prod
like "$RC:$ERR" "^1:tend: check: instance prod: ssh web1.invalid:2222: " "a run against an unknown host fails in one line naming it, exit 1"

run instance link demo --mirror-of prod
like "$RC:$ERR" "^2:.*needs --lag" "mirror-of without --lag exits 2"
run instance link demo --mirror-of prod --lag 7d
is "$RC" 0 "instance link --mirror-of --lag exits 0"
like "$OUT" "mirror-of: +prod \(lag 7d\)" "the relation shows with its lag"
run instance link demo --dev-of demo
is "$RC" 2 "an instance cannot be its own dev"

run instance edit demo --url http://demo.example.test
is "$RC" 0 "instance edit exits 0"
like "$OUT" "url: +http://demo.example.test" "edit changes the field"
run instance edit demo
is "$RC" 2 "edit with nothing to change exits 2"

run instance list
like "$OUT" "demo +generic +local" "list shows demo"
like "$OUT" "prod +wordpress +ssh://" "list shows prod"

run instance rm prod
is "$RC" 0 "instance rm exits 0"
run --json instance show demo
unlike "$OUT" "mirror-of" "removing the source removes the relation"
run instance rm prod
is "$RC" 2 "removing a missing instance exits 2"

mode=$(stat -c %a "$TEND_HOME")
is "$mode" 700 "the state dir is 0700"
is "$(stat -c %a "$TEND_HOME/catalog.db")" 600 "the catalog is 0600"
is "$("$TEND" --home "$(harness_tmp)/other" --json instance list)" "[]" "--home selects another state dir"

cat > "$(harness_tmp)/broken.lua" <<'LUA'
return { name = "broken", summary = "x", run = function() return undefined_thing end }
LUA
run run "$(harness_tmp)/broken.lua"
like "$RC:$ERR" "^1:tend: broken: .*undefined global 'undefined_thing'" "strict globals: a typo in a recipe fails in one line, exit 1"
run --debug run "$(harness_tmp)/broken.lua"
like "$ERR" "stack traceback" "--debug adds the traceback"

cat > "$(harness_tmp)/badkey.lua" <<'LUA'
return { name = "badkey", summary = "x", colour = "red", run = function() end }
LUA
run run "$(harness_tmp)/badkey.lua"
like "$RC:$ERR" "^1:.*unknown key 'colour'" "a recipe with an unknown key is refused"

mkdir -p "$(harness_tmp)/cwd/recipes"
cat > "$(harness_tmp)/cwd/recipes/check.lua" <<'LUA'
return { name = "check", summary = "my own check",
  params = { { name = "times", type = "int", default = 2 }, { name = "every", type = "duration", default = "1h" } },
  run = function(ctx, args) print("mine " .. args.times .. " " .. args.every); return 3 end }
LUA
OUT=$(cd "$(harness_tmp)/cwd" && "$TEND" --recipes recipes check --times 5); RC=$?
is "$RC:$OUT" "3:mine 5 3600" "a copy on the recipe path overrides the bundled recipe; typed params; its exit code is ours"
OUT=$(cd "$(harness_tmp)/cwd" && "$TEND" --recipes recipes check --times five 2>&1); RC=$?
like "$RC:$OUT" "^2:.*--times: \"five\" is not a whole number" "a bad typed argument exits 2"
OUT=$(cd "$(harness_tmp)/cwd" && "$TEND" --recipes recipes recipes)
like "$OUT" "check +my own check" "recipes lists the overriding copy"

done_testing
