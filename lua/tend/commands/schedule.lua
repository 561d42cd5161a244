-- commands/schedule: tend schedule add|list|rm|sync|run: jobs cron runs.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local output = require "tend.output"
local duration = require "tend.duration"
local getopts = require("tend.recipe").getopts

local schedule_cmds = {}

local SCHEDULE_ADD = "usage: tend schedule add JOB --cron \"EXPR\" [--mail-to ADDR ...] [--mail-on-success]\n"
  .. "                         [--webhook URL] [--timeout 6h] -- RECIPE ARGS ..."

function schedule_cmds.add(ctx, argv)
  local opts, pos = getopts(argv, { cron = "value", ["mail-to"] = "list", ["mail-on-success"] = "bool",
    webhook = "value", timeout = "value" }, "schedule add")
  local name = table.remove(pos, 1)
  if not name or not opts.cron then errors.usage("%s", SCHEDULE_ADD) end
  if #pos == 0 then errors.usage("schedule add: say what to run after --, e.g. -- backup blog\n%s", SCHEDULE_ADD) end
  local recipe = require "tend.recipe"
  local src, origin = recipe.find(pos[1])
  if not src and not require("tend.cli").commands[pos[1]] then
    errors.usage("schedule add: %s is neither a recipe nor a tend command (tend recipes)", pos[1])
  end
  -- a recipe's arguments are checked now as the run will parse them (an unknown instance,
  -- option or value is refused today, not at 3 a.m.)
  if src then recipe.parse_args(ctx, recipe.load(src, origin), table.move(pos, 2, #pos, 1, {})) end
  local timeout
  if opts.timeout then timeout = errors.check(duration.parse(opts.timeout)) end
  if opts.webhook and not opts.webhook:match("^https?://") then errors.usage("schedule add: --webhook must be an http(s) URL") end
  local schedule = require "tend.schedule"
  schedule.add(ctx, { name = name, cron = opts.cron, argv = pos, mail_to = opts["mail-to"],
    mail_on_success = opts["mail-on-success"], webhook = opts.webhook, timeout = timeout })
  ctx:info("added job %s (%s); tend schedule sync puts it in the crontab", name, opts.cron)
end

local function when(t) return t and os.date("%Y-%m-%d %H:%M", t) or "-" end

-- command_text(argv) -> the job's command as a person reads it: words quoted only where
-- the shell would need it (backup --all -j 2, not backup '--all' '-j' 2).
local function command_text(argv)
  local words = {}
  for i, w in ipairs(argv) do
    words[i] = w:match("^[%w@%%+=:,./_-]+$") and w or require("tend.shell").quote(w)
  end
  return table.concat(words, " ")
end

function schedule_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule list")
  if #pos > 0 then errors.usage("usage: tend schedule list") end
  local jobs = require("tend.schedule").list(ctx)
  local rows, data = {}, {}
  for i, job in ipairs(jobs) do
    rows[i] = { job = job.name, cron = job.cron, command = command_text(job.argv),
      last_run = job.last and when(job.last.started_at) or "never", status = job.last and job.last.status or "-",
      next_run = when(job.next_at), mail_to = job.mail_to }
    data[i] = { job = job.name, cron = job.cron, argv = job.argv, last_run = job.last and output.time(job.last.started_at),
      status = job.last and job.last.status, next_run = output.time(job.next_at), mail_to = job.mail_to }
  end
  ctx:result(data, #rows == 0 and "no jobs yet (tend schedule add)"
    or output.table_text(rows, { "job", "cron", "last_run", "status", "next_run", "command" }))
end

function schedule_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule rm")
  if #pos ~= 1 then errors.usage("usage: tend schedule rm JOB") end
  require("tend.schedule").rm(ctx, pos[1])
  ctx:info("removed job %s; tend schedule sync takes it out of the crontab", pos[1])
end

-- sync [--systemd]: the jobs into the crontab, or (--systemd) into systemd user timers;
-- either way out of the other, so that one of them starts each job.
function schedule_cmds.sync(ctx, argv)
  local opts, pos = getopts(argv, { systemd = "bool" }, "schedule sync")
  if #pos > 0 then errors.usage("usage: tend schedule sync [--systemd]") end
  local schedule, timers = require "tend.schedule", require "tend.timers"
  if not opts.systemd then
    local changed = schedule.sync(ctx)
    local units = timers.sync(ctx, {}) -- units an earlier sync --systemd wrote go
    ctx:result({ changed = changed, removed_units = units.removed },
      (changed and "crontab updated" or "crontab already up to date")
      .. (#units.removed > 0 and ("; removed the systemd units " .. table.concat(units.removed, " ")) or ""))
    return
  end
  local t = timers.sync(ctx, schedule.list(ctx))
  local ok, cron_changed = pcall(schedule.sync, ctx, true) -- no crontab here is fine too
  local lines = { ("systemd user units in %s: %d written, %d removed, %d timers"):format(timers.dir(),
    #t.written, #t.removed, #t.timers) }
  if ok and cron_changed then lines[#lines + 1] = "tend's block taken out of the crontab" end
  if t.note then ctx:warn("%s", t.note) end
  ctx:result({ dir = timers.dir(), written = t.written, removed = t.removed, timers = t.timers,
    crontab_changed = ok and cron_changed or false, note = t.note }, table.concat(lines, "\n"))
end

function schedule_cmds.run(ctx, argv)
  local _, pos = getopts(argv, {}, "schedule run")
  if #pos ~= 1 then errors.usage("usage: tend schedule run JOB") end
  local code, run = require("tend.schedule").run(ctx, pos[1])
  ctx:result({ run = run.id, status = run.status, error = run.error, alert = run.alert })
  return code
end

return schedule_cmds
