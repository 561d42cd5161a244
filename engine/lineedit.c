/* lineedit.c: line editing for the REPL, through libedit's readline interface.
 *   lineedit.read(prompt) -> line | nil at end of input | "", true after Ctrl-C
 *   lineedit.history_add(line)  lineedit.history_load(path)  lineedit.history_save(path [, max])
 *   lineedit.complete(fn): fn(word, line_before_word) -> {candidate, ...}, called on Tab
 *   lineedit.run(fn, ...) -> fn's results: Ctrl-C while fn runs raises "interrupted" in it
 * readline keeps its state in globals, so one completer serves the process; it runs in
 * the Lua state that set it, only while read() waits (never re-entered).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <readline.h>

#include "tend.h"

static lua_State *completer_L; /* the state read() runs in, while it runs */
static int completer_ref = LUA_NOREF;
static char **candidates;      /* this Tab's list, handed out one by one */
static size_t ncandidates, next_candidate;
static int word_start;         /* where the word being completed starts in the line */

static void free_candidates(void)
{
	for (size_t i = next_candidate; i < ncandidates; i++)
		free(candidates[i]);
	free(candidates);
	candidates = NULL;
	ncandidates = next_candidate = 0;
}

/* readline asks for candidates one at a time (state 0 = a new word). */
static char *candidate(const char *word, int state)
{
	lua_State *L = completer_L;
	if (state == 0) {
		free_candidates();
		if (!L || completer_ref == LUA_NOREF)
			return NULL;
		lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
		lua_pushstring(L, word);
		lua_pushlstring(L, rl_line_buffer, word_start > 0 ? (size_t)word_start : 0);
		if (lua_pcall(L, 2, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
			lua_pop(L, 1); /* a completer that fails completes nothing */
			return NULL;
		}
		size_t n = lua_rawlen(L, -1);
		candidates = calloc(n ? n : 1, sizeof *candidates);
		for (size_t i = 1; candidates && i <= n; i++) {
			if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING)
				candidates[ncandidates++] = strdup(lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	return next_candidate < ncandidates ? candidates[next_candidate++] : NULL; /* readline frees it */
}

static char **complete(const char *word, int start, int end)
{
	(void)end;
	word_start = start;
	rl_attempted_completion_over = 1; /* never fall back to file names */
	rl_completion_append_character = '\0'; /* "prod" is followed by ':' or '.', not a space */
	return rl_completion_matches(word, candidate);
}

static volatile sig_atomic_t prompt_interrupted;
static void on_prompt_interrupt(int sig)
{
	(void)sig;
	prompt_interrupted = 1;
}

/* read(prompt) -> line | nil at end of input | "", true when Ctrl-C dropped the line */
static int l_read(lua_State *L)
{
	const char *prompt = luaL_optstring(L, 1, "> ");
	completer_L = L;
	struct sigaction ignore, old; /* Ctrl-C at the prompt does not end the session */
	memset(&ignore, 0, sizeof ignore);
	ignore.sa_handler = on_prompt_interrupt;
	ignore.sa_flags = SA_RESTART;
	sigemptyset(&ignore.sa_mask);
	sigaction(SIGINT, &ignore, &old);
	prompt_interrupted = 0;
	char *line = readline(prompt);
	sigaction(SIGINT, &old, NULL);
	completer_L = NULL;
	free_candidates();
	if (!line && prompt_interrupted) { /* libedit gives up the line: so do we, not the session */
		lua_pushliteral(L, "");
		lua_pushboolean(L, 1);
		return 2;
	}
	if (!line)
		return 0;
	lua_pushstring(L, line);
	free(line);
	return 1;
}

static int l_history_add(lua_State *L)
{
	add_history(luaL_checkstring(L, 1));
	return 0;
}

static int l_history_load(lua_State *L)
{
	read_history(luaL_checkstring(L, 1)); /* none yet is fine */
	return 0;
}

/* history_save(path [, max]): the history, its last max lines (default 1000) */
static int l_history_save(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	int max = (int)luaL_optinteger(L, 2, 1000);
	if (write_history(path) != 0)
		return tend_fail(L, "io", "history %s: cannot write it", path);
	history_truncate_file(path, max);
	lua_pushboolean(L, 1);
	return 1;
}

/* complete(fn): fn(word, before) -> {candidate, ...} */
static int l_complete(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (completer_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
	lua_pushvalue(L, 1);
	completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	rl_attempted_completion_function = complete;
	rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{(,+-*/%^~#[].:";
	return 0;
}

/* Ctrl-C while Lua code of the REPL runs: as lua.c does, the handler only sets a hook,
 * and the hook raises the error at the next call, return or count in Lua. */
static lua_State *running;

static void stop_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	lua_pushliteral(L, "interrupted"); /* no position: it is the operator's Ctrl-C, not a bug */
	lua_error(L);
}

static void on_interrupt(int sig)
{
	(void)sig;
	if (running)
		lua_sethook(running, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* run(fn, ...) -> fn's results; raises what fn raised, or "interrupted" */
static int l_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	running = L;
	int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	running = NULL;
	lua_sethook(L, NULL, 0, 0);
	sigaction(SIGINT, &old, NULL);
	if (rc != LUA_OK)
		return lua_error(L);
	return lua_gettop(L);
}

int tend_open_lineedit(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"read", l_read}, {"history_add", l_history_add},
	                                 {"history_load", l_history_load}, {"history_save", l_history_save},
	                                 {"complete", l_complete}, {"run", l_run}, {NULL, NULL}};
	rl_readline_name = "tend";
	luaL_newlib(L, funcs);
	return 1;
}
