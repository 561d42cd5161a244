-- compare: what differs between two instances (or an instance and a snapshot).
return {
  name = "compare",
  summary = "Diff two instances (or NAME@SNAP): files in and outside the web root, database schema and rows",
  description = [[
A and B are instances, or NAME@SNAP (a snapshot, read from tend's store: the server is
not asked), or NAME@latest. Files are compared by content (the host's sha256sum for a
live instance, the manifest for a snapshot), with mode, owner and link targets; the
instance's --watch-path entries outside the web root count too. Databases (MySQL and
MariaDB) are compared by schema and by rows, matched by primary key in one streaming
merge of both dumps, never a table in memory. Tables whose rows come and go by
themselves (sessions, caches, logs) are left out; --ignore-table adds more.
--show PATH prints a unified diff of one file; --show TABLE the differing rows of one
table. Exit 0 when nothing differs, 3 when something does.]],
  params = {
    { name = "a", type = "string", positional = true, required = true, help = "NAME or NAME@SNAP" },
    { name = "b", type = "string", positional = true, required = true, help = "NAME or NAME@SNAP" },
    { name = "files", type = "bool", help = "only the files" },
    { name = "db", type = "bool", help = "only the database" },
    { name = "show", type = "string", help = "a file (unified diff) or a table (its differing rows)" },
    { name = "ignore-table", type = "string", list = true, help = "leave this table out (repeatable)" },
    { name = "limit", type = "int", default = 20, help = "keys listed per table and kind" },
  },

  run = function(ctx, args)
    local compare = require "tend.compare"
    local a, b = compare.side(ctx, args.a), compare.side(ctx, args.b)
    local want_files, want_db = not args.db or args.files, not args.files or args.db
    local result, text, total = { a = a.label, b = b.label }, {}, 0

    if want_files then
      local fa, fb = compare.files(ctx, a, b), compare.files(ctx, b, a)
      local d, n = compare.diff_files(fa, fb)
      result.files = { differences = n, only_a = d.only_a, only_b = d.only_b, differ = d.differ }
      total = total + n
      text[#text + 1] = n == 0 and "files: the same" or ("files: %d %s"):format(n, n == 1 and "difference" or "differences")
      for _, l in ipairs(compare.report_files(d, a, b)) do text[#text + 1] = l end
      if args.show and (fa[args.show] or fb[args.show]) then
        result.show = compare.unified(ctx, a, b, args.show, fa[args.show], fb[args.show])
        text[#text + 1] = ""
        text[#text + 1] = result.show
      end
    end

    if want_db then
      local has_db = function(side)
        if side.snap then return side.snap.db_object ~= nil end
        return side.inst:db_settings(ctx:vault()) ~= nil
      end
      if has_db(a) and has_db(b) then
        local tables, n = compare.diff_db(ctx, a, b, { ignore = args["ignore-table"], rows = args.show, limit = args.limit })
        result.db = { differences = n, tables = tables }
        total = total + n
        text[#text + 1] = n == 0 and ("database: the same (%d tables)"):format(#tables)
          or ("database: %d of %d tables differ"):format(n, #tables)
        for _, l in ipairs(compare.report_db(tables, a, b)) do text[#text + 1] = l end
        for _, tb in ipairs(tables) do
          if tb.name == args.show then
            text[#text + 1] = ""
            for _, r in ipairs(tb.rows) do
              if r[2] then text[#text + 1] = ("- %s %s"):format(a.label, r[2]) end
              if r[3] then text[#text + 1] = ("+ %s %s"):format(b.label, r[3]) end
            end
          end
        end
      elseif args.db then
        error(("%s and %s do not both have a database to compare"):format(a.label, b.label), 0)
      end
    end
    result.differences = total
    ctx:result(result, ("compare %s %s\n"):format(a.label, b.label) .. table.concat(text, "\n"))
    return total > 0 and 3 or 0
  end,
}
