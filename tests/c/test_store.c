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
	       "local hex, size, added = st:put_string(data)\n"
	       "local hex2, _, added2 = st:put_string(data)\n"
	       "assert(hex == core.hash.sha256(data) and hex2 == hex)\n"
	       "local back = st:get_string(hex)\n"
	       "assert(st:sync())\n"
	       "assert(st:written() > 0 and st:written() < size / 50, 'compressed, once')\n"
	       "local big = string.rep('tend big ', 200000)\n"
	       "local bhex, bsize, badded = st:put_string(big)\n"
	       "local bkind = st:locate(bhex)\n"
	       "return table.concat({size, tostring(added), tostring(added2), tostring(back == data),\n"
	       "  tostring(st:has(hex)), bsize, tostring(badded), bkind, tostring(st:get_string(bhex) == big),\n"
	       "  #core.fs.list(dir .. '/s/tmp')}, ' ')",
	       "500000 true false true true 1800000 true file true 0");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local hex = st:put_string('')\n"
	       "return hex .. ' ' .. #st:get_string(hex)",
	       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0");
	ctest_rm_tree(dir);
}

static void test_close(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local hex\n"
	       "do\n"
	       "  local st <close> = assert(core.store.open(dir .. '/s'))\n"
	       "  hex = st:put_string('kept')\n"
	       "  assert(st:sync())\n"
	       "end\n"
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local unsynced = st:put_string('never indexed')\n"
	       "st:close(); st:close()\n"
	       "local ok, err = pcall(st.has, st, hex)\n"
	       "local again = assert(core.store.open(dir .. '/s'))\n"
	       "return table.concat({tostring(ok), tostring(err):match('used after close') or tostring(err),\n"
	       "  again:get_string(hex), tostring(again:has(unsynced))}, ' ')",
	       "false used after close kept false");
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
	       "core.fs.write_atomic(obj, z:sub(1, 100) .. string.char(z:byte(101) ~ 0xff) .. z:sub(102))\n"
	       "local ok, msg, code = st:verify(hex)\n"
	       "local g, gmsg, gcode = st:get_file(hex, dir .. '/again')\n"
	       "return table.concat({size, tostring(same), mode, tostring(ok), code, gcode,\n"
	       "  tostring(core.fs.stat(dir .. '/again')), #core.fs.list(dir)}, ' ')",
	       "3145728 true 640 nil corrupt corrupt nil 3");
	/* a read stopped mid-frame (its stream closed) leaves nothing behind for the next
	 * read on the handle, which reuses its decompression context */
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local f = io.open('/dev/urandom', 'rb'); local a, b = f:read(1 << 20), f:read(1 << 20); f:close()\n"
	       "local ha, hb = assert(st:put_string(a .. a .. a)), assert(st:put_string(b .. b .. b)); assert(st:sync())\n"
	       "local p = assert(core.proc.open({'head', '-c', '1000'}, {stdin_pipe = true}))\n"
	       "local ok = st:write_to(ha, p); p:close()\n"
	       "return tostring(ok) .. ' ' .. tostring(st:get_string(hb) == b .. b .. b) .. ' ' .. tostring(st:verify(ha))",
	       "nil true true");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local _, _, c1 = st:get_string(string.rep('0', 64))\n"
	       "local _, _, c2 = st:put_file(dir .. '/none')\n"
	       "local ok = pcall(st.has, st, 'not-hex')\n"
	       "return c1 .. ' ' .. c2 .. ' ' .. tostring(ok)",
	       "enoent enoent false");
	ctest_rm_tree(dir);
}

