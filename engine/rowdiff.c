/* rowdiff.c: two mysqldump outputs compared table by table and row by row, by primary
 * key, as one streaming merge: mysqldump writes tables by name and InnoDB rows in key
 * order, so each side is read once, a line at a time, and no table is ever held.
 *   rowdiff.compare(a, b [, {limit = 20, ignore = {table = true}, rows = TABLE}])
 *     -> {{name=, in_a=, in_b=, create_a=, create_b=, same=, differ=, only_a=, only_b=,
 *          unordered=, ignored=, keys = {differ = {...}, only_a = {...}, only_b = {...}},
 *          rows = {{kind, a_row, b_row}, ...}}, ...} | nil, msg, code
 * a and b are file paths or streams (an ssh channel, proc.open). Dumps with one INSERT
 * per row (--skip-extended-insert) and extended ones both work. keys lists up to limit
 * keys of each kind per table ("1", "5,'x'"); `rows` names the one table whose differing
 * rows come back whole. A side whose keys go backwards (a table with no primary key,
 * a collation this merge does not follow) marks the table unordered: from there its rows
 * are paired by position, which finds an identical table the same and says little more.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tend.h"

#define MAX_FIELDS 512
#define MAX_KEYS 16

typedef struct {
	tend_reader r;
	int fd;                  /* a file's, or -1 */
	char *buf;               /* read buffer */
	size_t have, pos;
	char *line;              /* the current line */
	size_t len, cap;
	int eof, failed;
	const char *why;
	/* the table being read */
	char table[256];
	char *create;            /* its CREATE TABLE statement */
	int key[MAX_KEYS], nkey; /* primary key columns, by position */
	size_t cur;              /* parse position in the line's VALUES */
	int active;              /* the line holds tuples still to read */
	int in_insert;           /* an INSERT goes on over the next lines (MariaDB 10.11: a tuple a line) */
	/* the current row */
	const char *row;
	size_t row_len;
	size_t fs[MAX_FIELDS], fe[MAX_FIELDS];
	int nf;
	/* the previous row's key, to see order kept */
	char *prev;
	size_t prev_len, prev_cap;
	int has_prev;
} side;

enum ev { EV_END, EV_TABLE, EV_ROW, EV_ERROR };

static ssize_t fd_read(void *ctx, char *b, size_t n)
{
	side *s = ctx;
	for (;;) {
		ssize_t k = read(s->fd, b, n);
		if (k >= 0 || errno != EINTR)
			return k;
	}
}
static const char *fd_error(void *ctx)
{
	(void)ctx;
	return strerror(errno);
}

/* The next line into s->line (without its newline); 0 at the end, -1 on failure. */
static int next_line(side *s)
{
	s->len = 0;
	for (;;) {
		if (s->pos == s->have) {
			if (s->eof)
				return s->len > 0;
			ssize_t k = s->r.read(s->r.ctx, s->buf, 1 << 16);
			if (k < 0) {
				s->failed = 1;
				s->why = s->r.error(s->r.ctx);
				return -1;
			}
			if (k == 0) {
				s->eof = 1;
				continue;
			}
			s->have = (size_t)k, s->pos = 0;
		}
		char *nl = memchr(s->buf + s->pos, '\n', s->have - s->pos);
		size_t take = nl ? (size_t)(nl - (s->buf + s->pos)) : s->have - s->pos;
		if (s->len + take + 1 > s->cap) {
			size_t cap = s->cap ? s->cap : 4096;
			while (cap < s->len + take + 1)
				cap *= 2;
			char *p = realloc(s->line, cap);
			if (!p) {
				s->failed = 1;
				s->why = "out of memory";
				return -1;
			}
			s->line = p, s->cap = cap;
		}
		memcpy(s->line + s->len, s->buf + s->pos, take);
		s->len += take;
		s->line[s->len] = '\0';
		s->pos += take + (nl ? 1 : 0);
		if (nl)
			return 1;
	}
}

/* `name` at p (a backquoted identifier) -> its length in out, or 0. */
static size_t ident(const char *p, const char *end, char *out, size_t cap)
{
	if (p >= end || *p != '`')
		return 0;
	size_t n = 0;
	const char *q = p + 1;
	while (q < end && *q != '`' && n + 1 < cap)
		out[n++] = *q++;
	out[n] = '\0';
	return q < end ? (size_t)(q - p + 1) : 0;
}

