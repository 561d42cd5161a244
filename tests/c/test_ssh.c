/* ssh.c, ssh_exec.c, ssh_runner.c, ssh_channel.c under the sanitizers, against the harness
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
	       "return r.code .. r.stdout .. r.stderr:match('[^\\n]*\\n$')", /* after the rc files' words */
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

/* The runner and spare channels with transport.lua's drivers (read from lua/: the tests
 * run from the source tree), under the sanitizers. ssh_runner.t covers them more. */
static void test_runner(void **state)
{
	lua_State *L = *state;
	if (!have_sshd())
		skip();
	login(L);
	lua_ok(L, "package.path = 'lua/?.lua;' .. package.path\n"
	          "transport, q = require 'tend.transport', require('tend.shell').quote");
	lua_is(L,
	       "local r = assert(s:runner('sh -c ' .. q(transport.RUNNER)))\n"
	       "local a = assert(r:exec('cat; echo e >&2; exit 3', {stdin = {'a', core.vault.secret('b')}}))\n"
	       "local b = assert(r:exec([[printf 'x\\0y']]))\n"
	       "local _, _, code = r:exec('sleep 5', {timeout = 0.2})\n"
	       "local alive = r:alive()\n"
	       "r:close(); r:close()\n"
	       "return ('%d %s %s %q %s %s'):format(a.code, a.stdout, a.stderr, b.stdout, code, alive)",
	       "3 ab e\n \"x\\0y\" timeout false");
	lua_is(L,
	       "local sp = assert(s:spare('sh -c ' .. q(transport.SPARE)))\n"
	       "assert(sp:settle(30))\n"
	       "assert(sp:begin('cat; echo err >&2; exit 4'))\n"
	       "sp:write('in'); sp:send_eof()\n"
	       "local out = sp:read()\n"
	       "return out .. ' ' .. sp:wait() .. ' ' .. sp:stderr()",
	       "in 4 err\n");
	/* a runner outliving its session raises instead of crashing */
	lua_ok(L, "late = assert(s:runner('sh -c ' .. q(transport.RUNNER))); s:close(); s = nil");
	lua_is(L, "return tostring(pcall(late.exec, late, 'true'))", "false");
	lua_ok(L, "late = nil; collectgarbage(); collectgarbage()");
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
		cmocka_unit_test(test_runner),
		cmocka_unit_test(test_connect_failures),
	};
	return CTEST_RUN("ssh", tests);
}
