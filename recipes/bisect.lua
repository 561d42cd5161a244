-- bisect: find the commit that broke an instance (Tiki Manager's instance:bisect:*).
return {
  name = "bisect",
  summary = "Find the commit that broke an instance: git bisect on its checkout, the migration run at each step",
  description = [[
tend bisect start NAME --good V --bad V takes a backup (the way back), takes the
instance's patches off and checks out the commit half way between a version that
worked and one that does not, running the database migration. Try the site, then say
tend bisect good NAME or tend bisect bad NAME (skip: cannot tell) until tend names the
first bad commit. With --test CMD (run in the web root: exit 0 good, 125 skip, other
codes up to 127 bad), tend goes on by itself and says the first bad commit in one line;
the instance is left at that commit. A test runs once PHP's opcache at the instance's
URL has had time to see the checkout (opcache.revalidate_freq + 1 s). tend bisect
reset NAME puts the code back where it was, runs the migration and puts the patches
back; the database stays as the migrations left it (the start's snapshot has it as it
was: tend restore). For a git checkout that is not tagged production: bisect a copy
(tend clone).]],
  params = {
    { name = "action", type = "string", positional = true, required = true, choices = { "start", "good", "bad", "skip", "reset" } },
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "good", type = "string", help = "start: a version (tag, branch, commit) that worked" },
    { name = "bad", type = "string", help = "start: a version that does not (default: where the instance is)" },
    { name = "test", type = "string", help = "a shell command in the web root that says good (exit 0) or bad, to go on alone" },
  },

  run = function(ctx, args)
    local inst, action = args.instance, args.action
    local at
    if action == "start" then
      if not args.good then ctx:usage("bisect start needs --good V: a version that worked") end
      ctx:step("check", inst.bisect_check, inst)
      local snap = ctx:step("backup", inst.backup, inst) -- the way back, before the code moves
      ctx:step("patches off", inst.unpatch, inst)
      at = ctx:step("start", inst.bisect_start, inst, args.good, args.bad or "HEAD", snap)
    elseif action == "reset" then
      if args.test or args.good or args.bad then ctx:usage("bisect reset takes no --good, --bad or --test") end
      local snap = ctx:step("reset", inst.bisect_reset, inst)
      ctx:step("migration", inst.migrate_db, inst)
      ctx:step("patches on", inst.patch, inst)
      ctx:info("%s: back where it was before the bisect%s", inst.name,
        snap and (" (its database as it was then: snapshot " .. snap .. ")") or "")
      return ctx:result({ instance = inst.name, reset = true, snapshot = snap })
    else -- good, bad or skip: the commit the instance is at
      at = ctx:step(action, inst.bisect_mark, inst, action)
    end
    local tested = 0
    -- PHP's opcache may serve the code before a checkout for a second or two: the test waits
    local settle = args.test and not at.done and ctx:step("opcache", inst.bisect_settle, inst)
    while not at.done do
      ctx:step("migration", inst.migrate_db, inst)
      if not args.test then
        ctx:info("%s: at %s (%s), %d left: try it, then tend bisect good|bad %s", inst.name, at.commit, at.subject,
          at.left or 0, inst.name)
        return ctx:result({ instance = inst.name, done = false, commit = at.commit, subject = at.subject, left = at.left })
      end
      local verdict = ctx:step("test", inst.bisect_test, inst, args.test, settle)
      tested = tested + 1
      ctx:info("%s: %s (%s) is %s", inst.name, at.commit, at.subject, verdict)
      at = ctx:step(verdict, inst.bisect_mark, inst, verdict)
    end
    ctx:step("first bad commit", inst.bisect_go, inst, at.commit)
    ctx:step("migration", inst.migrate_db, inst)
    ctx:result({ instance = inst.name, done = true, commit = at.commit, subject = at.subject, tested = tested },
      ("%s: the first bad commit is %s (%s); the instance is at it now, tend bisect reset %s to go back"):format(
        inst.name, at.commit, at.subject, inst.name))
  end,
}
