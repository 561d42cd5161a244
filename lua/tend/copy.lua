-- copy: one instance's data onto another. A clone is a restore of the source's snapshot
-- into the target (tend.restore: only what the target lacks crosses, its config file
-- stays its own, the database is rewritten for its URL and path) with the target
-- behind its maintenance page meanwhile. A mirror is a clone of the newest snapshot old
-- enough; migrate-data moves the database and the data folders, never the code.
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local restore = require "tend.restore"
local tree = require "tend.restore_tree"
local maintenance = require "tend.maintenance"
local apps = require "tend.apps"
local db = require "tend.db"
local duration = require "tend.duration"
local copy_config = require "tend.copy_config"
local outside = require "tend.outside"

local M = {}

-- check_target(ctx, src, dst, opts [, snap]) -> the plan of dst's config files | nil:
-- the refusals of a copy, made before anything is done on either side (no backup of
-- src, no maintenance page on dst): dst is not src, dst is not tagged production unless
-- opts.overwrite_production, dst's database is not src's, and a copy of src's files
-- (unless opts.db_only) leaves dst's config naming dst's database, URL, web root and data
-- folders (tend.copy_config; snap nil: src's live files stand for the snapshot to come),
-- and dst has folders of its own for src's data outside its web root (tend.outside).
function M.check_target(ctx, src, dst, opts, snap)
  if src.id == dst.id then errors.usage("cannot copy %s onto itself", src.name) end
  if dst:is_production() and not opts.overwrite_production then
    errors.usage("%s is tagged production: add --yes-overwrite-production to overwrite it with %s's data", dst.name, src.name)
  end
  -- where the copy keeps src's data outside its web root: refused now when nowhere safe
  local roots = snap and outside.roots(snapshot.manifest(ctx:catalog(), snap)) or outside.folders(ctx, src)
  local mapping = outside.mapping(ctx, src, dst, roots)
  if opts.db_only then return copy_config.check_databases(ctx, src, dst) end
  return copy_config.plan(ctx, src, dst, snap, mapping)
end

-- redact(ctx, dst, file): an SQL file of the operator's run in dst's database.
local function redact(ctx, dst, file)
  local sql, msg = require("tend.core").fs.read(file)
  if not sql then errors.usage("--redact: %s", msg) end
  local s = errors.check(dst:db_settings(ctx:vault()))
  if s.driver ~= "mysql" then errors.fail("--redact: %s's database is not MySQL/MariaDB", dst.name) end
  errors.check(db.mysql(dst:transport(), s, sql, { timeout = 3600 }))
end

-- names(body, url) -> true when url is in body as a whole URL (not the start of a longer
-- host or port: http://h:3000 is not in http://h:30001).
local function names(body, url)
  local from = 1
  while true do
    local at, last = body:find(url, from, true)
    if not at then return false end
    if not body:sub(last + 1, last + 1):match("[%w.%-]") then return true end
    from = at + 1
  end
end

-- site_problem(src, dst, say) -> nil | why: dst's new site, seen behind its maintenance
-- page, must answer with its own URL: below 500, no redirect to src's URL, and no src's
-- URL in its page (its config or database would still name src). Unchecked (nil) when
-- dst has no URL or it does not answer (a copy not served yet).
local function site_problem(src, dst, say)
  if not (dst.url and src.url) or src.url == dst.url then return nil end
  local r, msg = maintenance.behind(dst)
  if not r then
    say("not checked over HTTP: %s", msg)
    return nil
  end
  local loc = r.headers.location
  if loc and names(loc, src.url) then return ("%s redirects to %s's URL (%s)"):format(dst.url, src.name, loc) end
  if r.status >= 500 then return ("%s answers %d"):format(dst.url, r.status) end
  if names(r.body, src.url) then return ("%s's page names %s's URL %s"):format(dst.url, src.name, src.url) end
  say("%s answers %d with its own URL", dst.url, r.status)
end

-- clone(ctx, src, dst, snap, opts) -> summary.  opts: plan (check_target's, when the
-- caller has it), files_only, db_only, redact (an SQL
-- file run in dst's database before the site comes back), overwrite_production, kind,
-- progress, keep_maintenance (the caller has more to do and lifts the page itself),
-- without_page. dst shows its maintenance page from the start to the end; a failure
-- puts it back as it was (restore's rollback) and lifts the page, except when only the
-- redaction failed, or the new site, looked at behind the page, answers with src's URL
-- (site_problem): then the copy stays behind the page.
function M.clone(ctx, src, dst, snap, opts)
  local plan = opts.plan or M.check_target(ctx, src, dst, opts, snap)
  local say = opts.progress or function() end
  local t, adapter = dst:transport(), apps.get(dst.app)
  -- an empty web root (tend blank made it) has no site to put a page in front of
  local live = t:stat(dst.path) ~= nil and #(t:list(dst.path) or {}) > 0
  -- (a new tree gets its page at build time, live for seconds: nothing to linger for)
  local page = live and maintenance.up(ctx, dst, { say = say, without_page = opts.without_page }) or { fcgi = false }
  local ok, summary = pcall(restore.run, ctx, src, snap, {
    target = dst, files_only = opts.files_only, db_only = opts.db_only, kind = opts.kind or "copy", config_plan = plan,
    overwrite_production = opts.overwrite_production, progress = say,
    prepare = function(tt, staging) maintenance.on(tt, staging, adapter, dst.path) end,
  })
  if not ok then
    if live then pcall(maintenance.down, dst, page) end
    error(summary, 0)
  end
  if opts.redact then
    say("redacting with %s", opts.redact)
    local rok, rerr = pcall(redact, ctx, dst, opts.redact)
    if not rok then
      errors.fail("%s: redaction failed: %s; the copy stays behind its maintenance page (tend maintenance %s off)",
        dst.name, errors.message(rerr), dst.name)
    end
  end
  local why = not opts.db_only and site_problem(src, dst, say)
  if why then
    errors.fail("%s: the copy answers as %s: %s; it stays behind its maintenance page (tend maintenance %s off)",
      dst.name, src.name, why, dst.name)
  end
  if not opts.keep_maintenance then
    maintenance.down(dst, page, say)
    -- the page came and went in the web root: its own mtime back to the snapshot's
    if not opts.db_only then tree.finish_root(t, dst.path, snap, dst.path) end
  end
  require("tend.watch").rebaseline(ctx, dst) -- what tend put there is what is accepted
  return summary
end

-- source_of(ctx, dst, kind) -> the Instance dst is kind ("mirror-of", ...) of, and the lag.
function M.source_of(ctx, dst, kind)
  for _, r in ipairs(dst.relations) do
    if r.kind == kind then return ctx:instance(r.source), r.lag end
  end
  errors.usage("%s is no %s any instance (tend instance link %s --%s SRC%s)", dst.name, kind, dst.name, kind,
    kind == "mirror-of" and " --lag 1d" or "")
end

-- mirror_pick(ctx, src, lag, now) -> the newest snapshot of src at least lag old | nil, why
function M.mirror_pick(ctx, src, lag, now)
  local cutoff = now - lag
  local snap = ctx:catalog():first("SELECT * FROM snapshots WHERE instance_id = ? AND started_at <= ? "
    .. "ORDER BY started_at DESC, id DESC LIMIT 1", src.id, cutoff)
  if snap then return snap end
  local oldest = ctx:catalog():first("SELECT min(started_at) AS at FROM snapshots WHERE instance_id = ?", src.id).at
  return nil, oldest and ("no snapshot of %s is %s old yet: the oldest is from %s (tend snapshots %s)"):format(
      src.name, duration.format(lag), os.date("%Y-%m-%d %H:%M", oldest), src.name)
    or ("%s has no snapshots yet (tend backup %s)"):format(src.name, src.name)
end

-- migrate_data(ctx, src, dst, snap, opts) -> summary: src's database (rewritten for dst)
-- and its data folders into dst; every other file of dst is left as it is.
function M.migrate_data(ctx, src, dst, snap, opts)
  M.check_target(ctx, src, dst, { overwrite_production = opts.overwrite_production, db_only = true })
  local say = opts.progress or function() end
  local t = dst:transport()
  if not t:stat(dst.path) then errors.usage("%s: %s does not exist; clone it first", dst.name, dst.path) end
  local page = maintenance.up(ctx, dst, { say = say, without_page = opts.without_page })
  local ok, summary = pcall(function()
    local rows = snapshot.manifest(ctx:catalog(), snap)
    local mapping = outside.mapping(ctx, src, dst, outside.roots(rows)) -- for the database and the folders
    local part = restore.run(ctx, src, snap, { target = dst, db_only = true, kind = "data", mapping = mapping,
      overwrite_production = opts.overwrite_production, progress = say })
    part.data_files = 0
    local dirs = src:data_folders()
    if #dirs + #mapping > 0 then
      local names = { table.unpack(dirs) }
      for _, m in ipairs(mapping) do names[#names + 1] = m.from .. (m.to ~= m.from and (" -> " .. m.to) or "") end
      say("data folders: %s", table.concat(names, ", "))
      part.data_files = M.sync_dirs(ctx, snap, dst, dirs, say, mapping)
      outside.declare(ctx, dst, mapping, say)
      -- read back: its database names folders of its own
      local f, r = outside.shared(outside.folders(ctx, dst, nil, true), outside.roots(rows))
      if f then
        errors.fail("%s keeps data in %s after the copy, which is %s's %s: point it at %s's own folder", dst.name, f,
          src.name, r, dst.name)
      end
    end
    return part
  end)
  maintenance.down(dst, page, say)
  if not ok then error(summary, 0) end
  require("tend.watch").rebaseline(ctx, dst)
  return summary
end

-- sync_dirs(ctx, snap, dst, dirs, say) -> files: each of dirs made what the snapshot
-- holds: built beside it on dst's host (only changed files cross), then swapped in.
function M.sync_dirs(ctx, snap, dst, dirs, say, mapping)
  local t, st = dst:transport(), snapshot.store(ctx)
  local rows, count = snapshot.manifest(ctx:catalog(), snap), 0
  local jobs = {} -- {label, rows from the folder, the folder on dst}
  for _, dir in ipairs(dirs) do
    local prefix = dir .. "/"
    local sub = {}
    for _, r in ipairs(rows) do
      if r.path:sub(1, #prefix) == prefix then
        local c = {}
        for k, v in pairs(r) do c[k] = v end
        c.path = r.path:sub(#prefix + 1)
        sub[#sub + 1] = c
      end
    end
    jobs[#jobs + 1] = { dir, sub, dst.path .. "/" .. dir }
  end
  local roots = {}
  for i, m in ipairs(mapping or {}) do roots[i] = m.from end
  local _, under = outside.split(rows, roots)
  for _, m in ipairs(mapping or {}) do jobs[#jobs + 1] = { m.to, under[m.from], m.to } end
  for _, job in ipairs(jobs) do
    local dir, sub, target = table.unpack(job)
    local staging = ("%s.tend-data-%d"):format(target, math.random(1, 1 << 30))
    local built, msg = tree.build(t, st, sub, staging, target, {})
    if not built then
      t:exec({ "rm", "-rf", "--", staging })
      errors.fail("%s: %s: %s", dst.name, dir, msg)
    end
    local old = staging .. ".old"
    if t:stat(target) then errors.check(t:rename(target, old)) end
    errors.check(t:rename(staging, target))
    t:exec({ "rm", "-rf", "--", old })
    say("%s: %d files (%d sent)", dir, built.files, built.sent_files)
    count = count + built.files
  end
  return count
end

-- copy_pairs(src, dst [, mapping]) -> {{from, to}, ...}: what a copy of src's database says
-- instead, as dst: its folders outside the web root (tend.outside.map), src's URL (plain,
-- and as JSON escapes it) and its web root, where they differ.
function M.copy_pairs(src, dst, mapping)
  local out = {}
  local function add(from, to)
    if from and to and from ~= to then out[#out + 1] = { from, to } end
  end
  -- its folders outside the web root first: a folder whose name begins with the web
  -- root's ("/var/www/a-files") is replaced whole
  for _, p in ipairs(outside.pairs_of(mapping)) do add(p[1], p[2]) end
  add(src.url, dst.url)
  if src.url and dst.url then add((src.url:gsub("/", "\\/")), (dst.url:gsub("/", "\\/"))) end
  add(src.path, dst.path)
  return out
end

-- prepare_copy(target, t, staging, plan): a copy's own settings in its new tree: its
-- config files as planned (read back there), its app's caches emptied (they hold the
-- source's pages), no outgoing mail unless it is production, and the app's own fixups.
function M.prepare_copy(target, t, staging, plan)
  if plan then copy_config.write(plan, t, staging) end
  local adapter = apps.get(target.app)
  for _, dir in ipairs(adapter.caches or {}) do
    local r = t:exec({ "sh", "-c", '[ ! -d "$1" ] || find "$1" -mindepth 1 -delete', "sh", staging .. "/" .. dir })
    if not r or r.code ~= 0 then errors.fail("%s: could not empty its cache %s", target.name, dir) end
  end
  if adapter.mail_off and not target:is_production() then errors.check(adapter.mail_off(t, staging)) end
  if adapter.after_copy then errors.check(adapter.after_copy(t, staging, target)) end
end

-- record_copy(ctx, src, dst, snap, kind): dst now holds snap of src.
function M.record_copy(ctx, src, dst, snap, kind)
  ctx:catalog():run("INSERT INTO copies(instance_id, source_id, snapshot_id, kind, at) VALUES (?, ?, ?, ?, ?) "
    .. "ON CONFLICT(instance_id) DO UPDATE SET source_id = excluded.source_id, snapshot_id = excluded.snapshot_id, "
    .. "kind = excluded.kind, at = excluded.at", dst.id, src.id, snap.id, kind, os.time())
end

-- copy_of(ctx, dst) -> {source_id, snapshot_id, kind, at} | nil: what dst was last made from.
function M.copy_of(ctx, dst)
  return ctx:catalog():first("SELECT * FROM copies WHERE instance_id = ?", dst.id)
end

return M
