-- pause: a hook for tests and operators to hold a job at a named point. With
-- TEND_PAUSE=NAME, the job creates $TEND_HOME/paused-NAME when it reaches that point and
-- waits until the file is removed (at most 120 s). Names: restore.db-emptied,
-- restore.sqlite-sent, ...
local core = require "tend.core"

return function(ctx, name)
  if os.getenv("TEND_PAUSE") ~= name then return end
  local flag = ctx.home .. "/paused-" .. name
  core.fs.write_atomic(flag, tostring(os.time()), 384)
  local deadline = os.time() + 120
  while core.fs.stat(flag) and os.time() < deadline do
    core.proc.run({ "sleep", "0.1" })
  end
end
