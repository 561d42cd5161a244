/* fs.c: mkdir_p, atomic writes, stat, list, errors with codes. */
#include "ctest.h"

static void test_tree(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local fs = core.fs\n"
	       "assert(fs.mkdir_p(dir .. '/a/b/c', tonumber('700', 8)))\n"
	       "assert(fs.mkdir_p(dir .. '/a/b/c'))\n"
	       "assert(fs.write_atomic(dir .. '/a/f', 'one', tonumber('600', 8)))\n"
	       "assert(fs.write_atomic(dir .. '/a/f', 'two'))\n"
	       "local st = fs.stat(dir .. '/a/f')\n"
	       "local names = table.concat(fs.list(dir .. '/a'), ',')\n"
	       "return table.concat({fs.read(dir .. '/a/f'), st.type, st.size, string.format('%o', st.mode),\n"
	       "  fs.stat(dir .. '/a/b/c').type, names}, ' ')",
	       "two file 3 644 dir b,f");
	lua_is(L,
	       "local fs = core.fs\n"
	       "local r1, m1, c1 = fs.read(dir .. '/none')\n"
	       "local r2, m2, c2 = fs.mkdir_p(dir .. '/a/f/x')\n"
	       "local r3, m3, c3 = fs.write_atomic(dir .. '/no/dir/f', 'x')\n"
	       "return table.concat({c1, c2, c3, (m1:gsub('^.*: ', ''))}, ' ')",
	       "enoent enotdir enoent No such file or directory");
	lua_is(L,
	       "local fs = core.fs\n"
	       "for _, p in ipairs({'/a/f', '/a/b/c', '/a/b', '/a', ''}) do assert(fs.remove(dir .. p)) end\n"
	       "return tostring(fs.stat(dir))",
	       "nil");
}

static void test_free_space(void **state)
{
	lua_State *L = *state;
	lua_is(L, "return tostring(core.fs.free_space('/tmp') > 0)", "true");
	lua_is(L, "return select(3, core.fs.free_space('/no/such'))", "enoent");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_free_space),
	};
	return CTEST_RUN("fs", tests);
}
