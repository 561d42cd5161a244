/* main.c: the tend binary. A Lua state with the engine preloaded, the embedded Lua
 * library on the module path (or a source tree with --lua-dir, for development), and
 * argv handed to tend.cli under a traceback handler. The CLI decides the exit code. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "tend.h"

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg)
		msg = luaL_tolstring(L, 1, NULL);
	luaL_traceback(L, L, msg, 1);
	return 1;
}

/* Put the embedded searcher right after package.preload's, or DIR on package.path. */
static void setup_modules(lua_State *L, const char *lua_dir)
{
	luaL_requiref(L, "tend.core", luaopen_tend_core, 0);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		lua_pushlstring(L, exe, (size_t)n);
		lua_setfield(L, -2, "exe"); /* core.exe: fan-out runs copies of this binary */
	}
	lua_getglobal(L, "package");
	if (lua_dir) {
		lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", lua_dir, lua_dir);
		lua_getfield(L, -2, "path");
		lua_concat(L, 2);
		lua_setfield(L, -2, "path");
		lua_pushstring(L, lua_dir);
		lua_setfield(L, -3, "lua_dir"); /* core.lua_dir: bundled recipes live beside it */
	} else {
		lua_getglobal(L, "table");
		lua_getfield(L, -1, "insert");
		lua_getfield(L, -3, "searchers");
		lua_pushinteger(L, 2);
		lua_getfield(L, -6, "searcher");
		lua_call(L, 3, 0);
		lua_pop(L, 1);
	}
	lua_pop(L, 2); /* package, core */
}

/* Everything that may raise runs here, under lua_pcall. */
static int run_cli(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);
	const char *lua_dir = getenv("TEND_LUA_DIR");
	int first = 1;
	if (argc > 2 && strcmp(argv[1], "--lua-dir") == 0) {
		lua_dir = argv[2];
		first = 3;
	}
	if (lua_dir) {
		lua_pushfstring(L, "%s/tend/cli.lua", lua_dir);
		if (access(lua_tostring(L, -1), R_OK) != 0)
			return luaL_error(L, "--lua-dir %s: no tend/cli.lua there", lua_dir);
		lua_pop(L, 1);
	}
	luaL_openlibs(L);
	setup_modules(L, lua_dir);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "tend.cli");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc - first, 0);
	for (int i = first; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - first + 1);
	}
	lua_call(L, 1, 1);
	return 1;
}

/* Only errors before the CLI runs get here (a broken or mismatched Lua library): the
 * message on one line, and the traceback only with --debug. */
static void print_early_error(const char *msg, int argc, char **argv)
{
	int debug = 0;
	for (int i = 1; i < argc; i++)
		debug |= strcmp(argv[i], "--debug") == 0;
	const char *trace = strstr(msg, "\nstack traceback:");
	size_t len = trace && !debug ? (size_t)(trace - msg) : strlen(msg);
	fputs("tend: ", stderr);
	for (size_t i = 0; i < len; i++) {
		char c = msg[i];
		if (trace && msg + i >= trace) {
			fputc(c, stderr);
		} else if (c == '\n' || c == '\t') {
			if (i > 0 && msg[i - 1] != '\n' && msg[i - 1] != '\t')
				fputc(' ', stderr);
		} else {
			fputc(c, stderr);
		}
	}
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error result, not a death */
	lua_State *L = luaL_newstate();
	if (!L) {
		fputs("tend: cannot create Lua state\n", stderr);
		return 1;
	}
	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, run_cli);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	int status = 1;
	if (lua_pcall(L, 2, 1, 1) != LUA_OK)
		print_early_error(lua_tostring(L, -1), argc, argv);
	else
		status = (int)luaL_optinteger(L, -1, 0);
	lua_close(L);
	return status;
}
