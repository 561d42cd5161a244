/* mail.c: e-mail over SMTP through libcurl, for alerts.
 *   mail.send({url = "smtp://host:port" | "smtps://host:port", from = ADDR, to = {ADDR, ...},
 *              message = TEXT, user = NAME, password = secret, tls = "try" | "require" | "none",
 *              timeout = seconds}) -> true | nil, msg, code
 * message is the whole RFC 5322 text (headers, blank line, body; tend.notify writes it).
 * With tls "try" (the default) STARTTLS is used when the server offers it, "require"
 * fails without it; certificates are verified. The password stays a secret: libcurl
 * copies it into its own memory, never into a Lua string.
 */
#include <string.h>
#include <curl/curl.h>

#include "tend.h"

typedef struct {
	const char *p;
	size_t left;
} message_source;

static size_t read_message(char *buf, size_t size, size_t n, void *ctx)
{
	message_source *m = ctx;
	size_t k = size * n < m->left ? size * n : m->left;
	memcpy(buf, m->p, k);
	m->p += k;
	m->left -= k;
	return k;
}

static const char *opt_string(lua_State *L, const char *field)
{
	lua_getfield(L, 1, field);
	const char *s = lua_tostring(L, -1);
	lua_pop(L, 1); /* the string stays alive in the options table */
	return s;
}

static int l_send(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *url = opt_string(L, "url"), *from = opt_string(L, "from"), *user = opt_string(L, "user");
	const char *tls = opt_string(L, "tls");
	luaL_argcheck(L, url && from, 1, "url and from are needed");
	message_source m = {NULL, 0};
	lua_getfield(L, 1, "message");
	m.p = luaL_checklstring(L, -1, &m.left);
	lua_pop(L, 1);
	lua_getfield(L, 1, "timeout");
	long timeout = (long)luaL_optinteger(L, -1, 60);
	lua_pop(L, 1);

	struct curl_slist *rcpt = NULL;
	lua_getfield(L, 1, "to");
	luaL_argcheck(L, lua_istable(L, -1), 1, "to: a list of addresses");
	for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
		rcpt = curl_slist_append(rcpt, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	if (!rcpt)
		return tend_fail(L, "einval", "mail: no recipient");

	CURL *c = curl_easy_init();
	if (!c) {
		curl_slist_free_all(rcpt);
		return tend_fail(L, "enomem", "mail: cannot start libcurl");
	}
	char err[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_message);
	curl_easy_setopt(c, CURLOPT_READDATA, &m);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, !tls || strcmp(tls, "try") == 0 ? (long)CURLUSESSL_TRY
	                                     : strcmp(tls, "require") == 0   ? (long)CURLUSESSL_ALL
	                                                                     : (long)CURLUSESSL_NONE);
	if (user)
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
	lua_getfield(L, 1, "password");
	if (!lua_isnil(L, -1)) {
		size_t n;
		const unsigned char *pw = tend_secret_bytes(tend_check_secret(L, -1), &n);
		curl_easy_setopt(c, CURLOPT_PASSWORD, (const char *)pw); /* secrets end in a NUL */
	}
	lua_pop(L, 1);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	if (rc != CURLE_OK) {
		const char *code = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ? "connect"
		                   : rc == CURLE_LOGIN_DENIED                                     ? "auth"
		                   : rc == CURLE_OPERATION_TIMEDOUT                               ? "timeout"
		                                                                                  : "mail";
		return tend_fail(L, code, "mail via %s: %s", url, err[0] ? err : curl_easy_strerror(rc));
	}
	lua_pushboolean(L, 1);
	return 1;
}

int tend_open_mail(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"send", l_send}, {NULL, NULL}};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	luaL_newlib(L, funcs);
	return 1;
}
