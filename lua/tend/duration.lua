-- duration: "90s", "15m", "12h", "1d", "7d", "2w", "30d" <-> seconds.
local M = {}

local UNITS = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400 }

-- parse(text) -> seconds | nil, msg.  A bare number means seconds.
function M.parse(text)
  local n, unit = tostring(text):match("^(%d+)([smhdw]?)$")
  if not n then return nil, ("bad duration %q: use a number and s, m, h, d or w (90s, 12h, 7d)"):format(tostring(text)) end
  return tonumber(n) * UNITS[unit ~= "" and unit or "s"]
end

-- format(seconds) -> the largest exact unit up to days: 86400 -> "1d", 604800 -> "7d"
function M.format(seconds)
  for _, u in ipairs({ "d", "h", "m" }) do
    if seconds > 0 and seconds % UNITS[u] == 0 then return (seconds // UNITS[u]) .. u end
  end
  return seconds .. "s"
end

-- when(text [, now]) -> seconds since 1970 | nil, msg: a time given on the command line
-- (--now): "YYYY-MM-DD [HH:MM]" (local time), seconds since 1970, or +DURATION from now.
function M.when(text, now)
  local y, mo, d, h, mi = text:match("^(%d%d%d%d)-(%d%d)-(%d%d)[ T]?(%d?%d?):?(%d?%d?)$")
  if y then return os.time({ year = y, month = mo, day = d, hour = tonumber(h) or 0, min = tonumber(mi) or 0 }) end
  local ahead = text:match("^%+(.+)$")
  if ahead and M.parse(ahead) then return (now or os.time()) + M.parse(ahead) end
  return math.tointeger(tonumber(text)) or nil, ("%q: use YYYY-MM-DD [HH:MM], +7d or seconds since 1970"):format(text)
end

return M
