-- settings: what an app's config files set, read as data and rewritten in place, for
-- apps tend has no adapter for (their files declared with --config). A copy's config
-- must name the copy's database, URL and web root, never its source's; this module
-- finds the values in the forms PHP apps write them:
--   PHP files   define('K', 'v');  $k = 'v';  $cfg['db']['k'] = 'v';  'k' => 'v',
--   other files INI, .env and YAML lines: K = v, export K="v", k: v
-- and, inside any value, database URLs (mysql://user:pass@host:port/db, sqlite:///path)
-- and PDO DSNs (mysql:host=h;port=p;dbname=d). Values are matched by what the key says
-- it is (a key with "user" in it is a user, "pass" a password, "host" a host, "port",
-- "sock", then "name"/"database"/"db") and by being the source's value: nothing else is
-- touched. What still names the source afterwards is a problem, so the caller refuses.
local php = require "tend.php"

local M = {}

-- The placeholders a password is written as until the secret is put in (one per
-- escaping: a single-quoted PHP string, a double-quoted INI/.env value, a URL).
M.MARKS = { single = "@@tend-pw-single@@", quoted = "@@tend-pw-quoted@@", url = "@@tend-pw-url@@" }

local function norm(key) return (key:lower():gsub("[^%w]", "")) end

-- role(key) -> "password" | "user" | "host" | "port" | "socket" | "name" | nil
function M.role(key)
  local k = norm(key)
  if k:find("pass", 1, true) or k == "pwd" then return "password" end
  if k:find("user", 1, true) or k:find("login", 1, true) then return "user" end
  if k:find("host", 1, true) or k:find("server", 1, true) then return "host" end
  if k:find("port", 1, true) then return "port" end
  if k:find("sock", 1, true) then return "socket" end
  if k:find("name", 1, true) or k:find("database", 1, true) or k:find("schema", 1, true)
    or k == "db" or k:sub(-2) == "db" then return "name" end
end

local function is_php(file, text) return file:match("%.php%d?$") or text:match("^%s*<%?php") end

-- commented(text, at, blocks) -> true when text[at] is on a commented-out line or inside
-- a /* */ block.
local function commented(text, at, blocks)
  local line = text:sub(1, at - 1):match("[^\n]*$")
  if line:match("^%s*//") or line:match("^%s*#") or line:match("^%s*;") or line:match("^%s*%*") then return true end
  for _, b in ipairs(blocks) do
    if at > b[1] and at < b[2] then return true end
  end
end

local function line_of(text, at)
  local n = 1
  for _ in text:sub(1, at - 1):gmatch("\n") do n = n + 1 end
  return n
end

local PHP_FORMS = {
  "define%s*%(%s*['\"]([%w_]+)['\"]%s*,%s*()",       -- define('K', v)
  "%$([%w_]+)%s*=%s*()",                            -- $k = v
  "%$[%w_]+%s*%b[]%s*%[%s*['\"]([%w_.%-]+)['\"]%s*%]%s*=%s*()", -- $a['x']['k'] = v
  "%$[%w_]+%s*%[%s*['\"]([%w_.%-]+)['\"]%s*%]%s*=%s*()",        -- $a['k'] = v
  "['\"]([%w_.%-]+)['\"]%s*=>%s*()",                -- 'k' => v
}

local function php_entries(text)
  local blocks, out, seen = {}, {}, {}
  for a, b in text:gmatch("()/%*.-%*/()") do blocks[#blocks + 1] = { a, b } end
  for _, form in ipairs(PHP_FORMS) do
    for at, key, pos in text:gmatch("()" .. form) do
      local next_char = text:sub(pos, pos)
      local first, last, value, quote = php.literal_at(text, pos)
      if first and next_char ~= "=" and next_char ~= ">" and not seen[first] and not commented(text, at, blocks)
        and (type(value) == "string" or type(value) == "number") then
        seen[first] = true
        out[#out + 1] = { key = key, value = tostring(value), first = first, last = last, quote = quote,
          line = line_of(text, at), php = true }
      end
    end
  end
  table.sort(out, function(a, b) return a.first < b.first end)
  return out
end

-- A value of an INI/.env/YAML line at text[pos...] -> first, last, value, quote.
local function line_value(text, pos, eol)
  local q = text:sub(pos, pos)
  if q == '"' or q == "'" then
    local i = pos + 1
    while i < eol do
      local c = text:sub(i, i)
      if c == "\\" and q == '"' then i = i + 2
      elseif c == q then
        local body = text:sub(pos + 1, i - 1)
        if q == '"' then body = body:gsub("\\(.)", { n = "\n", t = "\t" }) end
        return pos, i, body, q
      else i = i + 1 end
    end
    return nil
  end
  local raw = text:sub(pos, eol - 1):gsub("%s+[;#].*$", ""):gsub("%s+$", "")
  if raw == "" then return nil end
  return pos, pos + #raw - 1, raw, ""
end

local function line_entries(text)
  local out, pos, n = {}, 1, 0
  while pos <= #text do
    local eol = text:find("\n", pos, true) or #text + 1
    n = n + 1
    local line = text:sub(pos, eol - 1)
    if not (line:match("^%s*[;#]") or line:match("^%s*%[")) then
      local key, at = line:match("^%s*[%-]?%s*export%s+([%w_.%-]+)%s*[=:]%s*()")
      if not key then key, at = line:match("^%s*[%-]?%s*([%w_.%-]+)%s*[=:]%s*()") end
      if key then
        local first, last, value, quote = line_value(text, pos + at - 1, eol)
        if first then out[#out + 1] = { key = key, value = value, first = first, last = last, quote = quote, line = n } end
      end
    end
    pos = eol + 1
  end
  return out
end

-- entries(text, file) -> { {key, value, first, last, quote, line, php}... }: every value
-- the file sets, in text order; first..last is the literal's span, quotes included.
function M.entries(text, file)
  return is_php(file, text) and php_entries(text) or line_entries(text)
end

local function unescape(s) return s and (s:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end)) end

-- A database URL in a value -> { scheme, user, password, host, port, name, query } | nil
local DRIVERS = { mysql = "mysql", mysqli = "mysql", mariadb = "mysql", mysql2 = "mysql", ["pdo-mysql"] = "mysql",
  pdo_mysql = "mysql", sqlite = "sqlite", sqlite3 = "sqlite" }
local function parse_url(v)
  local scheme, rest = v:match("^([%a][%w+._-]*)://(.*)$")
  if not scheme or not DRIVERS[scheme:lower()] then return nil end
  if DRIVERS[scheme:lower()] == "sqlite" then return { scheme = scheme, driver = "sqlite", path = rest } end
  local auth, path = rest:match("^([^/]*)/?(.*)$")
  local name, query = path:match("^([^?]*)%??(.*)$")
  local userinfo, host = auth:match("^(.*)@([^@]*)$")
  if not userinfo then host = auth end
  local h, port = host:match("^(.-):(%d+)$")
  local user, password = (userinfo or ""):match("^([^:]*):(.*)$")
  if not user then user = userinfo end
  return { scheme = scheme, driver = "mysql", user = unescape(user ~= "" and user or nil),
    password = password, host = h or host, port = tonumber(port), name = unescape(name), query = query }
end

-- A PDO DSN (mysql:host=...;dbname=...) -> { host, port, name, socket, parts } | nil
local PDO_KEYS = { host = "host", port = "port", dbname = "name", unix_socket = "socket" }
local function parse_pdo(v)
  local body = v:match("^mysql:(.*)$")
  if not body or not body:find("=", 1, true) then return nil end
  local d, parts = { driver = "mysql" }, {}
  for k, val in body:gmatch("([%w_]+)=([^;]*)") do
    parts[#parts + 1] = { k, val }
    if PDO_KEYS[k] then d[PDO_KEYS[k]] = k == "port" and tonumber(val) or val end
  end
  d.parts = parts
  return d
end

-- read(files) -> settings {driver, name, user, host, port, socket, path} | nil: the
-- database the files name. files: { {file=, text=}... }. A URL or DSN wins over keys.
function M.read(files)
  local keys = {}
  for _, f in ipairs(files) do
    for _, e in ipairs(M.entries(f.text, f.file)) do
      local d = parse_url(e.value) or parse_pdo(e.value)
      if d then
        if d.driver == "sqlite" then return { driver = "sqlite", path = d.path } end
        d.user = d.user or keys.user
        d.password = d.password and unescape(d.password) or keys.password
        return d
      end
      local r = M.role(e.key)
      if r and keys[r] == nil then keys[r] = e.value end
    end
  end
  if not keys.name then return nil end
  local s = { driver = "mysql", name = keys.name, user = keys.user, socket = keys.socket, password = keys.password }
  local host, port = (keys.host or ""):match("^(.-):(%d+)$")
  s.host = host or keys.host
  s.port = tonumber(port) or tonumber(keys.port)
  return s
end

local function esc_pattern(s) return (s:gsub("%p", "%%%0")) end

-- replace_in(value, from, to) -> value with each occurrence of from (as a whole path or
-- URL: followed by nothing, /, ?, # or ') replaced by to.
local function replace_in(value, from, to)
  if not from or not to or from == to or from == "" then return value end
  local out = value:gsub(esc_pattern(from) .. "()", function(after)
    local c = value:sub(after, after)
    if c == "" or c == "/" or c == "?" or c == "#" or c == "'" or c == '"' or c == ";" then return to end
  end)
  return out
end

local function same_secret(a, b)
  if a == nil or b == nil then return false end
  if type(a) == "userdata" then return a:equals(b) end
  if type(b) == "userdata" then return b:equals(a) end
  return a == b
end

local host_spec = require("tend.db").host_spec -- HOST, HOST:PORT or HOST:/SOCKET

-- quote_as(e, value) -> value written back as e's literal was (PHP or line syntax).
local function quote_as(e, value)
  if e.php then
    if e.quote == '"' then return '"' .. value:gsub('[\\"$]', "\\%0") .. '"' end
    if e.quote == "" and value:match("^%d+$") then return value end
    return php.quote(value)
  end
  if e.quote == "'" and not value:find("'", 1, true) then return "'" .. value .. "'" end
  if e.quote == "" and not value:find("[%s#;'\"\\]") then return value end
  return '"' .. value:gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"'
end

-- The password, as a placeholder in e's literal (the caller formats the secret in).
local function password_literal(e)
  if e.php then return "'" .. M.MARKS.single .. "'", "single" end
  return '"' .. M.MARKS.quoted .. '"', "quoted"
end

local function new_url(d, to, has_password)
  if d.driver == "sqlite" then return nil end
  local enc = function(s) return (tostring(s):gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end
  local auth = ""
  if to.user then auth = enc(to.user) .. (has_password and (":" .. M.MARKS.url) or "") .. "@" end
  local host = to.host or "localhost"
  local url = ("%s://%s%s%s/%s"):format(d.scheme, auth, host, to.port and (":" .. to.port) or "", enc(to.name))
  return url .. (d.query ~= "" and ("?" .. d.query) or "")
end

-- Does the URL or DSN d name from's database? By its name: hosts are written many ways
-- (localhost, 127.0.0.1, a socket), and a copy's database has a name of its own.
local function same_server(d, from) return d.name ~= nil and d.name == from.name end

-- masked(value) -> value with the password of a database URL or DSN in it as ********
function M.masked(value)
  local out = value:gsub("^([%a][%w+._-]*://[^:/@]*:)[^/]*@", "%1********@")
  return (out:gsub("([;:]password=)[^;]*", "%1********"))
end

-- rewrite(text, file, from, to) -> { text, changes, problems, modes }: text with what
-- names from (db settings + url + root) made to name to. changes: { "LINE KEY: OLD -> NEW" }
-- (a password as ********); problems: what still names the source, or could not be
-- told apart; modes: the escapings the password placeholders need ({single=true...}).
function M.rewrite(text, file, from, to)
  local edits, changes, problems, modes = {}, {}, {}, {}
  local fdb, tdb = from.db or {}, to.db or {}
  local function edit(e, literal, shown)
    edits[#edits + 1] = { e.first, e.last, literal }
    changes[#changes + 1] = ("%s:%d %s: %s -> %s"):format(file, e.line, e.key,
      M.role(e.key) == "password" and "********" or M.masked(e.value), shown)
  end
  for _, e in ipairs(M.entries(text, file)) do
    local v = e.value
    local d = fdb.driver == "mysql" and (parse_url(v) or parse_pdo(v)) or nil
    local r = M.role(e.key)
    if d and d.driver == "mysql" and same_server(d, fdb) then
      if d.parts then -- PDO DSN: its parts, in place
        local out = {}
        for _, p in ipairs(d.parts) do
          local k, val = p[1], p[2]
          local field = PDO_KEYS[k]
          if field and tdb[field] ~= nil then val = tostring(tdb[field]) end
          if not (field == "port" and not tdb.port) then out[#out + 1] = k .. "=" .. val end
        end
        local nv = "mysql:" .. table.concat(out, ";")
        if nv ~= v then edit(e, quote_as(e, nv), nv) end
      else
        local nv = new_url(d, tdb, d.password ~= nil and d.password ~= "")
        if nv:find(M.MARKS.url, 1, true) then modes.url = true end
        if nv ~= v then edit(e, quote_as(e, nv), (nv:gsub(esc_pattern(M.MARKS.url), "********"))) end
      end
    elseif r == "password" and fdb.driver == "mysql"
      and (same_secret(fdb.password, v) or (fdb.password == nil and norm(e.key):find("db"))) then
      local literal, mode = password_literal(e)
      modes[mode] = true
      edits[#edits + 1] = { e.first, e.last, literal }
      changes[#changes + 1] = ("%s:%d %s: ******** -> ********"):format(file, e.line, e.key)
    elseif r and r ~= "password" and fdb.driver == "mysql" and fdb[r] ~= nil and tostring(fdb[r]) == v
      and tdb[r] ~= nil and tostring(tdb[r]) ~= v then
      edit(e, quote_as(e, tostring(tdb[r])), tostring(tdb[r]))
    elseif r == "host" and fdb.driver == "mysql" and host_spec(fdb) == v and host_spec(tdb) ~= v then
      edit(e, quote_as(e, host_spec(tdb)), host_spec(tdb))
    else
      local nv = replace_in(v, from.url, to.url)
      nv = replace_in(nv, fdb.driver == "sqlite" and fdb.path or nil, tdb.path)
      for _, m in ipairs(to.folders or {}) do nv = replace_in(nv, m[1], m[2]) end -- its data outside the web root
      nv = replace_in(nv, from.root, to.root)
      if nv ~= v then edit(e, quote_as(e, nv), nv) end
    end
  end
  table.sort(edits, function(a, b) return a[1] > b[1] end)
  for _, ed in ipairs(edits) do text = text:sub(1, ed[1] - 1) .. ed[3] .. text:sub(ed[2] + 1) end
  for _, p in ipairs(M.leftovers(text, file, from, to)) do problems[#problems + 1] = p end
  return { text = text, changes = changes, problems = problems, modes = modes }
end

-- leftovers(text, file, from, to) -> { "FILE:LINE KEY still names the source's ..." }
function M.leftovers(text, file, from, to)
  local out, fdb, tdb = {}, from.db or {}, to.db or {}
  local function say(e, what) out[#out + 1] = ("%s:%d %s = %q still names the source's %s"):format(file, e.line, e.key, e.value, what) end
  local function holds(v, s) return s and s ~= "" and v:find(s, 1, true) end
  for _, e in ipairs(M.entries(text, file)) do
    local v = e.value
    local d = parse_url(v) or parse_pdo(v)
    if d and d.driver == "mysql" and fdb.driver == "mysql" and fdb.name ~= tdb.name and same_server(d, fdb) then
      say(e, "database")
    elseif fdb.driver == "mysql" and fdb.name ~= tdb.name and v == fdb.name and M.role(e.key) ~= "user" then
      say(e, "database name")
    elseif from.url ~= to.url and holds(v, from.url) then say(e, "URL")
    elseif fdb.driver == "sqlite" and fdb.path ~= tdb.path and holds(v, fdb.path) then say(e, "database file")
    elseif from.root ~= to.root and holds(v, from.root) and replace_in(v, from.root, "\0") ~= v then
      say(e, "web root")
    else
      for _, m in ipairs(to.folders or {}) do
        if replace_in(v, m[1], "\0") ~= v then say(e, "data folder " .. m[1]); break end
      end
    end
  end
  return out
end

-- check(files, to) -> nil | why: the files (their text after rewriting) name to's
-- database: driver, name, user and host as tend will restore it.
function M.check(files, to)
  local tdb = to.db or {}
  local plain = {}
  for i, f in ipairs(files) do
    local t = f.text
    for _, mark in pairs(M.MARKS) do t = t:gsub(esc_pattern(mark), "pw") end
    plain[i] = { file = f.file, text = t }
  end
  local got = M.read(plain)
  if not got then return "they name no database tend can read (a key with name, database or db in it, or a URL)" end
  if got.driver ~= tdb.driver then return ("they name a %s database, the copy's is %s"):format(got.driver, tdb.driver) end
  if got.driver == "sqlite" then return nil end
  if tostring(got.name) ~= tostring(tdb.name) then return ("they name database %q, the copy's is %q"):format(tostring(got.name), tostring(tdb.name)) end
  for _, f in ipairs({ "user", "host" }) do
    if got[f] ~= nil and tdb[f] ~= nil and tostring(got[f]) ~= tostring(tdb[f]) then
      return ("they say database %s %q, the copy's is %q"):format(f, tostring(got[f]), tostring(tdb[f]))
    end
  end
end

return M
