/* proc.c: exit codes, output capture, stdin and fd 3 feeds, env, cwd, timeouts. */
#include <string.h>
#include "ctest.h"

static void test_exit_and_output(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local r = assert(core.proc.run({'sh', '-c', 'echo out; echo err >&2; exit 7'}))\n"
	       "return r.code .. '|' .. r.stdout .. '|' .. r.stderr",
	       "7|out\n|err\n");
}

static void test_argv_is_not_a_shell(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local r = assert(core.proc.run({'printf', '%s|', '$(id)', '`id`', '-n', 'a b'}))\n"
	       "return r.stdout",
	       "$(id)|`id`|-n|a b|");
}

static void test_stdin_and_fd3(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local big = string.rep('x', 1 << 20)\n"
	       "local r = assert(core.proc.run({'sh', '-c', 'wc -c; cat /dev/fd/3'},\n"
	       "  {stdin = big, fds = {[3] = core.vault.secret('from-fd3')}}))\n"
	       "return r.stdout:gsub('%s+', ' ')",
	       "1048576 from-fd3");
}

static void test_open_with_fd3(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local st = assert(core.proc.open({'sh', '-c', 'cat /dev/fd/3; cat'},\n"
	       "  {stdin_pipe = true, fds = {[3] = core.vault.secret('secret-line ')}}))\n"
	       "st:write('then stdin'); st:send_eof()\n"
	       "local out = {}\n"
	       "for c in function() return st:read() end do out[#out + 1] = c end\n"
	       "return table.concat(out) .. ' ' .. st:wait()",
	       "secret-line then stdin 0");
	lua_is(L,
	       "local ok, err = pcall(core.proc.open, {'true'}, {fds = {[3] = string.rep('x', 70000)}})\n"
	       "return tostring(ok) .. ' ' .. tostring(err:match('must fit a pipe'))",
	       "false must fit a pipe");
}

static void test_env_and_cwd(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local r = assert(core.proc.run({'sh', '-c', 'echo \"$TEND_X:${HOME:-unset}\"; pwd'},\n"
	       "  {env = {TEND_X = 'y', HOME = false}, cwd = '/tmp'}))\n"
	       "return r.stdout",
	       "y:unset\n/tmp\n");
}

static void test_failures(void **state)
{
	lua_State *L = *state;
	lua_is(L, "return select(3, core.proc.run({'/no/such/program'}))", "enoent");
	lua_is(L,
	       "local t0 = os.time()\n"
	       "local r, msg, code = core.proc.run({'sh', '-c', 'sleep 30 & sleep 30'}, {timeout = 0.3})\n"
	       "return tostring(r) .. ' ' .. code .. ' ' .. tostring(os.time() - t0 < 5) .. ' ' .. msg",
	       "nil timeout true sh: timed out after 0.3s");
	lua_is(L,
	       "local r = assert(core.proc.run({'sh', '-c', 'kill -TERM $$'}))\n"
	       "return r.code .. ' ' .. r.signal",
	       "143 15");
	lua_is(L, "return select(2, pcall(core.proc.run, {}))", "bad argument #1 to '?' (empty argv)");
}

static void test_child_closing_stdin_early(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local r = assert(core.proc.run({'head', '-c', '3'}, {stdin = string.rep('y', 4 << 20)}))\n"
	       "return r.code .. r.stdout",
	       "0yyy");
}

static void test_stream(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local s = assert(core.proc.open({'sh', '-c', 'head -c 300000 /dev/zero; echo oops >&2; exit 2'}))\n"
	       "local n = 0\n"
	       "while true do local c = s:read(65536); if not c then break end; n = n + #c end\n"
	       "local code = s:wait()\n"
	       "return n .. ' ' .. code .. ' ' .. s:stderr()",
	       "300000 2 oops\n");
	lua_is(L,
	       "local s = assert(core.proc.open({'sh', '-c', 'kill -TERM $$'}))\n"
	       "return table.concat({s:wait()}, ' ')",
	       "143 15");
	lua_is(L,
	       "local s = assert(core.proc.open({'yes'})); local c = s:read(10); s:close()\n"
	       "return c",
	       "y\ny\ny\ny\ny\n");
	lua_is(L, "return select(3, core.proc.open({'/no/such'}))", "enoent");
	lua_is(L, "local c = core.proc.spawn({'true'}); return tostring(pcall(c.read, c))", "false");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_and_output),
		cmocka_unit_test(test_argv_is_not_a_shell),
		cmocka_unit_test(test_stdin_and_fd3),
		cmocka_unit_test(test_open_with_fd3),
		cmocka_unit_test(test_env_and_cwd),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_child_closing_stdin_early),
		cmocka_unit_test(test_stream),
	};
	return CTEST_RUN("proc", tests);
}
