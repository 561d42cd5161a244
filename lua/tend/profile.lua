-- profile: a configuration profile applied to an instance (see recipes/profile.lua): a
-- folder of files for the web root, SQL files for the database and a Lua step, or, for
-- Tiki, a profile Tiki applies itself. Each part is written to give the same result
-- however often it runs.
local core = require "tend.core"
local errors = require "tend.errors"

local M = {}

-- copy(t, from, to, rel, done): the files under from/rel written to to/rel on the host.
local function copy(t, from, to, rel, done)
  local here = from .. (rel ~= "" and ("/" .. rel) or "")
  for _, name in ipairs(core.fs.list(here) or {}) do
    local sub = rel ~= "" and (rel .. "/" .. name) or name
    local e = core.fs.stat(here .. "/" .. name)
    if e.type == "dir" then
      errors.check(t:mkdir_p(to .. "/" .. sub, 493))
      copy(t, from, to, sub, done)
    elseif e.type == "file" then
      errors.check(t:write(to .. "/" .. sub, errors.check(core.fs.read(here .. "/" .. name)), e.mode))
      done.files = done.files + 1
    end
  end
end

-- sql(ctx, inst, file): one SQL file run in the instance's database.
local function sql(ctx, inst, file)
  local text = errors.check(core.fs.read(file))
  local s = errors.check(inst:db_settings(ctx:vault()))
  if s.driver == "mysql" then return errors.check(require("tend.db").mysql(inst:transport(), s, text, { timeout = 3600 })) end
  local r, msg = inst:transport():exec({ "sqlite3", "-bail", s.path }, { stdin = text })
  if not r then errors.fail("%s: %s", file, msg) end
  if r.code ~= 0 then errors.fail("%s: %s", file, require("tend.transport").why(r)) end
end

-- apply(ctx, inst, profile, opts) -> {files, sql, lua} | {app = true}: a folder, else a
-- profile the app applies itself (its adapter's apply_profile; opts.repo: where from).
function M.apply(ctx, inst, profile, opts)
  local st = core.fs.stat(profile)
  if not st or st.type ~= "dir" then
    local adapter = require("tend.apps").get(inst.app)
    if not adapter.apply_profile then errors.usage("profile %s: no such folder", profile) end
    local ok, msg = adapter.apply_profile(inst:transport(), inst.path, profile, opts.repo)
    if not ok then errors.fail("%s profile %s: %s", (adapter.name:gsub("^%l", string.upper)), profile, msg) end
    return { instance = inst.name, profile = profile, app = true }
  end
  local done = { instance = inst.name, profile = profile, files = 0, sql = 0, lua = false }
  if core.fs.stat(profile .. "/files") then copy(inst:transport(), profile .. "/files", inst.path, "", done) end
  local names = {}
  for _, name in ipairs(core.fs.list(profile) or {}) do if name:match("%.sql$") then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do
    sql(ctx, inst, profile .. "/" .. name)
    done.sql = done.sql + 1
  end
  local step_file = profile .. "/profile.lua"
  if core.fs.stat(step_file) then
    local chunk, msg = loadfile(step_file, "t", setmetatable({ tend = require "tend" }, { __index = _G }))
    if not chunk then errors.fail("%s", msg) end
    local step = chunk()
    if type(step) ~= "function" then errors.fail("%s must return function(ctx, inst)", step_file) end
    step(ctx, inst)
    done.lua = true
  end
  return done
end

return M
