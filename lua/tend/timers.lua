-- timers: the jobs of `tend schedule` as systemd user units, for a machine where systemd
-- rather than cron should start them (`tend schedule sync --systemd`). Each job is a
-- oneshot service running `tend schedule run JOB` (the same locks, record and alerts as
-- under cron) and a timer whose OnCalendar= says the job's cron expression. The units
-- are ours by their first line: those of jobs that are gone are removed, others' are
-- never touched.
local core = require "tend.core"
local errors = require "tend.errors"
local cron = require "tend.cron"

local M = {}

M.MARK = "# written by tend schedule sync --systemd; change the job with tend schedule, not here"

-- dir() -> the user's systemd unit folder ($XDG_CONFIG_HOME/systemd/user)
function M.dir()
  local config = os.getenv("XDG_CONFIG_HOME")
  if not config or config == "" then config = (os.getenv("HOME") or "") .. "/.config" end
  return config .. "/systemd/user"
end

-- quote(word) -> word as a systemd command line takes it: in double quotes, with \ and "
-- escaped, and % (a specifier to systemd) doubled.
local function quote(word)
  return '"' .. word:gsub('[\\"]', "\\%0"):gsub("%%", "%%%%") .. '"'
end

-- units(ctx, job) -> {["tend-JOB.service"] = text, ["tend-JOB.timer"] = text} | nil, why
function M.units(ctx, job)
  local s = assert(cron.parse(job.cron))
  local calendar, why = cron.calendar(s)
  if not calendar then return nil, ("job %s: %s"):format(job.name, why) end
  local argv = { core.exe or "tend", "--home", ctx.home, "schedule", "run", job.name }
  for i, w in ipairs(argv) do argv[i] = quote(w) end
  local what = ("tend job %s: %s"):format(job.name, table.concat(job.argv, " "):gsub("%%", "%%%%"))
  local service = { M.MARK, "[Unit]", "Description=" .. what, "", "[Service]", "Type=oneshot" }
  if core.lua_dir then service[#service + 1] = "Environment=" .. quote("TEND_LUA_DIR=" .. core.lua_dir) end
  service[#service + 1] = "ExecStart=" .. table.concat(argv, " ")
  local timer = { M.MARK, "[Unit]", "Description=" .. what .. " (" .. job.cron .. ")", "", "[Timer]",
    "OnCalendar=" .. calendar, "Persistent=true", "", "[Install]", "WantedBy=timers.target" }
  return { ["tend-" .. job.name .. ".service"] = table.concat(service, "\n") .. "\n",
    ["tend-" .. job.name .. ".timer"] = table.concat(timer, "\n") .. "\n" }
end

-- ours(dir) -> {name = true}: the unit files in dir that tend wrote
local function ours(dir)
  local out = {}
  for _, name in ipairs(core.fs.list(dir) or {}) do
    if name:match("^tend%-.+%.service$") or name:match("^tend%-.+%.timer$") then
      local text = core.fs.read(dir .. "/" .. name)
      if text and text:sub(1, #M.MARK) == M.MARK then out[name] = true end
    end
  end
  return out
end

-- systemctl(args) -> true | nil, why: systemctl --user, when there is a user manager
local function systemctl(args)
  local r, msg = core.proc.run({ "systemctl", "--user", table.unpack(args) }, { timeout = 60 })
  if not r then return nil, msg end
  if r.code ~= 0 then return nil, require("tend.transport").why(r) end
  return true
end

-- sync(ctx, jobs [, dir]) -> {written = {...}, removed = {...}, timers = {...}, note}: the
-- units of jobs (all of them, or none) in dir; every unit written or removed is in the
-- lists. A job that OnCalendar= cannot express refuses the whole sync, before any change.
function M.sync(ctx, jobs, dir)
  dir = dir or M.dir()
  local want, timers = {}, {}
  for _, job in ipairs(jobs) do
    local units, why = M.units(ctx, job)
    if not units then errors.usage("%s", why) end
    for name, text in pairs(units) do want[name] = text end
    timers[#timers + 1] = "tend-" .. job.name .. ".timer"
  end
  errors.check(core.fs.mkdir_p(dir, 493))
  local out = { written = {}, removed = {}, timers = timers }
  for name in pairs(ours(dir)) do
    if not want[name] then
      errors.check(core.fs.remove(dir .. "/" .. name))
      out.removed[#out.removed + 1] = name
    end
  end
  for name, text in pairs(want) do
    if core.fs.read(dir .. "/" .. name) ~= text then
      errors.check(core.fs.write_atomic(dir .. "/" .. name, text, 420))
      out.written[#out.written + 1] = name
    end
  end
  table.sort(out.written); table.sort(out.removed); table.sort(timers)
  -- started here when a user manager runs; otherwise the operator is told how
  local ok, why = systemctl({ "daemon-reload" })
  if ok and #timers > 0 then ok, why = systemctl({ "enable", "--now", table.unpack(timers) }) end
  if not ok then
    out.note = ("systemctl --user did not take them (%s): run systemctl --user daemon-reload%s as the user "
      .. "whose jobs they are (loginctl enable-linger USER keeps them running after logout)"):format(why,
      #timers > 0 and (" && systemctl --user enable --now " .. table.concat(timers, " ")) or "")
  end
  return out
end

return M
