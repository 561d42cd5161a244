/* vault.c: seal/open round trip, tampering, wrong keys, key files, secret formatting. */
#include "ctest.h"

static void test_seal_open(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local v = core.vault\n"
	       "local k = v.new_key()\n"
	       "local box = k:seal('pa$$ w0rd', 'db')\n"
	       "assert(not box:find('pa$$', 1, true))\n"
	       "assert(k:seal('pa$$ w0rd', 'db') ~= box, 'nonces differ')\n"
	       "local s = assert(k:open(box, 'db'))\n"
	       "return s:reveal() .. '|' .. s:len() .. '|' .. tostring(s) .. '|' .. tostring(k)",
	       "pa$$ w0rd|9|secret(********)|vault.key(********)");
}

static void test_wrong_key_and_tamper(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local v = core.vault\n"
	       "local k, other = v.new_key(), v.new_key()\n"
	       "local box = k:seal('value', 'name')\n"
	       "local r1, m1, c1 = other:open(box, 'name')\n"
	       "local r2, m2, c2 = k:open(box, 'other-name')\n"
	       "local flipped = (box:sub(1, 1) == 'A' and 'B' or 'A') .. box:sub(2)\n"
	       "local r3, m3, c3 = k:open(flipped, 'name')\n"
	       "local r4, m4, c4 = k:open('!!', 'name')\n"
	       "return table.concat({tostring(r1), c1, tostring(r2), c2, tostring(r3), c3, c4, m1}, ' ')",
	       "nil auth nil auth nil auth auth vault: cannot decrypt name: wrong vault key or tampered value");
}

static void test_secret_input(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local k = core.vault.new_key()\n"
	       "local s = core.vault.secret('from-secret')\n"
	       "return k:open(k:seal(s, 'n'), 'n'):reveal()",
	       "from-secret");
}

static void test_format_quoted(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local s = core.vault.secret('a\"b\\\\c\\nd')\n"
	       "return s:format('[client]\\npassword=\"%s\"\\n', 'quoted'):reveal()",
	       "[client]\npassword=\"a\\\"b\\\\c\\nd\"\n");
	lua_is(L, "return core.vault.secret('x'):format('<%s>'):reveal()", "<x>");
	lua_is(L, "return select(2, pcall(core.vault.secret('x').format, core.vault.secret('x'), 'none'))"
	          ":match('template has no place for the secret')", "template has no place for the secret");
	lua_is(L, "return core.vault.secret([[it's a\\b]]):format([[%s $p = '@PW@';]], 'single', '@PW@'):reveal()",
	       "%s $p = 'it\\'s a\\\\b';");
	/* every mark, the template a secret itself, and a DSN's percent-encoding */
	lua_is(L, "local pw = core.vault.secret('p@ss:w/rd~1')\n"
	          "local once = pw:format([[$a = '@S@'; $b = '@S@'; dsn = mysql://u:@U@@h/db]], 'single', '@S@')\n"
	          "return pw:format(once, 'url', '@U@'):reveal()",
	       "$a = 'p@ss:w/rd~1'; $b = 'p@ss:w/rd~1'; dsn = mysql://u:p%40ss%3Aw%2Frd~1@h/db");
	lua_is(L, "local s = core.vault.secret('abc')\n"
	          "return tostring(s:equals('abc')) .. tostring(s:equals('abd')) .. tostring(s:equals('ab'))"
	          " .. tostring(s:equals(core.vault.secret('abc')))", "truefalsefalsetrue");
	lua_is(L, "local p = core.vault.random_secret(24, 'password'):reveal()\n"
	          "return #p .. ' ' .. tostring(p:match('^[%w]+$') ~= nil)", "24 true");
}

static void test_wiped_secret_raises(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local s = core.vault.secret('x'); s:wipe(); s:wipe()\n"
	       "local ok, err = pcall(s.reveal, s)\n"
	       "return tostring(ok) .. ' ' .. err:match('used after wipe')",
	       "false used after wipe");
}

static void test_key_file(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local v = core.vault\n"
	       "local k = v.new_key()\n"
	       "assert(k:save(dir .. '/k'))\n"
	       "local again, _, code = k:save(dir .. '/k')\n"
	       "local loaded = assert(v.load_key(dir .. '/k'))\n"
	       "local box = k:seal('v', 'n')\n"
	       "return string.format('%o %s %s', core.fs.stat(dir .. '/k').mode, code, loaded:open(box, 'n'):reveal())",
	       "600 eexist v");
	lua_is(L,
	       "core.fs.chmod(dir .. '/k', tonumber('644', 8))\n"
	       "local r, msg, code = core.vault.load_key(dir .. '/k')\n"
	       "return code .. ' ' .. msg:match('readable by others %(mode 644%)')",
	       "eacces readable by others (mode 644)");
	lua_is(L,
	       "core.fs.write_atomic(dir .. '/bad', 'not a key\\n', tonumber('600', 8))\n"
	       "return select(3, core.vault.load_key(dir .. '/bad'))",
	       "badkey");
	lua_is(L, "return select(3, core.vault.load_key(dir .. '/none'))", "enoent");
	ctest_rm_tree(dir);
}

static void test_derive_key(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local v = core.vault\n"
	       "local salt = v.new_salt()\n"
	       "local a, b = v.derive_key('horse', salt), v.derive_key(v.secret('horse'), salt)\n"
	       "local c = v.derive_key('donkey', salt)\n"
	       "local box = a:seal('x', 'n')\n"
	       "return tostring(b:open(box, 'n') ~= nil) .. ' ' .. tostring(c:open(box, 'n'))",
	       "true nil");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_wrong_key_and_tamper),
		cmocka_unit_test(test_secret_input),
		cmocka_unit_test(test_format_quoted),
		cmocka_unit_test(test_wiped_secret_raises),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_derive_key),
	};
	return CTEST_RUN("vault", tests);
}
