/* rewrite.c: strings replaced inside a SQL dump as it streams by, for copies of an
 * instance (its URL and path become the copy's). Only the dump's string literals are
 * touched; a PHP-serialized string (s:N:"...";) that held a replaced string gets its byte
 * count fixed, nested ones too; a literal with no match goes out byte for byte. One
 * literal at a time is held, so memory stays flat whatever the dump's size.
 *   rewrite.new(pairs, dialect, stream) -> rewriter: a stream (for st:write_to and
 *       friends) that rewrites what it is given and hands it on to stream.
 *       pairs: {{from, to}, ...}, tried in that order; dialect: "mysql" (backslash
 *       escapes, mysqldump) or "sqlite" ('' inside '...', sqlite3 .dump)
 *   rw:write(data) -> true | nil, msg, code    rw:flush() -> true | nil, msg, code
 *   rw:send_eof() -> flush, then end-of-file on stream    rw:stats() -> {...}    rw:close()
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tend.h"

#define REWRITER_CLASS "tend.rewriter"
#define OUT_SIZE (64 << 10)
#define MAX_DEPTH 32 /* serialized strings nested deeper are left as they are */

typedef struct {
	char *p;
	size_t len, cap;
} buf;

typedef struct {
	char *from, *to;
	size_t from_len, to_len;
} pair;

enum state { OUT, LINE_START, DASH, COMMENT, QUOTED_NAME, STR, STR_ESC, STR_QUOTE };

typedef struct {
	pair *pairs;
	size_t npairs;
	int sqlite;         /* '' is the only escape; else MySQL's backslashes too */
	enum state state;
	char name_quote;    /* the ` or " that ends a quoted name */
	buf raw, val, work; /* the literal as written, its value, the rewritten value */
	buf out;            /* bytes waiting for the stream */
	tend_writer down;
	int failed;
	long long literals, changed, replaced, serialized, bytes_in, bytes_out;
} rewriter;

static int buf_add(buf *b, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q, b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int buf_byte(buf *b, char c)
{
	if (b->len < b->cap) {
		b->p[b->len++] = c;
		return 0;
	}
	return buf_add(b, &c, 1);
}

static int flush_out(rewriter *rw)
{
	if (rw->out.len && rw->down.write(rw->down.ctx, rw->out.p, rw->out.len) != 0)
		return -1;
	rw->bytes_out += (long long)rw->out.len;
	rw->out.len = 0;
	return 0;
}

static int emit(rewriter *rw, const char *p, size_t n)
{
	if (rw->out.len + n > OUT_SIZE && flush_out(rw) != 0)
		return -1;
	return buf_add(&rw->out, p, n);
}

/* s:N:"..."; at v[i]: the content's start and length, or 0 when this is not one. */
static int serialized_at(const char *v, size_t len, size_t i, size_t *start, size_t *n)
{
	if (i + 4 > len || v[i] != 's' || v[i + 1] != ':' || (i > 0 && v[i - 1] != ';' && v[i - 1] != '{' && v[i - 1] != '}'))
		return 0;
	size_t j = i + 2, count = 0;
	while (j < len && v[j] >= '0' && v[j] <= '9' && j - i < 14)
		count = count * 10 + (size_t)(v[j++] - '0');
	if (j == i + 2 || j + 2 > len || v[j] != ':' || v[j + 1] != '"')
		return 0;
	j += 2;
	if (count > len - j || len - j - count < 2 || v[j + count] != '"' || v[j + count + 1] != ';')
		return 0;
	*start = j, *n = count;
	return 1;
}

/* The value v rewritten into out: every pair replaced; serialized strings recounted. */
static int rewrite_value(rewriter *rw, const char *v, size_t len, buf *out, int depth)
{
	size_t i = 0;
	while (i < len) {
		size_t start, n;
		if (depth < MAX_DEPTH && v[i] == 's' && serialized_at(v, len, i, &start, &n)) {
			buf inner = {0};
			if (rewrite_value(rw, v + start, n, &inner, depth + 1) != 0) {
				free(inner.p);
				return -1;
			}
			char head[32];
			int k = snprintf(head, sizeof head, "s:%zu:\"", inner.len);
			int err = buf_add(out, head, (size_t)k) || buf_add(out, inner.p ? inner.p : "", inner.len) ||
			          buf_add(out, "\";", 2);
			if (inner.len != n)
				rw->serialized++;
			free(inner.p);
			if (err)
				return -1;
			i = start + n + 2;
			continue;
		}
		size_t p = 0;
		for (; p < rw->npairs; p++) {
			pair *pr = &rw->pairs[p];
			if (len - i >= pr->from_len && v[i] == pr->from[0] && memcmp(v + i, pr->from, pr->from_len) == 0)
				break;
		}
		if (p < rw->npairs) {
			if (buf_add(out, rw->pairs[p].to, rw->pairs[p].to_len) != 0)
				return -1;
			rw->replaced++;
			i += rw->pairs[p].from_len;
		} else if (buf_byte(out, v[i++]) != 0) {
			return -1;
		}
	}
	return 0;
}

static int any_match(const rewriter *rw, const char *v, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t p = 0; p < rw->npairs; p++)
		if (memmem(v, len, rw->pairs[p].from, rw->pairs[p].from_len))
			return 1;
	return 0;
}

