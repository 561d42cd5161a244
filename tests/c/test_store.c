/* hash.c and store.c: SHA-256 vectors, content addressing, dedup, round trips,
 * damaged objects, atomic writes. */
#include "ctest.h"

static void test_sha256(void **state)
{
	lua_State *L = *state;
	lua_is(L, "return core.hash.sha256('abc')",
	       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	lua_is(L, "return core.hash.sha256('')",
	       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	lua_is(L, "return core.hash.new():update('a'):update('bc'):hex()",
	       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	lua_is(L, "local h = core.hash.new(); h:hex(); return tostring(pcall(h.hex, h))", "false");
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local big = string.rep('0123456789abcdef', 65536)\n"
	       "core.fs.write_atomic(dir .. '/f', big)\n"
	       "local hex, size = core.hash.file(dir .. '/f')\n"
	       "return tostring(hex == core.hash.sha256(big)) .. ' ' .. size .. ' ' ..\n"
	       "  select(3, core.hash.file(dir .. '/none'))",
	       "true 1048576 enoent");
	ctest_rm_tree(dir);
}

static void test_put_get(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local data = string.rep('tend ', 100000)\n"
	       "local hex, size, added, stored = st:put_string(data)\n"
	       "local hex2, _, added2, stored2 = st:put_string(data)\n"
	       "assert(hex == core.hash.sha256(data) and hex2 == hex)\n"
	       "assert(stored < size / 50, 'compressed')\n"
	       "local back = st:get_string(hex)\n"
	       "return table.concat({size, tostring(added), tostring(added2), stored2,\n"
	       "  tostring(back == data), tostring(st:has(hex)), #core.fs.list(dir .. '/s/tmp')}, ' ')",
	       "500000 true false 0 true true 0");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local hex = st:put_string('')\n"
	       "return hex .. ' ' .. #st:get_string(hex)",
	       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0");
	ctest_rm_tree(dir);
}

static void test_files_and_damage(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local f = io.open('/dev/urandom', 'rb'); local rnd = f:read(3 << 20); f:close()\n"
	       "core.fs.write_atomic(dir .. '/in', rnd)\n"
	       "local hex, size = assert(st:put_file(dir .. '/in'))\n"
	       "assert(st:get_file(hex, dir .. '/out', tonumber('640', 8)))\n"
	       "local same = core.fs.read(dir .. '/out') == rnd\n"
	       "local mode = string.format('%o', core.fs.stat(dir .. '/out').mode)\n"
	       "assert(st:verify(hex))\n"
	       "local obj = dir .. '/s/objects/' .. hex:sub(1, 2) .. '/' .. hex:sub(3)\n"
	       "local z = core.fs.read(obj)\n"
	       "core.fs.write_atomic(obj, z:sub(1, 100) .. 'X' .. z:sub(102))\n"
	       "local ok, msg, code = st:verify(hex)\n"
	       "local g, gmsg, gcode = st:get_file(hex, dir .. '/again')\n"
	       "return table.concat({size, tostring(same), mode, tostring(ok), code, gcode,\n"
	       "  tostring(core.fs.stat(dir .. '/again')), #core.fs.list(dir)}, ' ')",
	       "3145728 true 640 nil corrupt corrupt nil 3");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local _, _, c1 = st:get_string(string.rep('0', 64))\n"
	       "local _, _, c2 = st:put_file(dir .. '/none')\n"
	       "local ok = pcall(st.has, st, 'not-hex')\n"
	       "return c1 .. ' ' .. c2 .. ' ' .. tostring(ok)",
	       "enoent enoent false");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_files_and_damage),
	};
	return CTEST_RUN("store", tests);
}
