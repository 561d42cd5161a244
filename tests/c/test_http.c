/* http.c under the sanitizers, against a one-shot server forked here: answers, headers,
 * a cut-short body, and the request's strings kept alive while libcurl runs. */
#include "ctest_server.h"

/* serve1(reply): a server that answers one request with reply. */
static pid_t serve1(lua_State *L, const char *reply) { return serve(L, NULL, &reply, 1); }

static void test_answer(void **state)
{
	lua_State *L = *state;
	pid_t pid = serve1(L, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 600\r\n"
	                     "Content-Length: 4\r\nConnection: close\r\n\r\nbusy");
	lua_is(L,
	       "local r = assert(core.http.request({url = 'http://127.0.0.1:' .. port .. '/'}))\n"
	       "return r.status .. ' ' .. r.headers['retry-after'] .. ' ' .. r.body",
	       "503 600 busy");
	reap(pid);
}

/* The options table is the only owner of url: it must stay on the stack through
 * curl_easy_perform and the error message after it, however much the answer makes the
 * collector run (many headers, then a body cut short). */
static void test_options_kept_alive(void **state)
{
	lua_State *L = *state;
	static char reply[1 << 17];
	int off = snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n");
	for (int i = 0; i < 2000; i++)
		off += snprintf(reply + off, sizeof reply - (size_t)off, "X-Header-%d: %d\r\n", i, i);
	snprintf(reply + off, sizeof reply - (size_t)off, "\r\nshort");
	pid_t pid = serve1(L, reply);
	lua_is(L,
	       "collectgarbage('incremental', 0, 1000)\n"
	       "local r, msg, code = core.http.request({url = ('http://127.0.0.1:%d/%s'):format(port, string.rep('p', 80))})\n"
	       "collectgarbage('incremental', 200, 100)\n"
	       "return tostring(r) .. ' ' .. code .. ' ' .. (msg:match('^http http://127%.0%.0%.1:%d+/(p+):') or msg)",
	       "nil http " "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp");
	reap(pid);
}

static void test_refused(void **state)
{
	lua_State *L = *state;
	lua_is(L, "return select(3, core.http.request({url = 'http://127.0.0.1:1/', timeout = 5}))", "http");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_options_kept_alive),
		cmocka_unit_test(test_refused),
	};
	return CTEST_RUN("http", tests);
}
