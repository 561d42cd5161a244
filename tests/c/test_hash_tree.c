/* hash_tree.c: every file's SHA-256 on several threads, symlinks recorded and not
 * followed, the stat cache reused, and not fooled by an mtime set back. */
#include "ctest.h"

static void test_tree(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_ok(L,
	       "local fs = core.fs\n"
	       "assert(fs.mkdir_p(dir .. '/site/sub/deep'))\n"
	       "for i = 1, 300 do assert(fs.write_atomic(dir .. '/site/sub/f' .. i, string.rep('x', i * 37) .. i)) end\n"
	       "assert(fs.write_atomic(dir .. '/site/big', string.rep('0123456789', 300000)))\n"
	       "assert(fs.write_atomic(dir .. '/outside', 'not in the tree'))\n"
	       "os.execute('ln -s ../outside ' .. dir .. '/site/up')\n"
	       "-- files changed in the second before a scan are not cached: let a second pass\n"
	       "os.execute('sleep 1.1')\n");
	lua_is(L,
	       "local list, stats = assert(core.hash.tree(dir .. '/site', {cache = dir .. '/cache.db', jobs = 3}))\n"
	       "local by, right = {}, 0\n"
	       "for _, e in ipairs(list) do by[e.path] = e end\n"
	       "for i = 1, 300 do\n"
	       "  if by['sub/f' .. i].sha256 == core.hash.sha256(string.rep('x', i * 37) .. i) then right = right + 1 end\n"
	       "end\n"
	       "local sorted = true\n"
	       "for i = 2, #list do sorted = sorted and list[i - 1].path < list[i].path end\n"
	       "return table.concat({right, tostring(by.big.sha256 == core.hash.sha256(string.rep('0123456789', 300000))),\n"
	       "  by.up.type, by.up.link, tostring(by.up.sha256), by['sub/deep'].type, tostring(sorted),\n"
	       "  stats.files, stats.hashed, stats.cached}, ' ')",
	       "300 true link ../outside nil dir true 301 301 0");
	lua_is(L, /* the second scan reads nothing */
	       "local _, stats = assert(core.hash.tree(dir .. '/site', {cache = dir .. '/cache.db'}))\n"
	       "return stats.hashed .. ' ' .. stats.cached .. ' ' .. stats.bytes_hashed",
	       "0 301 0");
	lua_is(L, /* same size, mtime set back: ctime gives it away */
	       "os.execute('touch -r ' .. dir .. '/site/sub/f5 ' .. dir .. '/ref')\n"
	       "local f = io.open(dir .. '/site/sub/f5', 'r+'); f:write('Y'); f:close()\n"
	       "os.execute('touch -r ' .. dir .. '/ref ' .. dir .. '/site/sub/f5')\n"
	       "local list, stats = assert(core.hash.tree(dir .. '/site', {cache = dir .. '/cache.db'}))\n"
	       "local got\n"
	       "for _, e in ipairs(list) do if e.path == 'sub/f5' then got = e.sha256 end end\n"
	       "local want = core.hash.sha256('Y' .. string.rep('x', 5 * 37 - 1) .. 5)\n"
	       "return stats.hashed .. ' ' .. tostring(got == want)",
	       "1 true");
	lua_is(L, /* without a cache every file is read; a missing root is an error */
	       "local _, stats = assert(core.hash.tree(dir .. '/site'))\n"
	       "local _, _, code = core.hash.tree(dir .. '/none')\n"
	       "return stats.hashed .. ' ' .. code",
	       "301 enoent");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
	};
	return CTEST_RUN("hash_tree", tests);
}
