-- crontab: a user's crontab on a host (ours, or an instance's over SSH), read and
-- written whole with crontab(1), as cron expects. Lines tend owns carry a marker so
-- they can be found again; every other line is kept as it was.
local errors = require "tend.errors"
local why = require("tend.transport").why

local M = {}

-- read(t) -> text: the crontab of t's user ("" when it has none).
function M.read(t)
  local r, msg, code = t:exec({ "crontab", "-l" }, { timeout = 30 })
  if (r and r.code == 127) or code == "enoent" then
    errors.fail("no crontab command on %s (Debian: apt install cron)", t.spec)
  end
  if not r then errors.fail("crontab -l: %s", msg) end
  -- exit 1 with "no crontab for USER" is an empty crontab
  if r.code ~= 0 and not r.stderr:find("no crontab", 1, true) then errors.fail("crontab -l: %s", why(r)) end
  return r.code == 0 and r.stdout or ""
end

-- write(t, text): the crontab becomes text.
function M.write(t, text)
  local r, msg = t:exec({ "crontab", "-" }, { stdin = text, timeout = 30 })
  if not r then errors.fail("crontab -: %s", msg) end
  if r.code ~= 0 then errors.fail("crontab -: %s", why(r)) end
end

-- set(t, marker, line) -> changed: the line after the comment marker (a line of its own)
-- replaced by line, added when there is none, or taken out with line nil.
function M.set(t, marker, line)
  local current = M.read(t)
  local out, skip = {}, false
  for l in (current .. (current:sub(-1) == "\n" and "" or "\n")):gmatch("([^\n]*)\n") do
    if l == marker then skip = true
    elseif skip then skip = false
    else out[#out + 1] = l end
  end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  if line then
    out[#out + 1] = marker
    out[#out + 1] = line
  end
  local text = #out > 0 and table.concat(out, "\n") .. "\n" or ""
  if text == current then return false end
  M.write(t, text)
  return true
end

return M
