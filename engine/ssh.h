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
int tend_ssh_open(lua_State *L);
int tend_ssh_interactive(lua_State *L);
void tend_ssh_channel_class(lua_State *L);
int tend_ssh_sftp(lua_State *L);
void tend_ssh_sftp_class(lua_State *L);
#endif
