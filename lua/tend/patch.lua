-- patch: fixes kept on an instance's code until a release has them (a merge request's
-- diff, a security fix). Each is recorded in the catalog with its text, checked with
-- `git apply --check` on the instance's host before it is applied, taken off before the
-- code moves (update, upgrade, bisect) and put back after, and carried to copies.
-- `git apply` works in a web root that is no git checkout too (as patch(1) does).
local core = require "tend.core"
local errors = require "tend.errors"
local why = require("tend.transport").why

local M = {}

-- git_apply(inst, body, ...) -> true | nil, git's last line: `git apply ARGS -` in the
-- web root, the patch on stdin.
local function git_apply(inst, body, ...)
  local r, msg = inst:exec({ "git", "apply", ... }, { stdin = body, timeout = 300 })
  if not r then errors.fail("%s", msg) end
  if r.code == 127 then errors.fail("%s has no git: tend applies patches with git apply", inst.host) end
  if r.code ~= 0 then return nil, why(r) end
  return true
end

-- applied(inst, body) -> bool: the code has the patch in it (it would apply in reverse).
local function applied(inst, body) return git_apply(inst, body, "--reverse", "--check", "-") ~= nil end

-- read(source) -> text, name: a patch from a file on the manager or an http(s) URL.
local function read(source)
  local text, msg
  if source:match("^https?://") then
    local r
    r, msg = core.http.request({ url = source, timeout = 60, max_body = 64 << 20 })
    if r and r.status ~= 200 then msg = ("%s answered %d"):format(source, r.status) end
    text = r and r.status == 200 and r.body
  else
    text, msg = core.fs.read(source)
  end
  if not text then errors.usage("%s", msg) end
  if not (text:match("^diff ") or text:match("\ndiff ") or text:match("\n%-%-%- ") or text:match("^%-%-%- ")) then
    errors.usage("%s is no patch (no diff in it)", source)
  end
  return text, (source:gsub("[?#].*$", ""):gsub("/+$", ""):match("([^/]+)$"))
end

-- list(ctx, inst) -> {{id, name, source, body, added_at}, ...}, oldest first.
function M.list(ctx, inst)
  return ctx:catalog():query("SELECT id, name, source, body, added_at FROM patches WHERE instance_id = ? ORDER BY id", inst.id)
end

-- add(ctx, inst, source) -> row, was_in: the patch applied and recorded; one the code
-- already has is recorded as it is (was_in true). One that does not apply: exit 1
-- naming git's complaint, nothing changed.
function M.add(ctx, inst, source)
  local body, name = read(source)
  for _, p in ipairs(M.list(ctx, inst)) do
    if p.body == body then errors.usage("%s: that diff is patch %d (%s) already", inst.name, p.id, p.name) end
  end
  local was_in = applied(inst, body)
  if not was_in then
    local ok, msg = git_apply(inst, body, "--check", "-")
    if not ok then errors.fail("%s does not apply to %s: %s", name, inst.path, msg) end
    errors.check(git_apply(inst, body, "-"))
  end
  local c = ctx:catalog()
  c:run("INSERT INTO patches (instance_id, name, source, body, added_at) VALUES (?, ?, ?, ?, ?)",
    inst.id, name, source, body, os.time())
  return c:first("SELECT id, name, source, added_at FROM patches WHERE id = last_insert_rowid()"), was_in
end

-- remove(ctx, inst, id) -> row: the patch taken out of the code (when it is in) and
-- forgotten.
function M.remove(ctx, inst, id)
  local row = ctx:catalog():first("SELECT id, name, body FROM patches WHERE instance_id = ? AND id = ?", inst.id, tonumber(id))
  if not row then errors.usage("%s has no patch %s (tend patch %s list)", inst.name, tostring(id), inst.name) end
  if applied(inst, row.body) then
    local ok, msg = git_apply(inst, row.body, "--reverse", "-")
    if not ok then errors.fail("patch %d (%s) could not be taken out: %s", row.id, row.name, msg) end
  end
  ctx:catalog():run("DELETE FROM patches WHERE id = ?", row.id)
  return row
end

-- off(ctx, inst) -> n: every recorded patch the code has taken out, newest first, so the
-- code is as its version has it and can move.
function M.off(ctx, inst)
  local rows, n = M.list(ctx, inst), 0
  for i = #rows, 1, -1 do
    local p = rows[i]
    if applied(inst, p.body) then
      local ok, msg = git_apply(inst, p.body, "--reverse", "-")
      if not ok then errors.fail("patch %d (%s) could not be taken off: %s", p.id, p.name, msg) end
      n = n + 1
    end
  end
  return n
end

-- on(ctx, inst) -> n: every recorded patch the code lacks applied, oldest first. One that
-- no longer applies fails, naming it (the caller's undo puts the code back).
function M.on(ctx, inst)
  local n = 0
  for _, p in ipairs(M.list(ctx, inst)) do
    if not applied(inst, p.body) then
      local ok, msg = git_apply(inst, p.body, "--check", "-")
      if not ok then errors.fail("patch %d (%s) no longer applies: %s", p.id, p.name, msg) end
      errors.check(git_apply(inst, p.body, "-"))
      n = n + 1
    end
  end
  return n
end

-- copy(ctx, src, dst): dst's patches become src's (a copy's code is src's, patched).
function M.copy(ctx, src, dst)
  local c = ctx:catalog()
  c:transaction(function()
    c:run("DELETE FROM patches WHERE instance_id = ?", dst.id)
    c:run("INSERT INTO patches (instance_id, name, source, body, added_at) "
      .. "SELECT ?, name, source, body, added_at FROM patches WHERE instance_id = ? ORDER BY id", dst.id, src.id)
  end)
end

return M