static void test_packs(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local hexes = {}\n"
	       "for i = 1, 3000 do hexes[i] = st:put_string('small object ' .. i .. string.rep('x', i % 500)) end\n"
	       "local _, _, again = st:put_string('small object 7' .. string.rep('x', 7))\n"
	       "local kind = st:locate(hexes[10])\n"
	       "local before = st:get_string(hexes[10])\n"
	       "local big = st:put_string(string.rep('big ', 300000))\n"
	       "local bigkind = st:locate(big)\n"
	       "assert(st:sync())\n"
	       "local st2 = assert(core.store.open(dir .. '/s'))\n"
	       "local all = true\n"
	       "for i = 1, 3000, 97 do all = all and st2:get_string(hexes[i]) == 'small object ' .. i .. string.rep('x', i % 500) end\n"
	       "local _, _, dup = st2:put_string('small object 9' .. string.rep('x', 9))\n"
	       "return table.concat({kind, tostring(before == 'small object 10' .. string.rep('x', 10)), tostring(again),\n"
	       "  bigkind, tostring(all), tostring(dup), #st2:list(), #core.fs.list(dir .. '/s/packs')}, ' ')",
	       "pack true false file true false 3001 1");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local lost = st:put_string('packed but never synced')\n"
	       "st = nil; collectgarbage()\n"
	       "local st3 = assert(core.store.open(dir .. '/s'))\n"
	       "return tostring(st3:has(lost))",
	       "false");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local hex = st:put_string('to be damaged, in a pack')\n"
	       "local good = st:put_string(string.rep('read after the damaged one ', 50)); assert(st:sync())\n"
	       "local kind, path, off, len = st:locate(hex)\n"
	       "local f = io.open(path, 'r+b'); f:seek('set', off + len // 2); local b = f:read(1)\n"
	       "f:seek('set', off + len // 2); f:write(string.char((b:byte() + 1) % 256)); f:close()\n"
	       "local ok, msg, code = st:verify(hex)\n"
	       "-- the handle's reading context, left mid-frame by the damaged read, starts clean\n"
	       "local after = st:get_string(good) == string.rep('read after the damaged one ', 50)\n"
	       "return kind .. ' ' .. code .. ' ' .. tostring(after)",
	       "pack corrupt true");
	lua_is(L,
	       "local st = assert(core.store.open(dir .. '/s2'))\n"
	       "local a = st:put_string('a'); local b = st:put_string('b'); assert(st:sync())\n"
	       "local c = st:put_string('c'); assert(st:sync())\n"
	       "assert(st:remove(a)); assert(st:remove(b))\n"
	       "local removed = st:prune()\n"
	       "local _, _, code = st:remove(a)\n"
	       "return table.concat({tostring(st:has(a)), tostring(st:has(c)), removed, #core.fs.list(dir .. '/s2/packs'), code}, ' ')",
	       "false true 1 1 enoent");
	ctest_rm_tree(dir);
}

/* Encryption: sealed objects on disk (no plaintext, not a zstd frame), round trips of
 * small (packed) and large (loose) objects, a chunk boundary, plain objects from before,
 * the key checked on open, damage and a cut-short object caught. */
static void test_encrypted(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local plain = assert(core.store.open(dir .. '/s'))\n"
	       "old = plain:put_string('written before encryption: OLDTOKEN'); assert(plain:sync())\n"
	       "key = core.vault.random_secret(32)\n"
	       "assert(plain:encrypt(key))\n"
	       "local _, _, code = plain:encrypt(key)\n"
	       "small = plain:put_string('small SECRETTOKEN ' .. string.rep('s', 100))\n"
	       "local r = {}\n"
	       "for i = 1, 40000 do r[i] = string.char((i * 7919 + i // 3) % 256) end\n"
	       "bigdata = string.rep('big SECRETTOKEN ', 100000) .. table.concat(r)\n"
	       "big = plain:put_string(bigdata)\n"
	       "exact = plain:put_string(string.rep('e', 65536 * 2))\n"
	       "assert(plain:sync())\n"
	       "return code",
	       "exists");
	lua_is(L,
	       "local function slurp(p) local f = assert(io.open(p, 'rb')); local d = f:read('a'); f:close(); return d end\n"
	       "local seen = {}\n"
	       "for _, sub in ipairs(core.fs.list(dir .. '/s/objects')) do\n"
	       "  for _, f in ipairs(core.fs.list(dir .. '/s/objects/' .. sub)) do seen[#seen + 1] = slurp(dir .. '/s/objects/' .. sub .. '/' .. f) end\n"
	       "end\n"
	       "for _, f in ipairs(core.fs.list(dir .. '/s/packs')) do seen[#seen + 1] = slurp(dir .. '/s/packs/' .. f) end\n"
	       "local all = table.concat(seen)\n"
	       "local st = assert(core.store.open(dir .. '/s', nil, key))\n"
	       "local kind, path = st:locate(big)\n"
	       "return table.concat({tostring(all:find('SECRETTOKEN', 1, true)), tostring(all:find('OLDTOKEN', 1, true) ~= nil),\n"
	       "  kind, slurp(path):sub(1, 8), tostring(st:sealed(big)), tostring(st:sealed(small)), tostring(st:sealed(old)),\n"
	       "  tostring(st:get_string(big) == bigdata), st:get_string(small), #st:get_string(exact), st:get_string(old)}, ' ')",
	       "nil true file tendenc1 true true false true small SECRETTOKEN " \
	       "ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss "
	       "131072 written before encryption: OLDTOKEN");
	lua_is(L,
	       "local _, _, locked = core.store.open(dir .. '/s')\n"
	       "local _, msg, bad = core.store.open(dir .. '/s', nil, core.vault.random_secret(32))\n"
	       "local _, _, plainkey = core.store.open(dir .. '/p', nil, key)\n"
	       "return table.concat({locked, bad, tostring(msg:find('wrong store key') ~= nil), plainkey}, ' ')",
	       "locked badkey true einval");
	lua_is(L, /* a sealed packed object damaged, a sealed loose one cut short (then mended) */
	       "local st = assert(core.store.open(dir .. '/s', nil, key))\n"
	       "local kind, path, off, len = st:locate(small)\n"
	       "local f = io.open(path, 'r+b'); f:seek('set', off + len - 5); local b = f:read(1)\n"
	       "f:seek('set', off + len - 5); f:write(string.char((b:byte() + 1) % 256)); f:close()\n"
	       "local _, _, damaged = st:verify(small)\n"
	       "local _, bpath = st:locate(big)\n"
	       "local data = io.open(bpath, 'rb'):read('a')\n"
	       "local w = io.open(bpath, 'wb'); w:write(data:sub(1, #data - 100)); w:close()\n"
	       "local _, _, cut = st:verify(big)\n"
	       "local w2 = io.open(bpath, 'wb'); w2:write(data); w2:close()\n"
	       "return table.concat({damaged, cut, tostring(st:verify(big))}, ' ')",
	       "corrupt corrupt true");
	ctest_rm_tree(dir);
}

