/* ctest_server.h: a server forked by a C test, on a free loopback port, that answers
 * each connection with the next canned reply (then closes it) and can write down what
 * it was sent: for the HTTP clients (http.c, s3.c) under the sanitizers. */
#ifndef CTEST_SERVER_H
#define CTEST_SERVER_H
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ctest.h"

/* One request, headers and body (Content-Length), appended to log. */
static void read_request(int c, FILE *log)
{
	char buf[65536];
	size_t have = 0;
	long body = -1;
	for (;;) {
		ssize_t r = read(c, buf + have, sizeof buf - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end && body < 0) {
			char *cl = strcasestr(buf, "\r\ncontent-length:");
			body = cl && cl < end ? strtol(cl + 17, NULL, 10) : 0;
			if (strcasestr(buf, "\r\nexpect: 100-continue") && write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
				break;
		}
		if (end && (long)(have - (size_t)(end + 4 - buf)) >= body)
			break;
	}
	fwrite(buf, 1, have, log);
	fputs("\n----\n", log);
	fflush(log);
}

/* serve(dir, replies, n): a server on a free loopback port (the Lua global `port`) that
 * answers n connections in turn, each with the next reply; each request is appended to
 * dir/requests when dir is not NULL. Returns its pid, for reap. */
static pid_t serve(lua_State *L, const char *dir, const char *const *replies, int n)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(s, 8), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	lua_pushinteger(L, ntohs(a.sin_port));
	lua_setglobal(L, "port");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char path[64];
		snprintf(path, sizeof path, "%s/requests", dir ? dir : "/dev");
		FILE *log = fopen(dir ? path : "/dev/null", "a");
		for (int i = 0; i < n && log; i++) {
			int c = accept(s, NULL, NULL);
			read_request(c, log);
			for (size_t off = 0, k = strlen(replies[i]); off < k;) {
				ssize_t w = write(c, replies[i] + off, k - off);
				if (w <= 0)
					break;
				off += (size_t)w;
			}
			close(c);
		}
		_exit(0);
	}
	close(s);
	return pid;
}

static void reap(pid_t pid)
{
	int status;
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
}
#endif
