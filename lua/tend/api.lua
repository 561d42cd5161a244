-- api: what a recipe gets as `tend`. The run's helpers are ctx's (ctx:step, ctx:undo,
-- ctx:usage, ctx:info, ctx:result); an instance's steps are its methods (tend.steps:
-- inst:backup(), inst:maintenance_on(), inst:code_to(plan), ...). Here: the version,
-- and what a recipe needs besides. Not the engine: a recipe never holds tend.core.
local core = require "tend.core"
require "tend.steps"

return setmetatable({
  version = core.version,
  API = core.api,
  -- check_pattern(p): an --exclude pattern, or a usage error saying what is wrong with it
  check_pattern = require("tend.backup").check_pattern,
  -- check_address(a) -> a, or a usage error: an e-mail address
  check_address = require("tend.notify").check_address,
  -- message(err) -> the text of a failure caught by pcall
  message = require("tend.errors").message,
  -- files_diff(before, now) -> d {added, removed, changed}, count, lines: two scans
  -- (inst:watch_scan, inst:watch_baseline) compared, one line per difference
  files_diff = function(before, now)
    local watch = require "tend.watch"
    local d, count = watch.diff(before, now)
    return d, count, watch.report(d)
  end,
}, {
  __index = function(_, k)
    error(("tend.%s is not in the recipe API; recipes work on instances through tend's API (docs/recipes.md)")
      :format(tostring(k)), 2)
  end,
  __newindex = function() error("tend is read-only", 2) end,
})
