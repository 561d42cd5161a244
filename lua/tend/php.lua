-- php: read settings out of PHP config files as data, never by running them.
-- Understands the lines such files are made of: define('K', 'v'); $var = 'v';
-- with single- or double-quoted strings, numbers and true/false.
local M = {}

local function unquote(q, body)
  if q == "'" then
    return (body:gsub("\\([\\'])", "%1"))
  end
  local map = { n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ['"'] = '"', ["$"] = "$" }
  return (body:gsub("\\(.)", function(c) return map[c] or "\\" .. c end))
end

-- The span of a PHP scalar literal at s[pos...] (after blanks) -> first, last, or nil.
local function literal_span(s, pos)
  local first, q = s:match("^%s*()(['\"])", pos)
  if q then
    local i = first + 1
    while i <= #s do
      local c = s:sub(i, i)
      if c == "\\" then i = i + 2
      elseif c == q then return first, i
      else i = i + 1 end
    end
    return nil
  end
  local a, b = s:match("^%s*()[%w.%-]+()", pos)
  if a then return a, b - 1 end
end

-- A PHP scalar literal at the start of s -> value, or nil.
local function literal(s)
  local q = s:match("^%s*(['\"])")
  if q then
    local pos, buf = s:find(q, 1, true) + 1, {}
    while pos <= #s do
      local c = s:sub(pos, pos)
      if c == "\\" then
        buf[#buf + 1] = s:sub(pos, pos + 1); pos = pos + 2
      elseif c == q then
        return unquote(q, table.concat(buf))
      else
        buf[#buf + 1] = c; pos = pos + 1
      end
    end
    return nil
  end
  local num = s:match("^%s*(%-?%d+%.?%d*)")
  if num then return tonumber(num) end
  local word = s:match("^%s*(%a+)")
  if word and word:lower() == "true" then return true end
  if word and word:lower() == "false" then return false end
  return nil
end

-- Drop comments so that a commented-out define is not read.
local function strip_comments(src)
  src = src:gsub("/%*.-%*/", "")
  return (src:gsub("\n%s*//[^\n]*", "\n"):gsub("\n%s*#[^\n]*", "\n"))
end

-- Every `pattern` match whose capture is followed by a literal -> {name = value};
-- the first value of a name wins, as PHP's define() does.
local function scan(src, pattern)
  local out = {}
  src = strip_comments(src)
  for name, pos in src:gmatch(pattern) do
    local v = literal(src:sub(pos, pos + 4096))
    if v ~= nil and out[name] == nil then out[name] = v end
  end
  return out
end

-- defines(src) -> {NAME = value} for define('NAME', value) calls.
function M.defines(src) return scan(src, "define%s*%(%s*['\"]([%w_]+)['\"]%s*,%s*()") end

-- assignments(src) -> {var = value} for `$var = literal;` statements.
function M.assignments(src) return scan(src, "%$([%w_]+)%s*=%s*()") end

-- quote(v) -> v as a single-quoted PHP string literal.
function M.quote(v) return "'" .. tostring(v):gsub("[\\']", "\\%0") .. "'" end

local PATTERNS = { define = "define%s*%(%s*['\"]NAME['\"]%s*,%s*()", assign = "%$NAME%s*=%s*()" }

-- set(src, kind, name, code) -> src with the value of define('NAME', ...) (kind
-- "define") or `$NAME = ...` (kind "assign") replaced by the PHP code `code` | nil when
-- the file sets no such value. A commented-out line is passed over, as reading does.
function M.set(src, kind, name, code)
  local escaped = name:gsub("%p", "%%%0")
  local pattern = PATTERNS[kind]:gsub("NAME", function() return escaped end)
  local from = 1
  while true do
    local at, pos = src:find(pattern, from)
    if not at then return nil end
    pos = src:match(pattern, at)
    local line = src:sub(1, at - 1):match("[^\n]*$")
    local commented = line:match("^%s*//") or line:match("^%s*#") or line:match("^%s*%*")
    local first, last = literal_span(src, pos)
    if first and not commented then return src:sub(1, first - 1) .. code .. src:sub(last + 1) end
    from = at + 1
  end
end

-- literal_at(src, pos) -> first, last, value, quote | nil: the PHP scalar literal at
-- src[pos...] (after blanks): its span, quotes included; its value (a string, number or
-- boolean); its quote (', " or "" for a bare word or number).
function M.literal_at(src, pos)
  local first, last = literal_span(src, pos)
  if not first then return nil end
  local text = src:sub(first, last)
  local q = text:sub(1, 1)
  return first, last, literal(text), (q == "'" or q == '"') and q or ""
end

return M
