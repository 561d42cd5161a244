/* rewrite.c under the sanitizers: random dumps built from the bytes its state machine
 * cares about (quotes, backslashes, s:N:", dashes, newlines), fed in random pieces. The
 * output must not depend on the pieces, and input without a match must pass unchanged. */
#include "ctest.h"

static const char *FUZZ =
	"local function through(sql, pairs, dialect, step)\n"
	"  local path = dir .. '/out'\n"
	"  local sink = assert(core.proc.open({'sh', '-c', 'cat > \"$1\"', 'sh', path}, {stdin_pipe = true}))\n"
	"  local rw = core.rewrite.new(pairs, dialect, sink)\n"
	"  local i = 1\n"
	"  while i <= #sql do\n"
	"    local n = step or math.random(1, 40)\n"
	"    assert(rw:write(sql:sub(i, i + n - 1)))\n"
	"    i = i + n\n"
	"  end\n"
	"  assert(rw:send_eof())\n"
	"  assert(sink:wait() == 0)\n"
	"  local out = core.fs.read(path)\n"
	"  rw:close()\n"
	"  return out\n"
	"end\n"
	"local bits = {\"'\", \"'\", \"\\\\\", '\"', '`', 's:', 's:3:\\\\\"', '12', ':', ';', '{', '}', '\\n', '--',\n"
	"  'ab', 'AA', 'A', '\\0', \"''\", 'x'}\n"
	"math.randomseed(7)\n"
	"for round = 1, 300 do\n"
	"  local parts = {}\n"
	"  for k = 1, math.random(1, 80) do parts[k] = bits[math.random(#bits)] end\n"
	"  local sql = table.concat(parts)\n"
	"  local dialect = round % 2 == 0 and 'mysql' or 'sqlite'\n"
	"  local pairs = {{'AA', 'BBBB'}, {'A', ''}}\n"
	"  local whole = through(sql, pairs, dialect, #sql)\n"
	"  assert(through(sql, pairs, dialect) == whole, 'pieces changed the output of ' .. ('%q'):format(sql))\n"
	"  assert(through(sql, {{'zz', 'y'}}, dialect) == sql, 'no match, yet changed: ' .. ('%q'):format(sql))\n"
	"end\n"
	"return 'ok'";

static void test_fuzz(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L, FUZZ, "ok");
	ctest_rm_tree(dir);
}

static void test_serialized(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local path = dir .. '/out'\n"
	       "local sink = assert(core.proc.open({'sh', '-c', 'cat > \"$1\"', 'sh', path}, {stdin_pipe = true}))\n"
	       "local rw = core.rewrite.new({{'http://a', 'http://bbb'}}, 'mysql', sink)\n"
	       "assert(rw:write([[('a:1:{i:0;s:12:\\\"http://a/xyz\\\";}')]]))\n"
	       "assert(rw:send_eof()); sink:wait()\n"
	       "local st = rw:stats()\n"
	       "return core.fs.read(path) .. ' ' .. st.serialized .. ' ' .. st.replaced",
	       "('a:1:{i:0;s:14:\\\"http://bbb/xyz\\\";}') 1 1");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_serialized),
	};
	return CTEST_RUN("rewrite", tests);
}
