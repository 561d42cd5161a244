-- restore_tree: a snapshot's tree built on a host in a folder of its own (a restore's
-- staging tree, a copy's folder, a drill's scratch folder): what the live tree beside it
-- holds already is linked there on the host, only the rest crosses in one tar stream.
local core = require "tend.core"
local errors = require "tend.errors"
local snapshot = require "tend.snapshot"
local backup = require "tend.backup"
local written = require "tend.written"

local M = {}

-- split(path) -> parent, base
function M.split(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  return parent ~= "" and parent or "/", base
end

-- real_path(t, path) -> the folder path names: itself, or where it leads when it is a
-- symlink (resolved on the host).
function M.real_path(t, path)
  local r = t:exec({ "sh", "-c", '[ -L "$1" ] && exec readlink -f -- "$1"', "sh", path })
  local real = r and r.code == 0 and r.stdout:match("^(.-)\n?$")
  return real and real ~= "" and real or path
end

-- reusable(t, live, manifest, trusted, root) -> {path = true}, known, hashed: the
-- snapshot's files that the live tree at `live` holds already: same size, mode, mtime
-- (to the second) and, where the login is root (only root's tar sets owners), owner;
-- and the same SHA-256, as tend wrote it (trusted: tend.written's record,
-- while the file's inode and ctime say nothing touched it since; `known` of them) or as
-- the host's sha256sum computes it (`hashed`: so a file changed behind our back with its
-- mtime put back is still sent). Empty when the host cannot say. Also the live tree's
-- listing (parsed), when there was one.
local function reusable(t, live, manifest, trusted, root)
  if not t:stat(live) then return {}, 0, 0 end
  local raw = backup.listing(t, live, {})
  if not raw then return {}, 0, 0 end
  local now, candidates, want = backup.parse(raw), {}, {}
  local out, known = {}, 0
  for _, f in ipairs(manifest) do
    local e = now[f.path]
    local same_time = (e and e.mtime_ns and f.mtime_ns) and e.mtime_ns == f.mtime_ns
      or (e and math.floor(e.mtime) == math.floor(f.mtime))
    -- a hard link's other names are always made anew from its first one
    if f.type == "file" and not f.hardlink and e and e.type == "file" and e.size == f.size and e.mode == f.mode
      and same_time and (not root or f.uid == nil or (e.uid == f.uid and e.gid == f.gid)) then
      local rec = trusted and trusted[f.path]
      if rec and written.same(rec, e) then
        if rec.sha256 == f.sha256 then out[f.path], known = true, known + 1 end
      else
        candidates[#candidates + 1], want[f.path] = f.path, f.sha256
      end
    end
    -- what tar cannot make (sockets, device nodes) is kept from the live tree
    if (f.type == "socket" or f.type == "device") and e and e.type == f.type then out[f.path] = true end
  end
  local hashes = t:sha256(live, candidates) or {}
  for path, hex in pairs(hashes) do if want[path] == hex then out[path] = true end end
  return out, known, #candidates, now
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
    return nil, ("taking %d files from %s: %s"):format(#paths, from, require("tend.transport").why(r)), "remote"
  end
  return true
end

-- link_whole(t, from, to, now, manifest, taken) -> true | nil, msg, code | false when
-- the host has no GNU cp: link_local's result, made the fast way when most of the live
-- tree is taken: the whole tree linked in one `cp -al` (a third of the time of 15,000
-- named links), then everything the new tree must not have from it removed again: each
-- path of the live listing (now) that is not taken, except the folders the snapshot has
-- as folders and those that hold a taken path. The tar stream brings the rest into
-- paths that are free. The staging folder stays 0700 until finish_root.
local LINK_ALL = [[cp --help 2>/dev/null | grep -q -- --parents || exit 3
cp -al -- "$1/." "$2/" || exit 1
chmod 700 -- "$2" && cd -- "$2" && exec xargs -0 rm -rf --]]
local function link_whole(t, from, to, now, manifest, taken)
  local keep = {}
  for _, p in ipairs(taken) do
    keep[p] = true
    for parent in p:gmatch("()/") do keep[p:sub(1, parent - 1)] = true end
  end
  local dirs = {}
  for _, f in ipairs(manifest) do if f.type == "dir" then dirs[f.path] = true end end
  local gone = {}
  for path, e in pairs(now) do
    if not keep[path] and not (e.type == "dir" and dirs[path]) then gone[#gone + 1] = "./" .. path end
  end
  table.sort(gone) -- a folder before what is in it: rm -rf takes both at once
  local r, msg, code = t:exec({ "sh", "-c", LINK_ALL, "sh", from, to }, { stdin = table.concat(gone, "\0") .. "\0" })
  if not r then return nil, msg, code end
  if r.code == 3 then return false end
  if r.code ~= 0 then
    return nil, ("taking the tree of %s: %s"):format(from, require("tend.transport").why(r)), "remote"
  end
  return true
end

-- from_sibling(t, sibling, dir, send) -> {path = true}, hashed: files of send copied on
-- the host into dir from the tree at sibling.root (a clone's source on the same host, as
-- the same login), each kept only if the copy has the snapshot's size and mtime and the
-- snapshot's content: vouched for by its source (same size, no change of its inode by
-- ctime since sibling.since, when the snapshot's listing began, as backups judge a file
-- unchanged; looked at after the copy, so a write during it shows) or else read by the
-- host's sha256sum (`hashed` of them). The rest are removed again and cross in the tar
-- stream. cp -p keeps mode and mtime; --reflink=auto shares the data blocks where the
-- file system can (XFS, Btrfs: a first copy costs no data written), and copies them
-- elsewhere. Hard-linked files always cross.
local COPY = [[f=$(mktemp) || exit 125
trap 'rm -f -- "$f"' EXIT
cat > "$f" || exit 125
xargs -0 cp -p --reflink=auto --parents -t "$1" -- < "$f" 2>/dev/null
xargs -0 stat --printf 'S %.9Z %s %n\0' -- < "$f" 2>/dev/null
cd "$1" && xargs -0 stat --printf 'C %.9Y %s %n\0' -- < "$f" 2>/dev/null
exit 0]]
local function from_sibling(t, sibling, dir, send)
  local linked, want, list = {}, {}, {}
  for _, f in ipairs(send) do if f.hardlink then linked[f.hardlink] = true end end
  for _, f in ipairs(send) do
    if f.type == "file" and not f.hardlink and not linked[f.path] and f.sha256 then
      want[f.path], list[#list + 1] = f, "./" .. f.path
    end
  end
  if #list == 0 then return {}, 0 end
  local r = t:exec({ "sh", "-c", COPY, "sh", dir }, { cwd = sibling.root, stdin = table.concat(list, "\0") .. "\0" })
  if not r or r.code ~= 0 then return {}, 0 end
  local source, timed, copied = {}, {}, {}
  for kind, time, size, path in r.stdout:gmatch("(%u) (%S+) (%d+) %./([^%z]*)%z") do
    local f = want[path]
    if f and kind == "S" then
      source[path] = tonumber(size) == f.size and tonumber(time) or nil
    elseif f and kind == "C" and tonumber(size) == f.size then
      local ns = backup.ns(time)
      if (f.mtime_ns and ns == f.mtime_ns) or (not f.mtime_ns and ns and ns // 1000000000 == math.floor(f.mtime)) then
        if source[path] and sibling.since and backup.settled(source[path], sibling.since) then copied[path] = true
        else timed[#timed + 1] = path end
      end
    end
  end
  for path, hex in pairs(t:sha256(dir, timed) or {}) do
    if want[path].sha256 == hex then copied[path] = true end
  end
  local wrong = {}
  for _, p in ipairs(list) do if not copied[p:sub(3)] then wrong[#wrong + 1] = p end end
  if #wrong > 0 then -- what did not come out right goes; tar brings it
    local rr = t:exec({ "xargs", "-0", "rm", "-f", "--" }, { cwd = dir, stdin = table.concat(wrong, "\0") .. "\0" })
    if not rr or rr.code ~= 0 then return {}, 0 end
  end
  return copied, #timed
end

-- build(t, st, manifest, dir, live, keep [, progress, trusted]) -> summary part | nil,
-- msg, code: progress(files, bytes) -> update, finish: a display for what crosses
-- (tend.progress); trusted: what tend.written recorded of live; sibling: {root, since}, a
-- tree on the same host (and login) that may hold the snapshot's files (a clone's
-- source) and when the snapshot's listing of it began.
-- the snapshot's tree made in dir (created). Files the live tree holds already are
-- copied there on the host; paths in keep come from the live tree whatever the snapshot
-- says (a copy's own config file); only the rest crosses the wire, in one tar stream.
-- The local links go first: tar sets the folders' modes and times last. Owners are kept
-- where the login is root (tar's own rule) and device nodes made; elsewhere the login
-- owns what it writes, and device nodes are kept from the live tree.
function M.build(t, st, manifest, dir, live, keep, progress, trusted, sibling)
  errors.check(t:mkdir_p(dir, 448))
  local root = t:is_root()
  local same, known, hashed, now = reusable(t, live, manifest, trusted, root)
  local from_live, send = {}, {}
  for path in pairs(keep) do -- the live listing says whether each is there (else the host)
    local there = now and now[path] or (not now and t:stat(live .. "/" .. path))
    if there then from_live[#from_live + 1] = path else keep[path] = nil end
  end
  local unmade = {}
  for _, f in ipairs(manifest) do
    if keep[f.path] then -- the live one was listed above
    elseif same[f.path] then from_live[#from_live + 1] = f.path
    elseif f.type == "socket" or (f.type == "device" and not (root and f.rdev)) then unmade[#unmade + 1] = f.path
    else send[#send + 1] = f end
  end
  -- most of the live tree taken: linked whole and pruned; else a path at a time
  local live_paths = 0
  for _ in pairs(now or {}) do live_paths = live_paths + 1 end
  local ok, cmsg, ccode = false
  if #from_live * 2 > live_paths then ok, cmsg, ccode = link_whole(t, live, dir, now, manifest, from_live) end
  if ok == false then ok, cmsg, ccode = link_local(t, live, dir, from_live) end
  if not ok then return nil, cmsg, ccode end
  local copied, copied_hashed, ncopied = {}, 0, 0
  if sibling then copied, copied_hashed = from_sibling(t, sibling, dir, send) end
  if next(copied) then
    local rest = {}
    for _, f in ipairs(send) do
      if copied[f.path] then ncopied = ncopied + 1 else rest[#rest + 1] = f end
    end
    send = rest
  end
  -- compressed when the host can take it: fewer bytes cross (zstd's failure is tar's:
  -- a cut stream is not a whole archive)
  local zstd = #send > 0 and t:zstd()
  local stream, omsg, ocode = t:open(zstd and { "sh", "-c", 'zstd -dcq | tar -xpf - -C "$1"', "sh", dir }
    or { "tar", "-xpf", "-", "-C", dir }, { stdin_pipe = true })
  if not stream then return nil, omsg, ocode end
  local sent, sent_bytes = snapshot.tally(send)
  local update, finish = (progress or function() end)(sent, sent_bytes)
  local files, msg, code = core.archive.write_tar(stream, st, snapshot.tar_order(send),
    { progress = update, compression = zstd and "zstd" or "none" })
  if finish then finish() end
  local status = stream:wait()
  if not files then return nil, msg, code end
  if status == nil then return nil, "tar on the host: the stream broke", "stream" end
  if status ~= 0 then
    return nil, ("tar on the host could not extract: %s"):format(require("tend.transport").stream_why(stream, status)), "remote"
  end
  return { files = (snapshot.tally(manifest)), sent_files = sent, sent_bytes = sent_bytes, reused_files = #from_live,
    known_files = known or 0, hashed_files = hashed or 0, copied_files = ncopied, copied_hashed_files = copied_hashed,
    unmade = unmade }
end

-- finish_root(t, dir, snap, live): the new tree's own mode, owner (as root) and mtime
-- as the snapshot recorded them (root_mode, root_mtime_ns, root_uid, root_gid; else the
-- live tree's mode), set once everything inside is written.
function M.finish_root(t, dir, snap, live)
  local mode = snap.root_mode and ("%o"):format(snap.root_mode)
  local ns = math.tointeger(snap.root_mtime_ns)
  local stamp = ns and ("@%d.%09d"):format(ns // 1000000000, ns % 1000000000)
  local owner = snap.root_uid and snap.root_gid and ("%d:%d"):format(math.tointeger(snap.root_uid), math.tointeger(snap.root_gid))
  t:exec({ "sh", "-c", '[ -z "$5" ] || [ "$(id -u)" != 0 ] || chown -- "$5" "$1"; '
    .. 'if [ -n "$2" ]; then chmod "$2" -- "$1"; elif [ -e "$4" ]; then chmod --reference="$4" -- "$1"; fi; '
    .. '[ -z "$3" ] || touch -d "$3" -- "$1"', "sh", dir, mode or "", stamp or "", live, owner or "" })
end

return M
