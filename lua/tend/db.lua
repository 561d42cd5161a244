-- db: an instance's database settings and how to reach them.
-- settings = {driver = "mysql"|"sqlite", host, port, socket, name, user, password, path}
-- password is a vault secret once resolved; it reaches the mysql client through a
-- pipe read as an option file (/dev/fd/3), never argv or the environment.
local core = require "tend.core"

local M = {}

-- why(r) -> a failed client's message: its ERROR line (what the server said), else
-- tend.transport.why's.
function M.why(r) return r.stderr:match("ERROR[^\n]*") or require("tend.transport").why(r) end

-- mysql_host("127.0.0.1:3307" | "localhost:/run/mysqld/mysqld.sock" | "db") -> {host, port, socket}
function M.mysql_host(spec)
  local host, rest = spec:match("^([^:]*):(.+)$")
  if not host then return { host = spec } end
  if rest:sub(1, 1) == "/" then return { host = host ~= "" and host or "localhost", socket = rest } end
  return { host = host, port = tonumber(rest) }
end

-- host_spec(s) -> "HOST", "HOST:PORT" or "HOST:/SOCKET": the form config files write.
function M.host_spec(s)
  if s.socket then return (s.host or "localhost") .. ":" .. s.socket end
  return (s.host or "localhost") .. (s.port and (":" .. s.port) or "")
end

-- parse_url("mysql://USER@HOST[:PORT]/DB[?socket=PATH]" | "sqlite:///PATH") -> settings | nil, msg
function M.parse_url(url)
  local path = url:match("^sqlite://(/.+)$")
  if path then return { driver = "sqlite", path = path } end
  local user, host, port, name, query = url:match("^mysql://([^@/]+)@([^/:]+):?(%d*)/([^?/]+)%??(.*)$")
  if not user then
    return nil, ("bad database URL %q: use mysql://USER@HOST[:PORT]/DBNAME or sqlite:///PATH"):format(url)
  end
  local s = { driver = "mysql", user = user, host = host, port = tonumber(port), name = name }
  s.socket = query:match("socket=([^&]+)")
  return s
end

-- account(s) -> 'USER'@'HOST': the MySQL account a database URL logs in as, as blank
-- creates it and destroy drops it (any host unless the server is on loopback).
function M.account(s)
  return ("'%s'@'%s'"):format(s.user, (s.host == "localhost" or s.host == "127.0.0.1") and s.host or "%")
end

function M.describe(s)
  if s.driver == "sqlite" then return "sqlite:" .. s.path end
  local where = s.socket and (s.host .. ":" .. s.socket) or (s.host .. (s.port and ":" .. s.port or ""))
  return ("mysql:%s@%s/%s"):format(s.user or "?", where, s.name)
end

local function option_value(v) return '"' .. tostring(v):gsub('[\\"]', "\\%0"):gsub("\n", "\\n") .. '"' end

-- option_file(s) -> the [client] option file as a secret. The password goes where the
-- mark is, a string no user, host or socket name holds.
local PASSWORD_MARK = "@@tend-option-password@@"
function M.option_file(s)
  local lines = { "[client]", 'password="' .. PASSWORD_MARK .. '"' }
  if s.user then lines[#lines + 1] = "user=" .. option_value(s.user) end
  if s.host then lines[#lines + 1] = "host=" .. option_value(s.host) end
  if s.port then lines[#lines + 1] = "port=" .. s.port end
  if s.socket then lines[#lines + 1] = "socket=" .. option_value(s.socket) end
  local pw = s.password
  if type(pw) ~= "userdata" then pw = core.vault.secret(pw or "") end
  return pw:format(table.concat(lines, "\n") .. "\n", "quoted", PASSWORD_MARK)
end

-- mysql(t, s, sql [, opts]) -> stdout | nil, msg, code: one batch through the mysql client,
-- on its stdin (sql may be a secret: CREATE USER ... IDENTIFIED BY). opts.database = false
-- connects to no database (to create one).
function M.mysql(t, s, sql, opts)
  opts = opts or {}
  local argv = { "mariadb", "--defaults-extra-file=/dev/fd/3", "--batch", "--skip-column-names",
    "--connect-timeout=" .. (opts.connect_timeout or 10) }
  if opts.database ~= false then argv[#argv + 1] = s.name end
  local r, msg, code
  for _, client in ipairs({ "mariadb", "mysql" }) do
    argv[1] = client
    r, msg, code = t:exec(argv, { fds = { [3] = M.option_file(s) }, stdin = sql, timeout = opts.timeout or 60 })
    if r or code ~= "enoent" then break end
  end
  if not r then
    if code == "enoent" then msg = "no mariadb or mysql client on " .. tostring(t) end
    return nil, msg, code
  end
  if r.code ~= 0 then
    local why = M.why(r)
    return nil, ("database %s: %s"):format(M.describe(s), why), "db"
  end
  return r.stdout
end

-- ping(t, s) -> {server=, tables=} | nil, msg, code: the database answers and is ours.
function M.ping(t, s)
  if s.driver == "sqlite" and tostring(t) ~= "local" then
    local r, msg, code = t:exec({ "sqlite3", "-readonly", "-batch", s.path,
      "SELECT sqlite_version(), count(*) FROM sqlite_master WHERE type = 'table'" }, { timeout = 60 })
    if not r then return nil, msg, code end
    if r.code ~= 0 then return nil, ("database %s: %s"):format(M.describe(s), require("tend.transport").why(r)), "db" end
    local version, tables = r.stdout:match("^([^|]+)|(%d+)")
    return { server = "SQLite " .. (version or "?"), tables = tonumber(tables) }
  end
  if s.driver == "sqlite" then
    local conn, msg, code = core.catalog.open(s.path, "ro")
    if not conn then return nil, msg, code end
    local rows, qmsg, qcode = conn:query("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
    conn:close()
    if not rows then return nil, qmsg, qcode end
    return { server = "SQLite " .. core.catalog.sqlite_version, tables = rows[1].n }
  end
  local out, msg, code = M.mysql(t, s,
    "SELECT VERSION(), COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
  if not out then return nil, msg, code end
  local version, tables = out:match("^([^\t]+)\t(%d+)")
  return { server = version, tables = tonumber(tables) }
end

return M
