-- backup: snapshot an instance's files and database into tend's deduplicated store.
return {
  name = "backup",
  summary = "Snapshot files and database; only new or changed files cross the wire",
  description = [[
Lists the instance's files on its host in one round trip, compares them with the last
snapshot (type, mode, size, mtime), fetches only new and changed files in one tar
stream, dumps the database (mariadb-dump --single-transaction, or SQLite's .backup)
into the store, and records the snapshot last: a backup that fails records nothing.
Files are stored once whatever the number of snapshots or instances that hold them.]],
  params = {
    { name = "instance", type = "string", positional = true, help = "the instance (or --all)" },
    { name = "all", type = "bool", help = "every instance" },
    { name = "jobs", type = "int", short = "j", default = 1, help = "with --all: back up this many instances at a time" },
    { name = "rehash", type = "bool", help = "read and hash every file, not only changed ones" },
    { name = "exclude", type = "string", list = true,
      help = "leave out paths matching this pattern (repeatable; with a slash from the web root)" },
  },

  run = function(ctx, args)
    local backup = require "tend.backup"
    for _, p in ipairs(args.exclude or {}) do backup.check_pattern(p) end -- a usage error, before any work
    local targets
    if args.all then
      if args.instance then ctx:usage("give an instance or --all, not both") end
      targets = ctx:instances()
    elseif args.instance then
      targets = { ctx:instance(args.instance) }
    else
      ctx:usage("say which instance (or --all): tend backup NAME")
    end

    local function one(inst)
      -- A restore of this instance that was killed midway is rolled back first.
      local rok, rerr = pcall(require("tend.restore").recover, ctx, inst)
      if not rok then error(type(rerr) == "table" and rerr.msg or tostring(rerr), 0) end
      local ok, id, snap = pcall(backup.run, ctx, inst, {
        rehash = args.rehash,
        exclude = args.exclude,
        progress = function(fmt, ...) ctx:info("%s: " .. fmt, inst.name, ...) end,
      })
      if not ok then -- name the instance, once
        local msg = type(id) == "table" and id.msg or tostring(id)
        if not msg:find("instance " .. inst.name, 1, true) then msg = inst.name .. ": " .. msg end
        error(msg, 0)
      end
      ctx:info("%s: snapshot %d: %d files (%d bytes), %d bytes sent, %d new in the store%s%s",
        inst.name, id, snap.files, snap.bytes, snap.sent_bytes, snap.stored_bytes,
        snap.db_bytes and (", database " .. snap.db_bytes .. " bytes") or ", no database",
        snap.healed > 0 and ("; healed %d damaged object%s"):format(snap.healed, snap.healed == 1 and "" or "s") or "")
      return { instance = inst.name, snapshot = id, files = snap.files, bytes = snap.bytes,
        sent_bytes = snap.sent_bytes, stored_bytes = snap.stored_bytes, db_bytes = snap.db_bytes,
        healed = snap.healed, seconds = snap.finished_at - snap.started_at }
    end

    if #targets == 1 then -- a failure is one line from the CLI, exit 1
      ctx:result({ one(targets[1]) })
      return
    end
    local results, failed = {}, {}
    local function failure(inst, msg, code)
      failed[#failed + 1] = inst.name
      ctx:warn("backup %s: %s", inst.name, msg)
      return { instance = inst.name, error = msg, code = code or 1 }
    end
    if args.jobs > 1 then -- each backup in a child tend, args.jobs at a time; each hands back its outcome
      local function argv(inst)
        local a = { "--json", "--quiet", "backup", inst.name }
        if args.rehash then a[#a + 1] = "--rehash" end
        for _, p in ipairs(args.exclude or {}) do a[#a + 1] = "--exclude=" .. p end
        return a
      end
      require("tend.fanout").children(ctx, targets, argv, args.jobs, function(inst, outcome, msg)
        local done = outcome and outcome.code == 0 and type(outcome.result) == "table" and outcome.result[1]
        if done then
          results[#results + 1] = done
          ctx:info("%s: snapshot %d", inst.name, done.snapshot)
        else
          results[#results + 1] = failure(inst, outcome and outcome.error or msg, outcome and outcome.code)
        end
      end)
      table.sort(results, function(a, b) return a.instance < b.instance end)
    else
      for _, inst in ipairs(targets) do
        local ok, r = pcall(one, inst)
        results[#results + 1] = ok and r or failure(inst, type(r) == "table" and r.msg or tostring(r), type(r) == "table" and r.code)
      end
    end
    ctx:result(results)
    if #failed > 0 then
      error(("%d of %d backups failed: %s"):format(#failed, #targets, table.concat(failed, ", ")), 0)
    end
  end,
}
