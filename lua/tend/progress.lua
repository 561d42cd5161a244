-- progress: one line on a terminal for long transfers (files, bytes, rate, ETA),
-- rewritten in place; nothing at all when stderr is not a terminal or with --quiet.
-- The rate is that of the last seconds (a moving average), not since the start: a
-- transfer's first second (connections, a slow start) says little of the rest. The ETA
-- shows once the rate has had SETTLE seconds to settle.
local core = require "tend.core"

local M = {}

local SETTLE = 3 -- seconds of transfer before an ETA is given
local WEIGHT = 0.3 -- how much each new second counts in the average rate

local function mb(b) return ("%.1f MB"):format(b / 1e6) end

-- eta_text(seconds) -> "ETA 42s", "ETA 3m05s"
local function eta_text(s)
  s = math.floor(s + 0.5)
  if s < 60 then return ("ETA %ds"):format(s) end
  return ("ETA %dm%02ds"):format(s // 60, s % 60)
end

-- rater(now0) -> function(bytes, now) -> rate (bytes/s, moving average), seconds since start
function M.rater(now0)
  local last_t, last_b, rate = now0, 0, nil
  return function(bytes, now)
    local dt = now - last_t
    if dt >= 0.5 then -- one sample every half second at least
      local r = (bytes - last_b) / dt
      rate = rate and (WEIGHT * r + (1 - WEIGHT) * rate) or r
      last_t, last_b = now, bytes
    end
    return rate, now - now0
  end
end

-- line(label, files, total_files, bytes, total_bytes, rate, elapsed) -> the progress text
function M.line(label, files, total_files, bytes, total_bytes, rate, elapsed)
  local eta = "ETA --"
  if rate and rate > 0 and elapsed >= SETTLE then
    eta = eta_text(total_bytes > bytes and (total_bytes - bytes) / rate or 0)
  end
  return ("%s: %d/%d files, %s/%s, %s/s, %s"):format(label, files, total_files, mb(bytes), mb(total_bytes),
    mb(rate or 0), eta)
end

-- new(ctx, label, total_files, total_bytes) -> function(files, bytes), finish()
function M.new(ctx, label, total_files, total_bytes)
  if ctx.quiet or ctx.json or not core.fs.isatty(2) then
    return function() end, function() end
  end
  local rate_of = M.rater(core.proc.now())
  local shown = false
  local function update(files, bytes)
    local rate, elapsed = rate_of(bytes, core.proc.now())
    io.stderr:write("\r", M.line(label, files, total_files, bytes, total_bytes, rate, elapsed), "   ")
    shown = true
  end
  local function finish()
    if shown then io.stderr:write("\n") end
  end
  return update, finish
end

return M
