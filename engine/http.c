/* http.c: one HTTP(S) request through libcurl: site checks (is it up, is the
 * maintenance page shown), webhooks.
 *   http.request({url = URL, method = "GET", body = TEXT, headers = {"Name: value", ...},
 *                 timeout = seconds, max_body = bytes, to = PATH})
 *     -> {status = 503, headers = {["retry-after"] = "600", ...}, body = TEXT, url = final URL}
 *      | nil, msg, code
 * With `to`, the body is written to that file instead (a download), whole, and `bytes`
 * says how many; body is then empty.
 * Any status is an answer (a 503 is what a maintenance check wants to see); only a
 * request that got none fails. Redirects are not followed; certificates are verified.
 * The body is cut at max_body (default 4 MiB) so a huge page cannot fill memory.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>

#include "tend.h"

typedef struct {
	lua_State *L;
	luaL_Buffer *body;
	size_t kept, max;
	int headers; /* index of the headers table */
	FILE *to;    /* the body goes here instead, whole */
	long long written;
} response;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	response *r = ctx;
	if (r->to) {
		size_t w = fwrite(p, 1, size * n, r->to);
		r->written += (long long)w;
		return w; /* short: curl stops with a write error */
	}
	size_t k = size * n, room = r->max - r->kept;
	luaL_addlstring(r->body, p, k < room ? k : room);
	r->kept += k < room ? k : room;
	return size * n;
}

/* "Name: value\r\n" -> headers[name] = value (lower-case names; the last one wins). */
static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	response *r = ctx;
	size_t len = size * n, colon = 0;
	while (colon < len && p[colon] != ':')
		colon++;
	if (colon == 0 || colon >= len || colon > 200)
		return size * n;
	char name[201];
	for (size_t i = 0; i < colon; i++)
		name[i] = (char)tolower((unsigned char)p[i]);
	size_t v = colon + 1, end = len;
	while (v < end && (p[v] == ' ' || p[v] == '\t'))
		v++;
	while (end > v && (p[end - 1] == '\r' || p[end - 1] == '\n' || p[end - 1] == ' '))
		end--;
	lua_pushlstring(r->L, name, colon);
	lua_pushlstring(r->L, p + v, end - v);
	lua_rawset(r->L, r->headers);
	return size * n;
}

static const char *field_string(lua_State *L, const char *field, size_t *len)
{
	lua_getfield(L, 1, field);
	const char *s = lua_tolstring(L, -1, len);
	lua_pop(L, 1); /* the string stays alive in the options table */
	return s;
}

static struct curl_slist *header_list(lua_State *L)
{
	struct curl_slist *list = NULL;
	if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
		lua_Integer i = 1;
		for (; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
			list = curl_slist_append(list, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1); /* the first non-string */
	}
	lua_pop(L, 1); /* headers: the options table stays, and with it url and body */
	return list;
}

/* The options of one request on c: the response r collects headers and body. */
static void set_options(CURL *c, const char *url, long timeout, char err[CURL_ERROR_SIZE], response *r)
{
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout < 15 ? timeout : 15L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tend");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
}

/* Stack: headers, body, url -> the result table {status, headers, body, url [, bytes]}. */
static int push_response(lua_State *L, long status, const response *r)
{
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, status);
	lua_setfield(L, -2, "status");
	lua_rotate(L, -4, 1); /* result, headers, body, url */
	lua_setfield(L, -4, "url");
	lua_setfield(L, -3, "body");
	lua_setfield(L, -2, "headers");
	if (r->to) {
		lua_pushinteger(L, r->written);
		lua_setfield(L, -2, "bytes");
	}
	return 1;
}

/* request(opts) -> {status, headers, body, url} | nil, msg, code */
static int l_request(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	size_t body_len = 0;
	const char *url = field_string(L, "url", NULL), *method = field_string(L, "method", NULL);
	const char *body = field_string(L, "body", &body_len);
	luaL_argcheck(L, url, 1, "url is needed");
	lua_getfield(L, 1, "timeout");
	long timeout = (long)luaL_optinteger(L, -1, 30);
	lua_getfield(L, 1, "max_body");
	size_t max = (size_t)luaL_optinteger(L, -1, 4 << 20);
	lua_pop(L, 2);
	const char *to_path = field_string(L, "to", NULL);
	FILE *to = NULL;
	if (to_path && !(to = fopen(to_path, "wbe")))
		return tend_fail_errno(L, errno, "http %s: write %s", url, to_path);

	CURL *c = curl_easy_init();
	if (!c) {
		if (to)
			fclose(to);
		return tend_fail(L, "http", "http %s: cannot start libcurl", url);
	}
	struct curl_slist *headers = header_list(L);
	lua_newtable(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	response r = {L, &b, 0, max, lua_absindex(L, -2), to, 0};
	char err[CURL_ERROR_SIZE] = "";
	set_options(c, url, timeout, err, &r);
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	char *final = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &final);
	luaL_pushresult(&b);
	lua_pushstring(L, final ? final : url);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	if (to && fclose(to) != 0 && rc == CURLE_OK)
		return tend_fail_errno(L, errno, "http %s: write %s", url, to_path);
	if (rc != CURLE_OK)
		return tend_fail(L, rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "http", "http %s: %s", url,
		                 err[0] ? err : curl_easy_strerror(rc));
	return push_response(L, status, &r);
}

int tend_open_http(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"request", l_request}, {NULL, NULL}};
	curl_global_init(CURL_GLOBAL_DEFAULT); /* reference-counted: mail.c calls it too */
	luaL_newlib(L, funcs);
	return 1;
}
