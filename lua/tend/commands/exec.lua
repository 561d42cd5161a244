-- commands/exec: tend exec NAME|--all|--tag K=V [-j N] -- CMD: a command on instances.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local instance = require "tend.instance"
local getopts = require("tend.recipe").getopts
local parse_tags = instance.parse_tags

-- exec NAME|--all|--tag K=V [-j N] -- CMD...
local function commands_exec(ctx, argv)
  local sep
  for i, a in ipairs(argv) do if a == "--" then sep = i break end end
  if not sep or sep == #argv then errors.usage("usage: tend exec NAME|--all|--tag K=V [-j N] -- CMD ...") end
  local cmd = table.move(argv, sep + 1, #argv, 1, {})
  local opts, pos = getopts(table.move(argv, 1, sep - 1, 1, {}), { all = "bool", tag = "list", j = "value" }, "exec")
  local targets = {}
  if opts.all or opts.tag then
    if #pos > 0 then errors.usage("exec: give NAME or --all/--tag, not both") end
    local want = parse_tags(opts.tag)
    for _, inst in ipairs(ctx:targets({ all = true })) do
      local match = true
      for k, v in pairs(want) do if inst.tags[k] ~= v then match = false end end
      if match then targets[#targets + 1] = inst end
    end
    if #targets == 0 then errors.usage("exec: no instance matches") end
  elseif #pos == 1 then
    targets[1] = ctx:instance(pos[1])
  else
    errors.usage("usage: tend exec NAME|--all|--tag K=V [-j N] -- CMD ...")
  end
  if #targets == 1 and not (opts.all or opts.tag) then
    local r = errors.check(targets[1]:exec(cmd, { output = "inherit" }))
    return r.code
  end
  return require("tend.fanout").exec(ctx, targets, cmd, tonumber(opts.j) or 1)
end

return commands_exec
