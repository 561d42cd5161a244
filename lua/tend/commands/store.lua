-- commands/store: tend store verify|gc|cat|encrypt: the object store.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local getopts = require("tend.recipe").getopts

local store_cmds = {}

-- store verify: every object in the store reads back to its name.
function store_cmds.verify(ctx, argv)
  local _, pos = getopts(argv, {}, "store verify")
  if #pos > 0 then errors.usage("usage: tend store verify") end
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

-- store cat HEX: an object's bytes on stdout, for inspection.
function store_cmds.cat(ctx, argv)
  local _, pos = getopts(argv, {}, "store cat")
  if #pos ~= 1 or not pos[1]:match("^%x+$") or #pos[1] ~= 64 then errors.usage("usage: tend store cat SHA256") end
  local data = errors.check(require("tend.snapshot").store(ctx):get_string(pos[1]))
  io.stdout:write(data)
end

return store_cmds
