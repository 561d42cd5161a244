-- commands/host: tend host list|check|trust: the SSH hosts and their keys.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local output = require "tend.output"
local transport = require "tend.transport"
local instance = require "tend.instance"
local getopts = require("tend.recipe").getopts

local host_cmds = {}

-- The hosts the instances live on: {spec = {instances...}}, specs sorted.
local function known_hosts(ctx)
  local by_spec, specs = {}, {}
  for _, inst in ipairs(ctx:instances()) do
    if not by_spec[inst.host] then
      by_spec[inst.host] = {}
      specs[#specs + 1] = inst.host
    end
    table.insert(by_spec[inst.host], inst)
  end
  table.sort(specs)
  return by_spec, specs
end

-- A host named by an instance or by its ssh:// spec -> spec, instance (for auth options)
local function resolve_host(ctx, name)
  local inst = instance.get(ctx:catalog(), name)
  if inst then
    inst.ctx = ctx
    return inst.host, inst
  end
  local by_spec = known_hosts(ctx)
  if by_spec[name] then
    local first = by_spec[name][1]
    return name, first
  end
  local h = transport.parse(name)
  if not h then errors.usage("no instance or host named %q (tend host list)", name) end
  return h.spec, nil
end

function host_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "host list")
  if #pos > 0 then errors.usage("usage: tend host list") end
  local by_spec, specs = known_hosts(ctx)
  local rows = {}
  for _, spec in ipairs(specs) do
    local names = {}
    for _, inst in ipairs(by_spec[spec]) do names[#names + 1] = inst.name end
    rows[#rows + 1] = { host = spec, instances = table.concat(names, ",") }
  end
  ctx:result(rows, #rows == 0 and "no hosts yet: they come from instances (tend instance add)"
    or output.table_text(rows, { "host", "instances" }))
end

function host_cmds.check(ctx, argv)
  local _, pos = getopts(argv, {}, "host check")
  if #pos ~= 1 then errors.usage("usage: tend host check NAME   (an instance, or ssh://USER@HOST[:PORT])") end
  local spec, inst = resolve_host(ctx, pos[1])
  local started = os.clock()
  local opts = inst and inst:ssh_options(ctx, { fresh = true }) or { home = ctx.home, name = spec, fresh = true }
  local t = errors.check(transport.open(spec, spec ~= "local" and opts or nil))
  local r = errors.check(t:exec({ "sh", "-c", "echo tend-check; id -un; uname -sr" }))
  local user, system = r.stdout:match("tend%-check\n([^\n]*)\n([^\n]*)")
  if r.code ~= 0 or not user then -- a nologin shell, a forced command: every job would fail
    local said = (r.stdout .. "\n" .. r.stderr):match("([^\n]*%S[^\n]*)")
    errors.fail("%s: logged in, but the account runs no commands (%s); tend needs a login whose shell runs them",
      spec, said or ("exit " .. tostring(r.code)))
  end
  local report = { host = spec, user = user, system = system, ok = true }
  local lines = { { "host", spec }, { "logged in as", user or "?" }, { "system", system or "?" } }
  if t.session then
    report.fingerprint = t.session:hostkey().fingerprint
    table.insert(lines, 2, { "host key", t.session:hostkey().type .. " " .. report.fingerprint .. " (trusted)" })
  end
  report.seconds = os.clock() - started
  ctx:result(report, output.report_text(lines))
end

function host_cmds.trust(ctx, argv)
  local _, pos = getopts(argv, {}, "host trust")
  if #pos ~= 1 then errors.usage("usage: tend host trust NAME   (an instance, or ssh://USER@HOST[:PORT])") end
  local spec = resolve_host(ctx, pos[1])
  local h = transport.parse(spec)
  if h.kind == "local" then errors.usage("%s is this machine: nothing to trust", pos[1]) end
  local key, msg = require("tend.ssh").trust_host(h, ctx.home)
  if not key then errors.fail("%s", msg) end
  ctx:result({ host = spec, type = key.type, fingerprint = key.fingerprint, added = key.added },
    ("%s %s %s: %s"):format(spec, key.type, key.fingerprint,
      key.added and ("trusted, added to " .. ctx.home .. "/known_hosts") or "already trusted"))
end

return host_cmds
