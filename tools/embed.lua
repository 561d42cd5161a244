-- embed.lua FILE...: write a C file to stdout that holds each FILE's bytes, for
-- engine/embedded.h. lua/X/Y.lua becomes module X.Y (init.lua names its folder).
local out = { '#include "embedded.h"\n' }
local entries = {}
for i, path in ipairs(arg) do
  local f = assert(io.open(path, "rb"))
  local src = f:read("a")
  f:close()
  local bytes = {}
  for j = 1, #src do
    bytes[#bytes + 1] = string.byte(src, j) .. ","
    if j % 24 == 0 then bytes[#bytes + 1] = "\n" end
  end
  out[#out + 1] = ("static const char f%d[] = {\n%s0};\n"):format(i, table.concat(bytes))
  local module = path:match("^lua/(.*)%.lua$")
  if module then
    module = '"' .. module:gsub("/init$", ""):gsub("/", ".") .. '"'
  end
  entries[#entries + 1] = ('\t{"%s", %s, f%d, %d},\n'):format(path, module or "NULL", i, #src)
end
out[#out + 1] = "const tend_embedded_file tend_embedded[] = {\n"
out[#out + 1] = table.concat(entries)
out[#out + 1] = "\t{NULL, NULL, NULL, 0}\n};\n"
io.write(table.concat(out))
