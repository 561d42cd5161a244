-- restore: put a snapshot back. Files are built in a staging directory beside the
-- target and swapped in by rename; the database gets a safety dump first, then the
-- snapshot's dump is loaded; any failure puts both back as they were.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local backup = require "tend.backup"
local db = require "tend.db"
local pause = require "tend.pause"
local cjson = require "cjson"
local apps = require "tend.apps"
local copy_config = require "tend.copy_config"
local outside = require "tend.outside"
local child = require "tend.child"

local M = {}

-- What a message says when a rollback failed (as_was leaves such a message alone).
local UNRECOVERED = "could not be put back"

-- The journals: while a restore has a staging tree, has swapped files or touched the
-- database, a file in $TEND_HOME/journal/ says how to put that half back, so that a
-- restore killed at any point is rolled back by the next run (M.recover). One journal
-- per half ("files", "db"): the database half may run in a helper process.
local function journal_path(ctx, target, half)
  return ("%s/journal/restore-%d-%s.json"):format(ctx.home, target.id, half)
end

local function journal_write(ctx, target, half, j)
  errors.check(core.fs.mkdir_p(ctx.home .. "/journal", 448))
  errors.check(core.fs.write_atomic(journal_path(ctx, target, half), cjson.encode(j), 384))
end

local function journal_clear(ctx, target, half) core.fs.remove(journal_path(ctx, target, half)) end

