-- api: what a recipe gets as `tend`. The run's helpers are ctx's (ctx:step, ctx:undo,
-- ctx:usage, ctx:info, ctx:result); an instance's steps are its methods (tend.steps:
-- inst:backup(), inst:maintenance_on(), inst:code_to(plan), ...). Here: the version,
-- and what a recipe needs besides. Not the engine: a recipe never holds tend.core.
local core = require "tend.core"
require "tend.steps"

return setmetatable({
  version = core.version,
  API = core.api,
}, {
  __index = function(_, k)
    error(("tend.%s is not in the recipe API; recipes work on instances through tend's API (docs/recipes.md)")
      :format(tostring(k)), 2)
  end,
  __newindex = function() error("tend is read-only", 2) end,
})
