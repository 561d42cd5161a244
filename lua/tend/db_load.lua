-- db_load: a stored dump loaded into a database on its host, through the host's own
-- client (MariaDB/MySQL: the tables dropped, then the dump, compressed on the wire when
-- the host has zstd), or a SQLite file replaced whole, checked before it is renamed in.
-- A copy's dump is rewritten on its way (its URL and paths; tend.core.rewrite).
local core = require "tend.core"
local errors = require "tend.errors"
local db = require "tend.db"
local pause = require "tend.pause"

local M = {}

-- Every session that loads into a database holds a lock named after it (the server's
-- GET_LOCK, let go when the session ends): the client of a killed run may still be
-- executing what it was sent when the next run puts the database back, and that one
-- waits for it to end rather than interleave with it (LOCK_WAIT seconds at most).
local LOCK_WAIT = 120
local LOCK = ("GET_LOCK(CONCAT('tend.load.', SHA1(DATABASE())), %d)"):format(LOCK_WAIT)
local HOLD = "--init-command=DO " .. LOCK

-- On the host: zstd -dc | "$@", exiting with the first failure of the two (fds 5 and 6
-- carry the status; fd 3 is left to the client).
local UNZSTD = 'exec 6>&1; z=$( { { zstd -dcq 5>&- 6>&-; echo $? >&5; } | "$@" 5>&- >&6 6>&-; } 5>&1 ); c=$?; '
  .. '[ "$c" -ne 0 ] && exit "$c"; exit "${z:-1}"'