local function split(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  return parent ~= "" and parent or "/", base
end

local function rm_rf(t, path) return t:exec({ "rm", "-rf", "--", path }) end

-- real_path(t, path) -> the folder path names: itself, or where it leads when it is a
-- symlink (resolved on the host).
local function real_path(t, path)
  local r = t:exec({ "sh", "-c", '[ -L "$1" ] && exec readlink -f -- "$1"', "sh", path })
  local real = r and r.code == 0 and r.stdout:match("^(.-)\n?$")
  return real and real ~= "" and real or path
end

-- exists(t, path) -> whether path is there; raises when the host cannot say (a lost
-- connection is not an absent file).
local function exists(t, path)
  local st, msg, code = t:stat(path)
  if st then return true end
  if code == "enoent" then return false end
  errors.fail("%s", msg)
end

-- remove_tree(t, path): gone, or raises.
local function remove_tree(t, path)
  local r, msg = rm_rf(t, path)
  if not r then errors.fail("%s", msg) end
  if r.code ~= 0 then errors.fail("rm %s: %s", path, require("tend.transport").why(r)) end
end

-- reusable(t, live, manifest) -> {path = true}: the snapshot's files that the live tree
-- at `live` holds already: same size, mode, owner and mtime (to the second), and the same
-- SHA-256 as the host's sha256sum computes it (so a file changed behind our back with
-- its mtime put back is still sent). Empty when the host cannot say.
local function reusable(t, live, manifest)
  if not t:stat(live) then return {} end
  local raw = backup.listing(t, live, {})
  if not raw then return {} end
  local now, candidates, want = backup.parse(raw), {}, {}
  local out = {}
  for _, f in ipairs(manifest) do
    local e = now[f.path]
    local same_time = (e and e.mtime_ns and f.mtime_ns) and e.mtime_ns == f.mtime_ns
      or (e and math.floor(e.mtime) == math.floor(f.mtime))
    -- a hard link's other names are always made anew from its first one
    if f.type == "file" and not f.hardlink and e and e.type == "file" and e.size == f.size and e.mode == f.mode
      and same_time and (f.uid == nil or (e.uid == f.uid and e.gid == f.gid)) then
      candidates[#candidates + 1], want[f.path] = f.path, f.sha256
    end
    -- what tar cannot make (sockets, device nodes) is kept from the live tree
    if (f.type == "socket" or f.type == "device") and e and e.type == f.type then out[f.path] = true end
  end
  local hashes = t:sha256(live, candidates) or {}
  for path, hex in pairs(hashes) do if want[path] == hex then out[path] = true end end
  return out
end

-- link_local(t, from, to, paths) -> true | nil, msg, code: files of one tree put into
-- another on the host (parent folders made) as hard links: no byte is copied, and both
-- trees stay whole whichever one the swap keeps (nothing writes into these files: tar
-- and our writes replace files, never rewrite them). A host without GNU cp copies
-- them through tar instead, mode and mtime kept (and owners, as root).
local LINK = [[if cp --help 2>/dev/null | grep -q -- --parents; then exec xargs -0 cp -al --parents -t "$1" --; fi
tar --null --no-recursion -T - -cf - | tar -xpf - -C "$1"]]
local function link_local(t, from, to, paths)
  if #paths == 0 then return true end
  local list = {}
  for i, p in ipairs(paths) do list[i] = "./" .. p end
  local r, msg, code = t:exec({ "sh", "-c", LINK, "sh", to }, { cwd = from, stdin = table.concat(list, "\0") .. "\0" })
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    return nil, ("taking %d files from %s: %s"):format(#paths, from, r.stderr:match("[^\n]+") or ("exit " .. r.code)), "remote"
  end
  return true
end

-- build(t, st, manifest, dir, live, keep [, progress]) -> summary part | nil, msg, code:
-- progress(files, bytes) -> update, finish: a display for what crosses (tend.progress).
-- the snapshot's tree made in dir (created). Files the live tree holds already are
-- copied there on the host; paths in keep come from the live tree whatever the snapshot
-- says (a copy's own config file); only the rest crosses the wire, in one tar stream.
-- The local links go first: tar sets the folders' modes and times last. Owners are kept
-- where the login is root (tar's own rule) and device nodes made; elsewhere the login
-- owns what it writes, and device nodes are kept from the live tree.
local function build(t, st, manifest, dir, live, keep, progress)
  errors.check(t:mkdir_p(dir, 448))
  local root = t:is_root()
  local same, from_live, send = reusable(t, live, manifest), {}, {}
  for path in pairs(keep) do
    if t:stat(live .. "/" .. path) then from_live[#from_live + 1] = path else keep[path] = nil end
  end
  local unmade = {}
  for _, f in ipairs(manifest) do
    if keep[f.path] then -- the live one was listed above
    elseif same[f.path] then from_live[#from_live + 1] = f.path
    elseif f.type == "socket" or (f.type == "device" and not (root and f.rdev)) then unmade[#unmade + 1] = f.path
    else send[#send + 1] = f end
  end
  local ok, cmsg, ccode = link_local(t, live, dir, from_live)
  if not ok then return nil, cmsg, ccode end
  local stream, omsg, ocode = t:open({ "tar", "-xpf", "-", "-C", dir }, { stdin_pipe = true })
  if not stream then return nil, omsg, ocode end
  local sent, sent_bytes = snapshot.tally(send)
  local update, finish = (progress or function() end)(sent, sent_bytes)
  local files, msg, code = core.archive.write_tar(stream, st, snapshot.tar_order(send), { progress = update })
  if finish then finish() end
  local status = stream:wait()
  if not files then return nil, msg, code end
  if status == nil then return nil, "tar on the host: the stream broke", "stream" end
  if status ~= 0 then
    return nil, ("tar on the host could not extract: %s"):format(stream:stderr():match("[^\n]+") or ("exit " .. status)), "remote"
  end
  return { files = (snapshot.tally(manifest)), sent_files = sent, sent_bytes = sent_bytes, reused_files = #from_live,
    unmade = unmade }
end

-- finish_root(t, dir, snap, live): the new tree's own mode, owner (as root) and mtime
-- as the snapshot recorded them (root_mode, root_mtime_ns, root_uid, root_gid; else the
-- live tree's mode), set once everything inside is written.
local function finish_root(t, dir, snap, live)
  local mode = snap.root_mode and ("%o"):format(snap.root_mode)
  local ns = math.tointeger(snap.root_mtime_ns)
  local stamp = ns and ("@%d.%09d"):format(ns // 1000000000, ns % 1000000000)
  local owner = snap.root_uid and snap.root_gid and ("%d:%d"):format(math.tointeger(snap.root_uid), math.tointeger(snap.root_gid))
  t:exec({ "sh", "-c", '[ -z "$5" ] || [ "$(id -u)" != 0 ] || chown -- "$5" "$1"; '
    .. 'if [ -n "$2" ]; then chmod "$2" -- "$1"; elif [ -e "$4" ]; then chmod --reference="$4" -- "$1"; fi; '
    .. '[ -z "$3" ] || touch -d "$3" -- "$1"', "sh", dir, mode or "", stamp or "", live, owner or "" })
end

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
    return nil, ("database %s: %s"):format(db.describe(s), stream:stderr():match("ERROR[^\n]*") or stream:stderr():match("[^\n]+") or ("exit " .. status)), "db"
  end
  return table.concat(out)
end

-- run_here(argv, what) -> true: a program run here, or raises saying what needs it.
local function run_here(argv, what)
  local r, msg = core.proc.run(argv)
  if not r or r.code ~= 0 then
    errors.fail("%s needs sqlite3 here: %s", what, msg or r.stderr:match("[^\n]+") or ("exit " .. r.code))
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
    if status ~= 0 then errors.fail("rewriting the SQLite database: %s", into:stderr():match("[^\n]+") or "sqlite3 failed") end
  end)
  os.remove(stored); os.remove(sql)
  if not ok then os.remove(db); error(err, 0) end
  return db
end

-- On the host: stdin into a temp file beside the database ($1) that replaces it only
-- once its SHA-256 is $2 (a stream cut short never does), with the old file's mode (and
-- owner, as root). The temp file goes however the script ends: it never outlives it.
local SQLITE_PUT = [[d=$(dirname -- "$1") && f=$(mktemp "$d/.tend-sqlite-XXXXXX") || exit 125
trap 'rm -f -- "$f"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
cat > "$f" || exit 1
sum=$(sha256sum < "$f") || { echo "no sha256sum on the host" >&2; exit 127; }
[ "${sum%% *}" = "$2" ] || { echo "the database file arrived incomplete" >&2; exit 1; }
if [ -e "$1" ]; then
  chmod --reference="$1" -- "$f" && { [ "$(id -u)" != 0 ] || chown --reference="$1" -- "$f"; } || exit 1
else chmod 644 -- "$f" || exit 1; fi
sync -- "$f" 2>/dev/null
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
    return nil, ("could not replace %s: %s"):format(path, stream:stderr():match("[^\n]+") or ("exit " .. status)), "remote"
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
  local tables, msg, code = client_run(t, s, { "-e", "SHOW TABLES" })
  if not tables then return nil, msg, code end
  local drops = { "SET FOREIGN_KEY_CHECKS = 0;" }
  for name in tables:gmatch("([^\n]+)") do drops[#drops + 1] = ("DROP TABLE `%s`;"):format(name:gsub("`", "``")) end
  drops = table.concat(drops, "\n") .. "\n"
  if not rewrite and t:which({ "zstd" }) then -- the dump crosses compressed, as stored
    local ok
    ok, msg, code = client_run(t, s, {}, function(stream) return stream:write(drops) end)
    if not ok then return nil, msg, code end
    if ctx then pause(ctx, "restore.db-emptied") end
    return client_run(t, s, {}, function(stream) return st:write_frame_to(object, stream) end, true)
  end
  return client_run(t, s, {}, function(stream)
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

-- copy_pairs(src, dst [, mapping]) -> {{from, to}, ...}: what a copy of src's database says
-- instead, as dst: its folders outside the web root (tend.outside.map), src's URL (plain,
-- and as JSON escapes it) and its web root, where they differ.
function M.copy_pairs(src, dst, mapping)
  local out = {}
  local function add(from, to)
    if from and to and from ~= to then out[#out + 1] = { from, to } end
  end
  -- its folders outside the web root first: a folder whose name begins with the web
  -- root's ("/var/www/a-files") is replaced whole
  for _, p in ipairs(outside.pairs_of(mapping)) do add(p[1], p[2]) end
  add(src.url, dst.url)
  if src.url and dst.url then add((src.url:gsub("/", "\\/")), (dst.url:gsub("/", "\\/"))) end
  add(src.path, dst.path)
  return out
end

-- hold(ctx, target) -> lock: while a restore of target runs it holds this lock, so that
-- no other run takes its journals for those of a killed restore. Raises (exit 4) when
-- a live restore holds it.
function M.hold(ctx, target)
  errors.check(core.fs.mkdir_p(ctx.home .. "/locks", 448))
  local lock, msg, code = core.fs.lock(("%s/locks/restore-%d.lock"):format(ctx.home, target.id), "exclusive", false)
  if lock then return lock end
  if code == "locked" then errors.raise(4, "%s: a restore of it is running; try again when it ends", target.name) end
  errors.fail("%s", msg)
end

-- recover(ctx, target [, opts]): roll back a restore of target that was interrupted
-- (killed, power cut, or failed) by what its journals say: the old tree back, the
-- staging tree gone, the database back from the safety dump. opts: held (the caller
-- holds the lock: a restore, or the one that wrote the journals), own (that one: no
-- warning), half (one journal only). Returns whether there was anything to do; raises
-- (exit 4) while another restore of target runs.
function M.recover(ctx, target, opts)
  opts = opts or {}
  local in_process, half = opts.own, opts.half
  local names = {}
  for _, name in ipairs(core.fs.list(ctx.home .. "/journal") or {}) do
    local h = name:match("^restore%-" .. target.id .. "%-(%a+)%.json$")
      or (name == ("restore-%d.json"):format(target.id) and "both") -- written by tend before 0.3
    if h and (not half or h == half) then names[#names + 1] = name end
  end
  if #names == 0 then return false end
  -- journals: a killed restore's only when no live restore holds the lock
  local held <close> = not opts.held and M.hold(ctx, target) or nil
  table.sort(names, function(a, b) return a:find("files", 1, true) and not b:find("files", 1, true) end)
  local t, st = target:transport(), snapshot.store(ctx)
  for i, name in ipairs(names) do
    local path = ctx.home .. "/journal/" .. name
    local j = cjson.decode(core.fs.read(path) or "{}")
    if i == 1 and not in_process then
      ctx:warn("%s: a restore was interrupted (%s); putting the instance back as it was", target.name,
        os.date("!%Y-%m-%d %H:%M UTC", j.started_at or 0))
    end
    -- A step that cannot be done now (the host unreachable) keeps the journal for the next run.
    local ok, err = pcall(function()
      if j.old and exists(t, j.old) then
        local root = j.root or target.path -- the real folder, when the web root is a symlink
        if exists(t, root) then remove_tree(t, root) end
        errors.check(t:rename(j.old, root))
      end
      if j.staging and exists(t, j.staging) then remove_tree(t, j.staging) end
      for _, o in ipairs(j.outside or {}) do -- the folders of data outside the web root
        if o.old and exists(t, o.old) then
          if exists(t, o.root) then remove_tree(t, o.root) end
          errors.check(t:rename(o.old, o.root))
        elseif o.fresh and o.swapping and not exists(t, o.staging) and exists(t, o.root) then
          remove_tree(t, o.root) -- made by the restore, where there was none
        end
        if exists(t, o.staging) then remove_tree(t, o.staging) end
      end
    end)
    if not ok then
      errors.fail("%s: the files " .. UNRECOVERED .. " yet (%s); the next tend job on %s finishes it (journal %s)",
        target.name, errors.message(err), target.name, path)
    end
    if j.safety then
      local settings = errors.check(target:db_settings(ctx:vault()))
      local ok, msg = st:verify(j.safety)
      if ok then ok, msg = M.load_db(t, st, settings, j.safety) end
      if not ok then
        errors.fail("%s: the database " .. UNRECOVERED .. " from its safety dump (%s): %s; fix that and run "
          .. "any tend job on %s to try again, or remove %s to keep the database as it is now",
          target.name, j.safety:sub(1, 12), msg, target.name, path)
      end
    end
    core.fs.remove(path)
  end
  return true
end

-- pinned(ctx) -> {hex = true}: the objects that journals name (safety dumps of restores
-- that were interrupted and not rolled back yet). gc keeps them.
function M.pinned(ctx)
  local out = {}
  for _, name in ipairs(core.fs.list(ctx.home .. "/journal") or {}) do
    local text = core.fs.read(ctx.home .. "/journal/" .. name)
    local ok, j = pcall(cjson.decode, text or "")
    if ok and type(j) == "table" and type(j.safety) == "string" then out[j.safety] = true end
  end
  return out
end

-- safety_dump(ctx, target, settings, snap, say) -> object | nil: the database as it is
-- now, into the store, and the "db" journal that names it (kept for the caller to clear).
local function safety_dump(ctx, target, settings, snap, say)
  local t, st = target:transport(), snapshot.store(ctx)
  local safety
  -- An absent SQLite file has nothing to protect; any other database gets a safety dump.
  if settings.driver ~= "sqlite" or t:stat(settings.path) then
    say("safety dump of %s", db.describe(settings))
    safety = errors.check(backup.dump_db(t, settings, st)).object
    errors.check(st:sync()) -- a later run must find it, even after a kill
    -- read back whole: nothing is dropped on the strength of a copy that would not load
    local ok, msg = st:verify(safety)
    if not ok then errors.fail("the safety dump of %s does not read back: %s; nothing changed", db.describe(settings), msg) end
  end
  journal_write(ctx, target, "db", { started_at = os.time(), snapshot = snap.id, safety = safety })
  return safety
end

-- load_snapshot_db(ctx, target, settings, snap, say): the snapshot's dump loaded; on
-- failure the database goes back to its safety dump, and this raises.
local function load_snapshot_db(ctx, target, settings, snap, say, rewrites)
  say(#rewrites > 0 and "loading the snapshot's database, rewritten for %s" or "loading the snapshot's database", target.name)
  local ok, msg = M.load_db(target:transport(), snapshot.store(ctx), settings, snap.db_object, ctx, rewrites)
  if not ok then
    local rok, rerr = pcall(M.recover, ctx, target, { held = true, own = true, half = "db" })
    if not rok then errors.fail("%s; %s", msg, errors.message(rerr)) end
    errors.fail("%s", msg)
  end
end

-- as_was(msg) -> msg, saying the instance is as it was unless a rollback failed (then msg
-- already says what is not back, and what to do).
local function as_was(msg)
  if msg:find(UNRECOVERED, 1, true) then return msg end
  return msg .. " (the instance is as it was)"
end

-- check_dump(ctx, snap): the dump that will replace the database read back whole, before
-- anything is touched; raises naming the snapshot when it does not.
local function check_dump(ctx, snap)
  local ok, msg = snapshot.store(ctx):verify(snap.db_object)
  if not ok then errors.fail("snapshot %d: its database dump does not read back (%s)", snap.id, msg) end
end

-- restore_db(...) -> summary part: the steps, for --db-only and for the helper.
local function restore_db(ctx, target, settings, snap, say, rewrites)
  check_dump(ctx, snap)
  local safety = safety_dump(ctx, target, settings, snap, say)
  load_snapshot_db(ctx, target, settings, snap, say, rewrites)
  return { safety_object = safety, db_bytes = snap.db_bytes }
end

-- The database half of a restore that has both halves runs in a helper process (its own
-- SSH session), while this one builds the files: a child `tend restore --db-only` that
-- knows it is a helper by TEND_RESTORE_HELPER_OF, keeps its journal for us to clear, and
-- dies if we do.
local HELPER = "TEND_RESTORE_HELPER_OF"

local function start_helper(ctx, inst, snap, target)
  local argv = { "--json", "--quiet" }
  if ctx.yes then argv[#argv + 1] = "--yes" end
  for _, a in ipairs({ "restore", inst.name, tostring(snap.id), "--db-only" }) do argv[#argv + 1] = a end
  if target.name ~= inst.name then argv[#argv + 1] = "--to"; argv[#argv + 1] = target.name end
  return child.spawn(ctx, argv, { [HELPER] = tostring(core.proc.pid()) })
end

-- finish_helper(helper) -> summary part | nil, message: its result, as the helper said it.
local function finish_helper(helper)
  local o = child.finish(helper)
  if o.code == 0 and type(o.result) == "table" then
    return { safety_object = o.result.safety_object, db_bytes = math.tointeger(o.result.db_bytes) }
  end
  return nil, o.error or "the database half gave no result"
end

-- prepare_copy(target, t, staging, plan): a copy's own settings in its new tree: its
-- config files as planned (read back there), its app's caches emptied (they hold the
-- source's pages), no outgoing mail unless it is production, and the app's own fixups.
local function prepare_copy(target, t, staging, plan)
  if plan then copy_config.write(plan, t, staging) end
  local adapter = apps.get(target.app)
  for _, dir in ipairs(adapter.caches or {}) do
    local r = t:exec({ "sh", "-c", '[ ! -d "$1" ] || find "$1" -mindepth 1 -delete', "sh", staging .. "/" .. dir })
    if not r or r.code ~= 0 then errors.fail("%s: could not empty its cache %s", target.name, dir) end
  end
  if adapter.mail_off and not target:is_production() then errors.check(adapter.mail_off(t, staging)) end
  if adapter.after_copy then errors.check(adapter.after_copy(t, staging, target)) end
end

-- confirm_production(target, snap): an in-place restore of a production instance goes on
-- only when the operator types its name at a terminal; elsewhere (cron, a pipe) it
-- needs --yes-overwrite-production. Raises a usage error otherwise, before any change.
local function confirm_production(target, snap)
  local flag = "add --yes-overwrite-production to restore over it"
  if not (core.fs.isatty(0) and core.fs.isatty(2)) then
    errors.usage("%s is tagged production: %s", target.name, flag)
  end
  io.stderr:write(("%s is tagged production. Restoring snapshot %d replaces its files and database.\n"
    .. "Type %s to go on: "):format(target.name, snap.id, target.name))
  io.stderr:flush()
  local answer = io.read("l")
  if answer ~= target.name then errors.usage("%s: not confirmed; nothing restored (or %s)", target.name, flag) end
end

-- run(ctx, inst, snap, opts) -> summary.  opts: files_only, db_only, target (an Instance,
-- default inst), progress(fmt, ...), overwrite_production, mapping (tend.outside.mapping
-- of the snapshot's folders outside the web root, when the caller has it), prepare(t, staging) (a hook
-- for the new tree before it goes live: clone puts its maintenance page there). Raises
-- on failure, with the target as it was; a restore killed at any point is rolled back
-- by the next restore or backup (recover).
-- Order: build the staging tree (while the database half runs beside it), then swap it
-- in; the old tree is deleted in the background once nothing can fail any more.
-- Into another instance it is a copy: the target keeps its own config file, its
-- database gets the snapshot's rewritten for its URL and path (copy_pairs), and the
-- catalog records which snapshot of which instance it holds (M.copy_of).
function M.run(ctx, inst, snap, opts)
  opts = opts or {}
  local say = opts.progress or function() end
  local target = opts.target or inst
  local t, st = target:transport(), snapshot.store(ctx)
  local copy = target.id ~= inst.id
  local summary = { snapshot = snap.id, instance = inst.name, target = target.name }
  local helper_of = os.getenv(HELPER)
  -- its data outside the web root: where each folder goes (a copy's own), known before
  -- any change
  local manifest = snapshot.manifest(ctx:catalog(), snap)
  local roots = outside.roots(manifest)
  local mapping = opts.mapping or outside.mapping(ctx, inst, target, roots)
  -- what the copy's config files will hold, known (or refused) before any change
  local plan = copy and not opts.db_only and (opts.config_plan or copy_config.plan(ctx, inst, target, snap, mapping)) or nil
  -- gc (exclusive) must not collect the snapshot's objects or the safety dump meanwhile
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local held <close> = not helper_of and M.hold(ctx, target) or nil -- its journals are this run's
  if helper_of then core.proc.die_with_parent(tonumber(helper_of)) else
    if target:is_production() and not opts.overwrite_production then
      if copy then
        errors.usage("%s is tagged production: add --yes-overwrite-production to overwrite it with %s's data", target.name, inst.name)
      end
      confirm_production(target, snap)
    end
    M.recover(ctx, target, { held = true })
  end
  local rewrites = copy and M.copy_pairs(inst, target, mapping) or {}

  local settings = not opts.files_only and snap.db_object and errors.check(target:db_settings(ctx:vault()))
  if opts.db_only then
    if settings then
      local ok, part = pcall(restore_db, ctx, target, settings, snap, say, rewrites)
      if not ok then errors.fail("%s", helper_of and errors.message(part) or as_was(errors.message(part))) end
      for k, v in pairs(part) do summary[k] = v end
      if not helper_of then journal_clear(ctx, target, "db") end
    end
    if copy and not helper_of then M.record_copy(ctx, inst, target, snap, opts.kind or "data") end
    return summary
  end

  -- A web root that is a symlink (current -> releases/r1) stays one: the tree is built
  -- and swapped beside the folder it points to.
  local root = real_path(t, target.path)
  local parent, base = split(root)
  local tag = ("%d-%d"):format(os.time(), math.random(1, 1 << 30))
  local staging = ("%s/.tend-restore-%s-%s"):format(parent, base, tag)
  local old = ("%s/.tend-old-%s-%s"):format(parent, base, tag)
  local bad, why = snapshot.unsafe(manifest)
  if bad then errors.fail("snapshot %d: unsafe path %q (%s); nothing restored", snap.id, bad, why) end
  local web, under, own = outside.split(manifest, roots)
  -- each folder outside the web root is built beside itself and swapped in with it
  local trees = {}
  for i, m in ipairs(mapping) do
    local p, b = split(m.to)
    local attrs = own[m.from] or {}
    trees[i] = { root = m.to, rows = under[m.from], fresh = not exists(t, m.to),
      staging = ("%s/.tend-restore-%s-%s"):format(p, b, tag), old = ("%s/.tend-old-%s-%s"):format(p, b, tag),
      attrs = outside.root_attrs(attrs) }
  end
  -- journal_outside(swapping) -> what the files journal says of them
  local function journal_outside(swapping)
    local out = {}
    for i, tr in ipairs(trees) do
      out[i] = { root = tr.root, staging = tr.staging, fresh = tr.fresh, old = swapping and tr.old or nil,
        swapping = swapping or nil }
    end
    return out
  end
  local keep = {} -- a copy keeps its own config files (copy_config.write rewrites them)
  if copy then for _, f in ipairs(target:config_paths()) do keep[f] = true end end

  -- A SQLite file may live in the web root: it is loaded after the swap, into the new tree.
  local sqlite = settings and settings.driver == "sqlite"
  local helper = settings and not sqlite and start_helper(ctx, inst, snap, target)
  -- fail(msg): stop the helper, put back whatever was changed, and raise.
  local function fail(msg)
    say("restore failed; putting the instance back")
    if helper then child.close(helper) end
    local rok, rerr = pcall(M.recover, ctx, target, { held = true, own = true })
    if not rok then errors.fail("%s; %s", msg, errors.message(rerr)) end
    errors.fail("%s", as_was(msg))
  end

  if sqlite then
    local cok, cerr = pcall(check_dump, ctx, snap)
    if not cok then errors.fail("%s", as_was(errors.message(cerr))) end
    summary.safety_object = safety_dump(ctx, target, settings, snap, say)
  end
  journal_write(ctx, target, "files", { started_at = os.time(), snapshot = snap.id, staging = staging, root = root,
    outside = journal_outside(false) })
  say("building %d entries in %s", #web, staging)
  local function progress(files, bytes) return require("tend.progress").new(ctx, target.name, files, bytes) end
  local built, msg = build(t, st, web, staging, root, keep, progress)
  if not built then fail(msg) end
  for _, tr in ipairs(trees) do
    say("building %d entries of %s in %s", #tr.rows, tr.root, tr.staging)
    local part, omsg = build(t, st, tr.rows, tr.staging, tr.root, {}, progress)
    if not part then fail(omsg) end
    for _, k in ipairs({ "files", "sent_files", "sent_bytes", "reused_files" }) do built[k] = built[k] + part[k] end
    for _, u in ipairs(part.unmade) do built.unmade[#built.unmade + 1] = tr.root .. "/" .. u end
    finish_root(t, tr.staging, tr.attrs, tr.root)
  end
  for k, v in pairs(built) do summary[k] = v end
  say("%d files sent, %d taken from the tree in place", built.sent_files, built.reused_files)
  if #built.unmade > 0 then
    ctx:warn("%s: %d sockets or device nodes of the snapshot were not made (tar cannot carry them): %s",
      target.name, #built.unmade, table.concat(built.unmade, ", "))
  end
  finish_root(t, staging, snap, root)
  local pok, perr = pcall(function()
    if copy then prepare_copy(target, t, staging, plan) end
    if opts.prepare then opts.prepare(t, staging) end
  end)
  if not pok then fail(errors.message(perr)) end

  if helper then
    say("waiting for the database")
    local part, herr = finish_helper(helper)
    helper = nil
    if not part then fail(herr) end
    summary.safety_object, summary.db_bytes = part.safety_object, part.db_bytes
  elseif settings and not sqlite then -- no helper could start: the database half here
    local ok, part = pcall(restore_db, ctx, target, settings, snap, say, rewrites)
    if not ok then fail(errors.message(part)) end
    for k, v in pairs(part) do summary[k] = v end
  end

  journal_write(ctx, target, "files", { started_at = os.time(), snapshot = snap.id, staging = staging, old = old, root = root,
    outside = journal_outside(true) })
  local ok, err = pcall(function()
    if t:stat(root) then errors.check(t:rename(root, old)) end
    errors.check(t:rename(staging, root))
    for _, tr in ipairs(trees) do
      pause(ctx, "restore.outside-swap")
      if t:stat(tr.root) then errors.check(t:rename(tr.root, tr.old)) end
      errors.check(t:rename(tr.staging, tr.root))
    end
  end)
  if not ok then fail(errors.message(err)) end
  if sqlite then
    local lok, lerr = pcall(load_snapshot_db, ctx, target, settings, snap, say, rewrites)
    if not lok then fail(errors.message(lerr)) end
    summary.db_bytes = snap.db_bytes
  end
  if copy and #mapping > 0 then -- read back: the copy keeps its data in folders of its own
    local now = outside.folders(ctx, target, nil, true)
    local f, r = outside.shared(now, roots)
    if f then fail(("%s keeps data in %s after the copy, which is %s's %s"):format(target.name, f, inst.name, r)) end
  end
  pause(ctx, "restore.swapped")
  journal_clear(ctx, target, "db")
  journal_clear(ctx, target, "files")
  local olds = { old }
  for _, tr in ipairs(trees) do olds[#olds + 1] = tr.old end
  t:exec({ "sh", "-c", 'rm -rf -- "$@" </dev/null >/dev/null 2>&1 &', "sh", table.unpack(olds) })
  if copy then
    M.record_copy(ctx, inst, target, snap, opts.kind or "copy")
    outside.declare(ctx, target, mapping, say)
  end
  return summary
end

M.build = build
M.finish_root = finish_root

-- record_copy(ctx, src, dst, snap, kind): dst now holds snap of src.
function M.record_copy(ctx, src, dst, snap, kind)
  ctx:catalog():run("INSERT INTO copies(instance_id, source_id, snapshot_id, kind, at) VALUES (?, ?, ?, ?, ?) "
    .. "ON CONFLICT(instance_id) DO UPDATE SET source_id = excluded.source_id, snapshot_id = excluded.snapshot_id, "
    .. "kind = excluded.kind, at = excluded.at", dst.id, src.id, snap.id, kind, os.time())
end

-- copy_of(ctx, dst) -> {source_id, snapshot_id, kind, at} | nil: what dst was last made from.
function M.copy_of(ctx, dst)
  return ctx:catalog():first("SELECT * FROM copies WHERE instance_id = ?", dst.id)
end

return M
