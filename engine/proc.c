/* proc.c: run a local program with posix_spawn: the local transport's exec.
 *   proc.run(argv, {stdin=, fds={[3]=...}, env={K=V}, cwd=, timeout=, output="inherit"})
 *     -> {code=, signal=, stdout=, stderr=} | nil, msg, code
 *   proc.spawn(argv, {env=, cwd=}) -> child;  proc.wait_any({child...}) -> i;  child:result()
 *   proc.pid()  proc.die_with_parent(ppid)  proc.now() (monotonic seconds)
 *   proc.open(argv, {env=, cwd=, stdin_pipe=}) -> stream: read([max]), write(data),
 *     send_eof(), wait(), stderr(), close()
 * Inputs may be strings or secrets; a secret reaches the child through a pipe, never
 * argv or the environment. No shell is involved: argv is passed as it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tend.h"

extern char **environ;

#define MAX_FEEDS 4

typedef struct {
	int target;             /* fd number in the child */
	int fd;                 /* our write end, -1 when done */
	const unsigned char *data;
	size_t len, off;
} feed;

typedef struct {
	int fd;                 /* our read end, -1 when at EOF */
	char *buf;
	size_t len, cap;
} sink;

typedef struct {
	const char **argv, **envp;
	feed feeds[MAX_FEEDS];
	int nfeeds;
	sink out[2];
	int devnull_stdin, inherit;
	const char *cwd;
	double timeout;
} job;

/* An input: string or secret at idx, as bytes (anchored by the caller's stack). */
static const unsigned char *input_bytes(lua_State *L, int idx, size_t *len)
{
	tend_secret *s = tend_test_secret(L, idx);
	if (s)
		return tend_secret_bytes(tend_check_secret(L, idx), len);
	return (const unsigned char *)luaL_checklstring(L, idx, len);
}

static void add_feed(lua_State *L, job *j, int target, int idx)
{
	if (j->nfeeds == MAX_FEEDS)
		luaL_error(L, "proc.run: too many input fds");
	feed *f = &j->feeds[j->nfeeds++];
	f->target = target;
	f->fd = -1;
	f->off = 0;
	f->data = input_bytes(L, idx, &f->len);
}

/* argv table at index 1 -> NULL-terminated array in a userdata left on the stack. */
static const char **check_argv(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 1);
	luaL_argcheck(L, n > 0, 1, "empty argv");
	const char **argv = lua_newuserdatauv(L, sizeof *argv * (size_t)(n + 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i);
		argv[i - 1] = luaL_checkstring(L, -1);
		lua_pop(L, 1); /* still anchored by the argv table */
	}
	argv[n] = NULL;
	return argv;
}

/* environ plus opts.env (a value of false removes a variable), in a userdata; the
 * "K=V" strings are anchored in a fresh table left on the stack below it. */
static const char **build_env(lua_State *L, int opts)
{
	lua_newtable(L); /* anchor: {"K=V", ...} and [K] = true for overridden names */
	int anchor = lua_gettop(L), nextra = 0;
	if (lua_getfield(L, opts, "env") == LUA_TTABLE)
		for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
			const char *k = luaL_checkstring(L, -2);
			lua_pushboolean(L, 1);
			lua_setfield(L, anchor, k);
			if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
				continue;
			lua_pushfstring(L, "%s=%s", k, luaL_checkstring(L, -1));
			lua_rawseti(L, anchor, ++nextra);
		}
	lua_pop(L, 1);
	size_t n = 0;
	while (environ[n])
		n++;
	const char **envp = lua_newuserdatauv(L, sizeof *envp * (n + (size_t)nextra + 1), 0);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		int overridden = 0;
		if (eq) {
			lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
			overridden = lua_rawget(L, anchor) != LUA_TNIL;
			lua_pop(L, 1);
		}
		if (!overridden)
			envp[k++] = environ[i];
	}
	for (int i = 1; i <= nextra; i++) {
		lua_rawgeti(L, anchor, i);
		envp[k++] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	envp[k] = NULL;
	return envp;
}

