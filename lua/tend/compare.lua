-- compare: what differs between two instances, or an instance and a snapshot (NAME@SNAP,
-- read from the store, never from the server). Files: by content (the host's
-- sha256sum for a live side, the manifest for a snapshot), in and outside the web root.
-- Databases: schema and rows by primary key, a streaming merge in C (core.rowdiff).
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local watch = require "tend.watch"
local outside = require "tend.outside"

local M = {}

-- side(ctx, spec) -> {label, inst, snap}: "blog" (live) or "blog@42" / "blog@latest".
function M.side(ctx, spec)
  local name, id = spec:match("^([^@]+)@(.+)$")
  local inst = ctx:instance(name or spec)
  if not id then return { label = inst.name, inst = inst } end
  local snap = id == "latest" and snapshot.latest(ctx:catalog(), inst) or snapshot.get(ctx:catalog(), inst, id)
  if not snap then errors.usage("%s has no snapshots (tend backup %s)", inst.name, inst.name) end
  return { label = ("%s@%d"):format(inst.name, snap.id), inst = inst, snap = snap }
end

-- files(ctx, side, other) -> {path = entry}: a snapshot's manifest, or the live tree
-- hashed as its backups see it, with its data folders outside the web root, and its
-- watch paths unless the other side is a snapshot (snapshots hold no watch paths).
-- When the sides are two instances, the other's data folders are named as this side
-- names its own when this side is a copy of the other (its /srv/b-files/x is compared
-- with the source's /srv/a-files/x).
function M.files(ctx, side, other)
  local out
  if not side.snap then
    local folders = outside.folders(ctx, side.inst, nil, true)
    out = watch.scan(ctx, side.inst, side.inst:excludes(), folders)
    if other.snap then
      for path in pairs(out) do
        local kept = path:sub(1, 1) ~= "/"
        for _, f in ipairs(folders) do kept = kept or outside.within(path, f) end
        if not kept then out[path] = nil end
      end
    end
  else
    out = {}
    for _, r in ipairs(snapshot.manifest(ctx:catalog(), side.snap)) do out[r.path] = r end
  end
  local made = side.inst.id ~= other.inst.id and require("tend.copy").copy_of(ctx, side.inst)
  if made and made.source_id == other.inst.id then M.rename_folders(ctx, other, side, out) end
  return out
end

-- rename_folders(ctx, src, copy, files): copy's paths in its data folders renamed to the
-- folders of src they hold (tend.outside.map), in place.
function M.rename_folders(ctx, src, copy, files)
  local roots = src.snap and outside.roots(snapshot.manifest(ctx:catalog(), src.snap))
    or outside.folders(ctx, src.inst, nil, true)
  if #roots == 0 then return end
  local ok, mapping = pcall(outside.mapping, ctx, src.inst, copy.inst, roots)
  if not ok then return end
  local moved = {}
  for _, m in ipairs(mapping) do
    for path, e in pairs(files) do
      if m.to ~= m.from and outside.within(path, m.to) then moved[path] = { m.from .. path:sub(#m.to + 1), e } end
    end
  end
  for path, to in pairs(moved) do
    files[path] = nil
    to[2].path, to[2].live_path = to[1], path -- where content() reads it
    files[to[1]] = to[2]
  end
end

-- diff_files(a, b) -> {only_a = {path...}, only_b = {...}, differ = {{path, what}...}}, count.
-- Owners count only where both sides know them (manifests do not keep them).
function M.diff_files(a, b)
  local d, n = watch.diff(a, b)
  return { only_a = d.removed, only_b = d.added, differ = d.changed }, n
end

-- content(ctx, side, path) -> bytes | nil, msg: one file as that side has it.
function M.content(ctx, side, path, entry)
  if side.snap then
    if not entry or not entry.sha256 then return nil, ("%s has no file %s"):format(side.label, path) end
    return ctx:store():get_string(entry.sha256)
  end
  path = entry and entry.live_path or path
  local full = path:sub(1, 1) == "/" and path or (side.inst.path .. "/" .. path)
  return side.inst:transport():read(full)
end

-- unified(ctx, a, b, path, fa, fb) -> text: `diff -u` of one file of both sides.
function M.unified(ctx, a, b, path, fa, fb)
  local ca = fa and M.content(ctx, a, path, fa) or ""
  local cb = fb and M.content(ctx, b, path, fb) or ""
  if (ca .. cb):find("\0", 1, true) then return ("Binary files %s:%s and %s:%s differ"):format(a.label, path, b.label, path) end
  local dir = require("tend.home").scratch(ctx.home)
  errors.check(core.fs.mkdir_p(dir, 448))
  errors.check(core.fs.write_atomic(dir .. "/a", ca, 384))
  errors.check(core.fs.write_atomic(dir .. "/b", cb, 384))
  local r = core.proc.run({ "diff", "-u", "--label", a.label .. ":" .. path, "--label", b.label .. ":" .. path,
    dir .. "/a", dir .. "/b" })
  core.fs.remove(dir .. "/a"); core.fs.remove(dir .. "/b"); core.fs.remove(dir)
  if not r then return "diff: not found (apt-get install diffutils)" end
  return r.stdout ~= "" and r.stdout or "(no difference)"
end

-- with_db(ctx, side, fn) -> fn(source)'s results: the side's database as a dump that
-- core.rowdiff reads: a snapshot's from the store (into a temp file here), a live one
-- from the host's mariadb-dump, one INSERT a row in key order.
function M.with_db(ctx, side, fn)
  if side.snap then
    if not side.snap.db_object then errors.fail("%s has no database dump", side.label) end
    if side.snap.db_driver ~= "mysql" then errors.fail("%s: only MySQL/MariaDB databases are compared", side.label) end
    local tmp = require("tend.home").scratch(ctx.home)
    local ok, msg, code = ctx:store():get_file(side.snap.db_object, tmp, 384)
    if not ok then os.remove(tmp); errors.check(ok, msg, code) end
    local r = table.pack(pcall(fn, tmp))
    os.remove(tmp)
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
  local inst = side.inst
  local s = errors.check(inst:db_settings(ctx:vault()))
  if s.driver ~= "mysql" then errors.fail("%s: only MySQL/MariaDB databases are compared", side.label) end
  local t = inst:transport()
  local client, wmsg = t:which({ "mariadb-dump", "mysqldump" })
  if not client then errors.fail("%s: %s", side.label, wmsg or ("no mariadb-dump or mysqldump on " .. tostring(t))) end
  -- the option file (the password) on fd 3: a pipe, never a file on the host
  local stream = errors.check(t:open({ client, "--defaults-extra-file=/dev/fd/3", "--single-transaction",
    "--quick", "--skip-extended-insert", "--order-by-primary", "--hex-blob", "--skip-dump-date",
    "--skip-triggers", s.name }, { fds = { [3] = require("tend.db").option_file(s) } }))
  local r = table.pack(pcall(fn, stream))
  local status = stream:wait()
  if not r[1] then error(r[2], 0) end
  if status ~= 0 then
    errors.fail("%s: the database dump failed: %s", side.label, require("tend.transport").stream_why(stream, status))
  end
  return table.unpack(r, 2, r.n)
end

-- Tables whose rows come and go by themselves: not worth a difference.
M.VOLATILE = { "sessions$", "_cache$", "^cache_", "_log$", "_logs$" }

local function schema_lines(create)
  local out = {}
  for line in (create or ""):gsub(" AUTO_INCREMENT=%d+", ""):gmatch("[^\n]+") do
    line = line:gsub(",$", "")
    if line:match("^%s") then out[#out + 1] = line:match("^%s*(.-)%s*$") end
  end
  return out
end

-- diff_db(ctx, a, b, opts) -> tables, count: opts.ignore (names), opts.volatile (patterns),
-- opts.rows (a table whose rows come back), opts.limit (keys per kind).
function M.diff_db(ctx, a, b, opts)
  local ignore = {}
  for _, n in ipairs(opts.ignore or {}) do ignore[n] = true end
  local tables = M.with_db(ctx, a, function(sa)
    return M.with_db(ctx, b, function(sb)
      return errors.check(core.rowdiff.compare(sa, sb, { ignore = ignore, rows = opts.rows, limit = opts.limit or 20 }))
    end)
  end)
  local count = 0
  for _, tb in ipairs(tables) do
    for _, pat in ipairs(opts.volatile or M.VOLATILE) do
      if tb.name:match(pat) then tb.ignored = true end
    end
    tb.schema = {}
    if tb.in_a and tb.in_b then
      local la, lb, seen_a, seen_b = schema_lines(tb.create_a), schema_lines(tb.create_b), {}, {}
      for _, l in ipairs(la) do seen_a[l] = true end
      for _, l in ipairs(lb) do seen_b[l] = true end
      for _, l in ipairs(la) do if not seen_b[l] then tb.schema[#tb.schema + 1] = "- " .. l end end
      for _, l in ipairs(lb) do if not seen_a[l] then tb.schema[#tb.schema + 1] = "+ " .. l end end
    end
    tb.create_a, tb.create_b = nil, nil
    tb.differs = not tb.ignored and (not tb.in_a or not tb.in_b or #tb.schema > 0
      or tb.differ + tb.only_a + tb.only_b > 0)
    if tb.differs then count = count + 1 end
  end
  return tables, count
end

-- report_db(tables, a, b) -> lines
function M.report_db(tables, a, b)
  local lines = {}
  local function keys(list) return #list > 0 and (" (" .. table.concat(list, " ") .. (#list >= 20 and " ..." or "") .. ")") or "" end
  for _, tb in ipairs(tables) do
    if tb.differs then
      if not tb.in_b then lines[#lines + 1] = ("  %s: only in %s (%d rows)"):format(tb.name, a.label, tb.only_a)
      elseif not tb.in_a then lines[#lines + 1] = ("  %s: only in %s (%d rows)"):format(tb.name, b.label, tb.only_b)
      else
        local parts = {}
        if tb.differ > 0 then
          parts[#parts + 1] = ("%d %s%s"):format(tb.differ, tb.differ == 1 and "row differs" or "rows differ", keys(tb.keys.differ))
        end
        if tb.only_a > 0 then parts[#parts + 1] = ("%d only in %s%s"):format(tb.only_a, a.label, keys(tb.keys.only_a)) end
        if tb.only_b > 0 then parts[#parts + 1] = ("%d only in %s%s"):format(tb.only_b, b.label, keys(tb.keys.only_b)) end
        if #tb.schema > 0 then parts[#parts + 1] = "schema differs" end
        lines[#lines + 1] = ("  %s: %s%s"):format(tb.name, table.concat(parts, ", "),
          tb.unordered and " (rows not in key order: paired by position)" or "")
        for _, l in ipairs(tb.schema) do lines[#lines + 1] = "      " .. l end
      end
    end
  end
  return lines
end

-- report_files(d) -> lines
function M.report_files(d, a, b)
  local lines = {}
  for _, c in ipairs(d.differ) do lines[#lines + 1] = ("  differ   %s (%s)"):format(c.path, table.concat(c.what, ", ")) end
  for _, p in ipairs(d.only_a) do lines[#lines + 1] = ("  only in %s: %s"):format(a.label, p) end
  for _, p in ipairs(d.only_b) do lines[#lines + 1] = ("  only in %s: %s"):format(b.label, p) end
  return lines
end

return M
