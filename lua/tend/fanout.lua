-- fanout: one command on many instances, output prefixed by instance name, a summary
-- of successes and failures at the end. With -j N, N instances at a time: each runs in
-- a child `tend exec` process so that slow hosts do not wait for each other.
local core = require "tend.core"
local errors = require "tend.errors"

local M = {}

local function prefixed(name, text, out)
  for line in text:gmatch("([^\n]*)\n?") do
    if line ~= "" then out:write(name, ": ", line, "\n") end
  end
end

-- exec(ctx, targets, argv, jobs) -> exit code: 0 when every instance said 0, else 1.
function M.exec(ctx, targets, argv, jobs)
  local results = {}
  local self_exe = core.exe or "tend"
  local function run_one(inst)
    if jobs > 1 then
      return core.proc.spawn({ self_exe, "--home", ctx.home, "exec", inst.name, "--", table.unpack(argv) },
        { env = { TEND_LUA_DIR = core.lua_dir or false } })
    end
    local ok, r, msg = pcall(inst.exec, inst, argv)
    if not ok then return nil, errors.is(r) and r.msg or tostring(r) end
    return r, msg
  end
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
    local queue, running = { table.unpack(targets) }, {}
    while #queue > 0 or next(running) do
      while #queue > 0 and #running < jobs do
        local inst = table.remove(queue, 1)
        local child, msg = run_one(inst)
        if child then running[#running + 1] = { inst = inst, child = child } else report(inst, nil, msg) end
      end
      local children = {}
      for i, job in ipairs(running) do children[i] = job.child end
      local done = core.proc.wait_any(children)
      local job = table.remove(running, done)
      local r = job.child:result()
      if r.code ~= 0 and r.stdout == "" and r.stderr:match("^tend: ") then
        report(job.inst, nil, r.stderr:gsub("^tend: ", ""):gsub("\n$", ""))
      else
        report(job.inst, r)
      end
    end
  else
    for _, inst in ipairs(targets) do report(inst, run_one(inst)) end
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