static void parse_opts(lua_State *L, job *j)
{
	memset(j, 0, sizeof *j);
	j->out[0].fd = j->out[1].fd = -1;
	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	j->argv = check_argv(L);
	if (lua_getfield(L, 2, "stdin") != LUA_TNIL)
		add_feed(L, j, 0, lua_gettop(L));
	else
		j->devnull_stdin = 1;
	if (lua_getfield(L, 2, "fds") == LUA_TTABLE)
		for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
			lua_Integer fd = luaL_checkinteger(L, -2);
			luaL_argcheck(L, fd >= 3 && fd <= 9, 2, "fds keys must be 3..9");
			add_feed(L, j, (int)fd, lua_gettop(L)); /* anchored by opts.fds */
		}
	lua_getfield(L, 2, "cwd");
	j->cwd = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "timeout");
	j->timeout = luaL_optnumber(L, -1, 0);
	lua_getfield(L, 2, "output");
	j->inherit = strcmp(luaL_optstring(L, -1, "capture"), "inherit") == 0;
	j->envp = build_env(L, 2);
}

/* A pipe whose ends sit at fd >= 10, so dup2 onto 0..9 in the child always copies. */
static int high_pipe(int p[2])
{
	int raw[2];
	if (pipe2(raw, O_CLOEXEC) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		p[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 10);
		close(raw[i]);
	}
	return p[0] >= 0 && p[1] >= 0 ? 0 : -1;
}

static void close_all(job *j)
{
	for (int i = 0; i < j->nfeeds; i++)
		if (j->feeds[i].fd >= 0)
			close(j->feeds[i].fd), j->feeds[i].fd = -1;
	for (int i = 0; i < 2; i++) {
		if (j->out[i].fd >= 0)
			close(j->out[i].fd), j->out[i].fd = -1;
		free(j->out[i].buf);
		j->out[i].buf = NULL;
	}
}

/* Set up pipes and spawn; returns 0 and the pid, or an errno value. */
static int spawn_job(job *j, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int child_ends[MAX_FEEDS + 2], nchild = 0, err = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	for (int i = 0; i < j->nfeeds && !err; i++) {
		int p[2];
		if (high_pipe(p) != 0) { err = errno; break; }
		j->feeds[i].fd = p[1];
		child_ends[nchild++] = p[0];
		posix_spawn_file_actions_adddup2(&fa, p[0], j->feeds[i].target);
	}
	if (j->devnull_stdin)
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	for (int i = 0; i < 2 && !err && !j->inherit; i++) {
		int p[2];
		if (high_pipe(p) != 0) { err = errno; break; }
		j->out[i].fd = p[0];
		child_ends[nchild++] = p[1];
		posix_spawn_file_actions_adddup2(&fa, p[1], i + 1);
	}
	if (j->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, j->cwd);
	sigset_t none, dflt;
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	/* With a time limit the child leads its own group, so the whole group can be killed. */
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (j->timeout > 0)
		flags |= POSIX_SPAWN_SETPGROUP;
	posix_spawnattr_setflags(&attr, flags);
	if (!err)
		err = posix_spawnp(pid, j->argv[0], &fa, &attr, (char *const *)j->argv,
		                   (char *const *)j->envp);
	for (int i = 0; i < nchild; i++)
		close(child_ends[i]);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return err;
}

static int drain(sink *s)
{
	if (s->cap - s->len < 65536) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		char *buf = realloc(s->buf, cap);
		if (!buf)
			return ENOMEM;
		s->buf = buf;
		s->cap = cap;
	}
	ssize_t n = read(s->fd, s->buf + s->len, s->cap - s->len);
	if (n > 0)
		s->len += (size_t)n;
	else if (n == 0 || errno != EINTR)
		close(s->fd), s->fd = -1;
	return 0;
}

static void pour(feed *f)
{
	ssize_t n = write(f->fd, f->data + f->off, f->len - f->off);
	if (n > 0)
		f->off += (size_t)n;
	/* EPIPE: the child stopped reading; that is its business, not an error. */
	if (f->off == f->len || (n < 0 && errno != EINTR && errno != EAGAIN))
		close(f->fd), f->fd = -1;
}

