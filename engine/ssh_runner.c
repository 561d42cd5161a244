/* ssh_runner.c: one long-lived sh on the host for a session's commands, so the user's
 * login shell (and whatever its rc files start) runs once per run, not once per command.
 *   r = s:runner(cmd)    cmd starts the driver (transport.lua's RUNNER); it reads a
 *                        token line and says it back on stdout and stderr once the
 *                        login shell is done with its rc files; we wait for both
 *   r:exec(script [, {stdin = string | secret | {piece, ...}, timeout = seconds}])
 *                        -> {code=, stdout=, stderr=} | nil, msg, code
 *   r:alive() -> bool    r:close()
 * A command goes as "ID SCRIPTLEN STDINLEN\n", the script, its stdin. The driver runs it
 * with sh -c and then prints "TOKEN ID CODE\n" on stdout and "TOKEN ID\n" on stderr;
 * everything before those marks is the command's. The token is random and never in an
 * argv, so no command's output can end another's early. A timeout or a driver that ends
 * closes the runner: the caller starts a new one for the next command. A driver that
 * ends fails with code "ended" and its shell's last words (a nologin shell's, say).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "ssh.h"

#define RUNNER_CLASS "tend.ssh.runner"

typedef struct {
	tend_ssh *ss;
	LIBSSH2_CHANNEL *ch; /* NULL once closed */
	char token[33];
	unsigned long next;  /* the next command's ID */
} runner;

void tend_ssh_token(char out[33])
{
	unsigned char rnd[16];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		abort(); /* the kernel's generator cannot fail once initialised */
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

static void runner_close(runner *r)
{
	if (r->ch && r->ss->s) {
		double deadline = tend_now() + 2;
		while (libssh2_channel_free(r->ch) == LIBSSH2_ERROR_EAGAIN && tend_ssh_wait(r->ss, deadline) == 0)
			;
	}
	r->ch = NULL;
}

/* nil, msg, code for a job that did not end well; the runner is closed. */
static int runner_fail(lua_State *L, runner *r, tend_job *j, int status, const char *what)
{
	int n;
	if (status == TEND_JOB_TIMEOUT)
		n = tend_fail(L, "timeout", "ssh %s:%d: %s: timed out", r->ss->host, r->ss->port, what);
	else if (status == TEND_JOB_ENDED) {
		/* the shell's own last words say why (nologin, no head, a killed sh...) */
		int i = j->out[1].len ? 1 : 0;
		const char *buf = j->out[i].buf ? j->out[i].buf : "";
		size_t len = j->out[i].len;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		size_t from = len;
		while (from > 0 && buf[from - 1] != '\n')
			from--;
		n = tend_fail(L, "ended", "ssh %s:%d: %s: the remote shell ended%s%.*s", r->ss->host, r->ss->port,
		              what, len > from ? ": " : "", (int)(len - from), buf + from);
	} else
		n = tend_ssh_fail(L, r->ss, "ssh", what);
	runner_close(r);
	tend_job_release(j);
	return n;
}

static runner *check_runner(lua_State *L)
{
	runner *r = luaL_checkudata(L, 1, RUNNER_CLASS);
	if (!r->ch || !r->ss->s)
		luaL_error(L, "ssh runner used after close");
	return r;
}

/* s:runner(cmd) -> runner | nil, msg, code */
int tend_ssh_runner(lua_State *L)
{
	tend_ssh *ss = tend_ssh_check(L, 1);
	const char *cmd = luaL_checkstring(L, 2);
	runner *r = lua_newuserdatauv(L, sizeof *r, 1);
	memset(r, 0, sizeof *r);
	r->ss = ss;
	luaL_setmetatable(L, RUNNER_CLASS);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1); /* the runner keeps its session alive */
	tend_ssh_token(r->token);

	tend_job j;
	memset(&j, 0, sizeof j);
	j.ss = ss;
	j.deadline = tend_now() + ss->timeout;
	while (!(r->ch = libssh2_channel_open_session(ss->s)) &&
	       libssh2_session_last_errno(ss->s) == LIBSSH2_ERROR_EAGAIN)
		if (tend_job_wait(&j) != 0)
			return runner_fail(L, r, &j, TEND_JOB_TIMEOUT, "open channel");
	if (!r->ch)
		return runner_fail(L, r, &j, -3, "open channel");
	j.ch = r->ch;
	/* the rc files may take their time: as long as a stream may stall */
	j.deadline = tend_now() + ss->idle;
	int rc;
	while ((rc = libssh2_channel_exec(r->ch, cmd)) == LIBSSH2_ERROR_EAGAIN && tend_job_wait(&j) == 0)
		;
	if (rc != 0)
		return runner_fail(L, r, &j, rc == LIBSSH2_ERROR_EAGAIN ? TEND_JOB_TIMEOUT : -3, "start the remote shell");
	char line[34];
	snprintf(line, sizeof line, "%s\n", r->token);
	j.in[0].data = line;
	j.in[0].len = 33;
	j.nin = 1;
	j.keep_open = 1;
	j.mark[0] = j.mark[1] = line;
	j.mark_len[0] = j.mark_len[1] = 33;
	j.end[0] = j.end[1] = -1;
	int status = tend_job_pump(&j);
	if (status != TEND_JOB_DONE)
		return runner_fail(L, r, &j, status, "start the remote shell");
	tend_job_release(&j); /* what the rc files printed */
	return 1;
}

