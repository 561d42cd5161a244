-- check: the model recipe. Copy it to ./recipes/ or ~/.config/tend/recipes/ to change
-- it; docs/recipes.md walks through it line by line.
--
-- A recipe is a table: a name, a one-line summary, its parameters, and run(ctx, args).
-- `args` arrives parsed and typed: an `instance` parameter is already the Instance.
-- run returns the exit code (nothing means 0); a failure is error(...) or errors.fail.
return {
  name = "check",
  summary = "Reach an instance, detect its app and version, and check that its database answers",
  description = [[
Looks at the instance's files on its host: which application is installed (WordPress,
Tiki, or a generic PHP app) and which version. Reads the database settings from the
app's config file as data (PHP is never executed by tend), or from the instance's
--db, and asks the database for its version and table count. Exit 0 when all is well,
1 when something is wrong: the report says which step failed. With --all, every
instance, a line each and the failures named at the end; -j N runs N child tends at a
time, the instances on one host sharing each one's connection.]],
  params = {
    { name = "instance", type = "instance", positional = true, help = "the instance to check (or --all)" },
    { name = "all", type = "bool", help = "every instance: a line each, the failures named at the end" },
    { name = "jobs", type = "int", short = "j", default = 1,
      help = "with --all: this many at a time (instances on one host share a connection)" },
  },

  run = function(ctx, args)
    -- check(inst) -> report, lines: what was found; report.ok false when a step failed
    local function check(inst)
      local report = { instance = inst.name, host = inst.host, path = inst.path, ok = true }
      local lines = { { "instance", inst.name }, { "host", inst.host }, { "path", inst.path } }
      local function problem(step, msg)
        if msg:sub(1, #step + 1) == step .. " " then msg = msg:sub(#step + 2) end -- "database: database x" says it twice
        report.ok = false
        report.problems = report.problems or {}
        table.insert(report.problems, { step = step, message = msg })
        table.insert(lines, { step, "FAILED: " .. msg })
      end

      -- 1. Reach the files and tell which app they are.
      local adapter, version_or_msg = inst:detect()
      if adapter then
        report.app, report.version = adapter.name, version_or_msg
        table.insert(lines, { "app", adapter.name .. " " .. (version_or_msg or "(version unknown)") })
        if adapter.name ~= inst.app then
          ctx:warn("%s is registered as %s but looks like %s", inst.name, inst.app, adapter.name)
        end
      else
        problem("files", version_or_msg)
      end

      -- 2. Find the database settings and ask the database.
      if report.ok then
        local info, msg = inst:check_db(ctx:vault())
        if info then
          report.database = info
          table.insert(lines, { "database", ("%s, %s, %d tables: reachable"):format(info.where, info.server, info.tables) })
        else
          problem("database", msg)
        end
      end
      return report, lines
    end
    local function failed(report)
      return ("%s: %s"):format(report.problems[1].step, report.problems[1].message)
    end

    if not args.all then -- one instance: the whole report
      local report, lines = check(ctx:targets(args)[1])
      ctx:result(report, require("tend.output").report_text(lines))
      if not report.ok then error(failed(report), 0) end
      return
    end
    -- --all: a line each; a failed check is that instance's failure
    ctx:each(ctx:targets(args), function(inst)
      local report = check(inst)
      if not report.ok then error(failed(report), 0) end
      return report
    end, { jobs = args.jobs, what = "checks", report = function(r)
      ctx:info("%s: %s %s, database %s, %d tables: ok", r.instance, r.app, r.version or "(version unknown)",
        r.database.server, r.database.tables)
    end })
  end,
}