/* Move bytes until every pipe is closed; returns 0, ETIMEDOUT or an errno. */
static int pump(job *j)
{
	double deadline = j->timeout > 0 ? tend_now() + j->timeout : 0;
	for (int i = 0; i < j->nfeeds; i++) {
		fcntl(j->feeds[i].fd, F_SETFL, O_NONBLOCK);
		if (j->feeds[i].len == 0)
			close(j->feeds[i].fd), j->feeds[i].fd = -1;
	}
	for (;;) {
		struct pollfd pfd[MAX_FEEDS + 2];
		void *who[MAX_FEEDS + 2];
		int n = 0, is_feed[MAX_FEEDS + 2];
		for (int i = 0; i < j->nfeeds; i++)
			if (j->feeds[i].fd >= 0)
				pfd[n] = (struct pollfd){j->feeds[i].fd, POLLOUT, 0}, who[n] = &j->feeds[i], is_feed[n++] = 1;
		for (int i = 0; i < 2; i++)
			if (j->out[i].fd >= 0)
				pfd[n] = (struct pollfd){j->out[i].fd, POLLIN, 0}, who[n] = &j->out[i], is_feed[n++] = 0;
		if (n == 0)
			return 0;
		int wait_ms = -1;
		if (deadline > 0) {
			double left = deadline - tend_now();
			if (left <= 0)
				return ETIMEDOUT;
			wait_ms = (int)(left * 1000) + 1;
		}
		int r = poll(pfd, (nfds_t)n, wait_ms);
		if (r < 0 && errno != EINTR)
			return errno;
		for (int i = 0; i < n && r > 0; i++) {
			if (!pfd[i].revents)
				continue;
			if (is_feed[i])
				pour(who[i]);
			else if (drain(who[i]) != 0)
				return ENOMEM;
		}
	}
}

