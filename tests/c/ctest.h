/* ctest.h: helpers for the engine's C tests. Each test gets a Lua state with tend.core
 * as the global `core`, and drives the bindings through the C API and small chunks. */
#ifndef CTEST_H
#define CTEST_H
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sys/stat.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A fresh temp dir, also set as the Lua global `dir`; ctest_rm_tree removes it whole. */
__attribute__((unused)) static void ctest_tempdir(lua_State *L, char buf[32])
{
	snprintf(buf, 32, "/tmp/tend-ctest-XXXXXX");
	assert_non_null(mkdtemp(buf));
	chmod(buf, 01777); /* the sshd user may be another one (the slow-shell user) */
	lua_pushstring(L, buf);
	lua_setglobal(L, "dir");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

__attribute__((unused)) static void ctest_rm_tree(const char *dir)
{
	assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static int ctest_run(const char *name, const struct CMUnitTest *tests, size_t n)
{
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return _cmocka_run_group_tests(name, tests, n, ctest_setup, ctest_teardown);
}
#define CTEST_RUN(name, tests) ctest_run(name, tests, sizeof(tests) / sizeof((tests)[0]))
#endif
