-- progress: one line on a terminal for long transfers (files, bytes, rate, ETA),
-- rewritten in place; nothing at all when stderr is not a terminal or with --quiet.
local core = require "tend.core"

local M = {}

local function mb(b) return ("%.1f MB"):format(b / 1e6) end

-- new(ctx, label, total_files, total_bytes) -> function(files, bytes), finish()
function M.new(ctx, label, total_files, total_bytes)
  if ctx.quiet or ctx.json or not core.fs.isatty(2) then
    return function() end, function() end
  end
  local started = os.time()
  local clock0 = os.clock()
  local shown = false
  local function update(files, bytes)
    local elapsed = math.max(os.time() - started, os.clock() - clock0, 0.001)
    local rate = bytes / elapsed
    local eta = rate > 0 and total_bytes > bytes and (total_bytes - bytes) / rate or 0
    io.stderr:write(("\r%s: %d/%d files, %s/%s, %s/s, ETA %ds   "):format(label, files, total_files,
      mb(bytes), mb(total_bytes), mb(rate), math.floor(eta + 0.5)))
    shown = true
  end
  local function finish()
    if shown then io.stderr:write("\n") end
  end
  return update, finish
end

return M