/* r:exec(script [, opts]) -> {code=, stdout=, stderr=} | nil, msg, code */
static int l_exec(lua_State *L)
{
	runner *r = check_runner(L);
	size_t slen;
	const char *script = luaL_checklstring(L, 2, &slen);
	if (lua_isnoneornil(L, 3)) {
		lua_settop(L, 2);
		lua_newtable(L);
	}
	luaL_checktype(L, 3, LUA_TTABLE);
	tend_job j;
	memset(&j, 0, sizeof j);
	j.ss = r->ss;
	j.ch = r->ch;
	j.keep_open = 1;
	if (memchr(script, '\0', slen))
		return luaL_error(L, "runner: a shell script cannot hold a NUL byte");
	/* The driver reads the script line by line with the shell's own read (no process
	 * started for it), so the header counts lines and the last one is ended. */
	size_t lines = 0;
	for (const char *p = script; (p = memchr(p, '\n', slen - (size_t)(p - script))); p++)
		lines++;
	int ended = slen > 0 && script[slen - 1] == '\n';
	char head[80], out_mark[64], err_mark[64];
	j.nin = 3; /* the header, the script and its last newline come first */
	tend_job_stdin(L, &j, 3);
	size_t ilen = 0;
	for (int i = 3; i < j.nin; i++)
		ilen += j.in[i].len;
	unsigned long id = r->next++;
	j.in[0].data = head;
	j.in[0].len = (size_t)snprintf(head, sizeof head, "%lu %zu %zu\n", id, lines + !ended, ilen);
	j.in[1].data = script;
	j.in[1].len = slen;
	j.in[2].data = "\n";
	j.in[2].len = !ended;
	j.mark[0] = out_mark;
	j.mark_len[0] = (size_t)snprintf(out_mark, sizeof out_mark, "%s %lu ", r->token, id);
	j.mark[1] = err_mark;
	j.mark_len[1] = (size_t)snprintf(err_mark, sizeof err_mark, "%s %lu\n", r->token, id);
	j.end[0] = j.end[1] = -1;
	lua_getfield(L, 3, "timeout");
	double timeout = luaL_optnumber(L, -1, 0);
	j.deadline = timeout > 0 ? tend_now() + timeout : 0;
	int status = tend_job_pump(&j);
	if (status != TEND_JOB_DONE)
		return runner_fail(L, r, &j, status, "run a command");
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, strtol(j.out[0].buf + j.end[0] + j.mark_len[0], NULL, 10));
	lua_setfield(L, -2, "code");
	lua_pushlstring(L, j.out[0].buf, (size_t)j.end[0]);
	lua_setfield(L, -2, "stdout");
	lua_pushlstring(L, j.out[1].buf, (size_t)j.end[1]);
	lua_setfield(L, -2, "stderr");
	tend_job_release(&j);
	return 1;
}

static int l_alive(lua_State *L)
{
	runner *r = luaL_checkudata(L, 1, RUNNER_CLASS);
	lua_pushboolean(L, r->ch && r->ss->s && !libssh2_channel_eof(r->ch));
	return 1;
}

static int l_close(lua_State *L)
{
	runner_close(luaL_checkudata(L, 1, RUNNER_CLASS));
	return 0;
}

void tend_ssh_runner_class(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"exec", l_exec}, {"alive", l_alive}, {"close", l_close},
		{"__gc", l_close}, {"__close", l_close}, {NULL, NULL}};
	tend_new_class(L, RUNNER_CLASS, methods);
}
