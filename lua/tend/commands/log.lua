-- commands/log: tend log [JOB|NAME] [--failed] | log show RUN: what the scheduled runs did.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local output = require "tend.output"
local getopts = require("tend.recipe").getopts

local function when(t) return t and os.date("%Y-%m-%d %H:%M", t) or "-" end

-- log [JOB|NAME] [--failed] | log show RUN
local function commands_log(ctx, argv)
  local catalog = ctx:catalog()
  if argv[1] == "show" then
    local id = tonumber(argv[2])
    if not id or argv[3] then errors.usage("usage: tend log show RUN") end
    local r = catalog:first("SELECT * FROM runs WHERE id = ?", id)
    if not r then errors.usage("no run %d (tend log)", id) end
    local lines = {
      ("run %d of job %s%s: %s%s"):format(r.id, r.job, r.instance ~= "" and (" (" .. r.instance .. ")") or "", r.status,
        r.exit_code and (" (exit " .. r.exit_code .. ")") or ""),
      ("started %s, took %ss"):format(when(r.started_at), r.finished_at and (r.finished_at - r.started_at) or "?") }
    if r.error then lines[#lines + 1] = "error: " .. r.error end
    if r.alert then lines[#lines + 1] = "alert: " .. r.alert end
    lines[#lines + 1] = ""
    lines[#lines + 1] = r.log or ""
    ctx:result(r, table.concat(lines, "\n"))
    return
  end
  local opts, pos = getopts(argv, { failed = "bool" }, "log")
  if #pos > 1 then errors.usage("usage: tend log [JOB|INSTANCE] [--failed] | log show RUN") end
  local where, args = {}, {}
  if pos[1] then
    where[#where + 1] = "(job = ? OR ',' || instance || ',' LIKE '%,' || ? || ',%')"
    args[#args + 1], args[#args + 2] = pos[1], pos[1]
  end
  if opts.failed then where[#where + 1] = "status = 'failed'" end
  local sql = "SELECT id, job, instance, started_at, finished_at, status, error FROM runs"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") .. " ORDER BY id DESC LIMIT 50"
  local rows = catalog:query(sql, table.unpack(args))
  local text = {}
  for i, r in ipairs(rows) do
    text[i] = { run = r.id, job = r.job, instance = r.instance ~= "" and r.instance or "-", started = when(r.started_at),
      status = r.status, error = r.error or "" }
  end
  ctx:result(rows, #rows == 0 and "no runs yet" or output.table_text(text, { "run", "job", "instance", "started", "status", "error" }))
end

return commands_log
