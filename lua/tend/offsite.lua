-- offsite: the store's copy in S3-compatible object storage, kept in step after every
-- backup (tend store remote | sync | recover | verify --remote; docs/snapshots.md).
--
-- The bucket, under its prefix, holds the store's own files byte for byte (sealed
-- objects: only an encrypted store gets a copy), and beside them what a new manager
-- needs to use them, sealed with the store key:
--   objects/ab/cdef...    large objects, as in the store
--   packs/NAME.pack       packs, as in the store; packs/NAME.idx: its index rows (sealed)
--   manifests/ID          a manifest's rows (a SQLite file, sealed)
--   catalog               the catalog without manifests and run logs (sealed): instances,
--                         snapshots, secrets (sealed by the vault key, as at home), jobs
--   encryption            the store's key check; vault: the store key sealed by the vault
--                         key, and what opens the vault (its check value, passphrase salt)
-- A sync sends files first and the catalog last, from a copy taken before it looked at
-- the store: the bucket's catalog never names a snapshot whose files are not all there,
-- and a sync killed midway leaves the previous one. What the bucket holds is noted in
-- the catalog (offsite_files) after each batch, so the next sync goes on from there.
local core = require "tend.core"
local errors = require "tend.errors"
local home = require "tend.home"
local pause = require "tend.pause"
local fs = core.fs

local M = {}

M.SECRET = "tend.offsite.secret" -- the secret access key, in the vault
local BATCH = 64                 -- files a transfer; the most a killed sync sends again
local PARALLEL = 8               -- requests at once

-- parse_url("s3://BUCKET/PREFIX") -> bucket, prefix ("" or "a/b/")
function M.parse_url(url)
  local bucket, prefix = (url or ""):match("^s3://([%w.-]+)/*(.-)/*$")
  if not bucket or #bucket < 3 then errors.usage("an off-site store is s3://BUCKET[/PREFIX], not %q", tostring(url)) end
  if prefix ~= "" and not (prefix:match("^[%w._/-]+$") and not prefix:find("..", 1, true) and not prefix:find("//", 1, true)) then
    errors.usage("the prefix of %s may hold letters, digits and . _ - / only", url)
  end
  return bucket, prefix ~= "" and prefix .. "/" or ""
end

-- config(catalog) -> {url, endpoint, region, key_id} | nil: the store's off-site copy.
function M.config(catalog)
  local url = catalog:meta("offsite.url")
  if not url or url == "" then return nil end
  return { url = url, endpoint = catalog:meta("offsite.endpoint"), region = catalog:meta("offsite.region"),
    key_id = catalog:meta("offsite.key_id") }
end

-- connect(cfg, secret) -> remote: {s3, prefix, url}; secret a vault secret or string.
function M.connect(cfg, secret)
  local bucket, prefix = M.parse_url(cfg.url)
  if not (cfg.endpoint or ""):match("^https?://[^/]") then
    errors.usage("--endpoint is the storage's URL (https://s3.example.com), not %q", tostring(cfg.endpoint))
  end
  local s3 = core.s3.open({ endpoint = cfg.endpoint, bucket = bucket, region = cfg.region or "us-east-1",
    key_id = cfg.key_id, secret = type(secret) == "string" and secret or secret:reveal() })
  return { s3 = s3, prefix = prefix, url = cfg.url }
end

local function open_remote(ctx)
  local cfg = M.config(ctx:catalog())
  if not cfg then return nil end
  return M.connect(cfg, errors.check(ctx:vault():get(M.SECRET)))
end

local function transfer(remote, jobs)
  for _, j in ipairs(jobs) do
    for _, op in ipairs({ "put", "get", "delete" }) do
      if j[op] then j.name, j[op] = j[op], remote.prefix .. j[op] end
    end
  end
  return errors.check(remote.s3:transfer(jobs, PARALLEL))
end

local function get(remote, name) return remote.s3:get(remote.prefix .. name) end