/* The columns and primary key of a CREATE TABLE statement. */
static void read_create(side *s)
{
	char cols[MAX_FIELDS][128];
	int ncols = 0;
	s->nkey = 0;
	for (const char *p = s->create; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		const char *end = strchr(p, '\n');
		if (!end)
			end = p + strlen(p);
		const char *q = p;
		while (q < end && *q == ' ')
			q++;
		if (*q == '`' && ncols < MAX_FIELDS && q != s->create) {
			ident(q, end, cols[ncols], sizeof cols[0]);
			ncols++;
		} else if (strncmp(q, "PRIMARY KEY (", 13) == 0) {
			q += 13;
			char name[128];
			size_t k;
			while (s->nkey < MAX_KEYS && (k = ident(q, end, name, sizeof name)) > 0) {
				for (int c = 0; c < ncols; c++)
					if (strcmp(cols[c], name) == 0)
						s->key[s->nkey++] = c;
				q += k;
				while (q < end && *q != '`' && *q != ')')
					q++; /* a prefix length: (`x`(191)) */
				if (q < end && *q == ')' && q[1] != ',' && q[1] != '`')
					break;
				while (q < end && *q != '`')
					q++;
			}
		}
	}
	if (s->nkey == 0) /* no primary key: the whole row is the key */
		for (int c = 0; c < ncols && c < MAX_KEYS; c++)
			s->key[s->nkey++] = c;
}

/* One tuple "(...)" at s->line + s->cur into the row fields; 1, or 0 when none is left. */
static int read_tuple(side *s)
{
	const char *p = s->line + s->cur, *end = s->line + s->len;
	while (p < end && *p != '(')
		p++;
	if (p >= end)
		return 0;
	const char *start = p++;
	s->nf = 0;
	while (p < end) {
		const char *f = p;
		if (*p == '\'') {
			for (p++; p < end && *p != '\''; p++)
				if (*p == '\\' && p + 1 < end)
					p++;
			p++;
		} else {
			while (p < end && *p != ',' && *p != ')')
				p++;
		}
		if (s->nf < MAX_FIELDS) {
			s->fs[s->nf] = (size_t)(f - s->line);
			s->fe[s->nf] = (size_t)(p - s->line);
			s->nf++;
		}
		if (p >= end || *p == ')')
			break;
		p++; /* the comma */
	}
	if (p >= end)
		return 0;
	s->row = start;
	s->row_len = (size_t)(p + 1 - start);
	s->cur = (size_t)(p + 1 - s->line);
	return 1;
}

/* The next event of a side: a table begins, a row, the end. */
static enum ev next_event(side *s)
{
	if (s->active && read_tuple(s))
		return EV_ROW;
	s->active = 0;
	for (;;) {
		int r = next_line(s);
		if (r < 0)
			return EV_ERROR;
		if (r == 0)
			return EV_END;
		if (s->in_insert) {
			s->in_insert = s->len == 0 || s->line[s->len - 1] != ';';
			if (s->line[0] == '(') {
				s->cur = 0, s->active = 1;
				if (read_tuple(s))
					return EV_ROW;
				s->active = 0;
			}
			continue;
		}
		if (strncmp(s->line, "CREATE TABLE `", 14) == 0) {
			ident(s->line + 13, s->line + s->len, s->table, sizeof s->table);
			size_t n = s->len, cap = n + 2;
			char *c = malloc(cap);
			if (!c)
				return EV_ERROR;
			memcpy(c, s->line, n);
			while (n == 0 || c[n - 1] != ';') { /* to the statement's end */
				if ((r = next_line(s)) <= 0) {
					free(c);
					return r < 0 ? EV_ERROR : EV_END;
				}
				char *d = realloc(c, n + s->len + 2);
				if (!d) {
					free(c);
					return EV_ERROR;
				}
				c = d;
				c[n++] = '\n';
				memcpy(c + n, s->line, s->len);
				n += s->len;
			}
			c[n] = '\0';
			free(s->create);
			s->create = c;
			read_create(s);
			s->has_prev = 0;
			return EV_TABLE;
		}
		if (strncmp(s->line, "INSERT INTO `", 13) == 0) {
			const char *v = strstr(s->line, " VALUES");
			if (!v)
				continue;
			s->in_insert = s->line[s->len - 1] != ';';
			s->cur = (size_t)(v + 7 - s->line), s->active = 1;
			if (read_tuple(s))
				return EV_ROW;
			s->active = 0;
		}
	}
}

