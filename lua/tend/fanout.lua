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

-- children(ctx, items, command_of, jobs, done): a child `tend ARGV...` for each item
-- (command_of(item) -> argv [, env] says which), at most jobs at a time; done(item,
-- outcome) as each ends, outcome being tend.child's {code, error, result, stdout,
-- stderr}, or done(item, nil, msg) when it could not start.
function M.children(ctx, items, command_of, jobs, done)
  local queue, running = { table.unpack(items) }, {}
  while #queue > 0 or next(running) do
    while #queue > 0 and #running < jobs do
      local item = table.remove(queue, 1)
      local c, msg = child.spawn(ctx, command_of(item))
      if c then running[#running + 1] = { item = item, child = c } else done(item, nil, msg) end
    end
    if #running > 0 then
      local list = {}
      for i, job in ipairs(running) do list[i] = child.proc(job.child) end
      local job = table.remove(running, core.proc.wait_any(list))
      done(job.item, child.finish(job.child))
    end
  end
end

-- At most this many connections to one host at a time: sshd's MaxStartups (10 by
-- default) drops new connections beyond it while others are still logging in.
M.PER_HOST = 8

-- batches(list, jobs) -> {{inst, ...}, ...}: the instances in groups that one child each
-- runs in turn over one connection (and one login shell) per host: each host gets a
-- share of the jobs as its instances are a share of the list, at least one, at most
-- PER_HOST; a group never spans two hosts.
function M.batches(list, jobs)
  local hosts, by = {}, {}
  for _, inst in ipairs(list) do
    local h = inst.host or ""
    if not by[h] then by[h] = {}; hosts[#hosts + 1] = h end
    table.insert(by[h], inst)
  end
  local out = {}
  for _, h in ipairs(hosts) do
    local insts = by[h]
    local k = math.max(1, math.min(M.PER_HOST, #insts, (jobs * #insts + #list - 1) // #list))
    local first = #out
    for i = 1, k do out[first + i] = {} end
    for i, inst in ipairs(insts) do table.insert(out[first + (i - 1) % k + 1], inst) end
  end
  return out
end

-- shared(ctx, list, jobs, argv, done): `tend ARGV...` (whose --all means its batch) run
-- over the batches of list, jobs at a time; done(inst, entry) for each instance that
-- answered (its entry in the child's answer: a list of {instance = name, ...}), or
-- done(inst, nil, msg, code) for one the child said nothing of (it failed before).
function M.shared(ctx, list, jobs, argv, done)
  M.children(ctx, M.batches(list, jobs), function(batch)
    local names = {}
    for i, inst in ipairs(batch) do names[i] = inst.name end
    return argv, ctx:batch_env(names)
  end, jobs, function(batch, o, msg)
    local said = {}
    for _, e in ipairs(o and type(o.result) == "table" and o.result or {}) do
      if type(e) == "table" and e.instance then said[e.instance] = e end
    end
    for _, inst in ipairs(batch) do
      if said[inst.name] then done(inst, said[inst.name])
      else done(inst, nil, o and (o.error or "it gave no result") or msg, o and o.code) end
    end
  end)
end

-- exec(ctx, targets, argv, jobs) -> exit code: 0 when every instance said 0, else 1.
-- With jobs > 1, child tends run it over their batches; a child (ctx:batch_child())
-- keeps each instance's output in its answer for the parent to print.
function M.exec(ctx, targets, argv, jobs)
  local results, keep = {}, ctx:batch_child()
  local function report(inst, r, msg)
    if not r then
      if not keep then io.stderr:write(inst.name, ": ", msg, "\n") end
      results[#results + 1] = { instance = inst.name, ok = false, error = msg }
      return
    end
    if keep then
      results[#results + 1] = { instance = inst.name, ok = r.code == 0, code = r.code, stdout = r.stdout, stderr = r.stderr }
      return
    end
    prefixed(inst.name, r.stdout, io.stdout)
    prefixed(inst.name, r.stderr, io.stderr)
    results[#results + 1] = { instance = inst.name, ok = r.code == 0, code = r.code }
  end
  if jobs > 1 then
    M.shared(ctx, targets, jobs, { "--json", "--quiet", "exec", "--all", "--", table.unpack(argv) }, function(inst, e, msg)
      if e and not e.error then report(inst, { code = e.code, stdout = e.stdout or "", stderr = e.stderr or "" })
      else report(inst, nil, e and e.error or msg) end -- tend failed, not the command
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