/* A value written back as a literal's inside, escaped the way the dialect reads it. */
static int emit_escaped(rewriter *rw, const char *v, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		const char *esc = NULL;
		if (rw->sqlite) {
			esc = c == '\'' ? "''" : NULL;
		} else {
			switch (c) {
			case '\0': esc = "\\0"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\\': esc = "\\\\"; break;
			case '\'': esc = "\\'"; break;
			case '"': esc = "\\\""; break;
			case '\032': esc = "\\Z"; break;
			}
		}
		if (esc ? emit(rw, esc, strlen(esc)) : emit(rw, &c, 1))
			return -1;
	}
	return 0;
}

/* The literal just closed: as it was, or rewritten when its value holds a match. */
static int end_literal(rewriter *rw)
{
	rw->literals++;
	int err;
	if (!any_match(rw, rw->val.p, rw->val.len)) {
		err = emit(rw, rw->raw.p, rw->raw.len);
	} else {
		rw->work.len = 0;
		err = rewrite_value(rw, rw->val.p, rw->val.len, &rw->work, 0) || emit_escaped(rw, rw->work.p, rw->work.len);
		rw->changed++;
	}
	rw->raw.len = rw->val.len = 0;
	return err || emit(rw, "'", 1);
}

static char unescape(char c)
{
	switch (c) {
	case '0': return '\0';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'b': return '\b';
	case 'Z': return '\032';
	default: return c;
	}
}

/* Outside a literal: one byte; returns the next state. */
static enum state outside(rewriter *rw, char c, int *err)
{
	*err = emit(rw, &c, 1);
	if (c == '\'')
		return STR;
	if (c == '`' || c == '"') {
		rw->name_quote = c;
		return QUOTED_NAME;
	}
	return c == '\n' ? LINE_START : OUT;
}

static int push(rewriter *rw, const char *p, size_t n)
{
	rw->bytes_in += (long long)n;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		int err = 0;
		switch (rw->state) {
		case LINE_START:
			if (c == '-') {
				err = emit(rw, &c, 1);
				rw->state = DASH;
				break;
			}
			rw->state = outside(rw, c, &err);
			break;
		case DASH:
			if (c == '-') {
				err = emit(rw, &c, 1);
				rw->state = COMMENT;
				break;
			}
			rw->state = outside(rw, c, &err);
			break;
		case OUT:
			rw->state = outside(rw, c, &err);
			break;
		case COMMENT:
			err = emit(rw, &c, 1);
			if (c == '\n')
				rw->state = LINE_START;
			break;
		case QUOTED_NAME:
			err = emit(rw, &c, 1);
			if (c == rw->name_quote)
				rw->state = OUT;
			break;
		case STR: {
			size_t k = i; /* the run up to the next quote or backslash, at once */
			while (k < n && p[k] != '\'' && (rw->sqlite || p[k] != '\\'))
				k++;
			err = buf_add(&rw->raw, p + i, k - i) || buf_add(&rw->val, p + i, k - i);
			i = k;
			if (i == n)
				break;
			err = err || buf_byte(&rw->raw, p[i]);
			rw->state = p[i] == '\'' ? STR_QUOTE : STR_ESC;
			break;
		}
		case STR_ESC:
			err = buf_byte(&rw->raw, c) || buf_byte(&rw->val, unescape(c));
			rw->state = STR;
			break;
		case STR_QUOTE:
			if (c == '\'') { /* '' inside a literal is one quote */
				err = buf_byte(&rw->raw, c) || buf_byte(&rw->val, c);
				rw->state = STR;
				break;
			}
			rw->raw.len--; /* the closing quote: end_literal writes it */
			err = end_literal(rw);
			if (!err)
				rw->state = outside(rw, c, &err);
			break;
		}
		if (err)
			return -1;
	}
	return 0;
}

