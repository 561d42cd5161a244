-- versions: what versions an instance could be brought to (Tiki Manager's tiki:versions).
return {
  name = "versions",
  summary = "List the versions there are for an instance (its repository's tags, or its --releases), marking its own",
  description = [[
For a git checkout, the repository's tags (fetched first); for an instance installed
from --releases, the versions its SHA256SUMS lists. Oldest first; the one the instance
is at is marked with *. tend update takes the newest of its major, tend upgrade --to
any of them.]],
  params = {
    { name = "instance", type = "instance", positional = true, required = true },
  },

  run = function(ctx, args)
    local inst = args.instance
    local v = ctx:step("versions", inst.versions, inst)
    local lines = {}
    for _, version in ipairs(v.versions) do
      lines[#lines + 1] = (version == v.current and "* " or "  ") .. version
    end
    if #lines == 0 then lines[1] = ("(no versions in %s)"):format(v.source) end
    ctx:result({ instance = inst.name, current = v.current, versions = v.versions, source = v.source },
      ("%s is at %s; versions (%s):\n%s"):format(inst.name, v.current or "an unknown version", v.source,
        table.concat(lines, "\n")))
  end,
}