/* Field f's literal: quoted (its inside), or bare (a number, NULL, 0x...). */
static int field(const side *s, int f, const char **p, size_t *n)
{
	if (f >= s->nf)
		return *p = "", *n = 0, 0;
	const char *a = s->line + s->fs[f], *b = s->line + s->fe[f];
	if (b - a >= 2 && *a == '\'')
		return *p = a + 1, *n = (size_t)(b - a - 2), 1;
	return *p = a, *n = (size_t)(b - a), 0;
}

/* MySQL's order for one key column, as near as bytes allow: numbers by value, strings
 * case-insensitively with trailing spaces ignored (the _ci collations). */
static int cmp_field(const char *a, size_t na, int qa, const char *b, size_t nb, int qb)
{
	if (!qa && !qb) {
		int neg_a = na && a[0] == '-', neg_b = nb && b[0] == '-';
		if (neg_a != neg_b)
			return neg_a ? -1 : 1;
		if (!memchr(a, '.', na) && !memchr(b, '.', nb) && na - neg_a != nb - neg_b)
			return ((na - neg_a) < (nb - neg_b) ? -1 : 1) * (neg_a ? -1 : 1);
		double x = strtod(a, NULL), y = strtod(b, NULL);
		if (memchr(a, '.', na) || memchr(b, '.', nb))
			return x < y ? -1 : x > y;
		int c = memcmp(a, b, na < nb ? na : nb);
		return (c > 0) - (c < 0);
	}
	while (na && a[na - 1] == ' ')
		na--;
	while (nb && b[nb - 1] == ' ')
		nb--;
	for (size_t i = 0; i < na && i < nb; i++) {
		int x = tolower((unsigned char)a[i]), y = tolower((unsigned char)b[i]);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return na < nb ? -1 : na > nb;
}

static int cmp_keys(const side *a, const side *b)
{
	for (int k = 0; k < a->nkey && k < b->nkey; k++) {
		const char *pa, *pb;
		size_t na, nb;
		int qa = field(a, a->key[k], &pa, &na), qb = field(b, b->key[k], &pb, &nb);
		int c = cmp_field(pa, na, qa, pb, nb, qb);
		if (c)
			return c;
	}
	return 0;
}

/* The row's key as text, "5,'x'", pushed on the Lua stack. */
static void push_key(lua_State *L, const side *s)
{
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int k = 0; k < s->nkey; k++) {
		if (k)
			luaL_addchar(&b, ',');
		if (s->key[k] < s->nf)
			luaL_addlstring(&b, s->line + s->fs[s->key[k]], s->fe[s->key[k]] - s->fs[s->key[k]]);
	}
	luaL_pushresult(&b);
}

/* Keys must not go backwards; a side whose do makes its table unordered. */
static int in_order(side *s)
{
	size_t need = 0;
	for (int k = 0; k < s->nkey; k++)
		if (s->key[k] < s->nf)
			need += s->fe[s->key[k]] - s->fs[s->key[k]] + 1;
	int ok = 1;
	if (s->has_prev) {
		/* compare with the previous key, kept as "len:bytes" per column */
		const char *p = s->prev;
		for (int k = 0; k < s->nkey && ok; k++) {
			size_t n;
			memcpy(&n, p, sizeof n);
			int q = p[sizeof n];
			const char *v = p + sizeof n + 1;
			const char *c;
			size_t nc;
			int qc = field(s, s->key[k], &c, &nc);
			int r = cmp_field(v, n, q, c, nc, qc);
			if (r > 0)
				ok = 0;
			if (r != 0)
				break;
			p = v + n;
		}
	}
	need += (size_t)s->nkey * (sizeof(size_t) + 1);
	if (need > s->prev_cap) {
		char *p = realloc(s->prev, need);
		if (!p)
			return ok;
		s->prev = p, s->prev_cap = need;
	}
	char *p = s->prev;
	for (int k = 0; k < s->nkey; k++) {
		const char *c;
		size_t nc;
		int qc = field(s, s->key[k], &c, &nc);
		memcpy(p, &nc, sizeof nc);
		p[sizeof nc] = (char)qc;
		memcpy(p + sizeof nc + 1, c, nc);
		p += sizeof nc + 1 + nc;
	}
	s->has_prev = 1;
	return ok;
}