/* Wait for the child; with a deadline still running, kill its group first. */
static int reap(pid_t pid, int killed, double deadline)
{
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, killed || deadline == 0 ? 0 : WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (r == 0 && tend_now() >= deadline) {
			kill(-pid, SIGKILL);
			killed = 1;
		} else if (r == 0) {
			struct timespec ts = {0, 10 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
}

static void push_result(lua_State *L, job *j, int status)
{
	lua_createtable(L, 0, 4);
	if (WIFEXITED(status)) {
		lua_pushinteger(L, WEXITSTATUS(status));
	} else {
		lua_pushinteger(L, 128 + WTERMSIG(status));
		lua_pushinteger(L, WTERMSIG(status));
		lua_setfield(L, -3, "signal");
	}
	lua_setfield(L, -2, "code");
	static const char *names[2] = {"stdout", "stderr"};
	for (int i = 0; i < 2; i++) {
		lua_pushlstring(L, j->out[i].buf ? j->out[i].buf : "", j->out[i].len);
		lua_setfield(L, -2, names[i]);
	}
}

/* run(argv [, opts]) -> {code, signal, stdout, stderr} | nil, msg, code */
static int l_run(lua_State *L)
{
	job j;
	parse_opts(L, &j);
	pid_t pid;
	int err = spawn_job(&j, &pid);
	if (err) {
		close_all(&j);
		return tend_fail_errno(L, err, "run %s", j.argv[0]);
	}
	double started = tend_now();
	/* A child that stops reading its input must not kill us with SIGPIPE, whoever
	 * hosts this module (tend, or stock lua5.4 with tend.core). */
	struct sigaction ignore = {.sa_handler = SIG_IGN}, saved;
	sigaction(SIGPIPE, &ignore, &saved);
	err = pump(&j);
	sigaction(SIGPIPE, &saved, NULL);
	if (err == ETIMEDOUT)
		kill(j.timeout > 0 ? -pid : pid, SIGKILL);
	double deadline = j.timeout > 0 ? started + j.timeout : 0;
	int status = reap(pid, err == ETIMEDOUT, deadline);
	if (err == ETIMEDOUT) {
		close_all(&j);
		return tend_fail(L, "timeout", "%s: timed out after %gs", j.argv[0], j.timeout);
	}
	if (err || status < 0) {
		close_all(&j);
		return tend_fail_errno(L, err ? err : errno, "run %s", j.argv[0]);
	}
	push_result(L, &j, status);
	close_all(&j);
	return 1;
}

/* ---- children that run while we do other things ---- */

#define CHILD_CLASS "tend.proc.child"

typedef struct {
	job j;     /* only out[] is used after spawning */
	pid_t pid; /* 0 once reaped */
	int raw;   /* opened as a stream: stdout is read by the caller, not buffered */
	int status;
} child;

/* pid() -> this process's id */
/* now() -> seconds on a clock that only goes forward, to the microsecond (for rates) */
static int l_now(lua_State *L)
{
	lua_pushnumber(L, tend_now());
	return 1;
}

static int l_pid(lua_State *L)
{
	lua_pushinteger(L, getpid());
	return 1;
}

/* die_with_parent(ppid): a helper process dies when the process that started it does
 * (SIGKILL from the kernel), so it never goes on alone; at once if ppid is gone already. */
static int l_die_with_parent(lua_State *L)
{
	pid_t ppid = (pid_t)luaL_checkinteger(L, 1);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return tend_fail_errno(L, errno, "prctl");
	if (getppid() != ppid)
		raise(SIGKILL);
	lua_pushboolean(L, 1);
	return 1;
}

/* Write the small feeds (fds 3..9) whole into their pipes and close them, so the
 * child reads them as files it was handed; they must fit the pipe (64 KiB). */
static int fill_small_feeds(job *j)
{
	for (int i = 0; i < j->nfeeds; i++) {
		feed *f = &j->feeds[i];
		if (f->target < 3)
			continue;
		fcntl(f->fd, F_SETFL, O_NONBLOCK);
		ssize_t w = f->len ? write(f->fd, f->data, f->len) : 0;
		if (w < 0 || (size_t)w != f->len)
			return w < 0 ? errno : EFBIG;
		close(f->fd);
		f->fd = -1;
	}
	return 0;
}

/* spawn(argv [, {env=, cwd=, stdin_pipe=, fds=}]) -> child | nil, msg, code.  stdin is
 * /dev/null (or a pipe we write, with stdin_pipe); fds {[3] = string | secret, ...} are
 * pipes holding those bytes (up to 64 KiB each); stdout and stderr are collected while
 * proc.wait_any waits; child:result() reaps it. */
static int l_spawn(lua_State *L)
{
	job j;
	parse_opts(L, &j);
	int small = 0;
	for (int i = 0; i < j.nfeeds; i++)
		if (j.feeds[i].target >= 3) {
			luaL_argcheck(L, j.feeds[i].len <= 65536, 2, "an fd's bytes must fit a pipe (64 KiB)");
			j.feeds[small++] = j.feeds[i]; /* stdin's feed, if any, is not this one's */
		}
	j.nfeeds = small;
	j.devnull_stdin = 1;
	j.timeout = 0;
	j.inherit = 0;
	lua_getfield(L, 2, "stdin_pipe");
	if (lua_toboolean(L, -1)) { /* a pipe whose write end we keep: feeds[0], no data */
		if (j.nfeeds == MAX_FEEDS)
			return luaL_error(L, "proc.spawn: too many input fds");
		memmove(&j.feeds[1], &j.feeds[0], sizeof j.feeds[0] * (size_t)j.nfeeds);
		j.nfeeds++;
		j.devnull_stdin = 0;
		j.feeds[0] = (feed){.target = 0, .fd = -1, .data = NULL, .len = 0, .off = 0};
	}
	lua_pop(L, 1);
	pid_t pid;
	int err = spawn_job(&j, &pid);
	if (!err && (err = fill_small_feeds(&j)) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (err) {
		close_all(&j);
		return tend_fail_errno(L, err, "run %s", j.argv[0]);
	}
	child *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	c->j = j;
	c->pid = pid;
	luaL_setmetatable(L, CHILD_CLASS);
	for (int i = 0; i < 2; i++)
		fcntl(c->j.out[i].fd, F_SETFL, O_NONBLOCK);
	return 1;
}

/* open(argv [, {env=, cwd=}]) -> stream | nil, msg, code.  A child whose stdout is
 * read as it comes (stream:read, or C through tend_reader); stderr is collected. */
static int l_open(lua_State *L)
{
	int n = l_spawn(L);
	child *c = luaL_testudata(L, -1, CHILD_CLASS);
	if (c)
		c->raw = 1;
	return n;
}

/* Read up to n bytes of a stream's stdout, collecting stderr meanwhile.
 * >0 bytes, 0 at the end, -1 on failure. */
static ssize_t stream_read(child *c, char *buf, size_t n)
{
	for (;;) {
		struct pollfd p[2] = {{c->j.out[0].fd, POLLIN, 0}, {c->j.out[1].fd, POLLIN, 0}};
		if (c->j.out[0].fd < 0)
			return 0;
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (p[1].revents && drain(&c->j.out[1]) != 0)
			return -1;
		if (!p[0].revents)
			continue;
		ssize_t r = read(c->j.out[0].fd, buf, n);
		if (r > 0)
			return r;
		if (r == 0) {
			close(c->j.out[0].fd);
			c->j.out[0].fd = -1;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

static child *check_stream(lua_State *L)
{
	child *c = luaL_checkudata(L, 1, CHILD_CLASS);
	luaL_argcheck(L, c->raw, 1, "not a stream (use proc.open)");
	return c;
}

/* stream:read([max]) -> chunk | nil at the end | nil, msg, code */
static int stream_read_l(lua_State *L)
{
	child *c = check_stream(L);
	size_t max = (size_t)luaL_optinteger(L, 2, 1 << 17);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, max);
	ssize_t r = stream_read(c, p, max);
	if (r < 0)
		return tend_fail_errno(L, errno, "read from %s", "child");
	if (r == 0) {
		lua_pushnil(L);
		return 1;
	}
	luaL_pushresultsize(&b, (size_t)r);
	return 1;
}

static int stream_finish(child *c)
{
	if (c->j.nfeeds && c->j.feeds[0].fd >= 0) {
		close(c->j.feeds[0].fd);
		c->j.feeds[0].fd = -1;
	}
	return 0;
}

/* stream:wait() -> code, signal: closes its stdin, reads what is left, reaps it. */
static int stream_wait(lua_State *L)
{
	child *c = check_stream(L);
	char buf[16384];
	stream_finish(c);
	while (stream_read(c, buf, sizeof buf) > 0)
		;
	while (c->j.out[1].fd >= 0 && drain(&c->j.out[1]) == 0)
		;
	if (c->pid) {
		c->status = reap(c->pid, 0, 0);
		c->pid = 0;
	}
	if (WIFSIGNALED(c->status)) {
		lua_pushinteger(L, 128 + WTERMSIG(c->status));
		lua_pushinteger(L, WTERMSIG(c->status));
		return 2;
	}
	lua_pushinteger(L, WEXITSTATUS(c->status));
	return 1;
}

/* Write all of p to the stream's stdin, collecting its output meanwhile so that a
 * chatty child cannot stall us. 0, or -1 with errno set. */
static int stream_write(child *c, const char *p, size_t n)
{
	int in = c->j.feeds[0].fd;
	if (c->j.nfeeds == 0 || in < 0) {
		errno = EPIPE;
		return -1;
	}
	while (n > 0) {
		struct pollfd pf[3] = {{in, POLLOUT, 0}, {c->j.out[0].fd, POLLIN, 0}, {c->j.out[1].fd, POLLIN, 0}};
		if (poll(pf, 3, -1) < 0 && errno != EINTR)
			return -1;
		for (int k = 0; k < 2; k++)
			if (pf[k + 1].revents && drain(&c->j.out[k]) != 0)
				return -1;
		if (pf[0].revents & (POLLERR | POLLHUP)) {
			errno = EPIPE;
			return -1;
		}
		if (!(pf[0].revents & POLLOUT))
			continue;
		ssize_t w = write(in, p, n);
		if (w < 0 && errno != EINTR && errno != EAGAIN)
			return -1;
		if (w > 0)
			p += w, n -= (size_t)w;
	}
	return 0;
}

/* stream:write(data) -> true | nil, msg, code  (opened with stdin_pipe) */
static int stream_write_l(lua_State *L)
{
	child *c = check_stream(L);
	size_t n;
	tend_secret *s = tend_test_secret(L, 2);
	const char *p = s ? (const char *)tend_secret_bytes(tend_check_secret(L, 2), &n) : luaL_checklstring(L, 2, &n);
	struct sigaction ignore = {.sa_handler = SIG_IGN}, saved;
	sigaction(SIGPIPE, &ignore, &saved);
	int rc = stream_write(c, p, n);
	sigaction(SIGPIPE, &saved, NULL);
	if (rc != 0)
		return tend_fail_errno(L, errno, "write to child");
	lua_pushboolean(L, 1);
	return 1;
}

/* stream:send_eof() -> true: closes the child's stdin */
static int stream_send_eof(lua_State *L)
{
	stream_finish(check_stream(L));
	lua_pushboolean(L, 1);
	return 1;
}

/* stream:stderr() -> what the child wrote to stderr so far */
static int stream_stderr(lua_State *L)
{
	child *c = check_stream(L);
	lua_pushlstring(L, c->j.out[1].buf ? c->j.out[1].buf : "", c->j.out[1].len);
	return 1;
}

static ssize_t reader_read(void *ctx, char *buf, size_t n) { return stream_read(ctx, buf, n); }
static const char *reader_error(void *ctx)
{
	(void)ctx;
	return strerror(errno);
}

static int writer_write(void *ctx, const char *p, size_t n)
{
	struct sigaction ignore = {.sa_handler = SIG_IGN}, saved;
	sigaction(SIGPIPE, &ignore, &saved);
	int rc = stream_write(ctx, p, n);
	sigaction(SIGPIPE, &saved, NULL);
	return rc;
}

static int writer_finish(void *ctx) { return stream_finish(ctx); }

/* A proc stream opened with stdin_pipe at idx as a tend_writer; 0 otherwise. */
int tend_proc_writer(lua_State *L, int idx, tend_writer *w)
{
	child *c = luaL_testudata(L, idx, CHILD_CLASS);
	if (!c || !c->raw || !c->j.nfeeds)
		return 0;
	w->write = writer_write;
	w->finish = writer_finish;
	w->error = reader_error;
	w->ctx = c;
	return 1;
}

/* A proc stream at idx as a tend_reader; 0 when idx is not one. */
int tend_proc_reader(lua_State *L, int idx, tend_reader *r)
{
	child *c = luaL_testudata(L, idx, CHILD_CLASS);
	if (!c || !c->raw)
		return 0;
	r->read = reader_read;
	r->error = reader_error;
	r->ctx = c;
	return 1;
}

/* wait_any({child, ...}) -> index of a child whose output is complete (it has exited or
 * is exiting); collects every child's output meanwhile. */
static int l_wait_any(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	int n = (int)luaL_len(L, 1);
	luaL_argcheck(L, n > 0 && n <= 64, 1, "1 to 64 children");
	child *kids[64];
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, 1, i + 1);
		kids[i] = luaL_checkudata(L, -1, CHILD_CLASS);
		lua_pop(L, 1);
	}
	for (;;) {
		struct pollfd pfd[128];
		sink *who[128];
		int m = 0;
		for (int i = 0; i < n; i++) {
			if (kids[i]->j.out[0].fd < 0 && kids[i]->j.out[1].fd < 0) {
				lua_pushinteger(L, i + 1);
				return 1;
			}
			for (int k = 0; k < 2; k++)
				if (kids[i]->j.out[k].fd >= 0)
					pfd[m] = (struct pollfd){kids[i]->j.out[k].fd, POLLIN, 0}, who[m++] = &kids[i]->j.out[k];
		}
		if (poll(pfd, (nfds_t)m, -1) < 0 && errno != EINTR)
			return luaL_error(L, "proc.wait_any: %s", strerror(errno));
		for (int i = 0; i < m; i++)
			if (pfd[i].revents && drain(who[i]) != 0)
				return luaL_error(L, "proc.wait_any: out of memory");
	}
}

/* child:result() -> {code, signal, stdout, stderr}: waits for the child to end. */
static int child_result(lua_State *L)
{
	child *c = luaL_checkudata(L, 1, CHILD_CLASS);
	luaL_argcheck(L, c->pid != 0, 1, "child already reaped");
	while (c->j.out[0].fd >= 0 || c->j.out[1].fd >= 0) {
		for (int k = 0; k < 2; k++)
			if (c->j.out[k].fd >= 0) {
				struct pollfd p = {c->j.out[k].fd, POLLIN, 0};
				poll(&p, 1, -1);
				if (drain(&c->j.out[k]) != 0)
					return luaL_error(L, "proc: out of memory");
			}
	}
	int status = reap(c->pid, 0, 0);
	c->pid = 0;
	push_result(L, &c->j, status);
	close_all(&c->j);
	return 1;
}

static int child_gc(lua_State *L)
{
	child *c = luaL_checkudata(L, 1, CHILD_CLASS);
	if (c->pid) {
		kill(c->pid, SIGTERM);
		reap(c->pid, 0, 0);
		c->pid = 0;
	}
	close_all(&c->j);
	return 0;
}

int tend_open_proc(lua_State *L)
{
	static const luaL_Reg child_methods[] = {
		{"result", child_result}, {"read", stream_read_l}, {"write", stream_write_l},
		{"send_eof", stream_send_eof}, {"wait", stream_wait},
		{"stderr", stream_stderr}, {"close", child_gc}, {"__gc", child_gc}, {"__close", child_gc},
		{NULL, NULL}};
	static const luaL_Reg funcs[] = {
		{"run", l_run}, {"spawn", l_spawn}, {"pid", l_pid}, {"now", l_now}, {"die_with_parent", l_die_with_parent}, {"open", l_open}, {"wait_any", l_wait_any},
		{NULL, NULL}};
	tend_new_class(L, CHILD_CLASS, child_methods);
	luaL_newlib(L, funcs);
	return 1;
}
