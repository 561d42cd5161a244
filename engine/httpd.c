/* httpd.c: a small HTTP server for tend's own web page (tend show serve), on
 * libmicrohttpd, run from Lua's thread: MHD has no thread of its own here, so a
 * request's handler is plain Lua called while srv:run() turns the loop.
 *   srv = httpd.listen(addr, port)   -> server | nil, msg   (port 0: one is chosen)
 *   srv:port()                       -> the port it listens on
 *   srv:run(handler, seconds)        -> serves for at most that long; handler(req) ->
 *       {status = 200, headers = {["Name"] = "value", ...}, body = "..."}
 *     req = {method, path, args = {name = value} (the query), headers = {lowercase name
 *       = value}, body = "..." (at most 1 MiB; more is refused with 413), peer = "ip"}
 *   srv:close()
 * A handler that raises gets a 500 and its message on our stderr, never in the page.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "tend.h"

#define SERVER_CLASS "tend.httpd"
#define BODY_MAX (1 << 20)

typedef struct {
	struct MHD_Daemon *d; /* NULL once closed */
	lua_State *L;         /* the caller of run(), while it runs */
	int handler;          /* its handler (registry), while it runs */
	unsigned short port;
} server;

typedef struct {
	char *body;
	size_t len, cap;
	int too_big;
} request;

static enum MHD_Result add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	lua_State *L = cls;
	if (!key)
		return MHD_YES;
	if (kind == MHD_HEADER_KIND) {
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		for (const char *p = key; *p; p++)
			luaL_addchar(&b, (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p));
		luaL_pushresult(&b);
	} else {
		lua_pushstring(L, key);
	}
	lua_pushstring(L, value ? value : "");
	lua_rawset(L, -3);
	return MHD_YES;
}

