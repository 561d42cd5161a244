/* core.c: the tend.core module: every primitive's table under one roof, plus the
 * Lua sources embedded at build time. Built into the tend binary and, unchanged, as
 * tend/core.so for stock lua5.4 (require "tend.core"). */
#include <string.h>

#include "tend.h"
#include "embedded.h"
#include "version.h"

/* searcher(name) -> loader, ":embedded:name" | "\n\tno embedded module 'name'" */
static int l_searcher(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	for (const tend_embedded_file *f = tend_embedded; f->path; f++) {
		if (!f->module || strcmp(f->module, name) != 0)
			continue;
		lua_pushfstring(L, "=[tend]/%s", f->path);
		if (luaL_loadbufferx(L, f->source, f->len, lua_tostring(L, -1), "t") != LUA_OK)
			return lua_error(L);
		lua_pushfstring(L, ":embedded:%s", f->path);
		return 2;
	}
	lua_pushfstring(L, "no embedded module '%s'", name);
	return 1;
}

/* {["recipes/check.lua"] = source, ...}: the bundled files that are not modules. */
static void push_embedded_files(lua_State *L)
{
	lua_newtable(L);
	for (const tend_embedded_file *f = tend_embedded; f->path; f++) {
		if (f->module)
			continue;
		lua_pushlstring(L, f->source, f->len);
		lua_setfield(L, -2, f->path);
	}
}

int luaopen_tend_core(lua_State *L)
{
	static const struct { const char *name; lua_CFunction open; } rooms[] = {
		{"catalog", tend_open_catalog}, {"vault", tend_open_vault},
		{"fs", tend_open_fs}, {"proc", tend_open_proc}, {"ssh", tend_open_ssh},
		{"hash", tend_open_hash}, {"store", tend_open_store},
		{"archive", tend_open_archive}, {"mail", tend_open_mail},
		{"lineedit", tend_open_lineedit}, {"rewrite", tend_open_rewrite},
		{"http", tend_open_http}, {"httpd", tend_open_httpd}, {"rowdiff", tend_open_rowdiff},
		{"s3", tend_open_s3}, {"listing", tend_open_listing}, {NULL, NULL}};
	lua_newtable(L);
	for (int i = 0; rooms[i].name; i++) {
		rooms[i].open(L);
		lua_setfield(L, -2, rooms[i].name);
	}
	lua_pushcfunction(L, l_searcher);
	lua_setfield(L, -2, "searcher");
	push_embedded_files(L);
	lua_setfield(L, -2, "embedded");
	lua_pushinteger(L, TEND_API);
	lua_setfield(L, -2, "api");
	lua_pushstring(L, TEND_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, TEND_BUILD);
	lua_setfield(L, -2, "build");
	return 1;
}
