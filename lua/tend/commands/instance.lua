-- commands/instance: tend instance add|list|show|edit|rm|link: the instances tend knows.
-- A built-in command group; cli dispatches to it (tend.cli).
local tend = require "tend"
local errors = require "tend.errors"
local output = require "tend.output"
local duration = require "tend.duration"
local instance = require "tend.instance"
local getopts = require("tend.recipe").getopts
local parse_tags = instance.parse_tags

local INSTANCE_OPTS = { app = "value", host = "value", path = "value", url = "value", db = "value",
  ["db-password-secret"] = "value", ["ssh-key"] = "value", ["ssh-password-secret"] = "value",
  ["ssh-key-passphrase-secret"] = "value", tag = "list", exclude = "list", contact = "value",
  ["watch-path"] = "list", ["watch-ignore"] = "list", migrate = "value", releases = "value", ["data-dir"] = "list", config = "list",
  ["version-file"] = "value", ["version-pattern"] = "value" }

local function instance_fields(opts)
  local fields = {}
  for k, v in pairs(opts) do if instance.FIELDS[k] then fields[k] = v end end
  return fields
end

local function show_instance(ctx, inst)
  local d = inst:describe()
  local lines = {
    { "name", d.name }, { "app", d.app }, { "host", d.host }, { "path", d.path },
    { "url", d.url or "-" }, { "db", d.db or "(from the app's config file)" },
  }
  if d.db_password_secret then lines[#lines + 1] = { "db password", "secret " .. d.db_password_secret } end
  if d.ssh_key then lines[#lines + 1] = { "ssh key", d.ssh_key } end
  if d.ssh_key_passphrase_secret then lines[#lines + 1] = { "ssh key passphrase", "secret " .. d.ssh_key_passphrase_secret } end
  if d.ssh_password_secret then lines[#lines + 1] = { "ssh password", "secret " .. d.ssh_password_secret } end
  if #d.exclude > 0 then lines[#lines + 1] = { "exclude", table.concat(d.exclude, " ") } end
  if d.contact then lines[#lines + 1] = { "contact", d.contact } end
  if d.watch_paths then lines[#lines + 1] = { "watch paths", (d.watch_paths:gsub("\n", " ")) } end
  if d.watch_ignore then lines[#lines + 1] = { "watch ignores", (d.watch_ignore:gsub("\n", " ")) } end
  if d.migrate then lines[#lines + 1] = { "migrate", d.migrate } end
  if d.releases then lines[#lines + 1] = { "releases", d.releases } end
  if #d.data_dirs > 0 then lines[#lines + 1] = { "data dirs", table.concat(d.data_dirs, " ") } end
  if #d.outside_dirs > 0 then lines[#lines + 1] = { "data outside", table.concat(d.outside_dirs, " ") } end
  if d.version_file then lines[#lines + 1] = { "version from", d.version_file .. (d.version_pattern and (" " .. d.version_pattern) or "") } end
  if #d.config_files > 0 then lines[#lines + 1] = { "config files", table.concat(d.config_files, " ") } end
  local tags = {}
  for k, v in pairs(d.tags) do tags[#tags + 1] = k .. "=" .. v end
  table.sort(tags)
  if #tags > 0 then lines[#lines + 1] = { "tags", table.concat(tags, " ") } end
  for _, r in ipairs(d.relations) do
    lines[#lines + 1] = { r.kind, r.source .. (r.lag and (" (lag " .. duration.format(r.lag) .. ")") or "") }
  end
  ctx:result(d, output.report_text(lines))
end

local instance_cmds = {}

function instance_cmds.add(ctx, argv)
  local opts, pos = getopts(argv, INSTANCE_OPTS, "instance add")
  if #pos ~= 1 then errors.usage("usage: tend instance add NAME --app APP --path DIR [...]") end
  local inst = instance.add(ctx:catalog(), pos[1], instance_fields(opts), parse_tags(opts.tag))
  ctx:info("added instance %s", inst.name)
  show_instance(ctx, inst)
end

function instance_cmds.list(ctx, argv)
  local _, pos = getopts(argv, {}, "instance list")
  if #pos > 0 then errors.usage("usage: tend instance list") end
  local rows = {}
  for _, inst in ipairs(instance.list(ctx:catalog())) do rows[#rows + 1] = inst:describe() end
  ctx:result(rows, #rows == 0 and "no instances yet (tend instance add NAME --app APP --path DIR)"
    or output.table_text(rows, { "name", "app", "host", "path", "url" }))
end

function instance_cmds.show(ctx, argv)
  local _, pos = getopts(argv, {}, "instance show")
  if #pos ~= 1 then errors.usage("usage: tend instance show NAME") end
  show_instance(ctx, ctx:instance(pos[1]))
end

function instance_cmds.edit(ctx, argv)
  local opts, pos = getopts(argv, INSTANCE_OPTS, "instance edit")
  if #pos ~= 1 then errors.usage("usage: tend instance edit NAME --FIELD VALUE ...") end
  local fields = instance_fields(opts)
  if next(fields) == nil and not opts.tag then errors.usage("instance edit: nothing to change") end
  local inst = instance.edit(ctx:catalog(), pos[1], fields, parse_tags(opts.tag))
  ctx:info("updated instance %s", inst.name)
  show_instance(ctx, inst)
end

function instance_cmds.rm(ctx, argv)
  local _, pos = getopts(argv, {}, "instance rm")
  if #pos ~= 1 then errors.usage("usage: tend instance rm NAME") end
  instance.rm(ctx:catalog(), pos[1])
  ctx:info("removed instance %s (its files and database are untouched)", pos[1])
end

function instance_cmds.link(ctx, argv)
  local opts, pos = getopts(argv, { ["dev-of"] = "value", ["mirror-of"] = "value",
    ["pre-dogfood-of"] = "value", ["template-of"] = "value", lag = "value" }, "instance link")
  if #pos ~= 1 then errors.usage("usage: tend instance link NAME --dev-of SRC | --mirror-of SRC --lag 1d | --pre-dogfood-of SRC") end
  local kind, source
  for k in pairs(instance.RELATIONS) do
    if opts[k] then
      if kind then errors.usage("instance link: give one relation at a time") end
      kind, source = k, opts[k]
    end
  end
  if not kind then errors.usage("instance link: say --dev-of, --mirror-of or --pre-dogfood-of") end
  local lag
  if opts.lag then
    local msg
    lag, msg = duration.parse(opts.lag)
    if not lag then errors.usage("--lag: %s", msg) end
  end
  show_instance(ctx, instance.link(ctx:catalog(), pos[1], kind, source, lag))
end

return instance_cmds