/* flush: what is held goes out; a literal still open (a dump cut short) goes as it was. */
static int flush_all(rewriter *rw)
{
	if (rw->state == STR_QUOTE) {
		rw->raw.len--;
		if (end_literal(rw) != 0)
			return -1;
		rw->state = OUT;
	} else if (rw->raw.len) {
		if (emit(rw, rw->raw.p, rw->raw.len) != 0)
			return -1;
		rw->raw.len = rw->val.len = 0;
	}
	return flush_out(rw);
}

static rewriter *check_rewriter(lua_State *L, int idx)
{
	rewriter *rw = luaL_checkudata(L, idx, REWRITER_CLASS);
	if (!rw->pairs)
		luaL_error(L, "rewriter used after close");
	return rw;
}

static int fail_down(lua_State *L, rewriter *rw)
{
	rw->failed = 1;
	if (errno == ENOMEM)
		return luaL_error(L, "rewrite: out of memory");
	return tend_fail(L, "stream", "rewrite: %s", rw->down.error(rw->down.ctx));
}

/* rw:write(data) -> true | nil, msg, code */
static int l_write(lua_State *L)
{
	rewriter *rw = check_rewriter(L, 1);
	size_t n;
	const char *p = luaL_checklstring(L, 2, &n);
	errno = 0;
	if (rw->failed || push(rw, p, n) != 0)
		return fail_down(L, rw);
	lua_pushboolean(L, 1);
	return 1;
}

/* rw:flush() -> true | nil, msg, code */
static int l_flush(lua_State *L)
{
	rewriter *rw = check_rewriter(L, 1);
	errno = 0;
	if (rw->failed || flush_all(rw) != 0)
		return fail_down(L, rw);
	lua_pushboolean(L, 1);
	return 1;
}

/* rw:send_eof() -> true | nil, msg, code: flush, then end-of-file on the stream */
static int l_send_eof(lua_State *L)
{
	rewriter *rw = check_rewriter(L, 1);
	errno = 0;
	if (rw->failed || flush_all(rw) != 0 || rw->down.finish(rw->down.ctx) != 0)
		return fail_down(L, rw);
	lua_pushboolean(L, 1);
	return 1;
}

/* rw:stats() -> {literals, changed, replaced, serialized, bytes_in, bytes_out} */
static int l_stats(lua_State *L)
{
	rewriter *rw = check_rewriter(L, 1);
	lua_createtable(L, 0, 6);
	const struct { const char *k; long long v; } f[] = {
		{"literals", rw->literals}, {"changed", rw->changed}, {"replaced", rw->replaced},
		{"serialized", rw->serialized}, {"bytes_in", rw->bytes_in}, {"bytes_out", rw->bytes_out}};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		lua_pushinteger(L, f[i].v);
		lua_setfield(L, -2, f[i].k);
	}
	return 1;
}

static int l_close(lua_State *L)
{
	rewriter *rw = luaL_checkudata(L, 1, REWRITER_CLASS);
	if (rw->pairs) {
		for (size_t i = 0; i < rw->npairs; i++)
			free(rw->pairs[i].from), free(rw->pairs[i].to);
		free(rw->pairs);
		free(rw->raw.p), free(rw->val.p), free(rw->work.p), free(rw->out.p);
		rw->pairs = NULL;
	}
	return 0;
}

