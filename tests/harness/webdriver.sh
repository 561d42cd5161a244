# webdriver.sh: Debian's headless Chromium driven through chromedriver's WebDriver API
# (W3C, JSON over HTTP, spoken with curl; python3 reads the JSON), for tests of tend's
# web page as a person's browser sees it: forms filled and submitted, links followed,
# screenshots taken. Source after services.sh; the browser stops with the harness.
#   wd_start              chromedriver on a free port and a headless Chromium session
#   wd_go URL             load a page          wd_url -> where the browser is
#   wd_type CSS TEXT      type into a field    wd_click CSS    click an element
#   wd_select CSS TEXT    pick an <option> by its text
#   wd_text CSS -> text   wd_count CSS -> how many match
#   wd_shot FILE          a PNG of the page

_wd() { # _wd METHOD PATH [JSON] -> the response's "value", as JSON
  curl -s -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "http://127.0.0.1:$WD_PORT$2" |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("value")))'
}
_wd_json() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
_wd_field() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(v if isinstance(v,str) else (v or {}).get(sys.argv[2], ""))' "$1" "$2"; }

wd_start() {
  command -v chromedriver >/dev/null || return 1
  WD_PORT=$(free_port)
  chromedriver --port="$WD_PORT" >"$(harness_tmp)/chromedriver.log" 2>&1 &
  HARNESS_PIDS="$HARNESS_PIDS $!"
  wait_for chromedriver 20 _port_open "$WD_PORT" || return 1
  local caps='{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":"/usr/bin/chromium",
    "args":["--headless=new","--no-sandbox","--disable-gpu","--disable-dev-shm-usage","--window-size=1200,900"]}}}}'
  WD_SESSION=$(_wd_field "$(_wd POST /session "$caps")" sessionId)
  [ -n "$WD_SESSION" ] || return 1
  export WD_PORT WD_SESSION
}
wd_stop() { [ -n "${WD_SESSION:-}" ] && _wd DELETE "/session/$WD_SESSION" >/dev/null; WD_SESSION=; }
wd_go() { _wd POST "/session/$WD_SESSION/url" "{\"url\":$(_wd_json "$1")}" >/dev/null; }
wd_url() { _wd_field "$(_wd GET "/session/$WD_SESSION/url")" x; }
_wd_el() { # the element id of the first match of CSS
  local v
  v=$(_wd POST "/session/$WD_SESSION/element" "{\"using\":\"css selector\",\"value\":$(_wd_json "$1")}")
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]); print(next(iter(v.values())) if isinstance(v,dict) and len(v)==1 else "")' "$v"
}
wd_type() { local e; e=$(_wd_el "$1"); _wd POST "/session/$WD_SESSION/element/$e/value" "{\"text\":$(_wd_json "$2")}" >/dev/null; }
wd_click() { local e; e=$(_wd_el "$1"); _wd POST "/session/$WD_SESSION/element/$e/click" '{}' >/dev/null; }
wd_text() { local e; e=$(_wd_el "$1"); [ -n "$e" ] && _wd_field "$(_wd GET "/session/$WD_SESSION/element/$e/text")" x; }
wd_count() {
  _wd POST "/session/$WD_SESSION/elements" "{\"using\":\"css selector\",\"value\":$(_wd_json "$1")}" |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(len(v) if isinstance(v,list) else 0)'
}
wd_select() { # pick the <option> of the <select> at CSS whose text is TEXT
  local e
  e=$(_wd_el "$1 option[value=\"$2\"]")
  _wd POST "/session/$WD_SESSION/element/$e/click" '{}' >/dev/null
}
wd_shot() {
  _wd GET "/session/$WD_SESSION/screenshot" | python3 -c 'import base64,json,sys; open(sys.argv[1],"wb").write(base64.b64decode(json.load(sys.stdin)))' "$1"
}
