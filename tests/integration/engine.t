#!/bin/bash
# The binary and its Lua library: --lua-dir for development, the API check between
# engine and library, the recipe search path, the engine as a module for stock lua5.4.
cd "$(dirname "$0")/../.." || exit 1
. tests/harness/tap.sh
. tests/harness/services.sh
fresh_home
dev=$(harness_tmp)/dev
mkdir -p "$dev"
cp -r lua recipes "$dev/"

sed -i 's/^Keeps web-application instances/Development copy: keeps web-application instances/' "$dev/lua/tend/cli.lua"
like "$("$TEND" --lua-dir "$dev/lua" --help)" "Development copy: keeps" "--lua-dir loads the Lua library from a source tree"
like "$(TEND_LUA_DIR=$dev/lua "$TEND" --help)" "Development copy: keeps" "TEND_LUA_DIR does the same"
unlike "$("$TEND" --help)" "Development copy" "without it the embedded library is used"

sed -i 's/summary = "Reach an instance/summary = "DEV Reach an instance/' "$dev/recipes/check.lua"
like "$(cd "$(harness_tmp)" && "$TEND" --lua-dir "$dev/lua" recipes)" "check +DEV Reach" "--lua-dir takes bundled recipes from beside the library"

sed -i 's/^local API = 1$/local API = 99/' "$dev/lua/tend/init.lua"
err=$("$TEND" --lua-dir "$dev/lua" --version 2>&1); rc=$?
is "$rc:$err" "1:tend: this Lua library needs engine API 99, the engine has 1; rebuild tend" \
  "a library that does not match the engine is refused in one line"

cp -r lua "$dev/broken" && echo 'this is not lua' >> "$dev/broken/tend/cli.lua"
err=$("$TEND" --lua-dir "$dev/broken" --version 2>&1); rc=$?
like "$rc:$err" "^1:tend: error loading module .tend.cli.*cli.lua:[0-9]+: <eof> expected" "a broken library gives one line and exit 1"
is "$(printf '%s\n' "$err" | wc -l)" 1 "... only one line without --debug"
err=$("$TEND" --lua-dir "$dev/broken" --debug --version 2>&1)
like "$err" "stack traceback" "... and a traceback with --debug"

err=$("$TEND" --lua-dir "$dev/nowhere" --version 2>&1); rc=$?
is "$rc:$err" "1:tend: --lua-dir $dev/nowhere: no tend/cli.lua there" "a --lua-dir without the library says so"

# The recipe path: --recipes DIR, $TEND_RECIPE_PATH, then $XDG_CONFIG_HOME/tend/recipes,
# then bundled; never ./recipes (a recipes/ folder where root or cron runs tend).
export XDG_CONFIG_HOME=$(harness_tmp)/config
mkdir -p "$XDG_CONFIG_HOME/tend/recipes" "$(harness_tmp)/work/recipes" "$(harness_tmp)/path-a" "$(harness_tmp)/path-b"
cat > "$XDG_CONFIG_HOME/tend/recipes/hello.lua" <<'LUA'
return { name = "hello", summary = "from the config dir", run = function(ctx) print("config") end }
LUA
cat > "$XDG_CONFIG_HOME/tend/recipes/check.lua" <<'LUA'
return { name = "check", summary = "config check", run = function(ctx) print("config check") end }
LUA
is "$(cd "$(harness_tmp)" && "$TEND" hello)" "config" "a recipe in \$XDG_CONFIG_HOME/tend/recipes runs"
is "$(cd "$(harness_tmp)" && "$TEND" check)" "config check" "it overrides the bundled one of the same name"
cat > "$(harness_tmp)/work/recipes/hello.lua" <<'LUA'
return { name = "hello", summary = "from ./recipes", run = function(ctx) print("cwd") end }
LUA
cat > "$(harness_tmp)/work/recipes/planted.lua" <<'LUA'
return { name = "planted", summary = "x", run = function(ctx) print("ran from the working directory") end }
LUA
is "$(cd "$(harness_tmp)/work" && "$TEND" hello)" "config" "./recipes is not on the path: the config dir's recipe runs"
like "$(cd "$(harness_tmp)/work" && "$TEND" planted 2>&1; echo "rc=$?")" "unknown command or recipe \"planted\".*rc=2" \
  "... and a recipe only in ./recipes is not found"
unlike "$(cd "$(harness_tmp)/work" && "$TEND" recipes)" "planted|from ./recipes" "... nor listed"
is "$(cd "$(harness_tmp)/work" && "$TEND" --recipes recipes hello)" "cwd" "--recipes DIR puts a folder first"
for d in a b; do
  printf 'return { name = "hello", summary = "from path-%s", run = function(ctx) print("path-%s") end }\n' "$d" "$d" \
    > "$(harness_tmp)/path-$d/hello.lua"
done
is "$(TEND_RECIPE_PATH="$(harness_tmp)/path-a:$(harness_tmp)/path-b" "$TEND" hello)" "path-a" \
  "\$TEND_RECIPE_PATH: its folders in order, before the config dir"
is "$(TEND_RECIPE_PATH="$(harness_tmp)/path-b" "$TEND" --recipes "$(harness_tmp)/path-a" hello)" "path-a" \
  "--recipes comes before \$TEND_RECIPE_PATH"
like "$(TEND_RECIPE_PATH="$(harness_tmp)/path-b" "$TEND" recipes)" "hello +from path-b" "recipes lists the winner"
unset XDG_CONFIG_HOME

# The same engine as a module for stock lua5.4.
out=$(LUA_PATH="$TEND_SRC/lua/?.lua;$TEND_SRC/lua/?/init.lua;;" LUA_CPATH="$TEND_SRC/build/lua/?.so;;" \
  lua5.4 -e 'local tend = require "tend"; local r = tend.core.proc.run({"echo", "hi"}); io.write(tend.API, " ", r.stdout)')
is "$out" "1 hi" "stock lua5.4 requires tend and runs the engine"

done_testing
