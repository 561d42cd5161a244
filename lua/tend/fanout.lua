-- fanout: one job on many instances. With -j N, N instances at a time, each in a child
-- `tend` process, so that slow hosts do not wait for each other. exec: output prefixed
-- by instance name, a summary of successes and failures at the end.
local core = require "tend.core"
local errors = require "tend.errors"
local child = require "tend.child"

local M = {}

local function prefixed(name, text, out)
  for line in text:gmatch("([^\n]*)\n?") do
    if line ~= "" then out:write(name, ": ", line, "\n") end
  end
end

-- children(ctx, targets, argv_of, jobs, done): a child `tend ARGV...` for each target
-- (argv_of(inst) says which), at most jobs at a time; done(inst, outcome) as each ends,
-- outcome being tend.child's {code, error, result, stdout, stderr}, or done(inst, nil,
-- msg) when it could not start.
function M.children(ctx, targets, argv_of, jobs, done)
  local queue, running = { table.unpack(targets) }, {}
  while #queue > 0 or next(running) do
    while #queue > 0 and #running < jobs do
      local inst = table.remove(queue, 1)
      local c, msg = child.spawn(ctx, argv_of(inst))
      if c then running[#running + 1] = { inst = inst, child = c } else done(inst, nil, msg) end
    end
    if #running > 0 then
      local list = {}
      for i, job in ipairs(running) do list[i] = child.proc(job.child) end
      local job = table.remove(running, core.proc.wait_any(list))
      done(job.inst, child.finish(job.child))
    end
  end
end

-- exec(ctx, targets, argv, jobs) -> exit code: 0 when every instance said 0, else 1.
function M.exec(ctx, targets, argv, jobs)
  local results = {}
  local function report(inst, r, msg)
    if not r then
      io.stderr:write(inst.name, ": ", msg, "\n")
      results[#results + 1] = { instance = inst.name, ok = false, error = msg }
      return
    end
    prefixed(inst.name, r.stdout, io.stdout)
    prefixed(inst.name, r.stderr, io.stderr)
    results[#results + 1] = { instance = inst.name, ok = r.code == 0, code = r.code }
  end
  if jobs > 1 then
    M.children(ctx, targets, function(inst) return { "exec", inst.name, "--", table.unpack(argv) } end, jobs,
      function(inst, r, msg)
        if r and r.error then report(inst, nil, r.error) else report(inst, r, msg) end -- tend failed, not the command
      end)
  else
    for _, inst in ipairs(targets) do
      local ok, r, msg = pcall(inst.exec, inst, argv)
      if not ok then r, msg = nil, errors.message(r) end
      report(inst, r, msg)
    end
  end
  table.sort(results, function(a, b) return a.instance < b.instance end)
  local failed = {}
  for _, r in ipairs(results) do if not r.ok then failed[#failed + 1] = r.instance end end
  local summary = ("%d ok, %d failed%s"):format(#results - #failed, #failed,
    #failed > 0 and (": " .. table.concat(failed, ", ")) or "")
  io.stdout:flush()
  if ctx.json then ctx:result(results) else io.stderr:write(summary, "\n") end
  return #failed == 0 and 0 or 1
end

return M
