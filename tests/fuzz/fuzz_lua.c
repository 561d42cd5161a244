/* fuzz_lua.c: one libFuzzer driver for the engine's parsers, each target a Lua function
 * of the input bytes, run on the real bindings (tend.core) under ASan + UBSan. A
 * target's Lua errors are its answers to bad input; only crashes, leaks and undefined
 * behaviour are findings. FUZZ_TARGET (a compile-time string) picks the target:
 *   rewrite   the SQL-literal rewriter (URLs, PHP-serialized lengths), both dialects
 *   rowdiff   the dump differ: the input split in two dumps, compared
 *   tar       the tar reader into a store (our exports, Tiki Manager archives)
 *   import    tend import of an archive, whole: the tar reader, then the readers of our
 *             export's meta.json and of Tiki Manager's manifest.txt, the path checks and
 *             the snapshot's record, on a real catalog and store. Here a Lua error that
 *             is not one of tend's own refusals (tend.errors) is a finding too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "tend.h"

static const char *SETUP =
	"local target = ...\n"
	"local dir = os.getenv('TEND_FUZZ_DIR') or '/tmp'\n"
	"local st = assert(core.store.open(dir .. '/fuzz-store'))\n"
	"local sink = assert(core.proc.open({'sh', '-c', 'exec cat >/dev/null'}, {stdin_pipe = true}))\n"
	"local function put(path, s) local f = assert(io.open(path, 'wb')); f:write(s); f:close() end\n"
	"local targets = {}\n"
	"function targets.rewrite(data)\n"
	"  local dialect = #data % 2 == 0 and 'mysql' or 'sqlite'\n"
	"  local rw = core.rewrite.new({{'http://a.example', 'https://www.b.example'}, {'A', ''}}, dialect, sink)\n"
	"  local n = 1 + (#data > 0 and data:byte(1) % 17 or 0)\n"
	"  for i = 1, #data, n do rw:write(data:sub(i, i + n - 1)) end\n"
	"  rw:flush()\n"
	"end\n"
	"function targets.rowdiff(data)\n"
	"  local cut = data:find('\\0', 1, true) or (#data // 2)\n"
	"  put(dir .. '/fuzz-a.sql', data:sub(1, cut)); put(dir .. '/fuzz-b.sql', data:sub(cut + 1))\n"
	"  core.rowdiff.compare(dir .. '/fuzz-a.sql', dir .. '/fuzz-b.sql', {limit = 5})\n"
	"end\n"
	"function targets.tar(data)\n"
	"  put(dir .. '/fuzz.tar', data)\n"
	"  core.archive.store_tar(dir .. '/fuzz.tar', st)\n"
	"end\n"
	"function targets.import(data)\n"
	"  if not targets.ctx then\n"
	"    table.insert(package.searchers, 2, core.searcher)\n"
	"    package.loaded['tend.core'] = core\n"
	"    targets.ctx = require('tend.context').new({ home = dir .. '/fuzz-home', quiet = true })\n"
	"    targets.inst = require('tend.instance').add(targets.ctx:catalog(), 'fuzz', { app = 'generic', path = '/srv/fuzz' })\n"
	"  end\n"
	"  put(dir .. '/fuzz-import.tar', data)\n"
	"  local ok, err = pcall(require('tend.exchange').import, targets.ctx, targets.inst, dir .. '/fuzz-import.tar')\n"
	"  if not ok and not require('tend.errors').is(err) then error('FINDING: ' .. tostring(err), 0) end\n"
	"  if ok then targets.ctx:catalog():run('DELETE FROM snapshots') end\n"
	"end\n"
	"return targets[target]";

static lua_State *L;
static int fn_ref;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "tend.core", luaopen_tend_core, 0);
	lua_setglobal(L, "core");
	int ok = luaL_loadstring(L, SETUP) == LUA_OK;
	lua_pushstring(L, FUZZ_TARGET);
	if (!ok || lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isfunction(L, -1)) {
		fprintf(stderr, "fuzz setup (%s): %s\n", FUZZ_TARGET, lua_tostring(L, -1));
		exit(1);
	}
	fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		const char *msg = lua_tostring(L, -1);
		if (msg && strncmp(msg, "FINDING: ", 9) == 0) { /* a bug, not an answer */
			fprintf(stderr, "%s\n", msg);
			abort();
		}
		lua_pop(L, 1); /* a refusal of bad input, not a finding */
	}
	lua_gc(L, LUA_GCSTEP, 0);
	return 0;
}