-- in_batches(list, fn): fn(batch, done) for each BATCH of list in turn, done the count
-- of items handled once that batch is.
local function in_batches(list, fn)
  for i = 1, #list, BATCH do
    local last = math.min(i + BATCH - 1, #list)
    fn({ table.unpack(list, i, last) }, last)
  end
end

-- index_db(st, dir) -> the index of packed objects of the store st at dir, as
-- store_pack.c keeps it (one look-up makes the store create it: no walk of the store)
local function index_db(st, dir)
  st:has(("0"):rep(64))
  return errors.check(core.catalog.open(dir .. "/index.db"))
end

-- store_files(ctx, index) -> {name = size}, {pack = true}: the files of the store an
-- off-site copy mirrors: large objects, and packs that hold indexed objects (a pack no
-- index row points into is being written, or garbage); the second, those packs.
local function store_files(ctx, index)
  local dir, files, packs = ctx.home .. "/store", {}, {}
  for _, ab in ipairs(fs.list(dir .. "/objects") or {}) do
    if #ab == 2 then
      for _, rest in ipairs(fs.list(dir .. "/objects/" .. ab) or {}) do
        local st = #rest == 62 and fs.stat(("%s/objects/%s/%s"):format(dir, ab, rest))
        if st then files["objects/" .. ab .. "/" .. rest] = st.size end
      end
    end
  end
  for _, r in ipairs(errors.check(index:query("SELECT pack FROM packed GROUP BY pack"))) do
    packs[r.pack] = true
    local st = fs.stat(("%s/packs/%s.pack"):format(dir, r.pack))
    if st then files["packs/" .. r.pack .. ".pack"] = st.size end
  end
  return files, packs
end

-- pack_indexes(index, names) -> {pack = "hex offset length\n..."}: the index rows of
-- those packs (only the packs a sync sends: a store has millions of rows).
local function pack_indexes(index, names)
  local out = {}
  for i = 1, #names, 500 do
    local some = { table.unpack(names, i, math.min(i + 499, #names)) }
    local sql = "SELECT hex, pack, offset, length FROM packed WHERE pack IN (" .. ("?,"):rep(#some):sub(1, -2)
      .. ") ORDER BY pack, offset"
    for _, r in ipairs(errors.check(index:query(sql, table.unpack(some)))) do
      local rows = out[r.pack] or {}
      out[r.pack] = rows
      rows[#rows + 1] = ("%s %d %d\n"):format(r.hex, r.offset, r.length)
    end
  end
  for name, rows in pairs(out) do out[name] = table.concat(rows) end
  return out
end

-- catalog_copy(ctx) -> path: the catalog as it is now, without manifest rows (each
-- travels as its own record), run logs or this table of what the bucket holds. Built
-- from the schema up, so the manifest rows (most of the catalog) are never copied.
local LEFT_OUT = { manifest_files = true, runs = true, offsite_files = true }
local PARENTS = { instances = 1, manifests = 2 }
local function catalog_copy(ctx)
  local path, catalog = home.scratch(ctx.home), ctx:catalog()
  errors.check(fs.write_atomic(path, "", 384)) -- 0600 before SQLite writes a secret in it
  local schema = catalog:query("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
    .. "AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid")
  local copy = errors.check(core.catalog.open(path))
  local ok, err = pcall(function()
    for _, o in ipairs(schema) do errors.check(copy:exec(o.sql)) end
    errors.check(copy:exec(("PRAGMA user_version = %d"):format(catalog:first("PRAGMA user_version").user_version)))
  end)
  copy:close()
  if not ok then fs.remove(path); error(err, 0) end
  catalog:run("ATTACH ? AS copy", path)
  local tables = {}
  for _, o in ipairs(schema) do
    if o.type == "table" and not LEFT_OUT[o.name] then tables[#tables + 1] = o.name end
  end
  -- the tables others point at first: a row's parent is there when it arrives
  table.sort(tables, function(a, b) return (PARENTS[a] or 9) < (PARENTS[b] or 9) end)
  ok, err = pcall(catalog.transaction, catalog, function() -- one read of the catalog: a consistent copy
    for _, name in ipairs(tables) do
      catalog:run(("INSERT INTO copy.%q SELECT * FROM main.%q"):format(name, name))
    end
    catalog:run("INSERT INTO copy.sqlite_sequence SELECT * FROM main.sqlite_sequence") -- ids never reused
  end)
  local detached, derr = pcall(catalog.run, catalog, "DETACH copy")
  if not ok or not detached then fs.remove(path); error(ok and derr or err, 0) end
  return path
end

-- vault_record(ctx) -> JSON: what opens the store key with the vault key alone.
local function vault_record(ctx)
  local catalog, Vault = ctx:catalog(), require "tend.vault"
  local key = catalog:first("SELECT value FROM secrets WHERE name = ?", Vault.STORE_KEY)
  local fields, cjson = {}, require "cjson"
  for _, kv in ipairs({ { "format", "tend-offsite-vault" }, { "version", 1 }, { "store_key", key and key.value },
      { "check", catalog:meta("vault.check") }, { "salt", catalog:meta("vault.salt") }, { "kdf", catalog:meta("vault.kdf") } }) do
    if kv[2] ~= nil then fields[#fields + 1] = cjson.encode(kv[1]) .. ":" .. cjson.encode(kv[2]) end
  end
  return "{" .. table.concat(fields, ",") .. "}" -- in one order: the same vault, the same bytes (sent once)
end

-- sync(ctx) -> {sent, bytes, removed, seconds}: the bucket in step with the store.
function M.sync(ctx)
  local remote = open_remote(ctx)
  if not remote then errors.usage("the store has no off-site copy (tend store remote s3://BUCKET/PREFIX --endpoint URL)") end
  local t0 = core.proc.now()
  local lock <close> = errors.check(fs.lock(ctx.home .. "/store/offsite.lock", "exclusive", true))
  local store_lock <close> = require("tend.snapshot").lock_store(ctx, "shared") -- no gc meanwhile
  local catalog, st = ctx:catalog(), ctx:store()
  if not fs.stat(ctx.home .. "/store/encryption") then
    errors.usage("the store is not encrypted: an off-site copy holds only sealed objects (tend store encrypt)")
  end
  -- a sync that does not get to its end leaves this set: the next one looks for strays
  local unfinished = catalog:meta("offsite.unfinished") ~= "0"
  catalog:meta("offsite.unfinished", "1")
  -- the catalog first: what it names is in the store now, and sent before it
  local copy = catalog_copy(ctx)
  local copy_text = errors.check(fs.read(copy))
  local copied = errors.check(core.catalog.open(copy))
  local manifests = copied:query("SELECT DISTINCT manifest_id AS id FROM snapshots WHERE manifest_id IS NOT NULL")
  copied:close()
  fs.remove(copy)

  local held = {}
  for _, r in ipairs(catalog:query("SELECT name, size, sha256 FROM offsite_files")) do held[r.name] = r end
  local index <close> = setmetatable({ db = index_db(st, ctx.home .. "/store") }, { __close = function(i) i.db:close() end })
  local files, packs = store_files(ctx, index.db)
  local want, jobs = {}, {}
  local function need(name, size, job)
    want[name] = true
    local h = held[name]
    if not h or h.size ~= size or (job.sha256 and h.sha256 ~= job.sha256) then jobs[#jobs + 1] = job end
  end
  local idx_jobs = {}
  for name, size in pairs(files) do
    need(name, size, { put = name, file = ctx.home .. "/store/" .. name })
    local pack = name:match("^packs/(.+)%.pack$")
    if pack then -- its index travels with it, sent again when the pack is
      local idx = "packs/" .. pack .. ".idx"
      want[idx] = true
      if not held[name] or held[name].size ~= size or not held[idx] then
        idx_jobs[#idx_jobs + 1] = { put = idx, pack = pack }
      end
    end
  end
  local names = {}
  for i, j in ipairs(idx_jobs) do names[i] = j.pack end
  local rows = pack_indexes(index.db, names)
  for _, j in ipairs(idx_jobs) do
    jobs[#jobs + 1] = { put = j.put, data = st:seal(rows[j.pack] or "") }
  end
  for _, r in ipairs(errors.check(manifests)) do -- those the copy names, whatever happened since
    local name = "manifests/" .. r.id
    want[name] = true
    if not held[name] then jobs[#jobs + 1] = { put = name, manifest = r.id } end
  end
  local records = { encryption = errors.check(fs.read(ctx.home .. "/store/encryption")), vault = vault_record(ctx) }
  for name, text in pairs(records) do
    local sum = core.hash.sha256(text)
    need(name, #text, { put = name, data = text, sha256 = sum })
  end
  table.sort(jobs, function(a, b) return a.put < b.put end)

  local sent, bytes = 0, 0
  in_batches(jobs, function(batch, done)
    for _, j in ipairs(batch) do
      if j.manifest then j.data, j.manifest = M.manifest_record(ctx, j.manifest), nil end
    end
    transfer(remote, batch)
    pause(ctx, "offsite.batch-sent") -- sent, not yet noted
    catalog:transaction(function()
      for _, j in ipairs(batch) do
        catalog:run("INSERT OR REPLACE INTO offsite_files(name, size, sha256) VALUES (?, ?, ?)", j.name, j.size, j.sha256)
        sent, bytes = sent + 1, bytes + j.size
      end
    end)
    if #jobs > BATCH then ctx:info("off-site: %d of %d files sent", done, #jobs) end
  end)
  pause(ctx, "offsite.files-sent")
  -- the catalog last: from now on the bucket's catalog names what was just sent
  transfer(remote, { { put = "catalog", data = st:seal(copy_text) } })
  sent, bytes = sent + 1, bytes + #copy_text
  pause(ctx, "offsite.catalog-sent")

  -- what the store let go of (gc, forget) leaves the bucket too, but never a file the
  -- store still needs: a pack some index row points into, an object some snapshot names
  local gone, referenced = {}, nil
  for name in pairs(held) do
    local hex = name:match("^objects/%x%x/%x+$") and name:gsub("^objects/(%x%x)/", "%1")
    local pack = name:match("^packs/(.+)%.pack$") or name:match("^packs/(.+)%.idx$")
    if not want[name] and not (pack and packs[pack]) then
      -- what every snapshot needs is read only when an object might go (a scan of all manifests)
      referenced = referenced or (hex and require("tend.snapshot").referenced(catalog))
      if not (hex and referenced[hex]) then gone[#gone + 1] = { delete = name } end
    end
  end
  in_batches(gone, function(batch)
    transfer(remote, batch)
    catalog:transaction(function()
      for _, j in ipairs(batch) do catalog:run("DELETE FROM offsite_files WHERE name = ?", j.name) end
    end)
  end)
  if unfinished then -- what a killed sync sent and nothing noted: needed no more since
    local stray, noted = {}, {}
    for _, r in ipairs(catalog:query("SELECT name FROM offsite_files")) do noted[r.name] = true end
    for _, o in ipairs(errors.check(remote.s3:list(remote.prefix))) do
      local name = o.key:sub(#remote.prefix + 1)
      if not noted[name] and (name:match("^objects/") or name:match("^packs/") or name:match("^manifests/")) then
        stray[#stray + 1] = { delete = name }
      end
    end
    in_batches(stray, function(batch) transfer(remote, batch) end)
    gone = table.move(stray, 1, #stray, #gone + 1, gone)
  end
  catalog:meta("offsite.unfinished", "0")
  catalog:meta("offsite.synced_at", tostring(os.time()))
  return { url = remote.url, sent = sent, bytes = bytes, removed = #gone, seconds = core.proc.now() - t0 }
end

-- manifest_record(ctx, id) -> record: manifest id's rows, as a SQLite file, sealed.
function M.manifest_record(ctx, id)
  local path, catalog = home.scratch(ctx.home), ctx:catalog()
  errors.check(fs.write_atomic(path, "", 384))
  catalog:run("ATTACH ? AS record", path)
  local ok, err = pcall(catalog.run, catalog, "CREATE TABLE record.manifest_files AS SELECT * FROM manifest_files WHERE manifest_id = ?", id)
  catalog:run("DETACH record")
  local text = ok and errors.check(fs.read(path))
  fs.remove(path)
  if not ok then error(err, 0) end
  -- rows go only with their manifest (one transaction): still there, it was copied whole
  if not catalog:first("SELECT 1 AS y FROM manifests WHERE id = ?", id) then
    errors.fail("snapshots were forgotten while the off-site copy was being made; it keeps its previous catalog (tend store sync again)")
  end
  return ctx:store():seal(text)
end

-- fetch_store(ctx, remote, listing, dir, st) -> files, bytes: the bucket's objects and
-- packs into the store at dir (opened as st), each file whole or not at all (fetched
-- into dir/tmp, renamed), the packs' index rows entered in dir/index.db.
local function fetch_store(ctx, remote, listing, dir, st)
  local tmp = ("%s/tmp/fetch-%d"):format(dir, core.proc.pid())
  errors.check(fs.mkdir_p(tmp, 448))
  local jobs, idx, bytes = {}, {}, 0
  for _, o in ipairs(listing) do
    local name = o.key:sub(#remote.prefix + 1)
    local store_file = name:match("^objects/%x%x/%x+$") or name:match("^packs/[%w._-]+%.pack$")
    if store_file or name:match("^packs/[%w._-]+%.idx$") then
      jobs[#jobs + 1] = { get = name, file = ("%s/%d"):format(tmp, #jobs + 1), place = store_file and dir .. "/" .. name }
      if not store_file then idx[#idx + 1] = jobs[#jobs] end
      bytes = bytes + o.size
    end
  end
  in_batches(jobs, function(batch, done)
    transfer(remote, batch)
    for _, j in ipairs(batch) do
      if j.place then
        errors.check(fs.mkdir_p(j.place:match("^(.*)/"), 448))
        errors.check(fs.rename(j.file, j.place))
      end
    end
    if #jobs > BATCH then ctx:info("off-site: %d of %d files fetched", done, #jobs) end
  end)
  local index = index_db(st, dir)
  local ok, err = pcall(function()
    errors.check(index:exec("BEGIN IMMEDIATE"))
    for _, j in ipairs(idx) do
      local pack = j.name:match("^packs/(.+)%.idx$")
      local packed = fs.stat(("%s/packs/%s.pack"):format(dir, pack))
      local rows = errors.check(st:unseal(errors.check(fs.read(j.file))))
      for hex, off, len in rows:gmatch("(%x+) (%d+) (%d+)\n") do
        if packed and tonumber(off) + tonumber(len) <= packed.size then
          errors.check(index:run("INSERT OR IGNORE INTO packed(hex, pack, offset, length) VALUES (?, ?, ?, ?)",
            hex, pack, tonumber(off), tonumber(len)))
        end
      end
    end
    errors.check(index:exec("COMMIT"))
  end)
  if not ok then index:exec("ROLLBACK") end
  index:close()
  core.proc.run({ "rm", "-rf", "--", tmp })
  if not ok then error(err, 0) end
  return #jobs - #idx, bytes
end

-- need_vault_key(ctx): recovering needs the old manager's vault key; never a new one.
local function need_vault_key(ctx)
  if (os.getenv("TEND_VAULT_KEY_FILE") or "") ~= "" or os.getenv("TEND_VAULT_PASSPHRASE") then return end
  if fs.stat(ctx.home .. "/vault.key") then return end
  errors.usage("recovering needs the vault key of the manager that made the copy: "
    .. "TEND_VAULT_KEY_FILE=PATH (its vault.key) or TEND_VAULT_PASSPHRASE")
end

-- open_vault_record(ctx, remote) -> store key (a secret), the master key: the bucket's
-- vault record opened with the vault key this run is given.
local function open_vault_record(ctx, remote)
  local text, msg, code = get(remote, "vault")
  if not text then
    if code == "enoent" then errors.fail("%s holds no copy of a tend store (no vault record)", remote.url) end
    errors.fail("%s", msg)
  end
  local ok, v = pcall(require("cjson").decode, text)
  if not ok or type(v) ~= "table" or v.format ~= "tend-offsite-vault" or type(v.store_key) ~= "string" then
    errors.fail("%s: the vault record is not tend's", remote.url)
  end
  local meta = { ["vault.check"] = v.check, ["vault.salt"] = v.salt, ["vault.kdf"] = v.kdf }
  local Vault = require "tend.vault"
  local vault = Vault.open(ctx.home, { meta = function(_, k, value)
    if value ~= nil then errors.fail("the vault record has no check value: it cannot tell a wrong vault key") end
    return meta[k] ~= require("cjson").null and meta[k] or nil
  end })
  local master = vault:key()
  local store_key = master:open(v.store_key, Vault.STORE_KEY)
  if not store_key then errors.fail("%s: the store key does not open with this vault key", remote.url) end
  return store_key, vault
end

-- recover(ctx, cfg, secret) -> summary: an empty TEND_HOME made whole from the bucket:
-- the catalog, the manifests, the store's files, and the copy's settings.
function M.recover(ctx, cfg, secret)
  local h = ctx.home
  -- a recover that did not get to its end left this: what it made is started over
  local mark = h .. "/recovering"
  if fs.stat(mark) then
    for _, f in ipairs({ "catalog.db", "catalog.db-wal", "catalog.db-shm" }) do fs.remove(h .. "/" .. f) end
    core.proc.run({ "rm", "-rf", "--", h .. "/store" })
  end
  if fs.stat(h .. "/catalog.db") then
    local c = errors.check(core.catalog.open(h .. "/catalog.db"))
    local ok, rows = pcall(function() return errors.check(c:query("SELECT count(*) AS n FROM instances")) end)
    c:close()
    if not ok or rows[1].n > 0 then
      errors.usage("%s already has a catalog: recover fills an empty TEND_HOME (set TEND_HOME to a new folder)", h)
    end
  end
  if #(fs.list(h .. "/store/packs") or {}) > 0 or #(fs.list(h .. "/store/objects") or {}) > 0 then
    errors.usage("%s already has a store: recover fills an empty TEND_HOME", h)
  end
  need_vault_key(ctx)
  local remote = M.connect(cfg, secret)
  local store_key, vault = open_vault_record(ctx, remote)
  home.ensure(h)
  errors.check(fs.write_atomic(mark, "a recover from " .. cfg.url .. " has not finished\n", 384))
  errors.check(fs.mkdir_p(h .. "/store", 448))
  local marker = errors.check(get(remote, "encryption"))
  errors.check(fs.write_atomic(h .. "/store/encryption", marker, 384))
  local st = errors.check(core.store.open(h .. "/store", nil, store_key))
  local catalog_text = errors.check(st:unseal(errors.check(get(remote, "catalog"))))
  for _, f in ipairs({ "catalog.db-wal", "catalog.db-shm" }) do fs.remove(h .. "/" .. f) end
  errors.check(fs.write_atomic(h .. "/catalog.db", catalog_text, 384))
  local catalog = ctx:catalog()
  vault.catalog, ctx._vault = catalog, vault -- the key opened above opens its secrets too

  local listing = errors.check(remote.s3:list(remote.prefix))
  local files, bytes = fetch_store(ctx, remote, listing, h .. "/store", st)
  pause(ctx, "offsite.recover-fetched")
  local ids = {}
  for _, r in ipairs(catalog:query("SELECT DISTINCT manifest_id AS id FROM snapshots WHERE manifest_id IS NOT NULL")) do
    ids[#ids + 1] = r.id
  end
  local lost = {}
  for _, id in ipairs(ids) do
    local record, msg, code = get(remote, "manifests/" .. id)
    if not record and code ~= "enoent" then errors.fail("%s", msg) end
    if not record then lost[#lost + 1] = id; goto next end
    local path = home.scratch(h)
    errors.check(fs.write_atomic(path, errors.check(st:unseal(record)), 384))
    catalog:run("ATTACH ? AS record", path)
    local ok, err = pcall(catalog.run, catalog, "INSERT INTO manifest_files SELECT * FROM record.manifest_files WHERE manifest_id = ?", id)
    catalog:run("DETACH record")
    fs.remove(path)
    if not ok then error(err, 0) end
    ::next::
  end
  -- a snapshot whose manifest the bucket lacks cannot be restored: said, and left out
  for _, id in ipairs(lost) do
    for _, snap in ipairs(catalog:query("SELECT s.id, i.name FROM snapshots s JOIN instances i ON i.id = s.instance_id WHERE s.manifest_id = ?", id)) do
      ctx:warn("%s: snapshot %d left out: its manifest is not in %s", snap.name, snap.id, remote.url)
    end
    catalog:run("DELETE FROM snapshots WHERE manifest_id = ?", id)
  end
  st:close()
  catalog:transaction(function()
    for _, o in ipairs(listing) do
      catalog:run("INSERT OR REPLACE INTO offsite_files(name, size) VALUES (?, ?)", o.key:sub(#remote.prefix + 1), o.size)
    end
  end)
  catalog:meta("offsite.url", cfg.url)
  catalog:meta("offsite.endpoint", cfg.endpoint)
  catalog:meta("offsite.region", cfg.region or "us-east-1")
  catalog:meta("offsite.key_id", cfg.key_id)
  vault:set(M.SECRET, secret)
  local instances = catalog:query("SELECT i.name, count(s.id) AS snapshots FROM instances i "
    .. "LEFT JOIN snapshots s ON s.instance_id = i.id GROUP BY i.id ORDER BY i.name")
  fs.remove(mark)
  return { url = cfg.url, instances = instances, files = files, bytes = bytes, manifests = #ids }
end

-- verify(ctx) -> {objects, damaged = {hex...}, missing = {hex...}}: every file of the
-- bucket fetched into a scratch store and each object read back to its name; and each
-- object the catalog's snapshots need found there (those taken since the last sync
-- are named missing).
function M.verify(ctx)
  local remote = open_remote(ctx)
  if not remote then errors.usage("the store has no off-site copy (tend store remote s3://BUCKET/PREFIX --endpoint URL)") end
  local dir = home.scratch(ctx.home)
  local ok, r = pcall(function()
    errors.check(fs.mkdir_p(dir, 448))
    errors.check(fs.write_atomic(dir .. "/encryption", errors.check(get(remote, "encryption")), 384))
    local Vault = require "tend.vault"
    local st <close> = errors.check(core.store.open(dir, nil, errors.check(ctx:vault():get(Vault.STORE_KEY))))
    fetch_store(ctx, remote, errors.check(remote.s3:list(remote.prefix)), dir, st)
    local damaged, missing, have = {}, {}, {}
    local list = st:list()
    for _, hex in ipairs(list) do
      have[hex] = true
      if not st:verify(hex) then damaged[#damaged + 1] = hex end
    end
    for hex in pairs(require("tend.snapshot").referenced(ctx:catalog())) do
      if not have[hex] then missing[#missing + 1] = hex end
    end
    table.sort(missing)
    return { url = remote.url, objects = #list, damaged = damaged, missing = missing }
  end)
  core.proc.run({ "rm", "-rf", "--", dir })
  if not ok then error(r, 0) end
  return r
end

-- kept(ctx): whether this run keeps the store's off-site copy in step after a backup:
-- the store has one, and the run is not a fan-out's child (its parent syncs, once).
function M.kept(ctx) return not ctx:batch_child() and M.config(ctx:catalog()) ~= nil end

-- keep_up(ctx) -> summary: the off-site copy in step after a backup, or a failure that
-- says the snapshot is safe here.
function M.keep_up(ctx)
  local ok, r = pcall(M.sync, ctx)
  if not ok then
    errors.fail("the off-site copy was not brought in step: %s (the snapshot is kept here; tend store sync tries again)",
      errors.message(r))
  end
  ctx:info("off-site: %s in step (%d files, %d bytes sent)", r.url, r.sent, r.bytes)
  return r
end

return M