-- client_run(t, s, argv_tail, feed [, unzstd]) -> stdout | nil, msg, code: the host's
-- client, its option file (the password) on fd 3, a pipe; feed(stream) writes its input,
-- through the host's zstd -dc when unzstd.
local function client_run(t, s, argv_tail, feed, unzstd)
  local client, wmsg, wcode = t:which({ "mariadb", "mysql" })
  if not client then return nil, wmsg or ("no mariadb or mysql client on %s"):format(tostring(t)), wcode or "enoent" end
  local argv = { client, "--defaults-extra-file=/dev/fd/3", "--batch", "--skip-column-names" }
  for _, a in ipairs(argv_tail) do argv[#argv + 1] = a end
  argv[#argv + 1] = s.name
  if unzstd then argv = { "sh", "-c", UNZSTD, "sh", table.unpack(argv) } end
  local stream, msg, code = t:open(argv, { stdin_pipe = true, fds = { [3] = db.option_file(s) } })
  if not stream then return nil, msg, code end
  if feed then
    local ok
    ok, msg, code = feed(stream)
    if not ok then stream:close(); return nil, msg, code end
  end
  stream:send_eof()
  local out = {}
  while true do
    local chunk = stream:read()
    if not chunk then break end
    out[#out + 1] = chunk
  end
  local status, wmsg = stream:wait()
  if status == nil then return nil, wmsg, "stream" end
  if status ~= 0 then
    return nil, ("database %s: %s"):format(db.describe(s), db.why({ stderr = stream:stderr(), code = status })), "db"
  end
  return table.concat(out)
end

-- run_here(argv, what) -> true: a program run here, or raises saying what needs it.
local function run_here(argv, what)
  local r, msg = core.proc.run(argv)
  if not r or r.code ~= 0 then
    errors.fail("%s needs sqlite3 here: %s", what, msg or require("tend.transport").why(r))
  end
  return true
end

-- rewritten_sqlite(ctx, st, object, rewrites) -> path: a copy's SQLite database, built
-- here in temp files of $TEND_HOME/tmp: the stored file's `.dump`, through the rewriter,
-- into sqlite3.
local function rewritten_sqlite(ctx, st, object, rewrites)
  local scratch = require("tend.home").scratch
  local stored, sql, db = scratch(ctx.home), scratch(ctx.home), scratch(ctx.home)
  local ok, err = pcall(function()
    errors.check(st:get_file(object, stored, 384))
    run_here({ "sh", "-c", 'sqlite3 -bail "$1" .dump > "$2"', "sh", stored, sql }, "a copy of a SQLite database")
    os.remove(db) -- sqlite3 makes it anew
    local into = errors.check(core.proc.open({ "sh", "-c", 'umask 077 && exec sqlite3 -bail "$1"', "sh", db }, { stdin_pipe = true }))
    local f = assert(io.open(sql, "rb"))
    local w <close> = core.rewrite.new(rewrites, "sqlite", into)
    for chunk in function() return f:read(1 << 20) end do errors.check(w:write(chunk)) end
    f:close()
    errors.check(w:flush())
    into:send_eof()
    local status = into:wait()
    if status ~= 0 then errors.fail("rewriting the SQLite database: %s", require("tend.transport").stream_why(into, status)) end
  end)
  os.remove(stored); os.remove(sql)
  if not ok then os.remove(db); error(err, 0) end
  return db
end

-- On the host: stdin into a temp file beside the database ($1) that replaces it only
-- once its SHA-256 is $2 (a stream cut short never does), with the old file's mode (and
-- owner, as root), and only while tend's end of the session is still there: a killed
-- run's whole file must not land after the next run has put the database back (the
-- "verified" line fails, SIGPIPE, once sshd has closed the session). The temp file goes
-- however the script ends: it never outlives it.
local SQLITE_PUT = [[d=$(dirname -- "$1") && f=$(mktemp "$d/.tend-sqlite-XXXXXX") || exit 125
trap 'rm -f -- "$f"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 141' PIPE
cat > "$f" || exit 1
sum=$(sha256sum < "$f") || { echo "no sha256sum on the host" >&2; exit 127; }
[ "${sum%% *}" = "$2" ] || { echo "the database file arrived incomplete" >&2; exit 1; }
if [ -e "$1" ]; then
  chmod --reference="$1" -- "$f" && { [ "$(id -u)" != 0 ] || chown --reference="$1" -- "$f"; } || exit 1
else chmod 644 -- "$f" || exit 1; fi
sync -- "$f" 2>/dev/null
echo verified || exit 141
mv -f -- "$f" "$1"]]

-- put_sqlite(t, path, hex, feed [, ctx]) -> true | nil, msg, code: feed(stream) writes
-- the new database file, whose SHA-256 is hex; readers see the old file or the new one.
local function put_sqlite(t, path, hex, feed, ctx)
  local stream, msg, code = t:open({ "sh", "-c", SQLITE_PUT, "sh", path, hex }, { stdin_pipe = true })
  if not stream then return nil, msg, code end
  local ok
  ok, msg, code = feed(stream)
  if not ok then stream:close(); return nil, msg, code end
  if ctx then pause(ctx, "restore.sqlite-sent") end
  stream:send_eof()
  local status = stream:wait()
  if status == nil then return nil, "the connection broke while the database file was written", "stream" end
  if status ~= 0 then
    return nil, ("could not replace %s: %s"):format(path, require("tend.transport").stream_why(stream, status)), "remote"
  end
  return true
end

-- load_db(t, st, s, object [, ctx [, rewrites]]) -> true | nil, msg, code: empty the
-- database, then load the dump object. With rewrites ({{from, to}, ...}: a copy's URL and
-- path) the dump is rewritten on its way (tend.core.rewrite), and crosses uncompressed.
function M.load_db(t, st, s, object, ctx, rewrites)
  local rewrite = rewrites and #rewrites > 0
  if s.driver == "sqlite" then
    -- The stored object is the database file itself; a copy's is rewritten here first.
    if not rewrite then return put_sqlite(t, s.path, object, function(stream) return st:write_to(object, stream) end, ctx) end
    local db = rewritten_sqlite(ctx, st, object, rewrites)
    local hex = core.hash.file(db)
    local ok, msg, code = put_sqlite(t, s.path, hex, function(stream)
      local f = assert(io.open(db, "rb"))
      for chunk in function() return f:read(1 << 20) end do
        local w, wmsg, wcode = stream:write(chunk)
        if not w then f:close(); return nil, wmsg, wcode end
      end
      f:close()
      return true
    end, ctx)
    os.remove(db)
    return ok, msg, code
  end
  local tables, msg, code = client_run(t, s, { "-e", "SELECT " .. LOCK .. "; SHOW TABLES" })
  if not tables then return nil, msg, code end
  local locked
  locked, tables = tables:match("^([^\n]*)\n?(.*)$")
  if locked ~= "1" then
    return nil, ("database %s: another session has been loading into it for %d s (a killed run's?); "
      .. "try again when it ends"):format(db.describe(s), LOCK_WAIT), "busy"
  end
  local drops = { "SET FOREIGN_KEY_CHECKS = 0;" }
  for name in tables:gmatch("([^\n]+)") do drops[#drops + 1] = ("DROP TABLE `%s`;"):format(name:gsub("`", "``")) end
  drops = table.concat(drops, "\n") .. "\n"
  if not rewrite and t:which({ "zstd" }) then -- the dump crosses compressed, as stored
    local ok
    ok, msg, code = client_run(t, s, { HOLD }, function(stream) return stream:write(drops) end)
    if not ok then return nil, msg, code end
    if ctx then pause(ctx, "restore.db-emptied") end
    return client_run(t, s, { HOLD }, function(stream) return st:write_frame_to(object, stream) end, true)
  end
  return client_run(t, s, { HOLD }, function(stream)
    local w, wmsg, wcode = stream:write(drops)
    if not w then return nil, wmsg, wcode end
    if ctx then pause(ctx, "restore.db-emptied") end
    if not rewrite then return st:write_to(object, stream) end
    local rw <close> = core.rewrite.new(rewrites, "mysql", stream)
    w, wmsg, wcode = st:write_to(object, rw)
    if w then w, wmsg, wcode = rw:flush() end
    return w, wmsg, wcode
  end)
end

return M
