-- cron: five-field cron expressions (minute hour day-of-month month day-of-week), as
-- Debian's cron reads them: numbers, ranges a-b, steps */n and a-b/n, lists, names of
-- months and days (jan, mon), 7 for Sunday, and the @hourly-style shortcuts. A bad
-- expression is an error that names the field. next(expr, t) gives the next run time.
local M = {}

local FIELDS = {
  { name = "minute", min = 0, max = 59 },
  { name = "hour", min = 0, max = 23 },
  { name = "day of month", min = 1, max = 31 },
  { name = "month", min = 1, max = 12,
    names = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 } },
  { name = "day of week", min = 0, max = 7, names = { sun = 0, mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6 } },
}

M.SHORTCUTS = {
  ["@yearly"] = "0 0 1 1 *", ["@annually"] = "0 0 1 1 *", ["@monthly"] = "0 0 1 * *",
  ["@weekly"] = "0 0 * * 0", ["@daily"] = "0 0 * * *", ["@midnight"] = "0 0 * * *", ["@hourly"] = "0 * * * *",
}

local function value(f, word, expr)
  local n = tonumber(word) or (f.names and f.names[word:lower()])
  if not n or n ~= math.floor(n) then
    return nil, ("cron %q: %s: %q is not a number"):format(expr, f.name, word)
  end
  if n < f.min or n > f.max then
    return nil, ("cron %q: %s: %d is out of range %d-%d"):format(expr, f.name, n, f.min, f.max)
  end
  return n
end

-- field(f, text, expr) -> set {[n] = true}, star | nil, msg
local function field(f, text, expr)
  local set = {}
  for part in (text .. ","):gmatch("([^,]*),") do
    local range, step = part:match("^([^/]+)/(%d+)$")
    range, step = range or part, tonumber(step) or 1
    if part == "" or step < 1 then return nil, ("cron %q: %s: %q is not valid"):format(expr, f.name, part) end
    local lo, hi
    if range == "*" then
      lo, hi = f.min, f.max
    else
      local a, b = range:match("^([^-]+)%-([^-]+)$")
      local msg
      lo, msg = value(f, a or range, expr)
      if not lo then return nil, msg end
      if a then
        hi, msg = value(f, b, expr)
        if not hi then return nil, msg end
        if hi < lo then return nil, ("cron %q: %s: range %s goes backwards"):format(expr, f.name, range) end
      else
        hi = step > 1 and f.max or lo -- "5/15" means 5-max/15, as cron reads it
      end
    end
    for n = lo, hi, step do set[n] = true end
  end
  return set, text:sub(1, 1) == "*"
end

-- parse(expr) -> schedule | nil, msg.  schedule: {minute = set, hour = set, dom = set,
-- month = set, dow = set, dom_star, dow_star, text}
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "cron: no expression" end
  local text = M.SHORTCUTS[expr:lower()] or expr
  if text:sub(1, 1) == "@" then return nil, ("cron %q: unknown shortcut (use @hourly, @daily, @weekly, @monthly or @yearly)"):format(expr) end
  local words = {}
  for w in text:gmatch("%S+") do words[#words + 1] = w end
  if #words ~= 5 then
    return nil, ("cron %q: needs 5 fields (minute hour day-of-month month day-of-week), not %d"):format(expr, #words)
  end
  local s, keys = { text = expr }, { "minute", "hour", "dom", "month", "dow" }
  for i, f in ipairs(FIELDS) do
    local set, star = field(f, words[i], expr)
    if not set then return nil, star end
    s[keys[i]] = set
    if i == 3 then s.dom_star = star elseif i == 5 then s.dow_star = star end
  end
  if s.dow[7] then s.dow[0] = true end
  return s
end

-- list(set, lo, hi, width) -> "*" when set holds lo..hi whole, else its values, comma-
-- separated, each padded to width digits
local function list(set, lo, hi, width)
  local out, all = {}, true
  for n = lo, hi do
    if set[n] then out[#out + 1] = ("%0" .. width .. "d"):format(n) else all = false end
  end
  return all and "*" or table.concat(out, ",")
end

local DAYS = { [0] = "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }

-- calendar(schedule) -> systemd's OnCalendar= for it | nil, why. systemd asks for the
-- day of month AND the day of week; cron takes either when both are restricted, which
-- one OnCalendar= cannot say.
function M.calendar(s)
  if not s.dom_star and not s.dow_star then
    return nil, ("cron %q restricts both the day of month and the day of week (cron takes either): "
      .. "systemd timers cannot say that; write it as two jobs"):format(s.text)
  end
  local days = {}
  for d = 0, 6 do if s.dow[d] then days[#days + 1] = DAYS[d] end end
  local dow = #days == 7 and "" or (table.concat(days, ",") .. " ")
  return ("%s*-%s-%s %s:%s:00"):format(dow, list(s.month, 1, 12, 2), list(s.dom, 1, 31, 2),
    list(s.hour, 0, 23, 2), list(s.minute, 0, 59, 2))
end

-- The day matches: cron's rule, when both day fields are restricted either one will do.
local function day_matches(s, t)
  local dom, dow = s.dom[t.day], s.dow[t.wday - 1]
  if s.dom_star or s.dow_star then return dom and dow end
  return dom or dow
end

-- next(schedule, after) -> the first time (local time, whole minute) after `after` that
-- the schedule matches, or nil when none comes within five years (31 February).
function M.next(s, after)
  local t = os.date("*t", after - after % 60 + 60)
  t.sec = 0
  local limit = after + 5 * 366 * 86400
  while true do
    local at = os.time(t)
    if at > limit then return nil end
    t = os.date("*t", at) -- normalised (and the day of the week known)
    if not s.month[t.month] then
      t.month, t.day, t.hour, t.min = t.month + 1, 1, 0, 0
    elseif not day_matches(s, t) then
      t.day, t.hour, t.min = t.day + 1, 0, 0
    elseif not s.hour[t.hour] then
      t.hour, t.min = t.hour + 1, 0
    elseif not s.minute[t.min] then
      t.min = t.min + 1
    else
      return at
    end
    t.isdst = nil
  end
end

return M
