-- commands/store: tend store verify|gc|cat|encrypt|remote|sync|recover: the object
-- store and its off-site copy (tend.offsite).
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local getopts = require("tend.recipe").getopts

local store_cmds = {}

-- store verify --remote: the off-site copy fetched and read back whole.
local function verify_remote(ctx)
  local r = require("tend.offsite").verify(ctx)
  local bad = #r.damaged + #r.missing
  ctx:result(r, ("%s: %d objects: %s%s"):format(r.url, r.objects,
    #r.damaged == 0 and "all intact" or (#r.damaged .. " damaged\n  " .. table.concat(r.damaged, "\n  ")),
    #r.missing == 0 and "; every object the snapshots need is there"
      or ("\n%d objects the snapshots need are not there (tend store sync sends them)"):format(#r.missing)))
  if bad > 0 then errors.fail("off-site copy: %d damaged, %d missing objects", #r.damaged, #r.missing) end
end

-- store verify [--remote]: every object in the store reads back to its name.
function store_cmds.verify(ctx, argv)
  local opts, pos = getopts(argv, { remote = "bool" }, "store verify")
  if #pos > 0 then errors.usage("usage: tend store verify [--remote]") end
  if opts.remote then return verify_remote(ctx) end
  local snapshot = require "tend.snapshot"
  local st, bad = snapshot.store(ctx), {}
  local all = snapshot.objects(ctx)
  local encrypted = tend.core.fs.stat(ctx.home .. "/store/encryption") ~= nil
  local plain = encrypted and 0 or nil
  for _, hex in ipairs(all) do
    local ok, msg = st:verify(hex)
    if not ok then bad[#bad + 1] = msg end
    if ok and encrypted and not st:sealed(hex) then plain = plain + 1 end
  end
  ctx:result({ objects = #all, damaged = bad, encrypted = encrypted, unencrypted = plain },
    ("%d objects: %s%s"):format(#all,
      #bad == 0 and "all intact" or (#bad .. " damaged\n  " .. table.concat(bad, "\n  ")),
      (plain or 0) > 0 and ("\n%d objects were stored before encryption and are not encrypted"):format(plain) or ""))
  if #bad > 0 then errors.fail("store: %d damaged objects", #bad) end
end

-- store gc: remove objects no snapshot references; never while a backup runs.
function store_cmds.gc(ctx, argv)
  local opts, pos = getopts(argv, { ["dry-run"] = "bool" }, "store gc")
  if #pos > 0 then errors.usage("usage: tend store gc [--dry-run]") end
  local snapshot = require "tend.snapshot"
  local lock <close> = snapshot.lock_store(ctx, "exclusive")
  local keep = snapshot.referenced(ctx:catalog())
  for hex in pairs(require("tend.restore_journal").pinned(ctx)) do keep[hex] = true end
  local st = snapshot.store(ctx)
  local removed, freed = 0, 0
  for _, hex in ipairs(st:list()) do
    if not keep[hex] then
      local kind, path, _, len = st:locate(hex)
      local size = kind == "pack" and len or ((tend.core.fs.stat(path) or {}).size or 0)
      if not opts["dry-run"] then errors.check(st:remove(hex)) end
      removed, freed = removed + 1, freed + size
    end
  end
  local packs = 0
  if not opts["dry-run"] then
    packs = st:prune()
    -- objects a killed run was writing (no run writes while gc holds the store)
    local tmp = ctx.home .. "/store/tmp"
    for _, name in ipairs(tend.core.fs.list(tmp) or {}) do tend.core.fs.remove(tmp .. "/" .. name) end
    -- the notes of runs that ended badly: gc has just removed what they name
    for _, run in ipairs(snapshot.ended_runs(ctx)) do tend.core.fs.remove(run.path); run.lock:release() end
  end
  ctx:result({ removed = removed, freed_bytes = freed, packs_removed = packs, dry_run = opts["dry-run"] or false },
    ("%s %d unreferenced objects (%d bytes)%s"):format(opts["dry-run"] and "would remove" or "removed", removed, freed,
      packs > 0 and ("; %d empty packs deleted"):format(packs) or ""))
end

-- store encrypt: new objects are sealed with a key kept in the vault.
function store_cmds.encrypt(ctx, argv)
  local _, pos = getopts(argv, {}, "store encrypt")
  if #pos > 0 then errors.usage("usage: tend store encrypt") end
  local Vault = require "tend.vault"
  local snapshot = require "tend.snapshot"
  local lock <close> = snapshot.lock_store(ctx, "exclusive")
  local st = snapshot.store(ctx)
  if tend.core.fs.stat(ctx.home .. "/store/encryption") then
    errors.usage("the store is encrypted already")
  end
  local vault = ctx:vault()
  local key = vault:get(Vault.STORE_KEY) -- left by an earlier attempt, never used
  if not key then
    vault:set(Vault.STORE_KEY, tend.core.vault.random_secret(32))
    key = errors.check(vault:get(Vault.STORE_KEY))
  end
  errors.check(st:encrypt(key))
  local before = #st:list()
  ctx:result({ encrypted = true, unencrypted = before },
    ("the store is encrypted from now on (key %s in the vault)%s"):format(Vault.STORE_KEY,
      before > 0 and ("; the %d objects stored before stay unencrypted until gc drops them"):format(before) or ""))
end

-- the options that say where a bucket is, and the secret access key from stdin or a
-- hidden prompt (never an argument)
local BUCKET_OPTS = { endpoint = "value", region = "value", ["key-id"] = "value" }
local function bucket_config(opts, url, usage)
  if not url or not opts.endpoint or not opts["key-id"] then errors.usage("%s", usage) end
  require("tend.offsite").parse_url(url)
  local secret = errors.check(tend.core.vault.read_secret(("Secret access key for %s: "):format(opts["key-id"])))
  return { url = url, endpoint = opts.endpoint, region = opts.region or "us-east-1", key_id = opts["key-id"] }, secret
end

-- store remote [s3://BUCKET/PREFIX --endpoint URL --key-id ID [--region R] | --off]:
-- the store's off-site copy: set (and brought in step at once), shown, or dropped.
function store_cmds.remote(ctx, argv)
  local spec = { off = "bool" }
  for k, v in pairs(BUCKET_OPTS) do spec[k] = v end
  local opts, pos = getopts(argv, spec, "store remote")
  local usage = "usage: tend store remote [s3://BUCKET[/PREFIX] --endpoint URL --key-id ID [--region R] | --off]"
    .. "   (the secret access key from stdin or a hidden prompt)"
  local offsite, catalog = require "tend.offsite", ctx:catalog()
  if #pos > 1 then errors.usage("%s", usage) end
  if opts.off then
    if #pos > 0 then errors.usage("%s", usage) end
    for _, k in ipairs({ "url", "endpoint", "region", "key_id", "synced_at", "unfinished" }) do catalog:run("DELETE FROM meta WHERE key = ?", "offsite." .. k) end
    catalog:run("DELETE FROM offsite_files")
    catalog:run("DELETE FROM secrets WHERE name = ?", offsite.SECRET)
    return ctx:info("the store has no off-site copy now (the bucket keeps what it holds)")
  end
  if #pos == 0 then
    local cfg = offsite.config(catalog)
    if not cfg then return ctx:result({}, "the store has no off-site copy (" .. usage:gsub("^usage: ", "") .. ")") end
    local held = catalog:first("SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM offsite_files")
    local at = tonumber(catalog:meta("offsite.synced_at"))
    cfg.files, cfg.bytes, cfg.synced_at = held.n, held.bytes, at
    return ctx:result(cfg, ("%s at %s (key id %s, region %s): %d files, %d bytes; %s"):format(cfg.url, cfg.endpoint,
      cfg.key_id, cfg.region, held.n, held.bytes, at and ("in step at " .. os.date("!%Y-%m-%d %H:%M UTC", at)) or "never synced"))
  end
  if not tend.core.fs.stat(ctx.home .. "/store/encryption") then
    errors.usage("the store is not encrypted: an off-site copy holds only sealed objects (tend store encrypt first)")
  end
  local cfg, secret = bucket_config(opts, pos[1], usage)
  local remote = offsite.connect(cfg, secret)
  local _, msg = remote.s3:list(remote.prefix .. "catalog") -- the credentials, before anything is kept
  if msg then errors.fail("%s", msg) end
  if cfg.url ~= (catalog:meta("offsite.url") or "") then catalog:run("DELETE FROM offsite_files") end
  ctx:vault():set(offsite.SECRET, secret)
  for k, v in pairs({ url = cfg.url, endpoint = cfg.endpoint, region = cfg.region, key_id = cfg.key_id }) do
    catalog:meta("offsite." .. k, v)
  end
  local st, plain = ctx:store(), 0
  for _, hex in ipairs(st:list()) do if not st:sealed(hex) then plain = plain + 1 end end
  if plain > 0 then
    ctx:warn("%d objects were stored before encryption: they go to the bucket as they are, until forget and gc drop their snapshots", plain)
  end
  local r = offsite.sync(ctx)
  ctx:result(r, ("%s: in step (%d files, %d bytes sent); each backup keeps it so"):format(r.url, r.sent, r.bytes))
end

-- store sync: the off-site copy in step with the store (what a backup does at its end).
function store_cmds.sync(ctx, argv)
  local _, pos = getopts(argv, {}, "store sync")
  if #pos > 0 then errors.usage("usage: tend store sync") end
  local r = require("tend.offsite").sync(ctx)
  ctx:result(r, ("%s: in step (%d files, %d bytes sent, %d removed)"):format(r.url, r.sent, r.bytes, r.removed))
end

-- store recover s3://BUCKET/PREFIX --endpoint URL --key-id ID: a new manager's
-- TEND_HOME made from the off-site copy and the vault key.
function store_cmds.recover(ctx, argv)
  local opts, pos = getopts(argv, BUCKET_OPTS, "store recover")
  local usage = "usage: tend store recover s3://BUCKET[/PREFIX] --endpoint URL --key-id ID [--region R]"
    .. "   (an empty TEND_HOME; the vault key as TEND_VAULT_KEY_FILE or TEND_VAULT_PASSPHRASE)"
  if #pos ~= 1 then errors.usage("%s", usage) end
  local cfg, secret = bucket_config(opts, pos[1], usage)
  local r = require("tend.offsite").recover(ctx, cfg, secret)
  local lines = {}
  for _, i in ipairs(r.instances) do lines[#lines + 1] = ("  %-24s %d snapshots"):format(i.name, i.snapshots) end
  local key_file = os.getenv("TEND_VAULT_KEY_FILE") or ""
  local hint = key_file ~= "" and not tend.core.fs.stat(ctx.home .. "/vault.key")
    and ("\nkeep TEND_VAULT_KEY_FILE set, or copy %s to %s/vault.key (0600)"):format(key_file, ctx.home) or ""
  ctx:result(r, ("recovered from %s: %d instances, %d files (%d bytes)\n%s\nrestore works from here (tend snapshots NAME, tend restore NAME SNAP)%s")
    :format(r.url, #r.instances, r.files, r.bytes, table.concat(lines, "\n"), hint))
end

-- store cat HEX: an object's bytes on stdout, for inspection.
function store_cmds.cat(ctx, argv)
  local _, pos = getopts(argv, {}, "store cat")
  if #pos ~= 1 or not pos[1]:match("^%x+$") or #pos[1] ~= 64 then errors.usage("usage: tend store cat SHA256") end
  local data = errors.check(require("tend.snapshot").store(ctx):get_string(pos[1]))
  io.stdout:write(data)
end

return store_cmds
