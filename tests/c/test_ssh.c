/* ssh.c, ssh_exec.c, ssh_channel.c, sftp.c under the sanitizers, against the harness
 * sshd (tests/run exports SSHD_PORT, SSHD_USER, SSHD_KEY, SSHD_KNOWN_HOSTS). */
#include "ctest.h"

static int have_sshd(void) { return getenv("SSHD_PORT") && getenv("SSHD_KEY"); }

/* The global s: a verified, logged-in session; idle is its stream idle limit. */
static void login_idle(lua_State *L, double idle)
{
	lua_pushnumber(L, idle);
	lua_setglobal(L, "idle");
	lua_ok(L, "s = assert(core.ssh.connect('127.0.0.1', tonumber(os.getenv('SSHD_PORT')), 5, idle))\n"
	          "assert(s:check_hostkey({os.getenv('SSHD_KNOWN_HOSTS')}) == 'match')\n"
	          "assert(s:auth_key(os.getenv('SSHD_USER'), os.getenv('SSHD_KEY')))");
}

static void login(lua_State *L) { login_idle(L, 300); }

static void test_exec(void **state)
{
	lua_State *L = *state;
	if (!have_sshd())
		skip();
	login(L);
	lua_is(L,
	       "local r = assert(s:exec('cat; echo e >&2; exit 3', {stdin = {'a', core.vault.secret('b')}}))\n"
	       "return r.code .. r.stdout .. r.stderr",
	       "3abe\n");
	lua_is(L, "return select(3, s:exec('sleep 5', {timeout = 0.2}))", "timeout");
	lua_is(L, "return s:hostkey().fingerprint:match('^SHA256:') and 'fp'", "fp");
	lua_is(L, "return s:check_hostkey({'/nonexistent'})", "notfound");
}

static void test_channels(void **state)
{
	lua_State *L = *state;
	if (!have_sshd())
		skip();
	login(L);
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local a = assert(s:open('head -c 3000000 /dev/zero'))\n"
	       "local b = assert(s:open('cat'))\n"
	       "b:write(string.rep('x', 100000)); b:send_eof()\n"
	       "local n = assert(a:pump_to_file(dir .. '/zeros'))\n"
	       "local got = {}\n"
	       "for _ = 1, 1000 do local c = b:read(); if not c then break end; got[#got + 1] = c end\n"
	       "return n .. ' ' .. #table.concat(got) .. ' ' .. a:wait() .. ' ' .. b:wait()",
	       "3000000 100000 0 0");
	lua_is(L,
	       "local up = assert(s:open('wc -c'))\n"
	       "assert(up:pump_from_file(dir .. '/zeros'))\n"
	       "return up:read():match('%d+')",
	       "3000000");
	/* a channel outliving its session, then both collected */
	lua_ok(L, "orphan = assert(s:open('cat')); s:close(); s = nil");
	lua_is(L, "return tostring(pcall(orphan.read, orphan))", "false");
	lua_ok(L, "orphan = nil; collectgarbage(); collectgarbage()");
	ctest_rm_tree(dir);
}

/* The limit is set once the channel moves data, so a login shell that starts slowly
 * (rc files, a loaded machine) cannot trip it: the test times nothing. */
static void test_idle_limit(void **state)
{
	lua_State *L = *state;
	if (!have_sshd())
		skip();
	login(L);
	lua_is(L,
	       "local ch = assert(s:open('echo ready; exec sleep 30'))\n"
	       "assert(ch:read() == 'ready\\n')\n"
	       "assert(s:set_idle(0.5) == 300)\n"
	       "local r, msg, code = ch:read()\n"
	       "ch:close()\n"
	       "return code .. ' ' .. msg:match('no data moved for 0.5s')",
	       "timeout no data moved for 0.5s");
	lua_ok(L, "s:set_idle(300)");
	lua_is(L, "local ch = assert(s:open('echo quick')); return ch:read()", "quick\n");
	lua_is(L, "return tostring(pcall(s.set_idle, s, 0))", "false");
}

static void test_sftp(void **state)
{
	lua_State *L = *state;
	if (!have_sshd())
		skip();
	login(L);
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local f = assert(s:sftp())\n"
	       "assert(f:mkdir_p(dir .. '/x/y', tonumber('700', 8)))\n"
	       "assert(f:put(dir .. '/x/y/f', 'data\\0more', tonumber('640', 8)))\n"
	       "local st = assert(f:stat(dir .. '/x/y/f'))\n"
	       "assert(f:rename(dir .. '/x/y/f', dir .. '/x/g'))\n"
	       "local body = assert(f:get(dir .. '/x/g'))\n"
	       "local _, _, code = f:get(dir .. '/x/y/f')\n"
	       "assert(f:remove(dir .. '/x/g')); assert(f:rmdir(dir .. '/x/y'))\n"
	       "f:close(); f:close()\n"
	       "return string.format('%s %o %d %q %s', st.type, st.mode, st.size, body, code)",
	       "file 640 9 \"data\\0more\" enoent");
	ctest_rm_tree(dir);
}

static void test_connect_failures(void **state)
{
	lua_State *L = *state;
	if (have_sshd())
		lua_is(L, "local s = core.ssh.connect('127.0.0.1', tonumber(os.getenv('SSHD_PORT')))\n"
		          "return tostring(s):match('^ssh%(')", "ssh(");
	lua_is(L, "return select(3, core.ssh.connect('127.0.0.1', 1, 2))", "refused");
	lua_is(L, "return select(3, core.ssh.connect('no-such-host.invalid', 22, 2))", "unreachable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_idle_limit),
		cmocka_unit_test(test_sftp),
		cmocka_unit_test(test_connect_failures),
	};
	return CTEST_RUN("ssh", tests);
}