static int l_tostring(lua_State *L)
{
	rewriter *rw = luaL_checkudata(L, 1, REWRITER_CLASS);
	lua_pushfstring(L, "rewriter (%d pairs%s)", (int)rw->npairs, rw->pairs ? "" : ", closed");
	return 1;
}

/* The rewriter at idx as a writer for C (st:write_to): 1, or 0 when it is not one. */
static int down_write(void *ctx, const char *p, size_t n)
{
	errno = 0; /* ENOMEM after this is ours */
	return push(ctx, p, n);
}
static int down_finish(void *ctx)
{
	rewriter *rw = ctx;
	return flush_all(rw) != 0 ? -1 : rw->down.finish(rw->down.ctx);
}
static const char *down_error(void *ctx)
{
	rewriter *rw = ctx;
	return errno == ENOMEM ? "out of memory" : rw->down.error(rw->down.ctx);
}

int tend_rewrite_writer(lua_State *L, int idx, tend_writer *w)
{
	rewriter *rw = luaL_testudata(L, idx, REWRITER_CLASS);
	if (!rw)
		return 0;
	if (!rw->pairs)
		luaL_error(L, "rewriter used after close");
	w->write = down_write;
	w->finish = down_finish;
	w->error = down_error;
	w->ctx = rw;
	return 1;
}

static char *dup_field(lua_State *L, int t, int i, size_t *len)
{
	lua_rawgeti(L, t, i);
	const char *s = lua_tolstring(L, -1, len);
	if (!s)
		luaL_error(L, "rewrite.new: each pair is {from, to}, two strings");
	char *d = malloc(*len + 1);
	if (d)
		memcpy(d, s, *len + 1);
	lua_pop(L, 1);
	return d;
}

/* rewrite.new(pairs, dialect, stream) -> rewriter */
static int l_new(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	static const char *const dialects[] = {"mysql", "sqlite", NULL};
	int sqlite = luaL_checkoption(L, 2, NULL, dialects);
	tend_writer down;
	tend_check_writer(L, 3, &down);
	size_t n = lua_rawlen(L, 1);
	rewriter *rw = lua_newuserdatauv(L, sizeof *rw, 1);
	memset(rw, 0, sizeof *rw);
	rw->pairs = calloc(n ? n : 1, sizeof *rw->pairs);
	luaL_setmetatable(L, REWRITER_CLASS);
	if (!rw->pairs)
		return luaL_error(L, "rewrite: out of memory");
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, 1, (lua_Integer)i + 1);
		if (!lua_istable(L, -1))
			return luaL_error(L, "rewrite.new: pair %d is not {from, to}", (int)i + 1);
		pair *pr = &rw->pairs[rw->npairs++];
		pr->from = dup_field(L, lua_gettop(L), 1, &pr->from_len);
		pr->to = dup_field(L, lua_gettop(L), 2, &pr->to_len);
		lua_pop(L, 1);
		if (!pr->from || !pr->to)
			return luaL_error(L, "rewrite: out of memory");
		if (pr->from_len == 0)
			return luaL_error(L, "rewrite.new: pair %d replaces the empty string", (int)i + 1);
	}
	rw->sqlite = sqlite;
	rw->state = LINE_START;
	rw->down = down;
	lua_pushvalue(L, 3); /* the stream lives as long as we do */
	lua_setiuservalue(L, -2, 1);
	return 1;
}

int tend_open_rewrite(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{"write", l_write}, {"flush", l_flush}, {"send_eof", l_send_eof}, {"stats", l_stats},
		{"close", l_close}, {"__gc", l_close}, {"__close", l_close}, {"__tostring", l_tostring}, {NULL, NULL}};
	tend_new_class(L, REWRITER_CLASS, methods);
	static const luaL_Reg funcs[] = {{"new", l_new}, {NULL, NULL}};
	luaL_newlib(L, funcs);
	return 1;
}
