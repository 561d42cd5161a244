-- commands/status: tend status [NAME]: how each instance is doing, for monitoring (Tiki
-- Manager's instance:monitor): its newest snapshot, and the last run of each scheduled
-- job that names it. Exit 1 when any of those last runs failed, so a monitor can call it.
local errors = require "tend.errors"
local output = require "tend.output"
local getopts = require("tend.recipe").getopts

local function when(t) return t and os.date("%Y-%m-%d %H:%M", t) or "-" end

-- last_runs(ctx, inst) -> {run...}: the newest run of each job that named inst
local function last_runs(ctx, inst)
  return ctx:catalog():query([[SELECT r.* FROM runs r WHERE r.id IN (SELECT max(id) FROM runs
    WHERE ',' || instance || ',' LIKE '%,' || ? || ',%' GROUP BY job) ORDER BY r.job]], inst.name)
end

return function(ctx, argv)
  local _, pos = getopts(argv, {}, "status")
  if #pos > 1 then errors.usage("usage: tend status [NAME]") end
  local list = pos[1] and { ctx:instance(pos[1]) } or ctx:instances()
  local rows, data, failed = {}, {}, 0
  for _, inst in ipairs(list) do
    local snap = require("tend.snapshot").latest(ctx:catalog(), inst)
    local entry = { instance = inst.name, last_snapshot = snap and snap.id, last_snapshot_at = snap and output.time(snap.started_at),
      jobs = {} }
    local runs = last_runs(ctx, inst)
    for _, r in ipairs(runs) do
      if r.status == "failed" then failed = failed + 1 end
      entry.jobs[#entry.jobs + 1] = { job = r.job, run = r.id, status = r.status, started_at = output.time(r.started_at),
        error = r.error }
      rows[#rows + 1] = { instance = inst.name, backup = when(snap and snap.started_at), job = r.job,
        last_run = when(r.started_at), status = r.status, error = r.error or "" }
    end
    if #runs == 0 then
      rows[#rows + 1] = { instance = inst.name, backup = when(snap and snap.started_at), job = "-", last_run = "-",
        status = "-", error = "" }
    end
    data[#data + 1] = entry
  end
  ctx:result(data, #rows == 0 and "no instances yet (tend instance add)"
    or output.table_text(rows, { "instance", "backup", "job", "last_run", "status", "error" }))
  if failed > 0 then
    errors.fail("%d job%s failed on %s last run (tend log --failed)", failed, failed == 1 and "" or "s",
      failed == 1 and "its" or "their")
  end
end
