-- bisect: git bisect on an instance's checkout (normally a copy), the way a developer
-- hunts the commit that broke a page: git picks the commits, tend moves the instance
-- there (its patches off, the database migration run) and, with a test command, says
-- good or bad itself. What tend adds to git's own state (.git/BISECT_*) is kept in the
-- catalog's meta: the snapshot taken before the first step, the way back.
local errors = require "tend.errors"
local vcs = require "tend.vcs"

local M = {}

local function key(inst) return "bisect." .. inst.id end

-- check(ctx, inst): the instance can be bisected: a git checkout, not tagged production,
-- no bisect under way, no local changes to its tracked files. Read only.
function M.check(ctx, inst)
  local t = inst:transport()
  if vcs.kind(t, inst.path) ~= "git" then errors.usage("%s: %s is no git checkout: tend bisects git history", inst.name, inst.path) end
  if inst:is_production() then
    errors.usage("%s is tagged production: bisect a copy of it (tend clone %s COPY)", inst.name, inst.name)
  end
  if vcs.bisecting(t, inst.path) or ctx:catalog():meta(key(inst)) then
    errors.usage("%s: a bisect is under way (tend bisect good|bad|reset %s)", inst.name, inst.name)
  end
  local changed = vcs.changes(t, inst.path)
  local patched = #require("tend.patch").list(ctx, inst)
  if #changed > patched then -- patched files are changes too; patch.off takes those out
    errors.usage("%s: its code has local changes (%s): tend revert %s or commit them first", inst.name,
      table.concat(changed, ", "), inst.name)
  end
end

-- start(ctx, inst, good, bad, snap) -> at (vcs.bisect): git's bisect begun between the
-- two versions, the snapshot recorded as the way back.
function M.start(ctx, inst, good, bad, snap)
  local c = ctx:catalog()
  c:meta(key(inst), tostring(snap.id))
  local ok, at = pcall(vcs.bisect, inst:transport(), inst.path, "start", bad, good)
  if not ok then
    if vcs.bisecting(inst:transport(), inst.path) then pcall(vcs.bisect_reset, inst:transport(), inst.path) end
    c:run("DELETE FROM meta WHERE key = ?", key(inst))
    error(at, 0)
  end
  return at
end

-- under_way(ctx, inst) -> snapshot id: the bisect's way back; a usage error when none is.
function M.under_way(ctx, inst)
  local id = ctx:catalog():meta(key(inst))
  if not id or not vcs.bisecting(inst:transport(), inst.path) then
    errors.usage("%s: no bisect under way (tend bisect start %s --good V --bad V)", inst.name, inst.name)
  end
  return tonumber(id)
end

-- mark(ctx, inst, verdict) -> at: the commit the instance is at said good, bad or skip.
function M.mark(ctx, inst, verdict)
  M.under_way(ctx, inst)
  return vcs.bisect(inst:transport(), inst.path, verdict)
end

-- settle(inst) -> seconds: how long after the code moved a page shows it. PHP's opcache
-- checks a file's time only every opcache.revalidate_freq seconds (2 by default), so a
-- test over HTTP right after a checkout can see the commit before. 0 without a --url.
function M.settle(ctx, inst)
  if not inst.url then return 0 end
  local p, why = require("tend.maintenance").php_at(inst)
  if not p then
    ctx:warn("%s: %s; a test over HTTP may see the code before a checkout for a while", inst.name, why)
    return 2
  end
  if p.opcache and not p.opcache.validate then
    ctx:warn("%s: PHP at %s never rechecks its files (opcache.validate_timestamps=0): its pages keep the code "
      .. "they were first served with; test with a command that runs php itself", inst.name, inst.url)
  end
  return p.opcache and p.opcache.validate and p.opcache.freq + 1 or 0
end

-- test(inst, cmd, settle) -> "good" | "bad" | "skip": cmd run in the web root settle
-- seconds after the code moved, read as `git bisect run` reads it: 0 good, 125 skip,
-- 1-127 bad; anything else stops the hunt.
function M.test(inst, cmd, settle)
  if settle > 0 then require("tend.core").proc.run({ "sleep", tostring(settle) }) end
  local r, msg = inst:exec(cmd, { timeout = 1800 })
  if not r then errors.fail("the test (%s): %s", cmd, msg) end
  if r.code == 0 then return "good" end
  if r.code == 125 then return "skip" end
  if r.code > 0 and r.code < 128 then return "bad" end
  errors.fail("the test (%s) ended with %d, which says neither good nor bad: the bisect stops here", cmd, r.code)
end

-- go(inst, commit): the checkout moved to commit, inside the bisect (to the first bad one).
function M.go(inst, commit)
  local r, msg = inst:exec({ "git", "checkout", "--quiet", commit })
  if not r then errors.fail("%s", msg) end
  if r.code ~= 0 then errors.fail("git checkout %s: %s", commit, require("tend.transport").why(r)) end
end

-- reset(ctx, inst) -> snapshot id | nil: the checkout back where it was before the
-- bisect (one begun by hand with git bisect too).
function M.reset(ctx, inst)
  local id, t = ctx:catalog():meta(key(inst)), inst:transport()
  if not id and not vcs.bisecting(t, inst.path) then M.under_way(ctx, inst) end
  if vcs.bisecting(t, inst.path) then vcs.bisect_reset(t, inst.path) end
  ctx:catalog():run("DELETE FROM meta WHERE key = ?", key(inst))
  return tonumber(id)
end

return M