typedef struct {
	lua_State *L;
	int limit, want_rows, ignored, unordered;
	long long same, differ, only_a, only_b;
	int keys, rows, nkeys[3], nrows;
} table_result;

static const char *const KINDS[] = {"differ", "only_a", "only_b"};

/* Count one row of a kind (0 differ, 1 only_a, 2 only_b); note its key and rows. */
static void note(table_result *t, int kind, const side *a, const side *b)
{
	lua_State *L = t->L;
	const side *s = kind == 2 ? b : a;
	if (t->nkeys[kind] < t->limit) {
		lua_getfield(L, t->keys, KINDS[kind]);
		push_key(L, s);
		lua_rawseti(L, -2, ++t->nkeys[kind]);
		lua_pop(L, 1);
	}
	if (t->want_rows && t->nrows < 10000) {
		lua_createtable(L, 3, 0);
		lua_pushstring(L, KINDS[kind]);
		lua_rawseti(L, -2, 1);
		if (kind != 2) {
			lua_pushlstring(L, a->row, a->row_len);
			lua_rawseti(L, -2, 2);
		}
		if (kind != 1) {
			lua_pushlstring(L, b->row, b->row_len);
			lua_rawseti(L, -2, 3);
		}
		lua_rawseti(L, t->rows, ++t->nrows);
	}
}

static void begin_table(lua_State *L, table_result *t, const char *name, int limit, int want_rows, int ignored)
{
	memset(t, 0, sizeof *t);
	t->L = L, t->limit = limit, t->want_rows = want_rows, t->ignored = ignored;
	lua_createtable(L, 0, 12); /* the table's result */
	lua_pushstring(L, name);
	lua_setfield(L, -2, "name");
	lua_createtable(L, 0, 3);
	for (int k = 0; k < 3; k++) {
		lua_newtable(L);
		lua_setfield(L, -2, KINDS[k]);
	}
	t->keys = lua_gettop(L);
	lua_newtable(L);
	t->rows = lua_gettop(L);
}

static void end_table(lua_State *L, table_result *t, int list)
{
	lua_setfield(L, -3, "rows");
	lua_setfield(L, -2, "keys");
	const struct { const char *k; long long v; } f[] = {
		{"same", t->same}, {"differ", t->differ}, {"only_a", t->only_a}, {"only_b", t->only_b}};
	for (int i = 0; i < 4; i++) {
		lua_pushinteger(L, f[i].v);
		lua_setfield(L, -2, f[i].k);
	}
	lua_pushboolean(L, t->unordered);
	lua_setfield(L, -2, "unordered");
	lua_pushboolean(L, t->ignored);
	lua_setfield(L, -2, "ignored");
	lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

static void open_side(lua_State *L, int idx, side *s)
{
	memset(s, 0, sizeof *s);
	s->fd = -1;
	if (lua_type(L, idx) == LUA_TSTRING) {
		s->fd = open(lua_tostring(L, idx), O_RDONLY | O_CLOEXEC);
		s->r.read = fd_read, s->r.error = fd_error, s->r.ctx = s;
		if (s->fd < 0)
			s->failed = 1, s->why = strerror(errno);
	} else {
		tend_check_reader(L, idx, &s->r);
	}
	s->buf = malloc(1 << 16);
	if (!s->buf)
		s->failed = 1, s->why = "out of memory";
}

static void close_side(side *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf), free(s->line), free(s->create), free(s->prev);
}

static int is_ignored(lua_State *L, int opts, const char *name)
{
	if (!opts)
		return 0;
	lua_getfield(L, opts, "ignore");
	int yes = 0;
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, name);
		yes = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return yes;
}

static int wants_rows(lua_State *L, int opts, const char *name)
{
	if (!opts)
		return 0;
	lua_getfield(L, opts, "rows");
	int yes = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), name) == 0;
	lua_pop(L, 1);
	return yes;
}

static int same_row(const side *a, const side *b)
{
	return a->row_len == b->row_len && memcmp(a->row, b->row, a->row_len) == 0;
}

/* One step among a table's rows: the rows at hand (row_a, row_b) compared by key, or
 * counted by position once a side is out of key order. Which sides move on: 1 a, 2 b. */
