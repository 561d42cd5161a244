/* catalog.c: open, exec, query with bound parameters, run, failures as nil, msg, code. */
#include "ctest.h"

static void test_roundtrip_types(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "assert(db:exec('CREATE TABLE t(i INTEGER, r REAL, s TEXT, n TEXT)'))\n"
	       "local changes, id = db:run('INSERT INTO t VALUES (?, ?, ?, ?)', 42, 1.5, 'a\\0b', nil)\n"
	       "assert(changes == 1 and id == 1)\n"
	       "local row = db:query('SELECT * FROM t WHERE i = ?', 42)[1]\n"
	       "db:close()\n"
	       "return string.format('%d %s %q %s', row.i, row.r, row.s, tostring(row.n))",
	       "42 1.5 \"a\\0b\" nil");
}

static void test_insert_many(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "db:exec('CREATE TABLE t(a INTEGER, b TEXT, c REAL)')\n"
	       "local rows = {}\n"
	       "for i = 1, 1000 do rows[i] = {a = i, b = 'r' .. i, c = i / 2} end\n"
	       "rows[7].b = nil\n"
	       "assert(db:insert_many('INSERT INTO t VALUES (?, ?, ?)', rows, {'a', 'b', 'c'}) == 1000)\n"
	       "local r = db:query('SELECT count(*) AS n, sum(a) AS s, sum(b IS NULL) AS nulls, max(c) AS m FROM t')[1]\n"
	       "local bad, msg, code = db:insert_many('INSERT INTO missing VALUES (?)', rows, {'a'})\n"
	       "return table.concat({r.n, r.s, r.nulls, r.m, tostring(bad), code}, ' ')",
	       "1000 500500 1 500.0 nil sqlite");
}

static void test_parameters_are_not_sql(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "db:exec('CREATE TABLE t(s TEXT)')\n"
	       "db:run('INSERT INTO t VALUES (?)', \"x'); DROP TABLE t; --\")\n"
	       "return db:query('SELECT s FROM t')[1].s",
	       "x'); DROP TABLE t; --");
}

static void test_errors_are_results(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "local r, msg, code = db:query('SELECT * FROM missing')\n"
	       "return tostring(r) .. '|' .. msg .. '|' .. code",
	       "nil|sqlite :memory:: no such table: missing|sqlite");
	lua_is(L,
	       "local r, msg, code = core.catalog.open('/nonexistent/dir/x.db')\n"
	       "return tostring(r) .. '|' .. code",
	       "nil|enoent");
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "db:exec('CREATE TABLE t(k TEXT PRIMARY KEY)'); db:run('INSERT INTO t VALUES (?)', 'a')\n"
	       "local r, msg, code = db:run('INSERT INTO t VALUES (?)', 'a')\n"
	       "return code",
	       "constraint");
}

static void test_closed_handle_raises(void **state)
{
	lua_State *L = *state;
	lua_is(L,
	       "local db = assert(core.catalog.open(':memory:'))\n"
	       "db:close(); db:close()\n"
	       "local ok, err = pcall(db.query, db, 'SELECT 1')\n"
	       "return tostring(ok) .. ' ' .. err:match('used after close') .. ' ' .. tostring(db)",
	       "false used after close sqlite(:memory:, closed)");
}

static void test_readonly_does_not_create(void **state)
{
	lua_State *L = *state;
	char dir[32];
	ctest_tempdir(L, dir);
	lua_is(L,
	       "local r, msg = core.catalog.open(dir .. '/none.db', 'ro')\n"
	       "return tostring(r) .. ' ' .. tostring(core.fs.stat(dir .. '/none.db'))",
	       "nil nil");
	ctest_rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_types),
		cmocka_unit_test(test_insert_many),
		cmocka_unit_test(test_parameters_are_not_sql),
		cmocka_unit_test(test_errors_are_results),
		cmocka_unit_test(test_closed_handle_raises),
		cmocka_unit_test(test_readonly_does_not_create),
	};
	return CTEST_RUN("catalog", tests);
}
