-- preflight(ctx, insts) -> nil | the one-line reason a run cannot go ahead: room in
-- TEND_HOME for twice the most a backup of these instances has added, each host
-- answering over SSH, each database letting us in. Said before an hour is wasted.
local core = require "tend.core"
local errors = require "tend.errors"

local function mb(n) return ("%.0f MB"):format(n / 1e6) end

return function(ctx, insts)
  local catalog, need = ctx:catalog(), 64e6
  for _, inst in ipairs(insts) do
    local row = catalog:first("SELECT max(stored_bytes) AS most FROM snapshots WHERE instance_id = ?", inst.id)
    need = math.max(need, (row and row.most or 0) * 2)
  end
  local free = core.fs.free_space(ctx.home)
  if free and free < need then
    return ("disk full: %s free for %s, and a run here has needed up to %s"):format(mb(free), ctx.home, mb(need))
  end
  for _, inst in ipairs(insts) do
    inst.ctx = ctx
    local ok, err = pcall(function()
      local t = inst:transport()
      errors.check(t:exec({ "true" }, { timeout = 60 }))
      local settings = inst:db_settings(ctx:vault())
      if settings then errors.check(require("tend.db").ping(t, settings)) end
    end)
    if not ok then return ("%s: %s"):format(inst.name, errors.message(err)) end
  end
end