static int step_rows(table_result *t, side *a, side *b, int row_a, int row_b)
{
	int both = row_a | row_b << 1;
	if (t->ignored) /* read past, not compared */
		return both;
	int c = row_a && row_b ? cmp_keys(a, b) : row_a ? -1 : 1;
	/* a row checked again while the other side catches up compares equal: fine */
	if ((row_a && !in_order(a)) || (row_b && !in_order(b)))
		t->unordered = 1;
	if (t->unordered) { /* paired by position, not by key */
		if (row_a && row_b)
			same_row(a, b) ? t->same++ : t->differ++;
		else
			row_a ? t->only_a++ : t->only_b++;
		return both;
	}
	if (c < 0) {
		t->only_a++, note(t, 1, a, b);
		return 1;
	}
	if (c > 0) {
		t->only_b++, note(t, 2, a, b);
		return 2;
	}
	if (same_row(a, b))
		t->same++;
	else
		t->differ++, note(t, 0, a, b);
	return 3;
}

/* A table's entry begun: in A (c <= 0), in B (c >= 0), with its CREATE statements. */
static void start_table(lua_State *L, table_result *t, side *a, side *b, int c, int opts, int limit)
{
	const char *name = c <= 0 ? a->table : b->table;
	begin_table(L, t, name, limit, wants_rows(L, opts, name), is_ignored(L, opts, name));
	lua_pushboolean(L, c <= 0);
	lua_setfield(L, -4, "in_a");
	lua_pushboolean(L, c >= 0);
	lua_setfield(L, -4, "in_b");
	if (c <= 0) {
		lua_pushstring(L, a->create);
		lua_setfield(L, -4, "create_a");
	}
	if (c >= 0) {
		lua_pushstring(L, b->create);
		lua_setfield(L, -4, "create_b");
	}
}

/* The merge itself; the result list at index list. */
static const char *merge(lua_State *L, side *a, side *b, int opts, int list, int limit)
{
	enum ev ea = next_event(a), eb = next_event(b);
	table_result t;
	int open_t = 0, in_a = 0, in_b = 0;
	for (;;) {
		if (ea == EV_ERROR || eb == EV_ERROR)
			return ea == EV_ERROR ? (a->why ? a->why : "side A: read failed") : (b->why ? b->why : "side B: read failed");
		int row_a = ea == EV_ROW && in_a, row_b = eb == EV_ROW && in_b;
		if (ea == EV_ROW && !in_a) { ea = next_event(a); continue; } /* rows before any table */
		if (eb == EV_ROW && !in_b) { eb = next_event(b); continue; }
		if (row_a || row_b) {
			int move = step_rows(&t, a, b, row_a, row_b);
			if (move & 1)
				ea = next_event(a);
			if (move & 2)
				eb = next_event(b);
			continue;
		}
		/* both at a table's start or the end */
		if (open_t) {
			end_table(L, &t, list);
			open_t = 0;
		}
		if (ea == EV_END && eb == EV_END)
			return NULL;
		int c = ea == EV_END ? 1 : eb == EV_END ? -1 : strcmp(a->table, b->table);
		start_table(L, &t, a, b, c, opts, limit);
		open_t = 1;
		in_a = c <= 0, in_b = c >= 0;
		if (c <= 0)
			ea = next_event(a);
		if (c >= 0)
			eb = next_event(b);
	}
}

/* compare(a, b [, opts]) -> tables | nil, msg, code */
static int l_compare(lua_State *L)
{
	int opts = lua_istable(L, 3) ? 3 : 0;
	int limit = 20;
	if (opts) {
		lua_getfield(L, opts, "limit");
		limit = (int)luaL_optinteger(L, -1, 20);
		lua_pop(L, 1);
	}
	side *a = lua_newuserdatauv(L, sizeof *a, 0), *b = lua_newuserdatauv(L, sizeof *b, 0);
	open_side(L, 1, a);
	open_side(L, 2, b);
	const char *why = a->failed ? a->why : b->failed ? b->why : NULL, *code = "io";
	lua_newtable(L);
	int list = lua_gettop(L);
	if (!why && (why = merge(L, a, b, opts, list, limit)) != NULL)
		code = "stream";
	if (why)
		why = lua_pushfstring(L, "rowdiff: %s", why); /* before the sides' buffers go */
	close_side(a), close_side(b);
	if (why)
		return tend_fail(L, code, "%s", why);
	lua_settop(L, list);
	return 1;
}

int tend_open_rowdiff(lua_State *L)
{
	static const luaL_Reg funcs[] = {{"compare", l_compare}, {NULL, NULL}};
	luaL_newlib(L, funcs);
	return 1;
}
