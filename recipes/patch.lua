-- patch: fixes kept on an instance's code until a release has them (Tiki Manager's
-- instance:patch:apply|list|delete).
return {
  name = "patch",
  summary = "Keep a fix (a merge request's diff) on an instance's code: add, list, rm; re-applied after updates",
  description = [[
tend patch NAME add FILE|URL checks the diff with git apply --check in the web root,
applies it and records it (its text too: the URL may go away); a diff the code has
already is recorded as it is. tend patch NAME list shows them; tend patch NAME rm ID
takes one out of the code and forgets it. update, upgrade and bisect take the patches
off before the code moves and put them back after; clone and pre-dogfood give the copy
its source's patches. A patch that no longer applies fails that run, naming the patch,
and the run's undo puts the instance back. For a merge request, give its diff's
address (GitLab: .../merge_requests/N.diff, GitHub: .../pull/N.diff).]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
    { name = "action", type = "string", positional = true, required = true, choices = { "add", "list", "rm" } },
    { name = "what", type = "string", positional = true, help = "add: a diff's file or URL; rm: the patch's id" },
  },

  run = function(ctx, args)
    local inst, action = args.instance, args.action
    if action == "list" then
      local rows, lines = inst:patches(), {}
      for _, p in ipairs(rows) do
        lines[#lines + 1] = ("%d  %s  %s  %s"):format(p.id, os.date("!%Y-%m-%d", p.added_at), p.name, p.source)
        p.body = nil
      end
      return ctx:result(rows, #lines > 0 and table.concat(lines, "\n") or (inst.name .. " has no patches"))
    end
    if not args.what then ctx:usage("patch %s needs %s", action, action == "add" and "a diff's file or URL" or "the patch's id") end
    if action == "add" then
      local p, was_in = ctx:step("add", inst.patch_add, inst, args.what)
      ctx:info("%s: patch %d (%s) %s", inst.name, p.id, p.name, was_in and "recorded: its code has it already" or "applied")
      return ctx:result({ instance = inst.name, id = p.id, name = p.name, applied = not was_in })
    end
    local p = ctx:step("rm", inst.patch_remove, inst, args.what)
    ctx:info("%s: patch %d (%s) taken out of its code", inst.name, p.id, p.name)
    ctx:result({ instance = inst.name, id = p.id, name = p.name, removed = true })
  end,
}