static void push_request(lua_State *L, struct MHD_Connection *c, const char *url, const char *method, request *r)
{
	lua_createtable(L, 0, 6);
	lua_pushstring(L, method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, url);
	lua_setfield(L, -2, "path");
	lua_newtable(L);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_value, L);
	lua_setfield(L, -2, "args");
	lua_newtable(L);
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_value, L);
	lua_setfield(L, -2, "headers");
	lua_pushlstring(L, r->body ? r->body : "", r->len);
	lua_setfield(L, -2, "body");
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char ip[INET6_ADDRSTRLEN] = "";
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ci->client_addr)->sin_addr, ip, sizeof ip);
	lua_pushstring(L, ip);
	lua_setfield(L, -2, "peer");
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *body, size_t len, lua_State *L,
                               int headers)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (L && headers && lua_istable(L, headers)) {
		lua_pushnil(L);
		while (lua_next(L, headers)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
				MHD_add_response_header(resp, lua_tostring(L, -2), lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	enum MHD_Result ok = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* The handler's answer to a whole request (its body read). */
static enum MHD_Result answer(server *s, struct MHD_Connection *c, const char *url, const char *method, request *r)
{
	static const char oops[] = "internal error\n";
	if (r->too_big)
		return respond(c, 413, "request too large\n", 18, NULL, 0);
	lua_State *L = s->L;
	int top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->handler);
	push_request(L, c, url, method, r);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
		fprintf(stderr, "tend: web: %s %s: %s\n", method, url,
		        lua_isstring(L, -1) ? lua_tostring(L, -1) : "the handler gave no response");
		lua_settop(L, top);
		return respond(c, 500, oops, sizeof oops - 1, NULL, 0);
	}
	int resp = lua_gettop(L);
	lua_getfield(L, resp, "status");
	unsigned status = (unsigned)luaL_optinteger(L, -1, 200);
	lua_getfield(L, resp, "body");
	size_t len = 0;
	const char *body = lua_isstring(L, -1) ? lua_tolstring(L, -1, &len) : "";
	lua_getfield(L, resp, "headers");
	enum MHD_Result ok = respond(c, status, body, len, L, lua_gettop(L));
	lua_settop(L, top);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *size, void **state)
{
	(void)version;
	request *r = *state;
	if (!r) { /* the headers are in: the body (if any) comes in the next calls */
		if (!(r = calloc(1, sizeof *r)))
			return MHD_NO;
		*state = r;
		return MHD_YES;
	}
	if (*size) {
		if (!r->too_big && r->len + *size > BODY_MAX) {
			r->too_big = 1;
		} else if (!r->too_big) {
			if (r->len + *size > r->cap) {
				size_t cap = r->cap ? r->cap * 2 : 4096;
				while (cap < r->len + *size)
					cap *= 2;
				char *p = realloc(r->body, cap);
				if (!p)
					return MHD_NO;
				r->body = p, r->cap = cap;
			}
			memcpy(r->body + r->len, data, *size);
			r->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	return answer(cls, c, url, method, r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
	(void)cls, (void)c, (void)why;
	request *r = *state;
	if (r) {
		free(r->body);
		free(r);
		*state = NULL;
	}
}

static server *check_server(lua_State *L)
{
	server *s = luaL_checkudata(L, 1, SERVER_CLASS);
	if (!s->d)
		luaL_error(L, "httpd: server is closed");
	return s;
}

/* httpd.listen(addr, port) -> server | nil, msg */
static int l_listen(lua_State *L)
{
	const char *addr = luaL_checkstring(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	luaL_argcheck(L, port >= 0 && port < 65536, 2, "a port");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return tend_fail(L, "usage", "httpd: %s is no IPv4 address", addr);
	server *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	s->handler = LUA_NOREF;
	luaL_setmetatable(L, SERVER_CLASS);
	s->d = MHD_start_daemon(MHD_USE_ERROR_LOG, (unsigned short)port, NULL, NULL, on_request, s,
	                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 64,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
	                        MHD_OPTION_END);
	if (!s->d)
		return tend_fail_errno(L, errno, "httpd: listen on %s:%d", addr, (int)port);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : (unsigned short)port;
	return 1;
}

static int l_port(lua_State *L)
{
	lua_pushinteger(L, check_server(L)->port);
	return 1;
}

/* srv:run(handler, seconds): the loop turned until that long has passed. */
static int l_run(lua_State *L)
{
	server *s = check_server(L);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	double until = tend_now() + luaL_checknumber(L, 3);
	lua_pushvalue(L, 2);
	s->handler = luaL_ref(L, LUA_REGISTRYINDEX);
	s->L = L;
	for (double left; (left = until - tend_now()) > 0;) {
		fd_set rs, ws, es;
		MHD_socket max = 0;
		FD_ZERO(&rs);
		FD_ZERO(&ws);
		FD_ZERO(&es);
		MHD_get_fdset(s->d, &rs, &ws, &es, &max);
		MHD_UNSIGNED_LONG_LONG ms;
		if (MHD_get_timeout(s->d, &ms) == MHD_YES && ms / 1000.0 < left)
			left = ms / 1000.0;
		struct timeval tv = {(time_t)left, (suseconds_t)((left - (time_t)left) * 1e6)};
		if (select(max + 1, &rs, &ws, &es, &tv) < 0 && errno != EINTR)
			break;
		MHD_run_from_select(s->d, &rs, &ws, &es);
	}
	luaL_unref(L, LUA_REGISTRYINDEX, s->handler);
	s->handler = LUA_NOREF, s->L = NULL;
	return 0;
}

static int l_close(lua_State *L)
{
	server *s = luaL_checkudata(L, 1, SERVER_CLASS);
	if (s->d)
		MHD_stop_daemon(s->d);
	s->d = NULL;
	return 0;
}

int tend_open_httpd(lua_State *L)
{
	static const luaL_Reg methods[] = {{"port", l_port}, {"run", l_run}, {"close", l_close},
	                                   {"__gc", l_close}, {"__close", l_close}, {NULL, NULL}};
	static const luaL_Reg funcs[] = {{"listen", l_listen}, {NULL, NULL}};
	luaL_newmetatable(L, SERVER_CLASS);
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "__index");
	luaL_setfuncs(L, methods, 0);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