/* A damaged object is replaced by the next good copy that is stored: packed (the
 * index points at the new copy) and loose (renamed over); counted by st:healed(). */
static void test_heal(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local function flip(path, at)\n"
	       "  local z = core.fs.read(path)\n"
	       "  local b = string.char(z:byte(at) ~ 0xff)\n"
	       "  core.fs.write_atomic(path, z:sub(1, at - 1) .. b .. z:sub(at + 1))\n"
	       "end\n"
	       "local st = assert(core.store.open(dir .. '/s'))\n"
	       "local small, big = string.rep('small object ', 100), string.rep('big object ', 200000)\n"
	       "local shex = st:put_string(small); local bhex = st:put_string(big)\n"
	       "assert(st:sync())\n"
	       "local kind, pack, off, len = st:locate(shex)\n"
	       "flip(pack, off + len - 2)\n"
	       "local _, loose = st:locate(bhex)\n"
	       "flip(loose, 200)\n"
	       "st = assert(core.store.open(dir .. '/s'))\n"
	       "local d1, d2 = select(3, st:verify(shex)), select(3, st:verify(bhex))\n"
	       "local _, _, again = st:put_string(small)\n"
	       "local _, _, bagain = st:put_string(big)\n"
	       "assert(st:sync())\n"
	       "local healed = st:healed()\n"
	       "local _, _, third = st:put_string(small)\n"
	       "st = assert(core.store.open(dir .. '/s'))\n"
	       "return table.concat({kind, d1, d2, tostring(again), tostring(bagain), healed, tostring(third),\n"
	       "  tostring(st:verify(shex)), tostring(st:verify(bhex)), tostring(st:get_string(shex) == small),\n"
	       "  #st:list()}, ' ')",
	       "pack corrupt corrupt true true 2 false true true true 2");
	ctest_rm_tree(dir);
}

/* Records (store_record.c): compressed, sealed with the store's key when it has one;
 * a changed byte, another key's record, a plain record in an encrypted store refused. */
static void test_records(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local plain = assert(core.store.open(dir .. '/p'))\n"
	       "local key, other = core.vault.random_secret(32), core.vault.random_secret(32)\n"
	       "local enc = assert(core.store.open(dir .. '/e')); assert(enc:encrypt(key))\n"
	       "local oth = assert(core.store.open(dir .. '/o')); assert(oth:encrypt(other))\n"
	       "local r = {}\n"
	       "for i = 1, 80000 do r[i] = string.char((i * 7919 + i // 3) % 256) end\n"
	       "local text = string.rep('catalog RECORDTOKEN ', 5000) .. table.concat(r)\n"
	       "local p, e = plain:seal(text), enc:seal(text)\n"
	       "local bad = e:sub(1, 100) .. string.char((e:byte(101) + 1) % 256) .. e:sub(102)\n"
	       "local _, _, c1 = enc:unseal(bad)\n"
	       "local _, _, c2 = oth:unseal(e)\n"
	       "local _, _, c3 = enc:unseal(p)\n"
	       "local _, _, c4 = plain:unseal(e)\n"
	       "local _, _, c5 = enc:unseal(e:sub(1, #e - 20))\n"
	       "return table.concat({tostring(plain:unseal(p) == text), tostring(enc:unseal(e) == text), e:sub(1, 8),\n"
	       "  tostring(e:find('RECORDTOKEN', 1, true)), tostring(#p < #text), c1, c2, c3, c4, c5,\n"
	       "  enc:unseal(enc:seal(''))}, ' ')",
	       "true true tendenc1 nil true badmsg badmsg badmsg locked badmsg ");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_files_and_damage),
		cmocka_unit_test(test_packs),
		cmocka_unit_test(test_heal),
		cmocka_unit_test(test_encrypted),
		cmocka_unit_test(test_records),
	};
	return CTEST_RUN("store", tests);
}
