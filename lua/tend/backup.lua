-- backup: one snapshot of an instance, agentless (the host needs sh, find, tar, mktemp
-- and its database's dump client). Only new or changed files cross the wire; the
-- snapshot is recorded last, in one transaction, so a failed backup leaves none.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local db = require "tend.db"
local outside = require "tend.outside"
local child = require "tend.child"

local M = {}

-- find's %y letters, as manifests name them
local TYPES = { f = "file", d = "dir", l = "link", p = "fifo", s = "socket", c = "device", b = "device" }
M.TYPES = TYPES

-- exclusions(inst, extra) -> patterns: the app's ignore list (caches, temp), the
-- instance's own (instance add/edit --exclude, checked when stored), then this run's
-- --exclude (checked here).
function M.exclusions(inst, extra)
  local out = {}
  for _, p in ipairs(require("tend.apps").get(inst.app).ignore or {}) do out[#out + 1] = p end
  for _, p in ipairs(inst:excludes()) do out[#out + 1] = p end
  for _, p in ipairs(extra or {}) do out[#out + 1] = M.check_pattern(p) end
  return out
end

-- check_pattern(p) -> the pattern as find sees it, or raises a usage error. A pattern
-- with a slash matches the path from the web root (`wp-content/cache/*`); one without
-- matches a name anywhere (`*.log`). A matching directory is skipped whole.
function M.check_pattern(p)
  local q = p:gsub("^/+", ""):gsub("/+$", "")
  if q == "" or q == "." or q:find("\0", 1, true) or ("/" .. q .. "/"):find("/%.%./") then
    errors.usage("bad exclude pattern %q", p)
  end
  return q
end

-- type, mode, size, mtime, path, link target, ctime, device:inode, link count, owner
-- and group (numbers). ctime is there because a writer can put a file's mtime back,
-- never its ctime (see unchanged()); the inode and link count find the names of one
-- file (hard links).
local FORMAT = "%y\\0%m\\0%s\\0%T@\\0%p\\0%l\\0%C@\\0%D:%i\\0%n\\0%U\\0%G\\0"
local FIELDS = 11

-- find_argv(argv, exclude [, format]) -> argv: `find ...` (argv's start) with every path
-- matching a checked pattern pruned, printing format for the rest (without format, the
-- expression is left open for the caller's own action).
function M.find_argv(argv, exclude, format)
  if #exclude > 0 then
    argv[#argv + 1] = "("
    for i, q in ipairs(exclude) do
      if i > 1 then argv[#argv + 1] = "-o" end
      local slash = q:find("/", 1, true)
      argv[#argv + 1], argv[#argv + 2] = slash and "-path" or "-name", slash and ("./" .. q) or q
    end
    table.move({ ")", "-prune", "-o" }, 1, 3, #argv + 1, argv)
  end
  if format then argv[#argv + 1], argv[#argv + 2] = "-printf", format end
  return argv
end

-- squeezed(t, argv) -> argv that runs argv on the host with its output compressed by
-- the host's zstd (or gzip) when it has one, keeping argv's exit status: fewer bytes
-- cross the wire, and archive.store_stream stores them decompressed. (Fds 5 and 6 carry
-- the status; fd 3 is left to argv.)
local function squeezed(t, argv)
  if t.squeezer == nil then t.squeezer = t:zstd() and "zstd" or t:which({ "gzip" }) or false end
  local z = t.squeezer
  if not z then return argv end
  local squeeze = z == "zstd" and "zstd -1 -q -c -T0" or "gzip -1 -c"
  return { "sh", "-c", "exec 6>&1; s=$( { { \"$@\" 5>&- 6>&-; echo $? >&5; } | " .. squeeze
    .. " >&6; } 5>&1 ); exit ${s:-1}", "sh", table.unpack(argv) }
end

-- listing(t, root, exclude [, settle]) -> the host's raw listing, the host's clock when
-- it began | nil, msg, code: one round trip. exclude: checked patterns (M.exclusions).
-- settle: seconds to wait first (where sleep takes fractions), for tend.written.
function M.listing(t, root, exclude, settle)
  -- the clock to the nanosecond where date can say so (GNU), else to the second
  local script = 'date +%s.%N && exec find "$@"'
  if settle then script = ("sleep %.2f 2>/dev/null; %s"):format(settle, script) end
  local argv = M.find_argv({ "sh", "-c", script, "sh", "." }, exclude, FORMAT)
  -- over SSH compressed on the host when it has zstd: at about 110 bytes a path, a
  -- 15,000-file tree's listing is 1.7 MB, a seventh of a second at 100 Mbit/s
  local packed = tostring(t) ~= "local" and t:zstd()
  if packed then argv = squeezed(t, argv) end
  local r, msg, code = t:exec(argv, { cwd = root })
  if not r then return nil, msg, code end
  if r.code ~= 0 then
    return nil, ("list %s: %s"):format(root, require("tend.transport").why(r)), "remote"
  end
  local out = r.stdout
  if packed then
    out, msg, code = core.listing.decompress(out)
    if not out then return nil, ("list %s: %s"):format(root, msg), code end
  end
  local sec, frac, raw = out:match("^(%d+)%.?(%d*)[^\n]*\n(.*)$")
  return raw or out, sec and tonumber(sec .. (frac ~= "" and ("." .. frac) or ""))
end

-- ns(text) -> find's "SECONDS.FRACTION" as whole nanoseconds (an integer: a double
-- cannot hold them).
function M.ns(text)
  local sec, frac = text:match("^(%d+)%.?(%d*)")
  if not sec then return nil end
  return math.tointeger(tonumber(sec)) * 1000000000 + (math.tointeger(tonumber(((frac or "") .. "000000000"):sub(1, 9))) or 0)
end

-- parse(raw) -> {path = {path, type, mode, size, mtime, mtime_ns, link, ctime, inode,
-- nlink, uid, gid}}, root: the web root's own {mode, mtime_ns, uid, gid}. mtime keeps
-- find's fraction (a double holds microseconds: two writes of the same size within one
-- second are still two versions); mtime_ns is exact. In C (engine/listing.c): every
-- backup, copy and restore reads one or more listings of the whole tree.
M.parse = core.listing.parse

-- merge_outside(listing, folder, raw): the listing of a folder outside the web root into
-- the web root's, under the folder's absolute path, with the folder's own row; its
-- inodes are its own (a hard link never joins two trees).
function M.merge_outside(listing, folder, raw)
  local under, own = M.parse(raw)
  for path, e in pairs(under) do
    e.path, e.inode = folder .. "/" .. path, e.inode and (folder .. "|" .. e.inode)
    listing[e.path] = e
  end
  own = own or {}
  listing[folder] = { path = folder, type = "dir", mode = own.mode, size = 0, uid = own.uid, gid = own.gid,
    mtime_ns = own.mtime_ns, mtime = own.mtime_ns and own.mtime_ns / 1e9 or 0 }
end

-- link_groups(listing): every file that is one of several names of an inode in the tree
-- gets hardlink = the group's first path (by byte order), which is stored; the others
-- are restored as links to it.
local function link_groups(listing)
  local groups = {}
  for path, e in pairs(listing) do
    if e.type == "file" and (e.nlink or 1) > 1 and e.inode then
      groups[e.inode] = groups[e.inode] or {}
      table.insert(groups[e.inode], path)
    end
  end
  for _, g in pairs(groups) do
    if #g > 1 then
      table.sort(g)
      for i = 2, #g do listing[g[i]].hardlink = g[1] end
    end
  end
end

-- settled(ctime, at) -> whether a write after `at` (the host's clock) must show a later
-- ctime. Inode times come from the kernel's coarse clock (a tick, at most 10 ms, behind
-- the one date reads), or in whole seconds on file systems that keep no fractions.
function M.settled(ctime, at)
  if ctime == math.floor(ctime) then return ctime < math.floor(at) end
  return ctime < at - 0.1
end

-- unchanged(now, before, since) -> whether the file is the one the last snapshot read:
-- same type, mode, size and mtime, and (since: the host's clock when that snapshot's
-- listing began) no change of its inode since, by ctime, which a writer cannot put
-- back: a file swapped for one of the same size with the old mtime is read again.
local function unchanged(now, before, since)
  return before and before.type == now.type and before.mode == now.mode and before.size == now.size
    and before.mtime == now.mtime and before.sha256 ~= nil
    and (not since or (now.ctime and M.settled(now.ctime, since)))
end

-- A script's start: $f, a temp file on the host that the same script removes however
-- it ends (a lost connection ends it with a signal, or with the pipe closed).
local SELF_CLEANING_TEMP = [[f=$(mktemp) || exit 125
trap 'rm -f -- "$f"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
]]

-- The list of paths crosses on stdin into the temp file (tar reads its list from a
-- file, so the stream is never stalled). GNU tar is told to find holes (a sparse file
-- crosses as its data); bsdtar finds them by itself.
local FETCH = SELF_CLEANING_TEMP .. [[cat > "$f" || exit 125
case $(tar --version 2>/dev/null) in *GNU*) s=--sparse ;; *) s= ;; esac
tar --null --no-recursion --ignore-failed-read $s -T "$f" -cf -]]

-- fetch(t, root, paths, st [, progress]) -> {path = entry} | nil, msg: one tar stream,
-- compressed on the host when it can (archive.store_tar reads it as it comes).
local function fetch(t, root, paths, st, progress)
  local list = {}
  for i, p in ipairs(paths) do list[i] = "./" .. p end
  local stream, msg, code = t:open(squeezed(t, { "sh", "-c", FETCH }), { cwd = root, stdin_pipe = true })
  if not stream then return nil, msg, code end
  local ok, wmsg, wcode = stream:write(table.concat(list, "\0") .. "\0")
  if ok then ok, wmsg, wcode = stream:send_eof() end
  if not ok then stream:close(); return nil, wmsg, wcode end
  local entries
  entries, msg, code = core.archive.store_tar(stream, st, progress)
  local status = stream:wait()
  if not entries then return nil, msg, code end
  if status ~= 0 then
    return nil, ("tar on the host failed: %s"):format(require("tend.transport").stream_why(stream, status)), "remote"
  end
  local by = {}
  for _, e in ipairs(entries) do by[e.path] = e end
  return by
end

-- collect(...) -> manifest, files, bytes, sent, listing digest: the listing
-- against the previous manifest; new and changed files fetched, one tar stream a tree.
function M.collect(ctx, inst, t, st, listing, before, digest, say, since, roots)
  local manifest, wanted = {}, {}
  link_groups(listing)
  for path, e in pairs(listing) do
    local old = before[path]
    if e.type == "file" and not e.hardlink and unchanged(e, old, since) then e.sha256, e.sparse = old.sha256, old.sparse end
    -- a device node's number is only in tar's header (find cannot print it)
    if (e.type == "file" and not e.hardlink and not e.sha256) or e.type == "device" then wanted[#wanted + 1] = path end
    manifest[#manifest + 1] = e
  end
  table.sort(wanted)

  local sent = 0
  if #wanted > 0 then
    say("fetching %d new or changed files", #wanted)
    local total = 0
    for _, p in ipairs(wanted) do total = total + (listing[p].type == "file" and listing[p].size or 0) end
    local update, finish = require("tend.progress").new(ctx, inst.name, #wanted, total)
    local got = {}
    -- one tar stream per tree: the web root's, then each folder outside it
    for _, tree in ipairs(outside.group(wanted, roots or {})) do
      local part, fmsg = fetch(t, tree.root or inst.path, tree.paths, st, update)
      if not part then finish() end
      errors.check(part, fmsg)
      for p, e in pairs(part) do got[tree.root and (tree.root .. "/" .. p) or p] = e end
    end
    finish()
    local kept = {}
    for _, e in ipairs(manifest) do
      local g = got[e.path]
      if e.type == "file" and not e.sha256 and not e.hardlink then
        if g and g.sha256 then
          -- tar's size and mode are what was stored; the listing's mtime is the precise one
          e.sha256, e.size, e.mode, e.sparse = g.sha256, g.size, g.mode, g.sparse
          sent = sent + snapshot.data_bytes(g)
          kept[#kept + 1] = e
        else -- it vanished between listing and reading: not in this snapshot, and this
          digest = nil -- manifest is not the listing's, so no later run may reuse it
        end
      else
        if e.type == "device" and g then e.rdev = g.rdev end
        kept[#kept + 1] = e
      end
    end
    manifest = kept
  end
  -- the other names of a file: its leader's content (and gone with it, if it vanished)
  local kept = {}
  for _, e in ipairs(manifest) do
    local leader = e.hardlink and listing[e.hardlink]
    if leader then e.sha256, e.size, e.mode, e.sparse = leader.sha256, leader.size, leader.mode, leader.sparse end
    if not e.hardlink or e.sha256 then kept[#kept + 1] = e else digest = nil end
  end
  manifest = kept
  local files, bytes = snapshot.tally(manifest)
  return manifest, files, bytes, sent, digest
end

-- collect_all(ctx, inst, t, st, exclude) -> manifest, files, bytes, sent: the whole tree
-- in one tar stream, for a host whose find cannot list it (no -printf: BSD, busybox).
-- Every file crosses; the store still keeps each once.
function M.collect_all(ctx, inst, t, st, exclude)
  local argv = { "tar", "-cf", "-" }
  for _, q in ipairs(exclude) do argv[#argv + 1] = "--exclude=" .. q end
  argv[#argv + 1] = "."
  local stream = errors.check(t:open(squeezed(t, argv), { cwd = inst.path }))
  local entries, msg, code = core.archive.store_tar(stream, st)
  local status = stream:wait()
  errors.check(entries, msg, code)
  if status ~= 0 then
    errors.fail("tar on the host failed: %s", require("tend.transport").stream_why(stream, status))
  end
  local manifest, sent = {}, 0
  for _, e in ipairs(snapshot.resolve_hardlinks(entries)) do
    if e.path ~= "." then
      local file = e.type == "file"
      manifest[#manifest + 1] = snapshot.row(e)
      if file and not e.hardlink then sent = sent + snapshot.data_bytes(e) end
    end
  end
  local files, bytes = snapshot.tally(manifest)
  return manifest, files, bytes, sent
end

-- dump_stream(t, argv, st [, fds]) -> hex, size, tail, stream | nil, msg, code: argv's
-- output into the store, compressed on the way when the host can.
local function dump_stream(t, argv, st, fds)
  local stream, msg, code = t:open(squeezed(t, argv), { fds = fds })
  if not stream then return nil, msg, code end
  local r = table.pack(core.archive.store_stream(stream, st))
  local status = stream:wait()
  if not r[1] then return nil, r[2], r[3] end
  return r[1], r[2], r[4], stream, status
end

-- A SQLite database copied whole (.backup: consistent while the site writes) into the
-- temp file (mktemp's names hold no quote), then sent.
local SQLITE_COPY = SELF_CLEANING_TEMP .. [[sqlite3 "$1" ".backup '$f'" >&2 || exit 1
cat -- "$f"]]

-- The dump's flags. --skip-dump-date: an unchanged database gives the same dump, byte
-- for byte (stored once, and recognised by the look below).
local DUMP_FLAGS = { "--single-transaction", "--quick", "--routines", "--triggers", "--hex-blob", "--skip-dump-date" }

-- How the server describes the database's tables: names, engines, when each was made
-- and last written, the next AUTO_INCREMENT, and rows and sizes where they are exact
-- (InnoDB's are estimates that its statistics move without a write). Its digest is the
-- snapshot's db_signal.
local LOOK_SQL = "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, CREATE_TIME, UPDATE_TIME, AUTO_INCREMENT, TABLE_COLLATION, "
  .. "IF(ENGINE = 'InnoDB', NULL, TABLE_ROWS), IF(ENGINE = 'InnoDB', NULL, DATA_LENGTH) "
  .. "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME"

-- The look before a dump, one round trip: which dump client the host has, the digest of
-- LOOK_SQL's answer and, when that equals the last snapshot's ($2), the SHA-256 of a
-- dump taken into sha256sum on the host, nothing crossing. A dump with the last
-- snapshot's object's SHA-256 is that object byte for byte: the snapshot takes it again.
-- What decides is that hash; the digest only spares the second dump when the database
-- did change (a table written within the second of the last look still shows in the
-- hash). The option file is read from fd 3 once into the shell's memory and piped to each
-- client: never a file on the host. A client that fails says nothing and the dump runs.
local DB_LOOK = [[o=$(cat <&3) || exit 125
exec 3<&-
d=$(command -v mariadb-dump || command -v mysqldump) || exit 0
echo "client ${d##*/}"
q=$(command -v mariadb || command -v mysql) || exit 0
s=$(printf '%s\n' "$o" | "$q" --defaults-extra-file=/dev/fd/3 --batch --skip-column-names -e "$1" "$3" 3<&0 </dev/null) || exit 0
s=$(printf '%s' "$s" | sha256sum) || exit 0
echo "signal ${s%% *}"
[ "${s%% *}" = "$2" ] || exit 0
shift 3
s=$(printf '%s\n' "$o" | "$d" --defaults-extra-file=/dev/fd/3 "$@" 3<&0 </dev/null 2>/dev/null | sha256sum) || exit 0
echo "dump ${s%% *}"]]

-- look(t, s, prev) -> {client=, signal=, dump=} (what the host said) | nil, msg, code.
-- prev: the last snapshot's {signal, object} or nil.
local function look(t, s, prev)
  local argv = { "sh", "-c", DB_LOOK, "sh", LOOK_SQL, prev and prev.signal or "", s.name, table.unpack(DUMP_FLAGS) }
  argv[#argv + 1] = s.name
  local r, msg, code = t:exec(argv, { fds = { [3] = db.option_file(s) } })
  if not r then return nil, msg, code end
  if r.code ~= 0 then return nil, ("%s: %s"):format(tostring(t), require("tend.transport").why(r)), "remote" end
  local said = {}
  for k, v in r.stdout:gmatch("(%a+) (%S+)") do said[k] = v end
  return said
end

-- dump_db(t, settings, st [, prev]) -> {object, bytes, signal, same} | nil, msg, code.
-- prev: the last snapshot's database {object, bytes, signal}: when the host's dump
-- hashes to prev.object (and the store holds it, whole), that object is the dump and
-- nothing crosses (same = true). The password reaches each client as its option file through a
-- pipe on fd 3, never a file on the host.
function M.dump_db(t, s, st, prev)
  if s.driver == "sqlite" then
    local hex, size, _, stream, status = dump_stream(t, { "sh", "-c", SQLITE_COPY, "sh", s.path }, st)
    if not hex then return nil, size, _ end
    if status ~= 0 then
      return nil, ("database %s: %s"):format(db.describe(s), require("tend.transport").stream_why(stream, status)), "db"
    end
    return { object = hex, bytes = size }
  end
  if prev and not (prev.object and st:has(prev.object)) then prev = nil end
  local said, lmsg, lcode = look(t, s, prev)
  if not said then return nil, lmsg, lcode end
  if not said.client then return nil, ("no mariadb-dump or mysqldump on %s"):format(tostring(t)), "enoent" end
  -- the object read back whole first: a damaged one is not taken again, the dump
  -- below stores a good copy over it (the backup heals it)
  if prev and said.dump and said.dump == prev.object and st:verify(prev.object) then
    return { object = prev.object, bytes = prev.bytes, signal = said.signal, same = true }
  end
  local argv = { said.client, "--defaults-extra-file=/dev/fd/3", table.unpack(DUMP_FLAGS) }
  argv[#argv + 1] = s.name
  local hex, size, tail, stream, status = dump_stream(t, argv, st, { [3] = db.option_file(s) })
  if not hex then return nil, size, tail end
  if status ~= 0 or not tail:find("%-%- Dump completed") then
    local why = stream:stderr():match("%S") and db.why({ stderr = stream:stderr(), code = status })
      or ("the dump did not end cleanly (exit " .. tostring(status) .. ")")
    return nil, ("database %s: %s"):format(db.describe(s), why), "db"
  end
  return { object = hex, bytes = size, signal = said.signal }
end

-- previous_db(ctx, inst) -> the last snapshot's database {object, bytes, signal} | nil
function M.previous_db(ctx, inst)
  local row = ctx:catalog():first([[SELECT db_object, db_bytes, db_signal FROM snapshots
    WHERE instance_id = ? AND db_object IS NOT NULL ORDER BY id DESC LIMIT 1]], inst.id)
  return row and { object = row.db_object, bytes = math.tointeger(row.db_bytes), signal = row.db_signal }
end

-- The database is dumped by a helper `tend helper dump-db NAME PID` (its own SSH
-- connection, its own core) while the files are fetched here; it dies with us, and
-- says {object, bytes, stored} as JSON.
function M.dump_helper(ctx, inst, parent_pid)
  core.proc.die_with_parent(parent_pid)
  local st = snapshot.store(ctx)
  -- the dump's object is noted in a run file the parent adopts: if the backup fails, or
  -- either process is killed, the dump goes with the next sweep
  local run = snapshot.begin_run(ctx)
  local lock <close> = snapshot.lock_store(ctx, "shared")
  local settings = errors.check(inst:db_settings(ctx:vault()))
  local written = st:written()
  local t = inst:transport()
  t:prepare_streams()
  local dbinfo = errors.check(M.dump_db(t, settings, st, M.previous_db(ctx, inst)))
  errors.check(st:sync())
  dbinfo.stored, dbinfo.healed, dbinfo.run = st:written() - written, st:healed(), run.path
  st:note_added(nil)
  require("tend.pause")(ctx, "backup.db-dumped")
  return dbinfo
end

local function start_dump_helper(ctx, inst)
  return child.spawn(ctx, { "--json", "--quiet", "helper", "dump-db", inst.name, tostring(core.proc.pid()) })
end

-- finish_dump_helper(helper) -> {object, bytes, stored} | nil, message
local function finish_dump_helper(helper)
  local o = child.finish(helper)
  local info = o.code == 0 and type(o.result) == "table" and o.result
  if info and info.object then
    return { object = info.object, bytes = math.tointeger(info.bytes), stored = math.tointeger(info.stored),
      healed = math.tointeger(info.healed), run = info.run, signal = info.signal, same = info.same }
  end
  return nil, o.error or "the database dump gave no result"
end

-- A backup in four steps, for a recipe to put in order (recipes/backup.lua):
--   local job <close> = backup.start(ctx, inst, opts)  -- store held, dump started beside
--   job:files()       -- listed on the host; only new and changed files fetched
--   job:database()    -- the dump's object, or the dump here when no helper could start
--   local id, snap = job:record()  -- the snapshot, last and in one transaction
-- A job closed before record (a failure, a kill of the recipe) records nothing, and
-- what it added to the store goes with it.
local Job = {}
Job.__index = Job
Job.__close = function(job) job:close() end

-- start(ctx, inst, opts) -> job.  opts: rehash (hash every file again), exclude (this
-- run's patterns), progress(fmt, ...).
function M.start(ctx, inst, opts)
  local job = setmetatable({ ctx = ctx, inst = inst, opts = opts or {}, started = os.time() }, Job)
  job.say = job.opts.progress or function() end
  local ok, err = pcall(function()
    pcall(snapshot.sweep, ctx) -- what killed runs added and nothing needs
    -- What this run adds is noted: if it fails, that goes (once the lock below is free).
    job.run = snapshot.begin_run(ctx)
    -- Objects written before the snapshot is recorded must not be collected meanwhile.
    job.lock = snapshot.lock_store(ctx, "shared")
    inst:transport():prepare_streams() -- warming beside the first commands, not after them
    local adapter, version = inst:detect()
    if not adapter then errors.fail("%s", version) end
    job.adapter, job.version = adapter, version
    local settings, why, code = inst:db_settings(ctx:vault())
    -- an app with no config file, and no --db or --config, has no database tend knows of
    if not settings and code ~= "nodb" then errors.fail("%s", why) end
    job.settings = settings
    job.helper = settings and start_dump_helper(ctx, inst) or nil
    if job.helper then job.say("dumping database %s (beside the files)", db.describe(settings)) end
  end)
  if not ok then job:close(); error(err, 0) end
  return job
end

-- close(): the dump helper stopped, the store let go; unless recorded, what this run
-- added goes (the sweep needs the lock free).
function Job:close()
  if self.helper then child.close(self.helper); self.helper = nil end
  if self.lock then self.lock:release(); self.lock = nil end
  if self.run and not self.run.done then snapshot.end_run(self.ctx, self.run, false) end
end

-- outside_listings(job, t, settings) -> raws, roots: the instance's data folders outside
-- the web root, each listed the same way (no exclusions: those are the web root's).
local function outside_listings(job, t)
  local raws, roots = {}, {}
  for _, folder in ipairs(outside.folders(job.ctx, job.inst, job.settings)) do
    local st_f, smsg, scode = t:stat(folder)
    if not st_f and scode == "enoent" then
      job.ctx:warn("%s: its data folder %s does not exist; nothing of it is in this snapshot", job.inst.name, folder)
    else
      if not st_f then errors.fail("%s", smsg) end
      job.say("listing %s", folder)
      raws[#raws + 1] = errors.check(M.listing(t, folder, {}))
      roots[#roots + 1] = folder
    end
  end
  return raws, roots
end

-- files(): the tree listed in one round trip and compared with the last snapshot; only
-- new and changed files fetched into the store. The same listing under the same
-- exclusions is the same tree: the previous manifest serves again, not a byte is read.
function Job:files()
  local ctx, inst, say, catalog = self.ctx, self.inst, self.say, self.ctx:catalog()
  local t, st = inst:transport(), snapshot.store(ctx)
  t:prepare_streams() -- the tar stream's channel warms while the tree is listed
  say("listing %s", inst.path)
  local exclude = M.exclusions(inst, self.opts.exclude)
  local raw, lmsg, lcode = M.listing(t, inst.path, exclude)
  self.listed_at = raw and lmsg -- the host's clock
  if not raw and not lmsg:find("printf", 1, true) then errors.check(raw, lmsg, lcode) end
  local outside_raw, roots = {}, {}
  if raw then outside_raw, roots = outside_listings(self, t) end
  local digest = raw and core.hash.sha256(table.concat(exclude, "\0") .. "\0\0" .. raw)
  if #roots > 0 then
    local parts = { digest }
    for i, folder in ipairs(roots) do parts[#parts + 1] = folder .. "\0" .. outside_raw[i] end
    digest = core.hash.sha256(table.concat(parts, "\0\0"))
  end
  local prev = snapshot.latest(catalog, inst)
  local prev_listing = prev and prev.manifest_id
    and catalog:first("SELECT listing FROM manifests WHERE id = ?", prev.manifest_id).listing
  self.written, self.prev = st:written(), prev
  self.sent, self.nfiles, self.nbytes = 0, 0, 0
  if not raw then
    say("%s: the host's find cannot list the tree; reading all of it", lmsg)
    if #outside.folders(ctx, inst, self.settings) > 0 then
      ctx:warn("%s: its data outside the web root is not in this snapshot (the host's find cannot list it)", inst.name)
    end
    self.manifest, self.nfiles, self.nbytes, self.sent = M.collect_all(ctx, inst, t, st, exclude)
  elseif prev_listing == digest and not self.opts.rehash then
    say("no file changed since snapshot %d", prev.id)
    self.nfiles, self.nbytes = prev.files, prev.bytes
  else
    local listing
    listing, self.root = M.parse(raw)
    for i, folder in ipairs(roots) do M.merge_outside(listing, folder, outside_raw[i]) end
    self.manifest, self.nfiles, self.nbytes, self.sent, digest = M.collect(ctx, inst, t, st, listing,
      not self.opts.rehash and snapshot.files(catalog, prev) or {}, digest, say, prev and prev.listed_at, roots)
  end
  if raw and not self.root then
    self.root = select(2, M.parse(raw:match("^[^%z]*%z" .. ("[^%z]*%z"):rep(FIELDS - 1)) or ""))
  end
  self.digest = digest
end

-- database(): the dump's object (the helper's, or a dump here when none could start);
-- nothing for an instance without a database.
function Job:database()
  if self.helper then
    self.say("waiting for the database dump")
    local info, msg = finish_dump_helper(self.helper)
    self.helper = nil
    if info and info.run then self.run.adopted[#self.run.adopted + 1] = info.run end
    if not info then errors.fail("%s", msg) end
    self.dbinfo = info
  elseif self.settings then
    self.say("dumping database %s", db.describe(self.settings))
    self.dbinfo = errors.check(M.dump_db(self.inst:transport(), self.settings, snapshot.store(self.ctx),
      M.previous_db(self.ctx, self.inst)))
  end
  if self.dbinfo and self.dbinfo.same then self.say("database unchanged: its dump hashes to the last snapshot's") end
end

-- record() -> snapshot id, summary: every object on disk, then the snapshot in one
-- transaction. Before this, there is no snapshot.
function Job:record()
  local st, dbinfo, root = snapshot.store(self.ctx), self.dbinfo, self.root
  local snap = { instance_id = self.inst.id, started_at = self.started, finished_at = os.time(),
    app = self.adapter.name, version = self.version, files = self.nfiles, bytes = self.nbytes,
    sent_bytes = self.sent, db_driver = self.settings and self.settings.driver,
    db_object = dbinfo and dbinfo.object, db_bytes = dbinfo and dbinfo.bytes, db_signal = dbinfo and dbinfo.signal,
    consistent = true,
    manifest_id = not self.manifest and self.prev.manifest_id or nil, listed_at = self.listed_at,
    root_mode = root and root.mode, root_mtime_ns = root and root.mtime_ns,
    root_uid = root and root.uid, root_gid = root and root.gid }
  errors.check(st:sync()) -- every object on disk before the snapshot that needs them
  snap.stored_bytes = st:written() - self.written + (dbinfo and dbinfo.stored or 0)
  -- damaged objects replaced by the good copies this backup read (not recorded)
  snap.healed = st:healed() + (dbinfo and dbinfo.healed or 0)
  local id = snapshot.record(self.ctx:catalog(), snap, self.manifest, self.digest)
  snapshot.end_run(self.ctx, self.run, true)
  snap.id = id
  return id, snap
end

-- run(ctx, inst, opts) -> snapshot id, summary: the four steps at once (a copy's or the
-- REPL's backup). Raises on failure; nothing is recorded then.
function M.run(ctx, inst, opts)
  local job <close> = M.start(ctx, inst, opts)
  job:files()
  job:database()
  return job:record()
end

return M
