#!/bin/sh
# The Lua library's unit tests: busted on stock lua5.4 with tend.core from the build.
cd "$(dirname "$0")/../.." || exit 1
LUA_PATH="$PWD/lua/?.lua;$PWD/lua/?/init.lua;;" LUA_CPATH="$PWD/build/lua/?.so;;" \
  exec lua5.4 /usr/bin/busted --output=TAP tests/lua
