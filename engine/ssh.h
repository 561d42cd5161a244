/* ssh.h: what ssh.c (sessions) and ssh_exec.c (channels) share. */
#ifndef TEND_SSH_H
#define TEND_SSH_H
#include <libssh2.h>

#include "tend.h"

typedef struct {
	LIBSSH2_SESSION *s; /* NULL once closed */
	int sock;
	int port;
	double timeout;     /* seconds, for connect, handshake and auth */
	double idle;        /* seconds a channel may go without moving a byte */
	char host[256];
} tend_ssh;

tend_ssh *tend_ssh_check(lua_State *L, int idx);
/* Wait for the socket in the direction libssh2 is blocked on; -1 past the deadline. */
int tend_ssh_wait(tend_ssh *ss, double deadline);
/* nil, "ssh HOST:PORT: what: libssh2's last error", code */
int tend_ssh_fail(lua_State *L, tend_ssh *ss, const char *code, const char *what);
int tend_ssh_exec(lua_State *L);
int tend_ssh_runner(lua_State *L);
void tend_ssh_runner_class(lua_State *L);
/* A random 32-hex-digit token that frames a remote shell's output (tend_ssh_runner,
 * spare channels): nothing a command prints can end its output early. */
void tend_ssh_token(char out[33]);

/* One exchange on a channel (ssh_exec.c): stdin pieces in, stdout and stderr collected
 * until the channel's EOF, or, with marks, until each stream has printed its mark (a
 * long-lived shell that runs many commands: ssh_runner.c). */
#define TEND_JOB_PIECES 10
enum { TEND_JOB_DONE = 0, TEND_JOB_TIMEOUT = -1, TEND_JOB_ENDED = -2 }; /* errors: < -2 */
typedef struct {
	tend_ssh *ss;
	LIBSSH2_CHANNEL *ch;
	struct { const char *data; size_t len; } in[TEND_JOB_PIECES];
	int nin, cur;
	size_t off;
	int eof_sent, keep_open; /* keep_open: no EOF after the last piece */
	struct { char *buf; size_t len, cap; } out[2];
	const char *mark[2];     /* NULL: read to EOF */
	size_t mark_len[2];
	long end[2];             /* where each mark begins, -1 until seen */
	size_t scan[2];          /* where to look for it next */
	double deadline;         /* 0: none */
} tend_job;
void tend_job_add(lua_State *L, tend_job *j, int idx); /* a string or secret as stdin */
void tend_job_stdin(lua_State *L, tend_job *j, int opts); /* opts.stdin: one or a list */
int tend_job_pump(tend_job *j);
int tend_job_wait(tend_job *j); /* wait for the socket; TEND_JOB_TIMEOUT past the deadline */
void tend_job_release(tend_job *j); /* the buffers */
int tend_ssh_open(lua_State *L);
int tend_ssh_spare(lua_State *L);
int tend_ssh_interactive(lua_State *L);
void tend_ssh_channel_class(lua_State *L);
#endif
