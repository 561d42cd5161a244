/* ctest.h: helpers for the engine's C tests. Each test gets a Lua state with tend.core
 * as the global `core`, and drives the bindings through the C API and small chunks. */
#ifndef CTEST_H
#define CTEST_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lualib.h>

#include "tend.h"

static int ctest_setup(void **state)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	luaL_requiref(L, "tend.core", luaopen_tend_core, 0);
	lua_setglobal(L, "core");
	*state = L;
	return 0;
}

static int ctest_teardown(void **state)
{
	lua_close(*state);
	return 0;
}

/* Run a chunk that must succeed; its results stay on the stack. */
static void lua_ok(lua_State *L, const char *code)
{
	if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK)
		fail_msg("lua: %s\n  in: %s", lua_tostring(L, -1), code);
}

/* Run a chunk that returns a string; compare it. */
static void lua_is(lua_State *L, const char *code, const char *expected)
{
	int top = lua_gettop(L);
	lua_ok(L, code);
	const char *got = lua_tostring(L, top + 1);
	if (!got || strcmp(got, expected) != 0)
		fail_msg("lua: %s\n  got:      %s\n  expected: %s", code, got ? got : "(nil)", expected);
	lua_settop(L, top);
}

static int ctest_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return _cmocka_run_group_tests(name, tests, n, ctest_setup, ctest_teardown);
}
#define CTEST_RUN(name, tests) ctest_run(name, tests, sizeof(tests) / sizeof((tests)[0]))
#endif
